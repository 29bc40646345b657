//! RP-initiated logout (the end-session endpoint) and back-channel logout: which sessions end,
//! where the browser goes next, and the logout tokens posted to the clients.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use oidc_core::Issuer;
use serde_json::json;

use super::App;
use super::faults::injected_fault;
use super::respond::{error_page, html_response, redirect};
use super::session_cookie::{clear_session_cookie, session_cookie_value};
use crate::html;
use crate::params::Params;
use crate::provider::{BackchannelDelivery, Endpoint, Shared, lock};
use crate::store::{BrowserSession, random_token};

const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

pub(super) async fn end_session_get(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    end_session(app, params, headers).await
}

pub(super) async fn end_session_post(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Params::parse(&body);
    let query = Params::parse(query.unwrap_or_default().as_bytes());
    let params = match (form, query) {
        (Ok(form), Ok(query)) => Ok(form.merged(query)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    end_session(app, params, headers).await
}

async fn end_session(
    app: App,
    params: Result<Params, crate::params::ParamsError>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = injected_fault(&app, Endpoint::EndSession).await {
        return response;
    }
    let params = match params {
        Ok(params) => params,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "invalid_request", &e.description()),
    };
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(token) => match lock(&app.shared.store).id_tokens.get(token).cloned() {
            Some(record) => Some(record),
            None => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "id_token_hint is not an ID token issued by this provider",
                );
            }
        },
    };
    let client_id = match (
        hint.as_ref().map(|h| h.client_id.as_str()),
        params.get("client_id"),
    ) {
        (Some(from_hint), Some(given)) if from_hint != given => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "client_id does not match the id_token_hint",
            );
        }
        (Some(id), _) | (None, Some(id)) => Some(id.to_owned()),
        (None, None) => None,
    };
    let client = client_id
        .as_deref()
        .and_then(|id| app.shared.clients.get(id));
    let post_logout = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => match client {
            Some(client) if client.post_logout_redirect_uris.iter().any(|r| r == uri) => {
                match url::Url::parse(uri) {
                    Ok(url) => Some(url),
                    Err(_) => {
                        return error_page(
                            StatusCode::BAD_REQUEST,
                            "invalid_request",
                            "post_logout_redirect_uri is not a URL",
                        );
                    }
                }
            }
            _ => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "post_logout_redirect_uri is not registered for this client (or no client was identified)",
                );
            }
        },
    };
    let cookie = session_cookie_value(&headers);
    let ended = {
        let mut store = lock(&app.shared.store);
        let sid_from_hint = hint.as_ref().and_then(|h| h.sid.clone());
        let sid_from_cookie = cookie
            .as_deref()
            .and_then(|c| store.sessions.get(c))
            .map(|s| s.sid.clone());
        let sids: Vec<String> = sid_from_hint.into_iter().chain(sid_from_cookie).collect();
        store.end_sessions(|s| sids.contains(&s.sid))
    };
    send_backchannel_logouts(&app.shared, &app.issuer, &ended).await;
    let clear = Some(clear_session_cookie(&app));
    match post_logout {
        Some(mut url) => {
            if let Some(state) = params.get("state") {
                url.query_pairs_mut().append_pair("state", state);
            }
            redirect(StatusCode::FOUND, url.as_str(), clear)
        }
        None => {
            let back = client.and_then(|client| {
                client
                    .post_logout_redirect_uris
                    .first()
                    .map(|url| (client.client_id.as_str(), url.as_str()))
            });
            let mut response = html_response(StatusCode::OK, html::signed_out_page(back));
            if let Some(value) = clear.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
    }
}

/// POSTs a logout token to every client of the ended sessions that registered a
/// `backchannel_logout_uri`, waits for the answers and records them.
pub(crate) async fn send_backchannel_logouts(
    shared: &Shared,
    issuer: &Issuer,
    ended: &[BrowserSession],
) -> Vec<BackchannelDelivery> {
    let now = shared.now();
    let mut posts = Vec::new();
    for session in ended {
        let Some(user) = shared.users.get(&session.username) else {
            continue;
        };
        for client_id in &session.clients {
            let Some(uri) = shared
                .clients
                .get(client_id)
                .and_then(|c| c.backchannel_logout_uri.clone())
            else {
                continue;
            };
            let claims = json!({
                "iss": issuer.as_str(),
                "aud": client_id,
                "iat": now.as_secs(),
                "exp": now.saturating_add(Duration::from_secs(120)).as_secs(),
                "jti": random_token(),
                "sub": user.subject,
                "sid": session.sid,
                "events": { BACKCHANNEL_EVENT: {} },
            });
            let token = lock(&shared.keys).sign("logout+jwt", &claims);
            posts.push((client_id.clone(), uri, token));
        }
    }
    let mut deliveries = Vec::new();
    for (client_id, uri, token) in posts {
        let outcome = match token {
            Err(e) => Err(e.to_string()),
            Ok(token) => shared
                .http
                .post(&uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string([("logout_token", token)]).unwrap_or_default())
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string()),
        };
        if let Err(error) = &outcome {
            tracing::warn!(%client_id, %uri, %error, "back-channel logout delivery failed");
        }
        deliveries.push(BackchannelDelivery {
            client_id,
            uri,
            outcome,
        });
    }
    lock(&shared.deliveries).extend(deliveries.iter().cloned());
    deliveries
}
