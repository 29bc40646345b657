//! The OpenID Foundation's relying-party certification cases for the Basic (`C`) and Config
//! (`CNF`) profiles, and the Back-Channel Logout cases, each as a test named after the case.
//!
//! The case descriptions are in `tests/data/oidf-rp-tests/` (see SOURCE.txt there).
//! [`every_case_in_the_folder_has_a_test_or_a_reason`] fails when a case there has no entry in
//! [`CASES`], and runs every test the table names.

use crate::login_support::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc_core::login::userinfo::{UserinfoError, parse_userinfo, userinfo_request};
use oidc_core::login::{ClientAuthMethod, ClientCredentials, IdTokenError};
use oidc_core::logout::{
    BACKCHANNEL_LOGOUT_EVENT, EndSessionRequest, LogoutTarget, LogoutTokenError,
    LogoutTokenValidator, SeenJtis,
};
use oidc_core::{FreshnessPolicy, Issuer, KeySet, Secret};
use serde_json::{Value, json};

/// How a certification case is covered.
enum Coverage {
    /// By the test function of the same name (the case id with `-` and `+` as `_`).
    Test { name: &'static str, run: fn() },
    /// Not by a test in this file, for the stated reason.
    Elsewhere(&'static str),
}

macro_rules! tested {
    ($name:ident) => {
        Coverage::Test {
            name: stringify!($name),
            run: $name,
        }
    };
}

const CASES: &[(&str, Coverage)] = &[
    (
        "rp-discovery-issuer-not-matching-config",
        Coverage::Elsewhere(
            "discovery: the metadata's issuer must equal the configured one; checked when \
             discovery::ProviderMetadata is parsed, in the discovery module's tests",
        ),
    ),
    (
        "rp-discovery-jwks_uri-keys",
        tested!(rp_discovery_jwks_uri_keys),
    ),
    (
        "rp-discovery-openid-configuration",
        Coverage::Elsewhere(
            "discovery: fetching and parsing /.well-known/openid-configuration belongs to the \
             discovery module's tests; login takes the endpoints it yields",
        ),
    ),
    ("rp-id_token-aud", tested!(rp_id_token_aud)),
    (
        "rp-id_token-bad-sig-rs256",
        tested!(rp_id_token_bad_sig_rs256),
    ),
    ("rp-id_token-iat", tested!(rp_id_token_iat)),
    (
        "rp-id_token-issuer-mismatch",
        tested!(rp_id_token_issuer_mismatch),
    ),
    (
        "rp-id_token-kid-absent-multiple-jwks",
        tested!(rp_id_token_kid_absent_multiple_jwks),
    ),
    (
        "rp-id_token-kid-absent-single-jwks",
        tested!(rp_id_token_kid_absent_single_jwks),
    ),
    ("rp-id_token-sig-none", tested!(rp_id_token_sig_none)),
    ("rp-id_token-sig-rs256", tested!(rp_id_token_sig_rs256)),
    ("rp-id_token-sub", tested!(rp_id_token_sub)),
    (
        "rp-key-rotation-op-sign-key-native",
        tested!(rp_key_rotation_op_sign_key_native),
    ),
    (
        "rp-key-rotation-op-sign-key",
        tested!(rp_key_rotation_op_sign_key),
    ),
    ("rp-nonce-invalid", tested!(rp_nonce_invalid)),
    ("rp-response_type-code", tested!(rp_response_type_code)),
    (
        "rp-scope-userinfo-claims",
        tested!(rp_scope_userinfo_claims),
    ),
    (
        "rp-token_endpoint-client_secret_basic",
        tested!(rp_token_endpoint_client_secret_basic),
    ),
    (
        "rp-userinfo-bad-sub-claim",
        tested!(rp_userinfo_bad_sub_claim),
    ),
    (
        "rp-userinfo-bearer-header",
        tested!(rp_userinfo_bearer_header),
    ),
    (
        "rp-backchannel-rpinitlogout",
        tested!(rp_backchannel_rpinitlogout),
    ),
    (
        "rp-backchannel-rpinitlogout-lt-alg-none",
        tested!(rp_backchannel_rpinitlogout_lt_alg_none),
    ),
    (
        "rp-backchannel-rpinitlogout-lt-no-event",
        tested!(rp_backchannel_rpinitlogout_lt_no_event),
    ),
    (
        "rp-backchannel-rpinitlogout-lt-with-nonce",
        tested!(rp_backchannel_rpinitlogout_lt_with_nonce),
    ),
    (
        "rp-backchannel-rpinitlogout-lt-wrong-alg",
        tested!(rp_backchannel_rpinitlogout_lt_wrong_alg),
    ),
    (
        "rp-backchannel-rpinitlogout-lt-wrong-aud",
        tested!(rp_backchannel_rpinitlogout_lt_wrong_aud),
    ),
    (
        "rp-backchannel-rpinitlogout-lt-wrong-event",
        tested!(rp_backchannel_rpinitlogout_lt_wrong_event),
    ),
    (
        "rp-backchannel-rpinitlogout-lt-wrong-issuer",
        tested!(rp_backchannel_rpinitlogout_lt_wrong_issuer),
    ),
];

#[test]
#[allow(clippy::disallowed_methods, reason = "a test reads its fixture files")]
fn every_case_in_the_folder_has_a_test_or_a_reason() {
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/oidf-rp-tests");
    let mut ids = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let id = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let case: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mti: Vec<&str> = case["MTI"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let selected =
            mti.contains(&"C") || mti.contains(&"CNF") || id.starts_with("rp-backchannel");
        assert!(
            selected,
            "{id} is in the folder but is neither C, CNF nor back-channel"
        );
        ids.push(id);
    }
    assert_eq!(
        ids.len(),
        28,
        "20 Basic/Config cases and 8 back-channel cases"
    );
    for id in &ids {
        let (_, coverage) = CASES
            .iter()
            .find(|(case, _)| case == id)
            .unwrap_or_else(|| panic!("the certification case {id} has no test"));
        match coverage {
            Coverage::Test { name, run } => {
                assert_eq!(*name, id.replace(['-', '+'], "_"), "test name for {id}");
                run();
            }
            Coverage::Elsewhere(reason) => assert!(!reason.is_empty()),
        }
    }
    for (case, _) in CASES {
        assert!(
            ids.iter().any(|id| id == case),
            "{case} is not in the folder"
        );
    }
}

fn rejection_code(result: Result<oidc_core::login::LoginOutcome, IdTokenError>) -> &'static str {
    result.unwrap_err().code()
}

#[test]
fn rp_discovery_jwks_uri_keys() {
    let key = TestKey::rsa(0, Some("k1"));
    let jwks_answer = http::Response::builder()
        .status(200)
        .header("content-type", "application/jwk-set+json")
        .header("cache-control", "max-age=600")
        .body(json!({ "keys": [key.jwk()] }).to_string().into_bytes())
        .unwrap();
    let keys = KeySet::from_response(&jwks_answer, NOW, &FreshnessPolicy::default()).unwrap();
    let login = StartedLogin::new();
    let outcome = login.finish(&key.mint(&login.claims()), &keys).unwrap();
    assert_eq!(outcome.subject, "user-1");
}

#[test]
fn rp_id_token_aud() {
    let key = TestKey::rsa(0, Some("k1"));
    let login = StartedLogin::new();
    let mut claims = login.claims();
    claims["aud"] = json!("someone-else");
    let result = login.finish(&key.mint(&claims), &key_set(&[&key]));
    assert_eq!(rejection_code(result), "wrong_audience");
}

#[test]
fn rp_id_token_bad_sig_rs256() {
    let key = TestKey::rsa(0, Some("k1"));
    let login = StartedLogin::new();
    let token = corrupt_signature(&key.mint(&login.claims()));
    assert_eq!(
        rejection_code(login.finish(&token, &key_set(&[&key]))),
        "bad_signature"
    );
}

#[test]
fn rp_id_token_iat() {
    let key = TestKey::rsa(0, Some("k1"));
    let login = StartedLogin::new();
    let mut claims = login.claims();
    claims.as_object_mut().unwrap().remove("iat");
    let err = login
        .finish(&key.mint(&claims), &key_set(&[&key]))
        .unwrap_err();
    assert_eq!(err.code(), "missing_claim", "{err}");
    assert!(err.to_string().contains("iat"));
}

#[test]
fn rp_id_token_issuer_mismatch() {
    let key = TestKey::rsa(0, Some("k1"));
    let login = StartedLogin::new();
    let mut claims = login.claims();
    claims["iss"] = json!("https://example.org/");
    assert_eq!(
        rejection_code(login.finish(&key.mint(&claims), &key_set(&[&key]))),
        "wrong_issuer"
    );
}

/// The case allows either outcome: reject, or try every key and find the one that verifies.
/// Validation tries up to `MAX_CANDIDATE_KEYS` keys of the token's algorithm, so a set of two
/// is accepted; a set with more candidates is refused as ambiguous.
#[test]
fn rp_id_token_kid_absent_multiple_jwks() {
    let signing = TestKey::rsa(0, None);
    let other = TestKey::rsa(1, Some("other"));
    let login = StartedLogin::new();
    let token = signing.mint(&login.claims());
    let outcome = login.finish(&token, &key_set(&[&other, &signing])).unwrap();
    assert_eq!(outcome.subject, "user-1");
    let many: Vec<TestKey> = (0..5)
        .map(|i| TestKey::rsa(i % 3, Some(&format!("k{i}"))))
        .collect();
    let refs: Vec<&TestKey> = many.iter().collect();
    assert_eq!(
        rejection_code(login.finish(&token, &key_set(&refs))),
        "ambiguous_key"
    );
}

#[test]
fn rp_id_token_kid_absent_single_jwks() {
    let key = TestKey::rsa(0, None);
    let login = StartedLogin::new();
    let outcome = login
        .finish(&key.mint(&login.claims()), &key_set(&[&key]))
        .unwrap();
    assert_eq!(outcome.subject, "user-1");
}

/// Deliberate deviation: the case expects an unsigned ID token to be accepted in the code flow;
/// this project never accepts `alg: none` (DESIGN.md, validation), so the login fails with a
/// typed rejection instead.
#[test]
fn rp_id_token_sig_none() {
    let key = TestKey::rsa(0, Some("k1"));
    let login = StartedLogin::new();
    let token = unsigned(&login.claims());
    let keys = key_set(&[&key]);
    assert_refused_as_unsigned(
        rejection_code(login.finish(&token, &keys)),
        rejection_code(login.finish(&with_forged_signature(&token), &keys)),
    );
}

#[test]
fn rp_id_token_sig_rs256() {
    let key = TestKey::rsa(0, Some("k1"));
    let login = StartedLogin::new();
    let mut claims = login.claims();
    claims["at_hash"] = json!("77QmUPtjPfzWtF2AnpK9RQ");
    let outcome = login.finish(&key.mint(&claims), &key_set(&[&key])).unwrap();
    assert_eq!(outcome.claims.email.as_deref(), Some("user@example.com"));
    assert_eq!(outcome.access_token.expose(), ACCESS_TOKEN);
    assert_eq!(outcome.refresh_token, Some(Secret::new("refresh-1")));
    assert_eq!(outcome.return_to, "/after-login");
}

#[test]
fn rp_id_token_sub() {
    let key = TestKey::rsa(0, Some("k1"));
    let login = StartedLogin::new();
    let mut claims = login.claims();
    claims.as_object_mut().unwrap().remove("sub");
    let err = login
        .finish(&key.mint(&claims), &key_set(&[&key]))
        .unwrap_err();
    assert_eq!(err.code(), "missing_claim");
    assert!(err.to_string().contains("sub"));
}

/// Rotation as the adapter drives it: an unknown `kid` is reported as such, the key set is
/// fetched again, and the same token then verifies.
fn rotation_with(login: &StartedLogin) {
    let old = TestKey::rsa(0, Some("2024"));
    let new = TestKey::rsa(1, Some("2025"));
    let before = key_set(&[&old]);
    login.finish(&old.mint(&login.claims()), &before).unwrap();
    let rotated_token = new.mint(&login.claims());
    match login.finish(&rotated_token, &before).unwrap_err() {
        IdTokenError::Invalid(e) => assert!(e.is_unknown_kid(), "{e}"),
        other => panic!("expected an unknown kid, got {other}"),
    }
    let after = key_set(&[&new]);
    assert_eq!(
        login.finish(&rotated_token, &after).unwrap().subject,
        "user-1"
    );
}

#[test]
fn rp_key_rotation_op_sign_key() {
    rotation_with(&StartedLogin::new());
}

/// The native-app variant: a public client (no secret, PKCE only).
#[test]
fn rp_key_rotation_op_sign_key_native() {
    let config = oidc_core::login::LoginConfig::new(
        ClientCredentials::new(CLIENT_ID, ClientAuthMethod::None),
        url::Url::parse("http://127.0.0.1:8400/callback").unwrap(),
    );
    let login = StartedLogin::with_config(config);
    assert!(!login.token_request.headers().contains_key("authorization"));
    let form: Vec<(String, String)> =
        serde_urlencoded::from_bytes(login.token_request.body()).unwrap();
    assert!(form.contains(&("client_id".into(), CLIENT_ID.into())));
    assert!(
        form.iter()
            .any(|(k, v)| k == "code_verifier" && v.len() == 43)
    );
    rotation_with(&login);
}

#[test]
fn rp_nonce_invalid() {
    let key = TestKey::rsa(0, Some("k1"));
    let login = StartedLogin::new();
    let mut claims = login.claims();
    claims["nonce"] = json!("a-nonce-from-another-login");
    assert_eq!(
        login
            .finish(&key.mint(&claims), &key_set(&[&key]))
            .unwrap_err(),
        IdTokenError::NonceMismatch
    );
    claims.as_object_mut().unwrap().remove("nonce");
    assert_eq!(
        login
            .finish(&key.mint(&claims), &key_set(&[&key]))
            .unwrap_err(),
        IdTokenError::NonceMissing
    );
}

#[test]
fn rp_response_type_code() {
    let login = StartedLogin::new();
    let query: Vec<(String, String)> = login
        .authorization_url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert!(query.contains(&("response_type".into(), "code".into())));
    assert!(query.contains(&("scope".into(), "openid email profile".into())));
    let form: Vec<(String, String)> =
        serde_urlencoded::from_bytes(login.token_request.body()).unwrap();
    assert_eq!(form[0], ("grant_type".into(), "authorization_code".into()));
    assert_eq!(form[1], ("code".into(), "the-code".into()));
    let key = TestKey::ec(Some("ec"));
    let outcome = login
        .finish(&key.mint(&login.claims()), &key_set(&[&key]))
        .unwrap();
    let session = outcome.into_session(secs(3600));
    assert_eq!(session.subject, "user-1");
    assert_eq!(session.issuer, ISSUER);
    assert_eq!(session.email.as_deref(), Some("user@example.com"));
    assert_eq!(session.expires_at, NOW.saturating_add(secs(3610)));
    assert_eq!(
        session.access_token_expires_at,
        Some(NOW.saturating_add(secs(3610)))
    );
}

#[test]
fn rp_scope_userinfo_claims() {
    let login = StartedLogin::new();
    assert!(
        login
            .authorization_url
            .query_pairs()
            .any(|(k, v)| k == "scope" && v == "openid email profile")
    );
    let answer = json_response(&json!({
        "sub": "user-1", "email": "user@example.com", "name": "User One"
    }));
    let claims = parse_userinfo(&answer, "user-1").unwrap();
    assert_eq!(claims["email"], "user@example.com");
    assert_eq!(claims["name"], "User One");
}

#[test]
fn rp_token_endpoint_client_secret_basic() {
    let login = StartedLogin::new();
    let request = &login.token_request;
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(request.uri(), "https://op.example/token");
    let value = request.headers()["authorization"].to_str().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(decoded, format!("{CLIENT_ID}:{CLIENT_SECRET}").as_bytes());
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(request.body()).unwrap();
    assert!(form.iter().all(|(k, _)| k != "client_secret"));
}

#[test]
fn rp_userinfo_bad_sub_claim() {
    let answer = json_response(&json!({ "sub": "someone-else", "email": "x@example.com" }));
    assert_eq!(
        parse_userinfo(&answer, "user-1").unwrap_err(),
        UserinfoError::SubjectMismatch {
            expected: "user-1".into(),
            received: "someone-else".into()
        }
    );
}

#[test]
fn rp_userinfo_bearer_header() {
    let request = userinfo_request(
        endpoints().userinfo_endpoint.as_ref().unwrap(),
        &Secret::new(ACCESS_TOKEN),
    );
    assert_eq!(request.method(), http::Method::GET);
    assert_eq!(request.uri(), "https://op.example/userinfo");
    assert_eq!(
        request.headers()["authorization"],
        format!("Bearer {ACCESS_TOKEN}").as_str()
    );
    assert!(request.body().is_empty());
}

// Back-channel logout.

fn logout_claims(jti: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "iat": NOW.as_secs(),
        "exp": NOW.as_secs() + 120,
        "jti": jti,
        "sub": "user-1",
        "sid": "session-7",
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    })
}

