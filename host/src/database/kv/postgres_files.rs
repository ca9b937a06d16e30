//! The bytes of stored files (`ctx.storage`) in PostgreSQL, so that every host serves
//! every file: one row per file (`kiln_files`) and its bytes in chunks of
//! [`CHUNK_BYTES`] (`kiln_file_chunks`), named by SHA-256 like the files on disk.
//!
//! A file's chunks and its row are written in one transaction, so a file is there whole
//! or not at all. Writing a file, recording it and removing an unrecorded one take turns
//! across hosts through a row lock per hash (`kiln_file_locks`, see [`PgFiles::lock`]).
//! These are tables of their own, written outside the commit lock: a large upload holds up
//! no commit.

use std::io::{Read, Seek, SeekFrom};

use anyhow::Context;
use deadpool_postgres::{Object, Pool};
use tokio::runtime::Handle;

use super::{FileLock, SharedFileRead, SharedFiles};

/// Bytes per chunk row: large enough that a file is a few rows, small enough that one row
/// is cheap to hold in memory while it is read.
const CHUNK_BYTES: usize = 1 << 20;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kiln_files (
    sha256 BYTEA PRIMARY KEY,
    size BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS kiln_file_chunks (
    sha256 BYTEA NOT NULL,
    chunk INTEGER NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (sha256, chunk)
);
CREATE TABLE IF NOT EXISTS kiln_file_locks (
    sha256 BYTEA PRIMARY KEY
);
";

/// File bytes in the database (see the module comment).
pub struct PgFiles {
    pub(super) pool: Pool,
    pub(super) runtime: Handle,
    pub(super) display: String,
}

impl PgFiles {
    fn wait<T>(&self, future: impl Future<Output = T>) -> T {
        super::postgres::wait(&self.runtime, future)
    }

    async fn connection(&self) -> anyhow::Result<Object> {
        self.pool
            .get()
            .await
            .with_context(|| format!("the database {} is unavailable", self.display))
    }
}

/// A turn on one hash, held as a row lock in an open transaction; dropping it ends the
/// transaction, which lets the next host (or task) take its turn.
struct PgFileLock {
    client: Option<Object>,
    runtime: Handle,
}

impl FileLock for PgFileLock {}

impl Drop for PgFileLock {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            self.runtime.spawn(async move {
                let _ = client.batch_execute("ROLLBACK").await;
            });
        }
    }
}

impl SharedFiles for PgFiles {
    fn lock(&self, sha256: &[u8; 32]) -> anyhow::Result<Box<dyn FileLock>> {
        let client = self.wait(async {
            let client = self.connection().await?;
            client
                .batch_execute("BEGIN")
                .await
                .context("cannot begin a file's turn")?;
            // Locks the hash's row, creating it if need be: a second host inserting the
            // same row waits for the first's transaction, then updates (and so locks) it.
            let locked = client
                .execute(
                    "INSERT INTO kiln_file_locks (sha256) VALUES ($1)
                     ON CONFLICT (sha256) DO UPDATE SET sha256 = EXCLUDED.sha256",
                    &[&&sha256[..]],
                )
                .await;
            if let Err(error) = locked {
                // The connection goes back to the pool outside any transaction.
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(error).context("cannot take a stored file's turn");
            }
            anyhow::Ok(client)
        })?;
        Ok(Box::new(PgFileLock {
            client: Some(client),
            runtime: self.runtime.clone(),
        }))
    }

    fn contains(&self, sha256: &[u8; 32]) -> anyhow::Result<bool> {
        self.wait(async {
            let client = self.connection().await?;
            let row = client
                .query_opt(
                    "SELECT 1 FROM kiln_files WHERE sha256 = $1",
                    &[&&sha256[..]],
                )
                .await
                .context("cannot look up a stored file")?;
            Ok(row.is_some())
        })
    }

    fn write(&self, sha256: &[u8; 32], size: u64, bytes: &mut dyn Read) -> anyhow::Result<()> {
        let mut client = self.wait(self.connection())?;
        // A transaction that is dropped before its commit rolls back (tokio-postgres sends
        // the rollback ahead of anything the connection runs next).
        let transaction = self
            .wait(client.transaction())
            .context("cannot begin writing a file")?;
        // An equal file written meanwhile (by a host that lost its turn) is replaced.
        self.wait(transaction.execute(
            "DELETE FROM kiln_file_chunks WHERE sha256 = $1",
            &[&&sha256[..]],
        ))
        .context("cannot write a file to the database")?;
        let mut buffer = vec![0u8; CHUNK_BYTES];
        let mut written = 0u64;
        let mut chunk: i32 = 0;
        loop {
            let filled = read_full(bytes, &mut buffer).context("cannot read the file to store")?;
            // An empty file still has one (empty) chunk.
            if filled == 0 && chunk > 0 {
                break;
            }
            self.wait(transaction.execute(
                "INSERT INTO kiln_file_chunks (sha256, chunk, bytes) VALUES ($1, $2, $3)",
                &[&&sha256[..], &chunk, &&buffer[..filled]],
            ))
            .context("cannot write a file's bytes to the database")?;
            written += filled as u64;
            chunk += 1;
            if filled < CHUNK_BYTES {
                break;
            }
        }
        anyhow::ensure!(
            written == size,
            "the file to store has {written} bytes, not {size}"
        );
        self.wait(transaction.execute(
            "INSERT INTO kiln_files (sha256, size) VALUES ($1, $2)
             ON CONFLICT (sha256) DO UPDATE SET size = EXCLUDED.size",
            &[&&sha256[..], &(size as i64)],
        ))
        .context("cannot write a file to the database")?;
        self.wait(transaction.commit())
            .context("cannot write a file to the database")
    }

