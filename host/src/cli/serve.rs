//! `kiln serve`: opens the data directory, restores the deployment, and serves HTTP.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptionsExt};
use clap::Args;

use crate::api::{self, AdminKey, AppState, Surface};
use crate::config::ServerConfig;
use crate::database::committer::CommitterOptions;
use crate::database::cursor_seal::{CURSOR_KEY_BYTES, CursorKey};
use crate::database::store::DocumentStore;
use crate::deploy::Deployments;
use crate::fetch::FetchClient;
use crate::runtime::Runtime;

#[derive(Args)]
pub struct ServeArgs {
    /// Where the database and the admin key live.
    #[arg(long, default_value = "./kiln-data")]
    pub data: PathBuf,
    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:3210")]
    pub listen: SocketAddr,
    /// Address for HTTP actions, Convex's site URL (port 0 picks a free port; `off`: none).
    /// They are also served under `/http/` on the main address.
    #[arg(long, default_value = "127.0.0.1:3211")]
    pub site_listen: SiteListen,
    /// A TOML file with limits, CORS and the fetch policy (see the README); defaults otherwise.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The admin key; if unset, the one stored in the data directory (in the database if
    /// it is PostgreSQL), generated on first start.
    #[arg(long, env = "KILN_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Keep the data in PostgreSQL (`postgres://user:password@host:port/database`) instead
    /// of redb in the data directory; several hosts may share one. Overrides `database` in
    /// the config file.
    #[arg(long, env = "KILN_DATABASE", hide_env_values = true)]
    pub database: Option<String>,
}

/// Where HTTP actions are served besides `/http/` on the main address.
#[derive(Clone, Copy, Debug)]
pub enum SiteListen {
    Off,
    At(SocketAddr),
}

impl std::str::FromStr for SiteListen {
    type Err = std::net::AddrParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "off" {
            Ok(SiteListen::Off)
        } else {
            text.parse().map(SiteListen::At)
        }
    }
}

/// The admin key's file inside the data directory.
pub const ADMIN_KEY_FILE: &str = "admin_key";
/// The file inside the data directory holding the key that seals pagination cursors.
pub const CURSOR_KEY_FILE: &str = "cursor_key";

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KILN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let mut config = match &args.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::default(),
    };
    if args.database.is_some() {
        config.database = args.database;
    }
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create the data directory {}", args.data.display()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kiln-worker")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_server(
        args.data,
        args.listen,
        args.site_listen,
        config,
        args.admin_key,
    ))?;
    Ok(ExitCode::SUCCESS)
}

