//! Cinder v3 (microversions up to 3.64, as Wallaby serves them): volumes (blank or from a snapshot),
//! snapshots, attachments and volume types. The volumes attached to a server are its disks in the
//! source model; the others are Cinder's own records.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::super::model::{SourceProviderSpec, VolumeSnapshot};
use super::compute::string_map;
use super::store::{self, NewVolume, VolumeView};
use super::{
    Api, ApiResult, Base, Fault, VOLUME_PREFIX, attachment_id, fault, json_body, model_fault,
    reply, spec_of,
};

/// The newest microversion the lab's Cinder serves.
const MAX_MICROVERSION: (u32, u32) = (3, 64);
/// The attachments API exists from this microversion on.
const ATTACHMENTS: (u32, u32) = (3, 27);

pub(super) fn version_routes() -> Router<Api> {
    Router::new()
        .route(VOLUME_PREFIX, get(versions))
        .route(&format!("{VOLUME_PREFIX}/"), get(versions))
        .route(&format!("{VOLUME_PREFIX}/v3"), get(version))
        .route(&format!("{VOLUME_PREFIX}/v3/"), get(version))
        .route(&format!("{VOLUME_PREFIX}/v3/{{project}}"), get(version))
        .route(&format!("{VOLUME_PREFIX}/v3/{{project}}/"), get(version))
}

pub(super) fn routes() -> Router<Api> {
    let p = format!("{VOLUME_PREFIX}/v3/{{project}}");
    Router::new()
        .route(
            &format!("{p}/volumes"),
            get(list_volumes).post(create_volume),
        )
        .route(&format!("{p}/volumes/detail"), get(list_volumes_detail))
        .route(
            &format!("{p}/volumes/{{id}}"),
            get(get_volume).delete(delete_volume),
        )
        .route(
            &format!("{p}/snapshots"),
            get(list_snapshots).post(create_snapshot),
        )
        .route(&format!("{p}/snapshots/detail"), get(list_snapshots))
        .route(
            &format!("{p}/snapshots/{{id}}"),
            get(get_snapshot).delete(delete_snapshot),
        )
        .route(
            &format!("{p}/attachments"),
            get(list_attachments).post(create_attachment),
        )
        .route(&format!("{p}/attachments/detail"), get(list_attachments))
        .route(
            &format!("{p}/attachments/{{id}}"),
            get(get_attachment).delete(delete_attachment),
        )
        .route(&format!("{p}/types"), get(list_types))
        .route(&format!("{p}/types/{{id}}"), get(get_type))
        .layer(axum::middleware::from_fn(echo_microversion))
}

fn v3_document(base: &str) -> Value {
    json!({
        "id": "v3.0",
        "status": "CURRENT",
        "version": format!("{}.{}", MAX_MICROVERSION.0, MAX_MICROVERSION.1),
        "min_version": "3.0",
        "updated": "2016-02-08T12:20:21Z",
        "links": [{"rel": "self", "href": format!("{base}{VOLUME_PREFIX}/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
    })
}

async fn versions(Base(base): Base) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        axum::Json(json!({"versions": [v3_document(&base)]})),
    )
        .into_response()
}

async fn version(Base(base): Base) -> Response {
    axum::Json(json!({"versions": [v3_document(&base)]})).into_response()
}

/// The microversion a request asks for (`OpenStack-API-Version: volume 3.x`); 3.0 when none.
fn microversion(headers: &HeaderMap) -> Result<(u32, u32), String> {
    let text = super::requested_microversion(headers, "volume");
    super::microversion_in(text, (3, 0), MAX_MICROVERSION)
}

async fn echo_microversion(request: Request, next: Next) -> Response {
    let version = match microversion(request.headers()) {
        Ok(v) => v,
        Err(message) => return fault(StatusCode::NOT_ACCEPTABLE, message).into_response(),
    };
    let attachments = request.uri().path().contains("/attachments");
    if attachments && version < ATTACHMENTS {
        return fault(
            StatusCode::NOT_FOUND,
            "The resource could not be found. (attachments need microversion 3.27 or newer)",
        )
        .into_response();
    }
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&format!("volume {}.{}", version.0, version.1)) {
        response
            .headers_mut()
            .insert("openstack-api-version", value);
    }
    response
        .headers_mut()
        .insert("vary", HeaderValue::from_static("OpenStack-API-Version"));
    response
}

