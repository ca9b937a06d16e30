//! The `sync` section (issue 12): 1 000 subscribers to one query over 50 WebSockets, one
//! mutation that changes its result — the time until every subscriber has the update
//! (median and p99 over subscribers), the query executions it took, and the server's
//! memory per subscription; then a commit that touches nothing subscribed, and the query
//! re-runs it caused (0 is right).

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value as Json, json};
use tokio_tungstenite::tungstenite::Message;

use super::{ADMIN_KEY, KilnServer};

const CONNECTIONS: usize = 50;
const QUERIES_PER_CONNECTION: usize = 20;
const CHANNEL: &str = "bench-sync";

pub(crate) type Socket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(kiln: &KilnServer) -> anyhow::Result<Socket> {
    let stream = tokio::net::TcpStream::connect(kiln.address).await?;
    let url = format!("ws://{}/api/1.48.0/sync", kiln.address);
    let (socket, _) = tokio_tungstenite::client_async(url, stream).await?;
    Ok(socket)
}

/// The next Transition on `socket` (skipping Pings), with its modifications.
pub(crate) async fn next_transition(socket: &mut Socket) -> anyhow::Result<Json> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the socket closed"))??;
        if let Message::Text(text) = frame {
            let message: Json = serde_json::from_str(text.as_str())?;
            match message["type"].as_str() {
                Some("Transition") => return Ok(message),
                Some("Ping") => {}
                _ => anyhow::bail!("unexpected message: {message}"),
            }
        }
    }
}

fn stats(kiln: &KilnServer) -> anyhow::Result<Json> {
    let mut response = ureq::get(format!("http://{}/api/sync_stats", kiln.address))
        .header("Authorization", format!("Convex {ADMIN_KEY}"))
        .call()?;
    Ok(serde_json::from_str(
        &response.body_mut().read_to_string()?,
    )?)
}

fn resident_kib(kiln: &KilnServer) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", kiln.child.id()))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/<pid>/status"))
}

fn send(kiln: &KilnServer, channel: &str) -> anyhow::Result<()> {
    kiln.call(
        "/api/mutation",
        &json!({"path": "messages:send", "args": {"channel": channel, "author": "b", "body": "x"}})
            .to_string(),
    )?;
    Ok(())
}

pub async fn sync_figures(kiln: &KilnServer) -> anyhow::Result<()> {
    println!(
        "== sync: {} subscribers to one query over {CONNECTIONS} WebSockets ==",
        CONNECTIONS * QUERIES_PER_CONNECTION
    );
    let before_kib = resident_kib(kiln)?;
    let mut sockets = Vec::with_capacity(CONNECTIONS);
    for connection in 0..CONNECTIONS {
        let mut socket = connect(kiln).await?;
        let adds: Vec<Json> = (0..QUERIES_PER_CONNECTION)
            .map(|query_id| {
                json!({"type": "Add", "queryId": query_id, "udfPath": "messages:list", "args": [{"channel": CHANNEL}]})
            })
            .collect();
        for message in [
            json!({"type": "Connect", "sessionId": format!("bench-{connection}"), "connectionCount": 0, "lastCloseReason": "InitialConnect", "clientTs": 0}),
            json!({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": adds}),
        ] {
            socket.send(Message::text(message.to_string())).await?;
        }
        let first = next_transition(&mut socket).await?;
        anyhow::ensure!(
            first["modifications"].as_array().map(Vec::len) == Some(QUERIES_PER_CONNECTION),
            "the first transition holds every query: {first}"
        );
        sockets.push(socket);
    }
    let subscribed_kib = resident_kib(kiln)?;
    let subscribers = CONNECTIONS * QUERIES_PER_CONNECTION;
    println!(
        "server memory per subscription: {:.2} KiB ({:.1} MiB for {subscribers}, WebSockets included)",
        (subscribed_kib - before_kib) / subscribers as f64,
        (subscribed_kib - before_kib) / 1024.0
    );

    let runs_before = stats(kiln)?["queryExecutions"].as_u64().unwrap_or(0);
    let started = Instant::now();
    send(kiln, CHANNEL)?;
    let mut latencies = Vec::with_capacity(subscribers);
    let waits = sockets.iter_mut().map(|socket| async move {
        loop {
            let transition = next_transition(socket).await?;
            let updated = transition["modifications"]
                .as_array()
                .map_or(0, |modifications| modifications.len());
            if updated == QUERIES_PER_CONNECTION {
                return anyhow::Ok(started.elapsed());
            }
        }
    });
    for latency in futures_util::future::join_all(waits).await {
        let latency = latency?;
        latencies.extend(std::iter::repeat_n(latency, QUERIES_PER_CONNECTION));
    }
    latencies.sort();
    let micros = |at: f64| latencies[((latencies.len() - 1) as f64 * at) as usize].as_micros();
    let runs = stats(kiln)?["queryExecutions"].as_u64().unwrap_or(0) - runs_before;
    println!(
        "one mutation → every subscriber updated: median {} µs, p99 {} µs, last {} µs; query executions: {runs}",
        micros(0.5),
        micros(0.99),
        micros(1.0)
    );

    // A commit elsewhere: wait until the invalidator has checked it, then count re-runs.
    let before = stats(kiln)?;
    send(kiln, "another-channel")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let now = stats(kiln)?;
        if now["commitsChecked"].as_u64() > before["commitsChecked"].as_u64()
            || Instant::now() > deadline
        {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let delta = |field: &str| {
        after[field].as_u64().unwrap_or(0) as i64 - before[field].as_u64().unwrap_or(0) as i64
    };
    println!(
        "a commit touching nothing subscribed: {} query re-runs, {} subscriptions invalidated",
        delta("queryExecutions"),
        delta("subscriptionsInvalidated")
    );
    for mut socket in sockets {
        let _ = socket.close(None).await;
    }
    Ok(())
}
