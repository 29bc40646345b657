//! Ending sessions: the RP-initiated logout redirect (OpenID Connect RP-Initiated Logout 1.0)
//! and the validation of back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0).
//!
//! A logout token is checked by [`crate::validation::validate`] (signature, `iss`, `aud`, `iat`,
//! `exp` when present, algorithm allow-list; `none` never passes) and then here: the `events`
//! claim must hold the back-channel logout member, `sid` and/or `sub` must be present, `nonce`
//! must be absent (so an ID token cannot pass as a logout token), `typ` must be `logout+jwt`
//! when present, and its `jti` must not have been seen before. The [`SeenJtis`] set that
//! remembers `jti`s belongs to the caller (one per provider), bounded in size, each entry
//! kept only as long as the token could still be accepted.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::ErrorKind;
use crate::jwks::KeySet;
use crate::secret::Secret;
use crate::validation::{self, Policy, PolicyError, ValidationError};
use crate::{Issuer, UnixTime};

/// The `events` member that marks a back-channel logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The logout token's media type (`typ` header, with or without `application/`).
pub const LOGOUT_TOKEN_TYPE: &str = "logout+jwt";

/// How old (by `iat`) a logout token may be unless configured otherwise: logout tokens are
/// delivered at once, and this bounds how long a `jti` must be remembered.
pub const DEFAULT_MAX_LOGOUT_TOKEN_AGE: Duration = Duration::from_secs(5 * 60);

/// How many `jti`s a [`SeenJtis`] remembers unless configured otherwise.
pub const DEFAULT_SEEN_JTIS_CAPACITY: usize = 10_000;

/// An RP-initiated logout redirect: where to send the browser so the provider ends its session.
#[derive(Clone, Debug)]
#[must_use]
pub struct EndSessionRequest {
    client_id: String,
    id_token_hint: Option<Secret>,
    post_logout_redirect_uri: Option<Url>,
    state: Option<String>,
}

impl EndSessionRequest {
    /// A logout for the client `client_id`.
    pub fn new(client_id: impl Into<String>) -> Self {
        EndSessionRequest {
            client_id: client_id.into(),
            id_token_hint: None,
            post_logout_redirect_uri: None,
            state: None,
        }
    }

    /// The ID token of the session being ended (recommended: providers may refuse without it).
    pub fn id_token_hint(mut self, id_token: Secret) -> Self {
        self.id_token_hint = Some(id_token);
        self
    }

    /// Where the provider sends the browser afterwards (must be registered).
    pub fn post_logout_redirect_uri(mut self, uri: Url) -> Self {
        self.post_logout_redirect_uri = Some(uri);
        self
    }

    /// An opaque value the provider passes back to `post_logout_redirect_uri`.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// The URL to redirect the browser to, or `None` when the provider has no
    /// `end_session_endpoint` (then only the local session can be ended).
    pub fn url(&self, end_session_endpoint: Option<&Url>) -> Option<Url> {
        let mut url = end_session_endpoint?.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("client_id", &self.client_id);
            if let Some(hint) = &self.id_token_hint {
                query.append_pair("id_token_hint", hint.expose());
            }
            if let Some(uri) = &self.post_logout_redirect_uri {
                query.append_pair("post_logout_redirect_uri", uri.as_str());
                if let Some(state) = &self.state {
                    query.append_pair("state", state);
                }
            }
        }
        Some(url)
    }
}

/// Whom a valid logout token logs out: every session of `sub`, the session `sid`, or the
/// session `sid` of `sub`. Deliberately exhaustive: the specification defines exactly these two
/// ways to name a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogoutTarget {
    /// The subject, when named.
    pub sub: Option<String>,
    /// The provider's session id, when named.
    pub sid: Option<String>,
}

/// Why a logout token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutTokenError {
    /// The request body has no `logout_token` parameter (or has it twice).
    #[error("the back-channel logout request carries no single logout_token")]
    TokenMissing,
    /// Signature, issuer, audience or time checks failed.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The header `typ` is present and not `logout+jwt`.
    #[error("the logout token's typ is {found:?}, expected logout+jwt")]
    WrongType {
        /// The `typ` found.
        found: String,
    },
    /// No `events` claim, or one without the back-channel logout member.
    #[error("the logout token has no back-channel logout event")]
    EventMissing,
    /// The event member is not a JSON object.
    #[error("the logout token's back-channel logout event is not a JSON object")]
    EventNotObject,
    /// A `nonce` is present: the token is not a logout token.
    #[error("the logout token carries a nonce")]
    NoncePresent,
    /// Neither `sub` nor `sid`.
    #[error("the logout token names neither sub nor sid")]
    TargetMissing,
    /// No `jti`, so replays could not be detected.
    #[error("the logout token has no jti")]
    JtiMissing,
    /// The `jti` was already accepted once.
    #[error("the logout token {jti:?} was already used")]
    Replayed {
        /// The `jti` (at most 64 characters).
        jti: String,
    },
}

