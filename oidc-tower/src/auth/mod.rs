//! Authentication front-ends: the bearer layer for APIs, the login layer for browsers, and the
//! forward-auth service for reverse proxies, all deciding through one [`Authenticator`].
//!
//! Build an [`Authenticator`] once from an [`AuthConfig`], then hand clones of it to:
//! - [`BearerAuthLayer`]: `Authorization: Bearer` JWTs and opaque tokens (introspection);
//! - [`OidcLoginLayer`]: browser sign-in, sessions, identity headers to the upstream;
//! - [`ForwardAuth`]: Caddy `forward_auth`, nginx `auth_request`, Traefik ForwardAuth.
//!
//! Each turns a request into an [`Authenticated`] caller (put into the request extensions, and
//! an axum extractor) or an [`AuthFailure`] with a stable code, answered as its clients expect.

mod answer;
mod authenticator;
pub mod bearer;
mod config;
mod endpoints;
mod failure;
pub mod forward_auth;
pub mod login;

pub use answer::{AuthBody, ResponseFuture};
pub use authenticator::{AuthFailure, AuthSource, Authenticated, Authentication, Authenticator};
pub use bearer::{BearerAuth, BearerAuthLayer};
pub use config::{
    AuthConfig, AuthConfigError, DEFAULT_INTROSPECTION_CACHE, DEFAULT_MAX_PENDING_LOGINS,
    DEFAULT_PENDING_COOKIE, DEFAULT_PREFIX, DEFAULT_REFRESH_MARGIN, DEFAULT_SESSION_COOKIE,
    DEFAULT_SESSION_LIFETIME, DEFAULT_START_TIMEOUT, LoginSettings, StartError,
};
pub use forward_auth::ForwardAuth;
pub use login::{OidcLogin, OidcLoginLayer};

#[cfg(feature = "axum")]
mod extract {
    use axum::extract::{FromRequestParts, OptionalFromRequestParts};
    use axum::response::{IntoResponse, Response};
    use http::StatusCode;
    use http::request::Parts;

    use super::Authenticated;

    /// The rejection of the [`Authenticated`] extractor: the handler is not behind one of the
    /// layers (a wiring mistake, answered 500).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct MissingAuthentication;

    impl MissingAuthentication {
        /// What kind of failure this is, for a program to branch on.
        pub fn kind(&self) -> oidc_core::ErrorKind {
            oidc_core::ErrorKind::AuthenticationLayerMissing
        }

        /// A stable snake_case code.
        pub fn code(&self) -> &'static str {
            self.kind().code()
        }
    }

    impl IntoResponse for MissingAuthentication {
        fn into_response(self) -> Response {
            tracing::error!(
                code = self.code(),
                "handler reached without an authentication layer"
            );
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(http::header::CONTENT_TYPE, "application/json")],
                r#"{"error":"authentication_layer_missing"}"#,
            )
                .into_response()
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
        type Rejection = MissingAuthentication;

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Self, Self::Rejection> {
            parts
                .extensions
                .get::<Authenticated>()
                .cloned()
                .ok_or(MissingAuthentication)
        }
    }

    impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
        type Rejection = std::convert::Infallible;

        async fn from_request_parts(
            parts: &mut Parts,
            _state: &S,
        ) -> Result<Option<Self>, Self::Rejection> {
            Ok(parts.extensions.get::<Authenticated>().cloned())
        }
    }
}

#[cfg(feature = "axum")]
pub use extract::MissingAuthentication;
