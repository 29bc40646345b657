//! Who may pass once authenticated: allow-lists of emails, email domains, groups, roles and claim
//! values, and which claims name the user ([`IdentityClaims`]).
//!
//! Rules evaluate against an [`Identity`], a small view that both a browser
//! [`crate::session::Session`] ([`crate::session::Session::identity`]) and the claims of a
//! validated bearer token ([`Identity::from_claims`]) produce, so that the login layer and the
//! bearer layer decide alike. A denied identity gets a typed [`Denied`] reason.
//!
//! How the rules combine:
//! - An identity whose `email_verified` is `false` is refused whenever it carries an email, unless
//!   [`AuthorizationRules::allow_unverified_email`] is set.
//! - When emails or email domains are listed, the email must be present, well formed (exactly one
//!   unquoted `@`), verified (`email_verified: true`, an absent claim counts as unverified), and
//!   either listed itself or in a listed domain. Domains match exactly; a leading dot
//!   (`.company.com`) also admits subdomains. A mere suffix never matches: `evilcompany.com` is not
//!   `company.com`.
//! - When groups are listed, the identity must be in at least one. When roles are listed, the
//!   identity must hold at least one; when both are listed, one allowed group or one allowed role
//!   admits (as oauth2-proxy's `--allowed-group` and `--allowed-role` combine).
//! - Every claim requirement must hold.
//! - A token issued to a listed client ([`AuthorizationRules::with_allowed_clients`]: a CI job's
//!   `client_credentials` token, which names no person) passes the email, domain, group and
//!   role rules; claim requirements still hold. The client is read from `client_id`, else `azp`, else
//!   `appid` (Entra ID v1). Sessions name no client.
//!
//! Roles are read where Keycloak and Entra ID put them: the top-level `roles` claim (Entra ID app
//! roles), `realm_access.roles` (Keycloak realm roles) and `resource_access.<client>.roles`
//! (Keycloak client roles) for the one client [`IdentityClaims::with_role_client`] names.
//!
//! An empty rule set admits every authenticated identity (still refusing unverified emails).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::ErrorKind;
use crate::session::Session;

/// What authorization rules look at: the parts of a session or of bearer-token claims that decide
/// access.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Identity<'a> {
    /// The `sub` claim (empty when a bearer token had none).
    pub subject: &'a str,
    /// The `email` claim.
    pub email: Option<&'a str>,
    /// The `email_verified` claim; `None` when absent.
    pub email_verified: Option<bool>,
    /// Group names.
    pub groups: Cow<'a, [String]>,
    /// Role names (see [`IdentityClaims::roles`]); empty unless the caller read them.
    pub roles: Cow<'a, [String]>,
    /// Claims available to [`ClaimRequirement`]s.
    pub claims: &'a Map<String, Value>,
    /// The client a bearer token was issued to (`client_id`, `azp` or `appid`); `None` for
    /// sessions.
    pub client_id: Option<&'a str>,
}

impl<'a> Identity<'a> {
    /// An identity from its parts, for callers whose claims are not a JSON map.
    pub fn new(
        subject: &'a str,
        email: Option<&'a str>,
        email_verified: Option<bool>,
        groups: Cow<'a, [String]>,
        claims: &'a Map<String, Value>,
    ) -> Self {
        Identity {
            subject,
            email,
            email_verified,
            groups,
            roles: Cow::Borrowed(&[]),
            claims,
            client_id: None,
        }
    }

    /// The same identity holding these roles.
    #[must_use]
    pub fn with_roles(mut self, roles: Cow<'a, [String]>) -> Self {
        self.roles = roles;
        self
    }

    /// This identity, naming the client its token was issued to.
    #[must_use]
    pub fn with_client_id(mut self, client_id: Option<&'a str>) -> Self {
        self.client_id = client_id;
        self
    }

    /// The identity of a validated token's claims. Groups come from `groups_claim` (see
    /// [`groups_from_claims`]). `email_verified` is read as a boolean, or as the strings
    /// `"true"`/`"false"` that some providers send.
    ///
    /// Roles are read with the default [`IdentityClaims`] (no client's roles); use
    /// [`Identity::from_claims_named`] to honour a configured e-mail claim and role client.
    pub fn from_claims(claims: &'a Map<String, Value>, groups_claim: &str) -> Self {
        Identity::from_claims_named(claims, groups_claim, &IdentityClaims::default())
    }

    /// The identity of a validated token's claims, with the e-mail read from
    /// [`IdentityClaims::email_claim`] and the roles from [`IdentityClaims::roles`].
    /// `email_verified` only speaks for the `email` claim: with another e-mail claim it is
    /// taken as absent, so e-mail rules then need
    /// [`AuthorizationRules::insecure_allow_unverified_email`].
    pub fn from_claims_named(
        claims: &'a Map<String, Value>,
        groups_claim: &str,
        names: &IdentityClaims,
    ) -> Self {
        Identity {
            subject: claims.get("sub").and_then(Value::as_str).unwrap_or(""),
            email: names.email(claims),
            email_verified: names.email_verified(claims),
            groups: Cow::Owned(groups_from_claims(claims, groups_claim)),
            roles: Cow::Owned(names.roles(claims)),
            claims,
            client_id: client_of_claims(claims),
        }
    }
}

