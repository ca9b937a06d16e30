//! A Convex app in TypeScript (`tests/convex-client/app`) deployed to a real Kiln server
//! with the official Convex CLI (`npx convex deploy`, the version `tests/convex-client`
//! pins), then called with the official `ConvexHttpClient`: as a Convex developer moves an
//! existing app to Kiln.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use jsonwebtoken::Algorithm;
use serde_json::{Value as Json, json};

use crate::auth::{claims, fixture, rsa, sign};
use crate::support::{ADMIN_KEY, Server, run_client_script};

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/convex-client")
}

/// A copy of the test app that a test may edit, beside the original so that its imports
/// of `convex` resolve to `tests/convex-client/node_modules`.
struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn copy() -> Self {
        let dir = tempfile::Builder::new()
            .prefix(".app-")
            .tempdir_in(client_dir())
            .unwrap();
        copy_tree(&client_dir().join("app"), dir.path());
        let _ = std::fs::remove_dir_all(dir.path().join("convex/_generated"));
        Self { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.path(file), text).unwrap();
    }

    fn edit(&self, file: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.path(file)).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        self.write(file, &text.replacen(from, to, 1));
    }

    /// Runs the Convex CLI in the app against `server` with `admin_key`.
    fn convex_with_key(&self, server: &Server, admin_key: &str, args: &[&str]) -> Output {
        self.convex_with_env(server, admin_key, &[], args)
    }

    /// Starts the Convex CLI in the app against `server`, its output piped.
    fn spawn_convex(&self, server: &Server, args: &[&str]) -> std::process::Child {
        Command::new("node")
            .arg(client_dir().join("node_modules/convex/bin/main.js"))
            .args(args)
            .current_dir(self.dir.path())
            .env("CONVEX_SELF_HOSTED_URL", &server.url)
            .env("CONVEX_SELF_HOSTED_ADMIN_KEY", ADMIN_KEY)
            .env("CI", "1")
            .env_remove("CONVEX_DEPLOYMENT")
            .env_remove("CONVEX_DEPLOY_KEY")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("cannot run node")
    }

    /// Runs the Convex CLI with `env` set as well.
    fn convex_with_env(
        &self,
        server: &Server,
        admin_key: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Output {
        let cli = client_dir().join("node_modules/convex/bin/main.js");
        assert!(
            cli.is_file(),
            "the convex npm package is not installed: run `cargo xtask ci`, or `npm ci` in {}",
            client_dir().display()
        );
        Command::new("node")
            .arg(cli)
            .args(args)
            .current_dir(self.dir.path())
            .env("CONVEX_SELF_HOSTED_URL", &server.url)
            .env("CONVEX_SELF_HOSTED_ADMIN_KEY", admin_key)
            // No Sentry reports from a test run.
            .env("CI", "1")
            .env_remove("CONVEX_DEPLOYMENT")
            .env_remove("CONVEX_DEPLOY_KEY")
            .envs(env.iter().copied())
            .output()
            .expect("cannot run node")
    }

    fn convex(&self, server: &Server, args: &[&str]) -> Output {
        self.convex_with_key(server, ADMIN_KEY, args)
    }

    /// `npx convex deploy` (without the local type check, which needs typescript).
    fn deploy(&self, server: &Server) -> Output {
        self.convex(server, &["deploy", "--typecheck", "disable"])
    }

    fn deploy_ok(&self, server: &Server) -> String {
        let output = self.deploy(server);
        let text = describe(&output);
        assert!(output.status.success(), "npx convex deploy failed: {text}");
        assert!(text.contains("Deployed Convex functions"), "{text}");
        text
    }

    /// A push that must fail: its output.
    fn deploy_refused(&self, server: &Server) -> String {
        let output = self.deploy(server);
        let text = describe(&output);
        assert!(!output.status.success(), "the push went through: {text}");
        text
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn describe(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Sets the variable auth.config.ts reads its JWKS from, with the CLI: the `rsa-a` key.
fn set_jwks(app: &App, server: &Server) {
    let jwks = format!(r#"{{"keys": [{}]}}"#, fixture("rsa-a.jwk.json"));
    let uri = format!("data:application/json;base64,{}", BASE64.encode(jwks));
    let output = app.convex(server, &["env", "set", "KILN_TEST_JWKS", &uri]);
    assert!(output.status.success(), "{}", describe(&output));
}

fn token() -> String {
    let claims = claims("https://kiln.test", "kiln-cli-app", json!({}));
    sign(Algorithm::RS256, None, &rsa("rsa-a.pem"), &claims)
}

fn list(server: &Server) -> Json {
    server.value("query", "messages:list", json!({"channel": "cli"}))
}

#[test]
fn a_typescript_convex_app_deploys_with_the_official_cli_and_works_through_the_official_client() {
    let server = Server::start();
    let app = App::copy();
    set_jwks(&app, &server);
    let output = app.deploy_ok(&server);
    assert!(output.contains("[+] messages.by_channel"), "{output}");
    // The CLI's codegen ran against Kiln's analysis of the app.
    assert!(app.path("convex/_generated/api.d.ts").is_file());

    let token = token();
    let (_, result) = run_client_script("cli-app.mjs", &[server.url.as_str(), token.as_str()]);
    assert_eq!(result["sent"]["count"].as_f64(), Some(1.0), "{result}");
    assert_eq!(result["list"].as_array().unwrap().len(), 1, "{result}");
    assert_eq!(result["list"][0]["body"], "pushed by npx convex deploy");
    // The seed's action: readData doubles, writeData stores.
    assert_eq!(result["seed"].as_f64(), Some(42.0), "{result}");
    let internal = result["internal"].as_str().unwrap();
    assert!(internal.contains("messages:count"), "{internal}");
    let bad_args = result["badArgs"].as_str().unwrap();
    assert!(bad_args.contains("ArgumentValidationError"), "{bad_args}");
    assert_eq!(result["anonymous"], Json::Null);
    assert_eq!(result["subject"], "user-1");

    // http.ts's router serves its route (also under /http/ on the API address).
    let (status, text) = server.get("/http/hello", false);
    assert_eq!((status, text.as_str()), (200, "hello from a pushed router"));
    let (_, listing) = server.get("/api/functions", true);
    assert!(listing.contains("myAction:writeData"), "{listing}");
}

#[test]
fn a_second_push_changes_a_function_and_indexes_and_keeps_the_data() {
    let server = Server::start();
    let app = App::copy();
    set_jwks(&app, &server);
    app.deploy_ok(&server);
    server.call(
        "mutation",
        "messages:send",
        json!({"channel": "cli", "author": "ada", "body": "kept"}),
    );

    app.edit(
        "convex/schema.ts",
        r#"}).index("by_name", ["name"]),"#,
        "}),",
    );
    app.edit(
        "convex/schema.ts",
        r#"}).index("by_channel", ["channel"]),"#,
        r#"}).index("by_channel", ["channel"]).index("by_author", ["author"]),"#,
    );
    app.edit(
        "convex/messages.ts",
        ".collect(),\n});",
        ".order(\"desc\").take(10),\n});",
    );
    app.write(
        "convex/byAuthor.ts",
        r#"import { query } from "./_generated/server";
import { v } from "convex/values";

export const list = query({
  args: { author: v.string() },
  handler: (ctx, { author }) =>
    ctx.db.query("messages").withIndex("by_author", (q) => q.eq("author", author)).collect(),
});
"#,
    );
    let output = app.deploy_ok(&server);
    assert!(output.contains("[+] messages.by_author"), "{output}");
    assert!(output.contains("[-] counters.by_name"), "{output}");

    let kept = list(&server);
    assert_eq!(kept.as_array().unwrap().len(), 1, "{kept}");
    assert_eq!(kept[0]["body"], "kept");
    let by_author = server.value("query", "byAuthor:list", json!({"author": "ada"}));
    assert_eq!(by_author[0]["body"], "kept", "{by_author}");
}

#[test]
fn bad_pushes_are_refused_and_the_previous_deployment_stays_live() {
    let server = Server::start();
    let app = App::copy();
    set_jwks(&app, &server);
    app.deploy_ok(&server);
    server.call(
        "mutation",
        "messages:send",
        json!({"channel": "cli", "author": "ada", "body": "before"}),
    );
    let still_live = |what: &str| {
        let listed = list(&server);
        assert_eq!(listed[0]["body"], "before", "after {what}: {listed}");
    };

    // A schema that the stored documents violate.
    app.edit("convex/schema.ts", "body: v.string(),", "body: v.number(),");
    let output = app.deploy_refused(&server);
    // Reported by wait_for_schema, as the CLI shows a failed schema validation.
    assert!(output.contains("Schema validation failed"), "{output}");
    assert!(output.contains("does not match the new schema"), "{output}");
    assert!(output.contains("body"), "{output}");
    still_live("a violated schema");
    app.edit("convex/schema.ts", "body: v.number(),", "body: v.string(),");

    // A module that throws while it is imported.
    app.write(
        "convex/throws.ts",
        "export const x = 1;\nthrow new Error(\"boom at import\");\n",
    );
    let output = app.deploy_refused(&server);
    assert!(output.contains("boom at import"), "{output}");
    assert!(output.contains("throws.js"), "{output}");
    still_live("a throwing module");
    std::fs::remove_file(app.path("convex/throws.ts")).unwrap();

    // A module with a syntax error (the CLI's bundler finds it before any upload).
    app.write("convex/broken.ts", "export const x = (;\n");
    let output = app.deploy_refused(&server);
    assert!(output.contains("broken.ts"), "{output}");
    still_live("a syntax error");
    std::fs::remove_file(app.path("convex/broken.ts")).unwrap();

    // A "use node" module: Kiln has no Node.js.
    app.write(
        "convex/nodeStuff.ts",
        "\"use node\";\nimport { action } from \"./_generated/server\";\nexport const a = action(async () => 1);\n",
    );
    let output = app.deploy_refused(&server);
    assert!(output.contains("\"use node\""), "{output}");
    assert!(output.contains("nodeStuff.js"), "{output}");
    still_live("a \"use node\" module");
    std::fs::remove_file(app.path("convex/nodeStuff.ts")).unwrap();

    // A wrong admin key.
    let output = app.convex_with_key(
        &server,
        "not-the-key",
        &["deploy", "--typecheck", "disable"],
    );
    let text = describe(&output);
    assert!(text.contains("401"), "{text}");
    assert!(text.contains("the admin key is wrong"), "{text}");
    still_live("a wrong admin key");

    // And the app as it was still pushes.
    app.deploy_ok(&server);
    still_live("the good push after");
}

#[test]
fn convex_dev_once_pushes_and_convex_run_calls_functions_whose_logs_stream() {
    let server = Server::start();
    let app = App::copy();
    set_jwks(&app, &server);
    let output = app.convex(&server, &["dev", "--once", "--typecheck", "disable"]);
    let text = describe(&output);
    assert!(
        output.status.success(),
        "npx convex dev --once failed: {text}"
    );
    assert!(text.contains("Convex functions ready"), "{text}");
    // dev points the app's frontend at the deployment.
    let env_local = std::fs::read_to_string(app.path(".env.local")).unwrap();
    assert!(env_local.contains(&server.url), "{env_local}");

    let (_, head) = server.get("/api/stream_function_logs?cursor=0", true);
    let head: Json = serde_json::from_str(&head).unwrap();
    let cursor = head["newCursor"].as_u64().unwrap();

    let output = app.convex(
        &server,
        &[
            "run",
            "messages:send",
            r#"{"channel": "cli", "author": "run", "body": "from convex run"}"#,
        ],
    );
    let text = describe(&output);
    assert!(output.status.success(), "npx convex run failed: {text}");
    assert!(text.contains("\"count\": 1"), "{text}");
    assert_eq!(list(&server)[0]["body"], "from convex run");

    // The execution and its log line, as `npx convex dev` and `npx convex logs` stream them.
    let (status, logs) = server.get(&format!("/api/stream_function_logs?cursor={cursor}"), true);
    assert_eq!(status, 200, "{logs}");
    let logs: Json = serde_json::from_str(&logs).unwrap();
    let entry = &logs["entries"][0];
    assert_eq!(entry["identifier"], "messages:send", "{logs}");
    assert_eq!(entry["udfType"], "Mutation");
    let line = entry["logLines"][0]["messages"][0].as_str().unwrap();
    assert!(line.contains("sent to"), "{line}");
    assert!(logs["newCursor"].as_u64().unwrap() > cursor, "{logs}");

    // Without the admin key, no logs.
    let (status, _) = server.get("/api/stream_function_logs?cursor=0", false);
    assert_eq!(status, 401);
}

#[test]
fn codegen_works_against_kiln_and_another_cli_version_is_refused_naming_both() {
    let server = Server::start();
    let app = App::copy();
    set_jwks(&app, &server);
    // codegen starts a push to read the analysis, and never finishes it.
    let output = app.convex(&server, &["codegen", "--typecheck", "disable"]);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(app.path("convex/_generated/api.d.ts").is_file());
    let (_, listing) = server.get("/api/functions", true);
    assert!(
        !listing.contains("messages:list"),
        "codegen deployed: {listing}"
    );
    // Nor does a dry run, which still reports what it would do.
    let output = app.convex(&server, &["deploy", "--dry-run", "--typecheck", "disable"]);
    let text = describe(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("messages.by_channel"), "{text}");
    let (_, listing) = server.get("/api/functions", true);
    assert!(
        !listing.contains("messages:list"),
        "a dry run deployed: {listing}"
    );

    let output = app.convex_with_env(
        &server,
        ADMIN_KEY,
        &[("CONVEX_VERSION_OVERRIDE", "1.47.0")],
        &["deploy", "--typecheck", "disable"],
    );
    let text = describe(&output);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("1.48.x") && text.contains("1.47.0"), "{text}");
    let (_, listing) = server.get("/api/functions", true);
    assert!(!listing.contains("messages:list"), "{listing}");
}

/// Lines a child process prints (stdout and stderr), as they come.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (send, lines) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    for stream in [
        Box::new(stdout) as Box<dyn std::io::Read + Send>,
        Box::new(stderr) as Box<dyn std::io::Read + Send>,
    ] {
        let send = send.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
    }
    lines
}

/// Reads lines until one contains `text`; everything read, for a failure message.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, text: &str, seen: &mut String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(text) {
                    return;
                }
            }
            Err(_) => panic!("no {text:?} from npx convex dev within 2 minutes: {seen}"),
        }
    }
}

