//! Sessions: whether a request's session cookie opens a live session, and keeping it alive.
//!
//! [`Sessions`] opens the sealed cookie (or the handle into the shared store), caches an opened
//! cookie session for a minute by the fingerprint of the `Cookie` header, has a session whose
//! access token is due refreshed (once, by [`refresh`]), creates and ends sessions, and revokes
//! them (back-channel logout: in the store, or in this process's revocation list for cookie
//! sessions). It exists only when sign-in is configured.

mod refresh;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue};
use oidc_core::authorization::AuthorizationRules;
use oidc_core::cookie::{CookieCodec, CookieError, RequestCookies};
use oidc_core::random::random_url_safe;
use oidc_core::{Session, UnixTime};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use self::refresh::{RefreshFailure, Refreshes};
use super::login_flow::LoginFlow;
use super::verdict::{AuthFailure, AuthSource, Authenticated, Authentication};
use super::{CreateSessionError, lock};
use crate::auth::config::AuthConfig;
use crate::clock::Clock;
use crate::fingerprint::{Fingerprint, Fingerprints};
use crate::fingerprint_cache::FingerprintCache;
use crate::identity_headers::Identity;
use crate::provider::Provider;
use crate::random::SystemRandom;
use crate::store::{SessionHandle, SessionStore, SessionTags, SessionVault, StoreError, StoreKey};

/// How many revocations the cookie store remembers in this process.
const MAX_LOCAL_REVOCATIONS: usize = 100_000;
/// How many opened cookie sessions are kept, and for how long at most.
const SESSION_CACHE_CAPACITY: u64 = 10_000;
const SESSION_CACHE_MAX_AGE: Duration = Duration::from_secs(60);
/// How many opened sessions are kept in front of the cache: the browsers active right now.
const RECENT_SESSION_SLOTS: usize = 256;

/// What sessions read from the configuration.
pub(crate) struct SessionSettings {
    provider: Provider,
    rules: AuthorizationRules,
    refresh_margin: Duration,
    session_lifetime: Duration,
    /// The time of day sessions are judged at.
    clock: Arc<dyn Clock>,
}

/// The session store (cookies, or a shared store behind a vault), the refresh single flight,
/// the cache of opened cookie sessions and the revocations of cookie sessions.
pub(crate) struct Sessions {
    settings: SessionSettings,
    /// Seals and opens the session cookie.
    codec: CookieCodec,
    vault: Option<SessionVault<Arc<dyn SessionStore>>>,
    /// Refreshes a due session once (see [`refresh`]).
    refreshes: Refreshes,
    /// Opened cookie sessions by the fingerprint of the request's `Cookie` headers, so that a
    /// browser's next requests skip the AEAD and JSON; revocation, expiry and refresh are still
    /// checked on every request.
    cookie_sessions: FingerprintCache<CachedSession>,
    /// The key of the cache above.
    fingerprints: Fingerprints,
    revocations: Mutex<Revocations>,
}

/// A cookie session that opened and passed the rules, with what the request is told.
#[derive(Clone)]
struct CachedSession {
    opened: Arc<OpenedSession>,
    ttl: Duration,
    /// When the entry stops being served, on the sessions' clock (`ttl` after it was opened).
    until: UnixTime,
}

struct OpenedSession {
    id: String,
    session: Session,
    authenticated: Authenticated,
}

struct SessionExpiry;

