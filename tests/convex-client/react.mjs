// Renders a React component that uses Convex's hooks (`useQuery`, `useMutation`,
// `useAction` from `convex/react`, through `ConvexReactClient` over the `ws` package) with
// react-test-renderer against a Kiln server (URL in argv[2]), and prints one JSON object
// of what it rendered, for tests/e2e/sync.rs.
import React from "react";
import TestRenderer, { act } from "react-test-renderer";
import { ConvexProvider, ConvexReactClient, useAction, useMutation, useQuery } from "convex/react";
import { ConvexClient } from "convex/browser";
import WebSocket from "ws";

const url = process.argv[2];
const h = React.createElement;
const channel = { channel: "react" };

const convex = new ConvexReactClient(url, {
  webSocketConstructor: WebSocket,
  unsavedChangesWarning: false,
});
const hooks = {};
const renders = [];
const waiters = [];

function Messages() {
  const messages = useQuery("messages:list", channel);
  hooks.send = useMutation("messages:send");
  hooks.shout = useAction("hello:shout");
  const shown = messages === undefined ? null : messages.map((message) => message.body);
  renders.push(shown);
  // After the render commits, wake whoever waits for it.
  React.useEffect(check);
  return h(
    "ul",
    null,
    (messages ?? []).map((message) => h("li", { key: message._id }, message.body)),
  );
}

// Resolves once a render shows a list that `accept` takes (checked after each commit).
function rendered(accept, ms = 20000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out: renders were ${JSON.stringify(renders)}`)),
      ms,
    );
    waiters.push({
      accept,
      resolve: (value) => {
        clearTimeout(timer);
        resolve(value);
      },
    });
    check();
  });
}

function check() {
  const latest = renders[renders.length - 1];
  for (const waiter of waiters.splice(0)) {
    if (latest !== undefined && latest !== null && waiter.accept(latest)) {
      waiter.resolve(latest);
    } else {
      waiters.push(waiter);
    }
  }
}

function Root() {
  return h(ConvexProvider, { client: convex }, h(Messages));
}

let renderer;
await act(async () => {
  renderer = TestRenderer.create(h(Root));
});
const result = {};
result.first = await rendered(() => true);
// The hook's mutation: the list re-renders with it (read your own writes).
await act(async () => {
  await hooks.send({ ...channel, author: "hook", body: "from the hook" });
});
result.afterOwnMutation = await rendered((list) => list.includes("from the hook"));
// Another client's mutation re-renders the component by itself.
const other = new ConvexClient(url, { unsavedChangesWarning: false });
await other.mutation("messages:send", { ...channel, author: "other", body: "from elsewhere" });
result.afterOtherClient = await rendered((list) => list.includes("from elsewhere"));
result.items = renderer.root.findAllByType("li").map((item) => item.children.join(""));
let shouted;
await act(async () => {
  shouted = await hooks.shout({ text: "hi" });
});
result.action = shouted;
await other.close();
await act(async () => {
  renderer.unmount();
});
await convex.close();
console.log(JSON.stringify(result));
