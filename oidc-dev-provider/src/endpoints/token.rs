//! The token endpoint: which grant a request asks for and whether it may have it (authorization
//! code with PKCE, refresh with rotation and reuse detection, client credentials), and the DPoP
//! proof that binds the tokens to a key.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use oidc_core::UnixTime;
use oidc_core::secret::constant_time_eq;
use serde_json::Value;

use super::client_auth::authenticate_client;
use super::device::{DEVICE_CODE_GRANT, device_code_grant};
use super::faults::injected_fault;
use super::issue::issue_token_response;
use super::pkce::{is_pkce_value, pkce_s256};
use super::respond::{OAuthError, json_response};
use super::{App, has_scope};
use crate::config::DevClient;
use crate::params::Params;
use crate::provider::{Endpoint, lock};
use crate::store::{Grant, Subject};

pub(super) async fn token(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(response) = injected_fault(&app, Endpoint::Token).await {
        return response;
    }
    match token_grant(&app, &headers, &body) {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(error) => error.into_response(),
    }
}

fn token_grant(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    let params = Params::parse(body).map_err(|e| OAuthError::invalid_request(e.description()))?;
    let client = authenticate_client(app, headers, &params, true)?;
    let now = app.shared.now();
    let dpop_jkt = dpop_proof_key(app, headers, now)?;
    let dpop_jkt = dpop_jkt.as_deref();
    match params.get("grant_type") {
        Some("authorization_code") => authorization_code_grant(app, client, &params, dpop_jkt, now),
        Some("refresh_token") => refresh_token_grant(app, client, &params, dpop_jkt, now),
        Some("client_credentials") => client_credentials_grant(app, client, &params, dpop_jkt, now),
        Some(DEVICE_CODE_GRANT) => device_code_grant(app, client, &params, now),
        Some(_) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "supported: authorization_code, refresh_token, client_credentials, device_code",
        )),
        None => Err(OAuthError::invalid_request("grant_type is missing")),
    }
}

/// The thumbprint of the key a token request's `DPoP` proof (RFC 9449 §5) proves, when it
/// carries one; a bad proof is an `invalid_dpop_proof` error.
fn dpop_proof_key(
    app: &App,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<Option<String>, OAuthError> {
    let mut proofs = headers.get_all("dpop").iter();
    let Some(proof) = proofs.next() else {
        return Ok(None);
    };
    let invalid = |description: String| {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_dpop_proof", description)
    };
    if proofs.next().is_some() {
        return Err(invalid("more than one DPoP header".into()));
    }
    let proof = proof
        .to_str()
        .map_err(|_| invalid("the DPoP header is not text".into()))?;
    let token_endpoint = url::Url::parse(&app.url("/token"))
        .map_err(|_| invalid("the token endpoint has no URL".into()))?;
    let request = oidc_core::dpop::DpopRequest {
        method: "POST",
        uri: &token_endpoint,
        access_token: None,
        bound_jkt: None,
    };
    let mut store = lock(&app.shared.store);
    let verified = oidc_core::dpop::verify_proof(
        proof,
        &request,
        &oidc_core::dpop::DpopPolicy::new(),
        &mut store.dpop_jtis,
        now,
    )
    .map_err(|e| invalid(format!("{} ({})", e, e.code())))?;
    Ok(Some(verified.jkt))
}

fn authorization_code_grant(
    app: &App,
    client: &DevClient,
    params: &Params,
    dpop_jkt: Option<&str>,
    now: UnixTime,
) -> Result<Value, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let mut store = lock(&app.shared.store);
    let record = store
        .codes
        .get(code)
        .cloned()
        .ok_or_else(|| OAuthError::invalid_grant("unknown code"))?;
    if let Some(grant_id) = record.redeemed_into {
        // RFC 6749 §4.1.2: a code used twice revokes what it already produced.
        store.revoke_grant(grant_id);
        tracing::warn!(client_id = %client.client_id, "authorization code reused; its tokens are revoked");
        return Err(OAuthError::invalid_grant(
            "code already used; the tokens issued from it are revoked",
        ));
    }
    if record.request.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "code was issued to another client",
        ));
    }
    if record.expires <= now {
        store.codes.remove(code);
        return Err(OAuthError::invalid_grant("code expired"));
    }
    if params.get("redirect_uri") != Some(record.request.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    match (&record.request.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            let computed = pkce_s256(verifier);
            if !is_pkce_value(verifier)
                || !constant_time_eq(computed.as_bytes(), challenge.as_bytes())
            {
                store.codes.remove(code);
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match code_challenge",
                ));
            }
        }
        (Some(_), None) => {
            store.codes.remove(code);
            return Err(OAuthError::invalid_grant("code_verifier is missing"));
        }
        (None, Some(_)) => {
            store.codes.remove(code);
            return Err(OAuthError::invalid_grant(
                "code_verifier sent but the authorization request had no code_challenge",
            ));
        }
        (None, None) => {}
    }
    let grant_id = store.add_grant(Grant {
        client_id: client.client_id.clone(),
        subject: Subject::User {
            username: record.username.clone(),
            sid: Some(record.sid.clone()),
            auth_time: record.auth_time,
        },
        scope: record.request.scope.clone(),
        revoked: false,
    });
    if let Some(stored) = store.codes.get_mut(code) {
        stored.redeemed_into = Some(grant_id);
    }
    if let Some(jkt) = dpop_jkt {
        store.dpop_bindings.insert(grant_id, jkt.to_owned());
    }
    store.prune(now);
    let nonce = record.request.nonce.as_deref();
    Ok(issue_token_response(
        &app.shared,
        &app.issuer,
        &mut store,
        grant_id,
        nonce,
        true,
        now,
    )?)
}

