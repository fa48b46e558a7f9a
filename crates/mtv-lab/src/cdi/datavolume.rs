//! DataVolumes: CDI's phases for import (`http`, `registry`, `s3`, `gcs`, `imageio`, `vddk`, `blank`),
//! clone (`pvc`, and `sourceRef` to a DataSource) and `upload` sources. The DataVolume's PVC (same name,
//! owned by it, annotated `cdi.kubevirt.io/createdForDataVolume`) is made first; once the provisioner has
//! bound it the transfer runs: `ImportScheduled` -> `ImportInProgress` (progress `NN.NN%`) -> `Succeeded`
//! (`100.0%`), `CloneScheduled` -> `CloneInProgress` -> `Succeeded`, `UploadScheduled` -> `UploadReady`
//! (nothing uploads in the lab). What cannot succeed reports as CDI does: a clone whose source is missing
//! stays `Pending` with `CloneWithoutSource`, a claim of a missing storage class stays `Pending`, and an
//! import from a host that does not resolve (`*.invalid`, RFC 2606) keeps failing: `ImportInProgress`,
//! `Running=False/Error` and a growing `restartCount`, as CDI's importer pod in CrashLoopBackOff.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::volumes::{BIND_IMMEDIATE, storage_class};
use super::{Cdi, FORKLIFT_MIGRATION_LABEL, meta, text_at};
use crate::clock;
use crate::registry;

/// Copy rate of simulated transfers, MiB per lab second (as the Forklift simulation's).
const MIB_PER_LAB_SECOND: f64 = 450.0;

/// How a DataVolume fills its PVC.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Source {
    Import {
        url: String,
    },
    Blank,
    Clone {
        namespace: String,
        name: String,
    },
    Upload,
    /// A `sourceRef` whose DataSource does not exist (or names no PVC).
    DataSourceMissing {
        name: String,
    },
    Unknown,
}

/// The source of a DataVolume, resolving `sourceRef` through its DataSource.
fn source_of(cdi: &Cdi, dv: &Value) -> Source {
    let ns = meta(dv, "namespace");
    if let Some(reference) = dv.pointer("/spec/sourceRef") {
        let ds_ns = Some(text_at(reference, "/namespace"))
            .filter(|n| !n.is_empty())
            .unwrap_or(ns);
        let name = text_at(reference, "/name").to_string();
        let ds = cdi
            .store
            .get(&registry::DATA_SOURCE, Some(ds_ns), &name)
            .ok();
        return match ds.as_ref().and_then(|d| d.pointer("/spec/source/pvc")) {
            Some(pvc) => Source::Clone {
                namespace: Some(text_at(pvc, "/namespace"))
                    .filter(|n| !n.is_empty())
                    .unwrap_or(ds_ns)
                    .to_string(),
                name: text_at(pvc, "/name").to_string(),
            },
            None => Source::DataSourceMissing { name },
        };
    }
    let Some(source) = dv.pointer("/spec/source").and_then(Value::as_object) else {
        return Source::Unknown;
    };
    let (kind, spec) = match source.iter().next() {
        Some((k, v)) => (k.as_str(), v),
        None => return Source::Unknown,
    };
    match kind {
        "http" | "registry" | "s3" | "gcs" | "imageio" | "vddk" => Source::Import {
            url: text_at(spec, "/url").to_string(),
        },
        "blank" => Source::Blank,
        "upload" => Source::Upload,
        "pvc" => Source::Clone {
            namespace: Some(text_at(spec, "/namespace"))
                .filter(|n| !n.is_empty())
                .unwrap_or(ns)
                .to_string(),
            name: text_at(spec, "/name").to_string(),
        },
        _ => Source::Unknown,
    }
}

/// The host of a URL (`docker://`, `http://`, ...), "" when it has none.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    host.split(':').next().unwrap_or_default()
}

/// True when the import can never reach its source: a host under the reserved `.invalid` domain.
pub(super) fn unreachable(url: &str) -> bool {
    let host = host_of(url);
    host == "invalid" || host.ends_with(".invalid")
}