/// Which claims name the user: the e-mail address, the user id shown to upstreams, and whose
/// client roles count (oauth2-proxy's `--oidc-email-claim`, `--user-id-claim` and the client of
/// `--allowed-role`).
///
/// Names may be dotted paths into nested objects, as in [`groups_from_claims`]. The defaults are
/// the standard claims: `email` and `sub`, and no client's roles.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdentityClaims {
    /// The claim holding the e-mail address (default `email`).
    pub email_claim: String,
    /// The claim holding the user id shown to upstreams (default `sub`).
    pub user_id_claim: String,
    /// The client whose `resource_access.<client>.roles` count as roles (default none).
    pub role_client: Option<String>,
}

impl Default for IdentityClaims {
    fn default() -> Self {
        IdentityClaims {
            email_claim: "email".to_owned(),
            user_id_claim: "sub".to_owned(),
            role_client: None,
        }
    }
}

impl IdentityClaims {
    /// The standard claims: `email`, `sub`, no client roles.
    pub fn new() -> Self {
        IdentityClaims::default()
    }

    /// Reads the e-mail address from `claim` instead of `email`.
    #[must_use]
    pub fn with_email_claim(mut self, claim: impl Into<String>) -> Self {
        self.email_claim = claim.into();
        self
    }

    /// Reads the user id from `claim` instead of `sub`.
    #[must_use]
    pub fn with_user_id_claim(mut self, claim: impl Into<String>) -> Self {
        self.user_id_claim = claim.into();
        self
    }

    /// Counts the roles of this client (`resource_access.<client>.roles`, Keycloak's client
    /// roles). The client id is matched exactly, dots included.
    #[must_use]
    pub fn with_role_client(mut self, client: impl Into<String>) -> Self {
        self.role_client = Some(client.into());
        self
    }

    /// The e-mail address: the configured claim, when it is a string.
    pub fn email<'c>(&self, claims: &'c Map<String, Value>) -> Option<&'c str> {
        claim_at_path(claims, &self.email_claim).and_then(Value::as_str)
    }

    /// The `email_verified` claim (a boolean, or the strings `"true"`/`"false"`), when the e-mail
    /// claim is `email`; `None` otherwise, since it does not speak for other claims.
    pub fn email_verified(&self, claims: &Map<String, Value>) -> Option<bool> {
        if self.email_claim != "email" {
            return None;
        }
        match claims.get("email_verified") {
            Some(Value::Bool(verified)) => Some(*verified),
            Some(Value::String(text)) if text == "true" => Some(true),
            Some(Value::String(text)) if text == "false" => Some(false),
            _ => None,
        }
    }

    /// The user id: the configured claim when it is a non-empty string or a number (some
    /// providers number their users), otherwise `None`.
    pub fn user_id(&self, claims: &Map<String, Value>) -> Option<String> {
        match claim_at_path(claims, &self.user_id_claim)? {
            Value::String(text) if !text.is_empty() => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    }

    /// The roles: the top-level `roles` claim, `realm_access.roles`, and, when a role client is
    /// configured, `resource_access.<client>.roles`; each a string (split on spaces and commas)
    /// or an array of strings. Duplicates are dropped, first occurrence kept.
    pub fn roles(&self, claims: &Map<String, Value>) -> Vec<String> {
        let nested = |outer: &str, inner: &str| {
            claims
                .get(outer)
                .and_then(Value::as_object)
                .and_then(|object| object.get(inner))
        };
        let client_roles = self.role_client.as_deref().and_then(|client| {
            nested("resource_access", client)
                .and_then(Value::as_object)
                .and_then(|access| access.get("roles"))
        });
        let mut roles: Vec<String> = Vec::new();
        for source in [
            claims.get("roles"),
            nested("realm_access", "roles"),
            client_roles,
        ]
        .into_iter()
        .flatten()
        {
            for role in names_in(source) {
                if !roles.iter().any(|known| known == role) {
                    roles.push(role.to_owned());
                }
            }
        }
        roles
    }

    /// Puts the configured e-mail claim, the user id and the roles of `claims` (the ID token's,
    /// merged with userinfo's where used) into a freshly built session.
    pub fn apply_to_session(&self, session: &mut Session, claims: &Map<String, Value>) {
        if self.email_claim != "email" {
            session.email = self.email(claims).map(str::to_owned);
            session.email_verified = None;
        }
        if self.user_id_claim != "sub" {
            session.user_id = self.user_id(claims);
        }
        session.roles = self.roles(claims);
    }
}

/// The client a token was issued to: `client_id` (RFC 9068, RFC 7662), else `azp` (OpenID
/// Connect), else `appid` (Entra ID v1 tokens).
pub fn client_of_claims(claims: &Map<String, Value>) -> Option<&str> {
    ["client_id", "azp", "appid"]
        .iter()
        .find_map(|name| claims.get(*name).and_then(Value::as_str))
}

