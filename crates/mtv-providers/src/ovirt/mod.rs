//! The oVirt/RHV source adapter: the engine's REST API v4 (`/ovirt-engine/api`, its JSON), logged in
//! through the engine's SSO (`/ovirt-engine/sso/oauth/token`, bearer tokens renewed once on a 401), as
//! ovirt-engine-sdk and the Python suite's `OvirtProvider` use it. Tested against the lab's engine
//! (`tests/ovirt.rs`).
//!
//! A clone is a new VM made from the template the scenario names, as the Python suite does. The
//! engine's CA is always read from `pki-resource` (the Provider Secret's `cacert`, which imageio needs);
//! it verifies the engine unless the profile gives its own CA or verification is off. Connecting checks
//! that the data center the Python suite requires (`MTV-CNV`) is up.

mod facts;
mod http;
mod operations;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::SourceError;
use facts::{members, text};
use http::{Call, Http};

/// How long one request may take by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a VM may take to reach a state (made from a template, started, stopped) by default.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The data center the Python suite requires to be up before it uses an engine.
pub const MTV_DATACENTER: &str = "MTV-CNV";

const GIB: u64 = 1024 * 1024 * 1024;

/// How to reach an oVirt engine.
#[derive(Clone)]
pub struct OvirtConfig {
    /// The providers-file profile this comes from, named in every error.
    pub profile: String,
    /// `https://<engine>/ovirt-engine/api` (a bare `https://<engine>` gets that path).
    pub api_url: String,
    pub username: String,
    pub password: String,
    /// Accept any engine certificate (the profile's `insecureSkipVerify`).
    pub insecure_skip_verify: bool,
    /// The CA (PEM) to verify the engine with; when absent, the CA the engine serves at `pki-resource`.
    pub ca_certificate: Option<String>,
    /// The data center that must exist and be up; `None` skips the check.
    pub required_datacenter: Option<String>,
    pub request_timeout: Duration,
    pub task_timeout: Duration,
}

impl OvirtConfig {
    pub fn new(
        profile: impl Into<String>,
        api_url: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        OvirtConfig {
            profile: profile.into(),
            api_url: api_url.into(),
            username: username.into(),
            password: password.into(),
            insecure_skip_verify: false,
            ca_certificate: None,
            required_datacenter: Some(MTV_DATACENTER.to_string()),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            task_timeout: DEFAULT_TASK_TIMEOUT,
        }
    }
}

impl fmt::Debug for OvirtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("OvirtConfig");
        debug
            .field("profile", &self.profile)
            .field("api_url", &self.api_url);
        crate::debug_login(
            &mut debug,
            &self.username,
            self.insecure_skip_verify,
            self.ca_certificate.as_ref(),
        )
        .field("required_datacenter", &self.required_datacenter)
        .finish_non_exhaustive()
    }
}

