//! The `kiln` command against a running server: deploy from kiln.toml, run, functions, and
//! one-line errors.

use std::process::Output;

use crate::support::{Server, component};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A project folder whose kiln.toml deploys the built hello component.
fn hello_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.wasm"), component("hello")).unwrap();
    std::fs::write(
        dir.path().join("kiln.toml"),
        "[modules]\nhello = \"hello.wasm\"\n",
    )
    .unwrap();
    dir
}

#[test]
fn deploy_run_and_functions() {
    let server = Server::start();
    let project = hello_project();
    let project_dir = project.path().to_str().unwrap();

    let output = server.cli(&["deploy", project_dir]);
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    assert!(printed.contains("(deployment 1)"), "{printed}");
    assert!(printed.contains("+ hello (added)"), "{printed}");
    let output = server.cli(&["deploy", project_dir]);
    assert!(
        stdout(&output).contains("= hello (unchanged)"),
        "{}",
        stdout(&output)
    );

    let output = server.cli(&["run", "hello:greet", r#"{"name": "Ada"}"#]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "\"Hello, Ada!\"\n");
    // With the admin key, internal functions run too; log lines go to stderr.
    assert_eq!(
        stdout(&server.cli(&["run", "hello:secret"])),
        "\"secret\"\n"
    );
    let output = server.cli(&["run", "hello:shout", r#"{"text": "hi"}"#]);
    assert_eq!(
        (stdout(&output).as_str(), stderr(&output).as_str()),
        ("\"HI\"\n", "[INFO] shouting 2 characters\n")
    );

    let output = server.cli(&["functions"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let listing = stdout(&output);
    let rows: Vec<Vec<&str>> = listing
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    // Path, kind, visibility, then the signature (or an HTTP action's route).
    let listed = |expected: &[&str]| rows.iter().any(|row| row.starts_with(expected));
    assert!(listed(&["hello:secret", "query", "internal"]), "{listing}");
    assert!(listed(&["hello:echo", "mutation", "public"]), "{listing}");
    assert!(listed(&["hello:shout", "action", "public"]), "{listing}");
    assert!(
        rows.contains(&vec![
            "hello:hello_route",
            "httpAction",
            "public",
            "GET",
            "/hello"
        ]),
        "{listing}"
    );
    assert_eq!(rows.len(), 9, "{listing}");
    // Each row ends with the function's signature (an HTTP action's: its route).
    assert!(
        listing
            .lines()
            .any(|line| line.starts_with("hello:greet ")
                && line.ends_with("{name: string} -> string")),
        "{listing}"
    );
    assert!(listed(&["hello:fetch", "action", "public"]), "{listing}");
    assert!(listed(&["hello:whoami", "query", "public"]), "{listing}");
}

/// Every failure is one line on stderr and a non-zero exit.
fn assert_one_line_error(output: &Output, expected: &str) {
    assert!(!output.status.success());
    let printed = stderr(output);
    assert_eq!(printed.lines().count(), 1, "{printed}");
    assert!(
        printed.starts_with("error: ") && printed.contains(expected),
        "expected {expected:?} in {printed:?}"
    );
}

#[test]
fn failures_are_one_clear_line() {
    let server = Server::start();
    let project = hello_project();
    let project_dir = project.path().to_str().unwrap();
    server.cli(&["deploy", project_dir]);

    assert_one_line_error(
        &server.cli(&["run", "hello:greet", r#"{"name": 1}"#]),
        "hello:greet failed: ArgumentValidationError: args.name: expected string",
    );
    assert_one_line_error(
        &server.cli(&["run", "hello:greet", "{oops"]),
        "the arguments are not valid JSON",
    );
    assert_one_line_error(&server.cli(&["run", "hello:"]), "invalid function path");
    assert_one_line_error(
        &server.cli(&["deploy", "/nonexistent"]),
        "cannot read /nonexistent/kiln.toml",
    );

    let empty = tempfile::tempdir().unwrap();
    std::fs::write(
        empty.path().join("kiln.toml"),
        "[modules]\nhello = \"missing.wasm\"\n",
    )
    .unwrap();
    assert_one_line_error(
        &server.cli(&["deploy", empty.path().to_str().unwrap()]),
        "module `hello`: cannot read",
    );

    let output = std::process::Command::new(crate::support::kiln_binary())
        .args(["functions", "--url", &server.url])
        .env_remove("KILN_ADMIN_KEY")
        .output()
        .unwrap();
    assert_one_line_error(&output, "needs the admin key");

    // Usage errors too: clap's several lines become one.
    assert_one_line_error(
        &server.cli(&["run"]),
        "the following required arguments were not provided: <PATH>",
    );
    let output = server.cli(&["serve", "--listen", "not-an-address"]);
    assert_one_line_error(&output, "");
    assert_eq!(
        stderr(&output),
        "error: invalid value 'not-an-address' for '--listen <LISTEN>': invalid socket address syntax (see kiln --help)\n"
    );

    let output = std::process::Command::new(crate::support::kiln_binary())
        .args(["run", "hello", "--url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_one_line_error(
        &output,
        "cannot reach the Kiln server at http://127.0.0.1:9",
    );
}

/// Starts `kiln serve` on `data` with no admin key given; returns the child, its URL and
/// every line it printed up to the one that says it listens.
fn serve_without_admin_key(data: &std::path::Path) -> (std::process::Child, String, Vec<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(crate::support::kiln_binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--site-listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(data)
        .env_remove("KILN_ADMIN_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut printed = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            printed.push(line.clone());
            if let Some(url) = line.split("listening on ").nth(1) {
                let _ = sender.send((url.trim().to_string(), printed.clone()));
            }
        }
    });
    let (url, printed) = receiver
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("kiln serve did not start");
    (child, url, printed)
}

fn functions_status(url: &str, key: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .get(format!("{url}/api/functions"))
        .header("Authorization", format!("Convex {key}"))
        .call()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn a_generated_admin_key_is_stored_privately_printed_once_and_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let (mut first, url, printed) = serve_without_admin_key(&data);
    let key = printed
        .iter()
        .find_map(|line| line.split("admin key (generated; stored in ").nth(1))
        .and_then(|rest| rest.split("): ").nth(1))
        .unwrap_or_else(|| panic!("no generated key printed: {printed:?}"))
        .to_string();
    assert!(key.starts_with("kiln-admin-") && key.len() > 40, "{key}");
    let stored = data.join("admin_key");
    assert_eq!(std::fs::read_to_string(&stored).unwrap(), key);
    let mode = std::fs::metadata(&stored).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the key file is readable by its owner only"
    );
    assert_eq!(functions_status(&url, &key), 200);
    assert_eq!(functions_status(&url, "kiln-admin-wrong"), 401);
    first.kill().unwrap();
    first.wait().unwrap();

    // Restarted, the server uses the stored key and does not print it again.
    let (mut second, url, printed) = serve_without_admin_key(&data);
    assert!(
        printed
            .iter()
            .any(|line| line.contains("admin key: stored in")),
        "{printed:?}"
    );
    assert!(
        printed.iter().all(|line| !line.contains(&key)),
        "the key is printed only when generated: {printed:?}"
    );
    assert_eq!(functions_status(&url, &key), 200);
    second.kill().unwrap();
    second.wait().unwrap();
}
