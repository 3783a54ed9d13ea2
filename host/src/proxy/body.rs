//! Body types: the boxed body the proxy answers with, a request body capped at the size limit
//! while it streams, and a response body that reports once when it is done.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use thiserror::Error;

use super::budget::BufferCharge;
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

/// Raised by [`CappedBody`] when buffering the next frame would pass `[limits]
/// max_buffered_bytes` (see [`super::budget`]).
#[derive(Debug, Error)]
#[error("the gateway's buffer for request bodies is full")]
pub struct BudgetExhausted;

/// Shared counters of a request body, readable after the body has been handed to the client.
#[derive(Debug, Clone, Default)]
pub struct BodyMeter(Arc<MeterInner>);

#[derive(Debug, Default)]
struct MeterInner {
    bytes: AtomicU64,
    over_limit: AtomicBool,
    /// Milliseconds of the body read timeout that passed, once it did; 0 before.
    stalled_ms: AtomicU64,
    /// The global buffer budget refused a frame.
    over_budget: AtomicBool,
    /// Why the client's body could not be read (malformed chunked framing, a reset stream), once
    /// it failed: a client error, whoever polled the body.
    client_error: OnceLock<String>,
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

    /// True once the global buffer budget refused a frame ([`BudgetExhausted`]).
    pub fn over_budget(&self) -> bool {
        self.0.over_budget.load(Ordering::Relaxed)
    }

    /// Why the client's body failed (not the limit, budget or timeout), once it did.
    pub fn client_error(&self) -> Option<&str> {
        self.0.client_error.get().map(String::as_str)
    }

    /// The body read timeout, once the client let it pass ([`BodyReadTimeout`]).
    pub fn stalled(&self) -> Option<Duration> {
        match self.0.stalled_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }
}

/// A body that fails with [`BodyTooLarge`] as soon as more than `limit` bytes arrive, so a
/// chunked body cannot get past the limit by never declaring its size.
pub struct CappedBody<B> {
    inner: B,
    limit: u64,
    meter: BodyMeter,
    /// Charged per frame when the body is being buffered.
    charge: Option<BufferCharge>,
}

impl<B> CappedBody<B> {
    /// Cap `inner` at `limit` bytes, counting into `meter`.
    pub fn new(inner: B, limit: u64, meter: BodyMeter) -> Self {
        Self {
            inner,
            limit,
            meter,
            charge: None,
        }
    }

    /// Charge every data frame to `charge` (the body is being buffered): past the global
    /// budget the body fails with [`BudgetExhausted`].
    pub fn charged(mut self, charge: BufferCharge) -> Self {
        self.charge = Some(charge);
        self
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
                    if this.charge.as_ref().is_some_and(|c| !c.take(len)) {
                        this.meter.0.over_budget.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(BudgetExhausted))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let e: BoxError = e.into();
                // Remembered here because whoever polls the body (the upstream client) wraps
                // the error in its own.
                if let Some(stalled) = e.downcast_ref::<BodyReadTimeout>() {
                    let ms = u64::try_from(stalled.timeout.as_millis()).unwrap_or(u64::MAX);
                    this.meter.0.stalled_ms.store(ms.max(1), Ordering::Relaxed);
                } else {
                    let _ = this.meter.0.client_error.set(root_cause(&*e));
                }
                Poll::Ready(Some(Err(e)))
            }
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

/// The innermost message of an error chain (hyper's "error reading a body from connection"
/// wraps the parser's own reason, e.g. "Invalid chunk size line: Invalid Size").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// Raised by [`TimedBody`] when the client sends nothing of its body for the timeout.
#[derive(Debug, Error)]
#[error("the request body stalled: nothing arrived for {timeout:?}")]
pub struct BodyReadTimeout {
    /// The body read timeout.
    pub timeout: Duration,
}

/// A request body that fails with [`BodyReadTimeout`] when it is being read and no frame
/// arrives for `timeout` (the clock restarts at every frame, like nginx's
/// `client_body_timeout`). Whoever reads it sees the error: the upstream request is aborted,
/// and the handler answers 408.
pub struct TimedBody<B> {
    inner: B,
    timeout: Duration,
    /// Made on the first wait: most bodies (a GET's empty one, a small one already read with
    /// the head) never wait, and pay no allocation or clock read for it.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The sleep runs from the last frame (or the first read); re-armed on the next wait.
    armed: bool,
    failed: bool,
}

impl<B> TimedBody<B> {
    /// Fail `inner` when it stalls for `timeout`.
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            sleep: None,
            armed: false,
            failed: false,
        }
    }
}

impl<B> Body for TimedBody<B>
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
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if !this.armed {
                    this.armed = true;
                    let deadline = tokio::time::Instant::now() + this.timeout;
                    match &mut this.sleep {
                        Some(sleep) => sleep.as_mut().reset(deadline),
                        None => this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                let fired = (this.sleep.as_mut()).is_some_and(|s| s.as_mut().poll(cx).is_ready());
                if !fired {
                    return Poll::Pending;
                }
                this.failed = true;
                let timeout = this.timeout;
                Poll::Ready(Some(Err(Box::new(BodyReadTimeout { timeout }))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Called once with the number of body bytes sent when a response body is done.
pub type OnDone = Box<dyn FnOnce(u64) + Send>;

/// A response body that calls its hook exactly once: at end of stream, or when dropped
/// (the client went away, or hyper finished with it without polling to the end). The hook is
/// stored inline, so the body and its hook take one allocation when boxed.
pub struct Completion<B, F: FnOnce(u64) = OnDone> {
    inner: B,
    sent: u64,
    on_done: Option<F>,
}

impl<B, F: FnOnce(u64)> Drop for Completion<B, F> {
    fn drop(&mut self) {
        if let Some(done) = self.on_done.take() {
            done(self.sent);
        }
    }
}

impl<B, F: FnOnce(u64)> Completion<B, F> {
    /// Wrap `inner`; `on_done` runs once when the body is finished or dropped.
    pub fn new(inner: B, on_done: F) -> Self {
        Self {
            inner,
            sent: 0,
            on_done: Some(on_done),
        }
    }
}

impl<B, F> Body for Completion<B, F>
where
    B: Body<Data = Bytes> + Unpin,
    F: FnOnce(u64) + Unpin,
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
    async fn timed_body_fails_when_the_client_stalls() {
        let (mut tx, rx) = futures_channel_body();
        let meter = BodyMeter::default();
        let body = CappedBody::new(
            TimedBody::new(rx, Duration::from_millis(200)),
            100,
            meter.clone(),
        );
        tx.send(Bytes::from_static(b"half"));
        let started = tokio::time::Instant::now();
        let result = body.collect().await;
        assert!(result.is_err());
        assert_eq!(meter.stalled(), Some(Duration::from_millis(200)));
        assert_eq!(meter.bytes(), 4);
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(tx);
    }

    /// A body fed by hand: frames sent, then silence while the sender lives.
    fn futures_channel_body() -> (ChannelTx, ChannelBody) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (ChannelTx(tx), ChannelBody(rx))
    }

    struct ChannelTx(tokio::sync::mpsc::UnboundedSender<Bytes>);

    impl ChannelTx {
        fn send(&mut self, bytes: Bytes) {
            let _ = self.0.send(bytes);
        }
    }

    struct ChannelBody(tokio::sync::mpsc::UnboundedReceiver<Bytes>);

    impl Body for ChannelBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.get_mut()
                .0
                .poll_recv(cx)
                .map(|b| b.map(|b| Ok(Frame::data(b))))
        }
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
