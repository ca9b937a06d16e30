//! The `convex` section: the official Convex CLI deploying the TypeScript test app
//! (`tests/convex-client/app`) to a fresh Kiln server, as a Convex developer would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use base64::Engine as _;

use super::{ADMIN_KEY, KilnServer};

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/convex-client")
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

pub fn convex_cli_figures(kiln: &KilnServer) -> anyhow::Result<()> {
    println!("== convex: npx convex deploy of tests/convex-client/app ==");
    let cli = client_dir().join("node_modules/convex/bin/main.js");
    if !cli.is_file() {
        println!("not measured: run `npm ci` in {}", client_dir().display());
        return Ok(());
    }
    // A copy beside the original, so that `convex` resolves to its node_modules.
    let app = tempfile::Builder::new()
        .prefix(".app-")
        .tempdir_in(client_dir())?;
    copy_tree(&client_dir().join("app"), app.path())?;
    let _ = std::fs::remove_dir_all(app.path().join("convex/_generated"));
    // The app's auth.config.ts reads its JWKS from this variable.
    let jwks = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/jwt/rsa-a.jwk.json"),
    )?;
    let uri = format!(
        "data:application/json;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(format!(r#"{{"keys": [{jwks}]}}"#))
    );
    kiln.call(
        "/api/update_environment_variables",
        &serde_json::json!({ "changes": [{ "name": "KILN_TEST_JWKS", "value": uri }] }).to_string(),
    )?;
    let deploy = |label: &str| -> anyhow::Result<()> {
        let started = Instant::now();
        let output = Command::new("node")
            .arg(&cli)
            .args(["deploy", "--typecheck", "disable"])
            .current_dir(app.path())
            .env("CONVEX_SELF_HOSTED_URL", format!("http://{}", kiln.address))
            .env("CONVEX_SELF_HOSTED_ADMIN_KEY", ADMIN_KEY)
            .env("CI", "1")
            .env_remove("CONVEX_DEPLOYMENT")
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "npx convex deploy failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        println!("{label}: {:.2} s", started.elapsed().as_secs_f64());
        Ok(())
    };
    deploy("first deploy (load, snapshot, compile)")?;
    // The first run's codegen wrote convex/_generated, which the bundles now import.
    deploy("second deploy (the bundles changed: they import the generated files)")?;
    deploy("no-change redeploy")?;
    Ok(())
}
