//! Write [Tollgate](https://example.invalid/tollgate) gateway plugins in Rust.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2`. Implement [`Plugin`] for a type,
//! export it with [`export_plugin!`], and the gateway calls it for every request on the routes
//! whose chain names it.
//!
//! ```no_run
//! use serde::Deserialize;
//! use tollgate_sdk::{Action, Plugin, Request};
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     header: String,
//! }
//!
//! struct RequireHeader {
//!     header: String,
//! }
//!
//! impl Plugin for RequireHeader {
//!     type Config = Config;
//!
//!     fn init(config: Config) -> Result<Self, String> {
//!         Ok(Self { header: config.header.to_ascii_lowercase() })
//!     }
//!
//!     fn on_request(&self, req: &Request) -> Action {
//!         match req.header(&self.header) {
//!             Some(_) => Action::Continue,
//!             None => Action::json(400, &serde_json::json!({ "error": "missing header" })),
//!         }
//!     }
//! }
//!
//! tollgate_sdk::export_plugin!(RequireHeader);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and name the resulting `.wasm`
//! file in `gateway.toml` (see the SDK's README).
//!
//! The SDK targets the contract `tollgate:plugin@0.2.0` (`wit/v0.2/plugin.wit`): bodies are
//! read when [`Request::body`] / [`Response::body`] is called, [`Response::upstream_error`] tells
//! the response phase that the upstream failed, [`state`] has binary values, set-if-absent and
//! compare-and-set, [`crypto`] verifies signatures in the host, and [`redaction`] runs the
//! `redact` plugin's engine in the host.
//!
//! # Instance model
//!
//! The gateway keeps a pool of initialised instances of each plugin and lends one to a request
//! for one phase call at a time. A plugin value lives as long as its instance, so fields set in
//! [`Plugin::init`] are there for every later call; but different requests may see different
//! instances, and an instance that traps is replaced by a fresh one. Keep per-request data in
//! [`context`] and data shared between requests in [`state`].
#![deny(missing_docs)]

mod action;
mod capabilities;
pub mod clock;
mod config;
pub mod context;
pub mod crypto;
mod export;
pub mod fetch;
mod http;
pub mod log;
mod log_entry;
pub mod metrics;
pub mod redaction;
pub mod state;
pub mod text;

pub use action::Action;
pub use capabilities::Capabilities;
pub use config::{NoConfig, parse_config};
pub use http::{Request, Response, UpstreamError, UpstreamErrorKind};
pub use log_entry::LogEntry;

/// Generated bindings and the glue used by [`export_plugin!`]. Not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::export::Exporter;

    // The generated code is full of `unsafe` ABI glue and undocumented helpers.
    #[allow(unsafe_code, missing_docs, clippy::all)]
    mod bindings {
        wit_bindgen::generate!({
            path: "../wit/v0.2",
            world: "plugin",
            pub_export_macro: true,
            export_macro_name: "__export_plugin_world",
            default_bindings_module: "tollgate_sdk::__private",
            // Imports take borrowed lists and records (`&[(&str, &str)]`, `CounterAddParam`),
            // so the SDK passes a plugin's borrowed labels and keys without copying them.
            ownership: Borrowing { duplicate_if_necessary: true },
        });
    }
    pub use bindings::*;
}

/// A gateway plugin.
///
/// The gateway creates one value per instance with [`Plugin::init`], then calls the phase methods
/// that [`Plugin::capabilities`] declares. Every method has a default that does nothing, so a
/// plugin implements only the phases it needs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Tollgate plugin",
    label = "`export_plugin!` needs a type that implements `tollgate_sdk::Plugin`",
    note = "add `impl tollgate_sdk::Plugin for {Self} {{ type Config = ...; fn init(..) -> .. }}`"
)]
pub trait Plugin: Sized + 'static {
    /// The plugin's config, deserialised from the JSON form of its `[plugins.NAME.config]` table
    /// in `gateway.toml`. Use [`NoConfig`] when the plugin takes none. An empty config text is
    /// read as `{}`.
    type Config: serde::de::DeserializeOwned;

    /// Validate the config and build the plugin. An `Err` fails the load or reload of the gateway
    /// config with this message, so a bad config never reaches a request.
    fn init(config: Self::Config) -> Result<Self, String>;

    /// The phases to call and whether the plugin needs the bodies. Called once, right after
    /// `init`. The default takes part in the request and response phases without bodies.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// The request phase, in chain order. Changes made through `req` are seen by later plugins
    /// and the upstream.
    fn on_request(&self, req: &Request<'_>) -> Action {
        let _ = req;
        Action::Continue
    }

    /// The response phase, in reverse chain order. `req` shows the request as it was sent
    /// upstream (read-only); `resp` can be changed or replaced by returning [`Action::Respond`].
    fn on_response(&self, req: &Request<'_>, resp: &Response<'_>) -> Action {
        let _ = (req, resp);
        Action::Continue
    }

    /// The log phase, after the client has the response. Runs only when
    /// [`Capabilities::log`] is declared. [`context`] is still readable here.
    fn on_log(&self, entry: &LogEntry) {
        let _ = entry;
    }
}

/// Export a type implementing [`Plugin`] as this component's plugin. Use it once per crate,
/// at the top level:
///
/// ```no_run
/// # use tollgate_sdk::{NoConfig, Plugin};
/// # struct MyPlugin;
/// # impl Plugin for MyPlugin {
/// #     type Config = NoConfig;
/// #     fn init(_: NoConfig) -> Result<Self, String> { Ok(MyPlugin) }
/// # }
/// tollgate_sdk::export_plugin!(MyPlugin);
/// ```
///
/// A type that does not implement [`Plugin`] is refused with "`X` is not a Tollgate plugin":
///
/// ```compile_fail
/// struct NotAPlugin;
/// tollgate_sdk::export_plugin!(NotAPlugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            // A clear error when the type is not a plugin, before the generated glue complains.
            const fn __tollgate_assert_plugin<P: $crate::Plugin>() {}
            __tollgate_assert_plugin::<$plugin>();

            type __TollgateExport = $crate::__private::Exporter<$plugin>;
            $crate::__private::__export_plugin_world!(
                __TollgateExport with_types_in $crate::__private
            );
        };
    };
    ($($other:tt)*) => {
        ::core::compile_error!(
            "usage: `tollgate_sdk::export_plugin!(MyPlugin);` with one type that implements `tollgate_sdk::Plugin`"
        );
    };
}

/// Compiles the README's example as a doctest so the guide cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
