//! The ID token at the end of a login or a refresh: validated by
//! [`crate::validation::validate`], then checked here for what only a login knows (`nonce`,
//! `at_hash`, `auth_time` against `max_age`) or what only a refresh knows (same `iss` and `sub`
//! as the original, OpenID Connect Core §12.2).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::LoginExpectation;
use super::token::TokenResponse;
use crate::ErrorKind;
use crate::jwks::KeySet;
use crate::secret::constant_time_eq;
use crate::session::{RefreshedTokens, Session};
use crate::validation::{self, Claims, Policy, PolicyError, ValidatedToken, ValidationError};
use crate::{Algorithm, Issuer, Secret, UnixTime};

/// The validation policy for ID tokens of `client_id` from `issuer`: `aud` must contain the
/// client, `azp` must be the client when present (and is required with several audiences),
/// and `sub` and `iat` are required (OpenID Connect Core §2).
pub fn id_token_policy(issuer: Issuer, client_id: &str) -> Result<Policy, PolicyError> {
    Policy::builder()
        .issuer(issuer)
        .audience(client_id)
        .require_azp(client_id)
        .require_claim("sub")
        .require_claim("iat")
        .build()
}

/// A finished login: the validated ID token's claims and the tokens, ready to become a
/// [`Session`] with [`LoginOutcome::into_session`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LoginOutcome {
    /// The ID token's validated claims.
    pub claims: Claims,
    /// The subject (`sub`), always present.
    pub subject: String,
    /// The raw ID token (the `id_token_hint` of a later logout).
    pub id_token: Secret,
    /// The access token.
    pub access_token: Secret,
    /// The refresh token, when issued.
    pub refresh_token: Option<Secret>,
    /// When the access token expires, when the provider said.
    pub access_token_expires_at: Option<UnixTime>,
    /// Where to send the browser now.
    pub return_to: String,
    /// When the login completed.
    pub completed_at: UnixTime,
}

impl LoginOutcome {
    /// A session for this login that lasts `lifetime` from its completion. Groups are left
    /// empty: read them with [`crate::authorization`] from the claims the configuration names.
    pub fn into_session(self, lifetime: Duration) -> Session {
        let mut session = Session::new(
            self.subject,
            self.claims.iss.clone(),
            self.completed_at,
            self.completed_at.saturating_add(lifetime),
        );
        session.email = self.claims.email.clone();
        session.email_verified = self.claims.email_verified;
        session.name = self.claims.name.clone();
        session.preferred_username = self.claims.preferred_username.clone();
        session.sid = self.claims.sid.clone();
        session.access_token = Some(self.access_token);
        session.refresh_token = self.refresh_token;
        session.id_token = Some(self.id_token);
        session.access_token_expires_at = self.access_token_expires_at;
        session
    }
}

/// Why the ID token of a login or refresh was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// The token response has no ID token.
    #[error("the token response has no id_token")]
    Missing,
    /// Signature, issuer, audience, azp or time checks failed.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A claim OpenID Connect requires of every ID token is absent.
    #[error("the ID token has no {name}")]
    ClaimMissing {
        /// `sub` or `iat`.
        name: &'static str,
    },
    /// The ID token has no `nonce` although the login sent one.
    #[error("the ID token has no nonce")]
    NonceMissing,
    /// The `nonce` is not the one of this login (a replayed or injected token).
    #[error("the ID token's nonce does not match the login")]
    NonceMismatch,
    /// `at_hash` does not match the access token (a substituted access token).
    #[error("the ID token's at_hash does not match the access token")]
    AccessTokenHashMismatch,
    /// `max_age` was requested and the ID token has no `auth_time`.
    #[error("the ID token has no auth_time although max_age was requested")]
    AuthTimeMissing,
    /// The user authenticated longer ago than `max_age` allows.
    #[error("the user authenticated at {auth_time}, more than {}s before {now}", .max_age.as_secs())]
    AuthenticationTooOld {
        /// The `auth_time` claim.
        auth_time: UnixTime,
        /// The requested `max_age`.
        max_age: Duration,
        /// The time of the check.
        now: UnixTime,
    },
    /// A refreshed ID token names another issuer than the original.
    #[error("the refreshed ID token's issuer {received:?} differs from {expected:?}")]
    RefreshIssuerChanged {
        /// The original `iss`.
        expected: String,
        /// The new `iss`.
        received: String,
    },
    /// A refreshed ID token names another subject than the original.
    #[error("the refreshed ID token's subject {received:?} differs from {expected:?}")]
    RefreshSubjectChanged {
        /// The original `sub`.
        expected: String,
        /// The new `sub`.
        received: String,
    },
}

