// HTTP actions through Convex's router, with the routes of the Rust example (../hello):
// GET /hello?name=... answers {"hello": name}; POST /echo sends the body back.
import { httpRouter } from "convex/server";
import { httpAction } from "./_generated/server";

const http = httpRouter();

http.route({
  path: "/hello",
  method: "GET",
  handler: httpAction(async (_ctx, request) => {
    const name = new URL(request.url).searchParams.get("name") ?? "";
    return Response.json({ hello: name });
  }),
});

http.route({
  path: "/echo",
  method: "POST",
  handler: httpAction(async (_ctx, request) => {
    const headers = new Headers();
    const contentType = request.headers.get("content-type");
    if (contentType !== null) headers.set("content-type", contentType);
    return new Response(await request.arrayBuffer(), { status: 200, headers });
  }),
});

export default http;