impl moka::Expiry<Fingerprint, CachedSession> for SessionExpiry {
    fn expire_after_create(
        &self,
        _key: &Fingerprint,
        value: &CachedSession,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &Fingerprint,
        value: &CachedSession,
        _updated_at: Instant,
        _until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The sealed content of a session cookie when sessions live in cookies: a random id (for
/// sign-out of this very session) and the session.
#[derive(Serialize, Deserialize)]
pub(crate) struct CookieSession {
    #[serde(rename = "i")]
    pub(crate) id: String,
    #[serde(rename = "s")]
    pub(crate) session: Session,
}

/// A session read from a request, and where it lives.
pub(crate) struct LoadedSession {
    pub(crate) session: Session,
    pub(crate) origin: SessionOrigin,
}

pub(crate) enum SessionOrigin {
    Cookie { id: String },
    Server { handle: SessionHandle },
}

impl Sessions {
    /// The sessions of a login: `codec` seals the session cookie.
    pub(crate) fn new(config: &AuthConfig, login: &LoginFlow, codec: CookieCodec) -> Sessions {
        let vault = config.session_store.clone().map(SessionVault::new);
        Sessions {
            settings: SessionSettings {
                provider: config.provider.clone(),
                rules: config.rules.clone(),
                refresh_margin: config.refresh_margin,
                session_lifetime: config.session_lifetime,
                clock: Arc::clone(&config.clock),
            },
            codec,
            refreshes: Refreshes::new(config, login, vault.clone()),
            vault,
            cookie_sessions: FingerprintCache::new(
                SESSION_CACHE_CAPACITY,
                RECENT_SESSION_SLOTS,
                SessionExpiry,
            ),
            fingerprints: Fingerprints::new(),
            revocations: Mutex::new(Revocations::default()),
        }
    }

    /// The `Set-Cookie` values that clear the session cookie the request carries.
    pub(crate) fn clear_cookies(&self, cookies: &RequestCookies<'_>) -> Vec<HeaderValue> {
        self.codec.clear(cookies).unwrap_or_default()
    }

    /// Authenticates by the session cookie, refreshing the session when it is due.
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<Authentication, AuthFailure> {
        let now = self.settings.clock.now();
        let margin = self.settings.refresh_margin;
        let digest = if self.vault.is_none() {
            self.fingerprints
                .of_header_values(headers.get_all(http::header::COOKIE))
        } else {
            None
        };
        if let Some(digest) = &digest
            && let Some(hit) = self.cookie_sessions.get(digest)
        {
            let opened = &hit.opened;
            // Served only while the session is live and not due for refresh on the clock,
            // whatever the cache's own expiry says; otherwise the cookie is opened again.
            if now < hit.until
                && !opened.session.is_expired(now)
                && !opened.session.refresh_due(now, margin)
            {
                if self.locally_revoked(&opened.id, &opened.session) {
                    return Err(AuthFailure::SessionRevoked);
                }
                return Ok(Authentication {
                    authenticated: opened.authenticated.clone(),
                    set_cookies: Vec::new(),
                });
            }
            self.cookie_sessions.invalidate(digest);
        }
        let cookies = RequestCookies::from_headers(headers);
        let loaded = self
            .load(&cookies, now)
            .await?
            .ok_or(AuthFailure::NoCredentials)?;
        let cookie_id = match (&digest, &loaded.origin) {
            (Some(_), SessionOrigin::Cookie { id }) => Some(id.clone()),
            _ => None,
        };
        let mut refreshed_session: Option<Arc<Session>> = None;
        let mut set_cookies = Vec::new();
        if loaded
            .session
            .refresh_due(now, self.settings.refresh_margin)
        {
            match self.refreshes.refresh_once(&loaded).await {
                Ok(refreshed) => {
                    let refreshed_loaded = LoadedSession {
                        session: (*refreshed).clone(),
                        origin: loaded.origin,
                    };
                    refreshed_session = Some(refreshed);
                    set_cookies = self
                        .cookies(&refreshed_loaded, &cookies, now)
                        .unwrap_or_else(|error| {
                            tracing::warn!(
                                code = error.code(),
                                "refreshed session could not be sealed"
                            );
                            Vec::new()
                        });
                }
                Err(RefreshFailure::Rejected(kind)) => {
                    tracing::info!(
                        code = kind.code(),
                        "session refresh refused by the provider: signing out"
                    );
                    return Err(AuthFailure::RefreshRejected { kind });
                }
                Err(RefreshFailure::Unavailable(kind)) => {
                    tracing::warn!(
                        code = kind.code(),
                        "session refresh failed: keeping the current tokens"
                    );
                }
            }
        }
        let session: &Session = refreshed_session.as_deref().unwrap_or(&loaded.session);
        self.settings
            .rules
            .evaluate(&session.identity())
            .map_err(AuthFailure::Forbidden)?;
        let authenticated = session_authenticated(session);
        if let (None, Some(digest), Some(id)) = (&refreshed_session, digest, cookie_id) {
            let ttl = loaded
                .session
                .expires_at
                .duration_since(now)
                .min(SESSION_CACHE_MAX_AGE);
            if !ttl.is_zero() {
                let opened = OpenedSession {
                    id,
                    session: loaded.session,
                    authenticated: authenticated.clone(),
                };
                let cached = CachedSession {
                    opened: Arc::new(opened),
                    ttl,
                    until: now.saturating_add(ttl),
                };
                self.cookie_sessions.insert(digest, cached);
            }
        }
        Ok(Authentication {
            authenticated,
            set_cookies,
        })
    }

    /// Reads and checks the session the request's cookies carry. `Ok(None)`: no session cookie.
    pub(crate) async fn load(
        &self,
        cookies: &RequestCookies<'_>,
        now: UnixTime,
    ) -> Result<Option<LoadedSession>, AuthFailure> {
        let codec = &self.codec;
        let loaded = match &self.vault {
            None => {
                let Some(sealed) = codec
                    .decode::<CookieSession>(cookies, now)
                    .map_err(|e| AuthFailure::SessionInvalid(Arc::new(e)))?
                else {
                    return Ok(None);
                };
                if self.locally_revoked(&sealed.id, &sealed.session) {
                    return Err(AuthFailure::SessionRevoked);
                }
                LoadedSession {
                    session: sealed.session,
                    origin: SessionOrigin::Cookie { id: sealed.id },
                }
            }
            Some(vault) => {
                let Some(value) = codec
                    .decode::<String>(cookies, now)
                    .map_err(|e| AuthFailure::SessionInvalid(Arc::new(e)))?
                else {
                    return Ok(None);
                };
                let handle = SessionHandle::from_cookie_value(&value)
                    .map_err(AuthFailure::SessionHandleInvalid)?;
                let stored = match vault.load(&handle).await {
                    Ok(Some(stored)) => stored,
                    Ok(None) => return Err(AuthFailure::SessionRevoked),
                    Err(error) if error.is_unavailable() => {
                        return Err(AuthFailure::StoreUnavailable(Arc::new(error)));
                    }
                    Err(error) => {
                        tracing::warn!(code = error.code(), "stored session unusable");
                        return Err(AuthFailure::SessionRevoked);
                    }
                };
                let session: Session = serde_json::from_slice(&stored).map_err(|_| {
                    tracing::warn!(
                        code = "stored_session_unreadable",
                        "stored session unusable"
                    );
                    AuthFailure::StoredSessionUnreadable
                })?;
                LoadedSession {
                    session,
                    origin: SessionOrigin::Server { handle },
                }
            }
        };
        if loaded.session.is_expired(now) {
            return Err(AuthFailure::SessionExpired {
                expired_at: loaded.session.expires_at,
                now,
            });
        }
        Ok(Some(loaded))
    }

    /// The `Set-Cookie` values that carry `loaded` (sealed session, or its handle after saving
    /// it in the store is the caller's business), clearing stale chunks.
    pub(crate) fn cookies(
        &self,
        loaded: &LoadedSession,
        cookies: &RequestCookies<'_>,
        now: UnixTime,
    ) -> Result<Vec<HeaderValue>, CookieError> {
        let expires_at = loaded.session.expires_at;
        match &loaded.origin {
            SessionOrigin::Cookie { id } => {
                #[derive(Serialize)]
                struct Borrowed<'a> {
                    i: &'a str,
                    s: &'a Session,
                }
                self.codec.encode(
                    &Borrowed {
                        i: id,
                        s: &loaded.session,
                    },
                    expires_at,
                    now,
                    &mut SystemRandom,
                    cookies,
                )
            }
            SessionOrigin::Server { handle } => self.codec.encode(
                &handle.to_cookie_value(),
                expires_at,
                now,
                &mut SystemRandom,
                cookies,
            ),
        }
    }

    /// Stores a brand-new session (a fresh id or handle, never one from the request) and
    /// returns it with the cookies that carry it.
    pub(crate) async fn create(
        &self,
        session: Session,
        cookies: &RequestCookies<'_>,
        now: UnixTime,
    ) -> Result<(LoadedSession, Vec<HeaderValue>), CreateSessionError> {
        let origin = match &self.vault {
            None => SessionOrigin::Cookie {
                id: random_url_safe(&mut SystemRandom, 16),
            },
            Some(vault) => {
                let json = serde_json::to_vec(&session).map_err(|_| CreateSessionError::Encode)?;
                let ttl = session.expires_at.duration_since(now);
                let handle = vault
                    .create(&mut SystemRandom, &json, &session_tags(&session), ttl)
                    .await
                    .map_err(|e| CreateSessionError::Store(Arc::new(e)))?;
                SessionOrigin::Server { handle }
            }
        };
        let loaded = LoadedSession { session, origin };
        let set_cookies = self
            .cookies(&loaded, cookies, now)
            .map_err(|e| CreateSessionError::Cookie(Arc::new(e)))?;
        Ok((loaded, set_cookies))
    }

    /// Ends `loaded` everywhere this process can reach: in the shared store, or (cookie
    /// sessions) in this process's revocation list.
    pub(crate) async fn end(&self, loaded: &LoadedSession) -> Result<(), StoreError> {
        match (&loaded.origin, &self.vault) {
            (SessionOrigin::Server { handle }, Some(vault)) => vault.delete(handle).await,
            (SessionOrigin::Cookie { id }, _) => {
                let forget_at = loaded.session.expires_at;
                let now = self.settings.clock.now();
                self.revoke_locally(StoreKey::for_session_id(id.as_bytes()), now, forget_at);
                Ok(())
            }
            (SessionOrigin::Server { .. }, None) => Ok(()),
        }
    }

    /// Ends every session of the provider session `sid` (or, without one, of `sub`) at our
    /// issuer: back-channel logout. Returns how many stored sessions were removed (cookie
    /// sessions are revoked in this process and counted as zero).
    pub(crate) async fn revoke(
        &self,
        sub: Option<&str>,
        sid: Option<&str>,
    ) -> Result<usize, StoreError> {
        let issuer = self.settings.provider.issuer().as_str().to_owned();
        let now = self.settings.clock.now();
        let forget_at = now.saturating_add(self.settings.session_lifetime);
        match &self.vault {
            Some(vault) => match (sid, sub) {
                (Some(sid), _) => vault.revoke_provider_session(&issuer, sid).await,
                (None, Some(sub)) => vault.revoke_subject(&issuer, sub).await,
                (None, None) => Ok(0),
            },
            None => {
                if let Some(sid) = sid {
                    self.revoke_locally(
                        StoreKey::for_provider_session(&issuer, sid),
                        now,
                        forget_at,
                    );
                } else if let Some(sub) = sub {
                    self.revoke_locally(StoreKey::for_subject(&issuer, sub), now, forget_at);
                }
                Ok(0)
            }
        }
    }

    fn revoke_locally(&self, key: StoreKey, now: UnixTime, forget_at: UnixTime) {
        lock(&self.revocations).revoke(key, now, forget_at);
    }

    fn locally_revoked(&self, id: &str, session: &Session) -> bool {
        let revocations = lock(&self.revocations);
        if revocations.is_empty() {
            return false;
        }
        let mut keys = vec![
            StoreKey::for_session_id(id.as_bytes()),
            StoreKey::for_subject(&session.issuer, &session.subject),
        ];
        if let Some(sid) = &session.sid {
            keys.push(StoreKey::for_provider_session(&session.issuer, sid));
        }
        keys.iter()
            .any(|key| revocations.revoked_since(key, session.created_at))
    }
}

/// The identity and claims of a session.
pub(crate) fn session_authenticated(session: &Session) -> Authenticated {
    let mut identity =
        Identity::new(session.user_id().to_owned()).with_groups(session.groups.clone());
    if let Some(email) = &session.email {
        identity = identity.with_email(email.clone());
    }
    if let Some(name) = &session.preferred_username {
        identity = identity.with_preferred_username(name.clone());
    }
    if let Some(token) = &session.access_token {
        identity = identity.with_access_token(token.clone());
    }
    let mut claims = session.extra_claims.clone();
    claims.insert("sub".into(), Value::String(session.subject.clone()));
    claims.insert("iss".into(), Value::String(session.issuer.clone()));
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            claims.insert(name.to_owned(), value);
        }
    };
    put("email", session.email.clone().map(Value::String));
    put("email_verified", session.email_verified.map(Value::Bool));
    put("name", session.name.clone().map(Value::String));
    put(
        "preferred_username",
        session.preferred_username.clone().map(Value::String),
    );
    if !session.groups.is_empty() {
        put("groups", Some(Value::from(session.groups.clone())));
    }
    Authenticated {
        identity,
        source: AuthSource::Session,
        claims: Arc::new(claims),
        scopes: Vec::new(),
    }
}

