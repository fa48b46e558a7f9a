//! Plan execution (forklift-api.md §4): snapshots, per-VM itineraries and pipelines advancing in simulated
//! time, warm precopies and cutover, hooks, failures, cancel, and the plan-level outcome.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::conditions::{ADVISORY, Condition, Conditions, has as has_condition};
use super::inventory::InvVm;
use super::plan::{PlanCtx, SLOW_REQUEUE, ready_condition};
use super::{Controller, array_at, generation, meta, text_at};
use crate::clock;
use crate::faults::Misbehaviour;
use crate::registry;
use crate::source::{PowerAction, PowerState};
use crate::store::ListOptions;

/// The simulation clock of one VM run.
#[derive(Debug, Clone)]
pub(crate) struct VmRun {
    /// When the current phase started (advanced by whole phase durations, so slow ticks do not slow the run).
    pub since: Instant,
}

/// A VM of a running migration and what its phases read: the Plan and its context, the Migration,
/// the VM's inventory entry, its Plan entry and its itinerary.
#[derive(Clone, Copy)]
pub(super) struct MigratingVm<'a> {
    pub(super) plan: &'a Value,
    pub(super) ctx: &'a PlanCtx,
    pub(super) migration: &'a Value,
    pub(super) inventory_vm: &'a InvVm,
    pub(super) spec_vm: &'a Value,
    pub(super) itinerary: &'a Itinerary,
}

impl MigratingVm<'_> {
    /// The key of the VM's simulation clock in the controller's `runs`.
    fn run_key(&self) -> (String, String) {
        (
            meta(self.migration, "uid").to_string(),
            self.inventory_vm.id.clone(),
        )
    }

    /// The labels of what this Migration creates for the VM (`migration=<uid>,vmID=<id>`).
    pub(super) fn selector(&self) -> String {
        format!(
            "migration={},vmID={}",
            meta(self.migration, "uid"),
            self.inventory_vm.id
        )
    }
}

/// Copy throughput in MiB per lab second.
const MIB_PER_LAB_SECOND: f64 = 450.0;

const DISK_STEPS: &[&str] = &[
    "DiskTransfer",
    "DiskAllocation",
    "DiskTransferV2v",
    "Cutover",
    "ConvertOpenstackSnapshot",
];

fn step_description(step: &str) -> &'static str {
    match step {
        "Initialize" => "Initialize migration.",
        "PreHook" => "Run pre-migration hook.",
        "PostHook" => "Run post-migration hook.",
        "DiskAllocation" => "Allocate disks.",
        "DiskTransfer" => "Transfer disks.",
        "DiskTransferV2v" => "Copy disks.",
        "ImageConversion" => "Convert image to kubevirt.",
        "Cutover" => "Finalize disk transfer.",
        "VirtualMachineCreation" => "Create VM.",
        "ConvertOpenstackSnapshot" => "Convert OpenStack snapshot.",
        "PreflightInspection" => "Preflight inspection of the VM.",
        "WaitForGuestReboots" => "Wait for the guest to finish its first-boot reboots.",
        "WaitForFinalSnapshotConsolidation" => "Wait for final snapshot consolidation.",
        _ => "",
    }
}

/// What a VM's migration looks like: phases (with the warm loop laid out once) and pipeline steps.
#[derive(Debug, Clone)]
pub(crate) struct Itinerary {
    pub phases: Vec<&'static str>,
    pub steps: Vec<&'static str>,
    pub warm: bool,
    pub preflight: bool,
    pub offload: bool,
    pub cdi: bool,
}

/// What decides a VM's itinerary besides warm or cold.
struct MigrationShape<'a> {
    source_type: &'a str,
    /// (PreHook, PostHook).
    hooks: (bool, bool),
    /// virt-v2v copies the disks itself (`CopyDisksVirtV2V`).
    v2v: bool,
    /// virt-v2v converts the guest.
    conversion: bool,
    preflight: bool,
    /// A Windows guest's first-boot reboots are awaited.
    reboots: bool,
    final_snapshot_consolidation: bool,
}

impl MigrationShape<'_> {
    fn vsphere(&self) -> bool {
        self.source_type == "vsphere"
    }

    /// Warm: precopies from snapshots, then the cutover, conversion and the VM.
    fn warm_copy_phases(&self) -> Vec<&'static str> {
        let mut phases = vec!["CreateInitialSnapshot", "WaitForInitialSnapshot"];
        if self.vsphere() {
            phases.push("StoreInitialSnapshotDeltas");
            if self.preflight {
                phases.push("PreflightInspection");
            }
        }
        phases.extend(["CreateDataVolumes", "CopyDisks", "CopyingPaused"]);
        if self.vsphere() {
            phases.extend(["RemovePreviousSnapshot", "WaitForPreviousSnapshotRemoval"]);
        }
        phases.extend(["CreateSnapshot", "WaitForSnapshot"]);
        if self.vsphere() {
            phases.push("StoreSnapshotDeltas");
        }
        phases.extend([
            "AddCheckpoint",
            "StorePowerState",
            "PowerOffSource",
            "WaitForPowerOff",
        ]);
        if self.vsphere() {
            phases.extend([
                "RemovePenultimateSnapshot",
                "WaitForPenultimateSnapshotRemoval",
            ]);
        }
        phases.extend([
            "CreateFinalSnapshot",
            "WaitForFinalSnapshot",
            "AddFinalCheckpoint",
            "Finalize",
        ]);
        if self.vsphere() {
            phases.push("RemoveFinalSnapshot");
        }
        if self.conversion {
            phases.extend(["CreateGuestConversionPod", "ConvertGuest"]);
        }
        phases.push("CreateVM");
        phases
    }

    /// Cold: the source powers off, the disks are copied (by CDI or virt-v2v), the VM is created.
    fn cold_copy_phases(&self) -> Vec<&'static str> {
        let mut phases = vec![
            "StorePowerState",
            "PowerOffSource",
            "WaitForPowerOff",
            "CreateDataVolumes",
        ];
        if self.v2v {
            phases.extend([
                "AllocateDisks",
                "CreateGuestConversionPod",
                "ConvertGuest",
                "CopyDisksVirtV2V",
            ]);
        } else {
            phases.push("CopyDisks");
            if self.conversion {
                phases.extend(["CreateGuestConversionPod", "ConvertGuest"]);
            }
        }
        if self.source_type == "openstack" {
            phases.push("ConvertOpenstackSnapshot");
        }
        phases.push("CreateVM");
        phases
    }

    /// Pipeline steps in Forklift's order (§4.3 table).
    fn pipeline_steps(&self, warm: bool) -> Vec<&'static str> {
        let mut steps = vec!["Initialize"];
        if self.hooks.0 {
            steps.push("PreHook");
        }
        if warm {
            if self.preflight {
                steps.push("PreflightInspection");
            }
            steps.extend(["DiskTransfer", "Cutover"]);
            if self.conversion {
                steps.push("ImageConversion");
            }
        } else if self.v2v {
            steps.extend(["DiskAllocation", "ImageConversion", "DiskTransferV2v"]);
        } else {
            steps.push("DiskTransfer");
            if self.conversion {
                steps.push("ImageConversion");
            }
            if self.source_type == "openstack" {
                steps.push("ConvertOpenstackSnapshot");
            }
        }
        steps.push("VirtualMachineCreation");
        steps.extend(self.after_creation("WaitForFinalSnapshotConsolidation"));
        steps
    }

    /// What follows the VM's creation, as phases or as pipeline steps (their names differ only for
    /// the final snapshot's consolidation): the guest's first-boot reboots, the post-hook, the
    /// consolidation.
    fn after_creation(&self, consolidation: &'static str) -> Vec<&'static str> {
        [
            (self.reboots, "WaitForGuestReboots"),
            (self.hooks.1, "PostHook"),
            (self.final_snapshot_consolidation, consolidation),
        ]
        .into_iter()
        .filter_map(|(wanted, name)| wanted.then_some(name))
        .collect()
    }
}

