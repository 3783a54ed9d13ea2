//! The redaction code as it was before the performance work (issue 11), kept for tests only: an
//! oracle that the optimised detectors and JSON pass must agree with, byte for byte and count
//! for count, on generated inputs.

pub mod detect;
pub mod json;
