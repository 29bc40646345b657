//! Cutting off a body that stops moving: a stalled upstream or client does not hold a
//! connection (and its buffers) forever.
//!
//! The clock restarts at every frame, so a long download that keeps moving is never cut; only
//! a gap longer than the idle timeout between two frames is.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::{BoxError, ProxyError};

pin_project_lite::pin_project! {
    /// A body that fails with [`ProxyError::BodyIdle`] when no frame arrives for `idle`.
    pub(crate) struct IdleTimeoutBody<B> {
        #[pin]
        inner: B,
        timer: Pin<Box<Sleep>>,
        idle: Duration,
    }
}

impl<B> IdleTimeoutBody<B> {
    pub(crate) fn new(inner: B, idle: Duration) -> Self {
        IdleTimeoutBody {
            inner,
            timer: Box::pin(tokio::time::sleep(idle)),
            idle,
        }
    }
}

impl<B> Body for IdleTimeoutBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer.as_mut().reset(Instant::now() + *this.idle);
                Poll::Ready(frame.map(|result| result.map_err(Into::into)))
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    tracing::debug!(idle = ?this.idle, "body idle for too long; cutting it off");
                    Poll::Ready(Some(Err(Box::new(ProxyError::BodyIdle {
                        after: *this.idle,
                    }))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
