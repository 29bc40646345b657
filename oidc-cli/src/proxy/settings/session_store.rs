//! Where sessions live: in the cookie itself, or in Redis (one server, the primary named by
//! Sentinel, or a cluster), and how to sign in to Redis. Redis URLs are never shown in messages:
//! they may hold a password.

use std::path::PathBuf;

use oidc_core::Secret;

use super::reader::Resolver;
use crate::proxy::sources::Source;

fn is_redis_url(value: &str) -> bool {
    let value = value.trim();
    value.starts_with("redis://") || value.starts_with("rediss://")
}

/// Where sessions live.
#[derive(Clone, Debug)]
pub(crate) enum SessionStoreChoice {
    Cookie,
    Redis(RedisSettings),
}

/// Which Redis deployment, and how to sign in to it.
#[derive(Clone, Debug)]
pub(crate) struct RedisSettings {
    pub(crate) target: RedisTarget,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Secret>,
    pub(crate) sentinel_password: Option<Secret>,
    pub(crate) ca_path: Option<PathBuf>,
}

/// One server, the primary named by Sentinel, or a cluster.
#[derive(Clone, Debug)]
pub(crate) enum RedisTarget {
    Single {
        url: Secret,
    },
    Sentinel {
        master_name: String,
        urls: Vec<Secret>,
    },
    Cluster {
        urls: Vec<Secret>,
    },
}

impl RedisSettings {
    /// The store configuration these settings describe.
    pub(crate) fn store_config(&self) -> oidc_tower::store::RedisStoreConfig {
        use oidc_tower::store::RedisStoreConfig;
        let expose = |urls: &[Secret]| -> Vec<String> {
            urls.iter().map(|url| url.expose().to_owned()).collect()
        };
        let mut config = match &self.target {
            RedisTarget::Single { url } => RedisStoreConfig::new(url.expose()),
            RedisTarget::Sentinel { master_name, urls } => {
                RedisStoreConfig::sentinel(master_name.clone(), expose(urls))
            }
            RedisTarget::Cluster { urls } => RedisStoreConfig::cluster(expose(urls)),
        };
        if let Some(password) = &self.password {
            config = config.credentials(self.username.clone(), password.expose());
        }
        if let Some(password) = &self.sentinel_password {
            config = config.sentinel_password(password.expose());
        }
        if let Some(path) = &self.ca_path {
            config = config.ca_file(path);
        }
        config
    }

    /// The option that names where Redis is, for messages.
    pub(crate) fn location_option(&self) -> &'static str {
        match self.target {
            RedisTarget::Single { .. } => "redis-connection-url",
            RedisTarget::Sentinel { .. } => "redis-sentinel-connection-urls",
            RedisTarget::Cluster { .. } => "redis-cluster-connection-urls",
        }
    }
}

