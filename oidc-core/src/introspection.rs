//! Token introspection (RFC 7662), the core half: the request to send and the decision on the
//! answer.
//!
//! An opaque access token is valid only when the provider says `active: true`, the optional
//! `iss`, `exp` and `nbf` members it returns agree with the [`IntrospectionPolicy`], and the token
//! is bound to this service: an answer that names audiences must name one of ours; an answer
//! without `aud` must name, as `client_id` (or `azp`), this service's client or one the operator
//! accepts. Active is not enough: every client of a provider can have its tokens introspected,
//! and a token issued to another application must not open this one. The answer may be cached
//! until `min(exp, now + max_cache)` ([`IntrospectedToken::cache_until`]): a revoked token then
//! stops working at the latest after `max_cache`.

use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::ErrorKind;
use crate::login::client_auth::{self, ClientAuthError, ClientCredentials};
use crate::provider_response::{
    MAX_PROVIDER_RESPONSE_BYTES, ResponseError, checked_json_body, parse_json,
};
use crate::{RandomSource, Secret, UnixTime};

/// How long an introspection answer is cached unless configured otherwise.
pub const DEFAULT_MAX_CACHE: Duration = Duration::from_secs(60);

/// The clock skew tolerated on `exp` and `nbf` unless configured otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// What kind of token is being introspected (`token_type_hint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// `access_token`
    AccessToken,
    /// `refresh_token`
    RefreshToken,
}

impl TokenTypeHint {
    /// The hint as the protocol spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        }
    }
}

/// What an introspection answer must agree with.
#[derive(Clone, Debug)]
pub struct IntrospectionPolicy {
    issuer: Option<String>,
    audiences: Vec<String>,
    clients: Vec<String>,
    skip_binding: bool,
    max_cache: Duration,
    leeway: Duration,
}

impl Default for IntrospectionPolicy {
    fn default() -> Self {
        IntrospectionPolicy {
            issuer: None,
            audiences: Vec::new(),
            clients: Vec::new(),
            skip_binding: false,
            max_cache: DEFAULT_MAX_CACHE,
            leeway: DEFAULT_LEEWAY,
        }
    }
}

impl IntrospectionPolicy {
    /// A policy with no `iss` expectation, [`DEFAULT_MAX_CACHE`] and [`DEFAULT_LEEWAY`], that
    /// binds tokens to nothing yet: until [`Self::audience`] or [`Self::client`] name this
    /// service, every active token is refused as not meant for it.
    pub fn new() -> Self {
        Self::default()
    }

    /// When the answer names an issuer, it must be `issuer`.
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// An audience of this service: an answer that names audiences must name one of these.
    /// Repeatable.
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// A client whose tokens are meant for this service: an answer without `aud` must name one
    /// of these as `client_id` (or, without that, `azp`). This service's own client, and
    /// clients that obtain tokens for it on purpose (a CLI, a CI service account). Repeatable.
    #[must_use]
    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.clients.push(client_id.into());
        self
    }

    /// Accepts any active token, whoever it was issued to and for.
    ///
    /// # Security warning
    /// With this set, a token that the provider issued to any other application is accepted.
    /// Meant for tools that inspect tokens, never for a service deciding who may pass.
    #[must_use]
    pub fn insecure_skip_binding(mut self) -> Self {
        self.skip_binding = true;
        self
    }

    /// The longest an answer may be cached.
    #[must_use]
    pub fn max_cache(mut self, max_cache: Duration) -> Self {
        self.max_cache = max_cache;
        self
    }

    /// Clock skew tolerated on `exp` and `nbf`.
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }
}

/// The members of an active token's introspection answer (RFC 7662 §2.2).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct IntrospectionClaims {
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// The client the token was issued to.
    pub client_id: Option<String>,
    /// A human-readable identifier of the resource owner.
    pub username: Option<String>,
    /// The token's type (e.g. `Bearer`).
    pub token_type: Option<String>,
    /// Expiry.
    pub exp: Option<UnixTime>,
    /// Issue time.
    pub iat: Option<UnixTime>,
    /// Not-before time.
    pub nbf: Option<UnixTime>,
    /// The subject.
    pub sub: Option<String>,
    /// The audiences (a single string is read as one audience).
    pub aud: Vec<String>,
    /// The issuer.
    pub iss: Option<String>,
    /// The token's identifier.
    pub jti: Option<String>,
    /// Every other member.
    pub extra: Map<String, Value>,
}

/// An active token and how long the decision may be reused.
#[derive(Clone, Debug, PartialEq)]
pub struct IntrospectedToken {
    /// What the provider said about the token.
    pub claims: IntrospectionClaims,
    /// Until when the answer may be cached: `min(exp, now + max_cache)`.
    pub cache_until: UnixTime,
}

