//! The Rust equivalent of `examples/js-ab-router`: sticky A/B routing by FNV-1a of
//! `experiment:id`, same config, same variant for the same id. Exists to compare cost and
//! memory per call.

use serde::Deserialize;
use tollgate_sdk::{Action, Capabilities, Plugin, Request, Response, context};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Variant {
    name: String,
    weight: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_experiment")]
    experiment: String,
    variants: Vec<Variant>,
    sticky_header: Option<String>,
    sticky_cookie: Option<String>,
    #[serde(default = "default_variant_header")]
    request_header: String,
    #[serde(default = "default_variant_header")]
    response_header: String,
    #[serde(default = "default_context_key")]
    context_key: String,
}

fn default_experiment() -> String {
    "default".into()
}
fn default_variant_header() -> String {
    "x-ab-variant".into()
}
fn default_context_key() -> String {
    "ab_variant".into()
}

struct AbRouter {
    config: Config,
    total: u32,
}

/// FNV-1a, 32 bits: the same function as the JavaScript plugin's.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

fn cookie(req: &Request, name: &str) -> Option<String> {
    req.header_all("cookie").iter().find_map(|header| {
        header.split(';').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    })
}

impl AbRouter {
    fn sticky_id(&self, req: &Request) -> String {
        let c = &self.config;
        c.sticky_header
            .as_deref()
            .and_then(|h| req.header(h))
            .filter(|v| !v.is_empty())
            .or_else(|| c.sticky_cookie.as_deref().and_then(|n| cookie(req, n)))
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| req.client_ip())
    }

    fn choose(&self, id: &str) -> &str {
        let mut point = fnv1a(&format!("{}:{id}", self.config.experiment)) % self.total;
        for v in &self.config.variants {
            if point < v.weight {
                return &v.name;
            }
            point -= v.weight;
        }
        self.config.variants.last().map_or("", |v| v.name.as_str())
    }
}

impl Plugin for AbRouter {
    type Config = Config;

    fn init(config: Config) -> Result<Self, String> {
        if config.variants.len() < 2 {
            return Err("`variants` is required: at least two { name, weight } tables".into());
        }
        let total = config.variants.iter().map(|v| v.weight).sum::<u32>();
        if total == 0 {
            return Err("the variants' weights add up to 0".into());
        }
        Ok(Self { config, total })
    }

    fn capabilities(&self) -> Capabilities {
        let caps = Capabilities::none().request();
        if self.config.response_header.is_empty() {
            caps
        } else {
            caps.response()
        }
    }

    fn on_request(&self, req: &Request) -> Action {
        let variant = self.choose(&self.sticky_id(req));
        let _ = req.set_header(&self.config.request_header, variant);
        context::set(&self.config.context_key, variant);
        Action::Continue
    }

    fn on_response(&self, _req: &Request, resp: &Response) -> Action {
        if let Some(variant) = context::get(&self.config.context_key) {
            let _ = resp.set_header(&self.config.response_header, &variant);
        }
        Action::Continue
    }
}

tollgate_sdk::export_plugin!(AbRouter);
