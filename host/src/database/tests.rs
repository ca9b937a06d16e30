//! Tests of the document store as a whole: transactions over a real redb file, the
//! committer's validation and group commit, and durability across reopening.

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_values::Value;

use super::committer::{CommitError, CommitterOptions};
use super::indexes::{Bound, IndexRange};
use super::persistence::Order;
use super::store::DocumentStore;
use super::transaction::{DbError, TransactionLimits};
use super::write_log::Conflict;

fn object(fields: &[(&str, Value)]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    )
}

fn open(dir: &tempfile::TempDir) -> DocumentStore {
    let db = crate::database::open(dir.path()).unwrap();
    DocumentStore::open(
        db,
        TransactionLimits::default(),
        CommitterOptions::default(),
    )
    .unwrap()
}

fn messages_index() -> Vec<(String, Vec<String>)> {
    vec![("by_channel".to_string(), vec!["channel".to_string()])]
}

fn message(channel: &str, body: &str) -> Value {
    object(&[
        ("channel", Value::from(channel)),
        ("body", Value::from(body)),
    ])
}

/// A store whose table `messages` (indexed `by_channel`) holds these (channel, body)
/// messages, inserted in this order.
async fn messages_store(dir: &tempfile::TempDir, messages: &[(&str, &str)]) -> DocumentStore {
    let store = open(dir);
    store
        .run_mutation(|txn| {
            txn.create_table("messages", &messages_index())?;
            for (channel, body) in messages {
                txn.insert("messages", message(channel, body))?;
            }
            Ok(())
        })
        .await
        .unwrap();
    store
}

/// Inserts `n` small documents into `notes` in one mutation.
async fn insert_notes(store: &DocumentStore, n: i64) -> Result<(), super::store::MutationError> {
    store
        .run_mutation(|txn| {
            for i in 0..n {
                txn.insert("notes", object(&[("i", Value::Int64(i))]))?;
            }
            Ok(())
        })
        .await
        .map(|_| ())
}

fn bodies(found: &[(Vec<u8>, super::documents::Document)]) -> Vec<String> {
    found
        .iter()
        .map(|(_, d)| match &d.fields["body"] {
            Value::String(s) => s.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn documents_are_written_read_back_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let ((id, other), _) = store
        .run_mutation(|txn| {
            let id = txn.insert(
                "notes",
                object(&[("text", Value::from("one")), ("n", Value::Int64(1))]),
            )?;
            let other = txn.insert("notes", object(&[("text", Value::from("two"))]))?;
            txn.patch(&id, object(&[("n", Value::Int64(2))]))?;
            // Read-your-writes inside the mutation.
            assert_eq!(txn.get(&id)?.unwrap().fields["n"], Value::Int64(2));
            Ok((id, other))
        })
        .await
        .unwrap();
    store
        .run_mutation(|txn| {
            txn.replace(&other, object(&[("text", Value::from("TWO"))]))?;
            Ok(())
        })
        .await
        .unwrap();
    drop(store);

    let store = open(&dir);
    let mut txn = store.begin_query().unwrap();
    let note = txn.get(&id).unwrap().unwrap();
    assert_eq!(note.fields["text"], Value::from("one"));
    assert_eq!(note.fields["n"], Value::Int64(2));
    assert_eq!(
        txn.get(&other).unwrap().unwrap().fields["text"],
        Value::from("TWO")
    );
    let all = txn
        .scan(
            "notes",
            "by_creation_time",
            &IndexRange::default(),
            Order::Asc,
            10,
            None,
        )
        .unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        all[0].1.creation_time < all[1].1.creation_time,
        "creation order"
    );

    store.run_mutation(|txn| txn.delete(&id)).await.unwrap();
    assert!(store.begin_query().unwrap().get(&id).unwrap().is_none());
}

#[tokio::test]
async fn queries_may_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut txn = store.begin_query().unwrap();
    let err = txn.insert("notes", object(&[])).unwrap_err();
    assert!(matches!(err, DbError::Forbidden(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "insert is not allowed in a query: queries read the database, mutations write it"
    );
}

/// A nested mutation that fails is rolled back to its savepoint: its writes, its new
/// table and its write counts go; the caller's writes before and after stay and commit.
#[tokio::test]
async fn rolling_back_to_a_savepoint_undoes_only_the_writes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut txn = store.begin_mutation().unwrap();
    txn.insert("notes", object(&[("n", Value::Int64(1))]))
        .unwrap();
    let savepoint = txn.savepoint();
    txn.insert("notes", object(&[("n", Value::Int64(2))]))
        .unwrap();
    txn.insert("created_by_callee", object(&[])).unwrap();
    txn.roll_back_to(savepoint);
    assert!(
        txn.table_names()
            .iter()
            .all(|name| name != "created_by_callee")
    );
    txn.insert("notes", object(&[("n", Value::Int64(3))]))
        .unwrap();
    store.commit(txn).await.unwrap();
    assert_eq!(count(&store, "notes"), 2);
    assert!(
        !store
            .begin_query()
            .unwrap()
            .table_names()
            .contains(&"created_by_callee".to_string())
    );

    // While a query it called runs in it, a mutation's transaction refuses writes.
    let mut txn = store.begin_mutation().unwrap();
    assert!(txn.set_writable(false));
    let err = txn.insert("notes", object(&[])).unwrap_err();
    assert!(matches!(err, DbError::Forbidden(_)), "{err}");
    assert!(!txn.set_writable(true));
    txn.insert("notes", object(&[])).unwrap();
}

#[tokio::test]
async fn index_ranges_follow_the_index_and_see_the_transactions_own_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = messages_store(&dir, &[("a", "a1"), ("b", "b1"), ("a", "a2"), ("c", "c1")]).await;

    let mut txn = store.begin_mutation().unwrap();
    txn.insert("messages", message("a", "a3")).unwrap();
    let range = IndexRange {
        equal: vec![("channel".into(), Value::from("a"))],
        ..Default::default()
    };
    let found = txn
        .scan("messages", "by_channel", &range, Order::Asc, 10, None)
        .unwrap();
    assert_eq!(bodies(&found), ["a1", "a2", "a3"]);
    let found = txn
        .scan("messages", "by_channel", &range, Order::Desc, 2, None)
        .unwrap();
    assert_eq!(bodies(&found), ["a3", "a2"]);
    // Continue after the last key of the first batch.
    let rest = txn
        .scan(
            "messages",
            "by_channel",
            &range,
            Order::Desc,
            2,
            Some(&found[1].0),
        )
        .unwrap();
    assert_eq!(bodies(&rest), ["a1"]);

    let bounded = IndexRange {
        lower: Some((
            "channel".into(),
            Bound {
                value: Value::from("a"),
                inclusive: false,
            },
        )),
        upper: Some((
            "channel".into(),
            Bound {
                value: Value::from("c"),
                inclusive: true,
            },
        )),
        ..Default::default()
    };
    let found = txn
        .scan("messages", "by_channel", &bounded, Order::Asc, 10, None)
        .unwrap();
    assert_eq!(bodies(&found), ["b1", "c1"]);

    let wrong_order = IndexRange {
        equal: vec![("body".into(), Value::from("a1"))],
        ..Default::default()
    };
    let err = txn
        .scan("messages", "by_channel", &wrong_order, Order::Asc, 10, None)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("ranges must follow the index's field order"),
        "{err}"
    );
    let err = txn
        .scan("messages", "by_author", &range, Order::Asc, 10, None)
        .unwrap_err();
    assert!(
        err.to_string().contains("has no index \"by_author\""),
        "{err}"
    );
}