fn type_name(spec: &SourceProviderSpec, id: &str) -> String {
    spec.datastores
        .iter()
        .find(|d| d.id == id)
        .map_or_else(|| id.to_string(), |d| d.name.clone())
}

fn volume_document(
    spec: &SourceProviderSpec,
    volume: &VolumeView,
    base: &str,
    project: &str,
) -> Value {
    let attachments: Vec<Value> = volume
        .attached
        .iter()
        .map(|(server, index)| {
            let id = attachment_id(server, &volume.id);
            json!({
                "id": volume.id,
                "attachment_id": id,
                "server_id": server,
                "volume_id": volume.id,
                "device": super::network::device_name(*index),
                "host_name": null,
                "attached_at": volume.created,
            })
        })
        .collect();
    let guest = store::guest_of(spec, &volume.id);
    let mut document = json!({
        "id": volume.id,
        "name": volume.name,
        "status": if volume.attached.is_some() { "in-use" } else { "available" },
        "size": volume.size_gib,
        "volume_type": type_name(spec, &volume.volume_type),
        "volume_type_id": volume.volume_type,
        "availability_zone": "nova",
        "bootable": if volume.bootable { "true" } else { "false" },
        "encrypted": false,
        "multiattach": false,
        "attachments": attachments,
        "snapshot_id": volume.snapshot_id,
        "source_volid": null,
        "description": null,
        "metadata": volume.metadata,
        "created_at": volume.created,
        "updated_at": volume.created,
        "user_id": "",
        "os-vol-tenant-attr:tenant_id": project,
        "os-vol-host-attr:host": format!("hostgroup@{0}#{0}", type_name(spec, &volume.volume_type)),
        "os-vol-mig-status-attr:migstat": null,
        "os-vol-mig-status-attr:name_id": null,
        "replication_status": "disabled",
        "consistencygroup_id": null,
        "group_id": null,
        "migration_status": null,
        "provider_id": null,
        "service_uuid": "",
        "shared_targets": false,
        "cluster_name": null,
        "links": [{"rel": "self", "href": format!("{base}{VOLUME_PREFIX}/v3/{project}/volumes/{}", volume.id)}],
    });
    if let Some(guest) = &guest {
        document["volume_image_metadata"] = json!({
            "os_type": if guest.guest_os.to_ascii_lowercase().contains("win") { "windows" } else { "linux" },
            "os_distro": guest.guest_os,
            "hw_firmware_type": match guest.firmware {
                super::super::model::Firmware::Efi => "uefi",
                super::super::model::Firmware::Bios => "bios",
            },
            "hw_qemu_guest_agent": if guest.guest_agent { "yes" } else { "no" },
        });
    }
    document
}

fn find_volume(spec: &SourceProviderSpec, id: &str) -> Result<VolumeView, Fault> {
    store::volumes(spec)
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| {
            fault(
                StatusCode::NOT_FOUND,
                format!("Volume {id} could not be found."),
            )
        })
}

async fn list_volumes(
    State(api): State<Api>,
    Base(base): Base,
    Query(query): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let spec = spec_of(&api)?;
    let project = api.project_id();
    let list: Vec<Value> = store::volumes(&spec)
        .iter()
        .filter(|v| query.get("name").is_none_or(|n| *n == v.name))
        .map(|v| {
            let doc = volume_document(&spec, v, &base, &project);
            json!({"id": doc["id"], "name": doc["name"], "links": doc["links"]})
        })
        .collect();
    reply(StatusCode::OK, json!({"volumes": list}))
}

async fn list_volumes_detail(
    State(api): State<Api>,
    Base(base): Base,
    Query(query): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let spec = spec_of(&api)?;
    let project = api.project_id();
    let list: Vec<Value> = store::volumes(&spec)
        .iter()
        .map(|v| volume_document(&spec, v, &base, &project))
        .filter(|doc| {
            query.iter().all(|(key, wanted)| match key.as_str() {
                "name" | "status" | "bootable" | "volume_type" => doc[key] == wanted.as_str(),
                _ => true,
            })
        })
        .collect();
    reply(StatusCode::OK, json!({"volumes": list}))
}

