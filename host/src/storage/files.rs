//! File bytes on disk, under the data directory's `storage/` folder, reached only through a
//! cap-std [`Dir`]: no path is ever built from user input. A file is named by the hex of
//! its SHA-256 (`blobs/<hex>`), so its name says nothing a user chose and equal uploads
//! share one file.
//!
//! A new file is written to `tmp/<random>`, synced, and renamed into `blobs/`; only then
//! is its record committed (`_storage`). A file whose record never committed (a crash
//! in between) is removed when the server starts ([`super::Storage::remove_unreferenced`]).
//!
//! Over a shared database (several hosts) the kept files live in the database instead
//! ([`SharedFiles`]), where every host reads them; uploads still arrive in `tmp/`.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use sha2::{Digest, Sha256};

use crate::database::kv::{FileLock, SharedFileRead, SharedFiles};

const STORAGE_DIR: &str = "storage";
const BLOBS: &str = "blobs";
const TMP: &str = "tmp";

pub struct FileStore {
    blobs: Dir,
    tmp: Dir,
    /// Where kept files go over a shared database (instead of `blobs/`).
    shared: Option<Arc<dyn SharedFiles>>,
}

/// A file being written: its bytes go to a temporary file, hashed and counted on the way.
pub struct NewFile {
    name: String,
    file: std::fs::File,
    hasher: Sha256,
    size: u64,
}

/// A file written and synced, not yet in `blobs/`.
pub struct WrittenFile {
    name: String,
    pub sha256: [u8; 32],
    pub size: u64,
}

impl FileStore {
    /// Opens (creating them if need be) `data/storage/blobs` and `data/storage/tmp`, and
    /// empties `tmp` (what an interrupted upload left). With `shared`, kept files go there.
    pub fn open(data: &Path, shared: Option<Arc<dyn SharedFiles>>) -> anyhow::Result<Self> {
        let data_dir = Dir::open_ambient_dir(data, ambient_authority())
            .with_context(|| format!("cannot open the data directory {}", data.display()))?;
        data_dir
            .create_dir_all(format!("{STORAGE_DIR}/{BLOBS}"))
            .and_then(|()| data_dir.create_dir_all(format!("{STORAGE_DIR}/{TMP}")))
            .context("cannot create the file storage folders")?;
        let storage = data_dir.open_dir(STORAGE_DIR)?;
        let store = Self {
            blobs: storage.open_dir(BLOBS)?,
            tmp: storage.open_dir(TMP)?,
            shared,
        };
        for entry in store.tmp.entries()? {
            let name = entry?.file_name();
            store.tmp.remove_file(&name).ok();
        }
        Ok(store)
    }

