//! Neutron v2.0: networks, the subnets the VMs' addresses sit on, and a port for every server NIC
//! (its MAC, network and fixed addresses); plus how Nova shows those ports (addresses, interfaces).

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::super::model::{GuestIp, Nic, SourceProviderSpec, Vm};
use super::{Api, ApiResult, Base, Fault, NETWORK_PREFIX, reply};
use crate::inventory::render::stable_uuid;

pub(super) fn version_routes() -> Router<Api> {
    Router::new()
        .route(NETWORK_PREFIX, get(versions))
        .route(&format!("{NETWORK_PREFIX}/"), get(versions))
}

pub(super) fn routes() -> Router<Api> {
    let p = format!("{NETWORK_PREFIX}/v2.0");
    Router::new()
        .route(&format!("{p}/networks"), get(list_networks))
        .route(&format!("{p}/networks/{{id}}"), get(get_network))
        .route(&format!("{p}/subnets"), get(list_subnets))
        .route(&format!("{p}/subnets/{{id}}"), get(get_subnet))
        .route(&format!("{p}/ports"), get(list_ports))
        .route(&format!("{p}/ports/{{id}}"), get(get_port))
}

async fn versions(Base(base): Base) -> Response {
    Json(json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"rel": "self", "href": format!("{base}{NETWORK_PREFIX}/v2.0/")}],
    }]}))
    .into_response()
}

/// Neutron's error body.
fn not_found(kind: &str, id: &str) -> Fault {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"NeutronError": {
            "type": format!("{kind}NotFound"),
            "message": format!("{kind} {id} could not be found."),
            "detail": "",
        }})),
    )
        .into_response()
        .into()
}

