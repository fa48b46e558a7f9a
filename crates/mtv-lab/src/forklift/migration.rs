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
        let mut conds = Conditions::default();
        let mut status = Map::new();
        if let Some(plan) = self.migration_plan(migration, &mut conds) {
            self.make_plan_own(migration, &plan);
            let history = plan
                .pointer("/status/migration/history")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let uid = meta(migration, "uid");
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
            let unresolved = unresolved_cancels(migration, &plan);
            if !unresolved.is_empty() {
                conds.set(
                    Condition::new("VMNotFound", WARN, "NotFound", "VM not found.")
                        .items(unresolved),
                );
            }
            if let Some(index) = index {
                mirror_plan_history(migration, &plan, &history, index, &mut conds, &mut status);
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

    /// The Plan the Migration names (in its own namespace unless it says otherwise), or
    /// `PlanNotValid` (NotSet, NotFound).
    fn migration_plan(&self, migration: &Value, conds: &mut Conditions) -> Option<Value> {
        let plan_name = text_at(migration, "/spec/plan/name");
        let plan_namespace = Some(text_at(migration, "/spec/plan/namespace"))
            .filter(|n| !n.is_empty())
            .unwrap_or(meta(migration, "namespace"));
        let reason = if plan_name.is_empty() {
            "NotSet"
        } else {
            match self
                .store
                .get(&registry::PLAN, Some(plan_namespace), plan_name)
            {
                Ok(plan) => return Some(plan),
                Err(_) => "NotFound",
            }
        };
        conds.set(Condition::new(
            "PlanNotValid",
            CRITICAL,
            reason,
            "Plan is not valid.",
        ));
        None
    }

    /// The controller makes the plan own its migrations.
    fn make_plan_own(&self, migration: &Value, plan: &Value) {
        let owned = migration
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|o| o.iter().any(|r| text_at(r, "/uid") == meta(plan, "uid")));
        if owned {
            return;
        }
        let reference = json!({"apiVersion": registry::PLAN.api_version(), "kind": "Plan", "name": meta(plan, "name"), "uid": meta(plan, "uid")});
        self.amend(
            &registry::MIGRATION,
            Some(meta(migration, "namespace")),
            meta(migration, "name"),
            |o| {
                let mut refs = o["metadata"]["ownerReferences"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                refs.push(reference);
                o["metadata"]["ownerReferences"] = Value::Array(refs);
            },
        );
    }
}

/// The Migration's `cancel` entries that do not resolve to a VM of the plan, as references.
fn unresolved_cancels(migration: &Value, plan: &Value) -> Vec<String> {
    let vms = plan
        .pointer("/status/migration/vms")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    migration
        .pointer("/spec/cancel")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|cancel| {
            !vms.iter().any(|vm| {
                (!text_at(cancel, "/id").is_empty() && text_at(vm, "/id") == text_at(cancel, "/id"))
                    || (!text_at(cancel, "/name").is_empty()
                        && text_at(vm, "/name") == text_at(cancel, "/name"))
            })
        })
        .map(|cancel| super::ref_string("", text_at(cancel, "/id"), text_at(cancel, "/name")))
        .collect()
}

/// The Migration reflects its entry of the Plan's history: `Running` while it executes, the terminal
/// condition, and (for the latest run) the VMs and times of the Plan's status.
fn mirror_plan_history(
    migration: &Value,
    plan: &Value,
    history: &[Value],
    index: usize,
    conds: &mut Conditions,
    status: &mut Map<String, Value>,
) {
    let snapshot_conditions = parse(history[index].get("conditions"));
    if snapshot_conditions.has("Executing") {
        conds.set(Condition::new("Running", ADVISORY, "", "The migration is RUNNING.").durable());
    }
    let mut done = false;
    for condition in snapshot_conditions.0 {
        if matches!(condition.kind.as_str(), "Succeeded" | "Failed" | "Canceled") {
            conds.set(condition);
            done = true;
        }
    }
    let latest = index + 1 == history.len();
    if latest && let Some(plan_migration) = plan.pointer("/status/migration") {
        if let Some(vms) = plan_migration.get("vms") {
            status.insert("vms".into(), vms.clone());
        }
        if let Some(started) = plan_migration.get("started") {
            status.insert("started".into(), started.clone());
        }
        if done && let Some(completed) = plan_migration.get("completed") {
            status.insert("completed".into(), completed.clone());
        }
    } else if let Some(old) = migration.get("status") {
        for key in ["vms", "started"] {
            if let Some(value) = old.get(key) {
                status.insert(key.into(), value.clone());
            }
        }
    }
    if done && !status.contains_key("completed") {
        status.insert("completed".into(), json!(crate::clock::now_rfc3339()));
    }
}
