// The environment Convex functions expect, installed once per runtime before any module
// loads (and so part of every snapshot): the `Convex` syscall globals that `convex/server`
// talks through, `console`, a per-call `Math.random`, and the registry of the functions the
// app's modules export. Convex's own udf-runtime (`npm-packages/udf-runtime/src/setup.ts`)
// is the model.
//
// The Rust side hands its primitives over in `globalThis.__kiln` (removed here, so user code
// never sees them) and reads back what this script puts in `globalThis.__kilnEnvironment`.
import inspect from "object-inspect";
import { installWebGlobals, requestFromParts, partsFromResponse } from "./web/index.js";

const host = globalThis.__kiln;
delete globalThis.__kiln;

installWebGlobals(globalThis, host);

// --- Convex's syscall interface (convex/server's impl/syscall.js) -------------------------

// A failed op throws an Error whose `.data`, when set, is the Convex JSON value of a
// callee's ConvexError; convex/server rethrows that as a ConvexError with the same data.
function syscall(op, argsJson) {
  return host.syscall(op, argsJson);
}

// Kiln's host calls complete before they return (an action waiting on one holds no server
// thread: the host side is async), so an async op is a promise that is already settled.
function asyncSyscall(op, argsJson) {
  try {
    return Promise.resolve(host.syscall(op, argsJson));
  } catch (error) {
    return Promise.reject(error);
  }
}

// HTTP bodies do not travel through JSON: `runRequest`'s request JSON and the JSON made of
// the response carry a `bodyId`, and the bytes wait here.
const bodies = new Map();
let nextBodyId = 0;

function putBody(bytes) {
  if (bytes === null || bytes.length === 0) return null;
  const id = nextBodyId++;
  bodies.set(id, bytes);
  return id;
}

function takeBody(id) {
  if (id === null || id === undefined) return null;
  const bytes = bodies.get(id) ?? null;
  bodies.delete(id);
  return bytes;
}

// Convex's udf-runtime implements these in JS too (setup.ts); convex/server's router calls
// them from `runRequest`.
function jsSyscall(op, args) {
  switch (op) {
    case "requestFromConvexJson": {
      const { method, url, headerPairs, bodyId } = args.convexJson;
      return requestFromParts({ method, url, headers: headerPairs, body: takeBody(bodyId) });
    }
    case "convexJsonFromResponse": {
      const { status, statusText, headers, body } = partsFromResponse(args.response);
      return { status, statusText, headerPairs: headers, bodyId: putBody(body) };
    }
    // An action's ctx.storage.store(blob) and get(id): the bytes cross as base64.
    case "storage/storeBlob":
      return (async () => {
        if (!(args.blob instanceof Blob)) throw new Error("store() expects a Blob");
        const bytes = new Uint8Array(await args.blob.arrayBuffer());
        const request = {
          blob: bytesToBase64(bytes),
          contentType: args.blob.type || null,
          sha256: args.options?.sha256,
        };
        return JSON.parse(await asyncSyscall("1.0/storageStore", JSON.stringify(request)));
      })();
    case "storage/getBlob":
      return (async () => {
        const result = JSON.parse(
          await asyncSyscall("1.0/storageGet", JSON.stringify({ storageId: args.storageId })),
        );
        if (result === null) return null;
        return new Blob([base64ToBytes(result.blob)], { type: result.contentType ?? "" });
      })();
    default:
      throw new Error(`Unknown JS syscall: ${op}`);
  }
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function bytesToBase64(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const [a, b = 0, c = 0] = [bytes[i], bytes[i + 1], bytes[i + 2]];
    const n = (a << 16) | (b << 8) | c;
    out += BASE64[(n >> 18) & 63] + BASE64[(n >> 12) & 63];
    out += i + 1 < bytes.length ? BASE64[(n >> 6) & 63] : "=";
    out += i + 2 < bytes.length ? BASE64[n & 63] : "=";
  }
  return out;
}

function base64ToBytes(text) {
  const clean = text.replace(/=+$/, "");
  const bytes = new Uint8Array(Math.floor((clean.length * 3) / 4));
  let at = 0;
  for (let i = 0; i < clean.length; i += 4) {
    const n =
      (BASE64.indexOf(clean[i]) << 18) |
      (BASE64.indexOf(clean[i + 1]) << 12) |
      ((i + 2 < clean.length ? BASE64.indexOf(clean[i + 2]) : 0) << 6) |
      (i + 3 < clean.length ? BASE64.indexOf(clean[i + 3]) : 0);
    bytes[at++] = (n >> 16) & 255;
    if (i + 2 < clean.length) bytes[at++] = (n >> 8) & 255;
    if (i + 3 < clean.length) bytes[at++] = n & 255;
  }
  return bytes;
}

globalThis.Convex = Object.freeze({ syscall, asyncSyscall, jsSyscall });

// --- console (Convex's 02_console.ts: object-inspect, arguments joined by spaces) ---------

const MAX_LOG_LINE = 32768;

