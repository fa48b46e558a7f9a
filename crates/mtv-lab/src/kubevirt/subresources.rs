//! KubeVirt's `subresources.kubevirt.io` API for VirtualMachines: `PUT .../virtualmachines/<name>/start`,
//! `stop` and `restart`, with virt-api's rules per run strategy. Like virt-api, a request only records what
//! is wanted (the run strategy, or a `status.stateChangeRequests` entry) and answers 202; the VM controller
//! (`forklift/kubevirt.rs`) then creates or deletes the VirtualMachineInstance. The VMI's `portforward`
//! stream is served by the lab's guests (`guest::sshd`) and listed here for discovery.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::registry;
use crate::store::{Store, WriteOptions};

/// The group and version virt-api serves the subresources under.
pub const GROUP: &str = "subresources.kubevirt.io";
pub const VERSION: &str = "v1";

/// The VirtualMachine subresources the lab serves.
pub const VM_ACTIONS: &[&str] = &["start", "stop", "restart"];

/// The VirtualMachineInstance subresources the lab serves (`guest::sshd`): streams, opened with GET.
pub const VMI_STREAMS: &[&str] = &["portforward"];

/// `/apis/subresources.kubevirt.io/v1`: the APIResourceList virt-api serves (subresources only, no kinds).
pub fn api_resource_list() -> Value {
    let actions = VM_ACTIONS.iter().map(|a| {
        json!({"name": format!("virtualmachines/{a}"), "singularName": "", "namespaced": true,
               "kind": "", "verbs": ["put"]})
    });
    let streams = VMI_STREAMS.iter().map(|s| {
        json!({"name": format!("virtualmachineinstances/{s}"), "singularName": "", "namespaced": true,
               "kind": "", "verbs": ["get"]})
    });
    let resources: Vec<Value> = actions.chain(streams).collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{GROUP}/{VERSION}"),
           "resources": resources})
}

/// The run strategy KubeVirt derives for a VM: `spec.running` wins when set, then `spec.runStrategy`,
/// else `Halted`.
pub fn run_strategy(vm: &Value) -> String {
    if let Some(running) = vm.pointer("/spec/running").and_then(Value::as_bool) {
        return if running { "Always" } else { "Halted" }.to_string();
    }
    vm.pointer("/spec/runStrategy")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("Halted")
        .to_string()
}

/// True when a VMI phase is final (the VMI no longer runs).
fn is_final(vmi: &Value) -> bool {
    matches!(
        vmi.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

fn conflict(name: &str, why: &str) -> ApiError {
    ApiError::conflict("kubevirt.io", "virtualmachine", name, why)
}

/// Handles `PUT .../virtualmachines/<name>/<action>`; `Ok` means 202 Accepted.
pub fn handle(
    store: &Store,
    namespace: &str,
    name: &str,
    action: &str,
    body: &Value,
) -> Result<(), ApiError> {
    let dry_run = body
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|v| v == "All"));
    let vm = store
        .get(&registry::VIRTUAL_MACHINE, Some(namespace), name)
        .map_err(|_| ApiError::not_found("kubevirt.io", "virtualmachines", name))?;
    let vmi = store
        .get(&registry::VIRTUAL_MACHINE_INSTANCE, Some(namespace), name)
        .ok();
    let change = match action {
        "start" => start(&vm, vmi.as_ref(), body)?,
        "stop" => stop(&vm, vmi.as_ref())?,
        "restart" => restart(&vm, vmi.as_ref(), body)?,
        _ => return Err(ApiError::path_not_found(action)),
    };
    if dry_run {
        return Ok(());
    }
    apply(store, namespace, name, change)
}

/// What a request changes on the VM.
#[derive(Debug, PartialEq)]
pub enum Change {
    /// `spec.runStrategy` (or `spec.running` when the VM uses it) becomes running or halted.
    Running(bool),
    /// These requests are appended to `status.stateChangeRequests` (a lone stop replaces them).
    Requests(Vec<Value>),
}

fn start_request() -> Value {
    json!({"action": "Start"})
}

fn stop_request(vmi: &Value) -> Value {
    json!({"action": "Stop", "uid": vmi.pointer("/metadata/uid").cloned().unwrap_or(Value::Null)})
}

