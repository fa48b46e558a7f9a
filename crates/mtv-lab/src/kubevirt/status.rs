//! VirtualMachine status as virt-controller writes it: `printableStatus`, `ready` and `created` present
//! only when true (KubeVirt omits false booleans), `runStrategy`, and conditions (copied from the VMI when
//! one exists, else `Ready=False/VMINotExists`).

use serde_json::{Map, Value, json};

use crate::clock;

/// What the VM controller observed, from which the status follows.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub printable: String,
    /// A VMI exists.
    pub created: bool,
    /// The VMI runs and is Ready.
    pub ready: bool,
    pub run_strategy: String,
    /// The VMI's conditions, when there is a VMI.
    pub vmi_conditions: Vec<Value>,
}

/// The VM's new status: `old` with the power fields and conditions replaced, other fields
/// (`stateChangeRequests`, `volumeSnapshotStatuses`, ...) kept.
pub fn vm_status(old: Option<&Value>, observed: &Observed) -> Value {
    let mut status: Map<String, Value> =
        old.and_then(Value::as_object).cloned().unwrap_or_default();
    status.insert("printableStatus".into(), json!(observed.printable));
    status.insert("runStrategy".into(), json!(observed.run_strategy));
    for (key, on) in [("ready", observed.ready), ("created", observed.created)] {
        if on {
            status.insert(key.into(), json!(true));
        } else {
            status.remove(key);
        }
    }
    let conditions = if observed.created {
        observed.vmi_conditions.clone()
    } else {
        let since = old
            .and_then(|o| o.get("conditions"))
            .and_then(Value::as_array)
            .and_then(|c| {
                c.iter()
                    .find(|c| c["type"] == "Ready" && c["reason"] == "VMINotExists")
            })
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(clock::now_rfc3339()));
        vec![
            json!({"type": "Ready", "status": "False", "reason": "VMINotExists",
                    "message": "VMI does not exist", "lastProbeTime": null, "lastTransitionTime": since}),
        ]
    };
    status.insert("conditions".into(), json!(conditions));
    Value::Object(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_vm_has_no_ready_or_created_field() {
        let old = json!({"ready": true, "created": true, "volumeSnapshotStatuses": []});
        let st = vm_status(
            Some(&old),
            &Observed {
                printable: "Stopped".into(),
                run_strategy: "Halted".into(),
                ..Default::default()
            },
        );
        assert!(st.get("ready").is_none());
        assert!(st.get("created").is_none());
        assert_eq!(st["printableStatus"], "Stopped");
        assert_eq!(st["conditions"][0]["reason"], "VMINotExists");
        assert_eq!(st["volumeSnapshotStatuses"], json!([]));
    }

    #[test]
    fn a_running_vm_copies_the_vmi_conditions() {
        let st = vm_status(
            None,
            &Observed {
                printable: "Running".into(),
                created: true,
                ready: true,
                run_strategy: "Always".into(),
                vmi_conditions: vec![json!({"type": "Ready", "status": "True"})],
            },
        );
        assert_eq!(st["ready"], true);
        assert_eq!(st["created"], true);
        assert_eq!(
            st["conditions"],
            json!([{"type": "Ready", "status": "True"}])
        );
    }
}
