//! The demo module: `hello`, `hello:greet`, `hello:echo`, `hello:shout`, the internal
//! `hello:secret`, `hello:fetch`, `hello:whoami`, and the HTTP actions `GET /hello` and
//! `POST /echo`.

use kiln::{ActionCtx, Error, MutationCtx, QueryCtx, Value, action, mutation, query};
use serde::Deserialize;

/// `hello` (the module's default function): a constant greeting.
#[query]
fn default(_ctx: &QueryCtx) -> Result<String, Error> {
    Ok("hello".to_string())
}

#[derive(Deserialize, kiln::Validate)]
struct Greet {
    name: String,
}

#[query]
fn greet(_ctx: &QueryCtx, args: Greet) -> Result<String, Error> {
    Ok(format!("Hello, {}!", args.name))
}

#[derive(Deserialize, kiln::Validate)]
struct Echo {
    value: Value,
}

/// Returns its argument unchanged: every Convex type, Int64 and bytes included.
#[mutation]
fn echo(_ctx: &MutationCtx, args: Echo) -> Result<Value, Error> {
    Ok(args.value)
}

#[derive(Deserialize, kiln::Validate)]
struct Shout {
    text: String,
}

#[action]
fn shout(ctx: &ActionCtx, args: Shout) -> Result<String, Error> {
    ctx.log(format!("shouting {} characters", args.text.chars().count()));
    Ok(args.text.to_uppercase())
}

/// Only callable with the admin key (or, later, from other functions).
#[query(internal)]
fn secret(_ctx: &QueryCtx) -> Result<String, Error> {
    Ok("secret".to_string())
}

/// HTTP action `GET /hello?name=x`: `{"hello": x}`.
#[kiln::http_action(method = "GET", path = "/hello")]
fn hello_route(
    _ctx: &kiln::ActionCtx,
    request: kiln::HttpRequest,
) -> Result<kiln::HttpResponse, Error> {
    let name = request.query("name").unwrap_or_default();
    kiln::HttpResponse::json(200, &std::collections::BTreeMap::from([("hello", name)]))
}

/// HTTP action `POST /echo`: the same body bytes, with the same content type.
#[kiln::http_action(method = "POST", path = "/echo")]
fn echo_route(
    _ctx: &kiln::ActionCtx,
    request: kiln::HttpRequest,
) -> Result<kiln::HttpResponse, Error> {
    let mut response = kiln::HttpResponse::new(200);
    if let Some(content_type) = request.header("content-type") {
        response = response.header("content-type", content_type);
    }
    Ok(response.body(request.body))
}

#[derive(Deserialize, kiln::Validate)]
struct Fetch {
    url: String,
}

#[derive(serde::Serialize, kiln::Validate)]
struct Fetched {
    /// A plain number, as `Response.status` is in JavaScript.
    status: f64,
    body: String,
}

/// `hello:fetch`: GETs `url` (through the server's fetch policy) and returns its status
/// and its body as text.
#[action]
fn fetch(ctx: &ActionCtx, args: Fetch) -> Result<Fetched, Error> {
    let response = ctx.fetch(args.url)?;
    let status = f64::from(response.status());
    Ok(Fetched {
        status,
        body: response.text()?,
    })
}

/// The caller's identity in Convex's JSON shape (`tokenIdentifier`, `issuer`, `subject`,
/// `givenName`, ..., and the custom claims), or null for a request without one. Its
/// custom claims are any object, so the return value is not validated.
#[query(unchecked(returns))]
fn whoami(ctx: &QueryCtx) -> Result<Option<kiln::UserIdentity>, Error> {
    Ok(ctx.auth().get_user_identity())
}
