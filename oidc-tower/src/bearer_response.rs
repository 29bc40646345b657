//! RFC 6750 bearer tokens: taking the token out of a request, and answering when it is missing,
//! malformed, rejected or lacks scope.
//!
//! Extraction ([`extract_bearer`]) accepts `Authorization: Bearer <token>` as RFC 6750 §2.1 writes
//! it, `"Bearer" 1*SP b64token`: a case-insensitive scheme, one or more spaces (not tabs) and a
//! token in the `token68` alphabet. Anything else that claims to be a bearer credential is an `invalid_request` (400), as are two `Authorization` headers, a token
//! both in the header and in the query, and a token in the `access_token` query parameter unless
//! explicitly allowed. An `Authorization` header of another scheme (`Basic`) is "no token".
//!
//! Answers ([`BearerRejection::response`]) carry a `WWW-Authenticate: Bearer` challenge whose
//! parameters are quoted-strings; `error_description` and `scope` are restricted to the characters
//! RFC 6750 §3 allows, so attacker bytes (CR, LF, quotes, backslashes, non-ASCII) are never
//! reflected. The body is JSON, or a small HTML page when the client prefers HTML.
//!
//! DPoP (RFC 9449) sits beside it: [`extract_dpop`] takes `Authorization: DPoP <token>` and the
//! one `DPoP` proof header, and [`DpopRejection`] answers with a `WWW-Authenticate: DPoP`
//! challenge naming the accepted algorithms. The proof itself is checked by
//! [`oidc_core::dpop::verify_proof`].
//!
//! ```
//! use http::{HeaderMap, HeaderValue, StatusCode, header::AUTHORIZATION};
//! use oidc_tower::bearer_response::{extract_bearer, BearerRejection, QueryTokens};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer eyJhbGciOi.x.y"));
//! let token = extract_bearer(&headers, None, QueryTokens::Refuse).unwrap().unwrap();
//! assert_eq!(token.expose(), "eyJhbGciOi.x.y");
//!
//! let rejection = BearerRejection::invalid_token("token_expired");
//! let response = rejection.response("mlflow", &HeaderMap::new());
//! assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(
//!     response.headers()["www-authenticate"],
//!     r#"Bearer realm="mlflow", error="invalid_token", error_description="token_expired""#
//! );
//! ```

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use oidc_core::ErrorKind;
use oidc_core::Secret;

use crate::request_kind::prefers_html;

/// Longest bearer token accepted, in bytes.
pub const MAX_BEARER_TOKEN_BYTES: usize = 16 * 1024;

/// Longest `error_description` sent, in characters; longer ones are cut.
pub const MAX_ERROR_DESCRIPTION_CHARS: usize = 200;

/// A bearer token taken from a request. Its `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(Secret);

impl BearerToken {
    /// The token text, to validate. Never log it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The token as a [`Secret`].
    pub fn into_secret(self) -> Secret {
        self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Whether a token may come from the `access_token` query parameter (RFC 6750 §2.3).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryTokens {
    /// A token in the query is an `invalid_request` (the default: URLs end up in logs).
    #[default]
    Refuse,
    /// A token in the query is accepted when there is none in the header.
    Accept,
}

/// Why a request's bearer credentials are malformed (each answered with 400 `invalid_request`).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerExtractError {
    /// More than one `Authorization` header.
    #[error("more than one Authorization header")]
    MultipleAuthorizationHeaders,
    /// `Authorization: Bearer` not followed by spaces and a token68 value.
    #[error("malformed bearer credentials")]
    MalformedCredentials,
    /// The token is longer than [`MAX_BEARER_TOKEN_BYTES`].
    #[error("bearer token of {len} bytes is longer than the {max} allowed")]
    TokenTooLong {
        /// The token's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token is in the query and that is not allowed.
    #[error("bearer token in the query string is not allowed")]
    TokenInQuery,
    /// The token is sent in more than one way, or the query repeats `access_token`.
    #[error("bearer token sent in more than one way")]
    MultipleTokens,
}

impl BearerExtractError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::MultipleAuthorizationHeaders => ErrorKind::MultipleAuthorizationHeaders,
            Self::MalformedCredentials => ErrorKind::MalformedBearerCredentials,
            Self::TokenTooLong { .. } => ErrorKind::BearerTokenTooLong,
            Self::TokenInQuery => ErrorKind::BearerTokenInQuery,
            Self::MultipleTokens => ErrorKind::MultipleBearerTokens,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Takes the bearer token out of a request's headers and raw query string.
///
/// `Ok(None)`: the request carries no bearer token (no `Authorization`, or another scheme).
pub fn extract_bearer(
    headers: &HeaderMap,
    query: Option<&str>,
    query_tokens: QueryTokens,
) -> Result<Option<BearerToken>, BearerExtractError> {
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    let authorization = authorizations.next();
    if authorizations.next().is_some() {
        return Err(BearerExtractError::MultipleAuthorizationHeaders);
    }
    let from_header = match authorization {
        Some(value) => bearer_from_header(value.as_bytes())?,
        None => None,
    };
    let from_query = match query {
        Some(query) => token_from_query(query)?,
        None => None,
    };
    match (from_header, from_query) {
        (Some(_), Some(_)) => Err(BearerExtractError::MultipleTokens),
        (Some(token), None) => Ok(Some(token)),
        (None, Some(_)) if query_tokens == QueryTokens::Refuse => {
            Err(BearerExtractError::TokenInQuery)
        }
        (None, Some(token)) => Ok(Some(token)),
        (None, None) => Ok(None),
    }
}

/// An RFC 6750 error answer.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerRejection {
    /// No credentials: 401 with a bare challenge (no `error` attribute, RFC 6750 §3.1).
    MissingToken,
    /// Malformed request: 400 `invalid_request`.
    InvalidRequest(BearerExtractError),
    /// The token was rejected: 401 `invalid_token`.
    InvalidToken {
        /// Sanitized description (RFC 6750 §3 characters only).
        description: String,
    },
    /// The token lacks a scope: 403 `insufficient_scope`.
    InsufficientScope {
        /// Sanitized scope tokens the resource needs.
        scope: Vec<String>,
    },
}

impl From<BearerExtractError> for BearerRejection {
    fn from(error: BearerExtractError) -> Self {
        Self::InvalidRequest(error)
    }
}

impl BearerRejection {
    /// A 401 `invalid_token` whose description is sanitized (pass a stable code, not a token).
    pub fn invalid_token(description: &str) -> Self {
        Self::InvalidToken {
            description: sanitize_description(description),
        }
    }

