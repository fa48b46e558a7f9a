//! VM tasks: `CloneVM_Task`, `PowerOnVM_Task`, `PowerOffVM_Task`, `ReconfigVM_Task` (disks, NICs,
//! CPU, memory, changed block tracking), `CreateSnapshot_Task`, `Destroy_Task`. Each changes the
//! source model at once and leaves a `Task` whose `info` says how it ended.

use super::objects;
use super::value::V;
use super::xml::Element;
use super::{Fault, MethodResult, Sdk, returnval};
use crate::source::model::{DiskMode, PowerState, Provisioning, RdmMode};
use crate::source::{CloneSpec, NewDisk, NewNic, PowerAction, Vm};

/// A task as `Task.info` reports it.
#[derive(Debug, Clone)]
pub(crate) struct TaskRecord {
    description: String,
    entity: String,
    entity_name: String,
    outcome: Result<Option<V>, Fault>,
    queued: String,
    completed: String,
    chain: u64,
}

/// The `info` of a task.
pub(crate) fn task_properties(sdk: &Sdk, id: &str) -> Option<Vec<(&'static str, V)>> {
    let task = sdk.state().tasks.get(id).cloned()?;
    let mut info = vec![
        ("key", V::s(id)),
        ("task", V::r("Task", id)),
        ("descriptionId", V::s(&task.description)),
        ("entity", V::r("VirtualMachine", &task.entity)),
        ("entityName", V::s(&task.entity_name)),
        (
            "state",
            V::e(
                "TaskInfoState",
                if task.outcome.is_ok() {
                    "success"
                } else {
                    "error"
                },
            ),
        ),
        ("cancelled", V::b(false)),
        ("cancelable", V::b(false)),
    ];
    match &task.outcome {
        Ok(Some(result)) => info.push(("result", result.clone())),
        Ok(None) => {}
        Err(fault) => info.push((
            "error",
            V::Obj(
                "LocalizedMethodFault",
                vec![
                    ("fault", fault.as_value()),
                    ("localizedMessage", V::s(&fault.message)),
                ],
            ),
        )),
    }
    info.extend([
        ("queueTime", V::time(&task.queued)),
        ("startTime", V::time(&task.queued)),
        ("completeTime", V::time(&task.completed)),
        ("eventChainId", V::int(task.chain as i64)),
    ]);
    Some(vec![("info", V::Obj("TaskInfo", info))])
}

fn description(method: &str) -> &'static str {
    match method {
        "CloneVM_Task" => "VirtualMachine.clone",
        "PowerOnVM_Task" => "VirtualMachine.powerOn",
        "PowerOffVM_Task" => "VirtualMachine.powerOff",
        "ReconfigVM_Task" => "VirtualMachine.reconfigure",
        "CreateSnapshot_Task" => "VirtualMachine.createSnapshot",
        _ => "VirtualMachine.destroy",
    }
}

/// Runs a VM task: the VM must exist (else the call itself fails); the task then records the outcome.
pub(crate) fn run(
    sdk: &Sdk,
    method: &str,
    this: &(String, String),
    call: &Element,
) -> MethodResult {
    let vm = match sdk.lab.vm(&sdk.provider, &this.1) {
        Ok(vm) if this.0 == "VirtualMachine" => vm,
        _ => return Err(Fault::not_found(&this.0, &this.1)),
    };
    let outcome = match method {
        "CloneVM_Task" => clone(sdk, &vm, call),
        "PowerOnVM_Task" => power(sdk, &vm, true),
        "PowerOffVM_Task" => power(sdk, &vm, false),
        "ReconfigVM_Task" => reconfigure(sdk, &vm, call).map(|_| None),
        "CreateSnapshot_Task" => snapshot(sdk, &vm, call),
        _ => destroy(sdk, &vm).map(|_| None),
    };
    let now = crate::clock::now_rfc3339();
    let mut state = sdk.state();
    let number = state.next();
    let id = format!("task-{number}");
    state.tasks.insert(
        id.clone(),
        TaskRecord {
            description: description(method).to_string(),
            entity: vm.id.clone(),
            entity_name: vm.name.clone(),
            outcome,
            queued: now.clone(),
            completed: now,
            chain: number,
        },
    );
    state.update_version += 1;
    Ok(returnval(&V::r("Task", &id)))
}

fn power_name(state: PowerState) -> &'static str {
    match state {
        PowerState::On => "poweredOn",
        PowerState::Off => "poweredOff",
    }
}

fn invalid_power_state(vm: &Vm, requested: PowerState) -> Fault {
    Fault::new(
        "InvalidPowerState",
        format!(
            "The attempted operation cannot be performed in the current state ({}).",
            if vm.power_state == PowerState::On {
                "Powered on"
            } else {
                "Powered off"
            }
        ),
    )
    .with(
        "requestedState",
        V::e("VirtualMachinePowerState", power_name(requested)),
    )
    .with(
        "existingState",
        V::e("VirtualMachinePowerState", power_name(vm.power_state)),
    )
}

