// Drives a Kiln server (URL in argv[2]) with Convex's official realtime client
// (`ConvexClient`, over the `ws` package in node) and prints one JSON object describing
// what it saw, for tests/e2e/sync.rs to assert on. argv[3] names the scenario.
import { ConvexClient } from "convex/browser";

const [url, scenario, ...rest] = process.argv.slice(2);
const clients = [];
function client(at = url) {
  const created = new ConvexClient(at, { unsavedChangesWarning: false });
  clients.push(created);
  return created;
}

// Resolves with the first value of the subscription that `accept` takes; rejects after
// `ms` with every value seen (the test then says what went wrong).
function waitFor(convex, path, args, accept, ms = 20000) {
  return new Promise((resolve, reject) => {
    const seen = [];
    let unsubscribe = () => {};
    const timer = setTimeout(() => {
      reject(new Error(`timed out waiting on ${path}: saw ${json(seen)}`));
      // An unsubscribe that throws must not hide why the wait failed.
      try {
        unsubscribe();
      } catch {}
    }, ms);
    unsubscribe = convex.onUpdate(
      path,
      args,
      (value) => {
        seen.push(value);
        if (accept(value)) {
          clearTimeout(timer);
          // Unsubscribing from inside the callback is allowed; defer to be safe.
          setTimeout(() => unsubscribe(), 0);
          resolve({ value, updates: seen.length });
        }
      },
      (error) => {
        seen.push({ error: error.message });
      },
    );
  });
}

// A subscription whose latest value can be awaited on: `until(accept)` resolves with the
// first value (the latest, or a later one) that `accept` takes.
function live(convex, path, args) {
  const state = { value: undefined, waiters: [] };
  const check = () => {
    state.waiters = state.waiters.filter(({ accept, resolve }) => {
      if (state.value !== undefined && accept(state.value)) {
        resolve(state.value);
        return false;
      }
      return true;
    });
  };
  state.unsubscribe = convex.onUpdate(path, args, (value) => {
    state.value = value;
    check();
  });
  state.until = (accept, ms = 20000) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out on ${path} ${json(args)}: last ${json(state.value)}`)),
        ms,
      );
      state.waiters.push({
        accept,
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
      });
      check();
    });
  return state;
}

// Resolves with the error the subscription fails with.
function errorOf(convex, path, args, ms = 20000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no error from ${path}`)), ms);
    const unsubscribe = convex.onUpdate(
      path,
      args,
      (value) => {
        clearTimeout(timer);
        reject(new Error(`${path} returned ${json(value)} instead of failing`));
      },
      (error) => {
        clearTimeout(timer);
        setTimeout(() => unsubscribe(), 0);
        resolve(describe(error));
      },
    );
  });
}

function describe(error) {
  return { type: error.constructor.name, message: error.message, data: error.data ?? null };
}

async function caught(promise) {
  try {
    return { value: await promise };
  } catch (error) {
    return describe(error);
  }
}

// int64 values arrive as BigInt, which JSON.stringify refuses: print them as numbers.
const json = (value) =>
  JSON.stringify(value, (_, item) => (typeof item === "bigint" ? Number(item) : item));

