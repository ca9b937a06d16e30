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
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn data(args: DataArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server);
    client.require_admin_key()?;
    let response = client.get(&format!("/api/data/{}?limit={}", args.table, args.limit))?;
    let documents = response["documents"]
        .as_array()
        .context("unexpected response from the server")?;
    for document in documents {
        println!("{document}");
    }
    if response["isDone"] == Json::Bool(false) {
        eprintln!("(more documents follow; raise --limit to see them)");
    }
    Ok(ExitCode::SUCCESS)
}