impl Itinerary {
    pub fn build(
        ctx: &PlanCtx,
        vm: &InvVm,
        spec_vm: &Value,
        controller: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let source_type = ctx.src_type.as_str();
        let plan = &ctx.plan;
        let has_hook = |step: &str| {
            spec_vm
                .get("hooks")
                .and_then(Value::as_array)
                .is_some_and(|h| h.iter().any(|x| text_at(x, "/step") == step))
        };
        let hooks = (has_hook("PreHook"), has_hook("PostHook"));
        if source_type == "openshift" && ctx.plan_type() == "live" {
            return Self::live(hooks);
        }
        let skip_conversion = super::bool_at(plan, "/spec/skipGuestConversion") == Some(true);
        let offload =
            ctx.offload() && controller("feature_copy_offload").as_deref() != Some("false");
        let shared = super::bool_at(plan, "/spec/migrateSharedDisks") != Some(false);
        let v2v = match source_type {
            "ova" | "hyperv" => true,
            "vsphere" => {
                !ctx.warm
                    && ctx.local_dest
                    && shared
                    && !skip_conversion
                    && !offload
                    && ctx.plan_type() != "conversion"
            }
            _ => false,
        };
        let conversion = matches!(source_type, "vsphere" | "ova" | "hyperv") && !skip_conversion;
        let preflight = ctx.warm
            && source_type == "vsphere"
            && super::bool_at(plan, "/spec/runPreflightInspection") != Some(false)
            && !skip_conversion;
        let shape = MigrationShape {
            source_type,
            hooks,
            v2v,
            conversion,
            preflight,
            reboots: conversion
                && vm.windows
                && controller("feature_windows_wait_for_reboot").as_deref() != Some("false"),
            final_snapshot_consolidation: ctx.warm
                && source_type == "vsphere"
                && controller("wait_for_final_snapshot_consolidation").as_deref() != Some("false"),
        };
        let mut phases: Vec<&'static str> = vec!["Started"];
        if shape.hooks.0 {
            phases.push("PreHook");
        }
        if ctx.warm {
            phases.extend(shape.warm_copy_phases());
        } else {
            phases.extend(shape.cold_copy_phases());
        }
        phases.extend(shape.after_creation("WaitForFinalSnapshotRemoval"));
        phases.push("Completed");
        Itinerary {
            phases,
            steps: shape.pipeline_steps(ctx.warm),
            warm: ctx.warm,
            preflight,
            offload,
            cdi: !v2v,
        }
    }

    /// The `ocp-live` itinerary: decentralized live migration through KubeVirt.
    fn live((pre_hook, post_hook): (bool, bool)) -> Self {
        let mut phases: Vec<&'static str> = vec!["Started"];
        let mut steps = vec!["Initialize"];
        if pre_hook {
            phases.push("PreHook");
            steps.push("PreHook");
        }
        phases.extend([
            "CreateSecrets",
            "CreateConfigMaps",
            "EnsurePreference",
            "EnsureInstanceType",
            "EnsureDataVolumes",
            "EnsurePersistentVolumeClaims",
            "CreateTarget",
            "SetOwnerReferences",
            "WaitForTargetVMI",
            "CreateVirtualMachineInstanceMigrations",
            "WaitForStateTransfer",
        ]);
        steps.extend(["PrepareTarget", "Synchronization"]);
        if post_hook {
            phases.push("PostHook");
            steps.push("PostHook");
        }
        phases.push("Completed");
        Itinerary {
            phases,
            steps,
            warm: false,
            preflight: false,
            offload: false,
            cdi: true,
        }
    }

    /// The pipeline step a phase reports on (§4.3 phase → step mapping, including the OpenStack quirk).
    pub fn step_of(&self, phase: &str) -> &'static str {
        match phase {
            "Started"
            | "CreateInitialSnapshot"
            | "WaitForInitialSnapshot"
            | "StoreInitialSnapshotDeltas" => "Initialize",
            "StorePowerState" | "PowerOffSource" | "WaitForPowerOff" => {
                if self.warm {
                    "Cutover"
                } else {
                    "Initialize"
                }
            }
            "CreateDataVolumes" => {
                if self.preflight {
                    "DiskTransfer"
                } else {
                    "Initialize"
                }
            }
            "AllocateDisks" => "DiskAllocation",
            "CopyDisks"
            | "CopyingPaused"
            | "RemovePreviousSnapshot"
            | "WaitForPreviousSnapshotRemoval"
            | "CreateSnapshot"
            | "WaitForSnapshot"
            | "StoreSnapshotDeltas"
            | "AddCheckpoint"
            | "ConvertOpenstackSnapshot" => "DiskTransfer",
            "RemovePenultimateSnapshot"
            | "WaitForPenultimateSnapshotRemoval"
            | "CreateFinalSnapshot"
            | "WaitForFinalSnapshot"
            | "AddFinalCheckpoint"
            | "Finalize"
            | "RemoveFinalSnapshot" => "Cutover",
            "CreateGuestConversionPod" | "ConvertGuest" => "ImageConversion",
            "CopyDisksVirtV2V" => "DiskTransferV2v",
            "CreateVM" => "VirtualMachineCreation",
            "PreHook" => "PreHook",
            "PostHook" => "PostHook",
            "WaitForGuestReboots" => "WaitForGuestReboots",
            "PreflightInspection" => "PreflightInspection",
            "CreateSecrets"
            | "CreateConfigMaps"
            | "EnsurePreference"
            | "EnsureInstanceType"
            | "EnsureDataVolumes"
            | "EnsurePersistentVolumeClaims"
            | "CreateTarget"
            | "SetOwnerReferences" => "PrepareTarget",
            "WaitForTargetVMI"
            | "CreateVirtualMachineInstanceMigrations"
            | "WaitForStateTransfer" => "Synchronization",
            "WaitForFinalSnapshotRemoval" => "WaitForFinalSnapshotConsolidation",
            _ => "",
        }
    }

    fn index(&self, phase: &str) -> usize {
        self.phases
            .iter()
            .position(|p| *p == phase)
            .unwrap_or(self.phases.len() - 1)
    }

    /// The phase after `phase` on the straight path (the warm loop's back edge is handled by the caller).
    fn next(&self, phase: &str) -> &'static str {
        if phase == "AddCheckpoint" {
            return "CopyDisks";
        }
        let i = self.index(phase);
        self.phases.get(i + 1).copied().unwrap_or("Completed")
    }

    /// True when no phase from `from` on reports on `step`.
    fn step_done_after(&self, step: &str, from: &str) -> bool {
        if from == "CopyDisks" && step == "DiskTransfer" {
            return false;
        }
        let i = self.index(from);
        !self.phases[i..].iter().any(|p| self.step_of(p) == step)
    }

    /// The new pipeline for a VM.
    pub fn pipeline(&self, vm: &InvVm) -> Vec<Value> {
        self.steps
            .iter()
            .map(|step| {
                let mut m = Map::new();
                m.insert("name".into(), json!(step));
                m.insert("description".into(), json!(step_description(step)));
                if *step != "Cutover" {
                    m.insert("phase".into(), json!("Pending"));
                }
                if DISK_STEPS.contains(step) {
                    let total: u64 = vm.disks.iter().map(|d| d.capacity_mib).sum();
                    m.insert("progress".into(), json!({"completed": 0, "total": total}));
                    m.insert("annotations".into(), json!({"unit": "MB"}));
                    let tasks: Vec<Value> = vm
                        .disks
                        .iter()
                        .map(|d| {
                            json!({
                                "name": d.file,
                                "phase": "Pending",
                                "progress": {"completed": 0, "total": d.capacity_mib},
                                "annotations": {"unit": "MB"}
                            })
                        })
                        .collect();
                    m.insert("tasks".into(), Value::Array(tasks));
                } else {
                    m.insert("progress".into(), json!({"completed": 0, "total": 1}));
                }
                Value::Object(m)
            })
            .collect()
    }
}

