//! `kiln build [DIR] -o app.wasm`: loads the JavaScript app `DIR/kiln.toml` names and
//! snapshots it, as a deploy does, without a server. Deploy the result with
//! `functions = "app.wasm"` in a kiln.toml; the server then only compiles it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::project::Project;

#[derive(Args)]
pub struct BuildArgs {
    /// The project directory, holding kiln.toml.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where to write the built app (a WebAssembly component).
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let project = Project::load(&args.dir)?;
    let js = project.javascript()?;
    anyhow::ensure!(
        !js.is_empty(),
        "{} names no JavaScript to build (functions = \"dir\", or .js files and folders in [modules])",
        args.dir.join(super::project::PROJECT_FILE).display()
    );
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (snapshot, functions) = tokio
        .block_on(crate::runtime::js::build_offline(&js))
        .map_err(|err| anyhow::anyhow!("JavaScript: {err}"))?;
    std::fs::write(&args.output, &snapshot)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    println!(
        "built {} ({} KiB) from {} JavaScript files",
        args.output.display(),
        snapshot.len() / 1024,
        js.len()
    );
    println!("{} functions: {}", functions.len(), functions.join(", "));
    Ok(ExitCode::SUCCESS)
}
