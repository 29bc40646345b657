//! Bearer verification: whether an `Authorization: Bearer` or `DPoP` token admits its caller.
//!
//! A [`BearerVerifier`] routes a JWT to the accepted issuer its `iss` names and validates it
//! with that issuer's keys and policy, asks the provider about anything else (RFC 7662
//! introspection), checks a DPoP proof against the request and the key the token is bound to,
//! and applies the required scopes and the authorization rules. It owns the caches of admitted
//! JWTs and introspection answers (keyed by fingerprints, never the token) and the DPoP `jti`s
//! seen.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use http::HeaderMap;
use oidc_core::ErrorKind;
use oidc_core::Secret;
use oidc_core::UnixTime;
use oidc_core::authorization::{AuthorizationRules, groups_from_claims};
use oidc_core::danger::decode_unverified;
use oidc_core::dpop::{DpopPolicy, DpopRequest, bound_key_thumbprint, verify_proof};
use oidc_core::introspection::{
    IntrospectionError, IntrospectionPolicy, TokenTypeHint, introspection_request,
    parse_introspection,
};
use oidc_core::login::ClientCredentials;
use oidc_core::logout::SeenJtis;
use oidc_core::validation::Policy;
use serde_json::{Map, Value};

use super::verdict::{AuthFailure, AuthSource, Authenticated};
use super::{claims_map, lock};
use crate::auth::config::AuthConfig;
use crate::bearer_response::{BearerToken, DpopCredentials};
use crate::clock::Clock;
use crate::fingerprint::{Fingerprint, Fingerprints};
use crate::fingerprint_cache::FingerprintCache;
use crate::http_client::{HttpClient, HttpError};
use crate::identity_headers::Identity;
use crate::metrics::Metrics;
use crate::provider::Provider;
use crate::random::SystemRandom;

/// How many introspection answers are cached.
const INTROSPECTION_CACHE_CAPACITY: u64 = 10_000;
/// How many validated tokens are kept in front of each cache: the clients active right now.
const RECENT_TOKEN_SLOTS: usize = 256;

/// What bearer verification reads from the configuration.
pub(crate) struct BearerSettings {
    /// The main issuer's provider: its metadata names the introspection endpoint.
    provider: Provider,
    http: Arc<dyn HttpClient>,
    metrics: Metrics,
    required_scopes: Vec<String>,
    groups_claim: String,
    rules: AuthorizationRules,
    /// The client opaque tokens are introspected as: the configured introspection client, else
    /// the login client.
    introspection_credentials: Option<ClientCredentials>,
    /// The time of day tokens, proofs and cached answers are judged at.
    clock: Arc<dyn Clock>,
}

impl BearerSettings {
    fn from_config(config: &AuthConfig) -> BearerSettings {
        BearerSettings {
            provider: config.provider.clone(),
            http: Arc::clone(&config.http),
            metrics: config.metrics.clone(),
            required_scopes: config.required_scopes.clone(),
            groups_claim: config.groups_claim.clone(),
            rules: config.rules.clone(),
            introspection_credentials: config
                .introspection_client
                .clone()
                .or_else(|| config.login.as_ref().map(|login| login.credentials.clone())),
            clock: Arc::clone(&config.clock),
        }
    }
}

/// Verifies bearer and DPoP tokens: issuer routing, validation, introspection, DPoP proofs,
/// scopes and rules, with the caches of admitted tokens.
pub(crate) struct BearerVerifier {
    settings: BearerSettings,
    /// The issuers whose bearer JWTs are accepted; the main one first.
    issuers: Vec<TrustedIssuer>,
    /// What an introspection answer must agree with: the main issuer, its audiences, and the
    /// clients whose tokens are meant for this service.
    introspection_policy: IntrospectionPolicy,
    /// Introspection answers by the token's fingerprint, each until the answer's cache time
    /// (never beyond the token's `exp`).
    introspections: FingerprintCache<CachedPrincipal>,
    /// Validated JWTs by the token's fingerprint, each until its `exp` or the provider's
    /// cache age (whichever comes first): a hit skips validation and the claims conversion.
    /// A hit counts only while its end is ahead on the configured clock.
    jwt_principals: FingerprintCache<CachedPrincipal>,
    /// The key of the caches above.
    fingerprints: Fingerprints,
    /// What a DPoP proof must satisfy, and the proofs' `jti`s seen within their window.
    dpop_policy: DpopPolicy,
    dpop_jtis: Mutex<SeenJtis>,
}

