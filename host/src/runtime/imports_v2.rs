//! The 0.2.0 imports: thin adapters over the 0.1.0 implementations (`host_request`,
//! `host_imports`) for everything that did not change, and what 0.2.0 adds: bodies read on
//! demand, `upstream-error`, the new state operations (in `state_v2`) and `crypto` (in `crypto`).

use std::time::Instant;

use bytes::Bytes;
use wasmtime::component::Resource;

use super::bindings::v01::tollgate::plugin as v1;
use super::bindings::v02::tollgate::plugin::{
    clock, context, http_client, log, metrics as wit_metrics, types,
};
use super::host_state::HostState;
use crate::chain::{LazyBody, RequestState, ResponseState, UpstreamFailure, UpstreamFailureKind};

use v1::types::{HostRequest as V1Request, HostResponse as V1Response};

type Headers = Vec<(String, String)>;

/// A host failure as the plugin's `upstream-error`.
pub(crate) fn upstream_error(f: &UpstreamFailure) -> types::UpstreamError {
    types::UpstreamError {
        kind: match f.kind {
            UpstreamFailureKind::Connect => types::UpstreamErrorKind::Connect,
            UpstreamFailureKind::Timeout => types::UpstreamErrorKind::Timeout,
            UpstreamFailureKind::Reset => types::UpstreamErrorKind::Reset,
            UpstreamFailureKind::Other => types::UpstreamErrorKind::Other,
        },
        request_sent: f.request_sent,
        status: f.status,
        message: f.message.clone(),
    }
}

/// Read a lazy body once: the wait is host I/O (credited back to the CPU deadline).
async fn read_lazy(host_wait: &mut std::time::Duration, lazy: LazyBody) -> Result<Bytes, String> {
    let started = Instant::now();
    let result = lazy.read().await;
    *host_wait += started.elapsed();
    result
}

impl types::Host for HostState {}

impl HostState {
    /// The response body as the host holds it, read from the upstream now if no plugin has
    /// read it yet (`response.body` and `redaction`'s `redact-response`).
    pub(crate) async fn response_body(
        &mut self,
        r: &Resource<ResponseState>,
    ) -> wasmtime::Result<Result<Bytes, String>> {
        let resp = self.table.get_mut(r)?;
        if let Some(body) = &resp.body {
            return Ok(Ok(body.clone()));
        }
        let Some(lazy) = resp.lazy_body.take() else {
            return Ok(Err("the response body is not available".into()));
        };
        let result = read_lazy(&mut self.host_wait, lazy).await;
        let resp = self.table.get_mut(r)?;
        Ok(result.inspect(|bytes| resp.body = Some(bytes.clone())))
    }
}

impl types::HostRequest for HostState {
    fn method(&mut self, r: Resource<RequestState>) -> wasmtime::Result<String> {
        V1Request::method(self, r)
    }

    fn set_method(
        &mut self,
        r: Resource<RequestState>,
        method: String,
    ) -> wasmtime::Result<Result<(), String>> {
        V1Request::set_method(self, r, method)
    }

    fn path(&mut self, r: Resource<RequestState>) -> wasmtime::Result<String> {
        V1Request::path(self, r)
    }

    fn set_path(
        &mut self,
        r: Resource<RequestState>,
        path: String,
    ) -> wasmtime::Result<Result<(), String>> {
        V1Request::set_path(self, r, path)
    }

    fn query(&mut self, r: Resource<RequestState>) -> wasmtime::Result<Option<String>> {
        V1Request::query(self, r)
    }

    fn set_query(
        &mut self,
        r: Resource<RequestState>,
        query: Option<String>,
    ) -> wasmtime::Result<()> {
        V1Request::set_query(self, r, query)
    }

    fn header(
        &mut self,
        r: Resource<RequestState>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        V1Request::header(self, r, name)
    }

    fn header_all(
        &mut self,
        r: Resource<RequestState>,
        name: String,
    ) -> wasmtime::Result<Vec<String>> {
        V1Request::header_all(self, r, name)
    }

    fn set_header(
        &mut self,
        r: Resource<RequestState>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        V1Request::set_header(self, r, name, value)
    }

    fn append_header(
        &mut self,
        r: Resource<RequestState>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        V1Request::append_header(self, r, name, value)
    }

    fn remove_header(&mut self, r: Resource<RequestState>, name: String) -> wasmtime::Result<()> {
        V1Request::remove_header(self, r, name)
    }

    fn headers(&mut self, r: Resource<RequestState>) -> wasmtime::Result<Headers> {
        V1Request::headers(self, r)
    }

    async fn body(
        &mut self,
        r: Resource<RequestState>,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let req = self.table.get_mut(&r)?;
        if let Some(body) = &req.body {
            return Ok(Ok(body.to_vec()));
        }
        let Some(lazy) = req.lazy_body.take() else {
            return Ok(Err(if self.scope.request_writable {
                "the request body is not available".into()
            } else {
                "the request body was not read during the request phase".into()
            }));
        };
        let result = read_lazy(&mut self.host_wait, lazy).await;
        let req = self.table.get_mut(&r)?;
        Ok(result.map(|bytes| {
            let out = bytes.to_vec();
            req.body = Some(bytes);
            out
        }))
    }

