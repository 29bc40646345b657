//! The `jwks` endpoint: the public keys of the identity assertions the layers sign for the
//! upstream; served only when identity assertions are configured.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header, request};
use oidc_core::ErrorKind;

use crate::auth::answer::error_answer;
use crate::auth::authenticator::Authenticator;

impl Authenticator {
    /// The key set, or 404 when identity assertions are not configured.
    pub(super) fn jwks(&self, parts: &request::Parts) -> Response<Bytes> {
        match &self.front_end().identity_assertion {
            Some(assertion) => assertion_key_set(assertion.key_set_json().clone()),
            None => error_answer(
                StatusCode::NOT_FOUND,
                ErrorKind::NotFound.code(),
                "Identity assertions are not configured.",
                &parts.headers,
            ),
        }
    }
}

/// The identity assertions' public keys: public, and cacheable for a few minutes (an upstream
/// meeting an unknown `kid` fetches them again).
fn assertion_key_set(json: Bytes) -> Response<Bytes> {
    let mut response = Response::new(json);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
