//! Nova (compute API v2.1, microversions up to 2.88 as Wallaby, OSP 17.1, serves them): servers
//! (list, detail, boot from volumes, delete), the start, stop and createImage actions, volume and
//! interface attachments, flavors.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::super::model::{Flavor, PowerState, SourceProviderSpec, Vm};
use super::super::{NewNic, PowerAction};
use super::store::NewServer;
use super::{
    Api, ApiResult, Base, COMPUTE_PREFIX, Fault, fault, json_body, model_fault, network, reply,
    spec_of,
};
use crate::random;

/// The newest microversion the lab's Nova serves.
const MAX_MICROVERSION: (u32, u32) = (2, 88);
/// From this microversion on, a server embeds its flavor instead of linking it.
const EMBEDDED_FLAVOR: (u32, u32) = (2, 47);

pub(super) fn version_routes() -> Router<Api> {
    Router::new()
        .route(COMPUTE_PREFIX, get(versions))
        .route(&format!("{COMPUTE_PREFIX}/"), get(versions))
        .route(&format!("{COMPUTE_PREFIX}/v2.1"), get(version))
        .route(&format!("{COMPUTE_PREFIX}/v2.1/"), get(version))
}

pub(super) fn routes() -> Router<Api> {
    let p = format!("{COMPUTE_PREFIX}/v2.1");
    Router::new()
        .route(
            &format!("{p}/servers"),
            get(list_servers).post(create_server),
        )
        .route(&format!("{p}/servers/detail"), get(list_servers))
        .route(
            &format!("{p}/servers/{{id}}"),
            get(get_server).delete(delete_server),
        )
        .route(&format!("{p}/servers/{{id}}/action"), post(server_action))
        .route(
            &format!("{p}/servers/{{id}}/os-volume_attachments"),
            get(list_volume_attachments).post(attach_volume),
        )
        .route(
            &format!("{p}/servers/{{id}}/os-volume_attachments/{{volume}}"),
            get(get_volume_attachment).delete(detach_volume),
        )
        .route(
            &format!("{p}/servers/{{id}}/os-interface"),
            get(list_interfaces).post(attach_interface),
        )
        .route(&format!("{p}/flavors"), get(list_flavors))
        .route(&format!("{p}/flavors/detail"), get(list_flavors))
        .route(&format!("{p}/flavors/{{id}}"), get(get_flavor))
        .layer(axum::middleware::from_fn(echo_microversion))
}

fn v21_document(base: &str) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": format!("{}.{}", MAX_MICROVERSION.0, MAX_MICROVERSION.1),
        "min_version": "2.1",
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{base}{COMPUTE_PREFIX}/v2.1/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}],
    })
}

async fn versions(Base(base): Base) -> Response {
    Json(json!({"versions": [v21_document(&base)]})).into_response()
}

async fn version(Base(base): Base) -> Response {
    Json(json!({"version": v21_document(&base)})).into_response()
}

/// The microversion a request asks for (`OpenStack-API-Version: compute 2.x` or the legacy
/// header); 2.1 when it names none.
fn microversion(headers: &HeaderMap) -> Result<(u32, u32), String> {
    let requested = super::requested_microversion(headers, "compute").or_else(|| {
        headers
            .get("x-openstack-nova-api-version")
            .and_then(|v| v.to_str().ok())
    });
    super::microversion_in(requested, (2, 1), MAX_MICROVERSION)
}

/// Answers with the microversion served, and refuses one out of range (406), as Nova does.
async fn echo_microversion(request: Request, next: Next) -> Response {
    let version = match microversion(request.headers()) {
        Ok(v) => v,
        Err(message) => return fault(StatusCode::NOT_ACCEPTABLE, message).into_response(),
    };
    let mut response = next.run(request).await;
    let text = format!("{}.{}", version.0, version.1);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("compute {text}")) {
        headers.insert("openstack-api-version", value);
    }
    if let Ok(value) = HeaderValue::from_str(&text) {
        headers.insert("x-openstack-nova-api-version", value);
    }
    headers.insert(
        "vary",
        HeaderValue::from_static("OpenStack-API-Version, X-OpenStack-Nova-API-Version"),
    );
    response
}

fn servers(spec: &SourceProviderSpec) -> impl Iterator<Item = &Vm> {
    spec.vms.iter().filter(|vm| !vm.template)
}

