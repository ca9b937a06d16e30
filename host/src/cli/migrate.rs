//! `kiln migrate`: copies a redb data directory into an empty PostgreSQL database, then
//! checks the copy, so that a deployment that outgrew one machine moves to several hosts
//! with its data: documents, indexes, tables, the deployment and its modules, environment
//! variables, scheduled jobs (they are documents), the admin and cursor keys, and the
//! bytes of stored files. Compiled artifacts stay behind: each host compiles its own.
//!
//! The copy goes through the persistence interface, key space by key space, in
//! transactions of a bounded size; the check reads both stores again and compares a
//! digest of every space and the bytes of every file. The server must be stopped: redb
//! refuses a second opener, and a copy of a changing store would be torn.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use clap::Args;
use sha2::{Digest, Sha256};

use super::serve::{ADMIN_KEY_FILE, CURSOR_KEY_FILE};
use crate::database::kv::{ALL_KEYS, KvStore, Op, Order, SharedFiles, Space};
use crate::storage::files::FileStore;

#[derive(Args)]
pub struct MigrateArgs {
    /// The data directory of the (stopped) server to copy from.
    #[arg(long, default_value = "./kiln-data")]
    pub data: PathBuf,
    /// The empty PostgreSQL database to copy into
    /// (`postgres://user:password@host:port/database`).
    #[arg(long, env = "KILN_DATABASE", hide_env_values = true)]
    pub database: String,
}

/// The key spaces copied: all but the compiled artifacts, which hosts over a shared
/// database keep on their own disks (`deploy::artifacts`) and compile from the sources.
const COPIED: [Space; 9] = [
    Space::Documents,
    Space::IndexEntries,
    Space::Tables,
    Space::Counters,
    Space::ModuleSources,
    Space::Deployment,
    Space::EnvironmentVariables,
    Space::CommitLog,
    Space::Settings,
];

/// Entries, and their bytes, per write transaction of the copy.
const BATCH_ENTRIES: usize = 2_000;
const BATCH_BYTES: usize = 8 << 20;

pub fn migrate(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    // Opening redb creates a missing database: a mistyped path would copy nothing.
    let database_file = args.data.join(crate::database::kv::redb_kv::DATABASE_FILE);
    if !database_file.is_file() {
        anyhow::bail!(
            "{} is not a Kiln data directory: it has no {}",
            args.data.display(),
            crate::database::kv::redb_kv::DATABASE_FILE
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let source = crate::database::open(&args.data).with_context(|| {
            format!(
                "cannot open the data directory {} (is a server still running on it?)",
                args.data.display()
            )
        })?;
        let target = crate::database::open_database(&args.data, Some(&args.database)).await?;
        tokio::task::spawn_blocking(move || copy_and_check(&args.data, &source, &target))
            .await
            .context("the copy stopped")?
    })?;
    Ok(ExitCode::SUCCESS)
}

fn copy_and_check(
    data: &Path,
    source: &Arc<dyn KvStore>,
    target: &Arc<dyn KvStore>,
) -> anyhow::Result<()> {
    let files = target
        .shared_files()
        .context("the target database keeps no file bytes")?;
    ensure_empty(target.as_ref(), files.as_ref())?;
    let blobs = FileStore::open(data, None)?;

    let view = source.snapshot()?;
    for space in COPIED {
        let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut batch_bytes = 0;
        let mut copied = 0usize;
        let mut flush = |batch: &mut Vec<(Vec<u8>, Vec<u8>)>| -> anyhow::Result<()> {
            if batch.is_empty() {
                return Ok(());
            }
            let mut txn = target.begin_write()?;
            let ops: Vec<Op<'_>> = batch
                .iter()
                .map(|(key, value)| Op::Put(space, key, value))
                .collect();
            txn.apply(&ops)?;
            txn.commit(true)?;
            copied += batch.len();
            batch.clear();
            Ok(())
        };
        view.scan(space, ALL_KEYS, Order::Asc, &mut |key, value| {
            batch.push((key.to_vec(), value.to_vec()));
            batch_bytes += key.len() + value.len();
            if batch.len() >= BATCH_ENTRIES || batch_bytes >= BATCH_BYTES {
                flush(&mut batch)?;
                batch_bytes = 0;
            }
            Ok(true)
        })
        .with_context(|| format!("cannot copy {}", space.name()))?;
        flush(&mut batch).with_context(|| format!("cannot copy {}", space.name()))?;
        if copied > 0 {
            println!("copied {}: {copied} entries", space.name());
        }
    }
    let settings = copy_keys(data, target.as_ref())?;
    if settings > 0 {
        println!("copied the admin and cursor keys: {settings}");
    }

    let stored = blobs.stored()?;
    let mut file_bytes = 0u64;
    for sha256 in &stored {
        let mut file = blobs
            .open_blob(sha256)?
            .context("a stored file vanished during the copy")?;
        let size = file.seek(std::io::SeekFrom::End(0))?;
        file.rewind()?;
        files
            .write(sha256, size, &mut file)
            .with_context(|| format!("cannot copy the stored file {}", hex::encode(sha256)))?;
        file_bytes += size;
    }
    if !stored.is_empty() {
        println!("copied files: {} ({file_bytes} bytes)", stored.len());
    }

    check(source.as_ref(), target.as_ref(), &blobs, files.as_ref())?;
    println!(
        "the copy matches: every key space and every file. Serve it with `kiln serve --database <url>`."
    );
    Ok(())
}

