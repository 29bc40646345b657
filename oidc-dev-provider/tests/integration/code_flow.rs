//! The authorization code flow end to end over real HTTP: form login, PKCE, tokens, single
//! sign-on across clients, refresh rotation, userinfo, introspection, code reuse.

use crate::common::*;
use serde_json::Value;

#[tokio::test]
async fn discovery_is_complete_and_points_at_working_endpoints() {
    let provider = start().await;
    let issuer = provider.issuer().as_str().to_owned();
    assert!(!issuer.ends_with('/'));
    let response = http()
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["issuer"], issuer);
    assert_eq!(doc["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(doc["jwks_uri"], format!("{issuer}/jwks"));
    assert_eq!(doc["end_session_endpoint"], format!("{issuer}/end_session"));
    assert_eq!(
        doc["introspection_endpoint"],
        format!("{issuer}/introspect")
    );
    assert_eq!(doc["userinfo_endpoint"], format!("{issuer}/userinfo"));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));

    let jwks = http().get(format!("{issuer}/jwks")).send().await.unwrap();
    assert_eq!(jwks.headers()["content-type"], "application/jwk-set+json");
    assert_eq!(jwks.headers()["cache-control"], "public, max-age=60");
    let jwks: Value = jwks.json().await.unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    assert_eq!(jwks["keys"][0]["kid"], provider.signing_kid());
}

