//! `tollgate run -c gateway.toml` (a bare name, as the README and `scripts/run.sh` write it)
//! with `watch = true`: every way editors save a file is noticed and served within a second,
//! and a rebuilt plugin module is loaded.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::binary_support::{get, upstream};
use crate::support::{config, copy_headers_plugin, reloads, served_within, spawn_in};

/// Truncate the file and write the new text in two steps, as editors that save in place do.
/// One way an editor saves the config, given the new text.
type Edit<'a> = dyn Fn(&str) + 'a;

fn truncate_and_write(path: &Path, text: &str) {
    let mut file = std::fs::File::create(path).unwrap();
    let (a, b) = text.split_at(text.len() / 2);
    file.write_all(a.as_bytes()).unwrap();
    file.flush().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    file.write_all(b.as_bytes()).unwrap();
}

/// Write a temporary file beside it and rename it over (vim's default, most IDEs, deploy tools).
fn write_and_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Move the file away as a backup, then write a new one (vim with `backupcopy=no`).
fn backup_and_write(path: &Path, text: &str) {
    std::fs::rename(path, path.with_extension("toml~")).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn edits_saved_every_way_are_served_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let module = copy_headers_plugin(dir.path());
    let upstream = upstream();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config(&module, upstream, "v0")).unwrap();
    let gateway = spawn_in(dir.path(), "gateway.toml");
    let addr = gateway.running.addr;
    assert!(get(addr, "/x").contains("x-version: v0"));

    let mut timings = Vec::new();
    let edits: [(&str, &Edit); 4] = [
        ("truncate and write", &|text| {
            truncate_and_write(&path, text)
        }),
        ("write and rename", &|text| write_and_rename(&path, text)),
        ("sed -i", &|_| {
            let status = Command::new("sed")
                .args(["-i", "s/\"v2\"/\"v3\"/", "gateway.toml"])
                .current_dir(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }),
        ("backup and write", &|text| backup_and_write(&path, text)),
    ];
    for (i, (how, save)) in edits.iter().enumerate() {
        let version = format!("v{}", i + 1);
        save(&config(&module, upstream, &version));
        let took = served_within(
            addr,
            "/x",
            &format!("x-version: {version}"),
            Duration::from_secs(1),
        );
        let Some(took) = took else {
            let log: Vec<String> = gateway.running.log.try_iter().collect();
            panic!(
                "{how}: {version} not served within 1 s; log:\n{}",
                log.join("\n")
            );
        };
        timings.push(format!("{how} {:.0} ms", took.as_secs_f64() * 1000.0));
    }

    // A rebuilt module (different bytes: one more custom section), copied in by rename.
    let before = reloads(gateway.admin);
    let mut wasm = std::fs::read(&module).unwrap();
    wasm.extend_from_slice(&[0, 4, 1, b'x', b'v', b'5']);
    let tmp = dir.path().join("headers.wasm.tmp");
    std::fs::write(&tmp, wasm).unwrap();
    let started = Instant::now();
    std::fs::rename(&tmp, &module).unwrap();
    while reloads(gateway.admin).ok == before.ok {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a changed module was not reloaded"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    timings.push(format!(
        "module rename {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    ));
    assert!(get(addr, "/x").contains("x-version: v4"));

    let counts = reloads(gateway.admin);
    println!(
        "watch with a bare -c name: {}; reloads {counts:?}",
        timings.join(", ")
    );
    assert_eq!(counts.error, 0, "no reload saw a half-written file");
    assert!(
        (5..=7).contains(&counts.ok),
        "one reload per save, not a loop: {counts:?}"
    );
}
