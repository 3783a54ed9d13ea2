//! Compiling a plugin does not leave its memory in the gateway: `tollgate run` on a cold
//! compile cache compiles in a child process and maps the artifact it wrote, so its peak memory
//! is that of a start from a warm cache. A library user whose compiler cannot run still gets
//! its plugins, compiled in process; a plugin whose compile kills the compiler, or outlasts its
//! time limit, is refused, not compiled again inside the gateway.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tollgate::runtime::compile_process::COMPILE_TIME_LIMIT;
use tollgate_tests::process::{Proc, listening_addr};
use tollgate_tests::{Gateway, Upstream, get};

/// A config with the two largest built-in plugins (`redact`, `aggregate`: the longest
/// compiles) and `headers`, on one route.
fn config(cache: &Path, upstream: &Upstream) -> String {
    tollgate_tests::expand(&format!(
        r#"
[gateway]
cache_dir = "{cache}"
watch = false

[[listeners]]
addr = "127.0.0.1:0"

[upstreams.up]
targets = ["{target}"]

[plugins.tag]
module = "{{plugins}}/headers.wasm"
config = {{ request = {{ set = {{ x-compiled = "yes" }} }} }}

[plugins.scrub]
module = "{{plugins}}/redact.wasm"
config = {{ fields = [{{ match = "$..email", style = "full" }}] }}

[plugins.merge]
module = "{{plugins}}/aggregate.wasm"
fetch = ["up"]
config = {{ path = "/merged/{{id}}", backends = [{{ name = "a", upstream = "up", path = "/a/{{path.id}}" }}] }}

[[routes]]
name = "all"
path_prefix = "/plain"
upstream = "up"
chain = ["tag", "scrub"]

[[routes]]
name = "merged"
path_prefix = "/merged"
upstream = "up"
chain = ["merge"]
"#,
        cache = cache.display(),
        target = upstream.target()
    ))
}

/// `VmHWM` (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Run the gateway until it serves, check a request through the plugins, and return its peak
/// memory.
async fn serve_once(config_path: &Path, name: &str) -> u64 {
    let proc = Proc::spawn(
        name,
        &["run", "-c", &config_path.display().to_string()],
        &[],
    );
    let addr = proc.wait_for(Duration::from_secs(120), listening_addr);
    let reply = get(&format!("http://{addr}/plain/x"), &[]).await;
    assert_eq!(reply.status, 200, "{}", proc.output());
    assert_eq!(reply.json()["headers"]["x-compiled"][0], "yes");
    peak_rss_kib(proc.pid())
}

fn cached_artifacts(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_cold_start_peaks_no_higher_than_a_warm_one() {
    let upstream = Upstream::echo("up").await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let config_path = dir.path().join("gateway.toml");
    std::fs::write(&config_path, config(&cache, &upstream)).unwrap();

    let cold = serve_once(&config_path, "cold").await;
    let artifacts = cached_artifacts(&cache);
    assert_eq!(artifacts.len(), 3, "one .cwasm per module: {artifacts:?}");
    let warm = serve_once(&config_path, "warm").await;

    // Compiling these three in the gateway's own process raised its peak by well over 100 MB
    // (and its idle memory after by most of that); in a child it adds nothing but noise.
    let slack_kib = 24 << 10;
    assert!(
        cold <= warm + slack_kib,
        "peak RSS on a cold cache {cold} KiB, on a warm one {warm} KiB: the compile's memory \
         stayed in the gateway"
    );
}

#[tokio::test]
async fn without_a_working_compiler_process_plugins_compile_in_process() {
    tollgate::runtime::compile_process::compile_in_child_process(
        PathBuf::from("/nonexistent/tollgate"),
        COMPILE_TIME_LIMIT,
    );
    let upstream = Upstream::echo("up").await;
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let gateway = Gateway::start(&config(&cache, &upstream)).await;
    let reply = get(&gateway.url("/plain/x"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["headers"]["x-compiled"][0], "yes");
    assert_eq!(cached_artifacts(&cache).len(), 3);
    gateway.shutdown().await;
}

/// An executable shell script in `dir` that runs `body` in place of the real compiler.
fn fake_compiler(dir: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("fake-compiler");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn a_compile_that_kills_the_compiler_refuses_the_plugin() {
    // A compiler that dies as one would under the out-of-memory killer.
    let dir = tempfile::tempdir().unwrap();
    let compiler = fake_compiler(dir.path(), "kill -KILL $$");
    tollgate::runtime::compile_process::compile_in_child_process(compiler, COMPILE_TIME_LIMIT);
    let upstream = Upstream::echo("up").await;
    let cache = dir.path().join("cache");
    let Err(error) = Gateway::try_start(&config(&cache, &upstream)).await else {
        panic!("a plugin whose compile killed the compiler was loaded (compiled in process)");
    };
    let message = format!("{error:#}");
    assert!(
        message.contains("killed the compiler process"),
        "unexpected error: {message}"
    );
    assert!(cached_artifacts(&cache).is_empty());
}

#[tokio::test]
async fn a_compile_past_its_time_limit_is_stopped_and_the_plugin_refused() {
    // A compiler that never finishes, as Cranelift might on a hostile component.
    let dir = tempfile::tempdir().unwrap();
    let compiler = fake_compiler(dir.path(), "exec sleep 613");
    tollgate::runtime::compile_process::compile_in_child_process(compiler, Duration::from_secs(1));
    let upstream = Upstream::echo("up").await;
    let cache = dir.path().join("cache");
    let started = Instant::now();
    let Err(error) = Gateway::try_start(&config(&cache, &upstream)).await else {
        panic!("a plugin whose compile never ended was loaded");
    };
    let message = format!("{error:#}");
    assert!(
        message.contains("took longer than 1 s"),
        "unexpected error: {message}"
    );
    // Each of the three plugins waits out its own limit, one compile slot per core at most.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the gateway waited {:?} for compiles limited to 1 s",
        started.elapsed()
    );
    assert!(cached_artifacts(&cache).is_empty());
    // No compiler child is left running.
    let leftover = std::process::Command::new("pgrep")
        .args(["-f", "sleep 613"])
        .output()
        .unwrap();
    assert!(
        leftover.stdout.is_empty(),
        "compiler children still running: {}",
        String::from_utf8_lossy(&leftover.stdout)
    );
}
