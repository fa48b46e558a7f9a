//! The vim25 SOAP transport: one HTTPS endpoint (`https://<host>/sdk`), the session cookie, envelopes
//! in, answers or faults out. TLS is the adapters' shared trust (`crate::tls`).

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

use super::xml::{self, Element};
use crate::tls::{self, HttpsClient};

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

/// One vim25 endpoint and its session.
pub(crate) struct Transport {
    client: HttpsClient,
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
        Transport {
            client: tls::https_client(tls, true),
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
            let (head, body) = tls::exchange(&self.client, request)
                .await
                .map_err(|e| SoapError::Transport(e.message()))?;
            for value in head.headers.get_all(http::header::SET_COOKIE) {
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
            Ok((head.status, body))
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
            let (head, body) = tls::exchange(&self.client, request)
                .await
                .map_err(|e| e.message())?;
            Ok((head.status.as_u16(), body))
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
}
