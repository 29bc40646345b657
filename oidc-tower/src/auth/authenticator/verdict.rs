//! What the authenticator answers: an [`Authenticated`] caller (with the `Set-Cookie` values a
//! refresh produced) or an [`AuthFailure`] with a stable code. Every door answers from these.

use std::sync::Arc;

use http::HeaderValue;
use oidc_core::ErrorKind;
use oidc_core::UnixTime;
use oidc_core::authorization::Denied;
use oidc_core::cookie::CookieError;
use oidc_core::dpop::DpopError;
use oidc_core::introspection::IntrospectionError;
use serde_json::{Map, Value};

use crate::bearer_response::{BearerExtractError, DpopExtractError};
use crate::identity_headers::Identity;
use crate::provider::ProviderError;
use crate::store::{HandleError, StoreError};

/// Who a request comes from, once authenticated.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Authenticated {
    /// The identity the upstream is told about.
    pub identity: Identity,
    /// Where the identity came from.
    pub source: AuthSource,
    /// The claims behind the identity: the bearer token's claims, or the session's
    /// (`sub`, `iss`, `email`, `email_verified`, `name`, `preferred_username`, `groups` and the
    /// kept claims).
    pub claims: Arc<Map<String, Value>>,
    /// The token's scopes (empty for sessions).
    pub scopes: Vec<String>,
}

impl Authenticated {
    /// The claims as your own type (`#[derive(Deserialize)]`, with the claims you need), e.g.
    /// a `tenant` or `roles` claim the identity does not carry.
    pub fn claims_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&Value::Object(Map::clone(&self.claims)))
    }
}

/// How a request was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthSource {
    /// A browser session cookie.
    Session,
    /// A JWT access token validated with the provider's keys.
    BearerJwt,
    /// An opaque access token validated by introspection.
    BearerIntrospected,
}

impl AuthSource {
    /// Every source, for tables that must cover them all.
    pub const ALL: [AuthSource; 3] = [
        AuthSource::Session,
        AuthSource::BearerJwt,
        AuthSource::BearerIntrospected,
    ];

    /// A stable snake_case label.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthSource::Session => "session",
            AuthSource::BearerJwt => "bearer_jwt",
            AuthSource::BearerIntrospected => "bearer_introspected",
        }
    }
}

/// A successful authentication, and the cookies the response must set (a refreshed session).
#[derive(Debug)]
#[non_exhaustive]
pub struct Authentication {
    /// Who the request comes from.
    pub authenticated: Authenticated,
    /// `Set-Cookie` values to add to the response (non-empty after a refresh).
    pub set_cookies: Vec<HeaderValue>,
}

