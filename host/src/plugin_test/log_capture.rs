//! [`LogCapture`]: a `tracing` layer that keeps the lines plugins write with the `log` import.

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// One line a plugin wrote with the `log` import.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PluginLog {
    /// `trace`, `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The message.
    pub message: String,
}

/// A `tracing` layer that keeps the lines plugins write with the `log` import (install it with
/// a subscriber around the calls; see `tollgate plugin test` and `host/tests/plugin_test_kit.rs`).
#[derive(Debug, Clone, Default)]
pub struct LogCapture {
    lines: Arc<Mutex<Vec<PluginLog>>>,
}

impl LogCapture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take the lines captured so far.
    pub fn take(&self) -> Vec<PluginLog> {
        self.lines
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }
}

/// The module whose events are plugin log lines.
const PLUGIN_LOG_TARGET: &str = "tollgate::runtime::host_imports";

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogCapture {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if event.metadata().target() != PLUGIN_LOG_TARGET {
            return;
        }
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "message" {
                    value.clone_into(&mut self.0);
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(PluginLog {
                level: event.metadata().level().as_str().to_ascii_lowercase(),
                message: message.0,
            });
        }
    }
}