impl LogoutTokenError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LogoutTokenError::TokenMissing => ErrorKind::LogoutTokenMissing,
            LogoutTokenError::Invalid(e) => e.kind(),
            LogoutTokenError::WrongType { .. } => ErrorKind::LogoutTokenWrongTyp,
            LogoutTokenError::EventMissing => ErrorKind::LogoutEventMissing,
            LogoutTokenError::EventNotObject => ErrorKind::LogoutEventNotObject,
            LogoutTokenError::NoncePresent => ErrorKind::LogoutTokenNoncePresent,
            LogoutTokenError::TargetMissing => ErrorKind::LogoutTargetMissing,
            LogoutTokenError::JtiMissing => ErrorKind::LogoutJtiMissing,
            LogoutTokenError::Replayed { .. } => ErrorKind::LogoutTokenReplayed,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// The `logout_token` of a back-channel logout request body
/// (`application/x-www-form-urlencoded`).
pub fn logout_token_from_form(body: &[u8]) -> Result<Secret, LogoutTokenError> {
    let mut tokens = url::form_urlencoded::parse(body).filter(|(name, _)| name == "logout_token");
    match (tokens.next(), tokens.next()) {
        (Some((_, token)), None) if !token.is_empty() => Ok(Secret::new(token.into_owned())),
        _ => Err(LogoutTokenError::TokenMissing),
    }
}

/// Validates back-channel logout tokens from one provider for one client.
#[derive(Clone, Debug)]
pub struct LogoutTokenValidator {
    policy: Policy,
    max_age: Duration,
    leeway: Duration,
}

impl LogoutTokenValidator {
    /// Accepts logout tokens from `issuer` for `client_id`, issued at most
    /// [`DEFAULT_MAX_LOGOUT_TOKEN_AGE`] ago, with the validation defaults otherwise.
    pub fn new(issuer: Issuer, client_id: impl Into<String>) -> Result<Self, PolicyError> {
        Self::with_max_age(issuer, client_id, DEFAULT_MAX_LOGOUT_TOKEN_AGE)
    }

    /// As [`LogoutTokenValidator::new`] with another maximum age.
    pub fn with_max_age(
        issuer: Issuer,
        client_id: impl Into<String>,
        max_age: Duration,
    ) -> Result<Self, PolicyError> {
        let policy = Policy::builder()
            .issuer(issuer)
            .audience(client_id)
            .max_age(max_age)
            .allow_missing_exp()
            .build()?;
        let leeway = policy.leeway();
        Ok(LogoutTokenValidator {
            policy,
            max_age,
            leeway,
        })
    }

    /// Validates `token` at `now`, records its `jti` in `seen`, and says whom to log out.
    ///
    /// The `jti` is recorded only when every other check passed, so a forged token cannot
    /// block a genuine one.
    pub fn validate(
        &self,
        token: &str,
        keys: &KeySet,
        now: UnixTime,
        seen: &mut SeenJtis,
    ) -> Result<LogoutTarget, LogoutTokenError> {
        let validated = validation::validate(token, keys, &self.policy, now)?;
        if let Some(typ) = &validated.header.typ
            && !is_logout_token_type(typ)
        {
            return Err(LogoutTokenError::WrongType { found: typ.clone() });
        }
        let claims = validated.claims;
        let event = claims
            .extra
            .get("events")
            .and_then(Value::as_object)
            .and_then(|events| events.get(BACKCHANNEL_LOGOUT_EVENT))
            .ok_or(LogoutTokenError::EventMissing)?;
        if !event.is_object() {
            return Err(LogoutTokenError::EventNotObject);
        }
        if claims.nonce.is_some() || claims.extra.contains_key("nonce") {
            return Err(LogoutTokenError::NoncePresent);
        }
        if claims.sub.is_none() && claims.sid.is_none() {
            return Err(LogoutTokenError::TargetMissing);
        }
        let jti = claims.jti.ok_or(LogoutTokenError::JtiMissing)?;
        // The token stops being acceptable when it gets too old (the policy's max_age on iat,
        // which validation made mandatory) or expires, whichever comes first.
        let too_old_at = claims
            .iat
            .unwrap_or(now)
            .saturating_add(self.max_age)
            .saturating_add(self.leeway);
        let acceptable_until = claims.exp.map_or(too_old_at, |exp| {
            exp.saturating_add(self.leeway).min(too_old_at)
        });
        if !seen.insert(&jti, acceptable_until, now) {
            return Err(LogoutTokenError::Replayed {
                jti: jti.chars().take(64).collect(),
            });
        }
        Ok(LogoutTarget {
            sub: claims.sub,
            sid: claims.sid,
        })
    }
}

fn is_logout_token_type(typ: &str) -> bool {
    let bare = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => typ.get(12..).unwrap_or(typ),
        _ => typ,
    };
    bare.eq_ignore_ascii_case(LOGOUT_TOKEN_TYPE)
}

