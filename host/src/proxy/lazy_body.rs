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

/// Read `body` whole, failing past `limit` bytes (when given) or when the stream fails.
async fn collect(mut body: ProxyBody, limit: Option<u64>) -> Result<Bytes, (ReadFailure, String)> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let failure = if e.is::<BodyTooLarge>() {
                ReadFailure::TooLarge
            } else {
                ReadFailure::Broken
            };
            (failure, e.to_string())
        })?;
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
            if let Some(limit) = limit
                && buf.len() as u64 > limit
            {
                return Err((ReadFailure::TooLarge, format!("larger than {limit} bytes")));
            }
        }
    }
    Ok(buf.freeze())
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
