//! Pushed authorization requests (RFC 9126): the push endpoint, and which parameters an
//! authorization request carrying a `request_uri` stands for.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::json;

use super::App;
use super::client_auth::authenticate_client;
use super::faults::injected_fault;
use super::respond::{OAuthError, json_response};
use crate::params::Params;
use crate::provider::{Endpoint, lock};
use crate::store::random_token;

/// The parameters an authorization request stands for: those pushed earlier when it carries a
/// `request_uri` (used once, before it expires, by the client that pushed it), otherwise its
/// own, which a provider requiring pushed requests refuses.
pub(super) fn pushed_params(app: &App, params: Params) -> Result<Params, &'static str> {
    let settings = app.shared.settings.pushed_authorization;
    let Some(request_uri) = params.get("request_uri") else {
        if settings.required {
            return Err("this provider requires pushed authorization requests (request_uri)");
        }
        return Ok(params);
    };
    if !settings.offered {
        return Err("request_uri is not supported");
    }
    let now = app.shared.now();
    let pushed = lock(&app.shared.store).pushed_requests.remove(request_uri);
    let Some((client_id, body, expires_at)) = pushed else {
        return Err("request_uri is unknown or already used");
    };
    if now >= expires_at {
        return Err("request_uri has expired");
    }
    if params.get("client_id") != Some(client_id.as_str()) {
        return Err("client_id does not match the pushed request");
    }
    let pushed = Params::parse(&body).map_err(|_| "the pushed request is unreadable")?;
    Ok(pushed.with("client_id", &client_id))
}

/// The pushed authorization request endpoint (RFC 9126 §2): authenticates the client, checks
/// the redirect URI, keeps the parameters for 60 seconds under a fresh `request_uri`.
pub(super) async fn pushed_authorization(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = injected_fault(&app, Endpoint::PushedAuthorization).await {
        return response;
    }
    if !app.shared.settings.pushed_authorization.offered {
        return OAuthError::new(
            StatusCode::NOT_FOUND,
            "invalid_request",
            "pushed authorization requests are not offered",
        )
        .into_response();
    }
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(e) => return OAuthError::invalid_request(e.description()).into_response(),
    };
    let client = match authenticate_client(&app, &headers, &params, true) {
        Ok(client) => client,
        Err(e) => return e.into_response(),
    };
    if params.get("request_uri").is_some() {
        return OAuthError::invalid_request("request_uri cannot be pushed").into_response();
    }
    if !params
        .get("redirect_uri")
        .is_some_and(|uri| client.accepts_redirect_uri(uri))
    {
        return OAuthError::invalid_request(
            "redirect_uri is missing or not registered for this client",
        )
        .into_response();
    }
    const LIFETIME: Duration = Duration::from_secs(60);
    let request_uri = format!("urn:ietf:params:oauth:request_uri:{}", random_token());
    let expires_at = app.shared.now().saturating_add(LIFETIME);
    lock(&app.shared.store).pushed_requests.insert(
        request_uri.clone(),
        (client.client_id.clone(), body.to_vec(), expires_at),
    );
    json_response(
        StatusCode::CREATED,
        &json!({"request_uri": request_uri, "expires_in": LIFETIME.as_secs()}),
    )
}
