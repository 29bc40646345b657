//! Refreshing a session's tokens once: per process and, in a shared store, across replicas.
//!
//! [`Refreshes`] decides who asks the provider when a session's access token is due: every
//! request carrying the same refresh token at the same time waits for one refresh (single
//! flight), and the outcome is remembered for [`REFRESH_MEMORY`] so that requests still
//! carrying the old cookie get the refreshed session instead of refreshing again with a
//! rotated-away refresh token. For sessions in a shared store, the replica holding the store's
//! refresh lock asks the provider and saves the result; the others poll the store for it. A
//! refusal by the provider ends the session; a provider (or store) that cannot be asked keeps
//! it as it is. [`Sessions`](super::Sessions) composes it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oidc_core::login::token::{TokenError, parse_token_response, refresh_request};
use oidc_core::login::{ClientCredentials, LoginConfig, finish_refresh};
use oidc_core::validation::Policy;
use oidc_core::{ErrorKind, Session};
use tokio::sync::OnceCell;

use super::{LoadedSession, SessionOrigin, session_tags};
use crate::auth::authenticator::{LoginFlow, lock, with_fresh_keys};
use crate::auth::config::AuthConfig;
use crate::clock::Clock;
use crate::http_client::HttpClient;
use crate::metrics::Metrics;
use crate::provider::{Provider, sha256};
use crate::random::SystemRandom;
use crate::store::{SessionHandle, SessionStore, SessionVault};

/// How long a replica may hold a session's refresh lock (about the provider call's timeout).
const REFRESH_LOCK_TTL: Duration = Duration::from_secs(10);
/// How often a replica waiting for another's refresh looks at the stored session.
const REFRESH_LOCK_POLL: Duration = Duration::from_millis(50);
/// How long a finished refresh is remembered, so that requests still carrying the old cookie
/// get the refreshed session instead of refreshing again with a rotated-away refresh token.
const REFRESH_MEMORY: Duration = Duration::from_secs(120);

/// A refreshed session, or why there is none.
pub(super) type RefreshOutcome = Result<Arc<Session>, RefreshFailure>;

/// One refresh in flight or done, shared by every request carrying its refresh token.
struct RefreshSlot {
    started: Instant,
    cell: Arc<OnceCell<RefreshOutcome>>,
}

/// Why a session was not refreshed.
#[derive(Clone, Copy, Debug)]
pub(super) enum RefreshFailure {
    /// The provider refused: the session is over.
    Rejected(ErrorKind),
    /// The provider could not be asked: keep the session as it is.
    Unavailable(ErrorKind),
}

/// What refreshing asks the provider with.
struct RefreshSettings {
    provider: Provider,
    http: Arc<dyn HttpClient>,
    metrics: Metrics,
    /// The login client, which refreshes the tokens.
    credentials: ClientCredentials,
    /// The login's settings (the resources a refresh asks for).
    login_config: LoginConfig,
    /// What a refreshed ID token must satisfy.
    id_policy: Policy,
    /// The time of day refreshed tokens are judged at.
    clock: Arc<dyn Clock>,
}

/// The refresh single flight: the refreshes in flight or recently done, by the SHA-256 of the
/// refresh token, and the shared store whose refresh lock and sessions they use.
pub(super) struct Refreshes {
    settings: RefreshSettings,
    vault: Option<SessionVault<Arc<dyn SessionStore>>>,
    slots: Mutex<HashMap<[u8; 32], RefreshSlot>>,
}

