//! The redaction engine of Tollgate's `redact` plugin: masks personal data in JSON and text
//! bodies and in access-log values.
//!
//! It is compiled into the plugin (`plugins/redact`), which keeps the policy: phases, content
//! types, refusals, metrics. The gateway links the same code natively and runs a JSON document
//! through it when the plugin asks (contract 0.2 `redaction`): Cranelift's code for the
//! scanner and detectors is about three times slower than native code, and a 3 KB body is the
//! plugin's whole cost. Both sides run this crate, so both give the same bytes.
//!
//! Rules: field names and JSON paths ([`path`]), detectors and custom patterns ([`detect`]),
//! masked in the style each rule names ([`mask`]). Bodies: [`body`] decides JSON, text or
//! pass-through, undoes gzip/deflate and refuses what it cannot read.

#[cfg(test)]
mod bench;
pub mod body;
pub mod config;
pub mod detect;
#[cfg(test)]
mod equivalence;
pub mod features;
pub mod finders;
pub mod json;
pub mod jsonstr;
pub mod logscrub;
pub mod mac;
pub mod mask;
pub mod path;
#[cfg(test)]
mod reference;
pub mod response;
