// Response (WHATWG Fetch).
import { parseAbsoluteUrl } from "./request.js";
import { cloneBody, extractBody, mixinBody, setBody } from "./body.js";
import { Headers, cloneHeaders, createHeaders } from "./headers.js";
import { encodeUtf8 } from "./text-encoding.js";

const NULL_BODY_STATUSES = [101, 103, 204, 205, 304];
const REDIRECT_STATUSES = [301, 302, 303, 307, 308];

// A fetch() result from what the host returned: { status, url, redirected, headers: [[name,
// value]…], body: Uint8Array }. Any status is taken as it is, and its headers are immutable.
export let createResponse;

export class Response {
  #type = "default";
  #status = 200;
  #statusText = "";
  #headers;
  #url = "";
  #redirected = false;

  constructor(body = null, init = {}) {
    init ??= {};
    const status = init.status === undefined ? 200 : Number(init.status);
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      throw new RangeError(`Response: the status ${init.status} is not in the range 200 to 599`);
    }
    const statusText = init.statusText === undefined ? "" : String(init.statusText);
    if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(statusText)) {
      throw new TypeError(`Response: '${statusText}' is not a valid status text`);
    }
    this.#status = status;
    this.#statusText = statusText;
    this.#headers = new Headers(init.headers);
    let bytes = null;
    if (body !== null) {
      if (NULL_BODY_STATUSES.includes(status)) {
        throw new TypeError(`Response: a response with status ${status} cannot have a body`);
      }
      const extracted = extractBody(body);
      bytes = extracted.bytes;
      if (extracted.type !== null && !this.#headers.has("content-type")) {
        this.#headers.append("content-type", extracted.type);
      }
    }
    setBody(this, bytes);
  }

  static {
    createResponse = ({ status, url, redirected, headers, body }) => {
      const response = new Response(null);
      response.#type = "basic";
      response.#status = status;
      response.#url = url;
      response.#redirected = redirected;
      response.#headers = createHeaders(headers, "immutable");
      setBody(response, NULL_BODY_STATUSES.includes(status) ? null : body);
      return response;
    };
  }

  static json(data, init = {}) {
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError("Response.json: the data is not JSON-serializable");
    const response = new Response(encodeUtf8(text), init);
    if (!response.#headers.has("content-type")) response.#headers.append("content-type", "application/json");
    return response;
  }

  static redirect(url, status = 302) {
    const location = parseAbsoluteUrl(url, "Response.redirect").href;
    if (!REDIRECT_STATUSES.includes(status)) {
      throw new RangeError(`Response.redirect: ${status} is not a redirect status`);
    }
    const response = new Response(null, { status });
    response.#headers = createHeaders([["location", location]], "immutable");
    return response;
  }

  // A network error, as fetch() would see it: status 0, type "error".
  static error() {
    const response = new Response(null);
    response.#type = "error";
    response.#status = 0;
    response.#headers = createHeaders([], "immutable");
    return response;
  }

  get type() {
    return this.#type;
  }

  get url() {
    return this.#url;
  }

  get redirected() {
    return this.#redirected;
  }

  get status() {
    return this.#status;
  }

  get ok() {
    return this.#status >= 200 && this.#status <= 299;
  }

  get statusText() {
    return this.#statusText;
  }

  get headers() {
    return this.#headers;
  }

  clone() {
    const bytes = cloneBody(this);
    const copy = new Response(null);
    copy.#type = this.#type;
    copy.#status = this.#status;
    copy.#statusText = this.#statusText;
    copy.#headers = cloneHeaders(this.#headers);
    copy.#url = this.#url;
    copy.#redirected = this.#redirected;
    setBody(copy, bytes);
    return copy;
  }

  get [Symbol.toStringTag]() {
    return "Response";
  }
}

mixinBody(Response);
