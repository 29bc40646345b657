//! Large bodies pass through the proxy in constant memory, both directions.
//!
//! Bodies are generated on the fly; the peak resident set size of this test process (client,
//! proxy and upstream together) is read from `/proc/self/status` and printed. The large body is
//! `STREAMING_TEST_MIB` MiB (default 256: four times the memory limit, so a buffered body fails
//! the test); `STREAMING_TEST_MIB=4096 cargo test --workspace --test proxy_streaming` streams more.

#[path = "proxy_common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use oidc_tower::proxy::ReverseProxy;

const MIB: u64 = 1024 * 1024;
/// Bodies are never buffered, so memory must stay far below the body size.
const PEAK_RSS_LIMIT_KIB: u64 = 64 * 1024;

async fn stream_both_ways(bytes: u64) {
    let upstream = spawn_upstream().await;
    let proxy = spawn_server(ReverseProxy::builder(upstream.url()).build().unwrap()).await;

    let started = Instant::now();
    let request = Request::post(format!("{}/upload", proxy.url()))
        .body(generated_body(bytes))
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let counted = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(counted, bytes.to_string());
    let upload = started.elapsed();

    let started = Instant::now();
    let request = Request::get(format!("{}/download?bytes={bytes}", proxy.url()))
        .body(empty())
        .unwrap();
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(count_body(response.into_body()).await, bytes);
    let download = started.elapsed();

    let peak = peak_rss_kib();
    println!(
        "streamed {} MiB: upload {:.2?} ({:.0} MiB/s), download {:.2?} ({:.0} MiB/s), peak RSS {} KiB",
        bytes / MIB,
        upload,
        (bytes / MIB) as f64 / upload.as_secs_f64(),
        download,
        (bytes / MIB) as f64 / download.as_secs_f64(),
        peak
    );
    assert!(peak > 0, "VmHWM not readable");
    assert!(
        peak < PEAK_RSS_LIMIT_KIB,
        "peak RSS {peak} KiB over {PEAK_RSS_LIMIT_KIB} KiB: a body was buffered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_64_mib_each_way_in_constant_memory() {
    stream_both_ways(64 * MIB).await;
}

/// The large body's size in MiB: `STREAMING_TEST_MIB`, else 256.
fn large_body_mib() -> u64 {
    std::env::var("STREAMING_TEST_MIB")
        .ok()
        .and_then(|mib| mib.parse().ok())
        .unwrap_or(256)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_large_body_each_way_in_constant_memory() {
    stream_both_ways(large_body_mib() * MIB).await;
}
