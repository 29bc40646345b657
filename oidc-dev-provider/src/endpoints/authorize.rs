//! The authorization endpoint and the sign-in form: which requests are shown an error page and
//! which are redirected back with one, when an existing session answers at once, and when a
//! code is issued.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};

use super::faults::injected_fault;
use super::par::pushed_params;
use super::pkce::is_pkce_value;
use super::respond::{error_page, html_response, redirect};
use super::session_cookie::{session_cookie_value, set_session_cookie};
use super::{App, has_scope};
use crate::html;
use crate::params::Params;
use crate::provider::{Endpoint, lock};
use crate::store::AuthorizationRequest;

/// Redirects an authorization error back to the client (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
fn authorization_error(
    app: &App,
    redirect_uri: &url::Url,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut url = redirect_uri.clone();
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("error", error);
        query.append_pair("error_description", description);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", app.issuer.as_str());
    }
    redirect(StatusCode::FOUND, url.as_str(), None)
}

pub(super) async fn authorize_get(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    authorize(app, query.unwrap_or_default().as_bytes(), headers).await
}

/// OpenID Connect Core §3.1.2.1: the authorization endpoint accepts POSTed forms too.
pub(super) async fn authorize_post(
    State(app): State<App>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    authorize(app, &body, headers).await
}

async fn authorize(app: App, raw_params: &[u8], headers: HeaderMap) -> Response {
    if let Some(response) = injected_fault(&app, Endpoint::Authorize).await {
        return response;
    }
    let params = match Params::parse(raw_params) {
        Ok(params) => params,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "invalid_request", &e.description()),
    };
    let params = match pushed_params(&app, params) {
        Ok(params) => params,
        Err(description) => {
            return error_page(StatusCode::BAD_REQUEST, "invalid_request", description);
        }
    };
    // Until client and redirect URI are known good, errors are shown, never redirected.
    let Some(client) = params
        .get("client_id")
        .and_then(|id| app.shared.clients.get(id))
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "unknown or missing client_id",
        );
    };
    let Some(redirect_uri) = params
        .get("redirect_uri")
        .filter(|uri| client.accepts_redirect_uri(uri))
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is missing or not registered for this client (exact match required)",
        );
    };
    let Ok(redirect_url) = url::Url::parse(redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not a URL",
        );
    };
    let state = params.get("state");
    let fail = |error: &str, description: &str| {
        authorization_error(&app, &redirect_url, state, error, description)
    };
    if params.get("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    let code_challenge = params.get("code_challenge");
    if let Some(challenge) = code_challenge {
        match params.get("code_challenge_method") {
            Some("S256") => {}
            _ => {
                return fail(
                    "invalid_request",
                    "code_challenge_method must be S256 (plain is not supported)",
                );
            }
        }
        if !is_pkce_value(challenge) || challenge.len() != 43 {
            return fail(
                "invalid_request",
                "code_challenge is not a base64url SHA-256 value",
            );
        }
    } else if params.get("code_challenge_method").is_some() {
        return fail(
            "invalid_request",
            "code_challenge_method without code_challenge",
        );
    } else if client.require_pkce {
        return fail(
            "invalid_request",
            "this client must use PKCE (code_challenge, S256)",
        );
    }
    let prompt = params.get("prompt").unwrap_or_default();
    let prompt_none = has_scope(prompt, "none");
    let prompt_login = has_scope(prompt, "login");
    if prompt_none && prompt.split(' ').count() > 1 {
        return fail(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        );
    }
    let max_age = match params.get("max_age").map(str::parse::<u64>) {
        None => None,
        Some(Ok(secs)) => Some(Duration::from_secs(secs)),
        Some(Err(_)) => return fail("invalid_request", "max_age is not a number of seconds"),
    };
    let request = AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scope: params.get("scope").unwrap_or("openid").to_owned(),
        state: state.map(str::to_owned),
        nonce: params.get("nonce").map(str::to_owned),
        code_challenge: code_challenge.map(str::to_owned),
        login_hint: params.get("login_hint").map(str::to_owned),
    };
    let now = app.shared.now();
    let shared = &app.shared;
    let mut store = lock(&shared.store);

    // An existing session answers at once unless a fresh login is asked for.
    let cookie = session_cookie_value(&headers);
    let session_ok = cookie
        .as_deref()
        .and_then(|c| store.sessions.get(c))
        .is_some_and(|s| max_age.is_none_or(|age| now.duration_since(s.auth_time) <= age));
    if let (Some(cookie), true, false) = (cookie.as_deref(), session_ok, prompt_login) {
        let code = store.issue_code(cookie, request.clone(), now, shared.settings.code_lifetime);
        drop(store);
        return code_redirect(&app, &request, code, None);
    }
    // Scripted mode: sign the configured user in without a form.
    let scripted_user = store
        .auto_approve
        .clone()
        .filter(|username| shared.users.contains_key(username));
    if let Some(username) = scripted_user {
        let cookie = store.open_session(&username, now);
        let code = store.issue_code(&cookie, request.clone(), now, shared.settings.code_lifetime);
        drop(store);
        let cookie = Some(set_session_cookie(&app, &cookie));
        return code_redirect(&app, &request, code, cookie);
    }
    if prompt_none {
        drop(store);
        return fail("login_required", "no session and prompt=none");
    }
    let username = request.login_hint.clone().unwrap_or_default();
    let client_id = request.client_id.clone();
    let login_id = store.park_login(request, now);
    drop(store);
    html_response(
        StatusCode::OK,
        html::login_page(
            &login_id,
            &app.url("/login"),
            &client_id,
            &username,
            app.shared.settings.sign_in_note.as_deref(),
            None,
        ),
    )
}

fn code_redirect(
    app: &App,
    request: &AuthorizationRequest,
    code: Option<String>,
    cookie: Option<String>,
) -> Response {
    let Ok(mut url) = url::Url::parse(&request.redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not a URL",
        );
    };
    let Some(code) = code else {
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "session vanished",
        );
    };
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("code", &code);
        if let Some(state) = &request.state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", app.issuer.as_str());
    }
    let status = if cookie.is_some() {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    redirect(status, url.as_str(), cookie)
}

pub(super) async fn login(State(app): State<App>, body: Bytes) -> Response {
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "invalid_request", &e.description()),
    };
    let now = app.shared.now();
    let login_id = params.get("login_id").unwrap_or_default();
    let username = params.get("username").unwrap_or_default();
    let password = params.get("password").unwrap_or_default();
    let mut store = lock(&app.shared.store);
    let Some((request, _)) = store
        .pending_logins
        .get(login_id)
        .filter(|(_, expires)| *expires > now)
        .cloned()
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "login_expired",
            "this sign-in form has expired or was already used; start again from the application",
        );
    };
    let authenticated = app
        .shared
        .users
        .get(username)
        .is_some_and(|user| user.password.ct_eq(password));
    if !authenticated {
        drop(store);
        tracing::info!("development provider: failed sign-in");
        return html_response(
            StatusCode::UNAUTHORIZED,
            html::login_page(
                login_id,
                &app.url("/login"),
                &request.client_id,
                username,
                app.shared.settings.sign_in_note.as_deref(),
                Some(&format!("Unknown user {username:?} or wrong password.")),
            ),
        );
    }
    store.pending_logins.remove(login_id);
    let cookie = store.open_session(username, now);
    let code = store.issue_code(
        &cookie,
        request.clone(),
        now,
        app.shared.settings.code_lifetime,
    );
    drop(store);
    let mut response = code_redirect(
        &app,
        &request,
        code,
        Some(set_session_cookie(&app, &cookie)),
    );
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}
