//! `oidc login` and `oidc token`: tokens for the terminal user.
//!
//! `login` runs the authorization code flow with PKCE through the browser and a loopback
//! redirect listener (RFC 8252: `http://127.0.0.1:{port}/callback`), or the device
//! authorization grant (RFC 8628) with `--device`, and caches the tokens. `token` prints a
//! valid access token: the cached one, a refreshed one, or one from a new login.
//!
//! The protocol is the library's: `oidc_tower::loopback` receives the browser's redirect,
//! `oidc_tower::device` runs the device grant of `oidc_core::login::device`, and
//! `oidc_tower::provider` fetches metadata and keys; this module handles the arguments, what is
//! printed and the token cache.

use std::time::Duration;

use oidc_core::discovery::ProviderMetadata;
use oidc_core::jwks::{FreshnessPolicy, KeySet};
use oidc_core::login::device::{DeviceError, DeviceGrant, device_authorization_endpoint};
use oidc_core::login::token::{TokenResponse, parse_token_response};
use oidc_core::login::{
    ClientAuthMethod, ClientCredentials, LoginConfig, LoginRequest, ProviderEndpoints,
    finish_login, handle_callback, id_token_policy, start_login,
};
use oidc_core::{Issuer, Secret, UnixTime};
use oidc_tower::clock::now;
use oidc_tower::device::{DeviceGrantError, run_device_grant};
use oidc_tower::loopback::{LoopbackError, LoopbackRedirect};
use oidc_tower::provider::fetch_key_set;
use oidc_tower::{HttpClient, SystemRandom};
use serde_json::json;
use url::Url;

use crate::args::{LoginArgs, TokenArgs};
use crate::error::CliError;
use crate::fetch::Fetcher;
use crate::output::Outcome;
use crate::time_format::utc_date;
use crate::token_cache::{self, CachedTokens};

/// `oidc login`: signs in and caches the tokens; prints who signed in, never the tokens.
pub(crate) fn run_login(args: &LoginArgs) -> Result<Outcome, CliError> {
    let fetcher = Fetcher::new()?;
    let client = Client::discover(&fetcher, args)?;
    let tokens = client.login(&fetcher, args)?;
    let path = client.save(&tokens)?;
    if args.json {
        return Ok(Outcome::json(
            &json!({
                "issuer": tokens.issuer,
                "client_id": tokens.client_id,
                "subject": tokens.subject,
                "expires_at": tokens.expires_at,
                "refresh_token": tokens.refresh_token.is_some(),
                "cache": path.display().to_string(),
            }),
            0,
        ));
    }
    Ok(Outcome::ok(format!(
        "signed in to {} as {}; access token valid until {}{}\ntokens cached in {}\n",
        tokens.issuer,
        tokens.subject.as_deref().unwrap_or("(unknown subject)"),
        utc_date(tokens.expires_at),
        if tokens.refresh_token.is_some() {
            " (refreshable)"
        } else {
            ""
        },
        path.display()
    )))
}

/// `oidc token`: prints a valid access token, refreshing or signing in as needed.
pub(crate) fn run_token(args: &TokenArgs) -> Result<Outcome, CliError> {
    let fetcher = Fetcher::new()?;
    let dir = token_cache::cache_dir().map_err(CliError::from)?;
    let issuer = Issuer::new(args.login.issuer.clone())?;
    let now = now().as_secs();
    let target = token_target(&args.login)?;
    let cached = token_cache::load(&dir, issuer.as_str(), &args.login.client_id, &target);
    let tokens = match cached {
        Some(cached) if cached.fresh_at(now, args.min_valid) => cached,
        cached => {
            let client = Client::discover(&fetcher, &args.login)?;
            let refreshed = match cached.as_ref().and_then(|c| c.refresh_token.clone()) {
                Some(refresh_token) => {
                    match client.refresh(&fetcher, cached.as_ref(), &refresh_token) {
                        Ok(tokens) => Some(tokens),
                        Err(e) => {
                            crate::output::warn(&format!(
                                "refreshing failed ({e}); signing in again"
                            ));
                            None
                        }
                    }
                }
                None => None,
            };
            let tokens = match refreshed {
                Some(tokens) => tokens,
                None if args.no_login => {
                    return Err(CliError::usage(
                        "no valid cached token and --no-login was given",
                        "run `oidc login` with the same --issuer and --client-id",
                    ));
                }
                None => client.login(&fetcher, &args.login)?,
            };
            client.save(&tokens)?;
            tokens
        }
    };
    if args.login.json {
        return Ok(Outcome::json(
            &json!({
                "access_token": tokens.access_token,
                "token_type": "Bearer",
                "expires_at": tokens.expires_at,
            }),
            0,
        ));
    }
    Ok(Outcome::ok(format!("{}\n", tokens.access_token)))
}

/// One client of one provider, with what discovery said.
struct Client {
    issuer: Issuer,
    metadata: ProviderMetadata,
    endpoints: ProviderEndpoints,
    credentials: ClientCredentials,
    scopes: Vec<String>,
    resources: Vec<String>,
    audience: Option<String>,
    /// What the access token is for, as the token cache keys it.
    target: String,
}

