//! The database through the real server: the chat and counter apps, serializability under
//! concurrent mutations, durability across restarts, and every database call that must
//! fail with a clear error and nothing committed.

use std::sync::Arc;

use serde_json::{Value as Json, json};

use crate::support::{Server, component, int64};

fn apps_schema() -> Json {
    json!({
        "messages": { "indexes": { "by_channel": ["channel"] } },
        "counters": { "indexes": { "by_name": ["name"] } },
    })
}

/// Deploys the chat, counter and dbtest modules with `tables`.
fn deploy_apps(server: &Server, tables: Json) -> (u16, Json) {
    let (messages, counter, dbtest) = (
        component("messages"),
        component("counter"),
        component("dbtest"),
    );
    server.deploy_with_tables(
        &[
            ("messages", &messages),
            ("counter", &counter),
            ("dbtest", &dbtest),
        ],
        tables,
    )
}

fn apps_server() -> Server {
    let server = Server::start();
    let (status, body) = deploy_apps(&server, apps_schema());
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["schema"]["createdTables"],
        json!(["counters", "messages"]),
        "{body}"
    );
    server
}

/// `dbtest:by_index` arguments for ada's messages through `by_author`.
fn by_author_query() -> Json {
    json!({"table": "messages", "index": "by_author", "field": "author", "value": "ada"})
}

/// `dbtest:count` of `table`: how many documents a query sees there.
fn count(server: &Server, table: &str) -> Json {
    server.value("query", "dbtest:count", json!({ "table": table }))
}

fn send(server: &Server, channel: &str, body: &str) -> String {
    let id = server.value(
        "mutation",
        "messages:send",
        json!({"channel": channel, "author": "ada", "body": body}),
    );
    id.as_str().unwrap().to_string()
}

#[test]
fn the_chat_app_lists_and_paginates_through_its_index() {
    check_chat_app(&apps_server());
}

/// What the chat app (`messages`) must do, in Rust or in JavaScript.
pub(crate) fn check_chat_app(server: &Server) {
    let first = send(server, "general", "hello");
    send(server, "random", "elsewhere");
    send(server, "general", "how are you");
    send(server, "general", "bye");

    let list = server.value("query", "messages:list", json!({"channel": "general"}));
    let bodies: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["hello", "how are you", "bye"]);
    let message = &list[0];
    assert_eq!(message["_id"], first);
    assert_eq!(
        (message["channel"].as_str(), message["author"].as_str()),
        (Some("general"), Some("ada"))
    );
    assert!(
        message["_creationTime"].as_f64().unwrap() > 1.7e12,
        "{message}"
    );
    let times: Vec<f64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["_creationTime"].as_f64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "creation times increase: {times:?}"
    );

    let page = server.value(
        "query",
        "messages:paginate",
        json!({"channel": "general", "paginationOpts": {"numItems": 2, "cursor": null}}),
    );
    let bodies: Vec<&str> = page["page"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        (bodies, page["isDone"].clone()),
        (vec!["hello", "how are you"], json!(false)),
        "{page}"
    );
    let next = server.value(
        "query",
        "messages:paginate",
        json!({"channel": "general", "paginationOpts": {"numItems": 2, "cursor": page["continueCursor"]}}),
    );
    let bodies: Vec<&str> = next["page"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(
        (bodies, next["isDone"].clone()),
        (vec!["bye"], json!(true)),
        "{next}"
    );
    assert!(next["continueCursor"].is_string());
}

#[test]
fn concurrent_increments_are_serializable_over_http() {
    check_concurrent_increments(Arc::new(apps_server()));
}