/// virt-api's start rules.
pub fn start(vm: &Value, vmi: Option<&Value>, body: &Value) -> Result<Change, ApiError> {
    let name = crate::forklift::meta(vm, "name");
    if let Some(vmi) = vmi {
        let phase = vmi
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !is_final(vmi) && !phase.is_empty() && phase != "Unknown" {
            return Err(conflict(name, "VM is already running"));
        }
    }
    if body.get("paused").and_then(Value::as_bool) == Some(true) {
        return Err(ApiError::bad_request(
            "the lab does not simulate paused starts",
        ));
    }
    match run_strategy(vm).as_str() {
        "Halted" => Ok(Change::Running(true)),
        strategy @ ("Manual" | "RerunOnFailure") => {
            let final_vmi = vmi.filter(|v| is_final(v));
            if strategy == "RerunOnFailure"
                && final_vmi.is_some_and(|v| {
                    v.pointer("/status/phase").and_then(Value::as_str) == Some("Failed")
                })
            {
                return Err(conflict(
                    name,
                    "RerunOnFailure does not support starting VM from failed state",
                ));
            }
            Ok(Change::Requests(match final_vmi {
                Some(v) => vec![stop_request(v), start_request()],
                None => vec![start_request()],
            }))
        }
        other => Err(conflict(
            name,
            &format!("{other} does not support manual start requests"),
        )),
    }
}

/// virt-api's stop rules (without grace-period overrides).
pub fn stop(vm: &Value, vmi: Option<&Value>) -> Result<Change, ApiError> {
    let name = crate::forklift::meta(vm, "name");
    let running = vmi.filter(|v| !is_final(v));
    match run_strategy(vm).as_str() {
        "Halted" => match running {
            None => Err(conflict(name, "VM is not running")),
            Some(_) => Err(conflict(
                name,
                "Halted only supports manual stop requests with a shorter graceperiod",
            )),
        },
        "Manual" | "RerunOnFailure" => match running {
            None => Err(conflict(name, "VM is not running")),
            Some(v) => Ok(Change::Requests(vec![stop_request(v)])),
        },
        _ => Ok(Change::Running(false)),
    }
}

/// virt-api's restart rules.
pub fn restart(vm: &Value, vmi: Option<&Value>, body: &Value) -> Result<Change, ApiError> {
    let name = crate::forklift::meta(vm, "name");
    if let Some(grace) = body.get("gracePeriodSeconds").and_then(Value::as_i64) {
        if grace > 0 {
            return Err(ApiError::bad_request(
                "For force restart, only gracePeriod=0 is supported for now",
            ));
        }
        if grace < 0 {
            return Err(ApiError::bad_request(
                "gracePeriod has to be greater or equal to 0",
            ));
        }
    }
    let strategy = run_strategy(vm);
    if strategy == "Halted" || strategy == "Once" {
        // KubeVirt's own spelling.
        return Err(conflict(
            name,
            &format!("RunStategy {strategy} does not support manual restart requests"),
        ));
    }
    let Some(vmi) = vmi else {
        return Err(conflict(name, "VM is not running: Halted"));
    };
    Ok(Change::Requests(vec![stop_request(vmi), start_request()]))
}

