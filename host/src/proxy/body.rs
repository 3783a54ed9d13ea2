//! Body types: the boxed body the proxy answers with, a request body capped at the size limit
//! while it streams, and a response body that reports once when it is done.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use thiserror::Error;

use super::error::BoxError;

/// The body of every response the proxy sends.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Raised by [`CappedBody`] when the stream passes the limit.
#[derive(Debug, Error)]
#[error("body larger than {limit} bytes")]
pub struct BodyTooLarge {
    /// The limit.
    pub limit: u64,
}

/// Shared counters of a request body, readable after the body has been handed to the client.
#[derive(Debug, Clone, Default)]
pub struct BodyMeter(Arc<MeterInner>);

#[derive(Debug, Default)]
struct MeterInner {
    bytes: AtomicU64,
    over_limit: AtomicBool,
}

impl BodyMeter {
    /// Bytes that went through so far.
    pub fn bytes(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }

    /// True once the body passed its limit.
    pub fn over_limit(&self) -> bool {
        self.0.over_limit.load(Ordering::Relaxed)
    }
}

/// A body that fails with [`BodyTooLarge`] as soon as more than `limit` bytes arrive, so a
/// chunked body cannot get past the limit by never declaring its size.
pub struct CappedBody<B> {
    inner: B,
    limit: u64,
    meter: BodyMeter,
}

impl<B> CappedBody<B> {
    /// Cap `inner` at `limit` bytes, counting into `meter`.
    pub fn new(inner: B, limit: u64, meter: BodyMeter) -> Self {
        Self {
            inner,
            limit,
            meter,
        }
    }
}

impl<B> Body for CappedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    let total = this.meter.0.bytes.fetch_add(len, Ordering::Relaxed) + len;
                    if total > this.limit {
                        this.meter.0.over_limit.store(true, Ordering::Relaxed);
                        let limit = this.limit;
                        return Poll::Ready(Some(Err(Box::new(BodyTooLarge { limit }))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Called once with the number of body bytes sent when a response body is done.
pub type OnDone = Box<dyn FnOnce(u64) + Send>;

/// A response body that calls its hook exactly once: at end of stream, or when dropped
/// (the client went away, or hyper finished with it without polling to the end).
pub struct Completion<B> {
    inner: B,
    sent: u64,
    on_done: Option<OnDone>,
}

impl<B> Drop for Completion<B> {
    fn drop(&mut self) {
        if let Some(done) = self.on_done.take() {
            done(self.sent);
        }
    }
}

impl<B> Completion<B> {
    /// Wrap `inner`; `on_done` runs once when the body is finished or dropped.
    pub fn new(inner: B, on_done: OnDone) -> Self {
        Self {
            inner,
            sent: 0,
            on_done: Some(on_done),
        }
    }
}

impl<B> Body for Completion<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += u64::try_from(data.len()).unwrap_or(u64::MAX);
                }
            }
            Poll::Ready(None) => {
                if let Some(done) = this.on_done.take() {
                    done(this.sent);
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn capped_body_fails_past_the_limit() {
        let meter = BodyMeter::default();
        let body = CappedBody::new(
            Full::new(Bytes::from_static(b"0123456789")),
            5,
            meter.clone(),
        );
        assert!(body.collect().await.is_err());
        assert!(meter.over_limit());
    }

    #[tokio::test]
    async fn capped_body_passes_within_the_limit() {
        let meter = BodyMeter::default();
        let body = CappedBody::new(
            Full::new(Bytes::from_static(b"0123456789")),
            10,
            meter.clone(),
        );
        let bytes = body.collect().await.map(|c| c.to_bytes()).ok();
        assert_eq!(bytes.as_deref(), Some(&b"0123456789"[..]));
        assert_eq!(meter.bytes(), 10);
    }

    #[tokio::test]
    async fn completion_fires_once() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let seen = calls.clone();
        let body = Completion::new(
            Full::new(Bytes::from_static(b"abc")),
            Box::new(move |n| seen.lock().map(|mut v| v.push(n)).unwrap_or(())),
        );
        let _ = body.collect().await;
        assert_eq!(*calls.lock().unwrap_or_else(|e| e.into_inner()), vec![3]);
    }
}