/// What the counter app must do under concurrent increments, in Rust or in JavaScript.
pub(crate) fn check_concurrent_increments(server: Arc<Server>) {
    assert_eq!(
        server.value("query", "counter:get", json!({"name": "hits"})),
        int64(0)
    );
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                let clients: Vec<_> = (0..50)
                    .map(|_| {
                        let server = server.clone();
                        std::thread::spawn(move || {
                            server.value("mutation", "counter:increment", json!({"name": "hits"}))
                        })
                    })
                    .collect();
                clients
                    .into_iter()
                    .map(|client| client.join().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut returned: Vec<Json> = threads
        .into_iter()
        .flat_map(|thread| thread.join().unwrap())
        .collect();
    returned.sort_by_key(|value| value.to_string());
    returned.dedup();
    assert_eq!(
        returned.len(),
        100,
        "every increment returned a distinct value"
    );
    assert_eq!(
        server.value("query", "counter:get", json!({"name": "hits"})),
        int64(100)
    );
    assert_eq!(
        server.value(
            "mutation",
            "counter:increment",
            json!({"name": "hits", "by": int64(5)})
        ),
        int64(105)
    );
}

#[test]
fn data_survives_a_restart() {
    check_restart(&mut apps_server());
}

/// The chat and counter apps' data survives a restart, in Rust or in JavaScript.
pub(crate) fn check_restart(server: &mut Server) {
    send(server, "general", "persisted");
    server.value(
        "mutation",
        "counter:increment",
        json!({"name": "c", "by": int64(7)}),
    );
    server.restart();
    let server = &*server;
    let list = server.value("query", "messages:list", json!({"channel": "general"}));
    assert_eq!(list[0]["body"], "persisted");
    assert_eq!(
        server.value("query", "counter:get", json!({"name": "c"})),
        int64(7)
    );
    // New documents still get later creation times than the ones before the restart.
    send(server, "general", "after restart");
    let list = server.value("query", "messages:list", json!({"channel": "general"}));
    assert_eq!(list[1]["body"], "after restart");
}

#[test]
fn forbidden_and_malformed_database_calls_fail_clearly() {
    let server = apps_server();
    let message = server.error(
        "query",
        "dbtest:write_from_query",
        json!({"table": "notes"}),
    );
    assert_eq!(
        message,
        "insert is not allowed in a query: queries read the database, mutations write it"
    );
    let message = server.error("action", "dbtest:read_from_action", json!({}));
    assert!(
        message.starts_with("actions cannot use the database directly"),
        "{message}"
    );

    let message = server.error("query", "dbtest:get", json!({"id": "not-an-id"}));
    assert!(message.starts_with("invalid id \"not-an-id\""), "{message}");
    let id = send(&server, "general", "x");
    let message = server.error(
        "query",
        "dbtest:get",
        json!({"table": "counters", "id": id}),
    );
    assert_eq!(
        message,
        format!("id {id} belongs to table \"messages\", not to table \"counters\"")
    );
    assert_eq!(
        server.value(
            "query",
            "dbtest:get",
            json!({"table": "messages", "id": id})
        )["body"],
        "x"
    );

    let bad_documents = [
        (json!({"_secret": 1}), "_secret"),
        (
            json!({"big": "x".repeat(1 << 20)}),
            "over the limit of 1048576 bytes (max_document_bytes)",
        ),
    ];
    for (document, expected) in bad_documents {
        let message = server.error(
            "mutation",
            "dbtest:insert",
            json!({"table": "notes", "document": document}),
        );
        assert!(message.contains(expected), "{expected}: {message}");
    }

    let message = server.error("query", "dbtest:by_index", by_author_query());
    assert!(message.contains("has no index \"by_author\""), "{message}");
    let message = server.error(
        "query",
        "dbtest:by_index",
        json!({"table": "messages", "index": "by_channel", "field": "author", "value": "ada"}),
    );
    assert!(
        message.contains("ranges must follow the index's field order"),
        "{message}"
    );
}

#[test]
fn a_mutation_that_fails_after_writing_commits_nothing() {
    let server = apps_server();
    let message = server.error(
        "mutation",
        "dbtest:insert_then_fail",
        json!({"table": "notes", "document": {"n": 1}}),
    );
    assert_eq!(message, "failing after the insert on purpose");
    assert_eq!(count(&server, "notes"), int64(0));
    // The same insert without the failure commits, so the count above really looked.
    server.value(
        "mutation",
        "dbtest:insert",
        json!({"table": "notes", "document": {"n": 1}}),
    );
    assert_eq!(count(&server, "notes"), int64(1));
}

#[test]
fn filters_are_evaluated_by_the_host() {
    let server = apps_server();
    for n in [1.0, 5.0, 10.0] {
        server.value(
            "mutation",
            "dbtest:insert",
            json!({"table": "points", "document": {"n": n}}),
        );
    }
    let found = server.value(
        "query",
        "dbtest:filtered",
        json!({"table": "points", "field": "n", "above": 4.0}),
    );
    let ns: Vec<f64> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["n"].as_f64().unwrap())
        .collect();
    assert_eq!(ns, [5.0, 10.0]);
}

