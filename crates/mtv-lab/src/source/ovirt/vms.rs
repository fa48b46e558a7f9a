//! The engine's VM service: list and read VMs, create one from a template, start, stop, shut down and
//! remove it, and its NICs, disk attachments and snapshots (read and add). Every change goes through
//! the [`SourceLab`](crate::source::SourceLab), so the lab's Forklift inventory sees it.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{delete, get, post};

use super::node::Node;
use super::render::View;
use super::{Engine, Fault, Format, Reply, fault, ok, reply, source_fault};
use crate::source::model::{PowerAction, PowerState, Provisioning};
use crate::source::mutate::{CloneSpec, NewDisk, NewNic};

const GIB: u64 = 1024 * 1024 * 1024;

/// The VM service's routes: the GETs [`owned_routes`](super::owned_routes) shares with templates,
/// and the changes only VMs take.
pub fn routes() -> Router<Engine> {
    use super::render::API;
    super::owned_routes(Router::new(), "vms", false)
        .route(&format!("{API}/vms"), post(add))
        .route(&format!("{API}/vms/{{id}}"), delete(remove))
        .route(&format!("{API}/vms/{{id}}/start"), post(start))
        .route(&format!("{API}/vms/{{id}}/stop"), post(stop))
        .route(&format!("{API}/vms/{{id}}/shutdown"), post(shutdown))
        .route(&format!("{API}/vms/{{id}}/nics"), post(add_nic))
        .route(
            &format!("{API}/vms/{{id}}/diskattachments"),
            post(add_attachment),
        )
        .route(
            &format!("{API}/vms/{{id}}/snapshots"),
            get(snapshots).post(add_snapshot),
        )
        .route(
            &format!("{API}/vms/{{id}}/snapshots/{{sub}}"),
            get(snapshot),
        )
}

/// A request body in the format its `Content-Type` says (XML unless JSON), rooted at `root`.
fn body(format: Format, headers: &HeaderMap, bytes: &[u8], root: &str) -> Result<Node, Fault> {
    let text = String::from_utf8_lossy(bytes);
    if text.trim().is_empty() {
        return Ok(Node::new(root));
    }
    let parsed = match super::format_of(headers, header::CONTENT_TYPE) {
        super::Format::Json => serde_json::from_str(&text)
            .map(|value| Node::from_json(root, &value))
            .map_err(|e| e.to_string()),
        super::Format::Xml => Node::from_xml(&text),
    };
    parsed.map_err(|e| {
        fault(
            format,
            StatusCode::BAD_REQUEST,
            "Request syntactically incorrect.",
            &format!("the request body cannot be read: {e}"),
        )
    })
}

fn bad_request(format: Format, detail: &str) -> Fault {
    fault(
        format,
        StatusCode::BAD_REQUEST,
        "Incomplete parameters",
        detail,
    )
}

fn conflict(format: Format, detail: &str) -> Fault {
    fault(
        format,
        StatusCode::CONFLICT,
        "Operation Failed",
        &format!("[{detail}]"),
    )
}

/// An action's answer: `<action><status>complete</status></action>`.
fn completed(format: Format) -> axum::response::Response {
    ok(format, &Node::new("action").field("status", "complete"))
}

