// The file upload flow of Convex's docs, with the official client, against a Kiln server
// (URL in argv[2]) serving the photos example: generateUploadUrl → POST the file →
// send(storageId) → list → GET the URL. Prints what came back, for tests/e2e/storage.rs.
import { ConvexHttpClient } from "convex/browser";

const client = new ConvexHttpClient(process.argv[2]);
const result = {};
const image = new Uint8Array(4096).map((_, i) => i % 251);

const postUrl = await client.mutation("photos:generateUploadUrl", {});
const uploaded = await fetch(postUrl, {
  method: "POST",
  headers: { "Content-Type": "image/png" },
  body: image,
});
result.uploadStatus = uploaded.status;
const { storageId } = await uploaded.json();
await client.mutation("photos:send", { storageId, author: "official client" });
const photos = await client.query("photos:list", {});
result.author = photos[0].author;
const served = await fetch(photos[0].url);
result.servedStatus = served.status;
result.servedType = served.headers.get("content-type");
const bytes = new Uint8Array(await served.arrayBuffer());
result.sameBytes = bytes.length === image.length && bytes.every((byte, i) => byte === image[i]);
console.log(JSON.stringify(result));
