//! Source-side adapters: what the suite does on the source hypervisor before and after a migration
//! (clone, power, disks, NICs, snapshots, facts), behind one trait so scenarios do not care which
//! hypervisor they run against.
//!
//! The boundary the engine uses is [`source`]: [`connect`] a profile's [`SourceConfig`], keep the
//! [`SourceRef`] in the ledger, [`reconnect`] for teardown. Adapters are registered there only.
//!
//! Adapters, the same for the embedded lab (whose sources speak the real protocols) and a real
//! cluster: [`vsphere::VsphereSource`] (the vim25 SOAP API; also tested against vcsim, govmomi's
//! simulator, which `scripts/build-vcsim.sh` builds), [`ovirt::OvirtSource`] (REST v4 + SSO),
//! [`openstack::OpenstackSource`] (Keystone, Nova, Cinder, Glance, Neutron), [`ova::OvaSource`] (the
//! Forklift inventory of an NFS share; nothing to prepare) and [`openshift::OpenShiftSource`]
//! (KubeVirt objects of the run's cluster).

pub mod guest_network;
pub mod openshift;
pub mod openstack;
pub mod ova;
pub mod ovirt;
pub mod source;
mod tls;
pub mod vsphere;

pub use source::{
    ClusterSourceNamespace, ProviderSecret, Source, SourceConfig, SourceInventory, SourceRef,
    SourceRefKind, connect, reconnect,
};

use std::fmt;
use std::future::Future;

use mtv_api::ProviderType;
use serde::{Deserialize, Serialize};

/// The facts of a source VM that preparation records and validation compares with the migrated VM.
/// The default (off, no devices, no snapshots, host or events) is what a source that does not report
/// a fact leaves it at.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SourceVm {
    pub id: String,
    pub name: String,
    pub powered_on: bool,
    pub template: bool,
    pub cpu_sockets: u32,
    pub cores_per_socket: u32,
    pub memory_mib: u64,
    pub firmware: String,
    pub uuid: String,
    pub guest_agent: bool,
    pub cbt: bool,
    pub disks: Vec<SourceDisk>,
    pub nics: Vec<SourceNic>,
    pub snapshots: Vec<SourceSnapshot>,
    /// The ESXi host / hypervisor host id, when the source has hosts.
    pub host: Option<String>,
    /// The source's event log for the VM (power actions), oldest first; empty where the adapter has none.
    #[serde(default)]
    pub events: Vec<SourceEvent>,
}

/// One event of a source VM's log (oVirt audit-log names: `USER_STOP_VM` is code 33).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceEvent {
    pub kind: String,
    pub code: Option<u32>,
    pub description: String,
    pub time: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceDisk {
    /// vSphere `[datastore] folder/file.vmdk`; the disk id elsewhere.
    pub file: String,
    /// Id of the datastore / storage domain / volume type.
    pub datastore: String,
    pub capacity_gib: u64,
    pub provisioning: String,
    pub mode: String,
    pub rdm: Option<String>,
    pub controller_key: i64,
    pub unit_number: i64,
}