impl Resolver<'_> {
    /// `--session-store-type`: cookie (the default) or redis.
    pub(super) fn session_store(&mut self) -> SessionStoreChoice {
        let kind = self.text("session-store-type").cloned();
        match kind.as_ref().map(|s| s.value.trim().to_ascii_lowercase()) {
            None => SessionStoreChoice::Cookie,
            Some(k) if k == "cookie" => SessionStoreChoice::Cookie,
            Some(k) if k == "redis" => match self.redis_target() {
                Some(target) => SessionStoreChoice::Redis(RedisSettings {
                    target,
                    username: self
                        .text("redis-username")
                        .map(|s| s.value.trim().to_owned()),
                    password: self
                        .text("redis-password")
                        .map(|s| Secret::new(s.value.clone())),
                    sentinel_password: self
                        .text("redis-sentinel-password")
                        .map(|s| Secret::new(s.value.clone())),
                    ca_path: self
                        .text("redis-ca-path")
                        .map(|s| PathBuf::from(s.value.trim())),
                }),
                None => SessionStoreChoice::Cookie,
            },
            Some(other) => {
                if let Some(s) = kind {
                    self.fail(
                        "session-store-type",
                        &s.source,
                        "invalid_session_store",
                        format!("{other:?} is not a session store: cookie or redis"),
                    );
                }
                SessionStoreChoice::Cookie
            }
        }
    }

    fn redis_target(&mut self) -> Option<RedisTarget> {
        let sentinel = self.bool("redis-use-sentinel", false);
        let cluster = self.bool("redis-use-cluster", false);
        if sentinel && cluster {
            let source = self
                .layers
                .value("redis-use-cluster")
                .map(|s| s.source.clone())
                .unwrap_or(Source::Default);
            self.fail(
                "redis-use-cluster",
                &source,
                "conflicting_redis_modes",
                "--redis-use-sentinel and --redis-use-cluster exclude each other".to_owned(),
            );
            return None;
        }
        if sentinel {
            let master_name = self.text("redis-sentinel-master-name").cloned();
            let urls = self.redis_urls("redis-sentinel-connection-urls");
            let Some(master_name) = master_name else {
                self.missing(
                    "redis-sentinel-master-name",
                    "--redis-use-sentinel needs --redis-sentinel-master-name",
                );
                return None;
            };
            return Some(RedisTarget::Sentinel {
                master_name: master_name.value.trim().to_owned(),
                urls: urls?,
            });
        }
        if cluster {
            return Some(RedisTarget::Cluster {
                urls: self.redis_urls("redis-cluster-connection-urls")?,
            });
        }
        match self.text("redis-connection-url").cloned() {
            Some(url) if is_redis_url(&url.value) => Some(RedisTarget::Single {
                url: Secret::new(url.value.trim().to_owned()),
            }),
            Some(url) => {
                self.fail(
                    "redis-connection-url",
                    &url.source,
                    "invalid_redis_url",
                    "must start with redis:// or rediss:// (value not shown: it may hold a password)"
                        .to_owned(),
                );
                None
            }
            None => {
                self.missing(
                    "redis-connection-url",
                    "--session-store-type=redis needs --redis-connection-url (or Sentinel or Cluster)",
                );
                None
            }
        }
    }

    /// The URLs of `option`, all `redis://` or `rediss://`, at least one.
    fn redis_urls(&mut self, option: &'static str) -> Option<Vec<Secret>> {
        let values = self.list(option);
        if values.is_empty() {
            self.missing(option, &format!("--{option} needs at least one URL"));
            return None;
        }
        let mut urls = Vec::with_capacity(values.len());
        for value in values {
            if !is_redis_url(&value.value) {
                self.fail(
                    option,
                    &value.source,
                    "invalid_redis_url",
                    "must start with redis:// or rediss:// (value not shown: it may hold a password)"
                        .to_owned(),
                );
                return None;
            }
            urls.push(Secret::new(value.value.trim().to_owned()));
        }
        Some(urls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::settings::ProxySettings;
    use crate::proxy::settings::testing::{errors, flags, minimal};

    #[test]
    fn redis_sentinel_and_cluster_take_oauth2_proxy_flags() {
        let mut pairs = minimal();
        pairs.push(("session-store-type", "redis"));
        pairs.push(("redis-use-sentinel", "true"));
        pairs.push(("redis-sentinel-master-name", "mymaster"));
        pairs.push(("redis-sentinel-connection-urls", "redis://10.0.0.1:26379"));
        pairs.push(("redis-sentinel-connection-urls", "redis://10.0.0.2:26379"));
        pairs.push(("redis-password", "hunter2"));
        pairs.push(("redis-username", "oidc"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        let SessionStoreChoice::Redis(redis) = &s.session_store else {
            panic!("redis expected");
        };
        assert!(
            matches!(&redis.target, RedisTarget::Sentinel { master_name, urls } if master_name == "mymaster" && urls.len() == 2)
        );
        assert_eq!(redis.username.as_deref(), Some("oidc"));
        assert!(!format!("{:?}", redis.store_config()).contains("hunter2"));

        let mut pairs = minimal();
        pairs.push(("session-store-type", "redis"));
        pairs.push(("redis-use-cluster", "true"));
        pairs.push(("redis-cluster-connection-urls", "rediss://10.0.0.1:6379"));
        pairs.push(("redis-ca-path", "/etc/redis/ca.pem"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert!(matches!(
            &s.session_store,
            SessionStoreChoice::Redis(RedisSettings {
                target: RedisTarget::Cluster { .. },
                ca_path: Some(_),
                ..
            })
        ));

        let mut pairs = minimal();
        pairs.push(("session-store-type", "redis"));
        pairs.push(("redis-use-sentinel", "true"));
        let errs = errors(&pairs);
        for option in [
            "redis-sentinel-master-name",
            "redis-sentinel-connection-urls",
        ] {
            assert!(errs.iter().any(|e| e.option == option), "{errs:?}");
        }
        pairs.push(("redis-use-cluster", "true"));
        assert_eq!(errors(&pairs)[0].code, "conflicting_redis_modes");
        let mut pairs = minimal();
        pairs.push(("session-store-type", "redis"));
        pairs.push(("redis-use-cluster", "true"));
        pairs.push(("redis-cluster-connection-urls", "http://secret@x"));
        let errs = errors(&pairs);
        assert_eq!(errs[0].code, "invalid_redis_url");
        assert!(!errs[0].to_string().contains("secret@"));
    }

    #[test]
    fn redis_needs_a_url_and_its_value_is_never_shown() {
        let mut pairs = minimal();
        pairs.push(("session-store-type", "redis"));
        assert_eq!(errors(&pairs)[0].option, "redis-connection-url");
        pairs.push(("redis-connection-url", "http://user:pw@host"));
        let errs = errors(&pairs);
        assert_eq!(errs[0].code, "invalid_redis_url");
        assert!(!errs[0].to_string().contains("pw@"));
        pairs.pop();
        pairs.push(("redis-connection-url", "redis://127.0.0.1:6379/0"));
        let s = ProxySettings::resolve(&flags(&pairs)).unwrap();
        assert!(matches!(s.session_store, SessionStoreChoice::Redis(_)));
    }
}