fn logout_validator() -> LogoutTokenValidator {
    LogoutTokenValidator::new(Issuer::new(ISSUER).unwrap(), CLIENT_ID).unwrap()
}

fn validate_logout(token: &str, key: &TestKey) -> Result<LogoutTarget, LogoutTokenError> {
    logout_validator().validate(token, &key_set(&[key]), NOW, &mut SeenJtis::new(16))
}

fn logout_header(key: &TestKey) -> Value {
    let mut header = key.header();
    header["typ"] = json!("logout+jwt");
    header
}

fn mint_logout(key: &TestKey, claims: &Value) -> String {
    key.sign(&logout_header(key), claims)
}

/// `alg: none` is refused whether the signature part is empty (as `none` prescribes) or not.
fn assert_refused_as_unsigned(code: &str, forged_code: &str) {
    assert!(["alg_none", "empty_signature"].contains(&code), "{code}");
    assert_eq!(forged_code, "alg_none");
}

fn with_forged_signature(unsigned_token: &str) -> String {
    format!("{unsigned_token}{}", URL_SAFE_NO_PAD.encode([7u8; 64]))
}

#[test]
fn rp_backchannel_rpinitlogout() {
    let logout_url = EndSessionRequest::new(CLIENT_ID)
        .id_token_hint(Secret::new("the.id.token"))
        .url(endpoints().end_session_endpoint.as_ref())
        .unwrap();
    assert!(
        logout_url
            .as_str()
            .starts_with("https://op.example/logout?")
    );
    let key = TestKey::rsa(0, Some("k1"));
    let token = key.sign(&logout_header(&key), &logout_claims("jti-1"));
    let mut seen = SeenJtis::new(16);
    let target = logout_validator()
        .validate(&token, &key_set(&[&key]), NOW, &mut seen)
        .unwrap();
    assert_eq!(target.sub.as_deref(), Some("user-1"));
    assert_eq!(target.sid.as_deref(), Some("session-7"));
    let replay = logout_validator()
        .validate(
            &token,
            &key_set(&[&key]),
            NOW.saturating_add(secs(1)),
            &mut seen,
        )
        .unwrap_err();
    assert_eq!(replay.code(), "logout_token_replayed");
}