/// `status.conditions` as CDI writes them: Bound, Ready, Running.
fn conditions(
    bound: (&str, &str, &str),
    ready: (&str, &str),
    running: (&str, &str, &str),
) -> Value {
    let now = clock::now_rfc3339();
    json!([
        {"type": "Bound", "status": bound.0, "reason": bound.1, "message": bound.2, "lastHeartbeatTime": now, "lastTransitionTime": now},
        {"type": "Ready", "status": ready.0, "reason": ready.1, "lastHeartbeatTime": now, "lastTransitionTime": now},
        {"type": "Running", "status": running.0, "reason": running.1, "message": running.2, "lastHeartbeatTime": now, "lastTransitionTime": now},
    ])
}

/// A status with conditions whose timestamps are kept when nothing else changed (no write then).
fn settle(old: Option<&Value>, mut new: Value) -> Value {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(cs) = v.get_mut("conditions").and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                c.remove("lastHeartbeatTime");
                c.remove("lastTransitionTime");
            }
        }
        v
    };
    if let Some(old) = old
        && strip(old) == strip(&new)
    {
        new = old.clone();
    }
    new
}

impl Cdi {
    /// Reconciles one DataVolume; the delay until it wants another look.
    pub(super) fn reconcile_data_volume(&mut self, dv: &Value) -> Option<Duration> {
        if dv.pointer("/metadata/deletionTimestamp").is_some()
            || dv
                .pointer(&format!("/metadata/labels/{FORKLIFT_MIGRATION_LABEL}"))
                .is_some()
        {
            return None;
        }
        if text_at(dv, "/status/phase") == "Succeeded" {
            return None;
        }
        let source = source_of(self, dv);
        let claim_name = meta(dv, "name").to_string();
        if let Source::DataSourceMissing { name } = &source {
            self.report_without_source(dv, "DataSource", name);
            return None;
        }
        let mut clone_size = None;
        if let Source::Clone { namespace, name } = &source {
            match self
                .store
                .get(&registry::PERSISTENT_VOLUME_CLAIM, Some(namespace), name)
            {
                Ok(src) => {
                    clone_size = Some(text_at(&src, "/spec/resources/requests/storage").to_string())
                }
                Err(_) => {
                    self.report_without_source(dv, "pvc", name);
                    return None;
                }
            }
        }
        let pvc = match self.ensure_claim(dv, clone_size.as_deref()) {
            Ok(pvc) => pvc,
            Err(message) => {
                self.report_pending(dv, &claim_name, &message);
                return None;
            }
        };
        if text_at(&pvc, "/status/phase") != "Bound" {
            let sc = text_at(&pvc, "/spec/storageClassName").to_string();
            let message = match storage_class(&self.store, &sc) {
                Err(missing) => format!(
                    "PVC {claim_name} Pending: storageclass.storage.k8s.io \"{missing}\" not found"
                ),
                _ => format!("PVC {claim_name} Pending"),
            };
            self.report_pending(dv, &claim_name, &message);
            return None;
        }
        self.transfer(dv, &pvc, &source)
    }