/// The `jti`s of accepted tokens, each until the token it came from could no longer be
/// accepted anyway. Bounded: when full, the entry closest to its end is dropped first.
///
/// Entries are SHA-256 digests of the `jti`, so memory per entry is fixed whatever the token
/// says.
#[derive(Clone, Debug)]
pub struct SeenJtis {
    capacity: usize,
    until: HashMap<[u8; 32], UnixTime>,
    by_end: BTreeSet<(UnixTime, [u8; 32])>,
}

impl Default for SeenJtis {
    fn default() -> Self {
        Self::new(DEFAULT_SEEN_JTIS_CAPACITY)
    }
}

impl SeenJtis {
    /// A set remembering at most `capacity` `jti`s (at least one).
    pub fn new(capacity: usize) -> Self {
        SeenJtis {
            capacity: capacity.max(1),
            until: HashMap::new(),
            by_end: BTreeSet::new(),
        }
    }

    /// How many `jti`s are remembered.
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    /// Records `jti` as seen until `until`; returns `false` when it was already seen (and
    /// its entry has not ended by `now`).
    pub fn insert(&mut self, jti: &str, until: UnixTime, now: UnixTime) -> bool {
        self.forget_ended(now);
        let digest = jti_digest(jti);
        if self.until.contains_key(&digest) {
            return false;
        }
        while self.until.len() >= self.capacity {
            let Some(first) = self.by_end.pop_first() else {
                break;
            };
            self.until.remove(&first.1);
        }
        self.until.insert(digest, until);
        self.by_end.insert((until, digest));
        true
    }

    fn forget_ended(&mut self, now: UnixTime) {
        while let Some(&(end, digest)) = self.by_end.first() {
            if end > now {
                break;
            }
            self.by_end.pop_first();
            self.until.remove(&digest);
        }
    }
}

fn jti_digest(jti: &str) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, jti.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_session_url_carries_hint_redirect_state_and_client() {
        let endpoint = Url::parse("https://op.example/logout?x=1").unwrap();
        let url = EndSessionRequest::new("rp")
            .id_token_hint(Secret::new("a.b.c"))
            .post_logout_redirect_uri(Url::parse("https://rp.example/bye").unwrap())
            .state("s1")
            .url(Some(&endpoint))
            .unwrap();
        assert_eq!(
            url.as_str(),
            "https://op.example/logout?x=1&client_id=rp&id_token_hint=a.b.c\
             &post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye&state=s1"
        );
        assert_eq!(EndSessionRequest::new("rp").url(None), None);
        let bare = EndSessionRequest::new("rp")
            .state("unused without a redirect")
            .url(Some(&endpoint))
            .unwrap();
        assert_eq!(bare.as_str(), "https://op.example/logout?x=1&client_id=rp");
    }

    #[test]
    fn logout_token_is_read_from_the_form() {
        assert_eq!(
            logout_token_from_form(b"logout_token=a.b.c").unwrap(),
            Secret::new("a.b.c")
        );
        for body in [&b""[..], b"logout_token=", b"logout_token=a&logout_token=b"] {
            assert_eq!(
                logout_token_from_form(body).unwrap_err(),
                LogoutTokenError::TokenMissing
            );
        }
    }

    #[test]
    fn typ_accepts_logout_jwt_with_or_without_prefix() {
        assert!(is_logout_token_type("logout+jwt"));
        assert!(is_logout_token_type("application/Logout+JWT"));
        assert!(!is_logout_token_type("JWT"));
        assert!(!is_logout_token_type("é"));
    }

    #[test]
    fn seen_jtis_detects_replays_until_the_entry_ends() {
        let mut seen = SeenJtis::new(10);
        let t = UnixTime::from_secs;
        assert!(seen.insert("a", t(100), t(0)));
        assert!(!seen.insert("a", t(100), t(50)));
        assert!(
            seen.insert("a", t(200), t(100)),
            "ended entries are forgotten"
        );
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn seen_jtis_stays_bounded_and_drops_the_soonest_ending_first() {
        let mut seen = SeenJtis::new(2);
        let t = UnixTime::from_secs;
        assert!(seen.insert("late", t(300), t(0)));
        assert!(seen.insert("soon", t(100), t(0)));
        assert!(seen.insert("third", t(200), t(0)));
        assert_eq!(seen.len(), 2);
        assert!(!seen.insert("late", t(300), t(1)));
        assert!(!seen.insert("third", t(200), t(1)));
        assert!(seen.insert("soon", t(100), t(1)), "dropped when full");
    }

    proptest::proptest! {
        #[test]
        fn seen_jtis_never_exceeds_capacity(ops in proptest::collection::vec((".{0,8}", 0u64..50, 0u64..50), 0..200)) {
            let mut seen = SeenJtis::new(8);
            for (jti, until, now) in ops {
                seen.insert(&jti, UnixTime::from_secs(until), UnixTime::from_secs(now));
                proptest::prop_assert!(seen.len() <= 8);
                proptest::prop_assert_eq!(seen.len(), seen.by_end.len());
            }
        }

        #[test]
        fn logout_form_parsing_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = logout_token_from_form(&body);
        }
    }
}
