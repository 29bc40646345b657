//! The endpoints under the prefix: `start`, `callback`, `sign_out`, `signed_out`, `userinfo`,
//! `backchannel_logout` and, when identity assertions are on, `jwks` (their public keys),
//! shared by the login layer and forward-auth.
//!
//! Sign-out returns the browser to the application: `sign_out?rd=TARGET` checks `TARGET` with
//! the same redirect policy as sign-in targets; when the provider's session is ended too, the
//! target travels as the logout request's `state` to the configured post-logout redirect URI
//! (`{prefix}/signed_out`), which checks it again and redirects there.
//!
//! One file per endpoint: [`sign_in`] (`start`, and the redirect every front-end sends a
//! browser that must sign in), [`callback`], [`sign_out`] (`sign_out`, `signed_out`),
//! [`userinfo`], [`backchannel`] (`backchannel_logout`) and [`jwks`]; this module matches the
//! path, reads the body and dispatches.

mod backchannel;
mod callback;
mod jwks;
mod sign_in;
mod sign_out;
mod userinfo;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, header, request};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use oidc_core::ErrorKind;

use super::answer::error_answer;
use super::authenticator::Authenticator;
use crate::proxy::BoxError;

/// The largest request body an endpoint reads (callback `form_post`, logout token).
const MAX_ENDPOINT_BODY_BYTES: usize = 64 * 1024;

/// An endpoint under the prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Start,
    Callback,
    SignOut,
    SignedOut,
    Userinfo,
    BackchannelLogout,
    Auth,
    Jwks,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Start => "start",
            Endpoint::Callback => "callback",
            Endpoint::SignOut => "sign_out",
            Endpoint::SignedOut => "signed_out",
            Endpoint::Userinfo => "userinfo",
            Endpoint::BackchannelLogout => "backchannel_logout",
            Endpoint::Auth => "auth",
            Endpoint::Jwks => "jwks",
        }
    }
}

impl Authenticator {
    /// The endpoint a path names, if it is one of ours.
    pub(crate) fn endpoint_for(&self, path: &str) -> Option<Endpoint> {
        match endpoint_under(self.prefix(), path) {
            Some(Endpoint::Jwks) if self.front_end().identity_assertion.is_none() => None,
            endpoint => endpoint,
        }
    }

    /// Serves one of the sign-in endpoints (not `auth`, which forward-auth answers).
    pub(crate) async fn serve_endpoint<B>(
        &self,
        endpoint: Endpoint,
        parts: request::Parts,
        body: B,
    ) -> Response<Bytes>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        tracing::debug!(endpoint = endpoint.name(), "serving endpoint");
        let needs_body = parts.method == Method::POST
            && matches!(endpoint, Endpoint::Callback | Endpoint::BackchannelLogout);
        if needs_body && has_content_coding(&parts.headers) {
            // Never inflated: a few kilobytes of gzip could stand for gigabytes.
            return error_answer(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorKind::ContentEncodingUnsupported.code(),
                "Compressed request bodies are not accepted here.",
                &parts.headers,
            );
        }
        let body = if needs_body {
            match Limited::new(body, MAX_ENDPOINT_BODY_BYTES).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return error_answer(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        ErrorKind::BodyTooLarge.code(),
                        "The request body is too large or could not be read.",
                        &parts.headers,
                    );
                }
            }
        } else {
            Bytes::new()
        };
        match endpoint {
            Endpoint::Start => {
                let target = query_param(parts.uri.query(), "rd");
                let return_to = self
                    .front_end()
                    .redirect_policy
                    .return_to_or_root(target.as_deref());
                self.begin_login_pushing(&parts.headers, &return_to).await
            }
            Endpoint::Callback => self.callback(&parts, &body).await,
            Endpoint::SignOut => self.sign_out(&parts).await,
            Endpoint::SignedOut => self.signed_out(&parts),
            Endpoint::Userinfo => self.userinfo(&parts).await,
            Endpoint::BackchannelLogout => self.backchannel_logout(&parts, &body).await,
            Endpoint::Auth => error_answer(
                StatusCode::NOT_FOUND,
                ErrorKind::NotFound.code(),
                "This endpoint is served by forward-auth only.",
                &parts.headers,
            ),
            Endpoint::Jwks => self.jwks(&parts),
        }
    }
}