/// Whether a VM name is one the engine takes.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `POST /vms`: a new VM from a template (by id or name), in a cluster (by id or name) or the template's.
async fn add(
    State(engine): State<Engine>,
    format: Format,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let request = body(format, &headers, &bytes, "vm")?;
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let name = request.get("name").unwrap_or_default().to_string();
    if !valid_name(&name) {
        return Err(bad_request(
            format,
            "Can not add VM. The given name is empty or contains special characters. Only \
             lower-case and upper-case letters, numbers, '_', '-', '.' are allowed.",
        ));
    }
    let template_id = request.get_at("template/id");
    let template_name = request.get_at("template/name");
    let template = spec
        .vms
        .iter()
        .filter(|vm| vm.template)
        .find(|vm| Some(vm.id.as_str()) == template_id || Some(vm.name.as_str()) == template_name)
        .ok_or_else(|| {
            bad_request(
                format,
                &format!(
                    "Vm [template.id|template.name] required for add: no template {}",
                    template_id.or(template_name).unwrap_or("given")
                ),
            )
        })?;
    let cluster = request
        .get_at("cluster/id")
        .or_else(|| request.get_at("cluster/name"))
        .map(str::to_string)
        .unwrap_or_else(|| view.cluster_of(template));
    if !view.clusters().contains(&cluster) {
        return Err(bad_request(
            format,
            &format!("Entity not found: cluster {cluster}"),
        ));
    }
    let mut clone = CloneSpec::named(&name);
    clone.host = template.host.clone().or_else(|| {
        spec.hosts
            .iter()
            .find(|h| h.cluster.as_deref() == Some(cluster.as_str()) && !h.in_maintenance)
            .map(|h| h.id.clone())
    });
    let vm = engine
        .lab
        .clone_vm(&engine.provider, &template.id, &clone)
        .map_err(|e| source_fault(format, e))?;
    Ok(reply(format, StatusCode::CREATED, &view.vm(&vm)))
}

/// Starts, stops or shuts down a VM, refusing what the engine refuses.
fn power(engine: &Engine, format: Format, id: &str, action: PowerAction) -> Reply {
    let vm = engine.vm(format, id, false)?;
    let running = vm.power_state == PowerState::On;
    match (action, running) {
        (PowerAction::Start, true) => Err(conflict(format, "Cannot run VM. VM is running.")),
        (PowerAction::Stop, false) => Err(conflict(format, "Cannot stop VM. VM is not running.")),
        (PowerAction::Shutdown, false) => {
            Err(conflict(format, "Cannot shutdown VM. VM is not running."))
        }
        _ => {
            engine
                .lab
                .set_power(&engine.provider, id, action)
                .map_err(|e| source_fault(format, e))?;
            Ok(completed(format))
        }
    }
}

async fn start(State(engine): State<Engine>, format: Format, Path(id): Path<String>) -> Reply {
    power(&engine, format, &id, PowerAction::Start)
}

async fn stop(State(engine): State<Engine>, format: Format, Path(id): Path<String>) -> Reply {
    power(&engine, format, &id, PowerAction::Stop)
}

async fn shutdown(State(engine): State<Engine>, format: Format, Path(id): Path<String>) -> Reply {
    power(&engine, format, &id, PowerAction::Shutdown)
}

/// `DELETE /vms/{id}`: a VM must be down first, as the engine wants it.
async fn remove(State(engine): State<Engine>, format: Format, Path(id): Path<String>) -> Reply {
    let vm = engine.vm(format, &id, false)?;
    if vm.power_state == PowerState::On {
        return Err(conflict(format, "Cannot remove VM. VM is running."));
    }
    engine
        .lab
        .remove_vm(&engine.provider, &id)
        .map_err(|e| source_fault(format, e))?;
    Ok(completed(format))
}

/// `POST /vms/{id}/nics`: a NIC on a vNIC profile's network, with the given MAC or a fresh one.
async fn add_nic(
    State(engine): State<Engine>,
    format: Format,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let request = body(format, &headers, &bytes, "nic")?;
    engine.vm(format, &id, false)?;
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let profile = request
        .get_at("vnic_profile/id")
        .ok_or_else(|| bad_request(format, "Nic [vnic_profile.id] required for add"))?;
    let network = view
        .network_of_profile(profile)
        .ok_or_else(|| bad_request(format, &format!("Entity not found: vNIC profile {profile}")))?;
    let new = NewNic {
        network: network.id.clone(),
        start_connected: request.get("plugged") != Some("false"),
        mac: request.get_at("mac/address").map(str::to_string),
    };
    let added = engine
        .lab
        .add_nic(&engine.provider, &id, &new)
        .map_err(|e| source_fault(format, e))?;
    let vm = engine.vm(format, &id, false)?;
    let index = vm.nics.iter().position(|n| n.mac == added.mac).unwrap_or(0);
    Ok(reply(format, StatusCode::CREATED, &view.nic(&vm, index)))
}

