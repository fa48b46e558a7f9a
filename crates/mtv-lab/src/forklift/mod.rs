//! The simulated Forklift control plane: controllers for Provider, NetworkMap, StorageMap, Hook, Plan and
//! Migration that reconcile through the [`Store`] (watch events plus requeue timers) and write only `status`
//! (forklift-api.md §0–§6, §9), plus KubeVirt's start/stop of VirtualMachines (`kubevirt.rs`), and the
//! deliberate mistakes of `misbehave=<vm>@<point>` faults (`misbehave.rs`).
//!
//! Time: one lab minute takes one real second at `speed` 1 up to a minute, and longer durations grow
//! logarithmically (monotonic, so order and overlap hold), then divided by `speed`
//! ([`ForkliftOptions::real`]). Disks copy at 450 MiB per lab second, so a 30 GiB VM copies in about
//! 1 s and migrates in about 2 s at speed 1, a 2 TB disk copies in about 5 s; a warm precopy interval
//! of N > 1 minutes lasts 1 + ln N seconds.
//!
//! TODO (not simulated yet): the Host controller; EC2, HyperV and Nutanix sources (the lab file has none,
//! so their connection test fails as unreachable); Conversion CRs, inspection, importer and
//! VDDK-validation pods (the virt-v2v conversion pod exists, `target.rs`); oVirt and OpenStack volume
//! populators; `resumeConversion`/`ConversionResumable`; UDN and NetApp Shift checks; shared disks,
//! LUKS, `csiVolumeImport`; SSH clone-method checks; the admission webhooks other than the Plan's
//! `populatorLabels` annotation (done here, after create).

mod conditions;
mod exec;
mod failed_pod;
mod hook;
mod importer;
mod inventory;
mod kubevirt;
mod maps;
mod migration;
mod misbehave;
mod plan;
pub(crate) mod provider;
mod target;
pub mod webhooks;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::controller_task::{
    Reconciler, feed, feed_queued, requeue_after, requeue_due, time_until,
};
use crate::faults::FaultSpec;
use crate::registry::{self, ResourceType};
use crate::source::SourceLab;
use crate::store::{EventType, ListOptions, Store, StoreEvent};

pub use conditions::ref_string;

/// How the simulated control plane runs.
#[derive(Debug, Clone)]
pub struct ForkliftOptions {
    /// Time scale: every simulated duration is divided by this.
    pub speed: f64,
    /// Faults in force (`vm-fail`, `provider-conn-fail`); read on every reconcile, so tests may change them.
    pub faults: Arc<RwLock<FaultSpec>>,
    /// The operator namespace holding the `forklift-controller` ForkliftController.
    pub mtv_namespace: String,
    /// Lab time a new provider spends in `LoadInventory` before `InventoryCreated`.
    pub inventory_delay: Duration,
    /// Lab time a plan shows `ValidatingVDDK` for a (plan, VDDK image) pair; zero disables the window.
    pub vddk_validation: Duration,
    /// The guests of migrated VMs, recorded at VM creation and served by the port-forward subresource.
    pub guests: crate::guest::GuestImages,
}

impl ForkliftOptions {
    pub fn new(speed: f64, faults: FaultSpec, mtv_namespace: &str) -> Self {
        Self {
            speed,
            faults: Arc::new(RwLock::new(faults)),
            mtv_namespace: mtv_namespace.to_string(),
            inventory_delay: Duration::from_secs(20),
            vddk_validation: Duration::from_secs(10),
            guests: Default::default(),
        }
    }

    /// The real duration of a lab duration, divided by `speed`: one lab minute is one real second up to
    /// a minute ([`mtv_api::time::lab_seconds`]); past it a duration grows with the logarithm of its
    /// length (a 78-minute copy of 2 TB lasts about 5.4 s, not 78 s). The mapping is monotonic, so what is longer in lab
    /// time is longer in real time and phases keep their order and overlap; only the ratio between two
    /// long durations shrinks. A run waits for what it checks, not for simulated hours.
    pub fn real(&self, lab: Duration) -> Duration {
        let speed = if self.speed.is_finite() && self.speed > 0.0 {
            self.speed
        } else {
            1.0
        };
        Duration::from_secs_f64(compressed_seconds(lab.as_secs_f64() / 60.0) / speed)
    }

    fn faults(&self) -> FaultSpec {
        self.faults.read().map(|f| f.clone()).unwrap_or_default()
    }
}

