// Small conversions the web classes share.

export function isBufferSource(value) {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

// A Uint8Array over the bytes of an ArrayBuffer or ArrayBufferView (a view, not a copy).
export function bufferSourceBytes(value, context) {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`${context}: expected an ArrayBuffer or an ArrayBufferView`);
}

// RFC 9110 token: header names, methods.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function isToken(string) {
  return TOKEN.test(string);
}

// WebIDL ByteString: a string whose characters all fit in one byte.
export function toByteString(value, context) {
  const string = String(value);
  if (/[^\x00-\xff]/.test(string)) {
    throw new TypeError(`${context}: '${string}' has characters outside the latin-1 range`);
  }
  return string;
}

// Passed to constructors that scripts may not call (AbortSignal, Crypto, …).
export const INTERNAL = Symbol("internal");
