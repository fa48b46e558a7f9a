//! The wrong values behind `misbehave=<vm>@<point>` (the table in `faults.rs`): small pure functions, so
//! the migration code reads as the right path with one value swapped.

use serde_json::{Value, json};

use super::inventory::InvVm;
use super::{Controller, text_at};
use crate::faults::Misbehaviour;
use crate::source::model::Snapshot;

/// The NetworkAttachmentDefinition (in the target namespace) a NIC mapped to the pod network lands on
/// under `misbehave=…@network`.
pub(crate) const WRONG_NETWORK_NAME: &str = "lab-wrong-network";

/// Storage classes tried, in order, for `misbehave=…@storage-class` (both are seeded by the lab).
const OTHER_STORAGE_CLASSES: [&str; 2] = ["lab-nfs", "lab-ceph-rbd"];

impl Controller {
    /// The wrong network of `misbehave=…@network` in the target namespace `ns`, created when missing so
    /// the migrated VM still starts and only its network is wrong (a real misplaced NIC lands on some
    /// existing network); `namespace/name`. [`Controller::own_wrong_network`] ties it to the VM.
    pub(crate) fn ensure_wrong_network(&self, ns: &str) -> String {
        let name = WRONG_NETWORK_NAME;
        if self
            .store
            .get(
                &crate::registry::NETWORK_ATTACHMENT_DEFINITION,
                Some(ns),
                name,
            )
            .is_err()
        {
            let _ = self.store.create(
                &crate::registry::NETWORK_ATTACHMENT_DEFINITION,
                Some(ns),
                json!({"metadata": {"name": name},
                       "spec": {"config": format!("{{\"cniVersion\":\"0.3.1\",\"name\":\"{name}\",\"type\":\"bridge\",\"bridge\":\"br-wrong\"}}")}}),
            );
        }
        format!("{ns}/{name}")
    }

    /// Makes the migrated VM an owner of the wrong network, so it goes when the VM goes.
    pub(crate) fn own_wrong_network(&self, vm: &Value) {
        let owner = json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine",
                           "name": super::meta(vm, "name"), "uid": super::meta(vm, "uid")});
        self.amend(
            &crate::registry::NETWORK_ATTACHMENT_DEFINITION,
            Some(super::meta(vm, "namespace")),
            WRONG_NETWORK_NAME,
            |nad| {
                let refs = nad["metadata"]
                    .as_object_mut()
                    .map(|m| m.entry("ownerReferences").or_insert_with(|| json!([])));
                if let Some(Value::Array(refs)) = refs {
                    refs.push(owner);
                }
            },
        );
    }

    /// True when the faults in force ask Forklift to get `point` wrong for this VM.
    pub(crate) fn misbehaves(&self, inventory_vm: &InvVm, point: Misbehaviour) -> bool {
        self.opts
            .faults()
            .misbehaves(&inventory_vm.name, &inventory_vm.id, point)
    }
}

/// The MAC with its last octet changed (high bit flipped, so it stays unicast and differs from its
/// neighbours, which sources number sequentially).
pub(crate) fn other_mac(mac: &str) -> String {
    match mac.rsplit_once(':') {
        Some((head, last)) => match u8::from_str_radix(last, 16) {
            Ok(octet) => format!("{head}:{:02x}", octet ^ 0x80),
            Err(_) => format!("{head}:00"),
        },
        None => "02:00:00:00:00:01".to_string(),
    }
}

/// The UUID with its last hex digit changed (case kept).
pub(crate) fn other_uuid(uuid: &str) -> String {
    let Some(last) = uuid.chars().last() else {
        return "00000000-0000-0000-0000-000000000001".to_string();
    };
    let head = &uuid[..uuid.len() - last.len_utf8()];
    let next = match last.to_digit(16) {
        Some(d) => {
            let c = std::char::from_digit((d + 1) % 16, 16).unwrap_or('0');
            if last.is_ascii_uppercase() {
                c.to_ascii_uppercase()
            } else {
                c
            }
        }
        None => '0',
    };
    format!("{head}{next}")
}

/// A storage class other than `mapped`: the first of `lab-nfs`/`lab-ceph-rbd` that exists and differs,
/// else any other existing one, else the first that differs.
pub(crate) fn other_storage_class(mapped: &str, existing: &[String]) -> String {
    OTHER_STORAGE_CLASSES
        .iter()
        .map(|sc| sc.to_string())
        .chain(existing.iter().cloned())
        .find(|sc| sc != mapped && existing.contains(sc))
        .unwrap_or_else(|| {
            let fallback = if mapped == OTHER_STORAGE_CLASSES[0] {
                OTHER_STORAGE_CLASSES[1]
            } else {
                OTHER_STORAGE_CLASSES[0]
            };
            fallback.to_string()
        })
}

