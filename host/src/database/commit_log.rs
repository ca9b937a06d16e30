//! The commit log of a shared store (several hosts over one database, DESIGN.md section
//! 8): what each commit changed, written in the commit's own write transaction under its
//! timestamp, so that every host learns of every commit.
//!
//! * A host's committer reads the entries after its last commit once it holds the store's
//!   commit lock, so it validates mutations against commits from every host.
//! * A host's follower ([`start_follower`]) reads them when the store signals a commit
//!   (PostgreSQL's `NOTIFY`, or this host's own committer) and at least every
//!   [`FOLLOW_INTERVAL`], and hands them to the subscriptions in commit order, so queries
//!   and the scheduler on every host see commits made on any of them.
//!
//! Entries are kept for [`KEEP_NS`] and then trimmed. A reader that falls further behind
//! than that (a host that was cut off) learns it from [`TRIMMED_TO_COUNTER`] and treats
//! everything as changed.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::kv::{KvRead, KvStore, KvWrite, Op, Order, Space};
use super::persistence::Persistence;
use super::subscriptions::{CommitFeed, CommitNotice};

/// Entries older than this (in commit-timestamp nanoseconds) are trimmed.
pub const KEEP_NS: u64 = 10 * 60 * 1_000_000_000;

/// The commit timestamp up to which (included) entries may have been trimmed.
pub const TRIMMED_TO_COUNTER: &str = "commit_log_trimmed_to";

/// How often a follower reads the log even without a signal (a missed `NOTIFY`).
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// Writes `notice` as the entry of its commit.
pub fn append(txn: &mut dyn KvWrite, notice: &CommitNotice) -> anyhow::Result<()> {
    txn.put(Space::CommitLog, &notice.ts.to_be_bytes(), &encode(notice))
}

/// The entries after `after_ts`, oldest first; `None` if some of them were trimmed.
pub fn read_after(read: &dyn KvRead, after_ts: u64) -> anyhow::Result<Option<Vec<CommitNotice>>> {
    let trimmed_to = read.counter(TRIMMED_TO_COUNTER)?.unwrap_or(0);
    if after_ts < trimmed_to {
        return Ok(None);
    }
    let after = after_ts.to_be_bytes();
    let mut notices = Vec::new();
    read.scan(
        Space::CommitLog,
        (Bound::Excluded(&after[..]), Bound::Unbounded),
        Order::Asc,
        &mut |key, value| {
            let ts = u64::from_be_bytes(key.try_into().context("corrupt commit log key")?);
            notices.push(decode(ts, value)?);
            Ok(true)
        },
    )?;
    Ok(Some(notices))
}

/// Removes the entries older than [`KEEP_NS`] before `now_ts`.
pub fn trim(txn: &mut dyn KvWrite, now_ts: u64) -> anyhow::Result<()> {
    let cutoff = now_ts.saturating_sub(KEEP_NS);
    let end = cutoff.to_be_bytes();
    let mut keys = Vec::new();
    txn.scan(
        Space::CommitLog,
        (Bound::Unbounded, Bound::Included(&end[..])),
        Order::Asc,
        &mut |key, _| {
            keys.push(key.to_vec());
            Ok(true)
        },
    )?;
    if keys.is_empty() {
        return Ok(());
    }
    let ops: Vec<Op<'_>> = keys
        .iter()
        .map(|key| Op::Delete(Space::CommitLog, key))
        .collect();
    txn.apply(&ops)?;
    let trimmed_to = txn.counter(TRIMMED_TO_COUNTER)?.unwrap_or(0);
    txn.set_counter(TRIMMED_TO_COUNTER, trimmed_to.max(cutoff))
}

/// A notice that everything may have changed: every table altered and created, so every
/// subscription re-runs (a follower that fell behind the trimmed log).
pub fn everything_changed(persistence: &Persistence, ts: u64) -> anyhow::Result<CommitNotice> {
    let snapshot = persistence.snapshot()?;
    Ok(CommitNotice {
        ts,
        touched: Vec::new(),
        altered_tables: snapshot.tables().map(|table| table.number).collect(),
        created_tables: snapshot
            .tables()
            .map(|table| (table.name.clone(), table.number))
            .collect(),
    })
}

