//! Uncached token validation: ours vs `jsonwebtoken::decode` vs the floor, for RS256, PS256,
//! ES256 and EdDSA. Criterion reports each; afterwards an interleaved loop measures the three
//! side by side and prints the ratios ours/jsonwebtoken and ours/floor.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use oidc_benches::{Fixture, NOW, TypedClaims, fixture, floor_validate};
use oidc_core::jws::Algorithm;

const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

fn ours(f: &Fixture) {
    let valid = oidc_core::validate(black_box(&f.token), &f.keys, &f.policy, f.now());
    assert!(valid.is_ok());
    black_box(valid.ok());
}

fn jsonwebtoken_decode(f: &Fixture) {
    let valid =
        jsonwebtoken::decode::<TypedClaims>(black_box(&f.token), &f.jwt_key, &f.jwt_validation);
    assert!(valid.is_ok());
    black_box(valid.ok());
}

fn floor(f: &Fixture) {
    let valid = floor_validate(black_box(&f.token), &f.floor_key, NOW);
    assert!(valid.is_some());
    black_box(valid);
}

fn bench(c: &mut Criterion, fixtures: &[Fixture]) {
    for f in fixtures {
        let mut group = c.benchmark_group(format!("validate/{}", f.alg));
        group.bench_function("ours", |b| b.iter(|| ours(f)));
        group.bench_function("jsonwebtoken", |b| b.iter(|| jsonwebtoken_decode(f)));
        group.bench_function("floor", |b| b.iter(|| floor(f)));
        group.finish();
    }
}

/// Per-call nanoseconds of ours, jsonwebtoken and the floor, and the ratios ours/jsonwebtoken
/// and ours/floor. The three run in turn in short batches (about 1 ms each), so that frequency
/// changes and neighbours on the machine hit all three alike; each round's ratios are computed
/// from adjacent batches, and the medians over all rounds are reported.
fn interleaved(f: &Fixture, budget: Duration) -> ([f64; 3], [f64; 2]) {
    let runs: [fn(&Fixture); 3] = [ours, jsonwebtoken_decode, floor];
    let start = Instant::now();
    floor(f);
    let one = start.elapsed().max(Duration::from_nanos(100));
    let batch = (Duration::from_millis(1).as_nanos() / one.as_nanos()).clamp(1, 10_000) as u32;
    let mut times: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut ratios: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let deadline = Instant::now() + budget;
    while Instant::now() < deadline {
        let mut round = [0.0; 3];
        for (i, run) in runs.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..batch {
                run(f);
            }
            round[i] = start.elapsed().as_nanos() as f64 / f64::from(batch);
            times[i].push(round[i]);
        }
        ratios[0].push(round[0] / round[1]);
        ratios[1].push(round[0] / round[2]);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (times.map(median), ratios.map(median))
}

fn main() {
    let fixtures: Vec<Fixture> = ALGORITHMS.into_iter().map(fixture).collect();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &fixtures);
    c.final_summary();
    let test_mode = std::env::args().any(|a| a == "--test" || a == "--list");
    let budget = if test_mode {
        Duration::from_millis(50)
    } else {
        Duration::from_secs(3)
    };
    println!("\ninterleaved medians ({budget:?} per algorithm):");
    println!("alg     ours ns  jsonwebtoken ns  floor ns  ours/jsonwebtoken  ours/floor");
    for f in &fixtures {
        let ([o, j, fl], [vs_jsonwebtoken, vs_floor]) = interleaved(f, budget);
        println!(
            "{:<6} {o:>8.0} {j:>16.0} {fl:>9.0} {vs_jsonwebtoken:>18.3} {vs_floor:>11.3}",
            f.alg.as_str(),
        );
    }
}