/// What `--resource` and `--audience` ask the access token to be for, as one cache key; the
/// resources must be absolute URIs without a fragment (RFC 8707 §2).
fn token_target(args: &LoginArgs) -> Result<String, CliError> {
    let mut parts = Vec::new();
    for resource in &args.resources {
        let valid = Url::parse(resource).is_ok_and(|url| url.fragment().is_none());
        if !valid {
            return Err(CliError::usage(
                format!("--resource {resource:?} is not an absolute URI without a fragment"),
                "name the API by its URL, e.g. --resource https://mlflow.example.com/",
            ));
        }
        parts.push(format!("resource={resource}"));
    }
    if let Some(audience) = &args.audience {
        parts.push(format!("audience={audience}"));
    }
    Ok(parts.join(" "))
}

impl Client {
    fn discover(fetcher: &Fetcher, args: &LoginArgs) -> Result<Self, CliError> {
        let issuer = Issuer::new(args.issuer.clone())?;
        let metadata = fetcher.discover(&issuer)?;
        let endpoints = ProviderEndpoints::from_metadata(&metadata)?;
        let method = match &args.client_secret {
            Some(secret) => ClientAuthMethod::ClientSecretBasic(Secret::new(secret.clone())),
            None => ClientAuthMethod::None,
        };
        let mut scopes: Vec<String> = args
            .scopes
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(str::to_owned)
            .collect();
        if scopes.is_empty() {
            scopes = vec![
                "openid".into(),
                "profile".into(),
                "email".into(),
                "offline_access".into(),
            ];
            if !metadata.scopes_supported.is_empty() {
                scopes.retain(|s| s == "openid" || metadata.scopes_supported.contains(s));
            }
        } else if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        Ok(Client {
            issuer,
            metadata,
            endpoints,
            credentials: ClientCredentials::new(&args.client_id, method),
            scopes,
            resources: args.resources.clone(),
            audience: args.audience.clone(),
            target: token_target(args)?,
        })
    }

    fn login(&self, fetcher: &Fetcher, args: &LoginArgs) -> Result<CachedTokens, CliError> {
        if args.device {
            fetcher.block_on(self.device_login(fetcher))
        } else {
            fetcher.block_on(self.browser_login(fetcher, args))
        }
    }

    fn save(&self, tokens: &CachedTokens) -> Result<std::path::PathBuf, CliError> {
        let dir = token_cache::cache_dir()?;
        Ok(token_cache::store(&dir, tokens)?)
    }

    async fn browser_login(
        &self,
        fetcher: &Fetcher,
        args: &LoginArgs,
    ) -> Result<CachedTokens, CliError> {
        let receiver = LoopbackRedirect::bind(args.redirect_port)
            .await
            .map_err(|e| match e {
                LoopbackError::Bind { port, source } => CliError::usage(
                    format!("cannot listen on 127.0.0.1:{port} for the redirect: {source}"),
                    "choose another --redirect-port, or 0 for any free port",
                ),
                other => CliError::usage(other.to_string(), "retry"),
            })?;
        let redirect_uri = receiver.redirect_uri().clone();
        let mut config =
            LoginConfig::new(self.credentials.clone(), redirect_uri).scopes(self.scopes.clone());
        for resource in &self.resources {
            config = config.resource(resource.clone());
        }
        if let Some(audience) = &self.audience {
            config = config.extra_param("audience", audience.clone());
        }
        let mut random = SystemRandom;
        let redirect = start_login(
            &self.endpoints,
            &config,
            &LoginRequest::new("/"),
            now(),
            &mut random,
        )?;
        eprintln!(
            "Open this URL in a browser to sign in:\n\n  {}\n",
            redirect.url
        );
        if !args.no_browser {
            open_browser(redirect.url.as_str());
        }
        let params = receiver
            .wait(Duration::from_secs(args.timeout))
            .await
            .map_err(|_| CliError::LoginTimedOut {
                seconds: args.timeout,
            })?;
        let exchange = handle_callback(
            &self.endpoints,
            &config,
            redirect.pending,
            &params,
            now(),
            &mut random,
        )?;
        let response = fetcher.client().execute(exchange.request).await?;
        let tokens = parse_token_response(&response)?;
        let received_at = now();
        let keys = self.keys(fetcher).await?;
        let policy = id_token_policy(self.issuer.clone(), self.credentials.client_id())?;
        let outcome = finish_login(
            &exchange.expectation,
            tokens.clone(),
            &keys,
            &policy,
            received_at,
        )?;
        Ok(self.cached(&tokens, Some(outcome.subject), received_at))
    }

    async fn keys(&self, fetcher: &Fetcher) -> Result<KeySet, CliError> {
        fetch_key_set(
            fetcher.client(),
            &self.metadata.jwks_uri,
            &FreshnessPolicy::default(),
        )
        .await
        .map_err(|e| CliError::KeysUnavailable(Box::new(e.into())))
    }

