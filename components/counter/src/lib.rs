//! Named counters in the table `counters` (index `by_name = ["name"]`): `counter:increment`
//! reads, adds and writes in one mutation, so concurrent increments never lose an update.

use kiln::db::DatabaseReader;
use kiln::{Document, Error, Id, MutationCtx, QueryCtx, mutation, query};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize)]
struct Counter {
    #[serde(rename = "_id", skip_serializing)]
    id: Option<Id>,
    name: String,
    value: i64,
}

#[derive(Deserialize, kiln::Validate)]
struct Increment {
    name: String,
    by: Option<i64>,
}

/// Adds `by` (default 1) to the counter and returns its new value.
#[mutation]
fn increment(ctx: &MutationCtx, args: Increment) -> Result<i64, Error> {
    let by = args.by.unwrap_or(1);
    match find(&ctx.db, &args.name)? {
        Some(counter) => {
            let value = counter
                .value
                .checked_add(by)
                .ok_or_else(|| Error::new(format!("counter {} would overflow", args.name)))?;
            let id = counter.id.expect("stored documents have an _id");
            ctx.db.patch(&id, &value_patch(value))?;
            Ok(value)
        }
        None => {
            ctx.db.insert(
                "counters",
                &Counter {
                    id: None,
                    name: args.name,
                    value: by,
                },
            )?;
            Ok(by)
        }
    }
}

/// `{"value": value}` as a patch.
fn value_patch(value: i64) -> std::collections::BTreeMap<&'static str, i64> {
    [("value", value)].into()
}

#[derive(Deserialize, kiln::Validate)]
struct Get {
    name: String,
}

/// The counter's value; 0 if it was never incremented.
#[query]
fn get(ctx: &QueryCtx, args: Get) -> Result<i64, Error> {
    Ok(find(&ctx.db, &args.name)?.map_or(0, |counter| counter.value))
}

/// The counter named `name`, through the `by_name` index (at most one may exist).
fn find(db: &DatabaseReader, name: &str) -> Result<Option<Counter>, Error> {
    db.query("counters")
        .with_index("by_name", |q| q.eq("name", name))
        .unique()?
        .map(Document::decode)
        .transpose()
}