    /// A 403 `insufficient_scope` naming the scopes required; invalid scope tokens are dropped.
    pub fn insufficient_scope<I, S>(scope: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let scope = scope
            .into_iter()
            .filter(|s| is_scope_token(s.as_ref()))
            .map(|s| s.as_ref().to_owned())
            .collect();
        Self::InsufficientScope { scope }
    }

    /// The RFC 6750 `error` code, or `None` for a missing token.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::MissingToken => None,
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken { .. } => Some("invalid_token"),
            Self::InsufficientScope { .. } => Some("insufficient_scope"),
        }
    }

    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::MissingToken => ErrorKind::MissingToken,
            Self::InvalidRequest(error) => error.kind(),
            Self::InvalidToken { .. } => ErrorKind::InvalidToken,
            Self::InsufficientScope { .. } => ErrorKind::InsufficientScope,
        }
    }

    /// A stable snake_case code for metrics and logs.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// The HTTP status: 401, 400 or 403.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken { .. } => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// The human-readable description (already restricted to safe characters).
    pub fn description(&self) -> String {
        match self {
            Self::MissingToken => "a bearer token is required".to_owned(),
            Self::InvalidRequest(error) => sanitize_description(&error.to_string()),
            Self::InvalidToken { description } => description.clone(),
            Self::InsufficientScope { .. } => "the token lacks a required scope".to_owned(),
        }
    }

    /// The `WWW-Authenticate` value for this rejection.
    pub fn www_authenticate(&self, realm: &str) -> HeaderValue {
        let mut value = format!("Bearer realm=\"{}\"", quoted_string_content(realm));
        if let Some(error) = self.error_code() {
            value.push_str(&format!(
                ", error=\"{error}\", error_description=\"{}\"",
                self.description()
            ));
        }
        if let Self::InsufficientScope { scope } = self {
            value.push_str(&format!(", scope=\"{}\"", scope.join(" ")));
        }
        // Every piece above is restricted to visible ASCII and spaces, so this cannot fail;
        // the fallback keeps the answer well-formed regardless.
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    /// The complete answer: status, challenge, `Cache-Control: no-store`, and a JSON body, or a
    /// small HTML page when `request_headers` prefer HTML.
    pub fn response(&self, realm: &str, request_headers: &HeaderMap) -> Response<Bytes> {
        let (content_type, body) = if prefers_html(request_headers) {
            ("text/html; charset=utf-8", self.html_body())
        } else {
            ("application/json", self.json_body())
        };
        let mut response = Response::new(Bytes::from(body));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(header::WWW_AUTHENTICATE, self.www_authenticate(realm));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    fn json_body(&self) -> String {
        let mut body = serde_json::json!({
            "error": self.error_code().unwrap_or("missing_token"),
            "error_description": self.description(),
        });
        if let (Self::InsufficientScope { scope }, Some(object)) = (self, body.as_object_mut()) {
            object.insert("scope".to_owned(), serde_json::json!(scope.join(" ")));
        }
        body.to_string()
    }

    fn html_body(&self) -> String {
        let status = self.status();
        let title = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        );
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body><h1>{title}</h1><p>{}</p></body></html>\n",
            escape_html(&self.description())
        )
    }
}

