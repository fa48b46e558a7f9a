//! The one boundary between a run and its source adapters: a profile becomes a [`SourceConfig`],
//! [`connect`] turns it into the run's [`Source`], the ledger keeps the typed [`SourceRef`] the
//! adapter gives back, and [`reconnect`] rebuilds the adapter from that reference for teardown and
//! `mtv-tests clean`. Nothing outside this crate names an adapter type.
//!
//! Every source type has its real adapter here: vSphere (vim25 SOAP), oVirt (REST v4 + SSO),
//! OpenStack (Keystone, Nova, Cinder, Glance, Neutron), OVA (the Forklift inventory of the NFS
//! share) and OpenShift (KubeVirt objects of the run's cluster). A run on the embedded lab uses
//! them too: the lab serves each source on its platform's own protocol.
//!
//! **Adding an adapter**: a variant of [`Source`] (and a line in `dispatch!`), a variant of
//! [`SourceRefKind`], and one arm each in [`connect`] and [`reconnect`]. That is all; the engine
//! is not edited.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use mtv_api::ProviderType;
use serde::{Deserialize, Serialize};

use crate::openshift::OpenShiftSource;
use crate::openstack::{OpenstackConfig, OpenstackSource};
use crate::ova::OvaSource;
use crate::ovirt::{OvirtConfig, OvirtSource};
use crate::vsphere::{VsphereConfig, VsphereSource};
use crate::{CloneRequest, NewDisk, NewNic, SourceError, SourceProvider, SourceSnapshot, SourceVm};

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

/// The Forklift inventory of the run's cluster, reached with the run's credentials, and where the
/// run's Providers live: a source whose VMs only the inventory describes (OVA) reads them there.
#[derive(Clone)]
pub struct SourceInventory {
    /// A client whose base URL is the inventory.
    pub client: kube::Client,
    /// The inventory's base URL, for messages.
    pub url: String,
    /// The namespace of the run's Providers.
    pub namespace: String,
    /// The run's session name.
    pub session: String,
}

impl fmt::Debug for SourceInventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceInventory")
            .field("url", &self.url)
            .field("namespace", &self.namespace)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
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
    /// The profile's other non-secret keys (`region_name`, `project_name`, `user_domain_name`,
    /// `project_domain_id`, ...), for adapters that need them.
    pub fields: BTreeMap<String, String>,
    /// The guest account of the source's Linux VMs (`guest_vm_linux_user`/`_password`), for the
    /// adapters that reach into a guest through the hypervisor (vSphere Guest Operations).
    pub guest_credentials: Option<(String, String)>,
    /// The run's Kubernetes client: OpenShift sources live on the cluster.
    pub client: kube::Client,
    /// The run's Forklift inventory (OVA sources are read there).
    pub inventory: Option<SourceInventory>,
    /// Set for an OpenShift source: the namespace the run made for its source VMs.
    pub cluster_namespace: Option<ClusterSourceNamespace>,
    /// The profile's name, for messages.
    pub profile: String,
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("SourceConfig");
        debug
            .field("provider_type", &self.provider_type)
            .field("url", &self.url)
            .field("host", &self.host);
        crate::debug_login(
            &mut debug,
            &self.username,
            self.insecure_skip_verify,
            self.ca_certificate.as_ref(),
        )
        .field("certificate_fingerprint", &self.certificate_fingerprint)
        .field("fields", &self.fields)
        .field(
            "guest_credentials",
            &crate::debug_guest_credentials(&self.guest_credentials),
        )
        .field("inventory", &self.inventory)
        .field("cluster_namespace", &self.cluster_namespace)
        .field("profile", &self.profile)
        .finish_non_exhaustive()
    }
}

/// The source adapter of a run, whichever it is.
#[derive(Clone)]
pub enum Source {
    /// KubeVirt VMs in a source namespace of the run's cluster.
    OpenShift(OpenShiftSource),
    /// A vCenter or ESXi, over the vSphere Web Services API.
    Vsphere(VsphereSource),
    /// An oVirt/RHV engine, over its REST API v4.
    Ovirt(OvirtSource),
    /// An OpenStack cloud, over Keystone, Nova, Cinder, Glance and Neutron.
    Openstack(OpenstackSource),
    /// An NFS share of OVA files, as the Forklift inventory reads it.
    Ova(Arc<OvaSource>),
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
    /// KubeVirt VMs in `namespace` of the run's cluster.
    Openshift { namespace: String },
    /// A vCenter or ESXi as configured (`host`, `host:port` or URL).
    Vsphere { server: String },
    /// An oVirt engine, by its API URL.
    Ovirt { url: String },
    /// An OpenStack cloud, by Keystone's URL.
    Openstack { url: String },
    /// An OVA NFS share, by its URL (nothing is ever created on it).
    Ova { url: String },
}

impl SourceRef {
    pub fn new(kind: SourceRefKind) -> Self {
        SourceRef {
            version: SOURCE_REF_VERSION,
            kind,
        }
    }

