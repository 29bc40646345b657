//! What a signed-in browser carries between requests, and when its tokens need refreshing.
//!
//! A [`Session`] is built once from a validated ID token (by [`crate::login`]), sealed into cookies
//! by [`crate::cookie::CookieCodec`], and opened again on every request. This module decides two
//! things about it: whether the access token is due for a refresh
//! ([`Session::refresh_due`]), and how a refreshed token set replaces the old one
//! ([`Session::apply_refresh`]). It also offers the [`Identity`] view that
//! [`crate::authorization`] rules evaluate.
//!
//! The serialized form uses short field names and leaves out empty fields, because every byte
//! ends up in a cookie that the browser sends with each request.

use std::borrow::Cow;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::authorization::Identity;
use crate::secret::Secret;
use crate::time::UnixTime;

/// The state of one signed-in user, as later requests need it.
///
/// All fields are public so that the login step can build a session from a validated ID token
/// with a struct literal, and so that adapters can read what they put in upstream headers. The
/// struct is deliberately not `#[non_exhaustive]`: it is a plain record, and building it field by
/// field is its constructor. [`Session::new`] builds a minimal one.
///
/// Tokens are [`Secret`]s: the `Debug` output of a session never shows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The `sub` claim: the provider's stable identifier for the user.
    #[serde(rename = "sub")]
    pub subject: String,
    /// The `iss` claim of the ID token the session was built from.
    #[serde(rename = "iss")]
    pub issuer: String,
    /// The `email` claim, when the provider sent one.
    #[serde(rename = "em", default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The `email_verified` claim: `None` when the provider did not send it.
    #[serde(rename = "ev", default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// The `name` claim.
    #[serde(rename = "nm", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The `preferred_username` claim.
    #[serde(rename = "pu", default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Group names, read from the configured groups claim
    /// (see [`crate::authorization::groups_from_claims`]).
    #[serde(rename = "gr", default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Role names (see [`crate::authorization::IdentityClaims::roles`]).
    #[serde(rename = "ro", default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The user id from a configured user-id claim other than `sub`
    /// ([`crate::authorization::IdentityClaims::user_id`]); see [`Session::user_id`].
    #[serde(rename = "ui", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Further claims that the configuration asks to keep (for claim rules and upstream headers).
    #[serde(rename = "xc", default, skip_serializing_if = "Map::is_empty")]
    pub extra_claims: Map<String, Value>,
    /// The access token, when the provider issued one.
    #[serde(
        rename = "at",
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_secret"
    )]
    pub access_token: Option<Secret>,
    /// The refresh token, when the provider issued one.
    #[serde(
        rename = "rt",
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_secret"
    )]
    pub refresh_token: Option<Secret>,
    /// The raw ID token, kept as the `id_token_hint` for RP-initiated logout.
    #[serde(
        rename = "it",
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_secret"
    )]
    pub id_token: Option<Secret>,
    /// When the access token expires (from `expires_in`), when known.
    #[serde(
        rename = "ax",
        default,
        skip_serializing_if = "Option::is_none",
        with = "optional_unix_time"
    )]
    pub access_token_expires_at: Option<UnixTime>,
    /// When the session itself ends, whatever happens to its tokens.
    #[serde(rename = "exp", with = "unix_time")]
    pub expires_at: UnixTime,
    /// The provider's session id (`sid`), matched by back-channel logout.
    #[serde(rename = "sid", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the user signed in.
    #[serde(rename = "iat", with = "unix_time")]
    pub created_at: UnixTime,
}

/// The tokens a refresh-token grant returned, to be applied with [`Session::apply_refresh`].
///
/// The caller has already validated the response (and any new ID token) before building this.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RefreshedTokens {
    /// The new access token.
    pub access_token: Secret,
    /// A new refresh token, when the provider rotated it; `None` keeps the old one.
    pub refresh_token: Option<Secret>,
    /// A new ID token, when the provider sent one; `None` keeps the old one.
    pub id_token: Option<Secret>,
    /// When the new access token expires, when the provider said (`expires_in`).
    pub access_token_expires_at: Option<UnixTime>,
}

impl RefreshedTokens {
    /// A refreshed token set holding only a new access token and its expiry.
    pub fn new(access_token: Secret, access_token_expires_at: Option<UnixTime>) -> Self {
        RefreshedTokens {
            access_token,
            refresh_token: None,
            id_token: None,
            access_token_expires_at,
        }
    }

    /// Adds the rotated refresh token.
    #[must_use]
    pub fn with_refresh_token(mut self, refresh_token: Secret) -> Self {
        self.refresh_token = Some(refresh_token);
        self
    }

    /// Adds the new (already validated) ID token.
    #[must_use]
    pub fn with_id_token(mut self, id_token: Secret) -> Self {
        self.id_token = Some(id_token);
        self
    }
}