#[test]
fn rp_backchannel_rpinitlogout_lt_alg_none() {
    let key = TestKey::rsa(0, Some("k1"));
    let token = unsigned(&logout_claims("j"));
    let err = validate_logout(&token, &key).unwrap_err();
    let forged = validate_logout(&with_forged_signature(&token), &key).unwrap_err();
    assert_refused_as_unsigned(err.code(), forged.code());
}

#[test]
fn rp_backchannel_rpinitlogout_lt_no_event() {
    let key = TestKey::rsa(0, Some("k1"));
    let mut claims = logout_claims("j");
    claims.as_object_mut().unwrap().remove("events");
    let err = validate_logout(&mint_logout(&key, &claims), &key).unwrap_err();
    assert_eq!(err, LogoutTokenError::EventMissing);
}

#[test]
fn rp_backchannel_rpinitlogout_lt_with_nonce() {
    let key = TestKey::rsa(0, Some("k1"));
    let mut claims = logout_claims("j");
    claims["nonce"] = json!("n");
    let err = validate_logout(&mint_logout(&key, &claims), &key).unwrap_err();
    assert_eq!(err, LogoutTokenError::NoncePresent);
}

/// The classic confusion: HS256 keyed with the provider's public key. The policy allows public-key
/// algorithms only, so the token is refused before any key is used.
#[test]
fn rp_backchannel_rpinitlogout_lt_wrong_alg() {
    let key = TestKey::rsa(0, Some("k1"));
    let header = json!({ "alg": "HS256", "kid": "k1", "typ": "logout+jwt" });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(logout_claims("j").to_string())
    );
    let mac_key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        key.jwk()["n"].as_str().unwrap().as_bytes(),
    );
    let tag = aws_lc_rs::hmac::sign(&mac_key, input.as_bytes());
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    assert_eq!(
        validate_logout(&token, &key).unwrap_err().code(),
        "alg_not_allowed"
    );
}

