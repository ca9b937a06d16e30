//! The chat app: `messages:send`, `messages:list` and `messages:paginate` over the table
//! `messages`, through its index `by_channel = ["channel"]` (see `components/kiln.toml`).

use kiln::{
    Document, Error, Id, MutationCtx, PaginationOpts, PaginationResult, QueryCtx, mutation, query,
};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, kiln::Validate)]
struct Send {
    channel: String,
    author: String,
    body: String,
}

/// Stores a message and returns its id.
#[mutation]
fn send(ctx: &MutationCtx, args: Send) -> Result<Id, Error> {
    ctx.db.insert("messages", &args)
}

#[derive(Deserialize, kiln::Validate)]
struct List {
    channel: String,
}

/// The channel's messages, oldest first.
#[query]
fn list(ctx: &QueryCtx, args: List) -> Result<Vec<Document>, Error> {
    ctx.db
        .query("messages")
        .with_index("by_channel", |q| q.eq("channel", &args.channel))
        .collect()
}

#[derive(Deserialize, kiln::Validate)]
#[serde(rename_all = "camelCase")]
struct Paginate {
    channel: String,
    pagination_opts: PaginationOpts,
}

/// One page of the channel's messages, oldest first, in Convex's pagination shape.
#[query]
fn paginate(ctx: &QueryCtx, args: Paginate) -> Result<PaginationResult, Error> {
    ctx.db
        .query("messages")
        .with_index("by_channel", |q| q.eq("channel", &args.channel))
        .paginate(&args.pagination_opts)
}
