//! SIGTERM under load: the proxy served with [`shutdown_signal`] stops accepting, lets every
//! request already forwarded finish, and answers none of them with a 5xx of its own.
//!
//! This is its own test binary because it sends SIGTERM to its own process.

mod proxy_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use oidc_tower::proxy::{ReverseProxy, serve, shutdown_signal};
use proxy_common::{client, empty, spawn_server};

#[derive(Default)]
struct UpstreamCounts {
    started: AtomicU64,
    finished: AtomicU64,
}

#[derive(Default)]
struct ClientCounts {
    ok: AtomicU64,
    server_errors: AtomicU64,
    other_status: AtomicU64,
    /// The connection was refused or closed before a response: allowed only after the signal.
    not_sent_after_signal: AtomicU64,
    not_sent_before_signal: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_in_flight_requests_without_5xx() {
    let counts = Arc::new(UpstreamCounts::default());
    let upstream_counts = counts.clone();
    let upstream = spawn_server(tower::service_fn(move |_request: Request<Incoming>| {
        let counts = upstream_counts.clone();
        async move {
            counts.started.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            counts.finished.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::convert::Infallible>(Response::new(
                http_body_util::Full::new(bytes::Bytes::from_static(b"done"))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            ))
        }
    }))
    .await;

    let proxy = ReverseProxy::builder(upstream.url()).build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(serve(listener, proxy, shutdown_signal()));

    let signalled = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(ClientCounts::default());
    let mut clients = Vec::new();
    for worker in 0..40 {
        let (url, signalled, tally) = (proxy_url.clone(), signalled.clone(), tally.clone());
        clients.push(tokio::spawn(async move {
            let client = client();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                let before_signal = !signalled.load(Ordering::SeqCst);
                let request = Request::get(format!("{url}/work/{worker}"))
                    .body(empty())
                    .unwrap();
                match client.request(request).await {
                    Ok(response) => {
                        let status = response.status();
                        let body: Result<_, _> = response.into_body().collect().await;
                        assert!(body.is_ok(), "a started response was cut");
                        let counter = if status == StatusCode::OK {
                            &tally.ok
                        } else if status.is_server_error() {
                            &tally.server_errors
                        } else {
                            &tally.other_status
                        };
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) if before_signal && !signalled.load(Ordering::SeqCst) => {
                        tally.not_sent_before_signal.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => {
                        tally.not_sent_after_signal.fetch_add(1, Ordering::SeqCst);
                        // The proxy is gone; stop hammering the closed port.
                        break;
                    }
                }
            }
        }));
    }

    // Let the load build up, then signal while requests are in flight at the upstream.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let in_flight = counts.started.load(Ordering::SeqCst) - counts.finished.load(Ordering::SeqCst);
    assert!(
        in_flight > 0,
        "requests were in flight when the signal came"
    );
    signalled.store(true, Ordering::SeqCst);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    // `serve` returns once the drain is over.
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the proxy drained and stopped")
        .unwrap()
        .unwrap();
    for client in clients {
        client.await.unwrap();
    }

    let ok = tally.ok.load(Ordering::SeqCst);
    assert_eq!(tally.server_errors.load(Ordering::SeqCst), 0);
    assert_eq!(tally.other_status.load(Ordering::SeqCst), 0);
    assert_eq!(tally.not_sent_before_signal.load(Ordering::SeqCst), 0);
    // Every request the upstream started was finished and its answer reached the client.
    assert_eq!(
        counts.started.load(Ordering::SeqCst),
        counts.finished.load(Ordering::SeqCst)
    );
    assert_eq!(ok, counts.finished.load(Ordering::SeqCst));
    assert!(ok >= 80, "{ok} requests completed");
    eprintln!(
        "SIGTERM with {in_flight} in flight: {ok} completed, {} refused after the signal",
        tally.not_sent_after_signal.load(Ordering::SeqCst)
    );
}
