//! The token endpoint's answers (RFC 6749 §5), and the refresh-token request (§6).
//!
//! Decides whether an answer is a usable token set, a typed provider refusal, or garbage; the
//! ID token inside is validated later by [`super::finish_login`] / [`super::finish_refresh`].

use http::StatusCode;
use serde::Deserialize;

use super::client_auth::{self, ClientAuthError, ClientCredentials};
use crate::ErrorKind;
use crate::provider_response::{
    MAX_PROVIDER_RESPONSE_BYTES, ResponseError, checked_json_body, parse_json,
};
use crate::{RandomSource, Secret, UnixTime};

/// The tokens of a successful answer. Every token is a [`Secret`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: Secret,
    /// The token type, `Bearer` (checked case-insensitively).
    pub token_type: String,
    /// Seconds until the access token expires, when stated.
    pub expires_in: Option<u64>,
    /// A refresh token, when issued.
    pub refresh_token: Option<Secret>,
    /// The ID token (always present after a code exchange; optional after a refresh).
    pub id_token: Option<Secret>,
    /// The granted scopes, when they differ from the requested ones.
    pub scope: Option<String>,
}

impl TokenResponse {
    /// When the access token expires, given the time the answer was received.
    pub fn access_token_expires_at(&self, received_at: UnixTime) -> Option<UnixTime> {
        self.expires_in
            .map(|secs| received_at.saturating_add(std::time::Duration::from_secs(secs)))
    }
}

/// An error code of the token endpoint (RFC 6749 §5.2).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenErrorCode {
    /// `invalid_request`
    InvalidRequest,
    /// `invalid_client`: client authentication failed.
    InvalidClient,
    /// `invalid_grant`: the code or refresh token is invalid, expired, revoked or reused.
    InvalidGrant,
    /// `unauthorized_client`
    UnauthorizedClient,
    /// `unsupported_grant_type`
    UnsupportedGrantType,
    /// `invalid_scope`
    InvalidScope,
    /// Any other code, kept verbatim.
    Other(String),
}

impl TokenErrorCode {
    /// Reads a code as the provider sent it.
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The code as the protocol spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::Other(code) => code,
        }
    }
}

/// Why a token endpoint answer is not a usable token set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The provider refused with an RFC 6749 §5.2 error.
    #[error("the token endpoint refused: {}{}", .error.as_str(), super::describe(.description))]
    Provider {
        /// The HTTP status of the refusal.
        status: StatusCode,
        /// The error code.
        error: TokenErrorCode,
        /// `error_description`, if sent.
        description: Option<String>,
        /// `error_uri`, if sent.
        uri: Option<String>,
    },
    /// The answer failed the status, media type, size or shape checks.
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// A token type other than `Bearer` (e.g. `DPoP`, which this client does not speak).
    #[error("the token endpoint issued a {token_type:?} token; only Bearer is supported")]
    UnsupportedTokenType {
        /// The `token_type` received.
        token_type: String,
    },
    /// A successful code exchange without an ID token: the provider did not treat the request
    /// as OpenID Connect.
    #[error("the token endpoint answered without an id_token")]
    IdTokenMissing,
    /// The refresh request could not be authenticated.
    #[error(transparent)]
    ClientAuth(#[from] ClientAuthError),
}

impl TokenError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TokenError::Provider { .. } => ErrorKind::TokenEndpointError,
            TokenError::Response(e) => e.kind(),
            TokenError::UnsupportedTokenType { .. } => ErrorKind::UnsupportedTokenType,
            TokenError::IdTokenMissing => ErrorKind::IdTokenMissing,
            TokenError::ClientAuth(e) => e.kind(),
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

#[derive(Deserialize)]
struct RawTokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<NumberOrString>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// `expires_in` as a number, or as a string of digits as some providers send it.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(u64),
    Text(String),
}

#[derive(Deserialize)]
struct RawErrorResponse {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_uri: Option<String>,
}

/// Reads a token endpoint answer: `200` with a token set, or a `4xx` with an RFC 6749 §5.2
/// error body (a typed [`TokenError::Provider`]).
pub fn parse_token_response<B: AsRef<[u8]>>(
    response: &http::Response<B>,
) -> Result<TokenResponse, TokenError> {
    if response.status().is_client_error()
        && let Some(refusal) = parse_error_body(response)
    {
        return Err(refusal);
    }
    let body = checked_json_body(response, StatusCode::OK, &[], MAX_PROVIDER_RESPONSE_BYTES)?;
    let raw: RawTokenResponse = parse_json(body)?;
    if !raw.token_type.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::UnsupportedTokenType {
            token_type: raw.token_type,
        });
    }
    let expires_in = match raw.expires_in {
        None => None,
        Some(NumberOrString::Number(n)) => Some(n),
        Some(NumberOrString::Text(text)) => {
            Some(text.trim().parse().map_err(|_| ResponseError::Malformed {
                reason: format!(
                    "expires_in {:?} is not a number",
                    crate::provider_response::excerpt(text.as_bytes())
                ),
            })?)
        }
    };
    Ok(TokenResponse {
        access_token: Secret::new(raw.access_token),
        token_type: raw.token_type,
        expires_in,
        refresh_token: raw.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
        id_token: raw.id_token.filter(|t| !t.is_empty()).map(Secret::new),
        scope: raw.scope,
    })
}