#[tokio::test]
async fn a_write_into_a_range_another_mutation_read_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let store = messages_store(&dir, &[]).await;
    let range = IndexRange {
        equal: vec![("channel".into(), Value::from("a"))],
        ..Default::default()
    };

    // T1 scans channel a (empty) and writes elsewhere; T2 inserts into channel a first.
    let mut t1 = store.begin_mutation().unwrap();
    assert!(
        t1.scan("messages", "by_channel", &range, Order::Asc, 10, None)
            .unwrap()
            .is_empty()
    );
    t1.insert("messages", message("b", "from t1")).unwrap();
    let mut t2 = store.begin_mutation().unwrap();
    t2.insert("messages", message("a", "phantom")).unwrap();
    store.commit(t2).await.unwrap();
    let err = store.commit(t1).await.unwrap_err();
    assert!(
        matches!(
            err,
            CommitError::Conflict(Conflict::WriteInReadRange { .. })
        ),
        "{err}"
    );

    // A write outside the range read is no conflict.
    let mut t3 = store.begin_mutation().unwrap();
    t3.scan("messages", "by_channel", &range, Order::Asc, 10, None)
        .unwrap();
    t3.insert("messages", message("c", "from t3")).unwrap();
    let mut t4 = store.begin_mutation().unwrap();
    t4.insert("messages", message("d", "elsewhere")).unwrap();
    store.commit(t4).await.unwrap();
    store.commit(t3).await.unwrap();
}

#[tokio::test]
async fn concurrent_increments_are_serializable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
    let ((id,), _) = store
        .run_mutation(|txn| Ok((txn.insert("counters", object(&[("value", Value::Int64(0))]))?,)))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .run_mutation(|txn| {
                    let Value::Int64(value) = txn.get(&id)?.unwrap().fields["value"] else {
                        panic!()
                    };
                    txn.patch(&id, object(&[("value", Value::Int64(value + 1))]))?;
                    Ok(value + 1)
                })
                .await
                .unwrap()
        }));
    }
    let mut returned = Vec::new();
    let mut timestamps = Vec::new();
    for task in tasks {
        let (value, ts) = task.await.unwrap();
        returned.push(value);
        timestamps.push(ts);
    }
    returned.sort();
    assert_eq!(
        returned,
        (1..=50).collect::<Vec<_>>(),
        "each increment saw a distinct value"
    );
    timestamps.sort();
    timestamps.dedup();
    assert_eq!(timestamps.len(), 50, "every commit has its own timestamp");
    let value = store
        .begin_query()
        .unwrap()
        .get(&id)
        .unwrap()
        .unwrap()
        .fields["value"]
        .clone();
    assert_eq!(value, Value::Int64(50));
}

#[tokio::test]
async fn a_failed_mutation_leaves_nothing_and_limits_name_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::database::open(dir.path()).unwrap();
    let limits = TransactionLimits {
        max_documents_written: 3,
        ..Default::default()
    };
    let store = DocumentStore::open(db, limits, CommitterOptions::default()).unwrap();
    let err = insert_notes(&store, 4).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "transaction wrote more than 3 documents (max_documents_written)"
    );
    let mut txn = store.begin_query().unwrap();
    assert!(
        txn.scan(
            "notes",
            "by_creation_time",
            &IndexRange::default(),
            Order::Asc,
            10,
            None
        )
        .unwrap()
        .is_empty()
    );
}

#[tokio::test]
async fn commit_timestamps_keep_increasing_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let (_, first) = store
        .run_mutation(|txn| txn.insert("t", object(&[])))
        .await
        .unwrap();
    drop(store);
    let store = open(&dir);
    assert_eq!(store.begin_query().unwrap().snapshot_ts(), first);
    let (_, second) = store
        .run_mutation(|txn| txn.insert("t", object(&[])))
        .await
        .unwrap();
    assert!(second > first);
}

