//! The reverse proxy between a real client and a real upstream, all on 127.0.0.1.

use crate::proxy_common as common;

use std::time::Duration;

use common::*;
use http::{Request, StatusCode};
use oidc_tower::proxy::{ProxyRouter, ReverseProxy, TrustedProxies, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn proxy_to(builder: oidc_tower::proxy::ReverseProxyBuilder) -> Server {
    spawn_server(builder.build().unwrap()).await
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_both_ways() {
    let upstream = spawn_upstream().await;
    let proxy = proxy_to(ReverseProxy::builder(upstream.url())).await;

    let request = Request::get(format!("{}/echo", proxy.url()))
        .header("connection", "keep-alive, x-client-hop")
        .header("x-client-hop", "secret")
        .header("keep-alive", "timeout=5")
        .header("proxy-authorization", "Basic Zm9vOmJhcg==")
        .header("te", "trailers")
        .header("x-end-to-end", "yes")
        .body(empty())
        .unwrap();
    let (status, _, body) = send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echoed(&body, "path"), Some("/echo"));
    assert_eq!(echoed(&body, "x-end-to-end"), Some("yes"));
    for name in ["x-client-hop", "proxy-authorization", "te", "keep-alive"] {
        assert_eq!(
            echoed(&body, name),
            None,
            "{name} reached the upstream:\n{body}"
        );
    }
    // hyper's client connection adds its own keep-alive semantics, never the client's list.
    assert_ne!(
        echoed(&body, "connection"),
        Some("keep-alive, x-client-hop")
    );

    let (status, headers, body) = get(&format!("{}/hop", proxy.url())).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "hop"));
    assert_eq!(headers["x-end-to-end"], "kept");
    for name in ["x-private-hop", "keep-alive", "proxy-authenticate"] {
        assert!(!headers.contains_key(name), "{name} reached the client");
    }
}

#[tokio::test]
async fn forwarded_headers_are_replaced_for_untrusted_peers() {
    let upstream = spawn_upstream().await;
    let proxy = proxy_to(ReverseProxy::builder(upstream.url())).await;
    let request = Request::get(format!("{}/echo", proxy.url()))
        .header("host", "app.example")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "evil.example")
        .header("x-real-ip", "6.6.6.6")
        .body(empty())
        .unwrap();
    let (_, _, body) = send(request).await;
    assert_eq!(echoed(&body, "x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(echoed(&body, "x-forwarded-proto"), Some("http"));
    assert_eq!(echoed(&body, "x-forwarded-host"), Some("app.example"));
    assert_eq!(echoed(&body, "host"), Some("app.example"));
    assert_eq!(echoed(&body, "x-real-ip"), None);
}

#[tokio::test]
async fn forwarded_chain_is_extended_for_trusted_peers() {
    let upstream = spawn_upstream().await;
    let proxy = proxy_to(
        ReverseProxy::builder(upstream.url())
            .trusted_proxies(TrustedProxies::loopback())
            .preserve_host(false),
    )
    .await;
    let request = Request::get(format!("{}/echo", proxy.url()))
        .header("host", "internal:8080")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "mlflow.example")
        .body(empty())
        .unwrap();
    let (_, _, body) = send(request).await;
    assert_eq!(
        echoed(&body, "x-forwarded-for"),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(echoed(&body, "x-forwarded-proto"), Some("https"));
    assert_eq!(echoed(&body, "x-forwarded-host"), Some("mlflow.example"));
    assert_eq!(
        echoed(&body, "host"),
        Some(upstream.addr.to_string().as_str())
    );
}

#[tokio::test]
async fn websocket_upgrade_is_spliced_through() {
    let upstream = spawn_upstream().await;
    let proxy = proxy_to(ReverseProxy::builder(upstream.url())).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive, Upgrade\r\n\
              Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).await.unwrap(),
            1,
            "connection closed"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    assert!(head.contains("sec-websocket-accept: test-accept"), "{head}");

    for message in ["hello", "second frame"] {
        stream.write_all(message.as_bytes()).await.unwrap();
        let expected = format!("echo:{message}");
        let mut reply = vec![0u8; expected.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut reply))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(String::from_utf8(reply).unwrap(), expected);
    }
}

