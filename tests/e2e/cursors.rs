//! Cursors are sealed: the `continueCursor` of a paginated query (and of the admin data
//! endpoint) reveals nothing of the documents, even of one the filter hid; an altered, cut
//! or foreign cursor is `invalid cursor`; a genuine one continues, also after a restart.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value as Json, json};

use crate::support::{Server, component};

/// The indexed value of the document a filter hides.
const SECRET: &str = "SECRET-CHANNEL";

fn schema() -> Json {
    json!({
        "messages": { "indexes": { "by_channel": ["channel"] } },
        "posts": { "indexes": { "by_channel": ["channel"] } },
    })
}

fn cursor_server() -> Server {
    let server = Server::start();
    deploy(&server);
    server
}

fn deploy(server: &Server) {
    let (messages, dbtest, probe) = (
        component("messages"),
        component("dbtest"),
        component("probe"),
    );
    let (status, body) = server.deploy_with_tables(
        &[
            ("messages", &messages),
            ("dbtest", &dbtest),
            ("probe", &probe),
        ],
        schema(),
    );
    assert_eq!(status, 200, "{body}");
}

fn send(server: &Server, channel: &str, body: &str) {
    server.value(
        "mutation",
        "messages:send",
        json!({"channel": channel, "author": "ada", "body": body}),
    );
}

fn paginate(channel: &str, num_items: u32, cursor: Json) -> Json {
    json!({"channel": channel, "paginationOpts": {"numItems": num_items, "cursor": cursor}})
}

fn bodies(page: &Json) -> Vec<String> {
    page["page"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["body"].as_str().unwrap().to_string())
        .collect()
}

