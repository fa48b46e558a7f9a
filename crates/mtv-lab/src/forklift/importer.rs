//! CDI's importer pods for the DataVolumes of a cold vSphere (VDDK) or oVirt (imageio) migration: the
//! simulated Forklift plays the copy on the migration clock, and this file leaves what CDI's import
//! controller would leave meanwhile (containerized-data-importer, pkg/controller/import-controller.go):
//! a pod `importer-<pvc>` owned by the PVC, Running while the disk copies and Succeeded at the end, then
//! deleted unless the PVC asks to retain it; and the PVC's `storage.import.importPodName` and
//! `storage.pod.phase` annotations following it.

use serde_json::{Value, json};

use super::exec::{Itinerary, MigratingVm};
use super::{Controller, meta, text_at};
use crate::clock;
use crate::registry;
use crate::store::DeleteOptions;

/// The PVC annotation naming its importer pod (CDI's `AnnImportPod`).
pub(crate) const ANN_IMPORT_POD: &str = "cdi.kubevirt.io/storage.import.importPodName";
/// The PVC annotation mirroring the importer pod's phase (CDI's `AnnPodPhase`).
pub(crate) const ANN_POD_PHASE: &str = "cdi.kubevirt.io/storage.pod.phase";
/// The PVC annotation that keeps a finished importer pod (CDI's `AnnPodRetainAfterCompletion`).
pub(crate) const ANN_RETAIN: &str = "cdi.kubevirt.io/storage.pod.retainAfterCompletion";
/// The longest object name Kubernetes accepts (DNS-1123 subdomain), the limit CDI names pods within.
const MAX_NAME: usize = 253;

/// CDI's `createImportPodNameFromPvc` (import-controller.go): `naming.GetResourceName("importer",
/// pvc.Name)`, i.e. `importer-<pvc>`; a name over the limit is shortened with a hash suffix as
/// library-go's `naming.GetName` does (the lab's hash differs from library-go's; names that long do not
/// occur in Forklift's PVC templates).
pub(crate) fn importer_pod_name(pvc: &str) -> String {
    let name = format!("importer-{pvc}");
    if name.len() <= MAX_NAME {
        return name;
    }
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ b as u32).wrapping_mul(0x0100_0193)
    });
    let hash = format!("{hash:08x}");
    format!("{}-{hash}", &name[..MAX_NAME - hash.len() - 1])
}

/// Whether CDI imports this DataVolume through an importer pod the lab shows: a cold migration's
/// VDDK or imageio source copied by CDI (warm ones import per checkpoint, virt-v2v writes its disks
/// itself, and a PVC source is a clone, not an import).
fn imports_through_pod(dv: &Value, it: &Itinerary) -> bool {
    let source = dv.pointer("/spec/source");
    it.cdi
        && !it.warm
        && !it.offload
        && (source.and_then(|x| x.get("vddk")).is_some()
            || source.and_then(|x| x.get("imageio")).is_some())
}

impl Controller {
    /// Mirrors copy progress onto the transfer objects, then onto the importer pods of the VM's
    /// DataVolumes.
    pub(super) fn mirror_transfer(
        &mut self,
        migrating: &MigratingVm<'_>,
        fraction: f64,
        done: bool,
    ) {
        self.update_transfer_objects(migrating, fraction, done);
        self.sync_importer_pods(migrating, done);
    }

    /// One importer pod per imported DataVolume's PVC: created Running when the copy starts,
    /// Succeeded when it ends, then deleted unless the PVC retains it; the PVC's annotations follow.
    fn sync_importer_pods(&mut self, migrating: &MigratingVm<'_>, done: bool) {
        let ns = migrating.ctx.target_ns().to_string();
        let dvs = self.list_labelled(&registry::DATA_VOLUME, &ns, &migrating.selector());
        for dv in dvs
            .iter()
            .filter(|dv| imports_through_pod(dv, migrating.itinerary))
        {
            let Ok(pvc) = self.store.get(
                &registry::PERSISTENT_VOLUME_CLAIM,
                Some(&ns),
                meta(dv, "name"),
            ) else {
                continue;
            };
            self.sync_importer_pod(&pvc, dv, done);
        }
    }

