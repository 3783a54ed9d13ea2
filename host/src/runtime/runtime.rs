//! The entry point: one engine, linker, compile cache and state backend for the process.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use super::bindings::{ContractVersion, PluginPre, v01, v02};
use super::cache::CompileCache;
use super::clock::{PluginClock, SystemClock};
use super::compile_process;
use super::engine::build_engine;
use super::error::RuntimeError;
use super::host_state::{HostState, PluginShared};
use super::options::RuntimeOptions;
use super::plugin::{LoadedPlugin, NewInstanceError, PluginFingerprint, new_instance};
use super::pool::Factory;
use super::state::StateBackend;
use super::ticker::EpochTicker;
use crate::chain::{Fetcher, NoFetcher};
use crate::config::PluginSpec;

/// Shared by the runtime and every plugin it loaded, so plugins outlive a dropped `Runtime`.
pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    linker: Linker<HostState>,
    cache: Arc<CompileCache>,
    pub(crate) opts: RuntimeOptions,
    pub(crate) state: Arc<dyn StateBackend>,
    pub(crate) fetcher: Arc<dyn Fetcher>,
    pub(crate) clock: Arc<dyn PluginClock>,
    pub(crate) ticker: EpochTicker,
}

/// The Wasm runtime. Cheap to clone; create one per process.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Build the engine (pooling allocator sized by `opts`), start the epoch ticker and link the
    /// host imports. `state` is shared by every plugin and survives reloads. Plugins' `fetch`
    /// calls are refused (see [`Runtime::with_fetcher`]).
    pub fn new(opts: RuntimeOptions, state: Arc<dyn StateBackend>) -> Result<Self, RuntimeError> {
        Self::with_fetcher(opts, state, Arc::new(NoFetcher))
    }

    /// Like [`Runtime::new`], with `fetcher` sending plugins' `http-client` requests (each plugin
    /// only to the upstreams in its `fetch` list).
    pub fn with_fetcher(
        opts: RuntimeOptions,
        state: Arc<dyn StateBackend>,
        fetcher: Arc<dyn Fetcher>,
    ) -> Result<Self, RuntimeError> {
        Self::with_clock(opts, state, fetcher, Arc::new(SystemClock))
    }

    /// Like [`Runtime::with_fetcher`], with `clock` answering plugins' `clock` import (the
    /// plugin test kit fixes the time with it).
    pub fn with_clock(
        opts: RuntimeOptions,
        state: Arc<dyn StateBackend>,
        fetcher: Arc<dyn Fetcher>,
        clock: Arc<dyn PluginClock>,
    ) -> Result<Self, RuntimeError> {
        let engine = build_engine(&opts)?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(RuntimeError::Engine)?;
        // Both contract versions: their interfaces have distinct (versioned) names.
        v01::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(RuntimeError::Engine)?;
        v02::Plugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(RuntimeError::Engine)?;
        // The hottest string-taking imports read their strings in place instead of lifting them.
        super::in_place_imports::link(&mut linker).map_err(RuntimeError::Engine)?;
        let ticker = EpochTicker::start(&engine, opts.epoch_tick)?;
        let cache = Arc::new(CompileCache::new(
            &engine,
            opts.cache_dir.clone(),
            compile_process::engine_args(&opts),
        ));
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                cache,
                opts,
                state,
                fetcher,
                clock,
                ticker,
            }),
        })
    }

    /// The state backend shared by every plugin (the admin API reads usage counters from it).
    pub fn state(&self) -> &Arc<dyn StateBackend> {
        &self.inner.state
    }

    /// The options the runtime was built with.
    pub fn options(&self) -> &RuntimeOptions {
        &self.inner.opts
    }

    /// The fingerprint `spec` would load with (reads the module file to hash it). Compare it with
    /// [`LoadedPlugin::fingerprint`] to reuse an unchanged plugin and its warm pool on reload.
    pub async fn fingerprint(&self, spec: &PluginSpec) -> Result<PluginFingerprint, RuntimeError> {
        let hash = self.module_hash(spec).await?;
        Ok(PluginFingerprint::new(spec, &hash))
    }

    /// The SHA-256 of `spec`'s module file (what signatures sign and the fingerprint covers).
    pub async fn module_hash(&self, spec: &PluginSpec) -> Result<[u8; 32], RuntimeError> {
        let bytes = read_module(spec).await?;
        Ok(Sha256::digest(&bytes).into())
    }

    /// Compile (or load from the cache), create `pool_size` (at least one) warm instances and call
    /// `init` on each. A refused config fails with the plugin's own message.
    pub async fn load_plugin(&self, spec: &PluginSpec) -> Result<Arc<LoadedPlugin>, RuntimeError> {
        self.load_plugin_expecting(spec, None).await
    }

    /// Like [`Runtime::load_plugin`], refusing a module whose SHA-256 is not `expected` (the
    /// digest whose signature was checked: the file must not change between check and load).
    pub async fn load_plugin_expecting(
        &self,
        spec: &PluginSpec,
        expected: Option<[u8; 32]>,
    ) -> Result<Arc<LoadedPlugin>, RuntimeError> {
        let rt = &self.inner;
        let plugin = spec.name.to_string();
        check_limits(spec, &rt.opts)?;
        let bytes = read_module(spec).await?;
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        if expected.is_some_and(|e| e != hash) {
            return Err(RuntimeError::Invalid {
                plugin,
                message: format!(
                    "module `{}` changed while it was being loaded",
                    spec.module.display()
                ),
            });
        }
        let fingerprint = PluginFingerprint::new(spec, &hash);
        let (component, source) =
            rt.cache
                .get(bytes, hash)
                .await
                .map_err(|message| RuntimeError::Invalid {
                    plugin: plugin.clone(),
                    message,
                })?;
        let version = ContractVersion::of(&component).ok_or_else(|| RuntimeError::Invalid {
            plugin: plugin.clone(),
            message: "imports no tollgate:plugin interface of a known version (0.1.0 or 0.2.0)"
                .into(),
        })?;
        let pre = rt
            .linker
            .instantiate_pre(&component)
            .and_then(|pre| PluginPre::new(pre, version))
            .map_err(|e| RuntimeError::Invalid {
                plugin: plugin.clone(),
                message: format!("does not fit the tollgate:plugin@{version} world: {e:#}"),
            })?;
        let mut warm = Vec::with_capacity(spec.pool_size.max(1));
        let mut caps = None;
        let shared = Arc::new(PluginShared::default());
        for _ in 0..spec.pool_size.max(1) {
            match new_instance(rt, &pre, spec, &shared).await {
                Ok((w, c)) => {
                    caps.get_or_insert(c);
                    warm.push(w);
                }
                Err(NewInstanceError::Init(message)) => {
                    return Err(RuntimeError::Init { plugin, message });
                }
                Err(NewInstanceError::Instantiate(message)) => {
                    return Err(RuntimeError::Instantiate { plugin, message });
                }
            }
        }
        let caps = caps.unwrap_or_default();
        tracing::debug!(
            plugin,
            ?source,
            ?caps,
            instances = warm.len(),
            "plugin loaded"
        );
        let factory = Factory {
            rt: Arc::clone(rt),
            pre,
            spec: spec.clone(),
            shared,
        };
        Ok(Arc::new(LoadedPlugin::new(
            factory,
            fingerprint,
            source,
            caps,
            warm,
        )))
    }
}

fn check_limits(spec: &PluginSpec, opts: &RuntimeOptions) -> Result<(), RuntimeError> {
    let limits = |message: String| RuntimeError::Limits {
        plugin: spec.name.to_string(),
        message,
    };
    if spec.memory_limit as u64 > opts.max_memory_bytes {
        return Err(limits(format!(
            "memory_limit {} exceeds the runtime's maximum of {} bytes",
            spec.memory_limit, opts.max_memory_bytes
        )));
    }
    if spec.timeout.is_zero() {
        return Err(limits("timeout must be greater than zero".into()));
    }
    if spec.pool_size > opts.max_instances as usize {
        return Err(limits(format!(
            "pool_size {} exceeds the runtime's instance limit of {}",
            spec.pool_size, opts.max_instances
        )));
    }
    Ok(())
}

async fn read_module(spec: &PluginSpec) -> Result<Vec<u8>, RuntimeError> {
    tokio::fs::read(&spec.module)
        .await
        .map_err(|source| RuntimeError::Read {
            plugin: spec.name.to_string(),
            path: spec.module.clone(),
            source,
        })
}
