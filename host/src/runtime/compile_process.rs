//! Compiling plugins in a child process, so the gateway's own memory never holds Cranelift's.
//!
//! Compiling a component allocates tens of megabytes (the 12 plugins of `gateway.toml`: a peak
//! of about 190 MB RSS). Freed, that memory stays with the allocator: pages the compile threads
//! touched, mixed with the long-lived objects made beside them. A gateway started on a cold
//! cache then idled at 125-155 MB RSS, against about 40 MB when the same plugins came from the
//! cache. So the `tollgate` binary compiles in a child (`tollgate compile-plugin`, hidden) that
//! writes the `.cwasm` into the compile cache and exits; the gateway maps the file, as on a warm
//! start. A plugin whose compile blows up (memory, a crash) takes the child down, not the
//! gateway, and one whose compile outlasts [`COMPILE_TIME_LIMIT`] has its child killed: either
//! way the plugin is refused.
//!
//! The child builds its engine from the same [`RuntimeOptions`] fields as the gateway
//! ([`engine_args`]); wasmtime refuses an artifact from a differently configured engine, and
//! the cache then falls back to compiling in process. Only a binary that asks for it
//! ([`compile_in_child_process`]) compiles this way: tests and embedders compile in process.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::component::Component;

use super::engine::build_engine;
use super::options::RuntimeOptions;

/// The subcommand the child runs.
pub const SUBCOMMAND: &str = "compile-plugin";

/// How long one compile may take before its child is killed and the plugin refused. The
/// largest built-in plugin compiles in about 4 s on 2 cores; a component that keeps Cranelift
/// busy for minutes is refused instead of holding a load or reload (and a compile slot) forever.
pub const COMPILE_TIME_LIMIT: Duration = Duration::from_secs(300);

/// How often a waiting gateway looks whether its compiler child has exited.
const POLL: Duration = Duration::from_millis(10);

/// The executable that compiles, and how long one compile may take, when this process compiles
/// in children.
#[derive(Debug)]
pub(crate) struct Compiler {
    exe: PathBuf,
    time_limit: Duration,
}

static COMPILER: OnceLock<Compiler> = OnceLock::new();

/// Compile plugins by running `exe compile-plugin` (the `tollgate` binary calls this with its
/// own path and [`COMPILE_TIME_LIMIT`]). Only caches with a directory use it: the child hands
/// its work over as a file.
pub fn compile_in_child_process(exe: PathBuf, time_limit: Duration) {
    let _ = COMPILER.set(Compiler { exe, time_limit });
}

/// The compiler set by [`compile_in_child_process`].
pub(crate) fn compiler() -> Option<&'static Compiler> {
    COMPILER.get()
}

/// The engine settings a child needs to compile exactly as `opts`' engine would, as arguments.
pub(crate) fn engine_args(opts: &RuntimeOptions) -> Vec<String> {
    vec![
        format!("--max-instances={}", opts.max_instances),
        format!(
            "--max-core-instances-per-component={}",
            opts.max_core_instances_per_component
        ),
        format!(
            "--max-tables-per-component={}",
            opts.max_tables_per_component
        ),
        format!(
            "--max-memories-per-component={}",
            opts.max_memories_per_component
        ),
        format!("--max-memory-bytes={}", opts.max_memory_bytes),
        format!("--max-wasm-stack={}", opts.max_wasm_stack),
        format!("--async-stack-size={}", opts.async_stack_size),
    ]
}

