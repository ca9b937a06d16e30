//! Which query results a commit made stale: the read sets that make mutations serializable
//! also make queries reactive (DESIGN.md section 5).
//!
//! A query result computed at commit `ts` with read set `R` is subscribed here; it stays
//! valid until a later commit writes a key inside one of `R`'s ranges, changes a table it
//! used, or creates a table it found missing. The committer hands every durable commit to
//! one thread ("kiln-invalidator") that checks it against the live subscriptions, marks the
//! stale ones, and wakes whoever watches them. Commit notices are processed in commit order,
//! and [`Subscriptions::wait_processed`] tells a reader when every commit up to a snapshot's
//! has been checked: a subscription not marked by then is valid at that snapshot.
//!
//! Nothing here knows of functions or of sockets: the sync layer (`crate::sync`) decides
//! what to re-run.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak, mpsc};
use std::thread;

use anyhow::Context as _;
use tokio::sync::{Notify, watch};

use super::reads::{MissingTable, ReadSet};
use super::write_log::WriteLog;

/// What one durable commit changed, as subscriptions see it.
#[derive(Debug, Clone)]
pub struct CommitNotice {
    pub ts: u64,
    /// The index keys it wrote (every index entry added or removed), sorted.
    pub touched: Vec<Vec<u8>>,
    /// Tables whose indexes or validator it changed.
    pub altered_tables: BTreeSet<u32>,
    /// Tables it created: (name, number).
    pub created_tables: Vec<(String, u32)>,
}

/// Bytes of recent commits kept to check a subscription made at an older snapshot than the
/// last commit processed; one older than that is stale at once (and re-runs).
const RECENT_COMMITS_BYTES: usize = 16 << 20;

/// Table creations remembered for the same check (they are rare: one per new table).
const RECENT_CREATIONS: usize = 4_096;

/// One query result's watch on the database: stale from the first commit after `ts` that
/// intersects what it read.
pub struct Subscription {
    reads: ReadSet,
    /// The commit the result was computed at.
    ts: u64,
    /// The commit that made it stale; 0 while it is valid.
    stale_at: AtomicU64,
    /// Who to wake when it goes stale.
    watchers: Mutex<Vec<Weak<Notify>>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("ts", &self.ts)
            .field("stale_at", &self.stale_at())
            .finish()
    }
}

impl Subscription {
    /// The commit the result was computed at.
    pub fn ts(&self) -> u64 {
        self.ts
    }

    /// The commit that made the result stale, if one has (among those processed).
    pub fn stale_at(&self) -> Option<u64> {
        match self.stale_at.load(Ordering::Acquire) {
            0 => None,
            ts => Some(ts),
        }
    }

    /// Whether the result is still the answer at commit `ts`, given that every commit up to
    /// `ts` has been processed ([`Subscriptions::wait_processed`]).
    pub fn valid_at(&self, ts: u64) -> bool {
        self.ts <= ts && self.stale_at().is_none_or(|stale| stale > ts)
    }

    /// Wakes `notify` (once) when the result goes stale; at once if it already has.
    pub fn watch(&self, notify: &Arc<Notify>) {
        let mut watchers = self.watchers.lock().expect("watchers poisoned");
        if self.stale_at().is_some() {
            notify.notify_one();
            return;
        }
        watchers.retain(|watcher| watcher.strong_count() > 0);
        watchers.push(Arc::downgrade(notify));
    }

    fn mark_stale(&self, ts: u64) {
        // The first commit that intersects wins: a later one cannot make it staler.
        if self
            .stale_at
            .compare_exchange(0, ts.max(1), Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let watchers = std::mem::take(&mut *self.watchers.lock().expect("watchers poisoned"));
        for watcher in watchers.iter().filter_map(Weak::upgrade) {
            watcher.notify_one();
        }
    }

    /// Whether `notice` intersects what the result read.
    fn touched_by(&self, notice: &CommitNotice) -> bool {
        !notice.altered_tables.is_disjoint(self.reads.tables())
            || notice.created_tables.iter().any(|(name, number)| {
                self.reads
                    .missing_tables()
                    .contains(&MissingTable::Name(name.clone()))
                    || self
                        .reads
                        .missing_tables()
                        .contains(&MissingTable::Number(*number))
            })
            || self.reads.overlaps_sorted(&notice.touched)
    }
}

/// The live subscriptions and the thread that checks commits against them.
pub struct Subscriptions {
    state: Arc<Mutex<State>>,
    processed: watch::Receiver<u64>,
    /// Commits the invalidator checked and the subscriptions it marked stale, for tests
    /// and the benchmark ("a commit that touches nothing subscribed re-runs nothing").
    counters: Arc<Counters>,
}

/// What the invalidator has done since the server started.
#[derive(Debug, Default)]
pub struct Counters {
    pub commits: AtomicUsize,
    pub marked_stale: AtomicUsize,
}

struct State {
    /// Recent commits, to check a subscription made at a snapshot older than the last
    /// commit processed.
    recent: WriteLog,
    /// Recent table creations: (commit ts, name, number).
    recent_creations: VecDeque<(u64, String, u32)>,
    /// The last commit processed.
    processed_ts: u64,
    live: Vec<Weak<Subscription>>,
}

/// The committer's end: hands each durable commit to the invalidator.
///
/// A batch's commits go in one message. One per commit cost the committer a wake-up of
/// the invalidator each, and the invalidator a sleep each, the two contending on the
/// channel's lock: under `messages:send` at 32 clients the committer spent 22% of its time
/// in the channel's `send` and the invalidator 90% in its `recv` (perf record -t).
#[derive(Clone)]
pub struct CommitFeed(mpsc::Sender<Vec<CommitNotice>>);

impl CommitFeed {
    /// Hands `notice` to the invalidator; false if it has stopped.
    pub fn publish(&self, notice: CommitNotice) -> bool {
        self.publish_all(vec![notice])
    }

