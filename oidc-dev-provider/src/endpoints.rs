//! The HTTP endpoints: what each request is checked against and what it answers. Everything
//! a browser or a client sends is untrusted; errors are answered in the protocol's own form
//! (a redirect with `error=`, a JSON error body, or an escaped HTML page).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use oidc_core::secret::constant_time_eq;
use oidc_core::{Issuer, UnixTime};
use serde_json::{Value, json};

use crate::config::{AccessTokenFormat, DevClient};
use crate::html;
use crate::keys::{KeyError, left_half_hash};
use crate::params::Params;
use crate::provider::{BackchannelDelivery, Endpoint, Fault, Shared, lock};
use crate::store::{
    AccessRecord, AuthorizationRequest, BrowserSession, DeviceRecord, Grant, IdTokenRecord,
    RefreshRecord, Store, Subject, random_token,
};

/// The provider's session cookie. Cookies on 127.0.0.1 are shared by every port, so the name
/// must not collide with the relying parties' own cookies.
pub const SESSION_COOKIE: &str = "devop_session";

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(600);
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    issuer: Issuer,
    /// The issuer's path without a trailing `/` (empty at the root): the prefix of every route.
    prefix: String,
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer.as_str().trim_end_matches('/'), path)
    }

    fn cookie_path(&self) -> &str {
        if self.prefix.is_empty() {
            "/"
        } else {
            &self.prefix
        }
    }
}

/// The routes under the issuer's path.
pub(crate) fn router(shared: Arc<Shared>, issuer: Issuer) -> Router {
    let prefix = issuer.url().path().trim_end_matches('/').to_owned();
    let app = App {
        shared,
        issuer,
        prefix: prefix.clone(),
    };
    let routes = Router::new()
        .route("/", get(index))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/par", post(pushed_authorization))
        .route("/login", post(login))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo).post(userinfo))
        .route("/introspect", post(introspect))
        .route("/revoke", post(revoke))
        .route("/end_session", get(end_session_get).post(end_session_post))
        .route("/device_authorization", post(device_authorization))
        .route("/device", get(device_page).post(device_approve))
        .with_state(app);
    if prefix.is_empty() {
        routes
    } else {
        Router::new().nest(&prefix, routes)
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // No form-action: browsers apply it to the redirect that follows the login POST, which
    // leaves for the client's origin.
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    response
}

fn error_page(status: StatusCode, error: &str, description: &str) -> Response {
    html_response(status, html::error_page(error, description))
}

fn redirect(status: StatusCode, location: &str, cookie: Option<String>) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CACHE_CONTROL, "no-store");
    if let Ok(value) = HeaderValue::from_str(location) {
        builder = builder.header(header::LOCATION, value);
    }
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        builder = builder.header(header::SET_COOKIE, cookie);
    }
    builder
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// An OAuth error answered as JSON (RFC 6749 §5.2).
#[derive(Debug)]
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// Answer `WWW-Authenticate: Basic` (the client tried HTTP Basic and failed).
    basic_challenge: bool,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    fn invalid_client(description: impl Into<String>, basic: bool) -> Self {
        OAuthError {
            basic_challenge: basic,
            ..Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
        }
    }

    fn server_error(error: &KeyError) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            error.to_string(),
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = json_response(
            self.status,
            &json!({ "error": self.error, "error_description": self.description }),
        );
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"oidc-dev-provider\""),
            );
        }
        response
    }
}

/// Counts the request and applies an injected fault: `Some` is the answer to send instead.
async fn injected_fault(app: &App, endpoint: Endpoint) -> Option<Response> {
    *lock(&app.shared.counts).entry(endpoint).or_insert(0) += 1;
    let fault = {
        let mut faults = lock(&app.shared.faults);
        let plan = faults.get_mut(&endpoint)?;
        let fault = plan.fault.clone();
        match &mut plan.remaining {
            Some(0) => {
                faults.remove(&endpoint);
                return None;
            }
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    faults.remove(&endpoint);
                }
            }
            None => {}
        }
        fault
    };
    match fault {
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some((status, "injected failure").into_response())
        }
        Fault::Garbage => Some(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "<html>{\"not json",
            )
                .into_response(),
        ),
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
    }
}

