//! The diagnostics bundle of a failed step: `<results>/<test id>/` with the YAML of the Plan,
//! Migration, maps, Providers, target VMs, PVCs and recent Events. Secrets are never written (their
//! kind is not collected at all).

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

fn yaml(value: &Value) -> String {
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
        if let Some(name) = &objects.plan {
            fetch(&kinds::PLAN, ns, name, format!("plan-{name}.yaml")).await;
        }
        if let Some(name) = &objects.migration {
            fetch(
                &kinds::MIGRATION,
                ns,
                name,
                format!("migration-{name}.yaml"),
            )
            .await;
        }
        if let Some(name) = &objects.storage_map {
            fetch(
                &kinds::STORAGE_MAP,
                ns,
                name,
                format!("storagemap-{name}.yaml"),
            )
            .await;
        }
        if let Some(name) = &objects.network_map {
            fetch(
                &kinds::NETWORK_MAP,
                ns,
                name,
                format!("networkmap-{name}.yaml"),
            )
            .await;
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
    if let Ok(mut events) = cluster.list(&kinds::EVENT, Some(ns), None).await {
        // The most recent 50, oldest first.
        let keep = events.len().saturating_sub(50);
        events.drain(..keep);
        documents.push(("events.yaml".into(), Value::Array(events)));
    }
    for (file, object) in &documents {
        let _ = std::fs::write(dir.join(file), yaml(object));
    }
    Some(dir.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ids_become_safe_directory_names() {
        assert_eq!(
            sanitize_test_id("TestSanityColdMtvMigration[rhel8]::test_migrate_vms"),
            "TestSanityColdMtvMigration_rhel8_--test_migrate_vms"
        );
    }
}
