//! Sans-IO OpenID Connect relying-party logic.
//!
//! `oidc-core` decides; it never does. It opens no sockets, reads no clock, spawns nothing, reads
//! no files or environment, and draws no randomness from a global source. Everything that varies
//! comes in as a value: the current time as [`UnixTime`] (or, for schedules, as a
//! [`time::MonotonicTime`]), random bytes through a
//! [`RandomSource`], provider answers as `http::Response`s. Everything it needs done goes out as
//! a value: an `http::Request` to send, a URL to redirect to, a cookie to set, a decision.
//! Any runtime can drive it, and its tests run with a fixed clock and a seeded random source.
//!
//! Data flows one way, and each step has its own module and error type:
//!
//! 1. [`discovery`]: issuer → metadata request → checked [`discovery::ProviderMetadata`].
//! 2. [`jwks`]: `jwks_uri` → key request → [`jwks::KeySet`] with freshness decisions;
//!    [`refresh`]: when discovery and key fetches are due again, backoff after failures, and
//!    whether an unknown `kid` may cause a fetch now.
//! 3. [`validation`]: token + key set + [`validation::Policy`] + `now` → typed claims or a typed
//!    rejection; [`dpop`]: a DPoP proof + the request + `now` → proof of possession or a typed
//!    rejection.
//! 4. [`login`]: authorization URL and pending login → callback → token request → session.
//! 5. [`session`] and [`cookie`]: sessions sealed into cookies, refresh and [`logout`].
//! 6. [`authorization`]: who may pass, and [`redirect`]: where a browser may be sent back to.
//!
//! Each exchange with the provider publishes both halves: a function that builds the request and
//! one that parses the response, never two fetches chained in one call.
//!
//! What skips a check (reading a token unverified, a seeded random source) lives in [`danger`],
//! so that it is named so wherever it is used.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod authorization;
pub mod cookie;
pub mod danger;
pub mod discovery;
pub mod dpop;
pub mod error_kind;
pub mod identity_assertion;
pub mod introspection;
pub mod issuer;
pub mod jwks;
pub mod jws;
pub mod login;
pub mod logout;
pub mod provider_response;
pub mod random;
pub mod redirect;
pub mod refresh;
pub mod secret;
pub mod session;
pub mod time;
pub mod validation;

pub use authorization::{AuthorizationRules, Denied, Identity, IdentityClaims};
pub use cookie::{CookieCodec, CookieError, CookieKeys, CookieSettings, RequestCookies};
pub use error_kind::ErrorKind;
pub use issuer::{Issuer, IssuerError};
pub use jwks::{FreshnessPolicy, KeySet};
pub use jws::Algorithm;
pub use login::{LoginConfig, LoginOutcome, PendingLogin, ProviderEndpoints};
pub use logout::{LogoutTarget, LogoutTokenValidator, SeenJtis};
pub use random::RandomSource;
pub use redirect::RedirectPolicy;
pub use secret::Secret;
pub use session::{RefreshedTokens, Session};
pub use time::UnixTime;
pub use validation::{Claims, Policy, ValidatedToken, ValidationError, validate, verify_jws};
