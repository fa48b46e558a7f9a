//! The one boundary between a run and its source adapters: a profile becomes a [`SourceConfig`],
//! [`connect`] turns it into the run's [`Source`], the ledger keeps the typed [`SourceRef`] the
//! adapter gives back, and [`reconnect`] rebuilds the adapter from that reference for teardown and
//! `mtv-tests clean`. Nothing outside this crate names an adapter type.
//!
//! **Adding an adapter** (oVirt, OpenStack, OVA): a variant of [`Source`] (and a line in
//! `dispatch!`), a variant of [`SourceRefKind`], and one arm each in [`connect`] and
//! [`reconnect`]. That is all; the engine is not edited.

use std::collections::BTreeMap;
use std::fmt;

use mtv_api::ProviderType;
use serde::{Deserialize, Serialize};

use crate::lab::LabSource;
use crate::openshift::OpenShiftSource;
use crate::vsphere::{VsphereConfig, VsphereSource};
use crate::{CloneRequest, NewDisk, SourceError, SourceProvider, SourceSnapshot, SourceVm};

/// Where a source's VMs live when they are KubeVirt objects of the run's cluster (an OpenShift
/// source), and what the run puts on what it creates there.
#[derive(Debug, Clone, Default)]
pub struct ClusterSourceNamespace {
    pub namespace: String,
    /// Storage class of the PVCs of VMs created there.
    pub storage_class: String,
    /// Labels every created VM carries (the session label).
    pub labels: BTreeMap<String, String>,
}

/// Everything a provider profile says about reaching its source, in the adapters' terms.
#[derive(Clone)]
pub struct SourceConfig {
    pub provider_type: ProviderType,
    /// The profile's `api_url` (the Provider's URL).
    pub url: String,
    /// The profile's `fqdn`, where the adapter logs in to a host rather than the URL (vSphere).
    pub host: Option<String>,
    pub username: String,
    pub password: String,
    /// Skip verification of the source's TLS certificate.
    pub insecure_skip_verify: bool,
    /// A PEM CA (or the server's own certificate) to trust.
    pub ca_certificate: Option<String>,
    /// SHA-256 fingerprint of the only certificate to trust.
    pub certificate_fingerprint: Option<String>,
    /// The profile's other non-secret keys (`region_name`, `project_name`, ...), for adapters that
    /// need them.
    pub fields: BTreeMap<String, String>,
    /// The run's Kubernetes client: OpenShift sources live on the cluster, and (for now) the lab's
    /// sources are reached through it.
    pub client: kube::Client,
    /// Set for an OpenShift source: the namespace the run made for its source VMs.
    pub cluster_namespace: Option<ClusterSourceNamespace>,
    /// The profile's name, for messages.
    pub profile: String,
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("provider_type", &self.provider_type)
            .field("url", &self.url)
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field(
                "ca_certificate",
                &self.ca_certificate.as_ref().map(|_| "<pem>"),
            )
            .field("certificate_fingerprint", &self.certificate_fingerprint)
            .field("fields", &self.fields)
            .field("cluster_namespace", &self.cluster_namespace)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// The source adapter of a run, whichever it is.
#[derive(Clone)]
pub enum Source {
    /// A source simulated by the embedded lab (interim: see [`connect`]).
    Lab(LabSource),
    /// KubeVirt VMs in a source namespace of the run's cluster.
    OpenShift(OpenShiftSource),
    /// A real vCenter or ESXi, over the vSphere Web Services API.
    Vsphere(VsphereSource),
}

/// The version of [`SourceRef`] this build writes.
pub const SOURCE_REF_VERSION: u32 = 1;

/// What a run must remember to reach a source again, kept in the ledger with each source VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    pub version: u32,
    #[serde(flatten)]
    pub kind: SourceRefKind,
}

/// One variant per adapter; credentials are never part of it (they are read again from the
/// Provider Secrets the run created, see [`ProviderSecret`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "adapter", rename_all = "snake_case")]
pub enum SourceRefKind {
    /// A lab source, by the lab file's provider name.
    Lab {
        provider_type: ProviderType,
        source: String,
    },
    /// KubeVirt VMs in `namespace` of the run's cluster.
    Openshift { namespace: String },
    /// A vCenter or ESXi as configured (`host`, `host:port` or URL).
    Vsphere { server: String },
}

impl SourceRef {
    pub fn new(kind: SourceRefKind) -> Self {
        SourceRef {
            version: SOURCE_REF_VERSION,
            kind,
        }
    }