impl BearerVerifier {
    pub(crate) fn new(config: &AuthConfig) -> BearerVerifier {
        let issuers = trusted_issuers(config);
        let introspection_policy = introspection_policy(config, &issuers[0]);
        BearerVerifier {
            settings: BearerSettings::from_config(config),
            issuers,
            introspection_policy,
            introspections: FingerprintCache::new(
                INTROSPECTION_CACHE_CAPACITY,
                RECENT_TOKEN_SLOTS,
                PrincipalExpiry,
            ),
            jwt_principals: FingerprintCache::new(
                config.provider.token_cache_capacity(),
                RECENT_TOKEN_SLOTS,
                PrincipalExpiry,
            ),
            fingerprints: Fingerprints::new(),
            dpop_policy: DpopPolicy::new(),
            dpop_jtis: Mutex::new(SeenJtis::default()),
        }
    }

    /// What a DPoP proof must satisfy (its algorithms are advertised in `WWW-Authenticate`).
    pub(crate) fn dpop_policy(&self) -> &DpopPolicy {
        &self.dpop_policy
    }

    /// Validates a bearer token: a JWT with its issuer's keys, anything else by introspection;
    /// then the required scopes and the authorization rules. The identity keeps the token,
    /// uncopied.
    pub(crate) async fn verify(&self, token: BearerToken) -> Result<Authenticated, AuthFailure> {
        let principal = self.principal_of(&token).await?;
        if principal.bound_jkt.is_some() {
            return Err(AuthFailure::DpopBoundTokenAsBearer);
        }
        let identity = self.admitted_identity(&principal)?;
        Ok(authenticated_by(&principal, identity, token.into_secret()))
    }

    /// A JWT validated with the keys of its issuer, anything else by introspection.
    async fn principal_of(&self, token: &BearerToken) -> Result<Arc<BearerPrincipal>, AuthFailure> {
        if is_compact_jws(token.expose()) {
            self.validate_jwt(token.expose()).await
        } else {
            self.introspect(token).await
        }
    }

    /// The identity of an admitted principal: decided once per cached principal.
    fn admitted_identity(&self, principal: &BearerPrincipal) -> Result<Identity, AuthFailure> {
        match principal.admitted.get() {
            Some(identity) => Ok(identity.clone()),
            None => {
                let identity = self.admit(principal)?;
                Ok(principal.admitted.get_or_init(|| identity).clone())
            }
        }
    }

    /// A DPoP-bound token (RFC 9449): validated as any bearer token, then its proof checked
    /// against the request and the key the token is bound to.
    pub(crate) async fn verify_dpop(
        &self,
        credentials: DpopCredentials,
        method: &http::Method,
        url: Option<url::Url>,
    ) -> Result<Authenticated, AuthFailure> {
        let DpopCredentials { token, proof } = credentials;
        let principal = self.principal_of(&token).await?;
        let bound = principal
            .bound_jkt
            .as_deref()
            .ok_or(AuthFailure::DpopTokenNotBound)?;
        let url = url.ok_or(AuthFailure::DpopRequestUnknown)?;
        let request = DpopRequest {
            method: method.as_str(),
            uri: &url,
            access_token: Some(token.expose()),
            bound_jkt: Some(bound),
        };
        verify_proof(
            &proof,
            &request,
            &self.dpop_policy,
            &mut lock(&self.dpop_jtis),
            self.settings.clock.now(),
        )
        .map_err(AuthFailure::DpopRejected)?;
        let identity = self.admitted_identity(&principal)?;
        Ok(authenticated_by(&principal, identity, token.into_secret()))
    }

    /// The request's identity when `token` is a JWT in the cache that was admitted before (and
    /// is not bound to a key, which needs its proof).
    pub(crate) fn cached(&self, token: &str) -> Option<Authenticated> {
        let fingerprint = self.fingerprints.of(token.as_bytes())?;
        let principal = self.cached_jwt(&fingerprint, self.settings.clock.now())?;
        if principal.bound_jkt.is_some() {
            return None;
        }
        let identity = principal.admitted.get()?.clone();
        Some(authenticated_by(&principal, identity, Secret::new(token)))
    }

