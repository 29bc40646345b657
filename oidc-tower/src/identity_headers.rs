//! The identity headers the layers hand to the upstream (or to the reverse proxy, for
//! forward-auth), and the removal of every client-sent spelling of them and of our own cookies.
//!
//! Names are compatible with oauth2-proxy: `X-Forwarded-User`, `-Email`, `-Preferred-Username`,
//! `-Groups` and `-Access-Token` towards an upstream, `X-Auth-Request-*` in forward-auth answers.
//! Before any of them is set, every header whose name equals one of them ignoring case and
//! reading `_` as `-` is removed, from both families, so a client cannot smuggle an identity to a
//! WSGI/CGI upstream (which reads `X-Forwarded_User` and `X-Forwarded-User` alike).
//!
//! ```
//! use http::{HeaderMap, HeaderValue};
//! use oidc_tower::identity_headers::{Identity, IdentityHeaders};
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("x_forwarded_user", HeaderValue::from_static("admin"));
//! let identity = Identity::new("u-123").with_email("ada@example.com").with_groups(["ml", "ops"]);
//! IdentityHeaders::upstream().apply(&mut headers, &identity).unwrap();
//! assert_eq!(headers["x-forwarded-user"], "u-123");
//! assert_eq!(headers["x-forwarded-groups"], "ml,ops");
//! assert!(headers.get("x_forwarded_user").is_none());
//! ```

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, header};
use oidc_core::ErrorKind;
use oidc_core::Secret;
use oidc_core::identity_assertion::ASSERTION_HEADER;

use crate::identity_assertion::{IdentityAssertion, IdentityAssertionError};

/// The header families the layers set.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderFamily {
    /// `X-Forwarded-*`: set on the request passed to the upstream.
    Upstream,
    /// `X-Auth-Request-*`: set on a forward-auth answer, for the proxy to copy.
    ForwardAuth,
}

impl HeaderFamily {
    fn names(self) -> &'static FamilyNames {
        match self {
            Self::Upstream => &UPSTREAM_NAMES,
            Self::ForwardAuth => &FORWARD_AUTH_NAMES,
        }
    }
}

/// Every identity header name, lower-case with `-`; any spelling of these is stripped.
pub const IDENTITY_HEADER_NAMES: [&str; 11] = [
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-preferred-username",
    "x-forwarded-groups",
    "x-forwarded-access-token",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-preferred-username",
    "x-auth-request-groups",
    "x-auth-request-access-token",
    oidc_core::identity_assertion::ASSERTION_HEADER,
];

/// Identity headers that other software trusts (Apache `REMOTE_USER` front-ends, Grafana's and
/// Airflow's remote-user modes, WebAuth): the layers never set them, and never pass them on from
/// a client either, in any spelling.
pub const FOREIGN_IDENTITY_HEADER_NAMES: [&str; 7] = [
    "remote-user",
    "x-remote-user",
    "x-remote-email",
    "x-remote-name",
    "x-remote-groups",
    "x-webauth-user",
    "x-webauth-email",
];

/// Who the user is, as the layers tell the upstream. Serializes without the access token.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// The user (the `sub` claim, or a configured claim).
    pub user: String,
    /// The e-mail address, if known.
    pub email: Option<String>,
    /// The preferred username, if known.
    pub preferred_username: Option<String>,
    /// Group names (sent joined with `,`).
    pub groups: Vec<String>,
    /// The access token, passed on only when configured; never serialized.
    #[serde(skip)]
    pub access_token: Option<Secret>,
}

impl Identity {
    /// An identity with only a user.
    pub fn new(user: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            email: None,
            preferred_username: None,
            groups: Vec::new(),
            access_token: None,
        }
    }

    /// With an e-mail address.
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// With a preferred username.
    #[must_use]
    pub fn with_preferred_username(mut self, name: impl Into<String>) -> Self {
        self.preferred_username = Some(name.into());
        self
    }

    /// With groups.
    #[must_use]
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// With an access token.
    #[must_use]
    pub fn with_access_token(mut self, token: Secret) -> Self {
        self.access_token = Some(token);
        self
    }
}

/// An identity value that cannot be sent as a header.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityHeaderError {
    /// The value holds a control character (CR, LF, NUL...) and cannot be a header value.
    #[error("the value for {header} cannot be sent as a header")]
    InvalidValue {
        /// The header that could not be set.
        header: &'static str,
    },
    /// The identity assertion could not be made.
    #[error(transparent)]
    Assertion(#[from] IdentityAssertionError),
}