    /// A reference as ledgers before version 1 of [`SourceRef`] wrote it: `lab:<source>`,
    /// `openshift:<namespace>` or `vsphere:<server>`, with the provider type recorded beside it.
    pub fn from_legacy(text: &str, provider_type: &str) -> Result<SourceRef, String> {
        let (adapter, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}` is not a source reference (expected adapter:name)"))?;
        let kind = match adapter {
            "lab" => SourceRefKind::Lab {
                provider_type: provider_type
                    .parse()
                    .map_err(|_| format!("`{provider_type}` is not a provider type"))?,
                source: rest.to_string(),
            },
            "openshift" => SourceRefKind::Openshift {
                namespace: rest.to_string(),
            },
            "vsphere" => SourceRefKind::Vsphere {
                server: rest.to_string(),
            },
            other => {
                return Err(format!(
                    "`{other}` is not a source adapter this build knows"
                ));
            }
        };
        Ok(SourceRef::new(kind))
    }

    /// Short form for messages and reports: `vsphere:vc.example.com`.
    pub fn describe(&self) -> String {
        match &self.kind {
            SourceRefKind::Lab { source, .. } => format!("lab:{source}"),
            SourceRefKind::Openshift { namespace } => format!("openshift:{namespace}"),
            SourceRefKind::Vsphere { server } => format!("vsphere:{server}"),
        }
    }

    /// Whether [`reconnect`] needs the run's source Provider Secrets to log in to this source.
    pub fn needs_credentials(&self) -> bool {
        matches!(self.kind, SourceRefKind::Vsphere { .. })
    }

    /// The namespace of the run's cluster this source's VMs live in, for an OpenShift source.
    pub fn cluster_namespace(&self) -> Option<&str> {
        match &self.kind {
            SourceRefKind::Openshift { namespace } => Some(namespace),
            _ => None,
        }
    }
}

/// The data of a source Provider Secret the run created (`url`, `user`, `password`,
/// `insecureSkipVerify`, `cacert`, ...), decoded: what [`reconnect`] logs in with.
#[derive(Clone, Default)]
pub struct ProviderSecret {
    pub provider_type: String,
    pub data: BTreeMap<String, String>,
}

impl fmt::Debug for ProviderSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSecret")
            .field("provider_type", &self.provider_type)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Source {
    /// How the ledger finds this source again.
    pub fn source_ref(&self) -> SourceRef {
        SourceRef::new(match self {
            Source::Lab(lab) => SourceRefKind::Lab {
                provider_type: lab.provider_type(),
                source: lab.source_name().to_string(),
            },
            Source::OpenShift(openshift) => SourceRefKind::Openshift {
                namespace: openshift.namespace().to_string(),
            },
            Source::Vsphere(vsphere) => SourceRefKind::Vsphere {
                server: vsphere.server().to_string(),
            },
        })
    }

    /// The namespace of the run's cluster the source VMs live in (OpenShift sources only).
    pub fn cluster_namespace(&self) -> Option<String> {
        self.source_ref().cluster_namespace().map(str::to_string)
    }
}

/// Connects to the source a profile describes.
///
/// **The adapter registry**: one arm per provider type. New adapters (oVirt, OpenStack, OVA) are
/// registered here and in [`reconnect`], nowhere else.
///
/// Interim: the embedded lab's sources do not speak the real protocols yet, so a source the lab
/// serves (found by type and URL under `/lab/v1/sources`) gets the lab adapter. This probe and
/// [`LabSource`] go away once the lab's sources speak vSphere, oVirt, OpenStack and OVA themselves.
pub async fn connect(config: &SourceConfig) -> Result<Source, SourceError> {
    if let Some(namespace) = &config.cluster_namespace {
        return Ok(Source::OpenShift(OpenShiftSource::new(
            config.client.clone(),
            namespace.namespace.clone(),
            namespace.storage_class.clone(),
            namespace.labels.clone(),
        )));
    }
    if let Some(lab) = lab_source_serving(config).await {
        return Ok(Source::Lab(lab));
    }
    match config.provider_type {
        ProviderType::Vsphere => Ok(Source::Vsphere(connect_vsphere(config).await?)),
        ProviderType::Openshift => Err(SourceError::Request {
            what: format!("connect to the source of profile '{}'", config.profile),
            message: "an OpenShift source needs the namespace of its source VMs".into(),
        }),
        other => Err(SourceError::Request {
            what: format!(
                "connect to the {other} source of profile '{}'",
                config.profile
            ),
            message: format!(
                "preparing {other} source VMs on a real hypervisor needs its source adapter, \
                 which this build does not have yet; run against the embedded lab (no \
                 --kubeconfig/--context)"
            ),
        }),
    }
}

/// The lab adapter when the cluster is a lab serving a source of this type at this URL (interim,
/// see [`connect`]). A cluster without the lab's source API answers 404: not a lab source.
async fn lab_source_serving(config: &SourceConfig) -> Option<LabSource> {
    let endpoints = LabSource::endpoints(&config.client).await.ok()?;
    endpoints
        .iter()
        .find(|e| e.provider_type == config.provider_type.as_str() && e.url == config.url)
        .map(|e| LabSource::named(config.client.clone(), config.provider_type, &e.name))
}

/// Logs in to vCenter/ESXi with the profile's trust: a pinned fingerprint, a CA, no verification,
/// or (as the Python suite) what the server presents, with its fingerprint shown so it can be pinned.
async fn connect_vsphere(config: &SourceConfig) -> Result<VsphereSource, SourceError> {
    let server = config.host.clone().unwrap_or_else(|| config.url.clone());
    let mut vsphere = VsphereConfig::new(server, &config.username, &config.password);
    vsphere.insecure_skip_verify = config.insecure_skip_verify;
    vsphere.ca_certificate = config.ca_certificate.clone();
    vsphere.certificate_fingerprint = config.certificate_fingerprint.clone();
    if !vsphere.insecure_skip_verify
        && vsphere.ca_certificate.is_none()
        && vsphere.certificate_fingerprint.is_none()
    {
        let fingerprint = VsphereSource::trust_presented_certificate(&mut vsphere).await?;
        eprintln!(
            "note: vSphere at {} presents a certificate with SHA-256 fingerprint {fingerprint}; \
             trusting it for this run as the Python suite does. To trust only that certificate, \
             set \"certificate_fingerprint\": \"{fingerprint}\" (or \"cacert\") in profile '{}'",
            vsphere.server, config.profile
        );
    }
    VsphereSource::connect(vsphere).await
}

/// Rebuilds the adapter a ledger's [`SourceRef`] names, for teardown and `clean`. Sources that need
/// a login find it among `secrets` (the source Provider Secrets the run created, by URL).
///
/// **The adapter registry, again**: one arm per [`SourceRefKind`].
pub async fn reconnect(
    source: &SourceRef,
    client: &kube::Client,
    secrets: &[ProviderSecret],
) -> Result<Source, SourceError> {
    if source.version > SOURCE_REF_VERSION {
        return Err(SourceError::Request {
            what: format!("reach the source {}", source.describe()),
            message: format!(
                "the ledger was written by a newer mtv-tests (source reference version {}, this \
                 build reads up to {SOURCE_REF_VERSION}); clean it with that build",
                source.version
            ),
        });
    }
    match &source.kind {
        SourceRefKind::Lab {
            provider_type,
            source,
        } => Ok(Source::Lab(LabSource::named(
            client.clone(),
            *provider_type,
            source,
        ))),
        SourceRefKind::Openshift { namespace } => Ok(Source::OpenShift(OpenShiftSource::named(
            client.clone(),
            namespace,
        ))),
        SourceRefKind::Vsphere { server } => {
            let secret = secrets
                .iter()
                .filter(|s| s.provider_type == "vsphere")
                .find(|s| s.data.get("url").is_some_and(|url| is_server(url, server)))
                .ok_or_else(|| SourceError::Request {
                    what: format!("log in to vSphere at {server} to delete the run's clones"),
                    message: "no source Provider Secret of the run names that server any more; \
                              delete the clones by hand"
                        .into(),
                })?;
            let field = |key: &str| secret.data.get(key).cloned().unwrap_or_default();
            let mut config = VsphereConfig::new(field("url"), field("user"), field("password"));
            config.insecure_skip_verify = field("insecureSkipVerify") == "true";
            config.ca_certificate = Some(field("cacert")).filter(|pem| !pem.trim().is_empty());
            Ok(Source::Vsphere(VsphereSource::connect(config).await?))
        }
    }
}

/// Whether a Provider URL (`https://vc.example.com/sdk`) is the server a [`SourceRef`] names.
fn is_server(url: &str, server: &str) -> bool {
    let authority = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default();
    url == server || authority == server || authority.split(':').next() == Some(server)
}

/// One call on whichever adapter the run has.
macro_rules! dispatch {
    ($source:expr, $adapter:ident => $call:expr) => {
        match $source {
            Source::Lab($adapter) => $call,
            Source::OpenShift($adapter) => $call,
            Source::Vsphere($adapter) => $call,
        }
    };
}

impl SourceProvider for Source {
    fn provider_type(&self) -> ProviderType {
        dispatch!(self, a => a.provider_type())
    }

    async fn find(&self, name: &str) -> Result<Option<SourceVm>, SourceError> {
        dispatch!(self, a => a.find(name).await)
    }

    async fn facts(&self, id: &str) -> Result<SourceVm, SourceError> {
        dispatch!(self, a => a.facts(id).await)
    }

    async fn clone_vm(
        &self,
        source_id: &str,
        request: &CloneRequest,
    ) -> Result<SourceVm, SourceError> {
        dispatch!(self, a => a.clone_vm(source_id, request).await)
    }

    async fn set_power(&self, id: &str, on: bool) -> Result<(), SourceError> {
        dispatch!(self, a => a.set_power(id, on).await)
    }

    async fn add_disk(&self, id: &str, disk: &NewDisk) -> Result<(), SourceError> {
        dispatch!(self, a => a.add_disk(id, disk).await)
    }

    async fn add_nic(
        &self,
        id: &str,
        network: &str,
        start_connected: bool,
    ) -> Result<String, SourceError> {
        dispatch!(self, a => a.add_nic(id, network, start_connected).await)
    }

    async fn create_snapshot(&self, id: &str, name: &str) -> Result<SourceSnapshot, SourceError> {
        dispatch!(self, a => a.create_snapshot(id, name).await)
    }

    async fn write_guest_file(
        &self,
        id: &str,
        path: &str,
        content: &str,
    ) -> Result<(), SourceError> {
        dispatch!(self, a => a.write_guest_file(id, path, content).await)
    }

    async fn read_guest_file(&self, id: &str, path: &str) -> Result<Option<String>, SourceError> {
        dispatch!(self, a => a.read_guest_file(id, path).await)
    }

    async fn delete_vm(&self, id: &str) -> Result<(), SourceError> {
        dispatch!(self, a => a.delete_vm(id).await)
    }

    async fn ca_certificate(&self) -> Result<String, SourceError> {
        dispatch!(self, a => a.ca_certificate().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_ref_round_trips_with_its_version_and_adapter() {
        let reference = SourceRef::new(SourceRefKind::Vsphere {
            server: "vc.example.com".into(),
        });
        let json = serde_json::to_value(&reference).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"version": 1, "adapter": "vsphere", "server": "vc.example.com"})
        );
        assert_eq!(
            serde_json::from_value::<SourceRef>(json).unwrap(),
            reference
        );
        let lab = SourceRef::new(SourceRefKind::Lab {
            provider_type: ProviderType::Ovirt,
            source: "rhv".into(),
        });
        let json = serde_json::to_string(&lab).unwrap();
        assert_eq!(serde_json::from_str::<SourceRef>(&json).unwrap(), lab);
    }

    #[test]
    fn legacy_prefixes_become_typed_references() {
        assert_eq!(
            SourceRef::from_legacy("lab:vsphere-8", "vsphere").unwrap(),
            SourceRef::new(SourceRefKind::Lab {
                provider_type: ProviderType::Vsphere,
                source: "vsphere-8".into()
            })
        );
        assert_eq!(
            SourceRef::from_legacy("openshift:auto-ab12-source", "openshift")
                .unwrap()
                .cluster_namespace(),
            Some("auto-ab12-source")
        );
        assert_eq!(
            SourceRef::from_legacy("vsphere:vc.example.com:8443", "vsphere")
                .unwrap()
                .describe(),
            "vsphere:vc.example.com:8443"
        );
        let error = SourceRef::from_legacy("xen:host", "xen").unwrap_err();
        assert!(error.contains("`xen`"), "{error}");
        assert!(SourceRef::from_legacy("nocolon", "vsphere").is_err());
    }

    #[test]
    fn provider_urls_match_the_referenced_vsphere_server() {
        assert!(is_server("https://vc.example.com/sdk", "vc.example.com"));
        assert!(is_server(
            "https://vc.example.com:8443/sdk",
            "vc.example.com"
        ));
        assert!(is_server(
            "https://vc.example.com:8443/sdk",
            "vc.example.com:8443"
        ));
        assert!(is_server("vc.example.com", "vc.example.com"));
        assert!(!is_server(
            "https://other.example.com/sdk",
            "vc.example.com"
        ));
    }

    #[test]
    fn the_debug_form_of_a_config_or_secret_shows_no_password() {
        let secret = ProviderSecret {
            provider_type: "vsphere".into(),
            data: BTreeMap::from([("password".into(), "hunter2".into())]),
        };
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