impl Session {
    /// A session with only the required fields set; everything optional is empty.
    pub fn new(
        subject: impl Into<String>,
        issuer: impl Into<String>,
        created_at: UnixTime,
        expires_at: UnixTime,
    ) -> Self {
        Session {
            subject: subject.into(),
            issuer: issuer.into(),
            email: None,
            email_verified: None,
            name: None,
            preferred_username: None,
            groups: Vec::new(),
            roles: Vec::new(),
            user_id: None,
            extra_claims: Map::new(),
            access_token: None,
            refresh_token: None,
            id_token: None,
            access_token_expires_at: None,
            expires_at,
            sid: None,
            created_at,
        }
    }

    /// Whether the session has ended: `now` is at or past [`Session::expires_at`].
    pub fn is_expired(&self, now: UnixTime) -> bool {
        now >= self.expires_at
    }

    /// Whether the access token should be refreshed now: there is a refresh token to use, the
    /// access token's expiry is known, and `now` is within `margin` of it (or past it).
    ///
    /// A session without a refresh token, or whose access token has no known expiry, is never
    /// due: there is nothing to refresh with, or nothing says the token is ageing. Such a session
    /// lives until [`Session::expires_at`].
    pub fn refresh_due(&self, now: UnixTime, margin: Duration) -> bool {
        match (&self.refresh_token, self.access_token_expires_at) {
            (Some(_), Some(expires_at)) => now >= expires_at.saturating_sub(margin),
            _ => false,
        }
    }

    /// Whether the access token has expired (`now` at or past its known expiry). An access token
    /// without a known expiry is never reported expired.
    pub fn access_token_expired(&self, now: UnixTime) -> bool {
        self.access_token_expires_at
            .is_some_and(|expires_at| now >= expires_at)
    }

    /// Replaces the tokens with a refreshed set. A missing new refresh token or ID token keeps the
    /// old one (providers that do not rotate refresh tokens omit it); the access token and its
    /// expiry are always replaced. The session's own expiry does not move: a refresh keeps the
    /// user signed in no longer than the session lifetime allows.
    pub fn apply_refresh(&mut self, refreshed: RefreshedTokens) {
        self.access_token = Some(refreshed.access_token);
        self.access_token_expires_at = refreshed.access_token_expires_at;
        if let Some(refresh_token) = refreshed.refresh_token {
            self.refresh_token = Some(refresh_token);
        }
        if let Some(id_token) = refreshed.id_token {
            self.id_token = Some(id_token);
        }
    }

    /// The view of this session that authorization rules evaluate. Its claims are
    /// [`Session::extra_claims`]: claim rules can only see claims the configuration keeps.
    pub fn identity(&self) -> Identity<'_> {
        Identity {
            subject: &self.subject,
            email: self.email.as_deref(),
            email_verified: self.email_verified,
            groups: Cow::Borrowed(&self.groups),
            roles: Cow::Borrowed(&self.roles),
            claims: &self.extra_claims,
            client_id: None,
        }
    }

    /// The user id shown to upstreams: the configured user-id claim's value when there was one,
    /// otherwise the subject.
    pub fn user_id(&self) -> &str {
        self.user_id.as_deref().unwrap_or(&self.subject)
    }
}

/// Serde for `UnixTime` as a number of seconds.
mod unix_time {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::time::UnixTime;

