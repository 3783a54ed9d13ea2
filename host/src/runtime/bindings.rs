//! The host-side `bindgen!`s of the plugin world, one per contract version, reading the same
//! `wit/` folders as the SDK, and the two types the rest of the runtime uses: [`PluginPre`] and
//! [`Plugin`], which call whichever version a component targets.
//!
//! The version is read from the component's imports when it is loaded (its `tollgate:plugin/…`
//! interfaces carry it), so a 0.1.0 component pays nothing for 0.2.0: its calls go straight to
//! the 0.1.0 bindings and their types are the ones the runtime works with. A 0.2.0 call converts
//! its action (a move of the same fields) and its log entry.
//!
//! Exports are async (called with `call_async` on a fiber) so that the `state` imports can await
//! a backend (Redis) without blocking a worker thread, and so can 0.2.0's `body()` (it reads the
//! body from the network the first time it is called). The other imports are sync: they only
//! touch the request in the store's resource table or the process's own telemetry.

use std::fmt;

use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Resource};

use super::host_state::HostState;
use crate::chain::{RequestState, ResponseState};

/// `tollgate:plugin@0.1.0`: the types the runtime works with.
pub(crate) mod v01 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit/v0.1",
        imports: {
            "tollgate:plugin/state": async,
            "tollgate:plugin/http-client": async,
            default: trappable,
        },
        exports: { default: async },
        with: {
            "tollgate:plugin/types.request": crate::chain::RequestState,
            "tollgate:plugin/types.response": crate::chain::ResponseState,
        },
    });
}

/// `tollgate:plugin@0.2.0`: lazy bodies, upstream errors, richer state, host crypto.
pub(crate) mod v02 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit/v0.2",
        imports: {
            "tollgate:plugin/state": async,
            "tollgate:plugin/http-client": async,
            "tollgate:plugin/types.[method]request.body": async | trappable,
            "tollgate:plugin/types.[method]response.body": async | trappable,
            "tollgate:plugin/redaction.[method]policy.redact-response": async | trappable,
            default: trappable,
        },
        exports: { default: async },
        with: {
            "tollgate:plugin/types.request": crate::chain::RequestState,
            "tollgate:plugin/types.response": crate::chain::ResponseState,
            "tollgate:plugin/crypto.verify-key": crate::runtime::crypto::VerifyKey,
            "tollgate:plugin/crypto.mac-key": crate::runtime::crypto::MacKey,
            "tollgate:plugin/redaction.policy": crate::runtime::redaction::Policy,
        },
    });
}

pub(crate) use self::v01::tollgate;
pub(crate) use self::v01::tollgate::plugin::types::{
    Action, Capabilities, LogEntry, Phases, Reply,
};

/// Which contract a component was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContractVersion {
    /// `tollgate:plugin@0.1.0`.
    V0_1,
    /// `tollgate:plugin@0.2.0`.
    V0_2,
}

impl ContractVersion {
    /// The version as WIT writes it (`0.1.0`).
    pub fn as_str(self) -> &'static str {
        match self {
            ContractVersion::V0_1 => "0.1.0",
            ContractVersion::V0_2 => "0.2.0",
        }
    }

    /// The version a component targets, from the versions of the `tollgate:plugin` interfaces it
    /// imports (every plugin imports `types`, which its exports use). `None` when it imports no
    /// known version.
    pub(crate) fn of(component: &Component) -> Option<Self> {
        let ty = component.component_type();
        let engine = component.engine();
        let mut found = None;
        for (name, _) in ty.imports(engine) {
            let Some(rest) = name.strip_prefix("tollgate:plugin/") else {
                continue;
            };
            match rest.rsplit_once('@').map(|(_, v)| v) {
                Some("0.2.0") => return Some(ContractVersion::V0_2),
                Some("0.1.0") => found = Some(ContractVersion::V0_1),
                _ => {}
            }
        }
        found
    }
}

impl fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A component linked against the host's imports, ready to instantiate, for its version.
pub(crate) enum PluginPre<T: 'static> {
    V01(v01::PluginPre<T>),
    V02(v02::PluginPre<T>),
}

