//! `[server]` and `[server.http2]`: connection timeouts, the connection cap, worker threads and
//! HTTP/2 flow control, each within its range.

use std::time::Duration;

use super::Validator;
use crate::config::model::{Http2Settings, ServerSettings};
use crate::config::raw::{RawHttp2, RawServer};

/// The longest `[server]` timeout, in milliseconds: a day.
const DAY_MS: u64 = 24 * 60 * 60 * 1000;
// Limits from RFC 9113 §6.5.2 (window ≤ 2^31-1, frame size 2^14..2^24-1); the h2 crate
// panics outside them, so they are refused here.
const MAX_WINDOW: u64 = (1 << 31) - 1;

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
        let server = ServerSettings {
            drain_timeout: self.server_timeout(
                "drain_timeout_ms",
                raw.drain_timeout_ms,
                defaults.drain_timeout,
            ),
            header_read_timeout: self.server_timeout(
                "header_read_timeout_ms",
                raw.header_read_timeout_ms,
                defaults.header_read_timeout,
            ),
            idle_timeout: self.server_timeout(
                "idle_timeout_ms",
                raw.idle_timeout_ms,
                defaults.idle_timeout,
            ),
            body_read_timeout: self.server_timeout(
                "body_read_timeout_ms",
                raw.body_read_timeout_ms,
                defaults.body_read_timeout,
            ),
            // The cap is a semaphore; bound it well below what the OS could ever give.
            max_connections: self.server_range(
                "max_connections",
                raw.max_connections,
                defaults.max_connections as u64,
                1,
                10_000_000,
            ) as usize,
            workers: raw
                .workers
                .map(|_| self.server_range("workers", raw.workers, 1, 1, 1024) as usize),
            http2: defaults.http2.clone(),
        };
        let Some(h2) = raw.http2 else {
            return server;
        };
        let http2 = self.http2(h2, defaults.http2);
        ServerSettings { http2, ..server }
    }

    /// `[server.http2]`, each value within what RFC 9113 and the h2 crate allow.
    fn http2(&mut self, h2: RawHttp2, d: Http2Settings) -> Http2Settings {
        let u32_of = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Http2Settings {
            max_concurrent_streams: u32_of(self.server_range(
                "http2.max_concurrent_streams",
                h2.max_concurrent_streams,
                u64::from(d.max_concurrent_streams),
                1,
                u64::from(u32::MAX),
            )),
            initial_stream_window_bytes: u32_of(self.server_range(
                "http2.initial_stream_window_bytes",
                h2.initial_stream_window_bytes,
                u64::from(d.initial_stream_window_bytes),
                1024,
                MAX_WINDOW,
            )),
            initial_connection_window_bytes: u32_of(self.server_range(
                "http2.initial_connection_window_bytes",
                h2.initial_connection_window_bytes,
                u64::from(d.initial_connection_window_bytes),
                65_535,
                MAX_WINDOW,
            )),
            max_frame_bytes: u32_of(self.server_range(
                "http2.max_frame_bytes",
                h2.max_frame_bytes,
                u64::from(d.max_frame_bytes),
                16_384,
                16_777_215,
            )),
            // 0 turns pings off.
            keep_alive_interval: match self.server_range(
                "http2.keep_alive_interval_ms",
                h2.keep_alive_interval_ms,
                d.keep_alive_interval.map(millis_of).unwrap_or(0),
                0,
                DAY_MS,
            ) {
                0 => None,
                v => Some(Duration::from_millis(v)),
            },
            keep_alive_timeout: self.server_timeout(
                "http2.keep_alive_timeout_ms",
                h2.keep_alive_timeout_ms,
                d.keep_alive_timeout,
            ),
            max_pending_accept_reset_streams: self.server_range(
                "http2.max_pending_accept_reset_streams",
                h2.max_pending_accept_reset_streams,
                d.max_pending_accept_reset_streams as u64,
                1,
                1_000_000,
            ) as usize,
            max_local_error_reset_streams: self.server_range(
                "http2.max_local_error_reset_streams",
                h2.max_local_error_reset_streams,
                d.max_local_error_reset_streams as u64,
                1,
                1_000_000,
            ) as usize,
        }
    }

    /// `server.PATH` in milliseconds, from 1 ms to a day.
    fn server_timeout(&mut self, path: &str, v: Option<u64>, default: Duration) -> Duration {
        Duration::from_millis(self.server_range(path, v, millis_of(default), 1, DAY_MS))
    }

    /// `server.PATH`, which must be between `min` and `max`; `default` when unset or outside.
    fn server_range(
        &mut self,
        path: &str,
        v: Option<u64>,
        default: u64,
        min: u64,
        max: u64,
    ) -> u64 {
        match v {
            Some(v) if v < min || v > max => {
                self.issues.push(
                    format!("server.{path}"),
                    format!("must be between {min} and {max}"),
                );
                default
            }
            Some(v) => v,
            None => default,
        }
    }
}

fn millis_of(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
