//! The `kiln` command (DESIGN.md section 9): `serve`, `deploy`, `run`, `functions`, `data`,
//! `jobs`, `env`, `build`, `migrate`.
//!
//! Every failure is reported as one line on stderr (`error: ...`) with a non-zero exit.

mod build;
mod client;
mod data;
mod deploy;
mod env;
mod functions;
mod jobs;
mod js_files;
mod migrate;
mod project;
mod run;
mod serve;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "Kiln: a transactional document database and the WebAssembly functions that use it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Deploy the modules listed in DIR/kiln.toml.
    Deploy(deploy::DeployArgs),
    /// Load and snapshot the JavaScript app of DIR/kiln.toml into a .wasm, offline.
    Build(build::BuildArgs),
    /// Call a function and print its result as JSON.
    Run(run::RunArgs),
    /// List the deployed functions.
    Functions(functions::FunctionsArgs),
    /// Print the documents of a table.
    Data(data::DataArgs),
    /// List the scheduled jobs and cron jobs.
    Jobs(jobs::JobsArgs),
    /// List, set or remove the deployment's environment variables.
    Env(env::EnvArgs),
    /// Copy a (stopped) server's redb data directory into an empty PostgreSQL database,
    /// and check the copy.
    Migrate(migrate::MigrateArgs),
}

/// Where the server is and how to authenticate, for every client command.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// The server's URL.
    #[arg(long, env = "KILN_URL", default_value = "http://127.0.0.1:3210")]
    pub url: String,
    /// The admin key (printed by `kiln serve` on first start, stored in its data directory).
    #[arg(long, env = "KILN_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    let result = match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::Deploy(args) => deploy::deploy(args),
        Command::Build(args) => build::build(args),
        Command::Run(args) => run::run(args),
        Command::Functions(args) => functions::functions(args),
        Command::Data(args) => data::data(args),
        Command::Jobs(args) => jobs::jobs(args),
        Command::Env(args) => env::env(args),
        Command::Migrate(args) => migrate::migrate(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` joins the context chain into one line: "cannot read x: No such file".
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--help` and `--version` print as clap renders them; a usage error is one line, like
/// every other failure (clap's own message spans several, with a usage block).
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = err.print();
        return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
    }
    let rendered = err.render().to_string();
    // Keep clap's message, not the usage block or the `--help` hint that follow it.
    let message = ["\nUsage:", "\nFor more information"]
        .iter()
        .filter_map(|marker| rendered.find(marker))
        .min()
        .map_or(rendered.as_str(), |end| &rendered[..end]);
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    eprintln!("error: {message} (see kiln --help)");
    ExitCode::from(2)
}