    /// Hands `notices` (in commit order) to the invalidator at once; false if it has
    /// stopped.
    pub fn publish_all(&self, notices: Vec<CommitNotice>) -> bool {
        if notices.is_empty() {
            return true;
        }
        // The invalidator ends only when every feed is gone.
        self.0.send(notices).is_ok()
    }
}

impl Subscriptions {
    /// Starts the invalidator for a database whose last commit is `current_ts`. The feed is
    /// the committer's; the thread ends when the feed is dropped.
    pub fn start(current_ts: u64) -> anyhow::Result<(Arc<Self>, CommitFeed)> {
        let (sender, receiver) = mpsc::channel::<Vec<CommitNotice>>();
        let (processed_sender, processed) = watch::channel(current_ts);
        let state = Arc::new(Mutex::new(State {
            recent: WriteLog::new(current_ts, RECENT_COMMITS_BYTES),
            recent_creations: VecDeque::new(),
            processed_ts: current_ts,
            live: Vec::new(),
        }));
        let counters = Arc::new(Counters::default());
        let thread_state = state.clone();
        let thread_counters = counters.clone();
        thread::Builder::new()
            .name("kiln-invalidator".into())
            .spawn(move || {
                while let Ok(mut notices) = receiver.recv() {
                    notices.extend(receiver.try_iter().flatten());
                    let last = notices.last().map_or(0, |notice| notice.ts);
                    process(&thread_state, &thread_counters, notices);
                    processed_sender.send_replace(last);
                }
            })
            .context("cannot start the invalidator thread")?;
        Ok((
            Arc::new(Self {
                state,
                processed,
                counters,
            }),
            CommitFeed(sender),
        ))
    }

    /// Watches `reads`, read at commit `ts`. A commit after `ts` already processed that
    /// intersects it marks it stale at once (as does one too old to check).
    pub fn subscribe(&self, mut reads: ReadSet, ts: u64) -> Arc<Subscription> {
        reads.seal();
        let subscription = Arc::new(Subscription {
            reads,
            ts,
            stale_at: AtomicU64::new(0),
            watchers: Mutex::new(Vec::new()),
        });
        let mut state = self.state.lock().expect("subscriptions poisoned");
        if ts < state.processed_ts {
            let created_since = state.recent_creations.iter().any(|(at, name, number)| {
                *at > ts
                    && subscription.touched_by(&CommitNotice {
                        ts: *at,
                        touched: Vec::new(),
                        altered_tables: BTreeSet::new(),
                        created_tables: vec![(name.clone(), *number)],
                    })
            });
            let too_old_for_creations = state.recent_creations.front().is_some_and(|(at, _, _)| {
                *at > ts && state.recent_creations.len() >= RECENT_CREATIONS
            });
            let stale = created_since
                || too_old_for_creations
                || state.recent.check(ts, &subscription.reads).is_err();
            if stale {
                subscription.mark_stale(state.processed_ts);
                self.counters.marked_stale.fetch_add(1, Ordering::Relaxed);
                return subscription;
            }
        }
        state.live.push(Arc::downgrade(&subscription));
        subscription
    }

    /// Waits until every commit up to `ts` has been checked against the subscriptions.
    pub async fn wait_processed(&self, ts: u64) {
        let mut processed = self.processed.clone();
        // The sender lives as long as the committer; if it is gone, nothing commits more.
        let _ = processed.wait_for(|processed| *processed >= ts).await;
    }

    /// Changes each time commits have been checked (its value: the last one).
    pub fn processed_watch(&self) -> watch::Receiver<u64> {
        self.processed.clone()
    }

