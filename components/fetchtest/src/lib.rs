//! Outbound HTTP from every kind of function, for the end-to-end tests: `kiln:platform/http`
//! through the SDK (from a query, a mutation and actions), and `wasi:http/outgoing-handler`
//! called directly through raw bindings, as a standard wasi-http client would (from a
//! query and an action). Numbers are plain JSON numbers.

use kiln::http::{Redirect, Request};
use kiln::{ActionCtx, Error, MutationCtx, QueryCtx, action, mutation, query};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, kiln::Validate)]
struct Url {
    url: String,
}

/// A query may not fetch: the host refuses it.
#[query]
fn kiln_query(_ctx: &QueryCtx, args: Url) -> Result<f64, Error> {
    Ok(f64::from(kiln::http::fetch(args.url)?.status()))
}

/// Nor may a mutation.
#[mutation]
fn kiln_mutation(_ctx: &MutationCtx, args: Url) -> Result<f64, Error> {
    Ok(f64::from(kiln::http::fetch(args.url)?.status()))
}

#[derive(Deserialize, kiln::Validate)]
struct Send {
    method: String,
    url: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    body: Option<String>,
    /// "follow" (default), "error" or "manual".
    redirect: Option<String>,
}

#[derive(Serialize, kiln::Validate)]
struct Received {
    status: f64,
    url: String,
    redirected: bool,
    headers: Vec<(String, String)>,
    body: String,
}

/// Any request, with the whole response.
#[action]
fn send(ctx: &ActionCtx, args: Send) -> Result<Received, Error> {
    let mut request =
        Request::new(args.method, args.url).redirect(match args.redirect.as_deref() {
            None | Some("follow") => Redirect::Follow,
            Some("error") => Redirect::Error,
            Some("manual") => Redirect::Manual,
            Some(other) => return Err(Error::new(format!("unknown redirect mode {other}"))),
        });
    for (name, value) in args.headers {
        request = request.header(name, value);
    }
    if let Some(body) = args.body {
        request = request.body(body);
    }
    let response = ctx.fetch(request)?;
    Ok(Received {
        status: f64::from(response.status()),
        url: response.url().to_string(),
        redirected: response.redirected(),
        headers: response.headers().to_vec(),
        body: response.text()?,
    })
}

#[derive(Deserialize, kiln::Validate)]
struct Chunks {
    url: String,
    max: f64,
}

#[derive(Serialize, kiln::Validate)]
struct ChunkReport {
    chunks: f64,
    largest: f64,
    total: f64,
}

/// Reads a body `max` bytes at a time and reports the chunks it got.
#[action]
fn chunks(ctx: &ActionCtx, args: Chunks) -> Result<ChunkReport, Error> {
    let mut response = ctx.fetch(args.url)?;
    let (mut chunks, mut largest, mut total) = (0usize, 0usize, 0usize);
    while let Some(chunk) = response.chunk(args.max as u32)? {
        chunks += 1;
        largest = largest.max(chunk.len());
        total += chunk.len();
    }
    Ok(ChunkReport {
        chunks: chunks as f64,
        largest: largest as f64,
        total: total as f64,
    })
}

#[derive(Deserialize, kiln::Validate)]
struct Hold {
    url: String,
    count: f64,
}

/// Opens `count` responses at once without reading them; returns how many it opened.
#[action]
fn hold(ctx: &ActionCtx, args: Hold) -> Result<f64, Error> {
    let mut open = Vec::new();
    for _ in 0..args.count as usize {
        open.push(ctx.fetch(args.url.as_str())?);
    }
    Ok(open.len() as f64)
}

/// `wasi:http` from a query: refused by the same rule as `fetch`.
#[query]
fn wasi_query(_ctx: &QueryCtx, args: Url) -> Result<WasiReceived, Error> {
    wasi_get(&args.url).map_err(Error::new)
}

/// `wasi:http` from an action: under the same policy as `fetch`.
#[action]
fn wasi_action(_ctx: &ActionCtx, args: Url) -> Result<WasiReceived, Error> {
    wasi_get(&args.url).map_err(Error::new)
}

#[derive(Serialize, kiln::Validate)]
struct WasiReceived {
    status: f64,
    body: String,
}

/// A GET through `wasi:http/outgoing-handler`, as a wasi-http client library does it.
fn wasi_get(url: &str) -> Result<WasiReceived, String> {
    use wasi::http::outgoing_handler;
    use wasi::http::types::{Fields, IncomingBody, OutgoingRequest, Scheme};
    use wasi::io::streams::StreamError;

    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("not an absolute URL: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let scheme = match scheme {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        other => Scheme::Other(other.to_string()),
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| "bad scheme")?;
    request
        .set_authority(Some(authority))
        .map_err(|()| "bad authority")?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| "bad path")?;
    let future =
        outgoing_handler::handle(request, None).map_err(|err| format!("wasi:http: {err:?}"))?;
    future.subscribe().block();
    let response = future
        .get()
        .ok_or("the response is not ready")?
        .map_err(|()| "the response was already taken")?
        .map_err(|err| format!("wasi:http: {err:?}"))?;
    let status = f64::from(response.status());
    let body = response.consume().map_err(|()| "no body")?;
    let stream = body.stream().map_err(|()| "no body stream")?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 << 10) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(err)) => {
                return Err(format!("wasi:http body: {}", err.to_debug_string()));
            }
        }
    }
    drop(stream);
    drop(IncomingBody::finish(body));
    Ok(WasiReceived {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}
