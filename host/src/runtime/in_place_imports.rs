//! The hottest imports that take strings, linked by hand over the generated ones for both
//! contract versions, so that they read their strings in place in the guest's memory
//! (`WasmStr`) instead of lifting each into its own `String` first.
//!
//! - `metrics.counter-add` and `metrics.histogram-record`: the generated bindings lifted the
//!   name and every label, six allocations for a record with two labels, and `meter` makes three
//!   such records per request (about 27 of a `chain7` request's 184 allocations). A series the
//!   instance already holds a handle for
//!   ([`MetricHandles::find`](super::metric_handles::MetricHandles::find)) now costs no
//!   allocation; one met for the first time takes the generated path's code
//!   (`HostState::series`) with owned strings.
//! - `context.get`, and the request's and the response's `header` and `header-all`: the key or
//!   header name is looked up in place (most chains read `consumer` several times per request,
//!   an auth plugin its credential header, `rate-limit` the response's `RateLimit-Remaining`).
//!   The values are still copied out, as the generated code did.
//! - the request's and the response's `set-header`: the name is copied to the stack instead of
//!   the heap (the value is lifted as before: the header keeps that buffer).
//! - `crypto.mac-key.sign-many` (0.2.0): the messages are hashed where they are, instead of
//!   each being lifted into its own `Vec` (`redact` hashes twenty e-mail addresses per body).
//!
//! What a plugin sees is the same: same types, same traps on invalid strings, same caps.

use std::borrow::Cow;

use http::HeaderMap;
use smallvec::SmallVec;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, LinkerInstance, Resource, WasmList, WasmStr};

use super::crypto::MacKey;
use super::host_request::{header_all, header_first, set_header};
use super::host_state::HostState;
use super::limits::PluginLimits;
use super::metric_handles::Handle;
use crate::chain::{RequestState, ResponseState};

/// A label as the guest passed it, not yet read.
type RawLabel = (WasmStr, WasmStr);

/// Labels read in place; four fit without a heap allocation (the built-in plugins use three).
type Labels<'a> = SmallVec<[(Cow<'a, str>, Cow<'a, str>); 4]>;

/// Define the imports above for every contract version, replacing the generated definitions.
pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    for version in ["0.1.0", "0.2.0"] {
        let mut context = linker.instance(&format!("tollgate:plugin/context@{version}"))?;
        context.func_wrap("get", |store, (key,): (WasmStr,)| context_get(store, &key))?;
        let mut types = linker.instance(&format!("tollgate:plugin/types@{version}"))?;
        link_headers::<RequestState>(&mut types, "request")?;
        link_headers::<ResponseState>(&mut types, "response")?;
        let mut metrics = linker.instance(&format!("tollgate:plugin/metrics@{version}"))?;
        metrics.func_wrap(
            "counter-add",
            |store, (name, labels, value): (WasmStr, WasmList<RawLabel>, u64)| {
                record(store, &name, &labels, Sample::Count(value))
            },
        )?;
        metrics.func_wrap(
            "histogram-record",
            |store, (name, labels, value): (WasmStr, WasmList<RawLabel>, f64)| {
                record(store, &name, &labels, Sample::Observe(value))
            },
        )?;
    }
    let mut crypto = linker.instance("tollgate:plugin/crypto@0.2.0")?;
    crypto.func_wrap(
        "[method]mac-key.sign-many",
        |store, (key, messages): (Resource<MacKey>, WasmList<WasmList<u8>>)| {
            sign_many(store, &key, &messages).map(|macs| (macs,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The HMAC of each message, read in place; the caps are checked on the lengths first.
fn sign_many(
    mut store: StoreContextMut<'_, HostState>,
    key: &Resource<MacKey>,
    messages: &WasmList<WasmList<u8>>,
) -> wasmtime::Result<Result<Vec<u8>, String>> {
    // The count first: it bounds the look at each message's place and length.
    if let Err(e) = MacKey::check_count(messages.len()) {
        return Ok(Err(e));
    }
    let lists = messages
        .iter::<HostState>(&mut store)?
        .collect::<wasmtime::Result<Vec<WasmList<u8>>>>()?;
    if let Err(e) = MacKey::check_bytes(lists.iter().map(WasmList::len).sum()) {
        return Ok(Err(e));
    }
    let key = store.data().table.get(key)?;
    let slices = lists.iter().map(|list| list.as_le_slice(&store));
    Ok(Ok(key.sign_each(slices)))
}

/// `header`, `header-all` and `set-header` of the resource `resource` (a request or a response).
fn link_headers<T: Headed>(
    types: &mut LinkerInstance<'_, HostState>,
    resource: &str,
) -> wasmtime::Result<()> {
    types.func_wrap(
        &format!("[method]{resource}.header"),
        |store, (r, name): (Resource<T>, WasmStr)| read_headers(&store, &r, &name, header_first),
    )?;
    types.func_wrap(
        &format!("[method]{resource}.header-all"),
        |store, (r, name): (Resource<T>, WasmStr)| read_headers(&store, &r, &name, header_all),
    )?;
    types.func_wrap(
        &format!("[method]{resource}.set-header"),
        |store, (r, name, value): (Resource<T>, WasmStr, WasmStr)| {
            replace_header(store, &r, &name, &value)
        },
    )
}

/// The request context's value for `key`, if any.
fn context_get(
    store: StoreContextMut<'_, HostState>,
    key: &WasmStr,
) -> wasmtime::Result<(Option<String>,)> {
    let key = key.to_str(&store)?;
    let request = store.data().current_request_ref();
    Ok((request.and_then(|r| r.context.get(&*key).cloned()),))
}

/// A request or a response: what the header imports work on.
trait Headed: Send + Sync + 'static {
    /// The headers, to read.
    fn headers(&self) -> &HeaderMap;
    /// The headers a plugin may change now and the caps on them, or why it may not.
    fn writable<'h>(
        host: &'h mut HostState,
        r: &Resource<Self>,
    ) -> wasmtime::Result<Result<(&'h mut HeaderMap, &'h PluginLimits), String>>
    where
        Self: Sized;
}

impl Headed for RequestState {
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    fn writable<'h>(
        host: &'h mut HostState,
        r: &Resource<Self>,
    ) -> wasmtime::Result<Result<(&'h mut HeaderMap, &'h PluginLimits), String>> {
        host.request_headers(r)
    }
}

impl Headed for ResponseState {
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    fn writable<'h>(
        host: &'h mut HostState,
        r: &Resource<Self>,
    ) -> wasmtime::Result<Result<(&'h mut HeaderMap, &'h PluginLimits), String>> {
        host.response_headers(r).map(Ok)
    }
}

