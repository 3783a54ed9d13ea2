//! Why a plugin could not be tested: a wrong request or response description, or a plugin that
//! did not load.

/// Why a plugin could not be tested.
#[derive(Debug, thiserror::Error)]
pub enum TestError {
    /// The request or response description is wrong.
    #[error("bad request description: {0}")]
    BadInput(String),
    /// The plugin did not load (unreadable file, not a plugin component, refused its config).
    #[error("{0}")]
    Load(String),
}