    /// A cached JWT principal still valid at `now` whose key its issuer still publishes; an
    /// entry past its end or whose key was withdrawn is dropped.
    fn cached_jwt(&self, fingerprint: &Fingerprint, now: UnixTime) -> Option<Arc<BearerPrincipal>> {
        let principal = fresh_hit(&self.jwt_principals, fingerprint, now)?;
        if let Some((issuer, kid)) = &principal.signed_by
            && !self
                .issuers
                .get(*issuer)
                .is_some_and(|trusted| trusted.provider.holds_kid(kid))
        {
            self.jwt_principals.invalidate(fingerprint);
            return None;
        }
        Some(principal)
    }

    /// The required scopes and the authorization rules, then the identity the claims name
    /// (without the access token).
    fn admit(&self, principal: &BearerPrincipal) -> Result<Identity, AuthFailure> {
        let required = &self.settings.required_scopes;
        let missing: Vec<String> = required
            .iter()
            .filter(|scope| !principal.scopes.contains(scope))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(AuthFailure::InsufficientScope {
                missing,
                required: required.clone(),
            });
        }
        let claims = &principal.claims;
        let groups_claim = &self.settings.groups_claim;
        let rules = &self.settings.rules;
        let names = &rules.identity_claims;
        let view = oidc_core::Identity::from_claims_named(claims, groups_claim, names);
        rules.evaluate(&view).map_err(AuthFailure::Forbidden)?;
        // A machine identity (a listed client's token) is named by its client, as is a token
        // that names no user.
        let user = match (view.client_id, names.user_id(claims)) {
            (Some(client), _) if rules.admits_client(&view) => client.to_owned(),
            (_, Some(user)) => user,
            (Some(client), None) => client.to_owned(),
            (None, None) => String::new(),
        };
        let groups = groups_from_claims(claims, groups_claim);
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let mut identity = Identity::new(user).with_groups(groups);
        if let Some(email) = names.email(claims) {
            identity = identity.with_email(email);
        }
        if let Some(name) = text("preferred_username").or_else(|| text("username")) {
            identity = identity.with_preferred_username(name);
        }
        Ok(identity)
    }

    async fn validate_jwt(&self, token: &str) -> Result<Arc<BearerPrincipal>, AuthFailure> {
        let fingerprint = self.fingerprints.of(token.as_bytes());
        let now = self.settings.clock.now();
        if let Some(hit) = fingerprint.and_then(|key| self.cached_jwt(&key, now)) {
            return Ok(hit);
        }
        let (issuer, trusted) = self.issuer_of(token);
        let validated = trusted
            .provider
            .validate_uncached_with(token, &trusted.policy, now)
            .await
            .map_err(|error| {
                if error.is_rejection() {
                    AuthFailure::TokenRejected(error)
                } else {
                    self.settings.metrics.record_provider_error(error.code());
                    AuthFailure::ProviderUnavailable { kind: error.kind() }
                }
            })?;
        let mut principal =
            BearerPrincipal::new(claims_map(&validated.claims), AuthSource::BearerJwt);
        principal.signed_by = validated.header.kid.clone().map(|kid| (issuer, kid));
        let principal = Arc::new(principal);
        if let (Some(ttl), Some(fingerprint)) = (
            trusted.provider.token_cache_ttl(&validated, now),
            fingerprint,
        ) {
            self.jwt_principals.insert(
                fingerprint,
                CachedPrincipal {
                    principal: Arc::clone(&principal),
                    until: now.saturating_add(ttl),
                    ttl,
                },
            );
        }
        Ok(principal)
    }

    /// The accepted issuer (and its index) a JWT's (unverified) `iss` names; the main one when
    /// there is only one, or when it names none (validation then refuses it as `wrong_issuer`).
    fn issuer_of(&self, token: &str) -> (usize, &TrustedIssuer) {
        let issuers = &self.issuers;
        if issuers.len() > 1
            && let Ok(unverified) = decode_unverified(token)
            && let Some(iss) = unverified.claims.get("iss").and_then(Value::as_str)
        {
            let tid = unverified.claims.get("tid").and_then(Value::as_str);
            if let Some(found) = issuers
                .iter()
                .enumerate()
                .find(|(_, trusted)| trusted.provider.is_issuer_of(iss, tid))
            {
                return found;
            }
        }
        (0, &issuers[0])
    }

    async fn introspect(&self, token: &BearerToken) -> Result<Arc<BearerPrincipal>, AuthFailure> {
        let fingerprint = self.fingerprints.of(token.expose().as_bytes());
        let metrics = &self.settings.metrics;
        let now = self.settings.clock.now();
        if let Some(hit) = fingerprint.and_then(|key| fresh_hit(&self.introspections, &key, now)) {
            metrics.record_token_cache_hit();
            return Ok(hit);
        }
        metrics.record_token_cache_miss();
        let credentials = self
            .settings
            .introspection_credentials
            .as_ref()
            .ok_or(AuthFailure::OpaqueTokenUnsupported)?;
        let metadata =
            self.settings
                .provider
                .metadata()
                .ok_or(AuthFailure::ProviderUnavailable {
                    kind: ErrorKind::ProviderNotReady,
                })?;
        let endpoint = metadata
            .introspection_endpoint
            .as_ref()
            .ok_or(AuthFailure::OpaqueTokenUnsupported)?;
        let request = introspection_request(
            endpoint,
            credentials,
            &Secret::new(token.expose()),
            Some(TokenTypeHint::AccessToken),
            now,
            &mut SystemRandom,
        )
        .map_err(AuthFailure::IntrospectionRejected)?;
        let response = self
            .settings
            .http
            .execute(request)
            .await
            .map_err(|e| self.provider_unavailable(&e))?;
        let policy = &self.introspection_policy;
        let introspected = match parse_introspection(&response, policy, now) {
            Ok(introspected) => introspected,
            Err(IntrospectionError::Response(error)) => {
                tracing::warn!(code = error.code(), "introspection answer unusable");
                self.settings.metrics.record_provider_error(error.code());
                return Err(AuthFailure::ProviderUnavailable {
                    kind: ErrorKind::IntrospectionUnavailable,
                });
            }
            Err(error) => return Err(AuthFailure::IntrospectionRejected(error)),
        };
        let claims = introspected.claims;
        let mut map = claims.extra.clone();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                map.insert(name.to_owned(), value);
            }
        };
        put("sub", claims.sub.clone().map(Value::String));
        put("iss", claims.iss.clone().map(Value::String));
        put("scope", claims.scope.clone().map(Value::String));
        put("client_id", claims.client_id.clone().map(Value::String));
        put("username", claims.username.clone().map(Value::String));
        put("exp", claims.exp.map(|t| Value::from(t.as_secs())));
        if !claims.aud.is_empty() {
            put("aud", Some(Value::from(claims.aud.clone())));
        }
        let principal = Arc::new(BearerPrincipal::new(map, AuthSource::BearerIntrospected));
        let ttl = introspected.cache_until.duration_since(now);
        if let (false, Some(fingerprint)) = (ttl.is_zero(), fingerprint) {
            self.introspections.insert(
                fingerprint,
                CachedPrincipal {
                    principal: principal.clone(),
                    until: introspected.cache_until,
                    ttl,
                },
            );
        }
        Ok(principal)
    }

    fn provider_unavailable(&self, error: &HttpError) -> AuthFailure {
        self.settings.metrics.record_provider_error(error.code());
        AuthFailure::ProviderUnavailable { kind: error.kind() }
    }
}

