// structuredClone (HTML "structured serialize" then "deserialize", in one pass). Written
// here rather than taken from core-js-pure, whose version gives its own Map and Set
// (not `instanceof Map`). Cloned Maps, Sets, Dates, … are this realm's own.
import DOMException from "core-js-pure/actual/dom-exception";
import URL from "core-js-pure/actual/url";
import URLSearchParams from "core-js-pure/actual/url-search-params";
import { AbortController, AbortSignal } from "./abort.js";
import { Blob, File } from "./blob.js";
import { Crypto, SubtleCrypto } from "./crypto.js";
import { FormData } from "./form-data.js";
import { Headers } from "./headers.js";
import { Request } from "./request.js";
import { Response } from "./response.js";
import { BodyStream } from "./stream.js";
import { TextDecoder, TextEncoder } from "./text-encoding.js";

const ERRORS = { Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError };

const TYPED_ARRAYS = Object.fromEntries(
  [
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
    ...(typeof Float16Array === "function" ? [Float16Array] : []),
  ].map((constructor) => [constructor.name, constructor]),
);

// Objects with state that cannot be copied: cloning one throws, as in browsers.
const UNCLONEABLE = [
  Promise,
  WeakMap,
  WeakSet,
  WeakRef,
  FinalizationRegistry,
  Symbol,
  AbortController,
  AbortSignal,
  BodyStream,
  Crypto,
  FormData,
  Headers,
  Request,
  Response,
  SubtleCrypto,
  TextDecoder,
  TextEncoder,
  URL,
  URLSearchParams,
];

function dataCloneError(value) {
  let description;
  try {
    description = String(value);
  } catch {
    description = Object.prototype.toString.call(value);
  }
  return new DOMException(`${description} could not be cloned.`, "DataCloneError");
}

// A plain data property, even for a key such as "__proto__".
function defineOwn(object, key, value) {
  Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
}

export function structuredClone(value, options) {
  if (arguments.length < 1) throw new TypeError("structuredClone: 1 argument required");
  if (options?.transfer !== undefined && Array.from(options.transfer).length > 0) {
    throw new DOMException("structuredClone: transferring objects is not supported by Kiln", "DataCloneError");
  }
  return clone(value, new Map());
}

// `memory` maps each object already met to its copy, so shared and cyclic references stay so.
function clone(value, memory) {
  if (typeof value === "function" || typeof value === "symbol") throw dataCloneError(value);
  if (value === null || typeof value !== "object") return value;
  if (memory.has(value)) return memory.get(value);
  const copy = shallowCopy(value, memory);
  memory.set(value, copy);
  if (value instanceof Map) {
    for (const [key, entry] of [...value]) copy.set(clone(key, memory), clone(entry, memory));
  } else if (value instanceof Set) {
    for (const entry of [...value]) copy.add(clone(entry, memory));
  } else if (Array.isArray(value) || Object.getPrototypeOf(copy) === Object.prototype) {
    for (const key of Object.keys(value)) defineOwn(copy, key, clone(value[key], memory));
  }
  return copy;
}

// The copy of `value` before its members (Map entries, Set values, own properties) are cloned.
function shallowCopy(value, memory) {
  if (UNCLONEABLE.some((constructor) => value instanceof constructor)) throw dataCloneError(value);
  if (value instanceof Boolean || value instanceof Number || value instanceof String) {
    return Object(value.valueOf());
  }
  if (value instanceof BigInt) return Object(value.valueOf());
  if (value instanceof Date) return new Date(value.getTime());
  if (value instanceof RegExp) return new RegExp(value.source, value.flags);
  if (value instanceof ArrayBuffer) return value.slice(0);
  if (value instanceof DataView) {
    return new DataView(clone(value.buffer, memory), value.byteOffset, value.byteLength);
  }
  if (ArrayBuffer.isView(value)) {
    const TypedArray = TYPED_ARRAYS[value[Symbol.toStringTag]];
    return new TypedArray(clone(value.buffer, memory), value.byteOffset, value.length);
  }
  if (value instanceof Map) return new Map();
  if (value instanceof Set) return new Set();
  if (value instanceof File) {
    return new File([value], value.name, { type: value.type, lastModified: value.lastModified });
  }
  if (value instanceof Blob) return value.slice(0, value.size, value.type);
  if (value instanceof DOMException) return new DOMException(value.message, value.name);
  if (value instanceof Error) return cloneError(value);
  if (Array.isArray(value)) return new Array(value.length);
  return {};
}

// An Error keeps its type (if a standard one), message and stack.
function cloneError(error) {
  const name = error.name;
  const Constructor = Object.hasOwn(ERRORS, name) ? ERRORS[name] : Error;
  const messageDescriptor = Object.getOwnPropertyDescriptor(error, "message");
  const copy = messageDescriptor === undefined ? new Constructor() : new Constructor(String(messageDescriptor.value));
  if (typeof error.stack === "string") {
    Object.defineProperty(copy, "stack", { value: error.stack, writable: true, configurable: true });
  }
  return copy;
}
