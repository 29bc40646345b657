//! Discovery parsing never panics on any answer, and typed metadata survives a round trip.

use oidc_core::Issuer;
use oidc_core::discovery::{DiscoveryOptions, ProviderMetadata, parse_discovery};
use proptest::prelude::*;
use serde_json::{Value, json};

fn issuer() -> Issuer {
    Issuer::new("https://op.example").unwrap()
}

proptest! {
    #[test]
    fn any_bytes_give_a_result_not_a_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let response = http::Response::new(body);
        let _ = parse_discovery(&issuer(), &DiscoveryOptions::new(), &response);
    }

    #[test]
    fn any_json_object_gives_a_result_not_a_panic(
        entries in proptest::collection::btree_map(
            prop_oneof![
                Just("issuer".to_owned()), Just("jwks_uri".to_owned()),
                Just("authorization_endpoint".to_owned()), Just("token_endpoint".to_owned()),
                Just("response_types_supported".to_owned()), "[a-z_]{1,12}",
            ],
            prop_oneof![
                Just(json!(null)), any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from), ".{0,30}".prop_map(Value::from),
                proptest::collection::vec(".{0,10}", 0..3).prop_map(Value::from),
            ],
            0..8,
        )
    ) {
        let doc: serde_json::Map<String, Value> = entries.into_iter().collect();
        let response = http::Response::new(serde_json::to_vec(&doc).unwrap());
        let _ = parse_discovery(&issuer(), &DiscoveryOptions::new(), &response);
    }

    #[test]
    fn typed_metadata_round_trips(
        scopes in proptest::collection::vec("[a-z]{1,10}", 0..5),
        backchannel in any::<bool>(),
        extra in "[a-z]{1,10}",
        path in "[a-z]{1,10}",
    ) {
        let doc = json!({
            "issuer": "https://op.example",
            "authorization_endpoint": format!("https://op.example/{path}/authorize"),
            "token_endpoint": "https://op.example/token",
            "jwks_uri": format!("https://op.example/{path}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": scopes,
            "backchannel_logout_supported": backchannel,
            format!("x_{extra}"): extra,
        });
        let response = http::Response::new(serde_json::to_vec(&doc).unwrap());
        let metadata = parse_discovery(&issuer(), &DiscoveryOptions::new(), &response).unwrap();
        let Value::Object(again) = serde_json::to_value(&metadata).unwrap() else {
            panic!("metadata serializes to an object");
        };
        prop_assert_eq!(ProviderMetadata::from_document(again).unwrap(), metadata);
    }
}
