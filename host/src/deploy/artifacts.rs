//! Where compiled artifacts (components compiled by this server's engine) are kept, keyed
//! by the hash of the module they were compiled from.
//!
//! * One host (redb): in the store beside the module sources, so that a restart reuses
//!   them and a deploy stores source and artifact in one commit.
//! * Several hosts over a shared database: in a folder of each host's own data directory
//!   (`compiled/<hash>`). An artifact is native code for one engine on one machine;
//!   hosts may differ in either, and megabytes of native code per module would otherwise
//!   travel through the commit lock. The sources stay in the database, so a host that
//!   lacks an artifact (a new host, or one with another engine) compiles the module once
//!   and keeps the result.
//!
//! A stale or foreign artifact is harmless: the engine refuses it and the module is
//! compiled again ([`super::Deployments`] reports it as recompiled).

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;
use cap_std::ambient_authority;
use cap_std::fs::Dir;

use super::store;
use crate::database::kv::KvStore;

const FOLDER: &str = "compiled";

pub enum ArtifactCache {
    /// In the store (`Space::CompiledArtifacts`).
    InStore,
    /// In this host's `data/compiled/`.
    OnDisk(Dir),
}

impl ArtifactCache {
    /// The cache for `db`: on this host's disk under `data` if other hosts share `db`.
    pub fn for_store(db: &dyn KvStore, data: &Path) -> anyhow::Result<Self> {
        if !db.shared() {
            return Ok(Self::InStore);
        }
        let data_dir = Dir::open_ambient_dir(data, ambient_authority())
            .with_context(|| format!("cannot open the data directory {}", data.display()))?;
        data_dir
            .create_dir_all(FOLDER)
            .context("cannot create the compiled-artifact folder")?;
        Ok(Self::OnDisk(data_dir.open_dir(FOLDER)?))
    }

    /// Whether a deploy stores artifacts with the module sources.
    pub fn in_store(&self) -> bool {
        matches!(self, Self::InStore)
    }

    /// The artifact compiled from the module with hash `sha256`, if one is kept.
    pub fn get(&self, db: &dyn KvStore, sha256: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self {
            Self::InStore => store::compiled_artifact(db, sha256),
            Self::OnDisk(dir) => match dir.read(file_name(sha256)?) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(err) => Err(err).context("cannot read a compiled artifact"),
            },
        }
    }

    /// Keeps `artifact` as the one compiled from the module with hash `sha256`.
    pub fn put(&self, db: &dyn KvStore, sha256: &str, artifact: &[u8]) -> anyhow::Result<()> {
        match self {
            Self::InStore => store::save_artifact(db, sha256, artifact),
            Self::OnDisk(dir) => {
                let name = file_name(sha256)?;
                // Written whole under a temporary name, then renamed: a reader never sees
                // half an artifact, and hosts sharing a folder by mistake do not mix them.
                let mut random = [0u8; 8];
                getrandom::fill(&mut random)
                    .map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
                let temporary = format!("{name}.{}.tmp", hex::encode(random));
                let mut file = dir
                    .create(&temporary)
                    .context("cannot write a compiled artifact")?;
                file.write_all(artifact)
                    .and_then(|()| file.sync_all())
                    .context("cannot write a compiled artifact")?;
                dir.rename(&temporary, dir, &name)
                    .context("cannot keep a compiled artifact")
            }
        }
    }
}

/// The file of an artifact: the module hash, checked to be hex (never a path).
fn file_name(sha256: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        !sha256.is_empty() && sha256.bytes().all(|byte| byte.is_ascii_hexdigit()),
        "invalid module hash"
    );
    Ok(sha256.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::kv::redb_kv::RedbStore;

    #[test]
    fn artifacts_round_trip_on_disk_under_their_hash_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(FOLDER)).unwrap();
        let folder = Dir::open_ambient_dir(dir.path().join(FOLDER), ambient_authority()).unwrap();
        let cache = ArtifactCache::OnDisk(folder);
        let db = RedbStore::in_memory().unwrap();
        assert!(cache.get(&db, "ab12").unwrap().is_none());
        cache.put(&db, "ab12", b"native code").unwrap();
        assert_eq!(cache.get(&db, "ab12").unwrap().unwrap(), b"native code");
        assert!(dir.path().join(FOLDER).join("ab12").exists());
        // Nothing else is ever used as a name.
        assert!(cache.put(&db, "../escape", b"x").is_err());
        assert!(cache.get(&db, "").is_err());
    }
}
