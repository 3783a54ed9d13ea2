//! The `request` and `response` resources: each method reads or changes one thing of the
//! proxy's `RequestState` / `ResponseState`, which sit in the store's table for the call.

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use wasmtime::component::Resource;

use super::bindings::tollgate::plugin::types::{Host, HostRequest, HostResponse};
use super::host_state::HostState;
use super::limits::{Limit, PluginLimits, check_headers, exceeded};
use crate::chain::{RequestState, ResponseState};

type Headers = Vec<(String, String)>;

/// Bytes that may not appear raw in a query string.
const QUERY_ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'`');

const READ_ONLY: &str = "the request is read-only after the request phase";

pub(super) fn header_first(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?;
    Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
}

pub(super) fn header_all(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// The header `name: value`, validated; the value keeps the buffer the guest's string was
/// lifted into (no second copy).
fn header_pair(name: &str, value: String) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("invalid header name `{}`", name.escape_debug()))?;
    let value = HeaderValue::from_maybe_shared(Bytes::from(value))
        .map_err(|_| format!("invalid value for header `{name}`"))?;
    Ok((name, value))
}

/// Bytes and count of the values `headers` holds under `name`.
fn existing(headers: &HeaderMap, name: &HeaderName) -> (usize, usize) {
    headers.get_all(name).iter().fold((0, 0), |(n, b), v| {
        (n + 1, b + name.as_str().len() + v.len())
    })
}

/// Replace every value of `name`, within the caps; never panics (fallible `try_insert`).
pub(super) fn set_header(
    headers: &mut HeaderMap,
    limits: &PluginLimits,
    name: &str,
    value: String,
) -> Result<(), String> {
    let (name, value) = header_pair(name, value)?;
    let (old_count, old_bytes) = existing(headers, &name);
    let added = name.as_str().len() + value.len();
    check_headers(
        limits,
        headers,
        1usize.saturating_sub(old_count),
        added.saturating_sub(old_bytes),
    )?;
    headers
        .try_insert(name, value)
        .map(|_| ())
        .map_err(|_| "too many headers".to_owned())
}

/// Add a value to `name`, within the caps; never panics (fallible `try_append`).
fn append_header(
    headers: &mut HeaderMap,
    limits: &PluginLimits,
    name: &str,
    value: String,
) -> Result<(), String> {
    let (name, value) = header_pair(name, value)?;
    check_headers(limits, headers, 1, name.as_str().len() + value.len())?;
    headers
        .try_append(name, value)
        .map(|_| ())
        .map_err(|_| "too many headers".to_owned())
}

/// Remove every value of `name`; an invalid name names nothing. Looked up as `&str`, so a
/// custom name is not copied into a `HeaderName` first.
fn remove_header(headers: &mut HeaderMap, name: &str) {
    headers.remove(name);
}

