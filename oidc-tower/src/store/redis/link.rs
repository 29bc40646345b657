//! One multiplexed connection to the Redis that takes writes, replaced as soon as it breaks.
//!
//! A connection attempt is a shared future: concurrent callers wait on the same attempt, and an
//! attempt that failed stays failed only until the next caller sees it, which starts a fresh one
//! and waits for it. So the first request after Redis comes back reconnects before it is
//! answered instead of being failed by the outage's last attempt.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

use super::BACKEND;
use crate::store::StoreError;

/// How to open a connection to the node that takes writes.
pub(super) enum Connector {
    /// A single server at a fixed address.
    Direct(redis::Client),
    /// Asks the sentinels which node is the primary of the group, then connects to it.
    Sentinel(tokio::sync::Mutex<redis::sentinel::SentinelClient>),
}

impl Connector {
    async fn connect(
        &self,
        config: &AsyncConnectionConfig,
    ) -> redis::RedisResult<MultiplexedConnection> {
        match self {
            Connector::Direct(client) => {
                client
                    .get_multiplexed_async_connection_with_config(config)
                    .await
            }
            Connector::Sentinel(sentinel) => {
                let client = sentinel.lock().await.async_get_client().await?;
                client
                    .get_multiplexed_async_connection_with_config(config)
                    .await
            }
        }
    }
}

/// Why a connection attempt failed, kept so that every caller waiting on it can be told.
#[derive(Debug, Clone)]
pub(super) struct ConnectFailure {
    pub(super) timed_out: bool,
    pub(super) detail: String,
}

impl ConnectFailure {
    pub(super) fn into_store_error(self, connect_timeout: Duration) -> StoreError {
        if self.timed_out {
            StoreError::TimedOut {
                backend: BACKEND,
                after: connect_timeout,
            }
        } else {
            StoreError::Unavailable {
                backend: BACKEND,
                detail: self.detail,
            }
        }
    }
}

type ConnectFuture = Shared<BoxFuture<'static, Result<MultiplexedConnection, ConnectFailure>>>;

struct Attempt {
    generation: u64,
    connection: ConnectFuture,
}

/// The current connection (or attempt at one) to the node that takes writes.
pub(super) struct Link {
    connector: Arc<Connector>,
    connect_timeout: Duration,
    current: Mutex<Arc<Attempt>>,
    generations: AtomicU64,
}

/// A usable connection and the generation it belongs to, for [`Link::discard`].
pub(super) struct Leased {
    pub(super) generation: u64,
    pub(super) connection: MultiplexedConnection,
}

impl Link {
    /// A link that connects on first use.
    pub(super) fn new(connector: Connector, connect_timeout: Duration) -> Self {
        let connector = Arc::new(connector);
        let first = Arc::new(Attempt {
            generation: 0,
            connection: start_attempt(connector.clone(), connect_timeout),
        });
        Link {
            connector,
            connect_timeout,
            current: Mutex::new(first),
            generations: AtomicU64::new(1),
        }
    }

    /// A connection, waiting for one attempt; when the current attempt has already failed (Redis
    /// was down when it ran), a fresh one is started and waited for before giving up.
    pub(super) async fn connection(&self) -> Result<Leased, StoreError> {
        let attempt = self.current();
        match attempt.connection.clone().await {
            Ok(connection) => Ok(Leased {
                generation: attempt.generation,
                connection,
            }),
            Err(_stale) => {
                let fresh = self.replace(attempt.generation);
                fresh
                    .connection
                    .clone()
                    .await
                    .map(|connection| Leased {
                        generation: fresh.generation,
                        connection,
                    })
                    .map_err(|failure| failure.into_store_error(self.connect_timeout))
            }
        }
    }

    /// Drops the connection of `generation` after it broke; the next caller reconnects. A newer
    /// connection made meanwhile by another caller is kept.
    pub(super) fn discard(&self, generation: u64) {
        self.replace(generation);
    }

    fn current(&self) -> Arc<Attempt> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Starts a new attempt unless the current one is already newer than `generation`; returns
    /// whichever is current afterwards.
    fn replace(&self, generation: u64) -> Arc<Attempt> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.generation == generation {
            *current = Arc::new(Attempt {
                generation: self.generations.fetch_add(1, Ordering::Relaxed),
                connection: start_attempt(self.connector.clone(), self.connect_timeout),
            });
        }
        current.clone()
    }
}

/// A connection attempt that runs when first awaited. Commands carry their own deadline, so the
/// connection itself has no response timeout.
fn start_attempt(connector: Arc<Connector>, connect_timeout: Duration) -> ConnectFuture {
    async move {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(None);
        match tokio::time::timeout(connect_timeout, connector.connect(&config)).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(err)) => Err(ConnectFailure {
                timed_out: err.is_timeout(),
                detail: err.to_string(),
            }),
            Err(_elapsed) => Err(ConnectFailure {
                timed_out: true,
                detail: "connecting took too long".to_owned(),
            }),
        }
    }
    .boxed()
    .shared()
}