/// Writes a change: the spec for run-strategy flips, the status for state change requests.
fn apply(store: &Store, namespace: &str, name: &str, change: Change) -> Result<(), ApiError> {
    match change {
        Change::Running(on) => store
            .modify(
                &registry::VIRTUAL_MACHINE,
                Some(namespace),
                name,
                &WriteOptions::default(),
                |vm| {
                    if vm.pointer("/spec/running").is_some_and(Value::is_boolean) {
                        vm["spec"]["running"] = json!(on);
                    } else {
                        vm["spec"]["runStrategy"] = json!(if on { "Always" } else { "Halted" });
                    }
                    Ok(())
                },
            )
            .map(|_| ()),
        Change::Requests(requests) => store
            .modify(
                &registry::VIRTUAL_MACHINE,
                Some(namespace),
                name,
                &WriteOptions::status(),
                |vm| {
                    let existing = vm
                        .pointer("/status/stateChangeRequests")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let lone_stop = requests.len() == 1 && requests[0]["action"] == "Stop";
                    let merged = if existing.is_empty() || lone_stop {
                        requests
                    } else {
                        return Err(ApiError::internal(
                            "unable to complete request: stop/start already underway",
                        ));
                    };
                    if !vm.get("status").is_some_and(Value::is_object) {
                        vm["status"] = json!({});
                    }
                    vm["status"]["stateChangeRequests"] = json!(merged);
                    if let Some(status) = vm["status"].as_object_mut() {
                        status.remove("startFailure");
                    }
                    Ok(())
                },
            )
            .map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(spec: Value) -> Value {
        json!({"metadata": {"name": "vm1", "namespace": "ns"}, "spec": spec})
    }

    fn running_vmi() -> Value {
        json!({"metadata": {"uid": "u1"}, "status": {"phase": "Running"}})
    }

    #[test]
    fn start_follows_the_run_strategy() {
        let none = json!({});
        assert_eq!(
            start(&vm(json!({"runStrategy": "Halted"})), None, &none).unwrap(),
            Change::Running(true)
        );
        assert_eq!(
            start(&vm(json!({"runStrategy": "Manual"})), None, &none).unwrap(),
            Change::Requests(vec![json!({"action": "Start"})])
        );
        let e = start(&vm(json!({"runStrategy": "Always"})), None, &none).unwrap_err();
        assert_eq!(e.code, 409);
        assert!(
            e.message
                .ends_with("Always does not support manual start requests"),
            "{}",
            e.message
        );
        let e = start(
            &vm(json!({"runStrategy": "Manual"})),
            Some(&running_vmi()),
            &none,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "Operation cannot be fulfilled on virtualmachine.kubevirt.io \"vm1\": VM is already running"
        );
        // A finished VMI is stopped (by uid) before the new start.
        let done = json!({"metadata": {"uid": "u9"}, "status": {"phase": "Succeeded"}});
        assert_eq!(
            start(&vm(json!({"runStrategy": "Manual"})), Some(&done), &none).unwrap(),
            Change::Requests(vec![
                json!({"action": "Stop", "uid": "u9"}),
                json!({"action": "Start"})
            ])
        );
        // `running: false` is Halted whatever runStrategy says.
        assert_eq!(
            start(&vm(json!({"running": false})), None, &none).unwrap(),
            Change::Running(true)
        );
    }

    #[test]
    fn stop_and_restart_follow_the_run_strategy() {
        assert_eq!(
            stop(&vm(json!({"runStrategy": "Always"})), Some(&running_vmi())).unwrap(),
            Change::Running(false)
        );
        assert_eq!(
            stop(&vm(json!({"runStrategy": "Manual"})), Some(&running_vmi())).unwrap(),
            Change::Requests(vec![json!({"action": "Stop", "uid": "u1"})])
        );
        let e = stop(&vm(json!({"runStrategy": "Manual"})), None).unwrap_err();
        assert!(e.message.ends_with("VM is not running"));
        let e = stop(&vm(json!({"runStrategy": "Halted"})), None).unwrap_err();
        assert!(e.message.ends_with("VM is not running"));
        let e = restart(&vm(json!({"runStrategy": "Halted"})), None, &json!({})).unwrap_err();
        assert!(
            e.message
                .ends_with("RunStategy Halted does not support manual restart requests")
        );
        assert_eq!(
            restart(
                &vm(json!({"runStrategy": "Always"})),
                Some(&running_vmi()),
                &json!({})
            )
            .unwrap(),
            Change::Requests(vec![
                json!({"action": "Stop", "uid": "u1"}),
                json!({"action": "Start"})
            ])
        );
        let e = restart(
            &vm(json!({"runStrategy": "Always"})),
            Some(&running_vmi()),
            &json!({"gracePeriodSeconds": 5}),
        )
        .unwrap_err();
        assert_eq!(e.code, 400);
    }

    #[test]
    fn discovery_lists_the_vm_subresources() {
        let doc = api_resource_list();
        let names: Vec<&str> = doc["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "virtualmachines/start",
                "virtualmachines/stop",
                "virtualmachines/restart",
                "virtualmachineinstances/portforward"
            ]
        );
    }
}
