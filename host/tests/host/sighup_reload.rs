//! The `tollgate` binary reloads its config on SIGHUP and drains on SIGTERM, exiting 0.

#![allow(clippy::unwrap_used)]

use crate::binary_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use binary_support::{build_plugins, get, spawn_gateway, upstream, wait_for_line};

fn config(plugin_dir: &Path, upstream: SocketAddr, version: &str) -> String {
    format!(
        r#"
[gateway]
plugin_dir = "{}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.u]
targets = ["{upstream}"]

[plugins.tag]
module = "headers"
config = {{ response = {{ set = {{ "x-version" = "{version}" }} }} }}

[[routes]]
name = "all"
path_prefix = "/"
upstream = "u"
chain = ["tag"]
"#,
        plugin_dir.display()
    )
}

#[test]
fn sighup_reloads_and_sigterm_exits_cleanly() {
    let plugin_dir = build_plugins();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let upstream = upstream();
    std::fs::write(&path, config(&plugin_dir, upstream, "one")).unwrap();

    let mut gateway = spawn_gateway(&path);
    assert!(get(gateway.addr, "/x").contains("x-version: one"));

    std::fs::write(&path, config(&plugin_dir, upstream, "two")).unwrap();
    let pid = gateway.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        wait_for_line(&gateway.log, "\"reloaded\"").is_some(),
        "no reload logged after SIGHUP"
    );
    assert!(get(gateway.addr, "/x").contains("x-version: two"));

    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = gateway.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "gateway did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