/// The model test (STYLE.md section 8): random concurrent transfers between accounts,
/// then a replay of the committed transfers, in commit-timestamp order, against a plain
/// in-memory model. Serializability means the store ends exactly where the replay does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_match_a_serial_replay_in_commit_order() {
    const ACCOUNTS: usize = 6;
    const TASKS: usize = 24;
    const TRANSFERS_PER_TASK: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
    let (ids, _) = store
        .run_mutation(|txn| {
            (0..ACCOUNTS)
                .map(|_| txn.insert("accounts", object(&[("balance", Value::Int64(100))])))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap();
    let ids = Arc::new(ids);

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (store, ids) = (store.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut random = Xorshift(0x9E37_79B9_7F4A_7C15 ^ (task as u64 + 1));
            let mut committed = Vec::new();
            for _ in 0..TRANSFERS_PER_TASK {
                let from = random.below(ACCOUNTS);
                let to = (from + 1 + random.below(ACCOUNTS - 1)) % ACCOUNTS;
                let amount = 1 + random.below(60) as i64;
                let ((moved, _), ts) = store
                    .run_mutation(|txn| {
                        let balance = |txn: &mut super::transaction::Transaction,
                                       i: usize|
                         -> Result<i64, DbError> {
                            match txn.get(&ids[i])?.unwrap().fields["balance"] {
                                Value::Int64(balance) => Ok(balance),
                                ref other => panic!("{other:?}"),
                            }
                        };
                        let (from_balance, to_balance) = (balance(txn, from)?, balance(txn, to)?);
                        // Only move what is there: the outcome depends on what was read.
                        let moved = amount.min(from_balance);
                        txn.patch(
                            &ids[from],
                            object(&[("balance", Value::Int64(from_balance - moved))]),
                        )?;
                        txn.patch(
                            &ids[to],
                            object(&[("balance", Value::Int64(to_balance + moved))]),
                        )?;
                        Ok((moved, ()))
                    })
                    .await
                    .unwrap();
                committed.push((ts, from, to, amount, moved));
            }
            committed
        }));
    }
    let mut committed = Vec::new();
    for task in tasks {
        committed.extend(task.await.unwrap());
    }
    committed.sort();

    let mut model = [100i64; ACCOUNTS];
    for (_, from, to, amount, moved) in &committed {
        let expected = (*amount).min(model[*from]);
        assert_eq!(
            *moved, expected,
            "a transfer saw a balance no serial order explains"
        );
        model[*from] -= expected;
        model[*to] += expected;
    }
    let mut txn = store.begin_query().unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            txn.get(id).unwrap().unwrap().fields["balance"],
            Value::Int64(model[i]),
            "account {i}"
        );
    }
    assert_eq!(model.iter().sum::<i64>(), 100 * ACCOUNTS as i64);
}

/// A small deterministic generator for the model test.
struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[tokio::test]
async fn reading_past_the_read_limits_is_an_error_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::database::open(dir.path()).unwrap();
    let limits = TransactionLimits {
        max_documents_read: 3,
        ..Default::default()
    };
    let store = DocumentStore::open(db, limits, CommitterOptions::default()).unwrap();
    insert_notes(&store, 4).await.unwrap();
    let mut txn = store.begin_query().unwrap();
    // Three documents are within the limit...
    let three = txn
        .scan(
            "notes",
            "by_creation_time",
            &IndexRange::default(),
            Order::Asc,
            3,
            None,
        )
        .unwrap();
    assert_eq!(three.len(), 3);
    // ...a fourth is not.
    let err = txn
        .scan(
            "notes",
            "by_creation_time",
            &IndexRange::default(),
            Order::Asc,
            1,
            Some(&three[2].0),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "transaction read more than 3 documents (max_documents_read)"
    );
}

fn store_with_limits(dir: &tempfile::TempDir, limits: TransactionLimits) -> DocumentStore {
    let db = crate::database::open(dir.path()).unwrap();
    DocumentStore::open(db, limits, CommitterOptions::default()).unwrap()
}

fn count(store: &DocumentStore, table: &str) -> usize {
    store
        .begin_query()
        .unwrap()
        .scan(
            table,
            "by_creation_time",
            &IndexRange::default(),
            Order::Asc,
            usize::MAX,
            None,
        )
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_limit_error_the_caller_ignores_still_poisons_the_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_limits(
        &dir,
        TransactionLimits {
            max_documents_written: 2,
            ..Default::default()
        },
    );
    // The body swallows the error and returns Ok: nothing may commit all the same.
    let err = store
        .run_mutation(|txn| {
            for i in 0..3 {
                let _ = txn.insert("notes", object(&[("i", Value::Int64(i))]));
            }
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "transaction wrote more than 2 documents (max_documents_written)"
    );
    // A transaction handed straight to the committer is refused too.
    let mut txn = store.begin_mutation().unwrap();
    for i in 0..3 {
        let _ = txn.insert("notes", object(&[("i", Value::Int64(i))]));
    }
    assert!(matches!(
        store.commit(txn).await.unwrap_err(),
        CommitError::LimitExceeded(_)
    ));
    assert_eq!(count(&store, "notes"), 0);
    // Exactly at the limit commits.
    insert_notes(&store, 2).await.unwrap();
    assert_eq!(count(&store, "notes"), 2);
}

#[tokio::test]
async fn byte_limits_allow_up_to_the_limit_and_name_themselves_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let document = object(&[("text", Value::from("x".repeat(1000)))]);
    let probe_dir = tempfile::tempdir().unwrap();
    let probe = open(&probe_dir);
    let ((id,), _) = probe
        .run_mutation(|txn| Ok((txn.insert("t", document.clone())?,)))
        .await
        .unwrap();
    let size = probe
        .begin_query()
        .unwrap()
        .get(&id)
        .unwrap()
        .unwrap()
        .size_bytes();
    drop(probe);

    let store = store_with_limits(
        &dir,
        TransactionLimits {
            max_bytes_written: 3 * size,
            max_bytes_read: 2 * size,
            ..Default::default()
        },
    );
    let insert_copies = |copies: usize| {
        let document = &document;
        store.run_mutation(move |txn| {
            for _ in 0..copies {
                txn.insert("t", document.clone())?;
            }
            Ok(())
        })
    };
    // Written: three documents fit exactly, a fourth does not.
    insert_copies(3).await.unwrap();
    let err = insert_copies(4).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "transaction wrote more than {} bytes (max_bytes_written)",
            3 * size
        )
    );
    // Read: two documents fit exactly, a third does not.
    let mut txn = store.begin_query().unwrap();
    let all = IndexRange::default();
    let two = txn
        .scan("t", "by_creation_time", &all, Order::Asc, 2, None)
        .unwrap();
    assert_eq!(two.len(), 2);
    let err = txn
        .scan(
            "t",
            "by_creation_time",
            &all,
            Order::Asc,
            1,
            Some(&two[1].0),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "transaction read more than {} bytes (max_bytes_read)",
            2 * size
        )
    );
    assert_eq!(txn.limit_exceeded(), Some(err.to_string().as_str()));
}

