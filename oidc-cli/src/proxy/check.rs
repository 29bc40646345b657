//! `oidc proxy --check-config`: the settings against the outside world. Reaches the provider
//! (discovery, keys, the client's credentials at the token endpoint), the extra issuers, Redis
//! and the upstreams, and tries the listen addresses, reporting each check on its own line.

use oidc_core::Issuer;
use oidc_core::discovery::{DiscoveryOptions, ProviderMetadata};
use oidc_core::jwks::FreshnessPolicy;
use oidc_core::login::{ClientAuthMethod, ClientCredentials, client_auth};
use oidc_tower::provider::{FetchError, fetch_key_set, fetch_metadata};
use oidc_tower::store::RedisStore;
use oidc_tower::{HttpClient, ReqwestHttpClient, SystemRandom};

use super::settings::{ProxySettings, SessionStoreChoice};
use crate::output::Style;

/// How one check went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Pass,
    /// Not fatal, but worth a look (an upstream that is down right now).
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Clone, Debug)]
pub(crate) struct CheckLine {
    pub(crate) status: Status,
    pub(crate) what: String,
    pub(crate) detail: String,
}

/// Every check, in the order run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Report {
    pub(crate) lines: Vec<CheckLine>,
}

impl Report {
    fn push(&mut self, status: Status, what: impl Into<String>, detail: impl Into<String>) {
        self.lines.push(CheckLine {
            status,
            what: what.into(),
            detail: detail.into(),
        });
    }

    /// No check failed (warnings allowed).
    pub(crate) fn passed(&self) -> bool {
        self.lines.iter().all(|l| l.status != Status::Fail)
    }

    /// `{"ok": bool, "checks": [{"status", "what", "detail"}]}`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let checks: Vec<serde_json::Value> = self
            .lines
            .iter()
            .map(|line| {
                serde_json::json!({
                    "status": match line.status {
                        Status::Pass => "pass",
                        Status::Warn => "warn",
                        Status::Fail => "fail",
                    },
                    "what": line.what,
                    "detail": line.detail,
                })
            })
            .collect();
        serde_json::json!({ "ok": self.passed(), "checks": checks })
    }

    pub(crate) fn render(&self, style: Style) -> String {
        let mut text = String::new();
        for line in &self.lines {
            let mark = match line.status {
                Status::Pass => style.green("ok  "),
                Status::Warn => style.yellow("warn"),
                Status::Fail => style.red("FAIL"),
            };
            text.push_str(&format!("{mark} {}: {}\n", line.what, line.detail));
        }
        let failed = self
            .lines
            .iter()
            .filter(|l| l.status == Status::Fail)
            .count();
        if failed == 0 {
            text.push_str("configuration OK\n");
        } else {
            text.push_str(&format!("{failed} check(s) failed\n"));
        }
        text
    }
}

/// Runs every check against `settings`.
pub(crate) async fn check(settings: &ProxySettings) -> Report {
    let mut report = Report::default();
    report.push(
        Status::Pass,
        "settings",
        "every option is valid (secrets not shown)",
    );
    for line in settings.summary() {
        report.push(Status::Pass, "will run", line);
    }
    check_listen(&mut report, "http-address", settings.http_address).await;
    if let Some(metrics) = settings.metrics_address {
        check_listen(&mut report, "metrics-address", metrics).await;
    }
    let client = match ReqwestHttpClient::new() {
        Ok(client) => client,
        Err(e) => {
            report.push(Status::Fail, "http client", e.to_string());
            return report;
        }
    };
    if let Some(metadata) = check_provider(&mut report, &client, &settings.issuer, "provider").await
    {
        check_client(&mut report, &client, settings, &metadata).await;
    }
    for extra in &settings.extra_issuers {
        check_provider(
            &mut report,
            &client,
            &extra.issuer,
            &format!("extra issuer (audience {})", extra.audience),
        )
        .await;
    }
    if let SessionStoreChoice::Redis(redis) = &settings.session_store {
        let result = match RedisStore::new(redis.store_config()) {
            Ok(store) => store.ping().await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => report.push(Status::Pass, "redis", "PING answered"),
            Err(e) => report.push(
                Status::Fail,
                "redis",
                format!("{e} [{}] ({})", e.code(), redis.location_option()),
            ),
        }
    }
    for upstream in &settings.upstreams {
        let host = upstream.url.host_str().unwrap_or_default().to_owned();
        let port = upstream.url.port_or_known_default().unwrap_or(80);
        let what = format!("upstream {}", upstream.url);
        let connect = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)),
        )
        .await;
        match connect {
            Ok(Ok(_)) => report.push(Status::Pass, what, "accepts connections"),
            Ok(Err(e)) => report.push(
                Status::Warn,
                what,
                format!("not reachable now ({e}); requests will get 502 until it is"),
            ),
            Err(_) => report.push(
                Status::Warn,
                what,
                "no answer within 3s; requests will get 504 until it answers",
            ),
        }
    }
    report
}

async fn check_listen(report: &mut Report, option: &str, addr: std::net::SocketAddr) {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            drop(listener);
            report.push(Status::Pass, option, format!("{addr} can be bound"));
        }
        Err(e) => report.push(
            Status::Fail,
            option,
            format!("cannot listen on {addr}: {e}"),
        ),
    }
}

