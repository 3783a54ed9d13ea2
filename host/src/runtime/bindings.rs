//! The one host-side `bindgen!` of the plugin world, reading the same `wit/` folder as the SDK.
//!
//! Exports are async (called with `call_async` on a fiber) so that the `state` imports can await
//! a backend (Redis later) without blocking a worker thread. The other imports are sync: they only
//! touch the request in the store's resource table or the process's own telemetry.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
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

pub(crate) use self::tollgate::plugin::types::{Phases, Reply};