/// The affinity with its first `weight` raised by one; without any weight, a preferred node term added.
pub(crate) fn altered_affinity(affinity: &Value) -> Value {
    fn bump_first_weight(v: &mut Value) -> bool {
        match v {
            Value::Object(map) => {
                if let Some(w) = map.get_mut("weight")
                    && let Some(n) = w.as_i64()
                {
                    *w = json!(n + 1);
                    return true;
                }
                map.values_mut().any(bump_first_weight)
            }
            Value::Array(items) => items.iter_mut().any(bump_first_weight),
            _ => false,
        }
    }
    let mut altered = affinity.clone();
    if bump_first_weight(&mut altered) {
        return altered;
    }
    let term = json!({"weight": 1, "preference": {"matchExpressions": [
        {"key": "lab.mtv-tests.io/misbehave", "operator": "DoesNotExist"}]}});
    let preferred = &mut altered["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
    match preferred.as_array_mut() {
        Some(terms) => terms.push(term),
        None => *preferred = json!([term]),
    }
    altered
}

/// The Plan's VM entry with its hooks' steps swapped (PreHook ↔ PostHook).
pub(crate) fn swap_hook_steps(spec_vm: &Value) -> Value {
    let mut swapped = spec_vm.clone();
    if let Some(hooks) = swapped.get_mut("hooks").and_then(Value::as_array_mut) {
        for hook in hooks {
            let other = match text_at(hook, "/step") {
                "PreHook" => "PostHook",
                "PostHook" => "PreHook",
                _ => continue,
            };
            hook["step"] = json!(other);
        }
    }
    swapped
}

/// Removes the newest snapshot (latest `created`; the later one on a tie). False when there is none.
pub(crate) fn remove_newest_snapshot(snapshots: &mut Vec<Snapshot>) -> bool {
    let newest = snapshots
        .iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| a.created.cmp(&b.created).then(i.cmp(j)))
        .map(|(i, _)| i);
    match newest {
        Some(i) => {
            snapshots.remove(i);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_values_differ_from_the_right_ones() {
        assert_eq!(other_mac("00:50:56:00:00:01"), "00:50:56:00:00:81");
        assert_eq!(other_mac("00:50:56:00:00:ff"), "00:50:56:00:00:7f");
        assert_eq!(other_uuid("4201-aaaa"), "4201-aaab");
        assert_eq!(other_uuid("4201-AAAF"), "4201-AAA0");
        assert_ne!(other_uuid(""), "");
        let lab = vec!["lab-ceph-rbd".to_string(), "lab-nfs".to_string()];
        assert_eq!(other_storage_class("lab-ceph-rbd", &lab), "lab-nfs");
        assert_eq!(other_storage_class("lab-nfs", &lab), "lab-ceph-rbd");
        assert_eq!(
            other_storage_class("san-sc", &["san-sc".to_string(), "x".to_string()]),
            "x"
        );
    }

    #[test]
    fn affinity_weights_move_or_a_term_appears() {
        let weighted = json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"}}]}});
        let altered = altered_affinity(&weighted);
        assert_eq!(
            altered["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
            51
        );
        let required = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}});
        let altered = altered_affinity(&required);
        assert_ne!(altered, required);
        assert_eq!(
            altered["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
            1
        );
    }

    #[test]
    fn hooks_swap_and_the_newest_snapshot_goes() {
        let vm = json!({"id": "vm-1", "hooks": [{"step": "PreHook", "hook": {"name": "a"}}, {"step": "PostHook", "hook": {"name": "b"}}]});
        let swapped = swap_hook_steps(&vm);
        assert_eq!(swapped["hooks"][0]["step"], "PostHook");
        assert_eq!(swapped["hooks"][1]["step"], "PreHook");
        let snap = |id: &str, created: &str| Snapshot {
            id: id.into(),
            name: id.into(),
            created: created.into(),
        };
        let mut snaps = vec![
            snap("a", "2026-01-02T00:00:00Z"),
            snap("b", "2026-01-03T00:00:00Z"),
            snap("c", "2026-01-01T00:00:00Z"),
        ];
        assert!(remove_newest_snapshot(&mut snaps));
        let left: Vec<&str> = snaps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(left, ["a", "c"]);
        assert!(!remove_newest_snapshot(&mut Vec::new()));
    }
}
