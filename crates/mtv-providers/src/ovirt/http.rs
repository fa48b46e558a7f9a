//! HTTPS to an oVirt engine: rustls trusting the engine's CA (or nothing, for `insecureSkipVerify`),
//! one request at a time with a bound, answers as status and body.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;

use crate::tls::{self, HttpsClient};

/// One engine's HTTPS client.
pub(crate) struct Http {
    client: HttpsClient,
    timeout: Duration,
}

/// A request to send: method, full URL, headers, body.
pub(crate) struct Call<'a> {
    pub method: http::Method,
    pub url: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
}

impl Http {
    pub fn new(tls: rustls::ClientConfig, timeout: Duration) -> Http {
        Http {
            client: tls::https_client(tls, true),
            timeout,
        }
    }

    /// Sends one request; the status and body of the answer, or why there is none.
    pub async fn send(&self, call: Call<'_>) -> Result<(http::StatusCode, Bytes), String> {
        let mut request = http::Request::builder()
            .method(call.method)
            .uri(call.url)
            .header(http::header::USER_AGENT, "mtv-tests");
        for (name, value) in call.headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(call.body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let (head, body) = tls::exchange(&self.client, request)
                .await
                .map_err(|e| e.message())?;
            Ok((head.status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
    }
}