fn server_of<'a>(spec: &'a SourceProviderSpec, id: &str) -> Result<&'a Vm, Fault> {
    servers(spec).find(|vm| vm.id == id).ok_or_else(|| {
        fault(
            StatusCode::NOT_FOUND,
            format!("Instance {id} could not be found."),
        )
    })
}

/// How a request wants Nova's documents: where the client reaches the API, the project, the
/// microversion it asks for (`echo_microversion` has refused one out of range) and whether a listing
/// is the detailed one (`…/detail`).
struct View {
    base: String,
    project: String,
    version: (u32, u32),
    detail: bool,
}

impl FromRequestParts<Api> for View {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Self::Rejection> {
        let Ok(Base(base)) = Base::from_request_parts(parts, api).await;
        Ok(View {
            base,
            project: api.project_id(),
            version: microversion(&parts.headers).unwrap_or((2, 1)),
            detail: parts.uri.path().ends_with("/detail"),
        })
    }
}

impl View {
    /// The `links` of a server or flavor.
    fn links(&self, kind: &str, id: &str) -> Value {
        let base = &self.base;
        json!([
            {"rel": "self", "href": format!("{base}{COMPUTE_PREFIX}/v2.1/{kind}/{id}")},
            {"rel": "bookmark", "href": format!("{base}{COMPUTE_PREFIX}/{kind}/{id}")},
            {"rel": "project", "href": self.project},
        ])
    }

    /// A server or flavor as a plain listing shows it.
    fn summary(&self, kind: &str, id: &str, name: &str) -> Value {
        json!({"id": id, "name": name, "links": self.links(kind, id)})
    }
}

/// A server as `GET /servers/{id}` shows it at the view's microversion.
fn server_document(spec: &SourceProviderSpec, vm: &Vm, view: &View) -> Value {
    let (base, project) = (&view.base, &view.project);
    let on = vm.power_state == PowerState::On;
    let flavor = spec
        .flavors
        .iter()
        .find(|f| vm.flavor.as_deref() == Some(f.id.as_str()));
    let flavor = match flavor {
        Some(f) if view.version >= EMBEDDED_FLAVOR => json!({
            "vcpus": f.vcpus,
            "ram": f.ram_mib,
            "disk": f.disk_gib,
            "ephemeral": 0,
            "swap": 0,
            "original_name": f.name,
            "extra_specs": {},
        }),
        Some(f) => {
            json!({"id": f.id, "links": [{"rel": "bookmark", "href": format!("{base}{COMPUTE_PREFIX}/flavors/{}", f.id)}]})
        }
        None => json!({}),
    };
    let records: BTreeMap<&str, bool> = spec
        .openstack
        .volumes
        .iter()
        .map(|v| (v.id.as_str(), v.delete_on_termination))
        .collect();
    let volumes: Vec<Value> = vm
        .disks
        .iter()
        .map(|d| {
            json!({
                "id": d.file,
                "delete_on_termination": records.get(d.file.as_str()).copied().unwrap_or(false),
            })
        })
        .collect();
    let host = vm.host.clone().unwrap_or_default();
    let host_id =
        crate::inventory::render::stable_uuid(&format!("{project}/{host}")).replace('-', "");
    json!({
        "id": vm.id,
        "name": vm.name,
        "status": if on { "ACTIVE" } else { "SHUTOFF" },
        "tenant_id": project,
        "user_id": super::identity::user_id(spec.username.as_deref().unwrap_or_default()),
        "created": vm.events.first().map_or("2024-01-01T00:00:00Z", |e| e.time.as_str()),
        "updated": vm.events.last().map_or("2024-01-01T00:00:00Z", |e| e.time.as_str()),
        "hostId": host_id,
        "host_status": "UP",
        "OS-EXT-SRV-ATTR:host": host,
        "OS-EXT-SRV-ATTR:hypervisor_hostname": host,
        "OS-EXT-SRV-ATTR:instance_name": format!("instance-{:08x}", crate::inventory::render::fnv(&vm.id) as u32),
        "OS-EXT-STS:power_state": if on { 1 } else { 4 },
        "OS-EXT-STS:vm_state": if on { "active" } else { "stopped" },
        "OS-EXT-STS:task_state": null,
        "OS-EXT-AZ:availability_zone": "nova",
        "OS-SRV-USG:launched_at": "2024-01-01T00:00:00.000000",
        "OS-SRV-USG:terminated_at": null,
        "OS-DCF:diskConfig": "MANUAL",
        "accessIPv4": "",
        "accessIPv6": "",
        "addresses": network::server_addresses(spec, vm),
        "config_drive": "",
        "flavor": flavor,
        // Booted from a volume: no image.
        "image": "",
        "key_name": null,
        "metadata": {},
        "os-extended-volumes:volumes_attached": volumes,
        "progress": 0,
        "security_groups": [{"name": "default"}],
        "locked": false,
        "description": null,
        "tags": [],
        "trusted_image_certificates": null,
        "links": view.links("servers", &vm.id),
    })
}

