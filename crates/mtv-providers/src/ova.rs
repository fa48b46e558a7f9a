//! The OVA source adapter. An OVA provider is an NFS share of `.ova` files: there is nothing to clone,
//! power or change on it. Its VMs' facts come from the Forklift inventory (the provider server reads the
//! share), and each session migrates them under a `targetName` of its own so that sessions never collide.
//!
//! The inventory is reached either with a bearer token ([`OvaConfig`]) or with the run's own cluster
//! credentials ([`OvaSource::through_inventory`], what a run uses); in a run, the Provider is found
//! when first needed (it is created after the adapter connects) as the run's OVA Provider of the
//! profile's NFS URL.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use mtv_api::ProviderType;
use serde_json::Value;

use crate::{
    CloneRequest, NewDisk, NewNic, SourceDisk, SourceError, SourceNic, SourceProvider,
    SourceSnapshot, SourceVm,
};

const GIB: u64 = 1024 * 1024 * 1024;

/// How to reach the Forklift inventory of one OVA Provider.
#[derive(Clone)]
pub struct OvaConfig {
    /// The inventory's base URL (its Route), `https://…`.
    pub inventory_url: String,
    /// A bearer token the inventory accepts (the run's).
    pub token: String,
    /// The CA of the inventory's certificate (PEM), else the system's roots.
    pub ca_certificate: Option<String>,
    pub insecure_skip_verify: bool,
    /// The Provider's uid.
    pub provider_uid: String,
    /// The session's name, which every `targetName` starts with.
    pub session: String,
    pub request_timeout: Duration,
}

impl fmt::Debug for OvaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OvaConfig")
            .field("inventory_url", &self.inventory_url)
            .field("token", &"<redacted>")
            .field("provider_uid", &self.provider_uid)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// An OVA source: the inventory's view of one OVA Provider.
pub struct OvaSource {
    config: OvaConfig,
    transport: Transport,
    /// The Provider's inventory id, once known.
    provider_uid: tokio::sync::OnceCell<String>,
    /// How to find the Provider when its uid is not given: (namespace, NFS URL).
    lookup: Option<(String, String)>,
}

/// How requests reach the inventory.
enum Transport {
    /// `inventory_url` with the config's bearer token.
    Token(crate::tls::HttpsClient),
    /// A client whose base URL is the inventory, with the run's cluster credentials.
    Cluster(kube::Client),
}

impl fmt::Debug for OvaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OvaSource")
            .field("config", &self.config)
            .field("lookup", &self.lookup)
            .finish_non_exhaustive()
    }
}

fn request_error(what: &str, message: impl Into<String>) -> SourceError {
    SourceError::Request {
        what: what.to_string(),
        message: message.into(),
    }
}

/// What an OVA source cannot do, and why.
fn not_for_ova(what: String) -> SourceError {
    SourceError::Request {
        what,
        message: "an OVA source is a file on an NFS share: it has no running VM to clone, power, \
                  change, snapshot, delete or enter; Forklift migrates the OVA as it is, under the \
                  session's targetName"
            .into(),
    }
}

/// The `targetName` a session gives a migrated OVA VM: `<session>-<vm>`, a DNS-1123 label.
pub fn target_name(session: &str, vm: &str) -> String {
    let raw = format!("{session}-{vm}").to_ascii_lowercase();
    let mut name: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.truncate(63);
    name.trim_matches('-').to_string()
}