fn power(sdk: &Sdk, vm: &Vm, on: bool) -> Result<Option<V>, Fault> {
    let wanted = if on { PowerState::On } else { PowerState::Off };
    if vm.template {
        return Err(Fault::new(
            "InvalidState",
            format!("{} is a template", vm.name),
        ));
    }
    if vm.power_state == wanted {
        return Err(invalid_power_state(vm, wanted));
    }
    let action = if on {
        PowerAction::Start
    } else {
        PowerAction::Stop
    };
    sdk.lab.set_power(&sdk.provider, &vm.id, action)?;
    Ok(None)
}

fn destroy(sdk: &Sdk, vm: &Vm) -> Result<(), Fault> {
    if vm.power_state == PowerState::On {
        return Err(invalid_power_state(vm, PowerState::Off));
    }
    sdk.lab.remove_vm(&sdk.provider, &vm.id)?;
    Ok(())
}

fn snapshot(sdk: &Sdk, vm: &Vm, call: &Element) -> Result<Option<V>, Fault> {
    let name = call.text_at("name").unwrap_or("");
    let snapshot = sdk.lab.create_snapshot(&sdk.provider, &vm.id, name)?;
    Ok(Some(V::r("VirtualMachineSnapshot", &snapshot.id)))
}

/// The provisioning a backing's `thinProvisioned`/`eagerlyScrub` flags say.
fn provisioning_of(backing: &Element) -> Option<Provisioning> {
    let thin = backing.bool_at("thinProvisioned");
    let eager = backing.bool_at("eagerlyScrub");
    match (thin, eager) {
        (None, None) => None,
        (Some(true), _) => Some(Provisioning::Thin),
        (_, Some(true)) => Some(Provisioning::ThickEager),
        _ => Some(Provisioning::ThickLazy),
    }
}

fn clone(sdk: &Sdk, vm: &Vm, call: &Element) -> Result<Option<V>, Fault> {
    let name = call.text_at("name").unwrap_or("").to_string();
    let spec = call.child("spec");
    let moref_at = |path: &str| {
        spec.and_then(|s| s.at(path))
            .and_then(Element::moref)
            .map(|(_, id)| id)
    };
    let mut request = CloneSpec::named(&name);
    request.target_datastore = moref_at("location/datastore");
    request.host = moref_at("location/host");
    request.cbt = spec.and_then(|s| s.bool_at("config/changeTrackingEnabled"));
    if spec.and_then(|s| s.bool_at("powerOn")) == Some(true) {
        request.power_state = Some(PowerState::On);
    }
    request.disk_type = spec
        .and_then(|s| s.at("location/disk/diskBackingInfo"))
        .and_then(provisioning_of);
    if sdk
        .lab
        .vms_named(&sdk.provider, &name)
        .is_ok_and(|v| !v.is_empty())
    {
        return Err(Fault::new(
            "DuplicateName",
            format!("The name '{name}' already exists."),
        )
        .with("name", V::s(&name))
        .with("object", V::r("Folder", objects::VM_FOLDER)));
    }
    let clone = sdk.lab.clone_vm(&sdk.provider, &vm.id, &request)?;
    if spec.and_then(|s| s.bool_at("template")) == Some(true) {
        sdk.lab.update_vm(&sdk.provider, &clone.id, |vm| {
            vm.template = true;
            vm.power_state = PowerState::Off;
        })?;
    }
    Ok(Some(V::r("VirtualMachine", &clone.id)))
}

/// The NIC types of vim25 (a device change with one of these is a NIC).
fn is_nic(device: &Element) -> bool {
    device.child("macAddress").is_some()
        || matches!(
            device.kind(),
            "VirtualVmxnet3"
                | "VirtualVmxnet2"
                | "VirtualE1000"
                | "VirtualE1000e"
                | "VirtualPCNet32"
                | "VirtualSriovEthernetCard"
                | "VirtualVmxnet"
        )
}

