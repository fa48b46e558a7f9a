//! The lab's CDI (containerized-data-importer) and storage provisioner, a controller of its own over the
//! store: DataVolumes get their PVC and walk CDI's phases for import, clone and upload sources
//! (`datavolume.rs`), DataSources resolve to their source PVC (`datasource.rs`), and claims of an existing
//! storage class are provisioned: Bound, with a PersistentVolume (`volumes.rs`).
//!
//! Coexistence with the simulated Forklift: DataVolumes labelled `migration` are Forklift's, whose
//! simulation already plays the importer for them (their PVC, progress, phases and `importer-<pvc>` pod
//! follow the migration clock, see `forklift::importer`). CDI leaves them alone apart from binding a PersistentVolume to their PVC once it is Bound.
//!
//! Time: transfers copy at 450 MiB per lab second, one lab minute being one real second divided by the
//! lab speed, as in the Forklift simulation; every transfer shows its in-progress phase for at least a
//! quarter of a real second.

mod datasource;
mod datavolume;
mod volumes;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::controller_task::{
    Reconciler, feed, feed_queued, requeue_after, requeue_due, time_until,
};
use crate::registry::{self, ResourceType};
use crate::store::{EventType, ListOptions, Store, StoreEvent};

/// The label Forklift puts on what it creates for a migration; such DataVolumes are Forklift's.
pub const FORKLIFT_MIGRATION_LABEL: &str = "migration";

/// The kinds CDI reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    DataVolume,
    Claim,
    DataSource,
}

impl Kind {
    fn resource(self) -> &'static ResourceType {
        match self {
            Kind::DataVolume => &registry::DATA_VOLUME,
            Kind::Claim => &registry::PERSISTENT_VOLUME_CLAIM,
            Kind::DataSource => &registry::DATA_SOURCE,
        }
    }
}

type Key = (Kind, String, String);

/// A running CDI controller.
pub type CdiHandle = crate::controller_task::ControllerHandle;

/// Starts CDI over `store`; simulated durations are divided by `speed`.
pub fn spawn_cdi(store: Store, speed: f64) -> CdiHandle {
    let (shutdown, mut stop) = tokio::sync::watch::channel(false);
    let mut events = store.subscribe();
    let mut cdi = Cdi::new(store, speed);
    let task = tokio::spawn(async move {
        cdi.mark_all();
        loop {
            cdi.process();
            let wait = time_until(cdi.requeue.values().min().copied());
            tokio::select! {
                _ = stop.changed() => break,
                event = events.recv() => if !feed(&mut cdi, event) {
                    break;
                },
                _ = tokio::time::sleep(wait) => {},
            }
            feed_queued(&mut cdi, &mut events);
            if *stop.borrow() {
                break;
            }
        }
    });
    CdiHandle::new(shutdown, task)
}

/// CDI's state beside the store: what is queued, and when each transfer started.
pub(crate) struct Cdi {
    store: Store,
    speed: f64,
    dirty: BTreeSet<Key>,
    requeue: HashMap<Key, Instant>,
    /// DataVolume uid -> when its transfer (import, clone) started.
    transfers: HashMap<String, Instant>,
    /// CDI's DataVolumes that have not succeeded: what a claim's change may move on.
    unfinished: BTreeSet<Key>,
}

impl Cdi {
    fn new(store: Store, speed: f64) -> Self {
        Cdi {
            store,
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
            dirty: BTreeSet::new(),
            requeue: HashMap::new(),
            transfers: HashMap::new(),
            unfinished: BTreeSet::new(),
        }
    }

    /// The real duration of a lab duration (one lab minute is one real second, divided by the speed).
    fn real(&self, lab: Duration) -> Duration {
        lab.div_f64(60.0 * self.speed)
    }

    fn mark_kind(&mut self, kind: Kind, namespace: Option<&str>) {
        if let Ok(list) = self
            .store
            .list(kind.resource(), namespace, &ListOptions::default())
        {
            for item in list.items {
                let ns = meta(&item, "namespace").to_string();
                self.dirty
                    .insert((kind, ns, meta(&item, "name").to_string()));
            }
        }
    }

