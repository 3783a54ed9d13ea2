//! What plugins (contract 0.2.0 `upstream-error`) and the log phase are told when the gateway
//! answers an upstream failure itself: the kind, and whether request bytes may have reached the
//! upstream (false only when it never connected, so it cannot have acted on the request).

use super::error::ProxyError;
use crate::chain::{UpstreamFailure, UpstreamFailureKind};

/// The failure as plugins see it; `None` for errors that are not an upstream failure.
pub fn of(error: &ProxyError) -> Option<UpstreamFailure> {
    let (kind, request_sent) = match error {
        ProxyError::UpstreamConnect { .. } | ProxyError::NoHealthyUpstream { .. } => {
            (UpstreamFailureKind::Connect, false)
        }
        ProxyError::UpstreamTimeout { .. } => (UpstreamFailureKind::Timeout, true),
        ProxyError::Upstream { source, .. } => (reset_or_other(source.as_ref()), true),
        _ => return None,
    };
    Some(UpstreamFailure {
        kind,
        request_sent,
        status: error.status().as_u16(),
        message: error.to_string(),
    })
}

/// A connection closed or reset before the response head, or something else.
fn reset_or_other(error: &(dyn std::error::Error + 'static)) -> UpstreamFailureKind {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_closed() || h.is_canceled())
        {
            return UpstreamFailureKind::Reset;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            )
        {
            return UpstreamFailureKind::Reset;
        }
        cause = e.source();
    }
    UpstreamFailureKind::Other
}