#[tokio::test]
async fn code_flow_with_pkce_issues_verifiable_tokens_and_single_sign_on() {
    let provider = start().await;
    let (verifier, challenge) = pkce_pair("verifier-one");
    let request = Authorize::app(Some(&challenge));
    let (first_location, cookie) = login(&provider, &request, "alice", "alice-password").await;
    let location = first_location.clone();
    assert!(location.starts_with(REDIRECT));
    assert!(cookie.starts_with("devop_session="));
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-1"));
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(provider.issuer().as_str())
    );
    let code = query_param(&location, "code").unwrap();

    let (status, tokens) = redeem(&provider, &code, Some(&verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);
    assert_eq!(tokens["scope"], "openid profile email");
    assert!(tokens["refresh_token"].is_string());

    let (typ, id) = verify(&provider, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(typ.as_deref(), Some("JWT"));
    assert_eq!(id["iss"], provider.issuer().as_str());
    assert_eq!(id["sub"], "alice");
    assert_eq!(id["aud"], "app");
    assert_eq!(id["azp"], "app");
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["email"], "alice@example.com");
    assert_eq!(id["email_verified"], true);
    assert_eq!(id["name"], "Alice");
    assert_eq!(id["groups"], serde_json::json!(["admins"]));
    assert_eq!(id["department"], "research");
    assert!(id["sid"].is_string());
    assert!(id["auth_time"].as_u64().unwrap() <= id["iat"].as_u64().unwrap());
    assert_eq!(
        id["exp"].as_u64().unwrap() - id["iat"].as_u64().unwrap(),
        300
    );
    let access_token = tokens["access_token"].as_str().unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    use base64::Engine as _;
    let expected_at_hash =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
    assert_eq!(id["at_hash"], expected_at_hash);

    let (typ, at) = verify(&provider, access_token).await;
    assert_eq!(typ.as_deref(), Some("at+jwt"));
    assert_eq!(at["aud"], "https://api.example");
    assert_eq!(at["client_id"], "app");
    assert_eq!(at["sub"], "alice");
    assert_eq!(at["scope"], "openid profile email");
    assert_eq!(at["sid"], id["sid"]);
    assert!(at["jti"].is_string());

    // A second client: the provider session signs the user in without a form.
    let second = Authorize {
        client_id: "second",
        redirect_uri: SECOND_REDIRECT,
        scope: "openid",
        challenge: None,
        extra: vec![("state", "st-2"), ("prompt", "none")],
    };
    let response = http()
        .get(second.url(&provider))
        .header("cookie", format!("other=1; {cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    let location = location_of(&response);
    assert!(location.starts_with(SECOND_REDIRECT));
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-2"));
    let code = query_param(&location, "code").unwrap();
    let (status, tokens) = post_token(
        &provider,
        ("second", "second-secret"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", SECOND_REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let (_, second_id) = verify(&provider, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(second_id["sid"], id["sid"], "same provider session");
    assert_eq!(second_id["auth_time"], id["auth_time"]);
    assert_eq!(second_id.get("email"), None, "no email scope asked");

    // prompt=login shows the form despite the session.
    let mut fresh = Authorize::app(None);
    fresh.extra.push(("prompt", "login"));
    let response = http()
        .get(fresh.url(&provider))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("name=\"password\""));

    // prompt=none without a session: login_required, redirected.
    let mut silent = Authorize::app(None);
    silent.extra.push(("prompt", "none"));
    let response = http().get(silent.url(&provider)).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = location_of(&response);
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("login_required")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-1"));
}

#[tokio::test]
async fn wrong_password_and_hostile_username_are_shown_escaped() {
    let provider = start().await;
    let http = http();
    let mut request = Authorize::app(None);
    request
        .extra
        .push(("login_hint", "\"><script>alert(1)</script>"));
    let html = http
        .get(request.url(&provider))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));

    let hostile = "<img src=x onerror=alert(1)>";
    let response = http
        .post(provider.endpoint("/login"))
        .form_urlencoded(&[
            ("login_id", login_id(&html).as_str()),
            ("username", hostile),
            ("password", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers().get("location"), None);
    let html = response.text().await.unwrap();
    assert!(!html.contains("<img"));
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("wrong password"));

    // The same form still works with the right password.
    let response = http
        .post(provider.endpoint("/login"))
        .form_urlencoded(&[
            ("login_id", login_id(&html).as_str()),
            ("username", "alice"),
            ("password", "alice-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn redirect_uri_mismatch_is_refused_without_redirecting() {
    let provider = start().await;
    for uri in [
        "http://127.0.0.1:4180/oauth2/callback/",
        "http://127.0.0.1:4180/oauth2/callback?x=1",
        "http://evil.example/cb",
    ] {
        let request = Authorize {
            redirect_uri: uri,
            ..Authorize::app(None)
        };
        let response = http().get(request.url(&provider)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{uri}");
        assert_eq!(response.headers().get("location"), None);
        assert!(response.text().await.unwrap().contains("redirect_uri"));
    }
    let unknown = Authorize {
        client_id: "nobody",
        ..Authorize::app(None)
    };
    let response = http().get(unknown.url(&provider)).send().await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn pkce_is_enforced() {
    let provider = start().await;
    provider.auto_approve(Some("alice"));
    let (_, challenge) = pkce_pair("the-real-one");

    // plain is refused with a redirect error.
    let mut plain = Authorize::app(None);
    plain.extra.extend([
        ("code_challenge", "a".repeat(43).leak() as &str),
        ("code_challenge_method", "plain"),
    ]);
    let response = http().get(plain.url(&provider)).send().await.unwrap();
    let location = location(&response);
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&location, "code"), None);

    // Public clients must send a challenge.
    let public = Authorize {
        client_id: "spa",
        redirect_uri: "http://127.0.0.1:4182/cb",
        ..Authorize::app(None)
    };
    let response = http().get(public.url(&provider)).send().await.unwrap();
    assert_eq!(
        query_param(&location_of(&response), "error").as_deref(),
        Some("invalid_request")
    );

    // A wrong verifier is refused, and so is a missing one.
    for verifier in [Some("x".repeat(50)), None] {
        let response = http()
            .get(Authorize::app(Some(&challenge)).url(&provider))
            .send()
            .await
            .unwrap();
        let code = query_param(&location_of(&response), "code").unwrap();
        let (status, body) = redeem(&provider, &code, verifier.as_deref()).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_grant");
    }

    // A verifier without a challenge in the request (downgrade) is refused.
    let response = http()
        .get(Authorize::app(None).url(&provider))
        .send()
        .await
        .unwrap();
    let code = query_param(&location_of(&response), "code").unwrap();
    let (status, body) = redeem(&provider, &code, Some(&"v".repeat(43))).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A public client with the right verifier and no secret succeeds.
    let (verifier, challenge) = pkce_pair("spa-verifier");
    let public = Authorize {
        client_id: "spa",
        redirect_uri: "http://127.0.0.1:4182/cb",
        challenge: Some(&challenge),
        ..Authorize::app(None)
    };
    let response = http().get(public.url(&provider)).send().await.unwrap();
    let code = query_param(&location_of(&response), "code").unwrap();
    let response = http()
        .post(provider.endpoint("/token"))
        .form_urlencoded(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:4182/cb"),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

fn location_of(response: &reqwest::Response) -> String {
    location(response)
}

#[tokio::test]
async fn reused_code_is_refused_and_revokes_its_tokens() {
    let provider = start().await;
    provider.auto_approve(Some("alice"));
    let response = http()
        .get(Authorize::app(None).url(&provider))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "scripted login redirects at once");
    let code = query_param(&location(&response), "code").unwrap();
    let (status, tokens) = redeem(&provider, &code, None).await;
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(introspect(&provider, access).await["active"], true);

    let (status, body) = redeem(&provider, &code, None).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(introspect(&provider, access).await["active"], false);
    assert_eq!(introspect(&provider, refresh).await["active"], false);
    let (status, body) = post_token(
        &provider,
        ("app", "app-secret"),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_replay_revokes_the_grant() {
    let provider = start().await;
    provider.auto_approve(Some("alice"));
    let response = http()
        .get(Authorize::app(None).url(&provider))
        .send()
        .await
        .unwrap();
    let code = query_param(&location(&response), "code").unwrap();
    let (_, first) = redeem(&provider, &code, None).await;
    let first_refresh = first["refresh_token"].as_str().unwrap();

    let (status, second) = post_token(
        &provider,
        ("app", "app-secret"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first_refresh),
        ],
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let second_refresh = second["refresh_token"].as_str().unwrap();
    assert_ne!(second_refresh, first_refresh);
    let (_, id) = verify(&provider, second["id_token"].as_str().unwrap()).await;
    assert_eq!(id["sub"], "alice");
    assert_eq!(id.get("nonce"), None, "refreshed ID tokens carry no nonce");

    // Another client cannot use it.
    let (status, body) = post_token(
        &provider,
        ("second", "second-secret"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", second_refresh),
        ],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Replaying the rotated-away token revokes everything of the grant.
    let (status, body) = post_token(
        &provider,
        ("app", "app-secret"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first_refresh),
        ],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(introspect(&provider, second_refresh).await["active"], false);
    assert_eq!(
        introspect(&provider, second["access_token"].as_str().unwrap()).await["active"],
        false
    );
}

#[tokio::test]
async fn userinfo_answers_bearer_tokens_only() {
    let provider = start().await;
    let token = provider.mint_access_token("alice", "app").unwrap();
    let response = http()
        .get(provider.endpoint("/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let claims: Value = response.json().await.unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["preferred_username"], "alice");

    let response = http()
        .get(provider.endpoint("/userinfo"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    let response = http()
        .get(provider.endpoint("/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn introspection_covers_opaque_and_jwt_tokens() {
    let provider = start_with(
        builder().client(
            oidc_dev_provider::DevClient::confidential("opaque", "opaque-secret")
                .redirect_uri("http://127.0.0.1:4183/cb")
                .access_token_format(oidc_dev_provider::AccessTokenFormat::Opaque),
        ),
    )
    .await;
    let opaque = provider.mint_access_token("alice", "opaque").unwrap();
    assert_eq!(opaque.matches('.').count(), 0, "opaque tokens are not JWTs");
    let jwt = provider.mint_access_token("alice", "app").unwrap();
    assert_eq!(jwt.matches('.').count(), 2);

    for (token, client_id, aud) in [
        (&opaque, "opaque", serde_json::Value::Null),
        (&jwt, "app", "https://api.example".into()),
    ] {
        let answer = introspect(&provider, token).await;
        assert_eq!(answer["active"], true, "{answer}");
        assert_eq!(answer["client_id"], client_id);
        assert_eq!(answer["sub"], "alice");
        assert_eq!(answer["username"], "alice");
        assert_eq!(answer["aud"], aud);
        assert_eq!(answer["iss"], provider.issuer().as_str());
        assert_eq!(answer["groups"], serde_json::json!(["admins"]));
        assert!(answer["exp"].as_u64().unwrap() > answer["iat"].as_u64().unwrap());
    }
    assert_eq!(
        introspect(&provider, "unknown").await,
        serde_json::json!({"active": false})
    );

    // Introspection requires client authentication.
    let response = http()
        .post(provider.endpoint("/introspect"))
        .basic_auth("app", Some("wrong"))
        .form_urlencoded(&[("token", &opaque)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );

    // Revocation makes a token inactive; expiry too.
    let response = http()
        .post(provider.endpoint("/revoke"))
        .form_urlencoded(&[
            ("token", &opaque),
            ("client_id", "opaque"),
            ("client_secret", "opaque-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(introspect(&provider, &opaque).await["active"], false);
    provider.advance_clock(std::time::Duration::from_secs(301));
    assert_eq!(introspect(&provider, &jwt).await["active"], false);
}

#[tokio::test]
async fn client_credentials_and_client_authentication() {
    let provider = start().await;
    let (status, tokens) = post_token(
        &provider,
        ("app", "app-secret"),
        &[("grant_type", "client_credentials"), ("scope", "jobs:run")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(tokens.get("refresh_token"), None);
    assert_eq!(tokens.get("id_token"), None);
    let (_, claims) = verify(&provider, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], "app");
    assert_eq!(claims["scope"], "jobs:run");

    let (status, body) = post_token(
        &provider,
        ("app", "wrong"),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // client_secret_post works as well.
    let response = http()
        .post(provider.endpoint("/token"))
        .form_urlencoded(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "app-secret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Public clients cannot use client credentials.
    let response = http()
        .post(provider.endpoint("/token"))
        .form_urlencoded(&[("grant_type", "client_credentials"), ("client_id", "spa")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");

    // Repeated parameters are refused.
    let response = http()
        .post(provider.endpoint("/token"))
        .basic_auth("app", Some("app-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn expired_codes_are_refused() {
    let provider = start().await;
    provider.auto_approve(Some("bob"));
    let response = http()
        .get(Authorize::app(None).url(&provider))
        .send()
        .await
        .unwrap();
    let code = query_param(&location(&response), "code").unwrap();
    provider.advance_clock(std::time::Duration::from_secs(61));
    let (status, body) = redeem(&provider, &code, None).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(body["error_description"], "code expired");
}

#[tokio::test]
async fn max_age_and_posted_authorization_requests() {
    let provider = start().await;
    let (_, cookie) = login(&provider, &Authorize::app(None), "alice", "alice-password").await;
    provider.advance_clock(std::time::Duration::from_secs(120));

    // A session older than max_age needs the form again; a younger one does not.
    for (max_age, expected_status) in [("60", 200), ("600", 302)] {
        let mut request = Authorize::app(None);
        request.extra.push(("max_age", max_age));
        let response = http()
            .get(request.url(&provider))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected_status, "max_age={max_age}");
    }

    // The same request as a POSTed form.
    let url = url::Url::parse(&Authorize::app(None).url(&provider)).unwrap();
    let response = http()
        .post(provider.endpoint("/authorize"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(url.query().unwrap().to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert!(query_param(&location(&response), "code").is_some());
}

#[tokio::test]
async fn public_clients_may_use_any_loopback_port_as_rfc_8252_asks() {
    let provider = start_with(builder().client(
        oidc_dev_provider::DevClient::public("cli").redirect_uri("http://127.0.0.1/callback"),
    ))
    .await;
    provider.auto_approve(Some("alice"));
    let (verifier, challenge) = pkce_pair("native-app");
    let redirect_uri = "http://127.0.0.1:49152/callback";
    let request = Authorize {
        client_id: "cli",
        redirect_uri,
        scope: "openid",
        challenge: Some(&challenge),
        extra: vec![],
    };
    let response = http().get(request.url(&provider)).send().await.unwrap();
    let location = location(&response);
    assert!(
        location.starts_with("http://127.0.0.1:49152/callback?code="),
        "{location}"
    );
    let code = query_param(&location, "code").unwrap();
    // The token request must repeat the very same redirect_uri.
    let token = |uri: &'static str| {
        let code = code.clone();
        let verifier = verifier.clone();
        let provider = &provider;
        async move {
            http()
                .post(provider.endpoint("/token"))
                .form_urlencoded(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", "cli"),
                    ("code", &code),
                    ("redirect_uri", uri),
                    ("code_verifier", &verifier),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(token("http://127.0.0.1:49153/callback").await, 400);
    assert_eq!(token(redirect_uri).await, 200);
}