/// The engine's base (`https://host[:port]`) and API URL of a configured URL.
fn endpoint_of(api_url: &str) -> Result<(String, String), String> {
    let trimmed = api_url.trim().trim_end_matches('/');
    // The Python suite's example profile writes the URL without a scheme; the engine speaks https.
    let trimmed = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("https://{trimmed}")
    };
    let uri: ::http::Uri = trimmed
        .parse()
        .map_err(|e| format!("`{trimmed}` is not a URL: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!(
            "`{trimmed}`: the oVirt engine is reached over https (https://<engine>/ovirt-engine/api)"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("`{trimmed}` has no host"))?;
    let base = format!("https://{authority}");
    let path = match uri.path() {
        "" | "/" => "/ovirt-engine/api",
        path => path,
    };
    Ok((base.clone(), format!("{base}{path}")))
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Why a request got no usable answer.
#[derive(Debug)]
enum CallError {
    /// The engine answered with an error status (its fault's reason and detail).
    Status { status: u16, message: String },
    /// No answer: connection, TLS, timeout.
    Transport(String),
}

fn unexpected(what: &str, message: impl Into<String>) -> SourceError {
    SourceError::Request {
        what: what.to_string(),
        message: message.into(),
    }
}

/// A transport failure with what the user can do about it.
fn transport_error(what: &str, url: &str, message: String) -> SourceError {
    let hint = if message.contains("certificate") || message.contains("UnknownIssuer") {
        "the engine's TLS certificate is not trusted: give the profile the engine's CA as `cacert` \
         (PEM), or leave `cacert` out to trust the CA the engine serves, or set \
         source_provider_insecure_skip_verify=true"
    } else {
        "check the profile's api_url and that the engine is up and reachable from here"
    };
    unexpected(
        what,
        format!("cannot reach the oVirt engine at {url}: {message}\nhint: {hint}"),
    )
}

/// The engine's fault (`{"reason": ..., "detail": ...}`) or the body's start.
fn fault_message(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(fault) if fault.get("reason").is_some() || fault.get("detail").is_some() => format!(
            "{} {}",
            text(&fault, "reason").unwrap_or_default(),
            text(&fault, "detail").unwrap_or_default()
        )
        .trim()
        .to_string(),
        _ => String::from_utf8_lossy(body).chars().take(200).collect(),
    }
}

struct Inner {
    http: Http,
    config: OvirtConfig,
    /// `https://host[:port]` and the API URL under it.
    base: String,
    api: String,
    /// The CA the engine serves (or the profile's), for the Provider Secret's `cacert`.
    ca_pem: String,
    token: Mutex<Option<String>>,
}

/// An oVirt source: one SSO session on an engine.
#[derive(Clone)]
pub struct OvirtSource {
    inner: Arc<Inner>,
}

impl fmt::Debug for OvirtSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OvirtSource")
            .field("api", &self.inner.api)
            .field("profile", &self.inner.config.profile)
            .finish_non_exhaustive()
    }
}

impl OvirtSource {
    /// The API URL as configured (what the Provider's URL is).
    pub fn api_url(&self) -> &str {
        &self.inner.config.api_url
    }

    /// Reads the engine's CA, logs in through SSO and checks the required data center.
    pub async fn connect(config: OvirtConfig) -> Result<OvirtSource, SourceError> {
        let what = format!(
            "connect to the oVirt engine of profile `{}` at {}",
            config.profile, config.api_url
        );
        let (base, api) = endpoint_of(&config.api_url).map_err(|m| unexpected(&what, m))?;
        let ca_pem = Self::fetch_ca(&config, &base, &what).await?;
        let trust = (!config.insecure_skip_verify).then(|| {
            config
                .ca_certificate
                .clone()
                .unwrap_or_else(|| ca_pem.clone())
        });
        let tls = crate::tls::ca_config(trust.as_deref()).map_err(|m| unexpected(&what, m))?;
        let source = OvirtSource {
            inner: Arc::new(Inner {
                http: Http::new(tls, config.request_timeout),
                ca_pem: config.ca_certificate.clone().unwrap_or(ca_pem),
                config,
                base,
                api,
                token: Mutex::new(None),
            }),
        };
        source.login().await?;
        source.check_datacenter().await?;
        Ok(source)
    }

