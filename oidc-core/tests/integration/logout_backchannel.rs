//! Back-channel logout token rules beyond the certification cases: typ, targets, jti and age,
//! and replay protection that a forged token cannot poison.

use crate::login_support::*;
use oidc_core::logout::{
    BACKCHANNEL_LOGOUT_EVENT, LogoutTarget, LogoutTokenError, LogoutTokenValidator, SeenJtis,
    logout_token_from_form,
};
use oidc_core::{Issuer, UnixTime};
use serde_json::{Value, json};

fn claims(jti: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": [CLIENT_ID],
        "iat": NOW.as_secs(),
        "jti": jti,
        "sid": "sid-1",
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    })
}

fn mint(key: &TestKey, claims: &Value, typ: Option<&str>) -> String {
    let mut header = key.header();
    match typ {
        Some(typ) => header["typ"] = json!(typ),
        None => {
            header.as_object_mut().unwrap().remove("typ");
        }
    }
    key.sign(&header, claims)
}

fn validator() -> LogoutTokenValidator {
    LogoutTokenValidator::new(Issuer::new(ISSUER).unwrap(), CLIENT_ID).unwrap()
}

fn check(
    token: &str,
    key: &TestKey,
    now: UnixTime,
    seen: &mut SeenJtis,
) -> Result<LogoutTarget, LogoutTokenError> {
    validator().validate(token, &key_set(&[key]), now, seen)
}

#[test]
fn typ_must_be_logout_jwt_when_present() {
    let key = TestKey::ec(Some("ec"));
    let mut seen = SeenJtis::default();
    let id_token_typed = mint(&key, &claims("a"), Some("JWT"));
    assert_eq!(
        check(&id_token_typed, &key, NOW, &mut seen).unwrap_err(),
        LogoutTokenError::WrongType {
            found: "JWT".into()
        }
    );
    let untyped = mint(&key, &claims("b"), None);
    assert_eq!(
        check(&untyped, &key, NOW, &mut seen).unwrap(),
        LogoutTarget {
            sub: None,
            sid: Some("sid-1".into())
        }
    );
    let prefixed = mint(&key, &claims("c"), Some("application/logout+jwt"));
    assert!(check(&prefixed, &key, NOW, &mut seen).is_ok());
}

#[test]
fn sub_alone_or_sid_alone_names_the_target_and_neither_is_refused() {
    let key = TestKey::ec(Some("ec"));
    let mut seen = SeenJtis::default();
    let mut only_sub = claims("a");
    only_sub.as_object_mut().unwrap().remove("sid");
    only_sub["sub"] = json!("user-1");
    assert_eq!(
        check(
            &mint(&key, &only_sub, Some("logout+jwt")),
            &key,
            NOW,
            &mut seen
        )
        .unwrap(),
        LogoutTarget {
            sub: Some("user-1".into()),
            sid: None
        }
    );
    let mut neither = claims("b");
    neither.as_object_mut().unwrap().remove("sid");
    assert_eq!(
        check(
            &mint(&key, &neither, Some("logout+jwt")),
            &key,
            NOW,
            &mut seen
        )
        .unwrap_err(),
        LogoutTokenError::TargetMissing
    );
}

#[test]
fn jti_and_iat_are_required_and_old_tokens_refused() {
    let key = TestKey::ec(Some("ec"));
    let mut seen = SeenJtis::default();
    let mut no_jti = claims("x");
    no_jti.as_object_mut().unwrap().remove("jti");
    assert_eq!(
        check(&mint(&key, &no_jti, None), &key, NOW, &mut seen).unwrap_err(),
        LogoutTokenError::JtiMissing
    );
    let mut no_iat = claims("y");
    no_iat.as_object_mut().unwrap().remove("iat");
    assert_eq!(
        check(&mint(&key, &no_iat, None), &key, NOW, &mut seen)
            .unwrap_err()
            .code(),
        "missing_claim"
    );
    let late = NOW.saturating_add(secs(3600));
    assert_eq!(
        check(&mint(&key, &claims("z"), None), &key, late, &mut seen)
            .unwrap_err()
            .code(),
        "too_old"
    );
    let mut expired = claims("w");
    expired["exp"] = json!(NOW.as_secs() - 3600);
    assert_eq!(
        check(&mint(&key, &expired, None), &key, NOW, &mut seen)
            .unwrap_err()
            .code(),
        "expired"
    );
}

#[test]
fn a_refused_token_does_not_use_up_its_jti() {
    let key = TestKey::ec(Some("ec"));
    let mut seen = SeenJtis::default();
    let mut forged = claims("shared-jti");
    forged["nonce"] = json!("n");
    assert_eq!(
        check(&mint(&key, &forged, None), &key, NOW, &mut seen).unwrap_err(),
        LogoutTokenError::NoncePresent
    );
    let genuine = mint(&key, &claims("shared-jti"), None);
    assert!(check(&genuine, &key, NOW, &mut seen).is_ok());
    assert_eq!(
        check(&genuine, &key, NOW, &mut seen).unwrap_err(),
        LogoutTokenError::Replayed {
            jti: "shared-jti".into()
        }
    );
    assert_eq!(seen.len(), 1);
}

#[test]
fn seen_jtis_are_forgotten_once_the_token_is_too_old_anyway() {
    let key = TestKey::ec(Some("ec"));
    let mut seen = SeenJtis::default();
    check(&mint(&key, &claims("a"), None), &key, NOW, &mut seen).unwrap();
    assert_eq!(seen.len(), 1);
    // Default max age 300 s plus 60 s leeway: after that, the entry is dropped on the next use.
    let later = NOW.saturating_add(secs(361));
    let mut fresh = claims("b");
    fresh["iat"] = json!(later.as_secs());
    check(&mint(&key, &fresh, None), &key, later, &mut seen).unwrap();
    assert_eq!(seen.len(), 1);
}

#[test]
fn the_request_body_yields_the_token() {
    let key = TestKey::ec(Some("ec"));
    let token = mint(&key, &claims("form"), Some("logout+jwt"));
    let body = format!("logout_token={token}");
    let extracted = logout_token_from_form(body.as_bytes()).unwrap();
    assert!(check(extracted.expose(), &key, NOW, &mut SeenJtis::default()).is_ok());
}

proptest::proptest! {
    #[test]
    fn arbitrary_logout_tokens_never_panic_and_never_pass(token in "[A-Za-z0-9_.-]{0,300}") {
        let key = TestKey::ec(Some("ec"));
        let mut seen = SeenJtis::new(4);
        proptest::prop_assert!(check(&token, &key, NOW, &mut seen).is_err());
        proptest::prop_assert!(seen.is_empty());
    }
}
