//! Bodies read when a plugin asks (contract 0.2.0 `body()`), not before: the proxy parks the
//! client's (or the upstream's) body stream here, hands the chain a [`LazyBody`] over it, and
//! after the phase takes the stream back to forward it untouched when no plugin read it.
//!
//! The caps are the stream's own: the request body is a `CappedBody` (413 past
//! `limits.max_body_bytes`, 408 when it stalls), the response body is read through a length
//! limit (`limits.max_response_body_bytes`). A read that fails leaves the slot empty and the
//! proxy answers from what it recorded (the meter, or the error kept here).

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use http_body_util::BodyExt;

use super::body::{BodyTooLarge, ProxyBody};
use crate::chain::{BodyReader, LazyBody};

/// Why a response body read for a plugin failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFailure {
    /// Past the limit.
    TooLarge,
    /// The stream failed (client or upstream broke off, stalled).
    Broken,
}

struct Slot {
    body: Option<ProxyBody>,
    failure: Option<ReadFailure>,
}

/// A parked body stream, read at most once for a plugin.
pub struct Parked {
    slot: Mutex<Slot>,
    /// Cap applied while reading (`None`: the stream caps itself).
    limit: Option<u64>,
    /// What the plugin is told when the body is over the cap.
    what: &'static str,
}

impl Parked {
    /// Park `body`; `limit` caps the read when the stream does not cap itself.
    pub fn new(body: ProxyBody, limit: Option<u64>, what: &'static str) -> Arc<Self> {
        Arc::new(Self {
            slot: Mutex::new(Slot {
                body: Some(body),
                failure: None,
            }),
            limit,
            what,
        })
    }

    /// The handle for the chain.
    pub fn lazy(self: &Arc<Self>) -> LazyBody {
        LazyBody::new(Arc::clone(self) as Arc<dyn BodyReader>)
    }

    /// The stream, when no plugin read it.
    pub fn take_back(&self) -> Option<ProxyBody> {
        self.slot.lock().ok().and_then(|mut s| s.body.take())
    }

    /// Why a read failed, if one did.
    pub fn failure(&self) -> Option<ReadFailure> {
        self.slot.lock().ok().and_then(|s| s.failure)
    }

    fn fail(&self, failure: ReadFailure) {
        if let Ok(mut s) = self.slot.lock() {
            s.failure = Some(failure);
        }
    }
}

/// Read `body` whole, failing past `limit` bytes (when given) or when the stream fails. A body
/// that comes in one chunk (most small ones) is that chunk, not a copy of it; a second chunk
/// starts a buffer.
async fn collect(mut body: ProxyBody, limit: Option<u64>) -> Result<Bytes, (ReadFailure, String)> {
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let failure = if e.is::<BodyTooLarge>() {
                ReadFailure::TooLarge
            } else {
                ReadFailure::Broken
            };
            (failure, e.to_string())
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let len = match joined.as_mut() {
            Some(buf) => {
                buf.extend_from_slice(&data);
                buf.len()
            }
            None if first.is_empty() => {
                first = data;
                first.len()
            }
            None => {
                let mut buf = BytesMut::with_capacity(first.len() + data.len());
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&data);
                first = Bytes::new();
                joined.insert(buf).len()
            }
        };
        if let Some(limit) = limit
            && len as u64 > limit
        {
            return Err((ReadFailure::TooLarge, format!("larger than {limit} bytes")));
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}

impl BodyReader for Parked {
    fn read(self: Arc<Self>) -> BoxFuture<'static, Result<Bytes, String>> {
        let body = self.slot.lock().ok().and_then(|mut s| s.body.take());
        Box::pin(async move {
            let Some(body) = body else {
                return Err("the body was already read".to_owned());
            };
            collect(body, self.limit)
                .await
                .map_err(|(failure, message)| {
                    self.fail(failure);
                    format!("reading the {} body failed: {message}", self.what)
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Frame;
    use http_body_util::StreamBody;

    fn body(chunks: &[&'static [u8]]) -> ProxyBody {
        let frames: Vec<Result<Frame<Bytes>, crate::proxy::error::BoxError>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
    }

    #[tokio::test]
    async fn one_chunk_is_kept_as_it_came_and_more_are_joined() {
        let chunk: &'static [u8] = b"{\"a\": 1}";
        let whole = collect(body(&[chunk]), None).await.expect("read");
        assert_eq!(whole.as_ptr(), chunk.as_ptr(), "no copy of a lone chunk");

        let whole = collect(body(&[b"ab", b"", b"cd", b"e"]), Some(5))
            .await
            .expect("at the limit");
        assert_eq!(&whole[..], b"abcde");
        assert!(collect(body(&[]), None).await.expect("read").is_empty());
    }

    #[tokio::test]
    async fn a_body_past_the_limit_fails_in_its_first_or_a_later_chunk() {
        for chunks in [
            &[&b"abcdef"[..]][..],
            &[b"abc", b"def"],
            &[b"a", b"b", b"cdef"],
        ] {
            let (failure, message) = collect(body(chunks), Some(5)).await.expect_err("over");
            assert_eq!(failure, ReadFailure::TooLarge);
            assert!(message.contains("larger than 5 bytes"), "{message}");
        }
    }
}
