//! The reverse proxy to a real TLS upstream on 127.0.0.1, with certificates made by the test:
//! a good chain verifies (SNI is the upstream's host), a wrong CA is a 502 with a typed code,
//! an upstream that requires a client certificate gets one or refuses, h2 is negotiated by ALPN
//! when the upstream offers it, and a WebSocket upgrade passes through TLS.

use crate::proxy_common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::proxy_common::{Server, echoed, empty, get, spawn_server, upstream};
use http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use oidc_tower::proxy::{ProxyConfigError, ReverseProxy, UpstreamTls};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A certificate authority made for one test, with its PEM in a file.
struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem_file: PathBuf,
}

impl TestCa {
    fn new(dir: &Path, name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem_file, issuer.pem()).unwrap();
        TestCa { issuer, pem_file }
    }

    /// A leaf certificate for `names`; returns (chain PEM file, key PEM file).
    fn issue(&self, dir: &Path, file_stem: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        let chain = dir.join(format!("{file_stem}.pem"));
        let key_file = dir.join(format!("{file_stem}-key.pem"));
        std::fs::write(&chain, certificate.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (chain, key_file)
    }
}

/// What the TLS upstream requires and offers.
struct UpstreamOptions {
    alpn: Vec<Vec<u8>>,
    /// When set, a client certificate issued by this CA is required.
    client_ca: Option<PathBuf>,
}

/// The proxy tests' upstream behind TLS; each answer also says which HTTP version, SNI and
/// client certificate the connection had (`x-seen-version`, `x-seen-sni`, `x-seen-client-cert`).
async fn spawn_tls_upstream(chain: &Path, key: &Path, options: UpstreamOptions) -> Server {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(chain)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let builder = rustls::ServerConfig::builder();
    let builder = match &options.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in CertificateDer::pem_file_iter(ca).unwrap() {
                roots.add(certificate.unwrap()).unwrap();
            }
            builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder(Arc::new(roots))
                    .build()
                    .unwrap(),
            )
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certificates, key).unwrap();
    config.alpn_protocols = options.alpn;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, mut stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                accepted = listener.accept() => accepted.unwrap(),
                _ = &mut stopped => return,
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (_, connection) = tls.get_ref();
                let sni = connection.server_name().unwrap_or("-").to_owned();
                let client_cert = connection.peer_certificates().is_some();
                let service = hyper::service::service_fn(move |request: Request<_>| {
                    let version = format!("{:?}", request.version());
                    let sni = sni.clone();
                    async move {
                        let mut response = upstream(request).await?;
                        let headers = response.headers_mut();
                        headers.insert("x-seen-version", version.parse().unwrap());
                        headers.insert("x-seen-sni", sni.parse().unwrap());
                        headers.insert(
                            "x-seen-client-cert",
                            if client_cert { "yes" } else { "no" }.parse().unwrap(),
                        );
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Server::new(addr, stop)
}

fn both_versions() -> Vec<Vec<u8>> {
    vec![b"h2".to_vec(), b"http/1.1".to_vec()]
}

/// The proxy, on plain HTTP at 127.0.0.1, in front of `https://localhost:<port>`.
async fn proxy_to(upstream: SocketAddr, tls: UpstreamTls) -> Server {
    let proxy = ReverseProxy::builder(format!("https://localhost:{}", upstream.port()))
        .tls(tls)
        .build()
        .unwrap();
    spawn_server(proxy).await
}

#[tokio::test]
async fn a_good_chain_verifies_with_sni_and_h2_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "good");
    let (chain, key) = ca.issue(dir.path(), "upstream", &["localhost"]);
    let upstream = spawn_tls_upstream(
        &chain,
        &key,
        UpstreamOptions {
            alpn: both_versions(),
            client_ca: None,
        },
    )
    .await;
    let proxy = proxy_to(
        upstream.addr,
        UpstreamTls::new()
            .without_system_roots()
            .ca_file(&ca.pem_file),
    )
    .await;

    let (status, headers, body) = get(&format!("{}/hello?x=1", proxy.url())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(echoed(&body, "path"), Some("/hello?x=1"));
    assert_eq!(headers["x-seen-sni"], "localhost");
    assert_eq!(headers["x-seen-version"], "HTTP/2.0", "h2 chosen by ALPN");

    // A 16 MiB download streams through the h2 connection whole.
    let response = proxy_common::client()
        .request(
            Request::get(format!("{}/download?bytes=16777216", proxy.url()))
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        proxy_common::count_body(response.into_body()).await,
        16 * 1024 * 1024
    );
}

#[tokio::test]
async fn an_upstream_offering_only_http1_gets_http1() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "h1");
    let (chain, key) = ca.issue(dir.path(), "upstream", &["localhost"]);
    let upstream = spawn_tls_upstream(
        &chain,
        &key,
        UpstreamOptions {
            alpn: vec![b"http/1.1".to_vec()],
            client_ca: None,
        },
    )
    .await;
    let proxy = proxy_to(
        upstream.addr,
        UpstreamTls::new()
            .without_system_roots()
            .ca_file(&ca.pem_file),
    )
    .await;
    let (status, headers, _) = get(&format!("{}/", proxy.url())).await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-seen-version"], "HTTP/1.1");
}