fn step_mut<'a>(vm: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    vm.get_mut("pipeline")?
        .as_array_mut()?
        .iter_mut()
        .find(|st| text_at(st, "/name") == name)
}

fn set_condition(vm: &mut Value, cond: Condition) {
    let mut conds = super::conditions::parse(vm.get("conditions"));
    conds.set(cond);
    let json = conds.to_json(vm.get("conditions"));
    vm["conditions"] = json;
}

fn remove_condition(vm: &mut Value, kind: &str) {
    let mut conds = super::conditions::parse(vm.get("conditions"));
    if conds.has(kind) {
        conds.remove(kind);
        let json = conds.to_json(vm.get("conditions"));
        vm["conditions"] = json;
    }
}

fn start_step(vm: &mut Value, step: &str) {
    if let Some(st) = step_mut(vm, step)
        && st.get("started").is_none()
    {
        st["started"] = json!(clock::now_rfc3339());
        st["phase"] = json!("Running");
    }
}

fn complete_step(vm: &mut Value, step: &str) {
    let Some(st) = step_mut(vm, step) else { return };
    if st.get("started").is_none() || st.get("completed").is_some() {
        return;
    }
    st["completed"] = json!(clock::now_rfc3339());
    st["phase"] = json!("Completed");
    if matches!(step, "PreHook" | "PostHook" | "ImageConversion") {
        st["progress"]["completed"] = json!(1);
    }
}

/// Sets the tasks of a disk step to `fraction` of their totals.
fn disk_progress(vm: &mut Value, step: &str, fraction: f64, precopy: Option<u32>) {
    let Some(st) = step_mut(vm, step) else { return };
    let mut sum = 0u64;
    if let Some(tasks) = st.get_mut("tasks").and_then(Value::as_array_mut) {
        for task in tasks {
            let total = task
                .pointer("/progress/total")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let done = ((total as f64) * fraction.clamp(0.0, 1.0)).floor() as u64;
            let prev = task
                .pointer("/progress/completed")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let done = done.max(prev);
            task["progress"]["completed"] = json!(done);
            if task.get("started").is_none() {
                task["started"] = json!(clock::now_rfc3339());
            }
            if let Some(n) = precopy {
                task["annotations"]["Precopy"] = json!(n.to_string());
            }
            if done >= total {
                if task.get("completed").is_none() {
                    task["completed"] = json!(clock::now_rfc3339());
                }
                task["phase"] = json!("Completed");
                task["reason"] = json!("Transfer completed.");
            } else {
                task["phase"] = json!("Running");
            }
            sum += done;
        }
    }
    st["progress"]["completed"] = json!(sum);
}

/// Lab duration of a phase for a VM.
fn phase_duration(phase: &str, vm: &InvVm, precopy: u32, offload: bool) -> Duration {
    let mib: u64 = vm.disks.iter().map(|d| d.capacity_mib).sum();
    let copy =
        |share: f64| Duration::from_secs_f64((mib as f64 * share / MIB_PER_LAB_SECOND).max(3.0));
    match phase {
        "CopyDisks" if precopy > 1 => copy(0.1),
        "CopyDisks" if offload => {
            // XCOPY runs inside the array: fast where it works.
            let fast = vm.disks.iter().all(|d| d.xcopy) && !vm.has_snapshots;
            copy(if fast { 0.25 } else { 1.0 })
        }
        "CopyDisks" | "CopyDisksVirtV2V" | "WaitForStateTransfer" => copy(1.0),
        "Finalize" => copy(0.05),
        "AllocateDisks" => Duration::from_secs(6),
        "ConvertGuest" => Duration::from_secs(15),
        "PreHook" | "PostHook" | "PreflightInspection" | "WaitForGuestReboots" => {
            Duration::from_secs(10)
        }
        _ => Duration::from_secs(3),
    }
}

fn cutover_due(migration: Option<&Value>, vm_id: &str) -> bool {
    let Some(m) = migration else { return false };
    let per_vm = m
        .pointer("/spec/vmCutover")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|c| text_at(c, "/id") == vm_id))
        .map(|c| text_at(c, "/cutover").to_string());
    let at = per_vm
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| text_at(m, "/spec/cutover").to_string());
    clock::parse_rfc3339(&at).is_some_and(|t| t <= clock::unix_now())
}

fn obj_ref(o: &Value) -> Value {
    json!({"namespace": meta(o, "namespace"), "name": meta(o, "name"), "uid": meta(o, "uid"), "generation": generation(o)})
}

/// The snapshot was canceled because its Migration was deleted (reason `Deleted`).
fn canceled_by_deletion(snapshot: &Value) -> bool {
    snapshot
        .get("conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| text_at(c, "/type") == "Canceled" && text_at(c, "/reason") == "Deleted")
        })
}

fn terminal(snapshot: &Value) -> bool {
    let c = snapshot.get("conditions");
    has_condition(c, "Succeeded") || has_condition(c, "Failed") || has_condition(c, "Canceled")
}

impl Controller {
    pub(crate) fn reconcile_plan(&mut self, plan: &Value) -> Option<Duration> {
        let plan_ns = meta(plan, "namespace").to_string();
        let plan_name = meta(plan, "name").to_string();
        // The mutating webhook's effect, done here because admission cannot be intercepted.
        if plan
            .pointer("/metadata/annotations/populatorLabels")
            .is_none()
        {
            self.amend(&registry::PLAN, Some(&plan_ns), &plan_name, |o| {
                o["metadata"]["annotations"]["populatorLabels"] = json!("True");
            });
        }
        let old_status = plan.get("status").cloned().unwrap_or(json!({}));
        let old_conds = old_status.get("conditions");
        let archived = super::bool_at(plan, "/spec/archived") == Some(true);
        if archived && has_condition(old_conds, "Archived") {
            return None;
        }
        if has_condition(old_conds, "Succeeded") && !archived {
            return None;
        }
        if self.dependencies_pending() {
            return Some(self.opts.real(SLOW_REQUEUE).max(Duration::from_millis(20)));
        }
        let mut mig = old_status.get("migration").cloned().unwrap_or(json!({}));
        let active = mig
            .get("history")
            .and_then(Value::as_array)
            .and_then(|h| h.last())
            .is_some_and(|l| !terminal(l));
        let (mut conds, ctx) = self.validate_plan(plan, active);
        let limit: u64 = self.setting_or("controller_max_vm_inflight", 20);
        let mut requeue = None;
        let mut waiting = 0;
        if archived {
            conds.set(Condition::new(
                "Archived",
                ADVISORY,
                "UserRequested",
                "The migration plan has been archived.",
            ));
            self.cleanup_failed_vms(plan, &mig);
        } else {
            let ready_now = ready_condition(&conds, 0, limit).is_some();
            let (r, w) = self.execute(plan, ctx.as_ref(), &mut mig, ready_now, limit, &conds);
            requeue = r;
            waiting = w;
        }
        // Lifecycle conditions come from the latest snapshot (durable), as plan/controller.go execute()
        // reflects them while it runs a migration. A snapshot canceled because its Migration was deleted
        // is never reflected: activeMigration() finds no migration, so execute() only drops Executing and
        // `Canceled` stays in the history.
        if let Some(last) = mig
            .get("history")
            .and_then(Value::as_array)
            .and_then(|h| h.last())
            .filter(|last| !canceled_by_deletion(last))
        {
            for c in super::conditions::parse(last.get("conditions")).0 {
                if matches!(
                    c.kind.as_str(),
                    "Executing" | "Succeeded" | "Failed" | "Canceled"
                ) {
                    conds.set(c);
                }
            }
        }
        if let Some(ready) = ready_condition(&conds, waiting, limit) {
            conds.set(ready);
        }
        self.record_condition_events(plan, old_conds, &conds, "plan");
        let mut status = Map::new();
        status.insert("conditions".into(), conds.to_json(old_conds));
        status.insert("observedGeneration".into(), json!(generation(plan)));
        if mig.as_object().is_some_and(|m| !m.is_empty()) {
            status.insert("migration".into(), mig);
        }
        self.write_status(&registry::PLAN, plan, Value::Object(status));
        // plan/controller.go execute(): a Plan with a blocker is reconciled again after SlowReQ, so a
        // missing object that appears later (a ServiceAccount, a NAD) unblocks it without a watch.
        if conds.has_blocker() {
            let slow = self.opts.real(SLOW_REQUEUE).max(Duration::from_millis(100));
            requeue = Some(requeue.unwrap_or(Duration::MAX).min(slow));
        }
        if conds.has("ValidatingVDDK") {
            requeue = Some(
                requeue.unwrap_or(Duration::MAX).min(
                    self.opts
                        .real(Duration::from_secs(1))
                        .max(Duration::from_millis(10)),
                ),
            );
        }
        requeue
    }

