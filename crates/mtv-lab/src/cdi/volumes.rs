//! The storage provisioner: a Pending claim of an existing storage class with `Immediate` binding (or
//! CDI's `bind.immediate.requested`) is provisioned, that is a PersistentVolume `pvc-<claim uid>` is made
//! and both are Bound to each other; a claim Bound by someone else (the Forklift simulation) gets its
//! PersistentVolume too. Deleting a claim deletes its volume (reclaim policy `Delete`). Claims filled by a
//! volume populator (`spec.dataSourceRef`) and Forklift's are left to their simulations.

use serde_json::{Value, json};

use super::{Cdi, FORKLIFT_MIGRATION_LABEL, meta, text_at};
use crate::registry;
use crate::store::{ListOptions, Store, WriteOptions};

/// The annotation CDI asks immediate binding with (for WaitForFirstConsumer classes).
pub(super) const BIND_IMMEDIATE: &str = "cdi.kubevirt.io/storage.bind.immediate.requested";

/// The storage class a claim gets: the one it names, else the cluster default; `Err(name)` when it names
/// one that does not exist, `Ok(None)` when it names none and there is no default.
pub(super) fn storage_class(store: &Store, named: &str) -> Result<Option<Value>, String> {
    if !named.is_empty() {
        return store
            .get(&registry::STORAGE_CLASS, None, named)
            .map(Some)
            .map_err(|_| named.to_string());
    }
    Ok(store
        .list(&registry::STORAGE_CLASS, None, &ListOptions::default())
        .ok()
        .and_then(|l| {
            l.items.into_iter().find(|sc| {
                text_at(
                    sc,
                    "/metadata/annotations/storageclass.kubernetes.io~1is-default-class",
                ) == "true"
            })
        }))
}

impl Cdi {
    /// Provisions a Pending claim, or gives a Bound one its PersistentVolume.
    pub(super) fn reconcile_claim(&mut self, pvc: &Value) {
        if pvc.pointer("/metadata/deletionTimestamp").is_some() {
            return;
        }
        let phase = text_at(pvc, "/status/phase");
        // A populator's claim (`spec.dataSourceRef`) is bound by the populator's own prime-claim dance:
        // left to it entirely.
        let populated = pvc.pointer("/spec/dataSourceRef").is_some();
        if phase == "Bound" {
            if !populated {
                self.ensure_volume(pvc);
            }
            return;
        }
        let forklifts = pvc
            .pointer(&format!("/metadata/labels/{FORKLIFT_MIGRATION_LABEL}"))
            .is_some();
        if phase != "Pending" || forklifts || populated {
            return;
        }
        let Ok(Some(class)) = storage_class(&self.store, text_at(pvc, "/spec/storageClassName"))
        else {
            // No such class: the claim stays Pending (the DataVolume reports it, `datavolume.rs`).
            return;
        };
        let immediate = text_at(&class, "/volumeBindingMode") != "WaitForFirstConsumer"
            || text_at(
                pvc,
                &format!(
                    "/metadata/annotations/{}",
                    BIND_IMMEDIATE.replace('/', "~1")
                ),
            ) == "true";
        if immediate {
            self.bind(pvc, &class);
        }
    }

    /// Makes the claim's PersistentVolume and binds both.
    fn bind(&mut self, pvc: &Value, class: &Value) {
        let Some(pv_name) = self.create_volume(pvc, Some(class)) else {
            return;
        };
        let (ns, name) = (meta(pvc, "namespace"), meta(pvc, "name"));
        let bound = self.store.modify(
            &registry::PERSISTENT_VOLUME_CLAIM,
            Some(ns),
            name,
            &WriteOptions::default(),
            |o| {
                o["spec"]["volumeName"] = json!(pv_name);
                if o["spec"].get("storageClassName").is_none() {
                    o["spec"]["storageClassName"] = json!(meta(class, "name"));
                }
                let annotations = &mut o["metadata"]["annotations"];
                if !annotations.is_object() {
                    *annotations = json!({});
                }
                annotations["pv.kubernetes.io/bind-completed"] = json!("yes");
                annotations["pv.kubernetes.io/bound-by-controller"] = json!("yes");
                annotations["volume.kubernetes.io/storage-provisioner"] =
                    class.get("provisioner").cloned().unwrap_or(Value::Null);
                Ok(())
            },
        );
        if let Ok(pvc) = bound {
            let status = json!({"phase": "Bound", "accessModes": pvc.pointer("/spec/accessModes").cloned().unwrap_or(json!([])),
                                "capacity": {"storage": text_at(&pvc, "/spec/resources/requests/storage")}});
            self.write_status(&registry::PERSISTENT_VOLUME_CLAIM, &pvc, status);
        }
    }