/// The lab's provisioning of an engine disk: sparse (cow) is thin, preallocated raw is thick.
fn provisioning(disk: &Node) -> Provisioning {
    let sparse = disk.get("sparse").map(|s| s == "true");
    let cow = disk.get("format") == Some("cow");
    if sparse.unwrap_or(cow) {
        Provisioning::Thin
    } else {
        Provisioning::ThickLazy
    }
}

/// `POST /vms/{id}/diskattachments`: a new disk of `provisioned_size` bytes (whole GiB, rounded up) on
/// the given storage domain (default: the VM's first disk's).
async fn add_attachment(
    State(engine): State<Engine>,
    format: Format,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let request = body(format, &headers, &bytes, "disk_attachment")?;
    let disk = request
        .find("disk")
        .ok_or_else(|| bad_request(format, "DiskAttachment [disk] required for add"))?;
    let size: u64 = disk
        .get("provisioned_size")
        .and_then(|s| s.parse().ok())
        .filter(|s| *s > 0)
        .ok_or_else(|| bad_request(format, "Disk [provisioned_size] required for add"))?;
    let new = NewDisk {
        size_gib: Some(size.div_ceil(GIB)),
        provisioning: provisioning(disk),
        mode: Default::default(),
        datastore: disk
            .get_at("storage_domains/storage_domain/id")
            .map(str::to_string),
        folder: None,
        rdm: None,
        lun_uuid: None,
    };
    let added = engine
        .lab
        .add_disk(&engine.provider, &id, &new)
        .map_err(|e| source_fault(format, e))?;
    let (spec, vm) = engine.spec_and_vm(format, &id, false)?;
    let index = vm
        .disks
        .iter()
        .position(|d| d.file == added.file)
        .unwrap_or(0);
    Ok(reply(
        format,
        StatusCode::CREATED,
        &View { spec: &spec }.disk_attachment(&vm, index),
    ))
}

async fn snapshots(State(engine): State<Engine>, format: Format, Path(id): Path<String>) -> Reply {
    let (spec, vm) = engine.spec_and_vm(format, &id, false)?;
    let snapshots = View { spec: &spec }.snapshots(&vm);
    Ok(ok(format, &Node::collection("snapshots", snapshots)))
}

async fn snapshot(
    State(engine): State<Engine>,
    format: Format,
    Path((id, snapshot)): Path<(String, String)>,
) -> Reply {
    let (spec, vm) = engine.spec_and_vm(format, &id, false)?;
    View { spec: &spec }
        .snapshots(&vm)
        .into_iter()
        .find(|s| s.get("id") == Some(snapshot.as_str()))
        .map(|s| ok(format, &s))
        .ok_or_else(|| super::not_found(format, "snapshot", &snapshot))
}

/// `POST /vms/{id}/snapshots`: a snapshot named by its `description`.
async fn add_snapshot(
    State(engine): State<Engine>,
    format: Format,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let request = body(format, &headers, &bytes, "snapshot")?;
    let description = request
        .get("description")
        .ok_or_else(|| bad_request(format, "Snapshot [description] required for add"))?;
    let taken = engine
        .lab
        .create_snapshot(&engine.provider, &id, description)
        .map_err(|e| source_fault(format, e))?;
    let (spec, vm) = engine.spec_and_vm(format, &id, false)?;
    let node = View { spec: &spec }
        .snapshots(&vm)
        .into_iter()
        .find(|s| s.get("id") == Some(taken.id.as_str()))
        .unwrap_or_default();
    Ok(reply(format, StatusCode::CREATED, &node))
}
