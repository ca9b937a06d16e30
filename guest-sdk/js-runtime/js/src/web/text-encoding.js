// TextEncoder and TextDecoder (WHATWG Encoding), UTF-8 only: the only encoding TextEncoder
// has, and the one nearly every TextDecoder use asks for. Replaces javy's partial versions.
import { bufferSourceBytes } from "./util.js";

// Writes the UTF-8 of as many whole code points of `string` as fit into `bytes` (lone
// surrogates become U+FFFD, the USVString rule). QuickJS interprets this loop, so it is
// written flat, with no call per character.
function writeUtf8(string, bytes) {
  let read = 0;
  let written = 0;
  while (read < string.length) {
    let codePoint = string.charCodeAt(read);
    if (codePoint < 0x80) {
      if (written === bytes.length) break;
      bytes[written++] = codePoint;
      read++;
      continue;
    }
    let units = 1;
    if (codePoint >= 0xd800 && codePoint <= 0xdfff) {
      const next = string.charCodeAt(read + 1);
      if (codePoint <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        codePoint = ((codePoint - 0xd800) << 10) + (next - 0xdc00) + 0x10000;
        units = 2;
      } else {
        codePoint = 0xfffd;
      }
    }
    if (codePoint < 0x800) {
      if (written + 2 > bytes.length) break;
      bytes[written++] = 0xc0 | (codePoint >> 6);
    } else if (codePoint < 0x10000) {
      if (written + 3 > bytes.length) break;
      bytes[written++] = 0xe0 | (codePoint >> 12);
      bytes[written++] = 0x80 | ((codePoint >> 6) & 0x3f);
    } else {
      if (written + 4 > bytes.length) break;
      bytes[written++] = 0xf0 | (codePoint >> 18);
      bytes[written++] = 0x80 | ((codePoint >> 12) & 0x3f);
      bytes[written++] = 0x80 | ((codePoint >> 6) & 0x3f);
    }
    bytes[written++] = 0x80 | (codePoint & 0x3f);
    read += units;
  }
  return { read, written };
}

export function encodeUtf8(string) {
  // At most 3 bytes per UTF-16 code unit (a surrogate pair: 4 bytes for 2 units).
  const bytes = new Uint8Array(string.length * 3);
  return bytes.slice(0, writeUtf8(string, bytes).written);
}

// The spec's "UTF-8 decode": invalid sequences become U+FFFD, a leading BOM is dropped.
export function decodeUtf8(bytes) {
  return new TextDecoder().decode(bytes);
}

// Bytes as a string of the same char codes, built in slices (fromCharCode takes arguments).
function binaryString(bytes) {
  let string = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    string += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  }
  return string;
}

// Decodes complete input. Valid UTF-8 goes through the engine's own decodeURIComponent,
// many times faster in QuickJS than a loop in JS; invalid input (which it rejects) goes
// through the WHATWG decoder.
function decodeComplete(bytes, fatal) {
  try {
    return decodeURIComponent(escape(binaryString(bytes)));
  } catch (error) {
    if (!(error instanceof URIError)) throw error;
    return decodeWithErrors(bytes, fatal);
  }
}

