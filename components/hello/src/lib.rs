//! The demo module: `hello`, `hello:greet`, `hello:echo`, `hello:shout`, the internal
//! `hello:secret`, and `hello:fetch`.

use kiln::{ActionCtx, Error, MutationCtx, QueryCtx, Value, action, mutation, query};
use serde::Deserialize;

/// `hello` (the module's default function): a constant greeting.
#[query]
fn default(_ctx: &QueryCtx) -> Result<String, Error> {
    Ok("hello".to_string())
}

#[derive(Deserialize)]
struct Greet {
    name: String,
}

#[query]
fn greet(_ctx: &QueryCtx, args: Greet) -> Result<String, Error> {
    Ok(format!("Hello, {}!", args.name))
}

#[derive(Deserialize)]
struct Echo {
    value: Value,
}

/// Returns its argument unchanged: every Convex type, Int64 and bytes included.
#[mutation]
fn echo(_ctx: &MutationCtx, args: Echo) -> Result<Value, Error> {
    Ok(args.value)
}

#[derive(Deserialize)]
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

#[derive(Deserialize)]
struct Fetch {
    url: String,
}

#[derive(serde::Serialize)]
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
