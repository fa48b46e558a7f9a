//! Files inside a simulated guest, for checks that the Python suite makes over Guest Operations and
//! SSH (the copy-offload data-integrity marker). The lab has no guests: a source VM keeps its files in
//! its model, a clone starts with its source's files, and the Forklift controllers carry them onto the
//! migrated VirtualMachine (annotation [`GUEST_FILES_ANNOTATION`]).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::SourceLab;
use super::api::{ApiResult, SourceApiError, body, provider_name};

/// The annotation of a migrated VirtualMachine holding its guest files as a JSON object (path → content).
pub const GUEST_FILES_ANNOTATION: &str = "lab.mtv-tests.io/guest-files";

/// The longest file the lab keeps in a guest: markers and small configuration files, not disk data.
const MAX_GUEST_FILE_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GuestFileWrite {
    path: String,
    content: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct GuestFileQuery {
    path: String,
}

/// The annotation value for a set of guest files (absent when there are none).
pub fn guest_files_annotation(
    files: &std::collections::BTreeMap<String, String>,
) -> Option<String> {
    (!files.is_empty()).then(|| json!(files).to_string())
}

/// One file of a migrated VM's guest, read from its annotation: `Ok(None)` when the file does not exist.
pub fn read_migrated_guest_file(vm: &Value, path: &str) -> Result<Option<String>, String> {
    let Some(raw) = vm
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(GUEST_FILES_ANNOTATION))
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let files: std::collections::BTreeMap<String, String> =
        serde_json::from_str(raw).map_err(|e| {
            format!("annotation {GUEST_FILES_ANNOTATION} is not a JSON object of strings: {e}")
        })?;
    Ok(files.get(path).cloned())
}

fn check_path(path: &str) -> Result<(), SourceApiError> {
    if !path.starts_with('/') || path.contains('\0') {
        return Err(SourceApiError::bad_request(format!(
            "guest file path `{path}` must be absolute"
        )));
    }
    Ok(())
}

/// `POST /lab/v1/sources/{provider}/vms/{id}/files` `{path, content}`: writes a file in the guest.
pub(super) async fn write_file(
    State(lab): State<SourceLab>,
    Path((provider, id)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    let request: GuestFileWrite = body(&bytes)?;
    check_path(&request.path)?;
    if request.content.len() > MAX_GUEST_FILE_BYTES {
        return Err(SourceApiError::bad_request(format!(
            "guest file {} is {} bytes; the lab keeps files up to {MAX_GUEST_FILE_BYTES} bytes",
            request.path,
            request.content.len()
        )));
    }
    let vm = lab.vm(&name, &id)?;
    if vm.template {
        return Err(SourceApiError::bad_request(format!(
            "`{}` is a template; it has no running guest to write files in",
            vm.name
        )));
    }
    let (path, content) = (request.path.clone(), request.content.clone());
    lab.update_vm(&name, &id, move |vm| {
        vm.guest_files.insert(path, content);
    })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"path": request.path, "content": request.content})),
    )
        .into_response())
}

/// `GET /lab/v1/sources/{provider}/vms/{id}/files?path=`: reads a file of the guest.
pub(super) async fn read_file(
    State(lab): State<SourceLab>,
    Path((provider, id)): Path<(String, String)>,
    Query(query): Query<GuestFileQuery>,
) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    check_path(&query.path)?;
    let vm = lab.vm(&name, &id)?;
    match vm.guest_files.get(&query.path) {
        Some(content) => Ok(Json(json!({"path": query.path, "content": content})).into_response()),
        None => Err(SourceApiError::not_found(
            "FileNotFound",
            format!("no file {} in the guest of `{}`", query.path, vm.name),
        )),
    }
}