pub(super) fn session_tags(session: &Session) -> SessionTags {
    let mut tags = SessionTags::new(session.issuer.clone()).subject(&session.subject);
    if let Some(sid) = &session.sid {
        tags = tags.provider_session(sid);
    }
    tags
}

/// Revocations of cookie sessions, kept in this process: a key (session id, subject, provider
/// session) and the time from which sessions created at or before it are dead.
#[derive(Default)]
struct Revocations {
    revoked: HashMap<StoreKey, (UnixTime, UnixTime)>,
}

impl Revocations {
    fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }

    fn revoke(&mut self, key: StoreKey, at: UnixTime, forget_at: UnixTime) {
        if self.revoked.len() >= MAX_LOCAL_REVOCATIONS {
            self.revoked.retain(|_, (_, forget)| *forget > at);
        }
        if self.revoked.len() >= MAX_LOCAL_REVOCATIONS
            && let Some(oldest) = self
                .revoked
                .iter()
                .min_by_key(|(_, (_, forget))| *forget)
                .map(|(key, _)| *key)
        {
            self.revoked.remove(&oldest);
        }
        self.revoked.insert(key, (at, forget_at));
    }

    fn revoked_since(&self, key: &StoreKey, created_at: UnixTime) -> bool {
        self.revoked
            .get(key)
            .is_some_and(|(at, _)| created_at <= *at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_kill_sessions_created_before() {
        let mut revocations = Revocations::default();
        let key = StoreKey::for_subject("iss", "alice");
        revocations.revoke(key, UnixTime::from_secs(100), UnixTime::from_secs(1000));
        assert!(revocations.revoked_since(&key, UnixTime::from_secs(99)));
        assert!(revocations.revoked_since(&key, UnixTime::from_secs(100)));
        assert!(!revocations.revoked_since(&key, UnixTime::from_secs(101)));
        assert!(
            !revocations
                .revoked_since(&StoreKey::for_subject("iss", "bob"), UnixTime::from_secs(1))
        );
    }

    /// An opened cookie session is served from the cache only while it is live on the
    /// authenticator's clock; past its end it is refused, and dropped from the cache, although
    /// the cache's own expiry (on the real clock) has not come.
    #[tokio::test]
    async fn a_cached_cookie_session_ends_at_its_end_on_the_clock() {
        use crate::auth::authenticator::test_bed;
        use crate::clock::ManualClock;

        let clock = ManualClock::starting_now();
        let (op, auth) = test_bed::start(&clock).await;
        let sessions = auth.sessions().unwrap();
        let now = clock.now();
        let lifetime = Duration::from_secs(30);
        let session = Session::new(
            "u1",
            op.issuer().as_str(),
            now,
            now.saturating_add(lifetime),
        );
        let (_, set_cookies) = auth
            .create_session(session, &RequestCookies::empty(), now)
            .await
            .unwrap();
        let cookie = set_cookies
            .iter()
            .map(|value| {
                value
                    .to_str()
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join("; ");
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, cookie.parse().unwrap());
        let digest = sessions
            .fingerprints
            .of_header_values(headers.get_all(http::header::COOKIE))
            .unwrap();

        sessions.authenticate(&headers).await.unwrap();
        assert!(
            sessions.cookie_sessions.get(&digest).is_some(),
            "opened and cached"
        );
        clock.advance(lifetime - Duration::from_secs(1));
        let served = sessions.authenticate(&headers).await.unwrap();
        assert_eq!(served.authenticated.identity.user, "u1");
        clock.advance(Duration::from_secs(1));
        // The sealed cookie ends with the session: refused on opening it again.
        let refused = sessions.authenticate(&headers).await.unwrap_err();
        assert!(refused.session_is_gone(), "{refused:?}");
        assert!(sessions.cookie_sessions.get(&digest).is_none(), "dropped");
    }

    #[test]
    fn session_claims_carry_the_identity() {
        let mut session = Session::new(
            "u1",
            "https://op",
            UnixTime::from_secs(1),
            UnixTime::from_secs(9),
        );
        session.email = Some("a@example.com".into());
        session.groups = vec!["ml".into()];
        let authenticated = session_authenticated(&session);
        assert_eq!(authenticated.identity.user, "u1");
        assert_eq!(
            authenticated.identity.email.as_deref(),
            Some("a@example.com")
        );
        assert_eq!(authenticated.claims["groups"], serde_json::json!(["ml"]));
        assert_eq!(authenticated.source, AuthSource::Session);
    }
}
