//! HTTPS listeners speak TLS 1.2 and 1.3 only: a TLS 1.1 ClientHello gets a fatal alert and no
//! ServerHello, while TLS 1.2-only and TLS 1.3 clients are served.

#![allow(clippy::unwrap_used)]

use crate::tls_support;

use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, ProtocolVersion};
use tls_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tollgate_tests::{Gateway, Upstream};

/// A TLS 1.1 ClientHello (no extensions, so no `supported_versions`), written by hand.
fn tls11_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
    hello.extend([0x42; 32]); // random
    hello.push(0); // session id
    // Suites TLS 1.2 also has (ECDHE AES-GCM), so only the version is wrong.
    hello.extend([0x00, 0x08, 0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x2f, 0xc0, 0x13]);
    hello.extend([0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00];
    handshake.extend(u16::try_from(hello.len()).unwrap().to_be_bytes());
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(u16::try_from(handshake.len()).unwrap().to_be_bytes());
    record.extend(handshake);
    record
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_1_1_is_refused_and_1_2_and_1_3_are_served() {
    let ca = Ca::new("Test CA");
    let dir = tempfile::tempdir().unwrap();
    ca.server(&["shop.test"]).write(dir.path(), "shop");
    let upstream = Upstream::echo("echo").await;
    let gateway = Gateway::start_in(
        dir,
        &gateway_config(
            r#"[listeners.tls]
certs = [{ cert = "shop.pem", key = "shop.key" }]"#,
            &upstream.target(),
            "",
        ),
    )
    .await;

    let mut tcp = TcpStream::connect(gateway.addr).await.unwrap();
    tcp.write_all(&tls11_client_hello()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .ok();
    assert!(
        answer.first() != Some(&0x16),
        "the server answered a TLS 1.1 hello with a handshake: {answer:02x?}"
    );
    // An alert record: fatal (2), handshake_failure (40) or protocol_version (70).
    assert_eq!(answer.first(), Some(&0x15), "{answer:02x?}");
    assert_eq!(answer.get(5), Some(&2), "{answer:02x?}");
    assert!(matches!(answer.get(6), Some(40 | 70)), "{answer:02x?}");

    for (version, label) in [
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, ProtocolVersion::TLSv1_3),
    ] {
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(ca.roots())
            .with_no_client_auth();
        let stream = connect(gateway.addr, "shop.test", Arc::new(config))
            .await
            .unwrap();
        assert_eq!(stream.get_ref().1.protocol_version(), Some(label));
        let mut h1 = H1::new(stream, "shop.test").await.unwrap();
        assert_eq!(h1.get("/", &[]).await.unwrap().status, 200, "{label:?}");
    }
    gateway.shutdown().await;
}
