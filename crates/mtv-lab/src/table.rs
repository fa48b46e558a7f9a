//! `meta.k8s.io/v1` `Table` responses for `kubectl get`: CRD `additionalPrinterColumns` for Forklift kinds,
//! fixed columns for a few well-known kinds, and Name/Age for the rest.

use serde_json::{Value, json};

use crate::clock;
use crate::jsonpath::JsonPath;
use crate::registry::{self, PrinterColumn, ResourceType};

/// What each row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

fn col(name: &str, column_type: &str, json_path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.to_string(),
        column_type: column_type.to_string(),
        json_path: json_path.to_string(),
        description: String::new(),
        priority: 0,
    }
}

/// The columns after NAME for a resource type.
pub fn columns(rt: &ResourceType) -> Vec<PrinterColumn> {
    if let Some(crd) = rt.crd() {
        if crd.printer_columns.is_empty() {
            return vec![col("Age", "date", ".metadata.creationTimestamp")];
        }
        return crd.printer_columns.clone();
    }
    if rt.group == "apiextensions.k8s.io" {
        // kubectl shows a CRD's creation time, not its age.
        return vec![col("Created At", "date", ".metadata.creationTimestamp")];
    }
    let age = col("Age", "date", ".metadata.creationTimestamp");
    let mut cols = match (rt.group, rt.plural) {
        ("apps", "deployments") => vec![
            col("Ready", "integer", ".status.readyReplicas"),
            col("Up-to-date", "integer", ".status.updatedReplicas"),
            col("Available", "integer", ".status.availableReplicas"),
        ],
        ("", "namespaces") => vec![col("Status", "string", ".status.phase")],
        ("", "pods") => vec![
            col("Status", "string", ".status.phase"),
            col("Node", "string", ".spec.nodeName"),
        ],
        ("", "nodes") => vec![
            col(
                "Status",
                "string",
                ".status.conditions[?(@.type=='Ready')].type",
            ),
            col("Version", "string", ".status.nodeInfo.kubeletVersion"),
        ],
        ("", "secrets") => vec![col("Type", "string", ".type")],
        ("", "persistentvolumeclaims") => vec![
            col("Status", "string", ".status.phase"),
            col("Volume", "string", ".spec.volumeName"),
            col("Capacity", "string", ".status.capacity.storage"),
            col("StorageClass", "string", ".spec.storageClassName"),
        ],
        ("", "services") => vec![
            col("Type", "string", ".spec.type"),
            col("Cluster-IP", "string", ".spec.clusterIP"),
        ],
        ("", "events") => vec![
            col("Type", "string", ".type"),
            col("Reason", "string", ".reason"),
            col("Object", "string", ".involvedObject.name"),
            col("Message", "string", ".message"),
        ],
        ("storage.k8s.io", _) => vec![
            col("Provisioner", "string", ".provisioner"),
            col("ReclaimPolicy", "string", ".reclaimPolicy"),
        ],
        ("kubevirt.io", "virtualmachines") => vec![
            col("Status", "string", ".status.printableStatus"),
            col(
                "Ready",
                "string",
                ".status.conditions[?(@.type=='Ready')].status",
            ),
        ],
        ("kubevirt.io", "virtualmachineinstances") => vec![
            col("Phase", "string", ".status.phase"),
            col("IP", "string", ".status.interfaces[0].ipAddress"),
            col("NodeName", "string", ".status.nodeName"),
        ],
        ("cdi.kubevirt.io", _) => vec![
            col("Phase", "string", ".status.phase"),
            col("Progress", "string", ".status.progress"),
        ],
        ("operators.coreos.com", "subscriptions") => vec![
            col("Package", "string", ".spec.name"),
            col("Source", "string", ".spec.source"),
            col("Channel", "string", ".spec.channel"),
        ],
        ("operators.coreos.com", "clusterserviceversions") => vec![
            col("Display", "string", ".spec.displayName"),
            col("Version", "string", ".spec.version"),
            col("Phase", "string", ".status.phase"),
        ],
        ("batch", _) => vec![col(
            "Status",
            "string",
            ".status.conditions[?(@.status=='True')].type",
        )],
        _ => Vec::new(),
    };
    cols.push(age);
    cols
}

fn cell(object: &Value, column: &PrinterColumn) -> Value {
    let Ok(path) = JsonPath::parse(&column.json_path) else {
        return Value::Null;
    };
    let Some(found) = path.find(object).into_iter().next() else {
        return Value::Null;
    };
    match (column.column_type.as_str(), found) {
        ("date", Value::String(ts)) => json!(clock::age_of(ts)),
        ("integer" | "number" | "boolean", v) => v.clone(),
        (_, Value::String(s)) => json!(s),
        (_, Value::Null) => Value::Null,
        (_, other) => json!(other.to_string()),
    }
}

fn name_cell(rt: &ResourceType, object: &Value) -> Value {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let is_default_class = std::ptr::eq(rt, &registry::STORAGE_CLASS)
        && object
            .pointer("/metadata/annotations/storageclass.kubernetes.io~1is-default-class")
            .and_then(Value::as_str)
            == Some("true");
    if is_default_class {
        json!(format!("{name} (default)"))
    } else {
        json!(name)
    }
}

fn row(rt: &ResourceType, cols: &[PrinterColumn], object: &Value, include: IncludeObject) -> Value {
    let mut cells = vec![name_cell(rt, object)];
    cells.extend(cols.iter().map(|c| cell(object, c)));
    let mut r = json!({"cells": cells});
    match include {
        IncludeObject::None => {}
        IncludeObject::Object => r["object"] = object.clone(),
        IncludeObject::Metadata => {
            r["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
            })
        }
    }
    r
}

/// A Table of `objects`.
pub fn table(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: u64,
    continue_token: Option<&str>,
    include: IncludeObject,
) -> Value {
    let cols = columns(rt);
    let mut defs = vec![json!({
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": "Name must be unique within a namespace.",
        "priority": 0
    })];
    defs.extend(cols.iter().map(|c| {
        json!({
            "name": c.name,
            "type": if c.column_type == "date" { "string" } else { c.column_type.as_str() },
            "format": "",
            "description": c.description,
            "priority": c.priority,
        })
    }));
    let mut metadata = json!({"resourceVersion": resource_version.to_string()});
    if let Some(c) = continue_token {
        metadata["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": defs,
        "rows": objects.iter().map(|o| row(rt, &cols, o, include)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_table_uses_crd_printer_columns() {
        let plan = json!({
            "metadata": {"name": "p1", "creationTimestamp": clock::now_rfc3339()},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        });
        let t = table(&registry::PLAN, &[plan], 7, None, IncludeObject::Metadata);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            vec!["Name", "READY", "EXECUTING", "SUCCEEDED", "FAILED", "AGE"]
        );
        let cells = &t["rows"][0]["cells"];
        assert_eq!(cells[0], "p1");
        assert_eq!(cells[1], "True");
        assert_eq!(cells[2], Value::Null);
        assert!(cells[5].as_str().unwrap().ends_with('s'));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn default_storage_class_is_marked() {
        let sc = json!({"metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "x"});
        let t = table(
            &registry::STORAGE_CLASS,
            &[sc],
            1,
            None,
            IncludeObject::None,
        );
        assert_eq!(t["rows"][0]["cells"][0], "fast (default)");
        assert!(t["rows"][0].get("object").is_none());
    }
}
