//! Token endpoint answers (`parse_token_response`) and UserInfo answers (`parse_userinfo`).
//!
//! Input: one status selector byte, then the body. An accepted token response is a bearer
//! token set; an accepted UserInfo answer carries the expected `sub`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oidc_core::login::token::parse_token_response;
use oidc_core::login::userinfo::parse_userinfo;

const STATUSES: [u16; 6] = [200, 400, 401, 500, 302, 200];
const CONTENT_TYPES: [&str; 3] = [
    "application/json",
    "application/json; charset=utf-8",
    "text/html",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(selector) % STATUSES.len()];
    let content_type = CONTENT_TYPES[usize::from(selector >> 4) % CONTENT_TYPES.len()];
    let response = oidc_fuzz::response(status, content_type, body);
    if let Ok(tokens) = parse_token_response(&response) {
        assert_eq!(status, 200);
        assert!(tokens.token_type.eq_ignore_ascii_case("bearer"));
        if let Some(refresh) = &tokens.refresh_token {
            assert!(!refresh.expose().is_empty());
        }
        let _ = tokens.access_token_expires_at(oidc_fuzz::now());
    }
    if let Ok(claims) = parse_userinfo(&response, "user-1") {
        assert_eq!(claims.get("sub").and_then(|s| s.as_str()), Some("user-1"));
    }
});
