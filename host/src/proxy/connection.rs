//! One client connection: what it may cost while idle or half-sent, and how it ends.
//!
//! hyper enforces HTTP/2's own limits, but nothing bounds a connection before its protocol is
//! known, and HTTP/1 has one timer for "idle" and "head half-sent". So each connection is driven
//! by [`drive`], which watches it:
//! - no request in flight and no byte of a new one: closed after `idle_timeout` (HTTP/2 with
//!   GOAWAY);
//! - an HTTP/1 request head started but unfinished: closed `header_read_timeout` after its
//!   first byte (slowloris), however slowly the rest trickles in;
//! - shutdown: `graceful_shutdown` (HTTP/1: `Connection: close` on the response in flight, idle
//!   connections closed; HTTP/2: GOAWAY), then the connection is polled until it ends.
//!
//! Request bodies that stall are [`TimedBody`](super::body::TimedBody)'s concern: a request in
//! flight stops the connection clocks.
//!
//! Nothing on the request path wakes [`drive`]: requests starting and ending only write atomics.
//! `drive` keeps one timer, never further away than the shorter of the two timeouts, and reads
//! the clocks when it fires. A head that starts after the timer was armed has its deadline at
//! least one header timeout later, so the timer fires before it and is moved to it exactly: the
//! timeouts keep their precision while a busy keep-alive connection costs one timer wake per
//! timeout period instead of two task wake-ups and a timer per request.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper_util::server::graceful::GracefulConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a connection told to close (timeout or shutdown after its deadline) may take to
/// flush a GOAWAY or final bytes before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// No request head has started since the connection went idle.
const NONE: u64 = u64::MAX;

/// What the connection speaks, learned from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Protocol {
    Unknown = 0,
    Http1 = 1,
    Http2 = 2,
}

/// The clocks' inputs, shared by the IO wrapper (bytes read), the service (requests in
/// flight) and [`drive`] (which sleeps until the next deadline).
#[derive(Debug)]
pub(crate) struct Tracker {
    opened: Instant,
    idle_timeout: Duration,
    header_timeout: Duration,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when the connection last became idle.
    idle_since: AtomicU64,
    /// Milliseconds after `opened` of the first byte read while idle, or [`NONE`].
    head_started: AtomicU64,
    protocol: AtomicU8,
}

impl Tracker {
    pub(crate) fn new(idle_timeout: Duration, header_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            idle_timeout,
            header_timeout,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            protocol: AtomicU8::new(Protocol::Unknown as u8),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    fn protocol(&self) -> Protocol {
        match self.protocol.load(Ordering::Acquire) {
            1 => Protocol::Http1,
            2 => Protocol::Http2,
            _ => Protocol::Unknown,
        }
    }

    /// A request reached the service: the connection clocks stop until it is answered.
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NONE, Ordering::Release);
        InFlight(self.clone())
    }

    /// Bytes arrived. On an idle HTTP/1 connection (or one whose protocol is not known yet)
    /// the first of them starts the header clock; HTTP/2 frames without a request (PING,
    /// SETTINGS) do not, so such a connection is simply idle.
    fn bytes_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.protocol() != Protocol::Http2
            && self.head_started.load(Ordering::Acquire) == NONE
        {
            let _ = self.head_started.compare_exchange(
                NONE,
                self.now_ms(),
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    /// The longest [`drive`] may sleep without missing a deadline that starts meanwhile.
    fn check_interval(&self) -> Duration {
        self.idle_timeout
            .min(self.header_timeout)
            .max(Duration::from_millis(1))
    }

    /// When this connection must be closed if nothing changes, and why; `None` while a
    /// request is in flight.
    fn deadline(&self) -> Option<(Instant, &'static str)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.head_started.load(Ordering::Acquire) {
            NONE => Some((
                self.at(self.idle_since.load(Ordering::Acquire)) + self.idle_timeout,
                "idle timeout",
            )),
            started => Some((
                self.at(started) + self.header_timeout,
                "header read timeout",
            )),
        }
    }
}