fn session_cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn set_session_cookie(app: &App, value: &str) -> String {
    let secure = if app.issuer.url().scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{SESSION_COOKIE}={value}; Path={}; HttpOnly; SameSite=Lax{secure}",
        app.cookie_path()
    )
}

fn clear_session_cookie(app: &App) -> String {
    format!(
        "{SESSION_COOKIE}=; Path={}; HttpOnly; SameSite=Lax; Max-Age=0",
        app.cookie_path()
    )
}

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

/// `audience` as a JSON string when single, an array otherwise.
fn audience_value(audience: &[String]) -> Value {
    match audience {
        [one] => Value::String(one.clone()),
        many => json!(many),
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery and keys

async fn index(State(app): State<App>) -> Response {
    html_response(
        StatusCode::OK,
        html::message_page(
            "Development OpenID Provider",
            &format!(
                "Issuer {}. Discovery at {}.",
                app.issuer,
                app.url("/.well-known/openid-configuration")
            ),
        ),
    )
}

async fn discovery(State(app): State<App>) -> Response {
    if let Some(response) = injected_fault(&app, Endpoint::Discovery).await {
        return response;
    }
    json_response(StatusCode::OK, &discovery_document(&app))
}

fn discovery_document(app: &App) -> Value {
    let mut document = base_discovery_document(app);
    let par = app.shared.settings.pushed_authorization;
    if par.offered {
        document["pushed_authorization_request_endpoint"] = json!(app.url("/par"));
        document["require_pushed_authorization_requests"] = json!(par.required);
    }
    document
}

fn base_discovery_document(app: &App) -> Value {
    json!({
        "issuer": app.issuer.as_str(),
        "authorization_endpoint": app.url("/authorize"),
        "token_endpoint": app.url("/token"),
        "userinfo_endpoint": app.url("/userinfo"),
        "jwks_uri": app.url("/jwks"),
        "end_session_endpoint": app.url("/end_session"),
        "introspection_endpoint": app.url("/introspect"),
        "revocation_endpoint": app.url("/revoke"),
        "device_authorization_endpoint": app.url("/device_authorization"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "client_credentials", DEVICE_CODE_GRANT
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": ["openid", "profile", "email", "groups", "offline_access"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "azp",
            "name", "preferred_username", "email", "email_verified", "groups"
        ],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": ["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"],
        "prompt_values_supported": ["none", "login"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    })
}

async fn jwks(State(app): State<App>) -> Response {
    if let Some(response) = injected_fault(&app, Endpoint::Jwks).await {
        return response;
    }
    let body = lock(&app.shared.keys).jwks();
    let mut response = json_response(StatusCode::OK, &body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    let max_age = format!(
        "public, max-age={}",
        app.shared.settings.jwks_max_age.as_secs()
    );
    if let Ok(value) = HeaderValue::from_str(&max_age) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    response
}

// ---------------------------------------------------------------------------------------------
// Authorization and login

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

async fn authorize_get(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    authorize(app, query.unwrap_or_default().as_bytes(), headers).await
}

/// OpenID Connect Core §3.1.2.1: the authorization endpoint accepts POSTed forms too.
async fn authorize_post(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
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

/// The parameters an authorization request stands for: those pushed earlier when it carries a
/// `request_uri` (used once, before it expires, by the client that pushed it), otherwise its
/// own, which a provider requiring pushed requests refuses.
fn pushed_params(app: &App, params: Params) -> Result<Params, &'static str> {
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
async fn pushed_authorization(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
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

/// Whether `value` is 43 to 128 characters of the PKCE alphabet (RFC 7636 §4.1).
fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
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

async fn login(State(app): State<App>, body: Bytes) -> Response {
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

// ---------------------------------------------------------------------------------------------
// Client authentication and the token endpoint

/// Authenticates the client of a back-channel request: HTTP Basic, `client_secret` in the body,
/// or `client_id` alone for public clients when `allow_public` is set.
fn authenticate_client<'a>(
    app: &'a App,
    headers: &HeaderMap,
    params: &Params,
    allow_public: bool,
) -> Result<&'a DevClient, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    let (client_id, secret, used_basic) = match basic {
        Some(encoded) => {
            if params.get("client_secret").is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not two",
                ));
            }
            let decoded = STANDARD
                .decode(encoded.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials", true))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials", true))?;
            // RFC 6749 §2.3.1: both halves are form-urlencoded.
            let unescape = |s: &str| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
                    .ok()
                    .and_then(|mut v| v.pop())
                    .map(|(_, v)| v)
            };
            let id = unescape(id)
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials", true))?;
            let secret = unescape(secret)
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials", true))?;
            if params.get("client_id").is_some_and(|p| p != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Basic credentials",
                ));
            }
            (id, Some(secret), true)
        }
        None => {
            let id = params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_client("no client authentication", false))?;
            (
                id.to_owned(),
                params.get("client_secret").map(str::to_owned),
                false,
            )
        }
    };
    let client = app
        .shared
        .clients
        .get(&client_id)
        .ok_or_else(|| OAuthError::invalid_client("unknown client", used_basic))?;
    match (&client.secret, secret) {
        (Some(expected), Some(given)) if expected.ct_eq(&given) => Ok(client),
        (None, None) if allow_public => Ok(client),
        (None, None) => Err(OAuthError::invalid_client(
            "public clients cannot use this endpoint",
            used_basic,
        )),
        (None, Some(_)) => Err(OAuthError::invalid_client(
            "this client is public and has no secret",
            used_basic,
        )),
        (Some(_), _) => Err(OAuthError::invalid_client(
            "client authentication failed",
            used_basic,
        )),
    }
}

