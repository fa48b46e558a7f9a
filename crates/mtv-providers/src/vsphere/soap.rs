//! The vim25 SOAP transport: one HTTPS endpoint (`https://<host>/sdk`), the session cookie, envelopes
//! in, answers or faults out. TLS is rustls: the system's roots, a given CA (or the server's own
//! certificate, pinned), or no verification at all for `insecureSkipVerify`.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

use super::xml::{self, Element};

/// The name of the session cookie vCenter, ESXi and vcsim set at Login.
const SESSION_COOKIE: &str = "vmware_soap_session";

/// Why a call got no answer, or which fault it got.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SoapError {
    /// No SOAP answer: connection, TLS, timeout, or something that is not vim25.
    Transport(String),
    /// A SOAP fault: the fault type (`InvalidLogin`, `ManagedObjectNotFound`) and its message.
    Fault {
        status: u16,
        kind: String,
        message: String,
    },
}

impl fmt::Display for SoapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SoapError::Transport(message) => f.write_str(message),
            SoapError::Fault { kind, message, .. } if message.is_empty() => f.write_str(kind),
            SoapError::Fault { kind, message, .. } => write!(f, "{kind}: {message}"),
        }
    }
}

/// The crypto provider of the whole build (kube-rs uses ring too).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Trust without a certificate chain: any server certificate (`insecureSkipVerify`, `pinned` is
/// `None`) or exactly the given ones, compared byte for byte. The handshake signatures are checked
/// either way.
#[derive(Debug)]
struct ChainlessTrust {
    pinned: Option<Vec<CertificateDer<'static>>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ChainlessTrust {
    fn any(algorithms: WebPkiSupportedAlgorithms) -> ChainlessTrust {
        ChainlessTrust {
            pinned: None,
            algorithms,
        }
    }
}

