//! `[server]` and `[server.http2]`: how the client-facing listeners treat connections.

use std::time::Duration;

/// `[server]`: how the client-facing listeners treat connections. Read when the listeners start;
/// a reload that changes it warns that a restart is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// After SIGTERM/SIGINT, how long in-flight requests (and the log phase) may take before the
    /// process exits anyway.
    pub drain_timeout: Duration,
    /// Time from the first byte of an HTTP/1 request head to its end (slowloris); the
    /// connection is closed beyond it.
    pub header_read_timeout: Duration,
    /// How long a connection may stay open with no request in flight and no byte of a new one
    /// (HTTP/1 keep-alive, idle HTTP/2); closed beyond it (HTTP/2 with GOAWAY).
    pub idle_timeout: Duration,
    /// Longest wait for the next piece of a request body; beyond it the request fails with 408
    /// and the upstream request is aborted.
    pub body_read_timeout: Duration,
    /// Open client connections per listener; past it a new connection gets a short 503 and is
    /// closed.
    pub max_connections: usize,
    /// Worker threads, each with its own runtime, listener sockets and upstream pools; `None`:
    /// one per CPU this process may run on.
    pub workers: Option<usize>,
    /// HTTP/2 stream and flow-control settings.
    pub http2: Http2Settings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            drain_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            workers: None,
            http2: Http2Settings::default(),
        }
    }
}

/// `[server.http2]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http2Settings {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: requests one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: bytes a client may send on one stream before it waits for
    /// the gateway to read.
    pub initial_stream_window_bytes: u32,
    /// The connection-level flow-control window.
    pub initial_connection_window_bytes: u32,
    /// SETTINGS_MAX_FRAME_SIZE (16 KiB to 16 MiB - 1).
    pub max_frame_bytes: u32,
    /// PING interval on idle connections, to find dead peers; `None` turns pings off.
    pub keep_alive_interval: Option<Duration>,
    /// How long a PING may go unanswered before the connection is closed.
    pub keep_alive_timeout: Duration,
    /// Streams the client opened and reset before the gateway accepted them; past this the
    /// connection gets GOAWAY (rapid-reset protection, CVE-2023-44487).
    pub max_pending_accept_reset_streams: usize,
    /// Streams the gateway reset because the client broke the protocol; past this the
    /// connection gets GOAWAY (RUSTSEC-2024-0003).
    pub max_local_error_reset_streams: usize,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 200,
            initial_stream_window_bytes: 1024 * 1024,
            initial_connection_window_bytes: 1024 * 1024,
            max_frame_bytes: 16 * 1024,
            keep_alive_interval: Some(Duration::from_secs(20)),
            keep_alive_timeout: Duration::from_secs(20),
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 1024,
        }
    }
}
