//! How each front-end answers an [`AuthFailure`]: RFC 6750 challenges for bearer clients,
//! a redirect to sign-in for browser navigations, 401 JSON for API calls, 403 for refusals and
//! 503 for outages. Under MLflow's REST API paths the JSON body is MLflow's own error format
//! (`error_code` `UNAUTHENTICATED`, `PERMISSION_DENIED`, `TEMPORARILY_UNAVAILABLE` and a
//! `message`, beside the RFC 6750 `error`), so that MLflow's client reports an authentication
//! error rather than `INTERNAL_ERROR`; the status and the `WWW-Authenticate` challenge stay.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use oidc_core::ErrorKind;
use oidc_core::cookie::RequestCookies;

use super::answer::{append_cookies, error_answer, html_answer};
use super::authenticator::{AuthFailure, Authenticator};
use crate::bearer_response::{BearerRejection, DpopRejection, escape_html};
use crate::request_kind::{RequestKind, classify, prefers_html};

impl Authenticator {
    /// The bearer layer's answer: an RFC 6750 challenge, or 503 when the provider or store is
    /// unavailable.
    pub(crate) fn bearer_failure_response(
        &self,
        failure: &AuthFailure,
        headers: &HeaderMap,
    ) -> Response<Bytes> {
        if failure.is_dpop_failure() {
            return self.dpop_failure_response(failure);
        }
        let Some(rejection) = bearer_rejection(failure, &self.front_end().required_scopes) else {
            return unavailable(failure, headers);
        };
        let mut response = rejection.response(&self.front_end().realm, headers);
        response.extensions_mut().insert(failure.clone());
        response
    }

    /// An RFC 9449 §7.1 answer: a `DPoP` challenge naming the accepted proof algorithms, and a
    /// `Bearer` one beside it.
    fn dpop_failure_response(&self, failure: &AuthFailure) -> Response<Bytes> {
        let rejection = dpop_rejection(failure);
        let algorithms = self.dpop_policy().allowed_algorithms();
        let mut response = rejection.response(&self.front_end().realm, algorithms, true);
        response.extensions_mut().insert(failure.clone());
        response
    }

    /// The login layer's (and forward-auth's) answer to a request that may not pass.
    ///
    /// `original` is the request the user made (for forward-auth, reconstructed from the
    /// trusted `X-Forwarded-*` headers); `sign_in_return_to` is where a browser navigation
    /// returns after signing in (already checked against the redirect policy), or `None` when
    /// navigations get 401 like API calls instead of a redirect to sign in.
    pub(crate) fn login_failure_response(
        &self,
        failure: &AuthFailure,
        method: &Method,
        original: &Uri,
        headers: &HeaderMap,
        sign_in_return_to: Option<&str>,
    ) -> Response<Bytes> {
        if failure.is_bearer_failure() {
            let response = self.bearer_failure_response(failure, headers);
            return if is_mlflow_api_path(original.path()) {
                mlflow_error_body(response, failure)
            } else {
                response
            };
        }
        let mut response = match failure {
            AuthFailure::Forbidden(denied) => {
                tracing::info!(
                    code = denied.code(),
                    "access denied by the authorization rules"
                );
                error_answer(
                    StatusCode::FORBIDDEN,
                    denied.code(),
                    "You are signed in, but your account is not allowed to use this application.",
                    headers,
                )
            }
            AuthFailure::ProviderUnavailable { .. } | AuthFailure::StoreUnavailable(_) => {
                unavailable(failure, headers)
            }
            _ => {
                let on_api_route = self
                    .front_end()
                    .api_routes
                    .matches_request(method, original);
                let kind = classify(method, headers, on_api_route);
                if let (Some(return_to), RequestKind::Navigation) = (sign_in_return_to, kind) {
                    self.begin_login(headers, return_to)
                } else if kind == RequestKind::Navigation && prefers_html(headers) {
                    // Forward-auth without redirects: the 401 page itself goes on to sign in,
                    // keeping the fragment the server never saw (`/mlflow/#/experiments/3`).
                    let target = original.path_and_query().map(|pq| pq.as_str());
                    let return_to = self.front_end().redirect_policy.return_to_or_root(target);
                    let mut response = sign_in_page(self.prefix(), &return_to);
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        BearerRejection::MissingToken.www_authenticate(&self.front_end().realm),
                    );
                    response
                } else {
                    let mut response = error_answer(
                        StatusCode::UNAUTHORIZED,
                        ErrorKind::Unauthorized.code(),
                        "Sign in, or send a bearer token.",
                        headers,
                    );
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        BearerRejection::MissingToken.www_authenticate(&self.front_end().realm),
                    );
                    response
                }
            }
        };
        if failure.session_is_gone()
            && let Some(sessions) = self.sessions()
        {
            let cookies = RequestCookies::from_headers(headers);
            append_cookies(&mut response, sessions.clear_cookies(&cookies));
        }
        if is_mlflow_api_path(original.path()) {
            response = mlflow_error_body(response, failure);
        }
        response.extensions_mut().insert(failure.clone());
        response
    }
}