impl ServerCertVerifier for ChainlessTrust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let trusted = self.pinned.as_ref().is_none_or(|pinned| {
            pinned
                .iter()
                .any(|pinned| pinned.as_ref() == end_entity.as_ref())
        });
        if trusted {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
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

/// WebPKI verification, except that a server certificate equal to one of the given ones is trusted
/// as it is: vCenter and ESXi often present a self-signed certificate, which is what a user passes
/// as "the CA certificate" (the Python suite and Forklift's `cacert` do the same).
#[derive(Debug)]
struct PinnedOrWebPki {
    pinned: Vec<CertificateDer<'static>>,
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|pinned| pinned.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
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

/// Trust exactly the server whose certificate (or one of the chain it sends) has the pinned
/// SHA-256 fingerprint; the handshake signatures are checked as always.
#[derive(Debug)]
struct FingerprintTrust {
    /// 64 upper-case hex digits.
    fingerprint: String,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for FingerprintTrust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let matches = std::iter::once(end_entity)
            .chain(intermediates)
            .any(|cert| sha256_fingerprint(cert.as_ref()).replace(':', "") == self.fingerprint);
        if matches {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
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

/// The TLS client configuration: no verification, a pinned SHA-256 fingerprint, the given CA PEM,
/// or the system's roots.
pub(crate) fn tls_config(
    insecure_skip_verify: bool,
    ca_pem: Option<&str>,
    fingerprint: Option<&str>,
) -> Result<rustls::ClientConfig, String> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = if insecure_skip_verify {
        Arc::new(ChainlessTrust::any(
            provider.signature_verification_algorithms,
        ))
    } else if let Some(text) = fingerprint {
        let fingerprint = normalize_fingerprint(text).ok_or_else(|| {
            format!(
                "the certificate fingerprint `{text}` is not a SHA-256 fingerprint (64 hex digits)"
            )
        })?;
        Arc::new(FingerprintTrust {
            fingerprint,
            algorithms: provider.signature_verification_algorithms,
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
            Arc::new(ChainlessTrust {
                pinned: Some(pinned),
                algorithms: provider.signature_verification_algorithms,
            })
        } else {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("TLS setup: {e}"))?;
            Arc::new(PinnedOrWebPki { pinned, webpki })
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The certificates the endpoint presents (leaf first), read without verifying them.
pub(crate) async fn presented_certificates(
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let provider = provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainlessTrust::any(
            provider.signature_verification_algorithms,
        )))
        .with_no_client_auth();
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

/// One vim25 endpoint and its session.
pub(crate) struct Transport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    endpoint: http::Uri,
    /// `urn:vim25/<apiVersion>` once the service content is known.
    soap_action: Mutex<String>,
    cookie: Mutex<Option<String>>,
    request_timeout: Duration,
}

impl Transport {
    pub fn new(
        endpoint: http::Uri,
        tls: rustls::ClientConfig,
        request_timeout: Duration,
    ) -> Transport {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        Transport {
            client: Client::builder(TokioExecutor::new()).build(connector),
            endpoint,
            soap_action: Mutex::new("urn:vim25".into()),
            cookie: Mutex::new(None),
            request_timeout,
        }
    }

    pub fn set_api_version(&self, version: &str) {
        *self.soap_action.lock().unwrap_or_else(|e| e.into_inner()) =
            format!("urn:vim25/{version}");
    }

    pub fn forget_session(&self) {
        *self.cookie.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub fn has_session(&self) -> bool {
        self.cookie
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Sends one request body (the method element) and returns the answer's method response element.
    pub async fn call(&self, body: &str) -> Result<Element, SoapError> {
        let envelope = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
             xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\
             <soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
        );
        let action = self
            .soap_action
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut request = http::Request::post(self.endpoint.clone())
            .header(http::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", action)
            .header(http::header::USER_AGENT, "mtv-tests");
        if let Some(cookie) = self
            .cookie
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            request = request.header(http::header::COOKIE, cookie);
        }
        let request = request
            .body(Full::new(Bytes::from(envelope)))
            .map_err(|e| SoapError::Transport(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| SoapError::Transport(describe_client_error(&e)))?;
            let status = response.status();
            for value in response.headers().get_all(http::header::SET_COOKIE) {
                if let Some(cookie) = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.split(';').next())
                    .filter(|c| c.trim_start().starts_with(SESSION_COOKIE))
                {
                    *self.cookie.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(cookie.trim().to_string());
                }
            }
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| SoapError::Transport(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        let (status, body) = tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| {
                SoapError::Transport(format!(
                    "no answer from {} within {:?}",
                    self.endpoint, self.request_timeout
                ))
            })??;
        answer_of(status.as_u16(), &String::from_utf8_lossy(&body))
    }
}

impl Transport {
    /// A plain HTTPS request on the same connection settings (TLS trust included): Guest Operations'
    /// file transfer URLs. The status and the body.
    pub async fn transfer(
        &self,
        method: http::Method,
        url: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), String> {
        let request = http::Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::USER_AGENT, "mtv-tests")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| describe_client_error(&e))?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| format!("no answer from {url} within {:?}", self.request_timeout))?
    }

    /// The `host:port` the endpoint is reached at.
    pub fn authority(&self) -> String {
        self.endpoint
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default()
    }
}

/// The chain of causes of a client error (hyper-util's own message is only "client error (Connect)").
fn describe_client_error(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The method response of a SOAP answer, or its fault.
pub(crate) fn answer_of(status: u16, text: &str) -> Result<Element, SoapError> {
    let not_soap = || {
        let start: String = text.chars().take(200).collect();
        SoapError::Transport(format!(
            "HTTP {status} without a SOAP answer (is this a vSphere /sdk endpoint?): {start}"
        ))
    };
    let root = xml::parse(text).map_err(|_| not_soap())?;
    let body = root.child("Body").ok_or_else(not_soap)?;
    if let Some(fault) = body.child("Fault") {
        let detail = fault.child("detail").and_then(|d| d.children.first());
        let kind = detail
            .map(|d| {
                d.xsi_type
                    .clone()
                    .unwrap_or_else(|| d.name.trim_end_matches("Fault").to_string())
            })
            .unwrap_or_else(|| {
                fault
                    .text_at("faultcode")
                    .unwrap_or("SOAP fault")
                    .to_string()
            });
        return Err(SoapError::Fault {
            status,
            kind,
            message: fault.text_at("faultstring").unwrap_or("").to_string(),
        });
    }
    body.children.first().cloned().ok_or_else(not_soap)
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

    #[test]
    fn chainless_trust_takes_any_certificate_or_exactly_the_pinned_ones() {
        let verify = |trust: &ChainlessTrust, der: &'static [u8]| {
            trust
                .verify_server_cert(
                    &CertificateDer::from(der),
                    &[],
                    &ServerName::try_from("vcenter.example.com").unwrap(),
                    &[],
                    UnixTime::now(),
                )
                .is_ok()
        };
        let algorithms = provider().signature_verification_algorithms;
        let any = ChainlessTrust::any(algorithms);
        assert!(verify(&any, b"any certificate"));
        let pinned = ChainlessTrust {
            pinned: Some(vec![CertificateDer::from(&b"the vCenter's own"[..])]),
            algorithms,
        };
        assert!(verify(&pinned, b"the vCenter's own"));
        assert!(!verify(&pinned, b"another server's"));
    }

    #[test]
    fn faults_carry_their_type_and_message() {
        let answer = r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="s" xmlns:xsi="x"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Login failure</faultstring><detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        assert_eq!(
            answer_of(500, answer),
            Err(SoapError::Fault {
                status: 500,
                kind: "InvalidLogin".into(),
                message: "Login failure".into()
            })
        );
        let ok = r#"<Envelope><Body><LoginResponse><returnval/></LoginResponse></Body></Envelope>"#;
        assert_eq!(answer_of(200, ok).unwrap().name, "LoginResponse");
        assert!(matches!(
            answer_of(404, "<html>not here</html>"),
            Err(SoapError::Transport(m)) if m.contains("HTTP 404")
        ));
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
