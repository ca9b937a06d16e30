//! `kiln functions`: lists the deployed functions with their kind, visibility and
//! signature (`{name: string} -> string`), or an HTTP action's route.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::ServerArgs;
use super::client::Client;
use crate::api::FunctionListing;

#[derive(Args)]
pub struct FunctionsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn functions(args: FunctionsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server);
    client.require_admin_key()?;
    let response = client.get("/api/functions")?;
    let listings: Vec<FunctionListing> = serde_json::from_value(response["functions"].clone())
        .context("unexpected response from the server")?;
    if listings.is_empty() {
        println!("no functions deployed");
        return Ok(ExitCode::SUCCESS);
    }
    let width = listings.iter().map(|f| f.path.len()).max().unwrap_or(0);
    for listing in &listings {
        let visibility = match listing.visibility {
            crate::runtime::Visibility::Public => "public",
            crate::runtime::Visibility::Internal => "internal",
        };
        // An HTTP action takes a request, not values: its route says what it serves.
        let detail = listing
            .route
            .as_ref()
            .map_or_else(|| listing.signature.clone(), ToString::to_string);
        println!(
            "{:<width$}  {:<10}  {visibility:<8}  {detail}",
            listing.path,
            listing.kind.as_str(),
        );
    }
    Ok(ExitCode::SUCCESS)
}
