//! The embedded lab's source adapter. It speaks the lab's own source API (`/lab/v1/sources/...`) over
//! the same HTTP connection as the Kubernetes API, so a run against the lab uses one client.

use mtv_api::ProviderType;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    CloneRequest, NewDisk, SourceDisk, SourceError, SourceEvent, SourceIp, SourceNic,
    SourceProvider, SourceSnapshot, SourceVm, request_error,
};

/// A lab source endpoint, as `GET /lab/v1/sources` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct LabSourceInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub provider_type: String,
    pub url: String,
}

#[derive(Clone)]
pub struct LabSource {
    client: kube::Client,
    provider_type: ProviderType,
    /// The lab file's provider name.
    source: String,
}

// The lab's VM document (the lab file's model); tolerant of fields this adapter does not read.
#[derive(Debug, Deserialize)]
struct LabVm {
    id: String,
    name: String,
    #[serde(default)]
    template: bool,
    power_state: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default = "one")]
    cpu_sockets: u32,
    #[serde(default = "one")]
    cores_per_socket: u32,
    memory_mib: u64,
    #[serde(default)]
    firmware: Option<String>,
    #[serde(default)]
    uuid: String,
    #[serde(default)]
    guest_agent: bool,
    #[serde(default)]
    cbt: bool,
    #[serde(default)]
    disks: Vec<LabDisk>,
    #[serde(default)]
    nics: Vec<LabNic>,
    #[serde(default)]
    snapshots: Vec<LabSnapshot>,
    #[serde(default)]
    events: Vec<SourceEvent>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
struct LabDisk {
    file: String,
    datastore: String,
    #[serde(default)]
    capacity_gib: u64,
    #[serde(default)]
    provisioning: Option<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    rdm: Option<String>,
    #[serde(default)]
    controller_key: i64,
    #[serde(default)]
    unit_number: i64,
}

#[derive(Debug, Deserialize)]
struct LabNic {
    mac: String,
    network: String,
    #[serde(default = "yes")]
    start_connected: bool,
    #[serde(default)]
    device: Option<String>,
    #[serde(default)]
    ips: Vec<LabIp>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct LabIp {
    ip: String,
    prefix: u8,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(rename = "static", default)]
    is_static: bool,
}

#[derive(Debug, Deserialize)]
struct LabSnapshot {
    id: String,
    name: String,
    created: String,
}

impl From<LabVm> for SourceVm {
    fn from(vm: LabVm) -> Self {
        SourceVm {
            id: vm.id,
            name: vm.name,
            powered_on: vm.power_state == "on",
            template: vm.template,
            cpu_sockets: vm.cpu_sockets,
            cores_per_socket: vm.cores_per_socket,
            memory_mib: vm.memory_mib,
            firmware: vm.firmware.unwrap_or_else(|| "bios".into()),
            uuid: vm.uuid,
            guest_agent: vm.guest_agent,
            cbt: vm.cbt,
            disks: vm
                .disks
                .into_iter()
                .map(|d| SourceDisk {
                    file: d.file,
                    datastore: d.datastore,
                    capacity_gib: d.capacity_gib,
                    provisioning: d.provisioning.unwrap_or_else(|| "thin".into()),
                    mode: d.mode.unwrap_or_else(|| "persistent".into()),
                    rdm: d.rdm,
                    controller_key: d.controller_key,
                    unit_number: d.unit_number,
                })
                .collect(),
            nics: vm
                .nics
                .into_iter()
                .map(|n| SourceNic {
                    mac: n.mac,
                    network: n.network,
                    start_connected: n.start_connected,
                    device: n.device,
                    ips: n
                        .ips
                        .into_iter()
                        .map(|ip| SourceIp {
                            ip: ip.ip,
                            prefix: ip.prefix,
                            gateway: ip.gateway,
                            is_static: ip.is_static,
                        })
                        .collect(),
                })
                .collect(),
            snapshots: vm
                .snapshots
                .into_iter()
                .map(|s| SourceSnapshot {
                    id: s.id,
                    name: s.name,
                    created: s.created,
                })
                .collect(),
            host: vm.host,
            events: vm.events,
        }
    }
}

/// Percent-encodes a query or path value (unreserved characters stay).
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

impl LabSource {
    /// The lab's source endpoints.
    pub async fn endpoints(client: &kube::Client) -> Result<Vec<LabSourceInfo>, SourceError> {
        let value = call(
            client,
            http::Method::GET,
            "/lab/v1/sources",
            None,
            "list lab sources",
        )
        .await?;
        let list = value.get("items").cloned().unwrap_or(value);
        serde_json::from_value(list).map_err(|e| SourceError::Request {
            what: "list lab sources".into(),
            message: e.to_string(),
        })
    }

