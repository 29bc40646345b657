//! JWK set documents: fetched (`KeySet::parse`, `KeySet::from_response` with a fuzzed
//! `Cache-Control`) and local (`KeySet::parse_local`).
//!
//! Input: the document; for `from_response`, an optional first line `cache-control \n` before it.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use oidc_core::jwks::{FreshnessPolicy, KeySet, MAX_KEYS};
use oidc_fuzz::now;

fuzz_target!(|data: &[u8]| {
    for set in [KeySet::parse(data), KeySet::parse_local(data)]
        .into_iter()
        .flatten()
    {
        assert!(!set.keys().is_empty() && set.keys().len() <= MAX_KEYS);
        for key in set.keys() {
            if let Some(kid) = &key.kid {
                assert!(set.contains_kid(kid));
            }
        }
    }
    if let Ok(set) = KeySet::parse(data) {
        assert!(
            set.keys().iter().all(|k| k.kty != "oct"),
            "a fetched set holds a shared secret"
        );
    }

    let (cache_control, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b""[..], data),
    };
    let mut response = oidc_fuzz::response(200, "application/jwk-set+json", body);
    if let Ok(value) = http::HeaderValue::from_bytes(cache_control) {
        response
            .headers_mut()
            .insert(http::header::CACHE_CONTROL, value);
    }
    let freshness = FreshnessPolicy::new(
        Duration::from_secs(300),
        Duration::from_secs(60),
        Duration::from_secs(86_400),
    );
    let ttl = freshness.ttl_for(response.headers());
    assert!(
        ttl >= Duration::from_secs(60) && ttl <= Duration::from_secs(86_400),
        "ttl {ttl:?}"
    );
    if let Ok(set) = KeySet::from_response(&response, now(), &freshness) {
        assert!(!set.is_stale(now()));
    }
});
