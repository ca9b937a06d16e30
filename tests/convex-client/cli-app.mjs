// Calls the Convex app in ./app, pushed to a Kiln server by the official CLI, with Convex's
// official HTTP client, as that app's frontend would. Arguments: URL, a token the app's
// auth.config.ts provider accepts. Prints one JSON object for tests/e2e/convex_cli.rs.
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";

const api = anyApi;
const [url, token] = process.argv.slice(2);
const client = new ConvexHttpClient(url);
const result = {};

result.sent = await client.mutation(api.messages.send, {
  channel: "cli",
  author: "ada",
  body: "pushed by npx convex deploy",
});
result.list = await client.query(api.messages.list, { channel: "cli" });
result.seed = await client.action(api.myAction.doSomething, { a: 21 });
try {
  await client.query(api.messages.count, { channel: "cli" });
  result.internal = "reachable";
} catch (error) {
  result.internal = error.message;
}
try {
  await client.mutation(api.messages.send, { channel: "cli" });
  result.badArgs = "accepted";
} catch (error) {
  result.badArgs = error.message;
}
result.anonymous = await client.query(api.messages.whoAmI, {});
client.setAuth(token);
result.subject = await client.query(api.messages.whoAmI, {});

console.log(JSON.stringify(result));
