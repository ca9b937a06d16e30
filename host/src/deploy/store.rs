//! Where deployments persist: three key spaces of the persistence interface (module
//! sources, compiled artifacts, the deployment record). A deployment is replaced in one
//! write transaction, so a restarted server sees the old one or the new one, never a mix.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::database::kv::{ALL_KEYS, KvStore, KvWrite, Op, Order, Space};
use crate::runtime::FunctionSpec;

// `Space::ModuleSources`: SHA-256 of a module's `.wasm` → the `.wasm` bytes as uploaded;
// and [`JsFileRecord::sha256`] of a JavaScript file → its [`JsFile`] as JSON.
// `Space::CompiledArtifacts`: SHA-256 of a module's `.wasm` → its component compiled by
// this server's engine.
// `Space::Deployment`: `"current"` → the live deployment, as a JSON [`DeploymentRecord`].
const CURRENT: &[u8] = b"current";

/// What a deployment is made of, as stored.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// Increases by one with every deploy.
    pub id: u64,
    pub deployed_at_ms: u64,
    pub modules: BTreeMap<String, ModuleRecord>,
    /// The tables and indexes it declared.
    #[serde(default)]
    pub schema: crate::database::schema::Schema,
    /// Its auth providers (`[auth]`), as deployed. Deployments stored before auth existed
    /// have none.
    #[serde(default)]
    pub auth: crate::auth::AuthConfig,
    /// The files of its JavaScript app by path (`chat/messages.js`, `_deps/x.js`), each
    /// stored under its hash, which the Convex CLI compares with its own to send only the
    /// files that changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub js_files: BTreeMap<String, JsFileRecord>,
    /// Its cron jobs by name: those of `kiln.toml` and those of the JS app's `crons.js`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub crons: BTreeMap<String, crate::scheduler::crons::CronSpec>,
    /// The crons its JS app declared (also in `crons`): a deploy of the same app keeps them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub js_crons: BTreeMap<String, crate::scheduler::crons::CronSpec>,
}

/// One file of the JavaScript app, as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JsFileRecord {
    /// Hex SHA-256 of the source followed by the source map (none: empty), as the Convex
    /// CLI hashes a module; the key of its [`JsFile`] in the sources table.
    pub sha256: String,
}

/// A file of the JavaScript app: its source, and the source map a Convex CLI push sends.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JsFile {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_map: Option<String>,
}

