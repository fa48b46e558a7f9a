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
        let (source_provider, _destination) = self.provider_pair(map, &mut conds);
        let (word, resource) = match kind {
            MapKind::Network => ("Network", &registry::NETWORK_MAP),
            MapKind::Storage => ("Storage", &registry::STORAGE_MAP),
        };
        let entries = map
            .pointer("/spec/map")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let references = match &source_provider {
            Some(provider) => self.validate_map_sources(kind, word, provider, &entries, &mut conds),
            None => Vec::new(),
        };
        self.validate_map_destinations(kind, word, &entries, &mut conds);
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
        self.write_status(resource, map, status);
        None
    }

    /// pkg/controller/map/{network,storage}/validation.go validateSource: each entry's source found in
    /// the provider's inventory; one condition type whose later settings replace earlier ones (NotSet,
    /// then NotFound, then Ambiguous). Returns the resolved `references`.
    fn validate_map_sources(
        &self,
        kind: MapKind,
        word: &str,
        provider: &Value,
        entries: &[Value],
        conds: &mut Conditions,
    ) -> Vec<Value> {
        let mut references = Vec::new();
        let Some(inventory) = Inventory::of(&self.source, provider) else {
            return references;
        };
        let (mut not_set, mut not_found, mut ambiguous) = (false, Vec::new(), Vec::new());
        for entry in entries {
            let source = entry.get("source").cloned().unwrap_or(Value::Null);
            let (id, name, typ) = (
                text_at(&source, "/id"),
                text_at(&source, "/name"),
                text_at(&source, "/type"),
            );
            if id.is_empty() && name.is_empty() && typ.is_empty() {
                not_set = true;
                continue;
            }
            let found = match kind {
                MapKind::Network => inventory.find_network(&self.source, &self.store, &source),
                MapKind::Storage => inventory.find_storage(&self.source, &self.store, &source),
            };
            match found {
                Ok((found_id, found_name)) => {
                    // Networks are listed once per id; storage once per entry.
                    let seen = references
                        .iter()
                        .any(|x: &Value| x["id"] == found_id.as_str());
                    if kind == MapKind::Storage || !seen {
                        references.push(json!({"id": found_id, "name": found_name}));
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
        references
    }

    /// validateDestination, against the cluster: NAD not found, then a NAD without namespace (the
    /// later one wins); a storage class not found.
    fn validate_map_destinations(
        &self,
        kind: MapKind,
        word: &str,
        entries: &[Value],
        conds: &mut Conditions,
    ) {
        let (mut missing, mut ambiguous) = (Vec::new(), Vec::new());
        for entry in entries {
            let destination = entry.get("destination").cloned().unwrap_or(Value::Null);
            match kind {
                MapKind::Network => {
                    if text_at(&destination, "/type") != "multus" {
                        continue;
                    }
                    let (nad_namespace, nad_name) = (
                        text_at(&destination, "/namespace"),
                        text_at(&destination, "/name"),
                    );
                    if nad_namespace.is_empty() {
                        ambiguous.push(nad_name.to_string());
                    } else if self
                        .store
                        .get(
                            &registry::NETWORK_ATTACHMENT_DEFINITION,
                            Some(nad_namespace),
                            nad_name,
                        )
                        .is_err()
                    {
                        missing.push(format!("{nad_namespace}/{nad_name}"));
                    }
                }
                MapKind::Storage => {
                    let storage_class = text_at(&destination, "/storageClass");
                    if self
                        .store
                        .get(&registry::STORAGE_CLASS, None, storage_class)
                        .is_err()
                    {
                        missing.push(storage_class.to_string());
                    }
                }
            }
        }
        let condition_type = format!("Destination{word}NotValid");
        let (not_found_message, ambiguous_message) = match kind {
            MapKind::Network => (
                "Destination network (NAD) not found.",
                "Destination network (NAD) namespace required.",
            ),
            MapKind::Storage => ("Destination storage not valid.", ""),
        };
        if !missing.is_empty() {
            conds.set(
                Condition::new(&condition_type, CRITICAL, "NotFound", not_found_message)
                    .items(missing),
            );
        }
        if !ambiguous.is_empty() {
            conds.set(
                Condition::new(&condition_type, CRITICAL, "Ambiguous", ambiguous_message)
                    .items(ambiguous),
            );
        }
    }
}