/// Real seconds (speed 1) for `minutes` lab minutes: the lab clock shared with the suite's warm cutover.
fn compressed_seconds(minutes: f64) -> f64 {
    mtv_api::time::lab_seconds(minutes)
}

impl Default for ForkliftOptions {
    fn default() -> Self {
        Self::new(1.0, FaultSpec::default(), crate::lab::MTV_NAMESPACE)
    }
}

/// The running controllers.
pub type ForkliftHandle = crate::controller_task::ControllerHandle;

/// Starts the Forklift controllers over `store` and the source inventories of `source`.
pub fn spawn_forklift(store: Store, source: SourceLab, options: ForkliftOptions) -> ForkliftHandle {
    let (shutdown, mut stop) = tokio::sync::watch::channel(false);
    let mut events = store.subscribe();
    let mut source_changes = source.subscribe();
    let mut ctl = Controller::new(store, source, options);
    let task = tokio::spawn(async move {
        ctl.mark_all();
        loop {
            ctl.process();
            let wait = time_until(ctl.next_deadline());
            tokio::select! {
                _ = stop.changed() => break,
                event = events.recv() => if !feed(&mut ctl, event) {
                    break;
                },
                change = source_changes.recv() => match change {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => ctl.mark_dependents(),
                    Err(broadcast::error::RecvError::Closed) => {}
                },
                _ = tokio::time::sleep(wait) => {},
            }
            // Coalesce whatever else is already queued before reconciling.
            feed_queued(&mut ctl, &mut events);
            while source_changes.try_recv().is_ok() {
                ctl.mark_dependents();
            }
            if *stop.borrow() {
                break;
            }
        }
    });
    ForkliftHandle::new(shutdown, task)
}

/// The kinds the controllers reconcile, in the order a pass handles them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    Provider,
    Hook,
    NetworkMap,
    StorageMap,
    Plan,
    Migration,
    /// KubeVirt's start/stop of VirtualMachines (`kubevirt.rs`).
    VirtualMachine,
}

impl Kind {
    /// Every kind the controllers reconcile.
    const ALL: [Kind; 7] = [
        Kind::Provider,
        Kind::Hook,
        Kind::NetworkMap,
        Kind::StorageMap,
        Kind::Plan,
        Kind::Migration,
        Kind::VirtualMachine,
    ];

    fn resource(self) -> &'static ResourceType {
        match self {
            Kind::Provider => &registry::PROVIDER,
            Kind::Hook => &registry::HOOK,
            Kind::NetworkMap => &registry::NETWORK_MAP,
            Kind::StorageMap => &registry::STORAGE_MAP,
            Kind::Plan => &registry::PLAN,
            Kind::Migration => &registry::MIGRATION,
            Kind::VirtualMachine => &registry::VIRTUAL_MACHINE,
        }
    }

    fn of(rt: &ResourceType) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| std::ptr::eq(k.resource(), rt))
    }
}

type Key = (Kind, String, String);

/// Controller state that is not in the store: timers and the simulation clocks of running work.
pub(crate) struct Controller {
    pub(crate) store: Store,
    pub(crate) source: SourceLab,
    pub(crate) opts: ForkliftOptions,
    dirty: BTreeSet<Key>,
    requeue: HashMap<Key, Instant>,
    /// Provider uid -> when its inventory load started.
    pub(crate) inventory_started: HashMap<String, Instant>,
    /// Provider uid -> the spec/secret version whose connection test failed with an auth error.
    pub(crate) auth_failed: HashMap<String, String>,
    /// (plan uid, VDDK image) -> when validation started.
    pub(crate) vddk_started: HashMap<(String, String), Instant>,
    /// Per-VM simulation clocks, keyed by (migration uid, vm id).
    pub(crate) runs: HashMap<(String, String), exec::VmRun>,
    /// Populator pods to delete at a given time: (namespace, name).
    pub(crate) pod_reaper: Vec<(Instant, String, String)>,
    /// Plan uid -> when a blocker appeared while it was executing.
    pub(crate) blocker_since: HashMap<String, Instant>,
    /// Source provider uid -> plan uid -> in-flight units per scheduler bucket, for one reconcile round.
    pub(crate) inflight_cache: HashMap<String, HashMap<String, HashMap<String, u64>>>,
    /// (namespace, plan name) -> names of the Migrations that reference it.
    migrations_by_plan: HashMap<(String, String), BTreeSet<(String, String)>>,
    /// VirtualMachine uid -> what its guest shows when it runs (set at migration, kept for restarts).
    pub(crate) guest_facts: HashMap<String, kubevirt::GuestFacts>,
}

