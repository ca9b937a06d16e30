//! `kiln deploy [DIR]`: uploads the modules listed in `DIR/kiln.toml`, with its tables and
//! auth providers, and prints what changed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

use super::ServerArgs;
use super::client::Client;
use super::project::Project;
use crate::database::schema::SchemaReport;

#[derive(Args)]
pub struct DeployArgs {
    /// The project directory, holding kiln.toml.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The server's deploy report (`POST /api/deploy`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeployReport {
    deployment_id: u64,
    added: Vec<String>,
    updated: Vec<String>,
    removed: Vec<String>,
    unchanged: Vec<String>,
    functions: Vec<String>,
    schema: SchemaReport,
    #[serde(default)]
    auth_providers: Vec<String>,
    #[serde(default)]
    crons: Vec<String>,
}

pub fn deploy(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let project = Project::load(&args.dir)?;
    let client = Client::new(&args.server);
    client.require_admin_key()?;

    let js = project.javascript()?;
    // First, so the functions being deployed see them from their first call.
    if !project.env.is_empty() {
        let changes: Vec<_> = project
            .env
            .iter()
            .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
            .collect();
        super::env::update(&client, serde_json::Value::Array(changes))
            .context("cannot set the [env] variables")?;
    }
    let wasm_modules: Vec<_> = project.wasm_modules().collect();
    let progress = ProgressBar::new(wasm_modules.len() as u64).with_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:20}] {pos}/{len}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let mut modules = BTreeMap::new();
    for (name, path) in wasm_modules {
        progress.set_message(format!("reading {name}"));
        let bytes = std::fs::read(path)
            .with_context(|| format!("module `{name}`: cannot read {}", path.display()))?;
        modules.insert(name.clone(), BASE64.encode(bytes));
        progress.inc(1);
    }
    progress.set_message(if js.is_empty() {
        format!("uploading and compiling {} modules", modules.len())
    } else {
        format!(
            "uploading and compiling {} modules and {} JavaScript files",
            modules.len(),
            js.len()
        )
    });
    progress.enable_steady_tick(Duration::from_millis(100));
    let mut body = serde_json::json!({
        "modules": modules,
        "js": js,
        "tables": project.tables,
        "auth": project.auth,
        "crons": project.crons,
    });
    if let Some(app) = project.prebuilt_app() {
        anyhow::ensure!(
            js.is_empty(),
            "functions = {} is a built app: the JavaScript files in [modules] belong in it (kiln build)",
            app.display()
        );
        let bytes = std::fs::read(app).with_context(|| format!("cannot read {}", app.display()))?;
        body["jsApp"] = BASE64.encode(bytes).into();
    }
    let response = client.post("/api/deploy", &body);
    progress.finish_and_clear();
    let report: DeployReport =
        serde_json::from_value(response?).context("unexpected response from the server")?;

    println!(
        "Deployed to {} (deployment {})",
        client.url(),
        report.deployment_id
    );
    for (sign, label, names) in [
        ('+', "added", &report.added),
        ('~', "updated", &report.updated),
        ('-', "removed", &report.removed),
        ('=', "unchanged", &report.unchanged),
    ] {
        for name in names {
            println!("  {sign} {name} ({label})");
        }
    }
    for table in &report.schema.created_tables {
        println!("  + table {table}");
    }
    for index in &report.schema.added_indexes {
        println!("  + index {index} (built)");
    }
    for index in &report.schema.removed_indexes {
        println!("  - index {index}");
    }
    for provider in &report.auth_providers {
        println!("  auth: {provider}");
    }
    for cron in &report.crons {
        println!("  cron: {cron}");
    }
    println!(
        "{} functions: {}",
        report.functions.len(),
        report.functions.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
