//! The same rules decide alike for a browser session and for validated bearer claims, and the
//! email and domain checks never panic nor admit a look-alike domain.

use std::time::Duration;

use oidc_core::UnixTime;
use oidc_core::authorization::{
    AuthorizationRules, ClaimRequirement, Denied, Identity, IdentityClaims, domain_matches,
    email_domain, groups_from_claims,
};
use oidc_core::session::Session;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn rules() -> AuthorizationRules {
    AuthorizationRules::new()
        .with_allowed_email_domains(["company.com", ".partner.org"])
        .with_allowed_groups(["mlflow-users"])
        .with_required_claim(ClaimRequirement::new("tenant", [json!("research")]))
}

/// A session built the way the login step builds one from these ID token claims.
fn session_from(id_token_claims: &Map<String, Value>) -> Session {
    let mut session = Session::new(
        id_token_claims["sub"].as_str().unwrap(),
        "https://op.example",
        NOW,
        NOW.saturating_add(Duration::from_secs(3600)),
    );
    session.email = id_token_claims
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_owned);
    session.email_verified = id_token_claims
        .get("email_verified")
        .and_then(Value::as_bool);
    session.groups = groups_from_claims(id_token_claims, "groups");
    if let Some(tenant) = id_token_claims.get("tenant") {
        session.extra_claims.insert("tenant".into(), tenant.clone());
    }
    session
}

fn decide_both_ways(token_claims: Value) -> (Result<(), Denied>, Result<(), Denied>) {
    let token_claims = claims(token_claims);
    let rules = rules();
    let bearer = rules.evaluate(&Identity::from_claims(&token_claims, "groups"));
    let session = session_from(&token_claims);
    let browser = rules.evaluate(&session.identity());
    (bearer, browser)
}

