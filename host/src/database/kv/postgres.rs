//! The persistence interface on PostgreSQL (or an engine that speaks its protocol), for
//! several Kiln hosts over one database (DESIGN.md section 8).
//!
//! Every key space lives in one table, `kiln_kv (space, key, value)`, ordered by its
//! primary key; `bytea` compares as bytes, as the interface requires.
//! * A snapshot is a `REPEATABLE READ, READ ONLY` transaction on a pooled connection: every
//!   read in it, the commit timestamp included, sees one commit.
//! * A write transaction first locks the commit-timestamp counter row (`SELECT ... FOR
//!   UPDATE`), so write transactions from every host run one at a time, in the order of
//!   their commit timestamps; a row lock, not an advisory lock, so that engines without
//!   those work too. Its changes are buffered per batch and sent as one statement each for
//!   upserts and deletes.
//! * Sequences (table numbers, index ids) are rows too, drawn in short transactions of
//!   their own, so that hosts never hand out the same id.
//!
//! The interface is synchronous (the document store is called from inside wasm host
//! calls); each call here runs its query on the async driver and blocks the calling thread
//! for it, handing the thread's other async work to another thread meanwhile
//! (`block_in_place`).

use std::collections::BTreeMap;
use std::future::Future;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use futures_util::StreamExt;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls};

use super::postgres_files::PgFiles;
use super::{KeyRange, KvRead, KvStore, KvWrite, Op, Order, SharedFiles, Space, Visit, VisitIndex};

/// The counter whose row every write transaction locks: the commit timestamp.
const COMMIT_LOCK_KEY: &[u8] = b"commit_ts";

/// Rows a scan reads at first, and at most, per round trip: scans that stop early (a page
/// of 20) read little; long ones read in larger batches, unless a batch's values add up
/// to [`SCAN_BATCH_BYTES`] (large documents), after which batches shrink again.
const FIRST_SCAN_BATCH: i64 = 64;
const MAX_SCAN_BATCH: i64 = 4096;
const SCAN_BATCH_BYTES: usize = 4 << 20;

/// The channel commits are announced on (`NOTIFY`, sent with each commit).
const COMMIT_CHANNEL: &str = "kiln_commits";

/// Connections in the pool: snapshots hold one each while they live.
const POOL_SIZE: usize = 64;

/// Connections opened when the store opens (see [`PgStore::connect`]).
const WARM_CONNECTIONS: usize = 32;

/// How long a caller waits for a pooled connection, or for a new one to open, before the
/// call fails (the database is down or overloaded: the caller gets an error, not a hang).
const POOL_WAIT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kiln_kv (
    space SMALLINT NOT NULL,
    key BYTEA NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (space, key)
);
CREATE TABLE IF NOT EXISTS kiln_sequences (
    name TEXT PRIMARY KEY,
    next BIGINT NOT NULL
);
";

fn space_id(space: Space) -> i16 {
    match space {
        Space::Documents => 1,
        Space::IndexEntries => 2,
        Space::Tables => 3,
        Space::Counters => 4,
        Space::ModuleSources => 5,
        Space::CompiledArtifacts => 6,
        Space::Deployment => 7,
        Space::EnvironmentVariables => 8,
        Space::CommitLog => 9,
        Space::Settings => 10,
    }
}

/// PostgreSQL as a [`KvStore`].
pub struct PgStore {
    pool: Pool,
    runtime: Handle,
    /// Woken when any host may have committed (see [`listen`]).
    signal: Arc<Notify>,
    /// The database, without its password, for logs.
    display: String,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and creates
    /// Kiln's tables if they are missing.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let config: tokio_postgres::Config = url.parse().context(
            "invalid database URL: expected postgres://user:password@host:port/database",
        )?;
        let display = describe(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                // Whatever holds a connection in a transaction ends it before the
                // connection goes back (a snapshot's or a file lock's drop rolls back
                // first), so recycling only checks that the connection is open.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .context("cannot set up the database connection pool")?;
        let client = pool
            .get()
            .await
            .with_context(|| format!("cannot connect to the database {display}"))?;
        create_tables(&client)
            .await
            .with_context(|| format!("cannot create Kiln's tables in {display}"))?;
        // The row every write transaction locks must exist before the first one.
        client
            .execute(
                "INSERT INTO kiln_kv (space, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&space_id(Space::Counters), &COMMIT_LOCK_KEY, &&0u64.to_be_bytes()[..]],
            )
            .await
            .context("cannot create the commit timestamp row")?;
        drop(client);
        // Connections open before the first requests arrive: a host that starts behind a
        // busy load balancer would otherwise open dozens at once, each call waiting its
        // turn with the clock of its time limit running.
        let warm: Vec<_> =
            futures_util::future::join_all((0..WARM_CONNECTIONS).map(|_| pool.get())).await;
        drop(warm);
        let signal = Arc::new(Notify::new());
        tokio::spawn(listen(config, signal.clone(), display.clone()));
        Ok(Self {
            pool,
            runtime: Handle::current(),
            signal,
            display,
        })
    }

    fn wait<T>(&self, future: impl Future<Output = T>) -> T {
        wait(&self.runtime, future)
    }

    async fn connection(&self) -> anyhow::Result<Object> {
        self.pool
            .get()
            .await
            .with_context(|| format!("the database {} is unavailable", self.display))
    }
}