/// Escapes text for an HTML element or a quoted attribute.
///
/// ```
/// assert_eq!(
///     oidc_tower::bearer_response::escape_html(r#"<a href="x">&'"#),
///     "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
/// );
/// ```
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Keeps only the characters RFC 6750 §3 allows in `error_description`
/// (`%x20-21 / %x23-5B / %x5D-7E`: no quote, no backslash, no control, ASCII only), cut to
/// [`MAX_ERROR_DESCRIPTION_CHARS`].
pub fn sanitize_description(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(*c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e'))
        .take(MAX_ERROR_DESCRIPTION_CHARS)
        .collect()
}

/// A DPoP-bound access token and the proof that came with it (RFC 9449 §7.1).
#[derive(Clone, PartialEq, Eq)]
pub struct DpopCredentials {
    /// The access token of `Authorization: DPoP <token>`.
    pub token: BearerToken,
    /// The `DPoP` header's proof, a compact JWS (checked only for its alphabet and length here).
    pub proof: String,
}

impl fmt::Debug for DpopCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopCredentials")
            .field("token", &self.token)
            .field("proof_len", &self.proof.len())
            .finish()
    }
}

/// Why a request's DPoP credentials are malformed (each answered with 400 `invalid_request`).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopExtractError {
    /// More than one `Authorization` header.
    #[error("more than one Authorization header")]
    MultipleAuthorizationHeaders,
    /// `Authorization: DPoP` not followed by spaces and a token68 value, or too long a token.
    #[error("malformed DPoP credentials")]
    MalformedCredentials,
    /// `Authorization: DPoP` without a `DPoP` proof header.
    #[error("a DPoP-bound token needs a DPoP proof header")]
    MissingProof,
    /// More than one `DPoP` header (RFC 9449 §4.3 allows exactly one).
    #[error("more than one DPoP header")]
    MultipleProofs,
    /// The `DPoP` header is not a compact JWS of at most the proof limit.
    #[error("the DPoP header is not a compact JWS within the size limit")]
    MalformedProof,
}

impl DpopExtractError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::MultipleAuthorizationHeaders => ErrorKind::MultipleAuthorizationHeaders,
            Self::MalformedCredentials => ErrorKind::MalformedDpopCredentials,
            Self::MissingProof => ErrorKind::MissingDpopProof,
            Self::MultipleProofs => ErrorKind::MultipleDpopProofs,
            Self::MalformedProof => ErrorKind::MalformedDpopProof,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Takes `Authorization: DPoP <token>` and its `DPoP` proof header out of a request.
///
/// `Ok(None)`: the request uses another scheme (or none); a `DPoP` header next to a `Bearer`
/// token is left alone here, and a bound token presented that way must be refused by whoever
/// validates it ([`oidc_core::dpop::bound_key_thumbprint`]).
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
/// use oidc_tower::bearer_response::extract_dpop;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(AUTHORIZATION, HeaderValue::from_static("DPoP eyJ0eXAi.x.y"));
/// headers.insert("dpop", HeaderValue::from_static("eyJhbGci.eyJqdGki.c2ln"));
/// let credentials = extract_dpop(&headers).unwrap().unwrap();
/// assert_eq!(credentials.token.expose(), "eyJ0eXAi.x.y");
/// assert_eq!(credentials.proof, "eyJhbGci.eyJqdGki.c2ln");
/// ```
pub fn extract_dpop(headers: &HeaderMap) -> Result<Option<DpopCredentials>, DpopExtractError> {
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    let Some(authorization) = authorizations.next() else {
        return Ok(None);
    };
    if authorizations.next().is_some() {
        return Err(DpopExtractError::MultipleAuthorizationHeaders);
    }
    let value = authorization.as_bytes();
    let scheme_end = value
        .iter()
        .position(|b| *b == b' ' || *b == b'\t')
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    if !scheme.eq_ignore_ascii_case(b"dpop") {
        return Ok(None);
    }
    let spaces = rest.iter().take_while(|b| **b == b' ').count();
    let token = rest
        .get(spaces..)
        .filter(|_| spaces > 0)
        .and_then(|token| std::str::from_utf8(token).ok())
        .ok_or(DpopExtractError::MalformedCredentials)?;
    let token = checked_token(token).map_err(|_| DpopExtractError::MalformedCredentials)?;
    let mut proofs = headers.get_all("dpop").iter();
    let proof = proofs.next().ok_or(DpopExtractError::MissingProof)?;
    if proofs.next().is_some() {
        return Err(DpopExtractError::MultipleProofs);
    }
    let proof = proof.as_bytes();
    let well_formed = !proof.is_empty()
        && proof.len() <= oidc_core::dpop::MAX_PROOF_BYTES
        && proof.iter().filter(|b| **b == b'.').count() == 2
        && proof
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !well_formed {
        return Err(DpopExtractError::MalformedProof);
    }
    let proof = String::from_utf8_lossy(proof).into_owned();
    Ok(Some(DpopCredentials { token, proof }))
}

