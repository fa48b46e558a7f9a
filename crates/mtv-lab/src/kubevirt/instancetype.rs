//! Instancetypes and preferences (`instancetype.kubevirt.io`): KubeVirt's admission check that a
//! VirtualMachine's `spec.instancetype`/`spec.preference` exist and do not clash with its template, and
//! their expansion into the template (CPU, memory, preferred devices and firmware) that virt-controller
//! does when it creates the VirtualMachineInstance and that VirtualMachineExport does in its manifest.

use serde_json::{Map, Value, json};

use crate::admission::{Admission, AdmissionRequest};
use crate::error::{ApiError, StatusCause};
use crate::registry::{self, ResourceType};

/// Reads one object (kind, namespace, name): the store, or an admission's view of it.
pub type Lookup<'a> = dyn Fn(&'static ResourceType, Option<&str>, &str) -> Option<Value> + 'a;

/// The webhook name KubeVirt's VM validation runs under.
const VM_VALIDATOR: &str = "virtualmachine-validator.kubevirt.io";

/// The kind a reference names (the cluster-wide kinds when unset), as a resource type.
fn referenced(reference: &Value, preference: bool) -> Option<&'static ResourceType> {
    let kind = reference
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (preference, kind.to_ascii_lowercase().as_str()) {
        (false, "" | "virtualmachineclusterinstancetype") => {
            Some(&registry::VIRTUAL_MACHINE_CLUSTER_INSTANCETYPE)
        }
        (false, "virtualmachineinstancetype") => Some(&registry::VIRTUAL_MACHINE_INSTANCETYPE),
        (true, "" | "virtualmachineclusterpreference") => {
            Some(&registry::VIRTUAL_MACHINE_CLUSTER_PREFERENCE)
        }
        (true, "virtualmachinepreference") => Some(&registry::VIRTUAL_MACHINE_PREFERENCE),
        _ => None,
    }
}

/// Looks up the object a VM's `spec.instancetype` (or `spec.preference`) names; `Ok(None)` when the VM
/// names none, `Err` with KubeVirt's message when it names one that does not exist.
pub fn resolve(vm: &Value, preference: bool, get: &Lookup<'_>) -> Result<Option<Value>, String> {
    let field = if preference {
        "preference"
    } else {
        "instancetype"
    };
    let Some(reference) = vm
        .pointer(&format!("/spec/{field}"))
        .filter(|r| r.is_object())
    else {
        return Ok(None);
    };
    let name = reference
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(rt) = referenced(reference, preference) else {
        return Err(format!(
            "got unexpected kind in {field}Matcher: {}",
            reference
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ));
    };
    let ns = vm
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|_| rt.namespaced);
    get(rt, ns, name).map(Some).ok_or_else(|| {
        format!(
            "Failure to find {field}: {}.{} \"{name}\" not found",
            rt.plural, rt.group
        )
    })
}

/// The template fields an instancetype owns: setting them on the VM as well is a conflict.
fn conflicts(vm: &Value, instancetype: &Value) -> Vec<StatusCause> {
    let domain = vm
        .pointer("/spec/template/spec/domain")
        .unwrap_or(&Value::Null);
    let mut out = Vec::new();
    if instancetype.pointer("/spec/cpu").is_some() {
        for key in ["sockets", "cores", "threads"] {
            if domain.pointer(&format!("/cpu/{key}")).is_some() {
                out.push(format!("spec.template.spec.domain.cpu.{key}"));
            }
        }
        if domain.pointer("/resources/requests/cpu").is_some() {
            out.push("spec.template.spec.domain.resources.requests.cpu".into());
        }
    }
    if instancetype.pointer("/spec/memory").is_some() {
        if domain.pointer("/memory/guest").is_some() {
            out.push("spec.template.spec.domain.memory.guest".into());
        }
        if domain.pointer("/resources/requests/memory").is_some() {
            out.push("spec.template.spec.domain.resources.requests.memory".into());
        }
    }
    out.into_iter()
        .map(|field| StatusCause {
            reason: "FieldValueInvalid".into(),
            message: format!("VM field(s) {field} conflicts with selected instance type"),
            field,
        })
        .collect()
}

/// KubeVirt's VirtualMachine admission for instancetypes and preferences.
pub struct InstancetypeValidation;

