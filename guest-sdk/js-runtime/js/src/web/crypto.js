// Crypto and SubtleCrypto (W3C Web Crypto) over the host's random bytes and digests. Of
// SubtleCrypto only digest() exists for now.
import DOMException from "core-js-pure/actual/dom-exception";
import { INTERNAL, bufferSourceBytes, isBufferSource } from "./util.js";

const MAX_RANDOM_BYTES = 65536;

const INTEGER_ARRAYS = [
  "Int8Array",
  "Uint8Array",
  "Uint8ClampedArray",
  "Int16Array",
  "Uint16Array",
  "Int32Array",
  "Uint32Array",
  "BigInt64Array",
  "BigUint64Array",
];

const DIGESTS = ["SHA-1", "SHA-256", "SHA-384", "SHA-512"];

const UNSUPPORTED = [
  "encrypt",
  "decrypt",
  "sign",
  "verify",
  "generateKey",
  "deriveKey",
  "deriveBits",
  "importKey",
  "exportKey",
  "wrapKey",
  "unwrapKey",
];

// An algorithm identifier ("sha-256" or { name: "SHA-256" }) as one of DIGESTS.
function digestAlgorithm(algorithm) {
  const name = typeof algorithm === "object" && algorithm !== null ? algorithm.name : algorithm;
  if (name === undefined) throw new TypeError("crypto.subtle.digest: the algorithm has no name");
  const normalized = DIGESTS.find((digest) => digest === String(name).toUpperCase());
  if (normalized === undefined) {
    throw new DOMException(`Unrecognized or unsupported digest algorithm: ${name}`, "NotSupportedError");
  }
  return normalized;
}

export class SubtleCrypto {
  #host;

  constructor(key, host) {
    if (key !== INTERNAL) throw new TypeError("Illegal constructor");
    this.#host = host;
  }

  async digest(algorithm, data) {
    const name = digestAlgorithm(algorithm);
    if (!isBufferSource(data)) throw new TypeError("crypto.subtle.digest: data must be a BufferSource");
    // A copy, so the host gets exactly these bytes rather than a view into a larger buffer.
    const hash = this.#host.digest(name, bufferSourceBytes(data).slice());
    return new Uint8Array(hash).buffer;
  }

  get [Symbol.toStringTag]() {
    return "SubtleCrypto";
  }
}

for (const method of UNSUPPORTED) {
  Object.defineProperty(SubtleCrypto.prototype, method, {
    value: async function () {
      throw new DOMException(`crypto.subtle.${method} is not supported by Kiln yet`, "NotSupportedError");
    },
    writable: true,
    configurable: true,
  });
}

export class Crypto {
  #host;
  #subtle;

  constructor(key, host) {
    if (key !== INTERNAL) throw new TypeError("Illegal constructor");
    this.#host = host;
    this.#subtle = new SubtleCrypto(INTERNAL, host);
  }

  get subtle() {
    return this.#subtle;
  }

  getRandomValues(array) {
    if (!ArrayBuffer.isView(array) || !INTEGER_ARRAYS.includes(array[Symbol.toStringTag])) {
      throw new DOMException("getRandomValues: the array must be an integer typed array", "TypeMismatchError");
    }
    if (array.byteLength > MAX_RANDOM_BYTES) {
      throw new DOMException(
        `getRandomValues: ${array.byteLength} bytes asked for, more than the limit of ${MAX_RANDOM_BYTES}`,
        "QuotaExceededError",
      );
    }
    bufferSourceBytes(array).set(this.#host.randomBytes(array.byteLength));
    return array;
  }

  // A version 4 UUID: 122 random bits.
  randomUUID() {
    const bytes = this.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  get [Symbol.toStringTag]() {
    return "Crypto";
  }
}
