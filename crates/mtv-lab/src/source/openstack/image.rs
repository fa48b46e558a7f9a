//! Glance v2: the provider's images, among them the snapshots Nova's `createImage` makes of
//! volume-backed servers (their block device mapping names a volume snapshot per disk).

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::super::model::{Image, SourceProviderSpec};
use super::{Api, ApiResult, Base, Fault, IMAGE_PREFIX, reply};

pub(super) fn version_routes() -> Router<Api> {
    Router::new()
        .route(IMAGE_PREFIX, get(versions))
        .route(&format!("{IMAGE_PREFIX}/"), get(versions))
}

pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route(&format!("{IMAGE_PREFIX}/v2/images"), get(list_images))
        .route(
            &format!("{IMAGE_PREFIX}/v2/images/{{id}}"),
            get(get_image).delete(delete_image),
        )
}

async fn versions(Base(base): Base) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": [{
            "id": "v2.9",
            "status": "CURRENT",
            "links": [{"rel": "self", "href": format!("{base}{IMAGE_PREFIX}/v2/")}],
        }]})),
    )
        .into_response()
}

/// Glance's plain-text 404.
fn not_found(id: &str) -> Fault {
    (
        StatusCode::NOT_FOUND,
        format!("404 Not Found\n\nNo image found with ID {id}\n\n"),
    )
        .into_response()
        .into()
}

fn image_document(spec: &SourceProviderSpec, image: &Image, project: &str) -> Value {
    let mappings: Vec<Value> = image
        .snapshot_ids
        .iter()
        .enumerate()
        .filter_map(|(index, snapshot_id)| {
            let snapshot = spec
                .openstack
                .snapshots
                .iter()
                .find(|s| &s.id == snapshot_id);
            Some(json!({
                "source_type": "snapshot",
                "destination_type": "volume",
                "snapshot_id": snapshot_id,
                "volume_size": snapshot?.size_gib,
                "boot_index": if index == 0 { json!(0) } else { Value::Null },
                "device_name": super::network::device_name(index),
                "delete_on_termination": true,
            }))
        })
        .collect();
    let mut document = json!({
        "id": image.id,
        "name": image.name,
        "status": "active",
        "visibility": "private",
        "protected": false,
        "os_hidden": false,
        "size": 0,
        "virtual_size": null,
        "min_disk": image.min_disk_gib,
        "min_ram": 0,
        "disk_format": "qcow2",
        "container_format": "bare",
        "checksum": null,
        "os_hash_algo": null,
        "os_hash_value": null,
        "owner": project,
        "created_at": image.created,
        "updated_at": image.created,
        "tags": [],
        "self": format!("/v2/images/{}", image.id),
        "file": format!("/v2/images/{}/file", image.id),
        "schema": "/v2/schemas/image",
    });
    if let Some(server) = &image.instance_uuid {
        document["instance_uuid"] = json!(server);
        document["image_type"] = json!("snapshot");
        document["bdm_v2"] = json!("True");
        document["root_device_name"] = json!("/dev/vda");
        // Glance properties are strings: Nova stores the mapping as JSON text.
        document["block_device_mapping"] = json!(Value::Array(mappings).to_string());
    }
    for (key, value) in &image.metadata {
        document[key] = json!(value);
    }
    document
}

/// Glance's property filters (paging and sorting parameters aside).
fn passes(document: &Value, query: &BTreeMap<String, String>) -> bool {
    query.iter().all(|(key, wanted)| {
        matches!(
            key.as_str(),
            "limit" | "marker" | "sort" | "sort_key" | "sort_dir"
        ) || match &document[key] {
            Value::String(s) => s == wanted,
            Value::Null => false,
            Value::Bool(b) => wanted == if *b { "true" } else { "false" },
            Value::Number(n) => wanted.parse::<f64>().ok() == n.as_f64(),
            _ => false,
        }
    })
}

async fn list_images(
    State(api): State<Api>,
    Base(_): Base,
    Query(query): Query<BTreeMap<String, String>>,
) -> ApiResult {
    let spec = api.spec().map_err(|e| not_found(&e.to_string()))?;
    let project = api.project_id();
    let list: Vec<Value> = spec
        .openstack
        .images
        .iter()
        .map(|i| image_document(&spec, i, &project))
        .filter(|d| passes(d, &query))
        .collect();
    reply(
        StatusCode::OK,
        json!({"images": list, "first": "/v2/images", "schema": "/v2/schemas/images"}),
    )
}

async fn get_image(State(api): State<Api>, Path(id): Path<String>) -> ApiResult {
    let spec = api.spec().map_err(|e| not_found(&e.to_string()))?;
    let image = spec
        .openstack
        .images
        .iter()
        .find(|i| i.id == id)
        .ok_or_else(|| not_found(&id))?;
    reply(
        StatusCode::OK,
        image_document(&spec, image, &api.project_id()),
    )
}

async fn delete_image(State(api): State<Api>, Path(id): Path<String>) -> ApiResult {
    api.lab
        .delete_image(&api.provider, &id)
        .map_err(|_| not_found(&id))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
