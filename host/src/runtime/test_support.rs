//! What the runtime's unit tests share: a runtime on a fresh store with the test
//! component `probe` loaded.

use std::sync::Arc;

use crate::config::Limits;
use crate::database::committer::CommitterOptions;
use crate::database::cursor_seal::CursorKey;
use crate::database::store::DocumentStore;
use crate::database::transaction::TransactionLimits;
use crate::fetch::FetchClient;
use crate::runtime::{LoadedModule, Runtime};

/// The test component `probe`, built by `cargo xtask build-components`.
fn probe_wasm() -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/components/probe.wasm");
    std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read {}: {err}. Build the test components first: cargo xtask build-components",
            path.display()
        )
    })
}

/// A runtime with `limits` over a store in a fresh directory (kept alive by the returned
/// guard), and `probe` loaded in it.
pub(crate) async fn probe_runtime(
    limits: Limits,
) -> (tempfile::TempDir, Arc<Runtime>, LoadedModule) {
    let data = tempfile::tempdir().unwrap();
    let db = crate::database::open(data.path()).unwrap();
    let store = Arc::new(
        DocumentStore::open(
            db,
            TransactionLimits::default(),
            CommitterOptions::default(),
        )
        .unwrap(),
    );
    let runtime = Arc::new(
        Runtime::new(
            limits,
            store,
            CursorKey::generate().unwrap(),
            Arc::new(FetchClient::new(&Default::default()).unwrap()),
        )
        .unwrap(),
    );
    let compiled = runtime.compile(&probe_wasm()).unwrap();
    let module = runtime
        .load_module(&compiled.component, None)
        .await
        .unwrap();
    (data, runtime, module)
}
