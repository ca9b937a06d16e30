//! File storage end to end: upload through a generated URL and download the same bytes;
//! ranges and ETags; tokens that are reused, forged or missing; a wrong Digest and an
//! upload over the limit store nothing; store/get/delete from actions; a delete removes
//! the file from disk; a crash in the middle of an upload leaves nothing behind.

use std::io::Write as _;
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::support::{Server, component};

fn photos_server(config: Option<&str>) -> Server {
    let server = Server::start_with_config(config);
    server.deploy_ok(&[("photos", &component("photos"))]);
    server
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// POSTs `body` to `url` with `headers`; the status and the answer.
pub(crate) fn post(url: &str, body: &[u8], headers: &[(&str, &str)]) -> (u16, Json) {
    let mut request = agent().post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.send(body).unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Json::String(text)),
    )
}

/// GETs `url` with `headers`: the status, the headers asked for, and the body.
pub(crate) fn get(url: &str, headers: &[(&str, &str)]) -> (u16, ureq::http::HeaderMap, Vec<u8>) {
    let mut request = agent().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call().unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap_or_default();
    (status, headers, body)
}

pub(crate) fn upload_url(server: &Server) -> String {
    server
        .value("mutation", "photos:generateUploadUrl", json!({}))
        .as_str()
        .unwrap()
        .to_string()
}

/// Files in the data directory's storage folder `folder` (`blobs`, `tmp`). Over
/// PostgreSQL, kept files live in the database: `blobs` counts them there.
fn files_in(server: &Server, folder: &str) -> usize {
    if let (Some(database), "blobs") = (&server.database, folder) {
        return files_in_database(database);
    }
    std::fs::read_dir(server.data.join("storage").join(folder))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// Files kept in a PostgreSQL database (`kiln_files`).
pub(crate) fn files_in_database(database: &str) -> usize {
    let output = std::process::Command::new("psql")
        .arg(database)
        .args(["-tAc", "SELECT count(*) FROM kiln_files"])
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap()
}

fn storage_records(server: &Server) -> usize {
    let (status, body) = server.get("/api/data/_storage", true);
    assert_eq!(status, 200, "{body}");
    let body: Json = serde_json::from_str(&body).unwrap();
    body["documents"].as_array().unwrap().len()
}

#[test]
fn an_uploaded_file_is_served_back_with_its_type_etag_and_ranges() {
    let server = photos_server(None);
    let url = upload_url(&server);
    assert!(
        url.starts_with(&format!("{}/api/storage/upload?token=", server.url)),
        "{url}"
    );
    let image: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let (status, answer) = post(&url, &image, &[("Content-Type", "image/png")]);
    assert_eq!(status, 200, "{answer}");
    let storage_id = answer["storageId"].as_str().unwrap().to_string();

    server.value(
        "mutation",
        "photos:send",
        json!({ "storageId": storage_id, "author": "ada" }),
    );
    let photos = server.value("query", "photos:list", json!({}));
    let file_url = photos[0]["url"].as_str().unwrap().to_string();
    assert_eq!(file_url, format!("{}/api/storage/{storage_id}", server.url));
    let (status, headers, body) = get(&file_url, &[]);
    assert_eq!(status, 200);
    assert_eq!(body, image);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["content-length"], "100000");
    let etag = headers["etag"].to_str().unwrap().to_string();

    let metadata = server.value(
        "query",
        "photos:metadata",
        json!({ "storageId": storage_id }),
    );
    assert_eq!(metadata["size"], json!(100000.0));
    assert_eq!(metadata["contentType"], "image/png");
    assert_eq!(
        format!("\"{}\"", metadata["sha256"].as_str().unwrap()),
        etag
    );

    let (status, headers, body) = get(&file_url, &[("Range", "bytes=10-19")]);
    assert_eq!(status, 206);
    assert_eq!(headers["content-range"], "bytes 10-19/100000");
    assert_eq!(body, &image[10..20]);
    let (status, headers, _) = get(&file_url, &[("Range", "bytes=200000-")]);
    assert_eq!(status, 416);
    assert_eq!(headers["content-range"], "bytes */100000");
    let (status, _, body) = get(&file_url, &[("If-None-Match", &etag)]);
    assert_eq!((status, body.len()), (304, 0));
}

#[test]
fn upload_tokens_are_single_use_and_unforgeable() {
    let server = photos_server(None);
    let url = upload_url(&server);
    let (status, answer) = post(&url, b"first", &[]);
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post(&url, b"second", &[]);
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("used already"),
        "{answer}"
    );

    let forged = format!(
        "{}/api/storage/upload?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        server.url
    );
    let (status, answer) = post(&forged, b"x", &[]);
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("not one this server made"),
        "{answer}"
    );
    let (status, _) = post(&format!("{}/api/storage/upload", server.url), b"x", &[]);
    assert_eq!(status, 401);
    assert_eq!(storage_records(&server), 1);
    assert_eq!(files_in(&server, "blobs"), 1);
}

