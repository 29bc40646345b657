//! Token introspection (RFC 7662): which tokens are active, and what is said about them and
//! their subject.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::App;
use super::client_auth::authenticate_client;
use super::faults::injected_fault;
use super::issue::audience_value;
use super::respond::{OAuthError, json_response};
use crate::config::AccessTokenFormat;
use crate::params::Params;
use crate::provider::{Endpoint, lock};
use crate::store::{Grant, Subject};

pub(super) async fn introspect(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(response) = injected_fault(&app, Endpoint::Introspection).await {
        return response;
    }
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(e) => return OAuthError::invalid_request(e.description()).into_response(),
    };
    if let Err(error) = authenticate_client(&app, &headers, &params, false) {
        return error.into_response();
    }
    let Some(token) = params.get("token") else {
        return OAuthError::invalid_request("token is missing").into_response();
    };
    let now = app.shared.now();
    let store = lock(&app.shared.store);
    let inactive = json!({"active": false});
    let answer = if let Some((record, grant)) = store.active_access(token, now) {
        let mut answer = json!({
            "active": true,
            "token_type": "Bearer",
            "client_id": grant.client_id,
            "iss": app.issuer.as_str(),
            "iat": record.issued.as_secs(),
            "exp": record.expires.as_secs(),
            "jti": record.jti,
        });
        // Like common providers without resource indicators, an opaque token of a client with
        // no configured audience is introspected without `aud`: only `client_id` binds it.
        let audience_implied = app.shared.clients.get(&grant.client_id).is_some_and(|c| {
            c.access_token_format == AccessTokenFormat::Opaque && c.access_token_audience.is_empty()
        });
        if !audience_implied {
            answer["aud"] = audience_value(&record.audience);
        }
        add_subject(&app, grant, &mut answer);
        answer
    } else if let Some((record, grant)) = store.active_refresh(token, now) {
        let mut answer = json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": grant.client_id,
            "iss": app.issuer.as_str(),
            "iat": record.issued.as_secs(),
            "exp": record.expires.as_secs(),
        });
        add_subject(&app, grant, &mut answer);
        answer
    } else {
        inactive
    };
    json_response(StatusCode::OK, &answer)
}

fn add_subject(app: &App, grant: &Grant, answer: &mut Value) {
    if !grant.scope.is_empty() {
        answer["scope"] = grant.scope.clone().into();
    }
    match &grant.subject {
        Subject::User { username, .. } => {
            answer["username"] = username.clone().into();
            if let Some(user) = app.shared.users.get(username) {
                answer["sub"] = user.subject.clone().into();
                if !user.groups.is_empty() {
                    answer["groups"] = json!(user.groups);
                }
                if let Some(email) = &user.email {
                    answer["email"] = email.clone().into();
                }
            }
        }
        Subject::Client => answer["sub"] = grant.client_id.clone().into(),
    }
}
