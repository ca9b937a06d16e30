// Tests of src/web: bundled as build.mjs bundles the environment (esbuild, IIFE, platform
// browser) and run in a bare vm context, which like QuickJS has only the language's own
// builtins (plus atob/btoa, which javy adds), with a mock host.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";
import vm from "node:vm";
import { build } from "esbuild";

const { outputFiles } = await build({
  entryPoints: [new URL("../src/web/index.js", import.meta.url).pathname],
  bundle: true,
  write: false,
  format: "iife",
  globalName: "KilnWeb",
  platform: "browser",
  target: "es2022",
  logLevel: "warning",
});
const bundle = outputFiles[0].text;

// A fresh runtime: `respond(request)` plays the host's fetch. Returns `run(code)`, which
// runs `code` as the body of an async function in the runtime and gives its result
// through JSON (so values from the runtime's realm compare as plain data), plus the
// requests the host was asked to fetch.
function runtime(respond = () => ({ status: 200, url: "", redirected: false, headers: [], body: "" })) {
  const context = vm.createContext({ atob, btoa });
  vm.runInContext(bundle, context);
  const ContextUint8Array = vm.runInContext("Uint8Array", context);
  const ContextError = vm.runInContext("Error", context);
  const fetched = [];
  context.host = {
    fetch(request) {
      fetched.push({
        ...request,
        headers: Array.from(request.headers, ([name, value]) => [name, value]),
        body: request.body && Buffer.from(request.body).toString(),
      });
      const reply = respond(request);
      if (reply instanceof Error) throw new ContextError(reply.message);
      return { ...reply, body: new ContextUint8Array(Buffer.from(reply.body)) };
    },
    randomBytes: (n) => new ContextUint8Array(randomBytes(n)),
    digest: (algorithm, bytes) =>
      new ContextUint8Array(createHash(algorithm.replace("-", "").toLowerCase()).update(bytes).digest()),
  };
  vm.runInContext("KilnWeb.installWebGlobals(globalThis, host); delete globalThis.host;", context);
  const run = async (code) => {
    const json = await vm.runInContext(`(async () => { ${code} })().then((v) => JSON.stringify(v))`, context);
    return json === undefined ? undefined : JSON.parse(json);
  };
  return { run, fetched };
}

test("globals are installed, not enumerable", async () => {
  const { run } = runtime();
  const names = await run(`
    const names = ["URL", "URLSearchParams", "Headers", "Request", "Response", "Blob", "File",
      "FormData", "TextEncoder", "TextDecoder", "crypto", "structuredClone", "AbortController",
      "AbortSignal", "fetch", "DOMException"];
    return names.map((name) => {
      const d = Object.getOwnPropertyDescriptor(globalThis, name);
      return [name, typeof d.value, d.enumerable, d.writable, d.configurable];
    });`);
  for (const [name, type, enumerable, writable, configurable] of names) {
    assert.ok(type === "function" || (name === "crypto" && type === "object"), name);
    assert.deepEqual([enumerable, writable, configurable], [false, true, true], name);
  }
});

test("Headers: case-insensitive, combined, sorted, validated", async () => {
  const { run } = runtime();
  const result = await run(`
    const h = new Headers({ "X-B": "1", "content-type": "text/plain" });
    h.append("x-b", " 2 ");
    h.append("Set-Cookie", "a=1");
    h.append("set-cookie", "b=2");
    h.append("A-First", "z");
    const errors = [];
    for (const bad of [() => h.append("bad name", "v"), () => h.set("x", "a\\nb"), () => h.get("é"),
                       () => h.append("x", "\\u0100"), () => new Headers([["only-one"]])]) {
      try { bad(); errors.push("no error"); } catch (e) { errors.push(e.name); }
    }
    h.set("X-b", "3");
    return {
      get: h.get("X-B"), missing: h.get("nope"), has: h.has("CONTENT-TYPE"),
      cookies: h.getSetCookie(), entries: [...h], keys: [...h.keys()], errors,
      copy: [...new Headers(h)].length,
    };`);
  assert.equal(result.get, "3");
  assert.equal(result.missing, null);
  assert.equal(result.has, true);
  assert.deepEqual(result.cookies, ["a=1", "b=2"]);
  assert.deepEqual(result.entries, [
    ["a-first", "z"],
    ["content-type", "text/plain"],
    ["set-cookie", "a=1"],
    ["set-cookie", "b=2"],
    ["x-b", "3"],
  ]);
  assert.deepEqual(result.keys, ["a-first", "content-type", "set-cookie", "set-cookie", "x-b"]);
  assert.deepEqual(result.errors, ["TypeError", "TypeError", "TypeError", "TypeError", "TypeError"]);
  assert.equal(result.copy, 5);
  const combined = await run(`const h = new Headers([["Accept", "a"], ["accept", "b"]]); return h.get("ACCEPT");`);
  assert.equal(combined, "a, b");
});

