// Speaks to a Kiln server's sync socket (URL in argv[2]) frame by frame with the `ws`
// package: sends each case's frames, then records every message the server answers with
// and how the socket closed. Prints one JSON object of cases for tests/e2e/sync.rs.
import WebSocket from "ws";

const url = `${process.argv[2].replace(/^http/, "ws")}/api/1.48.0/sync`;
const connect = JSON.stringify({
  type: "Connect",
  sessionId: "raw-session",
  connectionCount: 0,
  lastCloseReason: "InitialConnect",
  clientTs: Date.now(),
});
const add = (queryId, udfPath, args = {}) => ({ type: "Add", queryId, udfPath, args: [args] });
const modify = (baseVersion, newVersion, modifications) =>
  JSON.stringify({ type: "ModifyQuerySet", baseVersion, newVersion, modifications });

// Sends `frames` and resolves once the socket closes, or after `settle` ms without a
// message when `until` (a predicate on the messages so far) says it has what it needs.
function run(frames, until = () => false, ms = 20000) {
  return new Promise((resolve) => {
    const messages = [];
    const socket = new WebSocket(url, { maxPayload: 64 << 20 });
    const finish = (close) => {
      clearTimeout(timer);
      resolve({ messages, close });
    };
    const timer = setTimeout(() => {
      socket.terminate();
      finish({ timedOut: true });
    }, ms);
    socket.on("open", () => {
      for (const frame of frames) socket.send(frame);
    });
    socket.on("message", (data) => {
      const message = JSON.parse(data.toString());
      if (message.type === "Ping") return;
      messages.push(message);
      if (until(messages)) {
        socket.close(1000);
      }
    });
    socket.on("close", (code, reason) => finish({ code, reason: reason.toString() }));
    socket.on("error", (error) => messages.push({ socketError: error.message }));
  });
}

const cases = {
  notJson: () => run([connect, "hello"]),
  unknownType: () => run([connect, JSON.stringify({ type: "Nope" })]),
  badBaseVersion: () => run([connect, modify(5, 6, [])]),
  duplicateQuery: () =>
    run([connect, modify(0, 1, [add(1, "hello:greet", { name: "a" }), add(1, "hello:greet")])]),
  huge: () => run([connect, "x".repeat((16 << 20) + 1)]),
  tooManyQueries: () =>
    run([
      connect,
      modify(
        0,
        1,
        Array.from({ length: 10000 }, (_, i) => add(i, "hello:greet", { name: `n${i}` })),
      ),
    ]),
  badAdminKey: () =>
    run([connect, JSON.stringify({ type: "Authenticate", tokenType: "Admin", value: "wrong", baseVersion: 0 })]),
  // After all that, a well-behaved client is served.
  healthy: () =>
    run(
      [connect, modify(0, 1, [add(0, "hello:greet", { name: "Ada" })])],
      (messages) => messages.some((message) => message.type === "Transition"),
    ),
};

const result = {};
for (const [name, start] of Object.entries(cases)) {
  result[name] = await start();
}
console.log(JSON.stringify(result));
