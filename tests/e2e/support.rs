//! The test fixture: a `kiln serve` child process and an HTTP client for it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value as Json, json};

pub const ADMIN_KEY: &str = "test-admin-key";

/// How long a server may take to print that it listens: generous, since it also restores
/// the deployment; only a broken server ever reaches it.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// `{"$integer": ...}`: an int64 in Convex JSON, for arguments and expected values.
pub fn int64(n: i64) -> Json {
    json!({ "$integer": BASE64.encode(n.to_le_bytes()) })
}

/// With `KILN_TEST_DATABASE` (a PostgreSQL server's URL, set by `cargo xtask
/// test-postgres`), a new empty database on it for one server, as a URL; without, `None`
/// (the server uses redb in its data directory).
pub fn test_database() -> Option<String> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let server = std::env::var("KILN_TEST_DATABASE").ok()?;
    let name = format!(
        "kiln_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let output = Command::new("psql")
        .arg(&server)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "cannot create a test database: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (base, _) = server
        .rsplit_once('/')
        .expect("a database URL ends in /database");
    Some(format!("{base}/{name}"))
}

/// A built component from `target/components/`.
pub fn component(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/components")
        .join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read {}: {err}. Build the test components first: cargo xtask build-components",
            path.display()
        )
    })
}

pub fn kiln_binary() -> &'static str {
    env!("CARGO_BIN_EXE_kiln")
}

/// A running `kiln serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    /// Where HTTP actions are served (`--site-listen`).
    pub site_url: String,
    pub data: PathBuf,
    config: Option<PathBuf>,
    /// Extra environment for the server process (failpoints).
    env: Vec<(String, String)>,
    /// The PostgreSQL database it keeps its data in, if not redb (see [`test_database`]).
    pub database: Option<String>,
    _dir: tempfile::TempDir,
    agent: ureq::Agent,
}

impl Server {
    pub fn start() -> Self {
        Self::start_with_config(None)
    }

    /// Starts a server whose limits come from `config` (TOML, see the README).
    pub fn start_with_config(config: Option<&str>) -> Self {
        Self::start_with(config, &[])
    }

    /// Starts a server with `config` and extra environment variables (a debug build's
    /// `KILN_FAILPOINT_*`, see `host/src/failpoints.rs`).
    pub fn start_with(config: Option<&str>, env: &[(&str, &str)]) -> Self {
        Self::start_over(test_database(), config, env)
    }

    /// Another host over this server's database (PostgreSQL), with its config: several
    /// hosts serving one deployment.
    pub fn another_host(&self) -> Self {
        let database = self
            .database
            .clone()
            .expect("several hosts need PostgreSQL: run through `cargo xtask test-postgres`");
        let config = self
            .config
            .as_ref()
            .map(|path| std::fs::read_to_string(path).unwrap());
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .filter(|(name, _)| name != "KILN_DATABASE")
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        Self::start_over(Some(database), config.as_deref(), &env)
    }

    /// Starts a server over redb in its data directory, whatever the suite runs over.
    pub fn start_on_redb() -> Self {
        Self::start_over(None, None, &[])
    }

    /// Starts a server over the PostgreSQL database at `url`.
    pub fn start_over_database(url: &str) -> Self {
        Self::start_over(Some(url.to_string()), None, &[])
    }

    fn start_over(database: Option<String>, config: Option<&str>, env: &[(&str, &str)]) -> Self {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let config = config.map(|text| {
            let path = dir.path().join("kiln-server.toml");
            std::fs::write(&path, text).unwrap();
            path
        });
        let mut env = env;
        if let Some(database) = &database {
            env.push(("KILN_DATABASE".to_string(), database.clone()));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let (child, (url, site_url)) =
            spawn(&data, config.as_deref(), &env, dir.path(), "127.0.0.1:0");
        Self {
            child,
            url,
            site_url,
            data,
            config,
            env,
            database,
            _dir: dir,
            agent,
        }
    }

    /// Stops the server abruptly (SIGKILL) and starts it again on the same data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// The server's stderr (its log) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn post(&self, path: &str, body: &str, admin: bool) -> (u16, Json) {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/json");
        if admin {
            request = request.header("Authorization", format!("Convex {ADMIN_KEY}"));
        }
        let mut response = request.send(body).unwrap();
        read(&mut response)
    }