/// The bytes a cursor carries, however it is encoded.
fn cursor_bytes(cursor: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .unwrap_or_else(|_| cursor.as_bytes().to_vec())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// `cursor` with one character changed, in the middle.
fn flip_one_character(cursor: &str) -> String {
    let mut bytes = cursor.as_bytes().to_vec();
    let at = bytes.len() / 2;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_cursor_does_not_reveal_the_document_a_filter_hid() {
    let server = cursor_server();
    for (channel, visible) in [("general", true), ("random", true), (SECRET, false)] {
        server.value(
            "mutation",
            "dbtest:insert",
            json!({"table": "posts", "document": {"channel": channel, "visible": visible}}),
        );
    }
    // Descending by channel: "random", "general", then "SECRET-CHANNEL" (upper case sorts
    // first), so the hidden document is the last one scanned and the cursor stands on it.
    let page = server.value(
        "query",
        "probe:paginate_where",
        json!({
            "table": "posts", "index": "by_channel", "descending": true,
            "field": "visible", "equals": true,
            "paginationOpts": {"numItems": 10, "cursor": null},
        }),
    );
    let channels: Vec<&str> = page["page"]
        .as_array()
        .unwrap()
        .iter()
        .map(|post| post["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["random", "general"], "{page}");
    let cursor = page["continueCursor"].as_str().unwrap();
    assert!(!cursor.is_empty(), "{page}");
    assert!(
        cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "a cursor is URL-safe base64: {cursor}"
    );
    let bytes = cursor_bytes(cursor);
    assert!(
        !contains(&bytes, SECRET.as_bytes()) && !contains(&bytes, b"SECRET"),
        "the cursor reveals the hidden document's indexed value: {cursor}"
    );
    assert!(!cursor.contains(SECRET), "{cursor}");
}

#[test]
fn an_altered_cut_or_garbage_cursor_is_an_invalid_cursor() {
    let server = cursor_server();
    for body in ["one", "two", "three"] {
        send(&server, "general", body);
    }
    let page = server.value(
        "query",
        "messages:paginate",
        paginate("general", 1, json!(null)),
    );
    let cursor = page["continueCursor"].as_str().unwrap().to_string();
    for bad in [
        flip_one_character(&cursor),
        cursor[..cursor.len() - 1].to_string(),
        cursor[..cursor.len() / 2].to_string(),
        format!("{cursor}AA"),
        "not-a-cursor!".to_string(),
    ] {
        let message = server.error(
            "query",
            "messages:paginate",
            paginate("general", 1, json!(bad)),
        );
        assert!(message.starts_with("invalid cursor"), "{bad}: {message}");
    }
    // The admin data endpoint's cursors are sealed the same way.
    let (status, body) = server.get("/api/data/messages?limit=1", true);
    assert_eq!(status, 200, "{body}");
    let body: Json = serde_json::from_str(&body).unwrap();
    let cursor = body["continueCursor"].as_str().unwrap();
    assert!(
        !contains(&cursor_bytes(cursor), b"general"),
        "the admin cursor reveals a document: {cursor}"
    );
    let (status, body) = server.get(
        &format!(
            "/api/data/messages?limit=1&cursor={}",
            flip_one_character(cursor)
        ),
        true,
    );
    assert_eq!(status, 400, "{body}");
    let body: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "BadCursor", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid cursor"),
        "{body}"
    );
    server.value(
        "query",
        "messages:paginate",
        paginate("general", 1, json!(null)),
    );
}

#[test]
fn a_cursor_from_another_server_is_an_invalid_cursor() {
    let first = cursor_server();
    let second = cursor_server();
    // The same writes on both: the same tables, indexes and channel values.
    for server in [&first, &second] {
        for body in ["one", "two", "three"] {
            send(server, "general", body);
        }
    }
    let page = first.value(
        "query",
        "messages:paginate",
        paginate("general", 1, json!(null)),
    );
    let message = second.error(
        "query",
        "messages:paginate",
        paginate("general", 1, page["continueCursor"].clone()),
    );
    assert!(message.starts_with("invalid cursor"), "{message}");

    let (_, body) = first.get("/api/data/messages?limit=1", true);
    let body: Json = serde_json::from_str(&body).unwrap();
    let cursor = body["continueCursor"].as_str().unwrap();
    let (status, body) = second.get(&format!("/api/data/messages?cursor={cursor}"), true);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid cursor"), "{body}");
}

#[test]
fn a_cursor_continues_its_query_also_after_a_restart() {
    let mut server = cursor_server();
    for body in ["one", "two", "three"] {
        send(&server, "general", body);
    }
    send(&server, "random", "elsewhere");
    let page = server.value(
        "query",
        "messages:paginate",
        paginate("general", 1, json!(null)),
    );
    assert_eq!(bodies(&page), ["one"], "{page}");
    let next = server.value(
        "query",
        "messages:paginate",
        paginate("general", 1, page["continueCursor"].clone()),
    );
    assert_eq!(bodies(&next), ["two"], "{next}");
    let (_, data) = server.get("/api/data/messages?limit=2", true);
    let data: Json = serde_json::from_str(&data).unwrap();

    // Over redb the key lives in the data directory, readable by its owner only; over
    // PostgreSQL in the database, which every host shares (the data directory has none).
    use std::os::unix::fs::PermissionsExt as _;
    let key_file = server.data.join("cursor_key");
    let key = match &server.database {
        None => {
            let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key_file.display());
            Some(std::fs::read(&key_file).unwrap())
        }
        Some(_) => {
            assert!(!key_file.exists(), "the key belongs in the shared database");
            None
        }
    };

    server.restart();
    if let Some(key) = key {
        assert_eq!(
            std::fs::read(&key_file).unwrap(),
            key,
            "the key must persist"
        );
    }
    let last = server.value(
        "query",
        "messages:paginate",
        paginate("general", 1, next["continueCursor"].clone()),
    );
    assert_eq!(
        (bodies(&last), &last["isDone"]),
        (vec!["three".to_string()], &json!(true)),
        "{last}"
    );
    let (status, rest) = server.get(
        &format!(
            "/api/data/messages?cursor={}",
            data["continueCursor"].as_str().unwrap()
        ),
        true,
    );
    assert_eq!(status, 200, "{rest}");
    let rest: Json = serde_json::from_str(&rest).unwrap();
    let rest: Vec<&str> = rest["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["body"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["three", "elsewhere"]);
}