impl IdTokenError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            IdTokenError::Missing => ErrorKind::IdTokenMissing,
            IdTokenError::Invalid(e) => e.kind(),
            IdTokenError::ClaimMissing { .. } => ErrorKind::IdTokenClaimMissing,
            IdTokenError::NonceMissing => ErrorKind::NonceMissing,
            IdTokenError::NonceMismatch => ErrorKind::NonceMismatch,
            IdTokenError::AccessTokenHashMismatch => ErrorKind::AtHashMismatch,
            IdTokenError::AuthTimeMissing => ErrorKind::AuthTimeMissing,
            IdTokenError::AuthenticationTooOld { .. } => ErrorKind::AuthenticationTooOld,
            IdTokenError::RefreshIssuerChanged { .. } => ErrorKind::RefreshIssuerChanged,
            IdTokenError::RefreshSubjectChanged { .. } => ErrorKind::RefreshSubjectChanged,
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Validates the ID token of a code exchange and completes the login.
///
/// `policy` is normally [`id_token_policy`]; `keys` the provider's current key set (on
/// [`ValidationError::UnknownKid`], fetch the keys again and retry — see
/// [`ValidationError::is_unknown_kid`]).
pub fn finish_login(
    expectation: &LoginExpectation,
    tokens: TokenResponse,
    keys: &KeySet,
    policy: &Policy,
    now: UnixTime,
) -> Result<LoginOutcome, IdTokenError> {
    let id_token = tokens.id_token.clone().ok_or(IdTokenError::Missing)?;
    let validated = validation::validate(id_token.expose(), keys, policy, now)?;
    let subject = required_id_token_claims(&validated)?;
    let nonce = validated
        .claims
        .nonce
        .as_deref()
        .ok_or(IdTokenError::NonceMissing)?;
    if !constant_time_eq(nonce.as_bytes(), expectation.nonce.expose().as_bytes()) {
        return Err(IdTokenError::NonceMismatch);
    }
    check_access_token_hash(&validated, &tokens.access_token)?;
    if let Some(max_age) = expectation.max_age {
        let auth_time = validated
            .claims
            .auth_time
            .ok_or(IdTokenError::AuthTimeMissing)?;
        if now
            > auth_time
                .saturating_add(max_age)
                .saturating_add(policy.leeway())
        {
            return Err(IdTokenError::AuthenticationTooOld {
                auth_time,
                max_age,
                now,
            });
        }
    }
    Ok(LoginOutcome {
        subject,
        claims: validated.claims,
        id_token,
        access_token_expires_at: tokens.access_token_expires_at(now),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        return_to: expectation.return_to.clone(),
        completed_at: now,
    })
}

/// Validates a refresh answer for `session` and gives the tokens to apply with
/// [`Session::apply_refresh`] (a missing new refresh token keeps the old one there).
///
/// A new ID token, when present, must pass `policy` and name the same `iss` and `sub` as the
/// session (OpenID Connect Core §12.2); its `nonce`, if any, is not checked, since refreshes
/// carry none of their own.
pub fn finish_refresh(
    session: &Session,
    tokens: TokenResponse,
    keys: &KeySet,
    policy: &Policy,
    now: UnixTime,
) -> Result<RefreshedTokens, IdTokenError> {
    let expires_at = tokens.access_token_expires_at(now);
    let mut refreshed = RefreshedTokens::new(tokens.access_token.clone(), expires_at);
    if let Some(refresh_token) = tokens.refresh_token {
        refreshed = refreshed.with_refresh_token(refresh_token);
    }
    if let Some(id_token) = tokens.id_token {
        let validated = validation::validate(id_token.expose(), keys, policy, now)?;
        let subject = required_id_token_claims(&validated)?;
        if validated.claims.iss != session.issuer {
            return Err(IdTokenError::RefreshIssuerChanged {
                expected: session.issuer.clone(),
                received: validated.claims.iss,
            });
        }
        if subject != session.subject {
            return Err(IdTokenError::RefreshSubjectChanged {
                expected: session.subject.clone(),
                received: subject,
            });
        }
        check_access_token_hash(&validated, &tokens.access_token)?;
        refreshed = refreshed.with_id_token(id_token);
    }
    Ok(refreshed)
}

fn required_id_token_claims(validated: &ValidatedToken) -> Result<String, IdTokenError> {
    if validated.claims.iat.is_none() {
        return Err(IdTokenError::ClaimMissing { name: "iat" });
    }
    validated
        .claims
        .sub
        .clone()
        .ok_or(IdTokenError::ClaimMissing { name: "sub" })
}

/// Checks `at_hash`, when present: the left half of the hash of the access token, with the hash
/// of the ID token's signature algorithm (OpenID Connect Core §3.1.3.6; SHA-512 for Ed25519).
fn check_access_token_hash(
    validated: &ValidatedToken,
    access_token: &Secret,
) -> Result<(), IdTokenError> {
    let Some(at_hash) = &validated.claims.at_hash else {
        return Ok(());
    };
    let expected = access_token_hash(validated.header.alg, access_token.expose());
    if constant_time_eq(at_hash.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(IdTokenError::AccessTokenHashMismatch)
    }
}

/// The `at_hash` of `access_token` for an ID token signed with `alg`.
pub fn access_token_hash(alg: Algorithm, access_token: &str) -> String {
    use aws_lc_rs::digest;
    let name = alg.as_str();
    let hash = if name.ends_with("384") {
        &digest::SHA384
    } else if name.ends_with("512") || name == "EdDSA" {
        &digest::SHA512
    } else {
        &digest::SHA256
    };
    let digest = digest::digest(hash, access_token.as_bytes());
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(bytes.get(..bytes.len() / 2).unwrap_or(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_openid_connect_core_example() {
        // OpenID Connect Core, appendix A.3: access token and at_hash of an RS256 ID token.
        assert_eq!(
            access_token_hash(
                Algorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn at_hash_uses_the_algorithms_hash() {
        assert_eq!(access_token_hash(Algorithm::ES384, "t").len(), 32);
        assert_eq!(access_token_hash(Algorithm::EdDSA, "t").len(), 43);
        assert_eq!(access_token_hash(Algorithm::PS256, "t").len(), 22);
    }
}
