//! The OpenStack REST transport: Keystone v3 password authentication (the token and the service
//! catalog), then JSON requests to each service's public endpoint with the token, renewed once when
//! a service answers 401 (a token expired during a long migration). TLS as the vSphere adapter does
//! it: the profile's CA, the system's roots, or no verification.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

use super::OpenstackConfig;
use crate::SourceError;
use crate::tls::{self, HttpsClient};

/// The services the adapter calls, as the catalog types them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Compute,
    Volume,
    Image,
    Network,
}

impl Service {
    /// Catalog types naming the service, preferred first.
    fn catalog_types(self) -> &'static [&'static str] {
        match self {
            Service::Compute => &["compute"],
            Service::Volume => &["block-storage", "volumev3"],
            Service::Image => &["image"],
            Service::Network => &["network"],
        }
    }

    /// The versioned API root below a catalog URL (Glance and Neutron list unversioned roots).
    fn versioned(self, url: &str) -> String {
        let url = url.trim_end_matches('/');
        match self {
            Service::Image if !url.ends_with("/v2") => format!("{url}/v2"),
            Service::Network if !url.ends_with("/v2.0") => format!("{url}/v2.0"),
            _ => url.to_string(),
        }
    }
}

/// The endpoints of a token's catalog, one per service.
#[derive(Debug, Clone, Default)]
struct Endpoints {
    compute: String,
    volume: String,
    image: String,
    network: String,
}

/// An answer that is not a success, or no answer at all.
#[derive(Debug, Clone)]
pub(crate) enum CallError {
    /// No HTTP answer: connection, TLS, timeout.
    Transport(String),
    /// The service's status and the message of its error body.
    Status { status: u16, message: String },
}

/// One OpenStack cloud: the HTTP client, the token and the endpoints it opened.
pub(crate) struct Client {
    http: HttpsClient,
    config: OpenstackConfig,
    session: Mutex<Option<(String, Endpoints)>>,
}

/// The message of an OpenStack error body: Nova/Cinder `{"itemNotFound": {"message"}}`, Keystone
/// `{"error": {"message"}}`, Neutron `{"NeutronError": {"message"}}`, else the text itself.
fn error_message(body: &str) -> String {
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(body)
        && let Some(message) = map
            .values()
            .find_map(|v| v.get("message").and_then(Value::as_str))
    {
        return message.to_string();
    }
    body.trim().chars().take(300).collect()
}

impl Client {
    pub fn new(config: OpenstackConfig) -> Result<Client, String> {
        let tls = tls::tls_config(
            config.insecure_skip_verify,
            config.ca_certificate.as_deref(),
            None,
        )?;
        Ok(Client {
            // A catalog may list plain `http://` endpoints.
            http: tls::https_client(tls, false),
            config,
            session: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &OpenstackConfig {
        &self.config
    }

    /// Keystone's token URL: the profile's auth URL, versioned.
    fn token_url(&self) -> String {
        let base = self.config.auth_url.trim().trim_end_matches('/');
        if base.ends_with("/v3") {
            format!("{base}/auth/tokens")
        } else {
            format!("{base}/v3/auth/tokens")
        }
    }

    /// One HTTP exchange, bounded by the request timeout.
    async fn exchange(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, http::HeaderMap, String), CallError> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "mtv-tests");
        if let Some(token) = token {
            request = request.header("x-auth-token", token);
        }
        let payload = match body {
            Some(body) => {
                request = request.header(http::header::CONTENT_TYPE, "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(payload))
            .map_err(|e| CallError::Transport(format!("{url}: {e}")))?;
        let exchange = async {
            let (head, bytes) = tls::exchange(&self.http, request).await.map_err(|e| {
                CallError::Transport(match e {
                    tls::ExchangeError::Unreached(causes) => {
                        format!("cannot reach {url}: {causes}")
                    }
                    tls::ExchangeError::Unread(why) => {
                        format!("reading the answer of {url}: {why}")
                    }
                })
            })?;
            Ok((
                head.status,
                head.headers,
                String::from_utf8_lossy(&bytes).into_owned(),
            ))
        };
        tokio::time::timeout(self.config.request_timeout, exchange)
            .await
            .map_err(|_| {
                CallError::Transport(format!(
                    "no answer from {url} within {:?}",
                    self.config.request_timeout
                ))
            })?
    }

    /// The password authentication request, scoped to the profile's project.
    fn auth_body(&self) -> Value {
        let c = &self.config;
        let domain = |name: &Option<String>, id: &Option<String>| match (id, name) {
            (Some(id), _) => json!({"id": id}),
            (None, Some(name)) => json!({"name": name}),
            (None, None) => json!({"id": "default"}),
        };
        json!({"auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {
                    "name": c.username,
                    "domain": domain(&c.user_domain_name, &c.user_domain_id),
                    "password": c.password,
                }},
            },
            "scope": {"project": {
                "name": c.project_name,
                "domain": domain(&c.project_domain_name, &c.project_domain_id),
            }},
        }})
    }

