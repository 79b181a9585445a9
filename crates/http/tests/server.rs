//! The listener's limits against the clients hostile testing used: idle and slowloris
//! connections, a dripped body, more connections than the cap, oversized heads, a path that
//! is not UTF-8. Raw TCP, so the test sees exactly what the server sends and when it closes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Path};
use axum::routing::{get, post};
use skyport_http::server::{Limits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: Limits) -> Server {
        let routes = Router::new()
            .route(
                "/items/{id}",
                get(|Path(id): Path<String>| async move { id }),
            )
            .route(
                "/peer",
                get(|ConnectInfo(a): ConnectInfo<SocketAddr>| async move { a.ip().to_string() }),
            )
            .route("/echo", post(|body: String| async move { body }));
        let app = skyport_http::app(routes);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, app, limits, stop.clone()));
        Server { addr, stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
    }
}

fn limits() -> Limits {
    Limits {
        max_connections: 64,
        header_read_timeout: Duration::from_millis(600),
        io_timeout: Duration::from_millis(800),
    }
}

/// Reads until the server closes; returns what it sent and how long that took. Panics if the
/// server keeps the connection open longer than `within`.
async fn until_closed(s: &mut TcpStream, within: Duration) -> (String, Duration) {
    let t = Instant::now();
    let mut out = Vec::new();
    tokio::time::timeout(within, s.read_to_end(&mut out))
        .await
        .expect("the server kept the connection open")
        .ok();
    (String::from_utf8_lossy(&out).into_owned(), t.elapsed())
}

/// A connection to `addr` on which `raw` has been sent.
async fn sent(addr: SocketAddr, raw: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    s
}

/// The head of a POST to `/echo` announcing `length` bytes, with the `extra` header lines, and
/// the first bytes of its body.
fn echo(length: usize, extra: &str, first: &str) -> Vec<u8> {
    let head = format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n{extra}\r\n");
    [head.as_bytes(), first.as_bytes()].concat()
}

async fn request(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = sent(addr, raw).await;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("no answer")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

fn body_of(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("")
}

#[tokio::test]
async fn idle_and_slowloris_connections_are_closed() {
    let srv = Server::start(limits()).await;
    // Idle: connect and say nothing.
    let mut idle = TcpStream::connect(srv.addr).await.unwrap();
    // Slowloris: half a head, then a byte now and then, never finishing it.
    let mut slow = sent(srv.addr, b"GET /peer HTTP/1.1\r\nHost: x\r\n").await;
    let drip = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            if slow.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    drip.await;
    let (_, _) = until_closed(&mut slow, Duration::from_secs(5)).await;
    let (_, _) = until_closed(&mut idle, Duration::from_secs(5)).await;
    // Keep-alive: one answered request, then silence; the connection is closed too.
    let mut ka = sent(srv.addr, b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (got, _) = until_closed(&mut ka, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        got.ends_with("127.0.0.1"),
        "ConnectInfo carries the peer: {got}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_dripped_body_is_cut_off() {
    let srv = Server::start(limits()).await;
    let mut s = sent(srv.addr, &echo(100, "", "abc")).await;
    let (_, took) = until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(
        took >= Duration::from_millis(700),
        "closed before the I/O timeout: {took:?}"
    );
    // A body that keeps coming in time is read whole.
    let mut s = sent(srv.addr, &echo(6, "Connection: close\r\n", "abc")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.write_all(b"def").await.unwrap();
    let (got, _) = until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(
        got.starts_with("HTTP/1.1 200") && got.ends_with("abcdef"),
        "{got}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_for_a_slot() {
    let srv = Server::start(Limits {
        max_connections: 2,
        header_read_timeout: Duration::from_secs(30),
        io_timeout: Duration::from_secs(30),
    })
    .await;
    let held: Vec<TcpStream> = vec![
        TcpStream::connect(srv.addr).await.unwrap(),
        TcpStream::connect(srv.addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The kernel completes the handshake (backlog), but the server does not take the third
    // connection while two are open.
    let mut third = sent(
        srv.addr,
        b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the third connection was served over the cap"
    );
    drop(held);
    let (got, _) = until_closed(&mut third, Duration::from_secs(5)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    srv.stop().await;
}

#[tokio::test]
async fn oversized_heads_and_bad_paths_answer_problem_json() {
    let srv = Server::start(limits()).await;
    let long = format!(
        "GET /items/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(9000)
    );
    let r = request(srv.addr, long.as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 414"), "{r}");
    assert!(r.contains("application/problem+json"), "{r}");
    let p: serde_json::Value = serde_json::from_str(body_of(&r)).unwrap();
    assert_eq!(p["status"], 414);

    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = request(
        srv.addr,
        format!("GET /peer HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    let p: serde_json::Value = serde_json::from_str(body_of(&r)).unwrap();
    assert_eq!(p["status"], 431);

    let big = format!("X-Big: {}\r\n", "b".repeat(40 * 1024));
    let r = request(
        srv.addr,
        format!("GET /peer HTTP/1.1\r\nHost: x\r\n{big}Connection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    assert!(r.contains("application/problem+json"), "{r}");

    // A path segment that is not UTF-8: axum's rejection is text/plain; the client gets
    // problem JSON with its text.
    let r = request(
        srv.addr,
        b"GET /items/%FF%FE HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert!(r.contains("application/problem+json"), "{r}");
    let p: serde_json::Value = serde_json::from_str(body_of(&r)).unwrap();
    assert_eq!(p["status"], 400);
    assert!(p["detail"].as_str().unwrap().contains("UTF-8"), "{p}");
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let srv = Server::start(limits()).await;
    let mut s = sent(srv.addr, &echo(4, "", "ab")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    srv.stop.cancel();
    s.write_all(b"cd").await.unwrap();
    let (got, _) = until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(
        got.starts_with("HTTP/1.1 200") && got.ends_with("abcd"),
        "{got}"
    );
    tokio::time::timeout(Duration::from_secs(15), srv.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
