//! A store in Redis, shared by every replica, with tag indexes for server-side revocation.
//!
//! Layout under the configured prefix (default `oidc:`), all names being SHA-256 hex digests:
//! `{prefix}s:{session}` holds the sealed session with a `PX` TTL; `{prefix}t:{tag}` is a set of
//! session digests whose TTL is extended to cover its longest-lived member (`PEXPIRE NX` then
//! `PEXPIRE GT`, so Redis 7.0 or newer is required); `{prefix}l:{name}` is a lock holding its
//! holder's random token with a `PX` TTL.
//!
//! Three ways to reach it ([`RedisStoreConfig`]): one server; the primary named by Redis
//! Sentinel, asked again whenever the connection breaks or the node turns out to be a replica
//! (after a failover); or a Redis Cluster, through the redis crate's cluster client.
//!
//! On one server or through Sentinel, revocation runs as one Lua script, so a session saved
//! concurrently is either revoked or keeps a valid tag entry. A cluster spreads the keys of one
//! revocation over several nodes, so there it is a sequence of commands: a session saved while a
//! revocation of one of its tags runs may escape that revocation (not a later one).
//!
//! After an outage the first command reconnects before it is answered (see `link`), and a command
//! that running twice cannot change (every one here but a lock acquisition) is sent once more
//! when its connection broke while it was in flight.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::IntoConnectionInfo as _;
use redis::aio::ConnectionLike;
use redis::cluster_async::ClusterConnection;
use tokio::time::Instant;

use self::link::{Connector, Link};
use super::{LockToken, SessionStore, StoreError, StoreKey, check_ttl};

mod link;

const BACKEND: &str = "redis";

const DELETE_TAGGED_SCRIPT: &str = r"
local members = redis.call('SMEMBERS', KEYS[1])
local removed = 0
for _, member in ipairs(members) do
  removed = removed + redis.call('DEL', ARGV[1] .. member)
end
redis.call('DEL', KEYS[1])
return removed
";

/// Deletes the lock only when it still holds the caller's token, so a holder whose lock
/// expired and was taken by another cannot release the other's lock.
const UNLOCK_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Which Redis deployment holds the sessions.
#[derive(Clone)]
enum Topology {
    Single {
        url: String,
    },
    Sentinel {
        master_name: String,
        sentinels: Vec<String>,
    },
    Cluster {
        nodes: Vec<String>,
    },
}

/// Where and how to reach Redis. `Debug` shows no URL and no password.
#[derive(Clone)]
#[must_use]
pub struct RedisStoreConfig {
    topology: Topology,
    username: Option<String>,
    password: Option<String>,
    sentinel_password: Option<String>,
    ca_file: Option<std::path::PathBuf>,
    key_prefix: String,
    command_timeout: Duration,
    connect_timeout: Duration,
}

