//! The vSphere source adapter: the vSphere Web Services API (SOAP, vim25) of a vCenter or ESXi, as
//! govmomi and pyVmomi speak it. Tested against vcsim, govmomi's simulator (`tests/vcsim.rs`).
//!
//! Ids are managed object ids (`vm-42`, `datastore-11`, `network-7`, `dvportgroup-13`, `host-21`,
//! `snapshot-77`). Every change is a task (`CloneVM_Task`, `ReconfigVM_Task`, ...) whose `info` is
//! polled until it succeeds or fails, within a bound. A session that expired while a long migration
//! ran (vCenter ends idle sessions after 30 minutes) is renewed once, transparently.

mod facts;
mod guest;
pub(crate) mod soap;
mod xml;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mtv_api::ProviderType;

use crate::{CloneRequest, NewDisk, NewNic, SourceError, SourceProvider, SourceSnapshot, SourceVm};
use facts::Props;
use soap::{SoapError, Transport};
use xml::{Element, escape};

pub use facts::provisioning_flags;

/// What a server presents, read once without verifying it: both ends of its certificate chain.
struct PresentedChain {
    /// The SHA-256 fingerprint of the server's own certificate (the first of the chain).
    fingerprint: String,
    /// The top of the chain as PEM: the issuing CA when the server sends it, else its own.
    top_pem: String,
}

/// How long one SOAP request may take by default.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a task (clone, reconfigure, power, snapshot, destroy) may take by default.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The VM properties facts are built from.
const VM_PROPERTIES: &[&str] = &[
    "name",
    "config.template",
    "runtime.powerState",
    "runtime.host",
    "config.hardware.numCPU",
    "config.hardware.numCoresPerSocket",
    "config.hardware.memoryMB",
    "config.firmware",
    "config.uuid",
    "guest.toolsRunningStatus",
    "config.changeTrackingEnabled",
    "config.hardware.device",
    "guest.net",
    "guest.ipStack",
    "snapshot",
];

/// How to reach a vCenter or ESXi.
#[derive(Clone)]
pub struct VsphereConfig {
    /// `host`, `host:port`, or an `https://` URL (the path defaults to `/sdk`).
    pub server: String,
    pub username: String,
    pub password: String,
    /// Accept any server certificate (vcsim's, or a lab vCenter's self-signed one).
    pub insecure_skip_verify: bool,
    /// A PEM CA certificate (or the server's own certificate) to trust instead of the system's roots.
    pub ca_certificate: Option<String>,
    /// A SHA-256 fingerprint (hex, `:` optional) of the server's certificate or of one in the chain
    /// it sends: then only that certificate is trusted.
    pub certificate_fingerprint: Option<String>,
    pub request_timeout: Duration,
    pub task_timeout: Duration,
    /// The guest user and password Guest Operations log in with (the profile's
    /// `guest_vm_linux_user`/`_password`); without them guest files and commands are refused.
    pub guest_credentials: Option<(String, String)>,
}

impl VsphereConfig {
    pub fn new(
        server: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        VsphereConfig {
            server: server.into(),
            username: username.into(),
            password: password.into(),
            insecure_skip_verify: false,
            ca_certificate: None,
            certificate_fingerprint: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            task_timeout: DEFAULT_TASK_TIMEOUT,
            guest_credentials: None,
        }
    }
}

impl fmt::Debug for VsphereConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("VsphereConfig");
        debug.field("server", &self.server);
        crate::debug_login(
            &mut debug,
            &self.username,
            self.insecure_skip_verify,
            self.ca_certificate.as_ref(),
        )
        .field("certificate_fingerprint", &self.certificate_fingerprint)
        .field("request_timeout", &self.request_timeout)
        .field("task_timeout", &self.task_timeout)
        .field(
            "guest_credentials",
            &crate::debug_guest_credentials(&self.guest_credentials),
        )
        .finish()
    }
}

/// A managed object reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Moref {
    pub kind: String,
    pub value: String,
}

impl Moref {
    pub fn new(kind: &str, value: &str) -> Moref {
        Moref {
            kind: kind.to_string(),
            value: value.to_string(),
        }
    }

    /// The reference an element holds (`<x type="VirtualMachine">vm-1</x>`).
    pub fn of(element: &Element) -> Option<Moref> {
        Some(Moref {
            kind: element.object_type.clone()?,
            value: element.text.trim().to_string(),
        })
    }

    fn xml(&self, tag: &str) -> String {
        format!(
            "<{tag} type=\"{}\">{}</{tag}>",
            escape(&self.kind),
            escape(&self.value)
        )
    }
}

/// The service's singletons, from `RetrieveServiceContent`.
#[derive(Debug, Clone)]
struct ServiceContent {
    root_folder: Moref,
    property_collector: Moref,
    view_manager: Moref,
    /// Absent on servers without Guest Operations.
    guest_operations: Option<Moref>,
    session_manager: Moref,
}

