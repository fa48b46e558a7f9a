//! A minimal KubeVirt: a VirtualMachine whose `spec.runStrategy` is `Always`/`RerunOnFailure` (or
//! `spec.running: true`) gets a Running VirtualMachineInstance on a node matching its template's
//! nodeSelector, `Halted` (or `running: false`) removes it; `status.printableStatus` follows. A migrated
//! guest comes back with the addresses and agent it showed right after migration.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Controller, meta, s};
use crate::clock;
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
        let networks = spec
            .get("networks")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut leases = AddressLeases::default();
        let addresses = spec
            .pointer("/domain/devices/interfaces")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, iface)| {
                let name = s(iface, "/name").to_string();
                let multus = networks
                    .iter()
                    .any(|n| s(n, "/name") == name && n.get("multus").is_some());
                (name, vec![leases.lease(multus, i)])
            })
            .collect();
        GuestFacts {
            addresses,
            agent: true,
            guest_os: s(vm, "/spec/template/metadata/annotations/vm.kubevirt.io~1os").to_string(),
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

/// Whether the VirtualMachine asks to run: `Some(true)`/`Some(false)`, `None` when it leaves that to
/// someone else (`Manual`, `Once`, or nothing said).
pub(crate) fn desired_running(vm: &Value) -> Option<bool> {
    match s(vm, "/spec/runStrategy") {
        "Always" | "RerunOnFailure" => Some(true),
        "Halted" => Some(false),
        "" => vm.pointer("/spec/running").and_then(Value::as_bool),
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

impl Controller {
    /// Starts or stops the VirtualMachine's instance as its spec asks.
    pub(crate) fn reconcile_virtual_machine(&mut self, vm: &Value) {
        if vm.pointer("/metadata/deletionTimestamp").is_some() {
            return;
        }
        let Some(run) = desired_running(vm) else {
            return;
        };
        let (ns, name) = (meta(vm, "namespace"), meta(vm, "name"));
        let instance = self
            .store
            .get(&registry::VIRTUAL_MACHINE_INSTANCE, Some(ns), name)
            .ok();
        match (run, instance) {
            (true, None) => {
                if let Err(e) = self.start_vmi(vm) {
                    tracing::warn!(%ns, %name, error = %e, "kubevirt: the VM did not start");
                }
            }
            (false, Some(_)) => {
                let _ = self.store.delete(
                    &registry::VIRTUAL_MACHINE_INSTANCE,
                    Some(ns),
                    name,
                    &Default::default(),
                );
                self.write_vm_power_status(vm, "Stopped", false);
            }
            (false, None) if s(vm, "/status/printableStatus") != "Stopped" => {
                self.write_vm_power_status(vm, "Stopped", false);
            }
            _ => {}
        }
    }

    /// Creates the VirtualMachine's instance from its template, placed and addressed as its guest facts say.
    pub(crate) fn start_vmi(&mut self, vm: &Value) -> Result<(), String> {
        let ns = meta(vm, "namespace").to_string();
        let name = meta(vm, "name").to_string();
        let facts = self
            .guest_facts
            .entry(meta(vm, "uid").to_string())
            .or_insert_with(|| GuestFacts::unmigrated(vm))
            .clone();
        let tspec = vm
            .pointer("/spec/template/spec")
            .cloned()
            .unwrap_or_else(|| json!({}));
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
        self.store
            .create(&registry::VIRTUAL_MACHINE_INSTANCE, Some(&ns), instance)
            .map_err(|e| format!("failed to create the VirtualMachineInstance: {}", e.message))?;
        let status = if node_name.is_empty() {
            json!({"phase": "Scheduling", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."}]})
        } else {
            let interfaces: Vec<Value> = tspec
                .pointer("/domain/devices/interfaces")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, iface)| {
                    let net = s(iface, "/name");
                    let mut st = json!({"name": net, "mac": s(iface, "/macAddress"), "interfaceName": format!("eth{i}"),
                                        "infoSource": "domain, guest-agent", "queueCount": 1});
                    if let Some(ips) = facts.addresses.get(net).filter(|ips| !ips.is_empty()) {
                        st["ipAddress"] = json!(ips[0]);
                        st["ipAddresses"] = json!(ips);
                    }
                    st
                })
                .collect();
            let now = clock::now_rfc3339();
            let mut conditions =
                vec![json!({"type": "Ready", "status": "True", "lastTransitionTime": now})];
            if facts.agent {
                conditions.push(
                    json!({"type": "AgentConnected", "status": "True", "lastTransitionTime": now}),
                );
            }
            json!({"phase": "Running", "nodeName": node_name, "interfaces": interfaces, "conditions": conditions,
                   "guestOSInfo": if facts.agent { json!({"id": facts.guest_os}) } else { json!({}) }})
        };
        let _ = self.store.update_status(
            &registry::VIRTUAL_MACHINE_INSTANCE,
            Some(&ns),
            &name,
            status,
        );
        if node_name.is_empty() {
            self.write_vm_power_status(vm, "ErrorUnschedulable", false);
        } else {
            self.write_vm_power_status(vm, "Running", true);
        }
        Ok(())
    }

    fn write_vm_power_status(&self, vm: &Value, printable: &str, running: bool) {
        let strategy = Some(s(vm, "/spec/runStrategy"))
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| {
                if desired_running(vm) == Some(true) {
                    "Always".into()
                } else {
                    "Halted".into()
                }
            });
        let _ = self.store.modify(
            &registry::VIRTUAL_MACHINE,
            Some(meta(vm, "namespace")),
            meta(vm, "name"),
            &WriteOptions::status(),
            |o| {
                let status = &mut o["status"];
                status["printableStatus"] = json!(printable);
                status["ready"] = json!(running);
                status["created"] = json!(running);
                status["runStrategy"] = json!(strategy);
                Ok(())
            },
        );
    }
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
            desired_running(&json!({"spec": {"runStrategy": "Halted", "running": true}})),
            Some(false)
        );
        assert_eq!(
            desired_running(&json!({"spec": {"running": true}})),
            Some(true)
        );
        assert_eq!(
            desired_running(&json!({"spec": {"runStrategy": "Manual"}})),
            None
        );
        assert_eq!(desired_running(&json!({"spec": {}})), None);
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
