//! The login flow end to end against the miniature provider: ID token checks that only a login
//! makes, concurrent logins, refresh, and client authentication on the wire.

use crate::login_support::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc_core::danger::InsecureSeededRandom;
use oidc_core::login::token::parse_token_response;
use oidc_core::login::{
    self, AssertionAlgorithm, CallbackParams, ClientAuthMethod, ClientCredentials,
    ClientSigningKey, IdTokenError, LoginConfig, LoginRequest, PendingLogin, ResponseMode,
    cookie_suffix_for_state,
};
use oidc_core::{Secret, Session, ValidationError};
use serde_json::json;

#[test]
fn at_hash_must_match_the_access_token() {
    let key = TestKey::rsa(0, Some("k1"));
    let login = StartedLogin::new();
    let mut claims = login.claims();
    claims["at_hash"] = json!("AAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(
        login
            .finish(&key.mint(&claims), &key_set(&[&key]))
            .unwrap_err(),
        IdTokenError::AccessTokenHashMismatch
    );
    claims["at_hash"] = json!(login::access_token_hash(
        oidc_core::Algorithm::RS256,
        ACCESS_TOKEN
    ));
    assert!(login.finish(&key.mint(&claims), &key_set(&[&key])).is_ok());
}

#[test]
fn max_age_requires_a_recent_auth_time() {
    let key = TestKey::ec(Some("ec"));
    let keys = key_set(&[&key]);
    let login = StartedLogin::with_config(config().max_age(secs(600)));
    assert!(
        login
            .authorization_url
            .query_pairs()
            .any(|(k, v)| k == "max_age" && v == "600")
    );
    let mut claims = login.claims();
    assert_eq!(
        login.finish(&key.mint(&claims), &keys).unwrap_err(),
        IdTokenError::AuthTimeMissing
    );
    // Completed at NOW + 10 s; leeway is the policy's (60 s).
    claims["auth_time"] = json!(NOW.as_secs() - 700);
    assert_eq!(
        login.finish(&key.mint(&claims), &keys).unwrap_err(),
        IdTokenError::AuthenticationTooOld {
            auth_time: oidc_core::UnixTime::from_secs(NOW.as_secs() - 700),
            max_age: secs(600),
            now: NOW.saturating_add(secs(10)),
        }
    );
    claims["auth_time"] = json!(NOW.as_secs() - 100);
    let outcome = login.finish(&key.mint(&claims), &keys).unwrap();
    assert_eq!(
        outcome.claims.auth_time,
        Some(oidc_core::UnixTime::from_secs(NOW.as_secs() - 100))
    );
}

#[test]
fn several_audiences_need_azp_naming_the_client() {
    let key = TestKey::ec(Some("ec"));
    let keys = key_set(&[&key]);
    let login = StartedLogin::new();
    let mut claims = login.claims();
    claims["aud"] = json!([CLIENT_ID, "another-api"]);
    assert_eq!(
        login.finish(&key.mint(&claims), &keys).unwrap_err().code(),
        "missing_claim"
    );
    claims["azp"] = json!("another-api");
    assert_eq!(
        login.finish(&key.mint(&claims), &keys).unwrap_err().code(),
        "azp_mismatch"
    );
    claims["azp"] = json!(CLIENT_ID);
    assert!(login.finish(&key.mint(&claims), &keys).is_ok());
}

#[test]
fn expired_id_token_is_refused_with_its_times() {
    let key = TestKey::ec(Some("ec"));
    let login = StartedLogin::new();
    let mut claims = login.claims();
    claims["exp"] = json!(NOW.as_secs() - 3600);
    match login
        .finish(&key.mint(&claims), &key_set(&[&key]))
        .unwrap_err()
    {
        IdTokenError::Invalid(ValidationError::Expired { exp, .. }) => {
            assert_eq!(exp.as_secs(), NOW.as_secs() - 3600)
        }
        other => panic!("expected expiry, got {other}"),
    }
}

