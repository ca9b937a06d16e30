//! `kiln:platform/storage`: stored files (`storage::Storage`), with Convex's rules for
//! each kind of function. Queries and mutations read and delete records in their own
//! transaction (a query's URL is as reactive as any read; a mutation's delete commits
//! with it, and its file goes after the commit); actions act at once, and alone move
//! bytes (`get`, `store`), within `max_action_storage_bytes` per call.

use std::sync::Arc;

use crate::database::id::DocumentId;
use crate::database::store::MutationError;
use crate::runtime::InvocationState;
use crate::runtime::bindings::kiln::platform::storage::{Blob, FileMetadata, Host};
use crate::scheduler::jobs::now_ms;
use crate::storage::records::{self, StoredFile};
use crate::storage::{Storage, StoreError};

impl InvocationState {
    fn storage(&self) -> Result<Arc<Storage>, String> {
        self.runtime
            .storage()
            .cloned()
            .ok_or_else(|| "file storage is not available in this server".to_string())
    }

    fn only_in_actions(&self, what: &str) -> Result<(), String> {
        if self.kind.is_action() {
            Ok(())
        } else {
            Err(format!(
                "storage.{what} is only available in actions: it moves a file's bytes; queries and mutations use get-url"
            ))
        }
    }

    fn not_in_queries(&self, what: &str) -> Result<(), String> {
        if self.kind == crate::runtime::FunctionKind::Query {
            Err(format!(
                "storage.{what} is not allowed in a query: queries only read; call it from a mutation or an action"
            ))
        } else {
            Ok(())
        }
    }

    /// The file's record: in the query's or mutation's transaction, or, in an action, at
    /// the latest commit.
    fn file_record(&mut self, storage_id: &str) -> Result<Option<StoredFile>, String> {
        let id =
            DocumentId::decode(storage_id).map_err(|err| format!("invalid storage id: {err}"))?;
        if self.kind.is_action() {
            let mut transaction = self
                .runtime
                .store
                .begin_admin_read()
                .map_err(|err| format!("internal error: {err:#}"))?;
            return records::get(&mut transaction, &id).map_err(super::db::guest_error);
        }
        let transaction = self.transaction()?;
        records::get(transaction, &id).map_err(super::db::guest_error)
    }

    /// Counts `bytes` against the call's `max_action_storage_bytes`.
    fn charge_storage(&mut self, bytes: u64) -> Result<(), String> {
        let limit = self.runtime.limits().max_action_storage_bytes;
        let total = self.storage_bytes.saturating_add(bytes);
        if total > limit {
            return Err(format!(
                "this action moved more than {limit} bytes through storage.get and storage.store (max_action_storage_bytes)"
            ));
        }
        self.storage_bytes = total;
        Ok(())
    }
}

impl Host for InvocationState {
    async fn generate_upload_url(&mut self) -> Result<String, String> {
        self.not_in_queries("generate-upload-url")?;
        self.storage()?
            .upload_url(now_ms())
            .map_err(|err| format!("internal error: {err:#}"))
    }

    async fn get_url(&mut self, storage_id: String) -> Result<Option<String>, String> {
        let storage = self.storage()?;
        Ok(self
            .file_record(&storage_id)?
            .map(|file| storage.file_url(&file.id)))
    }

    async fn get_metadata(&mut self, storage_id: String) -> Result<Option<FileMetadata>, String> {
        Ok(self.file_record(&storage_id)?.map(|file| FileMetadata {
            storage_id: file.id.encode(),
            sha256: file.sha256_base64(),
            size: file.size,
            content_type: file.content_type,
        }))
    }

    async fn delete(&mut self, storage_id: String) -> Result<(), String> {
        self.not_in_queries("delete")?;
        let storage = self.storage()?;
        let id =
            DocumentId::decode(&storage_id).map_err(|err| format!("invalid storage id: {err}"))?;
        if !self.kind.is_action() {
            // The file goes after the mutation commits (`Runtime::forget_files`).
            let transaction = self.transaction()?;
            records::delete(transaction, &id).map_err(super::db::guest_error)?;
            return Ok(());
        }
        let store = self.runtime.store.clone();
        let (deleted, _) = store
            .run_mutation(|transaction| records::delete(transaction, &id))
            .await
            .map_err(|err| match err {
                MutationError::Db(err) => super::db::guest_error(err),
                other => {
                    tracing::error!(error = %other, "cannot delete a file's record");
                    "internal error: the server log has the details".to_string()
                }
            })?;
        if let Some(file) = deleted {
            storage
                .forget(&store, &file.sha256)
                .await
                .map_err(|err| format!("internal error: {err:#}"))?;
        }
        Ok(())
    }

    async fn get(&mut self, storage_id: String) -> Result<Option<Blob>, String> {
        self.only_in_actions("get")?;
        let storage = self.storage()?;
        let Some(file) = self.file_record(&storage_id)? else {
            return Ok(None);
        };
        self.charge_storage(file.size)?;
        let Some(mut opened) = storage
            .files()
            .open_blob(&file.sha256)
            .map_err(|err| format!("internal error: {err:#}"))?
        else {
            return Ok(None);
        };
        let bytes = tokio::task::spawn_blocking(move || {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut opened, &mut bytes).map(|_| bytes)
        })
        .await
        .map_err(|err| format!("internal error: {err}"))?
        .map_err(|err| format!("internal error: cannot read a stored file: {err}"))?;
        Ok(Some(Blob {
            bytes,
            content_type: file.content_type,
        }))
    }

    async fn store(
        &mut self,
        bytes: Vec<u8>,
        content_type: Option<String>,
    ) -> Result<String, String> {
        self.only_in_actions("store")?;
        let max = self.runtime.limits().max_file_bytes;
        if bytes.len() as u64 > max {
            return Err(format!(
                "the file is {} bytes, over the limit of {max} bytes (max_file_bytes)",
                bytes.len()
            ));
        }
        self.charge_storage(bytes.len() as u64)?;
        let storage = self.storage()?;
        let new = storage
            .files()
            .create()
            .map_err(|err| format!("internal error: {err:#}"))?;
        let name = new.name().to_string();
        let written = tokio::task::spawn_blocking(move || {
            let mut new = new;
            new.write(&bytes)?;
            new.finish()
        })
        .await
        .map_err(|err| format!("internal error: {err}"))?;
        let written = match written {
            Ok(written) => written,
            Err(err) => {
                storage.files().discard(&name);
                return Err(format!("internal error: cannot write a file: {err}"));
            }
        };
        let id = storage
            .keep(&self.runtime.store, written, content_type.as_deref(), None)
            .await
            .map_err(|err| match err {
                StoreError::Refused(message) => message,
                StoreError::Internal(err) => format!("internal error: {err:#}"),
            })?;
        Ok(id.encode())
    }
}
