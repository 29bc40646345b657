//! Roles (Keycloak's `realm_access.roles`) and a configured e-mail claim, through the login layer
//! and the bearer path against the dev provider on 127.0.0.1: the same role rule admits and
//! refuses alike at both doors, and the session carries the configured claims.

use crate::support::layers::{CLIENT_ID, Harness, Options, echoed_headers, header};
use oidc_core::authorization::{AuthorizationRules, IdentityClaims};

fn role_rules() -> AuthorizationRules {
    AuthorizationRules::new()
        .with_allowed_roles(["mlflow-editor"])
        .with_identity_claims(IdentityClaims::new().with_email_claim("upn"))
}

#[tokio::test]
async fn a_listed_role_admits_a_browser_session_and_others_are_forbidden() {
    let h = Harness::start(Options {
        rules: Some(role_rules()),
        ..Options::default()
    })
    .await;
    let carol = h.sign_in("carol", "/runs").await;
    let response = h.navigate("/runs", &carol).await;
    assert_eq!(response.status(), 200);
    let headers = echoed_headers(response).await;
    assert_eq!(
        header(&headers, "x-forwarded-email"),
        Some("carol@company.example"),
        "the e-mail comes from the configured claim"
    );

    let alice = h.sign_in("alice", "/runs").await;
    let response = h.navigate("/runs", &alice).await;
    assert_eq!(response.status(), 403);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("not_in_allowed_role")
    );
}

#[tokio::test]
async fn the_bearer_door_reads_the_same_roles() {
    let h = Harness::start(Options {
        rules: Some(role_rules()),
        ..Options::default()
    })
    .await;
    for (user, status) in [("carol", 200), ("alice", 403)] {
        let token = h.op.mint_access_token(user, CLIENT_ID).unwrap();
        let response = h
            .client
            .get(format!("{}/api/2.0/mlflow/runs/search", h.app))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{user}");
    }
}
