//! How the proxy trusts an `https://` upstream, and how it proves itself to one.
//!
//! Trust starts from the operating system's certificate store (read with `rustls-native-certs`,
//! so the private CA an operator already installed there is honoured) plus any CA files given.
//! The server name checked and sent as SNI is the upstream URL's host. A client certificate is
//! offered when one is configured (mTLS to the upstream). Skipping verification is possible only
//! through [`UpstreamTls::dangerous_skip_verify`], and logs a warning when the proxy is built.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::ProxyConfigError;

/// TLS settings for `https://` upstreams: which CAs are trusted (the system store, plus CA files),
/// the client certificate offered, and the dangerous switch that skips verification. The server
/// name checked and sent as SNI is the upstream URL's host.
#[derive(Debug, Clone)]
#[must_use]
pub struct UpstreamTls {
    system_roots: bool,
    ca_files: Vec<PathBuf>,
    client_identity: Option<(PathBuf, PathBuf)>,
    skip_verify: bool,
}

impl Default for UpstreamTls {
    fn default() -> Self {
        UpstreamTls::new()
    }
}

impl UpstreamTls {
    /// Trust the system's certificate store; no client certificate.
    pub fn new() -> Self {
        UpstreamTls {
            system_roots: true,
            ca_files: Vec::new(),
            client_identity: None,
            skip_verify: false,
        }
    }

    /// Also trust the CA certificates in this PEM file.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_files.push(path.into());
        self
    }

    /// Trust only the CA files given, not the system store.
    pub fn without_system_roots(mut self) -> Self {
        self.system_roots = false;
        self
    }

    /// Offer this certificate chain and private key (PEM files) when the upstream asks for one.
    pub fn client_certificate(
        mut self,
        certificate_chain: impl Into<PathBuf>,
        private_key: impl Into<PathBuf>,
    ) -> Self {
        self.client_identity = Some((certificate_chain.into(), private_key.into()));
        self
    }

    /// DANGEROUS: accept any certificate the upstream presents, so anyone on the path can read
    /// and change the traffic, identity headers and tokens included. For a lab only.
    pub fn dangerous_skip_verify(mut self, skip: bool) -> Self {
        self.skip_verify = skip;
        self
    }

    /// True when verification is switched off.
    pub fn skips_verification(&self) -> bool {
        self.skip_verify
    }

    /// The rustls configuration, with every file read and checked (ALPN is left to the
    /// connector, which offers what the HTTP client speaks).
    pub(crate) fn client_config(&self) -> Result<ClientConfig, ProxyConfigError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|err| tls_error(format!("TLS versions: {err}")))?;
        let builder = if self.skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate {
                    algorithms: provider.signature_verification_algorithms,
                }))
        } else {
            builder.with_root_certificates(self.roots()?)
        };
        let config = match &self.client_identity {
            Some((chain, key)) => {
                let chain = read_certificates(chain)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|err| tls_error(format!("client key {}: {err}", key.display())))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|err| tls_error(format!("client certificate: {err}")))?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(config)
    }

    fn roots(&self) -> Result<RootCertStore, ProxyConfigError> {
        let mut roots = RootCertStore::empty();
        if self.system_roots {
            let native = rustls_native_certs::load_native_certs();
            for error in &native.errors {
                tracing::debug!(%error, "a system CA certificate could not be read");
            }
            let (added, ignored) = roots.add_parsable_certificates(native.certs);
            tracing::debug!(added, ignored, "system CA certificates for upstreams");
        }
        for file in &self.ca_files {
            for certificate in read_certificates(file)? {
                roots
                    .add(certificate)
                    .map_err(|err| tls_error(format!("CA file {}: {err}", file.display())))?;
            }
        }
        if roots.is_empty() {
            return Err(tls_error(
                "no CA certificate to trust: the system store is empty and no CA file was given"
                    .to_owned(),
            ));
        }
        Ok(roots)
    }
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ProxyConfigError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|err| tls_error(format!("{}: {err}", path.display())))?;
    if certificates.is_empty() {
        return Err(tls_error(format!(
            "{}: no PEM certificate in the file",
            path.display()
        )));
    }
    Ok(certificates)
}

fn tls_error(detail: String) -> ProxyConfigError {
    ProxyConfigError::Tls { detail }
}

/// Accepts any certificate chain, still checking that the handshake is signed by its key.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
