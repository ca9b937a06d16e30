//! Stored files' records: documents of the system table `_storage` in Convex's shape,
//! `{sha256: base64, size, contentType?}`. The bytes are on disk under their hash
//! (`files`), so a record's `sha256` names its file; records with equal content share it.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use kiln_values::Value;

use crate::database::documents::Document;
use crate::database::id::DocumentId;
use crate::database::indexes::IndexRange;
use crate::database::persistence::Order;
use crate::database::system_tables::{BY_SHA256, STORAGE};
use crate::database::transaction::{DbError, Transaction};

/// One stored file, as its record holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredFile {
    pub id: DocumentId,
    pub creation_time: f64,
    pub sha256: [u8; 32],
    pub size: u64,
    pub content_type: Option<String>,
}

impl StoredFile {
    fn from_document(document: &Document) -> Result<Self, DbError> {
        let malformed = |what: &str| {
            DbError::Internal(anyhow::anyhow!(
                "malformed record {} in {STORAGE}: {what}",
                document.id
            ))
        };
        let fields = &document.fields;
        let sha256 = match fields.get("sha256") {
            Some(Value::String(text)) => BASE64
                .decode(text)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| malformed("sha256 is not 32 bytes in base64"))?,
            _ => return Err(malformed("no sha256")),
        };
        let size = match fields.get("size") {
            Some(Value::Float64(size)) if *size >= 0.0 => *size as u64,
            _ => return Err(malformed("no size")),
        };
        let content_type = match fields.get("contentType") {
            Some(Value::String(content_type)) => Some(content_type.clone()),
            _ => None,
        };
        Ok(StoredFile {
            id: document.id,
            creation_time: document.creation_time,
            sha256,
            size,
            content_type,
        })
    }

    /// The `sha256` field's text (also the file's `ETag`).
    pub fn sha256_base64(&self) -> String {
        BASE64.encode(self.sha256)
    }
}

/// Records a file written to disk; returns its storage id.
pub fn insert(
    transaction: &mut Transaction,
    sha256: &[u8; 32],
    size: u64,
    content_type: Option<&str>,
) -> Result<DocumentId, DbError> {
    let mut fields = BTreeMap::from([
        ("sha256".to_string(), Value::from(BASE64.encode(sha256))),
        ("size".to_string(), Value::Float64(size as f64)),
    ]);
    if let Some(content_type) = content_type {
        fields.insert("contentType".to_string(), Value::from(content_type));
    }
    transaction.system_insert(STORAGE, fields)
}

/// The file with this storage id; `Err` if `id` is not a storage id.
pub fn get(transaction: &mut Transaction, id: &DocumentId) -> Result<Option<StoredFile>, DbError> {
    if transaction.table_name(id.table_number).as_deref() != Some(STORAGE)
        && transaction.table_name(id.table_number).is_some()
    {
        return Err(DbError::InvalidId(format!(
            "{id} is not the id of a stored file (a document of {STORAGE})"
        )));
    }
    transaction
        .get(id)?
        .as_ref()
        .map(StoredFile::from_document)
        .transpose()
}

/// Deletes the record; returns it if there was one (its file goes once no record
/// shares it: [`referenced`]).
pub fn delete(
    transaction: &mut Transaction,
    id: &DocumentId,
) -> Result<Option<StoredFile>, DbError> {
    let Some(file) = get(transaction, id)? else {
        return Ok(None);
    };
    transaction.system_delete(id)?;
    transaction.note_file_deleted(file.sha256);
    Ok(Some(file))
}

/// Whether any record has the content `sha256`.
pub fn referenced(transaction: &mut Transaction, sha256: &[u8; 32]) -> Result<bool, DbError> {
    let range = IndexRange {
        equal: vec![("sha256".to_string(), Value::from(BASE64.encode(sha256)))],
        ..IndexRange::default()
    };
    Ok(!transaction
        .scan(STORAGE, BY_SHA256, &range, Order::Asc, 1, None)?
        .is_empty())
}