impl SourceDisk {
    /// A disk of a source with no virtual controllers (OpenStack volumes, OVA disk files, KubeVirt
    /// claims): thin, persistent, no RDM, numbered by its place among the VM's disks.
    pub fn unattached(file: String, datastore: String, capacity_gib: u64, index: usize) -> Self {
        SourceDisk {
            file,
            datastore,
            capacity_gib,
            provisioning: "thin".into(),
            mode: "persistent".into(),
            rdm: None,
            controller_key: 0,
            unit_number: index as i64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceNic {
    pub mac: String,
    /// Id of the network.
    pub network: String,
    pub start_connected: bool,
    /// The NIC's name inside the guest (`ens192`, `Ethernet0`) when the source reports it.
    #[serde(default)]
    pub device: Option<String>,
    pub ips: Vec<SourceIp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceIp {
    pub ip: String,
    pub prefix: u8,
    pub gateway: Option<String>,
    pub is_static: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSnapshot {
    pub id: String,
    pub name: String,
    pub created: String,
}

/// A disk to add to a clone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDisk {
    pub size_gib: u64,
    /// `thin`, `thick-lazy` or `thick-eager`.
    pub provisioning: String,
    /// `persistent`, `independent_persistent` or `independent_nonpersistent`.
    pub mode: String,
    /// Datastore id; the VM's first datastore when absent.
    pub datastore: Option<String>,
    /// `virtual` or `physical` for an RDM disk.
    pub rdm: Option<String>,
    /// The LUN an RDM disk maps, by its NAA id (`naa.…`, the copy-offload section's
    /// `rdm_lun_uuid`).
    #[serde(default)]
    pub lun: Option<String>,
}

/// A NIC to add to a clone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewNic {
    /// The network as the source names it: a vSphere network or port group, an oVirt network, a
    /// Neutron network id, `pod` or a NetworkAttachmentDefinition (`namespace/name`) on OpenShift.
    pub network: String,
    /// Whether the NIC is connected when the VM starts.
    pub start_connected: bool,
}

impl NewNic {
    /// A NIC on `network`, connected at start or not.
    pub fn new(network: impl Into<String>, start_connected: bool) -> Self {
        NewNic {
            network: network.into(),
            start_connected,
        }
    }
}

/// How to clone a source VM or template.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CloneRequest {
    /// The clone's name.
    pub name: String,
    /// Power state after cloning (`None` leaves it as the clone starts: off).
    pub power_on: Option<bool>,
    /// Enable changed block tracking (warm migrations).
    pub cbt: bool,
    /// `thin`, `thick-lazy` or `thick-eager` for the cloned disks.
    pub disk_type: Option<String>,
    pub target_datastore: Option<String>,
    pub host: Option<String>,
    pub add_disks: Vec<NewDisk>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("source VM or template `{0}` not found")]
    NotFound(String),
    #[error("{what}: {message}")]
    Request { what: String, message: String },
    /// The source refused the profile's user name or password (what Forklift reports as
    /// `ConnectionAuthFailed`).
    #[error("{what}: {message}")]
    LoginRefused { what: String, message: String },
    #[error("{what}: the source answered {status}: {message}")]
    Rejected {
        what: String,
        status: u16,
        message: String,
    },
    /// A request that failed below the source's answer (transport, TLS, decoding), with its cause.
    #[error("{what}: {source}")]
    Failed {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl SourceError {
    /// The same error, its first line naming the profile it came from (when it does not already).
    pub fn for_profile(self, profile: &str) -> SourceError {
        let named = |what: String| {
            if what.contains(&format!("profile '{profile}'"))
                || what.contains(&format!("profile `{profile}`"))
            {
                what
            } else {
                format!("{what} (profile '{profile}')")
            }
        };
        match self {
            SourceError::Request { what, message } => SourceError::Request {
                what: named(what),
                message,
            },
            SourceError::LoginRefused { what, message } => SourceError::LoginRefused {
                what: named(what),
                message,
            },
            SourceError::Rejected {
                what,
                status,
                message,
            } => SourceError::Rejected {
                what: named(what),
                status,
                message,
            },
            SourceError::Failed { what, source } => SourceError::Failed {
                what: named(what),
                source,
            },
            other => other,
        }
    }
}

/// A kube-rs error as a source error: the API's own status and message when it answered, else the
/// error itself as the cause.
pub(crate) fn request_error(what: &str, error: kube::Error) -> SourceError {
    match error {
        kube::Error::Api(status) => SourceError::Rejected {
            what: what.to_string(),
            status: status.code,
            message: status.message,
        },
        other => SourceError::Failed {
            what: what.to_string(),
            source: Box::new(other),
        },
    }
}

/// What the suite needs from a source hypervisor.
pub trait SourceProvider: Send + Sync {
    fn provider_type(&self) -> ProviderType;

    /// The VM or template named `name`, if it exists.
    fn find(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<SourceVm>, SourceError>> + Send;

    /// Current facts of a VM by id.
    fn facts(&self, id: &str) -> impl Future<Output = Result<SourceVm, SourceError>> + Send;

    /// Clones a VM or template; returns the clone's facts.
    fn clone_vm(
        &self,
        source_id: &str,
        request: &CloneRequest,
    ) -> impl Future<Output = Result<SourceVm, SourceError>> + Send;

    fn set_power(&self, id: &str, on: bool)
    -> impl Future<Output = Result<(), SourceError>> + Send;

    fn add_disk(
        &self,
        id: &str,
        disk: &NewDisk,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Adds a NIC; returns its MAC.
    fn add_nic(
        &self,
        id: &str,
        nic: &NewNic,
    ) -> impl Future<Output = Result<String, SourceError>> + Send;

    fn create_snapshot(
        &self,
        id: &str,
        name: &str,
    ) -> impl Future<Output = Result<SourceSnapshot, SourceError>> + Send;

    /// Writes a file inside the VM's guest (the copy-offload data-integrity marker), as the Python
    /// suite does through vSphere Guest Operations. By default the source cannot:
    /// [`SourceProvider::no_guest_files`] says why.
    fn write_guest_file(
        &self,
        id: &str,
        path: &str,
        _content: &str,
    ) -> impl Future<Output = Result<(), SourceError>> + Send {
        std::future::ready(Err(self.no_guest_files(id, &format!("write {path}"))))
    }

    /// Reads a file of the VM's guest; `None` when the guest has no such file. By default the source
    /// cannot: [`SourceProvider::no_guest_files`] says why.
    fn read_guest_file(
        &self,
        id: &str,
        path: &str,
    ) -> impl Future<Output = Result<Option<String>, SourceError>> + Send {
        std::future::ready(Err(self.no_guest_files(id, &format!("read {path}"))))
    }

    /// The error of `action` (`write <path>`, `read <path>`) in the guest of VM `id` on a source
    /// with no guest file operations, naming the VM and the reason as the adapter knows them. A source
    /// that has them (vSphere's Guest Operations) overrides the guest file methods instead.
    fn no_guest_files(&self, id: &str, action: &str) -> SourceError {
        SourceError::Request {
            what: format!("{action} in the guest of source VM {id}"),
            message: "this source has no guest file operations".into(),
        }
    }

    /// Deletes a VM the suite created; deleting a missing VM is not an error.
    fn delete_vm(&self, id: &str) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// The CA certificate (PEM) the source's TLS endpoint presents, for the Provider Secret's `cacert`.
    fn ca_certificate(&self) -> impl Future<Output = Result<String, SourceError>> + Send;
}

/// The login fields of a source config's `Debug`: the user, the password as `<redacted>`, the TLS
/// trust with a CA PEM shown as `<pem>`, so that no secret reaches a log.
pub(crate) fn debug_login<'d, 'a, 'b: 'a>(
    debug: &'d mut fmt::DebugStruct<'a, 'b>,
    username: &str,
    insecure_skip_verify: bool,
    ca_certificate: Option<&String>,
) -> &'d mut fmt::DebugStruct<'a, 'b> {
    debug
        .field("username", &username)
        .field("password", &"<redacted>")
        .field("insecure_skip_verify", &insecure_skip_verify)
        .field("ca_certificate", &ca_certificate.map(|_| "<pem>"))
}

/// The guest account (user, password) of a source config's `Debug`: the user, the password as
/// `<redacted>`.
pub(crate) fn debug_guest_credentials(
    credentials: &Option<(String, String)>,
) -> Option<(&str, &str)> {
    credentials
        .as_ref()
        .map(|(user, _)| (user.as_str(), "<redacted>"))
}