/// Reads group names from the claim named `claim`: a string (one group, or several separated by
/// spaces or commas) or an array of strings (other elements are skipped). A dotted name
/// (`realm_access.roles`) walks into nested objects, unless a top-level claim has that exact name.
/// Anything else yields no groups.
pub fn groups_from_claims(claims: &Map<String, Value>, claim: &str) -> Vec<String> {
    claim_at_path(claims, claim)
        .map(|value| names_in(value).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A claim that must carry one of the accepted values.
///
/// The claim holds when its value equals one of [`ClaimRequirement::any_of`], or when it is an
/// array one of whose elements does. The claim is found by name; a dotted name walks into
/// nested objects as in [`groups_from_claims`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ClaimRequirement {
    /// The claim's name or dotted path.
    pub claim: String,
    /// The accepted values (JSON: strings, numbers, booleans).
    pub any_of: Vec<Value>,
}

impl ClaimRequirement {
    /// A requirement that `claim` holds one of `any_of`.
    pub fn new(claim: impl Into<String>, any_of: impl IntoIterator<Item = Value>) -> Self {
        ClaimRequirement {
            claim: claim.into(),
            any_of: any_of.into_iter().collect(),
        }
    }

    /// Whether `claims` satisfy this requirement.
    pub fn is_met_by(&self, claims: &Map<String, Value>) -> bool {
        match claim_at_path(claims, &self.claim) {
            Some(Value::Array(items)) => items.iter().any(|item| self.any_of.contains(item)),
            Some(value) => self.any_of.contains(value),
            None => false,
        }
    }
}

/// The rules that decide whether an authenticated identity may pass. Build with
/// [`AuthorizationRules::new`] and the `with_*`/`allow_*` methods.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct AuthorizationRules {
    /// Emails admitted one by one (compared without regard to ASCII case).
    pub allowed_emails: Vec<String>,
    /// Email domains admitted: `company.com` exactly, `.company.com` also its subdomains.
    pub allowed_email_domains: Vec<String>,
    /// Groups, any one of which admits.
    pub allowed_groups: Vec<String>,
    /// Roles, any one of which admits (as does an allowed group, when groups are listed too).
    pub allowed_roles: Vec<String>,
    /// Which claims name the user; not a rule itself, but carried with the rules so that every
    /// front-end reads identities alike.
    pub identity_claims: IdentityClaims,
    /// Claim requirements, all of which must hold.
    pub required_claims: Vec<ClaimRequirement>,
    /// Clients whose tokens pass the email, domain and group rules (machine identities).
    pub allowed_clients: Vec<String>,
    /// Admit emails whose `email_verified` claim is false or absent.
    ///
    /// # Security warning
    /// With this set, anyone who can register an unverified address at the provider passes an
    /// email or domain rule for that address.
    pub allow_unverified_email: bool,
}

/// Why an identity was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// The email is not verified (`email_verified` false, or absent where an email rule applies).
    #[error("email {email:?} is not verified by the provider")]
    EmailNotVerified {
        /// The unverified email.
        email: String,
    },
    /// Email rules are configured but the identity has no email.
    #[error("no email claim, but access is limited to listed emails or domains")]
    MissingEmail,
    /// The email is not a single address with exactly one unquoted `@` and a domain.
    #[error("email {email:?} is malformed")]
    MalformedEmail {
        /// The email as presented.
        email: String,
    },
    /// Neither the email nor its domain is listed.
    #[error("email {email:?} is not allowed")]
    EmailNotAllowed {
        /// The refused email.
        email: String,
    },
    /// The identity is in none of the listed groups.
    #[error("not a member of any allowed group (member of {groups:?})")]
    NotInAllowedGroup {
        /// The groups the identity does have.
        groups: Vec<String>,
    },
    /// Roles are listed and the identity holds none of them (nor an allowed group, when groups
    /// are listed too).
    #[error("holds none of the allowed roles (holds {roles:?})")]
    NotInAllowedRole {
        /// The roles the identity does hold.
        roles: Vec<String>,
    },
    /// A claim requirement did not hold.
    #[error("claim {claim:?} does not have an accepted value")]
    ClaimMismatch {
        /// The claim's name or path.
        claim: String,
    },
}

impl Denied {
    /// What kind of error this is, for a program to branch on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Denied::EmailNotVerified { .. } => ErrorKind::EmailNotVerified,
            Denied::MissingEmail => ErrorKind::MissingEmail,
            Denied::MalformedEmail { .. } => ErrorKind::MalformedEmail,
            Denied::EmailNotAllowed { .. } => ErrorKind::EmailNotAllowed,
            Denied::NotInAllowedGroup { .. } => ErrorKind::NotInAllowedGroup,
            Denied::NotInAllowedRole { .. } => ErrorKind::NotInAllowedRole,
            Denied::ClaimMismatch { .. } => ErrorKind::ClaimMismatch,
        }
    }

    /// A stable snake_case code for this reason.
    pub fn code(&self) -> &'static str {
        self.kind().code()
    }
}

impl AuthorizationRules {
    /// Rules that admit every authenticated identity with a verified (or no) email.
    pub fn new() -> Self {
        AuthorizationRules::default()
    }

