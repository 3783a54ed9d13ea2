//! `[server]` and `[server.http2]`: connection timeouts, the connection cap, worker threads and
//! HTTP/2 flow control, each within its range.

use std::time::Duration;

use super::Validator;
use crate::config::model::{Http2Settings, ServerSettings};
use crate::config::raw::RawServer;

impl Validator<'_> {
    /// `[server]` and `[server.http2]`: every value within its range, or an issue at its path.
    pub(super) fn server(&mut self, value: Option<toml::Value>) -> ServerSettings {
        let defaults = ServerSettings::default();
        let Some(value) = value else {
            return defaults;
        };
        let Some(raw) = self.de::<RawServer>("server", value) else {
            return defaults;
        };
        let mut range = |path: &str, v: Option<u64>, default: u64, min: u64, max: u64| match v {
            Some(v) if v < min || v > max => {
                self.issues.push(
                    format!("server.{path}"),
                    format!("must be between {min} and {max}"),
                );
                default
            }
            Some(v) => v,
            None => default,
        };
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let day = 24 * 60 * 60 * 1000;
        let server = ServerSettings {
            drain_timeout: Duration::from_millis(range(
                "drain_timeout_ms",
                raw.drain_timeout_ms,
                ms(defaults.drain_timeout),
                1,
                day,
            )),
            header_read_timeout: Duration::from_millis(range(
                "header_read_timeout_ms",
                raw.header_read_timeout_ms,
                ms(defaults.header_read_timeout),
                1,
                day,
            )),
            idle_timeout: Duration::from_millis(range(
                "idle_timeout_ms",
                raw.idle_timeout_ms,
                ms(defaults.idle_timeout),
                1,
                day,
            )),
            body_read_timeout: Duration::from_millis(range(
                "body_read_timeout_ms",
                raw.body_read_timeout_ms,
                ms(defaults.body_read_timeout),
                1,
                day,
            )),
            // The cap is a semaphore; bound it well below what the OS could ever give.
            max_connections: range(
                "max_connections",
                raw.max_connections,
                defaults.max_connections as u64,
                1,
                10_000_000,
            ) as usize,
            workers: raw
                .workers
                .map(|_| range("workers", raw.workers, 1, 1, 1024) as usize),
            http2: defaults.http2.clone(),
        };
        let Some(h2) = raw.http2 else {
            return server;
        };
        let d = defaults.http2;
        // Limits from RFC 9113 §6.5.2 (window ≤ 2^31-1, frame size 2^14..2^24-1); the h2 crate
        // panics outside them, so they are refused here.
        const MAX_WINDOW: u64 = (1 << 31) - 1;
        let u32_of = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let http2 = Http2Settings {
            max_concurrent_streams: u32_of(range(
                "http2.max_concurrent_streams",
                h2.max_concurrent_streams,
                u64::from(d.max_concurrent_streams),
                1,
                u64::from(u32::MAX),
            )),
            initial_stream_window_bytes: u32_of(range(
                "http2.initial_stream_window_bytes",
                h2.initial_stream_window_bytes,
                u64::from(d.initial_stream_window_bytes),
                1024,
                MAX_WINDOW,
            )),
            initial_connection_window_bytes: u32_of(range(
                "http2.initial_connection_window_bytes",
                h2.initial_connection_window_bytes,
                u64::from(d.initial_connection_window_bytes),
                65_535,
                MAX_WINDOW,
            )),
            max_frame_bytes: u32_of(range(
                "http2.max_frame_bytes",
                h2.max_frame_bytes,
                u64::from(d.max_frame_bytes),
                16_384,
                16_777_215,
            )),
            // 0 turns pings off.
            keep_alive_interval: match range(
                "http2.keep_alive_interval_ms",
                h2.keep_alive_interval_ms,
                d.keep_alive_interval.map(ms).unwrap_or(0),
                0,
                day,
            ) {
                0 => None,
                v => Some(Duration::from_millis(v)),
            },
            keep_alive_timeout: Duration::from_millis(range(
                "http2.keep_alive_timeout_ms",
                h2.keep_alive_timeout_ms,
                ms(d.keep_alive_timeout),
                1,
                day,
            )),
            max_pending_accept_reset_streams: range(
                "http2.max_pending_accept_reset_streams",
                h2.max_pending_accept_reset_streams,
                d.max_pending_accept_reset_streams as u64,
                1,
                1_000_000,
            ) as usize,
            max_local_error_reset_streams: range(
                "http2.max_local_error_reset_streams",
                h2.max_local_error_reset_streams,
                d.max_local_error_reset_streams as u64,
                1,
                1_000_000,
            ) as usize,
        };
        ServerSettings { http2, ..server }
    }
}