fn all_headers(headers: &HeaderMap) -> Headers {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

impl HostState {
    fn request(&mut self, r: &Resource<RequestState>) -> wasmtime::Result<&mut RequestState> {
        Ok(self.table.get_mut(r)?)
    }

    /// The request when setters are allowed, or the message for the guest.
    fn request_mut(
        &mut self,
        r: &Resource<RequestState>,
    ) -> wasmtime::Result<Result<&mut RequestState, String>> {
        if !self.scope.request_writable {
            return Ok(Err(READ_ONLY.into()));
        }
        Ok(Ok(self.table.get_mut(r)?))
    }

    /// The request's headers and the caps, when setters are allowed.
    pub(super) fn request_headers(
        &mut self,
        r: &Resource<RequestState>,
    ) -> wasmtime::Result<Result<(&mut HeaderMap, &PluginLimits), String>> {
        if !self.scope.request_writable {
            return Ok(Err(READ_ONLY.into()));
        }
        Ok(Ok((&mut self.table.get_mut(r)?.headers, &self.limits)))
    }

    pub(super) fn response_headers(
        &mut self,
        r: &Resource<ResponseState>,
    ) -> wasmtime::Result<(&mut HeaderMap, &PluginLimits)> {
        Ok((&mut self.table.get_mut(r)?.headers, &self.limits))
    }

    /// Count a header change refused for the caps (not one refused for a bad name or value).
    pub(super) fn header_result(&self, result: Result<(), String>) -> Result<(), String> {
        if let Err(m) = &result
            && (m.starts_with("too many headers") || m.starts_with("headers too large"))
        {
            exceeded(&self.plugin, Limit::Headers);
        }
        result
    }

    fn response(&mut self, r: &Resource<ResponseState>) -> wasmtime::Result<&mut ResponseState> {
        Ok(self.table.get_mut(r)?)
    }
}

impl Host for HostState {}

impl HostRequest for HostState {
    fn method(&mut self, r: Resource<RequestState>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.method.as_str().to_owned())
    }

    fn set_method(
        &mut self,
        r: Resource<RequestState>,
        method: String,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(self.request_mut(&r)?.and_then(|req| {
            req.method = Method::from_bytes(method.as_bytes())
                .map_err(|_| format!("invalid method `{}`", method.escape_debug()))?;
            Ok(())
        }))
    }

    fn path(&mut self, r: Resource<RequestState>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.path.clone())
    }

    fn set_path(
        &mut self,
        r: Resource<RequestState>,
        path: String,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(self.request_mut(&r)?.and_then(|req| {
            // The same rule as incoming paths: what passes is stored in normal form.
            req.path = crate::path::normalize_path(&path)
                .map_err(|e| format!("invalid path `{}`: {e}", path.escape_debug()))?;
            Ok(())
        }))
    }

    fn query(&mut self, r: Resource<RequestState>) -> wasmtime::Result<Option<String>> {
        Ok(self.request(&r)?.query.clone())
    }

    fn set_query(
        &mut self,
        r: Resource<RequestState>,
        query: Option<String>,
    ) -> wasmtime::Result<()> {
        if let Ok(req) = self.request_mut(&r)? {
            req.query = query.map(|q| utf8_percent_encode(&q, QUERY_ESCAPE).to_string());
        }
        Ok(())
    }

    fn header(
        &mut self,
        r: Resource<RequestState>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(header_first(&self.request(&r)?.headers, &name))
    }

    fn header_all(
        &mut self,
        r: Resource<RequestState>,
        name: String,
    ) -> wasmtime::Result<Vec<String>> {
        Ok(header_all(&self.request(&r)?.headers, &name))
    }

    fn set_header(
        &mut self,
        r: Resource<RequestState>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        let result = self
            .request_headers(&r)?
            .and_then(|(headers, limits)| set_header(headers, limits, &name, value));
        Ok(self.header_result(result))
    }

    fn append_header(
        &mut self,
        r: Resource<RequestState>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        let result = self
            .request_headers(&r)?
            .and_then(|(headers, limits)| append_header(headers, limits, &name, value));
        Ok(self.header_result(result))
    }

    fn remove_header(&mut self, r: Resource<RequestState>, name: String) -> wasmtime::Result<()> {
        if let Ok(req) = self.request_mut(&r)? {
            remove_header(&mut req.headers, &name);
        }
        Ok(())
    }

    fn headers(&mut self, r: Resource<RequestState>) -> wasmtime::Result<Headers> {
        Ok(all_headers(&self.request(&r)?.headers))
    }

    fn body(&mut self, r: Resource<RequestState>) -> wasmtime::Result<Result<Vec<u8>, String>> {
        if !self.body.request {
            return Ok(Err(
                "the plugin did not declare the request-body capability".into(),
            ));
        }
        Ok(match &self.request(&r)?.body {
            Some(body) => Ok(body.to_vec()),
            None => Err("the request body is not available".into()),
        })
    }

    fn set_body(
        &mut self,
        r: Resource<RequestState>,
        body: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        if !self.body.request {
            return Ok(Err(
                "the plugin did not declare the request-body capability".into(),
            ));
        }
        Ok(self
            .request_mut(&r)?
            .map(|req| req.body = Some(Bytes::from(body))))
    }

    fn client_ip(&mut self, r: Resource<RequestState>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.client_ip_text())
    }

    fn route(&mut self, r: Resource<RequestState>) -> wasmtime::Result<String> {
        Ok(self.request(&r)?.route.to_string())
    }

    fn drop(&mut self, _r: Resource<RequestState>) -> wasmtime::Result<()> {
        // Guests only ever get borrows; the host takes the request back itself after the call.
        Ok(())
    }
}

impl HostResponse for HostState {
    fn status(&mut self, r: Resource<ResponseState>) -> wasmtime::Result<u16> {
        Ok(self.response(&r)?.status.as_u16())
    }