/// Why a request is not let through.
///
/// [`kind`](AuthFailure::kind) tells a program which of the stable codes it is; the answer's
/// status for each kind is [`answer_status`](crate::error_status::answer_status), and
/// `docs/error-codes.md` in the repository lists every code with its status and meaning.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthFailure {
    /// Neither a bearer token nor a session cookie.
    #[error("the request carries no credentials")]
    NoCredentials,
    /// The bearer credentials are malformed (400).
    #[error(transparent)]
    BadBearer(#[from] BearerExtractError),
    /// The JWT was judged and refused.
    #[error("the bearer token was rejected: {0}")]
    TokenRejected(#[source] ProviderError),
    /// The opaque token was refused by introspection.
    #[error("the bearer token was rejected by introspection: {0}")]
    IntrospectionRejected(#[source] IntrospectionError),
    /// The token is not a JWT and the provider offers no introspection (or no client is set).
    #[error("the bearer token is not a JWT and cannot be introspected")]
    OpaqueTokenUnsupported,
    /// `Authorization: DPoP` without exactly one well-formed `DPoP` proof header (400).
    #[error(transparent)]
    BadDpop(#[from] DpopExtractError),
    /// The DPoP proof failed a check of RFC 9449 (signature, method, URL, time, replay, key).
    #[error("the DPoP proof was rejected: {0}")]
    DpopRejected(#[source] DpopError),
    /// A token bound to a key (`cnf.jkt`) came as a plain bearer token, without its proof.
    #[error("a DPoP-bound token was sent as a bearer token")]
    DpopBoundTokenAsBearer,
    /// A token sent with the `DPoP` scheme is bound to no key.
    #[error("a token sent with a DPoP proof is not bound to a key")]
    DpopTokenNotBound,
    /// The URL the DPoP proof must name could not be told (malformed forwarded headers).
    #[error("the request's URL is unknown, so its DPoP proof cannot be checked")]
    DpopRequestUnknown,
    /// The token lacks required scopes (403 `insufficient_scope`).
    #[error("the bearer token lacks the scopes {missing:?}")]
    InsufficientScope {
        /// The required scopes it lacks.
        missing: Vec<String>,
        /// Every required scope, for the challenge.
        required: Vec<String>,
    },
    /// The provider could not be reached or is not ready (503).
    #[error("the OpenID Provider is unavailable ({kind})")]
    ProviderUnavailable {
        /// The underlying failure.
        kind: ErrorKind,
    },
    /// The session cookie does not open (tampered, sealed with a retired key, truncated).
    #[error("the session cookie is invalid: {0}")]
    SessionInvalid(#[source] Arc<CookieError>),
    /// The session cookie holds no usable handle.
    #[error("the session handle is invalid: {0}")]
    SessionHandleInvalid(#[source] HandleError),
    /// The session's lifetime is over.
    #[error("the session expired at {expired_at} (now {now})")]
    SessionExpired {
        /// When it ended.
        expired_at: UnixTime,
        /// The time of the check.
        now: UnixTime,
    },
    /// The session was ended by sign-out or back-channel logout.
    #[error("the session was revoked")]
    SessionRevoked,
    /// The provider refused to refresh the session's tokens (refresh token revoked or expired).
    #[error("the provider refused to refresh the session ({kind})")]
    RefreshRejected {
        /// Why it refused.
        kind: ErrorKind,
    },
    /// The server-side store holds a session this version cannot read (the cookie is cleared).
    #[error("the stored session cannot be read")]
    StoredSessionUnreadable,
    /// The session store could not answer (503; the session is kept).
    #[error("the session store is unavailable: {0}")]
    StoreUnavailable(#[source] Arc<StoreError>),
    /// Authenticated, but the authorization rules refuse (403).
    #[error("access denied: {0}")]
    Forbidden(#[source] Denied),
}

impl AuthFailure {
    /// Why a layer refused a request, read from its answer: the bearer layer, the login layer and
    /// forward-auth put the failure in the extensions of every refusal they send, so a middleware
    /// above them (logging, a custom error page) can branch on [`AuthFailure::kind`] instead of
    /// parsing the body. `None` for an answer that is not a refusal of one of the layers.
    ///
    /// ```
    /// # fn log_refusal<B>(response: &http::Response<B>) {
    /// use oidc_tower::auth::AuthFailure;
    /// if let Some(failure) = AuthFailure::from_response(response) {
    ///     eprintln!("refused: {} ({failure})", failure.code());
    /// }
    /// # }
    /// ```
    pub fn from_response<B>(response: &http::Response<B>) -> Option<&AuthFailure> {
        response.extensions().get::<AuthFailure>()
    }

    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AuthFailure::NoCredentials => ErrorKind::NoCredentials,
            AuthFailure::BadBearer(e) => e.kind(),
            AuthFailure::TokenRejected(e) => e.kind(),
            AuthFailure::IntrospectionRejected(e) => e.kind(),
            AuthFailure::OpaqueTokenUnsupported => ErrorKind::OpaqueTokenUnsupported,
            AuthFailure::BadDpop(e) => e.kind(),
            AuthFailure::DpopRejected(e) => e.kind(),
            AuthFailure::DpopBoundTokenAsBearer => ErrorKind::DpopBoundTokenSentAsBearer,
            AuthFailure::DpopTokenNotBound => ErrorKind::DpopTokenNotBound,
            AuthFailure::DpopRequestUnknown => ErrorKind::DpopRequestUrlUnknown,
            AuthFailure::InsufficientScope { .. } => ErrorKind::InsufficientScope,
            AuthFailure::ProviderUnavailable { kind } => *kind,
            AuthFailure::SessionInvalid(e) => e.kind(),
            AuthFailure::SessionHandleInvalid(e) => e.kind(),
            AuthFailure::SessionExpired { .. } => ErrorKind::SessionExpired,
            AuthFailure::SessionRevoked => ErrorKind::SessionRevoked,
            AuthFailure::RefreshRejected { .. } => ErrorKind::RefreshRejected,
            AuthFailure::StoredSessionUnreadable => ErrorKind::StoredSessionUnreadable,
            AuthFailure::StoreUnavailable(e) => e.kind(),
            AuthFailure::Forbidden(e) => e.kind(),
        }
    }

    /// A stable snake_case code for this failure.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    /// Whether the session cookie the request carried is dead and should be cleared.
    pub fn session_is_gone(&self) -> bool {
        matches!(
            self,
            AuthFailure::SessionInvalid(_)
                | AuthFailure::SessionHandleInvalid(_)
                | AuthFailure::SessionExpired { .. }
                | AuthFailure::SessionRevoked
                | AuthFailure::RefreshRejected { .. }
                | AuthFailure::StoredSessionUnreadable
        )
    }

    /// Whether the failure is about a bearer token (answered with an RFC 6750 challenge).
    pub fn is_bearer_failure(&self) -> bool {
        matches!(
            self,
            AuthFailure::BadBearer(_)
                | AuthFailure::TokenRejected(_)
                | AuthFailure::IntrospectionRejected(_)
                | AuthFailure::OpaqueTokenUnsupported
                | AuthFailure::InsufficientScope { .. }
        ) || self.is_dpop_failure()
    }

    /// Whether the failure is about DPoP credentials (answered with a `DPoP` challenge).
    pub fn is_dpop_failure(&self) -> bool {
        matches!(
            self,
            AuthFailure::BadDpop(_)
                | AuthFailure::DpopRejected(_)
                | AuthFailure::DpopBoundTokenAsBearer
                | AuthFailure::DpopTokenNotBound
                | AuthFailure::DpopRequestUnknown
        )
    }

    /// Whether the request had no usable identity at all (a sign-in helps), as opposed to a
    /// refusal (403) or an outage (503).
    pub fn needs_sign_in(&self) -> bool {
        matches!(self, AuthFailure::NoCredentials) || self.session_is_gone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oidc_core::Secret;

    #[test]
    fn claims_read_as_a_type_and_the_identity_serializes_without_the_token() {
        #[derive(serde::Deserialize)]
        struct Mine {
            sub: String,
            tenant: Option<String>,
        }
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from("alice"));
        claims.insert("tenant".into(), Value::from("acme"));
        let caller = Authenticated {
            identity: Identity::new("alice").with_access_token(Secret::new("t0ken")),
            source: AuthSource::BearerJwt,
            claims: Arc::new(claims),
            scopes: Vec::new(),
        };
        let mine: Mine = caller.claims_as().unwrap();
        assert_eq!(
            (mine.sub.as_str(), mine.tenant.as_deref()),
            ("alice", Some("acme"))
        );
        assert!(caller.claims_as::<Vec<u8>>().is_err());
        let json = serde_json::to_string(&caller.identity).unwrap();
        assert!(json.contains(r#""user":"alice""#), "{json}");
        assert!(!json.contains("t0ken"), "{json}");
    }

    #[test]
    fn failures_have_codes_and_kinds() {
        assert_eq!(AuthFailure::NoCredentials.code(), "no_credentials");
        assert!(AuthFailure::NoCredentials.needs_sign_in());
        assert!(AuthFailure::SessionRevoked.session_is_gone());
        assert!(AuthFailure::StoredSessionUnreadable.session_is_gone());
        assert_eq!(
            AuthFailure::StoredSessionUnreadable.code(),
            "stored_session_unreadable"
        );
        let denied = AuthFailure::Forbidden(Denied::MissingEmail);
        assert_eq!(denied.code(), "missing_email");
        assert!(!denied.needs_sign_in());
        let scope = AuthFailure::InsufficientScope {
            missing: vec!["write".into()],
            required: vec!["write".into()],
        };
        assert!(scope.is_bearer_failure());
    }
}
