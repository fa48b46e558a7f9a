//! The lab's virt-controller for VirtualMachines: DataVolumes from `dataVolumeTemplates`; a Running
//! VirtualMachineInstance (instancetype and preference expanded) on a node matching the template's
//! nodeSelector while the run strategy (`Always`, `RerunOnFailure`, or `running: true`) asks for one or a
//! `status.stateChangeRequests` entry of the subresource API (`kubevirt/subresources.rs`) starts it; none
//! when `Halted` or a stop request says so; the VM status KubeVirt writes (`kubevirt/status.rs`). A
//! migrated guest comes back with the addresses and agent it showed right after migration.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Controller, meta, slice_at, text_at};
use crate::clock;
use crate::kubevirt::subresources::run_strategy;
use crate::random;
use crate::registry;
use crate::store::{ListOptions, WriteOptions};

/// What the guest of a VirtualMachine shows once it runs, remembered per VirtualMachine uid.
#[derive(Debug, Clone, Default)]
pub(crate) struct GuestFacts {
    /// Addresses per interface name (`net-N`), the primary first.
    pub addresses: BTreeMap<String, Vec<String>>,
    /// The guest agent connects (`AgentConnected`).
    pub agent: bool,
    /// `guestOSInfo.id` when the agent runs.
    pub guest_os: String,
    /// Run on a node that does NOT match this selector (`misbehave=…@node-selector`).
    pub avoid_selector: Option<Map<String, Value>>,
}

impl GuestFacts {
    /// A guest the lab did not migrate (a VM a suite created): an agent, and a leased address per
    /// interface, as the inventory assumes for KubeVirt sources.
    fn unmigrated(vm: &Value) -> Self {
        let spec = vm.pointer("/spec/template/spec").unwrap_or(&Value::Null);
        let networks = slice_at(spec, "/networks");
        let mut leases = AddressLeases::default();
        let addresses = slice_at(spec, "/domain/devices/interfaces")
            .iter()
            .enumerate()
            .map(|(i, iface)| {
                let name = text_at(iface, "/name").to_string();
                let multus = networks
                    .iter()
                    .any(|n| text_at(n, "/name") == name && n.get("multus").is_some());
                (name, vec![leases.lease(multus, i)])
            })
            .collect();
        GuestFacts {
            addresses,
            agent: true,
            guest_os: text_at(vm, "/spec/template/metadata/annotations/vm.kubevirt.io~1os")
                .to_string(),
            avoid_selector: None,
        }
    }
}

/// DHCP-like addresses: `10.128.<n>.<host>` on the pod network, `172.20.<nic>.<host>` on multus.
#[derive(Debug, Default)]
pub(crate) struct AddressLeases {
    pod_leases: u8,
}

impl AddressLeases {
    pub(crate) fn lease(&mut self, multus: bool, nic_index: usize) -> String {
        let host = (random::next_u64() % 250 + 2) as u8;
        if multus {
            format!("172.20.{nic_index}.{host}")
        } else {
            self.pod_leases = self.pod_leases.wrapping_add(1);
            format!("10.128.{}.{host}", 2 + u32::from(self.pod_leases))
        }
    }
}

/// Whether the VirtualMachine's run strategy keeps it running (`Some(true)`), keeps it off
/// (`Some(false)`), or leaves that to start/stop requests (`None`: `Manual`, `Once`).
pub(crate) fn desired_running(vm: &Value) -> Option<bool> {
    match run_strategy(vm).as_str() {
        "Always" | "RerunOnFailure" => Some(true),
        "Halted" => Some(false),
        _ => None,
    }
}

/// True when every label of `selector` is on the node.
fn node_matches(node: &Value, selector: &Map<String, Value>) -> bool {
    selector.iter().all(|(k, v)| {
        node.pointer(&format!(
            "/metadata/labels/{}",
            k.replace('~', "~0").replace('/', "~1")
        )) == Some(v)
    })
}