    pub fn post_with_auth(&self, path: &str, body: &str, authorization: &str) -> (u16, Json) {
        let mut response = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("Authorization", authorization)
            .send(body)
            .unwrap();
        read(&mut response)
    }

    pub fn get(&self, path: &str, admin: bool) -> (u16, String) {
        let mut request = self.agent.get(format!("{}{path}", self.url));
        if admin {
            request = request.header("Authorization", format!("Convex {ADMIN_KEY}"));
        }
        let mut response = request.call().unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    }

    /// Deploys `modules` with `tables` (the `[tables]` of kiln.toml, as JSON).
    pub fn deploy_with_tables(&self, modules: &[(&str, &[u8])], tables: Json) -> (u16, Json) {
        let modules: serde_json::Map<String, Json> = modules
            .iter()
            .map(|(name, bytes)| (name.to_string(), Json::String(BASE64.encode(bytes))))
            .collect();
        self.post(
            "/api/deploy",
            &json!({ "modules": modules, "tables": tables }).to_string(),
            true,
        )
    }

    /// Deploys `modules` (name → wasm bytes) with the admin key, declaring no tables.
    /// Deploys a JavaScript app: `(path, source)` of each ES module (`chat/messages.js`).
    pub fn deploy_js(&self, files: &[(&str, &str)]) -> (u16, Json) {
        let js: serde_json::Map<String, Json> = files
            .iter()
            .map(|(path, source)| (path.to_string(), json!(source)))
            .collect();
        self.post("/api/deploy", &json!({ "js": js }).to_string(), true)
    }

    pub fn deploy(&self, modules: &[(&str, &[u8])]) -> (u16, Json) {
        self.deploy_with_tables(modules, json!({}))
    }

    /// Deploys and asserts success.
    pub fn deploy_ok(&self, modules: &[(&str, &[u8])]) -> Json {
        let (status, body) = self.deploy(modules);
        assert_eq!(status, 200, "deploy failed: {body}");
        body
    }

    /// Calls `/api/<endpoint>` with `{path, args}` and returns the response body, asserting 200.
    pub fn call(&self, endpoint: &str, path: &str, args: Json) -> Json {
        let (status, body) = self.post(
            &format!("/api/{endpoint}"),
            &json!({ "path": path, "args": args }).to_string(),
            false,
        );
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the server again on the same data directory (after `kill`).
    pub fn start_again(&mut self) {
        self.start_again_on("127.0.0.1:0");
    }

    /// Starts the server again on the same data directory and the same address (after
    /// `kill`), so that connected clients can reconnect.
    pub fn start_again_on_same_address(&mut self) {
        let address = self.url.trim_start_matches("http://").to_string();
        self.start_again_on(&address);
    }

    fn start_again_on(&mut self, listen: &str) {
        let (child, (url, site_url)) = spawn(
            &self.data,
            self.config.as_deref(),
            &self.env,
            self._dir.path(),
            listen,
        );
        self.child = child;
        self.url = url;
        self.site_url = site_url;
    }

    /// Calls and asserts success; returns the value.
    pub fn value(&self, endpoint: &str, path: &str, args: Json) -> Json {
        let body = self.call(endpoint, path, args);
        assert_eq!(body["status"], "success", "{path} failed: {body}");
        body["value"].clone()
    }

    /// Calls and asserts a function error; returns the error message.
    pub fn error(&self, endpoint: &str, path: &str, args: Json) -> String {
        let body = self.call(endpoint, path, args);
        assert_eq!(body["status"], "error", "{path} should have failed: {body}");
        body["errorMessage"].as_str().unwrap().to_string()
    }

    /// The server is alive and still serves `hello`.
    pub fn assert_hello_still_works(&self) {
        assert_eq!(self.value("query", "hello", json!({})), json!("hello"));
    }

    /// `kiln deploy` of the project at `project` (relative to `host/`, such as
    /// `../components/js`), asserting success; returns what it printed.
    pub fn deploy_project(&self, project: &str) -> String {
        let project = Path::new(env!("CARGO_MANIFEST_DIR")).join(project);
        let output = self.cli(&["deploy", project.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "kiln deploy failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    /// Runs the `kiln` CLI against this server.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(kiln_binary())
            .args(args)
            .env("KILN_URL", &self.url)
            .env("KILN_ADMIN_KEY", ADMIN_KEY)
            .output()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(response: &mut ureq::http::Response<ureq::Body>) -> (u16, Json) {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap();
    let json =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, json)
}

/// Starts `kiln serve` on port 0 and waits for the line that says where it listens.
fn spawn(
    data: &Path,
    config: Option<&Path>,
    env: &[(String, String)],
    log_dir: &Path,
    listen: &str,
) -> (Child, (String, String)) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir.join("server.log"))
        .unwrap();
    let mut command = Command::new(kiln_binary());
    command
        .args([
            "serve",
            "--listen",
            listen,
            "--site-listen",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(data)
        .env("KILN_ADMIN_KEY", ADMIN_KEY)
        .env("KILN_LOG", "info,kiln_host::api=debug")
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdout(Stdio::piped())
        .stderr(log);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        // The site line comes first.
        let mut site_url = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.split("HTTP actions on ").nth(1) {
                site_url = url.trim().to_string();
            }
            if let Some(url) = line.split("listening on ").nth(1) {
                let _ = sender.send((url.trim().to_string(), site_url.clone()));
            }
        }
    });
    let urls = receiver.recv_timeout(STARTUP_TIMEOUT).unwrap_or_else(|_| {
        panic!(
            "kiln serve did not start; its log:\n{}",
            std::fs::read_to_string(log_dir.join("server.log")).unwrap_or_default()
        )
    });
    (child, urls)
}

/// A bare HTTP client for a server's URL, for threads that outlive a killed server.
pub struct Client {
    url: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(url: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self {
            url: url.to_string(),
            agent,
        }
    }