/// The RFC 6750 answer of the bearer layer to a failure, or `None` when the provider or the
/// store is unavailable (503). A refusal by the authorization rules is an `insufficient_scope`
/// naming the `required_scopes`; a failure about a session is a missing token.
fn bearer_rejection(failure: &AuthFailure, required_scopes: &[String]) -> Option<BearerRejection> {
    let rejection = match failure {
        AuthFailure::BadBearer(error) => BearerRejection::InvalidRequest(error.clone()),
        AuthFailure::TokenRejected(_)
        | AuthFailure::IntrospectionRejected(_)
        | AuthFailure::OpaqueTokenUnsupported => BearerRejection::invalid_token(failure.code()),
        AuthFailure::InsufficientScope { required, .. } => {
            BearerRejection::insufficient_scope(required)
        }
        AuthFailure::Forbidden(_) => BearerRejection::insufficient_scope(required_scopes),
        AuthFailure::ProviderUnavailable { .. } | AuthFailure::StoreUnavailable(_) => return None,
        _ => BearerRejection::MissingToken,
    };
    Some(rejection)
}

/// The RFC 9449 answer to a failure about DPoP credentials.
fn dpop_rejection(failure: &AuthFailure) -> DpopRejection {
    match failure {
        AuthFailure::BadDpop(error) => DpopRejection::InvalidRequest(error.clone()),
        AuthFailure::DpopRejected(error) => DpopRejection::invalid_proof(error.code()),
        _ => DpopRejection::invalid_token(failure.code()),
    }
}

/// A 401 page for a browser navigation that continues to `{prefix}/start?rd=RETURN_TO`: its
/// script appends the page's `location.hash` to `rd` first (a fragment never reaches a server);
/// without script, a refresh and a link lead to the same place without the fragment.
fn sign_in_page(prefix: &str, return_to: &str) -> Response<Bytes> {
    let encoded: String = url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
    let start = escape_html(&format!("{prefix}/start?rd={encoded}"));
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in</title>\
         <noscript><meta http-equiv=\"refresh\" content=\"0;url={start}\"></noscript></head>\
         <body><p>Sign-in required. <a id=\"oidc-sign-in\" href=\"{start}\">Continue to sign in</a></p>\
         <script>(function () {{ var link = document.getElementById(\"oidc-sign-in\");\
          if (location.hash) {{ link.href += encodeURIComponent(location.hash); }}\
          location.replace(link.href); }})();</script></body></html>\n"
    );
    html_answer(StatusCode::UNAUTHORIZED, body)
}

/// Whether `path` is one of MLflow's REST API paths, under any prefix:
/// `…/api/2.0/mlflow/…`, `…/ajax-api/3.0/mlflow/…`, `…/api/2.0/mlflow-artifacts/…`.
fn is_mlflow_api_path(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    segments.windows(3).any(|window| {
        matches!(window[0], "api" | "ajax-api")
            && window[1]
                .strip_suffix(".0")
                .is_some_and(|major| !major.is_empty() && major.bytes().all(|b| b.is_ascii_digit()))
            && matches!(window[2], "mlflow" | "mlflow-artifacts")
    })
}

/// The same answer with MLflow's error body, for the error statuses MLflow's client reads.
fn mlflow_error_body(response: Response<Bytes>, failure: &AuthFailure) -> Response<Bytes> {
    let (error_code, message) = match response.status() {
        StatusCode::UNAUTHORIZED => (
            "UNAUTHENTICATED",
            "Authentication required: sign in, or send a valid bearer token (MLFLOW_TRACKING_TOKEN).",
        ),
        StatusCode::FORBIDDEN => (
            "PERMISSION_DENIED",
            "Your account is not allowed to use this application.",
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "TEMPORARILY_UNAVAILABLE",
            "Authentication is unavailable right now. Please try again shortly.",
        ),
        _ => return response,
    };
    let (mut parts, previous) = response.into_parts();
    // The RFC 6750 fields of a JSON answer stay beside MLflow's, for clients reading those.
    let mut body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&previous).unwrap_or_default();
    body.insert("error_code".to_owned(), error_code.into());
    body.insert(
        "message".to_owned(),
        format!("{message} ({})", failure.code()).into(),
    );
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(
        parts,
        Bytes::from(serde_json::Value::Object(body).to_string()),
    )
}

