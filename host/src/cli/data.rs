//! `kiln data <table>`: prints a table's documents, oldest first, one Convex JSON object
//! per line.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde_json::Value as Json;

use super::ServerArgs;
use super::client::Client;

#[derive(Args)]
pub struct DataArgs {
    /// The table to list.
    pub table: String,
    /// Most documents to print (1 to 10000).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Continue after an earlier page (the cursor it printed).
    #[arg(long)]
    pub cursor: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn data(args: DataArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server);
    client.require_admin_key()?;
    let mut path = format!("/api/data/{}?limit={}", args.table, args.limit);
    if let Some(cursor) = &args.cursor {
        path.push_str(&format!("&cursor={cursor}"));
    }
    let response = client.get(&path)?;
    let documents = response["documents"]
        .as_array()
        .context("unexpected response from the server")?;
    for document in documents {
        println!("{document}");
    }
    if response["isDone"] == Json::Bool(false) {
        let cursor = response["continueCursor"].as_str().unwrap_or_default();
        eprintln!("(more documents follow: continue with --cursor {cursor})");
    }
    Ok(ExitCode::SUCCESS)
}
