// Calls a Kiln server (URL in argv[2], HTTP actions at argv[3]) serving the JavaScript
// example apps (components/js) plus errors.js, with Convex's official HTTP client, and prints
// one JSON object describing what came back, for tests/e2e/javascript.rs to assert on.
import { ConvexHttpClient } from "convex/browser";

const client = new ConvexHttpClient(process.argv[2]);
const result = {};

await client.mutation("messages:send", { channel: "js", author: "ada", body: "hello" });
await client.mutation("messages:send", { channel: "js", author: "bob", body: "hi" });
result.list = (await client.query("messages:list", { channel: "js" })).map((m) => m.body);

// int64 is bigint both ways.
const counted = await client.mutation("counter:increment", { name: "c", by: 5n });
const total = await client.query("counter:get", { name: "c" });
result.counter = { counted: typeof counted === "bigint" ? counted.toString() : "not a bigint", total: total.toString() };

result.myAction = await client.action("myAction", { a: 1, b: "from the client" });

// ConvexError data from every kind, and from a mutation an action called.
for (const [name, kind, path, args] of [
  ["queryError", "query", "errors:failQuery", {}],
  ["mutationError", "mutation", "errors:failMutation", { tag: "m" }],
  ["actionError", "action", "errors:failAction", { tag: "a" }],
  ["errorThroughAction", "action", "errors:passOn", { tag: "via" }],
  ["plainError", "query", "errors:plain", {}],
  ["invalidArgs", "mutation", "messages:send", {}],
]) {
  try {
    await client[kind](path, args);
    result[name] = "no error";
  } catch (error) {
    result[name] = { type: error.constructor.name, message: error.message, data: error.data ?? null };
  }
}

const response = await fetch(`${process.argv[3]}/hello?name=Ada`);
result.httpAction = { status: response.status, body: await response.json() };
// bigints (int64 in ConvexError data) print as their decimal text.
console.log(JSON.stringify(result, (_, value) => (typeof value === "bigint" ? `${value}n` : value)));
