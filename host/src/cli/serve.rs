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

use crate::api::{self, AdminKey, AppState};
use crate::config::ServerConfig;
use crate::database::committer::CommitterOptions;
use crate::database::store::DocumentStore;
use crate::deploy::Deployments;
use crate::runtime::Runtime;

#[derive(Args)]
pub struct ServeArgs {
    /// Where the database and the admin key live.
    #[arg(long, default_value = "./kiln-data")]
    pub data: PathBuf,
    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:3210")]
    pub listen: SocketAddr,
    /// A TOML file with limits (see the README's limits table); defaults otherwise.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The admin key; if unset, the one stored in the data directory, generated on first start.
    #[arg(long, env = "KILN_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
}

/// The admin key's file inside the data directory.
pub const ADMIN_KEY_FILE: &str = "admin_key";

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KILN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = match &args.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::default(),
    };
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create the data directory {}", args.data.display()))?;
    let admin_key = resolve_admin_key(&args.data, args.admin_key)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kiln-worker")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_server(args.data, args.listen, config, admin_key))?;
    Ok(ExitCode::SUCCESS)
}

async fn run_server(
    data: PathBuf,
    listen: SocketAddr,
    config: ServerConfig,
    admin_key: AdminKey,
) -> anyhow::Result<()> {
    let db = Arc::new(crate::database::open(&data)?);
    let store = Arc::new(
        DocumentStore::open(
            db.clone(),
            config.limits.transaction_limits(),
            CommitterOptions {
                max_batch: config.limits.max_commit_batch,
                ..CommitterOptions::default()
            },
        )
        .context("cannot open the document store")?,
    );
    let runtime = Arc::new(Runtime::new(config.limits, store.clone())?);
    let (deployments, loaded) = Deployments::load(runtime.clone(), db)
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
    let state = Arc::new(AppState::new(
        runtime,
        store,
        Arc::new(deployments),
        admin_key,
        &config.cors,
    ));
    // Scripts and tests wait for this line: the server answers from here on.
    println!("kiln {} listening on http://{address}", crate::VERSION);
    std::io::stdout().flush()?;
    tokio::select! {
        result = api::serve(listener, state) => result,
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