/// 503 with a clear message; the session, if any, is kept.
fn unavailable(failure: &AuthFailure, headers: &HeaderMap) -> Response<Bytes> {
    let message = match failure {
        AuthFailure::StoreUnavailable(_) => {
            "The session store is unavailable, so your session cannot be checked. Please try again shortly."
        }
        _ => "The identity provider is unavailable. Please try again shortly.",
    };
    tracing::warn!(code = failure.code(), "answering 503");
    let mut response = error_answer(
        StatusCode::SERVICE_UNAVAILABLE,
        failure.code(),
        message,
        headers,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response.extensions_mut().insert(failure.clone());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bearer_response::{BearerExtractError, DpopExtractError};
    use crate::error_status::answer_status;
    use crate::provider::ProviderError;
    use crate::store::{HandleError, StoreError};
    use oidc_core::dpop::DpopError;
    use oidc_core::introspection::IntrospectionError;
    use oidc_core::jws::JwsError;
    use oidc_core::{CookieError, Denied, ErrorKind, UnixTime, ValidationError};
    use proptest::prelude::*;
    use std::sync::Arc;

    /// The status the bearer layer answers `failure` with; the login layer and forward-auth
    /// answer the same, except that they may redirect a browser navigation to sign in.
    fn bearer_layer_status(failure: &AuthFailure) -> StatusCode {
        if failure.is_dpop_failure() {
            dpop_rejection(failure).status()
        } else {
            bearer_rejection(failure, &[]).map_or(StatusCode::SERVICE_UNAVAILABLE, |rejection| {
                rejection.status()
            })
        }
    }

    #[test]
    fn answers_have_the_status_of_the_catalogue() {
        let failures = [
            AuthFailure::NoCredentials,
            AuthFailure::BadBearer(BearerExtractError::MalformedCredentials),
            AuthFailure::BadBearer(BearerExtractError::MultipleAuthorizationHeaders),
            AuthFailure::TokenRejected(ProviderError::Rejected(ValidationError::BadSignature)),
            AuthFailure::TokenRejected(ProviderError::Rejected(ValidationError::Malformed(
                JwsError::EmptySignature,
            ))),
            AuthFailure::TokenRejected(ProviderError::Malformed(JwsError::Encrypted)),
            AuthFailure::TokenRejected(ProviderError::UnknownIssuer { iss: None }),
            AuthFailure::IntrospectionRejected(IntrospectionError::Inactive),
            AuthFailure::OpaqueTokenUnsupported,
            AuthFailure::BadDpop(DpopExtractError::MissingProof),
            AuthFailure::BadDpop(DpopExtractError::MultipleAuthorizationHeaders),
            AuthFailure::DpopRejected(DpopError::Replayed),
            AuthFailure::DpopBoundTokenAsBearer,
            AuthFailure::DpopTokenNotBound,
            AuthFailure::DpopRequestUnknown,
            AuthFailure::InsufficientScope {
                missing: vec!["write".into()],
                required: vec!["write".into()],
            },
            AuthFailure::ProviderUnavailable {
                kind: ErrorKind::ProviderNotReady,
            },
            AuthFailure::ProviderUnavailable {
                kind: ErrorKind::HttpTimeout,
            },
            AuthFailure::ProviderUnavailable {
                kind: ErrorKind::IntrospectionUnavailable,
            },
            AuthFailure::ProviderUnavailable {
                kind: ErrorKind::JwksNoUsableKeys,
            },
            AuthFailure::SessionInvalid(Arc::new(CookieError::Undecryptable)),
            AuthFailure::SessionHandleInvalid(HandleError::NotBase64Url),
            AuthFailure::SessionExpired {
                expired_at: UnixTime::from_secs(1),
                now: UnixTime::from_secs(2),
            },
            AuthFailure::SessionRevoked,
            AuthFailure::RefreshRejected {
                kind: ErrorKind::NoRefreshToken,
            },
            AuthFailure::StoredSessionUnreadable,
            AuthFailure::StoreUnavailable(Arc::new(StoreError::Unavailable {
                backend: "redis",
                detail: "connection refused".into(),
            })),
            AuthFailure::Forbidden(Denied::MissingEmail),
        ];
        for failure in &failures {
            assert_eq!(
                Some(bearer_layer_status(failure)),
                answer_status(failure.kind()),
                "{}",
                failure.code()
            );
        }
    }

    #[test]
    fn mlflow_api_paths_are_recognised_under_any_prefix() {
        for path in [
            "/api/2.0/mlflow/experiments/search",
            "/mlflow/api/2.0/mlflow/experiments/create",
            "/mlflow/ajax-api/2.0/mlflow/runs/search",
            "/api/3.0/mlflow/traces",
            "/a/b/api/2.0/mlflow-artifacts/artifacts/x",
        ] {
            assert!(is_mlflow_api_path(path), "{path}");
        }
        for path in [
            "/",
            "/mlflow/",
            "/mlflow/#/experiments/3",
            "/api/2.0/other/x",
            "/api/v2/mlflow/x",
            "/api/.0/mlflow/x",
            "/api/2.0",
            "/airflow/api/v2/dags",
            "/api/2.0mlflow/x",
        ] {
            assert!(!is_mlflow_api_path(path), "{path}");
        }
    }

    proptest! {
        #[test]
        fn path_matching_never_panics(path in "\\PC{0,80}") {
            let _ = is_mlflow_api_path(&path);
        }
    }
}