/// The network address of `ip/prefix` as `a.b.c.0/24` (or the IPv6 equivalent).
fn cidr(ip: &GuestIp) -> Option<String> {
    let address: IpAddr = ip.ip.parse().ok()?;
    let network = match address {
        IpAddr::V4(v4) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(ip.prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(ip.prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    };
    Some(format!("{network}/{}", ip.prefix))
}

/// A subnet the VMs' addresses sit on.
#[derive(Debug, Clone)]
struct Subnet {
    id: String,
    network: String,
    cidr: String,
    gateway: Option<String>,
    ipv6: bool,
}

fn subnet_id(network: &str, cidr: &str) -> String {
    stable_uuid(&format!("subnet/{network}/{cidr}"))
}

/// The subnets of a provider: one per network and address range its VMs use.
fn subnets(spec: &SourceProviderSpec) -> Vec<Subnet> {
    let mut found: BTreeMap<(String, String), Subnet> = BTreeMap::new();
    for nic in spec.vms.iter().flat_map(|vm| vm.nics.iter()) {
        for ip in &nic.ips {
            let Some(cidr) = cidr(ip) else { continue };
            let entry = found
                .entry((nic.network.clone(), cidr.clone()))
                .or_insert_with(|| Subnet {
                    id: subnet_id(&nic.network, &cidr),
                    network: nic.network.clone(),
                    ipv6: cidr.contains(':'),
                    cidr,
                    gateway: None,
                });
            if entry.gateway.is_none() {
                entry.gateway = ip.gateway.clone();
            }
        }
    }
    found.into_values().collect()
}

/// The id of the port a NIC is (MACs are unique lab-wide).
pub(super) fn port_id(mac: &str) -> String {
    stable_uuid(&format!("port/{}", mac.to_ascii_lowercase()))
}

fn fixed_ips(nic: &Nic) -> Vec<Value> {
    nic.ips
        .iter()
        .filter_map(|ip| {
            let cidr = cidr(ip)?;
            Some(json!({"subnet_id": subnet_id(&nic.network, &cidr), "ip_address": ip.ip}))
        })
        .collect()
}

/// A server's `addresses`: its NICs' fixed addresses by network name.
pub(super) fn server_addresses(spec: &SourceProviderSpec, vm: &Vm) -> Value {
    let mut addresses = Map::new();
    for nic in &vm.nics {
        let name = spec
            .networks
            .iter()
            .find(|n| n.id == nic.network)
            .map_or(nic.network.clone(), |n| n.name.clone());
        let entry = addresses
            .entry(name)
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            for ip in &nic.ips {
                let version = if ip.ip.contains(':') { 6 } else { 4 };
                list.push(json!({
                    "OS-EXT-IPS-MAC:mac_addr": nic.mac,
                    "OS-EXT-IPS:type": "fixed",
                    "addr": ip.ip,
                    "version": version,
                }));
            }
        }
    }
    Value::Object(addresses)
}

/// The guest device a volume attached `index`-th gets (`/dev/vda`, `/dev/vdb`, ...).
pub(super) fn device_name(index: usize) -> String {
    format!("/dev/vd{}", (b'a' + (index.min(25) as u8)) as char)
}

/// A NIC as Nova's `os-interface` shows it.
pub(super) fn interface_attachment(_spec: &SourceProviderSpec, nic: &Nic) -> Value {
    json!({
        "port_id": port_id(&nic.mac),
        "net_id": nic.network,
        "mac_addr": nic.mac,
        "port_state": if nic.start_connected { "ACTIVE" } else { "DOWN" },
        "fixed_ips": fixed_ips(nic),
    })
}

fn network_document(spec: &SourceProviderSpec, project: &str, id: &str) -> Option<Value> {
    let network = spec.networks.iter().find(|n| n.id == id)?;
    let subnet_ids: Vec<String> = subnets(spec)
        .into_iter()
        .filter(|s| s.network == id)
        .map(|s| s.id)
        .collect();
    Some(json!({
        "id": network.id,
        "name": network.name,
        "status": "ACTIVE",
        "admin_state_up": true,
        "subnets": subnet_ids,
        "shared": false,
        "tenant_id": project,
        "project_id": project,
        "mtu": 1442,
        "router:external": false,
        "provider:network_type": if network.vlan.is_some() { "vlan" } else { "geneve" },
        "provider:physical_network": null,
        "provider:segmentation_id": network.vlan,
        "availability_zones": ["nova"],
        "availability_zone_hints": [],
        "port_security_enabled": true,
        "ipv4_address_scope": null,
        "ipv6_address_scope": null,
        "description": "",
        "tags": [],
        "revision_number": 1,
    }))
}

fn subnet_document(spec: &SourceProviderSpec, project: &str, subnet: &Subnet) -> Value {
    let network_name = spec
        .networks
        .iter()
        .find(|n| n.id == subnet.network)
        .map_or("", |n| n.name.as_str());
    json!({
        "id": subnet.id,
        "name": format!("{network_name}-subnet"),
        "network_id": subnet.network,
        "cidr": subnet.cidr,
        "ip_version": if subnet.ipv6 { 6 } else { 4 },
        "gateway_ip": subnet.gateway,
        "enable_dhcp": true,
        "allocation_pools": [],
        "dns_nameservers": [],
        "host_routes": [],
        "tenant_id": project,
        "project_id": project,
        "description": "",
        "tags": [],
        "revision_number": 1,
    })
}

fn port_document(project: &str, vm: &Vm, nic: &Nic) -> Value {
    json!({
        "id": port_id(&nic.mac),
        "name": "",
        "network_id": nic.network,
        "mac_address": nic.mac,
        "fixed_ips": fixed_ips(nic),
        "device_id": vm.id,
        "device_owner": "compute:nova",
        "status": if nic.start_connected { "ACTIVE" } else { "DOWN" },
        "admin_state_up": nic.start_connected,
        "binding:host_id": vm.host,
        "binding:vnic_type": "normal",
        "tenant_id": project,
        "project_id": project,
        "security_groups": [],
        "description": "",
        "tags": [],
        "revision_number": 1,
    })
}

/// Neutron's list filters: a document passes when each given field equals the query's value.
fn passes(document: &Value, query: &BTreeMap<String, String>) -> bool {
    query.iter().all(|(key, wanted)| match document.get(key) {
        None => true,
        Some(Value::String(s)) => s == wanted,
        Some(Value::Bool(b)) => b.to_string() == *wanted,
        Some(Value::Number(n)) => n.to_string() == *wanted,
        Some(_) => true,
    })
}

fn spec_or_404(api: &Api) -> Result<SourceProviderSpec, Fault> {
    api.spec()
        .map_err(|e| not_found("Provider", &e.to_string()))
}

async fn list_networks(
    State(api): State<Api>,
    Query(query): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let spec = spec_or_404(&api)?;
    let project = api.project_id();
    let list: Vec<Value> = spec
        .networks
        .iter()
        .filter_map(|n| network_document(&spec, &project, &n.id))
        .filter(|d| passes(d, &query))
        .collect();
    reply(StatusCode::OK, json!({"networks": list}))
}

async fn get_network(State(api): State<Api>, Path(id): Path<String>) -> ApiResult {
    let spec = spec_or_404(&api)?;
    let document =
        network_document(&spec, &api.project_id(), &id).ok_or_else(|| not_found("Network", &id))?;
    reply(StatusCode::OK, json!({"network": document}))
}

async fn list_subnets(
    State(api): State<Api>,
    Query(query): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let spec = spec_or_404(&api)?;
    let project = api.project_id();
    let list: Vec<Value> = subnets(&spec)
        .iter()
        .map(|s| subnet_document(&spec, &project, s))
        .filter(|d| passes(d, &query))
        .collect();
    reply(StatusCode::OK, json!({"subnets": list}))
}

async fn get_subnet(State(api): State<Api>, Path(id): Path<String>) -> ApiResult {
    let spec = spec_or_404(&api)?;
    let subnet = subnets(&spec)
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| not_found("Subnet", &id))?;
    reply(
        StatusCode::OK,
        json!({"subnet": subnet_document(&spec, &api.project_id(), &subnet)}),
    )
}

/// Every server NIC as a port, in each server's NIC order.
fn ports(spec: &SourceProviderSpec, project: &str) -> Vec<Value> {
    spec.vms
        .iter()
        .filter(|vm| !vm.template)
        .flat_map(|vm| {
            vm.nics
                .iter()
                .map(move |nic| port_document(project, vm, nic))
        })
        .collect()
}

async fn list_ports(
    State(api): State<Api>,
    Query(query): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let spec = spec_or_404(&api)?;
    let list: Vec<Value> = ports(&spec, &api.project_id())
        .into_iter()
        .filter(|d| passes(d, &query))
        .collect();
    reply(StatusCode::OK, json!({"ports": list}))
}

async fn get_port(State(api): State<Api>, Path(id): Path<String>) -> ApiResult {
    let spec = spec_or_404(&api)?;
    let port = ports(&spec, &api.project_id())
        .into_iter()
        .find(|p| p["id"] == id.as_str())
        .ok_or_else(|| not_found("Port", &id))?;
    reply(StatusCode::OK, json!({"port": port}))
}
