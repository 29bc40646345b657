//! A small OpenID Provider for development, demos and integration tests. **Not for production.**
//!
//! It implements what relying parties meet in real providers, over real HTTP on a loopback port:
//! discovery, a JWKS with on-demand rotation (RS256 by default, ES256 too), the authorization
//! code flow with PKCE (S256 only) behind an HTML login form and a provider session cookie
//! (`devop_session`) for single sign-on, the token endpoint (authorization code, refresh with
//! rotation, client credentials, device code), ID tokens and RFC 9068 JWT or opaque access
//! tokens, userinfo, introspection (RFC 7662), revocation (RFC 7009), RP-initiated logout with
//! back-channel logout tokens, and the device authorization grant (RFC 8628).
//!
//! For tests it also has a scripted mode ([`RunningProvider::auto_approve`],
//! [`RunningProvider::mint_access_token`]) and hostile knobs ([`RunningProvider::fail`],
//! [`RunningProvider::stop`], [`RunningProvider::advance_clock`]).
//!
//! It listens on loopback only unless [`DevProviderBuilder::insecure_allow_non_loopback`] is
//! set, logs a warning when it starts, and shows a banner on every page.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use oidc_dev_provider::{DevClient, DevProvider, DevUser};
//! let running = DevProvider::builder()
//!     .user(DevUser::new("alice", "alice-password").groups(["admins"]))
//!     .client(DevClient::confidential("app", "app-secret").redirect_uri("http://127.0.0.1:4180/cb"))
//!     .build()?
//!     .serve("127.0.0.1:0".parse()?)
//!     .await?;
//! running.auto_approve(Some("alice")); // /authorize now redirects back with a code at once
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod config;
mod endpoints;
mod html;
mod keys;
mod params;
mod provider;
mod store;

pub use config::{
    AccessTokenFormat, ClientConfig, ConfigError, DevClient, DevUser, ProviderConfig, UserConfig,
    demo_clients, demo_users,
};
pub use endpoints::{SESSION_COOKIE, minimal_discovery_document};
pub use keys::{KeyError, SigningAlgorithm};
pub use provider::{
    BackchannelDelivery, BuildError, DevProvider, DevProviderBuilder, Endpoint, Fault, MintError,
    RunningProvider, ServeError,
};
