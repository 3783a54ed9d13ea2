//! A plugin author runs `tollgate plugin test` on a component written in Python, JavaScript or
//! Rust, and reads what it decided as JSON; bad input gets a clear message and exit code 2.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `examples/target`, built by the script once per test process.
fn examples() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let status = Command::new("bash")
            .arg(root().join("scripts/build-examples.sh"))
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .unwrap();
        assert!(status.success(), "scripts/build-examples.sh failed");
        root().join("examples/target")
    })
    .clone()
}

fn run(args: &[&str], files: &[(&str, &str)]) -> (Output, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let cache = root().join("target/tollgate-test-cache");
    let output = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["plugin", "test"])
        .args(args)
        .arg("--cache-dir")
        .arg(&cache)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
    (output, json)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const SIG_CONFIG: &str = "secret = \"0123456789abcdef-example-secret\"\nkey_id = \"partner-a\"\n";
// Signed with the secret above for POST /api/orders, timestamp 1764150000, body {"order":42}
// (python3: hmac.new(secret, "POST\n/api/orders\n1764150000\n" + sha256(body).hexdigest(), sha256)).
const SIGNED: &str = r#"{"method":"POST","path":"/api/orders","body":"{\"order\":42}",
 "headers":{"x-timestamp":"1764150000","x-signature":"46a953343fd7fcdc6ab3e8e825084d7c3ec98f2fab514ffe827f7be64a89496b"}}"#;

#[test]
fn python_signature_plugin_accepts_a_signed_request_and_refuses_a_stale_one() {
    let module = examples().join("python_signature.wasm");
    let module = module.to_str().unwrap();
    let base = [
        module,
        "--request",
        "req.json",
        "--config",
        "sig.toml",
        "--memory-limit-mb",
        "96",
        "--timeout-ms",
        "2000",
    ];
    let files = [("req.json", SIGNED), ("sig.toml", SIG_CONFIG)];

    let (out, json) = run(
        &[&base[..], &["--now-ms", "1764150010000"]].concat(),
        &files,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json["action"], "continue", "{json}");
    assert_eq!(json["context"]["set"]["signature_key"], "partner-a");
    assert_eq!(json["capabilities"]["request_body"], true);
    // componentize-py built it from wit/v0.1: the gateway serves it the 0.1.0 world.
    assert_eq!(json["contract"], "tollgate:plugin@0.1.0", "{json}");

    // An hour later the same request is stale.
    let (out, json) = run(
        &[&base[..], &["--now-ms", "1764153600000"]].concat(),
        &files,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json["action"], "respond", "{json}");
    assert_eq!(json["response"]["status"], 401);
    let body: serde_json::Value =
        serde_json::from_str(json["response"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["reason"], "stale");
}

#[test]
fn js_and_rust_ab_routers_pick_the_same_variant_and_tell_upstream_and_client() {
    let config = "experiment = \"checkout\"\nsticky_header = \"x-visitor-id\"\nvariants = [{ name = \"a\", weight = 50 }, { name = \"b\", weight = 50 }]\n";
    let mut decided = Vec::new();
    for module in [
        "js_ab_router.wasm",
        "wasm32-wasip2/release/rust_ab_router.wasm",
    ] {
        let module = examples().join(module);
        let mut variants = Vec::new();
        for user in ["alice", "bob", "carol", "dave"] {
            let req = format!(r#"{{"path":"/shop","headers":{{"x-visitor-id":"{user}"}}}}"#);
            let (out, json) = run(
                &[
                    module.to_str().unwrap(),
                    "--request",
                    "req.json",
                    "--config",
                    "ab.toml",
                    "--memory-limit-mb",
                    "64",
                    "--timeout-ms",
                    "2000",
                ],
                &[("req.json", &req), ("ab.toml", config)],
            );
            assert!(out.status.success(), "{}", stderr(&out));
            assert_eq!(json["action"], "continue", "{json}");
            let variant = json["context"]["set"]["ab_variant"]
                .as_str()
                .unwrap()
                .to_owned();
            let upstream_header = json["request"]["headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h[0] == "x-ab-variant")
                .map(|h| h[1].as_str().unwrap().to_owned());
            assert_eq!(upstream_header.as_deref(), Some(variant.as_str()));
            assert_eq!(
                json["response"]["headers"][0][1],
                variant.as_str(),
                "{json}"
            );
            assert_eq!(json["phases"], serde_json::json!(["request", "response"]));
            // The JavaScript one is built from wit/v0.1, the Rust one with the SDK (0.2.0).
            let contract = if module.ends_with("js_ab_router.wasm") {
                "tollgate:plugin@0.1.0"
            } else {
                "tollgate:plugin@0.2.0"
            };
            assert_eq!(json["contract"], contract, "{json}");
            variants.push(variant);
        }
        decided.push(variants);
    }
    assert_eq!(decided[0], decided[1], "JS and Rust disagree");
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let module = examples().join("wasm32-wasip2/release/rust_ab_router.wasm");
    let module = module.to_str().unwrap();

    let (out, _) = run(&["/nonexistent/plugin.wasm"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not a file"), "{}", stderr(&out));

    let (out, _) = run(
        &[module, "--request", "req.json"],
        &[("req.json", "{\"methd\": \"GET\"}")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("req.json") && stderr(&out).contains("methd"),
        "{}",
        stderr(&out)
    );

    let (out, _) = run(
        &[module, "--config", "c.toml"],
        &[("c.toml", "variants = [")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not TOML"), "{}", stderr(&out));

    // The plugin's own refusal of its config: exit 1 with its message.
    let (out, _) = run(
        &[module, "--config", "c.toml"],
        &[("c.toml", "variants = []")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("at least two"), "{}", stderr(&out));

    let (out, _) = run(
        &[module, "--request", "req.json", "--config", "c.toml"],
        &[
            ("req.json", "{\"path\": \"/a/%2e%2e/%2f\"}"),
            (
                "c.toml",
                "variants = [{ name = \"a\", weight = 1 }, { name = \"b\", weight = 1 }]",
            ),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("request.path"), "{}", stderr(&out));
}
