//! Tollgate plugin SDK (placeholder until the SDK lands).
