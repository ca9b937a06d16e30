// Blob and File (W3C File API), holding their bytes in memory.
import { BodyStream } from "./stream.js";
import { encodeUtf8, decodeUtf8 } from "./text-encoding.js";
import { bufferSourceBytes, isBufferSource } from "./util.js";

// A Blob's bytes, for the modules that serialise one (bodies, FormData); never handed to
// scripts without a copy.
export let blobBytes;

// A type is kept (lower-cased) only if it is printable ASCII.
function normalizeType(type) {
  const string = String(type);
  return /^[\x20-\x7e]*$/.test(string) ? string.toLowerCase() : "";
}

function partBytes(part, endings) {
  if (part instanceof Blob) return blobBytes(part);
  if (isBufferSource(part)) return bufferSourceBytes(part);
  let string = String(part);
  // "native" endings: the line separator of a Unix system.
  if (endings === "native") string = string.replace(/\r\n?/g, "\n");
  return encodeUtf8(string);
}

function concat(chunks) {
  const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

// Resolves a relative slice index (negative counts from the end) within 0..size.
function relativeIndex(index, size) {
  const integer = Math.trunc(Number(index)) || 0;
  return integer < 0 ? Math.max(size + integer, 0) : Math.min(integer, size);
}

export class Blob {
  #bytes;
  #type;

  constructor(blobParts = [], options = {}) {
    if (blobParts === null || typeof blobParts !== "object" || !(Symbol.iterator in blobParts)) {
      throw new TypeError("Blob: blobParts must be a sequence");
    }
    const endings = options?.endings === undefined ? "transparent" : String(options.endings);
    if (endings !== "transparent" && endings !== "native") {
      throw new TypeError(`Blob: '${endings}' is not a valid value for endings`);
    }
    this.#bytes = concat(Array.from(blobParts, (part) => partBytes(part, endings)));
    this.#type = options?.type === undefined ? "" : normalizeType(options.type);
  }

  static {
    blobBytes = (blob) => blob.#bytes;
  }

  get size() {
    return this.#bytes.length;
  }

  get type() {
    return this.#type;
  }

  slice(start = 0, end = this.size, contentType = "") {
    const from = relativeIndex(start, this.size);
    const to = relativeIndex(end, this.size);
    const blob = new Blob([], { type: contentType });
    blob.#bytes = this.#bytes.slice(from, Math.max(from, to));
    return blob;
  }

  async text() {
    return decodeUtf8(this.#bytes);
  }

  async arrayBuffer() {
    return this.#bytes.slice().buffer;
  }

  async bytes() {
    return this.#bytes.slice();
  }

  stream() {
    return new BodyStream(() => this.#bytes.slice());
  }

  get [Symbol.toStringTag]() {
    return "Blob";
  }
}

export class File extends Blob {
  #name;
  #lastModified;

  constructor(fileBits, fileName, options = {}) {
    if (arguments.length < 2) throw new TypeError("File: 2 arguments required");
    super(fileBits, options);
    this.#name = String(fileName);
    this.#lastModified = options?.lastModified === undefined ? Date.now() : Number(options.lastModified);
  }

  get name() {
    return this.#name;
  }

  get lastModified() {
    return this.#lastModified;
  }

  get webkitRelativePath() {
    return "";
  }

  get [Symbol.toStringTag]() {
    return "File";
  }
}
