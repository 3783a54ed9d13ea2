//! Two gateways watching the same plugin module stay idle: a reload, a SIGHUP and other
//! processes reading every module change nothing, so no reload follows in the next 5 s (reading
//! a file is not a change, and a reload of unchanged inputs is skipped).

use std::time::Duration;

use crate::binary_support::upstream;
use crate::support::{config, copy_headers_plugin, post, reloads, signal, spawn_in};

#[test]
fn reload_sighup_and_reads_make_no_reloads_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let module = copy_headers_plugin(dir.path());
    let upstream = upstream();
    std::fs::write(dir.path().join("a.toml"), config(&module, upstream, "a")).unwrap();
    std::fs::write(dir.path().join("b.toml"), config(&module, upstream, "b")).unwrap();
    let gateways = [
        spawn_in(dir.path(), "a.toml"),
        spawn_in(dir.path(), "b.toml"),
    ];

    for g in &gateways {
        let reply = post(g.admin, "/admin/reload");
        assert!(reply.starts_with("http/1.1 200"), "{reply}");
        assert!(reply.contains("\"status\":\"unchanged\""), "{reply}");
        signal(g, "HUP");
    }
    for _ in 0..3 {
        for file in ["headers.wasm", "a.toml", "b.toml"] {
            std::fs::read(dir.path().join(file)).unwrap();
        }
    }
    // Let the SIGHUPs be handled before counting.
    std::thread::sleep(Duration::from_millis(500));
    let before: Vec<_> = gateways.iter().map(|g| reloads(g.admin)).collect();
    std::thread::sleep(Duration::from_secs(5));
    let after: Vec<_> = gateways.iter().map(|g| reloads(g.admin)).collect();
    println!("idle gateways: reloads before {before:?}, 5 s later {after:?}");
    assert_eq!(before, after, "an idle gateway reloaded");
    for counts in &after {
        assert_eq!(counts.ok, 0, "nothing changed, so nothing was reloaded");
        assert_eq!(
            counts.skipped, 2,
            "the admin reload and the SIGHUP were skipped"
        );
    }
}