#[test]
fn a_schema_change_backfills_new_indexes_and_drops_removed_ones() {
    let server = apps_server();
    send(&server, "general", "before the index");
    let mut schema = apps_schema();
    schema["messages"]["indexes"]["by_author"] = json!(["author"]);
    let (status, body) = deploy_apps(&server, schema);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["schema"]["addedIndexes"],
        json!(["messages.by_author"])
    );
    let found = server.value("query", "dbtest:by_index", by_author_query());
    assert_eq!(
        found[0]["body"], "before the index",
        "the new index was backfilled"
    );

    let (status, body) = deploy_apps(&server, apps_schema());
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["schema"]["removedIndexes"],
        json!(["messages.by_author"])
    );
    let message = server.error("query", "dbtest:by_index", by_author_query());
    assert!(message.contains("has no index \"by_author\""), "{message}");

    let mut bad = apps_schema();
    bad["messages"]["indexes"]["by_id"] = json!(["x"]);
    let (status, body) = deploy_apps(&server, bad);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidSchema")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("reserved"),
        "{body}"
    );
}

#[test]
fn kiln_data_lists_what_is_stored() {
    let server = apps_server();
    send(&server, "general", "first");
    send(&server, "general", "second");
    let output = server.cli(&["data", "messages"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Json> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let bodies: Vec<&str> = lines.iter().map(|d| d["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["first", "second"]);
    assert!(lines[0]["_id"].is_string() && lines[0]["_creationTime"].is_number());

    let output = server.cli(&["data", "messages", "--limit", "1"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
    assert!(String::from_utf8_lossy(&output.stderr).contains("more documents follow"));
    let (status, _) = server.get("/api/data/messages", false);
    assert_eq!(status, 401, "the data endpoint needs the admin key");
    let (status, body) = server.get("/api/data/nothing_here", true);
    assert_eq!(
        (status, body.contains("\"documents\":[]")),
        (200, true),
        "{body}"
    );
}

#[test]
fn acknowledged_mutations_survive_sigkill_and_none_is_half_applied() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    let mut server = apps_server();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let url = server.url.clone();
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (acknowledged, stop, url) = (acknowledged.clone(), stop.clone(), url.clone());
            std::thread::spawn(move || {
                let client = crate::support::Client::new(&url);
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let tag = format!("w{writer}-{n}");
                    n += 1;
                    match client.try_value(
                        "mutation",
                        "dbtest:insert_pair",
                        json!({"table": "pairs", "tag": tag}),
                    ) {
                        Some(_) => acknowledged.lock().unwrap().push(tag),
                        // The server is gone: stop writing.
                        None => break,
                    }
                }
            })
        })
        .collect();
    // Kill the server mid-load, once a good number of mutations were acknowledged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while acknowledged.lock().unwrap().len() < 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writers made no progress"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.kill();
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    server.start_again();
    let mut halves: std::collections::BTreeMap<String, usize> = Default::default();
    for document in &all_documents(&server, "pairs", 10_000) {
        *halves
            .entry(document["tag"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for (tag, count) in &halves {
        assert_eq!(*count, 2, "mutation {tag} is half-applied");
    }
    for tag in &acknowledged {
        assert!(
            halves.contains_key(tag),
            "acknowledged mutation {tag} was lost"
        );
    }
    assert!(halves.len() >= acknowledged.len());
}

#[test]
fn document_validators_check_every_write_and_the_data_already_stored() {
    let server = apps_server();
    let odd = server.value(
        "mutation",
        "dbtest:insert",
        json!({"table": "messages", "document": {"channel": "general", "author": "ada", "body": 42.0}}),
    );

    // A validator that a stored document violates is refused, naming the document.
    let mut strict = apps_schema();
    strict["messages"]["document"] =
        json!({"channel": "string", "author": "string", "body": "string"});
    let (status, body) = deploy_apps(&server, strict.clone());
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidSchema")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "existing document {} in table \"messages\"",
            odd.as_str().unwrap()
        )) && message.contains("field \"body\": expected string, got float64"),
        "{message}"
    );

    // Once the data fits, the validator is accepted and checks every later write.
    let mut loose = strict.clone();
    loose["messages"]["document"]["body"] = json!("string | float64");
    let (status, body) = deploy_apps(&server, loose);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schema"]["validatedTables"], json!(["messages"]));
    send(&server, "general", "fits");
    let message = server.error(
        "mutation",
        "dbtest:insert",
        json!({"table": "messages", "document": {"channel": "general", "author": "ada", "body": "x", "extra": 1.0}}),
    );
    assert_eq!(
        message,
        "invalid document: document does not match the schema of table \"messages\": unexpected field \"extra\" (the schema does not declare it)"
    );
    let mut bad_type = apps_schema();
    bad_type["messages"]["document"] = json!({"body": "text"});
    let (status, body) = deploy_apps(&server, bad_type);
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("InvalidSchema")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("unknown type \"text\""),
        "{body}"
    );
}

#[test]
fn a_mutation_over_a_transaction_limit_names_it_and_commits_nothing() {
    let server = apps_server();
    let insert =
        |count: i64| json!({"table": "bulk", "count": int64(count), "document": {"n": 1.0}});
    // 8192 documents is the limit (max_documents_written): exactly at it commits...
    assert_eq!(
        server.value("mutation", "dbtest:insert_many", insert(8192)),
        int64(8192)
    );
    // ...one more is refused and leaves nothing behind.
    let message = server.error("mutation", "dbtest:insert_many", insert(8193));
    assert_eq!(
        message,
        "transaction wrote more than 8192 documents (max_documents_written)"
    );
    let (_, body) = server.get("/api/data/bulk?limit=10000", true);
    let body: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(body["documents"].as_array().unwrap().len(), 8192);
}

/// Every document of `table`, read through `/api/data` a page of `limit` at a time.
pub(crate) fn all_documents(server: &Server, table: &str, limit: usize) -> Vec<Json> {
    let mut documents = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = server.get(
            &format!("/api/data/{table}?limit={limit}&cursor={cursor}"),
            true,
        );
        assert_eq!(status, 200, "{body}");
        let body: Json = serde_json::from_str(&body).unwrap();
        let page = body["documents"].as_array().unwrap();
        assert!(page.len() <= limit, "{body}");
        documents.extend(page.iter().cloned());
        if body["isDone"] == json!(true) {
            return documents;
        }
        cursor = body["continueCursor"].as_str().unwrap().to_string();
    }
}

