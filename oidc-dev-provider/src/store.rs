//! The provider's memory: browser sessions, pending logins, authorization codes, grants and the
//! tokens issued from them, and the rules that tie them together (a reused code or refresh
//! token revokes everything issued from its grant).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use oidc_core::random::random_url_safe;
use oidc_core::{RandomSource, UnixTime};

/// The operating system's generator, through aws-lc.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct OsRandom;

impl RandomSource for OsRandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if aws_lc_rs::rand::fill(dest).is_err() {
            // Without a working generator every code and token would be guessable; no answer
            // this provider could give would be safe.
            tracing::error!("the system random generator failed; aborting");
            std::process::abort();
        }
    }
}

/// A fresh unguessable value: 32 random bytes, base64url.
pub(crate) fn random_token() -> String {
    random_url_safe(&mut OsRandom, 32)
}

/// A signed-in browser.
#[derive(Clone, Debug)]
pub(crate) struct BrowserSession {
    /// Public session id, the `sid` claim.
    pub(crate) sid: String,
    pub(crate) username: String,
    pub(crate) auth_time: UnixTime,
    /// Clients that received a code in this session: the ones to notify on logout.
    pub(crate) clients: BTreeSet<String>,
}

/// An authorization request that passed the checks and waits for the user.
#[derive(Clone, Debug)]
pub(crate) struct AuthorizationRequest {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scope: String,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) login_hint: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct CodeRecord {
    pub(crate) request: AuthorizationRequest,
    pub(crate) username: String,
    pub(crate) sid: String,
    pub(crate) auth_time: UnixTime,
    pub(crate) expires: UnixTime,
    /// The grant created when the code was redeemed; `Some` means the code is spent.
    pub(crate) redeemed_into: Option<u64>,
}

/// Who a grant speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Subject {
    User {
        username: String,
        sid: Option<String>,
        auth_time: UnixTime,
    },
    /// `client_credentials`: the client itself.
    Client,
}

