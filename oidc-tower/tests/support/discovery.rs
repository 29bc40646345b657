//! The discovery document of the hand-made providers some tests serve: only the fields a
//! relying party requires, every endpoint under the issuer.
#![allow(dead_code, unreachable_pub)]

use serde_json::{Value, json};

/// The smallest discovery document for `issuer` (no trailing `/`), its keys at `{issuer}/jwks`
/// and its ID tokens signed with `signing_alg`.
pub fn minimal_discovery(issuer: &str, signing_alg: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [signing_alg],
    })
}
