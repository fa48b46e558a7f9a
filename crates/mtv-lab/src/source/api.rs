//! The lab's own source API, under `/lab/v1/sources`: inspection and changes of the simulated sources
//! for tests (find, facts, clone, power, disks, NICs, snapshots, delete). No run uses it: runs reach
//! the lab's sources through the real adapters and the protocols each source serves; the lab counts
//! the requests made here ([`SourceLab::source_api_requests`]) so a test can prove it. Every change
//! goes through [`SourceLab`], so its subscribers see it.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::{PowerState, Vm};
use super::mutate::{CloneSpec, NewDisk, NewNic};
use super::{SourceError, SourceLab};

/// The path prefix of the lab source API.
pub const SOURCE_API_PREFIX: &str = "/lab/v1/sources";

/// The router of the lab source API (no fallback, so it merges into the API server's router).
pub fn source_router(lab: SourceLab) -> Router {
    Router::new()
        .route(SOURCE_API_PREFIX, get(list_providers))
        .route(
            &format!("{SOURCE_API_PREFIX}/{{provider}}"),
            get(get_provider),
        )
        .route(
            &format!("{SOURCE_API_PREFIX}/{{provider}}/ca.crt"),
            get(ca_certificate),
        )
        .route(
            &format!("{SOURCE_API_PREFIX}/{{provider}}/vms"),
            get(list_vms),
        )
        .route(
            &format!("{SOURCE_API_PREFIX}/{{provider}}/vms/{{id}}"),
            get(get_vm).delete(delete_vm),
        )
        .route(
            &format!("{SOURCE_API_PREFIX}/{{provider}}/vms/{{id}}/clone"),
            post(clone_vm),
        )
        .route(
            &format!("{SOURCE_API_PREFIX}/{{provider}}/vms/{{id}}/power"),
            post(power),
        )
        .route(
            &format!("{SOURCE_API_PREFIX}/{{provider}}/vms/{{id}}/disks"),
            post(add_disk),
        )
        .route(
            &format!("{SOURCE_API_PREFIX}/{{provider}}/vms/{{id}}/nics"),
            post(add_nic),
        )
        .route(
            &format!("{SOURCE_API_PREFIX}/{{provider}}/vms/{{id}}/snapshots"),
            post(snapshot),
        )
        .route(
            &format!("{SOURCE_API_PREFIX}/{{provider}}/vms/{{id}}/files"),
            get(super::guest::read_file).post(super::guest::write_file),
        )
        .layer(axum::middleware::from_fn_with_state(
            lab.clone(),
            count_request,
        ))
        .with_state(lab)
}

/// Counts a request of this API (see [`SourceLab::source_api_requests`]).
async fn count_request(
    State(lab): State<SourceLab>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    lab.api_requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    next.run(request).await
}

/// An error as the source API answers it: `{error, message}` with a status code.
#[derive(Debug)]
pub struct SourceApiError {
    status: StatusCode,
    error: &'static str,
    message: String,
}

impl SourceApiError {
    pub(super) fn not_found(error: &'static str, message: impl Into<String>) -> Self {
        SourceApiError {
            status: StatusCode::NOT_FOUND,
            error,
            message: message.into(),
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> Self {
        SourceApiError {
            status: StatusCode::BAD_REQUEST,
            error: "BadRequest",
            message: message.into(),
        }
    }
}

impl From<SourceError> for SourceApiError {
    fn from(e: SourceError) -> Self {
        let (status, error) = match &e {
            SourceError::UnknownProvider(_) => (StatusCode::NOT_FOUND, "ProviderNotFound"),
            SourceError::UnknownVm { .. } => (StatusCode::NOT_FOUND, "VmNotFound"),
            SourceError::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            SourceError::Invalid(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            SourceError::InvalidLabFile { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "InvalidLabFile")
            }
        };
        SourceApiError {
            status,
            error,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for SourceApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.error, "message": self.message})),
        )
            .into_response()
    }
}

pub(super) type ApiResult = Result<Response, SourceApiError>;

/// The request body as JSON of type `T`; a malformed body is a 400 in the API's own error shape.
pub(super) fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, SourceApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| SourceApiError::bad_request(format!("invalid request body: {e}")))
}

pub(super) fn provider_name(lab: &SourceLab, provider: &str) -> Result<String, SourceApiError> {
    lab.resolve_provider(provider)
        .ok_or_else(|| SourceError::UnknownProvider(provider.to_string()).into())
}