impl std::fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let topology = match &self.topology {
            Topology::Single { .. } => "single",
            Topology::Sentinel { .. } => "sentinel",
            Topology::Cluster { .. } => "cluster",
        };
        f.debug_struct("RedisStoreConfig")
            .field("topology", &topology)
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStoreConfig {
    /// One Redis at `url` (`redis://[user:password@]host:port/db`, or `rediss://` for TLS),
    /// prefix `oidc:`, 1 s command timeout, 2 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_topology(Topology::Single { url: url.into() })
    }

    /// The primary of the group `master_name`, as the sentinels at `sentinel_urls` name it
    /// (oauth2-proxy's `--redis-sentinel-master-name` and `--redis-sentinel-connection-urls`).
    /// With `rediss://` sentinel URLs the primary is reached over TLS too.
    pub fn sentinel(
        master_name: impl Into<String>,
        sentinel_urls: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self::with_topology(Topology::Sentinel {
            master_name: master_name.into(),
            sentinels: sentinel_urls.into_iter().map(Into::into).collect(),
        })
    }

    /// A Redis Cluster reached first through any of `node_urls` (oauth2-proxy's
    /// `--redis-cluster-connection-urls`).
    pub fn cluster(node_urls: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self::with_topology(Topology::Cluster {
            nodes: node_urls.into_iter().map(Into::into).collect(),
        })
    }

    fn with_topology(topology: Topology) -> Self {
        RedisStoreConfig {
            topology,
            username: None,
            password: None,
            sentinel_password: None,
            ca_file: None,
            key_prefix: "oidc:".to_owned(),
            command_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
        }
    }

    /// Signs in to the data nodes with this password and, when given, ACL user (instead of any
    /// in the URLs).
    pub fn credentials(mut self, username: Option<String>, password: impl Into<String>) -> Self {
        self.username = username;
        self.password = Some(password.into());
        self
    }

    /// The password of the sentinels themselves (`requirepass` of the sentinel processes).
    pub fn sentinel_password(mut self, password: impl Into<String>) -> Self {
        self.sentinel_password = Some(password.into());
        self
    }

    /// Trust only the CA certificates in this PEM file for `rediss://` servers (one server or
    /// cluster nodes), instead of the system store (oauth2-proxy's `--redis-ca-path`).
    pub fn ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    fn tls_certificates(&self) -> Result<Option<redis::TlsCertificates>, StoreError> {
        let Some(path) = &self.ca_file else {
            return Ok(None);
        };
        let pem = std::fs::read(path).map_err(|err| StoreError::Config {
            detail: format!("Redis CA file {}: {err}", path.display()),
        })?;
        Ok(Some(redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem),
        }))
    }

    /// Prefix for every key this store writes, so several deployments can share one Redis.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// How long one command may take before it fails with [`StoreError::TimedOut`].
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// How long one connection attempt may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// `info`'s Redis settings with this configuration's credentials applied.
    fn sign_in(&self, info: redis::RedisConnectionInfo) -> redis::RedisConnectionInfo {
        let mut info = info;
        if let Some(password) = &self.password {
            info = info.set_password(password);
        }
        if let Some(username) = &self.username {
            info = info.set_username(username);
        }
        info
    }

    fn connection_info(&self, url: &str) -> Result<redis::ConnectionInfo, StoreError> {
        let info = url.into_connection_info().map_err(config_error)?;
        let settings = self.sign_in(info.redis_settings().clone());
        Ok(info.set_redis_settings(settings))
    }
}

fn config_error(err: redis::RedisError) -> StoreError {
    StoreError::Config {
        detail: err.to_string(),
    }
}

/// How commands reach Redis.
enum Backend {
    /// One connection to the primary (a single server, or the one Sentinel names).
    Primary { link: Link, sentinel: bool },
    /// The cluster client, which routes each command to the node owning its key and follows
    /// the cluster's own failovers.
    Cluster(Box<ClusterLink>),
}

/// The cluster connection, made on first use (and retried by the next command if that failed).
struct ClusterLink {
    client: redis::cluster::ClusterClient,
    connection: tokio::sync::OnceCell<ClusterConnection>,
}

impl ClusterLink {
    async fn connection(&self) -> Result<ClusterConnection, StoreError> {
        self.connection
            .get_or_try_init(|| async {
                self.client
                    .get_async_connection()
                    .await
                    .map_err(|err| StoreError::Unavailable {
                        backend: BACKEND,
                        detail: err.to_string(),
                    })
            })
            .await
            .cloned()
    }
}

/// A [`SessionStore`] in Redis. Cheap to clone; clones share one connection, which is replaced
/// as soon as it breaks: the first command after Redis comes back reconnects before it is
/// answered, and a command whose repetition changes nothing is sent once more when the
/// connection broke under it.
#[derive(Clone)]
pub struct RedisStore {
    backend: Arc<Backend>,
    key_prefix: String,
    command_timeout: Duration,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

/// Whether a command may be sent a second time after its connection broke while it was in
/// flight (it may or may not have run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Running it twice leaves Redis as running it once would (GET, SET of the same value, DEL).
    Safe,
    /// A second run could answer differently (SET NX: the first run may have taken the lock).
    Never,
}

/// One command or one pipeline, sent as a unit.
#[derive(Clone, Copy)]
enum Request<'a> {
    Command(&'a redis::Cmd),
    Pipeline(&'a redis::Pipeline),
}

impl Request<'_> {
    async fn send<T: redis::FromRedisValue>(
        self,
        connection: &mut (impl ConnectionLike + Send),
    ) -> redis::RedisResult<T> {
        match self {
            Request::Command(command) => command.query_async(connection).await,
            Request::Pipeline(pipeline) => pipeline.query_async(connection).await,
        }
    }
}

