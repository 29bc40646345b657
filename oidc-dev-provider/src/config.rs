//! Who may sign in and which clients may ask: test users with their claims, registered clients
//! with their redirect URIs, and the file form of both (`oidc dev-provider --config FILE`).

use std::path::Path;

use oidc_core::Secret;
use serde::Deserialize;

/// A test user: a username, a password, and the claims released about them.
///
/// `sub` is the username unless set. Claims `name`, `preferred_username` are released with the
/// `profile` scope, `email` and `email_verified` with the `email` scope; `groups` and extra
/// claims are always released.
#[derive(Clone, Debug)]
#[must_use]
pub struct DevUser {
    pub(crate) username: String,
    pub(crate) password: Secret,
    pub(crate) subject: String,
    pub(crate) email: Option<String>,
    pub(crate) email_verified: bool,
    pub(crate) name: Option<String>,
    pub(crate) groups: Vec<String>,
    pub(crate) extra_claims: serde_json::Map<String, serde_json::Value>,
}

impl DevUser {
    /// A user who signs in with `username` and `password`, with subject `username`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        let username = username.into();
        DevUser {
            subject: username.clone(),
            username,
            password: Secret::new(password.into()),
            email: None,
            email_verified: true,
            name: None,
            groups: Vec::new(),
            extra_claims: serde_json::Map::new(),
        }
    }

    /// The `sub` claim (default: the username).
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    /// The `email` claim; `email_verified` is true unless [`DevUser::email_verified`] says not.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// The `email_verified` claim.
    pub fn email_verified(mut self, verified: bool) -> Self {
        self.email_verified = verified;
        self
    }

    /// The `name` claim.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The `groups` claim.
    pub fn groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Any further claim, released in ID tokens, access tokens and userinfo.
    pub fn claim(mut self, name: impl Into<String>, value: serde_json::Value) -> Self {
        self.extra_claims.insert(name.into(), value);
        self
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The claims released for `scope` (space-separated), including `sub`.
    pub(crate) fn claims_for_scope(
        &self,
        scope: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        let has = |s: &str| scope.split(' ').any(|x| x == s);
        let mut claims = serde_json::Map::new();
        for (name, value) in &self.extra_claims {
            claims.insert(name.clone(), value.clone());
        }
        claims.insert("sub".into(), self.subject.clone().into());
        if has("profile") {
            claims.insert("preferred_username".into(), self.username.clone().into());
            if let Some(name) = &self.name {
                claims.insert("name".into(), name.clone().into());
            }
        }
        if let (true, Some(email)) = (has("email"), &self.email) {
            claims.insert("email".into(), email.clone().into());
            claims.insert("email_verified".into(), self.email_verified.into());
        }
        if !self.groups.is_empty() {
            claims.insert("groups".into(), self.groups.clone().into());
        }
        claims
    }
}

/// How a client's access tokens look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AccessTokenFormat {
    /// An RFC 9068 JWT (`typ: at+jwt`) signed with the provider key.
    #[default]
    Jwt,
    /// A random string only the provider can interpret: resource servers must use token
    /// introspection (RFC 7662).
    Opaque,
}

/// A registered client (relying party).
#[derive(Clone, Debug)]
#[must_use]
pub struct DevClient {
    pub(crate) client_id: String,
    pub(crate) secret: Option<Secret>,
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) post_logout_redirect_uris: Vec<String>,
    pub(crate) backchannel_logout_uri: Option<String>,
    pub(crate) access_token_format: AccessTokenFormat,
    pub(crate) access_token_audience: Vec<String>,
    pub(crate) require_pkce: bool,
}

impl DevClient {
    /// A confidential client authenticating with `client_secret_basic` or `client_secret_post`.
    /// PKCE is checked when sent, and not required.
    pub fn confidential(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        DevClient {
            client_id: client_id.into(),
            secret: Some(Secret::new(secret.into())),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            access_token_format: AccessTokenFormat::Jwt,
            access_token_audience: Vec::new(),
            require_pkce: false,
        }
    }

    /// A public client (`token_endpoint_auth_method: none`), for which PKCE is required.
    pub fn public(client_id: impl Into<String>) -> Self {
        DevClient {
            secret: None,
            require_pkce: true,
            ..DevClient::confidential(client_id, "")
        }
    }