impl Controller {
    fn new(store: Store, source: SourceLab, opts: ForkliftOptions) -> Self {
        Self {
            store,
            source,
            opts,
            dirty: BTreeSet::new(),
            requeue: HashMap::new(),
            inventory_started: HashMap::new(),
            auth_failed: HashMap::new(),
            vddk_started: HashMap::new(),
            runs: HashMap::new(),
            pod_reaper: Vec::new(),
            blocker_since: HashMap::new(),
            inflight_cache: HashMap::new(),
            migrations_by_plan: HashMap::new(),
            guest_facts: HashMap::new(),
        }
    }

    fn mark_kind(&mut self, kind: Kind) {
        for item in self.store.list_shared(kind.resource(), None) {
            if kind == Kind::Migration {
                self.index_migration(&item, false);
            }
            let ns = meta(&item, "namespace").to_string();
            let name = meta(&item, "name").to_string();
            self.dirty.insert((kind, ns, name));
        }
    }

    /// Keeps the plan -> migrations index current.
    fn index_migration(&mut self, migration: &Value, deleted: bool) {
        let ns = meta(migration, "namespace").to_string();
        let key = (ns.clone(), meta(migration, "name").to_string());
        let plan_ns = Some(text_at(migration, "/spec/plan/namespace"))
            .filter(|n| !n.is_empty())
            .unwrap_or(&ns)
            .to_string();
        let plan = text_at(migration, "/spec/plan/name").to_string();
        for set in self.migrations_by_plan.values_mut() {
            set.remove(&key);
        }
        if !deleted {
            self.migrations_by_plan
                .entry((plan_ns, plan))
                .or_default()
                .insert(key);
        }
    }

    /// Maps and plans: whatever validates against providers, inventories and destination objects.
    fn mark_dependents(&mut self) {
        self.mark_kind(Kind::NetworkMap);
        self.mark_kind(Kind::StorageMap);
        self.mark_kind(Kind::Plan);
    }

    /// KubeVirt's view: a VM reconciles again when a subresource request lands in its status, when a
    /// DataVolume it owns moves, or when a NetworkAttachmentDefinition appears or goes.
    fn mark_virtual_machines_for(&mut self, event: &StoreEvent, status_only: bool) {
        let rt = event.resource;
        let ns = event.namespace().unwrap_or_default().to_string();
        if std::ptr::eq(rt, &registry::VIRTUAL_MACHINE) && status_only {
            let requests = |o: &Value| o.pointer("/status/stateChangeRequests").cloned();
            if event.old_object.as_deref().map(requests) != Some(requests(&event.object)) {
                self.dirty
                    .insert((Kind::VirtualMachine, ns, event.name().to_string()));
            }
        } else if std::ptr::eq(rt, &registry::DATA_VOLUME) {
            for owner in event
                .object
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|o| text_at(o, "/kind") == "VirtualMachine")
            {
                self.dirty.insert((
                    Kind::VirtualMachine,
                    ns.clone(),
                    text_at(owner, "/name").to_string(),
                ));
            }
        } else if std::ptr::eq(rt, &registry::NETWORK_ATTACHMENT_DEFINITION) {
            self.mark_kind(Kind::VirtualMachine);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let reap = self.pod_reaper.iter().map(|(t, _, _)| *t);
        self.requeue.values().copied().chain(reap).min()
    }

    /// Reconciles everything dirty or due.
    fn process(&mut self) {
        let now = Instant::now();
        requeue_due(&mut self.requeue, &mut self.dirty, now);
        self.reap_pods(now);
        self.inflight_cache.clear();
        // Reconciling may mark more work (a provider that became Ready dirties plans): a few rounds.
        for _ in 0..4 {
            if self.dirty.is_empty() {
                break;
            }
            let batch = std::mem::take(&mut self.dirty);
            for key in batch {
                let (kind, ns, name) = &key;
                let obj = match self.store.get(kind.resource(), Some(ns), name) {
                    Ok(o) => o,
                    Err(_) => continue,
                };
                let after = match kind {
                    Kind::Provider => self.reconcile_provider(&obj),
                    Kind::Hook => self.reconcile_hook(&obj),
                    Kind::NetworkMap => self.reconcile_map(&obj, maps::MapKind::Network),
                    Kind::StorageMap => self.reconcile_map(&obj, maps::MapKind::Storage),
                    Kind::Plan => self.reconcile_plan(&obj),
                    Kind::Migration => self.reconcile_migration(&obj),
                    Kind::VirtualMachine => {
                        self.reconcile_virtual_machine(&obj);
                        None
                    }
                };
                requeue_after(&mut self.requeue, key, after);
            }
        }
    }

