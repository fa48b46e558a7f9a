//! NetworkMap and StorageMap controllers (forklift-api.md §1.2, §1.3).

use std::time::Duration;

use serde_json::{Value, json};

use super::conditions::{CRITICAL, Condition, Conditions, REQUIRED, WARN, ref_string};
use super::inventory::{Inventory, Lookup};
use super::{Controller, generation, meta, text_at};
use crate::registry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MapKind {
    Network,
    Storage,
}

impl Controller {
    /// The provider-pair conditions shared by maps and plans; returns the Ready source and destination.
    pub(crate) fn provider_pair(
        &self,
        obj: &Value,
        conds: &mut Conditions,
    ) -> (Option<Value>, Option<Value>) {
        let ns = meta(obj, "namespace");
        let mut out = [None, None];
        for (i, (role, label)) in [("source", "Source"), ("destination", "Destination")]
            .iter()
            .enumerate()
        {
            let name = text_at(obj, &format!("/spec/provider/{role}/name"));
            let pns = Some(text_at(obj, &format!("/spec/provider/{role}/namespace")))
                .filter(|n| !n.is_empty())
                .unwrap_or(ns);
            let invalid = format!("{label}ProviderNotValid");
            let message = format!("The {role} provider is not valid.");
            if name.is_empty() {
                conds.set(Condition::new(&invalid, CRITICAL, "NotSet", &message));
                continue;
            }
            match self.store.get(&registry::PROVIDER, Some(pns), name) {
                Err(_) => conds.set(Condition::new(&invalid, CRITICAL, "NotFound", &message)),
                Ok(p) => {
                    if *role == "destination" && text_at(&p, "/spec/type") != "openshift" {
                        conds.set(Condition::new(&invalid, CRITICAL, "TypeNotValid", &message));
                        continue;
                    }
                    if !super::conditions::has(p.pointer("/status/conditions"), "Ready") {
                        conds.set(Condition::new(
                            &format!("{label}ProviderNotReady"),
                            CRITICAL,
                            "",
                            &format!("The {role} provider does not have the Ready condition."),
                        ));
                        continue;
                    }
                    out[i] = Some(p);
                }
            }
        }
        let [src, dst] = out;
        (src, dst)
    }

    pub(crate) fn reconcile_map(&mut self, map: &Value, kind: MapKind) -> Option<Duration> {
        let mut conds = Conditions::default();
        let (src, _dst) = self.provider_pair(map, &mut conds);
        let mut references = Vec::new();
        let (word, rt) = match kind {
            MapKind::Network => ("Network", &registry::NETWORK_MAP),
            MapKind::Storage => ("Storage", &registry::STORAGE_MAP),
        };
        let entries = map
            .pointer("/spec/map")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(src) = &src
            && let Some(inventory) = Inventory::of(&self.source, src)
        {
            // pkg/controller/map/{network,storage}/validation.go validateSource: one condition type whose
            // later settings replace earlier ones (NotSet, then NotFound, then Ambiguous).
            let (mut not_set, mut not_found, mut ambiguous) = (false, Vec::new(), Vec::new());
            for entry in &entries {
                let r = entry.get("source").cloned().unwrap_or(Value::Null);
                let (id, name, typ) = (
                    text_at(&r, "/id"),
                    text_at(&r, "/name"),
                    text_at(&r, "/type"),
                );
                if id.is_empty() && name.is_empty() && typ.is_empty() {
                    not_set = true;
                    continue;
                }
                let found = match kind {
                    MapKind::Network => inventory.find_network(&self.source, &self.store, &r),
                    MapKind::Storage => inventory.find_storage(&self.source, &self.store, &r),
                };
                match found {
                    Ok((rid, rname)) => {
                        // Networks are listed once per id; storage once per entry.
                        let seen = references.iter().any(|x: &Value| x["id"] == rid.as_str());
                        if kind == MapKind::Storage || !seen {
                            references.push(json!({"id": rid, "name": rname}));
                        }
                    }
                    Err(Lookup::NotFound) => not_found.push(ref_string(typ, id, name)),
                    Err(Lookup::Ambiguous) => ambiguous.push(ref_string(typ, id, name)),
                }
            }
            let condition_type = format!("Source{word}NotValid");
            let lower = word.to_lowercase();
            if not_set {
                conds.set(Condition::new(
                    &condition_type,
                    CRITICAL,
                    "NotSet",
                    &format!("Source {lower}: either `ID` or `Name` required."),
                ));
            }
            if !not_found.is_empty() {
                conds.set(
                    Condition::new(
                        &condition_type,
                        WARN,
                        "NotFound",
                        &format!("Source {lower} not found."),
                    )
                    .items(not_found),
                );
            }
            if !ambiguous.is_empty() {
                conds.set(
                    Condition::new(
                        &condition_type,
                        CRITICAL,
                        "Ambiguous",
                        &format!("Source {lower} has ambiguous ref."),
                    )
                    .items(ambiguous),
                );
            }
        }
        // Destination checks against the cluster.
        let (mut dst_missing, mut dst_ambiguous) = (Vec::new(), Vec::new());
        for entry in &entries {
            let d = entry.get("destination").cloned().unwrap_or(Value::Null);
            match kind {
                MapKind::Network => {
                    if text_at(&d, "/type") != "multus" {
                        continue;
                    }
                    let (nns, nname) = (text_at(&d, "/namespace"), text_at(&d, "/name"));
                    if nns.is_empty() {
                        dst_ambiguous.push(nname.to_string());
                    } else if self
                        .store
                        .get(&registry::NETWORK_ATTACHMENT_DEFINITION, Some(nns), nname)
                        .is_err()
                    {
                        dst_missing.push(format!("{nns}/{nname}"));
                    }
                }
                MapKind::Storage => {
                    let sc = text_at(&d, "/storageClass");
                    if self.store.get(&registry::STORAGE_CLASS, None, sc).is_err() {
                        dst_missing.push(sc.to_string());
                    }
                }
            }
        }
        // validateDestination: NAD not found, then a NAD without namespace (the later one wins); a
        // storage class not found.
        let condition_type = format!("Destination{word}NotValid");
        let (not_found, ambiguous) = match kind {
            MapKind::Network => (
                "Destination network (NAD) not found.",
                "Destination network (NAD) namespace required.",
            ),
            MapKind::Storage => ("Destination storage not valid.", ""),
        };
        if !dst_missing.is_empty() {
            conds.set(
                Condition::new(&condition_type, CRITICAL, "NotFound", not_found).items(dst_missing),
            );
        }
        if !dst_ambiguous.is_empty() {
            conds.set(
                Condition::new(&condition_type, CRITICAL, "Ambiguous", ambiguous)
                    .items(dst_ambiguous),
            );
        }
        if !conds.has_blocker() {
            let lower = word.to_lowercase();
            conds.set(Condition::new(
                "Ready",
                REQUIRED,
                "",
                &format!("The {lower} map is ready."),
            ));
        }
        let old = map.get("status");
        let component = match kind {
            MapKind::Network => "networkMap",
            MapKind::Storage => "storageMap",
        };
        self.record_condition_events(
            map,
            old.and_then(|o| o.get("conditions")),
            &conds,
            component,
        );
        let status = json!({
            "conditions": conds.to_json(old.and_then(|o| o.get("conditions"))),
            "references": references,
            "observedGeneration": generation(map),
        });
        self.write_status(rt, map, status);
        None
    }
}
