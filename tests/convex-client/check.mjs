// Calls a Kiln server (URL in argv[2]) with Convex's official HTTP client and prints one
// JSON object describing what came back, for tests/e2e/convex_client.rs to assert on.
import { ConvexHttpClient } from "convex/browser";

const client = new ConvexHttpClient(process.argv[2]);
const result = {};

result.greet = await client.query("hello:greet", { name: "Ada" });
const echoed = await client.mutation("hello:echo", {
  value: { big: 5n, bytes: new Uint8Array([1, 2, 255]).buffer, float: 1.5, list: [null, true] },
});
result.echo = {
  big: typeof echoed.big === "bigint" ? echoed.big.toString() : "not a bigint",
  bytes: Array.from(new Uint8Array(echoed.bytes)),
  float: echoed.float,
  list: echoed.list,
};
result.shout = await client.action("hello:shout", { text: "hi" });

// An action that runs an internal query and an internal mutation (the actions guide).
result.myAction = await client.action("myAction", { a: 1, b: "from the client" });

// ConvexError data from every kind, and from a mutation an action called.
for (const [name, kind, path, args] of [
  ["applicationError", "query", "misbehave:fail", {}],
  ["missing", "query", "hello:nope", {}],
  ["mutationError", "mutation", "calls:fail_with_data", { tag: "m" }],
  ["actionError", "action", "calls:action_fails_with_data", { tag: "a" }],
  ["errorThroughAction", "action", "calls:action_passes_on_error", { tag: "via" }],
  ["invalidArgs", "query", "hello:greet", {}],
]) {
  try {
    await client[kind](path, args);
    result[name] = "no error";
  } catch (error) {
    result[name] = { type: error.constructor.name, message: error.message, data: error.data ?? null };
  }
}

// An HTTP action, with plain fetch on the site address (argv[3]).
const response = await fetch(`${process.argv[3]}/hello?name=Ada`);
result.httpAction = { status: response.status, body: await response.json() };
console.log(JSON.stringify(result));