    fn reap_pods(&mut self, now: Instant) {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pod_reaper)
            .into_iter()
            .partition(|(t, _, _)| *t <= now);
        self.pod_reaper = keep;
        for (_, ns, name) in due {
            let _ = self
                .store
                .delete(&registry::POD, Some(&ns), &name, &Default::default());
        }
    }

    /// Writes `status` when it changed (a no-op write commits nothing anyway).
    /// base/controller.go Record: an Event on the object for every condition added, updated or
    /// deleted since the last reconcile; `Warning` for Critical, Error and Warn, `Normal` otherwise; the
    /// reason is the condition type, the message the condition's; from the controller's recorder.
    pub(crate) fn record_condition_events(
        &self,
        obj: &Value,
        previous: Option<&Value>,
        now: &conditions::Conditions,
        component: &str,
    ) {
        let before = conditions::parse(previous);
        let changed = now.0.iter().filter(|c| before.get(&c.kind) != Some(*c));
        let deleted = before.0.iter().filter(|c| !now.has(&c.kind));
        for c in changed.chain(deleted) {
            let kind = match c.category {
                conditions::CRITICAL | conditions::ERROR | conditions::WARN => "Warning",
                _ => "Normal",
            };
            let _ = self
                .store
                .record_event(obj, kind, &c.kind, &c.message, component);
        }
    }

    pub(crate) fn write_status(&self, rt: &'static ResourceType, obj: &Value, status: Value) {
        if obj.get("status") == Some(&status) {
            return;
        }
        let ns = meta(obj, "namespace");
        let name = meta(obj, "name");
        if let Err(e) =
            self.store
                .update_status(rt, Some(ns).filter(|s| !s.is_empty()), name, status)
        {
            tracing::warn!(kind = rt.kind, %ns, %name, error = %e, "forklift: status write failed");
        }
    }

    /// Changes an object in place, best effort: an object gone or a conflict is left to the next reconcile.
    pub(crate) fn amend(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
        change: impl FnOnce(&mut Value),
    ) {
        let _ = self
            .store
            .modify(rt, namespace, name, &Default::default(), |object| {
                change(object);
                Ok(())
            });
    }
}

impl Reconciler for Controller {
    fn mark_all(&mut self) {
        for kind in Kind::ALL {
            self.mark_kind(kind);
        }
    }

    fn on_event(&mut self, event: &StoreEvent) {
        let ns = event.namespace().unwrap_or_default().to_string();
        let name = event.name().to_string();
        let status_only = event.event_type == EventType::Modified
            && event
                .old_object
                .as_deref()
                .is_some_and(|old| same_except_status(old, &event.object));
        self.mark_virtual_machines_for(event, status_only);
        let Some(kind) = Kind::of(event.resource) else {
            let rt = event.resource;
            if std::ptr::eq(rt, &registry::SECRET) {
                self.mark_kind(Kind::Provider);
            } else if status_only {
                // Status of pods, PVCs, VMs, jobs: written by this controller; nothing validates on it.
            } else if std::ptr::eq(rt, &registry::NAMESPACE)
                || std::ptr::eq(rt, &registry::STORAGE_CLASS)
                || std::ptr::eq(rt, &registry::NETWORK_ATTACHMENT_DEFINITION)
                || std::ptr::eq(rt, &registry::PERSISTENT_VOLUME_CLAIM)
                || std::ptr::eq(rt, &registry::FORKLIFT_CONTROLLER)
            {
                self.mark_dependents();
            }
            return;
        };
        if event.event_type == EventType::Deleted {
            self.requeue.remove(&(kind, ns.clone(), name.clone()));
            if kind == Kind::Plan {
                self.cleanup_deleted_plan(&event.object);
            }
            if kind == Kind::VirtualMachine {
                self.guest_facts.remove(meta(&event.object, "uid"));
                self.opts.guests.remove(meta(&event.object, "uid"));
            }
        } else if !status_only {
            self.dirty.insert((kind, ns.clone(), name.clone()));
        }
        match kind {
            // Plans validate against destination VMs (name and MAC conflicts).
            Kind::VirtualMachine if !status_only => self.mark_dependents(),
            Kind::VirtualMachine => {}
            Kind::Provider => {
                self.mark_dependents();
                self.mark_kind(Kind::Migration);
            }
            Kind::Hook | Kind::NetworkMap | Kind::StorageMap => self.mark_kind(Kind::Plan),
            Kind::Plan => {
                // Migrations mirror the plan's snapshot.
                if let Some(keys) = self.migrations_by_plan.get(&(ns.clone(), name.clone())) {
                    for (mns, m) in keys.clone() {
                        self.dirty.insert((Kind::Migration, mns, m));
                    }
                }
            }
            Kind::Migration => {
                self.index_migration(&event.object, event.event_type == EventType::Deleted);
                if !status_only {
                    let plan_ns = event
                        .object
                        .pointer("/spec/plan/namespace")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .unwrap_or(&ns)
                        .to_string();
                    if let Some(plan) = event
                        .object
                        .pointer("/spec/plan/name")
                        .and_then(Value::as_str)
                    {
                        self.dirty.insert((Kind::Plan, plan_ns, plan.to_string()));
                    }
                }
            }
        }
    }
}

