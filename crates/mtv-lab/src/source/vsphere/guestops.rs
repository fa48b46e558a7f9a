//! VMware Guest Operations on powered-on VMs whose tools run: file transfers (`InitiateFileTransfer*`
//! hand out a one-time `https://<host>/guestFile?…` URL the client PUTs to or GETs from) and programs
//! (`StartProgramInGuest`, `ListProcessesInGuest`), backed by the lab's simulated guest.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::objects;
use super::value::V;
use super::xml::Element;
use super::{Fault, MethodResult, Sdk, returnval};
use crate::source::Vm;
use crate::source::guest;
use crate::source::model::PowerState;

/// The largest guest file the lab keeps (markers and small files, not disk data).
const MAX_GUEST_FILE_BYTES: usize = 64 * 1024;

/// A file transfer handed out and not used yet.
#[derive(Debug, Clone)]
pub(crate) struct Transfer {
    vm: String,
    path: String,
    upload: bool,
}

/// A program started in a guest.
#[derive(Debug, Clone)]
pub(crate) struct Process {
    pid: i64,
    name: String,
    owner: String,
    cmd_line: String,
    start: String,
    end: String,
    exit_code: i32,
}

/// The VM a guest operation names, which must run with its tools, and the guest user.
fn guest_of(sdk: &Sdk, call: &Element) -> Result<(Vm, String), Fault> {
    let (kind, id) = call
        .child("vm")
        .and_then(Element::moref)
        .ok_or_else(|| Fault::invalid_argument("vm", "a guest operation needs a vm"))?;
    let vm = sdk
        .lab
        .vm(&sdk.provider, &id)
        .map_err(|_| Fault::not_found(&kind, &id))?;
    let user = call.text_at("auth/username").unwrap_or("");
    let password = call.text_at("auth/password").unwrap_or("");
    if user.is_empty() || password.is_empty() {
        return Err(Fault::new(
            "InvalidGuestLogin",
            "Failed to authenticate with the guest operating system using the supplied credentials.",
        ));
    }
    if vm.power_state != PowerState::On {
        return Err(Fault::new(
            "InvalidPowerState",
            "The attempted operation cannot be performed in the current state (Powered off).",
        )
        .with(
            "requestedState",
            V::e("VirtualMachinePowerState", "poweredOn"),
        )
        .with(
            "existingState",
            V::e("VirtualMachinePowerState", "poweredOff"),
        ));
    }
    if !objects::tools_running(&vm) {
        return Err(Fault::new(
            "GuestOperationsUnavailable",
            "The guest operations agent could not be contacted.",
        ));
    }
    Ok((vm, user.to_string()))
}

fn guest_path(call: &Element) -> Result<String, Fault> {
    let path = call.text_at("guestFilePath").unwrap_or("");
    let windows = path.as_bytes().get(1) == Some(&b':');
    if !(path.starts_with('/') || windows) || path.contains('\0') {
        return Err(Fault::invalid_argument(
            "guestFilePath",
            format!("guest file path `{path}` must be absolute"),
        ));
    }
    Ok(path.to_string())
}

fn transfer_url(sdk: &Sdk, host: &str, transfer: Transfer) -> String {
    let token = crate::random::uuid_v4();
    let mut state = sdk.state();
    let id = state.next();
    state.transfers.insert(token.clone(), transfer);
    format!("https://{host}/guestFile?id={id}&token={token}")
}

/// `GuestFileManager.InitiateFileTransferToGuest`: a URL to PUT the file's content to.
pub(crate) fn transfer_to_guest(sdk: &Sdk, call: &Element, host: &str) -> MethodResult {
    let (vm, _) = guest_of(sdk, call)?;
    let path = guest_path(call)?;
    let size = call.i64_at("fileSize").unwrap_or(0);
    if size as usize > MAX_GUEST_FILE_BYTES {
        return Err(Fault::new(
            "FileTooLarge",
            format!("{path} is {size} bytes; the lab's guests keep files up to {MAX_GUEST_FILE_BYTES} bytes"),
        )
        .with("datastore", V::s(""))
        .with("fileSize", V::long(size)));
    }
    if vm.guest_files.contains_key(&path) && call.bool_at("overwrite") != Some(true) {
        return Err(
            Fault::new("FileAlreadyExists", format!("File {path} already exists"))
                .with("file", V::s(&path)),
        );
    }
    let url = transfer_url(
        sdk,
        host,
        Transfer {
            vm: vm.id,
            path,
            upload: true,
        },
    );
    Ok(returnval(&V::s(url)))
}

/// `GuestFileManager.InitiateFileTransferFromGuest`: the file's attributes and a URL to GET it from.
pub(crate) fn transfer_from_guest(sdk: &Sdk, call: &Element, host: &str) -> MethodResult {
    let (vm, _) = guest_of(sdk, call)?;
    let path = guest_path(call)?;
    let Some(content) = vm.guest_files.get(&path) else {
        return Err(
            Fault::new("FileNotFound", format!("File {path} was not found"))
                .with("file", V::s(&path)),
        );
    };
    let size = content.len() as i64;
    let url = transfer_url(
        sdk,
        host,
        Transfer {
            vm: vm.id.clone(),
            path,
            upload: false,
        },
    );
    let info = V::Obj(
        "FileTransferInformation",
        vec![
            (
                "attributes",
                V::Obj(
                    "GuestPosixFileAttributes",
                    vec![("modificationTime", V::time(crate::clock::now_rfc3339()))],
                ),
            ),
            ("size", V::long(size)),
            ("url", V::s(url)),
        ],
    );
    Ok(returnval(&info))
}

