//! A server's facts from the OpenStack APIs: Nova's server and flavor (CPU, memory, power, host),
//! Cinder's volumes in boot order (size, type), Neutron's ports and subnets (MACs, networks,
//! addresses), the boot volume's image metadata (firmware, guest agent) and Glance's snapshot images.

use std::collections::BTreeMap;

use http::Method;
use serde_json::Value;

use super::OpenstackSource;
use super::client::{CallError, Service, call_error};
use crate::{SourceDisk, SourceError, SourceIp, SourceNic, SourceSnapshot, SourceVm};

/// The pieces of a server the clone needs besides its facts.
#[derive(Debug, Clone)]
pub(crate) struct ServerShape {
    pub name: String,
    pub flavor_id: String,
    /// Attached volumes in boot order: id, size (GiB), type name.
    pub volumes: Vec<(String, u64, String)>,
    /// Network of each port, in port order.
    pub networks: Vec<String>,
}

/// The `/dev/vdX` letter order of a volume's attachment to `server`, for boot order.
fn device_of(volume: &Value, server: &str) -> String {
    volume["attachments"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["server_id"] == server)
        .and_then(|a| a["device"].as_str())
        .unwrap_or("~")
        .to_string()
}

impl OpenstackSource {
    /// `GET` of a document; `None` on 404.
    pub(crate) async fn get_opt(
        &self,
        service: Service,
        path: &str,
    ) -> Result<Option<Value>, CallError> {
        match self.client.call(service, Method::GET, path, None).await {
            Ok(v) => Ok(Some(v)),
            Err(CallError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The server document, `NotFound` when there is none.
    pub(crate) async fn server(&self, id: &str) -> Result<Value, SourceError> {
        let what = format!("read OpenStack server {id}");
        match self
            .get_opt(Service::Compute, &format!("/servers/{id}"))
            .await
        {
            Ok(Some(v)) => Ok(v["server"].clone()),
            Ok(None) => Err(SourceError::NotFound(id.to_string())),
            Err(e) => Err(call_error(&what, e)),
        }
    }

    /// Volume type name → id (Cinder shows names on volumes; the suite's disks carry ids).
    async fn volume_types(&self, what: &str) -> Result<BTreeMap<String, String>, SourceError> {
        let types = self.get(what, Service::Volume, "/types").await?;
        Ok(types["volume_types"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some((
                    t["name"].as_str()?.to_string(),
                    t["id"].as_str()?.to_string(),
                ))
            })
            .collect())
    }

    /// The server's attached volumes (documents), in boot order.
    async fn attached_volumes(
        &self,
        server: &Value,
        what: &str,
    ) -> Result<Vec<Value>, SourceError> {
        let id = server["id"].as_str().unwrap_or_default();
        let mut volumes = Vec::new();
        for attached in server["os-extended-volumes:volumes_attached"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let volume_id = attached["id"].as_str().unwrap_or_default();
            let volume = self
                .get(what, Service::Volume, &format!("/volumes/{volume_id}"))
                .await?;
            volumes.push(volume["volume"].clone());
        }
        volumes.sort_by_key(|v| device_of(v, id));
        Ok(volumes)
    }

    /// The server's ports, in Neutron's order.
    async fn ports(&self, id: &str, what: &str) -> Result<Vec<Value>, SourceError> {
        let ports = self
            .get(what, Service::Network, &format!("/ports?device_id={id}"))
            .await?;
        Ok(ports["ports"].as_array().cloned().unwrap_or_default())
    }

    /// What a clone of the server needs: flavor, volumes in boot order, networks.
    pub(crate) async fn shape(&self, id: &str) -> Result<ServerShape, SourceError> {
        let what = format!("read OpenStack server {id}");
        let server = self.server(id).await?;
        let volumes = self.attached_volumes(&server, &what).await?;
        let ports = self.ports(id, &what).await?;
        Ok(ServerShape {
            name: server["name"].as_str().unwrap_or_default().to_string(),
            flavor_id: server["flavor"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            volumes: volumes
                .iter()
                .map(|v| {
                    (
                        v["id"].as_str().unwrap_or_default().to_string(),
                        v["size"].as_u64().unwrap_or(0),
                        v["volume_type"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            networks: ports
                .iter()
                .filter_map(|p| p["network_id"].as_str().map(str::to_string))
                .collect(),
        })
    }

    /// A server's facts.
    pub(crate) async fn server_facts(&self, id: &str) -> Result<SourceVm, SourceError> {
        let what = format!("read the facts of OpenStack server {id}");
        let server = self.server(id).await?;
        let flavor_id = server["flavor"]["id"].as_str().unwrap_or_default();
        let flavor = self
            .get(&what, Service::Compute, &format!("/flavors/{flavor_id}"))
            .await?;
        let flavor = &flavor["flavor"];
        let volumes = self.attached_volumes(&server, &what).await?;
        let types = self.volume_types(&what).await?;
        let disks = volumes
            .iter()
            .enumerate()
            .map(|(index, v)| {
                let type_name = v["volume_type"].as_str().unwrap_or_default();
                SourceDisk::unattached(
                    v["id"].as_str().unwrap_or_default().to_string(),
                    types
                        .get(type_name)
                        .cloned()
                        .unwrap_or_else(|| type_name.to_string()),
                    v["size"].as_u64().unwrap_or(0),
                    index,
                )
            })
            .collect();
        let nics = self.nics(id, &what).await?;
        let image = volumes
            .first()
            .map(|v| v["volume_image_metadata"].clone())
            .unwrap_or(Value::Null);
        let on = server["status"] == "ACTIVE";
        Ok(SourceVm {
            id: id.to_string(),
            name: server["name"].as_str().unwrap_or_default().to_string(),
            powered_on: on,
            template: false,
            cpu_sockets: flavor["vcpus"].as_u64().unwrap_or(1) as u32,
            cores_per_socket: 1,
            memory_mib: flavor["ram"].as_u64().unwrap_or(0),
            firmware: if image["hw_firmware_type"] == "uefi" {
                "efi"
            } else {
                "bios"
            }
            .into(),
            uuid: id.to_string(),
            guest_agent: image["hw_qemu_guest_agent"] == "yes",
            cbt: false,
            disks,
            nics,
            snapshots: self.snapshot_images(id, &what).await?,
            host: server["OS-EXT-SRV-ATTR:host"]
                .as_str()
                .filter(|h| !h.is_empty())
                .map(str::to_string),
            events: Vec::new(),
        })
    }

    /// The server's NICs: each port's MAC, network and addresses (prefix and gateway from its subnet).
    async fn nics(&self, id: &str, what: &str) -> Result<Vec<SourceNic>, SourceError> {
        let mut subnets: BTreeMap<String, Value> = BTreeMap::new();
        let mut nics = Vec::new();
        for port in self.ports(id, what).await? {
            let mut ips = Vec::new();
            for fixed in port["fixed_ips"].as_array().into_iter().flatten() {
                let subnet_id = fixed["subnet_id"].as_str().unwrap_or_default().to_string();
                if !subnets.contains_key(&subnet_id) {
                    let subnet = self
                        .get_opt(Service::Network, &format!("/subnets/{subnet_id}"))
                        .await
                        .map_err(|e| call_error(what, e))?
                        .map(|s| s["subnet"].clone())
                        .unwrap_or(Value::Null);
                    subnets.insert(subnet_id.clone(), subnet);
                }
                let subnet = &subnets[&subnet_id];
                let prefix = subnet["cidr"]
                    .as_str()
                    .and_then(|c| c.rsplit_once('/'))
                    .and_then(|(_, p)| p.parse().ok())
                    .unwrap_or(32);
                ips.push(SourceIp {
                    ip: fixed["ip_address"].as_str().unwrap_or_default().to_string(),
                    prefix,
                    gateway: subnet["gateway_ip"].as_str().map(str::to_string),
                    // Neutron hands out fixed addresses; a guest's own static configuration is not
                    // visible through the API.
                    is_static: false,
                });
            }
            nics.push(SourceNic {
                mac: port["mac_address"].as_str().unwrap_or_default().to_string(),
                network: port["network_id"].as_str().unwrap_or_default().to_string(),
                start_connected: port["admin_state_up"].as_bool().unwrap_or(true),
                device: None,
                ips,
            });
        }
        Ok(nics)
    }

    /// The Glance images Nova's `createImage` made of the server: its snapshots.
    pub(crate) async fn snapshot_images(
        &self,
        id: &str,
        what: &str,
    ) -> Result<Vec<SourceSnapshot>, SourceError> {
        let images = self
            .get(what, Service::Image, &format!("/images?instance_uuid={id}"))
            .await?;
        Ok(images["images"]
            .as_array()
            .into_iter()
            .flatten()
            // Glance filters on properties; a cloud that ignores the filter still says which server.
            .filter(|i| i["instance_uuid"] == id)
            .map(|i| SourceSnapshot {
                id: i["id"].as_str().unwrap_or_default().to_string(),
                name: i["name"].as_str().unwrap_or_default().to_string(),
                created: i["created_at"].as_str().unwrap_or_default().to_string(),
            })
            .collect())
    }
}