/// The URL of the `/sdk` endpoint, and the host and port for TLS.
fn endpoint_of(server: &str) -> Result<(http::Uri, String, u16), String> {
    let server = server.trim().trim_end_matches('/');
    let url = if server.contains("://") {
        server.to_string()
    } else {
        format!("https://{server}")
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("`{server}` is not a host name or URL: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("`{server}`: vSphere is reached over https"));
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("`{server}` has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(443);
    let path = match uri.path() {
        "" | "/" => "/sdk",
        path => path,
    };
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(&host);
    let uri = format!("https://{authority}{path}")
        .parse()
        .map_err(|e| format!("`{server}`: {e}"))?;
    Ok((uri, host, port))
}

struct Inner {
    transport: Arc<Transport>,
    /// The server as configured (host or host:port): how the ledger names this source.
    server: String,
    username: String,
    password: String,
    service: ServiceContent,
    /// What the connection trusts, for the Provider Secret's `cacert`.
    ca_certificate: Option<String>,
    certificate_fingerprint: Option<String>,
    request_timeout: Duration,
    task_timeout: Duration,
    guest_credentials: Option<(String, String)>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Best effort: end the session when the last handle goes, if a runtime is still there.
        if !self.transport.has_session() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let transport = self.transport.clone();
            let body = logout_body(&self.service);
            runtime.spawn(async move {
                let _ = transport.call(&body).await;
            });
        }
    }
}

fn logout_body(service: &ServiceContent) -> String {
    format!(
        "<Logout xmlns=\"urn:vim25\">{}</Logout>",
        service.session_manager.xml("_this")
    )
}

/// A vSphere source: one logged-in session on a vCenter or ESXi.
#[derive(Clone)]
pub struct VsphereSource {
    inner: Arc<Inner>,
}

impl fmt::Debug for VsphereSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VsphereSource")
            .field("server", &self.inner.server)
            .field("username", &self.inner.username)
            .finish_non_exhaustive()
    }
}

/// A SOAP error as a source error, saying what was being done.
fn source_error(what: &str, error: SoapError) -> SourceError {
    match error {
        SoapError::Transport(message) if message.contains("invalid peer certificate") => {
            SourceError::Request {
                what: what.to_string(),
                message: format!(
                    "{message}\nhint: the server's TLS certificate is not trusted: give the profile \
                     the server's CA certificate as `cacert` (PEM), or pin the certificate's SHA-256 \
                     fingerprint with `certificate_fingerprint`, or set \
                     source_provider_insecure_skip_verify=true"
                ),
            }
        }
        SoapError::Transport(message) => SourceError::Request {
            what: what.to_string(),
            message,
        },
        fault @ SoapError::Fault { status, .. } => SourceError::Rejected {
            what: what.to_string(),
            status,
            message: fault.to_string(),
        },
    }
}

/// The server's certificate is not the pinned one: say which fingerprint it has and which the
/// profile pins, so the user can tell a changed certificate from a typo.
async fn pin_mismatch(what: &str, server: &str, pinned: &str, timeout: Duration) -> SourceError {
    let presented = VsphereSource::presented_fingerprint(server, timeout)
        .await
        .unwrap_or_else(|e| format!("unknown ({e})"));
    unexpected(
        what,
        format!(
            "the certificate vSphere at {server} presents (SHA-256 {presented}) is not the one the \
             profile pins with certificate_fingerprint ({pinned}); if the server's certificate was \
             replaced on purpose, pin the new fingerprint, else do not connect"
        ),
    )
}

fn is_fault(error: &SoapError, kind: &str) -> bool {
    matches!(error, SoapError::Fault { kind: k, .. } if k == kind)
}

fn unexpected(what: &str, message: impl Into<String>) -> SourceError {
    SourceError::Request {
        what: what.to_string(),
        message: message.into(),
    }
}

