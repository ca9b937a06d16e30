//! `kiln env list | set NAME VALUE | remove NAME`: the deployment's environment variables
//! (`process.env` in JavaScript functions, `std::env::var` in Rust ones). They take effect
//! for every call that starts afterwards; no deploy is needed.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use super::ServerArgs;
use super::client::Client;

#[derive(Args)]
pub struct EnvArgs {
    #[command(subcommand)]
    pub command: EnvCommand,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand)]
pub enum EnvCommand {
    /// Print every variable as NAME=value.
    List,
    /// Set a variable.
    Set { name: String, value: String },
    /// Remove a variable.
    Remove { name: String },
}

pub fn env(args: EnvArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server);
    client.require_admin_key()?;
    match args.command {
        EnvCommand::List => {
            let listing = client.get("/api/environment_variables")?;
            let variables = listing["variables"]
                .as_object()
                .context("unexpected response from the server")?;
            for (name, value) in variables {
                println!("{name}={}", value.as_str().unwrap_or_default());
            }
        }
        EnvCommand::Set { name, value } => {
            update(&client, json!([{ "name": name, "value": value }]))?;
            println!("set {name}");
        }
        EnvCommand::Remove { name } => {
            update(&client, json!([{ "name": name }]))?;
            println!("removed {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends changes (`[{name, value?}]`) to `POST /api/update_environment_variables`.
pub fn update(client: &Client, changes: serde_json::Value) -> anyhow::Result<()> {
    client.post(
        "/api/update_environment_variables",
        &json!({ "changes": changes }),
    )?;
    Ok(())
}