    /// Registers a redirect URI; requests must name one of them exactly.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uris.push(uri.into());
        self
    }

    /// Registers a `post_logout_redirect_uri` for RP-initiated logout.
    pub fn post_logout_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.post_logout_redirect_uris.push(uri.into());
        self
    }

    /// Where logout tokens are POSTed when a session of this client ends.
    pub fn backchannel_logout_uri(mut self, uri: impl Into<String>) -> Self {
        self.backchannel_logout_uri = Some(uri.into());
        self
    }

    /// The format of access tokens issued to this client.
    pub fn access_token_format(mut self, format: AccessTokenFormat) -> Self {
        self.access_token_format = format;
        self
    }

    /// Adds an audience to this client's access tokens (default: the client id).
    pub fn access_token_audience(mut self, audience: impl Into<String>) -> Self {
        self.access_token_audience.push(audience.into());
        self
    }

    /// Requires PKCE on every authorization request of this client.
    pub fn require_pkce(mut self, required: bool) -> Self {
        self.require_pkce = required;
        self
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub(crate) fn is_public(&self) -> bool {
        self.secret.is_none()
    }

    pub(crate) fn audience(&self) -> Vec<String> {
        if self.access_token_audience.is_empty() {
            vec![self.client_id.clone()]
        } else {
            self.access_token_audience.clone()
        }
    }
}

/// The users and clients a provider starts with when none are configured: `alice`/`alice`
/// (group `admins`), `bob`/`bob` (group `users`), a confidential client `demo`/`demo-secret`
/// and a public client `demo-public`, both redirecting to `http://127.0.0.1:4180/oauth2/callback`
/// and `http://localhost:4180/oauth2/callback`.
pub fn demo_users() -> Vec<DevUser> {
    vec![
        DevUser::new("alice", "alice")
            .name("Alice Example")
            .email("alice@example.com")
            .groups(["admins", "users"]),
        DevUser::new("bob", "bob")
            .name("Bob Example")
            .email("bob@example.com")
            .groups(["users"]),
    ]
}

/// The demo clients described at [`demo_users`].
pub fn demo_clients() -> Vec<DevClient> {
    let with_uris = |c: DevClient| {
        c.redirect_uri("http://127.0.0.1:4180/oauth2/callback")
            .redirect_uri("http://localhost:4180/oauth2/callback")
            .post_logout_redirect_uri("http://127.0.0.1:4180/")
            .post_logout_redirect_uri("http://localhost:4180/")
    };
    vec![
        with_uris(DevClient::confidential("demo", "demo-secret")),
        with_uris(DevClient::public("demo-public")),
    ]
}

/// A configuration file could not be read or understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML text is not a valid configuration.
    #[error("invalid TOML configuration: {0}")]
    Toml(#[from] toml::de::Error),
    /// The JSON text is not a valid configuration.
    #[error("invalid JSON configuration: {0}")]
    Json(#[from] serde_json::Error),
}

impl ConfigError {
    /// A stable snake_case code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config_unreadable",
            ConfigError::Toml(_) => "config_invalid_toml",
            ConfigError::Json(_) => "config_invalid_json",
        }
    }
}

/// The file form of a provider's users and clients (TOML or JSON):
///
/// ```toml
/// [[users]]
/// username = "alice"
/// password = "alice-password"
/// email = "alice@example.com"
/// groups = ["admins"]
/// claims = { department = "research" }
///
/// [[clients]]
/// client_id = "mlflow"
/// client_secret = "mlflow-secret"
/// redirect_uris = ["http://127.0.0.1:4180/oauth2/callback"]
/// ```
///
/// Missing `users` or `clients` fall back to the demo set ([`demo_users`], [`demo_clients`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// The test users.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// The registered clients.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
}

/// One user in a [`ProviderConfig`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UserConfig {
    /// The login name.
    pub username: String,
    /// The password.
    pub password: String,
    /// The `sub` claim (default: the username).
    pub subject: Option<String>,
    /// The `name` claim.
    pub name: Option<String>,
    /// The `email` claim.
    pub email: Option<String>,
    /// The `email_verified` claim (default true).
    pub email_verified: Option<bool>,
    /// The `groups` claim.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Further claims.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// One client in a [`ProviderConfig`].
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The client id.
    pub client_id: String,
    /// The secret; a client without one is public and must use PKCE.
    pub client_secret: Option<String>,
    /// Registered redirect URIs.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Back-channel logout URI.
    pub backchannel_logout_uri: Option<String>,
    /// `jwt` (default) or `opaque`.
    #[serde(default)]
    pub access_token_format: AccessTokenFormat,
    /// Audiences of access tokens (default: the client id).
    #[serde(default)]
    pub access_token_audience: Vec<String>,
    /// Whether PKCE is required (default: only for public clients).
    pub require_pkce: Option<bool>,
}