#[tokio::test]
async fn upstream_down_is_502_and_slow_is_504() {
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let proxy = proxy_to(ReverseProxy::builder(&dead_url)).await;
    let (status, headers, body) = get(&format!("{}/anything", proxy.url())).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert!(
        body.starts_with(&format!(
            "502 Bad Gateway: upstream {dead_url} refused the connection"
        )),
        "{body}"
    );
    assert!(body.ends_with("(upstream_connect_failed)\n"), "{body}");

    let upstream = spawn_upstream().await;
    let proxy = proxy_to(
        ReverseProxy::builder(upstream.url()).response_timeout(Duration::from_millis(300)),
    )
    .await;
    let started = std::time::Instant::now();
    let (status, _, body) = get(&format!("{}/slow", proxy.url())).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        body.ends_with("did not answer within 300ms (upstream_timeout)\n"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn prefix_is_stripped_or_kept() {
    let upstream = spawn_upstream().await;
    let strip = proxy_to(ReverseProxy::builder(upstream.url()).strip_prefix("/mlflow/")).await;
    let (_, _, body) = get(&format!("{}/mlflow/api/2.0/runs?x=1", strip.url())).await;
    assert_eq!(echoed(&body, "path"), Some("/api/2.0/runs?x=1"));
    let (_, _, body) = get(&format!("{}/mlflow", strip.url())).await;
    assert_eq!(echoed(&body, "path"), Some("/"));
    let (status, _, body) = get(&format!("{}/mlflowx/api", strip.url())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.ends_with("(no_route)\n"), "{body}");
    // Dot segments cannot climb out of the prefix.
    let (status, _, _) = get(&format!("{}/mlflow/%2e%2e/admin", strip.url())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let keep = proxy_to(ReverseProxy::builder(upstream.url()).keep_prefix("/mlflow")).await;
    let (_, _, body) = get(&format!("{}/mlflow/static-files/app.js", keep.url())).await;
    assert_eq!(echoed(&body, "path"), Some("/mlflow/static-files/app.js"));

    let based = proxy_to(
        ReverseProxy::builder(format!("{}/base/", upstream.url())).strip_prefix("/mlflow"),
    )
    .await;
    let (_, _, body) = get(&format!("{}/mlflow/x//y/./z", based.url())).await;
    assert_eq!(echoed(&body, "path"), Some("/base/x/y/z"));
}

#[tokio::test]
async fn router_picks_the_longest_prefix() {
    let upstream = spawn_upstream().await;
    let router = ProxyRouter::new([
        ReverseProxy::builder(format!("{}/root", upstream.url()))
            .build()
            .unwrap(),
        ReverseProxy::builder(format!("{}/short", upstream.url()))
            .strip_prefix("/a")
            .build()
            .unwrap(),
        ReverseProxy::builder(format!("{}/long", upstream.url()))
            .strip_prefix("/a/b")
            .build()
            .unwrap(),
    ])
    .unwrap();
    let proxy = spawn_server(router).await;
    let cases = [
        ("/a/b/c", "/long/c"),
        ("/a/b", "/long"),
        ("/a/bc", "/short/bc"),
        ("/a", "/short"),
        ("/a/x/../b/c", "/long/c"),
        ("/ab", "/root/ab"),
        ("/", "/root/"),
    ];
    for (path, expected) in cases {
        let (_, _, body) = get(&format!("{}{path}", proxy.url())).await;
        assert_eq!(echoed(&body, "path"), Some(expected), "request {path}");
    }

    let duplicate = ProxyRouter::new([
        ReverseProxy::builder(upstream.url())
            .strip_prefix("/a")
            .build()
            .unwrap(),
        ReverseProxy::builder(upstream.url())
            .keep_prefix("/a/")
            .build()
            .unwrap(),
    ]);
    assert_eq!(duplicate.unwrap_err().code(), "duplicate_route");

    let only_a = spawn_server(
        ProxyRouter::new([ReverseProxy::builder(upstream.url())
            .strip_prefix("/a")
            .build()
            .unwrap()])
        .unwrap(),
    )
    .await;
    let (status, _, body) = get(&format!("{}/b", only_a.url())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no upstream is mapped for path /b"), "{body}");
}

#[tokio::test]
async fn hundred_concurrent_requests() {
    let upstream = spawn_upstream().await;
    let proxy = proxy_to(ReverseProxy::builder(upstream.url())).await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let url = format!("{}/echo/{i}", proxy.url());
        tasks.push(tokio::spawn(async move { (i, get(&url).await) }));
    }
    for task in tasks {
        let (i, (status, _, body)) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(echoed(&body, "path"), Some(format!("/echo/{i}").as_str()));
    }
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let upstream = spawn_upstream().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        listener,
        ReverseProxy::builder(upstream.url()).build().unwrap(),
        async move {
            let _ = stopped.await;
        },
    ));
    let in_flight = tokio::spawn(async move { get(&format!("http://{addr}/slow")).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(()).unwrap();
    let (status, _, body) = in_flight.await.unwrap();
    assert_eq!((status, body.as_str()), (StatusCode::OK, "finally"));
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returned after draining")
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

#[test]
fn invalid_upstreams_are_rejected() {
    // https upstreams are accepted (see proxy_tls.rs); credentials in the URL are not.
    for url in [
        "https://user:pw@x.example",
        "ftp://x",
        "not a url",
        "http://x/?q=1",
        "/relative",
    ] {
        let err = ReverseProxy::builder(url).build().unwrap_err();
        assert_eq!(err.code(), "invalid_upstream", "{url}");
    }
}

#[tokio::test]
async fn works_as_an_axum_fallback_with_connect_info() {
    let upstream = spawn_upstream().await;
    let app = axum::Router::new()
        .route("/local", axum::routing::get(|| async { "served by axum" }))
        .fallback_service(ReverseProxy::builder(upstream.url()).build().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .await
    });
    let (_, _, body) = get(&format!("http://{addr}/local")).await;
    assert_eq!(body, "served by axum");
    let (status, _, body) = get(&format!("http://{addr}/proxied?q=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(echoed(&body, "path"), Some("/proxied?q=1"));
    assert_eq!(echoed(&body, "x-forwarded-for"), Some("127.0.0.1"));
    let _ = stop.send(());
}