    fn open(&self, sha256: &[u8; 32]) -> anyhow::Result<Option<Box<dyn SharedFileRead>>> {
        let size = self.wait(async {
            let client = self.connection().await?;
            let row = client
                .query_opt(
                    "SELECT size FROM kiln_files WHERE sha256 = $1",
                    &[&&sha256[..]],
                )
                .await
                .context("cannot open a stored file")?;
            anyhow::Ok(row.map(|row| row.get::<_, i64>(0) as u64))
        })?;
        Ok(size.map(|size| {
            Box::new(PgFileReader {
                pool: self.pool.clone(),
                runtime: self.runtime.clone(),
                sha256: *sha256,
                size,
                position: 0,
                chunk: None,
            }) as Box<dyn SharedFileRead>
        }))
    }

    fn remove(&self, sha256: &[u8; 32]) -> anyhow::Result<()> {
        self.wait(async {
            let mut client = self.connection().await?;
            let removed = async {
                let transaction = client.transaction().await?;
                transaction
                    .execute("DELETE FROM kiln_files WHERE sha256 = $1", &[&&sha256[..]])
                    .await?;
                transaction
                    .execute(
                        "DELETE FROM kiln_file_chunks WHERE sha256 = $1",
                        &[&&sha256[..]],
                    )
                    .await?;
                transaction.commit().await
            };
            removed
                .await
                .context("cannot remove a stored file from the database")
        })
    }

    fn stored(&self) -> anyhow::Result<Vec<[u8; 32]>> {
        self.wait(async {
            let client = self.connection().await?;
            let rows = client
                .query("SELECT sha256 FROM kiln_files", &[])
                .await
                .context("cannot list the stored files")?;
            Ok(rows
                .iter()
                .filter_map(|row| <[u8; 32]>::try_from(row.get::<_, &[u8]>(0)).ok())
                .collect())
        })
    }
}

/// Fills `buffer` as far as `bytes` has bytes; how many it read.
fn read_full(bytes: &mut dyn Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match bytes.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Reads a stored file chunk by chunk, each with a query of its own (blocking).
struct PgFileReader {
    pool: Pool,
    runtime: Handle,
    sha256: [u8; 32],
    size: u64,
    position: u64,
    /// The chunk read last: its number and bytes.
    chunk: Option<(i32, Vec<u8>)>,
}

impl PgFileReader {
    fn load(&mut self, number: i32) -> std::io::Result<&[u8]> {
        if self
            .chunk
            .as_ref()
            .is_none_or(|(loaded, _)| *loaded != number)
        {
            let bytes = super::postgres::wait(&self.runtime, async {
                let client = self.pool.get().await.map_err(std::io::Error::other)?;
                let row = client
                    .query_opt(
                        "SELECT bytes FROM kiln_file_chunks WHERE sha256 = $1 AND chunk = $2",
                        &[&&self.sha256[..], &number],
                    )
                    .await
                    .map_err(std::io::Error::other)?;
                row.map(|row| row.get::<_, Vec<u8>>(0)).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "a stored file lost its bytes while it was read",
                    )
                })
            })?;
            self.chunk = Some((number, bytes));
        }
        Ok(&self.chunk.as_ref().expect("just loaded").1)
    }
}

impl Read for PgFileReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.position >= self.size || buffer.is_empty() {
            return Ok(0);
        }
        let number = (self.position / CHUNK_BYTES as u64) as i32;
        let offset = (self.position % CHUNK_BYTES as u64) as usize;
        let chunk = self.load(number)?;
        let available = chunk.len().saturating_sub(offset);
        if available == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "a stored file is shorter than its record",
            ));
        }
        let count = available.min(buffer.len());
        buffer[..count].copy_from_slice(&chunk[offset..offset + count]);
        self.position += count as u64;
        Ok(count)
    }
}

impl Seek for PgFileReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let position = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.size.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = position.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.position)
    }
}