impl ProviderConfig {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    /// Parses JSON text.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        Ok(serde_json::from_str(text)?)
    }

    /// Reads a file: JSON when its name ends in `.json`, TOML otherwise.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Self::from_json(&text)
        } else {
            Self::from_toml(&text)
        }
    }

    /// The users, or the demo users when none are configured.
    pub fn dev_users(&self) -> Vec<DevUser> {
        if self.users.is_empty() {
            return demo_users();
        }
        self.users
            .iter()
            .map(|u| {
                let mut user = DevUser::new(&u.username, &u.password)
                    .groups(u.groups.iter().cloned())
                    .email_verified(u.email_verified.unwrap_or(true));
                if let Some(s) = &u.subject {
                    user = user.subject(s);
                }
                if let Some(n) = &u.name {
                    user = user.name(n);
                }
                if let Some(e) = &u.email {
                    user = user.email(e);
                }
                for (k, v) in &u.claims {
                    user = user.claim(k, v.clone());
                }
                user
            })
            .collect()
    }

    /// The clients, or the demo clients when none are configured.
    pub fn dev_clients(&self) -> Vec<DevClient> {
        if self.clients.is_empty() {
            return demo_clients();
        }
        self.clients
            .iter()
            .map(|c| {
                let mut client = match &c.client_secret {
                    Some(secret) => DevClient::confidential(&c.client_id, secret),
                    None => DevClient::public(&c.client_id),
                };
                client.redirect_uris = c.redirect_uris.clone();
                client.post_logout_redirect_uris = c.post_logout_redirect_uris.clone();
                client.backchannel_logout_uri = c.backchannel_logout_uri.clone();
                client.access_token_format = c.access_token_format;
                client.access_token_audience = c.access_token_audience.clone();
                if let Some(required) = c.require_pkce {
                    client.require_pkce = required;
                }
                client
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_follow_the_scope() {
        let user = DevUser::new("alice", "pw")
            .email("a@example.com")
            .name("Alice")
            .groups(["admins"])
            .claim("dept", "r&d".into());
        let claims = user.claims_for_scope("openid");
        assert_eq!(claims.get("sub"), Some(&"alice".into()));
        assert_eq!(claims.get("email"), None);
        assert_eq!(claims.get("groups"), Some(&serde_json::json!(["admins"])));
        assert_eq!(claims.get("dept"), Some(&"r&d".into()));
        let claims = user.claims_for_scope("openid email profile");
        assert_eq!(claims.get("email"), Some(&"a@example.com".into()));
        assert_eq!(claims.get("email_verified"), Some(&true.into()));
        assert_eq!(claims.get("name"), Some(&"Alice".into()));
        assert_eq!(claims.get("preferred_username"), Some(&"alice".into()));
    }

    #[test]
    fn extra_claims_cannot_replace_the_subject() {
        let user = DevUser::new("alice", "pw").claim("sub", "mallory".into());
        assert_eq!(
            user.claims_for_scope("openid").get("sub"),
            Some(&"alice".into())
        );
    }

    #[test]
    fn toml_and_json_configs_parse() {
        let config = ProviderConfig::from_toml(
            r#"
            [[users]]
            username = "carol"
            password = "pw"
            groups = ["ops"]
            claims = { team = "blue" }

            [[clients]]
            client_id = "cli"
            redirect_uris = ["http://127.0.0.1:9/cb"]
            access_token_format = "opaque"
            "#,
        )
        .unwrap();
        let users = config.dev_users();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].groups, vec!["ops".to_owned()]);
        let clients = config.dev_clients();
        assert!(clients[0].is_public());
        assert!(clients[0].require_pkce);
        assert_eq!(clients[0].access_token_format, AccessTokenFormat::Opaque);

        let json =
            ProviderConfig::from_json(r#"{"clients":[{"client_id":"x","client_secret":"s"}]}"#)
                .unwrap();
        assert_eq!(json.dev_users().len(), 2, "no users: the demo set");
        assert!(!json.dev_clients()[0].is_public());
        let err = ProviderConfig::from_toml("users = 3").unwrap_err();
        assert_eq!(err.code(), "config_invalid_toml");
        let err = ProviderConfig::from_json("{\"unknown\": 1}").unwrap_err();
        assert_eq!(err.code(), "config_invalid_json");
    }
}