#[tokio::test]
async fn creating_a_table_another_mutation_found_missing_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .run_mutation(|txn| txn.insert("y", object(&[])))
        .await
        .unwrap();
    let all = IndexRange::default();
    // Write skew across a missing table: M1 sees no `x` and writes `y`; M2 reads `y` and
    // creates `x`. Serially, one of them must see the other's write.
    let mut m1 = store.begin_mutation().unwrap();
    assert!(
        m1.scan("x", "by_creation_time", &all, Order::Asc, 10, None)
            .unwrap()
            .is_empty()
    );
    m1.insert("y", object(&[])).unwrap();
    let mut m2 = store.begin_mutation().unwrap();
    m2.scan("y", "by_creation_time", &all, Order::Asc, 10, None)
        .unwrap();
    m2.insert("x", object(&[])).unwrap();
    store.commit(m2).await.unwrap();
    let err = store.commit(m1).await.unwrap_err();
    assert!(
        matches!(err, CommitError::Conflict(Conflict::TableCreated)),
        "{err}"
    );

    // The same through `get` of an id whose table does not exist yet.
    let mut m3 = store.begin_mutation().unwrap();
    let mut m4 = store.begin_mutation().unwrap();
    let in_new_table = m4.insert("z", object(&[])).unwrap();
    assert!(m3.get(&in_new_table).unwrap().is_none());
    m3.insert("y", object(&[])).unwrap();
    store.commit(m4).await.unwrap();
    assert!(matches!(
        store.commit(m3).await.unwrap_err(),
        CommitError::Conflict(Conflict::TableCreated)
    ));
}

#[tokio::test]
async fn a_cursor_outside_the_querys_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = messages_store(&dir, &[("a", "a1"), ("a", "a2"), ("b", "b1"), ("b", "b2")]).await;
    let channel = |c: &str| IndexRange {
        equal: vec![("channel".into(), Value::from(c))],
        ..Default::default()
    };
    let mut txn = store.begin_query().unwrap();
    // Up to 10 messages of channel `c` in `order`, after `cursor`: (keys, bodies).
    let mut scan = |c: &str, order: Order, cursor: Option<&[u8]>| {
        let found = txn
            .scan("messages", "by_channel", &channel(c), order, 10, cursor)
            .unwrap();
        let keys: Vec<Vec<u8>> = found.iter().map(|(key, _)| key.clone()).collect();
        (keys, bodies(&found))
    };
    let (a_keys, _) = scan("a", Order::Asc, None);
    let (b_keys, _) = scan("b", Order::Asc, None);
    let a_first = a_keys[0].as_slice();
    let b_last = b_keys[1].as_slice();
    // Even unchecked, a scan never leaves its range: channel a's cursor on an ascending
    // scan of channel b must not start inside channel a (it would return a2 first)...
    assert_eq!(scan("b", Order::Asc, Some(a_first)).1, ["b1", "b2"]);
    // ...nor channel b's cursor on a descending scan of channel a start inside b.
    assert_eq!(scan("a", Order::Desc, Some(b_last)).1, ["a2", "a1"]);
    // Within its own range, a cursor continues after itself.
    assert_eq!(scan("a", Order::Asc, Some(a_first)).1, ["a2"]);

    txn.check_query("messages", "by_channel", &channel("a"), Some(a_first))
        .unwrap();
    let err = txn
        .check_query("messages", "by_channel", &channel("b"), Some(a_first))
        .unwrap_err();
    assert!(matches!(err, DbError::InvalidCursor(_)), "{err}");
}

#[tokio::test]
async fn a_table_left_out_of_the_schema_loses_its_indexes_and_validator() {
    use super::schema::{Schema, TableSchema};
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let validator: super::validator::DocumentValidator =
        serde_json::from_value(serde_json::json!({"channel": "string", "body": "string"})).unwrap();
    let declared = Schema {
        tables: [(
            "messages".to_string(),
            TableSchema {
                indexes: [("by_channel".to_string(), vec!["channel".to_string()])].into(),
                document: Some(validator),
            },
        )]
        .into(),
    };
    store.apply_schema(&declared, None).await.unwrap();
    store
        .run_mutation(|txn| txn.insert("messages", message("a", "kept")))
        .await
        .unwrap();
    assert!(
        store
            .run_mutation(|txn| txn.insert("messages", object(&[("free", Value::Boolean(true))])))
            .await
            .is_err(),
        "the validator applies while the table is declared"
    );

    let report = store.apply_schema(&Schema::default(), None).await.unwrap();
    assert_eq!(report.removed_indexes, ["messages.by_channel"]);
    store
        .run_mutation(|txn| txn.insert("messages", object(&[("free", Value::Boolean(true))])))
        .await
        .unwrap();
    let txn = store.begin_query().unwrap();
    let err = txn
        .check_query("messages", "by_channel", &IndexRange::default(), None)
        .unwrap_err();
    assert!(matches!(err, DbError::UnknownIndex(_)), "{err}");
    assert_eq!(count(&store, "messages"), 2);
    // Applying the empty schema again changes nothing.
    assert_eq!(
        store.apply_schema(&Schema::default(), None).await.unwrap(),
        Default::default()
    );
}

/// The second model test: concurrent mutations that read an index *range* (so phantoms
/// matter), insert and delete. Each one reads its channel's log, appends the next sequence
/// number and trims the log to four entries. Replayed in commit order against an
/// in-memory model, every mutation must have seen exactly the model's log at that point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_range_reads_inserts_and_deletes_match_a_serial_replay() {
    const CHANNELS: usize = 3;
    const TASKS: usize = 16;
    const STEPS_PER_TASK: usize = 8;
    const KEEP: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
    store
        .run_mutation(|txn| txn.create_table("log", &messages_index()))
        .await
        .unwrap();
    let channel_range = |c: usize| IndexRange {
        equal: vec![("channel".into(), Value::from(format!("c{c}")))],
        ..Default::default()
    };
    let seq = |document: &super::documents::Document| match document.fields["seq"] {
        Value::Int64(seq) => seq,
        ref other => panic!("{other:?}"),
    };

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut random = Xorshift(0xD1B5_4A32_D192_ED03 ^ (task as u64 + 1));
            let mut committed = Vec::new();
            for _ in 0..STEPS_PER_TASK {
                let channel = random.below(CHANNELS);
                let (seen, ts) = store
                    .run_mutation(|txn| {
                        let found = txn.scan(
                            "log",
                            "by_channel",
                            &channel_range(channel),
                            Order::Asc,
                            usize::MAX,
                            None,
                        )?;
                        let seen: Vec<i64> = found.iter().map(|(_, d)| seq(d)).collect();
                        let next = seen.last().map_or(0, |last| last + 1);
                        txn.insert(
                            "log",
                            object(&[
                                ("channel", Value::from(format!("c{channel}"))),
                                ("seq", Value::Int64(next)),
                            ]),
                        )?;
                        if found.len() >= KEEP {
                            txn.delete(&found[0].1.id)?;
                        }
                        Ok(seen)
                    })
                    .await
                    .unwrap();
                committed.push((ts, channel, seen));
            }
            committed
        }));
    }
    let mut committed = Vec::new();
    for task in tasks {
        committed.extend(task.await.unwrap());
    }
    committed.sort();

    let mut model: Vec<Vec<i64>> = vec![Vec::new(); CHANNELS];
    for (ts, channel, seen) in &committed {
        let log = &mut model[*channel];
        assert_eq!(
            seen, log,
            "the mutation committed at {ts} saw a log no serial order explains"
        );
        log.push(log.last().map_or(0, |last| last + 1));
        if log.len() > KEEP {
            log.remove(0);
        }
    }
    let mut txn = store.begin_query().unwrap();
    for (channel, expected) in model.iter().enumerate() {
        let stored: Vec<i64> = txn
            .scan(
                "log",
                "by_channel",
                &channel_range(channel),
                Order::Asc,
                usize::MAX,
                None,
            )
            .unwrap()
            .iter()
            .map(|(_, d)| seq(d))
            .collect();
        assert_eq!(&stored, expected, "channel c{channel}");
    }
    assert_eq!(committed.len(), TASKS * STEPS_PER_TASK);
}

