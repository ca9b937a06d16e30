//! The persistence interface: everything Kiln stores goes through it (DESIGN.md section 8).
//!
//! It is an ordered key-value store of a few named key spaces, with consistent read
//! snapshots and atomic write transactions. Everything above it (the document store's
//! tables and indexes, the committer, deployments, the scheduler's and storage's system
//! tables) is written once against it; the implementations are redb (the embedded default,
//! [`redb_kv`]) and PostgreSQL.
//!
//! Keys compare as bytes. Values are opaque bytes. A write transaction sees its own writes.

pub mod postgres;
pub mod postgres_files;
pub mod redb_kv;

use std::ops::Bound;
use std::sync::Arc;

/// Scan direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// The key spaces. Each has its own keys; the comments say what they map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Space {
    /// `document_key(id)` → the document as Convex JSON text, system fields included.
    Documents,
    /// Index key (`database::indexes`) → `document_key` of the document it points at.
    IndexEntries,
    /// Table name → its `TableRecord` as JSON.
    Tables,
    /// Counter name → a big-endian `u64`.
    Counters,
    /// Module hash → its uploaded source (`deploy::store`).
    ModuleSources,
    /// Module hash → its component compiled by this server's engine.
    CompiledArtifacts,
    /// `"current"` → the live deployment as JSON.
    Deployment,
    /// Environment variable name → its value.
    EnvironmentVariables,
    /// Commit timestamp (big-endian) → what the commit changed (`commit_log`), kept a
    /// while so that other hosts over a shared store learn of it. Unused by a store that
    /// is not shared.
    CommitLog,
    /// Name → value: what every host over a shared store must agree on (the keys that
    /// seal cursors and upload tokens, a generated admin key).
    Settings,
}

impl Space {
    pub const ALL: [Space; 10] = [
        Space::Documents,
        Space::IndexEntries,
        Space::Tables,
        Space::Counters,
        Space::ModuleSources,
        Space::CompiledArtifacts,
        Space::Deployment,
        Space::EnvironmentVariables,
        Space::CommitLog,
        Space::Settings,
    ];

    /// The space's name in storage (redb's table name, PostgreSQL's `space` column).
    pub fn name(self) -> &'static str {
        match self {
            Space::Documents => "documents",
            Space::IndexEntries => "index_entries",
            Space::Tables => "tables",
            Space::Counters => "counters",
            Space::ModuleSources => "module_sources",
            Space::CompiledArtifacts => "compiled_artifacts",
            Space::Deployment => "deployment",
            Space::EnvironmentVariables => "environment_variables",
            Space::CommitLog => "commit_log",
            Space::Settings => "settings",
        }
    }
}

/// A range of keys.
pub type KeyRange<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// Every key of a space.
pub const ALL_KEYS: KeyRange<'static> = (Bound::Unbounded, Bound::Unbounded);

/// What a visitor of a scan says after each entry.
pub type Visit<'v> = dyn FnMut(&[u8], &[u8]) -> anyhow::Result<bool> + 'v;

/// What a visitor of an index scan ([`KvRead::scan_index`]) says after each entry: the
/// entry's key, the document key it holds, and the document if the store fetched it.
pub type VisitIndex<'v> = dyn FnMut(&[u8], &[u8], Option<&[u8]>) -> anyhow::Result<bool> + 'v;