    fn set_status(
        &mut self,
        r: Resource<ResponseState>,
        status: u16,
    ) -> wasmtime::Result<Result<(), String>> {
        let resp = self.response(&r)?;
        Ok(match valid_status(status) {
            Some(s) => {
                resp.status = s;
                Ok(())
            }
            None => {
                exceeded(&self.plugin, Limit::Status);
                Err(format!("status {status} is not in 200..=599"))
            }
        })
    }

    fn header(
        &mut self,
        r: Resource<ResponseState>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        Ok(header_first(&self.response(&r)?.headers, &name))
    }

    fn header_all(
        &mut self,
        r: Resource<ResponseState>,
        name: String,
    ) -> wasmtime::Result<Vec<String>> {
        Ok(header_all(&self.response(&r)?.headers, &name))
    }

    fn set_header(
        &mut self,
        r: Resource<ResponseState>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        let (headers, limits) = self.response_headers(&r)?;
        let result = set_header(headers, limits, &name, value);
        Ok(self.header_result(result))
    }

    fn append_header(
        &mut self,
        r: Resource<ResponseState>,
        name: String,
        value: String,
    ) -> wasmtime::Result<Result<(), String>> {
        let (headers, limits) = self.response_headers(&r)?;
        let result = append_header(headers, limits, &name, value);
        Ok(self.header_result(result))
    }

    fn remove_header(&mut self, r: Resource<ResponseState>, name: String) -> wasmtime::Result<()> {
        remove_header(&mut self.response(&r)?.headers, &name);
        Ok(())
    }

    fn headers(&mut self, r: Resource<ResponseState>) -> wasmtime::Result<Headers> {
        Ok(all_headers(&self.response(&r)?.headers))
    }

    fn body(&mut self, r: Resource<ResponseState>) -> wasmtime::Result<Result<Vec<u8>, String>> {
        if !self.body.response {
            return Ok(Err(
                "the plugin did not declare the response-body capability".into(),
            ));
        }
        Ok(match &self.response(&r)?.body {
            Some(body) => Ok(body.to_vec()),
            None => Err("the response body is not available".into()),
        })
    }

    fn set_body(
        &mut self,
        r: Resource<ResponseState>,
        body: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        if !self.body.response {
            return Ok(Err(
                "the plugin did not declare the response-body capability".into(),
            ));
        }
        self.response(&r)?.body = Some(Bytes::from(body));
        Ok(Ok(()))
    }

    fn drop(&mut self, _r: Resource<ResponseState>) -> wasmtime::Result<()> {
        Ok(())
    }
}

/// A status a plugin may use: 200..=599. Informational 1xx statuses belong to the protocol
/// (`101` without an upgrade would break the connection), never to a final response.
pub(crate) fn valid_status(status: u16) -> Option<StatusCode> {
    if (200..=599).contains(&status) {
        StatusCode::from_u16(status).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_append_validate_like_header_value_from_str() {
        let limits = PluginLimits::default();
        let mut headers = HeaderMap::new();
        for bad in ["a\nb", "a\rb", "a\u{7f}b", "nul\0"] {
            assert!(HeaderValue::from_str(bad).is_err());
            assert!(set_header(&mut headers, &limits, "x-a", bad.to_owned()).is_err());
            assert!(append_header(&mut headers, &limits, "x-a", bad.to_owned()).is_err());
        }
        assert!(headers.is_empty());
        assert_eq!(
            set_header(&mut headers, &limits, "X-A", "1".to_owned()),
            Ok(())
        );
        let spaced = "tab\tand space ok".to_owned();
        assert_eq!(append_header(&mut headers, &limits, "x-a", spaced), Ok(()));
        assert_eq!(
            set_header(&mut headers, &limits, "x-b", "é".to_owned()),
            Ok(())
        );
        let values: Vec<_> = headers.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "tab\tand space ok"]);
        assert_eq!(headers["x-b"].as_bytes(), "é".as_bytes());
        assert!(set_header(&mut headers, &limits, "bad name", "1".to_owned()).is_err());
    }

    #[test]
    fn remove_ignores_case_and_invalid_names() {
        let mut headers = HeaderMap::new();
        headers.insert("x-custom", HeaderValue::from_static("1"));
        headers.append("x-custom", HeaderValue::from_static("2"));
        headers.insert("etag", HeaderValue::from_static("\"v\""));
        remove_header(&mut headers, "bad name\n");
        remove_header(&mut headers, "");
        assert_eq!(headers.len(), 3);
        remove_header(&mut headers, "X-Custom");
        remove_header(&mut headers, "ETag");
        assert!(headers.is_empty());
    }
}