#[tokio::test]
async fn an_index_change_keeps_the_creation_time_floor_of_concurrent_inserts() {
    let dir = tempfile::tempdir().unwrap();
    let store = messages_store(&dir, &[]).await;
    // A schema change begins (it adds an index and reads nothing)...
    let mut schema_change = store.begin_mutation().unwrap();
    let mut indexes = messages_index();
    indexes.push(("by_body".to_string(), vec!["body".to_string()]));
    schema_change
        .declare_table("messages", &indexes, None)
        .unwrap();
    // ...while an insert commits.
    let ((id,), _) = store
        .run_mutation(|txn| Ok((txn.insert("messages", message("a", "x"))?,)))
        .await
        .unwrap();
    let created = store
        .begin_query()
        .unwrap()
        .get(&id)
        .unwrap()
        .unwrap()
        .creation_time;
    store.commit(schema_change).await.unwrap();
    drop(store);

    let db = crate::database::open(dir.path()).unwrap();
    let persistence = super::persistence::Persistence::open(db).unwrap();
    let snapshot = persistence.snapshot().unwrap();
    let record = snapshot.table("messages").unwrap();
    assert!(record.index("by_body").is_some());
    assert!(
        record.last_creation_time >= created,
        "the stored floor {} fell behind a committed document's {created}",
        record.last_creation_time
    );
}

/// A deploy stores its deployment record through `also_write`: the schema change and the
/// record commit together, or neither does.
#[tokio::test]
async fn a_schema_commits_with_its_also_write_or_not_at_all() {
    use super::schema::{Schema, TableSchema};
    const MARKER: &str = "test_marker";
    let dir = tempfile::tempdir().unwrap();
    let db = crate::database::open(dir.path()).unwrap();
    let store = DocumentStore::open(
        db.clone(),
        TransactionLimits::default(),
        CommitterOptions::default(),
    )
    .unwrap();
    let schema = |table: &str| Schema {
        tables: [(table.to_string(), TableSchema::default())].into(),
    };
    let table_exists = |store: &DocumentStore, name: &str| {
        store
            .begin_query()
            .unwrap()
            .table_names()
            .contains(&name.to_string())
    };

    let failing: super::transaction::AlsoWrite =
        Arc::new(|_| Err(anyhow::anyhow!("the disk is full")));
    let err = store
        .apply_schema(&schema("refused"), Some(failing))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the disk is full"), "{err}");
    assert!(!table_exists(&store, "refused"));

    let marking: super::transaction::AlsoWrite = Arc::new(|txn| txn.set_counter(MARKER, 1));
    // Even a schema that changes nothing commits its also_write.
    store
        .apply_schema(&Schema::default(), Some(marking.clone()))
        .await
        .unwrap();
    store
        .apply_schema(&schema("accepted"), Some(marking))
        .await
        .unwrap();
    assert!(table_exists(&store, "accepted"));
    let read = db.snapshot().unwrap();
    assert_eq!(read.counter(MARKER).unwrap(), Some(1));
}

/// A schema change re-runs the transactions that used its table, and only those: one on
/// another table commits as it ran (the log is no longer cleared for everyone).
#[tokio::test]
async fn a_schema_change_conflicts_only_with_transactions_that_used_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = messages_store(&dir, &[("a", "one")]).await;
    insert_notes(&store, 2).await.unwrap();
    let everything = IndexRange::default();

    let mut on_notes = store.begin_mutation().unwrap();
    on_notes
        .scan(
            "notes",
            "by_creation_time",
            &everything,
            Order::Asc,
            10,
            None,
        )
        .unwrap();
    on_notes
        .insert("notes", object(&[("i", Value::Int64(9))]))
        .unwrap();
    let mut on_messages = store.begin_mutation().unwrap();
    on_messages
        .scan("messages", "by_channel", &everything, Order::Asc, 10, None)
        .unwrap();
    on_messages
        .insert("notes", object(&[("i", Value::Int64(10))]))
        .unwrap();
    // Writes only (no read): still checked against the old validator, so it conflicts too.
    let mut writes_messages = store.begin_mutation().unwrap();
    writes_messages
        .insert("messages", message("b", "blind"))
        .unwrap();

    let mut indexes = messages_index();
    indexes.push(("by_body".to_string(), vec!["body".to_string()]));
    store
        .run_mutation(|txn| txn.declare_table("messages", &indexes, None))
        .await
        .unwrap();

    store.commit(on_notes).await.unwrap();
    for stale in [on_messages, writes_messages] {
        let err = store.commit(stale).await.unwrap_err();
        assert!(
            matches!(err, CommitError::Conflict(Conflict::SchemaChanged { .. })),
            "{err}"
        );
    }
}

