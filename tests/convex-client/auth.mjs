// Calls `hello:whoami` on a Kiln server with Convex's official HTTP client, the way an app
// authenticates: `setAuth(jwt)` for a user, `setAdminAuth(key, identity)` for the admin
// acting as one (as the dashboard does). Arguments: URL, a good token, an expired token,
// the admin key. Prints one JSON object for tests/e2e/auth.rs to assert on.
import { ConvexHttpClient } from "convex/browser";

const [url, token, expired, adminKey] = process.argv.slice(2);
const result = {};

const client = new ConvexHttpClient(url);
result.anonymous = await client.query("hello:whoami", {});

client.setAuth(token);
result.bearer = await client.query("hello:whoami", {});

client.setAuth(expired);
try {
  await client.query("hello:whoami", {});
  result.expired = "accepted";
} catch (error) {
  result.expired = error.message;
}

client.setAdminAuth(adminKey, { subject: "dash-user", issuer: "https://dashboard", name: "Bo" });
result.admin = await client.query("hello:whoami", {});

console.log(JSON.stringify(result));
