//! A PostgreSQL server of a test's own, for the tests that stop and restart it (the shared
//! one that `cargo xtask test-postgres` starts serves every other test at once). It uses
//! the server binaries the xtask found (`KILN_TEST_POSTGRES_BIN`); as root, it runs as
//! `nobody`, since PostgreSQL refuses to run as root.

use std::path::PathBuf;
use std::process::Command;

pub struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    as_nobody: bool,
    port: u16,
}

impl OwnPostgres {
    /// `initdb`s a cluster in a temporary directory and starts it on a free port.
    pub fn start() -> Self {
        let bin = PathBuf::from(std::env::var("KILN_TEST_POSTGRES_BIN").expect(
            "KILN_TEST_POSTGRES_BIN names PostgreSQL's server binaries: run through `cargo xtask test-postgres`",
        ));
        let as_nobody = Command::new("id")
            .arg("-u")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
            .unwrap();
        let dir = tempfile::Builder::new()
            .prefix("kiln-test-postgres")
            .tempdir()
            .unwrap();
        if as_nobody {
            let status = Command::new("chown")
                .arg("nobody:nogroup")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Self {
            bin,
            dir,
            as_nobody,
            port,
        };
        let data = server.dir.path().join("data");
        server.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "kiln",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        server.start_again();
        server
    }

    /// `postgres://kiln@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://kiln@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (`immediate`: as a crash would, without a checkpoint).
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }

    /// Starts the stopped server again on the same port.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        self.pg_ctl(&["-o", &options, "-l", log.to_str().unwrap(), "-w", "start"]);
    }

    /// `pg_ctl` on this server's data directory.
    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let mut all = vec!["-D", data.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all);
    }

    fn run(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut command = if self.as_nobody {
            let mut runuser = Command::new("runuser");
            runuser.args(["-u", "nobody", "--"]).arg(&program);
            runuser
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{} {args:?} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let mut command = if self.as_nobody {
            let mut runuser = Command::new("runuser");
            runuser
                .args(["-u", "nobody", "--"])
                .arg(self.bin.join("pg_ctl"));
            runuser
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = command
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .current_dir(self.dir.path())
            .output();
    }
}
