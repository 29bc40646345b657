//! Where the proxy listens and what it forwards to: the listening and metrics addresses, the
//! upstreams and their route prefixes, how https upstreams are trusted, and the timeouts of
//! forwarded traffic.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::reader::Resolver;
use crate::proxy::sources::{Source, Sourced};

/// One upstream: requests whose path starts with `prefix` go to `url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Upstream {
    pub(crate) prefix: String,
    pub(crate) url: Url,
    /// Whether the prefix is removed before forwarding (the `PREFIX=URL` form).
    pub(crate) strip_prefix: bool,
}

/// How https upstreams are trusted, and the client certificate offered to them.
#[derive(Clone, Debug, Default)]
pub(crate) struct UpstreamTlsSettings {
    pub(crate) ca_files: Vec<PathBuf>,
    /// Certificate chain and private key files.
    pub(crate) client_certificate: Option<(PathBuf, PathBuf)>,
    pub(crate) insecure_skip_verify: bool,
    /// Set through oauth2-proxy's `ssl-upstream-insecure-skip-verify`: worth a warning.
    pub(crate) skip_verify_by_old_name: bool,
}

impl UpstreamTlsSettings {
    /// The proxy's TLS configuration for https upstreams.
    pub(crate) fn to_upstream_tls(&self) -> oidc_tower::proxy::UpstreamTls {
        let mut tls = oidc_tower::proxy::UpstreamTls::new();
        for file in &self.ca_files {
            tls = tls.ca_file(file);
        }
        if let Some((chain, key)) = &self.client_certificate {
            tls = tls.client_certificate(chain, key);
        }
        tls.dangerous_skip_verify(self.insecure_skip_verify)
    }
}

/// The listening side and the upstream side of the proxy.
pub(super) struct Endpoints {
    pub(super) http_address: Option<SocketAddr>,
    pub(super) metrics_address: Option<SocketAddr>,
    pub(super) upstreams: Vec<Upstream>,
    pub(super) upstream_tls: UpstreamTlsSettings,
    pub(super) upstream_body_idle_timeout: Duration,
    pub(super) client_write_stall_timeout: Duration,
}

