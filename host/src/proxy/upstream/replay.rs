//! A streamed request body that a retry can send again, exactly: every attempt gets the bytes
//! earlier attempts already took from the client, then the rest of the client's body. The bytes
//! taken are kept only up to a cap ([`REPLAY_CAP`]); past it the body streams on, and a retry
//! is no longer possible ([`ReplaySource::replayable`] turns false). A body is never sent short:
//! an attempt whose copy was lost fails instead.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::proxy::body::ProxyBody;
use crate::proxy::error::BoxError;

/// Bytes of a streamed request body kept for a retry to replay.
pub const REPLAY_CAP: usize = 64 * 1024;

/// The client's body, shared by the attempts of one request.
#[derive(Clone)]
pub struct ReplaySource {
    shared: Arc<Mutex<Shared>>,
}

struct Shared {
    inner: ProxyBody,
    /// What attempts took from `inner` so far, in order, while it fits in the cap.
    taken: Vec<Chunk>,
    taken_bytes: usize,
    /// Frames taken from `inner` so far (kept or not).
    count: usize,
    /// More than the cap was taken: `taken` is incomplete, no later attempt can replay.
    overflowed: bool,
    /// `inner` ended (its last frame is in `taken`, or it overflowed).
    ended: bool,
    /// The attempt allowed to read; earlier attempts' bodies fail from then on.
    generation: u64,
    cap: usize,
}

enum Chunk {
    Data(Bytes),
    Trailers(HeaderMap),
}

impl Chunk {
    fn frame(&self) -> Frame<Bytes> {
        match self {
            Chunk::Data(bytes) => Frame::data(bytes.clone()),
            Chunk::Trailers(map) => Frame::trailers(map.clone()),
        }
    }
}

/// An earlier attempt's body was polled after a later attempt started, or the copy it needed
/// was not kept.
#[derive(Debug, thiserror::Error)]
#[error("the request body cannot be replayed")]
pub struct NotReplayable;

impl ReplaySource {
    /// Share `body` between attempts, keeping up to [`REPLAY_CAP`] bytes for replays.
    pub fn new(body: ProxyBody) -> Self {
        Self::with_cap(body, REPLAY_CAP)
    }

    /// [`ReplaySource::new`] with another cap.
    pub fn with_cap(body: ProxyBody, cap: usize) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                inner: body,
                taken: Vec::new(),
                taken_bytes: 0,
                count: 0,
                overflowed: false,
                ended: false,
                generation: 0,
                cap,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether another attempt could send the whole body again.
    pub fn replayable(&self) -> bool {
        !self.lock().overflowed
    }

    /// The body for the next attempt; the previous attempts' bodies stop.
    pub fn attempt(&self) -> ProxyBody {
        let mut shared = self.lock();
        shared.generation += 1;
        let size_hint = shared.inner.size_hint();
        AttemptBody {
            source: self.clone(),
            generation: shared.generation,
            next: 0,
            size_hint,
        }
        .boxed_unsync()
    }
}

/// One attempt's view: replays `taken[next..]`, then reads on from the client.
struct AttemptBody {
    source: ReplaySource,
    generation: u64,
    next: usize,
    size_hint: SizeHint,
}

impl Body for AttemptBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let mut shared = this.source.lock();
        if shared.generation != this.generation {
            return Poll::Ready(Some(Err(NotReplayable.into())));
        }
        if this.next < shared.count {
            // Behind what was taken: replay the copy, if it was kept.
            let Some(chunk) = shared.taken.get(this.next).filter(|_| !shared.overflowed) else {
                return Poll::Ready(Some(Err(NotReplayable.into())));
            };
            this.next += 1;
            return Poll::Ready(Some(Ok(chunk.frame())));
        }
        if shared.ended {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut shared.inner).poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                shared.keep(&frame);
                this.next += 1;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                shared.ended = true;
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.size_hint
    }
}

impl Shared {
    /// Keep a copy of `frame` for later attempts, while the copies fit in the cap.
    fn keep(&mut self, frame: &Frame<Bytes>) {
        self.count += 1;
        if self.overflowed {
            return;
        }
        let chunk = if let Some(data) = frame.data_ref() {
            self.taken_bytes += data.len();
            Chunk::Data(data.clone())
        } else if let Some(trailers) = frame.trailers_ref() {
            Chunk::Trailers(trailers.clone())
        } else {
            return;
        };
        if self.taken_bytes > self.cap {
            self.overflowed = true;
            self.taken = Vec::new();
        } else {
            self.taken.push(chunk);
        }
    }
}

/// The bodies of the attempts of one request: the client's streamed body for the first, then a
/// replay of it ([`ReplaySource`]) when a retry may follow; none when the body was buffered (each
/// attempt then sends the buffered bytes).
pub struct AttemptBodies {
    first: Option<ProxyBody>,
    replay: Option<ReplaySource>,
}

impl AttemptBodies {
    /// Plan the bodies: `may_retry` says whether the upstream may retry this request at all.
    pub fn new(streamed: Option<ProxyBody>, may_retry: bool) -> Self {
        match streamed {
            // Only a body that can be retried and is not known to be empty needs a replay.
            Some(body) if may_retry && !body.is_end_stream() => Self {
                first: None,
                replay: Some(ReplaySource::new(body)),
            },
            first => Self {
                first,
                replay: None,
            },
        }
    }

    /// The shared body behind the attempts, when a retry may replay it.
    pub fn replay(&self) -> Option<ReplaySource> {
        self.replay.clone()
    }

    /// The body of the next attempt.
    pub fn next_body(&mut self) -> Option<ProxyBody> {
        match &self.replay {
            Some(replay) => Some(replay.attempt()),
            None => self.first.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::body::full;

    fn chunks(parts: &[&'static str]) -> ProxyBody {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
    }

    async fn read(body: ProxyBody) -> Result<Bytes, BoxError> {
        Ok(body.collect().await?.to_bytes())
    }

    #[tokio::test]
    async fn an_unread_body_is_sent_whole_by_the_next_attempt() {
        let source = ReplaySource::new(chunks(&["ab", "cd"]));
        drop(source.attempt());
        assert!(source.replayable());
        assert_eq!(read(source.attempt()).await.ok(), Some(Bytes::from("abcd")));
    }

    #[tokio::test]
    async fn a_partly_read_body_is_replayed_from_the_start() {
        let source = ReplaySource::new(chunks(&["ab", "cd", "ef"]));
        let mut first = source.attempt();
        let frame = first.frame().await;
        assert!(matches!(frame, Some(Ok(_))));
        drop(first);
        assert_eq!(
            read(source.attempt()).await.ok(),
            Some(Bytes::from("abcdef"))
        );
        // A third attempt still gets everything.
        assert_eq!(
            read(source.attempt()).await.ok(),
            Some(Bytes::from("abcdef"))
        );
    }

    #[tokio::test]
    async fn past_the_cap_no_replay_and_no_short_body() {
        let source = ReplaySource::with_cap(chunks(&["abcd", "efgh"]), 5);
        assert_eq!(
            read(source.attempt()).await.ok(),
            Some(Bytes::from("abcdefgh"))
        );
        assert!(!source.replayable());
        assert!(read(source.attempt()).await.is_err());
    }

    #[tokio::test]
    async fn an_earlier_attempt_stops_when_a_later_one_starts() {
        let source = ReplaySource::new(full("abc"));
        let first = source.attempt();
        let second = source.attempt();
        assert!(read(first).await.is_err());
        assert_eq!(read(second).await.ok(), Some(Bytes::from("abc")));
    }
}
