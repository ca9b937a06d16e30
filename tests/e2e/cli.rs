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
    assert!(
        rows.contains(&vec!["hello:secret", "query", "internal"]),
        "{listing}"
    );
    assert!(
        rows.contains(&vec!["hello:echo", "mutation", "public"]),
        "{listing}"
    );
    assert!(
        rows.contains(&vec!["hello:shout", "action", "public"]),
        "{listing}"
    );
    assert_eq!(rows.len(), 5, "{listing}");
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
        "hello:greet failed: invalid arguments: args.name",
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

    let output = std::process::Command::new(crate::support::kiln_binary())
        .args(["run", "hello", "--url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_one_line_error(
        &output,
        "cannot reach the Kiln server at http://127.0.0.1:9",
    );
}