#[test]
fn convex_dev_pushes_again_when_a_file_changes() {
    let server = Server::start();
    let app = App::copy();
    set_jwks(&app, &server);
    let mut dev = app.spawn_convex(&server, &["dev", "--typecheck", "disable"]);
    let lines = lines_of(&mut dev);
    let mut seen = String::new();
    wait_for_line(&lines, "Convex functions ready", &mut seen);
    assert!(
        server
            .error("query", "messages:ping", json!({}))
            .contains("Could not find")
    );

    app.write(
        "convex/messages.ts",
        &format!(
            "{}\nexport const ping = query({{ args: {{}}, handler: async () => \"pong\" }});\n",
            std::fs::read_to_string(app.path("convex/messages.ts")).unwrap()
        ),
    );
    wait_for_line(&lines, "Convex functions ready", &mut seen);
    let _ = dev.kill();
    let _ = dev.wait();
    assert_eq!(
        server.value("query", "messages:ping", json!({})),
        json!("pong"),
        "{seen}"
    );
}

#[test]
fn a_push_and_kiln_deploy_list_and_replace_each_others_deployment() {
    use sha2::{Digest, Sha256};

    let server = Server::start();
    let source = "import { query } from \"./_generated/server\";\nexport const hi = query(async () => \"hi\");\n";
    let (status, body) = server.deploy_js(&[("greeting.js", source)]);
    assert_eq!(status, 200, "{body}");
    // The CLI sees what kiln deploy deployed, under the CLI's hash of a file.
    let (status, hashes) = server.post(
        "/api/get_config_hashes",
        &json!({"version": "1.48.0", "adminKey": ADMIN_KEY}).to_string(),
        false,
    );
    assert_eq!(status, 200, "{hashes}");
    assert_eq!(
        hashes["moduleHashes"],
        json!([{"path": "greeting.js", "hash": hex::encode(Sha256::digest(source)), "environment": "isolate"}])
    );

    // A push replaces it...
    let app = App::copy();
    set_jwks(&app, &server);
    app.deploy_ok(&server);
    let (_, listing) = server.get("/api/functions", true);
    assert!(!listing.contains("greeting:hi"), "{listing}");
    assert!(listing.contains("messages:list"), "{listing}");
    // ...and kiln deploy replaces the push.
    let (status, body) = server.deploy_js(&[("greeting.js", source)]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.value("query", "greeting:hi", json!({})), json!("hi"));
    let (_, listing) = server.get("/api/functions", true);
    assert!(!listing.contains("messages:list"), "{listing}");
}