fn refresh_token_grant(
    app: &App,
    client: &DevClient,
    params: &Params,
    dpop_jkt: Option<&str>,
    now: UnixTime,
) -> Result<Value, OAuthError> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let mut store = lock(&app.shared.store);
    let record = store
        .refresh_tokens
        .get(token)
        .cloned()
        .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
    let grant = store
        .grants
        .get(&record.grant_id)
        .cloned()
        .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "refresh token was issued to another client",
        ));
    }
    if record.used {
        // A rotated-away token presented again: someone holds a copy. End the whole grant.
        store.revoke_grant(record.grant_id);
        return Err(OAuthError::invalid_grant(
            "refresh token already used; the grant is revoked",
        ));
    }
    if grant.revoked || record.expires <= now {
        return Err(OAuthError::invalid_grant(
            "refresh token expired or revoked",
        ));
    }
    let widens = params
        .get("scope")
        .is_some_and(|requested| !requested.split(' ').all(|s| has_scope(&grant.scope, s)));
    if widens {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "a refresh cannot widen the scope",
        ));
    }
    let bound = store.dpop_bindings.get(&record.grant_id).cloned();
    if client.is_public() && bound.is_some() && bound.as_deref() != dpop_jkt {
        // RFC 9449 §5: a public client's refresh token is bound to its key.
        return Err(OAuthError::invalid_grant(
            "the refresh token is bound to another DPoP key",
        ));
    }
    if let Some(stored) = store.refresh_tokens.get_mut(token) {
        stored.used = true;
    }
    match dpop_jkt {
        Some(jkt) => store.dpop_bindings.insert(record.grant_id, jkt.to_owned()),
        None => store.dpop_bindings.remove(&record.grant_id),
    };
    store.prune(now);
    let grant_id = record.grant_id;
    Ok(issue_token_response(
        &app.shared,
        &app.issuer,
        &mut store,
        grant_id,
        None,
        true,
        now,
    )?)
}

fn client_credentials_grant(
    app: &App,
    client: &DevClient,
    params: &Params,
    dpop_jkt: Option<&str>,
    now: UnixTime,
) -> Result<Value, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "public clients cannot use client_credentials",
        ));
    }
    let mut store = lock(&app.shared.store);
    let grant_id = store.add_grant(Grant {
        client_id: client.client_id.clone(),
        subject: Subject::Client,
        scope: params.get("scope").unwrap_or_default().to_owned(),
        revoked: false,
    });
    if let Some(jkt) = dpop_jkt {
        store.dpop_bindings.insert(grant_id, jkt.to_owned());
    }
    store.prune(now);
    Ok(issue_token_response(
        &app.shared,
        &app.issuer,
        &mut store,
        grant_id,
        None,
        false,
        now,
    )?)
}
