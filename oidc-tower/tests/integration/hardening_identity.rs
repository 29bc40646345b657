//! Who is let in: email allow-lists against crafted addresses, and bearer JWTs whose audience or
//! issuer is someone else's (the oauth2-proxy email-domain and "aud not checked" bug classes).

use std::time::Duration;

use crate::hardening_support::{OpHost, impatient_client, policy, ready_within};
use oidc_core::authorization::{AuthorizationRules, Identity};
use oidc_tower::provider::{Provider, ProviderConfig, Providers};
use serde_json::{Map, Value, json};

fn claims(email: &str) -> Map<String, Value> {
    let Value::Object(map) = json!({ "sub": "s", "email": email, "email_verified": true }) else {
        unreachable!()
    };
    map
}

#[test]
fn email_allow_lists_are_not_fooled_by_crafted_addresses() {
    let rules = AuthorizationRules::new()
        .with_allowed_email_domains(["company.com"])
        .with_allowed_emails(["boss@partner.org"]);
    // A quoted local part may hold an `@`: the mailbox is still at company.com, which verified it.
    let admitted = [
        "alice@company.com",
        "boss@partner.org",
        "\"attacker@evil.com\"@company.com",
    ];
    for email in admitted {
        let claims = claims(email);
        assert_eq!(
            rules.evaluate(&Identity::from_claims(&claims, "groups")),
            Ok(()),
            "{email}"
        );
    }
    let refused = [
        "attacker@evil.com@company.com",
        "attacker@evilcompany.com",
        "attacker@company.com.evil.com",
        "attacker@sub.company.com",
        "attacker@evil.com%00@company.com",
        "attacker@evil.com\n@company.com",
        "attacker@company.com@evil.com",
        "@company.com",
        "company.com",
        "attacker@",
        "boss@partner.org.evil.com",
        "boss@partner.org@evil.com",
        "xboss@partner.org",
        "",
    ];
    for email in refused {
        let claims = claims(email);
        let denied = rules.evaluate(&Identity::from_claims(&claims, "groups"));
        assert!(denied.is_err(), "{email:?} was admitted");
    }
    // An unverified address in the right domain is refused too.
    let mut unverified = claims("alice@company.com");
    unverified.insert("email_verified".into(), json!(false));
    assert_eq!(
        rules
            .evaluate(&Identity::from_claims(&unverified, "groups"))
            .unwrap_err()
            .code(),
        "email_not_verified"
    );
}

/// A token the same provider issued to another client (another audience) and a token from
/// another provider (another issuer, other keys) are both refused as rejections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_for_another_audience_or_issuer_are_refused() {
    let ours = OpHost::start().await;
    let theirs = OpHost::start().await;
    let provider = Provider::start(
        ProviderConfig::new(ours.issuer.clone(), policy(&ours.issuer)),
        impatient_client(),
    );
    ready_within(&provider, Duration::from_secs(5)).await;

    let for_us = ours.token();
    assert!(provider.validate(&for_us).await.is_ok());

    // Same provider, same keys, audience `demo-public`.
    let other_audience = ours.with(|op| op.mint_access_token("alice", "demo-public").unwrap());
    let error = provider.validate(&other_audience).await.unwrap_err();
    assert!(error.is_rejection());
    assert_eq!(error.code(), "wrong_audience");

    // Another provider's token: its `kid` is unknown here, so it is refused before any claim is
    // trusted; routed through a provider set, its issuer is unknown.
    let foreign = theirs.token();
    let error = provider.validate(&foreign).await.unwrap_err();
    assert!(error.is_rejection());
    let providers = Providers::new([provider.clone()]);
    let error = providers.validate(&foreign).await.unwrap_err();
    assert_eq!(error.code(), "unknown_issuer");
}