#[test]
fn rp_backchannel_rpinitlogout_lt_wrong_aud() {
    let key = TestKey::rsa(0, Some("k1"));
    let mut claims = logout_claims("j");
    claims["aud"] = json!("another-client");
    assert_eq!(
        validate_logout(&mint_logout(&key, &claims), &key)
            .unwrap_err()
            .code(),
        "wrong_audience"
    );
}

#[test]
fn rp_backchannel_rpinitlogout_lt_wrong_event() {
    let key = TestKey::rsa(0, Some("k1"));
    let mut claims = logout_claims("j");
    claims["events"] = json!({ "http://schemas.openid.net/event/other": {} });
    assert_eq!(
        validate_logout(&mint_logout(&key, &claims), &key).unwrap_err(),
        LogoutTokenError::EventMissing
    );
    claims["events"] = json!({ BACKCHANNEL_LOGOUT_EVENT: "yes" });
    assert_eq!(
        validate_logout(&mint_logout(&key, &claims), &key).unwrap_err(),
        LogoutTokenError::EventNotObject
    );
}

#[test]
fn rp_backchannel_rpinitlogout_lt_wrong_issuer() {
    let key = TestKey::rsa(0, Some("k1"));
    let mut claims = logout_claims("j");
    claims["iss"] = json!("https://evil.example");
    assert_eq!(
        validate_logout(&mint_logout(&key, &claims), &key)
            .unwrap_err()
            .code(),
        "wrong_issuer"
    );
}