#[test]
fn session_and_bearer_claims_get_the_same_decisions() {
    let cases = [
        (
            json!({"sub": "1", "email": "a@company.com", "email_verified": true,
                   "groups": ["mlflow-users"], "tenant": "research"}),
            Ok(()),
        ),
        (
            json!({"sub": "2", "email": "a@eu.partner.org", "email_verified": true,
                   "groups": "mlflow-users other", "tenant": "research"}),
            Ok(()),
        ),
        (
            json!({"sub": "3", "email": "a@evilcompany.com", "email_verified": true,
                   "groups": ["mlflow-users"], "tenant": "research"}),
            Err("email_not_allowed"),
        ),
        (
            json!({"sub": "4", "email": "a@company.com", "email_verified": false,
                   "groups": ["mlflow-users"], "tenant": "research"}),
            Err("email_not_verified"),
        ),
        (
            json!({"sub": "5", "email": "a@company.com",
                   "groups": ["mlflow-users"], "tenant": "research"}),
            Err("email_not_verified"),
        ),
        (
            json!({"sub": "6", "email": "x@evil.com@company.com", "email_verified": true,
                   "groups": ["mlflow-users"], "tenant": "research"}),
            Err("malformed_email"),
        ),
        (
            json!({"sub": "7", "email": "a@company.com", "email_verified": true,
                   "groups": ["viewers"], "tenant": "research"}),
            Err("not_in_allowed_group"),
        ),
        (
            json!({"sub": "8", "email": "a@company.com", "email_verified": true,
                   "groups": ["mlflow-users"], "tenant": "sales"}),
            Err("claim_mismatch"),
        ),
        (
            json!({"sub": "9", "groups": ["mlflow-users"], "tenant": "research"}),
            Err("missing_email"),
        ),
    ];
    for (token_claims, expected) in cases {
        let described = token_claims.to_string();
        let (bearer, browser) = decide_both_ways(token_claims);
        assert_eq!(
            bearer.clone().map_err(|denied| denied.code()),
            expected,
            "bearer {described}"
        );
        assert_eq!(bearer, browser, "{described}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn email_domain_never_panics_and_splits_at_the_only_unquoted_at(email in ".{0,80}") {
        if let Some(domain) = email_domain(&email) {
            let suffix = format!("@{}", domain);
            prop_assert!(email.ends_with(&suffix));
            prop_assert!(!domain.contains('@'));
            prop_assert!(!domain.is_empty());
        }
    }

    #[test]
    fn a_matched_domain_is_the_entry_or_a_subdomain_of_it(
        host in "[a-z.-]{0,20}(company\\.com)?",
        entry in prop::sample::select(vec!["company.com", ".company.com"]),
    ) {
        if domain_matches(entry, &host) {
            let parent = entry.trim_start_matches('.');
            let is_subdomain = host.ends_with(&format!(".{parent}"))
                && host.len() > parent.len() + 1;
            prop_assert!(host == parent || (entry.starts_with('.') && is_subdomain), "{} matched {}", host, entry);
        }
    }

    #[test]
    fn arbitrary_claims_never_panic(
        groups_claim in "[a-z._]{0,12}",
        raw in prop::collection::vec((any::<String>(), any::<String>()), 0..6),
    ) {
        let mut map = Map::new();
        for (k, v) in raw {
            map.insert(k, Value::String(v));
        }
        let identity = Identity::from_claims(&map, &groups_claim);
        let _ = rules().evaluate(&identity);
    }

    /// Whatever JSON arrives in the role claims, reading never panics, every role read is a
    /// string found at one of the three places (never a split fragment of an array element),
    /// and no role is listed twice.
    #[test]
    fn roles_are_read_only_from_their_three_places(
        top in json_value(),
        realm in json_value(),
        client in json_value(),
        other in json_value(),
        client_id in "[a-z.]{1,8}",
    ) {
        let map = claims(json!({
            "roles": top,
            "realm_access": {"roles": realm},
            "resource_access": {client_id.clone(): {"roles": client}, "zz-other": {"roles": other}},
        }));
        let names = IdentityClaims::new().with_role_client(client_id.clone());
        let roles = names.roles(&map);
        let mut seen = std::collections::BTreeSet::new();
        for role in &roles {
            prop_assert!(seen.insert(role.clone()), "duplicate {}", role);
            let found = [&map["roles"], &map["realm_access"]["roles"], &map["resource_access"][client_id.as_str()]["roles"]]
                .into_iter()
                .any(|value| holds(value, role));
            prop_assert!(found, "{} not at any role place", role);
        }
        let without_client = IdentityClaims::new().roles(&map);
        prop_assert!(without_client.iter().all(|role| roles.contains(role)));
        let identity = Identity::from_claims_named(&map, "groups", &names);
        let admitted = AuthorizationRules::new().with_allowed_roles(["r1"]).evaluate(&identity).is_ok();
        prop_assert_eq!(admitted, roles.iter().any(|role| role == "r1"));
    }

    /// A configured e-mail or user-id claim is read at its dotted path, or by its exact name
    /// when a top-level claim has it, and anything but a string (or a number, for the user id)
    /// reads as absent.
    #[test]
    fn configured_claims_read_their_path_and_nothing_else(
        path in "[a-z]{1,4}(\\.[a-z]{1,4}){0,2}",
        value in json_value(),
    ) {
        let mut nested = value.clone();
        for part in path.split('.').rev() {
            nested = json!({ part: nested });
        }
        let map = claims(nested);
        let names = IdentityClaims::new().with_email_claim(path.clone()).with_user_id_claim(path.clone());
        prop_assert_eq!(names.email(&map), value.as_str());
        let expected_id = match &value {
            Value::String(text) if !text.is_empty() => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        };
        prop_assert_eq!(names.user_id(&map), expected_id);
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z0-9 ,]{0,12}".prop_map(Value::String),
        prop::sample::select(vec!["r1", "r1 r2", "r2,r1", ""]).prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Whether `value` (a string split on spaces and commas, or an array of strings) holds `name`.
fn holds(value: &Value, name: &str) -> bool {
    match value {
        Value::String(text) => text.split([' ', ',']).any(|part| part == name),
        Value::Array(items) => items.iter().any(|item| item.as_str() == Some(name)),
        _ => false,
    }
}
