//! File storage (Convex's `ctx.storage`): bytes on disk under the data directory, in
//! folders reached only through cap-std (`files`), and one record per file in the system
//! table `_storage` (`records`). Uploads come through URLs carrying sealed, single-use
//! tokens (`tokens`); files are served at `/api/storage/<id>`.
//!
//! The order of things keeps disk and records in step: a file is written to a temporary
//! name, synced and moved into place before its record commits; a record is deleted before
//! its file. A crash can only leave a file without a record, which the start-up check
//! removes ([`Storage::remove_unreferenced`]). Equal files share one file on disk (it is
//! named by its hash), so a file goes only once no record has its hash; moving a file into
//! place and recording it, and checking and removing one, take turns (`lifecycle`).

pub mod files;
pub mod records;
pub mod tokens;

use std::path::Path;
use std::sync::Arc;

use crate::database::cursor_seal::CursorKey;
use crate::database::id::DocumentId;
use crate::database::kv::{FileLock, SharedFiles};
use crate::database::store::{DocumentStore, MutationError};
use crate::database::transaction::DbError;
use files::{FileStore, WrittenFile};
use tokens::UploadToken;

pub struct Storage {
    files: FileStore,
    /// Where clients reach this server: upload and file URLs start with it.
    public_url: String,
    key: Arc<CursorKey>,
    lifecycle: tokio::sync::Mutex<()>,
}

/// Why a file could not be stored; nothing of it is left behind.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<MutationError> for StoreError {
    fn from(err: MutationError) -> Self {
        match err {
            MutationError::Db(DbError::Forbidden(message) | DbError::LimitExceeded(message)) => {
                StoreError::Refused(message)
            }
            other => StoreError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl Storage {
    /// Files kept under `data`, or in `shared` (a shared database) if given.
    pub fn open(
        data: &Path,
        public_url: String,
        key: Arc<CursorKey>,
        shared: Option<Arc<dyn SharedFiles>>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            files: FileStore::open(data, shared)?,
            public_url: public_url.trim_end_matches('/').to_string(),
            key,
            lifecycle: tokio::sync::Mutex::new(()),
        })
    }

    pub fn files(&self) -> &FileStore {
        &self.files
    }

    pub fn key(&self) -> &CursorKey {
        &self.key
    }

    /// A new upload URL, good for one upload within the hour.
    pub fn upload_url(&self, now_ms: f64) -> anyhow::Result<String> {
        let token = UploadToken::new(now_ms)?.seal(&self.key);
        Ok(format!(
            "{}/api/storage/upload?token={token}",
            self.public_url
        ))
    }

    /// Where the file with this storage id is served.
    pub fn file_url(&self, id: &DocumentId) -> String {
        format!("{}/api/storage/{}", self.public_url, id.encode())
    }

    /// Moves a written file into place and records it (using up `token`, for an upload),
    /// in that order; returns its storage id. If the record does not commit, the file goes
    /// again (unless an equal file's record has it).
    pub async fn keep(
        &self,
        store: &DocumentStore,
        written: WrittenFile,
        content_type: Option<&str>,
        token: Option<&UploadToken>,
    ) -> Result<DocumentId, StoreError> {
        let _turn = self.lifecycle.lock().await;
        let _shared_turn = self.shared_turn(&written.sha256)?;
        self.network(|| self.files.keep(&written))?;
        // The tests' crash between a file's move into place and its record.
        if crate::failpoints::armed("STORAGE", "crash-before-record") {
            std::process::abort();
        }
        let recorded = store
            .run_mutation(|transaction| {
                if let Some(token) = token {
                    token.use_up(transaction)?;
                }
                records::insert(transaction, &written.sha256, written.size, content_type)
            })
            .await;
        match recorded {
            Ok((id, _)) => Ok(id),
            Err(err) => {
                self.remove_if_unreferenced(store, &written.sha256).await?;
                Err(err.into())
            }
        }
    }

    /// Removes the file with this hash unless a record has it (after a record's delete
    /// committed). Takes its turn with [`Storage::keep`].
    pub async fn forget(&self, store: &DocumentStore, sha256: &[u8; 32]) -> anyhow::Result<()> {
        let _turn = self.lifecycle.lock().await;
        let _shared_turn = self.shared_turn(sha256)?;
        self.remove_if_unreferenced(store, sha256).await
    }

    /// The hash's turn across hosts over a shared database (this host's turns are taken
    /// with `lifecycle`); nothing otherwise.
    fn shared_turn(&self, sha256: &[u8; 32]) -> anyhow::Result<Option<Box<dyn FileLock>>> {
        self.network(|| self.files.lock(sha256))
    }

    /// Runs `work` on the files, which over a shared database waits on the network: off
    /// the async worker then.
    fn network<T>(&self, work: impl FnOnce() -> T) -> T {
        if self.files.is_shared() {
            tokio::task::block_in_place(work)
        } else {
            work()
        }
    }

    async fn remove_if_unreferenced(
        &self,
        store: &DocumentStore,
        sha256: &[u8; 32],
    ) -> anyhow::Result<()> {
        let mut transaction = store.begin_admin_read()?;
        if !records::referenced(&mut transaction, sha256)? {
            self.network(|| self.files.remove_blob(sha256))?;
        }
        Ok(())
    }

    /// Deletes the records of used upload tokens that have expired (they are refused for
    /// their expiry alone): at start and every hour, so `_upload_tokens` does not grow
    /// without bound.
    pub async fn forget_used_tokens(self: Arc<Self>, store: Arc<DocumentStore>) {
        let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            every_hour.tick().await;
            loop {
                let step = store
                    .run_mutation(|transaction| {
                        tokens::forget_expired(transaction, crate::scheduler::jobs::now_ms(), 256)
                    })
                    .await;
                match step {
                    Ok(((_, true), _)) => continue,
                    Ok(_) => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot forget expired upload tokens");
                        break;
                    }
                }
            }
        }
    }

    /// Removes every file no record has: what a crash between moving a file into place
    /// and recording it left. Run at start, before any upload.
    pub async fn remove_unreferenced(&self, store: &DocumentStore) -> anyhow::Result<usize> {
        let _turn = self.lifecycle.lock().await;
        let mut removed = 0;
        for sha256 in self.network(|| self.files.stored())? {
            // Over a shared database another host may be recording this file: its turn
            // first, then a snapshot that sees its record if it committed.
            let _shared_turn = self.shared_turn(&sha256)?;
            let mut transaction = store.begin_admin_read()?;
            if !records::referenced(&mut transaction, &sha256)? {
                self.network(|| self.files.remove_blob(&sha256))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
