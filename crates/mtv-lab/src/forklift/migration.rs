//! The Migration controller (forklift-api.md §1.5, §4.1): validates the plan reference and mirrors the
//! plan's snapshot for this migration (`Running`, terminal conditions, `vms`, timestamps).

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::conditions::{
    ADVISORY, CRITICAL, Condition, Conditions, REQUIRED, WARN, has as has_condition, parse,
};
use super::{Controller, generation, meta, text_at};
use crate::registry;

impl Controller {
    pub(crate) fn reconcile_migration(&mut self, migration: &Value) -> Option<Duration> {
        if migration.pointer("/status/completed").is_some() {
            return None;
        }
        let ns = meta(migration, "namespace").to_string();
        let uid = meta(migration, "uid").to_string();
        let mut conds = Conditions::default();
        let plan_name = text_at(migration, "/spec/plan/name").to_string();
        let plan_ns = Some(text_at(migration, "/spec/plan/namespace"))
            .filter(|n| !n.is_empty())
            .unwrap_or(&ns)
            .to_string();
        let mut status = Map::new();
        let plan = if plan_name.is_empty() {
            conds.set(Condition::new(
                "PlanNotValid",
                CRITICAL,
                "NotSet",
                "Plan is not valid.",
            ));
            None
        } else {
            match self.store.get(&registry::PLAN, Some(&plan_ns), &plan_name) {
                Ok(p) => Some(p),
                Err(_) => {
                    conds.set(Condition::new(
                        "PlanNotValid",
                        CRITICAL,
                        "NotFound",
                        "Plan is not valid.",
                    ));
                    None
                }
            }
        };
        if let Some(plan) = &plan {
            // The controller makes the plan own its migrations.
            let owned = migration
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|o| o.iter().any(|r| text_at(r, "/uid") == meta(plan, "uid")));
            if !owned {
                let reference = json!({"apiVersion": registry::PLAN.api_version(), "kind": "Plan", "name": meta(plan, "name"), "uid": meta(plan, "uid")});
                let _ = self.store.modify(
                    &registry::MIGRATION,
                    Some(&ns),
                    meta(migration, "name"),
                    &Default::default(),
                    |o| {
                        let refs = o["metadata"]["ownerReferences"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        let mut refs = refs;
                        refs.push(reference);
                        o["metadata"]["ownerReferences"] = Value::Array(refs);
                        Ok(())
                    },
                );
            }
            let history = plan
                .pointer("/status/migration/history")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let index = history
                .iter()
                .position(|h| text_at(h, "/migration/uid") == uid);
            if index.is_none() && !has_condition(plan.pointer("/status/conditions"), "Ready") {
                conds.set(Condition::new(
                    "PlanNotReady",
                    CRITICAL,
                    "NotFound",
                    "The migration plan is not ready.",
                ));
            }
            // Cancel entries that do not resolve to a VM of the plan.
            let vms = plan
                .pointer("/status/migration/vms")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let unresolved: Vec<String> = migration
                .pointer("/spec/cancel")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter(|c| {
                    !vms.iter().any(|v| {
                        (!text_at(c, "/id").is_empty() && text_at(v, "/id") == text_at(c, "/id"))
                            || (!text_at(c, "/name").is_empty()
                                && text_at(v, "/name") == text_at(c, "/name"))
                    })
                })
                .map(|c| super::ref_string("", text_at(c, "/id"), text_at(c, "/name")))
                .collect();
            if !unresolved.is_empty() {
                conds.set(
                    Condition::new("VMNotFound", WARN, "NotFound", "VM not found.")
                        .items(unresolved),
                );
            }
            if let Some(i) = index {
                let snapshot = &history[i];
                let snap_conds = parse(snapshot.get("conditions"));
                if snap_conds.has("Executing") {
                    conds.set(
                        Condition::new("Running", ADVISORY, "", "The migration is RUNNING.")
                            .durable(),
                    );
                }
                let mut done = false;
                for c in snap_conds.0 {
                    if matches!(c.kind.as_str(), "Succeeded" | "Failed" | "Canceled") {
                        conds.set(c);
                        done = true;
                    }
                }
                let latest = i + 1 == history.len();
                if latest && let Some(m) = plan.pointer("/status/migration") {
                    if let Some(v) = m.get("vms") {
                        status.insert("vms".into(), v.clone());
                    }
                    if let Some(t) = m.get("started") {
                        status.insert("started".into(), t.clone());
                    }
                    if done && let Some(t) = m.get("completed") {
                        status.insert("completed".into(), t.clone());
                    }
                } else if let Some(old) = migration.get("status") {
                    for k in ["vms", "started"] {
                        if let Some(v) = old.get(k) {
                            status.insert(k.into(), v.clone());
                        }
                    }
                }
                if done && !status.contains_key("completed") {
                    status.insert("completed".into(), json!(crate::clock::now_rfc3339()));
                }
            }
        }
        if !conds.has_blocker() {
            conds.set(Condition::new(
                "Ready",
                REQUIRED,
                "",
                "The migration is ready.",
            ));
        }
        let old = migration.get("status");
        status.insert(
            "conditions".into(),
            conds.to_json(old.and_then(|o| o.get("conditions"))),
        );
        status.insert("observedGeneration".into(), json!(generation(migration)));
        self.write_status(&registry::MIGRATION, migration, Value::Object(status));
        None
    }
}
