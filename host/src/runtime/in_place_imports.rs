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
//! - `context.get`, and the request's `header` and `header-all`: the key or header name is
//!   looked up in place (most chains read `consumer` several times per request, and an auth
//!   plugin its credential header). The values are still copied out, as the generated code did.
//! - the request's `set-header`: the name is copied to the stack instead of the heap (the value
//!   is lifted as before: the header keeps that buffer).
//!
//! What a plugin sees is the same: same types, same traps on invalid strings, same caps.

use std::borrow::Cow;

use smallvec::SmallVec;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, WasmList, WasmStr};

use super::host_request::{header_all, header_first, set_header};
use super::host_state::HostState;
use super::metric_handles::Handle;
use crate::chain::RequestState;

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
        types.func_wrap(
            "[method]request.header",
            |store, (request, name): (Resource<RequestState>, WasmStr)| {
                let name = name.to_str(&store)?;
                let request = store.data().table.get(&request)?;
                Ok((header_first(&request.headers, &name),))
            },
        )?;
        types.func_wrap(
            "[method]request.header-all",
            |store, (request, name): (Resource<RequestState>, WasmStr)| {
                let name = name.to_str(&store)?;
                let request = store.data().table.get(&request)?;
                Ok((header_all(&request.headers, &name),))
            },
        )?;
        types.func_wrap(
            "[method]request.set-header",
            |store, (request, name, value): (Resource<RequestState>, WasmStr, WasmStr)| {
                set_request_header(store, &request, &name, &value)
            },
        )?;
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
    linker.allow_shadowing(false);
    Ok(())
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

/// Replace every value of the request header `name` (within the caps; only in the request phase).
fn set_request_header(
    mut store: StoreContextMut<'_, HostState>,
    request: &Resource<RequestState>,
    name: &WasmStr,
    value: &WasmStr,
) -> wasmtime::Result<(Result<(), String>,)> {
    // Header names are short: the copy stays on the stack (a longer one spills to the heap).
    let name = SmallVec::<[u8; 64]>::from_slice(name.to_str(&store)?.as_bytes());
    let name = std::str::from_utf8(&name)?;
    let value = value.to_str(&store)?.into_owned();
    let host = store.data_mut();
    let result = host
        .request_headers(request)?
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
    let kept = {
        let name = name.to_str(&store)?;
        let mut read = Labels::with_capacity(raw.len());
        for (key, value) in &raw {
            read.push((key.to_str(&store)?, value.to_str(&store)?));
        }
        match store.data().metric_handles.find(histogram, &name, &read) {
            Some(handle) => Ok(handle.clone()),
            None => Err((name.into_owned(), owned(read))),
        }
    };
    let handle = match kept {
        Ok(handle) => Some(handle),
        Err((name, labels)) => store.data_mut().series(histogram, name, labels),
    };
    match (handle, sample) {
        (Some(Handle::Counter(counter)), Sample::Count(value)) => counter.increment(value),
        (Some(Handle::Histogram(histogram)), Sample::Observe(value)) => histogram.record(value),
        _ => {}
    }
    Ok(())
}

fn owned(labels: Labels<'_>) -> Vec<(String, String)> {
    labels
        .into_iter()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}