    pub(super) fn serialize<S: Serializer>(time: &UnixTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(time.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UnixTime, D::Error> {
        u64::deserialize(d).map(UnixTime::from_secs)
    }
}

/// Serde for `Option<UnixTime>` as an optional number of seconds.
mod optional_unix_time {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::time::UnixTime;

    pub(super) fn serialize<S: Serializer>(
        time: &Option<UnixTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match time {
            Some(time) => s.serialize_some(&time.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<UnixTime>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(UnixTime::from_secs))
    }
}

/// Serde for `Option<Secret>`: the sealed cookie is the only place a token is written out.
mod optional_secret {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::secret::Secret;

    pub(super) fn serialize<S: Serializer>(
        secret: &Option<Secret>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match secret {
            Some(secret) => s.serialize_some(secret.expose()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(Secret::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session_with_tokens() -> Session {
        let mut session = Session::new(
            "user-1",
            "https://op.example",
            UnixTime::from_secs(1_000),
            UnixTime::from_secs(10_000),
        );
        session.access_token = Some(Secret::new("access-1"));
        session.refresh_token = Some(Secret::new("refresh-1"));
        session.id_token = Some(Secret::new("id-1"));
        session.access_token_expires_at = Some(UnixTime::from_secs(2_000));
        session
    }

    #[test]
    fn refresh_is_due_within_the_margin_of_access_token_expiry() {
        let session = session_with_tokens();
        let margin = Duration::from_secs(60);
        assert!(!session.refresh_due(UnixTime::from_secs(1_939), margin));
        assert!(session.refresh_due(UnixTime::from_secs(1_940), margin));
        assert!(session.refresh_due(UnixTime::from_secs(2_500), margin));
        assert!(session.refresh_due(UnixTime::from_secs(2_000), Duration::ZERO));
        assert!(!session.refresh_due(UnixTime::from_secs(1_999), Duration::ZERO));
    }

    #[test]
    fn refresh_is_never_due_without_refresh_token_or_known_expiry() {
        let mut no_refresh_token = session_with_tokens();
        no_refresh_token.refresh_token = None;
        assert!(!no_refresh_token.refresh_due(UnixTime::from_secs(5_000), Duration::ZERO));

        let mut no_expiry = session_with_tokens();
        no_expiry.access_token_expires_at = None;
        assert!(!no_expiry.refresh_due(UnixTime::from_secs(5_000), Duration::ZERO));
        assert!(!no_expiry.access_token_expired(UnixTime::from_secs(5_000)));
    }

    #[test]
    fn margin_larger_than_the_clock_saturates() {
        let session = session_with_tokens();
        assert!(session.refresh_due(UnixTime::EPOCH, Duration::from_secs(u64::MAX)));
    }

    #[test]
    fn session_and_access_token_expiry() {
        let session = session_with_tokens();
        assert!(!session.is_expired(UnixTime::from_secs(9_999)));
        assert!(session.is_expired(UnixTime::from_secs(10_000)));
        assert!(!session.access_token_expired(UnixTime::from_secs(1_999)));
        assert!(session.access_token_expired(UnixTime::from_secs(2_000)));
    }

    #[test]
    fn refresh_without_new_refresh_token_keeps_the_old_one() {
        let mut session = session_with_tokens();
        session.apply_refresh(RefreshedTokens::new(
            Secret::new("access-2"),
            Some(UnixTime::from_secs(3_000)),
        ));
        assert_eq!(session.access_token, Some(Secret::new("access-2")));
        assert_eq!(session.refresh_token, Some(Secret::new("refresh-1")));
        assert_eq!(session.id_token, Some(Secret::new("id-1")));
        assert_eq!(
            session.access_token_expires_at,
            Some(UnixTime::from_secs(3_000))
        );
        assert_eq!(session.expires_at, UnixTime::from_secs(10_000));
    }

    #[test]
    fn refresh_with_rotated_tokens_replaces_them() {
        let mut session = session_with_tokens();
        session.apply_refresh(
            RefreshedTokens::new(Secret::new("access-2"), None)
                .with_refresh_token(Secret::new("refresh-2"))
                .with_id_token(Secret::new("id-2")),
        );
        assert_eq!(session.refresh_token, Some(Secret::new("refresh-2")));
        assert_eq!(session.id_token, Some(Secret::new("id-2")));
        assert_eq!(session.access_token_expires_at, None);
    }

    #[test]
    fn debug_output_hides_tokens() {
        let debug = format!("{:?}", session_with_tokens());
        assert!(!debug.contains("access-1"), "{debug}");
        assert!(!debug.contains("refresh-1"), "{debug}");
        assert!(debug.contains("Secret(***)"), "{debug}");
    }

    #[test]
    fn serializes_compactly_and_round_trips() {
        let minimal = Session::new(
            "u",
            "https://op.example",
            UnixTime::from_secs(1),
            UnixTime::from_secs(2),
        );
        let json = serde_json::to_string(&minimal).unwrap();
        assert_eq!(
            json,
            r#"{"sub":"u","iss":"https://op.example","exp":2,"iat":1}"#
        );
        let mut full = session_with_tokens();
        full.email = Some("a@example.com".into());
        full.email_verified = Some(true);
        full.groups = vec!["admins".into()];
        full.extra_claims
            .insert("tenant".into(), Value::String("t1".into()));
        full.sid = Some("sid-1".into());
        let json = serde_json::to_string(&full).unwrap();
        assert_eq!(serde_json::from_str::<Session>(&json).unwrap(), full);
    }

    #[test]
    fn identity_view_borrows_the_session() {
        let mut session = session_with_tokens();
        session.email = Some("a@example.com".into());
        session.email_verified = Some(true);
        session.groups = vec!["admins".into()];
        let identity = session.identity();
        assert_eq!(identity.subject, "user-1");
        assert_eq!(identity.email, Some("a@example.com"));
        assert_eq!(identity.email_verified, Some(true));
        assert_eq!(identity.groups.as_ref(), ["admins".to_owned()]);
        assert!(matches!(identity.groups, Cow::Borrowed(_)));
    }
}