impl IdentityHeaderError {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidValue { .. } => ErrorKind::IdentityHeaderInvalidValue,
            Self::Assertion(error) => error.kind(),
        }
    }

    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

/// Which identity headers to set, whether to pass tokens on and to vouch with an assertion.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    family: HeaderFamily,
    pass_user: bool,
    pass_access_token: bool,
    pass_authorization_bearer: bool,
    assertion: Option<Arc<IdentityAssertion>>,
}

impl IdentityHeaders {
    /// `X-Forwarded-*` towards an upstream; tokens not passed.
    pub fn upstream() -> Self {
        Self {
            family: HeaderFamily::Upstream,
            pass_user: true,
            pass_access_token: false,
            pass_authorization_bearer: false,
            assertion: None,
        }
    }

    /// `X-Auth-Request-*` in a forward-auth answer; tokens not passed.
    pub fn forward_auth() -> Self {
        Self {
            family: HeaderFamily::ForwardAuth,
            pass_user: true,
            pass_access_token: false,
            pass_authorization_bearer: false,
            assertion: None,
        }
    }

    /// Whether to send the user, email, preferred username and groups (default true); the
    /// tokens follow their own settings.
    #[must_use]
    pub fn pass_user(mut self, pass: bool) -> Self {
        self.pass_user = pass;
        self
    }

    /// Also send the access token in `X-Forwarded-Access-Token` / `X-Auth-Request-Access-Token`.
    #[must_use]
    pub fn pass_access_token(mut self, pass: bool) -> Self {
        self.pass_access_token = pass;
        self
    }

    /// Replace `Authorization` with `Bearer <access token>`. When on, a client's `Authorization`
    /// is always removed, even if there is no access token to put in its place.
    #[must_use]
    pub fn pass_authorization_bearer(mut self, pass: bool) -> Self {
        self.pass_authorization_bearer = pass;
        self
    }

    /// Also send a signed identity assertion in `X-Identity-Assertion` (whatever
    /// [`Self::pass_user`] says), for an upstream that believes nothing it cannot verify.
    #[must_use]
    pub fn identity_assertion(mut self, assertion: Option<Arc<IdentityAssertion>>) -> Self {
        self.assertion = assertion;
        self
    }

    /// The family these headers belong to.
    pub fn family(&self) -> HeaderFamily {
        self.family
    }

    /// Strips every spelling of every identity header, then sets this identity's headers.
    ///
    /// All values are checked before any is set: on error no identity header is present
    /// (fail closed), and `Authorization` is removed if bearer pass-through is on.
    pub fn apply(
        &self,
        headers: &mut HeaderMap,
        identity: &Identity,
    ) -> Result<(), IdentityHeaderError> {
        strip_identity_headers(headers);
        self.apply_to_stripped(headers, identity)
    }

    /// [`Self::apply`] on headers already passed through [`strip_identity_headers`].
    pub(crate) fn apply_to_stripped(
        &self,
        headers: &mut HeaderMap,
        identity: &Identity,
    ) -> Result<(), IdentityHeaderError> {
        if self.pass_authorization_bearer {
            headers.remove(header::AUTHORIZATION);
        }
        let names = self.family.names();
        let mut values: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(6);
        if self.pass_user {
            self.user_values(names, identity, &mut values)?;
        }
        if let Some(assertion) = &self.assertion {
            values.push((
                ASSERTION_HEADER_NAME.clone(),
                assertion.header_value(identity)?,
            ));
        }
        if let Some(token) = &identity.access_token {
            if self.pass_access_token {
                let mut value = header_value(names.access_token.as_str(), token.expose())?;
                value.set_sensitive(true);
                values.push((names.access_token.clone(), value));
            }
            if self.pass_authorization_bearer {
                let mut value =
                    header_value("authorization", &format!("Bearer {}", token.expose()))?;
                value.set_sensitive(true);
                values.push((header::AUTHORIZATION, value));
            }
        }
        for (name, value) in values {
            headers.insert(name, value);
        }
        Ok(())
    }

    fn user_values(
        &self,
        names: &'static FamilyNames,
        identity: &Identity,
        values: &mut Vec<(HeaderName, HeaderValue)>,
    ) -> Result<(), IdentityHeaderError> {
        values.push((
            names.user.clone(),
            header_value(names.user.as_str(), &identity.user)?,
        ));
        if let Some(email) = &identity.email {
            values.push((
                names.email.clone(),
                header_value(names.email.as_str(), email)?,
            ));
        }
        if let Some(name) = &identity.preferred_username {
            let header = names.preferred_username.clone();
            values.push((
                header,
                header_value(names.preferred_username.as_str(), name)?,
            ));
        }
        if !identity.groups.is_empty() {
            let joined = identity.groups.join(",");
            values.push((
                names.groups.clone(),
                header_value(names.groups.as_str(), &joined)?,
            ));
        }
        Ok(())
    }
}

