// AbortController and AbortSignal (WHATWG DOM), minimal: Kiln has no EventTarget, so a
// signal keeps its own "abort" listeners, which get a plain { type, target } event.
import DOMException from "core-js-pure/actual/dom-exception";
import { INTERNAL } from "./util.js";

let signalAbort;

export class AbortSignal {
  #aborted = false;
  #reason = undefined;
  #listeners = [];
  #onabort = null;

  constructor(key) {
    if (key !== INTERNAL) throw new TypeError("Illegal constructor");
  }

  static {
    signalAbort = (signal, reason) => {
      if (signal.#aborted) return;
      signal.#aborted = true;
      signal.#reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
      const event = { type: "abort", target: signal, currentTarget: signal };
      const listeners = signal.#listeners;
      signal.#listeners = [];
      for (const callback of [...listeners, signal.#onabort]) {
        if (typeof callback !== "function") continue;
        // As in a browser, a listener's exception is reported, not thrown to the aborter.
        try {
          callback.call(signal, event);
        } catch (error) {
          globalThis.console?.error(error);
        }
      }
    };
  }

  static abort(reason) {
    const signal = new AbortSignal(INTERNAL);
    signalAbort(signal, reason);
    return signal;
  }

  // A signal that aborts when any of `signals` does, with its reason.
  static any(signals) {
    const signal = new AbortSignal(INTERNAL);
    const sources = Array.from(signals);
    const aborted = sources.find((source) => source.aborted);
    if (aborted !== undefined) {
      signalAbort(signal, aborted.reason);
      return signal;
    }
    for (const source of sources) {
      source.addEventListener("abort", () => signalAbort(signal, source.reason), { once: true });
    }
    return signal;
  }

  get aborted() {
    return this.#aborted;
  }

  get reason() {
    return this.#reason;
  }

  throwIfAborted() {
    if (this.#aborted) throw this.#reason;
  }

  get onabort() {
    return this.#onabort;
  }

  set onabort(callback) {
    this.#onabort = typeof callback === "function" ? callback : null;
  }

  // Options such as `once` change nothing: a signal aborts only once, so every listener
  // runs at most once.
  addEventListener(type, callback) {
    if (type !== "abort" || typeof callback !== "function" || this.#aborted) return;
    if (!this.#listeners.includes(callback)) this.#listeners.push(callback);
  }

  removeEventListener(type, callback) {
    if (type === "abort") this.#listeners = this.#listeners.filter((listener) => listener !== callback);
  }

  get [Symbol.toStringTag]() {
    return "AbortSignal";
  }
}

export class AbortController {
  #signal = new AbortSignal(INTERNAL);

  get signal() {
    return this.#signal;
  }

  abort(reason) {
    signalAbort(this.#signal, reason);
  }

  get [Symbol.toStringTag]() {
    return "AbortController";
  }
}