/// Why an introspected token is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntrospectionError {
    /// The request could not be authenticated.
    #[error(transparent)]
    ClientAuth(#[from] ClientAuthError),
    /// The answer failed the status, media type, size or shape checks.
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// The provider says the token is not active (unknown, expired, revoked).
    #[error("the token is not active")]
    Inactive,
    /// The answer names another issuer.
    #[error("the token was issued by {received:?}, expected {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The `iss` received.
        received: String,
    },
    /// The answer names audiences, and none of ours is among them.
    #[error("the token is for {received:?}, not for {expected:?}")]
    AudienceMismatch {
        /// The configured audiences.
        expected: Vec<String>,
        /// The `aud` received.
        received: Vec<String>,
    },
    /// The answer names no audience, and the client it names (if any) is not one whose tokens
    /// are meant for this service.
    #[error("the token was issued to client {received:?}, not to one of {expected:?}")]
    WrongClient {
        /// The accepted clients.
        expected: Vec<String>,
        /// The `client_id` (or `azp`) received.
        received: Option<String>,
    },
    /// `exp` has passed (beyond the leeway) although the provider says active.
    #[error("the token expired at {exp} (now {now}, leeway {}s)", .leeway.as_secs())]
    Expired {
        /// The expiry.
        exp: UnixTime,
        /// The time of the check.
        now: UnixTime,
        /// The tolerated skew.
        leeway: Duration,
    },
    /// `nbf` is still ahead (beyond the leeway).
    #[error("the token is not valid before {nbf} (now {now}, leeway {}s)", .leeway.as_secs())]
    NotYetValid {
        /// The not-before time.
        nbf: UnixTime,
        /// The time of the check.
        now: UnixTime,
        /// The tolerated skew.
        leeway: Duration,
    },
}

impl IntrospectionError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IntrospectionError::ClientAuth(e) => e.kind(),
            IntrospectionError::Response(e) => e.kind(),
            IntrospectionError::Inactive => ErrorKind::TokenInactive,
            IntrospectionError::IssuerMismatch { .. } => ErrorKind::IntrospectionIssuerMismatch,
            IntrospectionError::AudienceMismatch { .. } => ErrorKind::IntrospectionAudienceMismatch,
            IntrospectionError::WrongClient { .. } => ErrorKind::WrongClient,
            IntrospectionError::Expired { .. } => ErrorKind::IntrospectionTokenExpired,
            IntrospectionError::NotYetValid { .. } => ErrorKind::IntrospectionTokenNotYetValid,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// The introspection request: a form `POST` of `token` (and `token_type_hint`) to the endpoint,
/// with the client's authentication as for the token endpoint.
pub fn introspection_request(
    introspection_endpoint: &Url,
    credentials: &ClientCredentials,
    token: &Secret,
    hint: Option<TokenTypeHint>,
    now: UnixTime,
    random: &mut dyn RandomSource,
) -> Result<http::Request<Vec<u8>>, IntrospectionError> {
    let mut params = vec![("token", token.expose())];
    if let Some(hint) = hint {
        params.push(("token_type_hint", hint.as_str()));
    }
    Ok(client_auth::authenticated_form_post(
        introspection_endpoint,
        credentials,
        &params,
        now,
        random,
    )?)
}

#[derive(Deserialize)]
struct RawIntrospection {
    active: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    exp: Option<NumericDate>,
    #[serde(default)]
    iat: Option<NumericDate>,
    #[serde(default)]
    nbf: Option<NumericDate>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<OneOrMany>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

/// A JSON NumericDate: whole seconds, or a non-negative fraction that is truncated.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumericDate {
    Whole(u64),
    Fraction(f64),
}

