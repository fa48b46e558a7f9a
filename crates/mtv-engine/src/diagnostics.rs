//! The diagnostics bundle of a failed step: `<results>/<test id>/` with the YAML of the Plan,
//! Migration, maps, Providers, target VMs, PVCs and recent Events (sorted by time), the logs (tail)
//! of the Plan's pods (virt-v2v, importer, populator, hook: every pod Forklift labels with the Plan)
//! and of the Forklift controller, the inventory's view of each VM, and `root-cause.txt`: one line
//! naming the first failing pipeline step, its error, the VM's pod and the log line that says why,
//! as kubectl-mtv's plan description does. Secrets are never written (their kind is not collected).

use std::path::Path;

use serde_json::Value;

use crate::cluster::{Kind, kinds};
use crate::session::Session;

/// A test id as a directory name: `[`/`]` to `_`, `:` to `-`, other non-word characters to `-`.
pub fn sanitize_test_id(id: &str) -> String {
    id.chars()
        .map(|c| match c {
            '[' | ']' => '_',
            ':' => '-',
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' => c,
            _ => '-',
        })
        .collect()
}

pub fn yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
}

/// The Forklift objects of one Plan of a scenario, by name (in the session namespace).
#[derive(Debug, Clone, Default)]
pub struct PlanObjects {
    pub plan: Option<String>,
    pub migration: Option<String>,
    pub storage_map: Option<String>,
    pub network_map: Option<String>,
}

/// Writes the bundle; returns its directory, or `None` when nothing could be written.
pub async fn collect(
    session: &Session,
    results_dir: &Path,
    id: &str,
    plans: &[PlanObjects],
    target_namespace: Option<&str>,
) -> Option<String> {
    let dir = results_dir.join(sanitize_test_id(id));
    std::fs::create_dir_all(&dir).ok()?;
    let cluster = &session.cluster;
    let ns = session.namespace.as_str();
    let mut documents: Vec<(String, Value)> = Vec::new();
    let mut fetch = async |kind: &Kind, namespace: &str, name: &str, file: String| {
        if let Ok(Some(object)) = cluster.get(kind, Some(namespace), name).await {
            documents.push((file, object));
        }
    };
    for name in [&session.source_provider, &session.destination_provider] {
        fetch(&kinds::PROVIDER, ns, name, format!("provider-{name}.yaml")).await;
    }
    for objects in plans {
        let named = [
            (&kinds::PLAN, &objects.plan, "plan"),
            (&kinds::MIGRATION, &objects.migration, "migration"),
            (&kinds::STORAGE_MAP, &objects.storage_map, "storagemap"),
            (&kinds::NETWORK_MAP, &objects.network_map, "networkmap"),
        ];
        for (kind, name, prefix) in named {
            if let Some(name) = name {
                fetch(kind, ns, name, format!("{prefix}-{name}.yaml")).await;
            }
        }
    }
    if let Some(target) = target_namespace {
        for (kind, prefix) in [
            (&kinds::VIRTUAL_MACHINE, "vm"),
            (&kinds::PVC, "pvc"),
            (&kinds::DATA_VOLUME, "datavolume"),
        ] {
            if let Ok(objects) = cluster.list(kind, Some(target), None).await {
                for object in objects {
                    let name = object["metadata"]["name"]
                        .as_str()
                        .unwrap_or("unnamed")
                        .to_string();
                    documents.push((format!("{prefix}-{name}.yaml"), object));
                }
            }
        }
    }
    let plan_objects: Vec<Value> = documents
        .iter()
        .filter(|(file, _)| file.starts_with("plan-"))
        .map(|(_, plan)| plan.clone())
        .collect();
    let logs = write_pod_logs(
        session.cluster.client(),
        &dir,
        &plan_objects,
        target_namespace.unwrap_or(session.namespace.as_str()),
        &session.context.mtv_namespace,
    )
    .await;
    write_inventory_vms(session, &dir, &plan_objects).await;
    let causes: Vec<String> = plan_objects
        .iter()
        .filter_map(|plan| root_cause(plan, &logs))
        .collect();
    if !causes.is_empty() {
        let _ = std::fs::write(dir.join("root-cause.txt"), causes.join("\n") + "\n");
    }
    if let Ok(mut events) = cluster.list(&kinds::EVENT, Some(ns), None).await {
        // The most recent 50, oldest first.
        events.sort_by_key(|event| event_time(event).to_string());
        let keep = events.len().saturating_sub(50);
        events.drain(..keep);
        documents.push(("events.yaml".into(), Value::Array(events)));
    }
    for (file, object) in &documents {
        let _ = std::fs::write(dir.join(file), yaml(object));
    }
    Some(dir.display().to_string())
}