impl RedisStore {
    /// A store for `config`. Connections are made lazily: this succeeds while Redis is down,
    /// and the first command then fails with [`StoreError::Unavailable`]. Must be called inside a
    /// tokio runtime.
    pub fn new(config: RedisStoreConfig) -> Result<Self, StoreError> {
        let backend = match &config.topology {
            Topology::Single { url } => {
                let info = config.connection_info(url)?;
                let client = match config.tls_certificates()? {
                    Some(certificates) if url.starts_with("rediss://") => {
                        redis::Client::build_with_tls(info, certificates)
                    }
                    _ => redis::Client::open(info),
                }
                .map_err(config_error)?;
                Backend::Primary {
                    link: Link::new(Connector::Direct(client), config.connect_timeout),
                    sentinel: false,
                }
            }
            Topology::Sentinel {
                master_name,
                sentinels,
            } => {
                if sentinels.is_empty() {
                    return Err(StoreError::Config {
                        detail: "no sentinel URL given".to_owned(),
                    });
                }
                let mut sentinel_infos = Vec::with_capacity(sentinels.len());
                for url in sentinels {
                    let info = url.as_str().into_connection_info().map_err(config_error)?;
                    let info = match &config.sentinel_password {
                        Some(password) => {
                            let settings = info.redis_settings().clone().set_password(password);
                            info.set_redis_settings(settings)
                        }
                        None => info,
                    };
                    sentinel_infos.push(info);
                }
                let tls = sentinels.iter().any(|url| url.starts_with("rediss://"));
                let mut primary = redis::sentinel::SentinelNodeConnectionInfo::default()
                    .set_redis_connection_info(
                        config.sign_in(redis::RedisConnectionInfo::default()),
                    );
                if tls {
                    primary = primary.set_tls_mode(redis::TlsMode::Secure);
                }
                let client = redis::sentinel::SentinelClient::build(
                    sentinel_infos,
                    master_name.clone(),
                    Some(primary),
                    redis::sentinel::SentinelServerType::Master,
                )
                .map_err(config_error)?;
                Backend::Primary {
                    link: Link::new(
                        Connector::Sentinel(tokio::sync::Mutex::new(client)),
                        config.connect_timeout,
                    ),
                    sentinel: true,
                }
            }
            Topology::Cluster { nodes } => {
                let mut infos = Vec::with_capacity(nodes.len());
                for url in nodes {
                    infos.push(config.connection_info(url)?);
                }
                let tls = nodes.iter().any(|url| url.starts_with("rediss://"));
                let mut builder = redis::cluster::ClusterClientBuilder::new(infos)
                    .connection_timeout(config.connect_timeout)
                    .response_timeout(config.command_timeout)
                    .retries(2)
                    .min_retry_wait(20)
                    .max_retry_wait(200);
                if let Some(password) = &config.password {
                    builder = builder.password(password);
                }
                if let Some(username) = &config.username {
                    builder = builder.username(username);
                }
                if tls {
                    builder = builder.tls(redis::TlsMode::Secure);
                    if let Some(certificates) = config.tls_certificates()? {
                        builder = builder.certs(certificates);
                    }
                }
                Backend::Cluster(Box::new(ClusterLink {
                    client: builder.build().map_err(config_error)?,
                    connection: tokio::sync::OnceCell::new(),
                }))
            }
        };
        Ok(RedisStore {
            backend: Arc::new(backend),
            key_prefix: config.key_prefix,
            command_timeout: config.command_timeout,
        })
    }

