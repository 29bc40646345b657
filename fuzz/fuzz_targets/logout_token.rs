//! Back-channel logout: the `logout_token` form body and the token's validation.
//!
//! Input: a form body, also tried as the token itself, or `header-json \0 claims-json` signed
//! with the fixture's Ed25519 key. An accepted token names a subject or a session, and the same
//! token presented again is refused as a replay.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use oidc_core::logout::{LogoutTokenError, LogoutTokenValidator, SeenJtis, logout_token_from_form};
use oidc_fuzz::{CLIENT_ID, now, public_keys};

fn validator() -> &'static LogoutTokenValidator {
    static VALIDATOR: OnceLock<LogoutTokenValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        LogoutTokenValidator::new(oidc_fuzz::issuer(), CLIENT_ID).expect("validator builds")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = logout_token_from_form(data) {
        assert!(!token.expose().is_empty());
        check_token(token.expose());
    }
    if let Ok(token) = std::str::from_utf8(data) {
        check_token(token);
    }
    if let Some((header, claims)) = oidc_fuzz::split_sign_input(data) {
        check_token(&oidc_fuzz::sign_ed25519(header, claims));
    }
});

fn check_token(token: &str) {
    let mut seen = SeenJtis::new(4);
    let Ok(target) = validator().validate(token, public_keys(), now(), &mut seen) else {
        return;
    };
    assert!(target.sub.is_some() || target.sid.is_some());
    assert_eq!(seen.len(), 1);
    match validator().validate(token, public_keys(), now(), &mut seen) {
        Err(LogoutTokenError::Replayed { .. }) => {}
        other => panic!("a replayed logout token gave {other:?}"),
    }
}
