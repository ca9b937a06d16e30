//! The host side of the web APIs in `js/src/web/`: `fetch` on `kiln:platform/http` (under
//! the server's outbound policy; only actions may fetch), and the bytes behind `crypto`.

use javy::quickjs::{Array, Ctx, Object, TypedArray, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::bindings::kiln::platform::http::{self, RedirectMode, Request};
use crate::engine::{self, Phase};
use crate::errors;

/// How much of a response body one read asks for.
const READ_CHUNK: u32 = 64 << 10;

/// `host.fetch({method, url, headers, body, redirect})` → `{status, url, redirected,
/// headers, body}`, the whole body read.
pub(crate) fn fetch<'js>(ctx: Ctx<'js>, request: Object<'js>) -> rquickjs::Result<Object<'js>> {
    if engine::phase() != Phase::Calling {
        return Err(errors::throw(
            &ctx,
            "fetch() cannot run while modules load: the network is only reachable inside an action",
            None,
        ));
    }
    let headers: Vec<Vec<String>> = request.get("headers")?;
    let body: Option<TypedArray<u8>> = request.get("body")?;
    let redirect: String = request.get("redirect")?;
    let request = Request {
        method: request.get("method")?,
        url: request.get("url")?,
        headers: headers
            .into_iter()
            .filter_map(|pair| match <[String; 2]>::try_from(pair) {
                Ok([name, value]) => Some((name, value)),
                Err(_) => None,
            })
            .collect(),
        body: body.map(|body| body.as_bytes().unwrap_or_default().to_vec()),
        redirect: match redirect.as_str() {
            "error" => RedirectMode::Error,
            "manual" => RedirectMode::Manual,
            _ => RedirectMode::Follow,
        },
    };
    let response = http::fetch(&request).map_err(|message| errors::throw(&ctx, &message, None))?;
    let mut body = Vec::new();
    while let Some(chunk) = response
        .body
        .read(READ_CHUNK)
        .map_err(|message| errors::throw(&ctx, &message, None))?
    {
        body.extend_from_slice(&chunk);
    }
    let result = Object::new(ctx.clone())?;
    result.set("status", response.status)?;
    result.set("url", response.url)?;
    result.set("redirected", response.redirected)?;
    let headers = Array::new(ctx.clone())?;
    for (index, (name, value)) in response.headers.into_iter().enumerate() {
        headers.set(index, vec![name, value])?;
    }
    result.set("headers", headers)?;
    result.set("body", TypedArray::<u8>::new(ctx.clone(), body)?)?;
    Ok(result)
}

unsafe extern "C" {
    /// wasi-libc's, over `wasi:random/random` (seeded per call in queries and mutations).
    fn getentropy(buffer: *mut u8, length: usize) -> i32;
}

/// `host.randomBytes(n)`: n random bytes.
pub(crate) fn random_bytes<'js>(ctx: Ctx<'js>, length: usize) -> rquickjs::Result<Value<'js>> {
    let mut bytes = vec![0u8; length];
    // getentropy gives at most 256 bytes a call.
    for chunk in bytes.chunks_mut(256) {
        // SAFETY: `chunk` is valid for `chunk.len()` (≤ 256) bytes.
        let status = unsafe { getentropy(chunk.as_mut_ptr(), chunk.len()) };
        if status != 0 {
            return Err(errors::throw(&ctx, "the random source failed", None));
        }
    }
    Ok(TypedArray::<u8>::new(ctx, bytes)?.into_value())
}

/// `host.digest(algorithm, bytes)`: SHA-1 or SHA-2 of the bytes.
pub(crate) fn digest<'js>(
    ctx: Ctx<'js>,
    algorithm: String,
    bytes: TypedArray<'js, u8>,
) -> rquickjs::Result<Value<'js>> {
    let data = bytes.as_bytes().unwrap_or_default();
    let hash = match algorithm.as_str() {
        "SHA-1" => Sha1::digest(data).to_vec(),
        "SHA-256" => Sha256::digest(data).to_vec(),
        "SHA-384" => Sha384::digest(data).to_vec(),
        "SHA-512" => Sha512::digest(data).to_vec(),
        other => {
            return Err(errors::throw(
                &ctx,
                &format!("crypto.subtle.digest: unsupported algorithm {other:?}"),
                None,
            ));
        }
    };
    Ok(TypedArray::<u8>::new(ctx, hash)?.into_value())
}
