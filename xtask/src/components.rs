//! Builds the example and test components: every crate of the `components/` workspace, in
//! release, for wasm32-wasip2, copied to `target/components/<crate>.wasm`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

use crate::{cargo, root};

const TARGET: &str = "wasm32-wasip2";

/// Where the built components are put.
pub fn output_dir() -> PathBuf {
    root().join("target").join("components")
}

pub fn build() -> anyhow::Result<Vec<PathBuf>> {
    ensure_target()?;
    let manifest = root().join("components").join("Cargo.toml");
    let manifest = manifest.to_str().context("non-UTF-8 path")?;
    cargo(&[
        "build",
        "--release",
        "--target",
        TARGET,
        "--manifest-path",
        manifest,
    ])?;

    let built = root()
        .join("components")
        .join("target")
        .join(TARGET)
        .join("release");
    let out = output_dir();
    std::fs::create_dir_all(&out)?;
    let mut written = Vec::new();
    for crate_name in component_crates()? {
        let file = format!("{}.wasm", crate_name.replace('-', "_"));
        let from = built.join(&file);
        let to = out.join(format!("{crate_name}.wasm"));
        std::fs::copy(&from, &to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        written.push(to);
    }
    eprintln!("xtask: components in {}", out.display());
    Ok(written)
}

/// Installs the wasm32-wasip2 standard library if rustup does not have it yet.
pub fn ensure_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("cannot run rustup: it is needed to add the wasm32-wasip2 target")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|line| line.trim() == TARGET)
    {
        return Ok(());
    }
    crate::run(Command::new("rustup").args(["target", "add", TARGET]))
}

/// The crate folders under components/ (each is a member of its workspace).
fn component_crates() -> anyhow::Result<Vec<String>> {
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(root().join("components"))? {
        let path = entry?.path();
        if path.join("Cargo.toml").is_file() && path.join("src").is_dir() {
            crates.push(
                path.file_name()
                    .context("crate folder")?
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    crates.sort();
    if crates.is_empty() {
        bail!("no component crates under components/");
    }
    Ok(crates)
}