impl Refreshes {
    /// The refreshes of a login's sessions, kept in `vault` when they live in a shared store.
    pub(super) fn new(
        config: &AuthConfig,
        login: &LoginFlow,
        vault: Option<SessionVault<Arc<dyn SessionStore>>>,
    ) -> Refreshes {
        Refreshes {
            settings: RefreshSettings {
                provider: config.provider.clone(),
                http: Arc::clone(&config.http),
                metrics: config.metrics.clone(),
                credentials: login.settings.credentials.clone(),
                login_config: login.login_config.clone(),
                id_policy: login.id_policy.clone(),
                clock: Arc::clone(&config.clock),
            },
            vault,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Refreshes `loaded` once for every request that carries it at the same time: the first
    /// caller asks the provider, the others wait for its answer.
    pub(super) async fn refresh_once(&self, loaded: &LoadedSession) -> RefreshOutcome {
        let Some(refresh_token) = &loaded.session.refresh_token else {
            return Err(RefreshFailure::Rejected(ErrorKind::NoRefreshToken));
        };
        let key = sha256(refresh_token.expose().as_bytes());
        let cell = {
            let mut slots = lock(&self.slots);
            slots.retain(|_, slot| slot.started.elapsed() < REFRESH_MEMORY);
            slots
                .entry(key)
                .or_insert_with(|| RefreshSlot {
                    started: Instant::now(),
                    cell: Arc::new(OnceCell::new()),
                })
                .cell
                .clone()
        };
        cell.get_or_init(|| self.refresh(loaded)).await.clone()
    }

    /// Refreshes a session once: per process (the caller's single flight) and, for sessions in
    /// a shared store, across replicas: the replica holding the store's refresh lock asks the
    /// provider; the others wait for the session it saves. A holder that dies frees the lock
    /// after [`REFRESH_LOCK_TTL`].
    async fn refresh(&self, loaded: &LoadedSession) -> RefreshOutcome {
        let (SessionOrigin::Server { handle }, Some(vault)) = (&loaded.origin, &self.vault) else {
            return self.refresh_at_provider(loaded).await;
        };
        let deadline = Instant::now() + REFRESH_LOCK_TTL + REFRESH_LOCK_POLL;
        loop {
            let locked = vault
                .try_lock_refresh(&mut SystemRandom, handle, REFRESH_LOCK_TTL)
                .await
                .map_err(|e| RefreshFailure::Unavailable(e.kind()))?;
            if let Some(token) = locked {
                // Another replica may have refreshed it between our read and the lock.
                let outcome = match self.refreshed_elsewhere(handle, loaded).await {
                    Ok(Some(stored)) => Ok(stored),
                    Ok(None) => self.refresh_at_provider(loaded).await,
                    Err(failure) => Err(failure),
                };
                if let Err(error) = vault.unlock_refresh(handle, &token).await {
                    tracing::warn!(code = error.code(), "refresh lock not released; it expires");
                }
                return outcome;
            }
            tokio::time::sleep(REFRESH_LOCK_POLL).await;
            if let Some(stored) = self.refreshed_elsewhere(handle, loaded).await? {
                return Ok(stored);
            }
            if Instant::now() >= deadline {
                return Err(RefreshFailure::Unavailable(ErrorKind::RefreshLockTimeout));
            }
        }
    }

    /// The stored session when another replica has refreshed it since `loaded` was read; `None`
    /// while it still holds the tokens `loaded` has; refused when it was removed (signed out).
    async fn refreshed_elsewhere(
        &self,
        handle: &SessionHandle,
        loaded: &LoadedSession,
    ) -> Result<Option<Arc<Session>>, RefreshFailure> {
        match self.stored_session(handle).await? {
            Some(stored) if !same_tokens(&stored, &loaded.session) => Ok(Some(Arc::new(stored))),
            Some(_) => Ok(None),
            None => Err(RefreshFailure::Rejected(ErrorKind::SessionRevoked)),
        }
    }

    /// The session as the shared store holds it now.
    async fn stored_session(
        &self,
        handle: &SessionHandle,
    ) -> Result<Option<Session>, RefreshFailure> {
        let Some(vault) = &self.vault else {
            return Ok(None);
        };
        let stored = vault
            .load(handle)
            .await
            .map_err(|e| RefreshFailure::Unavailable(e.kind()))?;
        stored
            .map(|json| serde_json::from_slice::<Session>(&json))
            .transpose()
            .map_err(|_| RefreshFailure::Unavailable(ErrorKind::StoredSessionUnreadable))
    }

    /// Asks the provider for fresh tokens and, for a stored session, saves the result.
    async fn refresh_at_provider(&self, loaded: &LoadedSession) -> RefreshOutcome {
        let session = &loaded.session;
        let refresh_token = session
            .refresh_token
            .as_ref()
            .ok_or(RefreshFailure::Rejected(ErrorKind::NoRefreshToken))?;
        let metadata = self
            .settings
            .provider
            .metadata()
            .ok_or(RefreshFailure::Unavailable(ErrorKind::ProviderNotReady))?;
        let token_endpoint = metadata
            .token_endpoint
            .as_ref()
            .ok_or(RefreshFailure::Unavailable(ErrorKind::NoTokenEndpoint))?;
        let now = self.settings.clock.now();
        let request = refresh_request(
            token_endpoint,
            &self.settings.credentials,
            refresh_token,
            None,
            self.settings.login_config.resources(),
            now,
            &mut SystemRandom,
        )
        .map_err(|e| RefreshFailure::Rejected(e.kind()))?;
        tracing::debug!("refreshing a session's tokens");
        let response = self.settings.http.execute(request).await.map_err(|e| {
            self.settings.metrics.record_provider_error(e.code());
            RefreshFailure::Unavailable(e.kind())
        })?;
        let tokens = parse_token_response(&response).map_err(|e| match e {
            TokenError::Provider { .. } => RefreshFailure::Rejected(e.kind()),
            other => {
                self.settings.metrics.record_provider_error(other.code());
                RefreshFailure::Unavailable(other.kind())
            }
        })?;
        let refreshed = with_fresh_keys(&self.settings.provider, &self.settings.metrics, |keys| {
            finish_refresh(session, tokens.clone(), keys, &self.settings.id_policy, now)
        })
        .await
        .map_err(|e| {
            if e.is_outage() {
                RefreshFailure::Unavailable(e.kind())
            } else {
                RefreshFailure::Rejected(e.kind())
            }
        })?;
        let mut updated = session.clone();
        updated.apply_refresh(refreshed);
        if let (SessionOrigin::Server { handle }, Some(vault)) = (&loaded.origin, &self.vault) {
            let json = serde_json::to_vec(&updated)
                .map_err(|_| RefreshFailure::Unavailable(ErrorKind::SessionEncode))?;
            let ttl = updated.expires_at.duration_since(now);
            vault
                .save(
                    &mut SystemRandom,
                    handle,
                    &json,
                    &session_tags(&updated),
                    ttl,
                )
                .await
                .map_err(|e| RefreshFailure::Unavailable(e.kind()))?;
        }
        Ok(Arc::new(updated))
    }
}

/// Whether two readings of a session carry the same tokens (no refresh happened in between).
fn same_tokens(a: &Session, b: &Session) -> bool {
    a.access_token == b.access_token && a.refresh_token == b.refresh_token
}