    /// Migrations of a plan, oldest first.
    fn migrations_of(&self, plan: &Value) -> Vec<Value> {
        let ns = meta(plan, "namespace");
        let mut list: Vec<Value> = self
            .store
            .list_shared(&registry::MIGRATION, Some(ns))
            .into_iter()
            .filter(|m| {
                text_at(m, "/spec/plan/name") == meta(plan, "name")
                    && Some(text_at(m, "/spec/plan/namespace"))
                        .filter(|x| !x.is_empty())
                        .unwrap_or(ns)
                        == ns
            })
            .map(|m| (*m).clone())
            .collect();
        list.sort_by(|a, b| {
            (meta(a, "creationTimestamp"), meta(a, "name"))
                .cmp(&(meta(b, "creationTimestamp"), meta(b, "name")))
        });
        list
    }

    /// Drives the active snapshot; returns the requeue delay and how many VMs wait for an in-flight slot.
    fn execute(
        &mut self,
        plan: &Value,
        ctx: Option<&PlanCtx>,
        mig: &mut Value,
        ready: bool,
        limit: u64,
        plan_conds: &Conditions,
    ) -> (Option<Duration>, usize) {
        let migrations = self.migrations_of(plan);
        let history: Vec<Value> = array_at(mig, "/history");
        let active = history.last().filter(|l| !terminal(l)).cloned();
        let Some(ctx) = ctx else {
            if active.is_some() {
                // A blocker (a provider or map not ready) holds the run; past the grace period it fails.
                if self.blocker_expired(plan, plan_conds) {
                    self.fail_on_blocker(mig, plan_conds);
                    return (None, 0);
                }
                return (
                    Some(
                        self.opts
                            .real(Duration::from_secs(3))
                            .max(Duration::from_millis(10)),
                    ),
                    0,
                );
            }
            return (None, 0);
        };
        let migration = match &active {
            Some(snap) => {
                let uid = text_at(snap, "/migration/uid");
                match migrations.iter().find(|m| meta(m, "uid") == uid) {
                    Some(m) => {
                        let changed = [
                            ("/provider/source/uid", &ctx.src),
                            ("/provider/destination/uid", &ctx.dst),
                            ("/map/network/uid", &ctx.netmap),
                        ]
                        .iter()
                        .any(|(p, o)| text_at(snap, p) != meta(o, "uid"));
                        if changed {
                            let message = "The migration has been canceled.";
                            self.cancel_snapshot(plan, ctx, mig, "Modified", message);
                            return (None, 0);
                        }
                        m.clone()
                    }
                    None => {
                        let message = "The migration has been deleted.";
                        self.cancel_snapshot(plan, ctx, mig, "Deleted", message);
                        return (None, 0);
                    }
                }
            }
            None => {
                let used: Vec<&str> = history
                    .iter()
                    .map(|h| text_at(h, "/migration/uid"))
                    .collect();
                let pending = migrations.iter().find(|m| {
                    !used.contains(&meta(m, "uid")) && m.pointer("/status/completed").is_none()
                });
                match pending {
                    Some(m) if ready => {
                        self.start_snapshot(plan, ctx, mig, m);
                        m.clone()
                    }
                    _ => return (None, 0),
                }
            }
        };
        self.run_vms(plan, ctx, mig, &migration, limit, plan_conds)
    }

    fn start_snapshot(&mut self, plan: &Value, ctx: &PlanCtx, mig: &mut Value, migration: &Value) {
        let now = clock::now_rfc3339();
        let mut executing = Conditions::default();
        executing
            .set(Condition::new("Executing", ADVISORY, "", "The plan is EXECUTING.").durable());
        let snapshot = json!({
            "plan": obj_ref(plan),
            "migration": obj_ref(migration),
            "provider": {"source": obj_ref(&ctx.src), "destination": obj_ref(&ctx.dst)},
            "map": {"network": obj_ref(&ctx.netmap), "storage": if ctx.storagemap.is_null() { obj_ref(&ctx.netmap) } else { obj_ref(&ctx.storagemap) }},
            "conditions": executing.to_json(None),
        });
        let mut history = array_at(mig, "/history");
        history.push(snapshot);
        let old_vms: Vec<Value> = array_at(mig, "/vms");
        let spec_vms = array_at(plan, "/spec/vms");
        let mut vms = Vec::new();
        for (i, spec_vm) in spec_vms.iter().enumerate() {
            let Some(Some(inventory_vm)) = ctx.vms.get(i) else {
                continue;
            };
            if let Some(old) = old_vms
                .iter()
                .find(|v| text_at(v, "/id") == inventory_vm.id)
                && has_condition(old.get("conditions"), "Succeeded")
            {
                vms.push(old.clone());
                continue;
            }
            let itinerary = Itinerary::build(
                ctx,
                inventory_vm,
                &self.effective_spec_vm(spec_vm, inventory_vm),
                &|key: &str| self.setting(key),
            );
            let mut v = spec_vm.clone();
            v["id"] = json!(inventory_vm.id);
            v["name"] = json!(inventory_vm.name);
            if !inventory_vm.namespace.is_empty() {
                v["namespace"] = json!(inventory_vm.namespace);
            }
            v["phase"] = json!("Started");
            v["pipeline"] = Value::Array(itinerary.pipeline(inventory_vm));
            if ctx.warm {
                v["warm"] = json!({"successes": 0, "failures": 0, "consecutiveFailures": 0, "precopies": []});
            }
            vms.push(v);
        }
        mig["history"] = Value::Array(history);
        mig["vms"] = Value::Array(vms);
        mig["started"] = json!(now);
        if let Some(m) = mig.as_object_mut() {
            m.remove("completed");
        }
    }

    /// Closes the active snapshot with a terminal condition.
    fn finish_snapshot(
        &mut self,
        mig: &mut Value,
        outcome: Option<(&str, &str, &str)>,
        _why: &str,
    ) {
        let Some(history) = mig.get_mut("history").and_then(Value::as_array_mut) else {
            return;
        };
        let Some(last) = history.last_mut() else {
            return;
        };
        let mut conds = super::conditions::parse(last.get("conditions"));
        conds.remove("Executing");
        if let Some((kind, reason, message)) = outcome {
            conds.set(Condition::new(kind, ADVISORY, reason, message).durable());
        }
        let json = conds.to_json(last.get("conditions"));
        last["conditions"] = json;
        mig["completed"] = json!(clock::now_rfc3339());
    }