impl Resolver<'_> {
    /// The addresses, the upstreams, their TLS and the timeouts.
    pub(super) fn endpoints(&mut self) -> Endpoints {
        let http_address = self.address("http-address", Some("127.0.0.1:4180"));
        let metrics_address = self.address("metrics-address", None);
        let upstreams = self.upstreams();
        let upstream_tls = self.upstream_tls();
        let upstream_body_idle_timeout =
            self.duration("upstream-body-idle-timeout", Duration::from_secs(300));
        let client_write_stall_timeout = self.duration(
            "client-write-stall-timeout",
            oidc_tower::proxy::DEFAULT_WRITE_STALL_TIMEOUT,
        );
        Endpoints {
            http_address,
            metrics_address,
            upstreams,
            upstream_tls,
            upstream_body_idle_timeout,
            client_write_stall_timeout,
        }
    }

    /// Every `--upstream`, each prefix served by one upstream only.
    fn upstreams(&mut self) -> Vec<Upstream> {
        let mut upstreams = Vec::new();
        for sourced in self.list("upstream") {
            let Some(upstream) = self.upstream(&sourced) else {
                continue;
            };
            if upstreams
                .iter()
                .any(|u: &Upstream| u.prefix == upstream.prefix)
            {
                self.fail(
                    "upstream",
                    &sourced.source,
                    "duplicate_upstream_prefix",
                    format!("two upstreams serve the prefix {:?}", upstream.prefix),
                );
                continue;
            }
            upstreams.push(upstream);
        }
        upstreams
    }

    /// One `--upstream`: `URL` (its path is the prefix), `PREFIX=URL` (the prefix is stripped),
    /// or a `unix:` socket.
    fn upstream(&mut self, sourced: &Sourced) -> Option<Upstream> {
        let value = sourced.value.trim();
        let (explicit_prefix, url_text) = match value.split_once('=') {
            Some((prefix, url)) if prefix.starts_with('/') => (Some(prefix), url),
            _ => (None, value),
        };
        if url_text.starts_with("file://") || url_text.starts_with("static://") {
            self.fail(
                "upstream",
                &sourced.source,
                "unsupported_upstream",
                format!("{url_text:?}: file:// and static:// upstreams are not supported; serve files with the web server in front"),
            );
            return None;
        }
        let is_socket = url_text.starts_with("unix:");
        let url = if is_socket {
            self.socket_url(url_text, &sourced.source)?
        } else {
            self.url(
                "upstream",
                &Sourced {
                    value: url_text.to_owned(),
                    source: sourced.source.clone(),
                },
            )?
        };
        if url.query().is_some() || url.fragment().is_some() {
            self.fail(
                "upstream",
                &sourced.source,
                "invalid_url",
                format!("{url_text:?}: an upstream URL takes no query or fragment"),
            );
            return None;
        }
        Some(match explicit_prefix {
            Some(prefix) => Upstream {
                prefix: prefix.to_owned(),
                url,
                strip_prefix: true,
            },
            // A socket path is no URL path: the upstream serves at `/`.
            None if is_socket => Upstream {
                prefix: "/".to_owned(),
                url,
                strip_prefix: false,
            },
            None => Upstream {
                prefix: url.path().to_owned(),
                url,
                strip_prefix: false,
            },
        })
    }

    /// A `unix:///absolute/path/to/socket` upstream.
    fn socket_url(&mut self, url_text: &str, source: &Source) -> Option<Url> {
        match Url::parse(url_text) {
            Ok(url)
                if url.host().is_none() && url.path().len() > 1 && !url.path().ends_with('/') =>
            {
                Some(url)
            }
            _ => {
                self.fail(
                    "upstream",
                    source,
                    "invalid_url",
                    format!("{url_text:?}: a socket upstream is unix:///absolute/path/to/socket"),
                );
                None
            }
        }
    }

    fn upstream_tls(&mut self) -> UpstreamTlsSettings {
        let ca_files = self
            .list("upstream-ca-file")
            .into_iter()
            .map(|s| PathBuf::from(s.value.trim()))
            .collect();
        let chain = self.text("upstream-client-cert").cloned();
        let key = self.text("upstream-client-key").cloned();
        let client_certificate = match (chain, key) {
            (Some(chain), Some(key)) => Some((
                PathBuf::from(chain.value.trim()),
                PathBuf::from(key.value.trim()),
            )),
            (Some(given), None) | (None, Some(given)) => {
                let missing = if self.text("upstream-client-key").is_none() {
                    "upstream-client-key"
                } else {
                    "upstream-client-cert"
                };
                self.fail(
                    missing,
                    &given.source,
                    "incomplete_client_certificate",
                    "--upstream-client-cert and --upstream-client-key go together".to_owned(),
                );
                None
            }
            (None, None) => None,
        };
        let skip_verify = self.bool("upstream-insecure-skip-verify", false);
        let old_name = self.bool("ssl-upstream-insecure-skip-verify", false);
        UpstreamTlsSettings {
            ca_files,
            client_certificate,
            insecure_skip_verify: skip_verify || old_name,
            skip_verify_by_old_name: old_name,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use crate::proxy::settings::ProxySettings;
    use crate::proxy::settings::testing::{errors, flags, minimal};

    #[test]
    fn socket_upstreams_serve_at_the_root_or_under_their_prefix() {
        let mut pairs = minimal();
        pairs.retain(|(name, _)| *name != "upstream");
        pairs.push(("upstream", "unix:///run/mlflow/mlflow.sock"));
        pairs.push(("upstream", "/api/=unix:///run/api.sock"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert_eq!(s.upstreams[0].prefix, "/");
        assert_eq!(s.upstreams[0].url.path(), "/run/mlflow/mlflow.sock");
        assert!(!s.upstreams[0].strip_prefix);
        assert_eq!(s.upstreams[1].prefix, "/api/");
        assert!(s.upstreams[1].strip_prefix);

        for bad in ["unix://run/app.sock", "unix:///run/", "unix:"] {
            let mut pairs = minimal();
            pairs.retain(|(name, _)| *name != "upstream");
            pairs.push(("upstream", bad));
            assert!(
                errors(&pairs)
                    .iter()
                    .any(|e| e.option == "upstream" && e.code == "invalid_url"),
                "{bad}"
            );
        }
    }

    #[test]
    fn upstream_paths_are_route_prefixes_and_explicit_prefixes_are_stripped() {
        let mut pairs = minimal();
        pairs.push(("upstream", "http://127.0.0.1:8080/airflow/"));
        pairs.push(("upstream", "/api/=http://127.0.0.1:9000/v1/"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        let routes: Vec<_> = s
            .upstreams
            .iter()
            .map(|u| (u.prefix.as_str(), u.url.as_str(), u.strip_prefix))
            .collect();
        assert_eq!(
            routes,
            [
                ("/", "http://127.0.0.1:5000/", false),
                ("/airflow/", "http://127.0.0.1:8080/airflow/", false),
                ("/api/", "http://127.0.0.1:9000/v1/", true)
            ]
        );
        pairs.push(("upstream", "http://other:1/airflow/"));
        let errs = errors(&pairs);
        assert_eq!(errs[0].code, "duplicate_upstream_prefix");
    }

    #[test]
    fn https_upstreams_take_a_ca_file_a_client_certificate_and_the_old_skip_verify_name() {
        let mut pairs = minimal();
        pairs.push(("upstream", "/api/=https://api.internal:8443/"));
        pairs.push(("upstream-ca-file", "/etc/ssl/internal-ca.pem"));
        pairs.push(("upstream-client-cert", "/etc/oidc/client.pem"));
        pairs.push(("upstream-client-key", "/etc/oidc/client-key.pem"));
        pairs.push(("upstream-body-idle-timeout", "30s"));
        pairs.push(("client-write-stall-timeout", "45s"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert_eq!(s.upstreams[1].url.scheme(), "https");
        assert_eq!(
            s.upstream_tls.ca_files,
            [PathBuf::from("/etc/ssl/internal-ca.pem")]
        );
        assert!(s.upstream_tls.client_certificate.is_some());
        assert!(!s.upstream_tls.insecure_skip_verify);
        assert_eq!(s.upstream_body_idle_timeout, Duration::from_secs(30));
        assert_eq!(s.client_write_stall_timeout, Duration::from_secs(45));

        let mut pairs = minimal();
        pairs.push(("ssl-upstream-insecure-skip-verify", "true"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert!(s.upstream_tls.insecure_skip_verify && s.upstream_tls.skip_verify_by_old_name);

        let mut pairs = minimal();
        pairs.push(("upstream-client-cert", "/etc/oidc/client.pem"));
        let errs = errors(&pairs);
        assert_eq!(errs[0].option, "upstream-client-key");
        assert_eq!(errs[0].code, "incomplete_client_certificate");
    }
}
