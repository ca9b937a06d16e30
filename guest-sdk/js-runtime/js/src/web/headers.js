// Headers (WHATWG Fetch): a list of (name, value) pairs, matched case-insensitively.
import { isToken, toByteString } from "./util.js";

// The raw list, [[name, value]…] in insertion order with names as given: what goes on the
// wire (repeated headers, such as Set-Cookie, stay separate).
export let headerList;
// A copy with the same guard, for Request/Response clone().
export let cloneHeaders;
// Headers over pairs the host gave (trusted: not validated), with a guard ("none" or
// "immutable", for fetch responses and Response.error/redirect).
export let createHeaders;

const EDGE_WHITESPACE = /^[\t\n\r ]+|[\t\n\r ]+$/g;

function checkName(name, method) {
  const string = toByteString(name, `Headers.${method}`);
  if (!isToken(string)) throw new TypeError(`Headers.${method}: '${string}' is not a valid header name`);
  return string;
}

// Values lose their leading and trailing whitespace; NUL, CR and LF are not allowed inside.
function checkValue(value, method) {
  const string = toByteString(value, `Headers.${method}`).replace(EDGE_WHITESPACE, "");
  if (/[\0\r\n]/.test(string)) {
    throw new TypeError(`Headers.${method}: '${string}' is not a valid header value`);
  }
  return string;
}

export class Headers {
  #list = [];
  #guard = "none";

  constructor(init) {
    if (init === undefined) return;
    if (init === null || typeof init !== "object") {
      throw new TypeError("Headers: init must be a sequence of pairs or a record");
    }
    if (Symbol.iterator in init) {
      for (const pair of init) {
        const entry = Array.from(pair);
        if (entry.length !== 2) throw new TypeError("Headers: each header must be a [name, value] pair");
        this.append(entry[0], entry[1]);
      }
    } else {
      for (const name of Object.keys(init)) this.append(name, init[name]);
    }
  }

  static {
    headerList = (headers) => headers.#list;
    createHeaders = (pairs, guard) => {
      const headers = new Headers();
      headers.#list = pairs.map(([name, value]) => [String(name), String(value)]);
      headers.#guard = guard;
      return headers;
    };
    cloneHeaders = (headers) => createHeaders(headers.#list, headers.#guard);
  }

  #checkMutable() {
    if (this.#guard === "immutable") throw new TypeError("Headers are immutable");
  }

  #values(name) {
    const lower = name.toLowerCase();
    return this.#list.filter(([key]) => key.toLowerCase() === lower).map(([, value]) => value);
  }

  append(name, value) {
    const entry = [checkName(name, "append"), checkValue(value, "append")];
    this.#checkMutable();
    this.#list.push(entry);
  }

  delete(name) {
    const lower = checkName(name, "delete").toLowerCase();
    this.#checkMutable();
    this.#list = this.#list.filter(([key]) => key.toLowerCase() !== lower);
  }

  get(name) {
    const values = this.#values(checkName(name, "get"));
    return values.length === 0 ? null : values.join(", ");
  }

  getSetCookie() {
    return this.#values("set-cookie");
  }

  has(name) {
    return this.#values(checkName(name, "has")).length > 0;
  }

  // Replaces the first header of that name (keeping its place) and drops the others.
  set(name, value) {
    const entry = [checkName(name, "set"), checkValue(value, "set")];
    this.#checkMutable();
    const lower = entry[0].toLowerCase();
    const index = this.#list.findIndex(([key]) => key.toLowerCase() === lower);
    if (index === -1) {
      this.#list.push(entry);
      return;
    }
    this.#list[index][1] = entry[1];
    this.#list = this.#list.filter(([key], i) => i <= index || key.toLowerCase() !== lower);
  }

  // The spec's "sort and combine": lower-case names in order, the values of a name joined
  // by ", ", except Set-Cookie, whose values stay separate.
  #sortedAndCombined() {
    const names = [...new Set(this.#list.map(([name]) => name.toLowerCase()))].sort();
    const entries = [];
    for (const name of names) {
      if (name === "set-cookie") {
        for (const value of this.#values(name)) entries.push([name, value]);
      } else {
        entries.push([name, this.#values(name).join(", ")]);
      }
    }
    return entries;
  }

  *entries() {
    yield* this.#sortedAndCombined();
  }

  *keys() {
    for (const [name] of this.#sortedAndCombined()) yield name;
  }

  *values() {
    for (const [, value] of this.#sortedAndCombined()) yield value;
  }

  [Symbol.iterator]() {
    return this.entries();
  }

  forEach(callback, thisArg) {
    for (const [name, value] of this.#sortedAndCombined()) callback.call(thisArg, value, name, this);
  }

  get [Symbol.toStringTag]() {
    return "Headers";
  }
}