#[test]
fn evaluate_push_reports_the_index_changes_a_push_would_make_and_stages_nothing() {
    let server = Server::start();
    let schema = "import { defineSchema, defineTable } from \"convex/server\";\nexport default defineSchema({ messages: defineTable({}).index(\"by_x\", [\"x\"]) });\n";
    let request = json!({
        "adminKey": ADMIN_KEY,
        "dryRun": false,
        "functions": "convex/",
        "appDefinition": {
            "definition": null,
            "dependencies": [],
            "schema": {"path": "schema.js", "source": schema, "environment": "isolate"},
            "changedModules": [],
            "unchangedModuleHashes": [],
            "udfServerVersion": "1.48.0",
        },
        "componentDefinitions": [],
        "nodeDependencies": [],
    });
    let (status, body) = server.post("/api/deploy2/evaluate_push", &request.to_string(), false);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["schemaChange"]["indexDiffs"][""]["added_indexes"],
        json!([{"name": "messages.by_x", "type": "database", "fields": ["x", "_creationTime"], "staged": false}])
    );
    let (status, body) = server.post(
        "/api/deploy2/evaluate_push",
        &json!({"adminKey": "wrong", "appDefinition": request["appDefinition"], "componentDefinitions": []}).to_string(),
        false,
    );
    assert_eq!(status, 401, "{body}");
    let (_, hashes) = server.post(
        "/api/get_config_hashes",
        &json!({"version": "1.48.0", "adminKey": ADMIN_KEY}).to_string(),
        false,
    );
    assert_eq!(hashes["moduleHashes"], json!([]));
}