test("Request: URL, method, headers, body", async () => {
  const { run } = runtime();
  const result = await run(`
    const r = new Request("https://example.com/a/../b?x=1#frag", {
      method: "post", headers: { "X-Test": "yes" }, body: "hello",
    });
    const copy = new Request(r, { method: "put" });
    const errors = [];
    for (const bad of [() => new Request("/relative"), () => new Request("https://a.b", { method: "GET", body: "x" }),
                       () => new Request("https://a.b", { method: "CONNECT" }), () => new Request("https://u:p@a.b"),
                       () => new Request("https://a.b", { redirect: "nope" })]) {
      try { bad(); errors.push("no error"); } catch (e) { errors.push(e.name); }
    }
    return {
      url: r.url, method: r.method, patch: new Request("https://a.b", { method: "patch" }).method,
      type: r.headers.get("content-type"), test: r.headers.get("x-test"), redirect: r.redirect,
      aborted: r.signal.aborted, sourceUsed: r.bodyUsed, copyMethod: copy.method, copyText: await copy.text(),
      fromUrl: new Request(new URL("https://a.b/c")).url, errors,
    };`);
  assert.equal(result.url, "https://example.com/b?x=1#frag");
  assert.equal(result.method, "POST");
  assert.equal(result.patch, "patch");
  assert.equal(result.type, "text/plain;charset=UTF-8");
  assert.equal(result.test, "yes");
  assert.equal(result.redirect, "follow");
  assert.equal(result.aborted, false);
  assert.equal(result.sourceUsed, true, "the new request took the body");
  assert.equal(result.copyMethod, "PUT");
  assert.equal(result.copyText, "hello");
  assert.equal(result.fromUrl, "https://a.b/c");
  assert.deepEqual(result.errors, ["TypeError", "TypeError", "TypeError", "TypeError", "TypeError"]);
});

test("Request signal follows its init signal", async () => {
  const { run } = runtime();
  const result = await run(`
    const controller = new AbortController();
    const request = new Request("https://a.b", { signal: controller.signal });
    let heard = 0;
    request.signal.addEventListener("abort", () => heard++);
    controller.abort();
    let error;
    try { await fetch(request); } catch (e) { error = e.name; }
    return { aborted: request.signal.aborted, reason: request.signal.reason.name, heard, error,
             givenReason: AbortSignal.abort("why").reason };`);
  assert.deepEqual(result, { aborted: true, reason: "AbortError", heard: 1, error: "AbortError", givenReason: "why" });
});

