//! With `require_signatures`, a module without a signature, one changed after signing and one
//! signed by a key not in `trusted_keys` are each refused at load and at reload with their own
//! error naming the module; a refused reload keeps the old chain serving, and a module signed by
//! a trusted key loads with its provenance in `/admin/plugins`.

use tollgate_tests::{Gateway, Upstream, admin_reload, expand, fixture_dir, get};

use crate::rollout_support::{admin_plugin, config, sign};

/// Config text for a gateway trusting `trusted.pub` in its own directory, whose route runs the
/// recorder module `module` (a file name in that directory).
fn signed_config(target: &str, module: &str, name: &str) -> String {
    config(
        "trusted_keys = [\"trusted.pub\"]\nrequire_signatures = true",
        target,
        &format!(
            r#"
[plugins.rec]
module = "{module}"
[plugins.rec.config]
name = "{name}"

[[routes]]
name = "r"
path_prefix = "/"
upstream = "up"
chain = ["rec"]
"#
        ),
    )
}

/// The three refusals, each with its own wording.
const NO_SIGNATURE: &str = "has no signature";
const CHANGED: &str = "was changed after signing";
const UNTRUSTED: &str = "which is not in [gateway] trusted_keys";

#[tokio::test]
async fn each_bad_signature_is_refused_at_load_and_reload_and_a_signed_module_loads() {
    let upstream = Upstream::echo("up").await;
    let dir = tempfile::tempdir().unwrap();
    let (trusted, trusted_pub) = tollgate::signing::generate().unwrap();
    let (stranger, _) = tollgate::signing::generate().unwrap();
    std::fs::write(dir.path().join("trusted.pub"), &trusted_pub).unwrap();
    let recorder = fixture_dir().join("recorder.wasm");
    let trapper = fixture_dir().join("trapper.wasm");
    let module = |name: &str| dir.path().join(name);
    // unsigned.wasm: no signature; changed.wasm: signed, then its bytes replaced; foreign.wasm:
    // signed by a key the gateway does not trust; good.wasm: signed by the trusted key.
    for name in ["unsigned.wasm", "changed.wasm", "foreign.wasm", "good.wasm"] {
        std::fs::copy(&recorder, module(name)).unwrap();
    }
    sign(&trusted, &module("changed.wasm"));
    std::fs::copy(&trapper, module("changed.wasm")).unwrap();
    sign(&stranger, &module("foreign.wasm"));
    sign(&trusted, &module("good.wasm"));
    let target = upstream.target();

    // At load: each refused, the error at `plugins.rec.module` naming the module.
    for (file, why) in [
        ("unsigned.wasm", NO_SIGNATURE),
        ("changed.wasm", CHANGED),
        ("foreign.wasm", UNTRUSTED),
    ] {
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, expand(&signed_config(&target, file, "v1"))).unwrap();
        let err = tollgate::gateway::start(&path)
            .await
            .err()
            .unwrap_or_else(|| panic!("{file} loaded without a valid signature"))
            .to_string();
        println!("load refused: {err}");
        assert!(err.contains("plugins.rec.module"), "{err}");
        assert!(err.contains(file), "{err}");
        assert!(err.contains(why), "{file}: {err}");
        for other in [NO_SIGNATURE, CHANGED, UNTRUSTED]
            .iter()
            .filter(|o| **o != why)
        {
            assert!(!err.contains(other), "{file}: {err}");
        }
    }

    // A signed module loads, and says where it came from.
    let gateway = Gateway::start_in(dir, &signed_config(&target, "good.wasm", "v1")).await;
    let admin = gateway.admin.unwrap();
    let key_id = tollgate::signing::TrustedKey::from_pem(&trusted_pub)
        .unwrap()
        .id()
        .to_owned();
    let entry = admin_plugin(admin, "rec").await;
    let provenance = &entry["provenance"];
    assert_eq!(provenance["signer"], key_id.as_str(), "{entry}");
    assert_eq!(provenance["revision"]["source"], "local", "{entry}");
    assert_eq!(provenance["revision"]["number"], 1, "{entry}");
    assert_eq!(provenance["sha256"].as_str().unwrap().len(), 64, "{entry}");
    assert!(
        provenance["loaded_at_unix_ms"].as_u64().unwrap() > 0,
        "{entry}"
    );

    // At reload: each refused with its own error; the old chain keeps serving.
    for (file, why) in [
        ("unsigned.wasm", NO_SIGNATURE),
        ("changed.wasm", CHANGED),
        ("foreign.wasm", UNTRUSTED),
    ] {
        gateway.write_config(&signed_config(&target, file, "v2"));
        let reply = admin_reload(&gateway).await;
        assert_eq!(reply.status, 422, "{file}");
        let body = reply.json();
        let issue = &body["issues"][0];
        assert_eq!(issue["path"], "plugins.rec.module", "{body}");
        let message = issue["message"].as_str().unwrap();
        println!("reload refused: {message}");
        assert!(message.contains(file) && message.contains(why), "{body}");
        let served = get(&gateway.url("/x"), &[]).await;
        assert_eq!(served.status, 200);
        assert_eq!(
            served.json()["headers"]["x-order"][0],
            "v1",
            "old chain serves"
        );
    }

    // A signed module with a new config reloads, introduced by the next local generation.
    gateway.write_config(&signed_config(&target, "good.wasm", "v2"));
    let reply = admin_reload(&gateway).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let served = get(&gateway.url("/x"), &[]).await;
    assert_eq!(served.json()["headers"]["x-order"][0], "v2");
    let entry = admin_plugin(admin, "rec").await;
    assert_eq!(entry["provenance"]["revision"]["number"], 2, "{entry}");
    assert_eq!(entry["provenance"]["signer"], key_id.as_str(), "{entry}");
    gateway.shutdown().await;
}