#[test]
fn a_limit_the_function_catches_still_fails_it_and_commits_nothing() {
    let server = apps_server();
    // The function ignores every insert error and returns normally: the limit it crossed
    // bounds the whole transaction, so it fails all the same.
    let message = server.error(
        "mutation",
        "dbtest:insert_many_ignoring_errors",
        json!({"table": "bulk", "count": int64(8193), "document": {"n": 1.0}}),
    );
    assert_eq!(
        message,
        "transaction wrote more than 8192 documents (max_documents_written)"
    );
    assert!(all_documents(&server, "bulk", 10_000).is_empty());
    // At the limit, the same function commits everything.
    assert_eq!(
        server.value(
            "mutation",
            "dbtest:insert_many_ignoring_errors",
            json!({"table": "bulk", "count": int64(8192), "document": {"n": 1.0}}),
        ),
        int64(8192)
    );
    assert_eq!(all_documents(&server, "bulk", 10_000).len(), 8192);
}

#[test]
fn a_mutation_that_traps_after_writing_commits_nothing() {
    let server = apps_server();
    let message = server.error(
        "mutation",
        "dbtest:insert_then_panic",
        json!({"table": "notes", "document": {"n": 1.0}}),
    );
    assert!(message.contains("panicked"), "{message}");
    assert_eq!(count(&server, "notes"), int64(0));
}

#[test]
fn a_pagination_cursor_only_continues_the_query_that_made_it() {
    let server = apps_server();
    for body in ["one", "two", "three"] {
        send(&server, "general", body);
    }
    send(&server, "secret", "not for general readers");
    let page = server.value(
        "query",
        "messages:paginate",
        json!({"channel": "general", "paginationOpts": {"numItems": 2, "cursor": null}}),
    );
    assert_eq!(page["isDone"], json!(false), "{page}");
    // The same cursor on another channel's query would read outside that query's range.
    let message = server.error(
        "query",
        "messages:paginate",
        json!({"channel": "secret", "paginationOpts": {"numItems": 2, "cursor": page["continueCursor"]}}),
    );
    assert!(message.contains("invalid cursor"), "{message}");
    let message = server.error(
        "query",
        "messages:paginate",
        json!({"channel": "general", "paginationOpts": {"numItems": 2, "cursor": "not-a-cursor!"}}),
    );
    assert!(message.contains("invalid cursor"), "{message}");
}

#[test]
fn a_query_batch_over_max_query_batch_fails_the_query() {
    let server = apps_server();
    send(&server, "general", "hello");
    let batch = |max: u32| json!({"table": "messages", "max": int64(i64::from(max))});
    assert_eq!(
        server.value("query", "dbtest:raw_batch", batch(1024)),
        int64(1)
    );
    let expected =
        "a query batch of 1025 documents was requested, over the limit of 1024 (max_query_batch)";
    assert_eq!(
        server.error("query", "dbtest:raw_batch", batch(1025)),
        expected
    );
    // Caught by the function, the limit still fails the query.
    let mut caught = batch(1025);
    caught["catch"] = json!(true);
    assert_eq!(server.error("query", "dbtest:raw_batch", caught), expected);
}

