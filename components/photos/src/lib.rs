//! The file storage example (README, "File storage"): photo sharing.
//!
//! * `photos:generateUploadUrl` (mutation) makes a URL the client POSTs the image to; the
//!   answer is `{"storageId"}`, which the client hands to `photos:send`.
//! * `photos:list` (query) returns every photo with the URL it is served at.
//! * `photos:remove` deletes a photo and its file.
//! * `photos:fetchAndStore` (action) fetches an image from a URL, stores it, and sends it.
//!
//! `photos:metadata`, `photos:read` and `photos:storeText` are what the tests use too.

use std::collections::BTreeMap;

use kiln::{ActionCtx, Error, Id, MutationCtx, QueryCtx, Value, action, mutation, query};
use serde::{Deserialize, Serialize};

/// A URL to upload one file to.
#[mutation(name = "generateUploadUrl")]
fn generate_upload_url(ctx: &MutationCtx) -> Result<String, Error> {
    ctx.storage().generate_upload_url()
}

#[derive(Deserialize, Serialize, kiln::Validate)]
#[serde(rename_all = "camelCase")]
struct Send {
    storage_id: Id,
    author: String,
}

/// Shares an uploaded photo.
#[mutation]
fn send(ctx: &MutationCtx, args: Send) -> Result<Id, Error> {
    ctx.db.insert("photos", &args)
}

#[derive(Serialize, kiln::Validate)]
#[serde(rename_all = "camelCase")]
struct Photo {
    id: Id,
    author: String,
    url: Option<String>,
}

/// Every photo with its URL (none once its file is deleted), oldest first.
#[query]
fn list(ctx: &QueryCtx) -> Result<Vec<Photo>, Error> {
    let mut photos = Vec::new();
    for document in ctx.db.query("photos").collect()? {
        let fields = document.as_object().cloned().unwrap_or_default();
        let text = |name: &str| {
            fields
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let storage_id = Id(text("storageId"));
        photos.push(Photo {
            id: Id(text("_id")),
            author: text("author"),
            url: ctx.storage().get_url(&storage_id)?,
        });
    }
    Ok(photos)
}

#[derive(Deserialize, kiln::Validate)]
struct Remove {
    id: Id,
}

/// Deletes a photo and its file.
#[mutation]
fn remove(ctx: &MutationCtx, args: Remove) -> Result<(), Error> {
    let Some(photo) = ctx.db.get(&args.id)? else {
        return Ok(());
    };
    if let Some(Value::String(storage_id)) = photo.as_object().and_then(|f| f.get("storageId")) {
        ctx.storage().delete(&Id(storage_id.clone()))?;
    }
    ctx.db.delete(&args.id)
}

#[derive(Deserialize, kiln::Validate)]
struct FetchAndStore {
    url: String,
    author: String,
}

/// Fetches an image, stores it and shares it; returns its storage id.
#[action(name = "fetchAndStore")]
fn fetch_and_store(ctx: &ActionCtx, args: FetchAndStore) -> Result<Id, Error> {
    let response = ctx.fetch(args.url.as_str())?;
    if !response.ok() {
        return Err(Error::new(format!(
            "fetching {} answered {}",
            args.url,
            response.status()
        )));
    }
    let content_type = response.header("content-type").map(str::to_string);
    let bytes = response.bytes()?;
    let storage_id = ctx.storage().store(&bytes, content_type.as_deref())?;
    ctx.run_mutation::<Id>(
        "photos:send",
        Send {
            storage_id: storage_id.clone(),
            author: args.author,
        },
    )?;
    Ok(storage_id)
}

#[derive(Deserialize, kiln::Validate)]
#[serde(rename_all = "camelCase")]
struct StorageId {
    storage_id: Id,
}

#[derive(Serialize, kiln::Validate)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    storage_id: Id,
    sha256: String,
    size: f64,
    content_type: Option<String>,
}

/// The file's record (`{storageId, sha256, size, contentType}`), or null.
#[query]
fn metadata(ctx: &QueryCtx, args: StorageId) -> Result<Option<Metadata>, Error> {
    Ok(ctx
        .storage()
        .get_metadata(&args.storage_id)?
        .map(|metadata| Metadata {
            storage_id: metadata.storage_id,
            sha256: metadata.sha256,
            size: metadata.size as f64,
            content_type: metadata.content_type,
        }))
}

/// The file's text and content type (an action reading the bytes), or null.
#[action]
fn read(ctx: &ActionCtx, args: StorageId) -> Result<Option<BTreeMap<String, Value>>, Error> {
    Ok(ctx.storage().get(&args.storage_id)?.map(|blob| {
        BTreeMap::from([
            (
                "text".to_string(),
                Value::from(String::from_utf8_lossy(&blob.bytes).into_owned()),
            ),
            (
                "contentType".to_string(),
                blob.content_type.map_or(Value::Null, Value::from),
            ),
        ])
    }))
}

#[derive(Deserialize, kiln::Validate)]
#[serde(rename_all = "camelCase")]
struct StoreText {
    text: String,
    content_type: Option<String>,
}

/// Stores `text` as a file from an action; returns its storage id.
#[action(name = "storeText")]
fn store_text(ctx: &ActionCtx, args: StoreText) -> Result<Id, Error> {
    ctx.storage()
        .store(args.text.as_bytes(), args.content_type.as_deref())
}

/// Deletes a file from an action.
#[action(name = "deleteFile")]
fn delete_file(ctx: &ActionCtx, args: StorageId) -> Result<(), Error> {
    ctx.storage().delete(&args.storage_id)
}

/// Tries what a query may not do: returns the errors.
#[query(name = "forbiddenInQuery")]
fn forbidden_in_query(ctx: &QueryCtx) -> Result<Vec<String>, Error> {
    let storage = ctx.storage();
    let errors = [
        storage.generate_upload_url().err(),
        storage.get(&Id("x".into())).err(),
        storage.store(b"x", None).err(),
    ];
    Ok(errors
        .into_iter()
        .map(|error| error.map_or("allowed".to_string(), |e| e.message().to_string()))
        .collect())
}