/// Creates Kiln's tables where they are missing. `CREATE TABLE IF NOT EXISTS` is not safe
/// against itself: hosts starting together on an empty database race, and all but one
/// fail on the catalog's unique index. Each loser tries again (without an advisory lock,
/// which some engines lack) and then finds the tables there.
async fn create_tables(client: &Object) -> Result<(), tokio_postgres::Error> {
    let schema = format!("{SCHEMA}{}", super::postgres_files::SCHEMA);
    let mut attempt = 0;
    loop {
        match client.batch_execute(&schema).await {
            Err(error) if attempt < 5 && is_creation_race(&error) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            result => return result,
        }
    }
}

/// A unique violation (`23505`, the catalog's index) or an object created meanwhile
/// (`42P07`): what two concurrent `CREATE TABLE IF NOT EXISTS` can end in.
fn is_creation_race(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    error.code().is_some_and(|code| {
        *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::DUPLICATE_TABLE
    })
}

/// Listens for the commits of every host on a connection of its own and wakes `signal`
/// for each; reconnects after a failure (and wakes `signal` then too, since a
/// notification may have been missed: the follower reads the log either way).
async fn listen(config: tokio_postgres::Config, signal: Arc<Notify>, database: String) {
    let mut failures = 0u32;
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (sender, mut ended) = tokio::sync::oneshot::channel::<()>();
                let wake = signal.clone();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => wake.notify_one(),
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                    drop(sender);
                });
                match client
                    .batch_execute(&format!("LISTEN {COMMIT_CHANNEL}"))
                    .await
                {
                    Ok(()) => {
                        failures = 0;
                        signal.notify_one();
                        let _ = (&mut ended).await;
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, database = %database, "cannot listen for commits")
                    }
                }
                driver.abort();
            }
            Err(error) => {
                if failures == 0 {
                    tracing::warn!(error = %error, database = %database, "lost the database connection that listens for commits; reconnecting");
                }
            }
        }
        failures = failures.saturating_add(1);
        signal.notify_one();
        tokio::time::sleep(Duration::from_millis(100 * u64::from(failures.min(20)))).await;
    }
}

/// `user@host:port/database`, never the password.
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{}@{host}:{port}/{}",
        config.get_user().unwrap_or_default(),
        config.get_dbname().unwrap_or_default()
    )
}

/// Runs `future` to completion on `runtime`, blocking this thread (see the module comment).
pub(super) fn wait<T>(runtime: &Handle, future: impl Future<Output = T>) -> T {
    tokio::task::block_in_place(|| runtime.block_on(future))
}

impl KvStore for PgStore {
    fn snapshot(&self) -> anyhow::Result<Arc<dyn KvRead + Send + Sync>> {
        let client = self.wait(async {
            let client = self.connection().await?;
            client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await
                .context("cannot begin a read snapshot")?;
            anyhow::Ok(client)
        })?;
        Ok(Arc::new(Reader {
            client: Some(client),
            runtime: self.runtime.clone(),
        }))
    }

    fn begin_write(&self) -> anyhow::Result<Box<dyn KvWrite + '_>> {
        let client = self.wait(async {
            let client = self.connection().await?;
            client
                .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
                .await
                .context("cannot begin a write transaction")?;
            // Write transactions from every host queue here, one at a time. Once the lock
            // is held, each statement (read committed) sees every earlier commit.
            let locked = client
                .query_one(
                    "SELECT value FROM kiln_kv WHERE space = $1 AND key = $2 FOR UPDATE",
                    &[&space_id(Space::Counters), &COMMIT_LOCK_KEY],
                )
                .await;
            if let Err(error) = locked {
                // The connection goes back to the pool outside any transaction.
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(error).context("cannot lock the commit timestamp");
            }
            anyhow::Ok(client)
        })?;
        Ok(Box::new(PgWrite {
            reader: Reader {
                client: Some(client),
                runtime: self.runtime.clone(),
            },
        }))
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn shared(&self) -> bool {
        true
    }

    fn commit_signal(&self) -> Option<Arc<Notify>> {
        Some(self.signal.clone())
    }

    fn shared_files(&self) -> Option<Arc<dyn SharedFiles>> {
        Some(Arc::new(PgFiles {
            pool: self.pool.clone(),
            runtime: self.runtime.clone(),
            display: self.display.clone(),
        }))
    }