    /// Cancels the VMs still running and closes the snapshot `Canceled` for `reason`: `Modified` when
    /// the Plan's providers or network map changed, `Deleted` when its Migration is gone.
    fn cancel_snapshot(
        &mut self,
        plan: &Value,
        ctx: &PlanCtx,
        mig: &mut Value,
        reason: &str,
        message: &str,
    ) {
        self.cancel_all(plan, ctx, mig, "Modified");
        self.finish_snapshot(mig, Some(("Canceled", reason, message)), reason);
    }

    fn cancel_all(&mut self, plan: &Value, ctx: &PlanCtx, mig: &mut Value, reason: &str) {
        let mut vms: Vec<Value> = array_at(mig, "/vms");
        let migration_uid = mig
            .get("history")
            .and_then(Value::as_array)
            .and_then(|h| h.last())
            .map(|l| text_at(l, "/migration/uid").to_string())
            .unwrap_or_default();
        for vm in vms.iter_mut() {
            if vm.get("completed").is_none() {
                self.cancel_vm(plan, ctx, vm, &migration_uid, reason);
            }
        }
        mig["vms"] = Value::Array(vms);
    }

    fn cancel_vm(
        &mut self,
        plan: &Value,
        ctx: &PlanCtx,
        vm: &mut Value,
        migration_uid: &str,
        reason: &str,
    ) {
        let id = text_at(vm, "/id").to_string();
        if let Some(steps) = vm.get_mut("pipeline").and_then(Value::as_array_mut) {
            for st in steps {
                if st.get("started").is_some() && st.get("completed").is_none() {
                    st["completed"] = json!(clock::now_rfc3339());
                    st["phase"] = json!("Completed");
                }
            }
        }
        set_condition(
            vm,
            Condition::new(
                "Canceled",
                ADVISORY,
                reason,
                "The migration has been canceled.",
            )
            .durable(),
        );
        remove_condition(vm, "Pending");
        vm["phase"] = json!("Completed");
        vm["completed"] = json!(clock::now_rfc3339());
        if text_at(vm, "/restorePowerState") == "On" {
            self.set_source_power(ctx, &id, true);
        }
        self.runs.remove(&(migration_uid.to_string(), id.clone()));
        self.cleanup_vm(plan, &id, vm, true);
    }