/// A new database holds only the commit-timestamp row every store starts with.
fn ensure_empty(target: &dyn KvStore, files: &dyn SharedFiles) -> anyhow::Result<()> {
    let view = target.snapshot()?;
    for space in Space::ALL {
        let mut found = None;
        view.scan(space, ALL_KEYS, Order::Asc, &mut |key, value| {
            let fresh = space == Space::Counters && value.iter().all(|byte| *byte == 0);
            if !fresh {
                found = Some(String::from_utf8_lossy(key).into_owned());
            }
            Ok(fresh)
        })?;
        if found.is_some() {
            anyhow::bail!(
                "the database already holds Kiln data ({}): migrate copies into an empty database only",
                space.name()
            );
        }
    }
    if !files.stored()?.is_empty() {
        anyhow::bail!(
            "the database already holds stored files: migrate copies into an empty database only"
        );
    }
    Ok(())
}

/// The admin key and the cursor key from their files in the data directory into the
/// database's settings, where hosts over it look for them; how many there were.
fn copy_keys(data: &Path, target: &dyn KvStore) -> anyhow::Result<usize> {
    let dir = Dir::open_ambient_dir(data, ambient_authority())
        .with_context(|| format!("cannot open the data directory {}", data.display()))?;
    let mut txn = target.begin_write()?;
    let mut copied = 0;
    let read = |name: &str| match dir.read_to_string(name) {
        Ok(text) if !text.trim().is_empty() => Ok(Some(text.trim().to_string())),
        Ok(_) => Ok(None),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", data.join(name).display())),
    };
    if let Some(key) = read(ADMIN_KEY_FILE)? {
        txn.put(Space::Settings, ADMIN_KEY_FILE.as_bytes(), key.as_bytes())?;
        copied += 1;
    }
    if let Some(key) = read(CURSOR_KEY_FILE)? {
        let bytes = hex::decode(&key).with_context(|| {
            format!(
                "{} is not a cursor key",
                data.join(CURSOR_KEY_FILE).display()
            )
        })?;
        txn.put(Space::Settings, CURSOR_KEY_FILE.as_bytes(), &bytes)?;
        copied += 1;
    }
    txn.commit(true)?;
    Ok(copied)
}

/// Reads both stores again: each key space must have the same entries (compared by count
/// and a digest of every key and value in order), and each file the same bytes.
fn check(
    source: &dyn KvStore,
    target: &dyn KvStore,
    blobs: &FileStore,
    files: &dyn SharedFiles,
) -> anyhow::Result<()> {
    let (source_view, target_view) = (source.snapshot()?, target.snapshot()?);
    // Settings: only the target has them (the source keeps its keys in files).
    for space in COPIED.into_iter().filter(|space| *space != Space::Settings) {
        let digest = |view: &dyn crate::database::kv::KvRead| -> anyhow::Result<(usize, [u8; 32])> {
            let mut hasher = Sha256::new();
            let mut count = 0;
            view.scan(space, ALL_KEYS, Order::Asc, &mut |key, value| {
                for part in [key, value] {
                    hasher.update((part.len() as u64).to_be_bytes());
                    hasher.update(part);
                }
                count += 1;
                Ok(true)
            })?;
            Ok((count, hasher.finalize().into()))
        };
        let (expected, copied) = (digest(source_view.as_ref())?, digest(target_view.as_ref())?);
        anyhow::ensure!(
            expected == copied,
            "the copy of {} differs: {} entries in the data directory, {} in the database",
            space.name(),
            expected.0,
            copied.0
        );
    }
    for sha256 in blobs.stored()? {
        let mut copy = files
            .open(&sha256)?
            .with_context(|| format!("the stored file {} was not copied", hex::encode(sha256)))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let read = copy.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        anyhow::ensure!(
            <[u8; 32]>::from(hasher.finalize()) == sha256,
            "the copy of the stored file {} differs",
            hex::encode(sha256)
        );
    }
    Ok(())
}