/// Whether a header name is a spelling (any case, `_` for `-`) of an identity header: ours
/// ([`IDENTITY_HEADER_NAMES`]) or one other software trusts ([`FOREIGN_IDENTITY_HEADER_NAMES`]).
pub fn is_identity_header(name: &str) -> bool {
    // Compared byte by byte, `_` read as `-` and ASCII case folded: no allocation, since every
    // request's every header name passes through here.
    let canonical = |byte: u8| {
        if byte == b'_' {
            b'-'
        } else {
            byte.to_ascii_lowercase()
        }
    };
    name.len() <= 40
        && IDENTITY_HEADER_NAMES
            .iter()
            .chain(FOREIGN_IDENTITY_HEADER_NAMES.iter())
            .any(|known| {
                known.len() == name.len()
                    && known
                        .bytes()
                        .zip(name.bytes())
                        .all(|(known, byte)| canonical(byte) == known)
            })
}

/// Removes every spelling of every identity header of both families and of the foreign ones;
/// returns how many names.
pub fn strip_identity_headers(headers: &mut HeaderMap) -> usize {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_identity_header(name.as_str()))
        .cloned()
        .collect();
    for name in &doomed {
        headers.remove(name);
    }
    doomed.len()
}

/// Removes our own cookies from every `Cookie` header; returns how many cookies were removed.
///
/// `is_own` gets each cookie's name. A `Cookie` header without our cookies is kept byte-for-byte;
/// in one with our cookies the others keep their exact bytes, re-joined with `"; "`; a header left
/// empty is removed. Names that are not UTF-8 are never ours.
pub fn strip_own_cookies(headers: &mut HeaderMap, is_own: impl Fn(&str) -> bool) -> usize {
    let mut removed = 0;
    let mut rebuilt: Vec<HeaderValue> = Vec::new();
    for value in headers.get_all(header::COOKIE) {
        let mut kept: Vec<&[u8]> = Vec::new();
        let mut removed_here = 0;
        for pair in value.as_bytes().split(|b| *b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() {
                continue;
            }
            let name = pair
                .split(|b| *b == b'=')
                .next()
                .unwrap_or_default()
                .trim_ascii();
            if std::str::from_utf8(name).is_ok_and(&is_own) {
                removed_here += 1;
            } else {
                kept.push(pair);
            }
        }
        if removed_here == 0 {
            rebuilt.push(value.clone());
            continue;
        }
        removed += removed_here;
        if kept.is_empty() {
            continue;
        }
        let joined = kept.join(&b"; "[..]);
        // The kept bytes come from a valid header value, minus separators: still valid.
        if let Ok(mut new_value) = HeaderValue::from_bytes(&joined) {
            new_value.set_sensitive(value.is_sensitive());
            rebuilt.push(new_value);
        }
    }
    if removed > 0 {
        headers.remove(header::COOKIE);
        for value in rebuilt {
            headers.append(header::COOKIE, value);
        }
    }
    removed
}

/// A cookie-name predicate from a list of prefixes, compared ignoring ASCII case (stripping a
/// look-alike too is harmless; letting one through is not).
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use oidc_tower::identity_headers::{strip_own_cookies, CookiePrefixes};
///
/// let own = CookiePrefixes::new(["__Host-oidc"]);
/// let mut headers = HeaderMap::new();
/// headers.insert("cookie", HeaderValue::from_static("a=1; __Host-oidc.0=xyz; b=2"));
/// assert_eq!(strip_own_cookies(&mut headers, |name| own.matches(name)), 1);
/// assert_eq!(headers["cookie"], "a=1; b=2");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CookiePrefixes {
    prefixes: Vec<String>,
}

