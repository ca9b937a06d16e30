//! `kiln run PATH [ARGS_JSON]`: calls any function (with the admin key, internal ones too)
//! and prints its value as JSON. Log lines go to stderr.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value as Json, json};

use super::ServerArgs;
use super::client::Client;
use crate::function_path::FunctionPath;

#[derive(Args)]
pub struct RunArgs {
    /// The function: `module:function`, or `module` for its default function.
    pub path: String,
    /// The arguments, a JSON object in Convex JSON (`{"n": {"$integer": "AQAAAAAAAAA="}}`
    /// for an int64; plain numbers are float64).
    pub args: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let path = FunctionPath::parse(&args.path)?;
    let call_args: Json = match &args.args {
        Some(text) => serde_json::from_str(text).context("the arguments are not valid JSON")?,
        None => json!({}),
    };
    let client = Client::new(&args.server);
    let url_path = format!("/api/run/{}/{}", path.module, path.function);
    let response = client.post(
        &url_path,
        &json!({ "args": call_args, "format": "convex_encoded_json" }),
    )?;
    if let Some(lines) = response.get("logLines").and_then(Json::as_array) {
        for line in lines.iter().filter_map(Json::as_str) {
            eprintln!("{line}");
        }
    }
    match response.get("status").and_then(Json::as_str) {
        Some("success") => {
            let value = response.get("value").cloned().unwrap_or(Json::Null);
            println!("{}", serde_json::to_string_pretty(&value)?);
            Ok(ExitCode::SUCCESS)
        }
        Some("error") => {
            let message = response
                .get("errorMessage")
                .and_then(Json::as_str)
                .unwrap_or("unknown error");
            match response.get("errorData") {
                Some(data) => bail!("{path} failed: {message} (data: {data})"),
                None => bail!("{path} failed: {message}"),
            }
        }
        _ => bail!("unexpected response from the server: {response}"),
    }
}