#[test]
fn a_query_of_a_table_that_does_not_exist_yet_still_checks_its_index() {
    let server = apps_server();
    let message = server.error(
        "query",
        "dbtest:by_index",
        json!({"table": "nosuch", "index": "by_author", "field": "author", "value": "ada"}),
    );
    assert!(
        message.contains("table \"nosuch\" has no index \"by_author\""),
        "{message}"
    );
    assert_eq!(count(&server, "nosuch"), int64(0));
}

#[test]
fn a_table_left_out_of_the_schema_keeps_its_documents_and_loses_its_indexes() {
    let server = apps_server();
    send(&server, "general", "kept");
    let mut strict = apps_schema();
    strict["messages"]["document"] =
        json!({"channel": "string", "author": "string", "body": "string"});
    let (status, body) = deploy_apps(&server, strict);
    assert_eq!(status, 200, "{body}");

    let (status, body) = deploy_apps(&server, json!({"counters": apps_schema()["counters"]}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["schema"]["removedIndexes"],
        json!(["messages.by_channel"]),
        "{body}"
    );
    let message = server.error("query", "messages:list", json!({"channel": "general"}));
    assert!(message.contains("has no index \"by_channel\""), "{message}");
    // The validator went with the schema entry: any document fits now.
    server.value(
        "mutation",
        "dbtest:insert",
        json!({"table": "messages", "document": {"free": true}}),
    );
    let documents = all_documents(&server, "messages", 10);
    assert_eq!(documents.len(), 2);
    assert_eq!(documents[0]["body"], "kept");
}

#[test]
fn kiln_data_pages_through_a_table_with_its_cursor() {
    let server = apps_server();
    for n in 0..7 {
        server.value(
            "mutation",
            "dbtest:insert",
            json!({"table": "notes", "document": {"n": f64::from(n)}}),
        );
    }
    let documents = all_documents(&server, "notes", 3);
    let ns: Vec<f64> = documents.iter().map(|d| d["n"].as_f64().unwrap()).collect();
    assert_eq!(ns, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);

    // A cursor of another table is refused, not followed.
    send(&server, "general", "hi");
    let (_, body) = server.get("/api/data/messages?limit=1", true);
    let body: Json = serde_json::from_str(&body).unwrap();
    let cursor = body["continueCursor"].as_str().unwrap();
    let (status, body) = server.get(&format!("/api/data/notes?cursor={cursor}"), true);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("BadCursor"), "{body}");
}

#[test]
fn the_json_format_answers_int64_as_a_decimal_string() {
    let server = apps_server();
    let request = json!({
        "path": "counter:increment",
        "args": {"name": "plain"},
        "format": "json",
    });
    let (status, body) = server.post("/api/mutation", &request.to_string(), false);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"], json!("1"), "{body}");
    // The default, lossless format keeps it an int64.
    assert_eq!(
        server.value("query", "counter:get", json!({"name": "plain"})),
        int64(1)
    );
}

#[test]
fn a_data_page_stops_at_max_bytes_read_and_continues() {
    let server = Server::start_with_config(Some("[limits]\nmax_bytes_read = 5000\n"));
    let (status, body) = deploy_apps(&server, apps_schema());
    assert_eq!(status, 200, "{body}");
    let text = "x".repeat(1000);
    for n in 0..6 {
        server.value(
            "mutation",
            "dbtest:insert",
            json!({"table": "big", "document": {"n": f64::from(n), "text": text}}),
        );
    }
    // Six documents of about 1 KB do not fit in one 5000-byte page, however many the
    // limit allows; the page ends at the byte cap (passing it by at most one document).
    let (status, body) = server.get("/api/data/big?limit=100", true);
    assert_eq!(status, 200, "{body}");
    let body: Json = serde_json::from_str(&body).unwrap();
    let first_page = body["documents"].as_array().unwrap().len();
    assert!((4..6).contains(&first_page), "{first_page} documents");
    assert_eq!(body["isDone"], json!(false));
    let ns: Vec<f64> = all_documents(&server, "big", 100)
        .iter()
        .map(|d| d["n"].as_f64().unwrap())
        .collect();
    assert_eq!(ns, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
}
