// fetch (WHATWG Fetch) over the host's fetch, which completes the whole exchange (redirects
// included, as the request's redirect mode says) before it returns.
import { takeBody } from "./body.js";
import { headerList } from "./headers.js";
import { Request } from "./request.js";
import { createResponse } from "./response.js";

// The host's errors for what a browser reports as a network error (a TypeError). Others,
// such as fetch not being allowed in a query or mutation, go through unchanged.
const NETWORK_ERROR = /^fetch (refused|failed):/;

export function createFetch(host) {
  return async function fetch(input, init) {
    const request = new Request(input, init);
    request.signal.throwIfAborted();
    const parts = {
      method: request.method,
      // A fragment is never sent.
      url: request.url.replace(/#.*$/s, ""),
      headers: headerList(request.headers).map(([name, value]) => [name, value]),
      body: takeBody(request),
      redirect: request.redirect,
    };
    let result;
    try {
      result = host.fetch(parts);
    } catch (error) {
      if (typeof error?.message === "string" && NETWORK_ERROR.test(error.message)) {
        throw new TypeError(error.message, { cause: error });
      }
      throw error;
    }
    return createResponse(result);
  };
}
