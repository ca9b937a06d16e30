// What `Request.body`, `Response.body` and `Blob.stream()` return. Kiln keeps bodies as
// whole byte arrays and has no ReadableStream, so this is a minimal read-once stand-in for
// one: a stream of a single Uint8Array chunk, enough for `getReader().read()` loops and
// `for await (const chunk of body)`. It is not exposed as a global.
export class BodyStream {
  // Called once, on the first read: gives the bytes (and marks the owner's body used).
  #pull;
  #reader = null;
  #done = false;
  #resolveClosed;
  #closed = new Promise((resolve) => {
    this.#resolveClosed = resolve;
  });

  constructor(pull) {
    this.#pull = pull;
  }

  get locked() {
    return this.#reader !== null;
  }

  #finish() {
    const bytes = this.#done ? null : this.#pull();
    this.#done = true;
    this.#resolveClosed();
    return bytes;
  }

  // Takes the bytes for another body (`new Response(response.body)`).
  take() {
    if (this.locked || this.#done) throw new TypeError("The body stream is locked or already read");
    return this.#finish();
  }

  async cancel() {
    if (this.locked) throw new TypeError("Cannot cancel a locked stream");
    this.#finish();
  }

  getReader(options = {}) {
    if (options?.mode !== undefined) {
      throw new TypeError("Kiln's body streams only have default readers (no BYOB)");
    }
    if (this.locked) throw new TypeError("The stream is already locked to a reader");
    const reader = {
      read: async () => {
        if (this.#reader !== reader) throw new TypeError("This reader has been released");
        const bytes = this.#finish();
        return bytes === null || bytes.length === 0
          ? { value: undefined, done: true }
          : { value: bytes, done: false };
      },
      releaseLock: () => {
        if (this.#reader === reader) this.#reader = null;
      },
      cancel: async () => {
        if (this.#reader === reader) this.#finish();
      },
      closed: this.#closed,
    };
    this.#reader = reader;
    return reader;
  }

  async *[Symbol.asyncIterator]() {
    const reader = this.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  }

  get [Symbol.toStringTag]() {
    return "ReadableStream";
  }
}