/// The endpoint `path` names under `prefix`: an exact match of `{prefix}/{name}`, nothing else.
pub(crate) fn endpoint_under(prefix: &str, path: &str) -> Option<Endpoint> {
    let rest = path.strip_prefix(prefix)?.strip_prefix('/')?;
    match rest {
        "start" => Some(Endpoint::Start),
        "callback" => Some(Endpoint::Callback),
        "sign_out" => Some(Endpoint::SignOut),
        "signed_out" => Some(Endpoint::SignedOut),
        "userinfo" => Some(Endpoint::Userinfo),
        "backchannel_logout" => Some(Endpoint::BackchannelLogout),
        "auth" => Some(Endpoint::Auth),
        "jwks" => Some(Endpoint::Jwks),
        _ => None,
    }
}

/// Whether the body is declared as compressed (any `Content-Encoding` but `identity`).
fn has_content_coding(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&byte| byte == b','))
        .any(|coding| {
            let coding = coding.trim_ascii();
            !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity")
        })
}

fn not_configured(headers: &HeaderMap) -> Response<Bytes> {
    error_answer(
        StatusCode::NOT_FOUND,
        "login_not_configured",
        "Sign-in is not configured here.",
        headers,
    )
}

fn provider_not_ready(headers: &HeaderMap) -> Response<Bytes> {
    error_answer(
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_not_ready",
        "The identity provider is not reachable yet. Please try again shortly.",
        headers,
    )
}

/// The first value of a query parameter, decoded.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    #[test]
    fn endpoints_match_exact_paths_only() {
        assert_eq!(
            endpoint_under("/oauth2", "/oauth2/start"),
            Some(Endpoint::Start)
        );
        assert_eq!(
            endpoint_under("/oauth2", "/oauth2/auth"),
            Some(Endpoint::Auth)
        );
        assert_eq!(endpoint_under("/oauth2", "/oauth2/start/"), None);
        assert_eq!(endpoint_under("/oauth2", "/oauth2start"), None);
        assert_eq!(endpoint_under("/oauth2", "/x/oauth2/start"), None);
        assert_eq!(endpoint_under("/oauth2", "/oauth2/START"), None);
    }

    #[test]
    fn only_identity_counts_as_uncompressed() {
        let coded = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(
                    header::CONTENT_ENCODING,
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            has_content_coding(&headers)
        };
        assert!(!coded(&[]));
        assert!(!coded(&["identity"]));
        assert!(!coded(&[" IDENTITY , "]));
        assert!(coded(&["gzip"]));
        assert!(coded(&["identity, br"]));
        assert!(coded(&["identity", "deflate"]));
        assert!(coded(&["x-anything"]));
    }

    proptest! {
        #[test]
        fn endpoint_matching_never_panics_and_is_exact(path in "\\PC{0,64}") {
            if let Some(endpoint) = endpoint_under("/oauth2", &path) {
                prop_assert_eq!(path, format!("/oauth2/{}", endpoint.name()));
            }
        }

        #[test]
        fn query_parsing_never_panics(query in proptest::collection::vec(any::<u8>(), 0..256)) {
            let query = String::from_utf8_lossy(&query);
            let _ = query_param(Some(&query), "rd");
        }
    }

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            query_param(Some("a=1&rd=%2Fx%3Fy%3D1"), "rd").as_deref(),
            Some("/x?y=1")
        );
        assert_eq!(query_param(Some("rd"), "rd").as_deref(), Some(""));
        assert_eq!(query_param(None, "rd"), None);
        assert_eq!(query_param(Some("x=%ff"), "x").as_deref(), Some("\u{fffd}"));
    }
}