/// One authorization: everything issued from one code (and its refreshes) or one
/// client-credentials request.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) subject: Subject,
    pub(crate) scope: String,
    pub(crate) revoked: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct AccessRecord {
    pub(crate) grant_id: u64,
    pub(crate) jti: String,
    pub(crate) issued: UnixTime,
    pub(crate) expires: UnixTime,
    pub(crate) audience: Vec<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct RefreshRecord {
    pub(crate) grant_id: u64,
    pub(crate) issued: UnixTime,
    pub(crate) expires: UnixTime,
    /// Rotated away: presenting it again is a replay.
    pub(crate) used: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct IdTokenRecord {
    pub(crate) client_id: String,
    pub(crate) sid: Option<String>,
}

/// A pending device authorization (RFC 8628).
#[derive(Clone, Debug)]
pub(crate) struct DeviceRecord {
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) user_code: String,
    pub(crate) expires: UnixTime,
    /// Set when a user approved it; taken by the token endpoint.
    pub(crate) approved_by: Option<String>,
}

/// Everything the provider remembers, behind one lock.
#[derive(Default)]
pub(crate) struct Store {
    /// By cookie value (the secret), not by the public sid.
    pub(crate) sessions: HashMap<String, BrowserSession>,
    pub(crate) pending_logins: HashMap<String, (AuthorizationRequest, UnixTime)>,
    pub(crate) codes: HashMap<String, CodeRecord>,
    pub(crate) grants: HashMap<u64, Grant>,
    next_grant_id: u64,
    pub(crate) access_tokens: HashMap<String, AccessRecord>,
    pub(crate) refresh_tokens: HashMap<String, RefreshRecord>,
    pub(crate) id_tokens: HashMap<String, IdTokenRecord>,
    /// By device code.
    pub(crate) devices: HashMap<String, DeviceRecord>,
    /// Scripted mode: log this user in without showing the form.
    pub(crate) auto_approve: Option<String>,
    /// Pushed authorization requests by `request_uri`: the authenticated client, the pushed
    /// form body, and when the reference expires.
    pub(crate) pushed_requests: HashMap<String, (String, Vec<u8>, UnixTime)>,
    /// DPoP (RFC 9449): the key thumbprint each bound grant's access tokens carry as `cnf.jkt`.
    pub(crate) dpop_bindings: HashMap<u64, String>,
    /// The `jti`s of DPoP proofs accepted at the token endpoint.
    pub(crate) dpop_jtis: oidc_core::logout::SeenJtis,
}

/// How long a login form stays usable.
pub(crate) const PENDING_LOGIN_LIFETIME: Duration = Duration::from_secs(600);

impl Store {
    /// Opens a browser session; returns the cookie value.
    pub(crate) fn open_session(&mut self, username: &str, now: UnixTime) -> String {
        let cookie = random_token();
        self.sessions.insert(
            cookie.clone(),
            BrowserSession {
                sid: random_url_safe(&mut OsRandom, 16),
                username: username.to_owned(),
                auth_time: now,
                clients: BTreeSet::new(),
            },
        );
        cookie
    }

    /// Remembers a request while the user fills in the form; returns the form's id.
    pub(crate) fn park_login(&mut self, request: AuthorizationRequest, now: UnixTime) -> String {
        self.pending_logins.retain(|_, (_, expires)| *expires > now);
        let id = random_token();
        self.pending_logins.insert(
            id.clone(),
            (request, now.saturating_add(PENDING_LOGIN_LIFETIME)),
        );
        id
    }

    /// Issues a code for the session behind `cookie`.
    pub(crate) fn issue_code(
        &mut self,
        cookie: &str,
        request: AuthorizationRequest,
        now: UnixTime,
        lifetime: Duration,
    ) -> Option<String> {
        let session = self.sessions.get_mut(cookie)?;
        session.clients.insert(request.client_id.clone());
        let record = CodeRecord {
            request,
            username: session.username.clone(),
            sid: session.sid.clone(),
            auth_time: session.auth_time,
            expires: now.saturating_add(lifetime),
            redeemed_into: None,
        };
        self.codes
            .retain(|_, c| c.expires > now || c.redeemed_into.is_some());
        let code = random_token();
        self.codes.insert(code.clone(), record);
        Some(code)
    }

    /// Records a new grant; returns its id.
    pub(crate) fn add_grant(&mut self, grant: Grant) -> u64 {
        self.next_grant_id += 1;
        let id = self.next_grant_id;
        self.grants.insert(id, grant);
        id
    }

    /// Revokes a grant: every access and refresh token issued from it becomes inactive.
    pub(crate) fn revoke_grant(&mut self, grant_id: u64) {
        if let Some(grant) = self.grants.get_mut(&grant_id) {
            grant.revoked = true;
        }
    }

    /// The live grant behind an access token, if the token is active at `now`.
    pub(crate) fn active_access(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Option<(&AccessRecord, &Grant)> {
        let record = self.access_tokens.get(token)?;
        let grant = self.grants.get(&record.grant_id)?;
        (record.expires > now && !grant.revoked).then_some((record, grant))
    }

    /// The live grant behind a refresh token, if the token is active at `now`.
    pub(crate) fn active_refresh(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Option<(&RefreshRecord, &Grant)> {
        let record = self.refresh_tokens.get(token)?;
        let grant = self.grants.get(&record.grant_id)?;
        (record.expires > now && !grant.revoked && !record.used).then_some((record, grant))
    }

    /// Drops expired tokens so that long runs do not grow without bound.
    pub(crate) fn prune(&mut self, now: UnixTime) {
        self.access_tokens.retain(|_, r| r.expires > now);
        self.refresh_tokens.retain(|_, r| r.expires > now);
        self.devices.retain(|_, d| d.expires > now);
    }

    /// Ends every session with public id `sid` (or all sessions of `username`); returns the
    /// ended sessions. Grants tied to those sessions are revoked.
    pub(crate) fn end_sessions(
        &mut self,
        matches: impl Fn(&BrowserSession) -> bool,
    ) -> Vec<BrowserSession> {
        let cookies: Vec<String> = self
            .sessions
            .iter()
            .filter(|(_, s)| matches(s))
            .map(|(c, _)| c.clone())
            .collect();
        let ended: Vec<BrowserSession> = cookies
            .iter()
            .filter_map(|c| self.sessions.remove(c))
            .collect();
        for session in &ended {
            for grant in self.grants.values_mut() {
                if matches!(&grant.subject, Subject::User { sid: Some(sid), .. } if *sid == session.sid)
                {
                    grant.revoked = true;
                }
            }
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AuthorizationRequest {
        AuthorizationRequest {
            client_id: "c".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            scope: "openid".into(),
            state: None,
            nonce: None,
            code_challenge: None,
            login_hint: None,
        }
    }

    #[test]
    fn codes_need_a_session_and_expire_from_the_store() {
        let mut store = Store::default();
        let now = UnixTime::from_secs(1000);
        assert_eq!(
            store.issue_code("nope", request(), now, Duration::from_secs(60)),
            None
        );
        let cookie = store.open_session("alice", now);
        let code = store
            .issue_code(&cookie, request(), now, Duration::from_secs(60))
            .unwrap();
        assert_eq!(store.codes[&code].username, "alice");
        assert!(store.sessions[&cookie].clients.contains("c"));
        let later = now.saturating_add(Duration::from_secs(61));
        store.issue_code(&cookie, request(), later, Duration::from_secs(60));
        assert!(
            !store.codes.contains_key(&code),
            "expired unredeemed codes are dropped"
        );
    }

    #[test]
    fn revoking_a_grant_deactivates_its_tokens() {
        let mut store = Store::default();
        let now = UnixTime::from_secs(1000);
        let grant_id = store.add_grant(Grant {
            client_id: "c".into(),
            subject: Subject::Client,
            scope: String::new(),
            revoked: false,
        });
        store.access_tokens.insert(
            "at".into(),
            AccessRecord {
                grant_id,
                jti: "j".into(),
                issued: now,
                expires: now.saturating_add(Duration::from_secs(60)),
                audience: vec![],
            },
        );
        assert!(store.active_access("at", now).is_some());
        assert!(
            store
                .active_access("at", now.saturating_add(Duration::from_secs(60)))
                .is_none()
        );
        store.revoke_grant(grant_id);
        assert!(store.active_access("at", now).is_none());
    }

    #[test]
    fn ending_a_session_revokes_its_grants() {
        let mut store = Store::default();
        let now = UnixTime::from_secs(1000);
        let cookie = store.open_session("alice", now);
        let sid = store.sessions[&cookie].sid.clone();
        let grant_id = store.add_grant(Grant {
            client_id: "c".into(),
            subject: Subject::User {
                username: "alice".into(),
                sid: Some(sid.clone()),
                auth_time: now,
            },
            scope: String::new(),
            revoked: false,
        });
        let ended = store.end_sessions(|s| s.sid == sid);
        assert_eq!(ended.len(), 1);
        assert!(store.sessions.is_empty());
        assert!(store.grants[&grant_id].revoked);
    }
}
