//! Builds Kiln's JavaScript runtime component (`guest-sdk/js-runtime`): bundles the
//! JavaScript it embeds (Convex's `convex` package, pinned, with esbuild, both from npm),
//! then compiles the crate for wasm32-wasip2, which needs a C compiler for the wasm target
//! (QuickJS) — Debian's `clang` and `wasi-libc`, installed here when missing. The result
//! goes to `target/js-runtime/kiln-js-runtime.wasm`, which the host embeds when it builds.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::{cargo_with_env, root, run};

const TARGET: &str = "wasm32-wasip2";

/// Where the host's build looks for the runtime (`host/build.rs`).
pub fn output() -> PathBuf {
    root()
        .join("target")
        .join("js-runtime")
        .join("kiln-js-runtime.wasm")
}

/// rquickjs-sys compiles QuickJS with Debian's clang against wasi-libc's headers instead of
/// downloading a WASI SDK (FACTS.md, "JavaScript through Javy").
const C_ENV: [(&str, &str); 5] = [
    ("RQUICKJS_SYS_NO_WASI_SDK", "1"),
    ("CC_wasm32_wasip2", "clang"),
    ("AR_wasm32_wasip2", "llvm-ar"),
    ("CFLAGS_wasm32_wasip2", "--target=wasm32-wasi"),
    (
        "BINDGEN_EXTRA_CLANG_ARGS_wasm32_wasip2",
        "--target=wasm32-wasi",
    ),
];

fn manifest() -> anyhow::Result<String> {
    let manifest = root()
        .join("guest-sdk")
        .join("js-runtime")
        .join("Cargo.toml");
    Ok(manifest.to_str().context("non-UTF-8 path")?.to_string())
}

/// The tests of the JavaScript the runtime bundles (`js/test/`, under node), after `build`.
pub fn test_js() -> anyhow::Result<()> {
    let js = root().join("guest-sdk").join("js-runtime").join("js");
    run(Command::new("node")
        .args(["--test", "test/"])
        .current_dir(&js))
}

/// Lints the runtime crate as it is built (release, wasm32-wasip2), after `build`.
pub fn clippy() -> anyhow::Result<()> {
    let manifest = manifest()?;
    cargo_with_env(
        &[
            "clippy",
            "--release",
            "--target",
            TARGET,
            "--manifest-path",
            &manifest,
            "--",
            "-D",
            "warnings",
        ],
        &C_ENV,
    )
}

pub fn build() -> anyhow::Result<PathBuf> {
    crate::components::ensure_target()?;
    ensure_c_toolchain()?;
    let crate_dir = root().join("guest-sdk").join("js-runtime");
    let js = crate_dir.join("js");
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&js))?;
    run(Command::new("node").arg("build.mjs").current_dir(&js))?;

    let manifest = manifest()?;
    cargo_with_env(
        &[
            "build",
            "--release",
            "--target",
            TARGET,
            "--manifest-path",
            &manifest,
        ],
        &C_ENV,
    )?;
    let built = crate_dir
        .join("target")
        .join(TARGET)
        .join("release")
        .join("kiln_js_runtime.wasm");
    let out = output();
    std::fs::create_dir_all(out.parent().context("output directory")?)?;
    copy_if_changed(&built, &out)?;
    eprintln!("xtask: JS runtime in {}", out.display());
    Ok(out)
}

/// Copies only when the bytes differ, so an unchanged runtime does not rebuild the host.
fn copy_if_changed(from: &Path, to: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    if std::fs::read(to).ok().as_deref() != Some(&bytes[..]) {
        std::fs::write(to, &bytes).with_context(|| format!("cannot write {}", to.display()))?;
    }
    Ok(())
}

/// `clang` (with `llvm-ar`) and wasi-libc's headers, from Debian's packages.
fn ensure_c_toolchain() -> anyhow::Result<()> {
    let has_clang = Command::new("clang").arg("--version").output().is_ok();
    let has_ar = Command::new("llvm-ar").arg("--version").output().is_ok();
    let has_libc = Path::new("/usr/include/wasm32-wasi/stdlib.h").is_file();
    if has_clang && has_ar && has_libc {
        return Ok(());
    }
    eprintln!("xtask: installing clang and wasi-libc (QuickJS is C, built for wasm)");
    crate::apt::install(&["clang", "llvm", "wasi-libc"], true)?;
    Ok(())
}