impl PluginPre<HostState> {
    /// Check the component's exports against the world of `version`.
    pub(crate) fn new(
        pre: InstancePre<HostState>,
        version: ContractVersion,
    ) -> wasmtime::Result<Self> {
        Ok(match version {
            ContractVersion::V0_1 => Self::V01(v01::PluginPre::new(pre)?),
            ContractVersion::V0_2 => Self::V02(v02::PluginPre::new(pre)?),
        })
    }

    /// The contract version.
    pub(crate) fn version(&self) -> ContractVersion {
        match self {
            Self::V01(_) => ContractVersion::V0_1,
            Self::V02(_) => ContractVersion::V0_2,
        }
    }

    pub(crate) async fn instantiate_async(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Plugin> {
        Ok(match self {
            Self::V01(pre) => Plugin::V01(pre.instantiate_async(store).await?),
            Self::V02(pre) => Plugin::V02(pre.instantiate_async(store).await?),
        })
    }
}

/// An instance's exports, for its version.
pub(crate) enum Plugin {
    V01(v01::Plugin),
    V02(v02::Plugin),
}

impl Plugin {
    /// `init`; a 0.2.0 plugin's capabilities read as 0.1.0's with no body declared (its bodies
    /// are read on demand).
    pub(crate) async fn call_init(
        &self,
        store: &mut Store<HostState>,
        config: &str,
    ) -> wasmtime::Result<Result<Capabilities, String>> {
        match self {
            Self::V01(p) => p.call_init(store, config).await,
            Self::V02(p) => Ok(p.call_init(store, config).await?.map(|c| {
                use v02::tollgate::plugin::types::Phases as P2;
                let mut phases = Phases::empty();
                for (v2, v1) in [
                    (P2::REQUEST, Phases::REQUEST),
                    (P2::RESPONSE, Phases::RESPONSE),
                    (P2::LOG, Phases::LOG),
                ] {
                    if c.phases.contains(v2) {
                        phases |= v1;
                    }
                }
                Capabilities {
                    phases,
                    request_body: false,
                    response_body: false,
                }
            })),
        }
    }

    pub(crate) async fn call_on_request(
        &self,
        store: &mut Store<HostState>,
        req: Resource<RequestState>,
    ) -> wasmtime::Result<Action> {
        match self {
            Self::V01(p) => p.call_on_request(store, req).await,
            Self::V02(p) => p.call_on_request(store, req).await.map(action),
        }
    }

    pub(crate) async fn call_on_response(
        &self,
        store: &mut Store<HostState>,
        req: Resource<RequestState>,
        resp: Resource<ResponseState>,
    ) -> wasmtime::Result<Action> {
        match self {
            Self::V01(p) => p.call_on_response(store, req, resp).await,
            Self::V02(p) => p.call_on_response(store, req, resp).await.map(action),
        }
    }

    /// `on-log`; a 0.2.0 plugin also learns the upstream failure the request ended with.
    pub(crate) async fn call_on_log(
        &self,
        store: &mut Store<HostState>,
        entry: &LogEntry,
    ) -> wasmtime::Result<()> {
        match self {
            Self::V01(p) => p.call_on_log(store, entry).await,
            Self::V02(p) => {
                let upstream_error = store
                    .data_mut()
                    .current_request()
                    .and_then(|r| r.upstream_error.as_ref())
                    .map(super::imports_v2::upstream_error);
                let entry = v02::LogEntry {
                    route: entry.route.clone(),
                    method: entry.method.clone(),
                    path: entry.path.clone(),
                    status: entry.status,
                    client_ip: entry.client_ip.clone(),
                    request_bytes: entry.request_bytes,
                    response_bytes: entry.response_bytes,
                    duration_micros: entry.duration_micros,
                    upstream_micros: entry.upstream_micros,
                    upstream: entry.upstream.clone(),
                    upstream_error,
                };
                p.call_on_log(store, &entry).await
            }
        }
    }
}

/// A 0.2.0 action as the runtime's (the same shape: fields move, nothing is copied).
fn action(a: v02::Action) -> Action {
    match a {
        v02::Action::Continue => Action::Continue,
        v02::Action::Respond(r) => Action::Respond(Reply {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }),
        v02::Action::Defer(ms) => Action::Defer(ms),
    }
}
