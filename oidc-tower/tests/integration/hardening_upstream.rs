//! The reverse proxy in front of an upstream that misbehaves at the TCP level, over real sockets
//! on 127.0.0.1: refusing, resetting, hanging, speaking garbage, or dying mid-body.
//!
//! What must hold: each failure is a 502 or 504 with a plain-text body naming the stable code,
//! it costs at most the configured timeout, the proxy keeps serving the next request, and no
//! task is left behind.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::hardening_support::{alive_tasks, eventually};
use crate::proxy_common::{Server, client, empty, get, spawn_server};
use http::StatusCode;
use http_body_util::BodyExt as _;
use oidc_tower::proxy::ReverseProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the hostile upstream treats each connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Behaviour {
    /// A correct `200 OK` with body `fine`.
    Healthy = 0,
    /// Reads the request, then closes with a TCP reset.
    Reset = 1,
    /// Reads the request, then closes without a word.
    Close = 2,
    /// Reads the request and never answers (the connection stays open).
    Hang = 3,
    /// Answers bytes that are not HTTP.
    Garbage = 4,
    /// Announces 1000 body bytes, sends 10, closes.
    TruncatedBody = 5,
    /// Answers an absurd status line and an endless header.
    EndlessHeader = 6,
}

struct HostileUpstream {
    addr: SocketAddr,
    behaviour: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileUpstream {
    async fn start() -> HostileUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let behaviour = Arc::new(AtomicU8::new(Behaviour::Healthy as u8));
        let shared = behaviour.clone();
        // Connections live in the accept task's JoinSet, so aborting it closes them all.
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.spawn(handle(stream, shared.clone()));
                while connections.try_join_next().is_some() {}
            }
        });
        HostileUpstream {
            addr,
            behaviour,
            task,
        }
    }

    fn set(&self, behaviour: Behaviour) {
        self.behaviour.store(behaviour as u8, Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for HostileUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request_head(stream: &mut TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

async fn handle(mut stream: TcpStream, behaviour: Arc<AtomicU8>) {
    loop {
        if !read_request_head(&mut stream).await {
            return;
        }
        match behaviour.load(Ordering::SeqCst) {
            0 => {
                let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nfine";
                if stream.write_all(reply).await.is_err() {
                    return;
                }
            }
            1 => {
                // A zero linger makes the close a reset; it does not block when the timeout is 0.
                #[allow(deprecated)]
                let _ = stream.set_linger(Some(Duration::ZERO));
                return;
            }
            2 => return,
            3 => {
                // Hold the connection until the peer goes away.
                let mut buf = [0u8; 64];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                }
                return;
            }
            4 => {
                let _ = stream
                    .write_all(b"\x00\x01\x02 SSH-2.0-nonsense\r\n\r\n")
                    .await;
                return;
            }
            5 => {
                let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789";
                let _ = stream.write_all(head).await;
                return;
            }
            _ => {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nx-endless: ").await;
                let chunk = vec![b'a'; 16 << 10];
                for _ in 0..1024 {
                    if stream.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                return;
            }
        }
    }
}

async fn proxy_to(upstream: &str) -> Server {
    let proxy = ReverseProxy::builder(upstream)
        .response_timeout(Duration::from_millis(400))
        .connect_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    spawn_server(proxy).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_upstream_failure_is_a_clear_502_or_504_and_the_proxy_recovers() {
    let upstream = HostileUpstream::start().await;
    let proxy = proxy_to(&upstream.url()).await;
    let url = format!("{}/api/2.0/mlflow/runs/get?run_id=1", proxy.url());
    let (status, _, body) = get(&url).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "fine"));
    let baseline = alive_tasks();

    let cases = [
        (
            Behaviour::Reset,
            StatusCode::BAD_GATEWAY,
            "(upstream_failed)",
        ),
        (
            Behaviour::Close,
            StatusCode::BAD_GATEWAY,
            "(upstream_failed)",
        ),
        (
            Behaviour::Garbage,
            StatusCode::BAD_GATEWAY,
            "(upstream_failed)",
        ),
        (
            Behaviour::EndlessHeader,
            StatusCode::BAD_GATEWAY,
            "(upstream_failed)",
        ),
        (
            Behaviour::Hang,
            StatusCode::GATEWAY_TIMEOUT,
            "(upstream_timeout)",
        ),
    ];
    for (behaviour, expected_status, expected_code) in cases {
        upstream.set(behaviour);
        let started = Instant::now();
        let (status, headers, body) = get(&url).await;
        assert_eq!(status, expected_status, "{behaviour:?}: {body}");
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        assert!(
            body.trim_end().ends_with(expected_code),
            "{behaviour:?}: {body}"
        );
        assert!(
            body.contains(&upstream.url()),
            "{behaviour:?}: the body names the upstream: {body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{behaviour:?} took {:?}",
            started.elapsed()
        );
        // The very next request, to a healthy upstream again, goes through.
        upstream.set(Behaviour::Healthy);
        let (status, _, body) = get(&url).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "fine"),
            "after {behaviour:?}"
        );
    }
    let settled = eventually(Duration::from_secs(3), || alive_tasks() <= baseline + 4).await;
    assert!(settled, "tasks: {baseline} -> {}", alive_tasks());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_short_by_the_upstream_is_cut_short_for_the_client_only() {
    let upstream = HostileUpstream::start().await;
    let proxy = proxy_to(&upstream.url()).await;
    let url = format!("{}/artifact", proxy.url());
    upstream.set(Behaviour::TruncatedBody);
    let response = client()
        .request(http::Request::get(&url).body(empty()).unwrap())
        .await
        .unwrap();
    // Headers were already sent: the status cannot change, but the client must see the body
    // end in an error rather than a silently short file.
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.into_body().collect().await.is_err());
    upstream.set(Behaviour::Healthy);
    let (status, _, body) = get(&url).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "fine"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_then_back_needs_no_restart_of_the_proxy() {
    let upstream = HostileUpstream::start().await;
    let upstream_addr = upstream.addr;
    let proxy = proxy_to(&upstream.url()).await;
    let url = format!("{}/ping", proxy.url());
    assert_eq!(get(&url).await.0, StatusCode::OK);
    drop(upstream);
    // The listener task is gone, the port is closed: pooled connections break, new ones are refused.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..5 {
        let (status, _, body) = get(&url).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert!(
            body.ends_with("(upstream_connect_failed)\n") || body.ends_with("(upstream_failed)\n"),
            "{body}"
        );
    }
    // The upstream comes back on the same address.
    let listener = TcpListener::bind(upstream_addr).await.unwrap();
    let behaviour = Arc::new(AtomicU8::new(Behaviour::Healthy as u8));
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stream, behaviour.clone()));
        }
    });
    let (status, _, body) = get(&url).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "fine"));
    server.abort();
}

/// A hundred requests to an upstream that never answers: all get their 504 at the response
/// timeout, together, and the tasks they used are gone afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_to_a_hung_upstream_time_out_together() {
    let upstream = HostileUpstream::start().await;
    upstream.set(Behaviour::Hang);
    let proxy = proxy_to(&upstream.url()).await;
    let baseline = alive_tasks();
    let started = Instant::now();
    let mut requests = Vec::new();
    for i in 0..100 {
        let url = format!("{}/hang/{i}", proxy.url());
        requests.push(tokio::spawn(async move { get(&url).await }));
    }
    for request in requests {
        let (status, _, body) = request.await.unwrap();
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(upstream);
    let settled = eventually(Duration::from_secs(5), || alive_tasks() <= baseline + 4).await;
    assert!(settled, "tasks: {baseline} -> {}", alive_tasks());
}
