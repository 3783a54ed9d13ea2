//! Plugin metrics, exported on the gateway's Prometheus endpoint as `tollgate_custom_<name>`
//! with a `plugin` label added by the gateway.

use crate::__private::tollgate::plugin::metrics as raw;

/// Add `value` to the counter `tollgate_custom_<name>` with these labels.
pub fn counter_add(name: &str, labels: &[(&str, &str)], value: u64) {
    raw::counter_add(name, labels, value)
}

/// Record one observation in the histogram `tollgate_custom_<name>` with these labels.
pub fn histogram_record(name: &str, labels: &[(&str, &str)], value: f64) {
    raw::histogram_record(name, labels, value)
}