/// Each `get` and each scan records a range; past `max_read_ranges` the transaction is
/// poisoned. The pages of one scan extend one range instead of adding more.
#[tokio::test]
async fn read_ranges_are_bounded_and_a_scans_pages_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let limits = TransactionLimits {
        max_read_ranges: 4,
        ..Default::default()
    };
    let store = store_with_limits(&dir, limits);
    insert_notes(&store, 10).await.unwrap();

    // Ten pages of one document each: one range.
    let mut txn = store.begin_mutation().unwrap();
    let mut after = None;
    for _ in 0..10 {
        let page = txn
            .scan(
                "notes",
                "by_creation_time",
                &IndexRange::default(),
                Order::Asc,
                1,
                after.as_deref(),
            )
            .unwrap();
        after = Some(page[0].0.clone());
    }
    // Tables found missing count too: with the scan's range, the fourth entry is within
    // the limit and the fifth is over it.
    let probe = |txn: &mut super::transaction::Transaction, n: u32| {
        txn.scan(
            &format!("missing_{n}"),
            "by_creation_time",
            &IndexRange::default(),
            Order::Asc,
            1,
            None,
        )
        .map(|_| ())
    };
    for n in 0..3 {
        probe(&mut txn, n).unwrap();
    }
    let err = probe(&mut txn, 3).unwrap_err();
    assert_eq!(
        err.to_string(),
        "transaction read more than 4 index ranges (max_read_ranges)"
    );
    assert!(txn.limit_exceeded().is_some());
}

/// Commits one insert per member, `(table, document, also_write)`, as one group commit:
/// the first member holds the committer inside its write transaction until the others
/// are queued behind it. Each commit's result, in order. For single-threaded tests.
async fn commit_as_one_batch(
    store: &Arc<DocumentStore>,
    members: Vec<(&'static str, Value, Option<super::transaction::AlsoWrite>)>,
) -> Vec<Result<u64, CommitError>> {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = std::sync::Mutex::new(held);
    // A re-run of the batch finds the channel closed and goes straight on.
    let mut holding: Option<super::transaction::AlsoWrite> = Some(Arc::new(move |_| {
        let _ = held.lock().unwrap().recv();
        Ok(())
    }));
    let commits: Vec<_> = members
        .into_iter()
        .map(|(table, document, also_write)| {
            let mut txn = store.begin_mutation().unwrap();
            txn.insert(table, document).unwrap();
            let hold = holding.take();
            assert!(
                hold.is_none() || also_write.is_none(),
                "the first member holds"
            );
            if let Some(also_write) = hold.or(also_write) {
                txn.also_write(also_write).unwrap();
            }
            let store = store.clone();
            tokio::spawn(async move { store.commit(txn).await })
        })
        .collect();
    // The spawned commits queue up while this task yields.
    tokio::task::yield_now().await;
    release.send(()).unwrap();
    drop(release);
    let mut results = Vec::new();
    for commit in commits {
        results.push(commit.await.unwrap());
    }
    results
}

/// A member of a group commit whose own writes fail (a deploy's extra write, say) fails
/// alone: the others of its batch commit.
#[tokio::test]
async fn a_member_whose_writes_fail_does_not_sink_its_batch() {
    use super::transaction::AlsoWrite;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
    insert_notes(&store, 1).await.unwrap();
    // The failing one shares a batch with a good one (the first or the third).
    let failing: AlsoWrite = Arc::new(|_| Err(anyhow::anyhow!("the disk is full")));
    let note = |i: i64| object(&[("i", Value::Int64(i))]);
    let results = commit_as_one_batch(
        &store,
        vec![
            ("notes", note(10), None),
            ("notes", note(11), Some(failing)),
            ("notes", note(12), None),
        ],
    )
    .await;
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(&results[1], Err(CommitError::Internal(cause)) if cause.contains("the disk is full")),
        "{:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "{:?}", results[2]);
    assert_eq!(count(&store, "notes"), 3);
}

/// A batch writes each changed table's record once, before it commits: the record of a
/// table that several of its commits inserted into ends at the latest document's creation
/// time, and one the batch created is there, both after reopening.
#[tokio::test]
async fn a_batch_stores_the_records_of_the_tables_its_commits_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir));
    insert_notes(&store, 1).await.unwrap();
    let results = commit_as_one_batch(
        &store,
        vec![
            ("notes", object(&[]), None),
            ("notes", object(&[]), None),
            ("fresh", object(&[]), None),
        ],
    )
    .await;
    for result in results {
        result.unwrap();
    }
    let latest = |store: &DocumentStore, table: &str| {
        store
            .begin_query()
            .unwrap()
            .scan(
                table,
                "by_creation_time",
                &IndexRange::default(),
                Order::Desc,
                1,
                None,
            )
            .unwrap()[0]
            .1
            .creation_time
    };
    let (notes_latest, fresh_latest) = (latest(&store, "notes"), latest(&store, "fresh"));
    drop(store);

    let db = crate::database::open(dir.path()).unwrap();
    let persistence = super::persistence::Persistence::open(db).unwrap();
    let snapshot = persistence.snapshot().unwrap();
    assert_eq!(
        snapshot.table("notes").unwrap().last_creation_time,
        notes_latest
    );
    assert_eq!(
        snapshot.table("fresh").unwrap().last_creation_time,
        fresh_latest
    );
}

