//! TLS trust and HTTPS clients shared by the source adapters (vSphere SOAP, oVirt, OpenStack, OVA
//! inventory): rustls with the system's roots, a given CA (or the server's own certificate,
//! pinned), a pinned SHA-256 fingerprint, or no verification at all for `insecureSkipVerify`.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The HTTPS client every adapter sends its requests with.
pub(crate) type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The crypto provider of the whole build (kube-rs uses ring too).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which server certificates a [`ServerTrust`] accepts.
#[derive(Debug)]
enum Accepted {
    /// Any (`insecureSkipVerify`, or the one unverified read of a server's certificates).
    Any,
    /// Exactly these, compared byte for byte.
    Certificates(Vec<CertificateDer<'static>>),
    /// The one (leaf or in the chain it sends) with this SHA-256 fingerprint, 64 upper-case hex
    /// digits.
    Fingerprint(String),
    /// WebPKI verification, except that a server certificate equal to one of `pinned` is trusted
    /// as it is: vCenter and ESXi often present a self-signed certificate, which is what a user
    /// passes as "the CA certificate" (the Python suite and Forklift's `cacert` do the same).
    PinnedOrWebPki {
        pinned: Vec<CertificateDer<'static>>,
        webpki: Arc<WebPkiServerVerifier>,
    },
}

/// The trust of a source's TLS client: the server certificate is accepted by [`Accepted`]; the
/// handshake signatures are checked with the provider's algorithms either way (as WebPKI does).
#[derive(Debug)]
struct ServerTrust {
    accepted: Accepted,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerTrust {
    fn any(algorithms: WebPkiSupportedAlgorithms) -> ServerTrust {
        ServerTrust {
            accepted: Accepted::Any,
            algorithms,
        }
    }
}

impl ServerCertVerifier for ServerTrust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = match &self.accepted {
            Accepted::Any => None,
            Accepted::Certificates(pinned) => {
                (!is_pinned(pinned, end_entity)).then_some(rustls::CertificateError::UnknownIssuer)
            }
            Accepted::Fingerprint(fingerprint) => (!std::iter::once(end_entity)
                .chain(intermediates)
                .any(|cert| sha256_fingerprint(cert.as_ref()).replace(':', "") == *fingerprint))
            .then_some(rustls::CertificateError::ApplicationVerificationFailure),
            Accepted::PinnedOrWebPki { pinned, .. } if is_pinned(pinned, end_entity) => None,
            Accepted::PinnedOrWebPki { webpki, .. } => {
                return webpki.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp,
                    now,
                );
            }
        };
        match refused {
            None => Ok(ServerCertVerified::assertion()),
            Some(why) => Err(rustls::Error::InvalidCertificate(why)),
        }
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

/// Whether the server certificate is, byte for byte, one of the pinned ones.
fn is_pinned(pinned: &[CertificateDer<'static>], end_entity: &CertificateDer<'_>) -> bool {
    pinned
        .iter()
        .any(|pinned| pinned.as_ref() == end_entity.as_ref())
}

/// A certificate's SHA-256 fingerprint as browsers and `openssl x509 -fingerprint -sha256` print
/// it: upper-case hex pairs joined by `:`.
pub(crate) fn sha256_fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A SHA-256 fingerprint as given by a user (any case, with or without `:` or spaces), as 64
/// upper-case hex digits; None when it is not one.
pub(crate) fn normalize_fingerprint(text: &str) -> Option<String> {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

/// A client configuration builder on the build's provider, ready for its verifier.
fn config_builder()
-> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>, String> {
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))
}

/// A client configuration that accepts any server certificate; the handshake signatures are still
/// checked.
pub(crate) fn any_certificate_config() -> Result<rustls::ClientConfig, String> {
    Ok(config_builder()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerTrust::any(
            provider().signature_verification_algorithms,
        )))
        .with_no_client_auth())
}

