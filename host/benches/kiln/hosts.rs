//! The `hosts` section (issue 15): the same load on one host over redb, one host over
//! PostgreSQL, and two hosts over one PostgreSQL database, in the same run; then how long
//! a subscriber on one host waits for a mutation made on the other. The PostgreSQL server
//! is `KILN_BENCH_POSTGRES` (a throwaway one `cargo xtask bench` starts); each
//! configuration gets a database of its own there.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt as _;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value as Json, json};
use tokio_tungstenite::tungstenite::Message;

use super::{KilnServer, post, requests_per_second_spread};

/// Rounds of the fan-out measurement.
const FAN_OUT_ROUNDS: usize = 30;

/// A new empty database on the PostgreSQL server at `server`, as a URL.
fn new_database(server: &str, name: &str) -> anyhow::Result<String> {
    let output = Command::new("psql")
        .arg(server)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        // Two commands: psql would send one string as one transaction, and neither may
        // run inside one.
        .arg(format!("DROP DATABASE IF EXISTS {name}"))
        .arg("-c")
        .arg(format!("CREATE DATABASE {name}"))
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "cannot create the database {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (base, _) = server
        .rsplit_once('/')
        .ok_or_else(|| anyhow::anyhow!("a database URL ends in /database"))?;
    Ok(format!("{base}/{name}"))
}

fn send() -> Request<Full<Bytes>> {
    post(
        "/api/mutation",
        r#"{"path":"messages:send","args":{"channel":"load","author":"bench","body":"hello"}}"#,
    )
}

pub async fn hosts_figures(trivial: fn() -> Request<Full<Bytes>>) -> anyhow::Result<()> {
    let Ok(postgres) = std::env::var("KILN_BENCH_POSTGRES") else {
        println!("== hosts: skipped (no KILN_BENCH_POSTGRES; `cargo xtask bench` starts one) ==");
        return Ok(());
    };
    println!("== hosts: redb, PostgreSQL, two hosts over one PostgreSQL ==");
    let redb = KilnServer::start(None)?;
    let one = KilnServer::start_over(&new_database(&postgres, "kiln_bench_one")?)?;
    let shared = new_database(&postgres, "kiln_bench_two")?;
    let first = KilnServer::start_over(&shared)?;
    let second = KilnServer::start_bare(None, Some(&shared))?;
    let configurations: [(&str, Vec<SocketAddr>); 3] = [
        ("1 host, redb      ", vec![redb.address]),
        ("1 host, PostgreSQL", vec![one.address]),
        ("2 hosts, PostgreSQL", vec![first.address, second.address]),
    ];
    for (name, addresses) in &configurations {
        let mutations = requests_per_second_spread(addresses, 32, send).await?;
        let queries = requests_per_second_spread(addresses, 16, trivial).await?;
        println!(
            "{name}: messages:send (32 clients) {mutations:>7.0} mutations/s   trivial query (16 clients) {queries:>7.0} req/s"
        );
    }
    drop((redb, one));

    let across = fan_out(&first, &second).await?;
    let same = fan_out(&first, &first).await?;
    let at = |latencies: &[Duration], q: f64| {
        latencies[((latencies.len() - 1) as f64 * q) as usize].as_micros()
    };
    println!(
        "a mutation on host B → a subscriber on host A updated: median {} µs, p99 {} µs ({FAN_OUT_ROUNDS} rounds; on the same host: median {} µs)",
        at(&across, 0.5),
        at(&across, 0.99),
        at(&same, 0.5),
    );
    Ok(())
}

/// Subscribes to `messages:list` on `subscriber`, then `FAN_OUT_ROUNDS` times sends a
/// message through `writer` and times the update's arrival; sorted latencies.
async fn fan_out(subscriber: &KilnServer, writer: &KilnServer) -> anyhow::Result<Vec<Duration>> {
    let channel = format!("fan-out-{}", writer.address.port());
    let stream = tokio::net::TcpStream::connect(subscriber.address).await?;
    let url = format!("ws://{}/api/1.48.0/sync", subscriber.address);
    let (mut socket, _) = tokio_tungstenite::client_async(url, stream).await?;
    for message in [
        json!({"type": "Connect", "sessionId": "bench-hosts", "connectionCount": 0, "lastCloseReason": "InitialConnect", "clientTs": 0}),
        json!({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
            {"type": "Add", "queryId": 0, "udfPath": "messages:list", "args": [{"channel": channel}]}
        ]}),
    ] {
        socket.send(Message::text(message.to_string())).await?;
    }
    next_update(&mut socket).await?;
    let mut latencies = Vec::with_capacity(FAN_OUT_ROUNDS);
    for _ in 0..FAN_OUT_ROUNDS {
        let started = Instant::now();
        writer.call(
            "/api/mutation",
            &json!({"path": "messages:send", "args": {"channel": channel, "author": "b", "body": "x"}})
                .to_string(),
        )?;
        next_update(&mut socket).await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    Ok(latencies)
}

/// The next Transition that changes a query's value.
async fn next_update(socket: &mut super::sync::Socket) -> anyhow::Result<Json> {
    loop {
        let transition = super::sync::next_transition(socket).await?;
        if transition["modifications"]
            .as_array()
            .is_some_and(|modifications| !modifications.is_empty())
        {
            return Ok(transition);
        }
    }
}