/// An index added to a table that holds documents is built in the background, chunk by
/// chunk, while mutations insert, change and delete documents of that table: once the
/// schema commit makes it ready it holds exactly the table's documents, each under its
/// current value; and the entries of an index a later schema removes are dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_built_in_the_background_matches_the_table_despite_concurrent_writes() {
    use super::schema::{Schema, TableSchema};
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(messages_store(&dir, &[]).await);
    let ((ids,), _) = store
        .run_mutation(|txn| {
            let mut ids = Vec::new();
            for i in 0..3_000 {
                ids.push(txn.insert("messages", message("a", &format!("b{i:05}")))?);
            }
            Ok((ids,))
        })
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let (store, stop) = (store.clone(), stop.clone());
        async move {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                let (i, id) = (round, ids[(round * 7) % ids.len()]);
                store
                    .run_mutation(|txn| {
                        txn.insert("messages", message("b", &format!("new{i:05}")))?;
                        if round % 3 == 0 {
                            txn.delete(&id).or(Ok::<_, DbError>(()))?;
                        } else if txn.get(&id)?.is_some() {
                            txn.patch(
                                &id,
                                object(&[("body", Value::from(format!("changed{i:05}")))]),
                            )?;
                        }
                        Ok(())
                    })
                    .await
                    .unwrap();
                round += 1;
                tokio::task::yield_now().await;
            }
            round
        }
    });
    let with_by_body = |extra: bool| Schema {
        tables: [(
            "messages".to_string(),
            TableSchema {
                indexes: [("by_channel", "channel"), ("by_body", "body")]
                    .into_iter()
                    .filter(|(name, _)| extra || *name == "by_channel")
                    .map(|(name, field)| (name.to_string(), vec![field.to_string()]))
                    .collect(),
                document: None,
            },
        )]
        .into(),
    };
    let report = store.apply_schema(&with_by_body(true), None).await.unwrap();
    assert_eq!(report.added_indexes, ["messages.by_body"]);
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.await.unwrap();
    assert!(rounds > 0, "the writer committed during the build");

    let mut txn = store.begin_query().unwrap();
    let all = IndexRange::default();
    let table = txn
        .scan(
            "messages",
            "by_creation_time",
            &all,
            Order::Asc,
            usize::MAX,
            None,
        )
        .unwrap();
    let by_body = txn
        .scan("messages", "by_body", &all, Order::Asc, usize::MAX, None)
        .unwrap();
    let mut expected = bodies(&table);
    expected.sort();
    assert_eq!(bodies(&by_body), expected);

    // Removing it leaves nothing behind once its entries are dropped.
    let report = store
        .apply_schema(&with_by_body(false), None)
        .await
        .unwrap();
    assert_eq!(report.removed_indexes, ["messages.by_body"]);
    assert_eq!(report.removed_index_ids.len(), 1);
    let removed = report.removed_index_ids[0];
    assert!(store.count_index_entries(removed) > 0, "dropped only later");
    // As if the server stopped before the drop: the startup sweep finds and drops it.
    assert_eq!(store.orphaned_index_ids().unwrap(), [removed]);
    assert_eq!(store.drop_orphaned_indexes().await.unwrap(), 1);
    assert_eq!(store.count_index_entries(removed), 0);
    assert!(store.orphaned_index_ids().unwrap().is_empty());
}

/// A range over a large value holds that value in the read set until the commit is
/// checked: `max_read_set_bytes` bounds the bytes, as `max_read_ranges` bounds the count.
#[tokio::test]
async fn the_read_set_is_bounded_in_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let limits = TransactionLimits {
        max_read_set_bytes: 1_000,
        ..Default::default()
    };
    let store = store_with_limits(&dir, limits);
    store
        .run_mutation(|txn| txn.create_table("messages", &messages_index()))
        .await
        .unwrap();
    let range = |channel: String| IndexRange {
        equal: vec![("channel".into(), Value::from(channel))],
        ..Default::default()
    };
    let mut txn = store.begin_mutation().unwrap();
    // Two bounds of about 200 bytes: within the limit.
    txn.scan(
        "messages",
        "by_channel",
        &range("a".repeat(200)),
        Order::Asc,
        1,
        None,
    )
    .unwrap();
    let err = txn
        .scan(
            "messages",
            "by_channel",
            &range("b".repeat(600)),
            Order::Asc,
            1,
            None,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "transaction read index ranges holding more than 1000 bytes of keys (max_read_set_bytes)"
    );
    assert!(txn.limit_exceeded().is_some());
}

/// A schema that fails after its new index was built (here: a validator the stored
/// documents violate) leaves no index behind: not in the table, not in the store.
#[tokio::test]
async fn a_failed_schema_removes_the_index_it_built() {
    use super::schema::{Schema, TableSchema};
    let dir = tempfile::tempdir().unwrap();
    let store = messages_store(&dir, &[("a", "one"), ("b", "two")]).await;
    let validator: super::validator::DocumentValidator =
        serde_json::from_value(serde_json::json!({"channel": "string"})).unwrap();
    let schema = Schema {
        tables: [(
            "messages".to_string(),
            TableSchema {
                indexes: [
                    ("by_channel".to_string(), vec!["channel".to_string()]),
                    ("by_body".to_string(), vec!["body".to_string()]),
                ]
                .into(),
                document: Some(validator),
            },
        )]
        .into(),
    };
    let err = store.apply_schema(&schema, None).await.unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let record = store
        .begin_query()
        .unwrap()
        .table_record("messages")
        .unwrap();
    let names: Vec<(&str, bool)> = record
        .indexes
        .iter()
        .map(|index| (index.name.as_str(), index.building))
        .collect();
    assert_eq!(names, [("by_creation_time", false), ("by_channel", false)]);
    assert!(
        store.orphaned_index_ids().unwrap().is_empty(),
        "its entries are gone too"
    );
}

/// The schema of `messages` with its index and `validator` (as JSON) as its document.
fn messages_schema_with(validator: serde_json::Value) -> super::schema::Schema {
    use super::schema::{Schema, TableSchema};
    Schema {
        tables: [(
            "messages".to_string(),
            TableSchema {
                indexes: messages_index().into_iter().collect(),
                document: Some(serde_json::from_value(validator).unwrap()),
            },
        )]
        .into(),
    }
}

/// Step 1 of a deploy that declares `validator` on `messages`: returns what it prepared.
async fn prepare_messages_validator(
    store: &DocumentStore,
    validator: serde_json::Value,
) -> super::transaction::Prepared {
    let validator: super::validator::DocumentValidator = serde_json::from_value(validator).unwrap();
    let (prepared, _) = store
        .run_mutation(|txn| txn.prepare_table("messages", &messages_index(), Some(&validator)))
        .await
        .unwrap();
    assert_eq!(prepared.validating.len(), 1, "{prepared:?}");
    prepared
}

/// A new validator is checked against the stored documents in the background, without
/// reading the table in the schema commit: mutations writing into that very table keep
/// committing meanwhile, and the schema commit does not conflict with them.
#[tokio::test]
async fn a_validator_change_does_not_conflict_with_steady_writes_to_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(messages_store(&dir, &[]).await);
    for chunk in 0..10 {
        store
            .run_mutation(|txn| {
                for i in 0..1000 {
                    txn.insert("messages", message("c", &format!("{chunk}-{i}")))?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let (store, stop) = (store.clone(), stop.clone());
        async move {
            let mut written = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                store
                    .run_mutation(|txn| txn.insert("messages", message("w", "steady")))
                    .await
                    .unwrap();
                written += 1;
                tokio::task::yield_now().await;
            }
            written
        }
    });
    let schema = messages_schema_with(serde_json::json!({"channel": "string", "body": "string"}));
    let report = store.apply_schema(&schema, None).await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = writer.await.unwrap();
    assert_eq!(report.validated_tables, ["messages"]);
    assert!(written > 0, "the writer committed during the deploy");
    let record = store
        .begin_query()
        .unwrap()
        .table_record("messages")
        .unwrap();
    assert!(record.validator.is_some() && record.pending_validator.is_none());
    // Current now: a write that does not match is refused.
    let err = store
        .run_mutation(|txn| txn.insert("messages", object(&[("channel", Value::from(1.0))])))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("does not match the schema"),
        "{err}"
    );
}