impl JsFile {
    /// The Convex CLI's hash of a module: hex SHA-256 of the source, then the source map.
    pub fn sha256(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(self.source.as_bytes());
        hasher.update(self.source_map.as_deref().unwrap_or_default().as_bytes());
        hex::encode(hasher.finalize())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModuleRecord {
    /// Hex SHA-256 of the `.wasm`: the key of its source and artifact. For a module of the
    /// JavaScript app, the app's key (`runtime::js::app_hash`), shared by all its modules,
    /// whose stored source is the app's snapshot.
    pub sha256: String,
    /// The functions it declared at deploy.
    pub functions: Vec<FunctionSpec>,
    /// A module of the JavaScript app: its component is the app's snapshot, which names
    /// functions by whole path.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub js: bool,
}

/// A module that is new to the store: its source and compiled artifact (a JavaScript
/// file has none).
pub struct NewModuleBlobs {
    pub sha256: String,
    pub source: Vec<u8>,
    pub artifact: Vec<u8>,
}

impl NewModuleBlobs {
    pub fn js_file(file: &JsFile) -> Self {
        Self {
            sha256: file.sha256(),
            source: serde_json::to_vec(file).expect("a JsFile serializes"),
            artifact: Vec::new(),
        }
    }
}

pub fn current_deployment(kv: &dyn KvStore) -> anyhow::Result<Option<DeploymentRecord>> {
    let Some(json) = kv.snapshot()?.get(Space::Deployment, CURRENT)? else {
        return Ok(None);
    };
    let record =
        serde_json::from_slice(&json).context("the stored deployment record is corrupt")?;
    Ok(Some(record))
}

pub fn compiled_artifact(kv: &dyn KvStore, sha256: &str) -> anyhow::Result<Option<Vec<u8>>> {
    blob(kv, Space::CompiledArtifacts, sha256)
}

pub fn module_source(kv: &dyn KvStore, sha256: &str) -> anyhow::Result<Option<Vec<u8>>> {
    blob(kv, Space::ModuleSources, sha256)
}

/// A file of the JavaScript app, by its [`JsFileRecord::sha256`].
pub fn js_file(kv: &dyn KvStore, sha256: &str) -> anyhow::Result<Option<JsFile>> {
    blob(kv, Space::ModuleSources, sha256)?
        .map(|json| serde_json::from_slice(&json).context("a stored JavaScript file is corrupt"))
        .transpose()
}

fn blob(kv: &dyn KvStore, space: Space, sha256: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let key = hex::decode(sha256).context("invalid module hash")?;
    kv.snapshot()?.get(space, &key)
}

/// Replaces a stale artifact (compiled by another engine) with a fresh one.
pub fn save_artifact(kv: &dyn KvStore, sha256: &str, artifact: &[u8]) -> anyhow::Result<()> {
    let key = hex::decode(sha256).context("invalid module hash")?;
    let mut txn = kv.begin_write()?;
    txn.put(Space::CompiledArtifacts, &key, artifact)?;
    txn.commit(true)
}

/// Makes `record` the stored deployment inside `txn` (a deploy's schema commit, so the
/// two land together): stores the new modules' blobs, writes the record, and deletes the
/// blobs no module refers to any more.
pub fn write_deployment(
    txn: &mut dyn KvWrite,
    record: &DeploymentRecord,
    new_modules: &[NewModuleBlobs],
) -> anyhow::Result<()> {
    // `STORE_DEPLOYMENT=<module>`: storing a deployment with that module fails, as a full
    // disk would, inside the group commit (tests of a batch member failing alone).
    if let Some(name) = record
        .modules
        .keys()
        .find(|name| crate::failpoints::armed("STORE_DEPLOYMENT", name))
    {
        anyhow::bail!("injected failure: storing a deployment with module `{name}`");
    }
    // Deployments follow each other: over a shared database another host may have stored
    // one since this deploy began from the one before (checked under the store's commit
    // lock, so two deploys never both win).
    if let Some(stored) = txn.get(Space::Deployment, CURRENT)? {
        let stored: DeploymentRecord =
            serde_json::from_slice(&stored).context("the stored deployment record is corrupt")?;
        if stored.id + 1 != record.id {
            anyhow::bail!(
                "another deploy (deployment {}) was stored while this one ran; deploy again",
                stored.id
            );
        }
    }
    let json = serde_json::to_string(record)?;
    let referenced: BTreeSet<Vec<u8>> = record
        .modules
        .values()
        .map(|module| &module.sha256)
        .chain(record.js_files.values().map(|file| &file.sha256))
        .map(hex::decode)
        .collect::<Result<_, _>>()
        .context("invalid module hash")?;
    let keys: Vec<Vec<u8>> = new_modules
        .iter()
        .map(|module| hex::decode(&module.sha256).context("invalid module hash"))
        .collect::<anyhow::Result<_>>()?;
    let mut ops = Vec::new();
    for (module, key) in new_modules.iter().zip(&keys) {
        ops.push(Op::Put(Space::ModuleSources, key, &module.source));
        if !module.artifact.is_empty() {
            ops.push(Op::Put(Space::CompiledArtifacts, key, &module.artifact));
        }
    }
    ops.push(Op::Put(Space::Deployment, CURRENT, json.as_bytes()));
    txn.apply(&ops)?;
    // The blobs no module refers to any more.
    for space in [Space::ModuleSources, Space::CompiledArtifacts] {
        let mut unreferenced = Vec::new();
        txn.scan(space, ALL_KEYS, Order::Asc, &mut |key, _| {
            if !referenced.contains(key) {
                unreferenced.push(key.to_vec());
            }
            Ok(true)
        })?;
        let ops: Vec<Op<'_>> = unreferenced
            .iter()
            .map(|key| Op::Delete(space, key))
            .collect();
        txn.apply(&ops)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{FunctionKind, Visibility};

    /// `write_deployment` in a transaction of its own.
    fn replace_deployment(
        kv: &dyn KvStore,
        record: &DeploymentRecord,
        new_modules: &[NewModuleBlobs],
    ) -> anyhow::Result<()> {
        let mut txn = kv.begin_write()?;
        write_deployment(&mut *txn, record, new_modules)?;
        txn.commit(true)
    }

    fn record(id: u64, modules: &[(&str, &str)]) -> DeploymentRecord {
        DeploymentRecord {
            id,
            deployed_at_ms: 0,
            schema: Default::default(),
            auth: Default::default(),
            js_files: Default::default(),
            crons: Default::default(),
            js_crons: Default::default(),
            modules: modules
                .iter()
                .map(|(name, sha)| {
                    let spec = FunctionSpec {
                        name: "default".into(),
                        kind: FunctionKind::Query,
                        visibility: Visibility::Public,
                        args: None,
                        returns: None,
                        route: None,
                    };
                    (
                        name.to_string(),
                        ModuleRecord {
                            sha256: sha.to_string(),
                            functions: vec![spec],
                            js: false,
                        },
                    )
                })
                .collect(),
        }
    }

    fn blobs(sha: &str) -> NewModuleBlobs {
        NewModuleBlobs {
            sha256: sha.into(),
            source: b"src".to_vec(),
            artifact: b"art".to_vec(),
        }
    }

    #[test]
    fn a_replaced_deployment_drops_unreferenced_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::database::open(dir.path()).unwrap();
        let db = db.as_ref();
        assert!(current_deployment(db).unwrap().is_none());

        replace_deployment(
            db,
            &record(1, &[("a", "aa"), ("b", "bb")]),
            &[blobs("aa"), blobs("bb")],
        )
        .unwrap();
        replace_deployment(db, &record(2, &[("a", "aa"), ("c", "cc")]), &[blobs("cc")]).unwrap();

        let current = current_deployment(db).unwrap().unwrap();
        assert_eq!(current.id, 2);
        assert_eq!(current.modules.keys().collect::<Vec<_>>(), ["a", "c"]);
        assert_eq!(
            module_source(db, "aa").unwrap().as_deref(),
            Some(&b"src"[..])
        );
        assert_eq!(
            compiled_artifact(db, "cc").unwrap().as_deref(),
            Some(&b"art"[..])
        );
        assert!(module_source(db, "bb").unwrap().is_none());
        assert!(compiled_artifact(db, "bb").unwrap().is_none());
    }

    #[test]
    fn a_record_stored_before_auth_existed_still_loads() {
        let old = r#"{"id":3,"deployed_at_ms":5,"modules":{},"schema":{"tables":{}}}"#;
        let record: DeploymentRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.id, 3);
        assert!(record.auth.providers.is_empty());
    }
}
