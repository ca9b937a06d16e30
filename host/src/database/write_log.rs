//! The committer's memory of recent commits: which index keys each one touched. A
//! finishing mutation is valid if no commit after its snapshot touched a key in a range it
//! read (optimistic concurrency control, DESIGN.md section 5).

use std::collections::VecDeque;

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
}

/// Recent commits, oldest first, bounded in length.
#[derive(Debug)]
pub struct WriteLog {
    entries: VecDeque<(u64, Vec<Vec<u8>>)>,
    /// Every commit after this timestamp is in `entries`.
    complete_after_ts: u64,
    max_entries: usize,
}

impl WriteLog {
    /// An empty log for a database whose last commit is `current_ts`.
    pub fn new(current_ts: u64, max_entries: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            complete_after_ts: current_ts,
            max_entries: max_entries.max(1),
        }
    }

    /// Records a commit; forgets the oldest one past `max_entries`.
    pub fn push(&mut self, commit_ts: u64, touched_keys: Vec<Vec<u8>>) {
        self.entries.push_back((commit_ts, touched_keys));
        while self.entries.len() > self.max_entries {
            if let Some((forgotten_ts, _)) = self.entries.pop_front() {
                self.complete_after_ts = forgotten_ts;
            }
        }
    }

    /// Forgets every commit before `ts`: transactions that began before it re-run (used
    /// when a commit changes indexes, which old read sets cannot describe).
    pub fn forget_before(&mut self, ts: u64) {
        self.entries.retain(|(commit_ts, _)| *commit_ts >= ts);
        self.complete_after_ts = self.complete_after_ts.max(ts);
    }

    /// Checks a transaction that read `reads` at `snapshot_ts` against every later commit.
    pub fn check(&self, snapshot_ts: u64, reads: &ReadSet) -> Result<(), Conflict> {
        if snapshot_ts < self.complete_after_ts {
            return Err(Conflict::SnapshotTooOld);
        }
        for (commit_ts, keys) in self.entries.iter().rev() {
            if *commit_ts <= snapshot_ts {
                break;
            }
            if reads.overlaps(keys.iter().map(Vec::as_slice)) {
                return Err(Conflict::WriteInReadRange {
                    commit_ts: *commit_ts,
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
        set
    }

    #[test]
    fn only_commits_after_the_snapshot_count() {
        let mut log = WriteLog::new(10, 100);
        log.push(11, vec![b"a".to_vec()]);
        log.push(12, vec![b"b".to_vec()]);
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
        let mut log = WriteLog::new(0, 2);
        for ts in 1..=3 {
            log.push(ts, vec![]);
        }
        assert_eq!(log.check(0, &reads(&[])), Err(Conflict::SnapshotTooOld));
        assert_eq!(log.check(1, &reads(&[])), Ok(()));
    }
}
