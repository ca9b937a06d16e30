//! Stored files (`kiln:platform/storage`, Convex's `ctx.storage`): `ctx.storage()` in every
//! kind of function. Queries read URLs and metadata; mutations also make upload URLs and
//! delete files; actions also read and store bytes (`get`, `store`). The host enforces
//! these rules; a call a kind may not make fails with an error saying so.
//!
//! ```no_run
//! # use kiln::{mutation, query, MutationCtx, QueryCtx, Error, Id};
//! #[mutation]
//! fn upload_url(ctx: &MutationCtx) -> Result<String, Error> {
//!     ctx.storage().generate_upload_url()     // the client POSTs the file there
//! }
//!
//! #[query]
//! fn photo_url(ctx: &QueryCtx, id: Id) -> Result<Option<String>, Error> {
//!     ctx.storage().get_url(&id)
//! }
//! ```

use crate::Error;
use crate::bindings::kiln::platform::storage as wit;
use crate::db::Id;

/// A stored file's record.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileMetadata {
    pub storage_id: Id,
    /// Base64 of the file's SHA-256.
    pub sha256: String,
    pub size: u64,
    pub content_type: Option<String>,
}

/// A stored file's bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredBlob {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

/// File storage, for whatever the calling kind may do with it.
#[derive(Debug, Default, Clone, Copy)]
#[non_exhaustive]
pub struct Storage;

impl Storage {
    /// A URL a client may POST one file to within the hour (mutations, actions); the
    /// answer is `{"storageId": "..."}`.
    pub fn generate_upload_url(&self) -> Result<String, Error> {
        wit::generate_upload_url().map_err(Error::new)
    }

    /// Where the file is served, or `None` if there is no such file.
    pub fn get_url(&self, id: &Id) -> Result<Option<String>, Error> {
        wit::get_url(id.as_str()).map_err(Error::new)
    }

    /// The file's record, or `None`.
    pub fn get_metadata(&self, id: &Id) -> Result<Option<FileMetadata>, Error> {
        Ok(wit::get_metadata(id.as_str())
            .map_err(Error::new)?
            .map(|metadata| FileMetadata {
                storage_id: Id(metadata.storage_id),
                sha256: metadata.sha256,
                size: metadata.size,
                content_type: metadata.content_type,
            }))
    }

    /// Deletes the file (mutations, actions); one already gone is no error.
    pub fn delete(&self, id: &Id) -> Result<(), Error> {
        wit::delete(id.as_str()).map_err(Error::new)
    }

    /// The file's bytes, or `None` (actions).
    pub fn get(&self, id: &Id) -> Result<Option<StoredBlob>, Error> {
        Ok(wit::get(id.as_str())
            .map_err(Error::new)?
            .map(|blob| StoredBlob {
                bytes: blob.bytes,
                content_type: blob.content_type,
            }))
    }

    /// Stores `bytes` as a new file; returns its storage id (actions).
    pub fn store(&self, bytes: &[u8], content_type: Option<&str>) -> Result<Id, Error> {
        wit::store(bytes, content_type).map(Id).map_err(Error::new)
    }
}