    /// Admits these emails.
    #[must_use]
    pub fn with_allowed_emails(
        mut self,
        emails: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allowed_emails
            .extend(emails.into_iter().map(Into::into));
        self
    }

    /// Admits emails in these domains (`company.com` exactly, `.company.com` with subdomains).
    #[must_use]
    pub fn with_allowed_email_domains(
        mut self,
        domains: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allowed_email_domains
            .extend(domains.into_iter().map(Into::into));
        self
    }

    /// Requires membership in one of these groups.
    #[must_use]
    pub fn with_allowed_groups(
        mut self,
        groups: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allowed_groups
            .extend(groups.into_iter().map(Into::into));
        self
    }

    /// Requires one of these roles (see the module docs for how roles and groups combine).
    #[must_use]
    pub fn with_allowed_roles(
        mut self,
        roles: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allowed_roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// Reads identities with these claim names.
    #[must_use]
    pub fn with_identity_claims(mut self, names: IdentityClaims) -> Self {
        self.identity_claims = names;
        self
    }

    /// Admits tokens issued to these clients past the email, domain and group rules: machine
    /// identities such as a CI job's `client_credentials` token, which carry no email or groups.
    /// Claim requirements still apply.
    ///
    /// Any token issued to a listed client passes, including a person's token obtained through
    /// it: list clients that only machines use, never the login client of this service.
    #[must_use]
    pub fn with_allowed_clients(
        mut self,
        clients: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allowed_clients
            .extend(clients.into_iter().map(Into::into));
        self
    }

    /// Whether `identity` is a listed client's ([`Self::with_allowed_clients`]).
    pub fn admits_client(&self, identity: &Identity<'_>) -> bool {
        identity
            .client_id
            .is_some_and(|client| self.allowed_clients.iter().any(|allowed| allowed == client))
    }

    /// Requires a claim to hold one of the given values.
    #[must_use]
    pub fn with_required_claim(mut self, requirement: ClaimRequirement) -> Self {
        self.required_claims.push(requirement);
        self
    }

    /// Admits unverified emails. See the security warning on
    /// [`AuthorizationRules::allow_unverified_email`].
    #[must_use]
    pub fn insecure_allow_unverified_email(mut self) -> Self {
        self.allow_unverified_email = true;
        self
    }

    /// Decides whether `identity` may pass; a refusal says why.
    pub fn evaluate(&self, identity: &Identity<'_>) -> Result<(), Denied> {
        if let (Some(email), Some(false)) = (identity.email, identity.email_verified)
            && !self.allow_unverified_email
        {
            return Err(Denied::EmailNotVerified {
                email: email.to_owned(),
            });
        }
        let machine = self.admits_client(identity);
        if !machine && (!self.allowed_emails.is_empty() || !self.allowed_email_domains.is_empty()) {
            self.check_email(identity)?;
        }
        let in_group = identity
            .groups
            .iter()
            .any(|group| self.allowed_groups.contains(group));
        let has_role = identity
            .roles
            .iter()
            .any(|role| self.allowed_roles.contains(role));
        if !machine && !self.allowed_roles.is_empty() && !has_role && !in_group {
            return Err(Denied::NotInAllowedRole {
                roles: identity.roles.to_vec(),
            });
        }
        if !machine && !self.allowed_groups.is_empty() && self.allowed_roles.is_empty() && !in_group
        {
            return Err(Denied::NotInAllowedGroup {
                groups: identity.groups.to_vec(),
            });
        }
        if let Some(unmet) = self
            .required_claims
            .iter()
            .find(|requirement| !requirement.is_met_by(identity.claims))
        {
            return Err(Denied::ClaimMismatch {
                claim: unmet.claim.clone(),
            });
        }
        Ok(())
    }

    fn check_email(&self, identity: &Identity<'_>) -> Result<(), Denied> {
        let email = identity.email.ok_or(Denied::MissingEmail)?;
        let domain = email_domain(email).ok_or_else(|| Denied::MalformedEmail {
            email: email.to_owned(),
        })?;
        if identity.email_verified != Some(true) && !self.allow_unverified_email {
            return Err(Denied::EmailNotVerified {
                email: email.to_owned(),
            });
        }
        let listed = self
            .allowed_emails
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(email));
        let in_domain = self
            .allowed_email_domains
            .iter()
            .any(|allowed| domain_matches(allowed, domain));
        if listed || in_domain {
            Ok(())
        } else {
            Err(Denied::EmailNotAllowed {
                email: email.to_owned(),
            })
        }
    }
}

/// Whether `host` matches the allow-list entry `allowed`, without regard to ASCII case: exactly,
/// or, when the entry starts with a dot, as that domain or any subdomain of it. A bare suffix
/// never matches (`evilcompany.com` does not match `company.com` nor `.company.com`).
pub fn domain_matches(allowed: &str, host: &str) -> bool {
    if host.is_empty() {
        return false;
    }
    match allowed.strip_prefix('.') {
        Some(parent) if !parent.is_empty() => {
            if host.eq_ignore_ascii_case(parent) {
                return true;
            }
            // `host` must be `label.parent`: split it where `parent` would start.
            let Some(split) = host.len().checked_sub(parent.len()) else {
                return false;
            };
            match (host.get(..split), host.get(split..)) {
                (Some(head), Some(tail)) => {
                    head.len() > 1 && head.ends_with('.') && tail.eq_ignore_ascii_case(parent)
                }
                _ => false,
            }
        }
        Some(_) => false,
        None => !allowed.is_empty() && host.eq_ignore_ascii_case(allowed),
    }
}