const result = {};
const scenarios = {
  // Subscribe, mutate from another client, see the update; read your own writes; an
  // action that runs a mutation; errors of every kind.
  async basics() {
    const watcher = client();
    const writer = client();
    const channel = { channel: "general" };
    const first = await waitFor(watcher, "messages:list", channel, () => true);
    result.initial = first.value;
    const seen = waitFor(watcher, "messages:list", channel, (value) => value.length === 1);
    await writer.mutation("messages:send", { ...channel, author: "ann", body: "hello" });
    const update = await seen;
    result.afterSend = update.value.map((message) => message.body);

    // Read your writes: once the mutation's promise resolves, the writer's own
    // subscription already holds its result.
    const own = writer.onUpdate("messages:list", channel, () => {});
    await waitFor(writer, "messages:list", channel, (value) => value.length === 1);
    await writer.mutation("messages:send", { ...channel, author: "bob", body: "second" });
    result.readYourWrites = own.getCurrentValue().map((message) => message.body);
    own();

    // A mutation an action runs updates a subscription.
    const tagged = waitFor(watcher, "calls:tags", {}, (tags) => tags.includes("from-action"));
    result.action = await writer.action("calls:action_runs_everything", { tag: "from-action" });
    result.tagsAfterAction = (await tagged).value;

    // Errors: ConvexError data in a subscription, a mutation and an action.
    result.queryError = await errorOf(watcher, "misbehave:fail", {});
    result.mutationError = await caught(writer.mutation("calls:fail_with_data", { tag: "m" }));
    result.actionError = await caught(writer.action("calls:action_fails_with_data", { tag: "a" }));
    result.missing = await errorOf(watcher, "hello:nope", {});
  },

  // `setAuth` with a JWT reaches `getUserIdentity`; switching identity re-runs the query;
  // a token the server refuses ends as no user (after the client's retries).
  async auth() {
    const [first, second, bad] = rest;
    const convex = client();
    let token = first;
    const changes = [];
    convex.setAuth(async () => token, (authenticated) => changes.push(authenticated));
    const subject = (value) => (value === null ? null : value.subject);
    // One subscription throughout, as an app holds it. (Unsubscribing one subscription
    // while subscribing another to the same query around a `setAuth` can lose the query
    // in the client: it then sends `Remove` with a subscriber left, and waits forever.)
    const whoami = live(convex, "hello:whoami", {});
    result.first = subject(await whoami.until((value) => value !== null));
    token = second;
    convex.setAuth(async () => token, (authenticated) => changes.push(authenticated));
    result.second = subject(await whoami.until((value) => subject(value) === "user-2"));
    token = bad;
    convex.setAuth(async () => token, (authenticated) => changes.push(authenticated));
    result.bad = await whoami.until((value) => value === null);
    whoami.unsubscribe();
    result.changes = changes;
  },

  // A Rust query and a JavaScript mutation over one table are reactive to each other,
  // and the other way round.
  async crossLanguage() {
    const watcher = client();
    const writer = client();
    const channel = { channel: "mixed" };
    await waitFor(watcher, "messages:list", channel, () => true);
    await waitFor(watcher, "chat:list", channel, () => true);
    const rustSees = waitFor(watcher, "messages:list", channel, (value) => value.length === 1);
    await writer.mutation("chat:send", { ...channel, author: "js", body: "from js" });
    result.rustQuerySees = (await rustSees).value.map((message) => message.body);
    const jsSees = waitFor(watcher, "chat:list", channel, (value) => value.length === 2);
    await writer.mutation("messages:send", { ...channel, author: "rust", body: "from rust" });
    result.jsQuerySees = (await jsSees).value;
  },

  // The server is killed and restarted while the client is connected: it reconnects,
  // subscribes again and sees current data. Prints a line at each step for the test,
  // which restarts the server in between.
  async restart() {
    const watcher = client();
    const counter = { name: "restart" };
    await waitFor(watcher, "counter:get", counter, (value) => Number(value) === 1);
    console.log(json({ step: "subscribed" }));
    result.afterRestart = Number(
      (await waitFor(watcher, "counter:get", counter, (value) => Number(value) === 2, 60000))
        .value,
    );
    // And it can write again.
    result.mutation = Number(await watcher.mutation("counter:increment", counter));
  },

  // The CLI's system queries, with the admin key: a table's size is reactive; a client
  // without the admin key is refused; the admin acting as a user reaches the identity.
  async system() {
    const [adminKey] = rest;
    const admin = client();
    admin.setAdminAuth(adminKey);
    const size = { tableName: "messages" };
    result.sizeBefore = (await waitFor(admin, "_system/cli/tableSize:default", size, () => true)).value;
    const grown = waitFor(admin, "_system/cli/tableSize:default", size, (value) => value === 1);
    await admin.mutation("messages:send", { channel: "s", author: "a", body: "b" });
    result.sizeAfter = (await grown).value;
    result.apiSpec = (await waitFor(admin, "_system/cli/modules:apiSpec", {}, () => true)).value
      .map((fn) => `${fn.functionType} ${fn.identifier}`)
      .filter((line) => line.includes("messages"));
    result.publicRefused = await errorOf(client(), "_system/cli/tableSize:default", size);
    const acting = client();
    acting.setAdminAuth(adminKey, { subject: "as-user", issuer: "https://dash" });
    result.actingAs = (await waitFor(acting, "hello:whoami", {}, (value) => value !== null)).value.subject;
  },

  // Paginated queries stay live, as usePaginatedQuery loads them: each page is its own
  // subscription starting at the previous page's continueCursor. An insert into the middle
  // of a loaded page shows up in that page, a delete leaves it, an append grows the last
  // page; pages never overlap or drop a document. (`items:page` is JavaScript over an
  // index on `rank`; `messages:paginate` is Rust, in creation order.)
  async pagination() {
    const convex = client();
    const writer = client();
    for (const rank of [10, 20, 30, 40, 50, 60]) {
      await writer.mutation("items:add", { rank });
    }
    const ranks = (page) => page.page.map((item) => item.rank);
    const opts = (cursor) => ({ paginationOpts: { numItems: 2, cursor, id: 1 } });
    const pages = [live(convex, "items:page", opts(null))];
    const first = await pages[0].until(() => true);
    pages.push(live(convex, "items:page", opts(first.continueCursor)));
    const second = await pages[1].until(() => true);
    pages.push(live(convex, "items:page", opts(second.continueCursor)));
    await pages[2].until(() => true);
    const snapshot = () => pages.map((page) => ranks(page.value));
    result.loaded = snapshot();
    result.lastDone = pages[2].value.isDone;

    await writer.mutation("items:add", { rank: 35 });
    await pages[1].until((page) => ranks(page).includes(35));
    result.afterMiddleInsert = snapshot();
    await writer.mutation("items:remove", { rank: 20 });
    await pages[0].until((page) => !ranks(page).includes(20));
    result.afterDelete = snapshot();
    await writer.mutation("items:add", { rank: 70 });
    await pages[2].until((page) => ranks(page).includes(70));
    result.afterAppend = snapshot();

    // The Rust app's pages, in creation order: a delete in the first page leaves the
    // second page as it was; a new message joins the last page.
    const channel = "paged";
    const ids = [];
    for (const body of ["a", "b", "c", "d"]) {
      ids.push(await writer.mutation("messages:send", { channel, author: "x", body }));
    }
    const rustOpts = (cursor) => ({ channel, paginationOpts: { numItems: 2, cursor } });
    const rust = [live(convex, "messages:paginate", rustOpts(null))];
    const rustFirst = await rust[0].until(() => true);
    rust.push(live(convex, "messages:paginate", rustOpts(rustFirst.continueCursor)));
    await rust[1].until(() => true);
    const bodies = () => rust.map((page) => page.value.page.map((message) => message.body));
    result.rustLoaded = bodies();
    await writer.mutation("messages:send", { channel, author: "x", body: "e" });
    await rust[1].until((page) => page.page.length === 3);
    result.rustAfterAppend = bodies();
  },

  // Two hosts over one database: a subscriber on this host (argv[2]) sees a mutation made
  // through the other (argv[4]), as do the other's own subscribers.
  async crossHost() {
    const [otherUrl] = rest;
    const here = client();
    const there = client(otherUrl);
    const watchedHere = live(here, "counter:get", { name: "cross" });
    const watchedThere = live(there, "counter:get", { name: "cross" });
    result.before = await watchedHere.until(() => true);
    await watchedThere.until(() => true);
    const started = Date.now();
    result.incremented = await there.mutation("counter:increment", { name: "cross" });
    result.afterHere = await watchedHere.until((value) => Number(value) === Number(result.before) + 1);
    result.latencyMs = Date.now() - started;
    result.afterThere = await watchedThere.until((value) => Number(value) === Number(result.before) + 1);
  },

  // `count` increments through `clients` connections at once end at exactly `count`, and
  // a subscriber sees the final value.
  async increments() {
    const [count, connections] = rest.map(Number);
    const writers = Array.from({ length: connections }, () => client());
    const watcher = client();
    const done = waitFor(watcher, "counter:get", { name: "hits" }, (value) => Number(value) === count, 60000);
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        writers[i % connections].mutation("counter:increment", { name: "hits" }),
      ),
    );
    result.final = (await done).value;
  },
};

try {
  await scenarios[scenario]();
} finally {
  await Promise.all(clients.map((convex) => convex.close()));
}
console.log(json(result));
