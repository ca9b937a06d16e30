//! Argument and return validation, end to end (`tests/e2e/validators.rs`): every function
//! here declares the validators its types derive, unless it says `unchecked`.

use kiln::{
    Document, Error, Id, MutationCtx, QueryCtx, Validate, Validator, Value, mutation, query,
};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, Validate)]
struct Repeat {
    text: String,
    count: u32,
}

/// Returns its arguments: `count` is a `u32`, which JSON clients send as a float64.
#[query]
fn repeat(_ctx: &QueryCtx, args: Repeat) -> Result<Repeat, Error> {
    Ok(args)
}

#[derive(Deserialize, Validate)]
struct User {
    name: String,
    age: u32,
    tags: Option<Vec<String>>,
}

#[derive(Deserialize, Validate)]
struct Profile {
    user: User,
}

#[query]
fn profile(_ctx: &QueryCtx, args: Profile) -> Result<String, Error> {
    let tags = args.user.tags.unwrap_or_default().join(",");
    Ok(format!("{} ({}) [{tags}]", args.user.name, args.user.age))
}

/// Declares `count` a float64 but holds a string: the host must refuse what it returns.
#[derive(Serialize, Validate)]
struct Mislabelled {
    #[kiln(with = float64)]
    count: String,
}

fn float64() -> Validator {
    Validator::Float64
}

#[query]
fn wrong_return(_ctx: &QueryCtx) -> Result<Mislabelled, Error> {
    Ok(Mislabelled {
        count: "many".into(),
    })
}

#[derive(Deserialize, Serialize, Validate)]
struct Note {
    table: String,
    text: String,
}

/// Writes, then returns a value its validator refuses: the write must not commit.
#[mutation]
fn write_then_return_wrong(ctx: &MutationCtx, args: Note) -> Result<Mislabelled, Error> {
    ctx.db.insert(&args.table, &args)?;
    Ok(Mislabelled {
        count: "many".into(),
    })
}

#[mutation]
fn add(ctx: &MutationCtx, args: Note) -> Result<Id, Error> {
    ctx.db.insert(&args.table, &args)
}

#[derive(Deserialize, Validate)]
struct Table {
    table: String,
}

#[query]
fn count(ctx: &QueryCtx, args: Table) -> Result<usize, Error> {
    Ok(ctx.db.query(&args.table).collect()?.len())
}

#[derive(Deserialize, Validate)]
struct NoteRef {
    #[kiln(id = "notes")]
    id: Id,
}

/// Takes only ids of the table `notes`.
#[query]
fn note(ctx: &QueryCtx, args: NoteRef) -> Result<Option<Document>, Error> {
    ctx.db.get(&args.id)
}

/// Validation off: takes and returns anything.
#[query(unchecked)]
fn anything(_ctx: &QueryCtx, args: Value) -> Result<Value, Error> {
    Ok(args)
}

/// Arguments unchecked, return value checked.
#[query(unchecked(args))]
fn loose_args(_ctx: &QueryCtx, args: Value) -> Result<String, Error> {
    Ok(args.type_name().to_string())
}

#[derive(Deserialize, Validate)]
struct Forward {
    path: String,
    args: Value,
}

/// Runs the query at `path` from an action; returns its error message, or "ok".
#[kiln::action]
fn query_from_action(ctx: &kiln::ActionCtx, args: Forward) -> Result<String, Error> {
    match ctx.run_query::<Value>(&args.path, args.args) {
        Ok(_) => Ok("ok".into()),
        Err(error) => Ok(error.message().to_string()),
    }
}

/// Runs the query at `path` inside this mutation's transaction; its error message, or "ok".
#[mutation]
fn query_from_mutation(ctx: &MutationCtx, args: Forward) -> Result<String, Error> {
    match ctx.run_query::<Value>(&args.path, args.args) {
        Ok(_) => Ok("ok".into()),
        Err(error) => Ok(error.message().to_string()),
    }
}
