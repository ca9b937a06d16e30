//! Deploying: atomic replacement, refusal of bad modules with the old deployment kept, the
//! admin key, and persistence across a restart.

use serde_json::json;

use crate::support::{Server, component};

#[test]
fn a_deploy_reports_what_changed_and_replaces_the_whole_set() {
    let server = Server::start();
    let report = server.deploy_ok(&[("hello", &component("hello"))]);
    assert_eq!(report["added"], json!(["hello"]));
    assert_eq!(report["deploymentId"], 1);
    assert!(
        report["functions"]
            .as_array()
            .unwrap()
            .contains(&json!("hello:greet"))
    );

    let report = server.deploy_ok(&[
        ("hello", &component("hello")),
        ("misbehave", &component("misbehave")),
    ]);
    assert_eq!(
        (report["added"].clone(), report["unchanged"].clone()),
        (json!(["misbehave"]), json!(["hello"]))
    );

    // Deploying the same name with other bytes is an update; leaving a module out removes it.
    let report = server.deploy_ok(&[("hello", &component("misbehave"))]);
    assert_eq!(report["updated"], json!(["hello"]));
    assert_eq!(report["removed"], json!(["misbehave"]));
    assert_eq!(
        server.call("query", "misbehave:fail", json!({}))["errorMessage"]
            .as_str()
            .unwrap(),
        "Could not find public function for 'misbehave:fail'. Did you forget to run `kiln deploy`?"
    );
    // `hello` now holds misbehave's functions.
    assert_eq!(
        server.call("query", "hello:fail", json!({}))["errorMessage"],
        "misbehave:fail failed on purpose"
    );
}

#[test]
fn modules_in_folders_are_called_by_their_path() {
    let server = Server::start();
    server.deploy_ok(&[("greetings/hello", &component("hello"))]);
    assert_eq!(
        server.value("query", "greetings/hello:greet", json!({"name": "Di"})),
        json!("Hello, Di!")
    );
    let (_, body) = server.post(
        "/api/run/greetings/hello/greet",
        &json!({"args": {"name": "Ed"}}).to_string(),
        false,
    );
    assert_eq!(body["value"], "Hello, Ed!", "{body}");
}

/// Deploys `modules` and expects a refusal naming `module` and `reason`; then checks that
/// the previous deployment (hello) still serves.
fn assert_refused(server: &Server, modules: &[(&str, &[u8])], module: &str, reason: &str) {
    let (status, body) = server.deploy(modules);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidModule")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("module `{module}`: ")),
        "{message}"
    );
    assert!(
        message.contains(reason),
        "expected {reason:?} in {message:?}"
    );
    server.assert_hello_still_works();
    let (_, listing) = server.get("/api/functions", true);
    let listing: serde_json::Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(
        listing["deploymentId"], 1,
        "a refused deploy must not replace the deployment"
    );
}

#[test]
fn bad_modules_are_refused_and_the_old_deployment_stays_live() {
    let server = Server::start();
    server.deploy_ok(&[("hello", &component("hello"))]);
    let hello = component("hello");

    assert_refused(
        &server,
        &[("hello", &hello), ("junk", b"definitely not wasm")],
        "junk",
        "not a WebAssembly binary",
    );
    // The smallest valid core module: magic and version 1.
    let core_module = b"\0asm\x01\0\0\0";
    assert_refused(
        &server,
        &[("core", core_module)],
        "core",
        "a core WebAssembly module, not a component",
    );
    // A component header followed by garbage.
    assert_refused(
        &server,
        &[("broken", b"\0asm\x0d\0\x01\0garbage")],
        "broken",
        "invalid component",
    );
    assert_refused(
        &server,
        &[("gadget", &component("unknown-import"))],
        "gadget",
        "test:unknown/gadget",
    );
    assert_refused(
        &server,
        &[("bad name!", &hello)],
        "bad name!",
        "not a module name",
    );
    assert_refused(
        &server,
        &[("hello.js", &hello)],
        "hello.js",
        "may not end in .js",
    );

    let (status, body) = server.post("/api/deploy", r#"{"modules": {"x": "%%%"}}"#, true);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidModule")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("base64"),
        "{body}"
    );
}

#[test]
fn deploy_and_listing_need_the_admin_key() {
    let server = Server::start();
    server.deploy_ok(&[("hello", &component("hello"))]);
    let body = json!({"modules": {}}).to_string();

    let (status, response) = server.post("/api/deploy", &body, false);
    assert_eq!(
        (status, response["code"].as_str()),
        (401, Some("Unauthorized")),
        "{response}"
    );
    let (status, response) = server.post_with_auth("/api/deploy", &body, "Convex not-the-key");
    assert_eq!(
        (status, response["code"].as_str()),
        (401, Some("Unauthorized")),
        "{response}"
    );
    let (status, _) = server.get("/api/functions", false);
    assert_eq!(status, 401);

    // Nothing was removed by the refused (empty) deploys.
    server.assert_hello_still_works();
}

#[test]
fn a_restarted_server_serves_the_same_functions_without_recompiling() {
    let mut server = Server::start();
    server.deploy_ok(&[
        ("hello", &component("hello")),
        ("misbehave", &component("misbehave")),
    ]);
    server.restart();
    server.assert_hello_still_works();
    assert_eq!(
        server.value(
            "query",
            "misbehave:sized",
            json!({"bytes": {"$integer": "AwAAAAAAAAA="}})
        ),
        json!("xxx")
    );
    let log = server.log();
    assert!(
        log.contains("modules=2 from_cache=2 recompiled=0"),
        "the restart should reuse both compiled artifacts; server log:\n{log}"
    );
    let (_, listing) = server.get("/api/functions", true);
    assert!(listing.contains("\"deploymentId\":1"), "{listing}");
}

#[test]
fn a_module_over_the_size_limit_is_refused() {
    let hello = component("hello");
    let server = Server::start_with_config(Some(&format!(
        "[limits]\nmax_module_bytes = {}\n",
        hello.len() - 1
    )));
    let (status, body) = server.deploy(&[("hello", &hello)]);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidModule")),
        "{body}"
    );
    let expected = format!(
        "module `hello`: {} bytes, over the module size limit of {} bytes",
        hello.len(),
        hello.len() - 1
    );
    assert!(
        body["message"].as_str().unwrap().starts_with(&expected),
        "{body}"
    );

    let server = Server::start_with_config(Some(&format!(
        "[limits]\nmax_module_bytes = {}\n",
        hello.len()
    )));
    server.deploy_ok(&[("hello", &hello)]);
}

#[test]
fn a_deploy_body_over_its_limit_is_refused_with_413() {
    let server = Server::start_with_config(Some("[limits]\nmax_deploy_body_bytes = 1000\n"));
    let (status, body) = server.deploy(&[("hello", &component("hello"))]);
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("RequestTooLarge")),
        "{body}"
    );
}

#[test]
fn a_refused_deploy_after_a_good_one_survives_a_restart() {
    let mut server = Server::start();
    server.deploy_ok(&[("hello", &component("hello"))]);
    let (status, _) = server.deploy(&[("hello", b"not wasm")]);
    assert_eq!(status, 400);
    server.restart();
    server.assert_hello_still_works();
}

#[test]
fn an_invalid_config_file_stops_the_server_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[limits.query]\ntimeout_ms = 0\n").unwrap();
    let output = std::process::Command::new(crate::support::kiln_binary())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--site-listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: invalid config file")
            && stderr.contains("limits.query.timeout_ms must be between 1 and"),
        "{stderr}"
    );
}
