// FormData (WHATWG XHR) and the two body formats it goes to and from:
// multipart/form-data (RFC 7578) and application/x-www-form-urlencoded.
import URLSearchParams from "core-js-pure/actual/url-search-params";
import { Blob, File, blobBytes } from "./blob.js";
import { encodeUtf8, decodeUtf8 } from "./text-encoding.js";

// An entry's value is a string or a File (a Blob is wrapped in one, named "blob").
function toEntry(name, value, filename, method) {
  if (value instanceof Blob) {
    if (filename !== undefined) {
      return [String(name), new File([value], filename, { type: value.type, lastModified: value.lastModified })];
    }
    return [String(name), value instanceof File ? value : new File([value], "blob", { type: value.type })];
  }
  if (filename !== undefined) {
    throw new TypeError(`FormData.${method}: a filename is only allowed with a Blob value`);
  }
  return [String(name), String(value)];
}

export class FormData {
  #entries = [];

  constructor(form) {
    if (form !== undefined) throw new TypeError("FormData: Kiln has no HTML forms to read");
  }

  append(name, value, filename) {
    this.#entries.push(toEntry(name, value, filename, "append"));
  }

  delete(name) {
    const key = String(name);
    this.#entries = this.#entries.filter(([entryName]) => entryName !== key);
  }

  get(name) {
    const key = String(name);
    return this.#entries.find(([entryName]) => entryName === key)?.[1] ?? null;
  }

  getAll(name) {
    const key = String(name);
    return this.#entries.filter(([entryName]) => entryName === key).map(([, value]) => value);
  }

  has(name) {
    const key = String(name);
    return this.#entries.some(([entryName]) => entryName === key);
  }

  // Replaces the first entry of that name (keeping its place) and drops the others.
  set(name, value, filename) {
    const entry = toEntry(name, value, filename, "set");
    const index = this.#entries.findIndex(([entryName]) => entryName === entry[0]);
    if (index === -1) {
      this.#entries.push(entry);
      return;
    }
    this.#entries[index] = entry;
    this.#entries = this.#entries.filter(([entryName], i) => i <= index || entryName !== entry[0]);
  }

  *entries() {
    yield* this.#entries.slice();
  }

  *keys() {
    for (const [name] of this.#entries.slice()) yield name;
  }

  *values() {
    for (const [, value] of this.#entries.slice()) yield value;
  }

  [Symbol.iterator]() {
    return this.entries();
  }

  forEach(callback, thisArg) {
    for (const [name, value] of this.#entries.slice()) callback.call(thisArg, value, name, this);
  }

  get [Symbol.toStringTag]() {
    return "FormData";
  }
}

// --- multipart/form-data -------------------------------------------------------------------

function toCrlf(string) {
  return string.replace(/\r\n|\r|\n/g, "\r\n");
}

function escapeQuoted(string) {
  return string.replace(/\n/g, "%0A").replace(/\r/g, "%0D").replace(/"/g, "%22");
}

function unescapeQuoted(string) {
  return string.replace(/%0A/gi, "\n").replace(/%0D/gi, "\r").replace(/%22/g, '"');
}

export function encodeMultipart(formData) {
  let boundary = "----KilnFormBoundary";
  for (let i = 0; i < 16; i++) boundary += Math.floor(Math.random() * 36).toString(36);
  const chunks = [];
  for (const [name, value] of formData) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${escapeQuoted(toCrlf(name))}"`;
    if (typeof value === "string") {
      chunks.push(encodeUtf8(`${head}\r\n\r\n${toCrlf(value)}\r\n`));
    } else {
      head += `; filename="${escapeQuoted(value.name)}"\r\n`;
      head += `Content-Type: ${value.type || "application/octet-stream"}\r\n\r\n`;
      chunks.push(encodeUtf8(head), blobBytes(value), encodeUtf8("\r\n"));
    }
  }
  chunks.push(encodeUtf8(`--${boundary}--\r\n`));
  return {
    bytes: blobBytes(new Blob(chunks)),
    type: `multipart/form-data; boundary=${boundary}`,
  };
}

function indexOfBytes(haystack, needle, from) {
  search: for (let i = from; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue search;
    }
    return i;
  }
  return -1;
}

function parameter(header, name) {
  const match = new RegExp(`(?:^|;)\\s*${name}=(?:"([^"]*)"|([^;]*))`, "i").exec(header);
  return match === null ? null : (match[1] ?? match[2].trim());
}

const malformed = () => new TypeError("Failed to parse the body as multipart/form-data");

// Parses a multipart/form-data body: parts with a filename become Files.
export function parseMultipart(bytes, contentType) {
  const boundary = parameter(contentType, "boundary");
  if (!boundary) throw new TypeError("The multipart/form-data Content-Type has no boundary");
  const delimiter = encodeUtf8(`--${boundary}`);
  const nextDelimiter = encodeUtf8(`\r\n--${boundary}`);
  const formData = new FormData();
  let at = indexOfBytes(bytes, delimiter, 0);
  if (at === -1) throw malformed();
  at += delimiter.length;
  // After each delimiter: "--" closes the body, CRLF starts a part (headers, blank line, content).
  while (!(bytes[at] === 0x2d && bytes[at + 1] === 0x2d)) {
    if (bytes[at] !== 0x0d || bytes[at + 1] !== 0x0a) throw malformed();
    const headersEnd = indexOfBytes(bytes, encodeUtf8("\r\n\r\n"), at);
    const contentEnd = headersEnd === -1 ? -1 : indexOfBytes(bytes, nextDelimiter, headersEnd + 4);
    if (contentEnd === -1) throw malformed();
    const headers = new Map();
    for (const line of decodeUtf8(bytes.subarray(at + 2, headersEnd)).split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const disposition = headers.get("content-disposition") ?? "";
    const name = parameter(disposition, "name");
    if (name === null) throw malformed();
    const filename = parameter(disposition, "filename");
    const content = bytes.subarray(headersEnd + 4, contentEnd);
    if (filename === null) {
      formData.append(unescapeQuoted(name), decodeUtf8(content));
    } else {
      const type = headers.get("content-type") ?? "text/plain";
      formData.append(unescapeQuoted(name), new File([content], unescapeQuoted(filename), { type }));
    }
    at = contentEnd + nextDelimiter.length;
  }
  return formData;
}

// --- application/x-www-form-urlencoded --------------------------------------------------------

export function parseUrlencoded(bytes) {
  const formData = new FormData();
  for (const [name, value] of new URLSearchParams(decodeUtf8(bytes))) formData.append(name, value);
  return formData;
}
