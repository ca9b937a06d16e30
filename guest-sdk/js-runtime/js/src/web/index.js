// The web platform globals Convex functions expect (Convex's udf-runtime has them too):
// URL, fetch and its classes, Blob, text encoding, crypto, structuredClone, AbortController.
// Bodies are kept whole as bytes, never streamed. `host` gives the primitives JS cannot
// have by itself: { fetch, randomBytes, digest } (see fetch.js and crypto.js).
import DOMException from "core-js-pure/actual/dom-exception";
import URL from "core-js-pure/actual/url";
import URLSearchParams from "core-js-pure/actual/url-search-params";
import { AbortController, AbortSignal } from "./abort.js";
import { Blob, File } from "./blob.js";
import { Crypto, SubtleCrypto } from "./crypto.js";
import { createFetch } from "./fetch.js";
import { FormData } from "./form-data.js";
import { Headers } from "./headers.js";
import { Request } from "./request.js";
import { Response } from "./response.js";
import { structuredClone } from "./structured-clone.js";
import { TextDecoder, TextEncoder } from "./text-encoding.js";
import { INTERNAL } from "./util.js";

export { requestFromParts, partsFromResponse } from "./http-action.js";

export function installWebGlobals(global, host) {
  const globals = {
    AbortController,
    AbortSignal,
    Blob,
    Crypto,
    // core-js-pure's DOMException is the engine's own when it has one.
    DOMException,
    File,
    FormData,
    Headers,
    Request,
    Response,
    SubtleCrypto,
    TextDecoder,
    TextEncoder,
    URL,
    URLSearchParams,
    crypto: new Crypto(INTERNAL, host),
    fetch: createFetch(host),
    structuredClone,
  };
  // Like a browser's globals: writable and configurable, but not enumerable.
  for (const [name, value] of Object.entries(globals)) {
    Object.defineProperty(global, name, { value, writable: true, configurable: true, enumerable: false });
  }
}