/// The domain of an email address with exactly one unquoted `@`, a non-empty local part and a
/// plausible domain (letters, digits, `-` and `.`, no empty labels); `None` otherwise.
pub fn email_domain(email: &str) -> Option<&str> {
    let mut in_quotes = false;
    let mut escaped = false;
    let mut at = None;
    for (index, byte) in email.bytes().enumerate() {
        if byte.is_ascii_control() || byte == b' ' {
            return None;
        }
        if escaped {
            escaped = false;
            continue;
        }
        match byte {
            b'\\' if in_quotes => escaped = true,
            b'"' => in_quotes = !in_quotes,
            b'@' if !in_quotes => {
                if at.is_some() {
                    return None;
                }
                at = Some(index);
            }
            _ => {}
        }
    }
    if in_quotes {
        return None;
    }
    let at = at?;
    let (local, domain) = (email.get(..at)?, email.get(at + 1..)?);
    let domain_is_plausible = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    (!local.is_empty() && domain_is_plausible).then_some(domain)
}

/// The names a claim value holds: a string split on spaces and commas, or an array's strings.
fn names_in(value: &Value) -> Box<dyn Iterator<Item = &str> + '_> {
    match value {
        Value::String(text) => Box::new(text.split([' ', ',']).filter(|name| !name.is_empty())),
        Value::Array(items) => Box::new(items.iter().filter_map(Value::as_str)),
        _ => Box::new(std::iter::empty()),
    }
}