/// `read` of the headers of `r`, with the header's name read in place.
fn read_headers<T: Headed, R>(
    store: &StoreContextMut<'_, HostState>,
    r: &Resource<T>,
    name: &WasmStr,
    read: fn(&HeaderMap, &str) -> R,
) -> wasmtime::Result<(R,)> {
    let name = name.to_str(store)?;
    let state = store.data().table.get(r)?;
    Ok((read(state.headers(), &name),))
}

/// Replace every value of header `name` of `r` (within the caps; a request only in the request
/// phase).
fn replace_header<T: Headed>(
    mut store: StoreContextMut<'_, HostState>,
    r: &Resource<T>,
    name: &WasmStr,
    value: &WasmStr,
) -> wasmtime::Result<(Result<(), String>,)> {
    // Header names are short: the copy stays on the stack (a longer one spills to the heap).
    let name = SmallVec::<[u8; 64]>::from_slice(name.to_str(&store)?.as_bytes());
    let name = std::str::from_utf8(&name)?;
    let value = value.to_str(&store)?.into_owned();
    let host = store.data_mut();
    let result = T::writable(host, r)?
        .and_then(|(headers, limits)| set_header(headers, limits, name, value));
    Ok((host.header_result(result),))
}

/// What one record adds to its series.
#[derive(Clone, Copy)]
enum Sample {
    Count(u64),
    Observe(f64),
}

fn record(
    mut store: StoreContextMut<'_, HostState>,
    name: &WasmStr,
    labels: &WasmList<RawLabel>,
    sample: Sample,
) -> wasmtime::Result<()> {
    let histogram = matches!(sample, Sample::Observe(_));
    let raw: SmallVec<[RawLabel; 4]> = labels.iter(&mut store)?.collect::<Result<_, _>>()?;
    let missing = {
        let name = name.to_str(&store)?;
        let mut read = Labels::with_capacity(raw.len());
        for (key, value) in &raw {
            read.push((key.to_str(&store)?, value.to_str(&store)?));
        }
        match store.data().metric_handles.find(histogram, &name, &read) {
            // A series the instance holds: recorded through the kept handle, nothing cloned.
            Some(handle) => {
                add(handle, sample);
                None
            }
            None => Some((name.into_owned(), owned(read))),
        }
    };
    if let Some((name, labels)) = missing
        && let Some(handle) = store.data_mut().series(histogram, name, labels)
    {
        add(&handle, sample);
    }
    Ok(())
}

/// Add `sample` to the series behind `handle` (a sample of the other kind is ignored).
fn add(handle: &Handle, sample: Sample) {
    match (handle, sample) {
        (Handle::Counter(counter), Sample::Count(value)) => counter.increment(value),
        (Handle::Histogram(histogram), Sample::Observe(value)) => histogram.record(value),
        _ => {}
    }
}

fn owned(labels: Labels<'_>) -> Vec<(String, String)> {
    labels
        .into_iter()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}