/// Where the VM's DataVolumes stand: the VMI may start only once they all succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    Ready,
    Provisioning,
    Error,
}

/// A locally administered unicast MAC, for interfaces whose spec names none (the pod's own MAC).
fn generated_mac() -> String {
    let n = random::next_u64();
    let b = n.to_be_bytes();
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4]
    )
}

impl Controller {
    /// virt-controller for one VirtualMachine: DataVolumes from `dataVolumeTemplates`, the instance as the
    /// run strategy and `status.stateChangeRequests` ask, and the VM status KubeVirt writes.
    pub(crate) fn reconcile_virtual_machine(&mut self, vm: &Value) {
        if vm.pointer("/metadata/deletionTimestamp").is_some() {
            return;
        }
        let (ns, name) = (
            meta(vm, "namespace").to_string(),
            meta(vm, "name").to_string(),
        );
        let storage = self.ensure_data_volumes(vm);
        let mut instance = self
            .store
            .get(&registry::VIRTUAL_MACHINE_INSTANCE, Some(&ns), &name)
            .ok();
        let requests = vm
            .pointer("/status/stateChangeRequests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut consumed = 0;
        for request in &requests {
            match text_at(request, "/action") {
                "Stop" => {
                    let uid = text_at(request, "/uid");
                    if let Some(vmi) = &instance
                        && (uid.is_empty() || uid == meta(vmi, "uid"))
                    {
                        self.delete_instance(&ns, &name);
                        instance = None;
                    }
                }
                "Start" if instance.is_none() => {
                    if storage != Storage::Ready {
                        break;
                    }
                    instance = self.start_or_warn(vm);
                }
                _ => {}
            }
            consumed += 1;
        }
        if let Some(vmi) = &instance
            && failed_create(vmi)
        {
            instance = self.retry_launch(vm, vmi).or(instance);
        }
        match desired_running(vm) {
            Some(true) if instance.is_none() && storage == Storage::Ready => {
                instance = self.start_or_warn(vm);
            }
            Some(false) if instance.is_some() => {
                self.delete_instance(&ns, &name);
                instance = None;
            }
            _ => {}
        }
        self.write_vm_status(vm, instance.as_ref(), storage, consumed);
    }

    fn start_or_warn(&mut self, vm: &Value) -> Option<Value> {
        match self.start_vmi(vm) {
            Ok(()) => self
                .store
                .get(
                    &registry::VIRTUAL_MACHINE_INSTANCE,
                    Some(meta(vm, "namespace")),
                    meta(vm, "name"),
                )
                .ok(),
            Err(e) => {
                tracing::warn!(ns = meta(vm, "namespace"), name = meta(vm, "name"), error = %e, "kubevirt: the VM did not start");
                None
            }
        }
    }

    fn delete_instance(&self, ns: &str, name: &str) {
        let _ = self.store.delete(
            &registry::VIRTUAL_MACHINE_INSTANCE,
            Some(ns),
            name,
            &Default::default(),
        );
    }

    /// Creates the DataVolumes of `spec.dataVolumeTemplates` (owned by the VM) and reports where all the
    /// VM's DataVolume volumes stand.
    fn ensure_data_volumes(&mut self, vm: &Value) -> Storage {
        let ns = meta(vm, "namespace");
        let owner = json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "name": meta(vm, "name"),
                           "uid": meta(vm, "uid"), "controller": true, "blockOwnerDeletion": true});
        for template in slice_at(vm, "/spec/dataVolumeTemplates") {
            let dv_name = text_at(template, "/metadata/name");
            if dv_name.is_empty()
                || self
                    .store
                    .get(&registry::DATA_VOLUME, Some(ns), dv_name)
                    .is_ok()
            {
                continue;
            }
            let mut metadata = template.get("metadata").cloned().unwrap_or(json!({}));
            metadata["ownerReferences"] = json!([owner]);
            let dv = json!({"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume",
                            "metadata": metadata, "spec": template.get("spec").cloned().unwrap_or(json!({}))});
            if let Err(e) = self.store.create(&registry::DATA_VOLUME, Some(ns), dv) {
                tracing::warn!(%ns, %dv_name, error = %e, "kubevirt: the DataVolume template was not created");
            }
        }
        let mut storage = Storage::Ready;
        for volume in slice_at(vm, "/spec/template/spec/volumes") {
            let Some(dv_name) = volume.pointer("/dataVolume/name").and_then(Value::as_str) else {
                continue;
            };
            let dv = self
                .store
                .get(&registry::DATA_VOLUME, Some(ns), dv_name)
                .ok();
            let phase = dv
                .as_ref()
                .map(|d| text_at(d, "/status/phase").to_string())
                .unwrap_or_default();
            if phase == "Failed" {
                return Storage::Error;
            }
            if phase != "Succeeded" {
                storage = Storage::Provisioning;
            }
        }
        storage
    }

    /// Creates the VirtualMachine's instance from its template (with its instancetype and preference
    /// expanded), placed and addressed as its guest facts say. A NIC on a NetworkAttachmentDefinition that
    /// does not exist leaves the instance Pending: virt-controller cannot render its launcher pod.
    pub(crate) fn start_vmi(&mut self, vm: &Value) -> Result<(), String> {
        let ns = meta(vm, "namespace").to_string();
        let name = meta(vm, "name").to_string();
        let facts = self
            .guest_facts
            .entry(meta(vm, "uid").to_string())
            .or_insert_with(|| GuestFacts::unmigrated(vm))
            .clone();
        let tspec = self.expanded_template(vm);
        let selector = tspec
            .get("nodeSelector")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let nodes = self
            .store
            .list(&registry::NODE, None, &ListOptions::default())
            .map(|l| l.items)
            .unwrap_or_default();
        let node = match &facts.avoid_selector {
            Some(avoid) if !avoid.is_empty() => nodes
                .iter()
                .find(|n| !node_matches(n, avoid) && node_matches(n, &selector))
                .or_else(|| nodes.first()),
            _ => nodes.iter().find(|n| node_matches(n, &selector)),
        };
        let node_name = match node {
            Some(n) => meta(n, "name").to_string(),
            None if selector.is_empty() => "worker-0".to_string(),
            // Nothing matches the selector: the VMI stays unschedulable.
            None => String::new(),
        };
        let mut labels = vm
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        labels.insert("kubevirt.io/nodeName".into(), json!(node_name));
        let owner = json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "name": name,
                           "uid": meta(vm, "uid"), "controller": true, "blockOwnerDeletion": true});
        let instance = json!({
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachineInstance",
            "metadata": {"name": name, "labels": labels, "ownerReferences": [owner]},
            "spec": tspec
        });
        let created = self
            .store
            .create(&registry::VIRTUAL_MACHINE_INSTANCE, Some(&ns), instance)
            .map_err(|e| format!("failed to create the VirtualMachineInstance: {}", e.message))?;
        let status = match self.missing_network(&tspec, &ns) {
            Some(nad) => {
                let message = format!(
                    "failed to render launch manifest: failed to locate network attachment definition {nad}"
                );
                let _ = self.store.record_event(
                    &created,
                    "Warning",
                    "FailedCreate",
                    &message,
                    "virtualmachine-controller",
                );
                json!({"phase": "Pending", "conditions": [{"type": "Synchronized", "status": "False", "reason": "FailedCreate",
                                                           "message": message, "lastProbeTime": null, "lastTransitionTime": clock::now_rfc3339()}]})
            }
            None if node_name.is_empty() => {
                json!({"phase": "Scheduling", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."}]})
            }
            None => running_status(&tspec, &facts, &node_name),
        };
        let _ = self.store.update_status(
            &registry::VIRTUAL_MACHINE_INSTANCE,
            Some(&ns),
            &name,
            status,
        );
        Ok(())
    }

    /// virt-controller retries the launcher pod of a VMI it could not create: once the missing
    /// NetworkAttachmentDefinition exists the VMI runs. The VMI as it now is, when it changed.
    fn retry_launch(&mut self, vm: &Value, vmi: &Value) -> Option<Value> {
        let ns = meta(vmi, "namespace");
        let tspec = vmi.get("spec").cloned().unwrap_or_else(|| json!({}));
        if self.missing_network(&tspec, ns).is_some() {
            return None;
        }
        let facts = self
            .guest_facts
            .entry(meta(vm, "uid").to_string())
            .or_insert_with(|| GuestFacts::unmigrated(vm))
            .clone();
        let node = "worker-0";
        let status = running_status(&tspec, &facts, node);
        self.store
            .update_status(
                &registry::VIRTUAL_MACHINE_INSTANCE,
                Some(ns),
                meta(vmi, "name"),
                status,
            )
            .ok()
    }

    /// The VM's template spec with its instancetype and preference applied.
    fn expanded_template(&self, vm: &Value) -> Value {
        let get = |rt: &'static registry::ResourceType, ns: Option<&str>, name: &str| {
            self.store.get(rt, ns, name).ok()
        };
        let expanded = crate::kubevirt::instancetype::expanded_vm(vm, &get);
        expanded
            .pointer("/spec/template/spec")
            .cloned()
            .unwrap_or_else(|| json!({}))
    }

    /// The first multus network of a VMI spec whose NetworkAttachmentDefinition does not exist, as
    /// `namespace/name`.
    fn missing_network(&self, tspec: &Value, ns: &str) -> Option<String> {
        tspec
            .get("networks")
            .and_then(Value::as_array)?
            .iter()
            .filter_map(|n| n.pointer("/multus/networkName").and_then(Value::as_str))
            .map(|full| match full.split_once('/') {
                Some((nad_ns, nad)) => (nad_ns.to_string(), nad.to_string()),
                None => (ns.to_string(), full.to_string()),
            })
            .find(|(nad_ns, nad)| {
                self.store
                    .get(&registry::NETWORK_ATTACHMENT_DEFINITION, Some(nad_ns), nad)
                    .is_err()
            })
            .map(|(nad_ns, nad)| format!("{nad_ns}/{nad}"))
    }

    /// Writes the VM status KubeVirt shows for what was observed, dropping the `consumed` first
    /// state change requests.
    fn write_vm_status(
        &self,
        vm: &Value,
        instance: Option<&Value>,
        storage: Storage,
        consumed: usize,
    ) {
        let phase = instance
            .map(|i| text_at(i, "/status/phase"))
            .unwrap_or_default();
        let printable = match (instance, storage) {
            (None, Storage::Error) => "DataVolumeError",
            (None, Storage::Provisioning) => "Provisioning",
            (None, Storage::Ready) => "Stopped",
            (Some(_), _) if phase == "Running" => "Running",
            (Some(i), _)
                if i.pointer("/status/conditions/0/reason")
                    .and_then(Value::as_str)
                    == Some("Unschedulable") =>
            {
                "ErrorUnschedulable"
            }
            (Some(_), _) if phase == "Succeeded" || phase == "Failed" => "Stopped",
            (Some(_), _) => "Starting",
        };
        let observed = crate::kubevirt::status::Observed {
            printable: printable.into(),
            created: instance.is_some(),
            ready: phase == "Running",
            run_strategy: run_strategy(vm),
            vmi_conditions: instance
                .and_then(|i| i.pointer("/status/conditions"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        };
        let _ = self.store.modify(
            &registry::VIRTUAL_MACHINE,
            Some(meta(vm, "namespace")),
            meta(vm, "name"),
            &WriteOptions::status(),
            |o| {
                let mut status = crate::kubevirt::status::vm_status(o.get("status"), &observed);
                let left: Vec<Value> = status
                    .get("stateChangeRequests")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().skip(consumed).cloned().collect())
                    .unwrap_or_default();
                if let Some(map) = status.as_object_mut() {
                    if left.is_empty() {
                        map.remove("stateChangeRequests");
                    } else {
                        map.insert("stateChangeRequests".into(), json!(left));
                    }
                }
                // Unchanged apart from condition timestamps: no write.
                if o.get("status").is_some_and(|old| same_status(old, &status)) {
                    return Ok(());
                }
                o["status"] = status;
                Ok(())
            },
        );
    }
}

