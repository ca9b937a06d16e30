//! `commit` (issue 16, part 4): the commit path alone, in process, on redb on disk. A table
//! `messages` (indexed `by_channel`, as the chat app's) first gets 10⁵ documents; then
//! mutation after mutation inserts a batch's worth of messages in one commit: 1, 11 and 32,
//! the batch sizes group commit makes at 1 and 32 clients. For each size it prints the time
//! per commit, the committer thread's CPU per commit, what a commit wrote to storage, and
//! the inserts per second the committer could take at that size: the ceiling that
//! `messages:send` over HTTP is measured against.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_host::database::committer::CommitterOptions;
use kiln_host::database::store::DocumentStore;
use kiln_host::database::transaction::TransactionLimits;
use kiln_host::values::Value;

use super::profile::ProcessCounters;

/// Documents in the table before the commits are timed: enough for a B-tree a few levels
/// deep, so a random key and a growing key touch different pages.
const PREFILLED: usize = 100_000;
/// How long each batch size is measured.
const MEASURED: Duration = Duration::from_secs(3);

fn message(channel: &str, body: &str) -> Value {
    Value::Object(
        [
            ("channel".to_string(), Value::from(channel)),
            ("author".to_string(), Value::from("bench")),
            ("body".to_string(), Value::from(body)),
        ]
        .into_iter()
        .collect(),
    )
}

async fn insert_messages(store: &DocumentStore, count: usize) -> anyhow::Result<()> {
    store
        .run_mutation(|txn| {
            for _ in 0..count {
                txn.insert("messages", message("load", "hello"))?;
            }
            Ok(())
        })
        .await
        .map_err(|err| anyhow::anyhow!("inserting {count} messages failed: {err:?}"))?;
    Ok(())
}

pub async fn figures() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let db = kiln_host::database::open(data.path())?;
    let store = Arc::new(DocumentStore::open(
        db,
        TransactionLimits::default(),
        CommitterOptions::default(),
    )?);
    store
        .run_mutation(|txn| {
            txn.create_table(
                "messages",
                &[("by_channel".to_string(), vec!["channel".to_string()])],
            )
        })
        .await
        .map_err(|err| anyhow::anyhow!("creating the table failed: {err:?}"))?;
    for _ in 0..PREFILLED / 1_000 {
        insert_messages(&store, 1_000).await?;
    }
    for batch in [1, 11, 32] {
        let before = ProcessCounters::read(std::process::id())?;
        let started = Instant::now();
        let mut commits = 0u64;
        while started.elapsed() < MEASURED {
            insert_messages(&store, batch).await?;
            commits += 1;
        }
        let elapsed = started.elapsed();
        let after = ProcessCounters::read(std::process::id())?;
        let per_commit = |total: u64| total as f64 / commits as f64;
        println!(
            "{batch:>2} inserts a commit: {:>6.0} µs a commit ({:>4.0} µs of it the committer's CPU), {:>5.1} KiB written; {:>7.0} inserts/s",
            elapsed.as_secs_f64() * 1e6 / commits as f64,
            per_commit(after.committer_cpu_us - before.committer_cpu_us),
            per_commit(after.written_to_storage - before.written_to_storage) / 1024.0,
            (commits * batch as u64) as f64 / elapsed.as_secs_f64(),
        );
    }
    Ok(())
}
