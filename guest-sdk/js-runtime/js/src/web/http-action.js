// The bridge between the host's HTTP exchange and an HTTP action's Request and Response.
import { takeBody } from "./body.js";
import { headerList } from "./headers.js";
import { createRequest } from "./request.js";
import { Response } from "./response.js";

// The Request an HTTP action gets: { method, url (absolute), headers: [[name, value]…],
// body: Uint8Array | null }.
export function requestFromParts({ method, url, headers, body }) {
  return createRequest({ method, url, headers, body: body ?? null });
}

// What the host sends back for the Response an HTTP action returned, read synchronously:
// { status, statusText, headers: [[name, value]…], body: Uint8Array }. Headers keep their
// order and repeats (each Set-Cookie separate).
export function partsFromResponse(response) {
  if (!(response instanceof Response)) throw new Error("HTTP actions must return a Response");
  return {
    status: response.status,
    statusText: response.statusText,
    headers: headerList(response.headers).map(([name, value]) => [name, value]),
    body: takeBody(response) ?? new Uint8Array(0),
  };
}
