//! A store in Redis, shared by every replica, with tag indexes for server-side revocation.
//!
//! Layout under the configured prefix (default `oidc:`), all names being SHA-256 hex digests:
//! `{prefix}s:{session}` holds the sealed session with a `PX` TTL; `{prefix}t:{tag}` is a set of
//! session digests whose TTL is extended to cover its longest-lived member (`PEXPIRE NX` then
//! `PEXPIRE GT`, so Redis 7.0 or newer is required). Revocation runs as one Lua script, so a
//! session saved concurrently is either revoked or keeps a valid tag entry.
//!
//! After an outage the first command reconnects before it is answered (see `link`), and a command
//! that running twice cannot change (every one here but a lock acquisition) is sent once more
//! when its connection broke while it was in flight.

use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;

use self::link::{Connector, Link};
use super::{SessionStore, StoreError, StoreKey, check_ttl};

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

/// Where and how to reach Redis.
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreConfig {
    url: String,
    key_prefix: String,
    command_timeout: Duration,
    connect_timeout: Duration,
}

impl RedisStoreConfig {
    /// Redis at `url` (`redis://host:port/db`, `rediss://` when built with TLS support),
    /// prefix `oidc:`, 1 s command timeout, 2 s connect timeout.
    pub fn new(url: impl Into<String>) -> Self {
        RedisStoreConfig {
            url: url.into(),
            key_prefix: "oidc:".to_owned(),
            command_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
        }
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
}

/// A [`SessionStore`] in Redis. Cheap to clone; clones share one multiplexed connection, which
/// is replaced as soon as it breaks: the first command after Redis comes back reconnects before
/// it is answered, and a command whose repetition changes nothing is sent once more when the
/// connection broke under it.
#[derive(Clone)]
pub struct RedisStore {
    link: Arc<Link>,
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
        connection: &mut MultiplexedConnection,
    ) -> redis::RedisResult<T> {
        match self {
            Request::Command(command) => command.query_async(connection).await,
            Request::Pipeline(pipeline) => pipeline.query_async(connection).await,
        }
    }
}

impl RedisStore {
    /// A store for `config`. The connection is made lazily: this succeeds while Redis is down,
    /// and the first command then fails with [`StoreError::Unavailable`]. Must be called inside a
    /// tokio runtime.
    pub fn new(config: RedisStoreConfig) -> Result<Self, StoreError> {
        let client =
            redis::Client::open(config.url.as_str()).map_err(|err| StoreError::Config {
                detail: err.to_string(),
            })?;
        Ok(RedisStore {
            link: Arc::new(Link::new(Connector::Direct(client), config.connect_timeout)),
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

    /// Sends `request` within the command timeout, reconnecting first when the connection is
    /// gone.
    async fn run<T: redis::FromRedisValue>(
        &self,
        request: Request<'_>,
        repeat: Repeat,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.command_timeout, self.send(request, repeat)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(StoreError::TimedOut {
                backend: BACKEND,
                after: self.command_timeout,
            }),
        }
    }

    async fn send<T: redis::FromRedisValue>(
        &self,
        request: Request<'_>,
        repeat: Repeat,
    ) -> Result<T, StoreError> {
        let mut leased = self.link.connection().await?;
        let err = match request.send(&mut leased.connection).await {
            Ok(value) => return Ok(value),
            Err(err) => err,
        };
        if !breaks_connection(&err) {
            return Err(classify(err, self.command_timeout));
        }
        self.link.discard(leased.generation);
        if repeat == Repeat::Never {
            return Err(classify(err, self.command_timeout));
        }
        tracing::debug!(%err, "redis connection broke under a command; reconnecting to repeat it");
        let mut leased = self.link.connection().await?;
        request.send(&mut leased.connection).await.map_err(|err| {
            if breaks_connection(&err) {
                self.link.discard(leased.generation);
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