/// The TLS client configuration: no verification, a pinned SHA-256 fingerprint, the given CA PEM,
/// or the system's roots.
pub(crate) fn tls_config(
    insecure_skip_verify: bool,
    ca_pem: Option<&str>,
    fingerprint: Option<&str>,
) -> Result<rustls::ClientConfig, String> {
    if insecure_skip_verify {
        return any_certificate_config();
    }
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = if let Some(text) = fingerprint {
        let fingerprint = normalize_fingerprint(text).ok_or_else(|| {
            format!(
                "the certificate fingerprint `{text}` is not a SHA-256 fingerprint (64 hex digits)"
            )
        })?;
        Arc::new(ServerTrust {
            accepted: Accepted::Fingerprint(fingerprint),
            algorithms,
        })
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let mut pinned = Vec::new();
        match ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert =
                        cert.map_err(|e| format!("the CA certificate is not valid PEM: {e}"))?;
                    // A leaf certificate is no trust anchor for webpki; it stays usable as a pin.
                    let _ = roots.add(cert.clone());
                    pinned.push(cert);
                }
                if pinned.is_empty() {
                    return Err("the CA certificate PEM holds no certificate".into());
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    return Err(
                        "this machine has no trusted CA certificates; give the source's CA \
                                certificate or set source_provider_insecure_skip_verify"
                            .into(),
                    );
                }
            }
        }
        if roots.is_empty() {
            // Only leaf certificates were given (no anchors for webpki): trust exactly those.
            Arc::new(ServerTrust {
                accepted: Accepted::Certificates(pinned),
                algorithms,
            })
        } else {
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("TLS setup: {e}"))?;
            Arc::new(ServerTrust {
                accepted: Accepted::PinnedOrWebPki { pinned, webpki },
                algorithms,
            })
        }
    };
    Ok(config_builder()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// TLS that trusts exactly the CAs of `ca_pem` as anchors (oVirt's engine CA), or any certificate
/// when `ca_pem` is `None`.
pub(crate) fn ca_config(ca_pem: Option<&str>) -> Result<rustls::ClientConfig, String> {
    let Some(pem) = ca_pem else {
        return any_certificate_config();
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("the CA certificate is not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("the CA certificate cannot be a trust anchor: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the CA certificate PEM holds no certificate".into());
    }
    Ok(config_builder()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// An HTTP/1 client on `tls`; `https_only` refuses plain `http://` URLs (a catalog may list them).
pub(crate) fn https_client(tls: rustls::ClientConfig, https_only: bool) -> HttpsClient {
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
    let connector = if https_only {
        builder.https_only().enable_http1().build()
    } else {
        builder.https_or_http().enable_http1().build()
    };
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Sends one request and reads the whole answer: its head and its body, or why there is none.
pub(crate) async fn exchange(
    client: &HttpsClient,
    request: http::Request<Full<Bytes>>,
) -> Result<(http::response::Parts, Bytes), ExchangeError> {
    let response = client
        .request(request)
        .await
        .map_err(|e| ExchangeError::Unreached(describe_client_error(&e)))?;
    let (head, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| ExchangeError::Unread(e.to_string()))?
        .to_bytes();
    Ok((head, body))
}

/// Why [`exchange`] got no whole answer.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// The request did not reach the server or got no answer head: the chain of causes.
    Unreached(String),
    /// The answer's body could not be read.
    Unread(String),
}

impl ExchangeError {
    /// The message the adapters give: the causes, or `reading the answer: …`.
    pub(crate) fn message(&self) -> String {
        match self {
            ExchangeError::Unreached(causes) => causes.clone(),
            ExchangeError::Unread(why) => format!("reading the answer: {why}"),
        }
    }
}

/// The chain of causes of a client error (hyper-util's own message is only "client error (Connect)").
pub(crate) fn describe_client_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The certificates the endpoint presents (leaf first), read without verifying them.
pub(crate) async fn presented_certificates(
    host: &str,
    port: u16,
    timeout: std::time::Duration,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let config = any_certificate_config()?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| format!("`{host}` is not a host name: {e}"))?;
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connect to {host}:{port}: {e}"))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake with {host}:{port}: {e}"))?;
        Ok::<_, String>(
            tls.get_ref()
                .1
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
        )
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| format!("TLS handshake with {host}:{port}: no answer in {timeout:?}"))?
}

/// A certificate as PEM.
pub(crate) fn pem(cert: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_sha256_in_colon_hex_and_normalise() {
        // SHA-256 of the empty input.
        let empty = sha256_fingerprint(b"");
        assert!(empty.starts_with("E3:B0:C4:42:98:FC:1C:14"), "{empty}");
        let plain = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(normalize_fingerprint(&empty), Some(plain.to_uppercase()));
        assert_eq!(normalize_fingerprint(plain), Some(plain.to_uppercase()));
        assert_eq!(normalize_fingerprint("abc"), None);
        assert_eq!(normalize_fingerprint(&"zz".repeat(32)), None);
    }

    fn accepts(trust: &ServerTrust, der: &'static [u8]) -> bool {
        trust
            .verify_server_cert(
                &CertificateDer::from(der),
                &[],
                &ServerName::try_from("vcenter.example.com").unwrap(),
                &[],
                UnixTime::now(),
            )
            .is_ok()
    }

    #[test]
    fn server_trust_takes_any_certificate_or_exactly_the_pinned_ones() {
        let algorithms = provider().signature_verification_algorithms;
        let any = ServerTrust::any(algorithms);
        assert!(accepts(&any, b"any certificate"));
        let pinned = ServerTrust {
            accepted: Accepted::Certificates(vec![CertificateDer::from(&b"the vCenter's own"[..])]),
            algorithms,
        };
        assert!(accepts(&pinned, b"the vCenter's own"));
        assert!(!accepts(&pinned, b"another server's"));
    }

    #[test]
    fn server_trust_by_fingerprint_takes_only_the_certificate_with_it() {
        let algorithms = provider().signature_verification_algorithms;
        let fingerprint = normalize_fingerprint(&sha256_fingerprint(b"the vCenter's own")).unwrap();
        let trust = ServerTrust {
            accepted: Accepted::Fingerprint(fingerprint),
            algorithms,
        };
        assert!(accepts(&trust, b"the vCenter's own"));
        assert!(!accepts(&trust, b"another server's"));
    }

    #[test]
    fn certificates_print_as_pem() {
        let pem = pem(&CertificateDer::from(vec![1u8; 100]));
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
        let parsed: Vec<_> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(parsed[0].as_ref(), &[1u8; 100][..]);
    }
}