/// An RFC 9449 §7.1 error answer for a resource that takes DPoP-bound tokens.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpopRejection {
    /// No credentials: 401 with a bare `DPoP` challenge listing the algorithms.
    MissingToken,
    /// Malformed request: 400 `invalid_request`.
    InvalidRequest(DpopExtractError),
    /// The proof failed a check (its [`oidc_core::dpop::DpopError::code`]): 401
    /// `invalid_dpop_proof`.
    InvalidProof {
        /// Sanitized description (RFC 6750 §3 characters only).
        description: String,
    },
    /// The token was rejected, or a DPoP-bound token came as a plain bearer token: 401
    /// `invalid_token`.
    InvalidToken {
        /// Sanitized description.
        description: String,
    },
}

impl From<DpopExtractError> for DpopRejection {
    fn from(error: DpopExtractError) -> Self {
        Self::InvalidRequest(error)
    }
}

impl DpopRejection {
    /// A 401 `invalid_dpop_proof` for a proof refused with `code`.
    pub fn invalid_proof(code: &str) -> Self {
        Self::InvalidProof {
            description: sanitize_description(code),
        }
    }

    /// A 401 `invalid_token` (for a DPoP-bound token sent as `Bearer`, pass
    /// `"dpop_bound_token_sent_as_bearer"`).
    pub fn invalid_token(description: &str) -> Self {
        Self::InvalidToken {
            description: sanitize_description(description),
        }
    }

    /// The `error` code, or `None` for a missing token.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::MissingToken => None,
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidProof { .. } => Some("invalid_dpop_proof"),
            Self::InvalidToken { .. } => Some("invalid_token"),
        }
    }

    /// The HTTP status: 401 or 400.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The human-readable description (already restricted to safe characters).
    pub fn description(&self) -> String {
        match self {
            Self::MissingToken => "a DPoP-bound access token and proof are required".to_owned(),
            Self::InvalidRequest(error) => sanitize_description(&error.to_string()),
            Self::InvalidProof { description } | Self::InvalidToken { description } => {
                description.clone()
            }
        }
    }

    /// The `WWW-Authenticate: DPoP` value: realm, error and description when there is an
    /// error, and `algs` (the accepted proof algorithms, RFC 9449 §7.1).
    pub fn www_authenticate(
        &self,
        realm: &str,
        algorithms: &[oidc_core::Algorithm],
    ) -> HeaderValue {
        let mut value = format!("DPoP realm=\"{}\"", quoted_string_content(realm));
        if let Some(error) = self.error_code() {
            value.push_str(&format!(
                ", error=\"{error}\", error_description=\"{}\"",
                self.description()
            ));
        }
        let algs: Vec<&str> = algorithms
            .iter()
            .filter(|alg| !alg.is_hmac())
            .map(|alg| alg.as_str())
            .collect();
        if !algs.is_empty() {
            value.push_str(&format!(", algs=\"{}\"", algs.join(" ")));
        }
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("DPoP"))
    }

    /// The complete answer: status, the `DPoP` challenge (and, when `also_bearer`, a `Bearer`
    /// challenge too, for resources that take both), `Cache-Control: no-store`, a JSON body.
    pub fn response(
        &self,
        realm: &str,
        algorithms: &[oidc_core::Algorithm],
        also_bearer: bool,
    ) -> Response<Bytes> {
        let body = serde_json::json!({
            "error": self.error_code().unwrap_or("missing_token"),
            "error_description": self.description(),
        });
        let mut response = Response::new(Bytes::from(body.to_string()));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.append(
            header::WWW_AUTHENTICATE,
            self.www_authenticate(realm, algorithms),
        );
        if also_bearer {
            headers.append(
                header::WWW_AUTHENTICATE,
                BearerRejection::MissingToken.www_authenticate(realm),
            );
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// The bearer token of a request's only `Authorization` header, with the checks that cost
/// nothing per byte (one header, the scheme, the separator, the length) and UTF-8, but not the
/// token's alphabet: the key for a cache lookup before [`extract_bearer`]'s full check. `None`
/// when there is no such token or anything is off (extraction then says what).
pub(crate) fn unchecked_bearer(headers: &HeaderMap) -> Option<&str> {
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    let value = authorizations.next()?.as_bytes();
    if authorizations.next().is_some() {
        return None;
    }
    let scheme = value.get(..7)?;
    if !scheme[..6].eq_ignore_ascii_case(b"bearer") || scheme[6] != b' ' {
        return None;
    }
    let token = value.get(7..)?.trim_ascii_start();
    if token.is_empty() || token.len() > MAX_BEARER_TOKEN_BYTES {
        return None;
    }
    std::str::from_utf8(token).ok()
}

fn bearer_from_header(value: &[u8]) -> Result<Option<BearerToken>, BearerExtractError> {
    let scheme_end = value
        .iter()
        .position(|b| *b == b' ' || *b == b'\t')
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(scheme_end);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(None);
    }
    // `1*SP`: at least one space; a tab (or nothing) after the scheme is malformed.
    let spaces = rest.iter().take_while(|b| **b == b' ').count();
    if spaces == 0 {
        return Err(BearerExtractError::MalformedCredentials);
    }
    let token = rest
        .get(spaces..)
        .ok_or(BearerExtractError::MalformedCredentials)?;
    let token = std::str::from_utf8(token).map_err(|_| BearerExtractError::MalformedCredentials)?;
    checked_token(token).map(Some)
}

fn token_from_query(query: &str) -> Result<Option<BearerToken>, BearerExtractError> {
    let mut found = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name == "access_token" {
            if found.is_some() {
                return Err(BearerExtractError::MultipleTokens);
            }
            found = Some(checked_token(&value)?);
        }
    }
    Ok(found)
}

