//! A realistic session through the cookie codec: sealed, sent back by a browser, opened, refreshed
//! and sealed again, with stale chunks cleared.

use std::time::Duration;

use oidc_core::cookie::{
    CookieCodec, CookieKeys, CookieSettings, MAX_COOKIE_BYTES, RequestCookies,
};
use oidc_core::danger::InsecureSeededRandom;
use oidc_core::session::{RefreshedTokens, Session};
use oidc_core::{Secret, UnixTime};
use serde_json::json;

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

/// A token-looking string of `len` base64url characters.
fn token(len: usize, fill: char) -> String {
    let mut token: String = std::iter::repeat_n(fill, len).collect();
    token.replace_range(36..37, ".");
    token.replace_range(len - 44..len - 43, ".");
    token
}

fn session() -> Session {
    let mut session = Session::new(
        "248289761001",
        "https://op.example.com",
        NOW,
        NOW.saturating_add(Duration::from_secs(8 * 3600)),
    );
    session.email = Some("jane.doe@example.com".into());
    session.email_verified = Some(true);
    session.name = Some("Jane Doe".into());
    session.preferred_username = Some("jane".into());
    session.groups = vec!["ml-engineers".into(), "staff".into()];
    session
        .extra_claims
        .insert("tenant".into(), json!("research"));
    // Entra ID access tokens with many group claims are this large.
    session.access_token = Some(Secret::new(token(2_000, 'a')));
    session.refresh_token = Some(Secret::new(token(120, 'r')));
    session.id_token = Some(Secret::new(token(1024, 'i')));
    session.access_token_expires_at = Some(NOW.saturating_add(Duration::from_secs(300)));
    session.sid = Some("08a5019c-17e1-4977-8f42-65a12843ea02".into());
    session
}

fn browser_sends(set_cookies: &[http::HeaderValue]) -> String {
    set_cookies
        .iter()
        .map(|h| h.to_str().unwrap())
        .filter(|h| !h.contains("Max-Age=0"))
        .map(|h| h.split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn session_round_trips_through_cookies_and_refresh() {
    let keys = CookieKeys::from_secrets(&[Secret::new("x".repeat(32))]).unwrap();
    let codec = CookieCodec::new(keys, CookieSettings::new("oidc_session")).unwrap();
    let mut random = InsecureSeededRandom::new(42);
    let original = session();

    let set = codec
        .encode(
            &original,
            original.expires_at,
            NOW,
            &mut random,
            &RequestCookies::empty(),
        )
        .unwrap();
    let total: usize = set.iter().map(http::HeaderValue::len).sum();
    println!(
        "session with 1 KB ID token and 2 KB access token: {} cookie(s), {total} bytes of Set-Cookie",
        set.len()
    );
    assert!(set.iter().all(|h| h.len() <= MAX_COOKIE_BYTES));
    assert_eq!(set.len(), 2, "this session needs two chunks");

    let header = browser_sends(&set);
    let request = RequestCookies::parse(&header);
    let opened: Session = codec.decode(&request, NOW).unwrap().unwrap();
    assert_eq!(opened, original);

    // Five minutes later the access token is due (60 s margin) and gets refreshed.
    let later = NOW.saturating_add(Duration::from_secs(250));
    assert!(opened.refresh_due(later, Duration::from_secs(60)));
    let mut refreshed = opened.clone();
    refreshed.apply_refresh(RefreshedTokens::new(
        Secret::new("short-access-token"),
        Some(later.saturating_add(Duration::from_secs(300))),
    ));
    assert_eq!(refreshed.refresh_token, original.refresh_token);
    assert!(!refreshed.refresh_due(later, Duration::from_secs(60)));

    // The refreshed session is smaller: the response clears the chunk it no longer uses.
    let set_again = codec
        .encode(
            &refreshed,
            refreshed.expires_at,
            later,
            &mut random,
            &request,
        )
        .unwrap();
    let texts: Vec<&str> = set_again.iter().map(|h| h.to_str().unwrap()).collect();
    if set.len() > 1 {
        assert!(
            texts
                .iter()
                .any(|t| t.ends_with("Max-Age=0; HttpOnly; Secure; SameSite=Lax")),
            "{texts:?}"
        );
    }
    let reopened: Session = codec
        .decode(&RequestCookies::parse(&browser_sends(&set_again)), later)
        .unwrap()
        .unwrap();
    assert_eq!(reopened, refreshed);

    // After the session lifetime the cookie no longer opens, whatever the browser kept.
    let expired = codec.decode::<Session>(
        &RequestCookies::parse(&browser_sends(&set_again)),
        original.expires_at,
    );
    assert_eq!(expired.unwrap_err().code(), "cookie_expired");
}

mod round_trip {
    use super::*;
    use proptest::prelude::*;

    fn arbitrary_session() -> impl Strategy<Value = Session> {
        (
            (
                any::<String>(),
                any::<String>(),
                proptest::option::of(any::<String>()),
            ),
            (
                proptest::option::of(any::<bool>()),
                proptest::option::of(".{0,40}"),
            ),
            (
                prop::collection::vec(".{0,20}", 0..5),
                proptest::option::of(".{0,300}"),
            ),
            (
                proptest::option::of(".{0,300}"),
                proptest::option::of(any::<u64>()),
            ),
            (1u64..u64::MAX / 2, proptest::option::of(any::<String>())),
        )
            .prop_map(
                |(
                    (subject, issuer, email),
                    (email_verified, name),
                    (groups, access_token),
                    (id_token, access_token_expires_at),
                    (lifetime, sid),
                )| {
                    let mut session = Session::new(
                        subject,
                        issuer,
                        NOW,
                        NOW.saturating_add(Duration::from_secs(lifetime)),
                    );
                    session.email = email;
                    session.email_verified = email_verified;
                    session.name = name;
                    session.groups = groups;
                    session.access_token = access_token.map(Secret::new);
                    session.id_token = id_token.map(Secret::new);
                    session.access_token_expires_at =
                        access_token_expires_at.map(UnixTime::from_secs);
                    session.sid = sid;
                    session
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_session_round_trips_through_the_codec(session in arbitrary_session(), seed in any::<u64>()) {
            let keys = CookieKeys::from_secrets(&[Secret::new("y".repeat(40))]).unwrap();
            let codec = CookieCodec::new(keys, CookieSettings::new("s")).unwrap();
            let set = codec
                .encode(&session, session.expires_at, NOW, &mut InsecureSeededRandom::new(seed), &RequestCookies::empty())
                .unwrap();
            let opened: Session = codec
                .decode(&RequestCookies::parse(&browser_sends(&set)), NOW)
                .unwrap()
                .unwrap();
            prop_assert_eq!(opened, session);
        }
    }
}
