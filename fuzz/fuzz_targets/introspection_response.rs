//! Token introspection answers (RFC 7662) through `parse_introspection`, with an open policy
//! and one that requires an issuer when the answer names one and binds the token to this
//! service (audience, else client). An accepted answer was active, is not expired at the
//! fixture's clock, and is cached at most a minute.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use oidc_core::introspection::{IntrospectionPolicy, parse_introspection};
use oidc_fuzz::{CLIENT_ID, ISSUER, NOW, now};

fuzz_target!(|data: &[u8]| {
    let response = oidc_fuzz::response(200, "application/json", data);
    let open = IntrospectionPolicy::new().insecure_skip_binding();
    let strict = IntrospectionPolicy::new()
        .issuer(ISSUER)
        .audience(CLIENT_ID)
        .client(CLIENT_ID)
        .leeway(Duration::from_secs(5));
    for policy in [&open, &strict] {
        if let Ok(token) = parse_introspection(&response, policy, now()) {
            if let Some(exp) = token.claims.exp {
                assert!(
                    exp.as_secs().saturating_add(30) > NOW,
                    "expired answer accepted: {exp}"
                );
            }
            assert!(token.cache_until.as_secs() <= NOW + 60, "cached too long");
        }
    }
    // RFC 7662 makes `iss` and `aud` optional: the policy checks `iss` when the answer has it,
    // and a token without `aud` must have been issued to the accepted client.
    if let Ok(token) = parse_introspection(&response, &strict, now()) {
        assert!(token.claims.iss.as_deref().is_none_or(|iss| iss == ISSUER));
        if token.claims.aud.is_empty() {
            let client = token.claims.client_id.as_deref().or_else(|| {
                token.claims.extra.get("azp").and_then(|azp| azp.as_str())
            });
            assert_eq!(client, Some(CLIENT_ID), "token of another client accepted");
        } else {
            assert!(token.claims.aud.iter().any(|aud| aud == CLIENT_ID));
        }
    }
});