impl CookiePrefixes {
    /// Prefixes of our cookie names (e.g. the session cookie name, which also covers its chunks).
    pub fn new<I, S>(prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            prefixes: prefixes.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether `name` starts with one of the prefixes.
    pub fn matches(&self, name: &str) -> bool {
        self.prefixes.iter().any(|prefix| {
            name.get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        })
    }
}

struct FamilyNames {
    user: HeaderName,
    email: HeaderName,
    preferred_username: HeaderName,
    groups: HeaderName,
    access_token: HeaderName,
}

static UPSTREAM_NAMES: FamilyNames = FamilyNames {
    user: HeaderName::from_static("x-forwarded-user"),
    email: HeaderName::from_static("x-forwarded-email"),
    preferred_username: HeaderName::from_static("x-forwarded-preferred-username"),
    groups: HeaderName::from_static("x-forwarded-groups"),
    access_token: HeaderName::from_static("x-forwarded-access-token"),
};

static FORWARD_AUTH_NAMES: FamilyNames = FamilyNames {
    user: HeaderName::from_static("x-auth-request-user"),
    email: HeaderName::from_static("x-auth-request-email"),
    preferred_username: HeaderName::from_static("x-auth-request-preferred-username"),
    groups: HeaderName::from_static("x-auth-request-groups"),
    access_token: HeaderName::from_static("x-auth-request-access-token"),
};

/// The forward-auth identity header names (`X-Auth-Request-*`), then the access token's and
/// the assertion's when asked for: the set a forward-auth answer always carries in full.
pub(crate) fn forward_auth_header_names(
    with_access_token: bool,
    with_assertion: bool,
) -> impl Iterator<Item = &'static HeaderName> {
    let names = &FORWARD_AUTH_NAMES;
    [
        &names.user,
        &names.email,
        &names.preferred_username,
        &names.groups,
    ]
    .into_iter()
    .chain(with_access_token.then_some(&names.access_token))
    .chain(with_assertion.then_some(&ASSERTION_HEADER_NAME))
}

static ASSERTION_HEADER_NAME: HeaderName = HeaderName::from_static(ASSERTION_HEADER);