/// `GET /servers` (id, name and links) and `GET /servers/detail`.
async fn list_servers(
    State(api): State<Api>,
    view: View,
    Query(query): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let spec = spec_of(&api)?;
    let list: Vec<Value> = filtered(&spec, &query)
        .map(|vm| match view.detail {
            true => server_document(&spec, vm, &view),
            false => view.summary("servers", &vm.id, &vm.name),
        })
        .collect();
    reply(StatusCode::OK, json!({"servers": list}))
}

/// Servers passing the `name` (regular expression) and `status` filters.
fn filtered<'a>(
    spec: &'a SourceProviderSpec,
    query: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = &'a Vm> {
    servers(spec).filter(move |vm| {
        let status = if vm.power_state == PowerState::On {
            "ACTIVE"
        } else {
            "SHUTOFF"
        };
        super::name_matches(query.get("name"), &vm.name)
            && query
                .get("status")
                .is_none_or(|s| s.eq_ignore_ascii_case(status))
    })
}

async fn get_server(State(api): State<Api>, view: View, Path(id): Path<String>) -> ApiResult {
    let spec = spec_of(&api)?;
    let vm = server_of(&spec, &id)?;
    reply(
        StatusCode::OK,
        json!({"server": server_document(&spec, vm, &view)}),
    )
}