/// `true`/`false` as vim25 writes them.
fn flag(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

impl VsphereSource {
    /// Connects and logs in. A refused login says so without the password.
    pub async fn connect(config: VsphereConfig) -> Result<VsphereSource, SourceError> {
        let what = format!(
            "log in to vSphere at {} as `{}`",
            config.server, config.username
        );
        let (endpoint, _, _) = endpoint_of(&config.server).map_err(|m| unexpected(&what, m))?;
        let pinned = (!config.insecure_skip_verify)
            .then_some(config.certificate_fingerprint.as_deref())
            .flatten();
        let tls = crate::tls::tls_config(
            config.insecure_skip_verify,
            config.ca_certificate.as_deref(),
            pinned,
        )
        .map_err(|m| unexpected(&what, m))?;
        let transport = Arc::new(Transport::new(endpoint, tls, config.request_timeout));
        let content = match transport
            .call(
                "<RetrieveServiceContent xmlns=\"urn:vim25\">\
                 <_this type=\"ServiceInstance\">ServiceInstance</_this></RetrieveServiceContent>",
            )
            .await
        {
            Ok(content) => content,
            Err(SoapError::Transport(message))
                if pinned.is_some() && message.contains("invalid peer certificate") =>
            {
                return Err(pin_mismatch(
                    &what,
                    &config.server,
                    pinned.unwrap_or_default(),
                    config.request_timeout,
                )
                .await);
            }
            Err(e) => return Err(source_error(&what, e)),
        };
        let content = content.child("returnval").ok_or_else(|| {
            unexpected(&what, "RetrieveServiceContent answered without a returnval")
        })?;
        let moref = |name: &str| {
            content
                .child(name)
                .and_then(Moref::of)
                .ok_or_else(|| unexpected(&what, format!("the service content has no {name}")))
        };
        let service = ServiceContent {
            root_folder: moref("rootFolder")?,
            property_collector: moref("propertyCollector")?,
            view_manager: moref("viewManager")?,
            guest_operations: content.child("guestOperationsManager").and_then(Moref::of),
            session_manager: moref("sessionManager")?,
        };
        if let Some(version) = content.text_at("about/apiVersion") {
            transport.set_api_version(version);
        }
        let source = VsphereSource {
            inner: Arc::new(Inner {
                transport,
                server: config.server.trim().to_string(),
                username: config.username,
                password: config.password,
                service,
                ca_certificate: config.ca_certificate,
                certificate_fingerprint: pinned.map(str::to_string),
                request_timeout: config.request_timeout,
                task_timeout: config.task_timeout,
                guest_credentials: config.guest_credentials,
            }),
        };
        source.login().await?;
        Ok(source)
    }

    /// The SHA-256 fingerprint of the certificate `server` presents (its own, the first of the
    /// chain), read without verifying it.
    pub async fn presented_fingerprint(
        server: &str,
        timeout: Duration,
    ) -> Result<String, SourceError> {
        Ok(Self::presented_chain(server, timeout).await?.fingerprint)
    }

    /// The certificate chain `server` presents, read without verifying it.
    async fn presented_chain(
        server: &str,
        timeout: Duration,
    ) -> Result<PresentedChain, SourceError> {
        let what = format!("read the TLS certificate of vSphere at {server}");
        let (_, host, port) = endpoint_of(server).map_err(|m| unexpected(&what, m))?;
        let certificates = crate::tls::presented_certificates(&host, port, timeout)
            .await
            .map_err(|m| unexpected(&what, m))?;
        let (Some(leaf), Some(top)) = (certificates.first(), certificates.last()) else {
            return Err(unexpected(&what, "the server presented no certificate"));
        };
        Ok(PresentedChain {
            fingerprint: crate::tls::sha256_fingerprint(leaf.as_ref()),
            top_pem: crate::tls::pem(top),
        })
    }

    /// The default trust when the profile gives neither `cacert` nor `certificate_fingerprint` and
    /// verification is on: what the server presents, read as the Python suite reads it (the top of
    /// the chain becomes `config.ca_certificate`, and the Provider Secret's `cacert`). Returns the
    /// server certificate's SHA-256 fingerprint, for the user to check and pin.
    pub async fn trust_presented_certificate(
        config: &mut VsphereConfig,
    ) -> Result<String, SourceError> {
        let presented = Self::presented_chain(&config.server, config.request_timeout).await?;
        config.ca_certificate = Some(presented.top_pem);
        Ok(presented.fingerprint)
    }

    /// The top of the certificate chain `server` presents, as PEM, read without verifying it: the
    /// issuing CA when the server sends it, else its own (self-signed) certificate, as the Python
    /// suite's `ssl.get_server_certificate` reads it for the Provider Secret's `cacert`.
    pub async fn presented_ca_certificate(
        server: &str,
        timeout: Duration,
    ) -> Result<String, SourceError> {
        Ok(Self::presented_chain(server, timeout).await?.top_pem)
    }

    /// The server as configured (the ledger's `vsphere:<server>`).
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    async fn login(&self) -> Result<(), SourceError> {
        let inner = &self.inner;
        let what = format!(
            "log in to vSphere at {} as `{}`",
            inner.server, inner.username
        );
        inner.transport.forget_session();
        let body = format!(
            "<Login xmlns=\"urn:vim25\">{}<userName>{}</userName><password>{}</password></Login>",
            inner.service.session_manager.xml("_this"),
            escape(&inner.username),
            escape(&inner.password),
        );
        match inner.transport.call(&body).await {
            Ok(_) => Ok(()),
            Err(SoapError::Fault { kind, message, .. }) if kind == "InvalidLogin" => {
                Err(SourceError::LoginRefused {
                    what,
                    message: format!(
                        "the server refused the user name or password ({kind}: {message}); check \
                         the profile's username and password"
                    ),
                })
            }
            // Nothing the server says goes out with the password in it.
            Err(other) => Err(redact(source_error(&what, other), &inner.password)),
        }
    }

    /// Ends the session (also done, best effort, when the last handle is dropped).
    pub async fn logout(&self) -> Result<(), SourceError> {
        let what = format!("log out of vSphere at {}", self.inner.server);
        if !self.inner.transport.has_session() {
            return Ok(());
        }
        let result = self
            .inner
            .transport
            .call(&logout_body(&self.inner.service))
            .await;
        self.inner.transport.forget_session();
        result.map(|_| ()).map_err(|e| source_error(&what, e))
    }

    /// One call; an expired session is renewed once.
    async fn invoke_raw(&self, body: &str) -> Result<Element, SoapError> {
        match self.inner.transport.call(body).await {
            Err(error) if is_fault(&error, "NotAuthenticated") => {
                self.login()
                    .await
                    .map_err(|e| SoapError::Transport(format!("renewing the session: {e}")))?;
                self.inner.transport.call(body).await
            }
            other => other,
        }
    }

    async fn invoke(&self, what: &str, body: &str) -> Result<Element, SourceError> {
        self.invoke_raw(body)
            .await
            .map_err(|e| source_error(what, e))
    }

    /// A `RetrieveProperties` request for the `paths` of the objects of `kind` that `object_set`
    /// (the inside of an `objectSet`) selects.
    fn retrieve_body(&self, kind: &str, paths: &[&str], object_set: &str) -> String {
        let path_set: String = paths
            .iter()
            .map(|p| format!("<pathSet>{}</pathSet>", escape(p)))
            .collect();
        format!(
            "<RetrieveProperties xmlns=\"urn:vim25\">{}<specSet><propSet><type>{}</type>{path_set}\
             </propSet><objectSet>{object_set}</objectSet></specSet></RetrieveProperties>",
            self.inner.service.property_collector.xml("_this"),
            escape(kind),
        )
    }

    /// Properties of one object, by path; unset properties are absent.
    async fn retrieve_raw(&self, object: &Moref, paths: &[&str]) -> Result<Props, SoapError> {
        let body = self.retrieve_body(&object.kind, paths, &object.xml("obj"));
        let answer = self.invoke_raw(&body).await?;
        Ok(answer
            .child("returnval")
            .map(facts::props_of)
            .unwrap_or_default())
    }

    async fn retrieve(
        &self,
        what: &str,
        object: &Moref,
        paths: &[&str],
    ) -> Result<Props, SourceError> {
        self.retrieve_raw(object, paths)
            .await
            .map_err(|e| source_error(what, e))
    }

    /// Every object of a kind in the inventory (a recursive container view), with properties.
    async fn list(
        &self,
        what: &str,
        kind: &str,
        paths: &[&str],
    ) -> Result<Vec<(Moref, Props)>, SourceError> {
        let service = &self.inner.service;
        let view = self
            .invoke(
                what,
                &format!(
                    "<CreateContainerView xmlns=\"urn:vim25\">{}{}<type>{}</type>\
                     <recursive>true</recursive></CreateContainerView>",
                    service.view_manager.xml("_this"),
                    service.root_folder.xml("container"),
                    escape(kind),
                ),
            )
            .await?;
        let view = view
            .child("returnval")
            .and_then(Moref::of)
            .ok_or_else(|| unexpected(what, "CreateContainerView answered without a view"))?;
        // Everything the view holds, not the view itself.
        let traversal = format!(
            "{}<skip>true</skip><selectSet xsi:type=\"TraversalSpec\"><name>view</name>\
             <type>ContainerView</type><path>view</path><skip>false</skip></selectSet>",
            view.xml("obj"),
        );
        let body = self.retrieve_body(kind, paths, &traversal);
        let answer = self.invoke(what, &body).await;
        let _ = self
            .invoke_raw(&format!(
                "<DestroyView xmlns=\"urn:vim25\">{}</DestroyView>",
                view.xml("_this")
            ))
            .await;
        Ok(answer?
            .children_named("returnval")
            .filter_map(|object| {
                let moref = object.child("obj").and_then(Moref::of)?;
                Some((moref, facts::props_of(object)))
            })
            .collect())
    }

    /// An inventory object of `kind` by id or name.
    async fn lookup(&self, what: &str, kind: &str, id_or_name: &str) -> Result<Moref, SourceError> {
        let objects = self.list(what, kind, &["name"]).await?;
        objects
            .iter()
            .find(|(moref, _)| moref.value == id_or_name)
            .or_else(|| {
                objects
                    .iter()
                    .find(|(_, props)| facts::text(props, "name") == Some(id_or_name))
            })
            .map(|(moref, _)| moref.clone())
            .ok_or_else(|| {
                unexpected(
                    what,
                    format!(
                        "no {kind} `{id_or_name}` (there are {}: {}{})",
                        objects.len(),
                        objects
                            .iter()
                            .take(20)
                            .map(|(m, p)| format!(
                                "{} {}",
                                m.value,
                                facts::text(p, "name").unwrap_or("")
                            ))
                            .collect::<Vec<_>>()
                            .join(", "),
                        if objects.len() > 20 { ", ..." } else { "" }
                    ),
                )
            })
    }

    /// Waits until a task succeeds (its result) or fails (its fault), polling `info`.
    async fn wait_task(&self, what: &str, task: &Element) -> Result<Option<Element>, SourceError> {
        let task = task
            .child("returnval")
            .and_then(Moref::of)
            .ok_or_else(|| unexpected(what, "the call answered without a task"))?;
        let deadline = tokio::time::Instant::now() + self.inner.task_timeout;
        let mut pause = Duration::from_millis(50);
        loop {
            let props = self.retrieve(what, &task, &["info"]).await?;
            let info = props
                .get("info")
                .ok_or_else(|| unexpected(what, format!("task {} has no info", task.value)))?;
            match info.text_at("state").unwrap_or("") {
                "success" => return Ok(info.child("result").cloned()),
                "error" => {
                    let fault = info
                        .at("error/fault")
                        .map(|f| f.kind().to_string())
                        .unwrap_or_else(|| "fault".into());
                    let message = info.text_at("error/localizedMessage").unwrap_or("");
                    return Err(SourceError::Rejected {
                        what: what.to_string(),
                        status: 500,
                        message: format!("task {} failed: {fault}: {message}", task.value),
                    });
                }
                state => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(unexpected(
                            what,
                            format!(
                                "task {} did not finish within {:?} (state {state}, progress {}%)",
                                task.value,
                                self.inner.task_timeout,
                                info.text_at("progress").unwrap_or("?")
                            ),
                        ));
                    }
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Runs a `*_Task` method on an object and waits for it.
    async fn run_task(
        &self,
        what: &str,
        method: &str,
        this: &Moref,
        arguments: &str,
    ) -> Result<Option<Element>, SourceError> {
        let body = format!(
            "<{method} xmlns=\"urn:vim25\">{}{arguments}</{method}>",
            this.xml("_this")
        );
        let task = self.invoke(what, &body).await?;
        self.wait_task(what, &task).await
    }

    /// Runs a `*_Task` method whose result is the object it made (a clone, a snapshot): that object.
    async fn run_task_making(
        &self,
        what: &str,
        method: &str,
        this: &Moref,
        arguments: &str,
    ) -> Result<Moref, SourceError> {
        let result = self.run_task(what, method, this, arguments).await?;
        result
            .as_ref()
            .and_then(Moref::of)
            .ok_or_else(|| unexpected(what, format!("{method} has no result")))
    }

    fn vm(id: &str) -> Moref {
        Moref::new("VirtualMachine", id)
    }

    async fn vm_props(&self, what: &str, id: &str, paths: &[&str]) -> Result<Props, SourceError> {
        match self.retrieve_raw(&Self::vm(id), paths).await {
            Err(e) if is_fault(&e, "ManagedObjectNotFound") => {
                Err(SourceError::NotFound(id.to_string()))
            }
            other => other.map_err(|e| source_error(what, e)),
        }
    }

    async fn reconfigure(&self, what: &str, id: &str, spec: &str) -> Result<(), SourceError> {
        self.run_task(
            what,
            "ReconfigVM_Task",
            &Self::vm(id),
            &format!("<spec>{spec}</spec>"),
        )
        .await
        .map(|_| ())
    }

    async fn datastore_name(&self, what: &str, datastore: &Moref) -> Result<String, SourceError> {
        let props = self.retrieve(what, datastore, &["name"]).await?;
        facts::text(&props, "name")
            .map(str::to_string)
            .ok_or_else(|| unexpected(what, format!("datastore {} has no name", datastore.value)))
    }

    /// The resource pool of a host's compute resource.
    async fn pool_of_host(&self, what: &str, host: &Moref) -> Result<Moref, SourceError> {
        let props = self.retrieve(what, host, &["parent"]).await?;
        let compute = props
            .get("parent")
            .and_then(Moref::of)
            .ok_or_else(|| unexpected(what, format!("host {} has no parent", host.value)))?;
        let props = self.retrieve(what, &compute, &["resourcePool"]).await?;
        props
            .get("resourcePool")
            .and_then(Moref::of)
            .ok_or_else(|| {
                unexpected(
                    what,
                    format!("compute resource {} has no resource pool", compute.value),
                )
            })
    }

    /// The backing XML of a NIC on a network given by id or name.
    async fn nic_backing(&self, what: &str, network: &str) -> Result<String, SourceError> {
        let moref = self.lookup(what, "Network", network).await?;
        match moref.kind.as_str() {
            "DistributedVirtualPortgroup" => {
                let props = self
                    .retrieve(what, &moref, &["config.distributedVirtualSwitch", "key"])
                    .await?;
                let switch = props
                    .get("config.distributedVirtualSwitch")
                    .and_then(Moref::of)
                    .ok_or_else(|| {
                        unexpected(what, format!("port group {} has no switch", moref.value))
                    })?;
                let switch_props = self.retrieve(what, &switch, &["uuid"]).await?;
                let uuid = facts::text(&switch_props, "uuid").ok_or_else(|| {
                    unexpected(what, format!("switch {} has no uuid", switch.value))
                })?;
                let key = facts::text(&props, "key").unwrap_or(&moref.value);
                Ok(format!(
                    "<backing xsi:type=\"VirtualEthernetCardDistributedVirtualPortBackingInfo\">\
                     <port><switchUuid>{}</switchUuid><portgroupKey>{}</portgroupKey></port></backing>",
                    escape(uuid),
                    escape(key)
                ))
            }
            "OpaqueNetwork" => {
                let props = self
                    .retrieve(
                        what,
                        &moref,
                        &["summary.opaqueNetworkId", "summary.opaqueNetworkType"],
                    )
                    .await?;
                Ok(format!(
                    "<backing xsi:type=\"VirtualEthernetCardOpaqueNetworkBackingInfo\">\
                     <opaqueNetworkId>{}</opaqueNetworkId><opaqueNetworkType>{}</opaqueNetworkType>\
                     </backing>",
                    escape(facts::text(&props, "summary.opaqueNetworkId").unwrap_or("")),
                    escape(facts::text(&props, "summary.opaqueNetworkType").unwrap_or("")),
                ))
            }
            _ => {
                let props = self.retrieve(what, &moref, &["name"]).await?;
                Ok(format!(
                    "<backing xsi:type=\"VirtualEthernetCardNetworkBackingInfo\">\
                     <deviceName>{}</deviceName>{}</backing>",
                    escape(facts::text(&props, "name").unwrap_or("")),
                    moref.xml("network"),
                ))
            }
        }
    }

    async fn set_power_state(&self, id: &str, on: bool) -> Result<(), SourceError> {
        let what = format!("power {} source VM {id}", if on { "on" } else { "off" });
        let props = self.vm_props(&what, id, &["runtime.powerState"]).await?;
        let powered_on = facts::text(&props, "runtime.powerState") == Some("poweredOn");
        if powered_on == on {
            return Ok(());
        }
        let method = if on {
            "PowerOnVM_Task"
        } else {
            "PowerOffVM_Task"
        };
        self.run_task(&what, method, &Self::vm(id), "")
            .await
            .map(|_| ())
    }

    async fn clone_and_prepare(
        &self,
        source_id: &str,
        request: &CloneRequest,
    ) -> Result<SourceVm, SourceError> {
        let what = format!("clone source VM {source_id} to `{}`", request.name);
        let source = self
            .vm_props(
                &what,
                source_id,
                &[
                    "parent",
                    "resourcePool",
                    "runtime.host",
                    "config.hardware.device",
                ],
            )
            .await?;
        let folder = source
            .get("parent")
            .and_then(Moref::of)
            .ok_or_else(|| unexpected(&what, "the source VM is in no folder (a vApp member?)"))?;
        let host = match &request.host {
            Some(host) => Some(self.lookup(&what, "HostSystem", host).await?),
            None => None,
        };
        let pool = match (&host, source.get("resourcePool").and_then(Moref::of)) {
            (Some(host), _) => self.pool_of_host(&what, host).await?,
            (None, Some(pool)) => pool,
            // A template has no pool: clone into its host's.
            (None, None) => {
                let host = source
                    .get("runtime.host")
                    .and_then(Moref::of)
                    .ok_or_else(|| unexpected(&what, "the template has neither pool nor host"))?;
                self.pool_of_host(&what, &host).await?
            }
        };
        let datastore = match &request.target_datastore {
            Some(datastore) => Some(self.lookup(&what, "Datastore", datastore).await?),
            None => None,
        };
        let mut location = String::new();
        if let Some(datastore) = &datastore {
            location.push_str(&datastore.xml("datastore"));
        }
        location.push_str(&pool.xml("pool"));
        if let Some(host) = &host {
            location.push_str(&host.xml("host"));
        }
        if let Some(disk_type) = &request.disk_type {
            let (thin, eager) = provisioning_flags(disk_type).map_err(|m| unexpected(&what, m))?;
            let devices = source.get("config.hardware.device");
            for disk in devices.map(facts::disk_devices).unwrap_or_default() {
                let disk_datastore = match &datastore {
                    Some(datastore) => datastore.clone(),
                    None => disk
                        .at("backing/datastore")
                        .and_then(Moref::of)
                        .ok_or_else(|| unexpected(&what, "a source disk has no datastore"))?,
                };
                location.push_str(&format!(
                    "<disk><diskId>{}</diskId>{}<diskBackingInfo \
                     xsi:type=\"VirtualDiskFlatVer2BackingInfo\"><fileName></fileName>\
                     <diskMode>{}</diskMode><thinProvisioned>{}</thinProvisioned>\
                     <eagerlyScrub>{}</eagerlyScrub></diskBackingInfo></disk>",
                    escape(disk.text_at("key").unwrap_or("")),
                    disk_datastore.xml("datastore"),
                    escape(disk.text_at("backing/diskMode").unwrap_or("persistent")),
                    flag(thin),
                    flag(eager),
                ));
            }
        }
        // Disks are added before the first power-on, so power on only when there are none to add.
        let power_on_now = request.power_on == Some(true) && request.add_disks.is_empty();
        let config = if request.cbt {
            "<config><changeTrackingEnabled>true</changeTrackingEnabled></config>"
        } else {
            ""
        };
        let arguments = format!(
            "{}<name>{}</name><spec><location>{location}</location><template>false</template>\
             {config}<powerOn>{}</powerOn></spec>",
            folder.xml("folder"),
            escape(&request.name),
            flag(power_on_now),
        );
        let clone = self
            .run_task_making(&what, "CloneVM_Task", &Self::vm(source_id), &arguments)
            .await?;
        match self.finish_clone(&clone.value, request).await {
            Ok(facts) => Ok(facts),
            Err(error) => {
                // The caller never learns the id of a half-prepared clone: do not leave it behind.
                let _ = self.delete_vm(&clone.value).await;
                Err(error)
            }
        }
    }

    /// What a clone spec may not have done (vcsim ignores `config` and `powerOn` of a clone spec).
    async fn finish_clone(
        &self,
        id: &str,
        request: &CloneRequest,
    ) -> Result<SourceVm, SourceError> {
        let facts = self.facts(id).await?;
        if request.cbt && !facts.cbt {
            self.reconfigure(
                &format!("enable changed block tracking on source VM {id}"),
                id,
                "<changeTrackingEnabled>true</changeTrackingEnabled>",
            )
            .await?;
        }
        for disk in &request.add_disks {
            self.add_disk(id, disk).await?;
        }
        if let Some(on) = request.power_on {
            self.set_power_state(id, on).await?;
        }
        self.facts(id).await
    }
}

/// Replaces a secret in an error's text.
fn redact(error: SourceError, secret: &str) -> SourceError {
    if secret.is_empty() {
        return error;
    }
    let clean = |s: String| s.replace(secret, "<redacted>");
    match error {
        SourceError::NotFound(s) => SourceError::NotFound(clean(s)),
        SourceError::Request { what, message } => SourceError::Request {
            what: clean(what),
            message: clean(message),
        },
        SourceError::LoginRefused { what, message } => SourceError::LoginRefused {
            what: clean(what),
            message: clean(message),
        },
        SourceError::Rejected {
            what,
            status,
            message,
        } => SourceError::Rejected {
            what: clean(what),
            status,
            message: clean(message),
        },
        // A cause cannot be redacted in place: its text, redacted, stands for it.
        SourceError::Failed { what, source } => SourceError::Request {
            what: clean(what),
            message: clean(source.to_string()),
        },
    }
}

/// The device XML of a new disk.
fn disk_device(
    disk: &NewDisk,
    key: i64,
    datastore_name: &str,
    datastore: &Moref,
    controller_key: i64,
    unit_number: i64,
) -> Result<String, String> {
    let (thin, eager) = provisioning_flags(&disk.provisioning)?;
    let mode = match disk.mode.as_str() {
        "" => "persistent",
        mode @ ("persistent"
        | "independent_persistent"
        | "independent_nonpersistent"
        | "nonpersistent") => mode,
        other => {
            return Err(format!(
                "unknown disk mode `{other}` (persistent, independent_persistent or \
                 independent_nonpersistent)"
            ));
        }
    };
    // A mapping's size is the LUN's; a flat disk's is asked for.
    let (backing_type, backing, capacity) = match (&disk.rdm, &disk.lun) {
        (Some(rdm), Some(lun)) => (
            "VirtualDiskRawDiskMappingVer1BackingInfo",
            rdm_backing(rdm, lun, mode)?,
            String::new(),
        ),
        _ => {
            let kib = disk.size_gib * 1024 * 1024;
            (
                "VirtualDiskFlatVer2BackingInfo",
                format!(
                    "<diskMode>{mode}</diskMode><thinProvisioned>{}</thinProvisioned>\
                     <eagerlyScrub>{}</eagerlyScrub>",
                    flag(thin),
                    flag(eager),
                ),
                format!(
                    "<capacityInKB>{kib}</capacityInKB><capacityInBytes>{}</capacityInBytes>",
                    kib * 1024
                ),
            )
        }
    };
    Ok(format!(
        "<operation>add</operation><fileOperation>create</fileOperation>\
         <device xsi:type=\"VirtualDisk\"><key>{key}</key>\
         <backing xsi:type=\"{backing_type}\"><fileName>[{}]</fileName>{}{backing}</backing>\
         <controllerKey>{controller_key}</controllerKey><unitNumber>{unit_number}</unitNumber>\
         {capacity}</device>",
        escape(datastore_name),
        datastore.xml("datastore"),
    ))
}

/// The backing fields of a raw device mapping of LUN `lun` (its NAA id, which names the ESXi
/// device `/vmfs/devices/disks/<naa>`); the mapping file goes to the VM's datastore.
fn rdm_backing(rdm: &str, lun: &str, mode: &str) -> Result<String, String> {
    // A physical-mode mapping bypasses snapshots: it is independent_persistent, as the Python
    // suite makes it.
    let (compatibility, mode) = match rdm {
        "virtual" => ("virtualMode", mode),
        "physical" => ("physicalMode", "independent_persistent"),
        other => return Err(format!("unknown RDM type `{other}` (virtual or physical)")),
    };
    Ok(format!(
        "<lunUuid>{}</lunUuid><deviceName>/vmfs/devices/disks/{}</deviceName>\
         <compatibilityMode>{compatibility}</compatibilityMode><diskMode>{mode}</diskMode>",
        escape(lun),
        escape(lun),
    ))
}

impl SourceProvider for VsphereSource {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Vsphere
    }

    async fn find(&self, name: &str) -> Result<Option<SourceVm>, SourceError> {
        let what = format!("find source VM `{name}`");
        let vms = self.list(&what, "VirtualMachine", &["name"]).await?;
        let Some((vm, _)) = vms
            .into_iter()
            .find(|(_, props)| facts::text(props, "name") == Some(name))
        else {
            return Ok(None);
        };
        match self.facts(&vm.value).await {
            Ok(facts) => Ok(Some(facts)),
            // Deleted in between.
            Err(SourceError::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    async fn facts(&self, id: &str) -> Result<SourceVm, SourceError> {
        let what = format!("read source VM {id}");
        let props = self.vm_props(&what, id, VM_PROPERTIES).await?;
        let mut vm = facts::source_vm(id, &props);
        self.read_guest_nic_names(&mut vm).await;
        Ok(vm)
    }

    async fn clone_vm(
        &self,
        source_id: &str,
        request: &CloneRequest,
    ) -> Result<SourceVm, SourceError> {
        self.clone_and_prepare(source_id, request).await
    }

    async fn set_power(&self, id: &str, on: bool) -> Result<(), SourceError> {
        self.set_power_state(id, on).await
    }

    async fn add_disk(&self, id: &str, disk: &NewDisk) -> Result<(), SourceError> {
        let what = match &disk.rdm {
            Some(mode) => format!("add an RDM disk ({mode}) to source VM {id}"),
            None => format!("add a {} GiB disk to source VM {id}", disk.size_gib),
        };
        if disk.rdm.is_some() && disk.lun.is_none() {
            return Err(unexpected(
                &what,
                "an RDM disk maps a LUN of the host's storage: name it with rdm_lun_uuid in the \
                 profile's copyoffload section",
            ));
        }
        if disk.rdm.is_none() && disk.size_gib == 0 {
            return Err(unexpected(&what, "a new disk needs a size"));
        }
        let props = self
            .vm_props(&what, id, &["config.hardware.device", "datastore"])
            .await?;
        let devices = props.get("config.hardware.device");
        let (controller_key, unit_number) = devices
            .and_then(facts::free_scsi_slot)
            .ok_or_else(|| unexpected(&what, "the VM has no SCSI controller with a free unit"))?;
        let datastore = match &disk.datastore {
            Some(datastore) => self.lookup(&what, "Datastore", datastore).await?,
            None => devices
                .map(facts::disk_devices)
                .unwrap_or_default()
                .iter()
                .find_map(|d| d.at("backing/datastore").and_then(Moref::of))
                .or_else(|| {
                    props
                        .get("datastore")
                        .and_then(|d| d.children.first())
                        .and_then(Moref::of)
                })
                .ok_or_else(|| unexpected(&what, "the VM has no datastore"))?,
        };
        let name = self.datastore_name(&what, &datastore).await?;
        let device = disk_device(disk, -100, &name, &datastore, controller_key, unit_number)
            .map_err(|m| unexpected(&what, m))?;
        self.reconfigure(&what, id, &format!("<deviceChange>{device}</deviceChange>"))
            .await
    }

    async fn add_nic(&self, id: &str, nic: &NewNic) -> Result<String, SourceError> {
        let what = format!("add a NIC on {} to source VM {id}", nic.network);
        let before = self.facts(id).await?;
        let backing = self.nic_backing(&what, &nic.network).await?;
        let device = format!(
            "<deviceChange><operation>add</operation><device xsi:type=\"VirtualVmxnet3\">\
             <key>-200</key>{backing}<connectable><startConnected>{}</startConnected>\
             <allowGuestControl>true</allowGuestControl><connected>{}</connected></connectable>\
             <addressType>generated</addressType></device></deviceChange>",
            flag(nic.start_connected),
            flag(nic.start_connected && before.powered_on),
        );
        self.reconfigure(&what, id, &device).await?;
        let after = self.facts(id).await?;
        after
            .nics
            .iter()
            .find(|nic| !before.nics.iter().any(|old| old.mac == nic.mac))
            .map(|nic| nic.mac.clone())
            .ok_or_else(|| unexpected(&what, "the VM shows no NIC with a new MAC"))
    }

    async fn create_snapshot(&self, id: &str, name: &str) -> Result<SourceSnapshot, SourceError> {
        let what = format!("snapshot source VM {id}");
        let arguments = format!(
            "<name>{}</name><description>created by mtv-tests</description>\
             <memory>false</memory><quiesce>false</quiesce>",
            escape(name)
        );
        let snapshot = self
            .run_task_making(&what, "CreateSnapshot_Task", &Self::vm(id), &arguments)
            .await?;
        self.facts(id)
            .await?
            .snapshots
            .into_iter()
            .find(|s| s.id == snapshot.value)
            .ok_or_else(|| {
                unexpected(
                    &what,
                    format!("snapshot {} is not in the VM's tree", snapshot.value),
                )
            })
    }

    async fn write_guest_file(
        &self,
        id: &str,
        path: &str,
        content: &str,
    ) -> Result<(), SourceError> {
        self.upload_guest_file(id, path, content).await
    }

    async fn read_guest_file(&self, id: &str, path: &str) -> Result<Option<String>, SourceError> {
        self.download_guest_file(id, path).await
    }

    async fn delete_vm(&self, id: &str) -> Result<(), SourceError> {
        let what = format!("delete source VM {id}");
        match self.set_power_state(id, false).await {
            Ok(()) => {}
            Err(SourceError::NotFound(_)) => return Ok(()),
            Err(other) => return Err(other),
        }
        let body = format!(
            "<Destroy_Task xmlns=\"urn:vim25\">{}</Destroy_Task>",
            Self::vm(id).xml("_this")
        );
        let task = match self.invoke_raw(&body).await {
            Ok(task) => task,
            Err(e) if is_fault(&e, "ManagedObjectNotFound") => return Ok(()),
            Err(e) => return Err(source_error(&what, e)),
        };
        match self.wait_task(&what, &task).await {
            Ok(_) => Ok(()),
            Err(SourceError::Rejected { message, .. })
                if message.contains("ManagedObjectNotFound") =>
            {
                Ok(())
            }
            Err(other) => Err(other),
        }
    }

    /// The CA for the Provider Secret: the one this connection trusts, else (a pinned fingerprint
    /// or no verification) the top of the chain the server presents, which with a pin is checked
    /// against the fingerprint first.
    async fn ca_certificate(&self) -> Result<String, SourceError> {
        let inner = &self.inner;
        if let Some(pem) = &inner.ca_certificate {
            return Ok(pem.clone());
        }
        let presented =
            VsphereSource::presented_chain(&inner.server, inner.request_timeout).await?;
        if let Some(pinned) = &inner.certificate_fingerprint
            && crate::tls::normalize_fingerprint(&presented.fingerprint)
                != crate::tls::normalize_fingerprint(pinned)
        {
            let what = format!("read the TLS certificate of vSphere at {}", inner.server);
            return Err(pin_mismatch(&what, &inner.server, pinned, inner.request_timeout).await);
        }
        Ok(presented.top_pem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_become_sdk_endpoints() {
        let (uri, host, port) = endpoint_of("vcenter.example.com").unwrap();
        assert_eq!(uri.to_string(), "https://vcenter.example.com/sdk");
        assert_eq!((host.as_str(), port), ("vcenter.example.com", 443));
        let (uri, host, port) = endpoint_of("https://127.0.0.1:8989/sdk").unwrap();
        assert_eq!(uri.to_string(), "https://127.0.0.1:8989/sdk");
        assert_eq!((host.as_str(), port), ("127.0.0.1", 8989));
        assert_eq!(
            endpoint_of("vc:9443").unwrap().0.to_string(),
            "https://vc:9443/sdk"
        );
        assert!(endpoint_of("http://vc/sdk").is_err());
    }

    #[test]
    fn configs_never_show_the_password() {
        let config = VsphereConfig::new("vc", "administrator@vsphere.local", "s3cret!");
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret!"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn errors_are_redacted() {
        let error = redact(
            SourceError::Request {
                what: "log in".into(),
                message: "bad password s3cret".into(),
            },
            "s3cret",
        );
        assert!(!error.to_string().contains("s3cret"));
    }

    #[test]
    fn new_disks_are_flat_disks_on_the_datastore() {
        let disk = NewDisk {
            size_gib: 2,
            provisioning: "thick-eager".into(),
            mode: "independent_persistent".into(),
            datastore: None,
            rdm: None,
            lun: None,
        };
        let xml = disk_device(
            &disk,
            -1,
            "ds1",
            &Moref::new("Datastore", "datastore-1"),
            1000,
            1,
        )
        .unwrap();
        assert!(xml.contains("<fileName>[ds1]</fileName>"));
        assert!(xml.contains("<thinProvisioned>false</thinProvisioned><eagerlyScrub>true"));
        assert!(xml.contains("<capacityInKB>2097152</capacityInKB>"));
        assert!(xml.contains("<diskMode>independent_persistent</diskMode>"));
        let bad = NewDisk {
            mode: "undoable".into(),
            ..disk
        };
        assert!(disk_device(&bad, -1, "ds1", &Moref::new("Datastore", "d"), 1000, 1).is_err());
    }

    #[test]
    fn rdm_disks_map_their_lun_and_take_its_size() {
        let disk = NewDisk {
            size_gib: 0,
            provisioning: "thin".into(),
            mode: String::new(),
            datastore: None,
            rdm: Some("physical".into()),
            lun: Some("naa.600a0980".into()),
        };
        let datastore = Moref::new("Datastore", "datastore-1");
        let xml = disk_device(&disk, -1, "ds1", &datastore, 1000, 1).unwrap();
        assert!(xml.contains(
            "<backing xsi:type=\"VirtualDiskRawDiskMappingVer1BackingInfo\"><fileName>[ds1]</fileName>"
        ));
        assert!(xml.contains(
            "<deviceName>/vmfs/devices/disks/naa.600a0980</deviceName>\
             <compatibilityMode>physicalMode</compatibilityMode>\
             <diskMode>independent_persistent</diskMode></backing>"
        ));
        assert!(!xml.contains("capacityIn"), "{xml}");
    }
}