fn reconfigure(sdk: &Sdk, vm: &Vm, call: &Element) -> Result<(), Fault> {
    let spec = call
        .child("spec")
        .ok_or_else(|| Fault::invalid_argument("spec", "ReconfigVM_Task needs a spec"))?;
    let cbt = spec.bool_at("changeTrackingEnabled");
    let cpus = spec.i64_at("numCPUs");
    let cores = spec.i64_at("numCoresPerSocket");
    let memory = spec.i64_at("memoryMB");
    if cbt.is_some() || cpus.is_some() || cores.is_some() || memory.is_some() {
        if vm.power_state == PowerState::On && (cpus.is_some() || memory.is_some()) {
            return Err(invalid_power_state(vm, PowerState::Off));
        }
        sdk.lab.update_vm(&sdk.provider, &vm.id, |vm| {
            if let Some(cbt) = cbt {
                vm.cbt = cbt;
            }
            if let Some(cores) = cores.filter(|c| *c > 0) {
                vm.cores_per_socket = cores as u32;
            }
            if let Some(cpus) = cpus.filter(|c| *c > 0) {
                vm.cpu_sockets = (cpus as u32 / vm.cores_per_socket.max(1)).max(1);
            }
            if let Some(memory) = memory.filter(|m| *m > 0) {
                vm.memory_mib = memory as u64;
            }
        })?;
    }
    for change in spec.children_named("deviceChange") {
        let device = change.child("device").ok_or_else(|| {
            Fault::invalid_argument("deviceChange.device", "a device change needs a device")
        })?;
        match change.text_at("operation").unwrap_or("") {
            "add" if device.kind() == "VirtualDisk" => add_disk(sdk, vm, device)?,
            "add" if is_nic(device) => add_nic(sdk, vm, device)?,
            "remove" => remove_device(sdk, vm, device)?,
            operation => {
                return Err(Fault::new(
                    "NotSupported",
                    format!(
                        "the lab's vSphere does not {} a {} device",
                        if operation.is_empty() {
                            "change"
                        } else {
                            operation
                        },
                        device.kind()
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn add_disk(sdk: &Sdk, vm: &Vm, device: &Element) -> Result<(), Fault> {
    let backing = device.child("backing").cloned().unwrap_or_default();
    let kib = device
        .i64_at("capacityInBytes")
        .filter(|b| *b > 0)
        .map(|b| b / 1024)
        .or_else(|| device.i64_at("capacityInKB"))
        .unwrap_or(0);
    let rdm = (backing.kind() == "VirtualDiskRawDiskMappingVer1BackingInfo").then(|| match backing
        .text_at("compatibilityMode")
    {
        Some("physicalMode") => RdmMode::Physical,
        _ => RdmMode::Virtual,
    });
    let mode = match backing.text_at("diskMode") {
        Some("independent_persistent") => DiskMode::IndependentPersistent,
        Some("independent_nonpersistent") => DiskMode::IndependentNonpersistent,
        _ => DiskMode::Persistent,
    };
    let gib = 1024 * 1024;
    let request = NewDisk {
        size_gib: (kib > 0).then(|| (kib as u64).div_ceil(gib)),
        provisioning: provisioning_of(&backing).unwrap_or_default(),
        mode,
        datastore: backing
            .child("datastore")
            .and_then(Element::moref)
            .map(|(_, id)| id),
        folder: None,
        rdm,
        lun_uuid: backing
            .text_at("lunUuid")
            .filter(|l| !l.is_empty())
            .map(str::to_string),
    };
    sdk.lab.add_disk(&sdk.provider, &vm.id, &request)?;
    Ok(())
}

fn add_nic(sdk: &Sdk, vm: &Vm, device: &Element) -> Result<(), Fault> {
    let backing = device.child("backing").cloned().unwrap_or_default();
    let network = backing
        .child("network")
        .and_then(Element::moref)
        .map(|(_, id)| id)
        .or_else(|| backing.text_at("port/portgroupKey").map(str::to_string))
        .or_else(|| backing.text_at("deviceName").map(str::to_string))
        .ok_or_else(|| Fault::invalid_argument("device.backing", "a new NIC needs a network"))?;
    let manual = device.text_at("addressType") == Some("manual");
    let request = NewNic {
        network,
        start_connected: device.bool_at("connectable/startConnected").unwrap_or(true),
        mac: manual
            .then(|| device.text_at("macAddress").map(str::to_string))
            .flatten(),
    };
    sdk.lab.add_nic(&sdk.provider, &vm.id, &request)?;
    Ok(())
}

fn remove_device(sdk: &Sdk, vm: &Vm, device: &Element) -> Result<(), Fault> {
    let key = device.i64_at("key").unwrap_or(i64::MIN);
    let nic = (0..vm.nics.len()).find(|i| objects::nic_key(*i) == key);
    let disk = vm.disks.iter().any(|d| d.key == key);
    if nic.is_none() && !disk {
        return Err(Fault::invalid_argument(
            "deviceChange.device.key",
            format!("the VM has no device with key {key}"),
        ));
    }
    sdk.lab.update_vm(&sdk.provider, &vm.id, |vm| match nic {
        Some(index) => {
            vm.nics.remove(index);
        }
        None => vm.disks.retain(|d| d.key != key),
    })?;
    Ok(())
}