#[tokio::test]
async fn a_wrong_ca_or_name_is_a_502_with_a_typed_code() {
    let dir = tempfile::tempdir().unwrap();
    let real = TestCa::new(dir.path(), "real");
    let other = TestCa::new(dir.path(), "other");
    let (chain, key) = real.issue(dir.path(), "upstream", &["elsewhere.test"]);
    let upstream = spawn_tls_upstream(
        &chain,
        &key,
        UpstreamOptions {
            alpn: both_versions(),
            client_ca: None,
        },
    )
    .await;

    let untrusted = proxy_to(
        upstream.addr,
        UpstreamTls::new()
            .without_system_roots()
            .ca_file(&other.pem_file),
    )
    .await;
    let (status, _, body) = get(&format!("{}/", untrusted.url())).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.ends_with("(upstream_tls_failed)\n"), "{body}");
    assert!(body.contains("UnknownIssuer"), "{body}");

    // The right CA, but the certificate is for another name than the URL's host.
    let wrong_name = proxy_to(
        upstream.addr,
        UpstreamTls::new()
            .without_system_roots()
            .ca_file(&real.pem_file),
    )
    .await;
    let (status, _, body) = get(&format!("{}/", wrong_name.url())).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.ends_with("(upstream_tls_failed)\n"), "{body}");
    assert!(body.contains("not valid for name"), "{body}");

    // Only the dangerous switch accepts it.
    let reckless = proxy_to(
        upstream.addr,
        UpstreamTls::new()
            .without_system_roots()
            .dangerous_skip_verify(true),
    )
    .await;
    let (status, _, body) = get(&format!("{}/", reckless.url())).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn mtls_to_the_upstream_works_with_the_client_certificate_and_fails_without() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = TestCa::new(dir.path(), "server");
    let client_ca = TestCa::new(dir.path(), "client");
    let (chain, key) = server_ca.issue(dir.path(), "upstream", &["localhost"]);
    let (client_chain, client_key) = client_ca.issue(dir.path(), "proxy-client", &["oidc-proxy"]);
    for alpn in [both_versions(), vec![b"http/1.1".to_vec()]] {
        let upstream = spawn_tls_upstream(
            &chain,
            &key,
            UpstreamOptions {
                alpn,
                client_ca: Some(client_ca.pem_file.clone()),
            },
        )
        .await;
        let trusted = UpstreamTls::new()
            .without_system_roots()
            .ca_file(&server_ca.pem_file);

        let with_cert = proxy_to(
            upstream.addr,
            trusted
                .clone()
                .client_certificate(&client_chain, &client_key),
        )
        .await;
        let (status, headers, body) = get(&format!("{}/", with_cert.url())).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers["x-seen-client-cert"], "yes");

        let without = proxy_to(upstream.addr, trusted).await;
        let (status, _, body) = get(&format!("{}/", without.url())).await;
        assert_eq!(status, 502, "{body}");
        assert!(body.ends_with("(upstream_tls_failed)\n"), "{body}");
    }
}

#[tokio::test]
async fn websocket_upgrade_passes_through_tls_even_when_h2_is_offered() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "ws");
    let (chain, key) = ca.issue(dir.path(), "upstream", &["localhost"]);
    let upstream = spawn_tls_upstream(
        &chain,
        &key,
        UpstreamOptions {
            alpn: both_versions(),
            client_ca: None,
        },
    )
    .await;
    let proxy = proxy_to(
        upstream.addr,
        UpstreamTls::new()
            .without_system_roots()
            .ca_file(&ca.pem_file),
    )
    .await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade\r\n\
              Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "closed");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("x-seen-version: http/1.1"), "{head}");
    for message in ["hello", "over tls"] {
        stream.write_all(message.as_bytes()).await.unwrap();
        let expected = format!("echo:{message}");
        let mut reply = vec![0u8; expected.len()];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut reply))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(String::from_utf8(reply).unwrap(), expected);
    }
}

#[tokio::test]
async fn unusable_tls_settings_are_refused_when_the_proxy_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    for tls in [
        UpstreamTls::new().without_system_roots().ca_file(&missing),
        UpstreamTls::new().without_system_roots().ca_file(&garbage),
        UpstreamTls::new().without_system_roots(),
    ] {
        let error = ReverseProxy::builder("https://localhost:1")
            .tls(tls)
            .build()
            .unwrap_err();
        assert!(matches!(error, ProxyConfigError::Tls { .. }), "{error:?}");
        assert_eq!(error.code(), "invalid_upstream_tls");
    }
    // An http upstream never reads them.
    assert!(
        ReverseProxy::builder("http://127.0.0.1:1")
            .tls(UpstreamTls::new().ca_file(&missing))
            .build()
            .is_ok()
    );
}
