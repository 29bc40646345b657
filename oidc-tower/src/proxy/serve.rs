//! Running a tower service on hyper's server, with graceful shutdown, and without letting a
//! client that stops reading hold its connection forever.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::Sleep;
use tower::ServiceExt as _;
use tower_service::Service;

use super::{BoxError, PeerAddr};

/// How long a client may refuse to take more response bytes before its connection is closed,
/// unless [`serve_with_stall_timeout`] says otherwise.
pub const DEFAULT_WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Serves `service` on `listener` (HTTP/1.1 with upgrades, and HTTP/2) until `shutdown`
/// completes, then stops accepting, lets in-flight requests finish and returns.
///
/// Each request carries the client's address as a [`PeerAddr`] extension. Idle keep-alive
/// connections are closed at shutdown; to bound the drain, wrap the call in
/// `tokio::time::timeout`. Accept errors (such as running out of file descriptors) are logged
/// and retried after a short pause, never fatal. A client that takes no response byte for
/// [`DEFAULT_WRITE_STALL_TIMEOUT`] loses its connection.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    serve_with_stall_timeout(listener, service, shutdown, DEFAULT_WRITE_STALL_TIMEOUT).await
}

/// [`serve`], closing a client's connection once writing to it has been blocked (the client
/// reads nothing) for `write_stall_timeout`.
pub async fn serve_with_stall_timeout<S, B>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()> + Send,
    write_stall_timeout: Duration,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = service
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            });
        let connection = builder
            .serve_connection_with_upgrades(
                TokioIo::new(StallGuard::new(stream, write_stall_timeout)),
                TowerToHyperService::new(service),
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%err, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Completes on Ctrl-C or, on Unix, SIGTERM: the usual shutdown signal for [`serve`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

pin_project_lite::pin_project! {
    /// A connection whose writes fail with `TimedOut` once they have been blocked for `limit`:
    /// the peer stopped reading, and its share of buffers and upstream connections is released.
    struct StallGuard<T> {
        #[pin]
        io: T,
        limit: Duration,
        blocked: Option<Pin<Box<Sleep>>>,
    }
}

impl<T> StallGuard<T> {
    fn new(io: T, limit: Duration) -> Self {
        StallGuard {
            io,
            limit,
            blocked: None,
        }
    }
}

/// What a write that returned `result` means once the stall clock is taken into account.
fn watch_stall<R>(
    blocked: &mut Option<Pin<Box<Sleep>>>,
    limit: Duration,
    cx: &mut Context<'_>,
    result: Poll<std::io::Result<R>>,
) -> Poll<std::io::Result<R>> {
    match result {
        Poll::Ready(result) => {
            *blocked = None;
            Poll::Ready(result)
        }
        Poll::Pending => {
            let timer = blocked.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
            match timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client took no data for the write stall timeout",
                ))),
                Poll::Pending => Poll::Pending,
            }
        }
    }
}

impl<T: AsyncRead> AsyncRead for StallGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for StallGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.project();
        let result = this.io.poll_write(cx, buf);
        watch_stall(this.blocked, *this.limit, cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.project();
        let result = this.io.poll_write_vectored(cx, bufs);
        watch_stall(this.blocked, *this.limit, cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.project();
        let result = this.io.poll_flush(cx);
        watch_stall(this.blocked, *this.limit, cx, result)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }
}
