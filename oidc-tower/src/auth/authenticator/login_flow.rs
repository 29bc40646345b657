//! The login flow: what a browser sign-in needs besides the session it ends in.
//!
//! [`LoginFlow`] holds the login client and its settings (scopes, PKCE and pushed
//! authorization requests through the core's `LoginConfig`), the policy an ID token is judged
//! by, the sealing of pending logins (their `state`, nonce and PKCE verifier) into cookies and
//! how many a browser keeps, the memory of completed logins that refuses a replayed callback,
//! what session a login ends in (its lifetime, groups and kept claims), whether signing out
//! ends the provider's session too, and the validator of back-channel logout tokens with the
//! `jti`s it has seen. The endpoints under the prefix drive it.
//!
//! How a login starts is decided here, from values the caller hands in (the provider's
//! endpoints, the request's cookies, the return target, the time and the random source):
//! [`LoginFlow::start`] draws the `state`, nonce and PKCE verifier, says whether the
//! authorization request is pushed first (RFC 9126), which older pending logins to clear and the
//! sealed cookie of the new one. The `start` endpoint only turns the answer into HTTP and does
//! the push round trip.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderValue;
use oidc_core::cookie::{
    CookieCodec, CookieConfigError, CookieKeys, CookieSettings, RequestCookies,
};
use oidc_core::login::par::pushed_authorization_endpoint;
use oidc_core::login::{
    AuthorizationRedirect, LoginConfig, LoginOutcome, LoginRequest, PendingLogin,
    ProviderEndpoints, id_token_policy, start_login,
};
use oidc_core::logout::{LogoutTokenValidator, SeenJtis};
use oidc_core::validation::Policy;
use oidc_core::{IdentityClaims, RandomSource, Session, UnixTime};
use serde_json::Map;
use url::Url;

use super::claims_map;
use crate::auth::config::{AuthConfig, AuthConfigError, LoginSettings};
use crate::identity_headers::CookiePrefixes;
use crate::provider::sha256;

/// How many completed logins are remembered to refuse replayed callbacks locally.
const COMPLETED_LOGIN_CAPACITY: u64 = 100_000;

/// How a login begins, as [`LoginFlow::start`] decides it.
pub(crate) enum LoginStart {
    /// Send the browser to `url` (the authorization request with every parameter), setting
    /// `set_cookies`: the older pending logins cleared, then the new one sealed.
    Redirect {
        url: url::Url,
        set_cookies: Vec<HeaderValue>,
    },
    /// Push the authorization request to `push_to` first (RFC 9126); once the provider has
    /// taken it, [`LoginFlow::pending_cookies`] seals `started`'s pending login.
    Push {
        started: AuthorizationRedirect,
        push_to: url::Url,
    },
}

