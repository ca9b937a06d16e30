//! A throwaway PostgreSQL server for the tests that run Kiln over PostgreSQL: Debian's
//! server binaries (installed if missing), `initdb` into a fresh directory under
//! the temporary directory, started on a free port of 127.0.0.1, stopped and deleted when dropped. No
//! running service is assumed or touched.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::run;

/// A running throwaway server; stopped and deleted on drop.
pub struct Throwaway {
    dir: PathBuf,
    /// Where PostgreSQL's server binaries are (tests that run a server of their own use
    /// them).
    pub bin: PathBuf,
    pg_ctl: PathBuf,
    as_nobody: bool,
    /// `postgres://kiln@127.0.0.1:<port>/postgres`: the superuser, no password.
    pub url: String,
}

/// The directory of PostgreSQL's server binaries (`initdb`, `pg_ctl`): Debian keeps them
/// under `/usr/lib/postgresql/<version>/bin`, the newest wins.
fn server_binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Throwaway {
    pub fn start() -> anyhow::Result<Self> {
        let bin = match server_binaries() {
            Some(bin) => bin,
            None => {
                eprintln!("xtask: installing postgresql (the tests run Kiln over it too)");
                crate::apt::install(&["postgresql"], false)?;
                server_binaries().context("postgresql installed, but no initdb found")?
            }
        };
        // initdb and postgres refuse to run as root: as root, the cluster belongs to nobody.
        let as_nobody = running_as_root();
        let port = free_port()?;
        // Under the temporary directory, which every user may enter (nobody may not enter
        // a root-owned checkout).
        let dir = std::env::temp_dir().join(format!("kiln-postgres-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        if as_nobody {
            run(Command::new("chown").args(["nobody:nogroup"]).arg(&dir))?;
        }
        let data = dir.join("data");
        let command = |program: &Path| {
            let mut command = if as_nobody {
                let mut runuser = Command::new("runuser");
                runuser.args(["-u", "nobody", "--"]).arg(program);
                runuser
            } else {
                Command::new(program)
            };
            // Run from a directory nobody may read: the cluster's own.
            command.current_dir(&dir);
            command
        };
        run(command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "kiln", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .stdout(std::process::Stdio::null()))?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c full_page_writes=off",
            dir.display()
        );
        let throwaway = Self {
            dir: dir.clone(),
            bin: bin.clone(),
            pg_ctl: bin.join("pg_ctl"),
            as_nobody,
            url: format!("postgres://kiln@127.0.0.1:{port}/postgres"),
        };
        run(command(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(dir.join("server.log"))
            .args(["-w", "start"]))
        .with_context(|| {
            format!(
                "the throwaway PostgreSQL did not start; its log: {}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            )
        })?;
        eprintln!("xtask: throwaway PostgreSQL at {}", throwaway.url);
        Ok(throwaway)
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let mut command = if self.as_nobody {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", "nobody", "--"]).arg(&self.pg_ctl);
            runuser
        } else {
            Command::new(&self.pg_ctl)
        };
        let _ = command
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .current_dir(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on now (the OS picks it; freed for the server to take).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    if port == 0 {
        bail!("the OS picked no port");
    }
    Ok(port)
}