impl Admission for InstancetypeValidation {
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError> {
        if !std::ptr::eq(request.resource, &registry::VIRTUAL_MACHINE) || request.status {
            return Ok(());
        }
        let get = |rt: &'static ResourceType, ns: Option<&str>, name: &str| {
            request.view.get(rt, ns, name)
        };
        let instancetype =
            resolve(object, false, &get).map_err(|m| ApiError::webhook_denied(VM_VALIDATOR, &m))?;
        resolve(object, true, &get).map_err(|m| ApiError::webhook_denied(VM_VALIDATOR, &m))?;
        if let Some(it) = instancetype {
            let causes = conflicts(object, &it);
            if !causes.is_empty() {
                let message = causes
                    .iter()
                    .map(|c| c.message.clone())
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut e = ApiError::webhook_denied(VM_VALIDATOR, &message);
                e.code = 422;
                e.reason = "Invalid".into();
                e.causes = causes;
                return Err(e);
            }
        }
        Ok(())
    }
}

/// CPU topology from a guest vCPU count and a preference's `preferredCPUTopology`.
fn topology(guest: u64, preferred: &str) -> Value {
    match preferred {
        "preferCores" | "cores" => json!({"sockets": 1, "cores": guest, "threads": 1}),
        "preferThreads" | "threads" => json!({"sockets": 1, "cores": 1, "threads": guest}),
        _ => json!({"sockets": guest, "cores": 1, "threads": 1}),
    }
}

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.get(key).is_some_and(Value::is_object) {
        v[key] = json!({});
    }
    v[key].as_object_mut().expect("just made an object")
}