/// Why a login cannot start, with the error code of each reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CannotStart {
    /// The login settings cannot make an authorization request to this provider (pushed
    /// requests required but off, a reserved extra parameter, ...).
    Misconfigured(&'static str),
    /// The pending login could not be sealed into its cookie.
    Unsealed(&'static str),
}

/// The parts of the configuration only sign-in needs, checked at build time, and the state of
/// the logins in flight.
pub(crate) struct LoginFlow {
    pub(crate) settings: LoginSettings,
    pub(crate) login_config: LoginConfig,
    pub(crate) id_policy: Policy,
    pub(crate) logout_validator: LogoutTokenValidator,
    /// The keys pending-login cookies are sealed with (those of the session cookie).
    keys: CookieKeys,
    /// The pending-login cookie's settings; each login adds a suffix to its name.
    pending_cookie: CookieSettings,
    /// How many pending logins a browser keeps at most.
    pub(crate) max_pending_logins: usize,
    /// The pending-login cookie name prefix as browsers see it, ending in `_`.
    pub(crate) pending_prefix: String,
    /// The names of our own cookies (session and pending logins), kept from the upstream.
    pub(crate) own_cookies: CookiePrefixes,
    /// The SHA-256 of each callback `state` already handled, until its pending login would have
    /// expired: a replayed callback is refused without sending its code to the provider again.
    /// Per process; across replicas the provider's refusal of a used code is the guard.
    completed_logins: moka::sync::Cache<[u8; 32], CompletedLogin>,
    /// The `jti`s of the back-channel logout tokens seen.
    pub(crate) seen_jtis: Mutex<SeenJtis>,
    /// How long a session lasts from sign-in.
    session_lifetime: Duration,
    /// The claim a session's groups are read from.
    groups_claim: String,
    /// The claims a session keeps besides the identity: the configured ones, then those the
    /// authorization rules require.
    kept_claims: Vec<String>,
    /// Which claims name the user (and their email) in a session.
    identity_claims: IdentityClaims,
    /// Whether signing out ends the provider's session too (RP-initiated logout).
    pub(crate) provider_logout: bool,
    /// Where the provider sends the browser after its logout, if configured.
    pub(crate) post_logout_redirect_uri: Option<Url>,
}

impl LoginFlow {
    /// The login flow of `settings`, with the codec of the session cookie (sealed with the same
    /// keys), which the sessions own.
    pub(crate) fn new(
        config: &AuthConfig,
        settings: LoginSettings,
    ) -> Result<(LoginFlow, CookieCodec), AuthConfigError> {
        let expected = format!("{}/callback", config.prefix);
        if settings.redirect_uri.path() != expected {
            return Err(AuthConfigError::CallbackOutsidePrefix {
                path: settings.redirect_uri.path().to_owned(),
                expected,
            });
        }
        let keys = CookieKeys::from_secrets(&settings.cookie_secrets)?;
        let session_codec = CookieCodec::new(keys.clone(), config.session_cookie.clone())?;
        let probe = pending_settings(&config.pending_cookie, "x");
        let probe_codec = CookieCodec::new(keys.clone(), probe)?;
        let pending_prefix = probe_codec
            .name()
            .strip_suffix('x')
            .unwrap_or(probe_codec.name())
            .to_owned();
        let own_cookies = CookiePrefixes::new([session_codec.name(), pending_prefix.as_str()]);
        let client_id = settings.credentials.client_id().to_owned();
        let issuer = config.provider.issuer().clone();
        let id_policy = id_token_policy(issuer.clone(), &client_id)?;
        let logout_validator = LogoutTokenValidator::new(issuer, client_id)?;
        let login_config =
            LoginConfig::new(settings.credentials.clone(), settings.redirect_uri.clone())
                .scopes(config.scopes.clone());
        let login = LoginFlow {
            settings,
            login_config,
            id_policy,
            logout_validator,
            keys,
            pending_cookie: config.pending_cookie.clone(),
            max_pending_logins: config.max_pending_logins,
            pending_prefix,
            own_cookies,
            completed_logins: moka::sync::Cache::builder()
                .max_capacity(COMPLETED_LOGIN_CAPACITY)
                .expire_after(CompletedLoginExpiry)
                .build(),
            seen_jtis: Mutex::new(SeenJtis::default()),
            session_lifetime: config.session_lifetime,
            groups_claim: config.groups_claim.clone(),
            kept_claims: config
                .keep_claims
                .iter()
                .chain(config.rules.required_claims.iter().map(|rule| &rule.claim))
                .cloned()
                .collect(),
            identity_claims: config.rules.identity_claims.clone(),
            provider_logout: config.provider_logout,
            post_logout_redirect_uri: config.post_logout_redirect_uri.clone(),
        };
        Ok((login, session_codec))
    }

    /// The session a completed login ends in: its groups, the claims it keeps (top-level names)
    /// and the claims naming the user, lasting the session lifetime.
    pub(crate) fn session_from(&self, outcome: LoginOutcome) -> Session {
        let claims = claims_map(&outcome.claims);
        let groups = oidc_core::authorization::groups_from_claims(&claims, &self.groups_claim);
        let mut kept = Map::new();
        for name in &self.kept_claims {
            let top = name.split('.').next().unwrap_or(name);
            if let Some(value) = claims.get(top) {
                kept.insert(top.to_owned(), value.clone());
            }
        }
        let mut session = outcome.into_session(self.session_lifetime);
        session.groups = groups;
        session.extra_claims = kept;
        self.identity_claims.apply_to_session(&mut session, &claims);
        session
    }

    /// Marks the login with `state` as handled until `until` (it is `now`); `false` when its
    /// callback was already handled (a replay). A mark whose time has passed on the clock no
    /// longer counts, whether or not the cache has dropped it yet.
    pub(crate) fn complete_once(&self, state: &str, until: UnixTime, now: UnixTime) -> bool {
        let entry = self
            .completed_logins
            .entry(sha256(state.as_bytes()))
            .or_insert_with_if(
                || CompletedLogin {
                    until,
                    ttl: until.duration_since(now),
                },
                |marked| marked.until <= now,
            );
        entry.is_fresh()
    }

    /// Starts a login returning to `return_to` (already checked against the redirect policy):
    /// draws its `state`, nonce and PKCE verifier, and decides whether its authorization
    /// request is pushed first. Not pushed, the pending login is sealed at once, with the
    /// cookies clearing the oldest of those `cookies` carry so that at most the configured
    /// number remain; pushed, sealing waits for the push ([`Self::pending_cookies`]).
    pub(crate) fn start(
        &self,
        endpoints: &ProviderEndpoints,
        cookies: &RequestCookies<'_>,
        return_to: &str,
        now: UnixTime,
        random: &mut dyn RandomSource,
    ) -> Result<LoginStart, CannotStart> {
        let push_to =
            pushed_authorization_endpoint(endpoints, self.login_config.pushed_authorization_mode())
                .map_err(|e| CannotStart::Misconfigured(e.code()))?
                .cloned();
        let started = start_login(
            endpoints,
            &self.login_config,
            &LoginRequest::new(return_to),
            now,
            random,
        )
        .map_err(|e| CannotStart::Misconfigured(e.code()))?;
        match push_to {
            Some(push_to) => Ok(LoginStart::Push { started, push_to }),
            None => {
                let set_cookies = self.pending_cookies(&started.pending, cookies, now, random)?;
                Ok(LoginStart::Redirect {
                    url: started.url,
                    set_cookies,
                })
            }
        }
    }

    /// The `Set-Cookie` values a started login sends the browser with: clearing the oldest
    /// pending logins `cookies` carry (see [`Self::evict_pending`]), then `pending` sealed.
    pub(crate) fn pending_cookies(
        &self,
        pending: &PendingLogin,
        cookies: &RequestCookies<'_>,
        now: UnixTime,
        random: &mut dyn RandomSource,
    ) -> Result<Vec<HeaderValue>, CannotStart> {
        let mut set_cookies = self.evict_pending(cookies, now);
        let sealed = self
            .pending_codec(&pending.cookie_suffix())
            .map_err(|e| CannotStart::Unsealed(e.code()))?
            .encode(
                pending,
                pending.expires_at(),
                now,
                random,
                &RequestCookies::empty(),
            )
            .map_err(|e| CannotStart::Unsealed(e.code()))?;
        set_cookies.extend(sealed);
        Ok(set_cookies)
    }

    /// The codec of the pending-login cookie with this suffix.
    pub(crate) fn pending_codec(&self, suffix: &str) -> Result<CookieCodec, CookieConfigError> {
        CookieCodec::new(
            self.keys.clone(),
            pending_settings(&self.pending_cookie, suffix),
        )
    }

    /// Clearing cookies for the oldest pending logins, so that with the new one at most the
    /// configured number remain; unreadable pending cookies are always cleared.
    fn evict_pending(&self, cookies: &RequestCookies<'_>, now: UnixTime) -> Vec<HeaderValue> {
        let mut pending: Vec<(Option<UnixTime>, CookieCodec)> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for name in cookies.names() {
            let Some(suffix) = name.strip_prefix(self.pending_prefix.as_str()) else {
                continue;
            };
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            let Ok(codec) = self.pending_codec(suffix) else {
                continue;
            };
            let created = codec
                .decode::<PendingLogin>(cookies, now)
                .ok()
                .flatten()
                .map(|pending| pending.created_at());
            pending.push((created, codec));
        }
        let keep = self.max_pending_logins.saturating_sub(1);
        if pending.len() <= keep {
            return pending
                .iter()
                .filter(|(created, _)| created.is_none())
                .flat_map(|(_, codec)| codec.clear(cookies).unwrap_or_default())
                .collect();
        }
        // Unreadable first (None sorts first), then oldest first.
        pending.sort_by_key(|(created, _)| *created);
        let drop = pending.len() - keep;
        tracing::debug!(
            dropped = drop,
            "too many pending logins: dropping the oldest"
        );
        pending
            .iter()
            .take(drop)
            .flat_map(|(_, codec)| codec.clear(cookies).unwrap_or_default())
            .collect()
    }

    /// Clearing cookies for every pending login the request carries (sign-out).
    pub(crate) fn clear_pending(&self, cookies: &RequestCookies<'_>) -> Vec<HeaderValue> {
        let mut clear = Vec::new();
        for name in cookies.names() {
            if let Some(suffix) = name.strip_prefix(self.pending_prefix.as_str())
                && let Ok(codec) = self.pending_codec(suffix)
            {
                clear.extend(codec.clear(cookies).unwrap_or_default());
            }
        }
        clear
    }
}

/// The settings of the pending-login cookie with this suffix: one chunk.
fn pending_settings(pending_cookie: &CookieSettings, suffix: &str) -> CookieSettings {
    let name = format!("{}_{suffix}", pending_cookie.name());
    pending_cookie.clone().with_name(name).with_max_chunks(1)
}

/// A callback already handled: until when it counts (on the authenticator's clock), and how
/// long the cache keeps it (the same span, on the cache's own clock).
#[derive(Clone, Copy)]
struct CompletedLogin {
    until: UnixTime,
    ttl: Duration,
}

struct CompletedLoginExpiry;

impl moka::Expiry<[u8; 32], CompletedLogin> for CompletedLoginExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        completed: &CompletedLogin,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(completed.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &[u8; 32],
        completed: &CompletedLogin,
        _updated_at: Instant,
        _until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(completed.ttl)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::auth::authenticator::test_bed;
    use crate::clock::{Clock, ManualClock};

    /// A handled callback is refused as a replay until its pending login would have expired on
    /// the authenticator's clock, and no longer after, whatever the cache's own expiry says.
    #[tokio::test]
    async fn a_completed_login_counts_until_its_end_on_the_clock() {
        let clock = ManualClock::starting_now();
        let (_op, auth) = test_bed::start(&clock).await;
        let start = clock.now();
        let until = start.saturating_add(Duration::from_secs(600));
        assert!(auth.complete_login_once("state-1", until, start));
        assert!(
            !auth.complete_login_once("state-1", until, start),
            "a replay"
        );
        let late = until.saturating_sub(Duration::from_secs(1));
        assert!(
            !auth.complete_login_once("state-1", until, late),
            "still a replay"
        );
        assert!(
            auth.complete_login_once("state-2", until, late),
            "another login"
        );
        // At its end the mark no longer counts: marked again, with the new end.
        let later = until.saturating_add(Duration::from_secs(600));
        assert!(auth.complete_login_once("state-1", later, until));
        assert!(!auth.complete_login_once("state-1", later, until));
    }
}
