//! The session cookie codec's open side.
//!
//! Input: a `Cookie` header (any bytes) read through `RequestCookies` and opened as a session and
//! as a pending login, and one sealed value opened directly. When the input is JSON, it is also
//! sealed with the fixture key and opened, so that the decrypted-payload parsing is reached too;
//! a session that opens must survive a seal/open round trip through `Set-Cookie` headers.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use oidc_core::cookie::{CookieCodec, CookieKeys, CookieSettings, RequestCookies};
use oidc_core::danger::InsecureSeededRandom;
use oidc_core::{PendingLogin, Secret, Session, UnixTime};
use oidc_fuzz::{NOW, now};

fn codec() -> &'static CookieCodec {
    static CODEC: OnceLock<CookieCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        let keys = CookieKeys::from_secrets(&[
            Secret::new("fuzz-cookie-key-number-one-0123456789abcdef"),
            Secret::new("fuzz-cookie-key-number-two-0123456789abcdef"),
        ])
        .expect("two long secrets");
        CookieCodec::new(keys, CookieSettings::new("session")).expect("valid settings")
    })
}

fuzz_target!(|data: &[u8]| {
    let codec = codec();
    if let Ok(text) = std::str::from_utf8(data) {
        let cookies = RequestCookies::parse(text);
        let _ = codec.decode::<Session>(&cookies, now());
        let _ = codec.decode::<PendingLogin>(&cookies, now());
        let _ = codec.clear(&cookies);
        let _ = codec.keys().open::<Session>(codec.name(), text, now());
    }
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let cookies = RequestCookies::from_header_values([&value]);
        assert!(cookies.len() <= oidc_core::cookie::MAX_REQUEST_COOKIES);
        let _ = codec.decode::<Session>(&cookies, now());
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) {
        open_sealed(codec, &json);
    }
});

fn open_sealed(codec: &CookieCodec, json: &serde_json::Value) {
    let mut random = InsecureSeededRandom::new(1);
    let expires_at = UnixTime::from_secs(NOW + 3600);
    let Ok(sealed) = codec
        .keys()
        .seal(codec.name(), json, expires_at, &mut random)
    else {
        return;
    };
    let _ = codec
        .keys()
        .open::<PendingLogin>(codec.name(), &sealed, now());
    let Ok(session) = codec.keys().open::<Session>(codec.name(), &sealed, now()) else {
        return;
    };
    let Ok(set_cookies) = codec.encode(
        &session,
        expires_at,
        now(),
        &mut random,
        &RequestCookies::empty(),
    ) else {
        return;
    };
    let header = set_cookies
        .iter()
        .map(|v| {
            let text = v.to_str().expect("Set-Cookie headers are ASCII");
            text.split(';').next().unwrap_or_default().to_owned()
        })
        .collect::<Vec<_>>()
        .join("; ");
    let reopened: Session = codec
        .decode(&RequestCookies::parse(&header), now())
        .expect("a freshly encoded session opens")
        .expect("a freshly encoded session is present");
    assert_eq!(reopened.subject, session.subject);
    assert_eq!(reopened.issuer, session.issuer);
    assert_eq!(reopened.expires_at, session.expires_at);
    assert_eq!(reopened.groups, session.groups);
    assert_eq!(
        reopened.access_token.as_ref().map(Secret::expose),
        session.access_token.as_ref().map(Secret::expose)
    );
}