// The WHATWG UTF-8 decoder, for input that has invalid sequences: each becomes U+FFFD, or
// a TypeError when `fatal`.
function decodeWithErrors(bytes, fatal) {
  const units = [];
  const error = () => {
    if (fatal) throw new TypeError("The encoded data was not valid UTF-8");
    units.push(0xfffd);
  };
  let needed = 0;
  let seen = 0;
  let codePoint = 0;
  let lower = 0x80;
  let upper = 0xbf;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    if (needed === 0) {
      if (byte < 0x80) {
        units.push(byte);
      } else if (byte >= 0xc2 && byte <= 0xdf) {
        needed = 1;
        codePoint = byte & 0x1f;
      } else if (byte >= 0xe0 && byte <= 0xef) {
        if (byte === 0xe0) lower = 0xa0;
        if (byte === 0xed) upper = 0x9f;
        needed = 2;
        codePoint = byte & 0x0f;
      } else if (byte >= 0xf0 && byte <= 0xf4) {
        if (byte === 0xf0) lower = 0x90;
        if (byte === 0xf4) upper = 0x8f;
        needed = 3;
        codePoint = byte & 0x07;
      } else {
        error();
      }
      continue;
    }
    if (byte < lower || byte > upper) {
      // The sequence ends early: report it, then read this byte again as a new start.
      needed = seen = codePoint = 0;
      lower = 0x80;
      upper = 0xbf;
      error();
      i--;
      continue;
    }
    lower = 0x80;
    upper = 0xbf;
    codePoint = (codePoint << 6) | (byte & 0x3f);
    if (++seen === needed) {
      if (codePoint > 0xffff) {
        units.push(0xd800 + ((codePoint - 0x10000) >> 10), 0xdc00 + ((codePoint - 0x10000) & 0x3ff));
      } else {
        units.push(codePoint);
      }
      needed = seen = codePoint = 0;
    }
  }
  if (needed !== 0) error();
  let text = "";
  for (let i = 0; i < units.length; i += 8192) {
    text += String.fromCharCode.apply(null, units.slice(i, i + 8192));
  }
  return text;
}

// Where a trailing, not yet complete, UTF-8 sequence starts (bytes.length if none): what
// a streaming decode keeps for the next chunk.
function incompleteTail(bytes) {
  for (let i = bytes.length - 1; i >= Math.max(0, bytes.length - 3); i--) {
    const byte = bytes[i];
    if (byte < 0x80) break;
    if (byte >= 0xc0) {
      const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
      return bytes.length - i < length ? i : bytes.length;
    }
  }
  return bytes.length;
}

const UTF8_LABELS = [
  "unicode-1-1-utf-8",
  "unicode11utf8",
  "unicode20utf8",
  "utf-8",
  "utf8",
  "x-unicode20utf8",
];

export class TextEncoder {
  get encoding() {
    return "utf-8";
  }

  encode(input = "") {
    return encodeUtf8(String(input));
  }

  encodeInto(source, destination) {
    if (!(destination instanceof Uint8Array)) {
      throw new TypeError("TextEncoder.encodeInto: destination must be a Uint8Array");
    }
    return writeUtf8(String(source), destination);
  }

  get [Symbol.toStringTag]() {
    return "TextEncoder";
  }
}

export class TextDecoder {
  #fatal;
  #ignoreBOM;
  // The bytes of an incomplete sequence at the end of the last `{stream: true}` chunk.
  #pending = new Uint8Array(0);
  // Whether the start of the current stream (where a BOM may be) is still ahead.
  #atStart = true;

  constructor(label = "utf-8", options = {}) {
    const name = String(label).trim().toLowerCase();
    if (!UTF8_LABELS.includes(name)) {
      throw new RangeError(`TextDecoder: the encoding '${label}' is not supported (only UTF-8 is)`);
    }
    this.#fatal = Boolean(options?.fatal);
    this.#ignoreBOM = Boolean(options?.ignoreBOM);
  }

  get encoding() {
    return "utf-8";
  }

  get fatal() {
    return this.#fatal;
  }

  get ignoreBOM() {
    return this.#ignoreBOM;
  }

  decode(input, options = {}) {
    const stream = Boolean(options?.stream);
    let bytes = input === undefined ? new Uint8Array(0) : bufferSourceBytes(input, "TextDecoder.decode");
    if (this.#pending.length > 0) {
      const joined = new Uint8Array(this.#pending.length + bytes.length);
      joined.set(this.#pending);
      joined.set(bytes, this.#pending.length);
      bytes = joined;
    }
    const end = stream ? incompleteTail(bytes) : bytes.length;
    this.#pending = bytes.slice(end);
    let text;
    try {
      text = decodeComplete(bytes.subarray(0, end), this.#fatal);
    } catch (error) {
      this.#pending = new Uint8Array(0);
      this.#atStart = true;
      throw error;
    }
    if (this.#atStart && text.length > 0) {
      this.#atStart = false;
      if (!this.#ignoreBOM && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (!stream) this.#atStart = true;
    return text;
  }

  get [Symbol.toStringTag]() {
    return "TextDecoder";
  }
}