fn vm_json(provider: &str, provider_type: &str, vm: &Vm) -> Value {
    let mut value = serde_json::to_value(vm).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("provider".to_string(), json!(provider));
        map.insert("provider_type".to_string(), json!(provider_type));
        // What the guest reports right now: a running guest with tools or an agent shows its IPs.
        let reporting = vm.power_state == PowerState::On
            && (vm.guest_agent || vm.tools == super::model::ToolsStatus::Ok);
        let guest_ips: Vec<Value> = if reporting {
            vm.nics
                .iter()
                .flat_map(|nic| {
                    nic.ips.iter().map(move |ip| {
                        json!({
                            "mac": nic.mac,
                            "ip": ip.ip,
                            "prefix": ip.prefix,
                            "static": ip.is_static,
                            "device": nic.device,
                        })
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        map.insert("guest_ips".to_string(), Value::Array(guest_ips));
        map.insert("capacity_mib".to_string(), json!(vm.capacity_mib()));
    }
    value
}

fn provider_type(lab: &SourceLab, provider: &str) -> String {
    lab.with_provider(provider, |p| p.provider_type.clone())
        .unwrap_or_default()
}

async fn list_providers(State(lab): State<SourceLab>) -> Json<Value> {
    let providers: Vec<Value> = lab
        .providers()
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "type": p.provider_type,
                "url": p.url,
                "version": p.version,
                "vm_count": p.vms.iter().filter(|vm| !vm.template).count(),
                "template_count": p.vms.iter().filter(|vm| vm.template).count(),
                "host_count": p.hosts.len(),
                "network_count": p.networks.len(),
                "datastore_count": p.datastores.len(),
            })
        })
        .collect();
    Json(Value::Array(providers))
}

/// The CA a source's TLS endpoint presents, for the Provider Secret's `cacert`: the issuer of its
/// certificate where the lab serves it over HTTPS; else (no endpoint of its own) a well-formed PEM
/// block naming the source, which is what Forklift's secret validation looks for.
async fn ca_certificate(State(lab): State<SourceLab>, Path(provider): Path<String>) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    let spec = lab.provider(&name)?;
    if let Some(served) = lab.served(&name) {
        return Ok(Json(
            json!({"source": name, "host": served.addr.ip().to_string(), "pem": served.tls.ca_pem}),
        )
        .into_response());
    }
    let host = spec
        .url
        .split("://")
        .nth(1)
        .unwrap_or(&spec.url)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_string();
    let body: String = format!("mtv-lab CA for {host}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let pem = format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n");
    Ok(Json(json!({"source": name, "host": host, "pem": pem})).into_response())
}

async fn get_provider(State(lab): State<SourceLab>, Path(provider): Path<String>) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    let spec = lab.provider(&name)?;
    let mut value = serde_json::to_value(&spec).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        // The source API is for preparing VMs; credentials stay out of its answers.
        map.remove("password");
        map.remove("vms");
    }
    Ok(Json(value).into_response())
}

#[derive(Debug, Deserialize)]
struct VmQuery {
    #[serde(default)]
    name: Option<String>,
}

async fn list_vms(
    State(lab): State<SourceLab>,
    Path(provider): Path<String>,
    Query(query): Query<VmQuery>,
) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    let spec = lab.provider(&name)?;
    let vms: Vec<Value> = spec
        .vms
        .iter()
        .filter(|vm| query.name.as_deref().is_none_or(|n| vm.name == n))
        .map(|vm| vm_json(&name, &spec.provider_type, vm))
        .collect();
    Ok(Json(Value::Array(vms)).into_response())
}

async fn get_vm(
    State(lab): State<SourceLab>,
    Path((provider, id)): Path<(String, String)>,
) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    let vm = lab.vm(&name, &id)?;
    Ok(Json(vm_json(&name, &provider_type(&lab, &name), &vm)).into_response())
}

async fn delete_vm(
    State(lab): State<SourceLab>,
    Path((provider, id)): Path<(String, String)>,
) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    let vm = lab.remove_vm(&name, &id)?;
    Ok(Json(vm_json(&name, &provider_type(&lab, &name), &vm)).into_response())
}

async fn clone_vm(
    State(lab): State<SourceLab>,
    Path((provider, id)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    let request: CloneSpec = body(&bytes)?;
    let vm = lab.clone_vm(&name, &id, &request)?;
    Ok((
        StatusCode::CREATED,
        Json(vm_json(&name, &provider_type(&lab, &name), &vm)),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerRequest {
    state: PowerState,
}

async fn power(
    State(lab): State<SourceLab>,
    Path((provider, id)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    let request: PowerRequest = body(&bytes)?;
    let vm = lab.vm(&name, &id)?;
    if vm.template && request.state == PowerState::On {
        return Err(SourceApiError::bad_request(format!(
            "`{}` is a template and cannot be powered on",
            vm.name
        )));
    }
    // The suite's power-off is a hard stop, as the Python suite's SDK call is.
    let action = match request.state {
        PowerState::On => super::PowerAction::Start,
        PowerState::Off => super::PowerAction::Stop,
    };
    let vm = lab.set_power(&name, &id, action)?;
    Ok(Json(vm_json(&name, &provider_type(&lab, &name), &vm)).into_response())
}

async fn add_disk(
    State(lab): State<SourceLab>,
    Path((provider, id)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    let request: NewDisk = body(&bytes)?;
    let disk = lab.add_disk(&name, &id, &request)?;
    Ok((StatusCode::CREATED, Json(json!(disk))).into_response())
}

async fn add_nic(
    State(lab): State<SourceLab>,
    Path((provider, id)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    let request: NewNic = body(&bytes)?;
    let nic = lab.add_nic(&name, &id, &request)?;
    Ok((StatusCode::CREATED, Json(json!(nic))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotRequest {
    name: String,
}

async fn snapshot(
    State(lab): State<SourceLab>,
    Path((provider, id)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    let request: SnapshotRequest = body(&bytes)?;
    let snapshot = lab.create_snapshot(&name, &id, &request.name)?;
    Ok((StatusCode::CREATED, Json(json!(snapshot))).into_response())
}
