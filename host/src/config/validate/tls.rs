//! Validation of the TLS blocks: `[listeners.tls]`, `plain_http`/`https_port`, `https://`
//! upstream targets and `[upstreams.NAME.tls]`. Files are read and checked here (readable, PEM,
//! key matching its certificate), so a reload with a broken certificate changes nothing.

use std::path::PathBuf;

use super::Validator;
use crate::config::model::{ClientAuth, ListenerTls, PlainHttp, TlsCertFiles, UpstreamTls};
use crate::config::raw::{RawClientAuth, RawListenerTls, RawPlainHttp, RawUpstreamTls};
use crate::tls::material;

const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_HTTPS_PORT: u16 = 443;

impl Validator<'_> {
    fn file(&self, name: &str) -> PathBuf {
        self.base.join(name)
    }

    /// `tls`, `plain_http` and `https_port` of `listeners[i]` (at `path`).
    pub(super) fn listener_security(
        &mut self,
        path: &str,
        tls: Option<RawListenerTls>,
        plain_http: Option<RawPlainHttp>,
        https_port: Option<u16>,
    ) -> (Option<ListenerTls>, PlainHttp) {
        if tls.is_some() && plain_http.is_some() {
            self.issues.push(
                format!("{path}.plain_http"),
                "applies to listeners without `tls`; a TLS listener only speaks HTTPS",
            );
        }
        let plain = match plain_http {
            Some(RawPlainHttp::Redirect) => PlainHttp::Redirect {
                https_port: match https_port {
                    Some(0) => {
                        self.issues
                            .push(format!("{path}.https_port"), "must be greater than 0");
                        DEFAULT_HTTPS_PORT
                    }
                    Some(port) => port,
                    None => DEFAULT_HTTPS_PORT,
                },
            },
            Some(RawPlainHttp::Refuse) => PlainHttp::Refuse,
            Some(RawPlainHttp::Serve) | None => PlainHttp::Serve,
        };
        if https_port.is_some() && !matches!(plain, PlainHttp::Redirect { .. }) {
            self.issues.push(
                format!("{path}.https_port"),
                "is only used with plain_http = \"redirect\"",
            );
        }
        let tls = tls.and_then(|t| self.listener_tls(&format!("{path}.tls"), t));
        (tls, plain)
    }

    fn listener_tls(&mut self, path: &str, raw: RawListenerTls) -> Option<ListenerTls> {
        let mut ok = true;
        let mut files = Vec::new();
        if raw.certs.is_empty() {
            self.issues.push(
                format!("{path}.certs"),
                "needs at least one { cert = \"...pem\", key = \"...pem\" }",
            );
            ok = false;
        }
        let mut certs = Vec::new();
        for (i, c) in raw.certs.iter().enumerate() {
            let (cert, key) = (self.file(&c.cert), self.file(&c.key));
            files.push(cert.clone());
            files.push(key.clone());
            match material::load_cert_key(&cert, &key) {
                Ok(material) => {
                    if material.names.is_empty() {
                        self.issues.push(
                            format!("{path}.certs[{i}].cert"),
                            format!(
                                "the certificate in `{}` has no DNS subject alternative name to match SNI against",
                                cert.display()
                            ),
                        );
                        ok = false;
                    }
                    certs.push(TlsCertFiles {
                        cert,
                        key,
                        material,
                    });
                }
                Err((field, message)) => {
                    self.issues
                        .push(format!("{path}.certs[{i}].{field}"), message);
                    ok = false;
                }
            }
        }
        let client_ca = match &raw.client_ca {
            Some(ca) => {
                let file = self.file(ca);
                files.push(file.clone());
                match material::load_ca(&file) {
                    Ok(bundle) => Some(bundle),
                    Err(message) => {
                        self.issues.push(format!("{path}.client_ca"), message);
                        ok = false;
                        None
                    }
                }
            }
            None => None,
        };
        let client_auth = match (raw.client_auth, raw.client_ca.is_some()) {
            (Some(RawClientAuth::None), true) => {
                self.issues.push(
                    format!("{path}.client_ca"),
                    "is unused with client_auth = \"none\"; remove one of them",
                );
                ok = false;
                ClientAuth::None
            }
            (Some(RawClientAuth::Optional | RawClientAuth::Required), false) => {
                self.issues.push(
                    format!("{path}.client_auth"),
                    "needs `client_ca`, the CA bundle client certificates are verified against",
                );
                ok = false;
                ClientAuth::None
            }
            (Some(RawClientAuth::Optional), true) => ClientAuth::Optional,
            // A CA without a stated policy means: require a certificate.
            (Some(RawClientAuth::Required) | None, true) => ClientAuth::Required,
            (Some(RawClientAuth::None) | None, false) => ClientAuth::None,
        };
        let handshake_timeout = self.millis(
            path,
            "handshake_timeout_ms",
            raw.handshake_timeout_ms,
            DEFAULT_HANDSHAKE_TIMEOUT_MS,
        );
        ok.then_some(ListenerTls {
            certs,
            client_ca,
            client_auth,
            handshake_timeout,
            files,
        })
    }

    /// Targets without their scheme, and the TLS settings when they are `https://`.
    pub(super) fn upstream_targets(
        &mut self,
        path: &str,
        targets: Vec<String>,
        tls: Option<RawUpstreamTls>,
    ) -> (Vec<String>, Option<UpstreamTls>) {
        let mut https = None;
        let mut out = Vec::new();
        for (i, t) in targets.into_iter().enumerate() {
            let (is_https, rest) = if let Some(rest) = t.strip_prefix("https://") {
                (true, rest.to_owned())
            } else if let Some(rest) = t.strip_prefix("http://") {
                (false, rest.to_owned())
            } else {
                (false, t.clone())
            };
            let rest = rest.strip_suffix('/').map(str::to_owned).unwrap_or(rest);
            match https {
                None => https = Some(is_https),
                Some(first) if first != is_https => self.issues.push(
                    format!("{path}.targets[{i}]"),
                    "mixes http and https targets in one upstream; split them into two upstreams",
                ),
                Some(_) => {}
            }
            if let Err(why) = super::check_target(&rest) {
                self.issues.push(
                    format!("{path}.targets[{i}]"),
                    format!("{why} (`host:port`, `http://host:port` or `https://host:port`)"),
                );
            }
            out.push(rest);
        }
        let tls = match (https.unwrap_or(false), tls) {
            (true, raw) => self.upstream_tls(&format!("{path}.tls"), raw.unwrap_or_default()),
            (false, Some(_)) => {
                self.issues.push(
                    format!("{path}.tls"),
                    "TLS settings need `https://` targets",
                );
                None
            }
            (false, None) => None,
        };
        (out, tls)
    }

    fn upstream_tls(&mut self, path: &str, raw: RawUpstreamTls) -> Option<UpstreamTls> {
        let mut ok = true;
        let mut files = Vec::new();
        let ca = match &raw.ca {
            Some(ca) => {
                let file = self.file(ca);
                files.push(file.clone());
                match material::load_ca(&file) {
                    Ok(bundle) => Some(bundle),
                    Err(message) => {
                        self.issues.push(format!("{path}.ca"), message);
                        ok = false;
                        None
                    }
                }
            }
            None => None,
        };
        let client_cert = match (&raw.client_cert, &raw.client_key) {
            (Some(cert), Some(key)) => {
                let (cert, key) = (self.file(cert), self.file(key));
                files.push(cert.clone());
                files.push(key.clone());
                match material::load_cert_key(&cert, &key) {
                    Ok(m) => Some(m),
                    Err((field, message)) => {
                        self.issues.push(format!("{path}.client_{field}"), message);
                        ok = false;
                        None
                    }
                }
            }
            (Some(_), None) => {
                self.issues
                    .push(format!("{path}.client_key"), "is needed with `client_cert`");
                ok = false;
                None
            }
            (None, Some(_)) => {
                self.issues
                    .push(format!("{path}.client_cert"), "is needed with `client_key`");
                ok = false;
                None
            }
            (None, None) => None,
        };
        if let Some(name) = &raw.server_name
            && rustls_pki_types::ServerName::try_from(name.as_str()).is_err()
        {
            self.issues.push(
                format!("{path}.server_name"),
                format!("`{name}` is not a DNS name or IP address"),
            );
            ok = false;
        }
        ok.then_some(UpstreamTls {
            ca,
            client_cert,
            server_name: raw.server_name,
            http2: raw.http2.unwrap_or(false),
            files,
        })
    }
}
