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

for (const [name, path] of [
  ["applicationError", "misbehave:fail"],
  ["missing", "hello:nope"],
  ["invalidArgs", "hello:greet"],
]) {
  try {
    await client.query(path, {});
    result[name] = "no error";
  } catch (error) {
    result[name] = { type: error.constructor.name, message: error.message, data: error.data ?? null };
  }
}
console.log(JSON.stringify(result));
