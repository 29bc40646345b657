//! Token revocation (RFC 7009): a client may revoke its own tokens; a refresh token ends its
//! whole grant.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};

use super::App;
use super::client_auth::authenticate_client;
use super::respond::OAuthError;
use crate::params::Params;
use crate::provider::lock;

pub(super) async fn revoke(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(e) => return OAuthError::invalid_request(e.description()).into_response(),
    };
    let client = match authenticate_client(&app, &headers, &params, true) {
        Ok(client) => client,
        Err(error) => return error.into_response(),
    };
    let Some(token) = params.get("token") else {
        return OAuthError::invalid_request("token is missing").into_response();
    };
    let mut store = lock(&app.shared.store);
    let grant_id = store
        .refresh_tokens
        .get(token)
        .map(|r| r.grant_id)
        .or_else(|| store.access_tokens.get(token).map(|r| r.grant_id));
    if let Some(grant_id) = grant_id {
        let owned = store
            .grants
            .get(&grant_id)
            .is_some_and(|g| g.client_id == client.client_id);
        if owned {
            if store.refresh_tokens.contains_key(token) {
                store.revoke_grant(grant_id);
            } else {
                store.access_tokens.remove(token);
            }
        }
    }
    // RFC 7009 §2.2: unknown tokens are answered 200 as well.
    StatusCode::OK.into_response()
}