async fn token(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
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

/// `BASE64URL(SHA256(verifier))`.
fn pkce_s256(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
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

/// The token response for a grant: an access token, an ID token when the scope has `openid`
/// and a user is behind it, and a refresh token when `with_refresh`.
pub(crate) fn issue_token_response(
    shared: &Shared,
    issuer: &Issuer,
    store: &mut Store,
    grant_id: u64,
    nonce: Option<&str>,
    with_refresh: bool,
    now: UnixTime,
) -> Result<Value, IssueError> {
    let access_token = issue_access_token(shared, issuer, store, grant_id, now)?;
    let grant = store
        .grants
        .get(&grant_id)
        .cloned()
        .ok_or(IssueError::UnknownGrant)?;
    let token_type = if store.dpop_bindings.contains_key(&grant_id) {
        "DPoP"
    } else {
        "Bearer"
    };
    let mut response = json!({
        "access_token": access_token,
        "token_type": token_type,
        "expires_in": shared.settings.access_token_lifetime.as_secs(),
    });
    if !grant.scope.is_empty() {
        response["scope"] = Value::String(grant.scope.clone());
    }
    if let Subject::User {
        username,
        sid,
        auth_time,
    } = &grant.subject
    {
        if has_scope(&grant.scope, "openid") {
            let user = shared
                .users
                .get(username)
                .ok_or_else(|| IssueError::UnknownUser(username.clone()))?;
            let mut claims = user.claims_for_scope(&grant.scope);
            claims.insert("iss".into(), issuer.as_str().into());
            claims.insert("aud".into(), grant.client_id.clone().into());
            claims.insert("azp".into(), grant.client_id.clone().into());
            claims.insert("iat".into(), now.as_secs().into());
            claims.insert(
                "exp".into(),
                now.saturating_add(shared.settings.id_token_lifetime)
                    .as_secs()
                    .into(),
            );
            claims.insert("auth_time".into(), auth_time.as_secs().into());
            claims.insert("at_hash".into(), left_half_hash(&access_token).into());
            if let Some(nonce) = nonce {
                claims.insert("nonce".into(), nonce.into());
            }
            if let Some(sid) = sid {
                claims.insert("sid".into(), sid.clone().into());
            }
            let id_token = lock(&shared.keys).sign("JWT", &claims)?;
            store.id_tokens.insert(
                id_token.clone(),
                IdTokenRecord {
                    client_id: grant.client_id.clone(),
                    sid: sid.clone(),
                },
            );
            response["id_token"] = Value::String(id_token);
        }
        if with_refresh {
            let refresh = random_token();
            store.refresh_tokens.insert(
                refresh.clone(),
                RefreshRecord {
                    grant_id,
                    issued: now,
                    expires: now.saturating_add(shared.settings.refresh_token_lifetime),
                    used: false,
                },
            );
            response["refresh_token"] = Value::String(refresh);
        }
    }
    Ok(response)
}

/// Why tokens could not be issued for a grant.
#[derive(Debug)]
pub(crate) enum IssueError {
    Key(KeyError),
    UnknownGrant,
    UnknownUser(String),
}

impl From<KeyError> for IssueError {
    fn from(error: KeyError) -> Self {
        IssueError::Key(error)
    }
}

impl From<IssueError> for OAuthError {
    fn from(error: IssueError) -> Self {
        match error {
            IssueError::Key(e) => OAuthError::server_error(&e),
            IssueError::UnknownGrant => OAuthError::invalid_grant("the grant no longer exists"),
            IssueError::UnknownUser(_) => OAuthError::invalid_grant("the user no longer exists"),
        }
    }
}

/// Issues and records an access token for a grant: an RFC 9068 JWT or an opaque string,
/// as the client is configured.
pub(crate) fn issue_access_token(
    shared: &Shared,
    issuer: &Issuer,
    store: &mut Store,
    grant_id: u64,
    now: UnixTime,
) -> Result<String, IssueError> {
    let grant = store.grants.get(&grant_id).cloned();
    let client = grant
        .as_ref()
        .and_then(|g| shared.clients.get(&g.client_id));
    let (Some(grant), Some(client)) = (grant, client) else {
        return Err(IssueError::UnknownGrant);
    };
    let audience = client.audience();
    let jti = random_token();
    let expires = now.saturating_add(shared.settings.access_token_lifetime);
    let token = match client.access_token_format {
        AccessTokenFormat::Opaque => random_token(),
        AccessTokenFormat::Jwt => {
            let mut claims = serde_json::Map::new();
            match &grant.subject {
                Subject::User {
                    username,
                    sid,
                    auth_time,
                } => {
                    if let Some(user) = shared.users.get(username) {
                        claims = user.claims_for_scope(&grant.scope);
                    }
                    claims.insert("auth_time".into(), auth_time.as_secs().into());
                    if let Some(sid) = sid {
                        claims.insert("sid".into(), sid.clone().into());
                    }
                }
                Subject::Client => {
                    claims.insert("sub".into(), client.client_id.clone().into());
                }
            }
            claims.insert("iss".into(), issuer.as_str().into());
            claims.insert("aud".into(), audience_value(&audience));
            claims.insert("client_id".into(), client.client_id.clone().into());
            claims.insert("iat".into(), now.as_secs().into());
            claims.insert("exp".into(), expires.as_secs().into());
            claims.insert("jti".into(), jti.clone().into());
            if !grant.scope.is_empty() {
                claims.insert("scope".into(), grant.scope.clone().into());
            }
            if let Some(jkt) = store.dpop_bindings.get(&grant_id) {
                claims.insert("cnf".into(), json!({ "jkt": jkt }));
            }
            lock(&shared.keys).sign("at+jwt", &claims)?
        }
    };
    store.access_tokens.insert(
        token.clone(),
        AccessRecord {
            grant_id,
            jti,
            issued: now,
            expires,
            audience,
        },
    );
    Ok(token)
}

// ---------------------------------------------------------------------------------------------
// Userinfo, introspection, revocation

async fn userinfo(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(response) = injected_fault(&app, Endpoint::Userinfo).await {
        return response;
    }
    let bearer_error = |status: StatusCode, error: &str, description: &str| {
        let mut response = json_response(
            status,
            &json!({"error": error, "error_description": description}),
        );
        let challenge = format!(
            "Bearer realm=\"oidc-dev-provider\", error=\"{error}\", error_description=\"{description}\""
        );
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    };
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"oidc-dev-provider\""),
        );
        return response;
    };
    let now = app.shared.now();
    let store = lock(&app.shared.store);
    let Some((_, grant)) = store.active_access(token.trim(), now) else {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is unknown, expired or revoked",
        );
    };
    let (Subject::User { username, .. }, true) =
        (&grant.subject, has_scope(&grant.scope, "openid"))
    else {
        return bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "userinfo needs a user's token with scope openid",
        );
    };
    let Some(user) = app.shared.users.get(username) else {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the user no longer exists",
        );
    };
    json_response(
        StatusCode::OK,
        &Value::Object(user.claims_for_scope(&grant.scope)),
    )
}

