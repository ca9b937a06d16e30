// The Body mixin (WHATWG Fetch) shared by Request and Response. A body is kept whole, as
// bytes, so the runtime can hand a Response's body to the host synchronously.
import URLSearchParams from "core-js-pure/actual/url-search-params";
import { Blob, blobBytes } from "./blob.js";
import { FormData, encodeMultipart, parseMultipart, parseUrlencoded } from "./form-data.js";
import { BodyStream } from "./stream.js";
import { encodeUtf8, decodeUtf8 } from "./text-encoding.js";
import { bufferSourceBytes, isBufferSource } from "./util.js";

// Request/Response -> { bytes: Uint8Array | null, used: boolean, stream: BodyStream | null }.
// The bytes are private to the body: whatever a script gets is a copy.
const bodies = new WeakMap();

// "Extract a body": the bytes of a body init and the Content-Type it implies (or null).
export function extractBody(init) {
  if (init === null || init === undefined) return { bytes: null, type: null };
  if (init instanceof Blob) return { bytes: blobBytes(init), type: init.type || null };
  if (isBufferSource(init)) return { bytes: bufferSourceBytes(init).slice(), type: null };
  if (init instanceof URLSearchParams) {
    return { bytes: encodeUtf8(String(init)), type: "application/x-www-form-urlencoded;charset=UTF-8" };
  }
  if (init instanceof FormData) return encodeMultipart(init);
  if (init instanceof BodyStream) return { bytes: init.take(), type: null };
  return { bytes: encodeUtf8(String(init)), type: "text/plain;charset=UTF-8" };
}

export function setBody(owner, bytes) {
  bodies.set(owner, { bytes, used: false, stream: null });
}

export function hasBody(owner) {
  return bodies.get(owner).bytes !== null;
}

function isUnusable(state) {
  return state.bytes !== null && (state.used || state.stream?.locked === true);
}

// The body's bytes for a reader that takes them (a body method, fetch, the host): marks the
// body used. A null body gives null and stays unused.
export function takeBody(owner) {
  const state = bodies.get(owner);
  if (isUnusable(state)) throw new TypeError("Body is unusable: it has already been read");
  state.used = true;
  return state.bytes;
}

// The bytes for a clone, which shares them (they are never modified).
export function cloneBody(owner) {
  const state = bodies.get(owner);
  if (isUnusable(state)) throw new TypeError("Cannot clone: the body has already been read");
  return state.bytes;
}

function consume(owner) {
  if (!bodies.has(owner)) throw new TypeError("Illegal invocation");
  return takeBody(owner) ?? new Uint8Array(0);
}

// Adds body, bodyUsed, arrayBuffer(), blob(), bytes(), formData(), json() and text() to a
// class whose instances have `headers` and were given a body with setBody.
export function mixinBody(Class) {
  const methods = {
    get body() {
      const state = bodies.get(this);
      if (state.bytes === null) return null;
      state.stream ??= new BodyStream(() => {
        state.used = true;
        return state.bytes.slice();
      });
      return state.stream;
    },
    get bodyUsed() {
      const state = bodies.get(this);
      return state.bytes !== null && state.used;
    },
    async arrayBuffer() {
      return consume(this).slice().buffer;
    },
    async blob() {
      const bytes = consume(this);
      return new Blob([bytes], { type: this.headers.get("content-type") ?? "" });
    },
    async bytes() {
      return consume(this).slice();
    },
    async formData() {
      const bytes = consume(this);
      const type = this.headers.get("content-type") ?? "";
      const essence = type.split(";")[0].trim().toLowerCase();
      if (essence === "multipart/form-data") return parseMultipart(bytes, type);
      if (essence === "application/x-www-form-urlencoded") return parseUrlencoded(bytes);
      throw new TypeError(`Cannot parse a body of type '${type}' as FormData`);
    },
    async json() {
      return JSON.parse(decodeUtf8(consume(this)));
    },
    async text() {
      return decodeUtf8(consume(this));
    },
  };
  for (const name of Object.getOwnPropertyNames(methods)) {
    const descriptor = Object.getOwnPropertyDescriptor(methods, name);
    Object.defineProperty(Class.prototype, name, { ...descriptor, enumerable: false });
  }
}
