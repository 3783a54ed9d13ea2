//! What plugins (contract 0.2.0 `upstream-error`) and the log phase are told when the gateway
//! answers an upstream failure itself: the kind, and whether request bytes may have reached the
//! upstream (false only when it never connected, so it cannot have acted on the request).

use std::sync::Arc;

use http::{Method, Response};
use http_body_util::BodyExt;

use super::body::ProxyBody;
use super::error::ProxyError;
use super::response::client_response;
use crate::chain::{
    Chain, Flow, RequestState, ResponseState, UpstreamFailure, UpstreamFailureKind,
};

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

/// The upstream failed and the gateway answers itself: the response phase of the plugins that
/// ran (0.2.0) sees the gateway's error response with `upstream-error` set, and may change it.
pub(super) async fn answer(
    chain: &Arc<dyn Chain>,
    state: &mut RequestState,
    ran: usize,
    error: ProxyError,
    client_method: &Method,
) -> Result<Response<ProxyBody>, ProxyError> {
    let failure = match of(&error) {
        Some(failure) if chain.hears_upstream_failures() => failure,
        _ => return Err(error),
    };
    tracing::debug!(%error, kind = failure.kind.as_str(), request_sent = failure.request_sent, "upstream failed");
    state.upstream_error = Some(failure.clone());
    let (head, body) = error.into_response().into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let mut response = ResponseState {
        status: head.status,
        headers: head.headers,
        body: Some(body),
        upstream_error: Some(failure),
        ..ResponseState::default()
    };
    let flow = chain.on_upstream_failure(state, &mut response, ran).await?;
    if let Flow::Respond(reply) = flow {
        response.status = reply.status;
        response.headers = reply.headers;
        response.body = Some(reply.body);
    }
    Ok(client_response(response, None, None, client_method))
}