    /// Every DataSource, when there are any (usually none: no listing then).
    fn mark_data_sources(&mut self) {
        if self.store.count(&registry::DATA_SOURCE) > 0 {
            self.mark_kind(Kind::DataSource, None);
        }
    }

    fn process(&mut self) {
        let now = Instant::now();
        requeue_due(&mut self.requeue, &mut self.dirty, now);
        for _ in 0..4 {
            if self.dirty.is_empty() {
                break;
            }
            for key in std::mem::take(&mut self.dirty) {
                let (kind, ns, name) = &key;
                let Ok(obj) = self.store.get(kind.resource(), Some(ns), name) else {
                    continue;
                };
                let after = match kind {
                    Kind::DataVolume => {
                        let after = self.reconcile_data_volume(&obj);
                        self.track_unfinished(&key, &obj);
                        after
                    }
                    Kind::Claim => {
                        self.reconcile_claim(&obj);
                        None
                    }
                    Kind::DataSource => {
                        self.reconcile_data_source(&obj);
                        None
                    }
                };
                requeue_after(&mut self.requeue, key, after);
            }
        }
    }

    /// Remembers CDI's DataVolumes that have not succeeded yet (Forklift's never count).
    fn track_unfinished(&mut self, key: &Key, dv: &Value) {
        let current = self.store.get(&registry::DATA_VOLUME, Some(&key.1), &key.2);
        let done = current
            .as_ref()
            .map_or(true, |d| text_at(d, "/status/phase") == "Succeeded")
            || dv
                .pointer(&format!("/metadata/labels/{FORKLIFT_MIGRATION_LABEL}"))
                .is_some();
        if done {
            self.unfinished.remove(key);
        } else {
            self.unfinished.insert(key.clone());
        }
    }

    /// Writes `status` when it changed.
    fn write_status(&self, rt: &'static ResourceType, obj: &Value, status: Value) {
        if obj.get("status") == Some(&status) {
            return;
        }
        let ns = meta(obj, "namespace");
        if let Err(e) = self.store.update_status(
            rt,
            Some(ns).filter(|n| !n.is_empty()),
            meta(obj, "name"),
            status,
        ) {
            tracing::warn!(kind = rt.kind, %ns, name = meta(obj, "name"), error = %e, "cdi: status write failed");
        }
    }
}

impl Reconciler for Cdi {
    fn mark_all(&mut self) {
        for kind in [Kind::DataVolume, Kind::Claim, Kind::DataSource] {
            self.mark_kind(kind, None);
        }
    }

    fn on_event(&mut self, event: &StoreEvent) {
        let rt = event.resource;
        let ns = event.namespace().unwrap_or_default().to_string();
        let name = event.name().to_string();
        let deleted = event.event_type == EventType::Deleted;
        if std::ptr::eq(rt, &registry::DATA_VOLUME) {
            let key = (Kind::DataVolume, ns.clone(), name);
            if deleted {
                self.transfers.remove(meta(&event.object, "uid"));
                self.unfinished.remove(&key);
            } else {
                self.dirty.insert(key);
            }
            // DataSources follow the DataVolume that fills their PVC.
            self.mark_data_sources();
        } else if std::ptr::eq(rt, &registry::PERSISTENT_VOLUME_CLAIM) {
            if deleted {
                self.release_volume(&event.object);
            } else {
                self.dirty.insert((Kind::Claim, ns.clone(), name.clone()));
            }
            // The claim's DataVolume, clones waiting for it as their source, DataSources naming it.
            self.dirty.insert((Kind::DataVolume, ns.clone(), name));
            self.dirty.extend(self.unfinished.iter().cloned());
            self.mark_data_sources();
        } else if std::ptr::eq(rt, &registry::DATA_SOURCE) {
            if !deleted {
                self.dirty.insert((Kind::DataSource, ns.clone(), name));
            }
            self.mark_kind(Kind::DataVolume, Some(&ns));
        } else if std::ptr::eq(rt, &registry::STORAGE_CLASS) {
            self.mark_kind(Kind::Claim, None);
            self.mark_kind(Kind::DataVolume, None);
        }
    }
}

// The JSON readers the Forklift controllers use serve CDI's as well.
use crate::forklift::{meta, text_at};