async fn introspect(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
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

async fn revoke(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
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

// ---------------------------------------------------------------------------------------------
// Logout

async fn end_session_get(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    end_session(app, params, headers).await
}

async fn end_session_post(
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

// ---------------------------------------------------------------------------------------------
// Device authorization grant (RFC 8628)

async fn device_authorization(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(e) => return OAuthError::invalid_request(e.description()).into_response(),
    };
    let client = match authenticate_client(&app, &headers, &params, true) {
        Ok(client) => client,
        Err(error) => return error.into_response(),
    };
    let now = app.shared.now();
    let device_code = random_token();
    let user_code = new_user_code();
    let mut store = lock(&app.shared.store);
    store.prune(now);
    let approved_by = store.auto_approve.clone();
    store.devices.insert(
        device_code.clone(),
        DeviceRecord {
            client_id: client.client_id.clone(),
            scope: params.get("scope").unwrap_or("openid").to_owned(),
            user_code: user_code.clone(),
            expires: now.saturating_add(DEVICE_CODE_LIFETIME),
            approved_by,
        },
    );
    drop(store);
    let verification_uri = app.url("/device");
    let mut complete = url::Url::parse(&verification_uri).ok();
    if let Some(url) = complete.as_mut() {
        url.query_pairs_mut().append_pair("user_code", &user_code);
    }
    json_response(
        StatusCode::OK,
        &json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "verification_uri_complete": complete.map(|u| u.to_string()),
            "expires_in": DEVICE_CODE_LIFETIME.as_secs(),
            "interval": 1,
        }),
    )
}