    /// The adapter for the lab source a provider profile points at (same type and URL).
    pub async fn for_profile(
        client: kube::Client,
        provider_type: ProviderType,
        url: &str,
    ) -> Result<LabSource, SourceError> {
        let endpoints = LabSource::endpoints(&client).await?;
        let source = endpoints
            .iter()
            .find(|e| e.provider_type == provider_type.as_str() && e.url == url)
            .ok_or_else(|| SourceError::Request {
                what: format!("find the lab source for {provider_type} {url}"),
                message: format!(
                    "the lab has no {provider_type} source at that URL (it has: {})",
                    endpoints
                        .iter()
                        .map(|e| format!("{} {}", e.provider_type, e.url))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        Ok(LabSource {
            client,
            provider_type,
            source: source.name.clone(),
        })
    }

    /// The lab file's name of this source (recorded in the ledger to delete clones later).
    pub fn source_name(&self) -> &str {
        &self.source
    }

    /// An adapter for a known lab source name (for `clean --ledger`).
    pub fn named(client: kube::Client, provider_type: ProviderType, source: &str) -> LabSource {
        LabSource {
            client,
            provider_type,
            source: source.to_string(),
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/lab/v1/sources/{}/{rest}", encode(&self.source))
    }

    async fn vm_call(
        &self,
        method: http::Method,
        rest: &str,
        body: Option<Value>,
        what: &str,
    ) -> Result<SourceVm, SourceError> {
        let value = call(&self.client, method, &self.path(rest), body, what).await?;
        let vm = value.get("vm").cloned().unwrap_or(value);
        let vm: LabVm = serde_json::from_value(vm).map_err(|e| SourceError::Request {
            what: what.to_string(),
            message: format!("unexpected answer: {e}"),
        })?;
        Ok(vm.into())
    }
}

async fn call(
    client: &kube::Client,
    method: http::Method,
    path: &str,
    body: Option<Value>,
    what: &str,
) -> Result<Value, SourceError> {
    let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(bytes)
        .map_err(|e| SourceError::Request {
            what: what.to_string(),
            message: e.to_string(),
        })?;
    let text = client
        .request_text(request)
        .await
        .map_err(|e| request_error(what, e))?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| SourceError::Request {
        what: what.to_string(),
        message: format!("unexpected answer: {e}"),
    })
}

impl SourceProvider for LabSource {
    fn provider_type(&self) -> ProviderType {
        self.provider_type
    }

    async fn find(&self, name: &str) -> Result<Option<SourceVm>, SourceError> {
        let what = format!("find source VM `{name}`");
        let value = call(
            &self.client,
            http::Method::GET,
            &self.path(&format!("vms?name={}", encode(name))),
            None,
            &what,
        )
        .await?;
        let list = value.get("items").cloned().unwrap_or(value);
        let vms: Vec<LabVm> = serde_json::from_value(list).map_err(|e| SourceError::Request {
            what: what.clone(),
            message: format!("unexpected answer: {e}"),
        })?;
        Ok(vms
            .into_iter()
            .find(|vm| vm.name == name)
            .map(SourceVm::from))
    }

    async fn facts(&self, id: &str) -> Result<SourceVm, SourceError> {
        self.vm_call(
            http::Method::GET,
            &format!("vms/{}", encode(id)),
            None,
            &format!("read source VM {id}"),
        )
        .await
        .map_err(|e| match e {
            SourceError::Rejected { status: 404, .. } => SourceError::NotFound(id.to_string()),
            other => other,
        })
    }

    async fn clone_vm(
        &self,
        source_id: &str,
        request: &CloneRequest,
    ) -> Result<SourceVm, SourceError> {
        let body = json!({
            "name": request.name,
            "power_state": request.power_on.map(|on| if on { "on" } else { "off" }),
            "cbt": request.cbt,
            "disk_type": request.disk_type,
            "target_datastore": request.target_datastore,
            "host": request.host,
            "add_disks": request.add_disks.iter().map(disk_body).collect::<Vec<_>>(),
            "regenerate_macs": true,
        });
        self.vm_call(
            http::Method::POST,
            &format!("vms/{}/clone", encode(source_id)),
            Some(body),
            &format!("clone source VM {source_id} to `{}`", request.name),
        )
        .await
    }

    async fn set_power(&self, id: &str, on: bool) -> Result<(), SourceError> {
        call(
            &self.client,
            http::Method::POST,
            &self.path(&format!("vms/{}/power", encode(id))),
            Some(json!({"state": if on { "on" } else { "off" }})),
            &format!("power {} source VM {id}", if on { "on" } else { "off" }),
        )
        .await
        .map(|_| ())
    }

    async fn add_disk(&self, id: &str, disk: &NewDisk) -> Result<(), SourceError> {
        call(
            &self.client,
            http::Method::POST,
            &self.path(&format!("vms/{}/disks", encode(id))),
            Some(disk_body(disk)),
            &format!("add a {} GiB disk to source VM {id}", disk.size_gib),
        )
        .await
        .map(|_| ())
    }

    async fn add_nic(
        &self,
        id: &str,
        network: &str,
        start_connected: bool,
    ) -> Result<String, SourceError> {
        let what = format!("add a NIC on {network} to source VM {id}");
        let value = call(
            &self.client,
            http::Method::POST,
            &self.path(&format!("vms/{}/nics", encode(id))),
            Some(json!({"network": network, "start_connected": start_connected})),
            &what,
        )
        .await?;
        value
            .get("mac")
            .or_else(|| value.pointer("/nic/mac"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(SourceError::Request {
                what,
                message: "the answer has no MAC".into(),
            })
    }

    async fn create_snapshot(&self, id: &str, name: &str) -> Result<SourceSnapshot, SourceError> {
        let what = format!("snapshot source VM {id}");
        let value = call(
            &self.client,
            http::Method::POST,
            &self.path(&format!("vms/{}/snapshots", encode(id))),
            Some(json!({"name": name})),
            &what,
        )
        .await?;
        let snapshot = value.get("snapshot").cloned().unwrap_or(value);
        let snapshot: LabSnapshot =
            serde_json::from_value(snapshot).map_err(|e| SourceError::Request {
                what,
                message: format!("unexpected answer: {e}"),
            })?;
        Ok(SourceSnapshot {
            id: snapshot.id,
            name: snapshot.name,
            created: snapshot.created,
        })
    }

    async fn write_guest_file(
        &self,
        id: &str,
        path: &str,
        content: &str,
    ) -> Result<(), SourceError> {
        let what = format!("write {path} in the guest of source VM {id}");
        call(
            &self.client,
            http::Method::POST,
            &self.path(&format!("vms/{}/files", encode(id))),
            Some(json!({"path": path, "content": content})),
            &what,
        )
        .await?;
        Ok(())
    }

    async fn read_guest_file(&self, id: &str, path: &str) -> Result<Option<String>, SourceError> {
        let what = format!("read {path} in the guest of source VM {id}");
        let answer = call(
            &self.client,
            http::Method::GET,
            &self.path(&format!("vms/{}/files?path={}", encode(id), encode(path))),
            None,
            &what,
        )
        .await;
        match answer {
            Ok(value) => Ok(value["content"].as_str().map(str::to_string)),
            // A missing file is an answer; a missing VM stays an error.
            Err(SourceError::Rejected {
                status: 404,
                message,
                ..
            }) if message.contains("FileNotFound") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn ca_certificate(&self) -> Result<String, SourceError> {
        let what = "read the source's CA certificate";
        let value = call(
            &self.client,
            http::Method::GET,
            &self.path("ca.crt"),
            None,
            what,
        )
        .await?;
        value
            .get("pem")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(SourceError::Request {
                what: what.to_string(),
                message: "the answer has no `pem`".into(),
            })
    }

    async fn delete_vm(&self, id: &str) -> Result<(), SourceError> {
        match call(
            &self.client,
            http::Method::DELETE,
            &self.path(&format!("vms/{}", encode(id))),
            None,
            &format!("delete source VM {id}"),
        )
        .await
        {
            Ok(_) | Err(SourceError::Rejected { status: 404, .. }) => Ok(()),
            Err(other) => Err(other),
        }
    }
}

fn disk_body(disk: &NewDisk) -> Value {
    json!({
        // RDM disks take their size from the LUN.
        "size_gib": (disk.size_gib > 0).then_some(disk.size_gib),
        "provisioning": disk.provisioning,
        "mode": disk.mode,
        "datastore": disk.datastore,
        "rdm": disk.rdm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_for_paths_and_queries() {
        assert_eq!(encode("mtv-tests_rhel8.v1"), "mtv-tests_rhel8.v1");
        assert_eq!(encode("XCopy Test/VM"), "XCopy%20Test%2FVM");
    }

    #[test]
    fn lab_vm_documents_map_to_source_facts() {
        let vm: LabVm = serde_json::from_value(json!({
            "id": "vm-1", "name": "rhel8", "power_state": "on", "memory_mib": 2048,
            "guest_os": "rhel8_64Guest", "uuid": "42", "cbt": true, "tools": "ok",
            "disks": [{"key": 2000, "file": "[ds1] rhel8/rhel8.vmdk", "datastore": "datastore-1", "capacity_gib": 30, "unit_number": 0}],
            "nics": [{"mac": "00:50:56:00:00:01", "network": "network-1", "ips": [{"ip": "10.0.0.5", "prefix": 24, "static": true}]}]
        }))
        .unwrap();
        let facts = SourceVm::from(vm);
        assert!(facts.powered_on && facts.cbt);
        assert_eq!(facts.disks[0].provisioning, "thin");
        assert!(facts.nics[0].ips[0].is_static);
        assert_eq!(facts.cpu_sockets, 1);
    }
}