/// A write that does not match a pending validator commits (the validator is not current
/// yet) and fails the deploy instead, with a message naming the document: whether the
/// background check is still running or already finished when it lands.
#[tokio::test]
async fn a_write_that_violates_a_pending_validator_fails_the_deploy_not_the_write() {
    use super::schema::SchemaError;
    let strict = serde_json::json!({"channel": "string", "body": "string"});
    let dir = tempfile::tempdir().unwrap();
    let store = messages_store(&dir, &[("a", "one")]).await;

    // The write lands before the background check: the check reports it.
    let prepared = prepare_messages_validator(&store, strict.clone()).await;
    let (odd, _) = store
        .run_mutation(|txn| txn.insert("messages", object(&[("channel", Value::from(7.0))])))
        .await
        .expect("a pending validator refuses no write");
    let (table_number, pending_id) = prepared.validating[0];
    let violation = store
        .check_pending_validator(table_number, pending_id)
        .await
        .unwrap()
        .expect("the check reports the write");
    assert!(
        violation.contains(&format!("document {odd} written to table \"messages\" during the deploy does not match the new schema")),
        "{violation}"
    );

    // The write lands after the check passed: the schema commit is refused.
    store.run_mutation(|txn| txn.delete(&odd)).await.unwrap();
    store
        .run_mutation(|txn| txn.abandon_prepared(&prepared))
        .await
        .unwrap();
    let prepared = prepare_messages_validator(&store, strict.clone()).await;
    let (table_number, pending_id) = prepared.validating[0];
    assert_eq!(
        store
            .check_pending_validator(table_number, pending_id)
            .await
            .unwrap(),
        None
    );
    let (odd, _) = store
        .run_mutation(|txn| txn.insert("messages", object(&[("body", Value::from(false))])))
        .await
        .unwrap();
    let validator: super::validator::DocumentValidator =
        serde_json::from_value(strict.clone()).unwrap();
    let err = store
        .run_mutation(|txn| txn.declare_table("messages", &messages_index(), Some(&validator)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, super::store::MutationError::Commit { error: CommitError::ValidatorViolated(m), attempts: 1 } if m.contains(&odd.to_string())),
        "{err}"
    );

    // Through apply_schema: the deploy fails naming the document, and nothing is left
    // pending.
    let err = store
        .apply_schema(&messages_schema_with(strict), None)
        .await
        .unwrap_err();
    assert!(matches!(err, SchemaError::Violation(_)), "{err}");
    assert!(err.to_string().contains(&odd.to_string()), "{err}");
    let record = store
        .begin_query()
        .unwrap()
        .table_record("messages")
        .unwrap();
    assert_eq!(record.validator, None);
    assert_eq!(
        record.pending_validator, None,
        "a failed deploy leaves no pending validator"
    );
}

/// A pending validator that a stop interrupted is cleared at startup.
#[tokio::test]
async fn pending_validators_are_cleared() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = messages_store(&dir, &[("a", "one")]).await;
        prepare_messages_validator(&store, serde_json::json!({"channel": "string"})).await;
    }
    let store = open(&dir);
    let pending = |store: &DocumentStore| {
        store
            .begin_query()
            .unwrap()
            .table_record("messages")
            .unwrap()
            .pending_validator
    };
    assert!(pending(&store).is_some(), "pending validators are durable");
    assert_eq!(store.clear_pending_validators().await.unwrap(), 1);
    assert_eq!(pending(&store), None);
}

/// `messages` indexed by `indexes` ((name, field) pairs), without a validator.
fn messages_schema_indexed(indexes: &[(&str, &str)]) -> super::schema::Schema {
    use super::schema::{Schema, TableSchema};
    Schema {
        tables: [(
            "messages".to_string(),
            TableSchema {
                indexes: indexes
                    .iter()
                    .map(|(name, field)| (name.to_string(), vec![field.to_string()]))
                    .collect(),
                document: None,
            },
        )]
        .into(),
    }
}

/// The indexes of `messages`: (name, building).
fn messages_indexes(store: &DocumentStore) -> Vec<(String, bool)> {
    let record = store
        .begin_query()
        .unwrap()
        .table_record("messages")
        .unwrap();
    record
        .indexes
        .iter()
        .map(|index| (index.name.clone(), index.building))
        .collect()
}

#[tokio::test]
async fn indexes_a_push_prepares_are_ready_when_it_deploys_and_gone_if_it_never_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = messages_store(&dir, &[("a", "one"), ("b", "two")]).await;
    let with_body = messages_schema_indexed(&[("by_channel", "channel"), ("by_body", "body")]);
    let building = store.prepare_indexes(&with_body).await.unwrap();
    assert_eq!(building.len(), 1, "only by_body is new");
    assert!(messages_indexes(&store).contains(&("by_body".to_string(), true)));
    for &(table, index) in &building {
        store.backfill_index(table, index).await.unwrap();
    }
    // The deploy makes the prepared index current: the same index, built once.
    let report = store.apply_schema(&with_body, None).await.unwrap();
    assert_eq!(report.added_indexes, ["messages.by_body"]);
    let txn = store.begin_query().unwrap();
    let by_body = txn
        .table_record("messages")
        .unwrap()
        .indexes
        .into_iter()
        .find(|index| index.name == "by_body")
        .unwrap();
    assert_eq!((by_body.id, by_body.building), (building[0].1, false));
    drop(txn);

    // A push that never deploys: the next deploy removes what it prepared.
    let with_author = messages_schema_indexed(&[
        ("by_channel", "channel"),
        ("by_body", "body"),
        ("by_author", "author"),
    ]);
    let abandoned = store.prepare_indexes(&with_author).await.unwrap();
    assert_eq!(abandoned.len(), 1);
    let report = store.apply_schema(&with_body, None).await.unwrap();
    assert_eq!(report.removed_index_ids, vec![abandoned[0].1]);
    let mut indexes = messages_indexes(&store);
    indexes.sort();
    assert_eq!(
        indexes,
        [
            ("by_body".to_string(), false),
            ("by_channel".to_string(), false),
            ("by_creation_time".to_string(), false),
        ]
    );
}