test("Response bodies: text, json, arrayBuffer, bytes, blob, bodyUsed, clone", async () => {
  const { run } = runtime();
  const result = await run(`
    const r = new Response('{"a":[1,2]}', { status: 201, statusText: "Created", headers: { "X-A": "1" } });
    const clone = r.clone();
    const json = await r.json();
    let second;
    try { await r.text(); } catch (e) { second = e.name; }
    const buffer = await clone.arrayBuffer();
    const empty = new Response(null);
    const bytes = await new Response(new Uint8Array([104, 105])).bytes();
    const blob = await new Response("x", { headers: { "content-type": "text/x" } }).blob();
    const view = new DataView(new Uint8Array([0, 65, 66, 0]).buffer, 1, 2);
    return {
      json, second, used: r.bodyUsed, cloneUsed: clone.bodyUsed, status: r.status, ok: r.ok,
      statusText: r.statusText, type: r.headers.get("content-type"), bufferLength: buffer.byteLength,
      bufferIsArrayBuffer: buffer instanceof ArrayBuffer, emptyBody: empty.body, emptyText: await empty.text(),
      emptyUsed: empty.bodyUsed, bytes: [...bytes], blob: [blob.type, await blob.text()],
      view: await new Response(view).text(), fromBlob: await new Response(new Blob(["b"])).text(),
      defaultStatus: new Response().status,
    };`);
  assert.deepEqual(result.json, { a: [1, 2] });
  assert.equal(result.second, "TypeError");
  assert.equal(result.used, true);
  assert.equal(result.cloneUsed, true);
  assert.equal(result.status, 201);
  assert.equal(result.ok, true);
  assert.equal(result.statusText, "Created");
  assert.equal(result.type, "text/plain;charset=UTF-8");
  assert.equal(result.bufferLength, 11);
  assert.equal(result.bufferIsArrayBuffer, true);
  assert.equal(result.emptyBody, null);
  assert.equal(result.emptyText, "");
  assert.equal(result.emptyUsed, false);
  assert.deepEqual(result.bytes, [104, 105]);
  assert.deepEqual(result.blob, ["text/x", "x"]);
  assert.equal(result.view, "AB");
  assert.equal(result.fromBlob, "b");
  assert.equal(result.defaultStatus, 200);
});

test("Response: invalid inits, json, redirect, error", async () => {
  const { run } = runtime();
  const result = await run(`
    const errors = [];
    for (const bad of [() => new Response("x", { status: 204 }), () => new Response(null, { status: 99 }),
                       () => Response.json(undefined), () => Response.redirect("https://a.b", 200),
                       () => Response.redirect("/relative")]) {
      try { bad(); errors.push("no error"); } catch (e) { errors.push(e.name); }
    }
    const json = Response.json({ b: true }, { status: 400 });
    const redirect = Response.redirect("https://a.b/x", 307);
    let immutable;
    try { redirect.headers.set("x", "y"); } catch (e) { immutable = e.name; }
    const error = Response.error();
    return {
      errors, json: [json.status, json.headers.get("content-type"), await json.text()],
      redirect: [redirect.status, redirect.headers.get("location")], immutable,
      error: [error.type, error.status, error.ok],
    };`);
  assert.deepEqual(result.errors, ["TypeError", "RangeError", "TypeError", "RangeError", "TypeError"]);
  assert.deepEqual(result.json, [400, "application/json", '{"b":true}']);
  assert.deepEqual(result.redirect, [307, "https://a.b/x"]);
  assert.equal(result.immutable, "TypeError");
  assert.deepEqual(result.error, ["error", 0, false]);
});

test("body streams: getReader and async iteration", async () => {
  const { run } = runtime();
  const result = await run(`
    const r = new Response("chunk");
    const reader = r.body.getReader();
    let locked;
    try { await r.text(); } catch (e) { locked = e.name; }
    const first = await reader.read();
    const second = await reader.read();
    const chunks = [];
    for await (const chunk of new Response("abc").body) chunks.push(chunk.length);
    const piped = await new Response(new Response("passed").body).text();
    return { locked, first: [first.done, first.value.length], second: second.done, used: r.bodyUsed, chunks, piped,
             blob: (await new Blob(["q"]).stream().getReader().read()).value.length };`);
  assert.deepEqual(result, {
    locked: "TypeError",
    first: [false, 5],
    second: true,
    used: true,
    chunks: [3],
    piped: "passed",
    blob: 1,
  });
});