/// One request in flight on a connection; dropped when its response is done (or abandoned).
pub(crate) struct InFlight(Arc<Tracker>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let tracker = &self.0;
        if tracker.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            tracker
                .idle_since
                .store(tracker.now_ms(), Ordering::Release);
            tracker.head_started.store(NONE, Ordering::Release);
        }
    }
}

/// A response body that holds its request's [`InFlight`] until hyper is done with it.
pub(crate) struct Answered<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> Answered<B> {
    pub(crate) fn new(inner: B, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B> Body for Answered<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The client socket, reporting reads to its [`Tracker`] and sniffing the HTTP/2 preface.
pub(crate) struct WatchedIo<T> {
    inner: T,
    tracker: Arc<Tracker>,
    prefix: [u8; 3],
    prefix_len: usize,
}

impl<T> WatchedIo<T> {
    pub(crate) fn new(inner: T, tracker: Arc<Tracker>) -> Self {
        Self {
            inner,
            tracker,
            prefix: [0; 3],
            prefix_len: 0,
        }
    }

    fn sniff(&mut self, bytes: &[u8]) {
        if self.prefix_len == self.prefix.len() {
            return;
        }
        let take = bytes.len().min(self.prefix.len() - self.prefix_len);
        self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&bytes[..take]);
        self.prefix_len += take;
        if self.prefix_len == self.prefix.len() {
            // The HTTP/2 connection preface starts `PRI * HTTP/2.0`; no HTTP/1 method is `PRI`.
            let protocol = match &self.prefix {
                b"PRI" => Protocol::Http2,
                _ => Protocol::Http1,
            };
            self.tracker
                .protocol
                .store(protocol as u8, Ordering::Release);
            if protocol == Protocol::Http2 {
                // The preface's first bytes are no request head: the connection is idle.
                self.tracker.head_started.store(NONE, Ordering::Release);
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && buf.filled().len() > before
        {
            let new = &buf.filled()[before..];
            this.sniff(new);
            this.tracker.bytes_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Poll `connection` to its end, closing it when a connection clock runs out or `shutdown`
/// turns true (then it finishes what is in flight; the server bounds that with the drain
/// deadline).
pub(crate) async fn drive<C>(
    connection: C,
    tracker: Arc<Tracker>,
    mut shutdown: watch::Receiver<bool>,
) where
    C: GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut connection = std::pin::pin!(connection);
    let mut draining = *shutdown.borrow_and_update();
    if draining {
        connection.as_mut().graceful_shutdown();
    }
    // Set once the connection was told to close for a timeout: it has a moment to say GOAWAY.
    let mut closing: Option<Instant> = None;
    let mut timer = std::pin::pin!(tokio::time::sleep_until(next_check(&tracker, closing)));
    loop {
        tokio::select! {
            biased;
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = timer.as_mut() => {
                if closing.is_some() {
                    return;
                }
                if let Some((at, why)) = tracker.deadline()
                    && at <= Instant::now()
                {
                    tracing::debug!(reason = why, "closing connection");
                    metrics::counter!("tollgate_connections_timed_out_total", "reason" => why)
                        .increment(1);
                    connection.as_mut().graceful_shutdown();
                    closing = Some(Instant::now() + CLOSE_GRACE);
                }
                timer.as_mut().reset(next_check(&tracker, closing));
            }
            changed = shutdown.changed(), if !draining => {
                // A dropped sender means the server is gone: drain as well.
                let _ = changed;
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// When [`drive`] looks at the clocks next: the close grace's end once closing, else the
/// connection's deadline, but never later than one [`Tracker::check_interval`] from now (a
/// request may end or a head may start meanwhile without waking it).
fn next_check(tracker: &Tracker, closing: Option<Instant>) -> Instant {
    if let Some(at) = closing {
        return at;
    }
    let latest = Instant::now() + tracker.check_interval();
    match tracker.deadline() {
        Some((at, _)) => at.min(latest),
        None => latest,
    }
}
