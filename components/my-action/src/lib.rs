//! The pattern of Convex's actions guide (`myAction.js`), in Rust: a public action that
//! reads through an internal query, calls a third-party API with fetch, and writes
//! through an internal mutation, defined in the same module. Clients can call `myAction` (its `default`) but not `readData` or
//! `writeData`.
//!
//! Data lives in the table `notes`: `{a, note}` documents.

use kiln::{ActionCtx, Error, MutationCtx, QueryCtx, action, mutation, query};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, kiln::Validate)]
struct Note {
    a: f64,
    note: String,
}

#[derive(Deserialize, Serialize, kiln::Validate)]
struct ReadData {
    a: f64,
}

/// The notes stored under `a`.
#[query(internal, name = "readData")]
fn read_data(ctx: &QueryCtx, args: ReadData) -> Result<Vec<String>, Error> {
    let notes: Vec<Note> = ctx
        .db
        .query("notes")
        .filter(|q| q.eq(q.field("a"), q.literal(args.a)))
        .collect_as()?;
    Ok(notes.into_iter().map(|note| note.note).collect())
}

/// Stores one note under `a`.
#[mutation(internal, name = "writeData")]
fn write_data(ctx: &MutationCtx, args: Note) -> Result<(), Error> {
    ctx.db.insert("notes", &args)?;
    Ok(())
}

#[derive(Deserialize, kiln::Validate)]
struct Args {
    a: f64,
    b: String,
    /// A third-party API to call with fetch before storing (the guide's
    /// `fetch("https://api.thirdpartyservice.com")`); its body becomes part of the note.
    #[serde(default)]
    url: Option<String>,
}

#[derive(Serialize, kiln::Validate)]
struct Outcome {
    /// The notes under `a` before this call.
    before: Vec<String>,
    /// The note this call stored.
    stored: String,
    /// The status of the third-party call, when `url` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<f64>,
}

/// Reads the notes under `a`, stores a new one built from `b`, and says what it did.
#[action(name = "default")]
fn my_action(ctx: &ActionCtx, args: Args) -> Result<Outcome, Error> {
    let before: Vec<String> = ctx.run_query("myAction:readData", ReadData { a: args.a })?;
    let (status, b) = match &args.url {
        Some(url) => {
            let response = ctx.fetch(url.as_str())?;
            let status = f64::from(response.status());
            (Some(status), format!("{}: {}", args.b, response.text()?))
        }
        None => (None, args.b),
    };
    let stored = format!("{b} (note {} under {})", before.len() + 1, args.a);
    ctx.run_mutation::<()>(
        "myAction:writeData",
        Note {
            a: args.a,
            note: stored.clone(),
        },
    )?;
    // stdout becomes a `[LOG]` line, like `console.log`.
    println!("stored {stored:?}");
    Ok(Outcome {
        before,
        stored,
        status,
    })
}