    fn next_in_sequence(&self, name: &str, first: u64) -> anyhow::Result<u64> {
        self.wait(async {
            let client = self.connection().await?;
            let row = client
                .query_one(
                    "INSERT INTO kiln_sequences (name, next) VALUES ($1, $2::bigint + 1)
                     ON CONFLICT (name) DO UPDATE SET next = kiln_sequences.next + 1
                     RETURNING next - 1",
                    &[&name, &(first as i64)],
                )
                .await
                .with_context(|| format!("cannot draw from the sequence {name}"))?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn set_sequence_at_least(&self, name: &str, next: u64) -> anyhow::Result<()> {
        self.wait(async {
            let client = self.connection().await?;
            client
                .execute(
                    "INSERT INTO kiln_sequences (name, next) VALUES ($1, $2::bigint)
                     ON CONFLICT (name) DO UPDATE SET next = GREATEST(kiln_sequences.next, $2::bigint)",
                    &[&name, &(next as i64)],
                )
                .await
                .with_context(|| format!("cannot set the sequence {name}"))?;
            Ok(())
        })
    }
}

/// A connection in a transaction, read through the interface. Dropping it ends the
/// transaction (rolled back if it was not committed) and returns the connection.
struct Reader {
    client: Option<Object>,
    runtime: Handle,
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Off this thread: the drop may run on an async worker. The connection goes
            // back to the pool once the rollback is done.
            self.runtime.spawn(async move {
                let _ = client.batch_execute("ROLLBACK").await;
            });
        }
    }
}

impl Reader {
    fn client(&self) -> &Object {
        self.client.as_ref().expect("the client lives until drop")
    }
}

/// A snapshot is a reader; a write transaction reads through its own.
impl KvRead for Reader {
    fn get_with(
        &self,
        space: Space,
        key: &[u8],
        found: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        let row = wait(&self.runtime, async {
            let client = self.client();
            let statement = client
                .prepare_cached("SELECT value FROM kiln_kv WHERE space = $1 AND key = $2")
                .await?;
            client
                .query_opt(&statement, &[&space_id(space), &key])
                .await
        })
        .context("database read failed")?;
        match row {
            Some(row) => {
                found(row.get::<_, &[u8]>(0))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn scan(
        &self,
        space: Space,
        range: KeyRange<'_>,
        order: Order,
        visit: &mut Visit<'_>,
    ) -> anyhow::Result<()> {
        self.scan_rows(space, false, range, order, &mut |key, value, _| {
            visit(key, value)
        })
    }

    fn scan_index(
        &self,
        range: KeyRange<'_>,
        order: Order,
        visit: &mut VisitIndex<'_>,
    ) -> anyhow::Result<()> {
        self.scan_rows(Space::IndexEntries, true, range, order, visit)
    }
}

impl Reader {
    /// Scans `space` in batches of rows; with `join_documents`, each row also carries the
    /// document its value names (an index entry's).
    fn scan_rows(
        &self,
        space: Space,
        join_documents: bool,
        range: KeyRange<'_>,
        order: Order,
        visit: &mut VisitIndex<'_>,
    ) -> anyhow::Result<()> {
        let (mut lower, mut upper) = (owned(range.0), owned(range.1));
        let mut batch = FIRST_SCAN_BATCH;
        let space = space_id(space);
        let documents = space_id(Space::Documents);
        loop {
            let sql = scan_sql(&lower, &upper, order, join_documents);
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&space];
            if join_documents {
                params.push(&documents);
            }
            let lower_key = bound_key(&lower);
            let upper_key = bound_key(&upper);
            if let Some(key) = &lower_key {
                params.push(key);
            }
            if let Some(key) = &upper_key {
                params.push(key);
            }
            params.push(&batch);
            let rows = wait(&self.runtime, async {
                let client = self.client();
                let statement = client.prepare_cached(&sql).await?;
                client.query(&statement, &params).await
            })
            .context("database scan failed")?;
            let complete = (rows.len() as i64) < batch;
            let (mut last, mut bytes) = (None, 0);
            for row in &rows {
                let key: &[u8] = row.get(0);
                let value: &[u8] = row.get(1);
                let document: Option<&[u8]> = if join_documents { row.get(2) } else { None };
                bytes += value.len() + document.map_or(0, <[u8]>::len);
                if !visit(key, value, document)? {
                    return Ok(());
                }
                last = Some(key);
            }
            let Some(last) = last else { return Ok(()) };
            if complete {
                return Ok(());
            }
            match order {
                Order::Asc => lower = Bound::Excluded(last.to_vec()),
                Order::Desc => upper = Bound::Excluded(last.to_vec()),
            }
            batch = if bytes > SCAN_BATCH_BYTES {
                (batch / 4).max(1)
            } else {
                (batch * 4).min(MAX_SCAN_BATCH)
            };
        }
    }
}

fn owned(bound: Bound<&[u8]>) -> Bound<Vec<u8>> {
    bound.map(<[u8]>::to_vec)
}

fn bound_key(bound: &Bound<Vec<u8>>) -> Option<&[u8]> {
    match bound {
        Bound::Included(key) | Bound::Excluded(key) => Some(key),
        Bound::Unbounded => None,
    }
}

/// The scan's statement: `$1` the space, `$2` the documents' space when joining them,
/// then the bounds present, then the limit.
fn scan_sql(
    lower: &Bound<Vec<u8>>,
    upper: &Bound<Vec<u8>>,
    order: Order,
    join_documents: bool,
) -> String {
    let mut sql = if join_documents {
        String::from(
            "SELECT e.key, e.value, d.value FROM kiln_kv e \
             LEFT JOIN kiln_kv d ON d.space = $2 AND d.key = e.value \
             WHERE e.space = $1",
        )
    } else {
        String::from("SELECT e.key, e.value FROM kiln_kv e WHERE e.space = $1")
    };
    let mut next = if join_documents { 3 } else { 2 };
    for (bound, included, excluded) in [(lower, ">=", ">"), (upper, "<=", "<")] {
        let op = match bound {
            Bound::Included(_) => included,
            Bound::Excluded(_) => excluded,
            Bound::Unbounded => continue,
        };
        sql.push_str(&format!(" AND e.key {op} ${next}"));
        next += 1;
    }
    let direction = match order {
        Order::Asc => "ASC",
        Order::Desc => "DESC",
    };
    sql.push_str(&format!(" ORDER BY e.key {direction} LIMIT ${next}"));
    sql
}

/// A write transaction holding the commit lock.
struct PgWrite {
    reader: Reader,
}

impl KvRead for PgWrite {
    fn get_with(
        &self,
        space: Space,
        key: &[u8],
        found: &mut dyn FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        self.reader.get_with(space, key, found)
    }

    fn scan(
        &self,
        space: Space,
        range: KeyRange<'_>,
        order: Order,
        visit: &mut Visit<'_>,
    ) -> anyhow::Result<()> {
        self.reader.scan(space, range, order, visit)
    }

    fn scan_index(
        &self,
        range: KeyRange<'_>,
        order: Order,
        visit: &mut VisitIndex<'_>,
    ) -> anyhow::Result<()> {
        self.reader.scan_index(range, order, visit)
    }
}

impl KvWrite for PgWrite {
    fn apply(&mut self, ops: &[Op<'_>]) -> anyhow::Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        // The last op on each key decides it; then upserts and deletes touch distinct keys
        // and can go as one statement each.
        let mut last: BTreeMap<(i16, &[u8]), Option<&[u8]>> = BTreeMap::new();
        for op in ops {
            match *op {
                Op::Put(space, key, value) => last.insert((space_id(space), key), Some(value)),
                Op::Delete(space, key) => last.insert((space_id(space), key), None),
            };
        }
        let (mut put_spaces, mut put_keys, mut put_values) = (Vec::new(), Vec::new(), Vec::new());
        let (mut delete_spaces, mut delete_keys) = (Vec::new(), Vec::new());
        for ((space, key), value) in last {
            match value {
                Some(value) => {
                    put_spaces.push(space);
                    put_keys.push(key);
                    put_values.push(value);
                }
                None => {
                    delete_spaces.push(space);
                    delete_keys.push(key);
                }
            }
        }
        wait(&self.reader.runtime, async {
            let client = self.reader.client();
            if !delete_keys.is_empty() {
                client
                    .execute(
                        "DELETE FROM kiln_kv WHERE (space, key) IN
                         (SELECT * FROM unnest($1::smallint[], $2::bytea[]))",
                        &[&delete_spaces, &delete_keys],
                    )
                    .await?;
            }
            if !put_keys.is_empty() {
                client
                    .execute(
                        "INSERT INTO kiln_kv (space, key, value)
                         SELECT * FROM unnest($1::smallint[], $2::bytea[], $3::bytea[])
                         ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value",
                        &[&put_spaces, &put_keys, &put_values],
                    )
                    .await?;
            }
            anyhow::Ok(())
        })
        .context("database write failed")
    }

    fn commit(mut self: Box<Self>, durable: bool) -> anyhow::Result<()> {
        let client = self
            .reader
            .client
            .take()
            .expect("the client lives until commit");
        wait(&self.reader.runtime, async {
            if !durable {
                client
                    .batch_execute("SET LOCAL synchronous_commit = off")
                    .await?;
            }
            // Delivered to every listening host when (and only if) the commit happens.
            client
                .batch_execute(&format!("NOTIFY {COMMIT_CHANNEL}; COMMIT"))
                .await
        })
        .context("database commit failed")
    }
}