impl NumericDate {
    fn to_time(&self) -> UnixTime {
        match *self {
            NumericDate::Whole(secs) => UnixTime::from_secs(secs),
            // `as` saturates: negative and NaN become 0, huge values u64::MAX.
            NumericDate::Fraction(secs) => UnixTime::from_secs(secs as u64),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Reads an introspection answer and decides whether the token is acceptable at `now`.
pub fn parse_introspection<B: AsRef<[u8]>>(
    response: &http::Response<B>,
    policy: &IntrospectionPolicy,
    now: UnixTime,
) -> Result<IntrospectedToken, IntrospectionError> {
    let body = checked_json_body(response, StatusCode::OK, &[], MAX_PROVIDER_RESPONSE_BYTES)?;
    let raw: RawIntrospection = parse_json(body)?;
    if !raw.active {
        return Err(IntrospectionError::Inactive);
    }
    let claims = IntrospectionClaims {
        scope: raw.scope,
        client_id: raw.client_id,
        username: raw.username,
        token_type: raw.token_type,
        exp: raw.exp.as_ref().map(NumericDate::to_time),
        iat: raw.iat.as_ref().map(NumericDate::to_time),
        nbf: raw.nbf.as_ref().map(NumericDate::to_time),
        sub: raw.sub,
        aud: match raw.aud {
            None => Vec::new(),
            Some(OneOrMany::One(aud)) => vec![aud],
            Some(OneOrMany::Many(auds)) => auds,
        },
        iss: raw.iss,
        jti: raw.jti,
        extra: raw.extra,
    };
    if let (Some(expected), Some(received)) = (&policy.issuer, &claims.iss)
        && expected != received
    {
        return Err(IntrospectionError::IssuerMismatch {
            expected: expected.clone(),
            received: received.clone(),
        });
    }
    if !policy.skip_binding {
        check_binding(&claims, policy)?;
    }
    if let Some(exp) = claims.exp
        && now >= exp.saturating_add(policy.leeway)
    {
        return Err(IntrospectionError::Expired {
            exp,
            now,
            leeway: policy.leeway,
        });
    }
    if let Some(nbf) = claims.nbf
        && now.saturating_add(policy.leeway) < nbf
    {
        return Err(IntrospectionError::NotYetValid {
            nbf,
            now,
            leeway: policy.leeway,
        });
    }
    let cache_limit = now.saturating_add(policy.max_cache);
    let cache_until = claims.exp.map_or(cache_limit, |exp| exp.min(cache_limit));
    Ok(IntrospectedToken {
        claims,
        cache_until,
    })
}

/// Whether the token is meant for this service: by audience when the answer names any, else by
/// the client it was issued to.
fn check_binding(
    claims: &IntrospectionClaims,
    policy: &IntrospectionPolicy,
) -> Result<(), IntrospectionError> {
    if !claims.aud.is_empty() {
        if claims.aud.iter().any(|aud| policy.audiences.contains(aud)) {
            return Ok(());
        }
        return Err(IntrospectionError::AudienceMismatch {
            expected: policy.audiences.clone(),
            received: claims.aud.clone(),
        });
    }
    let client = claims
        .client_id
        .as_deref()
        .or_else(|| claims.extra.get("azp").and_then(Value::as_str));
    match client {
        Some(client) if policy.clients.iter().any(|accepted| accepted == client) => Ok(()),
        _ => Err(IntrospectionError::WrongClient {
            expected: policy.clients.clone(),
            received: client.map(str::to_owned),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::danger::InsecureSeededRandom;
    use crate::login::ClientAuthMethod;

    fn answer(body: &str) -> http::Response<Vec<u8>> {
        http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(body.as_bytes().to_vec())
            .unwrap()
    }

    fn policy() -> IntrospectionPolicy {
        IntrospectionPolicy::new()
            .issuer("https://op.example")
            .audience("api")
            .client("c")
            .max_cache(Duration::from_secs(120))
    }

    const NOW: UnixTime = UnixTime::from_secs(10_000);

    #[test]
    fn request_carries_token_hint_and_client_auth() {
        let request = introspection_request(
            &Url::parse("https://op.example/introspect").unwrap(),
            &ClientCredentials::new("rs", ClientAuthMethod::ClientSecretBasic("pw".into())),
            &Secret::new("opaque"),
            Some(TokenTypeHint::AccessToken),
            NOW,
            &mut InsecureSeededRandom::new(1),
        )
        .unwrap();
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.uri(), "https://op.example/introspect");
        assert_eq!(request.headers()["authorization"], "Basic cnM6cHc=");
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(request.body()).unwrap();
        assert_eq!(
            form,
            vec![
                ("token".into(), "opaque".into()),
                ("token_type_hint".into(), "access_token".into())
            ]
        );
    }

    #[test]
    fn active_token_is_typed_and_cached_until_the_earlier_of_exp_and_limit() {
        let token = parse_introspection(
            &answer(
                r#"{"active":true,"scope":"read write","client_id":"c","sub":"u","aud":"api",
                    "iss":"https://op.example","exp":10060,"iat":9000.5,"custom":1}"#,
            ),
            &policy(),
            NOW,
        )
        .unwrap();
        assert_eq!(token.claims.sub.as_deref(), Some("u"));
        assert_eq!(token.claims.aud, vec!["api".to_owned()]);
        assert_eq!(token.claims.iat, Some(UnixTime::from_secs(9000)));
        assert_eq!(token.claims.extra["custom"], 1);
        assert_eq!(token.cache_until, UnixTime::from_secs(10_060));
        let long_lived = parse_introspection(
            &answer(r#"{"active":true,"aud":"api","exp":99999}"#),
            &policy(),
            NOW,
        )
        .unwrap();
        assert_eq!(long_lived.cache_until, UnixTime::from_secs(10_120));
        let no_exp = parse_introspection(
            &answer(r#"{"active":true,"client_id":"c"}"#),
            &policy(),
            NOW,
        )
        .unwrap();
        assert_eq!(no_exp.cache_until, UnixTime::from_secs(10_120));
    }

    #[test]
    fn rejections_are_typed() {
        let cases = [
            (r#"{"active":false}"#, "token_inactive"),
            (
                r#"{"active":true,"iss":"https://evil.example"}"#,
                "introspection_issuer_mismatch",
            ),
            (
                r#"{"active":true,"aud":["other","more"]}"#,
                "introspection_audience_mismatch",
            ),
            (
                r#"{"active":true,"client_id":"c","exp":9000}"#,
                "introspection_token_expired",
            ),
            (
                r#"{"active":true,"aud":"api","nbf":20000}"#,
                "introspection_token_not_yet_valid",
            ),
            (r#"{"active":true}"#, "wrong_client"),
            (r#"{"active":true,"client_id":"other"}"#, "wrong_client"),
            (r#"{"active":true,"azp":"other"}"#, "wrong_client"),
            (
                r#"{"active":true,"client_id":"other","azp":"c"}"#,
                "wrong_client",
            ),
            (r#"{"active":"true"}"#, "provider_response_malformed"),
            (r#"{}"#, "provider_response_malformed"),
        ];
        for (body, code) in cases {
            let err = parse_introspection(&answer(body), &policy(), NOW).unwrap_err();
            assert_eq!(err.code(), code, "{body}");
        }
        let err = parse_introspection(
            &answer(r#"{"active":true,"aud":["api"],"exp":9960}"#),
            &policy().leeway(Duration::from_secs(30)),
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            err,
            IntrospectionError::Expired {
                exp: UnixTime::from_secs(9960),
                now: NOW,
                leeway: Duration::from_secs(30)
            }
        );
    }

    #[test]
    fn without_expectations_iss_is_not_checked_and_nothing_is_bound() {
        let body = r#"{"active":true,"iss":"x","aud":["y"],"exp":10010}"#;
        let err = parse_introspection(&answer(body), &IntrospectionPolicy::new(), NOW).unwrap_err();
        assert_eq!(err.code(), "introspection_audience_mismatch");
        let token = parse_introspection(
            &answer(body),
            &IntrospectionPolicy::new().insecure_skip_binding(),
            NOW,
        )
        .unwrap();
        assert_eq!(token.cache_until, UnixTime::from_secs(10_010));
    }

    #[test]
    fn a_token_is_bound_by_audience_or_else_by_client() {
        let accepted = [
            r#"{"active":true,"aud":"api"}"#,
            r#"{"active":true,"aud":["other","api"],"client_id":"someone-else"}"#,
            r#"{"active":true,"client_id":"c"}"#,
            r#"{"active":true,"azp":"c"}"#,
            r#"{"active":true,"client_id":"cli"}"#,
        ];
        let policy = policy().client("cli");
        for body in accepted {
            parse_introspection(&answer(body), &policy, NOW)
                .unwrap_or_else(|e| panic!("{body}: {e}"));
        }
        // An audience that names someone else is not rescued by a familiar client.
        let err = parse_introspection(
            &answer(r#"{"active":true,"aud":"airflow","client_id":"c"}"#),
            &policy,
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.code(), "introspection_audience_mismatch");
        let err = parse_introspection(
            &answer(r#"{"active":true,"client_id":"airflow"}"#),
            &policy,
            NOW,
        )
        .unwrap_err();
        assert_eq!(
            err,
            IntrospectionError::WrongClient {
                expected: vec!["c".into(), "cli".into()],
                received: Some("airflow".into()),
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn introspection_parsing_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let response = http::Response::builder().status(200).body(body).unwrap();
            let _ = parse_introspection(&response, &policy(), NOW);
        }

        #[test]
        fn active_answers_never_cache_past_the_limit(exp in proptest::num::u64::ANY, now in 0u64..u64::MAX / 2) {
            let body = format!(r#"{{"active":true,"exp":{exp}}}"#);
            let now = UnixTime::from_secs(now);
            if let Ok(token) = parse_introspection(&answer(&body), &IntrospectionPolicy::new().insecure_skip_binding(), now) {
                proptest::prop_assert!(token.cache_until <= now.saturating_add(DEFAULT_MAX_CACHE));
                proptest::prop_assert!(token.cache_until <= UnixTime::from_secs(exp));
            }
        }
    }
}