/// Reading: a snapshot, or a write transaction (which sees its own writes).
pub trait KvRead {
    /// Calls `found` with the value stored under `key` (borrowed, not copied) if there is
    /// one; returns whether there was.
    fn get_with(
        &self,
        space: Space,
        key: &[u8],
        found: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<bool>;

    /// Calls `visit` with each entry of `range` in `order`, until it returns `false`.
    fn scan(
        &self,
        space: Space,
        range: KeyRange<'_>,
        order: Order,
        visit: &mut Visit<'_>,
    ) -> anyhow::Result<()>;

    /// [`KvRead::scan`] over [`Space::IndexEntries`], where `visit` also gets the document
    /// each entry points at (its [`Space::Documents`] value) when the store fetched it with
    /// the entry, as a store over the network does to save a round trip per document;
    /// `None` when it did not (`visit` looks it up if it needs it).
    fn scan_index(
        &self,
        range: KeyRange<'_>,
        order: Order,
        visit: &mut VisitIndex<'_>,
    ) -> anyhow::Result<()> {
        self.scan(
            Space::IndexEntries,
            range,
            order,
            &mut |key, document_key| visit(key, document_key, None),
        )
    }

    /// The value under `key`, copied.
    fn get(&self, space: Space, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        let mut value = None;
        self.get_with(space, key, &mut |bytes| {
            value = Some(bytes.to_vec());
            Ok(())
        })?;
        Ok(value)
    }

    /// A counter's value (see [`Space::Counters`]).
    fn counter(&self, name: &str) -> anyhow::Result<Option<u64>> {
        self.get(Space::Counters, name.as_bytes())?
            .map(|bytes| decode_counter(&bytes))
            .transpose()
    }
}

/// One change a write transaction applies.
#[derive(Clone, Copy, Debug)]
pub enum Op<'a> {
    Put(Space, &'a [u8], &'a [u8]),
    Delete(Space, &'a [u8]),
}

/// A write transaction: nothing it does is seen by others until it commits, and a dropped
/// one changes nothing.
pub trait KvWrite: KvRead {
    /// Applies `ops` in order (a batch costs one table lookup per space, not per op).
    fn apply(&mut self, ops: &[Op<'_>]) -> anyhow::Result<()>;

    /// Makes the changes durable (or, with `durable` false, visible now and durable with
    /// the next durable commit: steps a crash may undo).
    fn commit(self: Box<Self>, durable: bool) -> anyhow::Result<()>;

    fn put(&mut self, space: Space, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        self.apply(&[Op::Put(space, key, value)])
    }

    fn delete(&mut self, space: Space, key: &[u8]) -> anyhow::Result<()> {
        self.apply(&[Op::Delete(space, key)])
    }

    fn set_counter(&mut self, name: &str, value: u64) -> anyhow::Result<()> {
        self.put(Space::Counters, name.as_bytes(), &value.to_be_bytes())
    }
}

/// A store: read snapshots and write transactions.
pub trait KvStore: Send + Sync {
    /// A consistent view of the last commit; it stays valid while it is held.
    fn snapshot(&self) -> anyhow::Result<Arc<dyn KvRead + Send + Sync>>;

    /// A write transaction. Only one runs at a time per store: another waits.
    fn begin_write(&self) -> anyhow::Result<Box<dyn KvWrite + '_>>;

    /// Which implementation this is (`redb`, `postgres`), for logs and `/version`.
    fn kind(&self) -> &'static str;

    /// Whether other processes write to this store too (several hosts over one
    /// database). Then every commit is logged in [`Space::CommitLog`] for the others, and
    /// ids are drawn from the store's sequences rather than counted in memory.
    fn shared(&self) -> bool {
        false
    }

    /// Draws the next value of the sequence `name` (a shared store's), which starts at
    /// `first`; no two draws, from any host, get the same value.
    fn next_in_sequence(&self, name: &str, first: u64) -> anyhow::Result<u64> {
        let _ = (name, first);
        anyhow::bail!("a {} store has no sequences", self.kind())
    }

    /// Makes the sequence `name` hand out nothing below `next`.
    fn set_sequence_at_least(&self, name: &str, next: u64) -> anyhow::Result<()> {
        let _ = (name, next);
        anyhow::bail!("a {} store has no sequences", self.kind())
    }

    /// Notified when another process may have committed (a shared store's): whoever
    /// follows the commit log reads it then. A store that is not shared has none.
    fn commit_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }

    /// Where a shared store keeps the bytes of stored files, so that every host serves
    /// every file; `None` for a store of one host (they stay on its disk).
    fn shared_files(&self) -> Option<Arc<dyn SharedFiles>> {
        None
    }
}

/// The bytes of stored files (`ctx.storage`) in a shared store, named by their SHA-256.
/// Every call blocks (call from a blocking thread or `block_in_place`).
pub trait SharedFiles: Send + Sync {
    /// Takes this hash's turn, across every host: writing a file and recording it, and
    /// checking that none records one and removing it, each hold the turn throughout, so
    /// that a file is never removed between being written and being recorded. The turn
    /// ends when the returned lock is dropped.
    fn lock(&self, sha256: &[u8; 32]) -> anyhow::Result<Box<dyn FileLock>>;

    /// Whether a file with this hash is stored.
    fn contains(&self, sha256: &[u8; 32]) -> anyhow::Result<bool>;

    /// Stores the `size` bytes `bytes` reads under `sha256`, whole or not at all.
    fn write(
        &self,
        sha256: &[u8; 32],
        size: u64,
        bytes: &mut dyn std::io::Read,
    ) -> anyhow::Result<()>;

    /// The stored file with this hash, to read (and seek in).
    fn open(&self, sha256: &[u8; 32]) -> anyhow::Result<Option<Box<dyn SharedFileRead>>>;

    /// Removes the file with this hash, if it is there.
    fn remove(&self, sha256: &[u8; 32]) -> anyhow::Result<()>;

    /// The hashes of every stored file.
    fn stored(&self) -> anyhow::Result<Vec<[u8; 32]>>;
}

/// A turn on one stored file's hash ([`SharedFiles::lock`]), held until dropped.
pub trait FileLock: Send {}

/// A stored file being read.
pub trait SharedFileRead: std::io::Read + std::io::Seek + Send {}

impl<T: std::io::Read + std::io::Seek + Send> SharedFileRead for T {}

pub fn decode_counter(bytes: &[u8]) -> anyhow::Result<u64> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("corrupt counter: {} bytes", bytes.len()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Every key in `space` (for small spaces: table records, environment variables).
pub fn all_entries(read: &dyn KvRead, space: Space) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut entries = Vec::new();
    read.scan(space, ALL_KEYS, Order::Asc, &mut |key, value| {
        entries.push((key.to_vec(), value.to_vec()));
        Ok(true)
    })?;
    Ok(entries)
}
