//! A body that stops moving is cut off after the idle timeout, on real sockets on 127.0.0.1:
//! an upstream that stalls mid-download, a client that stalls mid-upload and a client that stops
//! reading a download each release their connection instead of holding it forever, while a slow
//! body that keeps moving is not cut.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use crate::proxy_common::{client, count_body, empty, spawn_server, spawn_upstream};
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use oidc_tower::proxy::{BoxError, ProxyBody, ReverseProxy, serve_with_stall_timeout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const IDLE: Duration = Duration::from_millis(400);

/// `/stall`: one chunk, then nothing ever again. `/trickle`: ten chunks 150 ms apart.
async fn stalling_upstream(request: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
    let trickle = request.uri().path() == "/trickle";
    let first = futures_util::stream::once(async { Bytes::from_static(b"first chunk") });
    let body: ProxyBody = if trickle {
        let chunks = futures_util::stream::iter(0..10).then(|_| async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            Bytes::from_static(b"0123456789")
        });
        StreamBody::new(
            first
                .chain(chunks)
                .map(|bytes| Ok::<_, BoxError>(Frame::data(bytes))),
        )
        .boxed_unsync()
    } else {
        StreamBody::new(
            first
                .chain(futures_util::stream::pending())
                .map(|bytes| Ok::<_, BoxError>(Frame::data(bytes))),
        )
        .boxed_unsync()
    };
    Ok(Response::new(body))
}

#[tokio::test]
async fn a_stalled_upstream_body_is_cut_off_and_a_moving_one_is_not() {
    let upstream = spawn_server(tower::service_fn(stalling_upstream)).await;
    let proxy = spawn_server(
        ReverseProxy::builder(upstream.url())
            .body_idle_timeout(IDLE)
            .build()
            .unwrap(),
    )
    .await;

    let response = client()
        .request(
            Request::get(format!("{}/stall", proxy.url()))
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let started = Instant::now();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first chunk");
    let end = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("the stalled body was not cut off");
    assert!(
        !matches!(end, Some(Ok(_))),
        "no more data, and no clean end either: {end:?}"
    );
    let cut_after = started.elapsed();
    assert!(cut_after >= IDLE, "{cut_after:?}");
    eprintln!("stalled upstream body cut off after {cut_after:?} (idle timeout {IDLE:?})");

    // 1.5 s in all, but never more than 150 ms between chunks: delivered whole.
    let response = client()
        .request(
            Request::get(format!("{}/trickle", proxy.url()))
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(count_body(response.into_body()).await, 11 + 100);
}

#[tokio::test]
async fn a_client_that_stalls_mid_upload_is_answered_and_released() {
    let upstream = spawn_upstream().await;
    let proxy = spawn_server(
        ReverseProxy::builder(upstream.url())
            .body_idle_timeout(IDLE)
            .build()
            .unwrap(),
    )
    .await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: app.example\r\nContent-Length: 1000000\r\n\r\n0123456789",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the stalled upload still holds the connection"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("(body_idle_timeout)"), "{answer}");
    let released_after = started.elapsed();
    assert!(released_after >= IDLE, "{released_after:?}");
    eprintln!("stalled upload released after {released_after:?}: {answer:?}");
}

#[tokio::test]
async fn a_client_that_stops_reading_a_download_loses_its_connection() {
    let upstream = spawn_upstream().await;
    let proxy = ReverseProxy::builder(upstream.url()).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_with_stall_timeout(
        listener,
        proxy,
        async {
            let _ = stopped.await;
        },
        IDLE,
    ));

    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /download?bytes=1073741824 HTTP/1.1\r\nHost: app.example\r\n\r\n")
        .await
        .unwrap();
    // Read nothing while the buffers fill and the proxy's writes block.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let mut received = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n as u64,
            }
        }
    })
    .await;
    assert!(
        drained.is_ok(),
        "the stalled client's connection was kept open"
    );
    assert!(
        received < 1 << 30,
        "the whole gigabyte was sent: {received}"
    );
    eprintln!(
        "stalled reader: connection closed after {received} bytes (drained in {:?})",
        started.elapsed()
    );
}
