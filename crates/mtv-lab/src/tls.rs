//! The lab's HTTPS: a certificate authority made fresh for each lab, a serving certificate it signs for
//! the loopback names, and a listener that hands axum finished TLS connections.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::error::LabError;

/// The names the serving certificate is valid for: everything a lab is reached at.
const SERVING_NAMES: &[&str] = &["127.0.0.1", "localhost", "::1"];

/// A lab's certificate authority and the server configuration built on it.
#[derive(Clone)]
pub struct LabTls {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
    /// The CA's key and name, for the serving certificates of the lab's simulated sources.
    issuer: Arc<Issuer<'static, KeyPair>>,
}

/// A serving certificate the lab's CA (or a CA of its own) issued, with the server configuration
/// that presents it.
#[derive(Clone)]
pub struct ServingTls {
    /// The certificate, DER (what a client's verifier checks).
    pub leaf_der: CertificateDer<'static>,
    /// The issuing CA certificate, PEM (what a client must trust).
    pub ca_pem: String,
    /// The names (DNS or IP) the certificate is valid for.
    pub names: Vec<String>,
    server: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for ServingTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingTls")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl LabTls {
    /// A new CA (its key lives only in this process) and a serving certificate it signs for the
    /// loopback names.
    pub fn generate() -> Result<LabTls, LabError> {
        Self::generate_named("mtv-lab-ca")
    }

    /// [`LabTls::generate`] with a CA of the given common name (a simulated source's own CA).
    pub fn generate_named(ca_common_name: &str) -> Result<LabTls, LabError> {
        let tls_error = |e: rcgen::Error| LabError::Tls(e.to_string());
        let ca_key = KeyPair::generate().map_err(tls_error)?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = distinguished_name(ca_common_name);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_error)?;
        let issuer = Arc::new(Issuer::new(ca_params, ca_key));
        let names: Vec<String> = SERVING_NAMES.iter().map(|n| n.to_string()).collect();
        let serving = issue(&issuer, ca_cert.der(), &ca_cert.pem(), "mtv-lab", &names)?;
        Ok(LabTls {
            ca_pem: ca_cert.pem(),
            server: serving.server,
            issuer,
        })
    }

    /// A serving certificate for `names` (DNS names or IP addresses), signed by this CA.
    pub fn issue(&self, common_name: &str, names: &[String]) -> Result<ServingTls, LabError> {
        let ca_der = self
            .ca_der()
            .into_iter()
            .next()
            .ok_or_else(|| LabError::Tls("the lab's CA certificate does not parse".into()))?;
        issue(&self.issuer, &ca_der, &self.ca_pem, common_name, names)
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate as a kubeconfig's `certificate-authority-data` (base64 of the PEM).
    pub fn ca_data(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes())
    }

    /// The CA certificate, DER (what rustls-based clients add to their roots).
    pub fn ca_der(&self) -> Vec<CertificateDer<'static>> {
        pem_certificates(&self.ca_pem)
    }

    /// Accepts TCP connections and completes each TLS handshake in its own task, so a slow or failing
    /// handshake never holds up the others; axum gets the finished connections.
    pub fn listener(&self, tcp: TcpListener) -> Result<TlsListener, LabError> {
        tls_listener(self.server.clone(), tcp)
    }
}

impl ServingTls {
    /// Accepts TCP connections and completes their TLS handshakes with this certificate.
    pub fn listener(&self, tcp: TcpListener) -> Result<TlsListener, LabError> {
        tls_listener(self.server.clone(), tcp)
    }
}

/// Accepts TCP connections and completes each TLS handshake in its own task, so a slow or failing
/// handshake never holds up the others; axum gets the finished connections.
fn tls_listener(
    server: Arc<rustls::ServerConfig>,
    tcp: TcpListener,
) -> Result<TlsListener, LabError> {
    let local_addr = tcp.local_addr().map_err(|source| LabError::Bind {
        addr: "listener".into(),
        source,
    })?;
    let acceptor = TlsAcceptor::from(server);
    let (ready_tx, ready_rx) = mpsc::channel(64);
    let accept_task = tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = tcp.accept().await else {
                // Out of file descriptors or the like: pause instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let acceptor = acceptor.clone();
            let ready_tx = ready_tx.clone();
            tokio::spawn(async move {
                // A client that fails the handshake (an untrusting curl, plain HTTP) only loses
                // its own connection.
                if let Ok(tls) = acceptor.accept(stream).await {
                    let _ = ready_tx.send((tls, peer)).await;
                }
            });
        }
    });
    Ok(TlsListener {
        local_addr,
        ready: ready_rx,
        accept_task,
    })
}

/// Signs a serving certificate for `names` with `issuer`, and the server configuration presenting it
/// (with the CA after it, as servers send their chain).
fn issue(
    issuer: &Issuer<'static, KeyPair>,
    ca_der: &CertificateDer<'static>,
    ca_pem: &str,
    common_name: &str,
    names: &[String],
) -> Result<ServingTls, LabError> {
    let tls_error = |e: rcgen::Error| LabError::Tls(e.to_string());
    let server_key = KeyPair::generate().map_err(tls_error)?;
    let mut server_params = CertificateParams::new(names.to_vec()).map_err(tls_error)?;
    server_params.distinguished_name = distinguished_name(common_name);
    server_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // Strict verifiers (Python 3.13's default) require the authority key identifier.
    server_params.use_authority_key_identifier_extension = true;
    let server_cert = server_params
        .signed_by(&server_key, issuer)
        .map_err(tls_error)?;
    let chain = vec![server_cert.der().clone(), ca_der.clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| LabError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| LabError::Tls(e.to_string()))?;
    // The server speaks HTTP/1.1 only; clients must not try h2 on it.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServingTls {
        leaf_der: server_cert.der().clone(),
        ca_pem: ca_pem.to_string(),
        names: names.to_vec(),
        server: Arc::new(server),
    })
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "mtv-tests lab");
    name
}

/// The certificates of a PEM bundle, DER.
pub fn pem_certificates(pem: &str) -> Vec<CertificateDer<'static>> {
    let mut out = Vec::new();
    let mut body = String::new();
    let mut inside = false;
    for line in pem.lines() {
        let line = line.trim();
        if line == "-----BEGIN CERTIFICATE-----" {
            inside = true;
            body.clear();
        } else if line == "-----END CERTIFICATE-----" {
            inside = false;
            if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(&body) {
                out.push(CertificateDer::from(der));
            }
        } else if inside {
            body.push_str(line);
        }
    }
    out
}

/// TLS connections ready to serve.
pub struct TlsListener {
    local_addr: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task never ends on its own; if it did, serve nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_pem_round_trips_to_one_der_certificate() {
        let tls = LabTls::generate().unwrap();
        assert!(tls.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(tls.ca_der().len(), 1);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(tls.ca_data())
            .unwrap();
        assert_eq!(decoded, tls.ca_pem().as_bytes());
        // Two labs never share a CA.
        assert_ne!(LabTls::generate().unwrap().ca_pem(), tls.ca_pem());
    }
}
