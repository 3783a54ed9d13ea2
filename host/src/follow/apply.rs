//! One follower's moves: the first revision at start, applying a revision by hot swap (or
//! reporting why it could not), refreshing the key table, and reporting to the control plane.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use http::Method;
use sha2::Digest as _;

use super::disk::Disk;
use super::keys::{self, KeyTable};
use crate::ctl::{ClientError, ControlClient};
use crate::gateway::{Gateway, Running};

const CALL: Duration = Duration::from_secs(10);

/// What the follower knows and has done.
#[derive(Default)]
struct Progress {
    /// The revision served.
    applied: i64,
    /// The newest revision seen (applied or refused).
    seen: i64,
    /// Why the newest revision could not be applied.
    error: Option<serde_json::Value>,
    keys: KeyTable,
    applied_ok: u64,
    apply_failed: u64,
    key_syncs: u64,
}

/// A follower before and while serving.
pub struct Follower {
    pub(super) client: ControlClient,
    pub(super) disk: Disk,
    node: String,
    gateway: Option<Arc<Gateway>>,
    listeners: Vec<SocketAddr>,
    admin: Option<SocketAddr>,
    progress: Mutex<Progress>,
}

fn lock(m: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Follower {
    pub(super) fn new(client: ControlClient, disk: Disk, node: String) -> Self {
        Self {
            client,
            disk,
            node,
            gateway: None,
            listeners: Vec::new(),
            admin: None,
            progress: Mutex::new(Progress::default()),
        }
    }

    /// The same follower, now with the gateway it drives.
    pub(super) fn serving(
        mut self,
        gateway: Arc<Gateway>,
        revision: i64,
        running: &Running,
    ) -> Self {
        self.gateway = Some(gateway);
        self.listeners = running.listeners.clone();
        self.admin = running.admin;
        {
            let mut p = lock(&self.progress);
            p.applied = revision;
            p.seen = revision;
        }
        self
    }

    /// (newest revision seen, key version held): the watch's cursor.
    pub(super) fn cursor(&self) -> (i64, i64) {
        let p = lock(&self.progress);
        (p.seen, p.keys.version)
    }

    /// The revision to start with: the control plane's current one, written to disk; when it
    /// is unreachable, the last good one on disk; with neither, wait for the control plane.
    pub(super) async fn first_revision(&self) -> anyhow::Result<i64> {
        let mut failures = 0u32;
        loop {
            match self.fetch_current().await {
                Ok(Some((id, text))) => {
                    self.disk.write_config(&text)?;
                    self.disk.set_applied(id)?;
                    tracing::info!(
                        revision = id,
                        "starting with the control plane's current revision"
                    );
                    return Ok(id);
                }
                Ok(None) => tracing::info!("the control plane has no revision yet; waiting"),
                Err(e) => {
                    if let Some(applied) = self.disk.applied() {
                        tracing::warn!(error = %e, revision = applied.revision, "control plane unreachable; starting with the last good revision on disk");
                        return Ok(applied.revision);
                    }
                    if let ClientError::Status { status, .. } = &e
                        && status.is_client_error()
                    {
                        anyhow::bail!("the control plane refused this node: {e}");
                    }
                    tracing::warn!(error = %e, "control plane unreachable and no revision on disk; retrying");
                }
            }
            failures = failures.saturating_add(1);
            tokio::time::sleep(super::backoff(failures)).await;
        }
    }

    /// The current revision's id and config text, its modules on disk; `None` before the first.
    async fn fetch_current(&self) -> Result<Option<(i64, String)>, ClientError> {
        match self.fetch_revision("current").await {
            Ok(r) => Ok(Some(r)),
            Err(ClientError::Status { status, .. }) if status == http::StatusCode::NOT_FOUND => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A revision's id and config text, with every module it names fetched to disk.
    async fn fetch_revision(&self, id: &str) -> Result<(i64, String), ClientError> {
        let r = self
            .client
            .json(Method::GET, &format!("/v1/revisions/{id}"), None, CALL)
            .await?;
        let id = r["id"].as_i64().unwrap_or(0);
        let text = r["config"].as_str().unwrap_or("").to_owned();
        let (refs, _) = crate::control::module_refs(&text);
        for (_, hash) in refs {
            self.fetch_signature(&hash, &text).await?;
            if self.disk.module_path(&hash).exists() {
                continue;
            }
            let (_, bytes) = self
                .client
                .call(Method::GET, &format!("/v1/modules/{hash}"), None, CALL)
                .await?;
            let actual = crate::control::hex(&sha2::Sha256::digest(&bytes));
            if actual != hash {
                return Err(ClientError::Unreachable(format!(
                    "module {hash} arrived with hash {actual}"
                )));
            }
            self.disk
                .write_module(&hash, &bytes)
                .map_err(|e| ClientError::Setup(format!("cannot write module: {e}")))?;
        }
        Ok((id, text))
    }

    /// Module `hash`'s signature for `config` as the control plane has it now (asked at every
    /// revision: a module can be signed, or signed again by another key, after it was fetched).
    async fn fetch_signature(&self, hash: &str, config: &str) -> Result<(), ClientError> {
        let path = format!("/v1/modules/{hash}/signatures");
        let files = match self.client.json(Method::GET, &path, None, CALL).await {
            Ok(list) => list
                .as_array()
                .map(|a| a.iter().map(|f| f.to_string()).collect())
                .unwrap_or_default(),
            Err(ClientError::Status { status, .. }) if status == http::StatusCode::NOT_FOUND => {
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let chosen = crate::control::pick_signature(config, &files);
        self.disk
            .write_signature(hash, chosen.map(String::as_bytes))
            .map_err(|e| ClientError::Setup(format!("cannot write a module signature: {e}")))
    }

    /// Apply revision `id` by hot swap; on failure keep serving the old one and remember why.
    pub(super) async fn apply(&self, id: i64) {
        let Some(gateway) = &self.gateway else { return };
        let outcome = match self.fetch_revision(&id.to_string()).await {
            Ok((_, text)) => self.swap(gateway, id, &text).await,
            Err(e) => Err(serde_json::json!({"message": e.to_string()})),
        };
        let mut p = lock(&self.progress);
        p.seen = id;
        match outcome {
            Ok(()) => {
                if let Err(e) = self.disk.set_applied(id) {
                    tracing::error!(error = %e, "cannot record the applied revision");
                }
                p.applied = id;
                p.error = None;
                p.applied_ok += 1;
                tracing::info!(revision = id, "revision applied");
            }
            Err(why) => {
                p.error = Some(serde_json::json!({"revision": id, "error": why}));
                p.apply_failed += 1;
                tracing::error!(revision = id, error = %why, "revision refused; still serving the previous one");
            }
        }
    }

    /// Write the config, reload; on failure put the old text back.
    async fn swap(&self, gateway: &Gateway, id: i64, text: &str) -> Result<(), serde_json::Value> {
        let io = |e: std::io::Error| serde_json::json!({"message": e.to_string()});
        let old = self.disk.write_config(text).map_err(io)?;
        match gateway.reload_at(Some(id)).await {
            Ok(_) => {
                // New auth plugins read the key table too.
                self.write_keys().await;
                Ok(())
            }
            Err(e) => {
                if let Some(old) = old {
                    self.disk.write_config(&old).map_err(io)?;
                }
                let issues: Vec<_> = e
                    .issues()
                    .iter()
                    .map(|i| serde_json::json!({"path": i.path, "message": i.message}))
                    .collect();
                Err(serde_json::json!({"message": e.to_string(), "issues": issues}))
            }
        }
    }

    /// At start: the key table from the control plane, or the last one on disk.
    pub(super) async fn first_keys(&self) {
        if !self.refresh_keys().await
            && let Some(text) = self.disk.keys()
            && let Ok(table) = serde_json::from_str::<KeyTable>(&text)
        {
            tracing::info!(keys = table.keys.len(), "using the key table on disk");
            let Some(gateway) = &self.gateway else { return };
            let namespaces = keys::namespaces(gateway.config().await.as_ref());
            keys::sync(
                gateway.state().as_ref(),
                &namespaces,
                &KeyTable::default(),
                &table,
            )
            .await;
            lock(&self.progress).keys = table;
        }
    }

    /// Fetch the key table and write it into the state; false when it could not be fetched.
    pub(super) async fn refresh_keys(&self) -> bool {
        let table = match self
            .client
            .json(Method::GET, "/v1/node/keys", None, CALL)
            .await
        {
            Ok(v) => match serde_json::from_value::<KeyTable>(v) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "the key table does not parse");
                    return false;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch the key table");
                return false;
            }
        };
        let Some(gateway) = &self.gateway else {
            return false;
        };
        let namespaces = keys::namespaces(gateway.config().await.as_ref());
        let old = std::mem::take(&mut lock(&self.progress).keys);
        keys::sync(gateway.state().as_ref(), &namespaces, &old, &table).await;
        if let Err(e) = self
            .disk
            .write_keys(&serde_json::to_string(&table).unwrap_or_default())
        {
            tracing::error!(error = %e, "cannot keep the key table on disk");
        }
        let mut p = lock(&self.progress);
        p.keys = table;
        p.key_syncs += 1;
        true
    }

    /// Write the key table held into the state again (after a revision named new plugins, and
    /// on quiet watches).
    pub(super) async fn write_keys(&self) {
        let Some(gateway) = &self.gateway else { return };
        let table = lock(&self.progress).keys.clone();
        let namespaces = keys::namespaces(gateway.config().await.as_ref());
        keys::sync(gateway.state().as_ref(), &namespaces, &table, &table).await;
    }

    /// Tell the control plane where this gateway is.
    pub(super) async fn report(&self) {
        let Some(gateway) = &self.gateway else { return };
        let plugins = gateway.plugins().await;
        let (calls, errors) = plugins
            .iter()
            .map(|p| p.stats())
            .fold((0, 0), |(c, e), s| (c + s.calls, e + s.errors()));
        let mut body = {
            let p = lock(&self.progress);
            serde_json::json!({
                "node": self.node,
                "revision": p.applied,
                "healthy": gateway.is_ready(),
                "error": p.error,
                "listeners": self.listeners.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "admin": self.admin.map(|a| a.to_string()),
                "keys_version": p.keys.version,
                "counters": {"revisions_applied": p.applied_ok, "revisions_refused": p.apply_failed,
                    "key_syncs": p.key_syncs, "plugin_calls": calls, "plugin_errors": errors},
            })
        };
        body["plugins"] = plugin_figures(gateway).await;
        if let Err(e) = self
            .client
            .json(Method::POST, "/v1/node/status", Some(&body), CALL)
            .await
        {
            tracing::debug!(error = %e, "status report failed");
        }
    }
}

/// Each loaded plugin's figures for the report (the dashboard's routes page): its entry name,
/// stable or canary, module SHA-256, the phases it declared, calls and failures since it was
/// loaded, and its p50 and p99 call times.
async fn plugin_figures(gateway: &Gateway) -> serde_json::Value {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let list: Vec<serde_json::Value> = gateway
        .plugins_with_provenance()
        .await
        .iter()
        .map(|(p, provenance)| {
            let (s, caps) = (p.stats(), p.capabilities());
            serde_json::json!({
                "name": &**p.name(),
                "version": p.spec().version.as_str(),
                "sha256": provenance.sha256,
                "phases": {"request": caps.request, "response": caps.response, "log": caps.log},
                "calls": s.calls,
                "errors": s.errors(),
                "traps": s.traps,
                "timeouts": s.timeouts,
                "p50_ms": ms(s.p50_call_time),
                "p99_ms": ms(s.p99_call_time),
            })
        })
        .collect();
    serde_json::json!(list)
}