    /// Authenticates and keeps the token and the catalog's endpoints.
    pub async fn authenticate(&self) -> Result<(), SourceError> {
        let c = &self.config;
        let what = format!(
            "log in to OpenStack at {} as `{}` (profile `{}`)",
            c.auth_url, c.username, c.profile
        );
        let url = self.token_url();
        let (status, headers, body) = self
            .exchange(Method::POST, &url, None, Some(&self.auth_body()))
            .await
            .map_err(|e| call_error(&what, e))?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(SourceError::LoginRefused {
                what,
                message: "Keystone refused the credentials: check the profile's username, \
                          password, user_domain_name/user_domain_id, project_name and \
                          project_domain_id"
                    .into(),
            });
        }
        if !status.is_success() {
            return Err(SourceError::Rejected {
                what,
                status: status.as_u16(),
                message: error_message(&body),
            });
        }
        let token = headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| SourceError::Request {
                what: what.clone(),
                message: format!("{url} answered without an X-Subject-Token (is it Keystone v3?)"),
            })?
            .to_string();
        let document: Value = serde_json::from_str(&body).map_err(|e| SourceError::Request {
            what: what.clone(),
            message: format!("{url} answered something that is not a token: {e}"),
        })?;
        let endpoints = self.endpoints(&document["token"]["catalog"], &what)?;
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some((token, endpoints));
        Ok(())
    }

    /// The public endpoint of each service in the profile's region.
    fn endpoints(&self, catalog: &Value, what: &str) -> Result<Endpoints, SourceError> {
        let region = self.config.region.as_deref();
        let find = |service: Service| -> Result<String, SourceError> {
            for kind in service.catalog_types() {
                let url = catalog
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|entry| entry["type"] == *kind)
                    .flat_map(|entry| entry["endpoints"].as_array().into_iter().flatten())
                    .find(|e| {
                        e["interface"] == "public"
                            && region.is_none_or(|r| e["region_id"] == r || e["region"] == r)
                    })
                    .and_then(|e| e["url"].as_str());
                if let Some(url) = url {
                    return Ok(service.versioned(url));
                }
            }
            Err(SourceError::Request {
                what: what.to_string(),
                message: format!(
                    "the service catalog has no public {} endpoint{} (profile `{}`: check region_name)",
                    service.catalog_types()[0],
                    region
                        .map(|r| format!(" in region `{r}`"))
                        .unwrap_or_default(),
                    self.config.profile
                ),
            })
        };
        Ok(Endpoints {
            compute: find(Service::Compute)?,
            volume: find(Service::Volume)?,
            image: find(Service::Image)?,
            network: find(Service::Network)?,
        })
    }

    fn session(&self) -> Option<(String, Endpoints)> {
        self.session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A request to a service: `path` below its versioned root. A 401 renews the token once.
    pub async fn call(
        &self,
        service: Service,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let mut renewed = false;
        loop {
            if self.session().is_none() {
                self.authenticate()
                    .await
                    .map_err(|e| CallError::Transport(e.to_string()))?;
            }
            let (token, endpoints) = self.session().unwrap_or_default();
            let root = match service {
                Service::Compute => &endpoints.compute,
                Service::Volume => &endpoints.volume,
                Service::Image => &endpoints.image,
                Service::Network => &endpoints.network,
            };
            let url = format!("{root}{path}");
            let (status, _, text) = self
                .exchange(method.clone(), &url, Some(&token), body)
                .await?;
            if status == StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                *self.session.lock().unwrap_or_else(|e| e.into_inner()) = None;
                continue;
            }
            if !status.is_success() {
                return Err(CallError::Status {
                    status: status.as_u16(),
                    message: error_message(&text),
                });
            }
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text).map_err(|e| {
                CallError::Transport(format!("{url} answered something that is not JSON: {e}"))
            });
        }
    }

    /// How long to wait between two polls of a resource's status.
    pub fn poll_interval(&self) -> Duration {
        self.config.poll_interval
    }
}

/// A call error as the adapter's error, saying what it was doing.
pub(crate) fn call_error(what: &str, error: CallError) -> SourceError {
    match error {
        CallError::Transport(message) => SourceError::Request {
            what: what.to_string(),
            message,
        },
        CallError::Status { status, message } => SourceError::Rejected {
            what: what.to_string(),
            status,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_of_each_service_give_their_message() {
        assert_eq!(
            error_message(
                r#"{"itemNotFound": {"code": 404, "message": "Instance x could not be found."}}"#
            ),
            "Instance x could not be found."
        );
        assert_eq!(
            error_message(
                r#"{"NeutronError": {"type": "NetworkNotFound", "message": "Network n could not be found.", "detail": ""}}"#
            ),
            "Network n could not be found."
        );
        assert_eq!(
            error_message("404 Not Found\n\nNo image\n"),
            "404 Not Found\n\nNo image"
        );
    }

    #[test]
    fn unversioned_catalog_urls_get_the_api_version() {
        for (service, catalog_url, want) in [
            (Service::Image, "https://g:9292", "https://g:9292/v2"),
            (Service::Network, "https://n:9696/", "https://n:9696/v2.0"),
            (
                Service::Network,
                "https://n/network/v2.0",
                "https://n/network/v2.0",
            ),
            (Service::Compute, "https://c/v2.1", "https://c/v2.1"),
        ] {
            assert_eq!(service.versioned(catalog_url), want, "{catalog_url}");
        }
    }
}
