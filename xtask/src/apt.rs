//! Debian packages the setup installs when they are missing (through sudo when not root).

use std::process::Command;

use crate::run;

/// Installs `packages` with apt-get (with their recommended packages if `recommends`),
/// updating the package lists first if the install fails without them (a fresh machine has
/// none).
pub fn install(packages: &[&str], recommends: bool) -> anyhow::Result<()> {
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false);
    let apt = |args: &[&str]| {
        let mut command = if root_user {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("apt-get");
            sudo
        };
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    let mut install = vec!["install", "-y"];
    if !recommends {
        install.push("--no-install-recommends");
    }
    install.extend_from_slice(packages);
    if run(&mut apt(&install)).is_err() {
        run(&mut apt(&["update"]))?;
        run(&mut apt(&install))?;
    }
    Ok(())
}

/// Debian's Chromium, which the browser test drives (headless, through playwright-core).
pub fn ensure_chromium() -> anyhow::Result<()> {
    if std::path::Path::new("/usr/bin/chromium").is_file() {
        return Ok(());
    }
    eprintln!("xtask: installing chromium (the realtime browser test drives it headless)");
    // Its recommends (desktop services) are not needed headless; a font is, for text.
    install(&["chromium", "fonts-liberation"], false)
}