/// Applies an instancetype and a preference to a VMI spec (`template.spec` of the VM): the instancetype's
/// CPU and memory, the preference's topology, disk bus, interface model and firmware where the spec says
/// nothing.
pub fn expand(spec: &mut Value, instancetype: Option<&Value>, preference: Option<&Value>) {
    let pref = |p: &str| {
        preference
            .and_then(|v| v.pointer(p))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let domain = obj_mut(spec, "domain");
    if let Some(it) = instancetype {
        if let Some(guest) = it.pointer("/spec/cpu/guest").and_then(Value::as_u64) {
            let preferred = preference
                .and_then(|p| {
                    p.pointer("/spec/cpu/preferredCPUTopology")
                        .or_else(|| p.pointer("/spec/preferredCPUTopology"))
                })
                .and_then(Value::as_str)
                .unwrap_or("preferSockets");
            domain.insert("cpu".into(), topology(guest, preferred));
        }
        if let Some(memory) = it.pointer("/spec/memory/guest").cloned() {
            domain.insert("memory".into(), json!({"guest": memory}));
        }
    }
    let bus = pref("/spec/devices/preferredDiskBus");
    let model = pref("/spec/devices/preferredInterfaceModel");
    let devices = domain
        .entry("devices")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(devices) = devices {
        if !bus.is_empty()
            && let Some(disks) = devices.get_mut("disks").and_then(Value::as_array_mut)
        {
            for disk in disks {
                let target = disk
                    .as_object_mut()
                    .map(|d| d.entry("disk").or_insert_with(|| json!({})));
                if let Some(Value::Object(d)) = target {
                    d.entry("bus").or_insert_with(|| json!(bus));
                }
            }
        }
        if !model.is_empty()
            && let Some(ifaces) = devices.get_mut("interfaces").and_then(Value::as_array_mut)
        {
            for iface in ifaces.iter_mut().filter_map(Value::as_object_mut) {
                iface.entry("model").or_insert_with(|| json!(model));
            }
        }
    }
    let efi = preference
        .and_then(|p| p.pointer("/spec/firmware/preferredUseEfi"))
        .and_then(Value::as_bool)
        == Some(true);
    if efi {
        let secure = preference
            .and_then(|p| p.pointer("/spec/firmware/preferredUseSecureBoot"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let firmware = domain.entry("firmware").or_insert_with(|| json!({}));
        if firmware.pointer("/bootloader").is_none() {
            firmware["bootloader"] = json!({"efi": {"secureBoot": secure}});
        }
    }
}

/// The VM with its instancetype and preference expanded into the template and the references removed,
/// as VirtualMachineExport's manifest shows it; the VM unchanged when it names none (or they are gone).
pub fn expanded_vm(vm: &Value, get: &Lookup<'_>) -> Value {
    let it = resolve(vm, false, get).ok().flatten();
    let pref = resolve(vm, true, get).ok().flatten();
    if it.is_none() && pref.is_none() {
        return vm.clone();
    }
    let mut out = vm.clone();
    if let Some(spec) = out.pointer_mut("/spec/template/spec") {
        expand(spec, it.as_ref(), pref.as_ref());
    }
    if let Some(spec) = out.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("instancetype");
        spec.remove("preference");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it() -> Value {
        json!({"metadata": {"name": "u1.small"}, "spec": {"cpu": {"guest": 2}, "memory": {"guest": "2Gi"}}})
    }

    #[test]
    fn expansion_sets_cpu_memory_and_preferred_devices() {
        let mut spec = json!({"domain": {"devices": {"disks": [{"name": "root"}], "interfaces": [{"name": "default", "masquerade": {}}]}}});
        let pref = json!({"spec": {"cpu": {"preferredCPUTopology": "preferCores"},
                                   "devices": {"preferredDiskBus": "virtio", "preferredInterfaceModel": "virtio"},
                                   "firmware": {"preferredUseEfi": true}}});
        expand(&mut spec, Some(&it()), Some(&pref));
        assert_eq!(
            spec["domain"]["cpu"],
            json!({"sockets": 1, "cores": 2, "threads": 1})
        );
        assert_eq!(spec["domain"]["memory"]["guest"], "2Gi");
        assert_eq!(
            spec["domain"]["devices"]["disks"][0]["disk"]["bus"],
            "virtio"
        );
        assert_eq!(
            spec["domain"]["devices"]["interfaces"][0]["model"],
            "virtio"
        );
        assert_eq!(
            spec["domain"]["firmware"]["bootloader"]["efi"]["secureBoot"],
            false
        );
        // Without a preference, vCPUs become sockets.
        let mut plain = json!({});
        expand(&mut plain, Some(&it()), None);
        assert_eq!(
            plain["domain"]["cpu"],
            json!({"sockets": 2, "cores": 1, "threads": 1})
        );
    }

    #[test]
    fn references_resolve_or_fail_with_kubevirts_message() {
        let vm =
            json!({"metadata": {"namespace": "ns"}, "spec": {"instancetype": {"name": "missing"}}});
        let none = |_: &'static ResourceType, _: Option<&str>, _: &str| None;
        assert_eq!(
            resolve(&vm, false, &none).unwrap_err(),
            "Failure to find instancetype: virtualmachineclusterinstancetypes.instancetype.kubevirt.io \"missing\" not found"
        );
        let found = |rt: &'static ResourceType, ns: Option<&str>, name: &str| {
            (std::ptr::eq(rt, &registry::VIRTUAL_MACHINE_INSTANCETYPE)
                && ns == Some("ns")
                && name == "mine")
                .then(it)
        };
        let vm = json!({"metadata": {"namespace": "ns"}, "spec": {"instancetype": {"name": "mine", "kind": "VirtualMachineInstancetype"}}});
        assert!(resolve(&vm, false, &found).unwrap().is_some());
        assert_eq!(resolve(&vm, true, &found).unwrap(), None);
    }

    #[test]
    fn template_cpu_or_memory_conflicts_with_an_instancetype() {
        let vm = json!({"spec": {"template": {"spec": {"domain": {"cpu": {"cores": 4}, "memory": {"guest": "1Gi"}}}}}});
        let fields: Vec<String> = conflicts(&vm, &it()).into_iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            [
                "spec.template.spec.domain.cpu.cores",
                "spec.template.spec.domain.memory.guest"
            ]
        );
    }

    #[test]
    fn export_manifests_carry_the_expanded_template() {
        let vm = json!({"metadata": {"namespace": "ns"}, "spec": {"instancetype": {"name": "u1.small"}, "template": {"spec": {"domain": {"devices": {}}}}}});
        let get = |rt: &'static ResourceType, _: Option<&str>, _: &str| {
            std::ptr::eq(rt, &registry::VIRTUAL_MACHINE_CLUSTER_INSTANCETYPE).then(it)
        };
        let out = expanded_vm(&vm, &get);
        assert!(out["spec"].get("instancetype").is_none());
        assert_eq!(
            out["spec"]["template"]["spec"]["domain"]["cpu"]["sockets"],
            2
        );
    }
}