#[test]
fn a_wrong_digest_or_a_file_over_the_limit_stores_nothing() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let server = photos_server(Some("[limits]\nmax_file_bytes = 1000\n"));
    let wrong = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(b"other"));
    let (status, answer) = post(
        &upload_url(&server),
        b"hello",
        &[("Digest", &format!("sha-256={wrong}"))],
    );
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], "DigestMismatch");
    let right = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(b"hello"));
    let (status, answer) = post(
        &upload_url(&server),
        b"hello",
        &[("Digest", &format!("sha-256={right}"))],
    );
    assert_eq!(status, 200, "{answer}");

    let (status, answer) = post(&upload_url(&server), &[7u8; 1001], &[]);
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("max_file_bytes"),
        "{answer}"
    );
    assert_eq!(storage_records(&server), 1);
    assert_eq!(files_in(&server, "blobs"), 1);
    assert_eq!(files_in(&server, "tmp"), 0);
}

#[test]
fn actions_store_and_get_bytes_and_a_delete_removes_the_file() {
    let server = photos_server(None);
    let id = server.value(
        "action",
        "photos:storeText",
        json!({ "text": "hello storage", "contentType": "text/plain" }),
    );
    let read = server.value("action", "photos:read", json!({ "storageId": id }));
    assert_eq!(
        read,
        json!({ "text": "hello storage", "contentType": "text/plain" })
    );
    let url = format!("{}/api/storage/{}", server.url, id.as_str().unwrap());
    let (status, _, body) = get(&url, &[]);
    assert_eq!(
        (status, body.as_slice()),
        (200, b"hello storage".as_slice())
    );

    // Two records of equal content share one file; it goes with the last of them.
    let twin = server.value(
        "action",
        "photos:storeText",
        json!({ "text": "hello storage", "contentType": "text/plain" }),
    );
    assert_eq!(files_in(&server, "blobs"), 1);
    server.value("action", "photos:deleteFile", json!({ "storageId": id }));
    let (status, _, _) = get(&url, &[]);
    assert_eq!(status, 404);
    assert_eq!(
        server.value("action", "photos:read", json!({ "storageId": id })),
        Json::Null
    );
    assert_eq!(files_in(&server, "blobs"), 1);

    // From a mutation: the record goes with the commit, the file after it.
    let photo = server.value(
        "mutation",
        "photos:send",
        json!({ "storageId": twin, "author": "b" }),
    );
    server.value("mutation", "photos:remove", json!({ "id": photo }));
    assert_eq!(files_in(&server, "blobs"), 0);
    assert_eq!(storage_records(&server), 0);
    let (status, _, _) = get(&format!("{}/api/storage/nonsense", server.url), &[]);
    assert_eq!(status, 404);

    let refused = server.value("query", "photos:forbiddenInQuery", json!({}));
    let refused: Vec<&str> = refused
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(refused[0].contains("not allowed in a query"), "{refused:?}");
    assert!(
        refused[1].contains("only available in actions"),
        "{refused:?}"
    );
    assert!(
        refused[2].contains("only available in actions"),
        "{refused:?}"
    );
}

#[test]
fn a_crash_during_an_upload_leaves_no_record_and_no_file() {
    let mut server = photos_server(None);
    let url = upload_url(&server);
    let path = url.trim_start_matches(&server.url).to_string();
    let address = server.url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    let length = 50 << 20;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
    )
    .unwrap();
    // Half the body, then wait until the server has written some of it to disk.
    let chunk = vec![1u8; 1 << 20];
    for _ in 0..25 {
        stream.write_all(&chunk).unwrap();
    }
    let tmp = server.data.join("storage").join("tmp");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let written: u64 = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|entry| entry.unwrap().metadata().unwrap().len())
            .sum();
        if written > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing reached the disk"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The upload in flight holds up nobody.
    assert_eq!(server.value("query", "photos:list", json!({})), json!([]));
    server.kill();
    drop(stream);
    server.start_again();
    assert_eq!(files_in(&server, "tmp"), 0);
    assert_eq!(files_in(&server, "blobs"), 0);
    assert_eq!(storage_records(&server), 0);
    // And storage works after the restart.
    let (status, answer) = post(&upload_url(&server), b"after", &[]);
    assert_eq!(status, 200, "{answer}");
}