    /// The last commit checked.
    pub fn processed_ts(&self) -> u64 {
        *self.processed.borrow()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Subscriptions alive now (for tests and the benchmark).
    pub fn live_count(&self) -> usize {
        let state = self.state.lock().expect("subscriptions poisoned");
        state
            .live
            .iter()
            .filter(|subscription| subscription.strong_count() > 0)
            .count()
    }
}

/// Checks `notices` (in commit order) against every live subscription.
fn process(state: &Mutex<State>, counters: &Counters, notices: Vec<CommitNotice>) {
    let mut state = state.lock().expect("subscriptions poisoned");
    for notice in notices {
        counters.commits.fetch_add(1, Ordering::Relaxed);
        state.live.retain(|weak| {
            let Some(subscription) = weak.upgrade() else {
                return false;
            };
            if subscription.ts >= notice.ts || !subscription.touched_by(&notice) {
                return true;
            }
            subscription.mark_stale(notice.ts);
            counters.marked_stale.fetch_add(1, Ordering::Relaxed);
            false
        });
        for (name, number) in &notice.created_tables {
            state
                .recent_creations
                .push_back((notice.ts, name.clone(), *number));
            if state.recent_creations.len() > RECENT_CREATIONS {
                state.recent_creations.pop_front();
            }
        }
        state.processed_ts = notice.ts;
        state
            .recent
            .push(notice.ts, notice.touched, notice.altered_tables);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::database::reads::KeyRange;

    fn reads(start: &[u8], end: &[u8]) -> ReadSet {
        let mut reads = ReadSet::default();
        reads.record(KeyRange {
            start: start.to_vec(),
            end: Some(end.to_vec()),
        });
        reads
    }

    fn notice(ts: u64, keys: &[&[u8]]) -> CommitNotice {
        CommitNotice {
            ts,
            touched: keys.iter().map(|key| key.to_vec()).collect(),
            altered_tables: BTreeSet::new(),
            created_tables: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_commit_into_a_read_range_marks_it_stale_and_wakes_its_watcher() {
        let (subscriptions, feed) = Subscriptions::start(10).unwrap();
        let inside = subscriptions.subscribe(reads(b"b", b"d"), 10);
        let outside = subscriptions.subscribe(reads(b"x", b"y"), 10);
        let notify = Arc::new(Notify::new());
        inside.watch(&notify);
        feed.publish(notice(11, &[b"c"]));
        subscriptions.wait_processed(11).await;
        notify.notified().await;
        assert_eq!(inside.stale_at(), Some(11));
        assert!(inside.valid_at(10) && !inside.valid_at(11));
        assert!(outside.valid_at(11), "a write elsewhere changes nothing");
        assert_eq!(
            subscriptions
                .counters()
                .marked_stale
                .load(Ordering::Relaxed),
            1
        );
    }

    #[tokio::test]
    async fn a_subscription_older_than_processed_commits_is_checked_against_them() {
        let (subscriptions, feed) = Subscriptions::start(10).unwrap();
        feed.publish(notice(11, &[b"c"]));
        subscriptions.wait_processed(11).await;
        // Computed at 10, subscribed after 11 was processed: 11 touched it.
        assert_eq!(
            subscriptions.subscribe(reads(b"b", b"d"), 10).stale_at(),
            Some(11)
        );
        assert!(subscriptions.subscribe(reads(b"e", b"f"), 10).valid_at(11));
        // Watching a stale one wakes at once.
        let notify = Arc::new(Notify::new());
        subscriptions
            .subscribe(reads(b"b", b"d"), 10)
            .watch(&notify);
        notify.notified().await;
    }

    #[tokio::test]
    async fn creating_a_table_a_query_found_missing_marks_it_stale() {
        let (subscriptions, feed) = Subscriptions::start(1).unwrap();
        let mut missing = ReadSet::default();
        missing.record_missing_table(MissingTable::Name("messages".into()));
        let subscription = subscriptions.subscribe(missing, 1);
        feed.publish(CommitNotice {
            created_tables: vec![("messages".into(), 7)],
            ..notice(2, &[b"k"])
        });
        subscriptions.wait_processed(2).await;
        assert_eq!(subscription.stale_at(), Some(2));
    }

    #[tokio::test]
    async fn dropped_subscriptions_are_forgotten() {
        let (subscriptions, feed) = Subscriptions::start(1).unwrap();
        let kept = subscriptions.subscribe(reads(b"a", b"b"), 1);
        drop(subscriptions.subscribe(reads(b"a", b"b"), 1));
        feed.publish(notice(2, &[b"z"]));
        subscriptions.wait_processed(2).await;
        assert_eq!(subscriptions.live_count(), 1);
        drop(kept);
    }
}
