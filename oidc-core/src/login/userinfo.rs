//! The UserInfo exchange (OpenID Connect Core §5.3): the request carrying the access token, and
//! the check that the answer describes the same subject as the ID token.
//!
//! Signed or encrypted UserInfo answers (`application/jwt`) are refused with
//! [`UserinfoError::SignedUserinfoUnsupported`]: this client registers for plain JSON UserInfo,
//! and a provider sending JWTs was configured for something else.

use http::{HeaderValue, Method, Request, StatusCode, header};
use serde_json::{Map, Value};

use crate::ErrorKind;
use crate::Secret;
use crate::provider_response::{
    MAX_PROVIDER_RESPONSE_BYTES, ResponseError, checked_json_body, parse_json,
};
use crate::secret::constant_time_eq;

/// Why a UserInfo answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserinfoError {
    /// The answer failed the status, media type, size or shape checks.
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// The answer is a JWT (`application/jwt`), which this client does not accept.
    #[error(
        "the UserInfo endpoint answered with a signed or encrypted JWT, which is not supported"
    )]
    SignedUserinfoUnsupported,
    /// The answer has no `sub`.
    #[error("the UserInfo answer has no sub")]
    SubjectMissing,
    /// The answer describes someone else (a token substitution attempt).
    #[error("the UserInfo sub {received:?} differs from the ID token's {expected:?}")]
    SubjectMismatch {
        /// The ID token's `sub`.
        expected: String,
        /// The UserInfo `sub`.
        received: String,
    },
}

impl UserinfoError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            UserinfoError::Response(e) => e.kind(),
            UserinfoError::SignedUserinfoUnsupported => ErrorKind::UserinfoJwtUnsupported,
            UserinfoError::SubjectMissing => ErrorKind::UserinfoSubMissing,
            UserinfoError::SubjectMismatch { .. } => ErrorKind::UserinfoSubMismatch,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// A `GET` to the UserInfo endpoint with the access token in the `Authorization` header
/// (RFC 6750 §2.1), marked sensitive so that it is never logged.
pub fn userinfo_request(userinfo_endpoint: &url::Url, access_token: &Secret) -> Request<Vec<u8>> {
    let mut request = crate::provider_response::json_get_request(userinfo_endpoint);
    *request.method_mut() = Method::GET;
    if let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", access_token.expose())) {
        value.set_sensitive(true);
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    request
}

/// Reads a UserInfo answer and checks that its `sub` equals `expected_sub`, the ID token's.
pub fn parse_userinfo<B: AsRef<[u8]>>(
    response: &http::Response<B>,
    expected_sub: &str,
) -> Result<Map<String, Value>, UserinfoError> {
    let is_jwt = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/jwt"));
    if is_jwt && response.status() == StatusCode::OK {
        return Err(UserinfoError::SignedUserinfoUnsupported);
    }
    let body = checked_json_body(response, StatusCode::OK, &[], MAX_PROVIDER_RESPONSE_BYTES)?;
    let claims: Map<String, Value> = parse_json(body)?;
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or(UserinfoError::SubjectMissing)?;
    if !constant_time_eq(sub.as_bytes(), expected_sub.as_bytes()) {
        return Err(UserinfoError::SubjectMismatch {
            expected: expected_sub.to_owned(),
            received: sub.to_owned(),
        });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(content_type: &str, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(200)
            .header("content-type", content_type)
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn request_sends_the_bearer_token_in_the_header() {
        let request = userinfo_request(
            &url::Url::parse("https://op.example/userinfo").unwrap(),
            &Secret::new("at"),
        );
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.headers()[header::AUTHORIZATION], "Bearer at");
        assert!(request.headers()[header::AUTHORIZATION].is_sensitive());
        assert!(request.body().is_empty());
    }

    #[test]
    fn same_subject_is_accepted() {
        let claims = parse_userinfo(
            &response("application/json", r#"{"sub":"u1","email":"a@b.example"}"#),
            "u1",
        )
        .unwrap();
        assert_eq!(claims["email"], "a@b.example");
    }

    #[test]
    fn other_subject_missing_subject_and_jwt_are_refused() {
        let err =
            parse_userinfo(&response("application/json", r#"{"sub":"u2"}"#), "u1").unwrap_err();
        assert_eq!(err.code(), "userinfo_sub_mismatch");
        let err = parse_userinfo(&response("application/json", r#"{"sub":7}"#), "u1").unwrap_err();
        assert_eq!(err, UserinfoError::SubjectMissing);
        let err = parse_userinfo(&response("application/jwt", "a.b.c"), "u1").unwrap_err();
        assert_eq!(err, UserinfoError::SignedUserinfoUnsupported);
        let err = parse_userinfo(&response("application/json", "[1]"), "u1").unwrap_err();
        assert_eq!(err.code(), "provider_response_malformed");
    }

    proptest::proptest! {
        #[test]
        fn userinfo_parsing_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let response = http::Response::builder().status(200).body(body).unwrap();
            let _ = parse_userinfo(&response, "u1");
        }
    }
}