async fn run_server(
    data: PathBuf,
    listen: SocketAddr,
    site_listen: SiteListen,
    config: ServerConfig,
    admin_key: Option<String>,
) -> anyhow::Result<()> {
    let db = crate::database::open_database(&data, config.database.as_deref()).await?;
    // Hosts over a shared database share their keys through it: a cursor or upload token
    // sealed by one opens on every other, and one admin key works on all.
    let (admin_key, cursor_key) = if db.shared() {
        (
            resolve_shared_admin_key(db.as_ref(), admin_key)?,
            resolve_shared_cursor_key(db.as_ref())?,
        )
    } else {
        (
            resolve_admin_key(&data, admin_key)?,
            resolve_cursor_key(&data)?,
        )
    };
    tracing::info!(database = db.kind(), "database open");
    let store = Arc::new(
        DocumentStore::open(
            db.clone(),
            config.limits.transaction_limits(),
            CommitterOptions {
                max_batch: config.limits.max_commit_batch,
                write_log_bytes: config.limits.max_write_log_bytes,
            },
        )
        .context("cannot open the document store")?,
    );
    // No deploy runs yet: a pending validator is left over from one that a stop
    // interrupted, and would only cost every write to its table a check.
    match store.clear_pending_validators().await {
        Ok(0) => {}
        Ok(cleared) => tracing::info!(cleared, "cleared the validators of an interrupted deploy"),
        Err(err) => {
            tracing::error!(error = %err, "cannot clear the validators of an interrupted deploy")
        }
    }
    // Entries of indexes a deploy removed but did not finish dropping before the server
    // stopped: nothing reads them; drop them while serving.
    tokio::spawn({
        let store = store.clone();
        async move {
            match store.drop_orphaned_indexes().await {
                Ok(0) => {}
                Ok(dropped) => tracing::info!(dropped, "dropped the entries of removed indexes"),
                Err(err) => tracing::error!(error = ?err, "cannot drop removed indexes"),
            }
        }
    });
    let fetch = Arc::new(FetchClient::new(&config.fetch)?);
    let runtime = Arc::new(Runtime::new(
        config.limits,
        store.clone(),
        cursor_key,
        fetch,
    )?);
    let (deployments, loaded) = Deployments::load(
        runtime.clone(),
        db.clone(),
        crate::deploy::artifacts::ArtifactCache::for_store(db.as_ref(), &data)?,
    )
    .await
    .context("cannot restore the deployment")?;
    tracing::info!(
        modules = loaded.modules,
        from_cache = loaded.from_cache,
        recompiled = loaded.recompiled,
        "deployment restored"
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let site_listener = match site_listen {
        SiteListen::Off => None,
        SiteListen::At(site) => {
            Some(tokio::net::TcpListener::bind(site).await.with_context(|| {
                format!(
                    "cannot listen on {site} for HTTP actions (--site-listen; `off` turns it off)"
                )
            })?)
        }
    };
    // Files whose record never committed (a crash in between) go before any upload.
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{address}"));
    let storage = Arc::new(
        crate::storage::Storage::open(
            &data,
            public_url,
            runtime.cursor_key_arc(),
            db.shared_files(),
        )
        .context("cannot open the file storage")?,
    );
    match storage.remove_unreferenced(&store).await {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "removed files an interrupted upload left"),
        Err(err) => tracing::error!(error = ?err, "cannot check the stored files"),
    }
    tokio::spawn(storage.clone().forget_used_tokens(store.clone()));
    runtime.set_storage(storage);
    let deployments = Arc::new(deployments);
    deployments.follow_other_hosts();
    // Jobs due while the server was down run now; actions a crash cut off are marked failed.
    crate::scheduler::Executor::start(runtime.clone(), deployments.clone())
        .await
        .context("cannot start the scheduler")?;
    let mut state = AppState::new(runtime, store, deployments, admin_key, &config.cors);
    state.site_address = site_listener
        .as_ref()
        .map(|listener| listener.local_addr())
        .transpose()?;
    let state = Arc::new(state);
    let site = match site_listener {
        Some(site_listener) => {
            println!(
                "kiln HTTP actions on http://{}",
                site_listener.local_addr()?
            );
            let state = state.clone();
            tokio::spawn(async move { api::serve(site_listener, state, Surface::Site).await })
        }
        None => tokio::spawn(std::future::pending::<anyhow::Result<()>>()),
    };
    // Scripts and tests wait for this line: the server answers from here on.
    println!("kiln {} listening on http://{address}", crate::VERSION);
    std::io::stdout().flush()?;
    tokio::select! {
        result = api::serve(listener, state, Surface::Api) => result,
        result = site => result.context("the site listener failed")?,
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("cannot listen for SIGTERM");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// The key from the flag or environment; else the stored one; else a new one, stored
/// (readable by the owner only) and printed this once.
fn resolve_admin_key(data: &Path, given: Option<String>) -> anyhow::Result<AdminKey> {
    if let Some(key) = given.filter(|key| !key.trim().is_empty()) {
        return Ok(AdminKey::new(key.trim().to_string()));
    }
    // The data directory is the only place this reaches: cap-std confines the paths.
    let dir = Dir::open_ambient_dir(data, ambient_authority())
        .with_context(|| format!("cannot open the data directory {}", data.display()))?;
    match dir.read_to_string(ADMIN_KEY_FILE) {
        Ok(key) if !key.trim().is_empty() => {
            println!(
                "admin key: stored in {}",
                data.join(ADMIN_KEY_FILE).display()
            );
            return Ok(AdminKey::new(key.trim().to_string()));
        }
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).context("cannot read the stored admin key"),
    }
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)
        .map_err(|err| anyhow::anyhow!("cannot generate an admin key: {err}"))?;
    let key = format!("kiln-admin-{}", hex::encode(random));
    // Created readable by the owner only: never briefly world-readable.
    let mut options = cap_std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    dir.open_with(ADMIN_KEY_FILE, &options)
        .and_then(|mut file| file.write_all(key.as_bytes()))
        .context("cannot store the admin key")?;
    println!(
        "admin key (generated; stored in {}): {key}",
        data.join(ADMIN_KEY_FILE).display()
    );
    Ok(AdminKey::new(key))
}

/// The key from the flag or environment; else the one stored in the shared database; else
/// a new one, stored there and printed this once.
fn resolve_shared_admin_key(
    kv: &dyn crate::database::kv::KvStore,
    given: Option<String>,
) -> anyhow::Result<AdminKey> {
    if let Some(key) = given.filter(|key| !key.trim().is_empty()) {
        return Ok(AdminKey::new(key.trim().to_string()));
    }
    let (key, generated) = crate::database::setting_or_insert(kv, ADMIN_KEY_FILE, || {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random)
            .map_err(|err| anyhow::anyhow!("cannot generate an admin key: {err}"))?;
        Ok(format!("kiln-admin-{}", hex::encode(random)).into_bytes())
    })
    .context("cannot read or store the admin key in the database")?;
    let key = String::from_utf8(key).context("the admin key stored in the database is corrupt")?;
    if generated {
        println!("admin key (generated; stored in the database): {key}");
    } else {
        println!("admin key: stored in the database (or pass --admin-key / KILN_ADMIN_KEY)");
    }
    Ok(AdminKey::new(key))
}