/// The array at a JSON pointer (empty when absent or no array).
pub(crate) fn slice_at<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// `metadata.<field>` as a string ("" when absent).
pub(crate) fn meta<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(crate) fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// A string at a JSON pointer ("" when absent).
pub(crate) fn text_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The array at a JSON pointer, copied; empty when absent (status lists start out missing).
pub(crate) fn array_at(obj: &Value, pointer: &str) -> Vec<Value> {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A boolean at a JSON pointer, if there is one.
pub(crate) fn bool_at(obj: &Value, pointer: &str) -> Option<bool> {
    obj.pointer(pointer).and_then(Value::as_bool)
}

/// True when two versions of an object differ only in `status` and server-owned bookkeeping (for a
/// claim, also its binding to a PersistentVolume: `spec.volumeName` and the `pv.kubernetes.io/`
/// annotations, which the provisioner writes and nothing here validates on).
fn same_except_status(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("status");
        }
        if v.get("kind").and_then(Value::as_str) == Some("PersistentVolumeClaim") {
            if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("volumeName");
            }
            if let Some(a) = v
                .pointer_mut("/metadata/annotations")
                .and_then(Value::as_object_mut)
            {
                a.retain(|k, _| {
                    !k.starts_with("pv.kubernetes.io/")
                        && k != "volume.kubernetes.io/storage-provisioner"
                });
            }
        }
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        v
    };
    strip(old) == strip(new)
}

/// A ForkliftController spec value as text (numbers and strings alike), with the CRD default.
pub(crate) fn controller_setting(store: &Store, mtv_ns: &str, key: &str) -> Option<String> {
    let list = store
        .list(
            &registry::FORKLIFT_CONTROLLER,
            Some(mtv_ns),
            &ListOptions::default(),
        )
        .ok()?;
    let item = list.items.into_iter().next()?;
    match item.pointer(&format!("/spec/{key}"))? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn the_clock_is_linear_up_to_a_minute_then_logarithmic_and_monotonic() {
        let opts = ForkliftOptions::default();
        let real = |lab_secs: f64| opts.real(Duration::from_secs_f64(lab_secs)).as_secs_f64();
        assert!((real(30.0) - 0.5).abs() < 1e-9);
        assert!((real(60.0) - 1.0).abs() < 1e-9);
        // A 2 TB copy at 450 MiB per lab second: 4660 lab seconds.
        let two_tb = real(2_097_152.0 / 450.0);
        assert!(two_tb > 5.0 && two_tb < 5.5, "{two_tb}");
        let mut last = 0.0;
        for lab in (0..20_000).step_by(7) {
            let r = real(lab as f64);
            assert!(r >= last, "not monotonic at {lab}");
            last = r;
        }
        let fast = ForkliftOptions::new(4.0, FaultSpec::default(), "x");
        assert!((fast.real(Duration::from_secs(60)).as_secs_f64() - 0.25).abs() < 1e-9);
    }
}