    fn set_body(
        &mut self,
        r: Resource<RequestState>,
        body: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        if !self.scope.request_writable {
            return Ok(Err(
                "the request is read-only after the request phase".into()
            ));
        }
        self.table.get_mut(&r)?.body = Some(Bytes::from(body));
        Ok(Ok(()))
    }

    fn client_ip(&mut self, r: Resource<RequestState>) -> wasmtime::Result<String> {
        V1Request::client_ip(self, r)
    }

    fn route(&mut self, r: Resource<RequestState>) -> wasmtime::Result<String> {
        V1Request::route(self, r)
    }

    fn drop(&mut self, _r: Resource<RequestState>) -> wasmtime::Result<()> {
        // Guests only ever get borrows; the host takes the request back itself after the call.
        Ok(())
    }
}

impl types::HostResponse for HostState {
    fn status(&mut self, r: Resource<ResponseState>) -> wasmtime::Result<u16> {
        V1Response::status(self, r)
    }

    fn set_status(
        &mut self,
        r: Resource<ResponseState>,
        status: u16,
    ) -> wasmtime::Result<Result<(), String>> {
        V1Response::set_status(self, r, status)
    }

    fn header(
        &mut self,
        r: Resource<ResponseState>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        V1Response::header(self, r, name)
    }

    fn header_all(
        &mut self,
        r: Resource<ResponseState>,
        name: String,
    ) -> wasmtime::Result<Vec<String>> {
        V1Response::header_all(self, r, name)
    }

    fn set_header(
        &mut self,
        r: Resource<ResponseState>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        V1Response::set_header(self, r, name, value)
    }

    fn append_header(
        &mut self,
        r: Resource<ResponseState>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        V1Response::append_header(self, r, name, value)
    }

    fn remove_header(&mut self, r: Resource<ResponseState>, name: String) -> wasmtime::Result<()> {
        V1Response::remove_header(self, r, name)
    }

    fn headers(&mut self, r: Resource<ResponseState>) -> wasmtime::Result<Headers> {
        V1Response::headers(self, r)
    }

    async fn body(
        &mut self,
        r: Resource<ResponseState>,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        Ok(self.response_body(&r).await?.map(|bytes| bytes.to_vec()))
    }

    fn set_body(
        &mut self,
        r: Resource<ResponseState>,
        body: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        let resp = self.table.get_mut(&r)?;
        resp.body = Some(Bytes::from(body));
        // The upstream's body is replaced: it is not streamed any more.
        resp.lazy_body = None;
        Ok(Ok(()))
    }

    fn upstream_error(
        &mut self,
        r: Resource<ResponseState>,
    ) -> wasmtime::Result<Option<types::UpstreamError>> {
        Ok(self
            .table
            .get(&r)?
            .upstream_error
            .as_ref()
            .map(upstream_error))
    }

    fn drop(&mut self, _r: Resource<ResponseState>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl context::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        v1::context::Host::get(self, key)
    }

    fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        v1::context::Host::set(self, key, value)
    }

    fn remove(&mut self, key: String) -> wasmtime::Result<()> {
        v1::context::Host::remove(self, key)
    }
}

impl log::Host for HostState {
    fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => v1::log::Level::Trace,
            log::Level::Debug => v1::log::Level::Debug,
            log::Level::Info => v1::log::Level::Info,
            log::Level::Warn => v1::log::Level::Warn,
            log::Level::Error => v1::log::Level::Error,
        };
        v1::log::Host::write(self, level, message)
    }
}

impl wit_metrics::Host for HostState {
    fn counter_add(&mut self, name: String, labels: Headers, value: u64) -> wasmtime::Result<()> {
        v1::metrics::Host::counter_add(self, name, labels, value)
    }

    fn histogram_record(
        &mut self,
        name: String,
        labels: Headers,
        value: f64,
    ) -> wasmtime::Result<()> {
        v1::metrics::Host::histogram_record(self, name, labels, value)
    }
}

impl clock::Host for HostState {
    fn now_millis(&mut self) -> wasmtime::Result<u64> {
        v1::clock::Host::now_millis(self)
    }

    fn monotonic_nanos(&mut self) -> wasmtime::Result<u64> {
        v1::clock::Host::monotonic_nanos(self)
    }
}

impl http_client::Host for HostState {
    async fn fetch(
        &mut self,
        requests: Vec<http_client::OutgoingRequest>,
    ) -> Vec<Result<http_client::IncomingResponse, String>> {
        let requests = requests
            .into_iter()
            .map(|r| v1::http_client::OutgoingRequest {
                upstream: r.upstream,
                method: r.method,
                path_and_query: r.path_and_query,
                headers: r.headers,
                body: r.body,
                timeout_ms: r.timeout_ms,
            })
            .collect();
        v1::http_client::Host::fetch(self, requests)
            .await
            .into_iter()
            .map(|r| {
                r.map(|r| http_client::IncomingResponse {
                    status: r.status,
                    headers: r.headers,
                    body: r.body,
                })
            })
            .collect()
    }
}
