//! A repeated token through the validated-token cache of `oidc_tower::provider::Provider`
//! against an uncached RS256 validation of the same token, in one run.
//!
//! Criterion reports each path; then an interleaved loop measures them side by side (median of
//! short batches) and prints the ratio uncached/cached, a breakdown of the cached path (SHA-256
//! of the token, the moka lookup, the async call) and the allocations per call counted by a
//! wrapping global allocator.
//!
//! `Provider::validate` is polled once with a no-op waker: a cached or uncached validation with
//! known keys never waits, so no executor is needed, and the tokio `block_on` row shows what one
//! would add.

use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use criterion::Criterion;
use oidc_benches::live::{LiveSigner, TOKEN_LIFETIME_SECS};
use oidc_core::UnixTime;
use oidc_core::jwks::KeySet;
use oidc_core::validation::{Policy, ValidatedToken};
use oidc_tower::provider::Provider;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

const ISSUER: &str = "https://op.example/realms/main";
const AUDIENCE: &str = "api://orders";

/// Everything the measured paths share.
struct Setup {
    runtime: tokio::runtime::Runtime,
    token: String,
    cached: Provider,
    uncached: Provider,
    keys: Arc<KeySet>,
    policy: Policy,
    moka: moka::sync::Cache<[u8; 32], Arc<ValidatedToken>>,
    map: std::collections::HashMap<[u8; 32], Arc<ValidatedToken>>,
}

/// Polls a future once and returns its output; the measured paths never wait.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a validation with loaded keys waited"),
    }
}

fn digest(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

struct Ttl;

impl moka::Expiry<[u8; 32], Arc<ValidatedToken>> for Ttl {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        _value: &Arc<ValidatedToken>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(TOKEN_LIFETIME_SECS))
    }
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let signer = LiveSigner::generate(ISSUER, AUDIENCE).unwrap();
    let token = signer.mint("f3b1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d").unwrap();
    let (cached, uncached) = runtime.block_on(async {
        (
            signer.started_provider(10_000).await,
            signer.started_provider(0).await,
        )
    });
    let _guard = runtime.enter();
    let warm = ready(cached.validate(&token)).unwrap();
    let keys = cached.keys().unwrap();
    let policy = signer.policy();
    let moka = moka::sync::Cache::builder()
        .max_capacity(10_000)
        .expire_after(Ttl)
        .build();
    moka.insert(digest(&token), warm.clone());
    let mut map = std::collections::HashMap::new();
    map.insert(digest(&token), warm);
    drop(_guard);
    Setup {
        runtime,
        token,
        cached,
        uncached,
        keys,
        policy,
        moka,
        map,
    }
}

type Path = (&'static str, fn(&Setup));

const PATHS: [Path; 7] = [
    ("provider cached", |s| {
        let hit = ready(s.cached.validate(black_box(&s.token)));
        assert!(hit.is_ok());
        black_box(hit.ok());
    }),
    ("provider cached, tokio block_on", |s| {
        let hit = s.runtime.block_on(s.cached.validate(black_box(&s.token)));
        assert!(hit.is_ok());
        black_box(hit.ok());
    }),
    ("provider uncached RS256", |s| {
        let valid = ready(s.uncached.validate(black_box(&s.token)));
        assert!(valid.is_ok());
        black_box(valid.ok());
    }),
    ("core validate RS256", |s| {
        let now = UnixTime::from(SystemTime::now());
        let valid = oidc_core::validate(black_box(&s.token), &s.keys, &s.policy, now);
        assert!(valid.is_ok());
        black_box(valid.ok());
    }),
    ("sha-256 of the token", |s| {
        black_box(digest(black_box(&s.token)));
    }),
    ("sha-256 + moka get", |s| {
        let hit = s.moka.get(&digest(black_box(&s.token)));
        assert!(hit.is_some());
        black_box(hit);
    }),
    ("sha-256 + HashMap probe", |s| {
        let hit = s.map.get(&digest(black_box(&s.token))).cloned();
        assert!(hit.is_some());
        black_box(hit);
    }),
];

/// Nanoseconds per call of each path, interleaved in batches of about 200 µs so that frequency
/// changes and neighbours on the machine hit all paths alike; the median batch is kept.
fn interleaved(s: &Setup, budget: Duration) -> Vec<f64> {
    let batches: Vec<u32> = PATHS
        .iter()
        .map(|(_, run)| {
            let start = Instant::now();
            for _ in 0..100 {
                run(s);
            }
            let one = (start.elapsed() / 100).max(Duration::from_nanos(10));
            (Duration::from_micros(200).as_nanos() / one.as_nanos()).clamp(1, 1_000_000) as u32
        })
        .collect();
    let mut samples = vec![Vec::new(); PATHS.len()];
    let deadline = Instant::now() + budget;
    while Instant::now() < deadline {
        for (i, (_, run)) in PATHS.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..batches[i] {
                run(s);
            }
            samples[i].push(start.elapsed().as_nanos() as f64 / f64::from(batches[i]));
        }
    }
    samples
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect()
}

/// Allocations and bytes allocated per call of each path.
fn allocations(s: &Setup) -> Vec<(f64, f64)> {
    const CALLS: usize = 1_000;
    PATHS
        .iter()
        .map(|(_, run)| {
            run(s);
            let region = Region::new(GLOBAL);
            for _ in 0..CALLS {
                run(s);
            }
            let change = region.change();
            (
                change.allocations as f64 / CALLS as f64,
                change.bytes_allocated as f64 / CALLS as f64,
            )
        })
        .collect()
}

fn main() {
    let s = setup();
    let mut c = Criterion::default().configure_from_args();
    {
        let mut group = c.benchmark_group("token_cache");
        for (name, run) in PATHS {
            group.bench_function(name, |b| b.iter(|| run(&s)));
        }
        group.finish();
    }
    c.final_summary();
    if std::env::args().any(|a| a == "--profile-time") {
        // Profiling one path (e.g. under perf): no side-by-side run.
        return;
    }

    let test_mode = std::env::args().any(|a| a == "--test" || a == "--list");
    let budget = if test_mode {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(4)
    };
    let medians = interleaved(&s, budget);
    let allocs = allocations(&s);
    println!("\ninterleaved medians ({budget:?}), allocations per call:");
    println!(
        "{:<34} {:>10} {:>9} {:>10}",
        "path", "ns/call", "allocs", "bytes"
    );
    for (((name, _), ns), (count, bytes)) in PATHS.iter().zip(&medians).zip(&allocs) {
        println!("{name:<34} {ns:>10.0} {count:>9.1} {bytes:>10.0}");
    }
    let [cached, _, uncached, core, ..] = medians[..] else {
        unreachable!("seven paths")
    };
    println!(
        "ratio uncached provider RS256 / cached provider: {:.1}x (target >= 12x)",
        uncached / cached
    );
    println!(
        "ratio core validate RS256 / cached provider:     {:.1}x",
        core / cached
    );
    println!(
        "cached provider: {:.2} us (target <= 1.5 us)",
        cached / 1_000.0
    );
}