fn header_value(header: &'static str, text: &str) -> Result<HeaderValue, IdentityHeaderError> {
    HeaderValue::from_bytes(text.as_bytes())
        .map_err(|_| IdentityHeaderError::InvalidValue { header })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_identity() -> Identity {
        Identity::new("sub-1")
            .with_email("ada@example.com")
            .with_preferred_username("ada")
            .with_groups(["admins", "ml"])
            .with_access_token(Secret::new("at-123"))
    }

    fn smuggled() -> HeaderMap {
        let mut headers = HeaderMap::new();
        for name in [
            "x-forwarded-user",
            "X_FORWARDED_USER",
            "x-forwarded_email",
            "X-Forwarded-Preferred_Username",
            "x_forwarded_groups",
            "x-forwarded-access-token",
            "x-auth-request-user",
            "X_Auth_Request_Email",
            "x-auth-request-groups",
            "x-auth_request-access_token",
            "x-auth-request-preferred-username",
        ] {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("root"),
            );
        }
        headers.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        headers.insert("x-forwarded-users", HeaderValue::from_static("kept"));
        headers
    }

    #[test]
    fn client_spellings_are_stripped_and_others_kept() {
        let mut headers = smuggled();
        assert_eq!(strip_identity_headers(&mut headers), 11);
        assert_eq!(headers.len(), 2);
        assert_eq!(headers["x-forwarded-for"], "1.2.3.4");
        assert_eq!(headers["x-forwarded-users"], "kept");
    }

    #[test]
    fn upstream_headers_replace_smuggled_ones() {
        let mut headers = smuggled();
        IdentityHeaders::upstream()
            .apply(&mut headers, &full_identity())
            .unwrap();
        assert_eq!(headers["x-forwarded-user"], "sub-1");
        assert_eq!(headers["x-forwarded-email"], "ada@example.com");
        assert_eq!(headers["x-forwarded-preferred-username"], "ada");
        assert_eq!(headers["x-forwarded-groups"], "admins,ml");
        assert!(headers.get("x-forwarded-access-token").is_none());
        assert!(headers.get("x-auth-request-user").is_none());
        assert_eq!(headers.get_all("x-forwarded-user").iter().count(), 1);
        assert_eq!(headers.len(), 6);
    }

    #[test]
    fn forward_auth_headers_and_token_pass_through() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic eDp5"),
        );
        IdentityHeaders::forward_auth()
            .pass_access_token(true)
            .pass_authorization_bearer(true)
            .apply(&mut headers, &full_identity())
            .unwrap();
        assert_eq!(headers["x-auth-request-user"], "sub-1");
        assert_eq!(headers["x-auth-request-groups"], "admins,ml");
        assert_eq!(headers["x-auth-request-access-token"], "at-123");
        assert!(headers["x-auth-request-access-token"].is_sensitive());
        assert_eq!(headers[header::AUTHORIZATION], "Bearer at-123");
        assert_eq!(headers.get_all(header::AUTHORIZATION).iter().count(), 1);
    }

    #[test]
    fn bearer_pass_through_removes_client_authorization_without_token() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer forged"),
        );
        IdentityHeaders::upstream()
            .pass_authorization_bearer(true)
            .apply(&mut headers, &Identity::new("u"))
            .unwrap();
        assert!(headers.get(header::AUTHORIZATION).is_none());
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn client_authorization_is_kept_when_pass_through_is_off() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer theirs"),
        );
        IdentityHeaders::upstream()
            .apply(&mut headers, &full_identity())
            .unwrap();
        assert_eq!(headers[header::AUTHORIZATION], "Bearer theirs");
    }

    #[test]
    fn invalid_values_fail_closed() {
        let mut headers = smuggled();
        let identity = Identity::new("u").with_email("a@b\r\nX-Admin: 1");
        let err = IdentityHeaders::upstream()
            .apply(&mut headers, &identity)
            .unwrap_err();
        assert_eq!(
            err,
            IdentityHeaderError::InvalidValue {
                header: "x-forwarded-email"
            }
        );
        assert_eq!(err.code(), "identity_header_invalid_value");
        assert!(headers.keys().all(|n| !is_identity_header(n.as_str())));
    }

    #[test]
    fn non_ascii_values_are_sent_as_utf8_bytes() {
        let mut headers = HeaderMap::new();
        IdentityHeaders::upstream()
            .apply(&mut headers, &Identity::new("josé"))
            .unwrap();
        assert_eq!(headers["x-forwarded-user"].as_bytes(), "josé".as_bytes());
    }

    #[test]
    fn is_identity_header_spellings() {
        assert!(is_identity_header("X_Forwarded_Preferred_Username"));
        assert!(is_identity_header("x-auth-request-access-token"));
        assert!(!is_identity_header("x-forwarded-for"));
        assert!(!is_identity_header("x-forwarded-user2"));
        assert!(!is_identity_header(&"x".repeat(100)));
        assert!(is_identity_header("X-AUTH_REQUEST-GROUPS"));
        assert!(!is_identity_header("x-forwarded-usér"));
        assert!(!is_identity_header(""));
        assert!(is_identity_header("REMOTE_USER"));
        assert!(is_identity_header("x_remote_groups"));
        assert!(is_identity_header("X-WebAuth-User"));
        assert!(!is_identity_header("x-remote-addr"));
    }

    fn cookie_headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::COOKIE, HeaderValue::from_static(value));
        }
        headers
    }

    fn cookies(headers: &HeaderMap) -> Vec<&str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }

    #[test]
    fn own_cookies_are_removed_others_kept_exactly() {
        let own = CookiePrefixes::new(["_oidc"]);
        let mut headers = cookie_headers(&["a=1;_oidc_s=x; b=\"q r\";  _OIDC.1=y", "c=3"]);
        assert_eq!(strip_own_cookies(&mut headers, |n| own.matches(n)), 2);
        assert_eq!(cookies(&headers), vec!["a=1; b=\"q r\"", "c=3"]);
    }

    #[test]
    fn cookie_header_without_own_cookies_is_untouched() {
        let own = CookiePrefixes::new(["_oidc"]);
        let mut headers = cookie_headers(&["a=1;b=2 ;  c"]);
        assert_eq!(strip_own_cookies(&mut headers, |n| own.matches(n)), 0);
        assert_eq!(cookies(&headers), vec!["a=1;b=2 ;  c"]);
    }

    #[test]
    fn cookie_header_left_empty_is_removed() {
        let own = CookiePrefixes::new(["_oidc", "csrf"]);
        let mut headers = cookie_headers(&["_oidc=1; csrf_x=2", "d=4"]);
        assert_eq!(strip_own_cookies(&mut headers, |n| own.matches(n)), 2);
        assert_eq!(cookies(&headers), vec!["d=4"]);
        let mut only = cookie_headers(&["_oidc=1"]);
        strip_own_cookies(&mut only, |n| own.matches(n));
        assert!(only.get(header::COOKIE).is_none());
    }

    #[test]
    fn cookie_prefixes_match_ignoring_case_and_never_panic_on_char_boundaries() {
        let own = CookiePrefixes::new(["_oidc"]);
        assert!(own.matches("_OIDC_session"));
        assert!(!own.matches("_oid"));
        assert!(!own.matches("_oi\u{e9}x"));
        assert!(!CookiePrefixes::default().matches("_oidc"));
    }
}