/// Parse what [`engine_args`] wrote back into options (the rest at their defaults).
fn options_from_args(args: &[String]) -> Result<RuntimeOptions, String> {
    let mut opts = RuntimeOptions::default();
    for arg in args {
        let (name, value) = arg
            .strip_prefix("--")
            .and_then(|a| a.split_once('='))
            .ok_or_else(|| format!("expected --name=value, got {arg:?}"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{name}: {e}"));
        let int = |v: &str| -> Result<u32, String> {
            u32::try_from(number(v)?).map_err(|e| format!("{name}: {e}"))
        };
        let size = |v: &str| -> Result<usize, String> {
            usize::try_from(number(v)?).map_err(|e| format!("{name}: {e}"))
        };
        match name {
            "max-instances" => opts.max_instances = int(value)?,
            "max-core-instances-per-component" => {
                opts.max_core_instances_per_component = int(value)?
            }
            "max-tables-per-component" => opts.max_tables_per_component = int(value)?,
            "max-memories-per-component" => opts.max_memories_per_component = int(value)?,
            "max-memory-bytes" => opts.max_memory_bytes = number(value)?,
            "max-wasm-stack" => opts.max_wasm_stack = size(value)?,
            "async-stack-size" => opts.async_stack_size = size(value)?,
            _ => return Err(format!("unknown engine setting --{name}")),
        }
    }
    Ok(opts)
}

/// How a compile in a child ended, when it did not write the artifact.
pub(crate) enum ChildFailure {
    /// The component does not compile, or its compile killed the child (a crash, the kernel's
    /// out-of-memory killer): the message, for the operator. Compiling it in process would
    /// risk the gateway, so the plugin is refused.
    Rejected(String),
    /// The child could not be run or could not do its job (no executable, bad arguments, no
    /// disk space): compiling in process is the fallback.
    Unavailable(String),
}

/// Children compiling at once: each compiles on every core already, and a config with many
/// plugins must not start as many compilers (tens of MB each) at the same moment.
struct Running {
    count: Mutex<usize>,
    freed: Condvar,
}

static RUNNING: Running = Running {
    count: Mutex::new(0),
    freed: Condvar::new(),
};

/// A place among the children allowed to run at once; given back when dropped.
struct Place;

impl Place {
    /// Wait (this is a blocking-pool thread) until fewer children than cores run.
    fn take() -> Self {
        let most = std::thread::available_parallelism().map_or(1, usize::from);
        let mut count = RUNNING.count.lock().unwrap_or_else(|e| e.into_inner());
        while *count >= most {
            count = RUNNING.freed.wait(count).unwrap_or_else(|e| e.into_inner());
        }
        *count += 1;
        Place
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut count = RUNNING.count.lock().unwrap_or_else(|e| e.into_inner());
        *count = count.saturating_sub(1);
        RUNNING.freed.notify_one();
    }
}

/// Compile `bytes` in a child running `compiler`, which writes the artifact to `out`.
pub(crate) fn compile(
    compiler: &Compiler,
    engine_args: &[String],
    bytes: &[u8],
    out: &Path,
) -> Result<(), ChildFailure> {
    let _place = Place::take();
    let unavailable = |e: std::io::Error| ChildFailure::Unavailable(e.to_string());
    let mut child = Command::new(&compiler.exe)
        .arg(SUBCOMMAND)
        .arg(out)
        .args(engine_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(unavailable)?;
    // Its input is written and its error output read on the side, so that the time limit
    // also covers a child that stops reading its input or writes much; once it has exited or
    // been killed, both pipes are closed and both threads end.
    let stdin = child.stdin.take();
    let stderr = child.stderr.take();
    let (status, message) = std::thread::scope(|scope| {
        scope.spawn(move || {
            if let Some(mut stdin) = stdin {
                let _ = stdin.write_all(bytes);
            }
        });
        let reader = scope.spawn(move || {
            let mut text = String::new();
            if let Some(mut stderr) = stderr {
                let _ = stderr.read_to_string(&mut text);
            }
            text
        });
        let status = wait_or_kill(&mut child, compiler.time_limit);
        (status, reader.join().unwrap_or_default())
    });
    let status = status.map_err(unavailable)?;
    let message = message.trim().to_owned();
    let Some(status) = status else {
        return Err(ChildFailure::Rejected(format!(
            "compiling the component took longer than {} s; the compiler process was stopped",
            compiler.time_limit.as_secs_f64()
        )));
    };
    match status.code() {
        Some(0) => Ok(()),
        Some(code) if code == i32::from(EXIT_REJECTED) => Err(ChildFailure::Rejected(message)),
        None => Err(ChildFailure::Rejected(format!(
            "compiling the component killed the compiler process ({status}){}",
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        ))),
        Some(_) => Err(ChildFailure::Unavailable(format!(
            "compiler process {status}: {message}"
        ))),
    }
}

/// Wait for `child` to exit; past `limit`, kill it and return `None`.
fn wait_or_kill(child: &mut Child, limit: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}

/// The child's exit code when the component itself does not compile.
const EXIT_REJECTED: u8 = 3;

/// The child's side (`tollgate compile-plugin OUT ENGINE_ARGS...`): read a component from
/// standard input, compile it with the described engine, write the artifact to OUT.
pub fn run_child(out: &Path, engine_args: &[String]) -> ExitCode {
    let fail = |code: u8, message: String| {
        eprintln!("{message}");
        ExitCode::from(code)
    };
    let opts = match options_from_args(engine_args) {
        Ok(opts) => opts,
        Err(e) => return fail(2, e),
    };
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        return fail(2, format!("cannot read the component: {e}"));
    }
    let engine = match build_engine(&opts) {
        Ok(engine) => engine,
        Err(e) => return fail(2, e.to_string()),
    };
    let artifact = match Component::new(&engine, &bytes).and_then(|c| c.serialize()) {
        Ok(artifact) => artifact,
        Err(e) => return fail(EXIT_REJECTED, format!("{e:#}")),
    };
    match std::fs::write(out, artifact) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(2, format!("cannot write {}: {e}", out.display())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn engine_args_round_trip() {
        let opts = RuntimeOptions {
            max_instances: 77,
            max_memory_bytes: 3 << 20,
            max_wasm_stack: 300 << 10,
            ..RuntimeOptions::default()
        };
        let back = options_from_args(&engine_args(&opts)).unwrap();
        assert_eq!(engine_args(&back), engine_args(&opts));
    }

    #[test]
    fn bad_engine_args_are_refused() {
        assert!(options_from_args(&["--max-instances=x".into()]).is_err());
        assert!(options_from_args(&["--nope=1".into()]).is_err());
        assert!(options_from_args(&["max-instances".into()]).is_err());
    }
}