/// The last path segment of a reference that may be a URL (`flavorRef`).
fn last_segment(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

/// Reads `POST /servers`' body into the model's request.
fn new_server(spec: &SourceProviderSpec, body: &Value) -> Result<NewServer, Fault> {
    let server = &body["server"];
    let bad = |m: &str| fault(StatusCode::BAD_REQUEST, m.to_string());
    let name = server["name"].as_str().ok_or_else(|| {
        bad("Invalid input for field/attribute server: 'name' is a required property")
    })?;
    let flavor = server["flavorRef"]
        .as_str()
        .map(last_segment)
        .ok_or_else(|| {
            bad("Invalid input for field/attribute server: 'flavorRef' is a required property")
        })?;
    let flavor = spec
        .flavors
        .iter()
        .find(|f| f.id == flavor || f.name == flavor)
        .map(|f| f.id.clone())
        .ok_or_else(|| bad(&format!("Flavor {flavor} could not be found.")))?;
    let networks = match &server["networks"] {
        Value::String(s) if s == "none" => Vec::new(),
        Value::String(s) if s == "auto" => spec.networks.iter().take(1).map(|n| n.id.clone()).collect(),
        Value::Array(list) => list
            .iter()
            .map(|n| {
                n["uuid"].as_str().map(str::to_string).ok_or_else(|| {
                    bad("The lab's Nova attaches networks by uuid; give networks: [{\"uuid\": ...}]")
                })
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad("Invalid input for field/attribute networks: a list of {\"uuid\": ...}, \"auto\" or \"none\" is required")),
    };
    let mut mappings: Vec<&Value> = server["block_device_mapping_v2"]
        .as_array()
        .map(|l| l.iter().collect())
        .unwrap_or_default();
    if mappings.iter().any(|m| m["source_type"] != "volume") {
        return Err(bad(
            "The lab's Nova boots from existing volumes only (source_type volume, destination_type volume)",
        ));
    }
    // Boot order: boot_index 0, 1, ... first; mappings without one (or -1) after them.
    mappings.sort_by_key(|m| {
        m["boot_index"]
            .as_i64()
            .filter(|i| *i >= 0)
            .unwrap_or(i64::MAX)
    });
    let volumes = mappings
        .iter()
        .map(|m| {
            let id = m["uuid"]
                .as_str()
                .ok_or_else(|| bad("a block device mapping needs uuid"))?;
            Ok((
                id.to_string(),
                m["delete_on_termination"].as_bool().unwrap_or(false),
            ))
        })
        .collect::<Result<_, Fault>>()?;
    let host = server["availability_zone"]
        .as_str()
        .and_then(|zone| zone.split_once(':'))
        .map(|(_, host)| host.to_string());
    Ok(NewServer {
        name: name.to_string(),
        flavor,
        networks,
        volumes,
        host,
    })
}

async fn create_server(State(api): State<Api>, view: View, body: String) -> ApiResult {
    let body = json_body(&body)?;
    let spec = spec_of(&api)?;
    let request = new_server(&spec, &body)?;
    let vm = api
        .lab
        .boot_server(&api.provider, &request)
        .map_err(model_fault)?;
    reply(
        StatusCode::ACCEPTED,
        json!({"server": {
            "id": vm.id,
            "links": view.links("servers", &vm.id),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
            "adminPass": random::name_suffix(12),
        }}),
    )
}

async fn delete_server(State(api): State<Api>, Path(id): Path<String>) -> ApiResult {
    api.lab
        .delete_server(&api.provider, &id)
        .map_err(model_fault)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /servers/{id}/action`: `os-start`, `os-stop`, `createImage`, `reboot`.
async fn server_action(
    State(api): State<Api>,
    Base(base): Base,
    Path(id): Path<String>,
    body: String,
) -> ApiResult {
    let body = json_body(&body)?;
    let spec = spec_of(&api)?;
    let vm = server_of(&spec, &id)?;
    let on = vm.power_state == PowerState::On;
    if body.get("os-start").is_some() || body.get("os-stop").is_some() {
        let start = body.get("os-start").is_some();
        if start == on {
            let (verb, state) = if on {
                ("start", "active")
            } else {
                ("stop", "stopped")
            };
            return Err(fault(
                StatusCode::CONFLICT,
                format!("Cannot '{verb}' instance {id} while it is in vm_state {state}"),
            ));
        }
        let action = if start {
            PowerAction::Start
        } else {
            PowerAction::Stop
        };
        api.lab
            .set_power(&api.provider, &id, action)
            .map_err(model_fault)?;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    if let Some(request) = body.get("createImage") {
        let name = request["name"].as_str().ok_or_else(|| {
            fault(
                StatusCode::BAD_REQUEST,
                "Invalid input for field/attribute createImage: 'name' is a required property",
            )
        })?;
        let metadata = string_map(&request["metadata"]);
        let image = api
            .lab
            .create_server_image(&api.provider, &id, name, metadata)
            .map_err(model_fault)?;
        let location = format!("{base}{}/v2/images/{}", super::IMAGE_PREFIX, image.id);
        return Ok((
            StatusCode::ACCEPTED,
            [("location", location)],
            Json(json!({"image_id": image.id})),
        )
            .into_response());
    }
    if body.get("reboot").is_some() {
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    Err(fault(
        StatusCode::BAD_REQUEST,
        "The lab's Nova serves the os-start, os-stop, createImage and reboot actions",
    ))
}

/// A JSON object of strings as a map (other values dropped).
pub(super) fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn volume_attachment(server: &str, volume: &str, index: usize) -> Value {
    json!({
        "id": volume,
        "volumeId": volume,
        "serverId": server,
        "device": network::device_name(index),
    })
}

async fn list_volume_attachments(State(api): State<Api>, Path(id): Path<String>) -> ApiResult {
    let spec = spec_of(&api)?;
    let vm = server_of(&spec, &id)?;
    let list: Vec<Value> = vm
        .disks
        .iter()
        .enumerate()
        .map(|(i, d)| volume_attachment(&id, &d.file, i))
        .collect();
    reply(StatusCode::OK, json!({"volumeAttachments": list}))
}

async fn get_volume_attachment(
    State(api): State<Api>,
    Path((id, volume)): Path<(String, String)>,
) -> ApiResult {
    let spec = spec_of(&api)?;
    let vm = server_of(&spec, &id)?;
    let index = vm
        .disks
        .iter()
        .position(|d| d.file == volume)
        .ok_or_else(|| {
            fault(
                StatusCode::NOT_FOUND,
                format!("Volume {volume} is not attached to server {id}"),
            )
        })?;
    reply(
        StatusCode::OK,
        json!({"volumeAttachment": volume_attachment(&id, &volume, index)}),
    )
}

async fn attach_volume(State(api): State<Api>, Path(id): Path<String>, body: String) -> ApiResult {
    let body = json_body(&body)?;
    let volume = body["volumeAttachment"]["volumeId"].as_str().ok_or_else(|| {
        fault(StatusCode::BAD_REQUEST, "Invalid input for field/attribute volumeAttachment: 'volumeId' is a required property")
    })?;
    let index = api
        .lab
        .attach_volume(&api.provider, &id, volume)
        .map_err(model_fault)?;
    reply(
        StatusCode::OK,
        json!({"volumeAttachment": volume_attachment(&id, volume, index)}),
    )
}

async fn detach_volume(
    State(api): State<Api>,
    Path((id, volume)): Path<(String, String)>,
) -> ApiResult {
    api.lab
        .detach_volume(&api.provider, &id, &volume)
        .map_err(model_fault)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn list_interfaces(State(api): State<Api>, Path(id): Path<String>) -> ApiResult {
    let spec = spec_of(&api)?;
    let vm = server_of(&spec, &id)?;
    let list: Vec<Value> = vm
        .nics
        .iter()
        .map(|nic| network::interface_attachment(&spec, nic))
        .collect();
    reply(StatusCode::OK, json!({"interfaceAttachments": list}))
}

async fn attach_interface(
    State(api): State<Api>,
    Path(id): Path<String>,
    body: String,
) -> ApiResult {
    let body = json_body(&body)?;
    let network = body["interfaceAttachment"]["net_id"]
        .as_str()
        .ok_or_else(|| {
            fault(
                StatusCode::BAD_REQUEST,
                "The lab's Nova attaches interfaces by net_id",
            )
        })?;
    {
        let spec = spec_of(&api)?;
        server_of(&spec, &id)?;
        if !spec.networks.iter().any(|n| n.id == network) {
            return Err(fault(
                StatusCode::NOT_FOUND,
                format!("Network {network} could not be found."),
            ));
        }
    }
    let nic = api
        .lab
        .add_nic(
            &api.provider,
            &id,
            &NewNic {
                network: network.to_string(),
                start_connected: true,
                mac: None,
            },
        )
        .map_err(model_fault)?;
    let spec = spec_of(&api)?;
    reply(
        StatusCode::OK,
        json!({"interfaceAttachment": network::interface_attachment(&spec, &nic)}),
    )
}

fn flavor_document(f: &Flavor, view: &View) -> Value {
    let version = view.version;
    let mut doc = json!({
        "id": f.id,
        "name": f.name,
        "vcpus": f.vcpus,
        "ram": f.ram_mib,
        "disk": f.disk_gib,
        "OS-FLV-EXT-DATA:ephemeral": 0,
        "OS-FLV-DISABLED:disabled": false,
        "swap": if version >= (2, 75) { json!(0) } else { json!("") },
        "rxtx_factor": 1.0,
        "os-flavor-access:is_public": true,
        "links": view.links("flavors", &f.id),
    });
    if version >= (2, 55) {
        doc["description"] = Value::Null;
    }
    if version >= (2, 61) {
        doc["extra_specs"] = json!({});
    }
    doc
}

/// `GET /flavors` (id, name and links) and `GET /flavors/detail`.
async fn list_flavors(State(api): State<Api>, view: View) -> ApiResult {
    let spec = spec_of(&api)?;
    let list: Vec<Value> = spec
        .flavors
        .iter()
        .map(|f| match view.detail {
            true => flavor_document(f, &view),
            false => view.summary("flavors", &f.id, &f.name),
        })
        .collect();
    reply(StatusCode::OK, json!({"flavors": list}))
}

async fn get_flavor(State(api): State<Api>, view: View, Path(id): Path<String>) -> ApiResult {
    let spec = spec_of(&api)?;
    let flavor = spec.flavors.iter().find(|f| f.id == id).ok_or_else(|| {
        fault(
            StatusCode::NOT_FOUND,
            format!("Flavor {id} could not be found."),
        )
    })?;
    reply(
        StatusCode::OK,
        json!({"flavor": flavor_document(flavor, &view)}),
    )
}
