//! `ctx.storage` (convex/server's `impl/storage_impl.js`) on `kiln:platform/storage`:
//! `1.0/storageGenerateUploadUrl`, `1.0/storageGetUrl`, `1.0/storageGetMetadata`,
//! `1.0/storageDelete`, and the bytes ops `1.0/storageStore` and `1.0/storageGet` (base64
//! in JSON), which the environment's jsSyscalls `storage/storeBlob` and `storage/getBlob`
//! (an action's `store` and `get`, with `Blob`s) go through. The host applies the rules
//! for each kind of function.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use super::{OpError, OpResult, json};
use crate::bindings::kiln::platform::storage;

pub(super) fn generate_upload_url() -> OpResult {
    json(&storage::generate_upload_url().map_err(OpError::new)?)
}

/// `{storageId, requestId?, version?}`
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StorageIdArgs {
    storage_id: String,
}

pub(super) fn get_url(args: StorageIdArgs) -> OpResult {
    json(&storage::get_url(&args.storage_id).map_err(OpError::new)?)
}

/// `{storageId, sha256, size, contentType}` or null, as Convex answers.
pub(super) fn get_metadata(args: StorageIdArgs) -> OpResult {
    let metadata = storage::get_metadata(&args.storage_id).map_err(OpError::new)?;
    json(&metadata.map(|metadata| {
        serde_json::json!({
            "storageId": metadata.storage_id,
            "sha256": metadata.sha256,
            "size": metadata.size,
            "contentType": metadata.content_type,
        })
    }))
}

pub(super) fn delete(args: StorageIdArgs) -> OpResult {
    storage::delete(&args.storage_id).map_err(OpError::new)?;
    Ok("null".into())
}

/// `{blob: base64, contentType?, sha256?}` → the storage id.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StoreArgs {
    blob: String,
    content_type: Option<String>,
    sha256: Option<String>,
}

pub(super) fn store(args: StoreArgs) -> OpResult {
    let bytes = BASE64
        .decode(&args.blob)
        .map_err(|err| OpError::new(format!("storage.store: the bytes are not base64: {err}")))?;
    if let Some(expected) = &args.sha256 {
        use sha2::Digest as _;
        let actual = BASE64.encode(sha2::Sha256::digest(&bytes));
        if &actual != expected {
            return Err(OpError::new(format!(
                "storage.store: the blob's SHA-256 is {actual}, not the {expected} given"
            )));
        }
    }
    let content_type = args
        .content_type
        .filter(|content_type| !content_type.is_empty());
    json(&storage::store(&bytes, content_type.as_deref()).map_err(OpError::new)?)
}

/// `{blob: base64, contentType}` or null.
pub(super) fn get(args: StorageIdArgs) -> OpResult {
    let blob = storage::get(&args.storage_id).map_err(OpError::new)?;
    json(&blob.map(|blob| {
        serde_json::json!({
            "blob": BASE64.encode(&blob.bytes),
            "contentType": blob.content_type,
        })
    }))
}