test("FormData: urlencoded and multipart bodies", async () => {
  const { run } = runtime();
  const result = await run(`
    const form = new FormData();
    form.append("name", "Ada");
    form.append("file", new Blob(["contents"], { type: "text/plain" }), "a.txt");
    form.append("name", "Grace");
    const request = new Request("https://a.b", { method: "POST", body: form });
    const type = request.headers.get("content-type");
    const parsed = await request.formData();
    const file = parsed.get("file");
    const urlencoded = await new Response(new URLSearchParams({ a: "1", b: "x y" })).formData();
    return {
      multipart: type.startsWith("multipart/form-data; boundary="), names: parsed.getAll("name"),
      file: [file instanceof File, file.name, file.type, await file.text()],
      urlencoded: [...urlencoded], keys: [...form.keys()],
    };`);
  assert.equal(result.multipart, true);
  assert.deepEqual(result.names, ["Ada", "Grace"]);
  assert.deepEqual(result.file, [true, "a.txt", "text/plain", "contents"]);
  assert.deepEqual(result.urlencoded, [
    ["a", "1"],
    ["b", "x y"],
  ]);
  assert.deepEqual(result.keys, ["name", "file", "name"]);
});

test("FormData: multipart bodies agree with Node's own", async () => {
  const nodeForm = new globalThis.FormData();
  nodeForm.append("text", "line 1\nline \"2\" é");
  nodeForm.append("upload", new globalThis.Blob(["\u0000binary"], { type: "application/x-thing" }), "ü.bin");
  const nodeRequest = new globalThis.Request("https://a.b", { method: "POST", body: nodeForm });
  const type = nodeRequest.headers.get("content-type");
  const body = Buffer.from(await nodeRequest.arrayBuffer()).toString("base64");
  const { run } = runtime();
  const ours = await run(`
    const bytes = Uint8Array.from(atob(${JSON.stringify(body)}), (c) => c.charCodeAt(0));
    const request = KilnWeb.requestFromParts({ method: "POST", url: "https://a.b/", headers: [["content-type", ${JSON.stringify(type)}]], body: bytes });
    const parsed = await request.formData();
    const file = parsed.get("upload");
    const form = new FormData();
    form.append("text", "a\\r\\nb \\"q\\" é");
    form.append("upload", new File(["\\u0000x"], "ü.bin", { type: "application/x-thing" }));
    const response = new Response(form);
    const out = await response.bytes();
    return { text: parsed.get("text"), file: [file.name, file.type, await file.text()],
             type: response.headers.get("content-type"), body: btoa(String.fromCharCode(...out)) };`);
  assert.equal(ours.text, "line 1\r\nline \"2\" é");
  assert.deepEqual(ours.file, ["ü.bin", "application/x-thing", "\u0000binary"]);
  const parsed = await new globalThis.Response(Buffer.from(ours.body, "base64"), {
    headers: { "content-type": ours.type },
  }).formData();
  assert.equal(parsed.get("text"), "a\r\nb \"q\" é");
  const file = parsed.get("upload");
  assert.deepEqual([file.name, file.type, await file.text()], ["ü.bin", "application/x-thing", "\u0000x"]);
});

test("requestFromParts and partsFromResponse", async () => {
  const { run } = runtime();
  const result = await run(`
    const request = KilnWeb.requestFromParts({
      method: "POST", url: "https://site.example/api?q=1",
      headers: [["Content-Type", "application/json"], ["X-Many", "a"], ["x-many", "b"]],
      body: new TextEncoder().encode('{"n":1}'),
    });
    const body = await request.json();
    const response = new Response("ok", { status: 202, statusText: "Accepted", headers: [["Set-Cookie", "a=1"], ["Set-Cookie", "b=2"]] });
    const parts = KilnWeb.partsFromResponse(response);
    let notResponse;
    try { KilnWeb.partsFromResponse({ status: 200 }); } catch (e) { notResponse = e.message; }
    const empty = KilnWeb.partsFromResponse(new Response(null, { status: 204 }));
    return {
      method: request.method, url: request.url, many: request.headers.get("x-many"), body,
      parts: { ...parts, body: new TextDecoder().decode(parts.body) }, used: response.bodyUsed, notResponse,
      empty: [empty.status, empty.body instanceof Uint8Array, empty.body.length],
      getWithBody: await KilnWeb.requestFromParts({ method: "GET", url: "https://a.b/", headers: [], body: new Uint8Array([120]) }).text(),
    };`);
  assert.equal(result.method, "POST");
  assert.equal(result.url, "https://site.example/api?q=1");
  assert.equal(result.many, "a, b");
  assert.deepEqual(result.body, { n: 1 });
  assert.deepEqual(result.parts, {
    status: 202,
    statusText: "Accepted",
    headers: [
      ["Set-Cookie", "a=1"],
      ["Set-Cookie", "b=2"],
      ["content-type", "text/plain;charset=UTF-8"],
    ],
    body: "ok",
  });
  assert.equal(result.used, true);
  assert.equal(result.notResponse, "HTTP actions must return a Response");
  assert.deepEqual(result.empty, [204, true, 0]);
  assert.equal(result.getWithBody, "x");
});