fn parse_error_body<B: AsRef<[u8]>>(response: &http::Response<B>) -> Option<TokenError> {
    let body = response.body().as_ref();
    if body.len() > MAX_PROVIDER_RESPONSE_BYTES {
        return None;
    }
    let raw: RawErrorResponse = serde_json::from_slice(body).ok()?;
    Some(TokenError::Provider {
        status: response.status(),
        error: TokenErrorCode::parse(&raw.error),
        description: raw.error_description,
        uri: raw.error_uri,
    })
}

/// The refresh request (RFC 6749 §6) to the token endpoint, authenticated like the code
/// exchange. `scope`, when given, narrows the granted scopes; `resources` (RFC 8707) name what
/// the new access token is for, as at sign-in ([`crate::login::LoginConfig::resources`]).
pub fn refresh_request(
    token_endpoint: &url::Url,
    credentials: &ClientCredentials,
    refresh_token: &Secret,
    scope: Option<&str>,
    resources: &[String],
    now: UnixTime,
    random: &mut dyn RandomSource,
) -> Result<http::Request<Vec<u8>>, TokenError> {
    let mut params = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose()),
    ];
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    params.extend(resources.iter().map(|r| ("resource", r.as_str())));
    Ok(client_auth::authenticated_form_post(
        token_endpoint,
        credentials,
        &params,
        now,
        random,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::danger::InsecureSeededRandom;
    use crate::login::ClientAuthMethod;

    fn response(status: u16, body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    #[test]
    fn parses_a_full_token_set() {
        let parsed = parse_token_response(&response(
            200,
            r#"{"access_token":"at","token_type":"bearer","expires_in":"3600",
                "refresh_token":"rt","id_token":"a.b.c","scope":"openid email"}"#,
        ))
        .unwrap();
        assert_eq!(parsed.access_token.expose(), "at");
        assert_eq!(parsed.expires_in, Some(3600));
        assert_eq!(parsed.refresh_token, Some(Secret::new("rt")));
        assert_eq!(parsed.id_token, Some(Secret::new("a.b.c")));
        assert_eq!(parsed.scope.as_deref(), Some("openid email"));
        assert_eq!(
            parsed.access_token_expires_at(UnixTime::from_secs(10)),
            Some(UnixTime::from_secs(3610))
        );
        assert!(!format!("{parsed:?}").contains("\"at\""));
    }

    #[test]
    fn error_codes_are_typed() {
        let err = parse_token_response(&response(
            400,
            r#"{"error":"invalid_grant","error_description":"code reused"}"#,
        ))
        .unwrap_err();
        assert_eq!(
            err,
            TokenError::Provider {
                status: StatusCode::BAD_REQUEST,
                error: TokenErrorCode::InvalidGrant,
                description: Some("code reused".into()),
                uri: None,
            }
        );
        assert_eq!(err.code(), "token_endpoint_error");
        let err =
            parse_token_response(&response(401, r#"{"error":"invalid_client"}"#)).unwrap_err();
        assert!(matches!(
            err,
            TokenError::Provider {
                error: TokenErrorCode::InvalidClient,
                ..
            }
        ));
        let err = parse_token_response(&response(400, "<html>")).unwrap_err();
        assert_eq!(err.code(), "provider_unexpected_status");
        let err = parse_token_response(&response(500, r#"{"error":"x"}"#)).unwrap_err();
        assert_eq!(err.code(), "provider_unexpected_status");
    }

    #[test]
    fn other_token_types_and_bad_shapes_are_refused() {
        let err = parse_token_response(&response(
            200,
            r#"{"access_token":"at","token_type":"DPoP"}"#,
        ))
        .unwrap_err();
        assert_eq!(err.code(), "unsupported_token_type");
        let err = parse_token_response(&response(200, r#"{"token_type":"Bearer"}"#)).unwrap_err();
        assert_eq!(err.code(), "provider_response_malformed");
        let err = parse_token_response(&response(
            200,
            r#"{"access_token":"at","token_type":"Bearer","expires_in":"soon"}"#,
        ))
        .unwrap_err();
        assert_eq!(err.code(), "provider_response_malformed");
    }

    #[test]
    fn refresh_request_carries_the_grant() {
        let request = refresh_request(
            &url::Url::parse("https://op.example/token").unwrap(),
            &ClientCredentials::new("rp", ClientAuthMethod::ClientSecretPost("pw".into())),
            &Secret::new("rt"),
            Some("openid"),
            &["https://api.example/".to_owned()],
            UnixTime::from_secs(1),
            &mut InsecureSeededRandom::new(1),
        )
        .unwrap();
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(request.body()).unwrap();
        assert_eq!(
            form,
            vec![
                ("grant_type".into(), "refresh_token".into()),
                ("refresh_token".into(), "rt".into()),
                ("scope".into(), "openid".into()),
                ("resource".into(), "https://api.example/".into()),
                ("client_id".into(), "rp".into()),
                ("client_secret".into(), "pw".into()),
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn token_response_parsing_never_panics(
            status in proptest::sample::select(vec![200u16, 400, 401, 500]),
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..256),
        ) {
            let response = http::Response::builder().status(status).body(body).unwrap();
            let _ = parse_token_response(&response);
        }
    }
}