async fn get_volume(
    State(api): State<Api>,
    Base(base): Base,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    let spec = spec_of(&api)?;
    let volume = find_volume(&spec, &id)?;
    reply(
        StatusCode::OK,
        json!({"volume": volume_document(&spec, &volume, &base, &api.project_id())}),
    )
}

async fn create_volume(
    State(api): State<Api>,
    Base(base): Base,
    Path(_): Path<String>,
    body: String,
) -> ApiResult {
    let body = json_body(&body)?;
    let request = &body["volume"];
    let new = NewVolume {
        name: request["name"].as_str().unwrap_or_default().to_string(),
        size_gib: request["size"].as_u64(),
        snapshot_id: request["snapshot_id"].as_str().map(str::to_string),
        volume_type: request["volume_type"].as_str().map(str::to_string),
        metadata: string_map(&request["metadata"]),
    };
    if request["imageRef"].is_string() || request["source_volid"].is_string() {
        return Err(fault(
            StatusCode::BAD_REQUEST,
            "The lab's Cinder creates blank volumes and volumes from snapshots",
        ));
    }
    let volume = api
        .lab
        .create_volume(&api.provider, &new)
        .map_err(model_fault)?;
    let spec = spec_of(&api)?;
    let view = find_volume(&spec, &volume.id)?;
    reply(
        StatusCode::ACCEPTED,
        json!({"volume": volume_document(&spec, &view, &base, &api.project_id())}),
    )
}

async fn delete_volume(State(api): State<Api>, Path((_, id)): Path<(String, String)>) -> ApiResult {
    api.lab
        .delete_volume(&api.provider, &id)
        .map_err(model_fault)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

fn snapshot_document(snapshot: &VolumeSnapshot, project: &str) -> Value {
    json!({
        "id": snapshot.id,
        "name": snapshot.name,
        "status": "available",
        "size": snapshot.size_gib,
        "volume_id": snapshot.volume_id,
        "description": null,
        "metadata": snapshot.metadata,
        "created_at": snapshot.created,
        "updated_at": snapshot.created,
        "os-extended-snapshot-attributes:progress": "100%",
        "os-extended-snapshot-attributes:project_id": project,
        "group_snapshot_id": null,
        "user_id": "",
        "consumes_quota": true,
    })
}

async fn list_snapshots(
    State(api): State<Api>,
    Query(query): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let spec = spec_of(&api)?;
    let project = api.project_id();
    let list: Vec<Value> = spec
        .openstack
        .snapshots
        .iter()
        .filter(|s| query.get("volume_id").is_none_or(|v| *v == s.volume_id))
        .filter(|s| query.get("name").is_none_or(|n| *n == s.name))
        .map(|s| snapshot_document(s, &project))
        .collect();
    reply(StatusCode::OK, json!({"snapshots": list}))
}

async fn get_snapshot(State(api): State<Api>, Path((_, id)): Path<(String, String)>) -> ApiResult {
    let spec = spec_of(&api)?;
    let snapshot = spec
        .openstack
        .snapshots
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| {
            fault(
                StatusCode::NOT_FOUND,
                format!("Snapshot {id} could not be found."),
            )
        })?;
    reply(
        StatusCode::OK,
        json!({"snapshot": snapshot_document(snapshot, &api.project_id())}),
    )
}

async fn create_snapshot(State(api): State<Api>, Path(_): Path<String>, body: String) -> ApiResult {
    let body = json_body(&body)?;
    let request = &body["snapshot"];
    let volume = request["volume_id"].as_str().ok_or_else(|| {
        fault(
            StatusCode::BAD_REQUEST,
            "Invalid input for field/attribute snapshot: 'volume_id' is a required property",
        )
    })?;
    let snapshot = api
        .lab
        .create_volume_snapshot(
            &api.provider,
            volume,
            request["name"].as_str().unwrap_or_default(),
            string_map(&request["metadata"]),
        )
        .map_err(model_fault)?;
    reply(
        StatusCode::ACCEPTED,
        json!({"snapshot": snapshot_document(&snapshot, &api.project_id())}),
    )
}