/// Eight letters from an alphabet without vowels or look-alikes, as `XXXX-XXXX`.
fn new_user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut bytes = [0u8; 8];
    oidc_core::RandomSource::fill_bytes(&mut crate::store::OsRandom, &mut bytes);
    let letters: String = bytes
        .iter()
        .map(|b| {
            let index = usize::from(*b) % ALPHABET.len();
            ALPHABET.get(index).map_or('B', |c| char::from(*c))
        })
        .collect();
    match letters.split_at_checked(4) {
        Some((first, second)) => format!("{first}-{second}"),
        None => letters,
    }
}

fn normalize_user_code(code: &str) -> String {
    let letters: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    match (letters.get(..4), letters.get(4..)) {
        (Some(a), Some(b)) if !b.is_empty() => format!("{a}-{b}"),
        _ => letters,
    }
}

async fn device_page(State(app): State<App>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    html_response(
        StatusCode::OK,
        html::device_page(
            &app.url("/device"),
            params.get("user_code").unwrap_or_default(),
            None,
        ),
    )
}

async fn device_approve(State(app): State<App>, body: Bytes) -> Response {
    let params = Params::parse(&body).unwrap_or_default();
    let user_code = normalize_user_code(params.get("user_code").unwrap_or_default());
    let username = params.get("username").unwrap_or_default();
    let password = params.get("password").unwrap_or_default();
    let action = app.url("/device");
    let authenticated = app
        .shared
        .users
        .get(username)
        .is_some_and(|u| u.password.ct_eq(password));
    if !authenticated {
        return html_response(
            StatusCode::UNAUTHORIZED,
            html::device_page(&action, &user_code, Some("Unknown user or wrong password.")),
        );
    }
    let now = app.shared.now();
    let mut store = lock(&app.shared.store);
    let device = store
        .devices
        .values_mut()
        .find(|d| d.user_code == user_code && d.expires > now && d.approved_by.is_none());
    match device {
        Some(device) => {
            device.approved_by = Some(username.to_owned());
            html_response(
                StatusCode::OK,
                html::message_page("Device connected", "You can return to your device."),
            )
        }
        None => html_response(
            StatusCode::BAD_REQUEST,
            html::device_page(&action, &user_code, Some("Unknown or expired code.")),
        ),
    }
}