    async fn device_login(&self, fetcher: &Fetcher) -> Result<CachedTokens, CliError> {
        let endpoint = device_authorization_endpoint(&self.metadata)?;
        let mut grant = DeviceGrant::new(self.credentials.clone()).scopes(self.scopes.clone());
        for resource in &self.resources {
            grant = grant.resource(resource.clone());
        }
        if let Some(audience) = &self.audience {
            grant = grant.extra_param("audience", audience.clone());
        }
        let mut expires_in = Duration::ZERO;
        let tokens = run_device_grant(
            fetcher.client(),
            endpoint,
            &self.endpoints.token_endpoint,
            &grant,
            |codes| {
                expires_in = codes.expires_in;
                eprintln!(
                    "To sign in, open {} and enter the code {}",
                    codes.verification_uri, codes.user_code
                );
                if let Some(complete) = &codes.verification_uri_complete {
                    eprintln!("(or open {complete})");
                }
            },
        )
        .await
        .map_err(|e| match e {
            DeviceGrantError::Device(DeviceError::Expired) => CliError::LoginTimedOut {
                seconds: expires_in.as_secs(),
            },
            other => other.into(),
        })?;
        let received_at = now();
        let subject = self.id_token_subject(fetcher, &tokens, received_at).await?;
        Ok(self.cached(&tokens, subject, received_at))
    }

    /// The subject of the ID token that came with `tokens`, validated; `None` without one.
    async fn id_token_subject(
        &self,
        fetcher: &Fetcher,
        tokens: &TokenResponse,
        now: UnixTime,
    ) -> Result<Option<String>, CliError> {
        let Some(id_token) = &tokens.id_token else {
            return Ok(None);
        };
        let keys = self.keys(fetcher).await?;
        let policy = id_token_policy(self.issuer.clone(), self.credentials.client_id())?;
        let validated =
            oidc_core::validate(id_token.expose(), &keys, &policy, now).map_err(|error| {
                CliError::Rejected {
                    error,
                    expected_issuer: self.issuer.as_str().to_owned(),
                }
            })?;
        Ok(validated.claims.sub.clone())
    }

    fn refresh(
        &self,
        fetcher: &Fetcher,
        cached: Option<&CachedTokens>,
        refresh_token: &str,
    ) -> Result<CachedTokens, CliError> {
        let mut random = SystemRandom;
        let request = oidc_core::login::token::refresh_request(
            &self.endpoints.token_endpoint,
            &self.credentials,
            &Secret::new(refresh_token.to_owned()),
            None,
            &self.resources,
            now(),
            &mut random,
        )?;
        let response = fetcher.send(request)?;
        let mut tokens = parse_token_response(&response)?;
        let received_at = now();
        let previous_subject = cached.and_then(|c| c.subject.clone());
        let subject = match &tokens.id_token {
            Some(_) => {
                let subject =
                    fetcher.block_on(self.id_token_subject(fetcher, &tokens, received_at))?;
                if previous_subject.is_some() && subject != previous_subject {
                    return Err(CliError::usage(
                        "the refreshed ID token names another subject",
                        "sign in again with `oidc login`",
                    ));
                }
                subject
            }
            None => previous_subject,
        };
        // Providers that do not rotate refresh tokens keep the old one valid.
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(Secret::new(refresh_token.to_owned()));
        }
        if tokens.id_token.is_none() {
            tokens.id_token = cached.and_then(|c| c.id_token.clone()).map(Secret::new);
        }
        Ok(self.cached(&tokens, subject, received_at))
    }

    fn cached(
        &self,
        tokens: &TokenResponse,
        subject: Option<String>,
        received_at: UnixTime,
    ) -> CachedTokens {
        let expires_at = tokens
            .access_token_expires_at(received_at)
            .map(UnixTime::as_secs)
            .or_else(|| unverified_exp(tokens.access_token.expose()))
            .unwrap_or(0);
        CachedTokens {
            issuer: self.issuer.as_str().to_owned(),
            client_id: self.credentials.client_id().to_owned(),
            target: self.target.clone(),
            subject,
            access_token: tokens.access_token.expose().to_owned(),
            expires_at,
            refresh_token: tokens.refresh_token.as_ref().map(|t| t.expose().to_owned()),
            id_token: tokens.id_token.as_ref().map(|t| t.expose().to_owned()),
            scope: tokens.scope.clone(),
        }
    }
}

/// Opens `url` with `xdg-open` or `open` when one is installed; never fails.
fn open_browser(url: &str) {
    for opener in ["xdg-open", "open"] {
        let found = std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(opener).is_file())
        });
        if found {
            let spawned = std::process::Command::new(opener)
                .arg(url)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
            if spawned.is_ok() {
                return;
            }
        }
    }
}

/// The `exp` of a JWT access token, read without verification: only to decide when to refresh.
fn unverified_exp(token: &str) -> Option<u64> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unverified_exp_reads_jwt_payloads_only() {
        assert_eq!(unverified_exp("e30.eyJleHAiOjQyfQ.sig"), Some(42));
        assert_eq!(unverified_exp("opaque-token"), None);
        assert_eq!(unverified_exp("a.!!!.c"), None);
    }

    proptest::proptest! {
        #[test]
        fn unverified_exp_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = unverified_exp(&String::from_utf8_lossy(&bytes));
        }
    }
}