test("fetch: success", async () => {
  const { run, fetched } = runtime((request) => ({
    status: 200,
    url: request.url + "/final",
    redirected: true,
    headers: [
      ["Content-Type", "application/json"],
      ["X-Reply", "1"],
    ],
    body: '{"ok":true}',
  }));
  const result = await run(`
    const promise = fetch("https://api.example/x#frag", { method: "POST", headers: { Authorization: "Bearer t" }, body: "ping" });
    const response = await promise;
    let immutable;
    try { response.headers.set("x", "y"); } catch (e) { immutable = e.name; }
    return { isPromise: promise instanceof Promise, status: response.status, ok: response.ok, type: response.type,
             url: response.url, redirected: response.redirected, json: await response.json(), immutable,
             reply: response.headers.get("x-reply") };`);
  assert.deepEqual(result, {
    isPromise: true,
    status: 200,
    ok: true,
    type: "basic",
    url: "https://api.example/x/final",
    redirected: true,
    json: { ok: true },
    immutable: "TypeError",
    reply: "1",
  });
  assert.deepEqual(fetched, [
    {
      method: "POST",
      url: "https://api.example/x",
      headers: [
        ["Authorization", "Bearer t"],
        ["content-type", "text/plain;charset=UTF-8"],
      ],
      body: "ping",
      redirect: "follow",
    },
  ]);
});

test("fetch: host errors", async () => {
  let reply;
  const { run } = runtime(() => reply);
  const failure = `
    const promise = fetch("https://down.example", { redirect: "manual" });
    try { await promise; return "resolved"; } catch (e) { return [e.name, e.message, e instanceof TypeError]; }`;
  reply = new Error("fetch failed: connection refused");
  assert.deepEqual(await run(failure), ["TypeError", "fetch failed: connection refused", true]);
  reply = new Error("fetch refused: private address");
  assert.deepEqual(await run(failure), ["TypeError", "fetch refused: private address", true]);
  reply = new Error("Can't use fetch() in queries and mutations.");
  assert.deepEqual(await run(failure), ["Error", "Can't use fetch() in queries and mutations.", false]);
  // An invalid URL rejects rather than throwing.
  assert.equal(await run(`const p = fetch("/relative"); return await p.then(() => "resolved", (e) => e.name);`), "TypeError");
});

test("URL and URLSearchParams", async () => {
  const { run } = runtime();
  const result = await run(`
    const url = new URL("https://a.b/c?d=1#e");
    const relative = new URL("../x?y=2", "https://host.example/p/q/r");
    const params = new URLSearchParams("a=1&b=2&a=3");
    params.append("c", "x y&z");
    params.sort();
    url.searchParams.set("d", "2");
    let invalid;
    try { new URL("nope"); } catch (e) { invalid = e.name; }
    return { d: new URL("https://a.b/c?d=1#e").searchParams.get("d"), href: url.href, relative: relative.href,
             host: relative.host, params: params.toString(), all: params.getAll("a"), invalid,
             idn: new URL("https://MÜNCHEN.de/").hostname };`);
  assert.deepEqual(result, {
    d: "1",
    href: "https://a.b/c?d=2#e",
    relative: "https://host.example/p/x?y=2",
    host: "host.example",
    params: "a=1&a=3&b=2&c=x+y%26z",
    all: ["1", "3"],
    invalid: "TypeError",
    idn: "xn--mnchen-3ya.de",
  });
});

