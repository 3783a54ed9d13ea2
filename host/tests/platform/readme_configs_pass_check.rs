//! The READMEs' configs are real: every ```toml block of a README that is a whole config (it has
//! `[[listeners]]`) passes `tollgate check` (which also runs each plugin's `init` with its
//! config), and no block routes to a URL where an upstream name belongs. The SDK README's config
//! loads the plugin the same README builds: its `Cargo.toml` and `src/lib.rs` are compiled.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::binary_support::build_plugins;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The README files: the repository's, the SDK's and every built-in plugin's.
fn readmes() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md"), root.join("sdk/README.md")];
    let mut plugins: Vec<PathBuf> = std::fs::read_dir(root.join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().path().join("README.md"))
        .filter(|p| p.is_file())
        .collect();
    plugins.sort();
    files.extend(plugins);
    files
}

/// The fenced blocks of one language, with the line each starts on.
fn blocks(text: &str, lang: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim_start() == format!("```{lang}") => {
                current = Some((i + 1, String::new()))
            }
            None => {}
            Some(_) if line.trim_start().starts_with("```") => out.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    out
}

/// Build the plugin of the SDK README (its `Cargo.toml` and `src/lib.rs` blocks) and return the
/// component.
fn build_sdk_readme_plugin(readme: &str, work: &Path) -> PathBuf {
    let root = root();
    let manifest = blocks(readme, "toml")
        .into_iter()
        .map(|(_, b)| b)
        .find(|b| b.contains("[package]"))
        .expect("the SDK README has a Cargo.toml")
        .replace("../tollgate/sdk", &root.join("sdk").display().to_string());
    let code = blocks(readme, "rust")
        .into_iter()
        .map(|(_, b)| b)
        .find(|b| b.contains("export_plugin!"))
        .expect("the SDK README has a plugin");
    let krate = work.join("my-plugin");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(krate.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(krate.join("src/lib.rs"), code).unwrap();
    // The target dir of the `plugin new` test: the SDK's dependencies build once per machine.
    let target = root.join("target/plugin-new-test");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--target", "wasm32-wasip2"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .unwrap();
    assert!(status.success(), "the SDK README's plugin does not build");
    target.join("wasm32-wasip2/release/my_plugin.wasm")
}

#[test]
fn readme_configs_pass_tollgate_check() {
    let plugins = build_plugins();
    let work = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for readme in readmes() {
        let text = std::fs::read_to_string(&readme).unwrap();
        let name = readme.strip_prefix(root()).unwrap().display().to_string();
        for (line, block) in blocks(&text, "toml") {
            let at = format!("{name}:{line}");
            if block.lines().any(|l| {
                let l = l.trim_start();
                l.starts_with("upstream") && l.contains("= \"http")
            }) {
                failures.push(format!(
                    "{at}: a route's `upstream` is a URL, not an [upstreams] name"
                ));
            }
            if !block.contains("[[listeners]]") {
                continue;
            }
            // The config beside the built-in plugins' default `plugin_dir`, as in the repository.
            let dir = work.path().join(format!("config-{}", checked.len()));
            let release = dir.join("plugins/target/wasm32-wasip2");
            std::fs::create_dir_all(&release).unwrap();
            std::os::unix::fs::symlink(&plugins, release.join("release")).unwrap();
            if name == "sdk/README.md" {
                let wasm = build_sdk_readme_plugin(&text, work.path());
                let to = dir.join("target/wasm32-wasip2/release");
                std::fs::create_dir_all(&to).unwrap();
                std::fs::copy(wasm, to.join("my_plugin.wasm")).unwrap();
            }
            std::fs::write(dir.join("gateway.toml"), &block).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
                .args(["check", "-c", "gateway.toml"])
                .current_dir(&dir)
                .env("RUST_LOG", "off")
                .output()
                .unwrap();
            if !out.status.success() {
                failures.push(format!("{at}:\n{}", String::from_utf8_lossy(&out.stderr)));
            }
            checked.push(at);
        }
    }
    println!("checked README configs: {}", checked.join(", "));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for must in ["sdk/README.md", "plugins/headers/README.md"] {
        assert!(
            checked.iter().any(|c| c.starts_with(must)),
            "{must} has no whole config to check: {checked:?}"
        );
    }
}