    /// A new temporary file to write an upload into.
    pub fn create(&self) -> anyhow::Result<NewFile> {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
        let name = hex::encode(random);
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        let file = self
            .tmp
            .open_with(&name, &options)
            .context("cannot create a temporary file for an upload")?
            .into_std();
        Ok(NewFile {
            name,
            file,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Whether kept files live in a shared database (its calls block on the network).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// This hash's turn across every host over a shared database (see
    /// [`SharedFiles::lock`]); `None` with files on this host's disk, where the caller's
    /// own lock is enough.
    pub fn lock(&self, sha256: &[u8; 32]) -> anyhow::Result<Option<Box<dyn FileLock>>> {
        self.shared
            .as_ref()
            .map(|shared| shared.lock(sha256))
            .transpose()
    }

    /// Moves a written file into `blobs/` under its hash (replacing an equal one); over a
    /// shared database, copies it there (unless an equal one is there) and removes it.
    pub fn keep(&self, written: &WrittenFile) -> anyhow::Result<()> {
        if let Some(shared) = &self.shared {
            let copied = if shared.contains(&written.sha256)? {
                Ok(())
            } else {
                let mut file = self
                    .tmp
                    .open(&written.name)
                    .context("cannot reopen an uploaded file")?
                    .into_std();
                shared.write(&written.sha256, written.size, &mut file)
            };
            self.discard(&written.name);
            return copied;
        }
        self.tmp
            .rename(&written.name, &self.blobs, hex::encode(written.sha256))
            .context("cannot move an uploaded file into place")?;
        // The rename is durable once the folder is synced.
        self.blobs.open(".").and_then(|dir| dir.sync_all()).ok();
        Ok(())
    }

    /// Removes a temporary file (an upload that was refused).
    pub fn discard(&self, written_name: &str) {
        self.tmp.remove_file(written_name).ok();
    }

    /// The stored file with this hash, opened for reading.
    pub fn open_blob(&self, sha256: &[u8; 32]) -> anyhow::Result<Option<Box<dyn SharedFileRead>>> {
        if let Some(shared) = &self.shared {
            return shared.open(sha256);
        }
        match self.blobs.open(hex::encode(sha256)) {
            Ok(file) => Ok(Some(Box::new(file.into_std()))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).context("cannot open a stored file"),
        }
    }

    /// Removes the stored file with this hash, if it is there.
    pub fn remove_blob(&self, sha256: &[u8; 32]) -> anyhow::Result<()> {
        if let Some(shared) = &self.shared {
            return shared.remove(sha256);
        }
        match self.blobs.remove_file(hex::encode(sha256)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).context("cannot remove a stored file")
            }
            _ => Ok(()),
        }
    }

    /// The hashes of every stored file (for the start-up check against the records).
    pub fn stored(&self) -> anyhow::Result<Vec<[u8; 32]>> {
        if let Some(shared) = &self.shared {
            return shared.stored();
        }
        let mut hashes = Vec::new();
        for entry in self.blobs.entries()? {
            let name = entry?.file_name();
            let parsed = name
                .to_str()
                .and_then(|name| hex::decode(name).ok())
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
            match parsed {
                Some(hash) => hashes.push(hash),
                // Nothing else belongs here.
                None => {
                    self.blobs.remove_file(&name).ok();
                }
            }
        }
        Ok(hashes)
    }
}

impl NewFile {
    /// The temporary file's name (to discard it).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends `chunk` (blocking: call from a blocking thread or with small chunks).
    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.file.write_all(chunk)?;
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Syncs the file to disk; its hash and size.
    pub fn finish(self) -> std::io::Result<WrittenFile> {
        self.file.sync_all()?;
        Ok(WrittenFile {
            name: self.name,
            sha256: self.hasher.finalize().into(),
            size: self.size,
        })
    }
}

impl WrittenFile {
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_written_kept_under_its_hash_read_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path(), None).unwrap();
        let mut file = store.create().unwrap();
        file.write(b"hello ").unwrap();
        file.write(b"world").unwrap();
        let written = file.finish().unwrap();
        assert_eq!(written.size, 11);
        assert_eq!(
            written.sha256,
            <[u8; 32]>::from(Sha256::digest(b"hello world"))
        );
        assert!(store.open_blob(&written.sha256).unwrap().is_none());
        store.keep(&written).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut store.open_blob(&written.sha256).unwrap().unwrap(),
            &mut text,
        )
        .unwrap();
        assert_eq!(text, "hello world");
        assert_eq!(store.stored().unwrap(), vec![written.sha256]);
        store.remove_blob(&written.sha256).unwrap();
        assert!(store.open_blob(&written.sha256).unwrap().is_none());
        assert!(store.stored().unwrap().is_empty());
    }

    #[test]
    fn leftovers_of_an_interrupted_upload_are_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path(), None).unwrap();
        let mut file = store.create().unwrap();
        file.write(b"half").unwrap();
        let name = file.name().to_string();
        drop(file);
        assert!(dir.path().join("storage/tmp").join(&name).exists());
        drop(store);
        FileStore::open(dir.path(), None).unwrap();
        assert!(!dir.path().join("storage/tmp").join(&name).exists());
    }
}