fn device_code_grant(
    app: &App,
    client: &DevClient,
    params: &Params,
    now: UnixTime,
) -> Result<Value, OAuthError> {
    let device_code = params
        .get("device_code")
        .ok_or_else(|| OAuthError::invalid_request("device_code is missing"))?;
    let mut store = lock(&app.shared.store);
    let device = store.devices.get(device_code).cloned().ok_or_else(|| {
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "unknown or expired device_code",
        )
    })?;
    if device.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "device_code was issued to another client",
        ));
    }
    if device.expires <= now {
        store.devices.remove(device_code);
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "device_code expired",
        ));
    }
    let Some(username) = device.approved_by else {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "authorization_pending",
            "the user has not approved yet",
        ));
    };
    store.devices.remove(device_code);
    let grant_id = store.add_grant(Grant {
        client_id: client.client_id.clone(),
        subject: Subject::User {
            username,
            sid: None,
            auth_time: now,
        },
        scope: device.scope,
        revoked: false,
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(is_pkce_value("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!is_pkce_value("short"));
        assert!(!is_pkce_value(&"a+".repeat(30)));
    }

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("other=1; devop_session=abc; x=y"),
        );
        assert_eq!(session_cookie_value(&headers).as_deref(), Some("abc"));
        headers.insert(header::COOKIE, HeaderValue::from_static("devop_sessionx=1"));
        assert_eq!(session_cookie_value(&headers), None);
    }

    #[test]
    fn user_codes_have_the_documented_shape() {
        let code = new_user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(code.chars().nth(4), Some('-'));
        assert_eq!(
            normalize_user_code(&code.to_lowercase().replace('-', " ")),
            code
        );
    }

    #[test]
    fn audience_is_a_string_when_single() {
        assert_eq!(audience_value(&["a".into()]), json!("a"));
        assert_eq!(audience_value(&["a".into(), "b".into()]), json!(["a", "b"]));
    }

    /// Arbitrary requests to every endpoint: never a panic, never a server error.
    #[test]
    fn hostile_requests_get_client_errors_not_server_errors() {
        use tower::ServiceExt as _;
        let provider = crate::DevProvider::builder().build().unwrap();
        let issuer = Issuer::new("http://127.0.0.1:9").unwrap();
        let router = router(provider.shared.clone(), issuer);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let paths = [
            "/authorize",
            "/login",
            "/token",
            "/userinfo",
            "/introspect",
            "/revoke",
            "/end_session",
            "/device_authorization",
            "/device",
            "/jwks",
            "/.well-known/openid-configuration",
        ];
        let config = proptest::test_runner::Config::with_cases(256);
        proptest!(config, |(
            path in proptest::sample::select(paths.to_vec()),
            post in any::<bool>(),
            query in "[a-zA-Z0-9=&%_.~+-]{0,80}",
            body in proptest::collection::vec(any::<u8>(), 0..160),
            authorization in "(Basic |Bearer )?[ -~]{0,40}",
            cookie in "(devop_session=)?[ -~]{0,40}",
        )| {
            let request = http::Request::builder()
                .method(if post { "POST" } else { "GET" })
                .uri(format!("{path}?{query}"))
                .header(header::AUTHORIZATION, authorization)
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap();
            let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
            prop_assert!(!response.status().is_server_error(), "{} {path}", response.status());
        });
    }

    proptest! {
        #[test]
        fn user_code_normalization_never_panics(code in ".{0,20}") {
            let _ = normalize_user_code(&code);
        }
    }
}