    /// `None` if the server could not be reached or the call did not succeed.
    pub fn try_value(&self, endpoint: &str, path: &str, args: Json) -> Option<Json> {
        let response = self
            .agent
            .post(format!("{}/api/{endpoint}", self.url))
            .header("Content-Type", "application/json")
            .send(json!({ "path": path, "args": args }).to_string());
        let mut response = response.ok()?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().ok()?;
        let body: Json = serde_json::from_str(&text).ok()?;
        (status == 200 && body["status"] == "success").then(|| body["value"].clone())
    }
}

/// A response with its headers, for tests that look at more than the JSON body.
pub struct RawResponse {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: String,
}

impl RawResponse {
    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().unwrap())
    }

    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }
}

impl Server {
    /// The `host:port` the server listens on, for raw TCP clients.
    pub fn address(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// Sends `method path` with `headers` (and `body`, if any) and returns everything the
    /// server answered.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> RawResponse {
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = match body {
            Some(body) => self.agent.run(builder.body(body.to_string()).unwrap()),
            None => self.agent.run(builder.body(()).unwrap()),
        };
        let mut response = response.unwrap();
        RawResponse {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.body_mut().read_to_string().unwrap(),
        }
    }

    /// Waits until the server's log contains `text`, up to `deadline`; false if it never did.
    pub fn wait_for_log(&self, text: &str, deadline: Duration) -> bool {
        let until = std::time::Instant::now() + deadline;
        while std::time::Instant::now() < until {
            if self.log().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log().contains(text)
    }
}

/// Runs `tests/convex-client/<script>` under node with `args` (it calls a server with
/// Convex's official client) and returns its whole output and the JSON object it prints
/// last. `cargo xtask ci` installs the `convex` package it needs.
/// Starts `tests/convex-client/<script>` under node with its stdout piped, for a test that
/// talks to it line by line while it runs.
pub fn spawn_client_script(script: &str, args: &[&str]) -> Child {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/convex-client");
    Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run node")
}

pub fn run_client_script(script: &str, args: &[&str]) -> (String, Json) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/convex-client");
    assert!(
        dir.join("node_modules/convex").is_dir(),
        "the convex npm package is not installed: run `cargo xtask ci`, or `npm ci` in {}",
        dir.display()
    );
    let output = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .output()
        .expect("cannot run node");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The client prints the functions' log lines first; the result is the last line.
    let result = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    (stdout, result)
}