/// `token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn checked_token(token: &str) -> Result<BearerToken, BearerExtractError> {
    if token.len() > MAX_BEARER_TOKEN_BYTES {
        return Err(BearerExtractError::TokenTooLong {
            len: token.len(),
            max: MAX_BEARER_TOKEN_BYTES,
        });
    }
    let body = token.trim_end_matches('=');
    let body_ok = !body.is_empty() && is_b64token_body(body.as_bytes());
    if !body_ok {
        return Err(BearerExtractError::MalformedCredentials);
    }
    Ok(BearerToken(Secret::new(token)))
}

/// Whether every byte may appear in an RFC 6750 `b64token` before its `=` padding. Tokens are a
/// kilobyte or more and every request's is checked, so the check has no branch per byte and
/// the compiler tests many bytes per instruction.
fn is_b64token_body(body: &[u8]) -> bool {
    body.iter().fold(0u8, |refused, &byte| {
        refused | u8::from(!is_b64token_byte(byte))
    }) == 0
}

const fn is_b64token_byte(byte: u8) -> bool {
    let folded = byte | 0x20;
    (folded.wrapping_sub(b'a') < 26)
        | (byte.wrapping_sub(b'0') < 10)
        | (byte == b'-')
        | (byte == b'.')
        | (byte == b'_')
        | (byte == b'~')
        | (byte == b'+')
        | (byte == b'/')
}

fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

