//! Who may do what: management tokens with roles (admin: everything; operator: config and
//! consumers; viewer: read-only) and node tokens (read config, keys and modules, report status).
//! Tokens are random, shown once at creation and stored as SHA-256 hashes.

use sha2::{Digest, Sha256};

use super::http::ApiError;

/// A token's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including tokens and the audit log.
    Admin,
    /// Config revisions, consumers and keys, and reading.
    Operator,
    /// Reading revisions, consumers (not key hashes), gateways.
    Viewer,
    /// A gateway: reads config, modules and the key table, reports its status.
    Node,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read revisions, consumers, gateways.
    Read,
    /// Change config or consumers and keys.
    Write,
    /// Manage tokens, read the audit log.
    Admin,
    /// A gateway's calls.
    Node,
}

impl Role {
    /// The role named in the API.
    pub fn parse(name: &str) -> Option<Role> {
        Some(match name {
            "admin" => Role::Admin,
            "operator" => Role::Operator,
            "viewer" => Role::Viewer,
            "node" => Role::Node,
            _ => return None,
        })
    }

    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Node => "node",
        }
    }

    /// Allow or refuse `need`; `action` names it in the refusal.
    pub fn check(self, need: Need, action: &'static str) -> Result<(), ApiError> {
        let allowed = match need {
            Need::Read => matches!(self, Role::Admin | Role::Operator | Role::Viewer),
            Need::Write => matches!(self, Role::Admin | Role::Operator),
            Need::Admin => self == Role::Admin,
            Need::Node => matches!(self, Role::Admin | Role::Node),
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                role: self.name(),
                action,
            })
        }
    }
}

/// The caller of a request: the token's name (the audit log's actor) and role.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// SHA-256 hex of a secret (token or API key).
pub fn hash_hex(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `prefix` then 24 random bytes in hex: a token, an API key, or (short) an id.
pub fn random_secret(prefix: &str, bytes: usize) -> Result<String, ApiError> {
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; bytes];
    ring::rand::SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| ApiError::Internal("no randomness available".into()))?;
    Ok(format!("{prefix}{}", hex(&buf)))
}
