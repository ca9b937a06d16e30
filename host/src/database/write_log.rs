//! The committer's memory of recent commits: which index keys each one touched, and which
//! tables' schemas it changed. A finishing mutation is valid if no commit after its
//! snapshot touched a key in a range it read, or changed the schema of a table it used
//! (optimistic concurrency control, DESIGN.md section 5).
//!
//! The log is bounded in bytes, not commits: a commit that touched large index keys (a
//! 1 MiB indexed string) costs its size. A mutation whose snapshot is older than what the
//! log remembers cannot be checked, so it re-runs ([`Conflict::SnapshotTooOld`]).

use std::collections::{BTreeSet, VecDeque};

use super::reads::ReadSet;

/// Why a mutation may not commit as it ran; it is re-run from scratch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// A commit at this timestamp wrote into a range the mutation read.
    WriteInReadRange { commit_ts: u64 },
    /// The mutation's snapshot is older than the log remembers, so it cannot be checked.
    SnapshotTooOld,
    /// A table the mutation found missing was created after its snapshot.
    TableCreated,
    /// A commit at this timestamp changed the indexes or validator of a table the
    /// mutation read or wrote.
    SchemaChanged { commit_ts: u64 },
}

/// What the log keeps of one commit.
#[derive(Debug)]
struct Entry {
    commit_ts: u64,
    touched_keys: Vec<Vec<u8>>,
    /// Tables whose indexes or validator this commit changed.
    altered_tables: BTreeSet<u32>,
    /// What this entry counts against the log's byte budget.
    bytes: usize,
}

/// What one remembered key costs beyond its bytes (its `Vec`), and one commit.
const KEY_OVERHEAD_BYTES: usize = 24;
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Recent commits, oldest first, bounded in bytes.
#[derive(Debug)]
pub struct WriteLog {
    entries: VecDeque<Entry>,
    /// Every commit after this timestamp is in `entries`.
    complete_after_ts: u64,
    max_bytes: usize,
    bytes: usize,
}