function formatLine(args) {
  const line = args
    .map((arg) =>
      inspect(arg, { maxStringLength: MAX_LOG_LINE, indent: 2, customInspect: true }),
    )
    .join(" ");
  return line.length > MAX_LOG_LINE
    ? line.slice(0, MAX_LOG_LINE) + " (truncated due to length)"
    : line;
}

const consoleTimers = new Map();
const console = {
  log: (...args) => host.log("log", formatLine(args)),
  info: (...args) => host.log("info", formatLine(args)),
  warn: (...args) => host.log("warn", formatLine(args)),
  error: (...args) => host.log("error", formatLine(args)),
  debug: (...args) => host.log("debug", formatLine(args)),
  trace: (...args) => host.log("log", formatLine([...args, new Error().stack ?? ""])),
  assert: (condition, ...args) => {
    if (!condition) host.log("error", formatLine(["Assertion failed", ...args]));
  },
  time: (label = "default") => {
    if (consoleTimers.has(label)) host.log("warn", `Timer '${label}' already exists`);
    else consoleTimers.set(label, Date.now());
  },
  timeLog: (label = "default", ...args) => {
    const start = consoleTimers.get(label);
    if (start === undefined) host.log("warn", `Timer '${label}' does not exist`);
    else host.log("info", formatLine([`${label}: ${Date.now() - start}ms`, ...args]));
  },
  timeEnd: (label = "default") => {
    const start = consoleTimers.get(label);
    if (start === undefined) host.log("warn", `Timer '${label}' does not exist`);
    else {
      consoleTimers.delete(label);
      host.log("info", `${label}: ${Date.now() - start}ms`);
    }
  },
};
globalThis.console = console;

// --- process.env: the deployment's environment variables, read when used (so a change
// with `kiln env set` reaches the next call without a deploy). Empty while modules load at
// deploy: a value read at the top level would be frozen into the snapshot. --------------

const env = new Proxy(Object.create(null), {
  get: (_, name) => (typeof name === "string" ? (host.env(name) ?? undefined) : undefined),
  has: (_, name) => typeof name === "string" && host.env(name) !== undefined,
  ownKeys: () => host.envNames(),
  getOwnPropertyDescriptor: (_, name) => {
    const value = typeof name === "string" ? host.env(name) : undefined;
    return value === undefined
      ? undefined
      : { value, writable: false, enumerable: true, configurable: true };
  },
  set: () => {
    throw new TypeError("process.env is read-only: set variables with `kiln env set`");
  },
  deleteProperty: () => {
    throw new TypeError("process.env is read-only: remove variables with `kiln env remove`");
  },
});
globalThis.process = { env };

// --- Math.random: drawn from the call's random source (seeded per call by the host for
// queries and mutations, so they stay deterministic; never state from the snapshot). -----

Math.random = function random() {
  return host.random();
};

// --- Timers: setTimeout and setInterval, in actions (as in Convex: queries and mutations
// must finish deterministically). The runtime's promise driver waits for the next due timer
// when nothing else is left to run (`nextTimerDelay`, `runDueTimers`). -------------------

const timers = new Map();
let nextTimerId = 1;
let timersAllowed = false;

function addTimer(callback, delay, args, repeat) {
  if (typeof callback !== "function") {
    throw new TypeError("setTimeout/setInterval: pass a function (code strings are not supported)");
  }
  if (!timersAllowed) {
    throw new Error(
      "Can't use setTimeout in queries and mutations. Please consider using an action. See https://docs.convex.dev/functions/actions for more details.",
    );
  }
  const wait = Math.max(0, Number(delay) || 0);
  const id = nextTimerId++;
  timers.set(id, { due: Date.now() + wait, wait, callback, args, repeat });
  return id;
}

globalThis.setTimeout = (callback, delay, ...args) => addTimer(callback, delay, args, false);
globalThis.setInterval = (callback, delay, ...args) => addTimer(callback, delay, args, true);
globalThis.clearTimeout = (id) => void timers.delete(id);
globalThis.clearInterval = globalThis.clearTimeout;

// Milliseconds until the next timer is due (0: now), or -1 when there is none.
function nextTimerDelay() {
  let earliest = Infinity;
  for (const timer of timers.values()) earliest = Math.min(earliest, timer.due);
  return earliest === Infinity ? -1 : Math.max(0, earliest - Date.now());
}

// Runs the timers that are due, one at a time in due order (the earliest first, ties in the
// order they were set), so an interval due again before a later timeout runs before it
// however late this runs. An interval's next due time counts from its last, not from now.
function runDueTimers() {
  const now = Date.now();
  for (;;) {
    let nextId;
    let next;
    for (const [id, timer] of timers) {
      if (timer.due <= now && (next === undefined || timer.due < next.due)) {
        nextId = id;
        next = timer;
      }
    }
    if (next === undefined) return;
    if (next.repeat) next.due += Math.max(1, next.wait);
    else timers.delete(nextId);
    next.callback(...next.args);
  }
}

// --- The app's functions ------------------------------------------------------------------

// "dir/module:name" -> the exported function object.
const functions = new Map();
// "dir/module" -> the HttpRouter it exports as default (Convex's convex/http.js).
const routers = new Map();

const KINDS = ["isQuery", "isMutation", "isAction"];