#[derive(Debug, Deserialize)]
pub(crate) struct TransferQuery {
    token: String,
}

fn transfer_of(sdk: &Sdk, token: &str, upload: bool) -> Option<Transfer> {
    let mut state = sdk.state();
    let transfer = state
        .transfers
        .get(token)
        .filter(|t| t.upload == upload)?
        .clone();
    state.transfers.remove(token);
    Some(transfer)
}

/// `PUT /guestFile?token=`: the content of a file transferred to the guest (once per token).
pub(crate) async fn upload(
    State(sdk): State<Arc<Sdk>>,
    Query(query): Query<TransferQuery>,
    body: Bytes,
) -> Response {
    let Some(transfer) = transfer_of(&sdk, &query.token, true) else {
        return (
            StatusCode::NOT_FOUND,
            "no such transfer (tokens are good for one transfer)",
        )
            .into_response();
    };
    if body.len() > MAX_GUEST_FILE_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "the lab's guests keep files up to 64 KiB",
        )
            .into_response();
    }
    let content = String::from_utf8_lossy(&body).into_owned();
    match sdk.lab.update_vm(&sdk.provider, &transfer.vm, |vm| {
        vm.guest_files.insert(transfer.path.clone(), content);
    }) {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}

/// `GET /guestFile?token=`: the content of a file transferred from the guest.
pub(crate) async fn download(
    State(sdk): State<Arc<Sdk>>,
    Query(query): Query<TransferQuery>,
) -> Response {
    let Some(transfer) = transfer_of(&sdk, &query.token, false) else {
        return (
            StatusCode::NOT_FOUND,
            "no such transfer (tokens are good for one transfer)",
        )
            .into_response();
    };
    match sdk.lab.vm(&sdk.provider, &transfer.vm) {
        Ok(vm) => match vm.guest_files.get(&transfer.path) {
            Some(content) => (StatusCode::OK, content.clone()).into_response(),
            None => (StatusCode::NOT_FOUND, "the file is gone").into_response(),
        },
        Err(e) => (StatusCode::NOT_FOUND, e.to_string()).into_response(),
    }
}

/// `GuestProcessManager.StartProgramInGuest`: runs the program to its end; its pid.
pub(crate) fn start_program(sdk: &Sdk, call: &Element) -> MethodResult {
    let (vm, user) = guest_of(sdk, call)?;
    let program = call.text_at("spec/programPath").unwrap_or("");
    if program.is_empty() {
        return Err(Fault::invalid_argument(
            "spec.programPath",
            "a program path is required",
        ));
    }
    let arguments = call.text_at("spec/arguments").unwrap_or("");
    let start = crate::clock::now_rfc3339();
    let run = guest::run_program(&vm, program, arguments);
    if !run.writes.is_empty() {
        sdk.lab.update_vm(&sdk.provider, &vm.id, |vm| {
            for (path, content, append) in &run.writes {
                let file = vm.guest_files.entry(path.clone()).or_default();
                if !append {
                    file.clear();
                }
                file.push_str(content);
            }
        })?;
    }
    let mut state = sdk.state();
    let pid = 1000 + state.next() as i64;
    state
        .processes
        .entry(vm.id.clone())
        .or_default()
        .push(Process {
            pid,
            name: program.rsplit('/').next().unwrap_or(program).to_string(),
            owner: user,
            cmd_line: format!("\"{program}\" {arguments}"),
            start,
            end: crate::clock::now_rfc3339(),
            exit_code: run.exit_code,
        });
    Ok(returnval(&V::long(pid)))
}

/// `GuestProcessManager.ListProcessesInGuest`: the programs started (all, or the pids asked for).
pub(crate) fn list_processes(sdk: &Sdk, call: &Element) -> MethodResult {
    let (vm, _) = guest_of(sdk, call)?;
    let pids: Vec<i64> = call
        .children_named("pids")
        .filter_map(|p| p.text.trim().parse().ok())
        .collect();
    let processes = sdk
        .state()
        .processes
        .get(&vm.id)
        .cloned()
        .unwrap_or_default();
    let infos: Vec<V> = processes
        .into_iter()
        .filter(|p| pids.is_empty() || pids.contains(&p.pid))
        .map(|p| {
            V::Obj(
                "GuestProcessInfo",
                vec![
                    ("name", V::s(p.name)),
                    ("pid", V::long(p.pid)),
                    ("owner", V::s(p.owner)),
                    ("cmdLine", V::s(p.cmd_line)),
                    ("startTime", V::time(p.start)),
                    ("endTime", V::time(p.end)),
                    ("exitCode", V::int(i64::from(p.exit_code))),
                ],
            )
        })
        .collect();
    Ok(returnval(&V::Arr("GuestProcessInfo", infos)))
}