impl WriteLog {
    /// An empty log for a database whose last commit is `current_ts`, keeping at most
    /// `max_bytes` of commits.
    pub fn new(current_ts: u64, max_bytes: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            complete_after_ts: current_ts,
            max_bytes,
            bytes: 0,
        }
    }

    /// Records a commit; forgets the oldest ones while the log is over its byte budget
    /// (a commit bigger than the whole budget is forgotten at once: every mutation that
    /// began before it re-runs).
    pub fn push(
        &mut self,
        commit_ts: u64,
        mut touched_keys: Vec<Vec<u8>>,
        altered_tables: BTreeSet<u32>,
    ) {
        // Sorted, so a check can probe them with the read ranges when those are fewer.
        touched_keys.sort_unstable();
        touched_keys.dedup();
        let bytes = ENTRY_OVERHEAD_BYTES
            + touched_keys
                .iter()
                .map(|key| key.len() + KEY_OVERHEAD_BYTES)
                .sum::<usize>();
        self.bytes += bytes;
        self.entries.push_back(Entry {
            commit_ts,
            touched_keys,
            altered_tables,
            bytes,
        });
        while self.bytes > self.max_bytes {
            let Some(forgotten) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= forgotten.bytes;
            self.complete_after_ts = forgotten.commit_ts;
        }
    }

    /// Forgets the commits after `ts`: an abandoned group commit never wrote them.
    pub fn forget_after(&mut self, ts: u64) {
        while self
            .entries
            .back()
            .is_some_and(|entry| entry.commit_ts > ts)
        {
            if let Some(entry) = self.entries.pop_back() {
                self.bytes -= entry.bytes;
            }
        }
    }

    /// Bytes the log holds now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Checks a transaction that read `reads` at `snapshot_ts` against every later commit.
    /// `reads` should be sealed ([`ReadSet::seal`]): each commit then costs a binary search
    /// per key it touched or per range read, whichever are fewer.
    pub fn check(&self, snapshot_ts: u64, reads: &ReadSet) -> Result<(), Conflict> {
        if snapshot_ts < self.complete_after_ts {
            return Err(Conflict::SnapshotTooOld);
        }
        for entry in self.entries.iter().rev() {
            if entry.commit_ts <= snapshot_ts {
                break;
            }
            if !entry.altered_tables.is_disjoint(reads.tables()) {
                return Err(Conflict::SchemaChanged {
                    commit_ts: entry.commit_ts,
                });
            }
            if reads.overlaps_sorted(&entry.touched_keys) {
                return Err(Conflict::WriteInReadRange {
                    commit_ts: entry.commit_ts,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::reads::KeyRange;

    fn reads(keys: &[&[u8]]) -> ReadSet {
        let mut set = ReadSet::default();
        for key in keys {
            set.record(KeyRange::point(key.to_vec()));
        }
        set.seal();
        set
    }

    #[test]
    fn only_commits_after_the_snapshot_count() {
        let mut log = WriteLog::new(10, 1 << 20);
        log.push(11, vec![b"a".to_vec()], BTreeSet::new());
        log.push(12, vec![b"b".to_vec()], BTreeSet::new());
        assert_eq!(
            log.check(10, &reads(&[b"a"])),
            Err(Conflict::WriteInReadRange { commit_ts: 11 })
        );
        assert_eq!(log.check(11, &reads(&[b"a"])), Ok(()));
        assert_eq!(
            log.check(11, &reads(&[b"b"])),
            Err(Conflict::WriteInReadRange { commit_ts: 12 })
        );
        assert_eq!(log.check(12, &reads(&[b"a", b"b"])), Ok(()));
    }

    #[test]
    fn a_snapshot_older_than_the_log_is_a_conflict() {
        // Room for two empty commits.
        let mut log = WriteLog::new(0, 2 * ENTRY_OVERHEAD_BYTES);
        for ts in 1..=3 {
            log.push(ts, vec![], BTreeSet::new());
        }
        assert_eq!(log.check(0, &reads(&[])), Err(Conflict::SnapshotTooOld));
        assert_eq!(log.check(1, &reads(&[])), Ok(()));
    }

    #[test]
    fn the_log_is_bounded_in_bytes_and_big_commits_push_out_more() {
        let budget = 4 * (ENTRY_OVERHEAD_BYTES + KEY_OVERHEAD_BYTES + 1);
        let mut log = WriteLog::new(0, budget);
        for ts in 1..=10 {
            log.push(ts, vec![vec![b'k']], BTreeSet::new());
            assert!(log.bytes() <= budget);
        }
        assert_eq!(log.check(6, &reads(&[])), Ok(()));
        assert_eq!(log.check(5, &reads(&[])), Err(Conflict::SnapshotTooOld));
        // One commit with a key as big as the whole budget: nothing older can be checked,
        // and neither can it, so every snapshot before it re-runs.
        log.push(11, vec![vec![b'x'; budget]], BTreeSet::new());
        assert!(log.bytes() <= budget);
        assert_eq!(log.check(10, &reads(&[])), Err(Conflict::SnapshotTooOld));
        assert_eq!(log.check(11, &reads(&[b"x"])), Ok(()));
    }

    #[test]
    fn a_schema_change_conflicts_only_with_transactions_that_used_its_table() {
        let mut log = WriteLog::new(0, 1 << 20);
        log.push(1, vec![], BTreeSet::from([7]));
        let mut used_7 = reads(&[]);
        used_7.record_table(7);
        let mut used_8 = reads(&[]);
        used_8.record_table(8);
        assert_eq!(
            log.check(0, &used_7),
            Err(Conflict::SchemaChanged { commit_ts: 1 })
        );
        assert_eq!(log.check(0, &used_8), Ok(()));
        assert_eq!(log.check(1, &used_7), Ok(()));
    }
}