/// An inventory VM (`/providers/ova/<uid>/vms/<id>`) as facts. OVA VMs are never running.
fn facts_of(vm: &Value) -> SourceVm {
    let text = |key: &str| {
        vm.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let number = |key: &str| vm.get(key).and_then(Value::as_u64).unwrap_or(0);
    let cores = number("coresPerSocket").max(1) as u32;
    let cpus = number("cpuCount").max(1) as u32;
    let networks = vm
        .get("networks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let network_id = |name: &str| {
        networks
            .iter()
            .find(|n| n.get("Name").and_then(Value::as_str) == Some(name))
            .and_then(|n| n.get("ID").and_then(Value::as_str))
            .unwrap_or(name)
            .to_string()
    };
    let disks = vm
        .get("disks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(index, d)| {
            SourceDisk::unattached(
                d.get("Name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                // The inventory's OVA storages are the disk files, by the disk's ID: what a
                // StorageMap names.
                d.get("ID")
                    .or_else(|| d.get("FilePath"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                d.get("Capacity")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    .div_ceil(GIB),
                index,
            )
        })
        .collect();
    let nics = vm
        .get("nics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|n| SourceNic {
            mac: n
                .get("MAC")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            network: network_id(n.get("Network").and_then(Value::as_str).unwrap_or_default()),
            start_connected: true,
            device: None,
            ips: Vec::new(),
        })
        .collect();
    SourceVm {
        id: text("id"),
        name: text("name"),
        cpu_sockets: (cpus / cores).max(1),
        cores_per_socket: cores,
        memory_mib: number("memoryMB"),
        firmware: text("firmware"),
        uuid: text("uuid"),
        disks,
        nics,
        // An OVA is a file: never running, no agent, CBT, snapshots, host or event log.
        ..SourceVm::default()
    }
}

impl OvaSource {
    pub fn new(config: OvaConfig) -> Result<OvaSource, SourceError> {
        let what = format!("reach the Forklift inventory at {}", config.inventory_url);
        let tls = crate::tls::tls_config(
            config.insecure_skip_verify,
            config.ca_certificate.as_deref(),
            None,
        )
        .map_err(|m| request_error(&what, m))?;
        let provider_uid = tokio::sync::OnceCell::new_with(Some(config.provider_uid.clone()));
        Ok(OvaSource {
            config,
            transport: Transport::Token(crate::tls::https_client(tls, true)),
            provider_uid,
            lookup: None,
        })
    }

    /// The OVA Provider in `namespace` whose URL is `nfs_url`, read through `inventory` (a client
    /// whose base URL is the Forklift inventory, with the run's credentials). The Provider may not
    /// exist yet: it is looked up on first use.
    pub fn through_inventory(
        inventory: kube::Client,
        inventory_url: &str,
        namespace: &str,
        nfs_url: &str,
        session: &str,
    ) -> OvaSource {
        OvaSource {
            config: OvaConfig {
                inventory_url: inventory_url.to_string(),
                token: String::new(),
                ca_certificate: None,
                insecure_skip_verify: false,
                provider_uid: String::new(),
                session: session.to_string(),
                request_timeout: Duration::from_secs(120),
            },
            transport: Transport::Cluster(inventory),
            provider_uid: tokio::sync::OnceCell::new(),
            lookup: Some((namespace.to_string(), nfs_url.to_string())),
        }
    }

    /// The NFS URL this source was configured with (runs only).
    pub fn nfs_url(&self) -> Option<&str> {
        self.lookup.as_ref().map(|(_, url)| url.as_str())
    }

    /// The Provider's inventory id: given, or the run's OVA Provider of the NFS URL.
    async fn provider_uid(&self, what: &str) -> Result<String, SourceError> {
        let uid = self
            .provider_uid
            .get_or_try_init(|| async {
                let Some((namespace, url)) = &self.lookup else {
                    return Err(request_error(what, "no OVA Provider given"));
                };
                let providers = self
                    .fetch(what, "/providers/ova")
                    .await?
                    .unwrap_or_default();
                providers
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|p| {
                        p["namespace"] == namespace.as_str()
                            && p.pointer("/object/spec/url").and_then(Value::as_str)
                                == Some(url.as_str())
                    })
                    .and_then(|p| p["uid"].as_str().or_else(|| p["id"].as_str()))
                    .map(str::to_string)
                    .ok_or_else(|| {
                        request_error(
                            what,
                            format!(
                                "the Forklift inventory has no OVA Provider of {url} in namespace \
                                 {namespace} (yet)"
                            ),
                        )
                    })
            })
            .await?;
        Ok(uid.clone())
    }

    /// The `targetName` this session gives the OVA VM `vm`.
    pub fn target_name(&self, vm: &str) -> String {
        target_name(&self.config.session, vm)
    }

    /// GET of an inventory path of this Provider; `None` on 404.
    async fn get(&self, what: &str, path: &str) -> Result<Option<Value>, SourceError> {
        let uid = self.provider_uid(what).await?;
        self.fetch(what, &format!("/providers/ova/{uid}{path}"))
            .await
    }

    /// GET of an inventory path; `None` on 404.
    async fn fetch(&self, what: &str, path: &str) -> Result<Option<Value>, SourceError> {
        let url = format!("{}{path}", self.config.inventory_url.trim_end_matches('/'),);
        let (status, body) = match &self.transport {
            Transport::Token(client) => self.fetch_with_token(client, what, &url).await?,
            Transport::Cluster(client) => {
                let request = http::Request::get(path)
                    .header(http::header::ACCEPT, "application/json")
                    .body(kube::client::Body::from(Vec::new()))
                    .map_err(|e| request_error(what, e.to_string()))?;
                let exchange = async {
                    let response = client
                        .send(request)
                        .await
                        .map_err(|e| request_error(what, format!("{url}: {e}")))?;
                    let status = response.status().as_u16();
                    let body = response
                        .into_body()
                        .collect_bytes()
                        .await
                        .map_err(|e| request_error(what, e.to_string()))?;
                    Ok::<_, SourceError>((status, body))
                };
                tokio::time::timeout(self.config.request_timeout, exchange)
                    .await
                    .map_err(|_| request_error(what, format!("no answer from {url}")))??
            }
        };
        match status {
            200 => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| request_error(what, format!("{url} answered no JSON: {e}"))),
            404 => Ok(None),
            status => Err(SourceError::Rejected {
                what: what.to_string(),
                status,
                message: String::from_utf8_lossy(&body).chars().take(300).collect(),
            }),
        }
    }

    /// One GET with the config's bearer token: (status, body).
    async fn fetch_with_token(
        &self,
        client: &crate::tls::HttpsClient,
        what: &str,
        url: &str,
    ) -> Result<(u16, Bytes), SourceError> {
        let request = http::Request::get(url)
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.config.token),
            )
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| request_error(what, e.to_string()))?;
        let exchange = async {
            let (head, body) =
                crate::tls::exchange(client, request)
                    .await
                    .map_err(|e| match e {
                        crate::tls::ExchangeError::Unreached(causes) => {
                            request_error(what, format!("{url}: {causes}"))
                        }
                        crate::tls::ExchangeError::Unread(why) => request_error(what, why),
                    })?;
            Ok::<_, SourceError>((head.status.as_u16(), body))
        };
        tokio::time::timeout(self.config.request_timeout, exchange)
            .await
            .map_err(|_| request_error(what, format!("no answer from {url}")))?
    }
}