/// True when the VMI's launcher pod could not be created (`Synchronized=False/FailedCreate`).
fn failed_create(vmi: &Value) -> bool {
    text_at(vmi, "/status/phase") == "Pending"
        && vmi
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Synchronized" && c["reason"] == "FailedCreate")
            })
}

/// True when two VM statuses differ at most in condition timestamps.
fn same_status(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(cs) = v.get_mut("conditions").and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                c.remove("lastTransitionTime");
                c.remove("lastProbeTime");
            }
        }
        v
    };
    strip(a) == strip(b)
}

/// The status of a VMI that runs: its interfaces (the spec's MACs, or the pod's own), the guest's
/// addresses, Ready and agent conditions, guest OS info.
fn running_status(tspec: &Value, facts: &GuestFacts, node_name: &str) -> Value {
    let interfaces: Vec<Value> = slice_at(tspec, "/domain/devices/interfaces")
        .iter()
        .enumerate()
        .map(|(i, iface)| {
            let net = text_at(iface, "/name");
            let mac = Some(text_at(iface, "/macAddress"))
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .unwrap_or_else(generated_mac);
            let mut st = json!({"name": net, "mac": mac, "interfaceName": format!("eth{i}"),
                                "infoSource": "domain, guest-agent", "queueCount": 1});
            if let Some(ips) = facts.addresses.get(net).filter(|ips| !ips.is_empty()) {
                st["ipAddress"] = json!(ips[0]);
                st["ipAddresses"] = json!(ips);
            }
            st
        })
        .collect();
    let now = clock::now_rfc3339();
    let mut conditions = vec![
        json!({"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}),
        json!({"type": "LiveMigratable", "status": "True", "lastProbeTime": null, "lastTransitionTime": null}),
    ];
    if facts.agent {
        conditions.push(json!({"type": "AgentConnected", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
    }
    json!({"phase": "Running", "nodeName": node_name, "interfaces": interfaces, "conditions": conditions,
           "guestOSInfo": if facts.agent { json!({"id": facts.guest_os}) } else { json!({}) }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_strategy_and_running_say_what_is_wanted() {
        assert_eq!(
            desired_running(&json!({"spec": {"runStrategy": "Always"}})),
            Some(true)
        );
        assert_eq!(
            desired_running(&json!({"spec": {"runStrategy": "Manual", "running": true}})),
            Some(true)
        );
        assert_eq!(
            desired_running(&json!({"spec": {"running": true}})),
            Some(true)
        );
        assert_eq!(
            desired_running(&json!({"spec": {"runStrategy": "Manual"}})),
            None
        );
        // Nothing said is Halted, as KubeVirt derives it.
        assert_eq!(desired_running(&json!({"spec": {}})), Some(false));
    }

    #[test]
    fn unmigrated_guests_get_an_address_per_interface() {
        let vm = json!({"spec": {"template": {"spec": {
            "domain": {"devices": {"interfaces": [{"name": "default"}, {"name": "storage"}]}},
            "networks": [{"name": "default", "pod": {}}, {"name": "storage", "multus": {"networkName": "ns/storage"}}]}}}});
        let facts = GuestFacts::unmigrated(&vm);
        assert!(facts.agent);
        assert!(facts.addresses["default"][0].starts_with("10.128."));
        assert!(facts.addresses["storage"][0].starts_with("172.20.1."));
    }
}