async fn check_provider(
    report: &mut Report,
    client: &ReqwestHttpClient,
    issuer: &Issuer,
    what: &str,
) -> Option<ProviderMetadata> {
    let metadata = match fetch_metadata(client, issuer, &DiscoveryOptions::new()).await {
        Ok(metadata) => metadata,
        Err(FetchError::Http(e)) => {
            report.push(
                Status::Fail,
                what,
                format!(
                    "cannot reach {}: {e} [{}] (oidc-issuer-url)",
                    issuer.discovery_url(),
                    e.code()
                ),
            );
            return None;
        }
        Err(e) => {
            report.push(
                Status::Fail,
                what,
                format!("discovery document refused: {e} [{}]", e.code()),
            );
            return None;
        }
    };
    report.push(
        Status::Pass,
        what,
        format!("discovery at {} checks out", issuer.discovery_url()),
    );
    for warning in metadata.warnings() {
        report.push(Status::Warn, what, warning.to_string());
    }
    match fetch_key_set(client, &metadata.jwks_uri, &FreshnessPolicy::default()).await {
        Ok(keys) => report.push(
            Status::Pass,
            what,
            format!(
                "{} signing key(s) at {}",
                keys.keys().len(),
                metadata.jwks_uri
            ),
        ),
        Err(FetchError::Http(e)) => report.push(
            Status::Fail,
            what,
            format!(
                "cannot fetch keys at {}: {e} [{}]",
                metadata.jwks_uri,
                e.code()
            ),
        ),
        Err(e) => report.push(
            Status::Fail,
            what,
            format!(
                "key set at {} refused: {e} [{}]",
                metadata.jwks_uri,
                e.code()
            ),
        ),
    }
    Some(metadata)
}

/// Presents the client's credentials with a code that cannot be valid: a provider answers
/// `invalid_client` when the credentials are wrong and `invalid_grant` when they are right.
async fn check_client(
    report: &mut Report,
    client: &ReqwestHttpClient,
    settings: &ProxySettings,
    metadata: &ProviderMetadata,
) {
    if !metadata.supports_s256_pkce() && !metadata.code_challenge_methods_supported.is_empty() {
        report.push(
            Status::Warn,
            "provider",
            "does not list S256 in code_challenge_methods_supported; PKCE is sent anyway",
        );
    }
    let Some(token_endpoint) = &metadata.token_endpoint else {
        report.push(
            Status::Fail,
            "client",
            "the provider has no token_endpoint: the code flow cannot work",
        );
        return;
    };
    let method = match &settings.client_secret {
        Some(secret) => ClientAuthMethod::ClientSecretBasic(secret.clone()),
        None => ClientAuthMethod::None,
    };
    let credentials = ClientCredentials::new(&settings.client_id, method);
    let mut random = SystemRandom;
    let request = match client_auth::authenticated_form_post(
        token_endpoint,
        &credentials,
        &[
            ("grant_type", "authorization_code"),
            ("code", "oidc-check-config-probe"),
            ("redirect_uri", settings.redirect_url.as_str()),
            (
                "code_verifier",
                "oidc-check-config-probe-verifier-0000000000000",
            ),
        ],
        oidc_tower::clock::now(),
        &mut random,
    ) {
        Ok(request) => request,
        Err(e) => {
            report.push(Status::Fail, "client", e.to_string());
            return;
        }
    };
    let response = match client.execute(request).await {
        Ok(response) => response,
        Err(e) => {
            report.push(
                Status::Fail,
                "client",
                format!("cannot reach the token endpoint {token_endpoint}: {e}"),
            );
            return;
        }
    };
    let error = serde_json::from_slice::<serde_json::Value>(response.body())
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
    match error.as_deref() {
        Some("invalid_client" | "unauthorized_client") if settings.client_secret.is_none() => {
            report.push(
                Status::Fail,
                "client",
                format!(
                    "the provider refuses client {:?} without a secret ({}): set --client-secret-file or --client-secret if it is a confidential client",
                    settings.client_id,
                    error.unwrap_or_default()
                ),
            );
        }
        Some("invalid_client" | "unauthorized_client") => report.push(
            Status::Fail,
            "client",
            format!(
                "the provider refuses client {:?} with this secret ({}) (client-id, client-secret)",
                settings.client_id,
                error.unwrap_or_default()
            ),
        ),
        Some("invalid_grant") => report.push(
            Status::Pass,
            "client",
            format!("the provider accepts client {:?}", settings.client_id),
        ),
        other => report.push(
            Status::Warn,
            "client",
            format!(
                "could not tell whether the credentials are right (token endpoint answered {} {})",
                response.status(),
                other.unwrap_or("without an OAuth error")
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_fails_on_any_failed_line_only() {
        let mut report = Report::default();
        report.push(Status::Pass, "a", "fine");
        report.push(Status::Warn, "b", "hmm");
        assert!(report.passed());
        assert_eq!(
            report.render(Style::plain()),
            "ok   a: fine\nwarn b: hmm\nconfiguration OK\n"
        );
        report.push(Status::Fail, "c", "broken");
        assert!(!report.passed());
        let json = report.to_json();
        assert_eq!(json["ok"], false);
        assert_eq!(json["checks"][1]["status"], "warn");
        assert_eq!(json["checks"][2]["detail"], "broken");
        assert!(
            report
                .render(Style::plain())
                .ends_with("FAIL c: broken\n1 check(s) failed\n")
        );
    }
}