    /// A reference as ledgers before version 1 of [`SourceRef`] wrote it: `openshift:<namespace>`
    /// or `vsphere:<server>` (the provider type recorded beside it is not needed any more). Such a
    /// ledger's `lab:<source>` references named the lab-only adapter, which is gone: a clear error.
    pub fn from_legacy(text: &str, _provider_type: &str) -> Result<SourceRef, String> {
        let (adapter, rest) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}` is not a source reference (expected adapter:name)"))?;
        let kind = match adapter {
            "lab" => {
                return Err(format!(
                    "`{text}` names the lab-only source adapter of an older build, which runs no \
                     longer use; clean this ledger with the build that wrote it, or restart the lab"
                ));
            }
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
            SourceRefKind::Openshift { namespace } => format!("openshift:{namespace}"),
            SourceRefKind::Vsphere { server } => format!("vsphere:{server}"),
            SourceRefKind::Ovirt { url } => format!("ovirt:{url}"),
            SourceRefKind::Openstack { url } => format!("openstack:{url}"),
            SourceRefKind::Ova { url } => format!("ova:{url}"),
        }
    }

    /// Whether [`reconnect`] needs the run's source Provider Secrets to log in to this source.
    pub fn needs_credentials(&self) -> bool {
        matches!(
            self.kind,
            SourceRefKind::Vsphere { .. }
                | SourceRefKind::Ovirt { .. }
                | SourceRefKind::Openstack { .. }
        )
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
            Source::OpenShift(openshift) => SourceRefKind::Openshift {
                namespace: openshift.namespace().to_string(),
            },
            Source::Vsphere(vsphere) => SourceRefKind::Vsphere {
                server: vsphere.server().to_string(),
            },
            Source::Ovirt(ovirt) => SourceRefKind::Ovirt {
                url: ovirt.api_url().to_string(),
            },
            Source::Openstack(openstack) => SourceRefKind::Openstack {
                url: openstack.auth_url().to_string(),
            },
            Source::Ova(ova) => SourceRefKind::Ova {
                url: ova.nfs_url().unwrap_or_default().to_string(),
            },
        })
    }

    /// The namespace of the run's cluster the source VMs live in (OpenShift sources only).
    pub fn cluster_namespace(&self) -> Option<String> {
        self.source_ref().cluster_namespace().map(str::to_string)
    }
}

/// Connects to the source a profile describes: logs in (a refused login is an error naming the
/// profile; an unreachable source one naming the URL).
///
/// **The adapter registry**: one arm per provider type; [`reconnect`] is the other place adapters
/// are named.
pub async fn connect(config: &SourceConfig) -> Result<Source, SourceError> {
    connect_adapter(config)
        .await
        .map_err(|error| error.for_profile(&config.profile))
}

async fn connect_adapter(config: &SourceConfig) -> Result<Source, SourceError> {
    if let Some(namespace) = &config.cluster_namespace {
        return Ok(Source::OpenShift(OpenShiftSource::new(
            config.client.clone(),
            namespace.namespace.clone(),
            namespace.storage_class.clone(),
            namespace.labels.clone(),
        )));
    }
    match config.provider_type {
        ProviderType::Vsphere => Ok(Source::Vsphere(connect_vsphere(config).await?)),
        ProviderType::Ovirt => Ok(Source::Ovirt(
            OvirtSource::connect(ovirt_config(config)).await?,
        )),
        ProviderType::Openstack => Ok(Source::Openstack(
            OpenstackSource::connect(openstack_config(config)).await?,
        )),
        ProviderType::Ova => {
            let inventory = config
                .inventory
                .as_ref()
                .ok_or_else(|| SourceError::Request {
                    what: format!("reach the OVA source of profile '{}'", config.profile),
                    message:
                        "an OVA source is read from the Forklift inventory, and the run gave none"
                            .into(),
                })?;
            Ok(Source::Ova(Arc::new(OvaSource::through_inventory(
                inventory.client.clone(),
                &inventory.url,
                &inventory.namespace,
                &config.url,
                &inventory.session,
            ))))
        }
        ProviderType::Openshift => Err(SourceError::Request {
            what: format!("connect to the source of profile '{}'", config.profile),
            message: "an OpenShift source needs the namespace of its source VMs".into(),
        }),
    }
}

/// The oVirt adapter's view of a profile. The engine's CA is always read from the engine (the
/// Provider Secret's `cacert`, which imageio needs), and verifies it unless the profile gives its own.
fn ovirt_config(config: &SourceConfig) -> OvirtConfig {
    let mut ovirt = OvirtConfig::new(
        &config.profile,
        &config.url,
        &config.username,
        &config.password,
    );
    ovirt.insecure_skip_verify = config.insecure_skip_verify;
    ovirt.ca_certificate = config.ca_certificate.clone();
    ovirt
}

/// The OpenStack adapter's view of a profile: its project, region and user and project domains
/// (inventory §2.2).
fn openstack_config(config: &SourceConfig) -> OpenstackConfig {
    let field = |key: &str| {
        config
            .fields
            .get(key)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    };
    let mut openstack = OpenstackConfig::new(
        &config.profile,
        &config.url,
        &config.username,
        &config.password,
        field("project_name").unwrap_or_default(),
    );
    openstack.user_domain_name = field("user_domain_name");
    openstack.user_domain_id = field("user_domain_id");
    openstack.project_domain_name = field("project_domain_name");
    openstack.project_domain_id = field("project_domain_id");
    openstack.region = field("region_name");
    openstack.insecure_skip_verify = config.insecure_skip_verify;
    openstack.ca_certificate = config.ca_certificate.clone();
    openstack
}

/// Logs in to vCenter/ESXi with the profile's trust: a pinned fingerprint, a CA, no verification,
/// or (as the Python suite) what the server presents, with its fingerprint shown so it can be pinned.
async fn connect_vsphere(config: &SourceConfig) -> Result<VsphereSource, SourceError> {
    // The URL when there is one: it carries the port; the fqdn names the same vCenter.
    let server = Some(config.url.clone())
        .filter(|url| !url.trim().is_empty())
        .or_else(|| config.host.clone())
        .unwrap_or_default();
    let mut vsphere = VsphereConfig::new(server, &config.username, &config.password);
    vsphere.guest_credentials = config.guest_credentials.clone();
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
        SourceRefKind::Ovirt { url } => {
            let secret = secret_for(secrets, "ovirt", url, "oVirt")?;
            let field = |key: &str| secret.data.get(key).cloned().unwrap_or_default();
            let mut config = OvirtConfig::new(
                "the run's source Provider",
                url,
                field("user"),
                field("password"),
            );
            config.insecure_skip_verify = field("insecureSkipVerify") == "true";
            config.ca_certificate = Some(field("cacert")).filter(|pem| !pem.trim().is_empty());
            Ok(Source::Ovirt(OvirtSource::connect(config).await?))
        }
        SourceRefKind::Openstack { url } => {
            let secret = secret_for(secrets, "openstack", url, "OpenStack")?;
            let field = |key: &str| {
                secret
                    .data
                    .get(key)
                    .filter(|v| !v.trim().is_empty())
                    .cloned()
            };
            let mut config = OpenstackConfig::new(
                "the run's source Provider",
                url,
                field("username").unwrap_or_default(),
                field("password").unwrap_or_default(),
                field("projectName").unwrap_or_default(),
            );
            // Forklift's Secret has one `domainName`, the user's and the project's.
            config.user_domain_name = field("domainName");
            config.project_domain_name = field("domainName");
            config.region = field("regionName");
            config.insecure_skip_verify = field("insecureSkipVerify").as_deref() == Some("true");
            config.ca_certificate = field("cacert");
            Ok(Source::Openstack(OpenstackSource::connect(config).await?))
        }
        SourceRefKind::Ova { url } => Err(SourceError::Request {
            what: format!("reach the OVA share {url}"),
            message: "a run creates nothing on an OVA share, so there is nothing to delete there"
                .into(),
        }),
    }
}

/// The run's source Provider Secret of `provider_type` whose URL is `url`.
fn secret_for<'a>(
    secrets: &'a [ProviderSecret],
    provider_type: &str,
    url: &str,
    platform: &str,
) -> Result<&'a ProviderSecret, SourceError> {
    secrets
        .iter()
        .filter(|s| s.provider_type == provider_type)
        .find(|s| {
            s.data
                .get("url")
                .is_some_and(|u| u.trim_end_matches('/') == url.trim_end_matches('/'))
        })
        .ok_or_else(|| SourceError::Request {
            what: format!("log in to {platform} at {url} to delete the run's clones"),
            message: "no source Provider Secret of the run names that URL any more; delete the \
                      clones by hand"
                .into(),
        })
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
            Source::OpenShift($adapter) => $call,
            Source::Vsphere($adapter) => $call,
            Source::Ovirt($adapter) => $call,
            Source::Openstack($adapter) => $call,
            Source::Ova($adapter) => $call,
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

    async fn add_nic(&self, id: &str, nic: &NewNic) -> Result<String, SourceError> {
        dispatch!(self, a => a.add_nic(id, nic).await)
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
        let ovirt = SourceRef::new(SourceRefKind::Ovirt {
            url: "https://engine/ovirt-engine/api".into(),
        });
        let json = serde_json::to_string(&ovirt).unwrap();
        assert_eq!(serde_json::from_str::<SourceRef>(&json).unwrap(), ovirt);
        assert!(ovirt.needs_credentials());
    }

    #[test]
    fn legacy_prefixes_become_typed_references() {
        let error = SourceRef::from_legacy("lab:vsphere-8", "vsphere").unwrap_err();
        assert!(error.contains("lab-only source adapter"), "{error}");
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