/// When an Event last happened: `lastTimestamp`, else `eventTime`, else its creation (RFC 3339
/// strings of one form sort by time).
pub fn event_time(event: &Value) -> &str {
    ["lastTimestamp", "eventTime", "firstTimestamp"]
        .iter()
        .find_map(|field| event[*field].as_str())
        .or_else(|| event["metadata"]["creationTimestamp"].as_str())
        .unwrap_or_default()
}

/// Lines kept of each pod's log.
const LOG_TAIL_LINES: i64 = 200;

/// The tail of one pod's log, with what says whose it is.
#[derive(Debug, Clone)]
pub struct PodLog {
    pub pod: String,
    /// The `vmID` label Forklift puts on a VM's pods.
    pub vm_id: Option<String>,
    pub log: String,
}

impl PodLog {
    /// The line that says why: the last one that reads as an error, else the last line.
    fn telling_line(&self) -> Option<&str> {
        let lines: Vec<&str> = self.log.lines().filter(|l| !l.trim().is_empty()).collect();
        lines
            .iter()
            .rev()
            .find(|line| {
                let lower = line.to_ascii_lowercase();
                ["error", "fail", "fatal", "refused", "denied"]
                    .iter()
                    .any(|word| lower.contains(word))
            })
            .or(lines.last())
            .copied()
    }
}

/// Writes `logs/<pod>.log` for every pod of the Plans (label `plan=<uid>`, in `target_namespace`)
/// and for the Forklift controller (in `mtv_namespace`); returns the Plans' pods' logs.
pub async fn write_pod_logs(
    client: &kube::Client,
    dir: &Path,
    plans: &[Value],
    target_namespace: &str,
    mtv_namespace: &str,
) -> Vec<PodLog> {
    let logs_dir = dir.join("logs");
    let mut logs = Vec::new();
    for plan in plans {
        let Some(uid) = plan["metadata"]["uid"].as_str() else {
            continue;
        };
        let selector = format!("plan={uid}");
        logs.extend(pod_logs(client, target_namespace, Some(&selector), "").await);
    }
    let controller = pod_logs(client, mtv_namespace, None, "forklift-controller").await;
    if !logs.is_empty() || !controller.is_empty() {
        let _ = std::fs::create_dir_all(&logs_dir);
    }
    for log in logs.iter().chain(&controller) {
        let _ = std::fs::write(logs_dir.join(format!("{}.log", log.pod)), &log.log);
    }
    logs
}

/// The log tails of the pods of `namespace` that match `selector` and whose name starts with
/// `prefix`. A pod whose log cannot be read is left out (it may be gone already).
async fn pod_logs(
    client: &kube::Client,
    namespace: &str,
    selector: Option<&str>,
    prefix: &str,
) -> Vec<PodLog> {
    use k8s_openapi::api::core::v1::Pod;
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), namespace);
    let mut params = kube::api::ListParams::default();
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    let Ok(list) = pods.list(&params).await else {
        return Vec::new();
    };
    let mut logs = Vec::new();
    for pod in list.items {
        let Some(name) = pod.metadata.name.clone().filter(|n| n.starts_with(prefix)) else {
            continue;
        };
        let params = kube::api::LogParams {
            tail_lines: Some(LOG_TAIL_LINES),
            ..kube::api::LogParams::default()
        };
        if let Ok(log) = pods.logs(&name, &params).await {
            let vm_id = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("vmID"))
                .cloned();
            logs.push(PodLog {
                pod: name,
                vm_id,
                log,
            });
        }
    }
    logs
}

/// `inventory-<vm>.yaml`: what Forklift's inventory knew of each VM of the Plans.
async fn write_inventory_vms(session: &Session, dir: &Path, plans: &[Value]) {
    let provider_type = session.context.provider_type.as_str();
    for plan in plans {
        write_plan_inventory_vms(
            &session.inventory,
            provider_type,
            &session.source_provider_uid,
            plan,
            dir,
        )
        .await;
    }
}