/// `npx convex env list` and `env get` read the variables over the sync socket (the CLI's
/// `_system/cli/queryEnvironmentVariables` system queries, with the admin key).
#[test]
fn convex_env_list_and_get_read_the_variables_over_the_sync_socket() {
    let server = Server::start();
    let app = App::copy();
    for (name, value) in [("GREETING", "hello"), ("OTHER", "x=y")] {
        let output = app.convex(&server, &["env", "set", name, value]);
        assert!(output.status.success(), "{}", describe(&output));
    }
    let output = app.convex(&server, &["env", "list"]);
    assert!(output.status.success(), "{}", describe(&output));
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(
        listed.contains("GREETING=hello") && listed.contains("OTHER=x=y"),
        "{}",
        describe(&output)
    );
    let output = app.convex(&server, &["env", "get", "GREETING"]);
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "hello");
    let output = app.convex(&server, &["env", "get", "MISSING"]);
    assert!(
        describe(&output).contains("Environment variable \"MISSING\" not found"),
        "{}",
        describe(&output)
    );
    // A wrong admin key is refused on the socket too.
    let output = app.convex_with_key(&server, "wrong-key", &["env", "list"]);
    assert!(!output.status.success(), "{}", describe(&output));
}

/// A Convex app's scheduler and crons, pushed with the CLI (TypeScript, bundled by it):
/// `ctx.scheduler.runAfter(0, internal...)` runs the job; `crons.ts` is installed and
/// fires; `db.system` reads the job.
#[test]
fn a_pushed_apps_scheduler_and_crons_run() {
    let server = Server::start();
    let app = App::copy();
    set_jwks(&app, &server);
    app.write(
        "convex/ticks.ts",
        r#"import { mutation, query, internalMutation } from "./_generated/server";
import { internal } from "./_generated/api";
import { v } from "convex/values";

export const tick = internalMutation({
  args: { source: v.string() },
  handler: async (ctx, { source }) => {
    await ctx.db.insert("ticks", { source });
  },
});

export const count = query({
  args: { source: v.string() },
  handler: async (ctx, { source }): Promise<number> =>
    (await ctx.db.query("ticks").filter((q) => q.eq(q.field("source"), source)).collect()).length,
});

export const later = mutation({
  args: {},
  handler: async (ctx) => await ctx.scheduler.runAfter(0, internal.ticks.tick, { source: "scheduled" }),
});

export const job = query({
  args: { id: v.id("_scheduled_functions") },
  handler: async (ctx, { id }) => await ctx.db.system.get(id),
});
"#,
    );
    app.write(
        "convex/crons.ts",
        r#"import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";

const crons = cronJobs();
crons.interval("tick every second", { seconds: 1 }, internal.ticks.tick, { source: "cron" });
export default crons;
"#,
    );
    app.deploy_ok(&server);
    let id = server.value("mutation", "ticks:later", json!({}));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let job = server.value("query", "ticks:job", json!({ "id": id }));
        let crons = server.value("query", "ticks:count", json!({ "source": "cron" }));
        if job["state"]["kind"] == "success" && crons.as_f64() >= Some(2.0) {
            assert_eq!(job["name"], "ticks:tick");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{job} {crons}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        server.value("query", "ticks:count", json!({ "source": "scheduled" })),
        json!(1.0)
    );
    let output = server.cli(&["jobs"]);
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains("cron \"tick every second\": ticks:tick"),
        "{printed}"
    );
}