    /// A claim Bound elsewhere (Forklift's) gets a volume and `spec.volumeName`.
    fn ensure_volume(&mut self, pvc: &Value) {
        if !text_at(pvc, "/spec/volumeName").is_empty() {
            return;
        }
        let class = storage_class(&self.store, text_at(pvc, "/spec/storageClassName"))
            .ok()
            .flatten();
        let Some(pv_name) = self.create_volume(pvc, class.as_ref()) else {
            return;
        };
        let _ = self.store.modify(
            &registry::PERSISTENT_VOLUME_CLAIM,
            Some(meta(pvc, "namespace")),
            meta(pvc, "name"),
            &WriteOptions::default(),
            |o| {
                o["spec"]["volumeName"] = json!(pv_name);
                Ok(())
            },
        );
    }

    /// Creates the Bound PersistentVolume of a claim (when missing); its name.
    fn create_volume(&mut self, pvc: &Value, class: Option<&Value>) -> Option<String> {
        let name = format!("pvc-{}", meta(pvc, "uid"));
        if self
            .store
            .get(&registry::PERSISTENT_VOLUME, None, &name)
            .is_ok()
        {
            return Some(name);
        }
        let class_name = class
            .map(|c| meta(c, "name"))
            .unwrap_or(text_at(pvc, "/spec/storageClassName"));
        let driver = class
            .map(|c| text_at(c, "/provisioner"))
            .unwrap_or("lab.csi");
        let reclaim = class
            .map(|c| text_at(c, "/reclaimPolicy"))
            .filter(|r| !r.is_empty())
            .unwrap_or("Delete");
        let pv = json!({
            "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": driver},
                         "finalizers": []},
            "spec": {
                "capacity": {"storage": text_at(pvc, "/spec/resources/requests/storage")},
                "accessModes": pvc.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
                "volumeMode": pvc.pointer("/spec/volumeMode").cloned().unwrap_or(json!("Filesystem")),
                "persistentVolumeReclaimPolicy": reclaim,
                "storageClassName": class_name,
                "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": meta(pvc, "namespace"),
                             "name": meta(pvc, "name"), "uid": meta(pvc, "uid")},
                "csi": {"driver": driver, "volumeHandle": format!("0001-{}", meta(pvc, "uid")), "fsType": "ext4"},
            }
        });
        match self.store.create(&registry::PERSISTENT_VOLUME, None, pv) {
            Ok(created) => {
                let _ = self.store.update_status(
                    &registry::PERSISTENT_VOLUME,
                    None,
                    &name,
                    json!({"phase": "Bound"}),
                );
                let _ = created;
                Some(name)
            }
            Err(e) => {
                tracing::warn!(%name, error = %e, "cdi: the PersistentVolume was not created");
                None
            }
        }
    }

    /// A deleted claim's volume goes with it (`reclaimPolicy: Delete`), else it is Released.
    pub(super) fn release_volume(&mut self, pvc: &Value) {
        let name = format!("pvc-{}", meta(pvc, "uid"));
        let Ok(pv) = self.store.get(&registry::PERSISTENT_VOLUME, None, &name) else {
            return;
        };
        if text_at(&pv, "/spec/persistentVolumeReclaimPolicy") == "Delete" {
            let _ = self.store.delete(
                &registry::PERSISTENT_VOLUME,
                None,
                &name,
                &Default::default(),
            );
        } else {
            self.write_status(
                &registry::PERSISTENT_VOLUME,
                &pv,
                json!({"phase": "Released"}),
            );
        }
    }
}