/// Follows the commit log of a shared store from `from_ts` and publishes each commit to
/// `feed`, in order, until the feed's subscriptions are gone.
pub fn start_follower(
    persistence: Arc<Persistence>,
    kv: Arc<dyn KvStore>,
    feed: CommitFeed,
    from_ts: u64,
) -> anyhow::Result<()> {
    let signal = kv
        .commit_signal()
        .context("a shared store signals its commits")?;
    tokio::spawn(async move {
        let mut last = from_ts;
        loop {
            let _ = tokio::time::timeout(FOLLOW_INTERVAL, signal.notified()).await;
            // The store is gone (only this task holds its persistence): stop.
            if Arc::strong_count(&persistence) == 1 {
                return;
            }
            let persistence = persistence.clone();
            let read = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let snapshot = persistence.snapshot()?;
                let notices = match snapshot.with_view(|view| read_after(view, last))? {
                    Some(notices) => notices,
                    None => vec![everything_changed(&persistence, snapshot.ts)?],
                };
                Ok(notices)
            })
            .await;
            match read {
                Ok(Ok(notices)) => {
                    let notices: Vec<CommitNotice> = notices
                        .into_iter()
                        .filter(|notice| notice.ts > last)
                        .collect();
                    if let Some(newest) = notices.last() {
                        last = newest.ts;
                        if !feed.publish_all(notices) {
                            return;
                        }
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(error = ?error, "cannot read the commit log; retrying")
                }
                Err(error) => tracing::error!(error = ?error, "reading the commit log panicked"),
            }
        }
    });
    Ok(())
}

fn put_u32(out: &mut Vec<u8>, value: usize) {
    out.extend_from_slice(&(value as u32).to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// `[touched count][len, key]... [altered count][number]... [created count][len, name,
/// number]...`, lengths and numbers as big-endian `u32`.
fn encode(notice: &CommitNotice) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, notice.touched.len());
    for key in &notice.touched {
        put_bytes(&mut out, key);
    }
    put_u32(&mut out, notice.altered_tables.len());
    for number in &notice.altered_tables {
        out.extend_from_slice(&number.to_be_bytes());
    }
    put_u32(&mut out, notice.created_tables.len());
    for (name, number) in &notice.created_tables {
        put_bytes(&mut out, name.as_bytes());
        out.extend_from_slice(&number.to_be_bytes());
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        anyhow::ensure!(self.0.len() >= n, "corrupt commit log entry: truncated");
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    fn u32(&mut self) -> anyhow::Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into()?))
    }

    fn bytes(&mut self) -> anyhow::Result<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

fn decode(ts: u64, bytes: &[u8]) -> anyhow::Result<CommitNotice> {
    let mut reader = Reader(bytes);
    let touched = (0..reader.u32()?)
        .map(|_| reader.bytes().map(<[u8]>::to_vec))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let altered_tables = (0..reader.u32()?)
        .map(|_| reader.u32())
        .collect::<anyhow::Result<BTreeSet<_>>>()?;
    let created_tables = (0..reader.u32()?)
        .map(|_| {
            let name = String::from_utf8(reader.bytes()?.to_vec())?;
            Ok((name, reader.u32()?))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        reader.0.is_empty(),
        "corrupt commit log entry: trailing bytes"
    );
    Ok(CommitNotice {
        ts,
        touched,
        altered_tables,
        created_tables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_decodes_to_the_notice_it_was_encoded_from() {
        let notice = CommitNotice {
            ts: 42,
            touched: vec![vec![0, 1, 2], Vec::new(), vec![255; 300]],
            altered_tables: [10_001, 10_002].into(),
            created_tables: vec![("messages".into(), 10_003)],
        };
        let decoded = decode(42, &encode(&notice)).unwrap();
        assert_eq!(decoded.touched, notice.touched);
        assert_eq!(decoded.altered_tables, notice.altered_tables);
        assert_eq!(decoded.created_tables, notice.created_tables);
        assert!(decode(42, &encode(&notice)[..5]).is_err());
    }
}
