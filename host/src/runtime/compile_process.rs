//! Compiling plugins in a child process, so the gateway's own memory never holds Cranelift's.
//!
//! Compiling a component allocates tens of megabytes (the 12 plugins of `gateway.toml`: a peak
//! of about 190 MB RSS). Freed, that memory stays with the allocator: pages the compile threads
//! touched, mixed with the long-lived objects made beside them. A gateway started on a cold
//! cache then idled at 125-155 MB RSS, against about 40 MB when the same plugins came from the
//! cache. So the `tollgate` binary compiles in a child (`tollgate compile-plugin`, hidden) that
//! writes the `.cwasm` into the compile cache and exits; the gateway maps the file, as on a warm
//! start. A plugin whose compile blows up (memory, a crash) takes the child down, not the
//! gateway.
//!
//! The child builds its engine from the same [`RuntimeOptions`] fields as the gateway
//! ([`engine_args`]); wasmtime refuses an artifact from a differently configured engine, and
//! the cache then falls back to compiling in process. Only a binary that asks for it
//! ([`compile_in_child_process`]) compiles this way: tests and embedders compile in process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Condvar, Mutex, OnceLock};

use wasmtime::component::Component;

use super::engine::build_engine;
use super::options::RuntimeOptions;

/// The subcommand the child runs.
pub const SUBCOMMAND: &str = "compile-plugin";

/// The executable that compiles, when this process compiles in children.
static COMPILER: OnceLock<PathBuf> = OnceLock::new();

/// Compile plugins by running `exe compile-plugin` (the `tollgate` binary calls this with its
/// own path). Only caches with a directory use it: the child hands its work over as a file.
pub fn compile_in_child_process(exe: PathBuf) {
    let _ = COMPILER.set(exe);
}

/// The executable set by [`compile_in_child_process`].
pub(crate) fn compiler() -> Option<&'static Path> {
    COMPILER.get().map(PathBuf::as_path)
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
    compiler: &Path,
    engine_args: &[String],
    bytes: &[u8],
    out: &Path,
) -> Result<(), ChildFailure> {
    let _place = Place::take();
    let unavailable = |e: std::io::Error| ChildFailure::Unavailable(e.to_string());
    let mut child = Command::new(compiler)
        .arg(SUBCOMMAND)
        .arg(out)
        .args(engine_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(unavailable)?;
    // The child reads all of its input before it compiles, so this write cannot deadlock; a
    // child that died early shows in its status below.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(bytes);
    }
    let output = child.wait_with_output().map_err(unavailable)?;
    let message = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    match output.status.code() {
        Some(0) => Ok(()),
        Some(code) if code == i32::from(EXIT_REJECTED) => Err(ChildFailure::Rejected(message)),
        None => Err(ChildFailure::Rejected(format!(
            "compiling the component killed the compiler process ({}){}",
            output.status,
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        ))),
        Some(_) => Err(ChildFailure::Unavailable(format!(
            "compiler process {}: {message}",
            output.status
        ))),
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
    if let Err(e) = std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes) {
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
