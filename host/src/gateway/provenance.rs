//! Where each loaded module came from (`GET /admin/plugins`): its SHA-256, the key that signed
//! it, when it was loaded and the revision that introduced it; and the signature check that
//! `[gateway] require_signatures` makes at every load and reload.

use std::path::Path;

use serde::Serialize;

use crate::config::GatewaySettings;
use crate::signing;

/// The config revision a load belongs to: the control plane's revision number when the gateway
/// follows one, else the local generation (1 at start, +1 per applied reload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Revision {
    /// `control` or `local`.
    pub source: &'static str,
    /// The number.
    pub number: i64,
}

impl Revision {
    /// Generation `n` of the local config file.
    pub fn local(n: i64) -> Self {
        Self {
            source: "local",
            number: n,
        }
    }

    /// Revision `n` of the control plane.
    pub fn control(n: i64) -> Self {
        Self {
            source: "control",
            number: n,
        }
    }
}

/// A loaded module's provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// Hex SHA-256 of the module file.
    pub sha256: String,
    /// Id of the trusted key whose signature verified (`null` when none did).
    pub signer: Option<String>,
    /// When the module was loaded (Unix milliseconds).
    pub loaded_at_unix_ms: u64,
    /// The revision whose config first loaded it.
    pub revision: Revision,
}

/// Check `module`'s signature (digest `hash`) against `settings`: the signer's key id, `None`
/// when it has no valid signature and none is required, or the refusal naming the module.
pub(super) fn check_signature(
    settings: &GatewaySettings,
    module: &Path,
    hash: &[u8; 32],
) -> Result<Option<String>, String> {
    if settings.trusted_keys.is_empty() && !settings.require_signatures {
        return Ok(None);
    }
    match signing::verify(module, hash, &settings.trusted_keys) {
        Ok(key_id) => Ok(Some(key_id)),
        Err(e) if settings.require_signatures => Err(format!(
            "module `{}` {e}; [gateway] require_signatures refuses it",
            module.display()
        )),
        Err(e) => {
            tracing::debug!(module = %module.display(), "no valid signature: {e}");
            Ok(None)
        }
    }
}