    /// Sends `PING`; `Ok` when Redis answers (for readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self
            .run(Request::Command(&redis::cmd("PING")), Repeat::Safe)
            .await?;
        Ok(())
    }

    fn session_name(&self, key: &StoreKey) -> String {
        format!("{}s:{}", self.key_prefix, key.to_hex())
    }

    fn tag_name(&self, tag: &StoreKey) -> String {
        format!("{}t:{}", self.key_prefix, tag.to_hex())
    }

    fn lock_name(&self, name: &StoreKey) -> String {
        format!("{}l:{}", self.key_prefix, name.to_hex())
    }

    fn is_cluster(&self) -> bool {
        matches!(*self.backend, Backend::Cluster(_))
    }

    /// Sends `request` within the command timeout, reconnecting first when the connection is
    /// gone.
    async fn run<T: redis::FromRedisValue>(
        &self,
        request: Request<'_>,
        repeat: Repeat,
    ) -> Result<T, StoreError> {
        let deadline = Instant::now() + self.command_timeout;
        let sent = async {
            match &*self.backend {
                Backend::Primary { link, sentinel } => {
                    self.send_to_primary(link, *sentinel, request, repeat, deadline)
                        .await
                }
                Backend::Cluster(cluster) => {
                    let mut connection = cluster.connection().await?;
                    request
                        .send(&mut connection)
                        .await
                        .map_err(|err| classify(err, self.command_timeout))
                }
            }
        };
        match tokio::time::timeout_at(deadline, sent).await {
            Ok(result) => result,
            Err(_elapsed) => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> StoreError {
        StoreError::TimedOut {
            backend: BACKEND,
            after: self.command_timeout,
        }
    }

    async fn send_to_primary<T: redis::FromRedisValue>(
        &self,
        link: &Link,
        sentinel: bool,
        request: Request<'_>,
        repeat: Repeat,
        deadline: Instant,
    ) -> Result<T, StoreError> {
        let mut leased = link.connection().await?;
        let sent = tokio::time::timeout_at(deadline, request.send(&mut leased.connection)).await;
        let err = match sent {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => err,
            Err(_elapsed) => {
                // A primary that stopped answering may have been replaced by a failover: ask
                // the sentinels again next time. A lone server is waited for instead.
                if sentinel {
                    link.discard(leased.generation);
                }
                return Err(self.timed_out());
            }
        };
        if !breaks_connection(&err) {
            return Err(classify(err, self.command_timeout));
        }
        link.discard(leased.generation);
        if repeat == Repeat::Never {
            return Err(classify(err, self.command_timeout));
        }
        tracing::debug!(%err, "redis connection broke under a command; reconnecting to repeat it");
        let mut leased = link.connection().await?;
        request.send(&mut leased.connection).await.map_err(|err| {
            if breaks_connection(&err) {
                link.discard(leased.generation);
            }
            classify(err, self.command_timeout)
        })
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StoreError> {
        let command = redis::cmd("GET").arg(self.session_name(key)).clone();
        self.run(Request::Command(&command), Repeat::Safe).await
    }

    async fn save(
        &self,
        key: &StoreKey,
        value: &[u8],
        tags: &[StoreKey],
        ttl: Duration,
    ) -> Result<(), StoreError> {
        check_ttl(ttl)?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let member = key.to_hex();
        if self.is_cluster() {
            return self.save_in_cluster(key, value, tags, ttl_ms).await;
        }
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .cmd("SET")
            .arg(self.session_name(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms)
            .ignore();
        for tag in tags {
            let name = self.tag_name(tag);
            pipeline.cmd("SADD").arg(&name).arg(&member).ignore();
            pipeline
                .cmd("PEXPIRE")
                .arg(&name)
                .arg(ttl_ms)
                .arg("NX")
                .ignore();
            pipeline
                .cmd("PEXPIRE")
                .arg(&name)
                .arg(ttl_ms)
                .arg("GT")
                .ignore();
        }
        // The same value, members and TTLs written twice leave the same state.
        self.run(Request::Pipeline(&pipeline), Repeat::Safe).await
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), StoreError> {
        let command = redis::cmd("DEL").arg(self.session_name(key)).clone();
        let _: u64 = self.run(Request::Command(&command), Repeat::Safe).await?;
        Ok(())
    }

    async fn delete_tagged(&self, tag: &StoreKey) -> Result<usize, StoreError> {
        if self.is_cluster() {
            return self.delete_tagged_in_cluster(tag).await;
        }
        let command = redis::cmd("EVAL")
            .arg(DELETE_TAGGED_SCRIPT)
            .arg(1)
            .arg(self.tag_name(tag))
            .arg(format!("{}s:", self.key_prefix))
            .clone();
        // A second run finds the index gone and removes nothing more; the count it reports is
        // then too low, never the sessions left alive.
        let removed: u64 = self.run(Request::Command(&command), Repeat::Safe).await?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    async fn try_lock(
        &self,
        name: &StoreKey,
        token: &LockToken,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        check_ttl(ttl)?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let command = redis::cmd("SET")
            .arg(self.lock_name(name))
            .arg(token.as_bytes().as_slice())
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .clone();
        // Not repeated: had the first SET run, the second would find our own lock and say no.
        let taken: Option<String> = self.run(Request::Command(&command), Repeat::Never).await?;
        Ok(taken.is_some())
    }

    async fn unlock(&self, name: &StoreKey, token: &LockToken) -> Result<bool, StoreError> {
        let command = redis::cmd("EVAL")
            .arg(UNLOCK_SCRIPT)
            .arg(1)
            .arg(self.lock_name(name))
            .arg(token.as_bytes().as_slice())
            .clone();
        let released: u64 = self.run(Request::Command(&command), Repeat::Safe).await?;
        Ok(released == 1)
    }
}

/// Cluster forms of the multi-key operations: each command touches one key, so each can go to
/// the node that owns it.
impl RedisStore {
    async fn save_in_cluster(
        &self,
        key: &StoreKey,
        value: &[u8],
        tags: &[StoreKey],
        ttl_ms: u64,
    ) -> Result<(), StoreError> {
        let member = key.to_hex();
        let set = redis::cmd("SET")
            .arg(self.session_name(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms)
            .clone();
        let () = self.run(Request::Command(&set), Repeat::Safe).await?;
        for tag in tags {
            let name = self.tag_name(tag);
            let mut pipeline = redis::pipe();
            pipeline
                .atomic()
                .cmd("SADD")
                .arg(&name)
                .arg(&member)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&name)
                .arg(ttl_ms)
                .arg("NX")
                .ignore()
                .cmd("PEXPIRE")
                .arg(&name)
                .arg(ttl_ms)
                .arg("GT")
                .ignore();
            let () = self.run(Request::Pipeline(&pipeline), Repeat::Safe).await?;
        }
        Ok(())
    }

    async fn delete_tagged_in_cluster(&self, tag: &StoreKey) -> Result<usize, StoreError> {
        let name = self.tag_name(tag);
        let members: Vec<String> = self
            .run(
                Request::Command(&redis::cmd("SMEMBERS").arg(&name).clone()),
                Repeat::Safe,
            )
            .await?;
        let mut removed = 0usize;
        for member in members {
            // Members are digests this store wrote; anything else in the set is skipped.
            let Some(session) = StoreKey::from_hex(&member) else {
                continue;
            };
            let command = redis::cmd("DEL").arg(self.session_name(&session)).clone();
            let count: u64 = self.run(Request::Command(&command), Repeat::Safe).await?;
            removed = removed.saturating_add(usize::try_from(count).unwrap_or(usize::MAX));
        }
        let _: u64 = self
            .run(
                Request::Command(&redis::cmd("DEL").arg(&name).clone()),
                Repeat::Safe,
            )
            .await?;
        Ok(removed)
    }
}

/// True when the connection that gave `err` cannot be used again: it is closed, reset, or now
/// leads to a node that no longer takes writes (a demoted primary after a failover).
fn breaks_connection(err: &redis::RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
        || matches!(
            err.kind(),
            redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
        )
}

/// Sorts a Redis error into "cannot reach" (the session may exist) and "refused".
fn classify(err: redis::RedisError, command_timeout: Duration) -> StoreError {
    if err.is_timeout() {
        return StoreError::TimedOut {
            backend: BACKEND,
            after: command_timeout,
        };
    }
    let loading = matches!(
        err.kind(),
        redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading)
    );
    if loading
        || err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_unrecoverable_error()
    {
        StoreError::Unavailable {
            backend: BACKEND,
            detail: err.to_string(),
        }
    } else {
        StoreError::Backend {
            backend: BACKEND,
            detail: err.to_string(),
        }
    }
}
