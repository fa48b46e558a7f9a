//! DataSources: `spec.source.pvc` names the PVC a `sourceRef` clones from; `Ready` is True once that
//! claim exists, is Bound and (when a DataVolume fills it) its DataVolume succeeded, else False with
//! CDI's reason (`NotFound`, or the filling DataVolume's phase). `status.source` mirrors the spec.

use serde_json::{Value, json};

use super::{Cdi, meta, text_at};
use crate::clock;
use crate::registry;

impl Cdi {
    pub(super) fn reconcile_data_source(&mut self, ds: &Value) {
        let ns = meta(ds, "namespace");
        let pvc_ref = ds.pointer("/spec/source/pvc");
        let (pvc_ns, pvc_name) = match pvc_ref {
            Some(p) => (
                Some(text_at(p, "/namespace"))
                    .filter(|n| !n.is_empty())
                    .unwrap_or(ns)
                    .to_string(),
                text_at(p, "/name").to_string(),
            ),
            None => (ns.to_string(), String::new()),
        };
        let pvc = self
            .store
            .get(&registry::PERSISTENT_VOLUME_CLAIM, Some(&pvc_ns), &pvc_name)
            .ok();
        let dv = self
            .store
            .get(&registry::DATA_VOLUME, Some(&pvc_ns), &pvc_name)
            .ok();
        let (ready, reason, message) = match (&pvc, &dv) {
            (None, None) => ("False", "NotFound".to_string(), "No source PVC found"),
            (_, Some(dv)) if text_at(dv, "/status/phase") != "Succeeded" => {
                let phase = text_at(dv, "/status/phase");
                let phase = if phase.is_empty() { "Pending" } else { phase };
                ("False", phase.to_string(), "")
            }
            (Some(p), _) if text_at(p, "/status/phase") != "Bound" => {
                ("False", "NotFound".to_string(), "No source PVC found")
            }
            _ => ("True", "Ready".to_string(), ""),
        };
        let old = ds.get("status");
        let unchanged = old
            .and_then(|o| o.get("conditions"))
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .is_some_and(|c| c["status"] == ready && c["reason"] == reason.as_str());
        if unchanged && old.and_then(|o| o.get("source")) == ds.pointer("/spec/source") {
            return;
        }
        let now = clock::now_rfc3339();
        let status = json!({
            "source": ds.pointer("/spec/source").cloned().unwrap_or(json!({})),
            "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message,
                            "lastHeartbeatTime": now, "lastTransitionTime": now}],
        });
        self.write_status(&registry::DATA_SOURCE, ds, status);
    }
}