    /// The engine's CA from `pki-resource`: verified with the profile's CA when it gives one, else
    /// read as the engine presents it (as the Python suite reads it).
    async fn fetch_ca(config: &OvirtConfig, base: &str, what: &str) -> Result<String, SourceError> {
        let trust = config
            .ca_certificate
            .as_deref()
            .filter(|_| !config.insecure_skip_verify);
        let tls = crate::tls::ca_config(trust).map_err(|m| unexpected(what, m))?;
        let url = format!(
            "{base}/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA"
        );
        let call = Call {
            method: ::http::Method::GET,
            url: &url,
            headers: Vec::new(),
            body: None,
        };
        let (status, body) = Http::new(tls, config.request_timeout)
            .send(call)
            .await
            .map_err(|m| transport_error(what, &config.api_url, m))?;
        let pem = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() || !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(unexpected(
                what,
                format!(
                    "the engine served no CA certificate at {url} (HTTP {status}); is {} an oVirt \
                     engine's API URL?",
                    config.api_url
                ),
            ));
        }
        Ok(pem)
    }

    /// A new SSO token (the OAuth password grant).
    async fn login(&self) -> Result<(), SourceError> {
        let inner = &self.inner;
        let config = &inner.config;
        let what = format!(
            "log in to the oVirt engine of profile `{}` at {} as `{}`",
            config.profile, config.api_url, config.username
        );
        let url = format!("{}/ovirt-engine/sso/oauth/token", inner.base);
        let form = format!(
            "grant_type=password&scope=ovirt-app-api&username={}&password={}",
            encode(&config.username),
            encode(&config.password)
        );
        let call = Call {
            method: ::http::Method::POST,
            url: &url,
            headers: vec![
                ("content-type", "application/x-www-form-urlencoded".into()),
                ("accept", "application/json".into()),
            ],
            body: Some(form),
        };
        let (status, body) = inner
            .http
            .send(call)
            .await
            .map_err(|m| transport_error(&what, &config.api_url, m))?;
        let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Some(token) = text(&answer, "access_token") {
            *inner.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token.to_string());
            return Ok(());
        }
        let code = text(&answer, "error_code")
            .or(text(&answer, "error"))
            .unwrap_or("");
        let description = text(&answer, "error_description")
            .or(text(&answer, "error"))
            .unwrap_or("");
        let message = format!(
            "the engine refused the user name or password (HTTP {status}: {code}: {description}); \
             check the username and password of profile `{}`",
            config.profile
        );
        Err(SourceError::LoginRefused {
            what,
            message: message.replace(&config.password, "<redacted>"),
        })
    }

    /// The Python suite's precondition: the required data center exists and is up.
    async fn check_datacenter(&self) -> Result<(), SourceError> {
        let Some(wanted) = self.inner.config.required_datacenter.clone() else {
            return Ok(());
        };
        let what = format!(
            "check data center {wanted} of the oVirt engine of profile `{}`",
            self.inner.config.profile
        );
        let list = self.get(&what, "/datacenters").await?;
        let found = members(&list, "data_center");
        let Some(dc) = found
            .iter()
            .find(|dc| text(dc, "name") == Some(wanted.as_str()))
        else {
            let names: Vec<&str> = found.iter().filter_map(|dc| text(dc, "name")).collect();
            return Err(unexpected(
                &what,
                format!(
                    "the engine has no data center {wanted} (it has: {}); the Python suite runs \
                     its oVirt tests in a data center named {wanted}",
                    names.join(", ")
                ),
            ));
        };
        match text(dc, "status") {
            Some("up") => Ok(()),
            status => Err(unexpected(
                &what,
                format!(
                    "data center {wanted} is {}, not up",
                    status.unwrap_or("of no status")
                ),
            )),
        }
    }

    /// One API call (`path` under the API URL, with its query), renewing an expired token once.
    async fn call_raw(
        &self,
        method: ::http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let url = format!("{}{path}", self.inner.api);
        let mut renewed = false;
        loop {
            let token = self
                .inner
                .token
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .unwrap_or_default();
            let call = Call {
                method: method.clone(),
                url: &url,
                headers: vec![
                    ("accept", "application/json".into()),
                    ("content-type", "application/json".into()),
                    ("version", "4".into()),
                    ("authorization", format!("Bearer {token}")),
                ],
                body: body.map(Value::to_string),
            };
            let (status, bytes) = self
                .inner
                .http
                .send(call)
                .await
                .map_err(CallError::Transport)?;
            if status == ::http::StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                self.login()
                    .await
                    .map_err(|e| CallError::Transport(e.to_string()))?;
                continue;
            }
            if !status.is_success() {
                return Err(CallError::Status {
                    status: status.as_u16(),
                    message: fault_message(&bytes),
                });
            }
            return Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
        }
    }

    async fn call(
        &self,
        what: &str,
        method: ::http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SourceError> {
        self.call_raw(method, path, body)
            .await
            .map_err(|e| self.source_error(what, e))
    }

    fn source_error(&self, what: &str, error: CallError) -> SourceError {
        match error {
            CallError::Status { status, message } => SourceError::Rejected {
                what: what.to_string(),
                status,
                message,
            },
            CallError::Transport(message) => {
                transport_error(what, &self.inner.config.api_url, message)
            }
        }
    }

    async fn get(&self, what: &str, path: &str) -> Result<Value, SourceError> {
        self.call(what, ::http::Method::GET, path, None).await
    }

    async fn post(&self, what: &str, path: &str, body: Value) -> Result<Value, SourceError> {
        self.call(what, ::http::Method::POST, path, Some(&body))
            .await
    }

    /// A VM (or, failing that, a template) by id; `NotFound` when neither exists.
    async fn vm_or_template(&self, what: &str, id: &str) -> Result<(Value, bool), SourceError> {
        for (collection, template) in [("vms", false), ("templates", true)] {
            match self
                .call_raw(::http::Method::GET, &format!("/{collection}/{id}"), None)
                .await
            {
                Ok(vm) => return Ok((vm, template)),
                Err(CallError::Status { status: 404, .. }) => continue,
                Err(other) => return Err(self.source_error(what, other)),
            }
        }
        Err(SourceError::NotFound(id.to_string()))
    }

    /// The status of a VM (`up`, `down`, `image_locked`, ...); `None` when it is gone.
    async fn status(&self, what: &str, id: &str) -> Result<Option<String>, SourceError> {
        match self
            .call_raw(::http::Method::GET, &format!("/vms/{id}"), None)
            .await
        {
            Ok(vm) => Ok(Some(text(&vm, "status").unwrap_or_default().to_string())),
            Err(CallError::Status { status: 404, .. }) => Ok(None),
            Err(other) => Err(self.source_error(what, other)),
        }
    }

    /// Waits until a VM's status is `wanted` (`None`: gone), polling within the task bound.
    async fn wait_status(
        &self,
        what: &str,
        id: &str,
        wanted: Option<&str>,
    ) -> Result<(), SourceError> {
        let deadline = tokio::time::Instant::now() + self.inner.config.task_timeout;
        let mut pause = Duration::from_millis(50);
        loop {
            let status = self.status(what, id).await?;
            if status.as_deref() == wanted {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(unexpected(
                    what,
                    format!(
                        "VM {id} is {} after {:?}, not {}",
                        status.as_deref().unwrap_or("gone"),
                        self.inner.config.task_timeout,
                        wanted.unwrap_or("gone")
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_urls_become_base_and_api() {
        let (base, api) = endpoint_of("https://engine.example.com:8443/ovirt-engine/api/").unwrap();
        assert_eq!(base, "https://engine.example.com:8443");
        assert_eq!(api, "https://engine.example.com:8443/ovirt-engine/api");
        let (_, api) = endpoint_of("engine.example.com").unwrap();
        assert_eq!(api, "https://engine.example.com/ovirt-engine/api");
        assert!(endpoint_of("http://engine/ovirt-engine/api").is_err());
    }

    #[test]
    fn configs_never_show_the_password() {
        let config = OvirtConfig::new(
            "p",
            "https://e/ovirt-engine/api",
            "admin@internal",
            "s3cret!",
        );
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret!") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert_eq!(config.required_datacenter.as_deref(), Some(MTV_DATACENTER));
    }

    #[test]
    fn faults_read_as_reason_and_detail() {
        let body =
            br#"{"reason": "Operation Failed", "detail": "[Cannot run VM. VM is running.]"}"#;
        assert_eq!(
            fault_message(body),
            "Operation Failed [Cannot run VM. VM is running.]"
        );
        assert_eq!(encode("name=a b"), "name%3Da%20b");
    }
}
