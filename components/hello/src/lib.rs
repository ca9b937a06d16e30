//! The demo module: `hello`, `hello:greet`, `hello:echo`, `hello:shout`, the internal
//! `hello:secret`, and `hello:whoami`.

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

/// The caller's identity in Convex's JSON shape (`tokenIdentifier`, `issuer`, `subject`,
/// `givenName`, ..., and the custom claims), or null for a request without one.
#[query]
fn whoami(ctx: &QueryCtx) -> Result<Option<kiln::UserIdentity>, Error> {
    Ok(ctx.auth().get_user_identity())
}