test("TextEncoder and TextDecoder", async () => {
  const { run } = runtime();
  const result = await run(`
    const text = "aé€😀\\ud800z";
    const bytes = new TextEncoder().encode(text);
    const target = new Uint8Array(5);
    const into = new TextEncoder().encodeInto("a😀b", target);
    const streaming = new TextDecoder();
    const emoji = new TextEncoder().encode("😀");
    const parts = streaming.decode(emoji.subarray(0, 1), { stream: true }) + streaming.decode(emoji.subarray(1, 3), { stream: true }) + streaming.decode(emoji.subarray(3));
    let fatal;
    try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff])); } catch (e) { fatal = e.name; }
    let label;
    try { new TextDecoder("latin2"); } catch (e) { label = e.name; }
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, 0x68]);
    return {
      bytes: [...bytes], roundTrip: new TextDecoder().decode(bytes), into, target: [...target], parts, fatal, label,
      invalid: new TextDecoder().decode(new Uint8Array([0x61, 0xf0, 0x9f, 0x62, 0xc0])),
      bom: new TextDecoder().decode(bom).length, keepBom: new TextDecoder("utf8", { ignoreBOM: true }).decode(bom).length,
      encoding: new TextDecoder().encoding, attrs: [new TextDecoder("UTF-8", { fatal: true }).fatal, new TextDecoder().ignoreBOM],
      long: new TextDecoder().decode(new TextEncoder().encode("é".repeat(20000) + "x".repeat(20000))).length,
    };`);
  assert.deepEqual(result.bytes, [...Buffer.from("aé€😀\ufffdz")]);
  assert.equal(result.roundTrip, "aé€😀\ufffdz");
  assert.deepEqual(result.into, { read: 3, written: 5 });
  assert.deepEqual(result.target, [0x61, 0xf0, 0x9f, 0x98, 0x80]);
  assert.equal(result.parts, "😀");
  assert.equal(result.fatal, "TypeError");
  assert.equal(result.label, "RangeError");
  assert.equal(result.invalid, "a\ufffdb\ufffd");
  assert.equal(result.bom, 1);
  assert.equal(result.keepBom, 2);
  assert.equal(result.encoding, "utf-8");
  assert.deepEqual(result.attrs, [true, false]);
  assert.equal(result.long, 40000);
});

test("TextDecoder replaces invalid UTF-8 as Node's does", async () => {
  const cases = [
    [0xed, 0xa0, 0x80],
    [0xc0, 0x80],
    [0xe0, 0x80, 0x80],
    [0xf4, 0x90, 0x80, 0x80],
    [0x61, 0xf0, 0x9f, 0x98],
    [0xef, 0xbf, 0xbe],
    [0xc1, 0xbf, 0x62],
    [0xf8, 0x88, 0x80, 0x80, 0x80],
    [0xe2, 0x82, 0x41, 0xe2, 0x82, 0xac],
    [0x25, 0x32, 0x30, 0x80],
  ];
  const { run } = runtime();
  const ours = await run(`return ${JSON.stringify(cases)}.map((bytes) => new TextDecoder().decode(new Uint8Array(bytes)));`);
  assert.deepEqual(
    ours,
    cases.map((bytes) => new globalThis.TextDecoder().decode(new Uint8Array(bytes))),
  );
});