/// An issuer whose bearer JWTs are accepted: the provider holding its keys, and the policy the
/// tokens are judged by (the provider's, with every audience configured for that issuer).
struct TrustedIssuer {
    provider: Provider,
    policy: Policy,
}

/// The main issuer with the extra audiences, then each extra issuer; a second entry for an
/// issuer adds its audiences to the first.
fn trusted_issuers(config: &AuthConfig) -> Vec<TrustedIssuer> {
    let main = &config.provider;
    let mut issuers = vec![TrustedIssuer {
        provider: main.clone(),
        policy: main
            .policy()
            .with_audiences(config.extra_audiences.iter().cloned()),
    }];
    for extra in &config.extra_issuers {
        let audiences = extra.policy().audiences().iter().cloned();
        match issuers
            .iter_mut()
            .find(|trusted| trusted.provider.issuer() == extra.issuer())
        {
            Some(trusted) => trusted.policy = trusted.policy.with_audiences(audiences),
            None => issuers.push(TrustedIssuer {
                provider: extra.clone(),
                policy: extra.policy().clone(),
            }),
        }
    }
    issuers
}

/// Every client whose opaque tokens without `aud` are meant for this service: the login
/// client, the introspection client, the clients the rules admit and the accepted ones.
fn introspection_policy(config: &AuthConfig, main: &TrustedIssuer) -> IntrospectionPolicy {
    let mut policy = IntrospectionPolicy::new()
        .issuer(main.provider.issuer().as_str())
        .max_cache(config.introspection_cache);
    if main.policy.skips_audience() {
        return policy.insecure_skip_binding();
    }
    for audience in main.policy.audiences() {
        policy = policy.audience(audience.clone());
    }
    let own = [
        config
            .login
            .as_ref()
            .map(|login| login.credentials.client_id()),
        config
            .introspection_client
            .as_ref()
            .map(ClientCredentials::client_id),
    ];
    let clients = own
        .into_iter()
        .flatten()
        .chain(config.rules.allowed_clients.iter().map(String::as_str))
        .chain(config.accepted_clients.iter().map(String::as_str));
    for client in clients {
        policy = policy.client(client);
    }
    policy
}