#[test]
fn token_response_without_id_token_is_refused() {
    let login = StartedLogin::new();
    let key = TestKey::ec(Some("ec"));
    let answer = json_response(&json!({ "access_token": "at", "token_type": "Bearer" }));
    let tokens = parse_token_response(&answer).unwrap();
    let err = login::finish_login(
        &login.expectation,
        tokens,
        &key_set(&[&key]),
        &id_token_policy(),
        NOW,
    )
    .unwrap_err();
    assert_eq!(err, IdTokenError::Missing);
}

/// Two tabs start a login each; each callback finds its own pending login by the cookie suffix
/// derived from the state it carries, and a callback cannot complete the other tab's login.
#[test]
fn concurrent_logins_in_two_tabs_do_not_clobber_each_other() {
    let mut random = InsecureSeededRandom::new(3);
    let mut jar: Vec<(String, String)> = Vec::new();
    let mut urls = Vec::new();
    for tab in ["/tab-a", "/tab-b"] {
        let redirect = login::start_login(
            &endpoints(),
            &config(),
            &LoginRequest::new(tab),
            NOW,
            &mut random,
        )
        .unwrap();
        jar.push((
            format!("oidc_login_{}", redirect.pending.cookie_suffix()),
            serde_json::to_string(&redirect.pending).unwrap(),
        ));
        urls.push(redirect.url);
    }
    assert_ne!(jar[0].0, jar[1].0);
    // The provider answers tab B first.
    for (url, expected_return) in urls.iter().rev().zip(["/tab-b", "/tab-a"]) {
        let state = url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        let cookie_name = format!("oidc_login_{}", cookie_suffix_for_state(&state));
        let (_, sealed) = jar.iter().find(|(name, _)| *name == cookie_name).unwrap();
        let pending: PendingLogin = serde_json::from_str(sealed).unwrap();
        let params =
            CallbackParams::from_query(&format!("code=c&state={}", urlencode(&state))).unwrap();
        let exchange =
            login::handle_callback(&endpoints(), &config(), pending, &params, NOW, &mut random)
                .unwrap();
        assert_eq!(exchange.expectation.return_to(), expected_return);
    }
    let other: PendingLogin = serde_json::from_str(&jar[0].1).unwrap();
    let state_b = urls[1].query_pairs().find(|(k, _)| k == "state").unwrap().1;
    let params =
        CallbackParams::from_query(&format!("code=c&state={}", urlencode(&state_b))).unwrap();
    let err = login::handle_callback(&endpoints(), &config(), other, &params, NOW, &mut random)
        .unwrap_err();
    assert_eq!(err.code(), "state_mismatch");
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[test]
fn form_post_response_mode_round_trip() {
    let mut random = InsecureSeededRandom::new(8);
    let config = config().response_mode(ResponseMode::FormPost);
    let redirect = login::start_login(
        &endpoints(),
        &config,
        &LoginRequest::new("/"),
        NOW,
        &mut random,
    )
    .unwrap();
    assert!(
        redirect
            .url
            .query_pairs()
            .any(|(k, v)| k == "response_mode" && v == "form_post")
    );
    let body = format!("state={}&code=xyz", urlencode(redirect.pending.state()));
    let params = CallbackParams::from_form_post(body.as_bytes()).unwrap();
    let exchange = login::handle_callback(
        &endpoints(),
        &config,
        redirect.pending,
        &params,
        NOW,
        &mut random,
    )
    .unwrap();
    let form: Vec<(String, String)> =
        serde_urlencoded::from_bytes(exchange.request.body()).unwrap();
    assert_eq!(form[1], ("code".into(), "xyz".into()));
}

fn session_for(login: &StartedLogin, key: &TestKey) -> Session {
    login
        .finish(&key.mint(&login.claims()), &key_set(&[key]))
        .unwrap()
        .into_session(secs(8 * 3600))
}

#[test]
fn refresh_keeps_the_old_refresh_token_when_none_is_returned() {
    let key = TestKey::ec(Some("ec"));
    let login = StartedLogin::new();
    let mut session = session_for(&login, &key);
    let request = login::token::refresh_request(
        &endpoints().token_endpoint,
        config().credentials(),
        session.refresh_token.as_ref().unwrap(),
        None,
        &[],
        NOW,
        &mut InsecureSeededRandom::new(1),
    )
    .unwrap();
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(request.body()).unwrap();
    assert_eq!(
        form,
        vec![
            ("grant_type".into(), "refresh_token".into()),
            ("refresh_token".into(), "refresh-1".into())
        ]
    );
    let answer =
        json_response(&json!({ "access_token": "at-2", "token_type": "Bearer", "expires_in": 60 }));
    let refreshed = login::finish_refresh(
        &session,
        parse_token_response(&answer).unwrap(),
        &key_set(&[&key]),
        &id_token_policy(),
        NOW.saturating_add(secs(3000)),
    )
    .unwrap();
    session.apply_refresh(refreshed);
    assert_eq!(session.access_token, Some(Secret::new("at-2")));
    assert_eq!(session.refresh_token, Some(Secret::new("refresh-1")));
    assert_eq!(
        session.access_token_expires_at,
        Some(NOW.saturating_add(secs(3060)))
    );
}

#[test]
fn refreshed_id_token_must_keep_issuer_and_subject() {
    let key = TestKey::ec(Some("ec"));
    let keys = key_set(&[&key]);
    let login = StartedLogin::new();
    let session = session_for(&login, &key);
    let refresh_with = |claims: serde_json::Value| {
        let answer = json_response(&json!({
            "access_token": "at-2", "token_type": "Bearer",
            "refresh_token": "refresh-2", "id_token": key.mint(&claims),
        }));
        login::finish_refresh(
            &session,
            parse_token_response(&answer).unwrap(),
            &keys,
            &id_token_policy(),
            NOW.saturating_add(secs(60)),
        )
    };
    // A refreshed ID token carries no nonce of its own.
    let mut claims = json!({
        "iss": ISSUER, "sub": "user-1", "aud": CLIENT_ID,
        "iat": NOW.as_secs() + 60, "exp": NOW.as_secs() + 600,
    });
    let refreshed = refresh_with(claims.clone()).unwrap();
    assert_eq!(refreshed.refresh_token, Some(Secret::new("refresh-2")));
    assert!(refreshed.id_token.is_some());
    claims["sub"] = json!("user-2");
    assert_eq!(
        refresh_with(claims).unwrap_err(),
        IdTokenError::RefreshSubjectChanged {
            expected: "user-1".into(),
            received: "user-2".into()
        }
    );
}

#[test]
fn private_key_jwt_token_request_carries_a_verifiable_assertion() {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair as _;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().unwrap();
    let signing =
        ClientSigningKey::from_pkcs8_der(AssertionAlgorithm::RS256, pkcs8.as_ref(), None).unwrap();
    let config = LoginConfig::new(
        ClientCredentials::new(CLIENT_ID, ClientAuthMethod::PrivateKeyJwt(signing)),
        url::Url::parse("https://rp.example/callback").unwrap(),
    );
    let login = StartedLogin::with_config(config);
    let form: Vec<(String, String)> =
        serde_urlencoded::from_bytes(login.token_request.body()).unwrap();
    let assertion = &form
        .iter()
        .find(|(k, _)| k == "client_assertion")
        .unwrap()
        .1;
    let (input, signature) = assertion.rsplit_once('.').unwrap();
    let public = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        pair.public_key().as_ref(),
    );
    public
        .verify(
            input.as_bytes(),
            &URL_SAFE_NO_PAD.decode(signature).unwrap(),
        )
        .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(input.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "https://op.example/token");
    assert_eq!(claims["sub"], CLIENT_ID);
    assert!(!login.token_request.headers().contains_key("authorization"));
}