    pub(crate) fn set_source_power(&mut self, ctx: &PlanCtx, vm_id: &str, on: bool) {
        match &ctx.inventory {
            super::inventory::Inventory::Lab { name, .. } => {
                // Forklift shuts the guest down; `misbehave=…@source-stop` pulls the plug instead.
                let action = if on {
                    PowerAction::Start
                } else if self.source.vm(name, vm_id).is_ok_and(|vm| {
                    self.opts
                        .faults()
                        .misbehaves(&vm.name, vm_id, Misbehaviour::SourceStop)
                }) {
                    PowerAction::Stop
                } else {
                    PowerAction::Shutdown
                };
                let _ = self.source.set_power(name, vm_id, action);
            }
            super::inventory::Inventory::Cluster => {
                let list =
                    self.store
                        .list(&registry::VIRTUAL_MACHINE, None, &ListOptions::default());
                if let Some(vm) = list
                    .ok()
                    .and_then(|l| l.items.into_iter().find(|v| meta(v, "uid") == vm_id))
                {
                    let ns = meta(&vm, "namespace").to_string();
                    let name = meta(&vm, "name").to_string();
                    let strategy = if on { "Always" } else { "Halted" };
                    self.amend(&registry::VIRTUAL_MACHINE, Some(&ns), &name, |o| {
                        if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
                            spec.remove("running");
                            spec.insert("runStrategy".into(), json!(strategy));
                        }
                    });
                    if !on {
                        let _ = self.store.delete(
                            &registry::VIRTUAL_MACHINE_INSTANCE,
                            Some(&ns),
                            &name,
                            &Default::default(),
                        );
                    }
                }
            }
        }
    }

    /// VMs in flight on the same source provider across all plans, for the scheduler (§4.4): VM count, or
    /// disks per ESXi host on vSphere.
    /// The scheduler bucket of a VM and what it costs (§4.4): on vSphere, its disks on its ESXi host;
    /// elsewhere one VM for the whole provider.
    fn slot(&self, ctx: &PlanCtx, vm_id: &str) -> (String, u64) {
        if let super::inventory::Inventory::Lab { name, kind } = &ctx.inventory
            && kind == "vsphere"
            && let Ok(vm) = self.source.vm(name, vm_id)
        {
            return (vm.host.unwrap_or_default(), vm.disks.len().max(1) as u64);
        }
        (String::new(), 1)
    }

    /// In-flight units per bucket on the plan's source provider, across all other plans. The per-plan
    /// usage is read from the store once per reconcile round and kept current as plans run.
    fn inflight(&mut self, ctx: &PlanCtx, exclude_plan: &str) -> HashMap<String, u64> {
        let src_uid = meta(&ctx.src, "uid").to_string();
        if !self.inflight_cache.contains_key(&src_uid) {
            let mut per_plan: HashMap<String, HashMap<String, u64>> = HashMap::new();
            for p in self.store.list_shared(&registry::PLAN, None) {
                let active = p
                    .pointer("/status/migration/history")
                    .and_then(Value::as_array)
                    .and_then(|h| h.last())
                    .is_some_and(|l| text_at(l, "/provider/source/uid") == src_uid && !terminal(l));
                if !active {
                    continue;
                }
                let usage = per_plan.entry(meta(&p, "uid").to_string()).or_default();
                for vm in p
                    .pointer("/status/migration/vms")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    if vm.get("started").is_some() && vm.get("completed").is_none() {
                        let (bucket, units) = self.slot(ctx, text_at(vm, "/id"));
                        *usage.entry(bucket).or_default() += units;
                    }
                }
            }
            self.inflight_cache.insert(src_uid.clone(), per_plan);
        }
        let mut used: HashMap<String, u64> = HashMap::new();
        for (plan, usage) in self.inflight_cache.get(&src_uid).into_iter().flatten() {
            if plan != exclude_plan {
                for (bucket, units) in usage {
                    *used.entry(bucket.clone()).or_default() += units;
                }
            }
        }
        used
    }

    /// Records what a plan has in flight after its pass.
    fn record_inflight(&mut self, ctx: &PlanCtx, plan_uid: &str, vms: &[Value]) {
        let mut usage: HashMap<String, u64> = HashMap::new();
        for v in vms
            .iter()
            .filter(|v| v.get("started").is_some() && v.get("completed").is_none())
        {
            let (bucket, units) = self.slot(ctx, text_at(v, "/id"));
            *usage.entry(bucket).or_default() += units;
        }
        if let Some(per_plan) = self.inflight_cache.get_mut(meta(&ctx.src, "uid")) {
            per_plan.insert(plan_uid.to_string(), usage);
        }
    }

    fn run_vms(
        &mut self,
        plan: &Value,
        ctx: &PlanCtx,
        mig: &mut Value,
        migration: &Value,
        limit: u64,
        plan_conds: &Conditions,
    ) -> (Option<Duration>, usize) {
        let migration_uid = meta(migration, "uid").to_string();
        let mut vms: Vec<Value> = array_at(mig, "/vms");
        let spec_vms = array_at(plan, "/spec/vms");
        let faults = self.opts.faults();
        let cancel = cancel_requests(migration, &vms);
        let mut inflight = self.inflight(ctx, meta(plan, "uid"));
        for v in vms
            .iter()
            .filter(|v| v.get("started").is_some() && v.get("completed").is_none())
        {
            let (bucket, units) = self.slot(ctx, text_at(v, "/id"));
            *inflight.entry(bucket).or_default() += units;
        }
        let mut waiting = 0;
        let tick = self
            .opts
            .real(Duration::from_secs(3))
            .clamp(Duration::from_millis(10), Duration::from_millis(50));
        for vm in vms.iter_mut() {
            if vm.get("completed").is_some() {
                continue;
            }
            let id = text_at(vm, "/id").to_string();
            if cancel.contains(&id) {
                let started = vm.get("started").is_some();
                self.cancel_vm(plan, ctx, vm, &migration_uid, "UserRequested");
                if started {
                    let (bucket, units) = self.slot(ctx, &id);
                    if let Some(u) = inflight.get_mut(&bucket) {
                        *u = u.saturating_sub(units);
                    }
                }
                continue;
            }
            let Some(index) = spec_vms.iter().position(|v| {
                let sid = text_at(v, "/id");
                (!sid.is_empty() && sid == id)
                    || (sid.is_empty()
                        && (text_at(v, "/name") == text_at(vm, "/name")
                            || text_at(v, "/name")
                                .ends_with(&format!("/{}", text_at(vm, "/name")))))
            }) else {
                continue;
            };
            let Some(Some(inventory_vm)) = ctx.vms.get(index).cloned() else {
                set_condition(
                    vm,
                    Condition::new(
                        "Canceled",
                        ADVISORY,
                        "NotFound",
                        "VM was not found in inventory.",
                    )
                    .durable(),
                );
                vm["phase"] = json!("Completed");
                vm["completed"] = json!(clock::now_rfc3339());
                continue;
            };
            let spec_vm = self.effective_spec_vm(&spec_vms[index], &inventory_vm);
            let itinerary =
                Itinerary::build(ctx, &inventory_vm, &spec_vm, &|key: &str| self.setting(key));
            let migrating = MigratingVm {
                plan,
                ctx,
                migration,
                inventory_vm: &inventory_vm,
                spec_vm: &spec_vm,
                itinerary: &itinerary,
            };
            if vm.get("started").is_none() {
                match self.start_vm(&migrating, vm, &mut inflight, limit) {
                    VmStart::Started => {}
                    VmStart::Waiting => {
                        waiting += 1;
                        continue;
                    }
                    VmStart::Failed => continue,
                }
            }
            self.advance(&migrating, vm, &faults);
        }
        mig["vms"] = Value::Array(vms.clone());
        self.record_inflight(ctx, meta(plan, "uid"), &vms);
        if self.blocker_expired(plan, plan_conds) {
            self.fail_on_blocker(mig, plan_conds);
            self.runs.retain(|(m, _), _| *m != migration_uid);
            return (None, 0);
        }
        let all_done = vms.iter().all(|v| v.get("completed").is_some());
        if all_done {
            self.finish_snapshot(mig, Some(plan_outcome(&vms)), "");
            self.runs.retain(|(m, _), _| *m != migration_uid);
            return (None, 0);
        }
        (Some(tick), waiting)
    }

    /// Starts a VM when the in-flight limit leaves room (a VM bigger than the limit may still run
    /// alone); otherwise it waits with the `Pending` condition.
    fn start_vm(
        &mut self,
        migrating: &MigratingVm<'_>,
        vm: &mut Value,
        inflight: &mut HashMap<String, u64>,
        limit: u64,
    ) -> VmStart {
        let id = text_at(vm, "/id").to_string();
        let (bucket, units) = self.slot(migrating.ctx, &id);
        let used = inflight.get(&bucket).copied().unwrap_or(0);
        if used > 0 && used + units > limit {
            set_condition(
                vm,
                Condition::new(
                    "Pending",
                    ADVISORY,
                    "",
                    &format!("Waiting to start migration: in-flight limit reached (max {limit})."),
                )
                .durable(),
            );
            return VmStart::Waiting;
        }
        remove_condition(vm, "Pending");
        *inflight.entry(bucket).or_default() += units;
        vm["started"] = json!(clock::now_rfc3339());
        self.runs.insert(
            (
                meta(migrating.migration, "uid").to_string(),
                text_at(vm, "/id").to_string(),
            ),
            VmRun {
                since: Instant::now(),
            },
        );
        start_step(vm, "Initialize");
        match self.enter_phase(migrating, vm, "Started") {
            Ok(()) => VmStart::Started,
            Err(e) => {
                self.fail_vm(vm, &e);
                VmStart::Failed
            }
        }
    }

    /// True once a blocker has lasted `controller_blocker_grace_period_minutes` (§4.6).
    fn blocker_expired(&mut self, plan: &Value, conds: &Conditions) -> bool {
        let uid = meta(plan, "uid").to_string();
        if !conds.has_blocker() {
            self.blocker_since.remove(&uid);
            return false;
        }
        let grace: u64 = self.setting_or("controller_blocker_grace_period_minutes", 5);
        let since = *self.blocker_since.entry(uid).or_insert_with(Instant::now);
        since.elapsed() >= self.opts.real(Duration::from_secs(60 * grace))
    }

    fn fail_on_blocker(&mut self, mig: &mut Value, conds: &Conditions) {
        let messages: Vec<&str> = conds
            .0
            .iter()
            .filter(|c| c.is_blocker())
            .map(|c| c.message.as_str())
            .collect();
        let message = format!(
            "The migration has FAILED due to a validation blocker: {}",
            messages.join("; ")
        );
        let mut vms: Vec<Value> = array_at(mig, "/vms");
        for vm in vms.iter_mut().filter(|v| v.get("completed").is_none()) {
            self.fail_vm(vm, &message);
        }
        mig["vms"] = Value::Array(vms);
        self.finish_snapshot(mig, Some(("Failed", "", &message)), "");
    }

    fn fail_vm(&mut self, vm: &mut Value, message: &str) {
        let phase = text_at(vm, "/phase").to_string();
        let step_name = vm
            .get("pipeline")
            .and_then(Value::as_array)
            .and_then(|p| {
                p.iter()
                    .rev()
                    .find(|st| st.get("started").is_some())
                    .map(|st| text_at(st, "/name").to_string())
            })
            .unwrap_or_else(|| "Initialize".to_string());
        if let Some(st) = step_mut(vm, &step_name) {
            st["error"] = json!({"phase": phase, "reasons": [message]});
            if st.get("completed").is_none() {
                st["completed"] = json!(clock::now_rfc3339());
            }
            st["phase"] = json!("Completed");
        }
        vm["error"] = json!({"phase": phase, "reasons": [message]});
        vm["phase"] = json!("Completed");
        vm["completed"] = json!(clock::now_rfc3339());
        if let Some(w) = vm.get_mut("warm").filter(|w| w.is_object()) {
            let f = w.get("failures").and_then(Value::as_i64).unwrap_or(0);
            w["failures"] = json!(f + 1);
            w["consecutiveFailures"] = json!(f + 1);
        }
        set_condition(
            vm,
            Condition::new("Failed", ADVISORY, "", "The VM migration has FAILED.").durable(),
        );
    }

    /// Moves one VM through its itinerary as far as simulated time allows.
    fn advance(
        &mut self,
        migrating: &MigratingVm<'_>,
        vm: &mut Value,
        faults: &crate::faults::FaultSpec,
    ) {
        let inventory_vm = migrating.inventory_vm;
        let it = migrating.itinerary;
        let key = migrating.run_key();
        let precopy_interval: u64 = self.setting_or("controller_precopy_interval", 60);
        // `misbehave=…@precopy`: copy once, record no precopy, and wait for the cutover.
        let no_precopy = it.warm
            && faults.misbehaves(&inventory_vm.name, &inventory_vm.id, Misbehaviour::Precopy);
        for _ in 0..64 {
            let phase: &'static str = it
                .phases
                .iter()
                .copied()
                .find(|p| *p == text_at(vm, "/phase"))
                .unwrap_or("Completed");
            let step = it.step_of(phase);
            if phase == "Completed" {
                self.complete_vm(migrating, vm);
                return;
            }
            let run = self
                .runs
                .entry(key.clone())
                .or_insert(VmRun {
                    since: Instant::now(),
                })
                .clone();
            let elapsed = run.since.elapsed();
            let faulted = !step.is_empty()
                && (faults.vm_fails_at(&inventory_vm.name, step)
                    || faults.vm_fails_at(&inventory_vm.id, step));
            let precopies = vm
                .pointer("/warm/precopies")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0) as u32;
            let mut next: Option<&'static str> = None;
            if phase == "CopyingPaused" {
                if cutover_due(Some(migrating.migration), &inventory_vm.id) {
                    next = Some("StorePowerState");
                } else if !no_precopy
                    && elapsed >= self.opts.real(Duration::from_secs(60 * precopy_interval))
                {
                    next = Some(it.next(phase));
                } else {
                    return;
                }
            } else {
                match self.run_timed_phase(
                    migrating,
                    vm,
                    phase,
                    elapsed,
                    faulted,
                    (precopies, precopy_interval),
                ) {
                    Ok(None) => return,
                    Ok(Some(duration)) => {
                        if let Some(run) = self.runs.get_mut(&key) {
                            run.since += duration;
                        }
                    }
                    Err(e) => {
                        self.fail_vm(vm, &e);
                        self.runs.remove(&key);
                        return;
                    }
                }
            }
            let next = next.unwrap_or_else(|| it.next(phase));
            if phase == "CopyingPaused"
                && let Some(run) = self.runs.get_mut(&key)
            {
                // A precopy or the cutover starts its clock when it leaves the pause.
                run.since = Instant::now();
            }
            if let Err(e) = self.move_to_phase(migrating, vm, phase, next) {
                self.fail_vm(vm, &e);
                self.runs.remove(&key);
                return;
            }
        }
    }

    /// A phase that lasts its (scaled) duration: progress is reported on the way; when it is over the
    /// phase's exit work runs. `Ok(None)` while it lasts, `Ok(Some(duration))` once over, `Err` when
    /// the VM fails (an injected fault fails it halfway).
    fn run_timed_phase(
        &mut self,
        migrating: &MigratingVm<'_>,
        vm: &mut Value,
        phase: &'static str,
        elapsed: Duration,
        faulted: bool,
        (precopies, precopy_interval): (u32, u64),
    ) -> Result<Option<Duration>, String> {
        let inventory_vm = migrating.inventory_vm;
        let it = migrating.itinerary;
        let mut duration =
            self.opts
                .real(phase_duration(phase, inventory_vm, precopies, it.offload));
        if faulted {
            duration /= 2;
        }
        let fraction = (elapsed.as_secs_f64() / duration.as_secs_f64().max(1e-9)).min(1.0)
            * if faulted { 0.5 } else { 1.0 };
        self.progress(migrating, vm, phase, fraction, precopies);
        if elapsed < duration {
            return Ok(None);
        }
        if faulted {
            let step = it.step_of(phase);
            let message = format!(
                "Injected fault (vm-fail={}@{step}): the VM failed in phase {phase}.",
                inventory_vm.name
            );
            // The conversion pod fails with the same error as the last line of its log.
            self.fail_conversion_pod(
                migrating.plan,
                migrating.ctx,
                migrating.migration,
                inventory_vm,
                step,
                &message,
            );
            return Err(message);
        }
        self.exit_phase(migrating, vm, phase, precopies, precopy_interval)?;
        Ok(Some(duration))
    }

    /// The VM's itinerary is done: every step completes, `Succeeded`, and MTV's cleanup.
    fn complete_vm(&mut self, migrating: &MigratingVm<'_>, vm: &mut Value) {
        let inventory_vm = migrating.inventory_vm;
        for step in migrating.itinerary.steps.clone() {
            if step != "ConvertOpenstackSnapshot" {
                complete_step(vm, step);
            }
        }
        vm["completed"] = json!(clock::now_rfc3339());
        set_condition(
            vm,
            Condition::new("Succeeded", ADVISORY, "", "The VM migration has SUCCEEDED.").durable(),
        );
        self.runs.remove(&migrating.run_key());
        self.cleanup_after_success(
            migrating.plan,
            migrating.ctx,
            migrating.migration,
            &inventory_vm.id,
        );
        if self.misbehaves(inventory_vm, Misbehaviour::Snapshots) {
            self.remove_newest_source_snapshot(migrating.ctx, inventory_vm);
        }
    }

    /// Moves the VM from `phase` to `next`: the steps whose phases are all behind complete, the next
    /// step starts, and the next phase's work is done (Err: the VM fails).
    fn move_to_phase(
        &mut self,
        migrating: &MigratingVm<'_>,
        vm: &mut Value,
        phase: &'static str,
        next: &'static str,
    ) -> Result<(), String> {
        let it = migrating.itinerary;
        let from_step = it.step_of(phase);
        if it.step_of(next) != from_step && it.step_done_after(from_step, next) {
            complete_step(vm, from_step);
        }
        vm["phase"] = json!(next);
        let next_step = it.step_of(next);
        if !next_step.is_empty() {
            start_step(vm, next_step);
        }
        self.enter_phase(migrating, vm, next)
    }

    /// Progress of the disk work in a phase.
    fn progress(
        &mut self,
        migrating: &MigratingVm<'_>,
        vm: &mut Value,
        phase: &str,
        fraction: f64,
        precopies: u32,
    ) {
        let step = match phase {
            "CopyDisks" => "DiskTransfer",
            "AllocateDisks" => "DiskAllocation",
            "CopyDisksVirtV2V" => "DiskTransferV2v",
            "Finalize" => "Cutover",
            "WaitForStateTransfer" => {
                self.mirror_transfer(migrating, fraction, fraction >= 1.0);
                return;
            }
            _ => return,
        };
        let warm = migrating.itinerary.warm;
        let precopy = (warm && step == "DiskTransfer").then_some(precopies.max(1));
        disk_progress(vm, step, fraction, precopy);
        if phase == "CopyDisks" || phase == "CopyDisksVirtV2V" {
            self.mirror_transfer(migrating, fraction, false);
        }
    }

    fn enter_phase(
        &mut self,
        migrating: &MigratingVm<'_>,
        vm: &mut Value,
        phase: &str,
    ) -> Result<(), String> {
        let inventory_vm = migrating.inventory_vm;
        match phase {
            "Started" => {
                self.ensure_namespace(migrating.ctx.target_ns())?;
                self.cleanup_previous_attempts(
                    migrating.plan,
                    vm,
                    meta(migrating.migration, "uid"),
                );
                self.assign_target_name(migrating.ctx, vm, inventory_vm, migrating.spec_vm);
            }
            "PreHook" | "PostHook" => self.start_hook(
                migrating.plan,
                migrating.migration,
                vm,
                inventory_vm,
                migrating.spec_vm,
                phase,
            )?,
            "StorePowerState" => {
                let on = self.current_power(migrating.ctx, inventory_vm);
                vm["restorePowerState"] = json!(if on { "On" } else { "Off" });
            }
            "PowerOffSource" => self.set_source_power(migrating.ctx, &inventory_vm.id, false),
            "CreateInitialSnapshot" | "CreateSnapshot" | "CreateFinalSnapshot" => {
                let record = !self.misbehaves(inventory_vm, Misbehaviour::Precopy);
                if let Some(w) = vm.get_mut("warm").filter(|w| record && w.is_object()) {
                    let mut list = array_at(w, "/precopies");
                    let n = list.len() + 1;
                    list.push(json!({
                        "start": clock::now_rfc3339(),
                        "snapshot": format!("snapshot-{}-{n}", inventory_vm.id),
                        "createTaskId": format!("task-{}", 1000 + n),
                        "deltas": inventory_vm.disks.iter().enumerate().map(|(i, d)| json!({"disk": d.file, "deltaId": format!("52 {i:02x} {n:02x} change-{n}")})).collect::<Vec<_>>()
                    }));
                    w["precopies"] = Value::Array(list);
                }
            }
            "CreateDataVolumes" | "EnsureDataVolumes" => self.create_disks(migrating)?,
            _ => {}
        }
        Ok(())
    }

    fn exit_phase(
        &mut self,
        migrating: &MigratingVm<'_>,
        vm: &mut Value,
        phase: &str,
        precopies: u32,
        interval_minutes: u64,
    ) -> Result<(), String> {
        let inventory_vm = migrating.inventory_vm;
        let it = migrating.itinerary;
        match phase {
            "PreHook" | "PostHook" => {
                self.finish_hook(migrating.plan, migrating.migration, vm, inventory_vm, phase)?
            }
            "CopyDisks" => {
                disk_progress(vm, "DiskTransfer", 1.0, it.warm.then_some(precopies.max(1)));
                self.mirror_transfer(migrating, 1.0, true);
                let record = !self.misbehaves(inventory_vm, Misbehaviour::Precopy);
                if let Some(w) = vm.get_mut("warm").filter(|w| w.is_object()) {
                    if record {
                        let n = w.get("successes").and_then(Value::as_i64).unwrap_or(0) + 1;
                        w["successes"] = json!(n);
                        w["consecutiveFailures"] = json!(0);
                        let next_at = clock::unix_now()
                            + self
                                .opts
                                .real(Duration::from_secs(60 * interval_minutes))
                                .as_secs_f64()
                                .ceil() as i64;
                        w["nextPrecopyAt"] = json!(clock::format_rfc3339(next_at));
                        if let Some(last) = w
                            .get_mut("precopies")
                            .and_then(Value::as_array_mut)
                            .and_then(|l| l.last_mut())
                        {
                            last["end"] = json!(clock::now_rfc3339());
                        }
                    }
                } else if it.cdi && vm.pipeline_has("ImageConversion") {
                    vm["disksCopied"] = json!(true);
                }
            }
            "AllocateDisks" => disk_progress(vm, "DiskAllocation", 1.0, None),
            "CopyDisksVirtV2V" => {
                disk_progress(vm, "DiskTransferV2v", 1.0, None);
                self.mirror_transfer(migrating, 1.0, true);
            }
            "Finalize" => {
                disk_progress(vm, "Cutover", 1.0, None);
                if let Some(last) = vm
                    .pointer_mut("/warm/precopies")
                    .and_then(Value::as_array_mut)
                    .and_then(|l| l.last_mut())
                {
                    last["end"] = json!(clock::now_rfc3339());
                }
                vm["disksCopied"] = json!(true);
            }
            "ConvertGuest" => {
                if let Some(st) = step_mut(vm, "ImageConversion") {
                    st["progress"]["completed"] = json!(1);
                }
                // What virt-v2v learns about the guest.
                vm["firmware"] = json!(inventory_vm.firmware);
                if !inventory_vm.guest_os.is_empty() {
                    vm["operatingSystem"] = json!(inventory_vm.guest_os);
                }
            }
            "CreateVM" | "CreateTarget" => self.create_target_vm(
                migrating.plan,
                migrating.ctx,
                migrating.migration,
                vm,
                inventory_vm,
            )?,
            "CreateGuestConversionPod" => self.create_conversion_pod(
                migrating.plan,
                migrating.ctx,
                migrating.migration,
                inventory_vm,
            )?,
            "WaitForStateTransfer" => {
                // The guest now runs on the target; the source VM stops.
                self.set_source_power(migrating.ctx, &inventory_vm.id, false);
            }
            _ => {}
        }
        Ok(())
    }

    /// The Plan's VM entry as this run reads it: `misbehave=…@hook-step` swaps its hooks' steps.
    fn effective_spec_vm(&self, spec_vm: &Value, inventory_vm: &InvVm) -> Value {
        if self.misbehaves(inventory_vm, Misbehaviour::HookStep) {
            super::misbehave::swap_hook_steps(spec_vm)
        } else {
            spec_vm.clone()
        }
    }

    /// `misbehave=…@snapshots`: a source-side mutation the suite detects by comparing snapshots.
    fn remove_newest_source_snapshot(&mut self, ctx: &PlanCtx, inventory_vm: &InvVm) {
        if let super::inventory::Inventory::Lab { name, .. } = &ctx.inventory {
            let _ = self.source.update_vm(name, &inventory_vm.id, |vm| {
                super::misbehave::remove_newest_snapshot(&mut vm.snapshots);
            });
        }
    }

    fn current_power(&self, ctx: &PlanCtx, inventory_vm: &InvVm) -> bool {
        match &ctx.inventory {
            super::inventory::Inventory::Lab { name, .. } => self
                .source
                .vm(name, &inventory_vm.id)
                .map(|v| v.power_state == PowerState::On)
                .unwrap_or(inventory_vm.powered_on),
            super::inventory::Inventory::Cluster => inventory_vm.powered_on,
        }
    }
}

