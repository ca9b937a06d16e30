//! `cargo xtask demo`: the README's run command. Builds the components and the server,
//! starts `kiln serve` on ./kiln-data, deploys components/kiln.toml, prints how to call it,
//! and keeps serving until interrupted.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::{cargo, components, root};

const URL: &str = "http://127.0.0.1:3210";

pub fn run() -> anyhow::Result<()> {
    crate::js_runtime::build()?;
    components::build()?;
    cargo(&["build", "-p", "kiln-host", "--bin", "kiln"])?;
    let kiln = root().join("target").join("debug").join("kiln");
    let data = root().join("kiln-data");

    let mut server = Command::new(&kiln)
        .arg("serve")
        .arg("--data")
        .arg(&data)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start kiln serve")?;
    let mut lines = BufReader::new(server.stdout.take().context("server stdout")?).lines();
    // The server prints the admin key (first start only), then the line saying it listens.
    loop {
        let Some(line) = lines.next().transpose()? else {
            bail!("kiln serve exited before it was ready (is port 3210 already in use?)");
        };
        println!("{line}");
        if line.contains("listening on") {
            break;
        }
    }
    // The same order the server uses: the environment first, then the stored key.
    let admin_key = std::env::var("KILN_ADMIN_KEY")
        .ok()
        .filter(|key| !key.trim().is_empty())
        .or_else(|| std::fs::read_to_string(data.join("admin_key")).ok())
        .map(|key| key.trim().to_string())
        .context("cannot find the admin key")?;

    let deployed = Command::new(&kiln)
        .arg("deploy")
        .arg(root().join("components"))
        .env("KILN_URL", URL)
        .env("KILN_ADMIN_KEY", &admin_key)
        .status()?;
    if !deployed.success() {
        let _ = server.kill();
        bail!("kiln deploy failed");
    }

    println!();
    println!("Kiln is running at {URL}");
    println!("Admin key: {admin_key}");
    println!("Call a function:");
    println!(
        "  curl {URL}/api/query -H 'Content-Type: application/json' -d '{{\"path\": \"hello:greet\", \"args\": {{\"name\": \"Ada\"}}, \"format\": \"json\"}}'"
    );
    println!("Send and list chat messages (stored in ./kiln-data):");
    println!(
        "  curl {URL}/api/mutation -d '{{\"path\": \"messages:send\", \"args\": {{\"channel\": \"general\", \"author\": \"ada\", \"body\": \"hi\"}}}}'"
    );
    println!(
        "  curl {URL}/api/query -d '{{\"path\": \"messages:list\", \"args\": {{\"channel\": \"general\"}}, \"format\": \"json\"}}'"
    );
    println!("Or with the CLI:");
    println!(
        "  KILN_ADMIN_KEY={admin_key} target/debug/kiln run hello:greet '{{\"name\": \"Ada\"}}'"
    );
    println!("Press Ctrl-C to stop.");
    // Keep forwarding the server's output until it exits.
    for line in lines {
        println!("{}", line?);
    }
    server.wait()?;
    Ok(())
}