impl SourceProvider for OvaSource {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Ova
    }

    async fn find(&self, name: &str) -> Result<Option<SourceVm>, SourceError> {
        let what = format!("find OVA VM `{name}` in the Forklift inventory");
        let list = self
            .get(&what, "/vms?detail=1")
            .await?
            .unwrap_or(Value::Null);
        let found = list
            .as_array()
            .into_iter()
            .flatten()
            .find(|vm| vm.get("name").and_then(Value::as_str) == Some(name));
        match found.and_then(|vm| vm.get("id")).and_then(Value::as_str) {
            Some(id) => self.facts(id).await.map(Some),
            None => Ok(None),
        }
    }

    async fn facts(&self, id: &str) -> Result<SourceVm, SourceError> {
        let what = format!("read OVA VM {id} from the Forklift inventory");
        let vm = self
            .get(&what, &format!("/vms/{id}"))
            .await?
            .ok_or_else(|| SourceError::NotFound(id.to_string()))?;
        Ok(facts_of(&vm))
    }

    async fn clone_vm(
        &self,
        source_id: &str,
        request: &CloneRequest,
    ) -> Result<SourceVm, SourceError> {
        Err(not_for_ova(format!(
            "clone OVA VM {source_id} to `{}` (use targetName `{}` instead)",
            request.name,
            self.target_name(&request.name)
        )))
    }

    async fn set_power(&self, id: &str, on: bool) -> Result<(), SourceError> {
        Err(not_for_ova(format!(
            "power {} OVA VM {id}",
            if on { "on" } else { "off" }
        )))
    }

    async fn add_disk(&self, id: &str, disk: &NewDisk) -> Result<(), SourceError> {
        Err(not_for_ova(format!(
            "add a {} GiB disk to OVA VM {id}",
            disk.size_gib
        )))
    }

    async fn add_nic(&self, id: &str, nic: &NewNic) -> Result<String, SourceError> {
        Err(not_for_ova(format!(
            "add a NIC on {} to OVA VM {id}",
            nic.network
        )))
    }

    async fn create_snapshot(&self, id: &str, name: &str) -> Result<SourceSnapshot, SourceError> {
        Err(not_for_ova(format!("snapshot OVA VM {id} as `{name}`")))
    }

    fn no_guest_files(&self, id: &str, action: &str) -> SourceError {
        not_for_ova(format!("{action} in the guest of OVA VM {id}"))
    }

    async fn delete_vm(&self, id: &str) -> Result<(), SourceError> {
        Err(not_for_ova(format!("delete OVA VM {id}")))
    }

    async fn ca_certificate(&self) -> Result<String, SourceError> {
        Err(request_error(
            "read the OVA source's CA certificate",
            "an OVA source is an NFS share, reached without TLS: its Provider Secret needs no cacert",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_are_per_session_dns_labels() {
        assert_eq!(
            target_name("mtv-abc12", "Mtv_OVA.rhel9"),
            "mtv-abc12-mtv-ova-rhel9"
        );
        assert_ne!(target_name("s1", "vm"), target_name("s2", "vm"));
        assert!(target_name("s", &"x".repeat(100)).len() <= 63);
    }

    #[test]
    fn inventory_vms_become_facts() {
        let vm = serde_json::json!({"id": "u1", "name": "ova1", "cpuCount": 4, "coresPerSocket": 2,
            "memoryMB": 2048, "firmware": "bios", "uuid": "u1",
            "disks": [{"Name": "d1.vmdk", "FilePath": "/ova/ova1.ova", "Capacity": 21474836480u64}],
            "nics": [{"MAC": "00:50:56:00:00:09", "Network": "VM Network"}],
            "networks": [{"ID": "net-1", "Name": "VM Network"}]});
        let facts = facts_of(&vm);
        assert_eq!(
            (facts.cpu_sockets, facts.cores_per_socket, facts.memory_mib),
            (2, 2, 2048)
        );
        assert_eq!(facts.disks[0].capacity_gib, 20);
        assert_eq!(facts.nics[0].network, "net-1");
        assert!(!facts.powered_on);
    }
}