async fn delete_snapshot(
    State(api): State<Api>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    api.lab
        .delete_volume_snapshot(&api.provider, &id)
        .map_err(model_fault)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

fn attachment_document(volume: &VolumeView) -> Option<Value> {
    let (server, _) = volume.attached.as_ref()?;
    Some(json!({
        "id": attachment_id(server, &volume.id),
        "status": "attached",
        "instance": server,
        "volume_id": volume.id,
        "attach_mode": "rw",
        "attached_at": volume.created,
        "detached_at": "",
        "connection_info": {},
    }))
}

async fn list_attachments(State(api): State<Api>) -> ApiResult {
    let spec = spec_of(&api)?;
    let list: Vec<Value> = store::volumes(&spec)
        .iter()
        .filter_map(attachment_document)
        .collect();
    reply(StatusCode::OK, json!({"attachments": list}))
}

fn find_attachment(spec: &SourceProviderSpec, id: &str) -> Result<VolumeView, Fault> {
    store::volumes(spec)
        .into_iter()
        .find(|v| {
            v.attached
                .as_ref()
                .is_some_and(|(server, _)| attachment_id(server, &v.id) == id)
        })
        .ok_or_else(|| {
            fault(
                StatusCode::NOT_FOUND,
                format!("VolumeAttachment {id} could not be found."),
            )
        })
}

async fn get_attachment(
    State(api): State<Api>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    let spec = spec_of(&api)?;
    let volume = find_attachment(&spec, &id)?;
    reply(
        StatusCode::OK,
        json!({"attachment": attachment_document(&volume)}),
    )
}

async fn create_attachment(
    State(api): State<Api>,
    Path(_): Path<String>,
    body: String,
) -> ApiResult {
    let body = json_body(&body)?;
    let request = &body["attachment"];
    let (Some(volume), Some(server)) = (
        request["volume_uuid"].as_str(),
        request["instance_uuid"].as_str(),
    ) else {
        return Err(fault(
            StatusCode::BAD_REQUEST,
            "An attachment needs volume_uuid and instance_uuid",
        ));
    };
    api.lab
        .attach_volume(&api.provider, server, volume)
        .map_err(model_fault)?;
    let spec = spec_of(&api)?;
    let view = find_volume(&spec, volume)?;
    reply(
        StatusCode::OK,
        json!({"attachment": attachment_document(&view)}),
    )
}

async fn delete_attachment(
    State(api): State<Api>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult {
    let spec = spec_of(&api)?;
    let volume = find_attachment(&spec, &id)?;
    if let Some((server, _)) = &volume.attached {
        api.lab
            .detach_volume(&api.provider, server, &volume.id)
            .map_err(model_fault)?;
    }
    reply(StatusCode::OK, json!({"attachments": []}))
}

fn type_document(spec: &SourceProviderSpec, id: &str) -> Option<Value> {
    let datastore = spec.datastores.iter().find(|d| d.id == id)?;
    Some(json!({
        "id": datastore.id,
        "name": datastore.name,
        "description": null,
        "is_public": true,
        "os-volume-type-access:is_public": true,
        "qos_specs_id": null,
        "extra_specs": {"volume_backend_name": datastore.kind.clone().unwrap_or_else(|| datastore.name.clone())},
    }))
}

async fn list_types(State(api): State<Api>) -> ApiResult {
    let spec = spec_of(&api)?;
    let list: Vec<Value> = spec
        .datastores
        .iter()
        .filter_map(|d| type_document(&spec, &d.id))
        .collect();
    reply(StatusCode::OK, json!({"volume_types": list}))
}

async fn get_type(State(api): State<Api>, Path((_, id)): Path<(String, String)>) -> ApiResult {
    let spec = spec_of(&api)?;
    let document = type_document(&spec, &id).ok_or_else(|| {
        fault(
            StatusCode::NOT_FOUND,
            format!("Volume type {id} could not be found."),
        )
    })?;
    reply(StatusCode::OK, json!({"volume_type": document}))
}