test("crypto: getRandomValues, randomUUID, subtle.digest", async () => {
  const { run } = runtime();
  const result = await run(`
    const toHex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
    const abc = new TextEncoder().encode("abc");
    const values = crypto.getRandomValues(new Uint32Array(4));
    const errors = [];
    for (const bad of [() => crypto.getRandomValues(new Uint8Array(65537)), () => crypto.getRandomValues(new Float32Array(1))]) {
      try { bad(); errors.push("no error"); } catch (e) { errors.push(e.name); }
    }
    const rejections = [];
    for (const call of [() => crypto.subtle.digest("MD5", abc), () => crypto.subtle.sign("HMAC", null, abc)]) {
      const p = call();
      rejections.push(await p.then(() => "resolved", (e) => [e.name, e.message, e instanceof Error]));
    }
    return {
      uuids: [crypto.randomUUID(), crypto.randomUUID()], sameArray: values instanceof Uint32Array, errors, rejections,
      sha256: toHex(await crypto.subtle.digest("SHA-256", abc)),
      sha1: toHex(await crypto.subtle.digest({ name: "sha-1" }, abc.buffer)),
      sha512: (await crypto.subtle.digest("sha-512", new DataView(abc.buffer))).byteLength,
    };`);
  for (const uuid of result.uuids) {
    assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  }
  assert.notEqual(result.uuids[0], result.uuids[1]);
  assert.equal(result.sameArray, true);
  assert.deepEqual(result.errors, ["QuotaExceededError", "TypeMismatchError"]);
  assert.equal(result.rejections[0][0], "NotSupportedError");
  assert.deepEqual(result.rejections[1], ["NotSupportedError", "crypto.subtle.sign is not supported by Kiln yet", true]);
  assert.equal(result.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(result.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d");
  assert.equal(result.sha512, 64);
});

test("structuredClone", async () => {
  const { run } = runtime();
  const result = await run(`
    const date = new Date(1700000000000);
    const shared = { n: 1n.toString() };
    const value = { map: new Map([["k", { date }]]), set: new Set([1, shared]), shared, nested: { list: [1, , shared] },
                    bytes: new Uint8Array([1, 2, 3]).subarray(1), error: new RangeError("boom"), re: /a+/gi };
    value.self = value;
    const copy = structuredClone(value);
    let fn;
    try { structuredClone({ f() {} }); } catch (e) { fn = e.name; }
    const blob = structuredClone(new Blob(["zz"], { type: "text/zz" }));
    return {
      distinct: copy !== value && copy.map !== value.map, mapIsMap: copy.map instanceof Map, setIsSet: copy.set instanceof Set,
      dateIsDate: copy.map.get("k").date instanceof Date, time: copy.map.get("k").date.getTime(),
      sharedKept: copy.set.has(copy.shared) && copy.nested.list[2] === copy.shared, cycle: copy.self === copy,
      hole: !(1 in copy.nested.list), bytes: [copy.bytes instanceof Uint8Array, [...copy.bytes], copy.bytes.byteOffset],
      error: [copy.error instanceof RangeError, copy.error.message], re: [copy.re.source, copy.re.flags], fn,
      blob: [blob instanceof Blob, blob.type, await blob.text()],
    };`);
  assert.deepEqual(result, {
    distinct: true,
    mapIsMap: true,
    setIsSet: true,
    dateIsDate: true,
    time: 1700000000000,
    sharedKept: true,
    cycle: true,
    hole: true,
    bytes: [true, [2, 3], 1],
    error: [true, "boom"],
    re: ["a+", "gi"],
    fn: "DataCloneError",
    blob: [true, "text/zz", "zz"],
  });
});

test("Blob and File", async () => {
  const { run } = runtime();
  const result = await run(`
    const blob = new Blob(["héllo", new Uint8Array([33]), new Blob([" there"])], { type: "Text/Plain" });
    const slice = blob.slice(1, -3, "x/y");
    const file = new File(["data"], "f.txt", { type: "text/plain", lastModified: 42 });
    let notSequence;
    try { new Blob("abc"); } catch (e) { notSequence = e.name; }
    return {
      size: blob.size, type: blob.type, text: await blob.text(), buffer: (await blob.arrayBuffer()).byteLength,
      slice: [await slice.text(), slice.type, slice.size], negative: await blob.slice(-5).text(),
      file: [file instanceof Blob, file.name, file.lastModified, file.size, await file.text()], notSequence,
      tag: Object.prototype.toString.call(blob),
    };`);
  assert.deepEqual(result, {
    size: 13,
    type: "text/plain",
    text: "héllo! there",
    buffer: 13,
    slice: ["éllo! th", "x/y", 9],
    negative: "there",
    file: [true, "f.txt", 42, 4, "data"],
    notSequence: "TypeError",
    tag: "[object Blob]",
  });
});