/// The JavaScript photos example through Convex's own `ctx.storage`: an upload URL from a
/// mutation, `getUrl` in a query, `store`/`get` with Blobs in actions, `db.system` reads of
/// `_storage`, and a delete.
#[test]
fn the_javascript_photos_app_uploads_serves_stores_and_deletes() {
    let server = Server::start();
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../components/js/photos.js"),
    )
    .unwrap();
    let (status, report) = server.deploy_js(&[("photos.js", &source)]);
    assert_eq!(status, 200, "{report}");
    let url = upload_url(&server);
    let (status, answer) = post(&url, b"<svg/>", &[("Content-Type", "image/svg+xml")]);
    assert_eq!(status, 200, "{answer}");
    let storage_id = answer["storageId"].clone();
    let photo = server.value(
        "mutation",
        "photos:send",
        json!({ "storageId": storage_id, "author": "ada" }),
    );
    let listed = server.value("query", "photos:list", json!({}));
    let file_url = listed[0]["url"].as_str().unwrap().to_string();
    let (status, headers, body) = get(&file_url, &[]);
    assert_eq!((status, body.as_slice()), (200, b"<svg/>".as_slice()));
    assert_eq!(headers["content-type"], "image/svg+xml");
    let record = server.value(
        "query",
        "photos:metadata",
        json!({ "storageId": storage_id }),
    );
    assert_eq!(record["size"], json!(6.0), "{record}");
    assert_eq!(record["contentType"], "image/svg+xml");

    let stored = server.value(
        "action",
        "photos:storeText",
        json!({ "text": "from a blob", "contentType": "text/plain" }),
    );
    let read = server.value("action", "photos:read", json!({ "storageId": stored }));
    assert_eq!(
        read,
        json!({ "text": "from a blob", "contentType": "text/plain" })
    );

    server.value("mutation", "photos:remove", json!({ "id": photo }));
    let (status, _, _) = get(&file_url, &[]);
    assert_eq!(status, 404);
    assert_eq!(files_in(&server, "blobs"), 1);
}

#[test]
fn the_official_clients_upload_flow_works() {
    let server = photos_server(None);
    let (_, result) = crate::support::run_client_script("storage.mjs", &[server.url.as_str()]);
    assert_eq!(
        result,
        json!({
            "uploadStatus": 200,
            "author": "official client",
            "servedStatus": 200,
            "servedType": "image/png",
            "sameBytes": true,
        })
    );
}

#[test]
fn an_expired_upload_url_is_refused() {
    let server = Server::start_with(None, &[("KILN_FAILPOINT_UPLOAD_TOKENS", "expired")]);
    server.deploy_ok(&[("photos", &component("photos"))]);
    let (status, answer) = post(&upload_url(&server), b"late", &[]);
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("expired"),
        "{answer}"
    );
    assert_eq!(files_in(&server, "blobs"), 0);
}

#[test]
fn an_action_fetches_an_image_and_stores_it_within_its_storage_budget() {
    let origin = crate::fetch::Origin::start("127.0.0.1");
    let config = format!(
        "{}\n[limits]\nmax_action_storage_bytes = 64\n",
        crate::fetch::ALLOW_LOOPBACK
    );
    let server = photos_server(Some(&config));
    let id = server.value(
        "action",
        "photos:fetchAndStore",
        json!({ "url": origin.url("/hello"), "author": "bot" }),
    );
    let listed = server.value("query", "photos:list", json!({}));
    assert_eq!(listed[0]["author"], "bot");
    let (status, headers, body) = get(listed[0]["url"].as_str().unwrap(), &[]);
    assert_eq!(
        (status, body.as_slice()),
        (200, b"hello from the origin".as_slice())
    );
    assert_eq!(headers["content-type"], "text/plain");
    // Each call has a budget of its own: reading the 21 bytes back fits; storing 65 does not.
    server.value("action", "photos:read", json!({ "storageId": id }));
    let message = server.error(
        "action",
        "photos:storeText",
        json!({ "text": "x".repeat(65) }),
    );
    assert!(message.contains("max_action_storage_bytes"), "{message}");
}

/// A crash after a file is moved into place but before its record commits: the file is
/// removed when the server starts again.
#[test]
fn a_file_whose_record_never_committed_is_removed_at_start() {
    let mut server = Server::start_with(None, &[("KILN_FAILPOINT_STORAGE", "crash-before-record")]);
    server.deploy_ok(&[("photos", &component("photos"))]);
    let url = upload_url(&server);
    // The server aborts in the middle of answering.
    let _ = agent().post(&url).send(&b"orphan"[..]);
    server.kill();
    assert_eq!(
        files_in(&server, "blobs"),
        1,
        "the file was moved into place"
    );
    server.start_again();
    assert_eq!(files_in(&server, "blobs"), 0);
    assert_eq!(storage_records(&server), 0);
}