    /// import-controller.go reconcilePvc/createImporterPod/updatePvcFromPod for one claim. A claim
    /// whose import already succeeded is never processed again, even with its pod gone (CDI checks
    /// `storage.pod.phase` the same way).
    fn sync_importer_pod(&mut self, pvc: &Value, dv: &Value, done: bool) {
        let ns = meta(pvc, "namespace").to_string();
        let recorded = text_at(pvc, &annotation_pointer(ANN_POD_PHASE)).to_string();
        if recorded == "Succeeded" {
            return;
        }
        let name = importer_pod_name(meta(pvc, "name"));
        if self.store.get(&registry::POD, Some(&ns), &name).is_err() {
            let _ = self
                .store
                .create(&registry::POD, Some(&ns), importer_pod(pvc, dv, &name));
        }
        let phase = if done { "Succeeded" } else { "Running" };
        let mut status = json!({"phase": phase, "startTime": clock::now_rfc3339(),
                                "containerStatuses": [{"name": "importer", "ready": !done, "restartCount": 0,
                                                       "image": IMPORTER_IMAGE, "imageID": IMPORTER_IMAGE,
                                                       "state": container_state(done)}]});
        if let Ok(pod) = self.store.get(&registry::POD, Some(&ns), &name)
            && let Some(started) = pod.pointer("/status/startTime")
        {
            status["startTime"] = started.clone();
        }
        if recorded != phase {
            let _ = self
                .store
                .update_status(&registry::POD, Some(&ns), &name, status);
            self.annotate_claim(pvc, &name, phase);
        }
        let retain = text_at(pvc, &annotation_pointer(ANN_RETAIN)) == "true";
        if done && !retain {
            // CDI deletes the pod right after it recorded the Succeeded phase on the claim.
            let _ = self
                .store
                .delete(&registry::POD, Some(&ns), &name, &DeleteOptions::default());
        }
    }

    /// import-controller.go updatePvcFromPod: the claim names its importer pod and carries its phase.
    fn annotate_claim(&self, pvc: &Value, pod: &str, phase: &str) {
        self.amend(
            &registry::PERSISTENT_VOLUME_CLAIM,
            Some(meta(pvc, "namespace")),
            meta(pvc, "name"),
            |claim| {
                let annotations = &mut claim["metadata"]["annotations"];
                if !annotations.is_object() {
                    *annotations = json!({});
                }
                annotations[ANN_IMPORT_POD] = json!(pod);
                annotations[ANN_POD_PHASE] = json!(phase);
                annotations["cdi.kubevirt.io/storage.pod.restarts"] = json!("0");
            },
        );
    }
}

/// The image CDI's importer runs (the lab never pulls it).
const IMPORTER_IMAGE: &str = "quay.io/kubevirt/cdi-importer:latest";

fn annotation_pointer(key: &str) -> String {
    format!("/metadata/annotations/{}", key.replace('/', "~1"))
}

fn container_state(done: bool) -> Value {
    if done {
        json!({"terminated": {"exitCode": 0, "reason": "Completed", "message": "Import Complete",
                              "finishedAt": clock::now_rfc3339()}})
    } else {
        json!({"running": {"startedAt": clock::now_rfc3339()}})
    }
}

/// import-controller.go makeImporterPodSpec and createImporterPod: CDI's labels (`app`,
/// `cdi.kubevirt.io: importer`, the Prometheus label, util.SetRecommendedLabels' component and
/// manager) merged with the claim's own, the `createdByController` annotation, the claim as the
/// controlling owner, and the claim mounted as the data volume.
fn importer_pod(pvc: &Value, dv: &Value, name: &str) -> Value {
    let mut labels = pvc
        .pointer("/metadata/labels")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    for (key, value) in [
        ("app", "containerized-data-importer"),
        ("cdi.kubevirt.io", "importer"),
        ("prometheus.cdi.kubevirt.io", "true"),
        ("app.kubernetes.io/component", "storage"),
        ("app.kubernetes.io/managed-by", "cdi-controller"),
    ] {
        labels[key] = json!(value);
    }
    let source = if dv.pointer("/spec/source/vddk").is_some() {
        "vddk"
    } else {
        "imageio"
    };
    let block = text_at(pvc, "/spec/volumeMode") == "Block";
    let mut container = json!({"name": "importer", "image": IMPORTER_IMAGE, "imagePullPolicy": "IfNotPresent",
                               "args": ["-v=1"],
                               "env": [{"name": "IMPORTER_SOURCE", "value": source},
                                       {"name": "IMPORTER_CONTENTTYPE", "value": "kubevirt"}]});
    if block {
        container["volumeDevices"] =
            json!([{"name": "cdi-data-vol", "devicePath": "/dev/cdi-block-volume"}]);
    } else {
        container["volumeMounts"] = json!([{"name": "cdi-data-vol", "mountPath": "/data"}]);
    }
    json!({
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {"cdi.kubevirt.io/storage.createdByController": "yes"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                 "name": meta(pvc, "name"), "uid": meta(pvc, "uid"),
                                 "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "restartPolicy": "OnFailure",
            "nodeName": "worker-0",
            "containers": [container],
            "volumes": [{"name": "cdi-data-vol",
                         "persistentVolumeClaim": {"claimName": meta(pvc, "name"), "readOnly": false}}],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::importer_pod_name;

    #[test]
    fn importer_names_follow_cdi() {
        assert_eq!(
            importer_pod_name("plan-vm-1-abcde"),
            "importer-plan-vm-1-abcde"
        );
        let long = "x".repeat(260);
        let name = importer_pod_name(&long);
        assert_eq!(name.len(), 253);
        assert!(name.starts_with("importer-xxx"));
        assert_eq!(name, importer_pod_name(&long));
    }
}
