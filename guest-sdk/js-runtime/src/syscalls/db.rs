//! The document ops of `ctx.db` (convex/server's `impl/database_impl.js`) on
//! `kiln:platform/db`.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{OpError, OpResult, json};
use crate::bindings::kiln::platform::db;

/// `{id, isSystem, table?}` (`isSystem`: from `db.system.get`)
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GetArgs {
    id: String,
    table: Option<String>,
}

/// `db.system.get` reads system tables the same way: the host lets functions read them
/// (and refuses writes), and convex/server already checked the id's table is one.
pub(super) fn get(args: GetArgs) -> OpResult {
    match db::get(args.table.as_deref(), &args.id).map_err(OpError::new)? {
        Some(document) => Ok(document),
        None => Ok("null".into()),
    }
}

/// `{table, value}` → `{"_id": id}`
#[derive(Deserialize)]
pub(super) struct InsertArgs {
    table: String,
    value: Box<RawValue>,
}

pub(super) fn insert(args: InsertArgs) -> OpResult {
    let id = db::insert(&args.table, args.value.get()).map_err(OpError::new)?;
    json(&serde_json::json!({ "_id": id }))
}

/// `{id, value, table?}`; a top-level `{"$undefined": null}` field removes that field.
#[derive(Deserialize)]
pub(super) struct PatchArgs {
    id: String,
    value: serde_json::Map<String, serde_json::Value>,
    table: Option<String>,
}

pub(super) fn shallow_merge(args: PatchArgs) -> OpResult {
    let removes = |value: &serde_json::Value| {
        value
            .as_object()
            .is_some_and(|object| object.len() == 1 && object.contains_key("$undefined"))
    };
    if !args.value.values().any(removes) {
        let fields = serde_json::Value::Object(args.value).to_string();
        db::patch(args.table.as_deref(), &args.id, &fields).map_err(OpError::new)?;
        return Ok("null".into());
    }
    // Kiln's patch has no "remove": read, change, replace (one transaction either way).
    let document = db::get(args.table.as_deref(), &args.id)
        .map_err(OpError::new)?
        .ok_or_else(|| OpError::new(format!("Update on nonexistent document ID {}", args.id)))?;
    let mut fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&document)
        .map_err(|err| OpError::new(format!("cannot read document {}: {err}", args.id)))?;
    fields.remove("_id");
    fields.remove("_creationTime");
    for (name, value) in args.value {
        if removes(&value) {
            fields.remove(&name);
        } else {
            fields.insert(name, value);
        }
    }
    let fields = serde_json::Value::Object(fields).to_string();
    db::replace(args.table.as_deref(), &args.id, &fields).map_err(OpError::new)?;
    Ok("null".into())
}

/// `{id, value, table?}`
#[derive(Deserialize)]
pub(super) struct ReplaceArgs {
    id: String,
    value: Box<RawValue>,
    table: Option<String>,
}

pub(super) fn replace(args: ReplaceArgs) -> OpResult {
    db::replace(args.table.as_deref(), &args.id, args.value.get()).map_err(OpError::new)?;
    Ok("null".into())
}

/// `{id, table?}`
#[derive(Deserialize)]
pub(super) struct RemoveArgs {
    id: String,
    table: Option<String>,
}

pub(super) fn remove(args: RemoveArgs) -> OpResult {
    db::delete(args.table.as_deref(), &args.id).map_err(OpError::new)?;
    Ok("null".into())
}

/// `{table, idString}` → `{"id": id | null}`: the id when it is an id of `table`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NormalizeIdArgs {
    table: String,
    id_string: String,
}

pub(super) fn normalize_id(args: NormalizeIdArgs) -> OpResult {
    // A get checks the id's form and table; a well-formed id of the table stays valid
    // whether or not its document exists.
    let id = db::get(Some(&args.table), &args.id_string)
        .ok()
        .map(|_| args.id_string);
    json(&serde_json::json!({ "id": id }))
}