/// `inventory-<vm>.yaml` for each VM of one Plan: the inventory's detailed view of it, named by the
/// VM's name where the Plan gives one (else its id). A VM the inventory cannot answer for is left out:
/// diagnostics collect what they can.
pub async fn write_plan_inventory_vms(
    inventory: &crate::inventory::Inventory,
    provider_type: &str,
    provider_uid: &str,
    plan: &Value,
    dir: &Path,
) {
    let vms = plan["spec"]["vms"].as_array().map(Vec::as_slice);
    for vm in vms.unwrap_or_default() {
        let Some(id) = vm["id"].as_str() else {
            continue;
        };
        let path = format!(
            "/providers/{provider_type}/{provider_uid}/vms/{}?detail=4",
            crate::inventory::query(id)
        );
        if let Ok(view) = inventory.get(&path).await {
            let name = vm["name"].as_str().unwrap_or(id);
            let _ = std::fs::write(dir.join(format!("inventory-{name}.yaml")), yaml(&view));
        }
    }
}

/// One line: the first VM of the Plan whose pipeline failed, the step, its error, and the VM's pod
/// with the log line that says why (`None` when no step of the Plan failed).
pub fn root_cause(plan: &Value, logs: &[PodLog]) -> Option<String> {
    let vms = plan.pointer("/status/migration/vms")?.as_array()?;
    vms.iter().find_map(|vm| {
        let step = vm["pipeline"]
            .as_array()?
            .iter()
            .find(|step| step["error"].is_object())?;
        let reasons: Vec<&str> = step["error"]["reasons"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let name = vm["name"]
            .as_str()
            .or_else(|| vm["id"].as_str())
            .unwrap_or("?");
        let mut line = format!(
            "VM {name}: pipeline step {} failed: {}",
            step["name"].as_str().unwrap_or("?"),
            if reasons.is_empty() {
                "(no reason given)".to_string()
            } else {
                reasons.join("; ")
            }
        );
        let id = vm["id"].as_str();
        let pod = logs
            .iter()
            .filter(|log| log.vm_id.as_deref() == id)
            .filter_map(|log| log.telling_line().map(|text| (log, text)))
            .max_by_key(|(_, text)| {
                let lower = text.to_ascii_lowercase();
                lower.contains("error") || lower.contains("fail")
            });
        if let Some((log, text)) = pod {
            line.push_str(&format!("; pod {}: {}", log.pod, text.trim()));
        }
        Some(line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_cause_names_the_step_the_error_the_pod_and_its_log_line() {
        let plan = serde_json::json!({"status": {"migration": {"vms": [
            {"name": "db", "id": "vm-1", "pipeline": [{"name": "Initialize"}]},
            {"name": "web", "id": "vm-2", "pipeline": [
                {"name": "DiskTransfer"},
                {"name": "ImageConversion", "error": {"phase": "ConvertGuest", "reasons": ["guest conversion failed"]}}
            ]}
        ]}}});
        let logs = vec![
            PodLog { pod: "other".into(), vm_id: Some("vm-1".into()), log: "error elsewhere\n".into() },
            PodLog {
                pod: "plan-vm-2-abcde".into(),
                vm_id: Some("vm-2".into()),
                log: "Building command: virt-v2v\nvirt-v2v: error: inspection could not detect the source guest\ncleanup\n".into(),
            },
        ];
        assert_eq!(
            root_cause(&plan, &logs).as_deref(),
            Some(
                "VM web: pipeline step ImageConversion failed: guest conversion failed; pod \
                  plan-vm-2-abcde: virt-v2v: error: inspection could not detect the source guest"
            )
        );
        assert_eq!(root_cause(&serde_json::json!({}), &logs), None);
    }

    #[test]
    fn events_sort_by_when_they_last_happened() {
        let mut events = [
            serde_json::json!({"lastTimestamp": "2026-12-04T10:00:05Z"}),
            serde_json::json!({"eventTime": "2026-12-04T10:00:01.000000Z"}),
            serde_json::json!({"metadata": {"creationTimestamp": "2026-12-04T10:00:03Z"}}),
        ];
        events.sort_by_key(|e| event_time(e).to_string());
        assert_eq!(event_time(&events[0]), "2026-12-04T10:00:01.000000Z");
        assert_eq!(event_time(&events[2]), "2026-12-04T10:00:05Z");
    }

    #[test]
    fn test_ids_become_safe_directory_names() {
        assert_eq!(
            sanitize_test_id("TestSanityColdMtvMigration[rhel8]::test_migrate_vms"),
            "TestSanityColdMtvMigration_rhel8_--test_migrate_vms"
        );
    }
}