/// The cursor key stored in the shared database, or a new one stored there.
fn resolve_shared_cursor_key(kv: &dyn crate::database::kv::KvStore) -> anyhow::Result<CursorKey> {
    let (key, _) = crate::database::setting_or_insert(kv, CURSOR_KEY_FILE, || {
        let mut key = [0u8; CURSOR_KEY_BYTES];
        getrandom::fill(&mut key)
            .map_err(|err| anyhow::anyhow!("cannot generate a cursor key: {err}"))?;
        Ok(key.to_vec())
    })
    .context("cannot read or store the cursor key in the database")?;
    let key: [u8; CURSOR_KEY_BYTES] = key
        .try_into()
        .map_err(|_| anyhow::anyhow!("the cursor key stored in the database is corrupt"))?;
    Ok(CursorKey::from_bytes(key))
}

/// The stored cursor key, or a new random one, stored readable by the owner only. It must
/// outlive restarts, or every cursor handed out before one would stop working.
fn resolve_cursor_key(data: &Path) -> anyhow::Result<CursorKey> {
    let dir = Dir::open_ambient_dir(data, ambient_authority())
        .with_context(|| format!("cannot open the data directory {}", data.display()))?;
    let path = data.join(CURSOR_KEY_FILE);
    // Two tries: a server starting at the same moment may create the file between our
    // read and our create.
    for _ in 0..2 {
        match dir.read_to_string(CURSOR_KEY_FILE) {
            // Only a crash of a version that wrote the key in place leaves it empty: no
            // cursor was ever sealed with it.
            Ok(text) if text.trim().is_empty() => {
                dir.remove_file(CURSOR_KEY_FILE)
                    .with_context(|| format!("cannot replace the empty {}", path.display()))?;
            }
            Ok(text) => return parse_cursor_key(&text).with_context(|| {
                format!(
                    "{} is not a cursor key ({} bytes in hex); delete it to make a new one (cursors handed out so far stop working)",
                    path.display(),
                    CURSOR_KEY_BYTES
                )
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot read the cursor key {}", path.display()));
            }
        }
        let mut key = [0u8; CURSOR_KEY_BYTES];
        getrandom::fill(&mut key)
            .map_err(|err| anyhow::anyhow!("cannot generate a cursor key: {err}"))?;
        // Written whole to a file of its own, synced, then linked into place (a link never
        // replaces an existing file): a crash leaves either no key or the whole key.
        let temporary = format!("{CURSOR_KEY_FILE}.{}.tmp", hex::encode(&key[..4]));
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true).create_new(true).mode(0o600);
        dir.open_with(&temporary, &options)
            .and_then(|mut file| {
                file.write_all(hex::encode(key).as_bytes())?;
                file.sync_all()
            })
            .with_context(|| format!("cannot store the cursor key {}", path.display()))?;
        let linked = dir.hard_link(&temporary, &dir, CURSOR_KEY_FILE);
        let _ = dir.remove_file(&temporary);
        match linked {
            Ok(()) => {
                // The new name must survive a crash too.
                dir.open(".")
                    .and_then(|this| this.sync_all())
                    .with_context(|| format!("cannot store the cursor key {}", path.display()))?;
                return Ok(CursorKey::from_bytes(key));
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot store the cursor key {}", path.display()));
            }
        }
    }
    anyhow::bail!("cannot read or create the cursor key {}", path.display())
}

fn parse_cursor_key(text: &str) -> anyhow::Result<CursorKey> {
    let bytes = hex::decode(text.trim())?;
    let bytes: [u8; CURSOR_KEY_BYTES] = bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| anyhow::anyhow!("it holds {} bytes", bytes.len()))?;
    Ok(CursorKey::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_key_is_created_once_and_an_empty_one_is_replaced() {
        let data = tempfile::tempdir().unwrap();
        let first = resolve_cursor_key(data.path()).unwrap();
        let again = resolve_cursor_key(data.path()).unwrap();
        assert_eq!(first.seal("t", "i", b"k"), again.seal("t", "i", b"k"));
        let names: Vec<_> = std::fs::read_dir(data.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, [CURSOR_KEY_FILE], "no temporary file is left");
        // What a crash mid-write used to leave: an empty file blocked every start.
        std::fs::write(data.path().join(CURSOR_KEY_FILE), "").unwrap();
        let replaced = resolve_cursor_key(data.path()).unwrap();
        assert_ne!(first.seal("t", "i", b"k"), replaced.seal("t", "i", b"k"));
    }
}
