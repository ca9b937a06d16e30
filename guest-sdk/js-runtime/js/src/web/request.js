// Request (WHATWG Fetch). Kiln has no document, so there is no base URL: a Request's URL
// must be absolute.
import URL from "core-js-pure/actual/url";
import { AbortController, AbortSignal } from "./abort.js";
import { cloneBody, extractBody, hasBody, mixinBody, setBody, takeBody } from "./body.js";
import { Headers, cloneHeaders, createHeaders } from "./headers.js";
import { isToken } from "./util.js";

const NORMALIZED_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
const FORBIDDEN_METHODS = ["CONNECT", "TRACE", "TRACK"];
const REDIRECT_MODES = ["follow", "error", "manual"];

export function parseAbsoluteUrl(input, context) {
  try {
    return new URL(String(input));
  } catch {
    throw new TypeError(`${context}: failed to parse URL from '${input}' (it must be absolute)`);
  }
}

// A known method is upper-cased; any other token is kept as given ("patch" stays "patch").
function normalizeMethod(method) {
  const string = String(method);
  if (!isToken(string)) throw new TypeError(`Request: '${string}' is not a valid HTTP method`);
  const upper = string.toUpperCase();
  if (FORBIDDEN_METHODS.includes(upper)) throw new TypeError(`Request: the ${upper} method is not allowed`);
  return NORMALIZED_METHODS.includes(upper) ? upper : string;
}

// A Request over what the host gave for an HTTP action: { method, url, headers: [[name,
// value]…], body: Uint8Array | null }, taken as it is (a GET may have a body).
export let createRequest;

export class Request {
  #method = "GET";
  #url;
  #headers;
  #redirect = "follow";
  #signal;

  constructor(input, init = {}) {
    if (arguments.length < 1) throw new TypeError("Request: 1 argument required");
    init ??= {};
    const source = input instanceof Request ? input : null;
    if (source !== null) {
      this.#url = source.#url;
      this.#method = source.#method;
      this.#redirect = source.#redirect;
    } else {
      const url = parseAbsoluteUrl(input, "Request");
      if (url.username !== "" || url.password !== "") {
        throw new TypeError("Request: a URL with credentials is not allowed");
      }
      this.#url = url.href;
    }
    if (init.method !== undefined) this.#method = normalizeMethod(init.method);
    if (init.redirect !== undefined) {
      if (!REDIRECT_MODES.includes(init.redirect)) {
        throw new TypeError(`Request: '${init.redirect}' is not a valid redirect mode`);
      }
      this.#redirect = init.redirect;
    }
    const parentSignal = init.signal !== undefined ? init.signal : source?.#signal;
    if (parentSignal !== null && parentSignal !== undefined && !(parentSignal instanceof AbortSignal)) {
      throw new TypeError("Request: signal must be an AbortSignal");
    }
    this.#signal = parentSignal ? AbortSignal.any([parentSignal]) : new AbortController().signal;
    this.#headers = new Headers(init.headers !== undefined ? init.headers : source?.#headers);

    const initBody = init.body ?? null;
    const hasSourceBody = source !== null && hasBody(source);
    if ((initBody !== null || hasSourceBody) && (this.#method === "GET" || this.#method === "HEAD")) {
      throw new TypeError("Request: a GET or HEAD request cannot have a body");
    }
    let bytes = null;
    if (initBody !== null) {
      const extracted = extractBody(initBody);
      bytes = extracted.bytes;
      if (extracted.type !== null && !this.#headers.has("content-type")) {
        this.#headers.append("content-type", extracted.type);
      }
    } else if (hasSourceBody) {
      // The new request takes the source's body: the source can no longer be read.
      bytes = takeBody(source);
    }
    setBody(this, bytes);
  }

  static {
    createRequest = ({ method, url, headers, body }) => {
      const request = new Request(url);
      request.#method = method;
      request.#headers = createHeaders(headers, "none");
      setBody(request, body);
      return request;
    };
  }

  get method() {
    return this.#method;
  }

  get url() {
    return this.#url;
  }

  get headers() {
    return this.#headers;
  }

  get redirect() {
    return this.#redirect;
  }

  get signal() {
    return this.#signal;
  }

  clone() {
    const bytes = cloneBody(this);
    const copy = new Request(this.#url);
    copy.#method = this.#method;
    copy.#headers = cloneHeaders(this.#headers);
    copy.#redirect = this.#redirect;
    copy.#signal = AbortSignal.any([this.#signal]);
    setBody(copy, bytes);
    return copy;
  }

  get [Symbol.toStringTag]() {
    return "Request";
  }
}

mixinBody(Request);
