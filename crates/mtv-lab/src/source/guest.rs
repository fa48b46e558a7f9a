//! Files inside a simulated source guest, for what the Python suite writes and reads over Guest
//! Operations (the copy-offload data-integrity marker): a source VM keeps its files in its model, a
//! clone starts with its source's files, and a migration copies them into the migrated guest
//! ([`crate::guest::GuestImage`]), where the checks read them over SSH.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::SourceLab;
use super::api::{ApiResult, SourceApiError, body, provider_name};

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
