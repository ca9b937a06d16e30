// The page the browser test loads: a chat list rendered by React with Convex's `useQuery`
// through `ConvexReactClient`, against the Kiln URL in the page's `?kiln=` parameter.
// Bundled by browser.mjs with esbuild; served from another origin than Kiln's.
import React from "react";
import { createRoot } from "react-dom/client";
import { ConvexProvider, ConvexReactClient, useQuery } from "convex/react";

const h = React.createElement;
const kiln = new URLSearchParams(window.location.search).get("kiln");
const convex = new ConvexReactClient(kiln, { unsavedChangesWarning: false });

function Messages() {
  const messages = useQuery("messages:list", { channel: "browser" });
  if (messages === undefined) {
    return h("p", { id: "status" }, "loading");
  }
  return h(
    "div",
    null,
    h("p", { id: "status" }, `${messages.length} messages`),
    h(
      "ul",
      { id: "messages" },
      messages.map((message) => h("li", { key: message._id }, `${message.author}: ${message.body}`)),
    ),
  );
}

createRoot(document.getElementById("root")).render(
  h(ConvexProvider, { client: convex }, h(Messages)),
);