trait PipelineExt {
    fn pipeline_has(&self, step: &str) -> bool;
}

impl PipelineExt for Value {
    fn pipeline_has(&self, step: &str) -> bool {
        self.get("pipeline")
            .and_then(Value::as_array)
            .is_some_and(|p| p.iter().any(|st| text_at(st, "/name") == step))
    }
}

/// The Migration's cancel requests as VM ids (names resolved through the Plan's VMs).
fn cancel_requests(migration: &Value, vms: &[Value]) -> Vec<String> {
    array_at(migration, "/spec/cancel")
        .iter()
        .filter_map(|cancel| {
            let id = text_at(cancel, "/id");
            if !id.is_empty() {
                return Some(id.to_string());
            }
            let name = text_at(cancel, "/name");
            vms.iter()
                .find(|vm| text_at(vm, "/name") == name)
                .map(|vm| text_at(vm, "/id").to_string())
        })
        .collect()
}

/// How a run whose VMs have all completed ends: Failed if any failed, else Succeeded if any
/// succeeded, else Canceled.
fn plan_outcome(vms: &[Value]) -> (&'static str, &'static str, &'static str) {
    let any = |kind: &str| {
        vms.iter()
            .any(|vm| has_condition(vm.get("conditions"), kind))
    };
    if any("Failed") {
        ("Failed", "", "The plan execution has FAILED.")
    } else if any("Succeeded") {
        ("Succeeded", "", "The plan execution has SUCCEEDED.")
    } else {
        ("Canceled", "", "The plan execution has been CANCELED.")
    }
}

/// What became of a VM that had not started yet.
enum VmStart {
    Started,
    /// The in-flight limit is reached.
    Waiting,
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_fill_tasks() {
        let mut vm = json!({"pipeline": [{"name": "DiskTransfer", "progress": {"completed": 0, "total": 3072}, "tasks": [
            {"name": "[ds] a.vmdk", "progress": {"completed": 0, "total": 1024}, "annotations": {"unit": "MB"}},
            {"name": "[ds] b.vmdk", "progress": {"completed": 0, "total": 2048}, "annotations": {"unit": "MB"}}]}]});
        disk_progress(&mut vm, "DiskTransfer", 0.5, None);
        assert_eq!(vm["pipeline"][0]["progress"]["completed"], 1536);
        disk_progress(&mut vm, "DiskTransfer", 1.0, None);
        assert_eq!(
            vm["pipeline"][0]["tasks"][1]["reason"],
            "Transfer completed."
        );
    }
}