// Describes what a module exports: the Convex functions among its exports, by export name.
// Exports that are not Convex functions are ignored, as Convex does.
function register(modulePath, namespace) {
  const found = [];
  const router = namespace.default;
  if (router !== null && typeof router === "object" && router.isRouter === true) {
    routers.set(modulePath, router);
    router.getRoutes().forEach(([path, method], index) => {
      const prefix = path.endsWith("*");
      found.push({
        name: `${modulePath}:route_${index}`,
        kind: "httpAction",
        visibility: "public",
        args: null,
        returns: null,
        route: { method, path: prefix ? path.slice(0, -1) : path, prefix },
      });
    });
  }
  for (const exportName of Object.keys(namespace)) {
    const value = namespace[exportName];
    if (value === null || (typeof value !== "function" && typeof value !== "object")) continue;
    const kinds = KINDS.filter((flag) => value[flag] === true);
    let kind;
    if (kinds.length === 1) kind = kinds[0].slice(2).toLowerCase();
    else if (value.isHttp === true) continue; // an httpAction that is not routed
    else continue;
    const path = `${modulePath}:${exportName}`;
    functions.set(path, value);
    found.push({
      name: path,
      kind,
      visibility: value.isInternal === true ? "internal" : "public",
      args: typeof value.exportArgs === "function" ? value.exportArgs() : null,
      returns: typeof value.exportReturns === "function" ? value.exportReturns() : null,
    });
  }
  return found;
}

// Runs the function at `path` on its Convex JSON arguments (text of one object); resolves
// to the Convex JSON text of its result.
function invoke(path, argsJson) {
  const fn = functions.get(path);
  if (fn === undefined) throw new Error(`no function ${path} in this app`);
  const args = `[${argsJson}]`;
  if (fn.isQuery) return fn.invokeQuery(args);
  if (fn.isMutation) return fn.invokeMutation(args);
  timersAllowed = true;
  return fn.invokeAction("", args);
}

// Runs an HTTP request through the router of `modulePath` as Convex's backend does
// (`runRequest`, which looks the route up again and calls the httpAction); resolves to the
// response's parts.
async function invokeHttp(modulePath, method, url, headerPairs, body) {
  const router = routers.get(modulePath);
  if (router === undefined) throw new Error(`${modulePath} has no HTTP router`);
  timersAllowed = true;
  const pathname = new URL(url).pathname;
  const argsJson = JSON.stringify({ method, url, headerPairs, bodyId: putBody(body) });
  const response = JSON.parse(await router.runRequest(argsJson, pathname));
  return {
    status: response.status,
    headers: response.headerPairs,
    body: takeBody(response.bodyId) ?? new Uint8Array(0),
  };
}

// What a rejected call reports: Convex's "Uncaught Name: message" with the stack frames,
// and for a ConvexError its data (convex/server has already made it Convex JSON text).
function describeError(error) {
  if (error instanceof Error || (error !== null && typeof error === "object" && "message" in error)) {
    const name = error.name ?? "Error";
    let message = `Uncaught ${name}: ${error.message}`;
    const frames = typeof error.stack === "string" ? error.stack.trimEnd() : "";
    if (frames) message += "\n" + frames;
    const isConvexError = error[Symbol.for("ConvexError")] === true;
    const data = isConvexError && typeof error.data === "string" ? error.data : null;
    return { message, data };
  }
  return { message: `Uncaught ${formatLine([error])}`, data: null };
}

// QuickJS makes a built-in method's function object on first use (an "autoinit" property).
// Every call's instance starts from the snapshot, so a method the load never touched would
// be made again by every call that uses one (an object, its name and length), and dropped
// with the instance. Touching every built-in property here puts them in the snapshot.
// Descriptors are read, never values through getters, so no accessor runs.
function instantiateBuiltins() {
  const seen = new Set();
  const pending = [
    globalThis,
    // Intrinsics no global names.
    Object.getPrototypeOf(async function () {}),
    Object.getPrototypeOf(function* () {}),
    Object.getPrototypeOf(async function* () {}),
    Object.getPrototypeOf([][Symbol.iterator]()),
    Object.getPrototypeOf(new Map()[Symbol.iterator]()),
    Object.getPrototypeOf(new Set()[Symbol.iterator]()),
    Object.getPrototypeOf(""[Symbol.iterator]()),
    Object.getPrototypeOf(/a/[Symbol.matchAll]("")),
  ];
  while (pending.length > 0) {
    const object = pending.pop();
    if (object === null || (typeof object !== "object" && typeof object !== "function")) continue;
    if (seen.has(object)) continue;
    seen.add(object);
    pending.push(Object.getPrototypeOf(object));
    for (const key of Reflect.ownKeys(object)) {
      const descriptor = Object.getOwnPropertyDescriptor(object, key);
      if (descriptor !== undefined && "value" in descriptor) pending.push(descriptor.value);
    }
  }
}
instantiateBuiltins();

globalThis.__kilnEnvironment = {
  register,
  invoke,
  invokeHttp,
  describeError,
  formatLine,
  nextTimerDelay,
  runDueTimers,
};
