//! Who is admitted: e-mail domains and addresses, groups, roles and machine clients; the claim
//! names identities are read with; and which bearer tokens are accepted (extra issuers and
//! audiences).

use oidc_core::{IdentityClaims, Issuer};

use super::reader::{Resolver, values};

/// Another issuer whose bearer tokens are accepted, for one audience.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExtraIssuer {
    pub(crate) issuer: Issuer,
    pub(crate) audience: String,
}

/// The allow rules, the claim names and the bearer-token options.
pub(super) struct Access {
    pub(super) any_email_domain: bool,
    pub(super) email_domains: Vec<String>,
    pub(super) allowed_emails: Vec<String>,
    pub(super) allowed_groups: Vec<String>,
    pub(super) allowed_client_ids: Vec<String>,
    pub(super) trusted_client_ids: Vec<String>,
    pub(super) allowed_roles: Vec<String>,
    pub(super) groups_claim: String,
    pub(super) identity_claims: IdentityClaims,
    pub(super) allow_unverified_email: bool,
    pub(super) accept_bearer: bool,
    pub(super) extra_issuers: Vec<ExtraIssuer>,
    pub(super) extra_audiences: Vec<String>,
}

impl Resolver<'_> {
    /// The allow rules (at least one must admit someone), the claim names, and which bearer
    /// tokens are accepted.
    pub(super) fn access(&mut self) -> Access {
        let (any_email_domain, email_domains) = self.email_domains();
        let allowed_emails = self.allowed_emails();
        let allowed_groups: Vec<String> = values(&self.list("allowed-group"));
        let allowed_client_ids: Vec<String> = values(&self.list("allowed-client-id"));
        let trusted_client_ids: Vec<String> = values(&self.list("trusted-client-id"));
        let allowed_roles = self.allowed_roles();
        if !any_email_domain
            && email_domains.is_empty()
            && allowed_emails.is_empty()
            && allowed_groups.is_empty()
            && allowed_roles.is_empty()
            && allowed_client_ids.is_empty()
        {
            self.missing(
                "email-domain",
                "no one would be admitted: give --email-domain (`*` admits every user the provider authenticates), --allowed-email, --authenticated-emails-file, --allowed-group, --allowed-role or --allowed-client-id",
            );
        }
        let groups_claim = self.text_or("oidc-groups-claim", "groups");
        let identity_claims = self.identity_claims();
        let allow_unverified_email = self.bool("insecure-oidc-allow-unverified-email", false);
        let accept_bearer = self.bool("skip-jwt-bearer-tokens", false);
        let extra_issuers = self.extra_issuers();
        if !accept_bearer
            && !extra_issuers.is_empty()
            && let Some(first) = self.list("extra-jwt-issuers").first().cloned()
        {
            self.fail(
                "extra-jwt-issuers",
                &first.source,
                "needs_bearer_tokens",
                "extra issuers only matter with --skip-jwt-bearer-tokens".to_owned(),
            );
        }
        Access {
            any_email_domain,
            email_domains,
            allowed_emails,
            allowed_groups,
            allowed_client_ids,
            trusted_client_ids,
            allowed_roles,
            groups_claim,
            identity_claims,
            allow_unverified_email,
            accept_bearer,
            extra_issuers,
            extra_audiences: values(&self.list("oidc-extra-audience")),
        }
    }

    fn email_domains(&mut self) -> (bool, Vec<String>) {
        let mut any = false;
        let mut domains = Vec::new();
        for s in self.list("email-domain") {
            let value = s.value.trim();
            if value == "*" {
                any = true;
            } else if value.contains('@') || value.contains('*') || value.contains('/') {
                self.fail(
                    "email-domain",
                    &s.source,
                    "invalid_email_domain",
                    format!(
                        "{value:?} is not a domain (example.com, .example.com for subdomains, or *)"
                    ),
                );
            } else {
                domains.push(value.to_owned());
            }
        }
        (any, domains)
    }

    fn allowed_emails(&mut self) -> Vec<String> {
        let mut emails = values(&self.list("allowed-email"));
        if let Some(file) = self.text("authenticated-emails-file").cloned() {
            match std::fs::read_to_string(file.value.trim()) {
                Ok(text) => emails.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_owned),
                ),
                Err(e) => self.fail(
                    "authenticated-emails-file",
                    &file.source,
                    "unreadable_file",
                    format!("cannot read {}: {e}", file.value.trim()),
                ),
            }
        }
        emails
    }

    /// `--allowed-role` values. oauth2-proxy's `client:role` spelling for a client role is
    /// refused rather than read as a role name: the client is named once, by
    /// `--oidc-role-client`.
    fn allowed_roles(&mut self) -> Vec<String> {
        let mut roles = Vec::new();
        for s in self.list("allowed-role") {
            let role = s.value.trim();
            if let Some((client, name)) = role.split_once(':') {
                self.fail(
                    "allowed-role",
                    &s.source,
                    "client_role_spelling",
                    format!(
                        "{role:?}: name the client once with --oidc-role-client={client} and list the role as --allowed-role={name}"
                    ),
                );
            } else if !role.is_empty() {
                roles.push(role.to_owned());
            }
        }
        roles
    }

    /// The e-mail and user-id claims and the role client; each name must be non-empty and free
    /// of whitespace.
    fn identity_claims(&mut self) -> IdentityClaims {
        let mut names = IdentityClaims::new();
        for option in ["oidc-email-claim", "user-id-claim", "oidc-role-client"] {
            let Some(s) = self.text(option).cloned() else {
                continue;
            };
            let value = s.value.trim();
            if value.is_empty() || value.contains(char::is_whitespace) {
                self.fail(
                    option,
                    &s.source,
                    "invalid_claim_name",
                    format!("{:?} is not a claim or client name", s.value),
                );
                continue;
            }
            names = match option {
                "oidc-email-claim" => names.with_email_claim(value),
                "user-id-claim" => names.with_user_id_claim(value),
                _ => names.with_role_client(value),
            };
        }
        names
    }

    fn extra_issuers(&mut self) -> Vec<ExtraIssuer> {
        let mut extra = Vec::new();
        for s in self.list("extra-jwt-issuers") {
            // The issuer is a URL and may contain '=' in its query; the audience is after the
            // last '='.
            let Some((issuer, audience)) = s.value.trim().rsplit_once('=') else {
                self.fail(
                    "extra-jwt-issuers",
                    &s.source,
                    "invalid_extra_issuer",
                    format!("{:?} is not ISSUER=AUDIENCE", s.value),
                );
                continue;
            };
            if audience.is_empty() {
                self.fail(
                    "extra-jwt-issuers",
                    &s.source,
                    "invalid_extra_issuer",
                    format!("{:?} has no audience after '='", s.value),
                );
                continue;
            }
            match Issuer::new(issuer) {
                Ok(issuer) => extra.push(ExtraIssuer {
                    issuer,
                    audience: audience.to_owned(),
                }),
                Err(e) => self.fail("extra-jwt-issuers", &s.source, e.code(), e.to_string()),
            }
        }
        extra
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::settings::ProxySettings;
    use crate::proxy::settings::testing::{errors, flags, minimal};

    #[test]
    fn no_allow_rule_means_no_one_would_get_in() {
        let pairs: Vec<_> = minimal()
            .into_iter()
            .filter(|(n, _)| *n != "email-domain")
            .collect();
        let errs = errors(&pairs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].option, "email-domain");
    }

    #[test]
    fn roles_and_claim_names_reach_the_rules() {
        let pairs: Vec<_> = minimal()
            .into_iter()
            .filter(|(n, _)| *n != "email-domain")
            .chain([
                ("allowed-role", "editor"),
                ("allowed-role", "admin"),
                ("oidc-role-client", "mlflow"),
                ("oidc-email-claim", "upn"),
                ("user-id-claim", "oid"),
            ])
            .collect();
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        let rules = s.authorization_rules();
        assert_eq!(rules.allowed_roles, ["editor", "admin"]);
        assert_eq!(
            rules.identity_claims,
            IdentityClaims::new()
                .with_email_claim("upn")
                .with_user_id_claim("oid")
                .with_role_client("mlflow")
        );
        assert!(
            s.summary()
                .iter()
                .any(|l| l.contains("roles editor, admin"))
        );
        assert!(
            s.summary().iter().any(
                |l| l == "e-mail from `upn`, user id from `oid`, roles also of client `mlflow`"
            )
        );
        let mut spelled = minimal();
        spelled.push(("allowed-role", "mlflow:editor"));
        spelled.push(("user-id-claim", "bad claim"));
        let codes: Vec<&str> = errors(&spelled).iter().map(|e| e.code).collect();
        assert_eq!(codes, ["client_role_spelling", "invalid_claim_name"]);
    }

    #[test]
    fn extra_issuers_split_at_the_last_equals_sign() {
        let mut pairs = minimal();
        pairs.push(("extra-jwt-issuers", "https://ci.example.com=mlflow-api"));
        assert_eq!(errors(&pairs)[0].code, "needs_bearer_tokens");
        pairs.push(("skip-jwt-bearer-tokens", "true"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert_eq!(s.extra_issuers[0].issuer.as_str(), "https://ci.example.com");
        assert_eq!(s.extra_issuers[0].audience, "mlflow-api");
        pairs.push(("extra-jwt-issuers", "https://ci.example.com"));
        assert_eq!(errors(&pairs)[0].code, "invalid_extra_issuer");
    }
}