/// A cached principal: served while the configured clock reads before `until`; the cache drops
/// it after `ttl` (the same span, on the cache's own clock) to free the memory.
#[derive(Clone)]
struct CachedPrincipal {
    principal: Arc<BearerPrincipal>,
    until: UnixTime,
    ttl: Duration,
}

/// The principal cached under `key` when it is still valid at `now`; an entry past its end is
/// a miss and is dropped, whether or not the cache's own expiry has come.
fn fresh_hit(
    cache: &FingerprintCache<CachedPrincipal>,
    key: &Fingerprint,
    now: UnixTime,
) -> Option<Arc<BearerPrincipal>> {
    let hit = cache.get(key)?;
    if now < hit.until {
        Some(hit.principal)
    } else {
        cache.invalidate(key);
        None
    }
}

struct PrincipalExpiry;

impl moka::Expiry<Fingerprint, CachedPrincipal> for PrincipalExpiry {
    fn expire_after_create(
        &self,
        _key: &Fingerprint,
        value: &CachedPrincipal,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &Fingerprint,
        value: &CachedPrincipal,
        _updated_at: Instant,
        _until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// What a request carrying `token` is told, from the token's admitted principal.
fn authenticated_by(
    principal: &BearerPrincipal,
    identity: Identity,
    token: Secret,
) -> Authenticated {
    Authenticated {
        identity: identity.with_access_token(token),
        source: principal.source,
        claims: Arc::clone(&principal.claims),
        scopes: principal.scopes.clone(),
    }
}

/// Whether the request's `Authorization` names the `DPoP` scheme (RFC 9449 §7.1).
pub(super) fn is_dpop_scheme(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().get(..5))
        .is_some_and(|start| start.eq_ignore_ascii_case(b"dpop "))
}

/// Whether a token has the shape of a compact JWS (three parts, so exactly two dots); anything
/// else is an opaque token for introspection.
fn is_compact_jws(token: &str) -> bool {
    memchr::memchr_iter(b'.', token.as_bytes()).take(3).count() == 2
}

/// What a validated bearer token says, shared by every request carrying the same token while
/// it is cached.
struct BearerPrincipal {
    claims: Arc<Map<String, Value>>,
    scopes: Vec<String>,
    source: AuthSource,
    /// For a JWT: the accepted issuer (index) and the `kid` of the key that verified it, so
    /// that a key the provider withdraws stops vouching for cached tokens at once.
    signed_by: Option<(usize, String)>,
    /// The key thumbprint the token is bound to (`cnf.jkt`, RFC 9449): such a token is
    /// accepted only with a DPoP proof by that key.
    bound_jkt: Option<String>,
    /// The identity (without the access token) once the scopes and rules let the token in:
    /// the configuration is fixed, so the first positive answer holds for the cached lifetime.
    admitted: OnceLock<Identity>,
}

impl BearerPrincipal {
    fn new(claims: Map<String, Value>, source: AuthSource) -> BearerPrincipal {
        let scopes = scopes_of(&claims);
        let bound_jkt = bound_key_thumbprint(&claims).map(str::to_owned);
        BearerPrincipal {
            claims: Arc::new(claims),
            scopes,
            source,
            signed_by: None,
            bound_jkt,
            admitted: OnceLock::new(),
        }
    }
}

/// The scopes of a token: the space-separated `scope` claim, or the `scp` claim (a string or an
/// array, as Entra ID and Okta send it).
fn scopes_of(claims: &Map<String, Value>) -> Vec<String> {
    let from = |value: &Value| -> Vec<String> {
        match value {
            Value::String(text) => text
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut scopes = claims.get("scope").map(from).unwrap_or_default();
    if let Some(scp) = claims.get("scp") {
        for scope in from(scp) {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_jws_shape_is_exactly_two_dots() {
        assert!(is_compact_jws("a.b.c"));
        assert!(is_compact_jws(".."));
        assert!(!is_compact_jws("a.b"));
        assert!(!is_compact_jws("a.b.c.d"));
        assert!(!is_compact_jws("opaque-token"));
    }

    #[test]
    fn scopes_come_from_scope_and_scp() {
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"scope":"openid  read","scp":["write","read"]}"#).unwrap();
        assert_eq!(scopes_of(&claims), ["openid", "read", "write"]);
        let none: Map<String, Value> = serde_json::from_str(r#"{"scope":7}"#).unwrap();
        assert!(scopes_of(&none).is_empty());
    }

    use crate::auth::authenticator::test_bed::{self, TOKEN_LIFETIME, time_claim};
    use crate::clock::ManualClock;
    use oidc_dev_provider::Endpoint;

    /// Authenticates a request carrying `token` in `Authorization: Bearer`.
    async fn call(auth: &super::super::Authenticator, token: &str) -> Result<(), AuthFailure> {
        let mut headers = HeaderMap::new();
        let value = format!("Bearer {token}").parse().unwrap();
        headers.insert(http::header::AUTHORIZATION, value);
        auth.authenticate(&headers, None, true).await.map(drop)
    }

    /// A cached JWT principal counts only while its end (`exp`, or the provider's cache age)
    /// is ahead on the authenticator's clock: the cache's own expiry runs on the real clock.
    #[tokio::test]
    async fn a_cached_jwt_is_served_only_before_its_end_on_the_clock() {
        let clock = ManualClock::starting_now();
        let (op, auth) = test_bed::start(&clock).await;
        let bearer = &auth.inner.bearer;
        let token = op.mint_access_token("alice", "api").unwrap();
        let (iat, exp) = (time_claim(&token, "iat"), time_claim(&token, "exp"));
        clock.set(iat);
        call(&auth, &token).await.unwrap();
        assert!(bearer.cached(&token).is_some(), "admitted and cached");
        // The provider's cache age (5 minutes) ends the entry before `exp`.
        let max_age = Duration::from_secs(300);
        assert!(max_age < TOKEN_LIFETIME);
        clock.set(iat.saturating_add(max_age - Duration::from_secs(1)));
        assert!(bearer.cached(&token).is_some());
        clock.set(iat.saturating_add(max_age));
        assert!(bearer.cached(&token).is_none(), "past the cache age");
        // Validated again (still valid), and cached up to `exp`.
        call(&auth, &token).await.unwrap();
        clock.set(exp.saturating_sub(Duration::from_secs(1)));
        assert!(bearer.cached(&token).is_some());
        clock.set(exp);
        assert!(bearer.cached(&token).is_none(), "past exp");
        let refused = call(&auth, &token).await.unwrap_err();
        assert_eq!(refused.code(), "expired", "{refused:?}");
    }

    /// An introspection answer is reused until its cache time on the authenticator's clock,
    /// then the provider is asked again.
    #[tokio::test]
    async fn an_introspection_answer_is_reused_only_until_its_cache_time_on_the_clock() {
        let clock = ManualClock::starting_now();
        let (op, auth) = test_bed::start(&clock).await;
        let token = op.mint_access_token("alice", "opaque").unwrap();
        let asked = || op.request_count(Endpoint::Introspection);
        for _ in 0..2 {
            call(&auth, &token).await.unwrap();
        }
        assert_eq!(asked(), 1, "the second answer came from the cache");
        // The default introspection cache: 60 s.
        clock.advance(Duration::from_secs(59));
        call(&auth, &token).await.unwrap();
        assert_eq!(asked(), 1);
        clock.advance(Duration::from_secs(1));
        call(&auth, &token).await.unwrap();
        assert_eq!(asked(), 2, "past the cache time: asked again");
        call(&auth, &token).await.unwrap();
        assert_eq!(asked(), 2, "and cached again");
    }

    proptest::proptest! {
        #[test]
        fn scope_reading_never_panics(json in "\\PC{0,80}", words in "[a-z :,]{0,40}") {
            if let Ok(Value::Object(claims)) = serde_json::from_str::<Value>(&json) {
                let _ = scopes_of(&claims);
            }
            let mut claims = Map::new();
            claims.insert("scope".into(), Value::String(words.clone()));
            let scopes = scopes_of(&claims);
            proptest::prop_assert!(scopes.iter().all(|s| !s.is_empty() && !s.contains(' ')));
            proptest::prop_assert_eq!(scopes.len(), words.split(' ').filter(|w| !w.is_empty()).count());
        }
    }
}
