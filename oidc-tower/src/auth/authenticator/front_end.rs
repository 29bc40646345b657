//! What the front-ends (the login layer, the bearer layer, forward-auth and the sidecar) read
//! per request, built once with the authenticator.
//!
//! [`FrontEnd`] holds which requests pass without authentication (skip-auth) and which are API
//! calls (401 rather than a redirect to sign in), the redirect policy every return target is
//! checked with, the proxies whose `X-Forwarded-*` headers are believed and the scheme of a
//! request that has none, the identity headers each door sends (prebuilt for the upstream of
//! the login layer and for forward-auth's answer) and how a refused bearer client is challenged.
//! The doors compose it with the parts that decide; none of them reads the whole configuration.

use std::sync::Arc;

use oidc_core::redirect::RedirectPolicy;
use url::Origin;

use crate::auth::config::AuthConfig;
use crate::forwarded::{Scheme, TrustedProxies};
use crate::identity_assertion::IdentityAssertion;
use crate::identity_headers::IdentityHeaders;
use crate::routes::RouteRules;

/// The per-request settings of the front-ends.
pub(crate) struct FrontEnd {
    /// Requests that pass without authentication.
    pub(crate) skip_auth: RouteRules,
    /// Requests answered as API calls (401) rather than sent to sign in.
    pub(crate) api_routes: RouteRules,
    /// Whether the login layer and forward-auth take bearer tokens besides the session cookie.
    pub(crate) accept_bearer: bool,
    /// Where a browser may return to after signing in or out.
    pub(crate) redirect_policy: RedirectPolicy,
    /// The proxies whose `X-Forwarded-*` headers are believed.
    pub(crate) trusted_proxies: TrustedProxies,
    /// The scheme of a request that reaches us directly, or from a trusted proxy that sends no
    /// `X-Forwarded-Proto`: the configured external scheme, else the callback URL's.
    pub(crate) direct_scheme: Scheme,
    /// The origin of the callback URL, when sign-in is configured: forward-auth returns a
    /// browser on it by path.
    pub(crate) callback_origin: Option<Origin>,
    /// The identity headers the login layer sends its upstream.
    pub(crate) upstream_headers: IdentityHeaders,
    /// The identity headers forward-auth answers with.
    pub(crate) forward_auth_headers: IdentityHeaders,
    /// Whether forward-auth passes the access token (its header is then always present).
    pub(crate) forward_auth_access_token: bool,
    /// Whether forward-auth answers with the plain identity headers (not only the assertion).
    pub(crate) forward_auth_identity_headers: bool,
    /// Whether forward-auth redirects a browser navigation to sign in instead of a 401.
    pub(crate) forward_auth_redirect: bool,
    /// The signed identity assertion, when configured; its keys are served at `jwks`.
    pub(crate) identity_assertion: Option<Arc<IdentityAssertion>>,
    /// The `realm` of bearer challenges.
    pub(crate) realm: String,
    /// The scopes a bearer challenge names when a token lacks them.
    pub(crate) required_scopes: Vec<String>,
}

impl FrontEnd {
    /// The front-end settings of `config`.
    pub(crate) fn new(config: &AuthConfig) -> FrontEnd {
        let callback = config.login.as_ref().map(|login| &login.redirect_uri);
        let direct_scheme =
            config
                .external_scheme
                .unwrap_or_else(|| match callback.map(|uri| uri.scheme()) {
                    Some("https") => Scheme::Https,
                    _ => Scheme::Http,
                });
        let upstream_headers = IdentityHeaders::upstream()
            .pass_user(config.pass_user_headers)
            .pass_access_token(config.pass_access_token)
            .pass_authorization_bearer(config.pass_authorization_bearer)
            .identity_assertion(config.identity_assertion.clone());
        let forward_auth_headers = IdentityHeaders::forward_auth()
            .pass_access_token(config.pass_access_token)
            .identity_assertion(config.identity_assertion.clone());
        FrontEnd {
            skip_auth: config.skip_auth.clone(),
            api_routes: config.api_routes.clone(),
            accept_bearer: config.accept_bearer,
            redirect_policy: config.redirect_policy.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            direct_scheme,
            callback_origin: callback.map(|uri| uri.origin()),
            upstream_headers,
            forward_auth_headers,
            forward_auth_access_token: config.pass_access_token,
            forward_auth_identity_headers: config.forward_auth_identity_headers,
            forward_auth_redirect: config.forward_auth_redirect,
            identity_assertion: config.identity_assertion.clone(),
            realm: config.realm.clone(),
            required_scopes: config.required_scopes.clone(),
        }
    }
}