/// Content of a quoted-string: `"` and `\` escaped, anything but visible ASCII and space dropped.
fn quoted_string_content(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().filter(|c| matches!(*c, ' '..='~')) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchecked_bearer_reads_only_what_extraction_would_accept_the_shape_of() {
        let one = |value: &'static str| auth(&[value]);
        assert_eq!(unchecked_bearer(&one("Bearer abc.def")), Some("abc.def"));
        assert_eq!(unchecked_bearer(&one("bearer   abc")), Some("abc"));
        assert_eq!(unchecked_bearer(&one("Basic abc")), None);
        assert_eq!(unchecked_bearer(&one("Bearer")), None);
        assert_eq!(unchecked_bearer(&one("Bearer ")), None);
        assert_eq!(unchecked_bearer(&one("Bearer\tabc")), None);
        assert_eq!(unchecked_bearer(&one("Bearerabc")), None);
        assert_eq!(unchecked_bearer(&auth(&["Bearer a", "Bearer b"])), None);
        assert_eq!(unchecked_bearer(&HeaderMap::new()), None);
        // Whatever it returns for one header, extraction agrees on (or refuses the alphabet).
        for value in ["Bearer abc", "bearer  x.y.z", "BEARER t=="] {
            let headers = one(value);
            let token = unchecked_bearer(&headers).unwrap();
            let extracted = extract_bearer(&headers, None, QueryTokens::Refuse).unwrap();
            assert_eq!(extracted.unwrap().expose(), token);
        }
    }

    #[test]
    fn b64token_bytes_are_exactly_the_rfc_6750_class() {
        for byte in 0..=u8::MAX {
            let expected = byte.is_ascii_alphanumeric()
                || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(is_b64token_byte(byte), expected, "byte {byte:#04x}");
            assert_eq!(is_b64token_body(&[b'a'; 40].map(|_| byte)), expected);
        }
        let mut long = vec![b'A'; 4096];
        assert!(is_b64token_body(&long));
        long[4095] = b' ';
        assert!(!is_b64token_body(&long));
    }

    fn auth(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::AUTHORIZATION,
                HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        headers
    }

    fn token(
        headers: &HeaderMap,
        query: Option<&str>,
        q: QueryTokens,
    ) -> Result<Option<String>, BearerExtractError> {
        extract_bearer(headers, query, q).map(|t| t.map(|t| t.expose().to_owned()))
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for value in [
            "Bearer abc.def-_~+/==",
            "bearer abc.def-_~+/==",
            "BEARER abc.def-_~+/==",
        ] {
            assert_eq!(
                token(&auth(&[value]), None, QueryTokens::Refuse),
                Ok(Some("abc.def-_~+/==".to_owned()))
            );
        }
    }

    #[test]
    fn no_header_or_other_scheme_is_no_token() {
        assert_eq!(
            token(&HeaderMap::new(), None, QueryTokens::Refuse),
            Ok(None)
        );
        assert_eq!(
            token(&auth(&["Basic dXNlcjpwYXNz"]), None, QueryTokens::Refuse),
            Ok(None)
        );
        assert_eq!(
            token(&auth(&["Bearerx abc"]), None, QueryTokens::Refuse),
            Ok(None)
        );
    }

    #[test]
    fn one_or_more_spaces_may_separate_scheme_and_token() {
        for value in ["Bearer abc", "Bearer  abc", "bearer     abc"] {
            assert_eq!(
                token(&auth(&[value]), None, QueryTokens::Refuse),
                Ok(Some("abc".to_owned())),
                "{value:?}"
            );
        }
    }

    #[test]
    fn spaces_then_a_token68_value_are_required() {
        for value in [
            "Bearer",
            "Bearer ",
            "Bearer    ",
            "Bearer \tabc",
            "Bearer\t abc",
            "Bearer abc def",
            "Bearer  abc def",
            "Bearer abc ",
            "Bearer \"abc\"",
            "Bearer ==",
            "Bearer a=b",
            "Bearer abc,def",
            "Bearer\tabc",
        ] {
            assert_eq!(
                token(&auth(&[value]), None, QueryTokens::Refuse),
                Err(BearerExtractError::MalformedCredentials),
                "{value:?}"
            );
        }
    }

    #[test]
    fn two_authorization_headers_are_invalid_request() {
        let err = token(&auth(&["Bearer a", "Bearer b"]), None, QueryTokens::Accept).unwrap_err();
        assert_eq!(err, BearerExtractError::MultipleAuthorizationHeaders);
        let rejection = BearerRejection::from(err);
        assert_eq!(rejection.status(), StatusCode::BAD_REQUEST);
        assert_eq!(rejection.error_code(), Some("invalid_request"));
        assert_eq!(rejection.code(), "multiple_authorization_headers");
    }

    #[test]
    fn token_in_query_is_refused_unless_allowed() {
        assert_eq!(
            token(
                &HeaderMap::new(),
                Some("a=1&access_token=abc"),
                QueryTokens::Refuse
            ),
            Err(BearerExtractError::TokenInQuery)
        );
        assert_eq!(
            token(
                &HeaderMap::new(),
                Some("a=1&access_token=abc"),
                QueryTokens::Accept
            ),
            Ok(Some("abc".to_owned()))
        );
        assert_eq!(
            token(
                &HeaderMap::new(),
                Some("a=1&other=abc"),
                QueryTokens::Refuse
            ),
            Ok(None)
        );
    }

    #[test]
    fn token_sent_twice_is_invalid_request() {
        assert_eq!(
            token(
                &auth(&["Bearer a"]),
                Some("access_token=b"),
                QueryTokens::Accept
            ),
            Err(BearerExtractError::MultipleTokens)
        );
        assert_eq!(
            token(
                &HeaderMap::new(),
                Some("access_token=a&access_token=a"),
                QueryTokens::Accept
            ),
            Err(BearerExtractError::MultipleTokens)
        );
        assert_eq!(
            token(
                &HeaderMap::new(),
                Some("access_token=a%20b"),
                QueryTokens::Accept
            ),
            Err(BearerExtractError::MalformedCredentials)
        );
    }

    #[test]
    fn overlong_and_non_ascii_tokens_are_refused() {
        let long = format!("Bearer {}", "a".repeat(MAX_BEARER_TOKEN_BYTES + 1));
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&long).unwrap());
        assert_eq!(
            token(&headers, None, QueryTokens::Refuse),
            Err(BearerExtractError::TokenTooLong {
                len: MAX_BEARER_TOKEN_BYTES + 1,
                max: MAX_BEARER_TOKEN_BYTES
            })
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer ab\xffcd").unwrap(),
        );
        assert_eq!(
            token(&headers, None, QueryTokens::Refuse),
            Err(BearerExtractError::MalformedCredentials)
        );
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = extract_bearer(&auth(&["Bearer secret-value"]), None, QueryTokens::Refuse)
            .unwrap()
            .unwrap();
        assert_eq!(format!("{t:?}"), "BearerToken(<redacted>)");
        assert_eq!(t.into_secret().expose(), "secret-value");
    }

    #[test]
    fn missing_token_challenge_has_no_error() {
        let r = BearerRejection::MissingToken;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.www_authenticate("api"), "Bearer realm=\"api\"");
        assert_eq!(r.code(), "missing_token");
    }

    #[test]
    fn invalid_request_challenge() {
        let r = BearerRejection::from(BearerExtractError::TokenInQuery);
        assert_eq!(
            r.www_authenticate("api"),
            "Bearer realm=\"api\", error=\"invalid_request\", error_description=\"bearer token in the query string is not allowed\""
        );
    }

    #[test]
    fn insufficient_scope_challenge_names_valid_scopes_only() {
        let r = BearerRejection::insufficient_scope(["mlflow:write", "bad\"scope", "", "ok"]);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            r.www_authenticate("api"),
            "Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"the token lacks a required scope\", scope=\"mlflow:write ok\""
        );
    }

    #[test]
    fn attacker_bytes_are_never_reflected_in_the_challenge() {
        let r = BearerRejection::invalid_token("bad\r\nSet-Cookie: x=\"1\"\\ é<script>");
        assert_eq!(r.description(), "badSet-Cookie: x=1 <script>");
        let value = r.www_authenticate("re\"alm\\\r\n");
        assert_eq!(
            value,
            "Bearer realm=\"re\\\"alm\\\\\", error=\"invalid_token\", error_description=\"badSet-Cookie: x=1 <script>\""
        );
    }

    #[test]
    fn long_descriptions_are_cut() {
        let r = BearerRejection::invalid_token(&"x".repeat(1000));
        assert_eq!(r.description().len(), MAX_ERROR_DESCRIPTION_CHARS);
    }

    #[test]
    fn json_body_by_default() {
        let response =
            BearerRejection::invalid_token("token_expired").response("api", &HeaderMap::new());
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "invalid_token", "error_description": "token_expired"})
        );
    }

    #[test]
    fn json_body_for_scope_and_missing_token() {
        let response =
            BearerRejection::insufficient_scope(["a", "b"]).response("api", &HeaderMap::new());
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["scope"], "a b");
        let response = BearerRejection::MissingToken.response("api", &HeaderMap::new());
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"], "missing_token");
    }

    #[test]
    fn html_body_when_the_browser_prefers_it_and_escaped() {
        let mut request_headers = HeaderMap::new();
        request_headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        let response = BearerRejection::invalid_token("<img src=x onerror=alert(1)>&")
            .response("api", &request_headers);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let body = std::str::from_utf8(response.body()).unwrap();
        assert!(body.contains("<title>401 Unauthorized</title>"));
        assert!(body.contains("<p>&lt;img src=x onerror=alert(1)&gt;&amp;</p>"));
        assert!(!body.contains("<img"));
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(
            BearerExtractError::MalformedCredentials.code(),
            "malformed_bearer_credentials"
        );
        assert_eq!(
            BearerExtractError::TokenInQuery.code(),
            "bearer_token_in_query"
        );
        assert_eq!(
            BearerExtractError::MultipleTokens.code(),
            "multiple_bearer_tokens"
        );
        assert_eq!(
            BearerExtractError::TokenTooLong { len: 1, max: 0 }.code(),
            "bearer_token_too_long"
        );
    }

    proptest::proptest! {
        #[test]
        fn spaces_before_a_valid_token_round_trip(
            spaces in 1usize..8,
            body in "[A-Za-z0-9._~+/-]{1,100}",
            padding in "={0,2}",
        ) {
            let expected = format!("{body}{padding}");
            let mut headers = HeaderMap::new();
            let value = format!("Bearer{}{expected}", " ".repeat(spaces));
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
            proptest::prop_assert_eq!(
                token(&headers, None, QueryTokens::Refuse),
                Ok(Some(expected))
            );
        }

        #[test]
        fn a_tab_or_a_second_header_is_never_accepted(
            before in "[ \t]{0,3}",
            after in "[ \t]{0,3}",
            body in "[A-Za-z0-9]{1,20}",
        ) {
            let value = format!("Bearer{before}\t{after}{body}");
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
            proptest::prop_assert_eq!(
                token(&headers, None, QueryTokens::Refuse),
                Err(BearerExtractError::MalformedCredentials)
            );
            let good = format!("Bearer {body}");
            headers.append(header::AUTHORIZATION, HeaderValue::from_str(&good).unwrap());
            proptest::prop_assert_eq!(
                token(&headers, None, QueryTokens::Refuse),
                Err(BearerExtractError::MultipleAuthorizationHeaders)
            );
        }

        #[test]
        fn whatever_follows_the_scheme_an_accepted_token_is_token68(
            rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let mut raw = b"Bearer".to_vec();
            raw.extend_from_slice(&rest);
            if let Ok(value) = HeaderValue::from_bytes(&raw) {
                let mut headers = HeaderMap::new();
                headers.insert(header::AUTHORIZATION, value);
                if let Ok(Some(found)) = token(&headers, None, QueryTokens::Refuse) {
                    let expected = String::from_utf8_lossy(&rest).trim_start_matches(' ').to_owned();
                    proptest::prop_assert!(rest.first() == Some(&b' '));
                    proptest::prop_assert_eq!(&found, &expected);
                    proptest::prop_assert!(checked_token(&found).is_ok());
                }
            }
        }
    }
    fn dpop_headers(authorization: &str, proofs: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).unwrap(),
        );
        for proof in proofs {
            headers.append("dpop", HeaderValue::from_str(proof).unwrap());
        }
        headers
    }

    #[test]
    fn dpop_credentials_are_the_token_and_its_one_proof() {
        let proof = "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0.c2ln-_";
        let found = extract_dpop(&dpop_headers("dpop  tok.en-_~+/=", &[proof]))
            .unwrap()
            .unwrap();
        assert_eq!(found.token.expose(), "tok.en-_~+/=");
        assert_eq!(found.proof, proof);
        assert!(!format!("{found:?}").contains("tok.en"));
        // Other schemes are not DPoP credentials; a proof next to a Bearer token is left alone.
        assert_eq!(
            extract_dpop(&dpop_headers("Bearer abc", &[proof])),
            Ok(None)
        );
        assert_eq!(extract_dpop(&HeaderMap::new()), Ok(None));
        let cases: [(&str, &[&str], &str); 8] = [
            ("DPoP abc", &[], "missing_dpop_proof"),
            ("DPoP abc", &[proof, proof], "multiple_dpop_proofs"),
            ("DPoP abc", &["a.b"], "malformed_dpop_proof"),
            ("DPoP abc", &["a.b.c d"], "malformed_dpop_proof"),
            ("DPoP abc", &["a.b.c+/"], "malformed_dpop_proof"),
            ("DPoP", &[proof], "malformed_dpop_credentials"),
            ("DPoP\tabc", &[proof], "malformed_dpop_credentials"),
            ("DPoP a\"b", &[proof], "malformed_dpop_credentials"),
        ];
        for (authorization, proofs, code) in cases {
            let err = extract_dpop(&dpop_headers(authorization, proofs)).unwrap_err();
            assert_eq!(err.code(), code, "{authorization} {proofs:?}");
        }
        let long = format!("a.b.{}", "c".repeat(oidc_core::dpop::MAX_PROOF_BYTES));
        let err = extract_dpop(&dpop_headers("DPoP abc", &[&long])).unwrap_err();
        assert_eq!(err, DpopExtractError::MalformedProof);
        let mut two = dpop_headers("DPoP abc", &[proof]);
        two.append(header::AUTHORIZATION, HeaderValue::from_static("DPoP def"));
        assert_eq!(
            extract_dpop(&two).unwrap_err(),
            DpopExtractError::MultipleAuthorizationHeaders
        );
    }

    #[test]
    fn dpop_challenges_name_the_error_and_the_algorithms() {
        use oidc_core::Algorithm;
        let algs = [Algorithm::ES256, Algorithm::HS256, Algorithm::PS256];
        let missing = DpopRejection::MissingToken.response("api", &algs, true);
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        let challenges: Vec<_> = missing
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            challenges,
            [
                r#"DPoP realm="api", algs="ES256 PS256""#,
                r#"Bearer realm="api""#
            ]
        );
        let proof = DpopRejection::invalid_proof("dpop_replayed\r\n\"x");
        assert_eq!(
            proof.www_authenticate("api", &[Algorithm::ES256]),
            r#"DPoP realm="api", error="invalid_dpop_proof", error_description="dpop_replayedx", algs="ES256""#
        );
        let bearer = DpopRejection::invalid_token("dpop_bound_token_sent_as_bearer");
        let response = bearer.response("api", &[Algorithm::ES256], false);
        assert_eq!(
            response
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .count(),
            1
        );
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"], "invalid_token");
        assert_eq!(body["error_description"], "dpop_bound_token_sent_as_bearer");
        let malformed = DpopRejection::from(DpopExtractError::MissingProof);
        assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
        assert_eq!(malformed.error_code(), Some("invalid_request"));
    }
}