/// The claim named `path`, or, when no claim has that exact name, the value reached by walking
/// its dot-separated parts through nested objects.
fn claim_at_path<'c>(claims: &'c Map<String, Value>, path: &str) -> Option<&'c Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let mut parts = path.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("test claims must be an object"),
        }
    }

    fn identity<'a>(
        email: Option<&'a str>,
        verified: Option<bool>,
        groups: &[&str],
        claims: &'a Map<String, Value>,
    ) -> Identity<'a> {
        Identity::new(
            "s",
            email,
            verified,
            Cow::Owned(groups.iter().map(|g| (*g).to_owned()).collect()),
            claims,
        )
    }

    #[test]
    fn listed_clients_pass_email_domain_and_group_rules_but_not_claim_rules() {
        let ci = claims(json!({"sub": "ci-bot", "client_id": "ci-bot", "scope": "api"}));
        let rules = AuthorizationRules::new()
            .with_allowed_email_domains(["company.com"])
            .with_allowed_groups(["ml"])
            .with_allowed_clients(["ci-bot"]);
        let machine = Identity::from_claims(&ci, "groups");
        assert_eq!(machine.client_id, Some("ci-bot"));
        assert!(rules.admits_client(&machine));
        assert_eq!(rules.evaluate(&machine), Ok(()));
        let other = claims(json!({"sub": "x", "azp": "airflow"}));
        let refused = rules.evaluate(&Identity::from_claims(&other, "groups"));
        assert_eq!(refused.unwrap_err().code(), "missing_email");
        let with_claim_rule =
            rules.with_required_claim(ClaimRequirement::new("scope", [Value::from("admin")]));
        assert_eq!(
            with_claim_rule.evaluate(&machine).unwrap_err().code(),
            "claim_mismatch"
        );
    }

    #[test]
    fn the_client_is_client_id_then_azp_then_appid() {
        let both = claims(json!({"client_id": "a", "azp": "b", "appid": "c"}));
        assert_eq!(client_of_claims(&both), Some("a"));
        let azp = claims(json!({"azp": "b", "appid": "c"}));
        assert_eq!(client_of_claims(&azp), Some("b"));
        let appid = claims(json!({"appid": "c"}));
        assert_eq!(client_of_claims(&appid), Some("c"));
        let none = claims(json!({"client_id": 7}));
        assert_eq!(client_of_claims(&none), None);
        let session_like = Identity::new("s", None, None, Cow::Owned(Vec::new()), &none);
        assert!(
            !AuthorizationRules::new()
                .with_allowed_clients(["7"])
                .admits_client(&session_like)
        );
    }

    #[test]
    fn empty_rules_admit_any_identity_with_verified_or_no_email() {
        let empty = Map::new();
        let rules = AuthorizationRules::new();
        assert_eq!(rules.evaluate(&identity(None, None, &[], &empty)), Ok(()));
        assert_eq!(
            rules.evaluate(&identity(Some("a@b.c"), Some(true), &[], &empty)),
            Ok(())
        );
        assert_eq!(
            rules.evaluate(&identity(Some("a@b.c"), None, &[], &empty)),
            Ok(()),
            "an absent email_verified only matters where email rules apply"
        );
    }

    #[test]
    fn explicitly_unverified_email_is_refused_unless_allowed() {
        let empty = Map::new();
        let id = identity(Some("a@b.c"), Some(false), &[], &empty);
        let refused = AuthorizationRules::new().evaluate(&id).unwrap_err();
        assert_eq!(refused.code(), "email_not_verified");
        assert_eq!(
            AuthorizationRules::new()
                .insecure_allow_unverified_email()
                .evaluate(&id),
            Ok(())
        );
    }

    #[test]
    fn email_rules_require_a_verified_email() {
        let empty = Map::new();
        let rules = AuthorizationRules::new().with_allowed_email_domains(["company.com"]);
        assert_eq!(
            rules.evaluate(&identity(None, None, &[], &empty)),
            Err(Denied::MissingEmail)
        );
        assert_eq!(
            rules
                .evaluate(&identity(Some("a@company.com"), None, &[], &empty))
                .unwrap_err()
                .code(),
            "email_not_verified"
        );
        assert_eq!(
            rules.evaluate(&identity(Some("a@company.com"), Some(true), &[], &empty)),
            Ok(())
        );
        let lenient = rules.insecure_allow_unverified_email();
        assert_eq!(
            lenient.evaluate(&identity(Some("a@company.com"), None, &[], &empty)),
            Ok(())
        );
    }

    #[test]
    fn listed_emails_match_without_case() {
        let empty = Map::new();
        let rules = AuthorizationRules::new().with_allowed_emails(["Alice@Example.com"]);
        assert_eq!(
            rules.evaluate(&identity(
                Some("alice@example.com"),
                Some(true),
                &[],
                &empty
            )),
            Ok(())
        );
        assert_eq!(
            rules.evaluate(&identity(Some("bob@example.com"), Some(true), &[], &empty)),
            Err(Denied::EmailNotAllowed {
                email: "bob@example.com".into()
            })
        );
    }

    #[test]
    fn domains_match_exactly_or_by_leading_dot_never_by_suffix() {
        assert!(domain_matches("company.com", "company.com"));
        assert!(domain_matches("company.com", "COMPANY.com"));
        assert!(!domain_matches("company.com", "evilcompany.com"));
        assert!(!domain_matches("company.com", "sub.company.com"));
        assert!(domain_matches(".company.com", "sub.company.com"));
        assert!(domain_matches(".company.com", "a.b.company.com"));
        assert!(domain_matches(".company.com", "company.com"));
        assert!(!domain_matches(".company.com", "evilcompany.com"));
        assert!(!domain_matches(".company.com", ".company.com"));
        assert!(!domain_matches(".", "company.com"));
        assert!(!domain_matches("", ""));
        assert!(!domain_matches("company.com", ""));
    }

    #[test]
    fn email_domain_requires_exactly_one_unquoted_at() {
        assert_eq!(email_domain("a@company.com"), Some("company.com"));
        assert_eq!(email_domain("\"a@b\"@company.com"), Some("company.com"));
        assert_eq!(email_domain("\"a\\\"@b\"@company.com"), Some("company.com"));
        assert_eq!(email_domain("a@evil.com@company.com"), None);
        assert_eq!(email_domain("a@company.com@"), None);
        assert_eq!(email_domain("company.com"), None);
        assert_eq!(email_domain("@company.com"), None);
        assert_eq!(email_domain("a@"), None);
        assert_eq!(email_domain("a@company..com"), None);
        assert_eq!(email_domain("a@company.com."), None);
        assert_eq!(email_domain("a@comp any.com"), None);
        assert_eq!(email_domain("a@company.com\n"), None);
        assert_eq!(email_domain("\"unterminated@company.com"), None);
    }

    #[test]
    fn malformed_email_is_refused_by_domain_rules() {
        let empty = Map::new();
        let rules = AuthorizationRules::new().with_allowed_email_domains(["company.com"]);
        let refused = rules
            .evaluate(&identity(
                Some("attacker@evil.com@company.com"),
                Some(true),
                &[],
                &empty,
            ))
            .unwrap_err();
        assert_eq!(refused.code(), "malformed_email");
        let suffix = rules
            .evaluate(&identity(
                Some("a@evilcompany.com"),
                Some(true),
                &[],
                &empty,
            ))
            .unwrap_err();
        assert_eq!(suffix.code(), "email_not_allowed");
    }

    #[test]
    fn emails_and_domains_admit_either_way() {
        let empty = Map::new();
        let rules = AuthorizationRules::new()
            .with_allowed_emails(["guest@partner.org"])
            .with_allowed_email_domains([".company.com"]);
        for email in ["guest@partner.org", "a@company.com", "a@eu.company.com"] {
            assert_eq!(
                rules.evaluate(&identity(Some(email), Some(true), &[], &empty)),
                Ok(()),
                "{email}"
            );
        }
        assert!(
            rules
                .evaluate(&identity(
                    Some("other@partner.org"),
                    Some(true),
                    &[],
                    &empty
                ))
                .is_err()
        );
    }

    #[test]
    fn groups_require_one_membership() {
        let empty = Map::new();
        let rules = AuthorizationRules::new().with_allowed_groups(["admins", "ml"]);
        assert_eq!(
            rules.evaluate(&identity(None, None, &["users", "ml"], &empty)),
            Ok(())
        );
        assert_eq!(
            rules.evaluate(&identity(None, None, &["users"], &empty)),
            Err(Denied::NotInAllowedGroup {
                groups: vec!["users".into()]
            })
        );
    }

    #[test]
    fn claim_requirements_must_all_hold() {
        let with_claims = claims(json!({
            "tenant": "t1",
            "roles": ["reader", "writer"],
            "realm_access": {"roles": ["admin"]},
            "level": 3
        }));
        let rules = AuthorizationRules::new()
            .with_required_claim(ClaimRequirement::new("tenant", [json!("t1"), json!("t2")]))
            .with_required_claim(ClaimRequirement::new("roles", [json!("writer")]))
            .with_required_claim(ClaimRequirement::new(
                "realm_access.roles",
                [json!("admin")],
            ))
            .with_required_claim(ClaimRequirement::new("level", [json!(3)]));
        assert_eq!(
            rules.evaluate(&identity(None, None, &[], &with_claims)),
            Ok(())
        );
        let stricter = rules.with_required_claim(ClaimRequirement::new("missing", [json!(true)]));
        assert_eq!(
            stricter.evaluate(&identity(None, None, &[], &with_claims)),
            Err(Denied::ClaimMismatch {
                claim: "missing".into()
            })
        );
    }

    #[test]
    fn groups_come_from_strings_arrays_and_nested_claims() {
        let c = claims(json!({
            "groups": ["a", 1, "b"],
            "single": "solo",
            "spaced": "x y,z",
            "realm_access": {"roles": ["admin"]},
            "dotted.name": ["literal"],
            "number": 7
        }));
        assert_eq!(groups_from_claims(&c, "groups"), ["a", "b"]);
        assert_eq!(groups_from_claims(&c, "single"), ["solo"]);
        assert_eq!(groups_from_claims(&c, "spaced"), ["x", "y", "z"]);
        assert_eq!(groups_from_claims(&c, "realm_access.roles"), ["admin"]);
        assert_eq!(groups_from_claims(&c, "dotted.name"), ["literal"]);
        assert!(groups_from_claims(&c, "number").is_empty());
        assert!(groups_from_claims(&c, "absent").is_empty());
        assert!(groups_from_claims(&c, "realm_access.absent.deeper").is_empty());
    }

    #[test]
    fn identity_from_bearer_claims() {
        let c = claims(json!({
            "sub": "svc",
            "email": "a@company.com",
            "email_verified": "true",
            "cognito:groups": ["ops"]
        }));
        let id = Identity::from_claims(&c, "cognito:groups");
        assert_eq!(id.subject, "svc");
        assert_eq!(id.email, Some("a@company.com"));
        assert_eq!(id.email_verified, Some(true));
        assert_eq!(id.groups.as_ref(), ["ops".to_owned()]);

        let unverified = claims(json!({"email": "a@b.c", "email_verified": false}));
        assert_eq!(
            Identity::from_claims(&unverified, "groups").email_verified,
            Some(false)
        );
        let odd = claims(json!({"sub": 5, "email_verified": "yes"}));
        let odd_id = Identity::from_claims(&odd, "groups");
        assert_eq!(odd_id.subject, "");
        assert_eq!(odd_id.email_verified, None);
    }

    #[test]
    fn roles_come_from_entra_keycloak_realm_and_the_configured_client() {
        let c = claims(json!({
            "roles": ["Task.Write", "admin"],
            "realm_access": {"roles": ["admin", "offline_access"]},
            "resource_access": {
                "mlflow.internal": {"roles": ["editor"]},
                "other": {"roles": ["superuser"]}
            }
        }));
        assert_eq!(
            IdentityClaims::new().roles(&c),
            ["Task.Write", "admin", "offline_access"]
        );
        assert_eq!(
            IdentityClaims::new()
                .with_role_client("mlflow.internal")
                .roles(&c),
            ["Task.Write", "admin", "offline_access", "editor"]
        );
        assert!(
            !IdentityClaims::new()
                .with_role_client("mlflow")
                .roles(&c)
                .contains(&"editor".to_owned()),
            "a client id is matched exactly, not as a dotted path"
        );
        let odd = claims(json!({
            "roles": "a b,c",
            "realm_access": ["not", "an", "object"],
            "resource_access": {"x": {"roles": 5}}
        }));
        assert_eq!(
            IdentityClaims::new().with_role_client("x").roles(&odd),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn allowed_roles_admit_holders_and_combine_with_groups_as_either() {
        let c = claims(json!({"realm_access": {"roles": ["viewer"]}}));
        let id = Identity::from_claims(&c, "groups");
        assert_eq!(id.roles.as_ref(), ["viewer".to_owned()]);
        let rules = AuthorizationRules::new().with_allowed_roles(["viewer", "admin"]);
        assert_eq!(rules.evaluate(&id), Ok(()));
        let strict = AuthorizationRules::new().with_allowed_roles(["admin"]);
        assert_eq!(
            strict.evaluate(&id),
            Err(Denied::NotInAllowedRole {
                roles: vec!["viewer".into()]
            })
        );
        let either = strict.clone().with_allowed_groups(["ml"]);
        let empty = Map::new();
        let member = identity(None, None, &["ml"], &empty);
        assert_eq!(either.evaluate(&member), Ok(()));
        assert_eq!(
            either.evaluate(&id).unwrap_err().code(),
            "not_in_allowed_role"
        );
        let admin = identity(None, None, &[], &empty).with_roles(Cow::Owned(vec!["admin".into()]));
        assert_eq!(either.evaluate(&admin), Ok(()));
        assert_eq!(
            AuthorizationRules::new()
                .with_allowed_groups(["ml"])
                .evaluate(&admin)
                .unwrap_err()
                .code(),
            "not_in_allowed_group",
            "roles do not stand in for groups when no role is listed"
        );
    }

    #[test]
    fn a_listed_machine_client_passes_the_role_rule_as_it_passes_the_group_rule() {
        let ci = claims(json!({"sub": "ci-bot", "client_id": "ci-bot"}));
        let rules = AuthorizationRules::new()
            .with_allowed_roles(["editor"])
            .with_allowed_clients(["ci-bot"]);
        assert_eq!(
            rules.evaluate(&Identity::from_claims(&ci, "groups")),
            Ok(())
        );
        let other = claims(json!({"sub": "x", "client_id": "other"}));
        assert_eq!(
            rules
                .evaluate(&Identity::from_claims(&other, "groups"))
                .unwrap_err()
                .code(),
            "not_in_allowed_role"
        );
    }

    #[test]
    fn configured_email_and_user_id_claims() {
        let c = claims(json!({
            "sub": "0f3a",
            "email": "personal@gmail.example",
            "email_verified": true,
            "upn": "ada@company.com",
            "employee": {"id": 4711}
        }));
        let names = IdentityClaims::new()
            .with_email_claim("upn")
            .with_user_id_claim("employee.id");
        let id = Identity::from_claims_named(&c, "groups", &names);
        assert_eq!(id.email, Some("ada@company.com"));
        assert_eq!(
            id.email_verified, None,
            "email_verified speaks for `email` only"
        );
        assert_eq!(id.subject, "0f3a");
        assert_eq!(names.user_id(&c).as_deref(), Some("4711"));
        assert_eq!(IdentityClaims::new().user_id(&c).as_deref(), Some("0f3a"));
        assert_eq!(
            IdentityClaims::new()
                .with_user_id_claim("missing")
                .user_id(&c),
            None
        );
        let rules = AuthorizationRules::new()
            .with_allowed_email_domains(["company.com"])
            .with_identity_claims(names.clone());
        assert_eq!(
            rules.evaluate(&id).unwrap_err().code(),
            "email_not_verified"
        );
        assert_eq!(
            rules.insecure_allow_unverified_email().evaluate(&id),
            Ok(())
        );
        let standard = Identity::from_claims(&c, "groups");
        assert_eq!(standard.email, Some("personal@gmail.example"));
        assert_eq!(standard.email_verified, Some(true));
    }

    #[test]
    fn sessions_take_the_configured_identity_claims() {
        let c = claims(json!({
            "sub": "0f3a",
            "upn": "ada@company.com",
            "oid": "user-oid",
            "roles": ["Reader"]
        }));
        let mut session = Session::new(
            "0f3a",
            "https://op.example",
            crate::UnixTime::from_secs(1),
            crate::UnixTime::from_secs(2),
        );
        session.email = Some("other@example.com".into());
        session.email_verified = Some(true);
        IdentityClaims::new().apply_to_session(&mut session, &c);
        assert_eq!(session.email.as_deref(), Some("other@example.com"));
        assert_eq!(session.user_id(), "0f3a");
        assert_eq!(session.roles, ["Reader"]);
        IdentityClaims::new()
            .with_email_claim("upn")
            .with_user_id_claim("oid")
            .apply_to_session(&mut session, &c);
        assert_eq!(session.email.as_deref(), Some("ada@company.com"));
        assert_eq!(session.email_verified, None);
        assert_eq!(session.user_id(), "user-oid");
        assert_eq!(session.identity().roles.as_ref(), ["Reader".to_owned()]);
        let allowed = AuthorizationRules::new().with_allowed_roles(["Reader"]);
        assert_eq!(allowed.evaluate(&session.identity()), Ok(()));
    }

    #[test]
    fn every_denial_has_a_distinct_code() {
        let reasons = [
            Denied::EmailNotVerified { email: "e".into() },
            Denied::MissingEmail,
            Denied::MalformedEmail { email: "e".into() },
            Denied::EmailNotAllowed { email: "e".into() },
            Denied::NotInAllowedGroup { groups: vec![] },
            Denied::NotInAllowedRole { roles: vec![] },
            Denied::ClaimMismatch { claim: "c".into() },
        ];
        let codes: std::collections::HashSet<_> = reasons.iter().map(Denied::code).collect();
        assert_eq!(codes.len(), reasons.len());
    }
}