    /// Creates the DataVolume's PVC when missing; the PVC.
    fn ensure_claim(&mut self, dv: &Value, clone_size: Option<&str>) -> Result<Value, String> {
        let ns = meta(dv, "namespace");
        let name = meta(dv, "name");
        if let Ok(pvc) = self
            .store
            .get(&registry::PERSISTENT_VOLUME_CLAIM, Some(ns), name)
        {
            return Ok(pvc);
        }
        let spec = dv
            .pointer("/spec/storage")
            .or_else(|| dv.pointer("/spec/pvc"))
            .cloned()
            .unwrap_or_else(|| json!({}));
        let size = Some(text_at(&spec, "/resources/requests/storage"))
            .filter(|q| !q.is_empty())
            .or(clone_size)
            .ok_or("the DataVolume names no size (spec.storage.resources.requests.storage)")?
            .to_string();
        let named = text_at(&spec, "/storageClassName").to_string();
        let class = match storage_class(&self.store, &named) {
            Ok(Some(c)) => meta(&c, "name").to_string(),
            // Named but missing: the claim names it anyway and stays Pending.
            Err(missing) => missing,
            Ok(None) => String::new(),
        };
        let mut pvc_spec = json!({
            "accessModes": spec.get("accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
            "volumeMode": spec.get("volumeMode").cloned().unwrap_or(json!("Filesystem")),
            "resources": {"requests": {"storage": size}},
        });
        if !class.is_empty() {
            pvc_spec["storageClassName"] = json!(class);
        }
        let mut annotations = json!({
            "cdi.kubevirt.io/createdForDataVolume": meta(dv, "uid"),
            "cdi.kubevirt.io/storage.contentType": dv.pointer("/spec/contentType").cloned().unwrap_or(json!("kubevirt")),
        });
        if text_at(
            dv,
            &format!(
                "/metadata/annotations/{}",
                BIND_IMMEDIATE.replace('/', "~1")
            ),
        ) == "true"
        {
            annotations[BIND_IMMEDIATE] = json!("true");
        }
        let pvc = json!({
            "metadata": {"name": name, "labels": {"app": "containerized-data-importer", "app.kubernetes.io/component": "storage", "app.kubernetes.io/managed-by": "cdi-controller"},
                         "annotations": annotations,
                         "ownerReferences": [{"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "name": name,
                                              "uid": meta(dv, "uid"), "controller": true, "blockOwnerDeletion": true}]},
            "spec": pvc_spec,
        });
        let created = self
            .store
            .create(&registry::PERSISTENT_VOLUME_CLAIM, Some(ns), pvc)
            .map_err(|e| e.message)?;
        if !class.is_empty() && storage_class(&self.store, &class).is_err() {
            let _ = self.store.record_event(
                &created,
                "Warning",
                "ProvisioningFailed",
                &format!("storageclass.storage.k8s.io \"{class}\" not found"),
                "persistentvolume-controller",
            );
        }
        Ok(created)
    }

    /// `Pending`, waiting for the claim to bind.
    fn report_pending(&mut self, dv: &Value, claim: &str, message: &str) {
        let status = json!({"phase": "Pending", "progress": "N/A", "claimName": claim,
                            "conditions": conditions(("False", "Pending", message), ("False", ""), ("False", "", ""))});
        self.write_phase(dv, settle(dv.get("status"), status));
    }

    /// A clone whose source does not exist: `Pending`, `CloneWithoutSource`.
    fn report_without_source(&mut self, dv: &Value, kind: &str, name: &str) {
        let message = format!("The source {kind} {name} doesn't exist");
        let status = json!({"phase": "Pending", "progress": "N/A",
                            "conditions": conditions(("Unknown", "CloneWithoutSource", &message), ("False", "CloneWithoutSource"), ("False", "", ""))});
        self.write_phase(dv, settle(dv.get("status"), status));
    }

    /// Runs the transfer of a DataVolume whose claim is Bound.
    fn transfer(&mut self, dv: &Value, pvc: &Value, source: &Source) -> Option<Duration> {
        let uid = meta(dv, "uid").to_string();
        let claim = meta(pvc, "name").to_string();
        let bound = ("True", "Bound", format!("PVC {claim} Bound"));
        let restarts = dv
            .pointer("/status/restartCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let (scheduled, in_progress) = match source {
            Source::Clone { namespace, name } => {
                if !self.clone_source_ready(namespace, name) {
                    let status = json!({"phase": "CloneScheduled", "progress": "N/A", "claimName": claim,
                        "conditions": conditions((bound.0, bound.1, &bound.2), ("False", ""), ("False", "", ""))});
                    self.write_phase(dv, settle(dv.get("status"), status));
                    return None;
                }
                ("CloneScheduled", "CloneInProgress")
            }
            Source::Upload => {
                let status = json!({"phase": "UploadReady", "progress": "N/A", "claimName": claim,
                    "conditions": conditions((bound.0, bound.1, &bound.2), ("False", ""), ("True", "Pod is running", ""))});
                self.write_phase(dv, settle(dv.get("status"), status));
                return None;
            }
            Source::Import { url } if unreachable(url) => {
                let host = host_of(url);
                let message = format!(
                    "Unable to connect to http data source: expected status code 200, got 0. Status: Get \"{url}\": dial tcp: lookup {host}: no such host"
                );
                let status = json!({"phase": "ImportInProgress", "progress": "N/A", "claimName": claim, "restartCount": restarts + 1,
                    "conditions": conditions((bound.0, bound.1, &bound.2), ("False", ""), ("False", "Error", &message))});
                self.write_phase(dv, status);
                // The importer pod restarts with a back-off.
                return Some(
                    self.real(Duration::from_secs(300))
                        .max(Duration::from_secs(1)),
                );
            }
            Source::Unknown => {
                self.report_pending(
                    dv,
                    &claim,
                    "the DataVolume has no source the lab's CDI knows",
                );
                return None;
            }
            _ => ("ImportScheduled", "ImportInProgress"),
        };
        let Some(started) = self.transfers.get(&uid).copied() else {
            self.transfers.insert(uid, Instant::now());
            let status = json!({"phase": scheduled, "progress": "N/A", "claimName": claim,
                "conditions": conditions((bound.0, bound.1, &bound.2), ("False", ""), ("False", "", ""))});
            self.write_phase(dv, settle(dv.get("status"), status));
            return Some(Duration::from_millis(50));
        };
        let size_mib =
            mtv_api::quantity::mib_rounded_up(text_at(pvc, "/spec/resources/requests/storage"))
                .unwrap_or(1024) as f64;
        let total = match source {
            Source::Blank => Duration::from_millis(250),
            _ => self
                .real(Duration::from_secs_f64(size_mib / MIB_PER_LAB_SECOND))
                .max(Duration::from_millis(250)),
        };
        let elapsed = started.elapsed();
        if elapsed >= total {
            self.transfers.remove(&uid);
            let status = json!({"phase": "Succeeded", "progress": "100.0%", "claimName": claim,
                "conditions": conditions((bound.0, bound.1, &bound.2), ("True", ""), ("False", "Completed", ""))});
            self.write_phase(dv, status);
            return None;
        }
        let fraction = elapsed.as_secs_f64() / total.as_secs_f64();
        let status = json!({"phase": in_progress, "progress": format!("{:.2}%", fraction * 100.0), "claimName": claim,
            "conditions": conditions((bound.0, bound.1, &bound.2), ("False", ""), ("True", "Pod is running", ""))});
        self.write_phase(dv, status);
        Some((total / 5).clamp(Duration::from_millis(50), Duration::from_secs(2)))
    }

    /// A clone's source is ready: its claim is Bound and, when a DataVolume fills it, that succeeded.
    fn clone_source_ready(&self, namespace: &str, name: &str) -> bool {
        let Ok(src) = self
            .store
            .get(&registry::PERSISTENT_VOLUME_CLAIM, Some(namespace), name)
        else {
            return false;
        };
        if text_at(&src, "/status/phase") != "Bound" {
            return false;
        }
        match self
            .store
            .get(&registry::DATA_VOLUME, Some(namespace), name)
        {
            Ok(dv) => text_at(&dv, "/status/phase") == "Succeeded",
            Err(_) => true,
        }
    }

    /// Writes a status, with an Event when the phase changes (as CDI records them).
    fn write_phase(&mut self, dv: &Value, status: Value) {
        let old_phase = text_at(dv, "/status/phase").to_string();
        let phase = text_at(&status, "/phase").to_string();
        self.write_status(&registry::DATA_VOLUME, dv, status);
        if old_phase != phase {
            let (kind, reason, message) = match phase.as_str() {
                "Succeeded" => ("Normal", "Completed", "Successfully completed".to_string()),
                "Pending" => ("Normal", "Pending", "PVC Pending".to_string()),
                p => (
                    "Normal",
                    p,
                    format!("{p} for DataVolume {}", meta(dv, "name")),
                ),
            };
            let _ = self
                .store
                .record_event(dv, kind, reason, &message, "datavolume-controller");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reserved_invalid_hosts_are_unreachable() {
        assert!(unreachable("http://images.invalid/disk.qcow2"));
        assert!(unreachable("docker://user@registry.invalid:5000/img"));
        assert!(!unreachable("https://cloud.example.com/fedora.qcow2"));
        assert_eq!(
            host_of("docker://quay.io/containerdisks/fedora:41"),
            "quay.io"
        );
    }

    #[test]
    fn unchanged_conditions_keep_their_timestamps() {
        let old = json!({"phase": "Pending", "conditions": [{"type": "Bound", "status": "False", "lastTransitionTime": "t0"}]});
        let new = json!({"phase": "Pending", "conditions": [{"type": "Bound", "status": "False", "lastTransitionTime": "t1"}]});
        assert_eq!(settle(Some(&old), new), old);
    }
}
