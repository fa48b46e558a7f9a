//! Field ownership (`metadata.managedFields`) for ordinary writes, as the apiserver's field manager keeps
//! it: a create, update or non-apply patch records its manager (the `fieldManager` parameter, else the
//! User-Agent's product name) with operation `Update` over the fields it set or changed, taking them from
//! other managers without conflict; a later server-side apply of such a field by another manager with
//! another value is a conflict. Fields are leaf paths of maps; lists are atomic (the lab's simplified
//! model, shared with server-side apply in `store`).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::clock;
use crate::error::{ApiError, StatusCause};
use crate::patch::{self, FieldPath};
use crate::registry::ResourceType;

/// The manager the apiserver names for a request without `fieldManager`: the User-Agent up to its
/// first `/`, at most 128 characters.
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let product = user_agent.split('/').next().unwrap_or_default();
    product.chars().take(128).collect()
}

/// The fields of `object` a write to the main resource (or, with `status`, to the status subresource)
/// owns.
pub fn owned_paths(rt: &ResourceType, object: &Value, status: bool) -> BTreeSet<FieldPath> {
    patch::owned_fields(object)
        .into_iter()
        .filter(|p| {
            let is_status = p.first().is_some_and(|s| s == "status");
            if status {
                is_status
            } else {
                !(is_status && rt.status_subresource)
            }
        })
        .collect()
}

fn entry_manager(entry: &Value) -> &str {
    entry
        .get("manager")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn entry_subresource(entry: &Value) -> Option<&str> {
    entry.get("subresource").and_then(Value::as_str)
}

/// How the apiserver names a manager in conflict messages: `"name"`, `"name" with subresource "status"`,
/// and ` using <apiVersion>` for `Update` managers.
pub fn manager_display(entry: &Value) -> String {
    let mut text = format!("{:?}", entry_manager(entry));
    if let Some(sub) = entry_subresource(entry) {
        text.push_str(&format!(" with subresource {sub:?}"));
    }
    if entry.get("operation").and_then(Value::as_str) == Some("Update") {
        let api_version = entry
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        text.push_str(&format!(" using {api_version}"));
    }
    text
}

/// Records an ordinary write by `manager` in `new`'s `managedFields`: the manager's `Update` entry gains
/// every field the write set or changed, other entries lose those fields (and fields gone from the
/// object); entries left owning nothing are dropped.
pub fn record_update(
    rt: &ResourceType,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    status: bool,
) {
    let now_owned = owned_paths(rt, new, status);
    let changed: BTreeSet<FieldPath> = match old {
        None => now_owned.clone(),
        Some(old) => owned_paths(rt, old, status)
            .union(&now_owned)
            .filter(|p| patch::value_at(old, p) != patch::value_at(new, p))
            .cloned()
            .collect(),
    };
    let subresource = status.then_some("status");
    let mut entries: Vec<Value> = old
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_mine = |e: &Value| {
        entry_manager(e) == manager
            && e.get("operation").and_then(Value::as_str) == Some("Update")
            && entry_subresource(e) == subresource
    };
    let mut mine: BTreeSet<FieldPath> = entries
        .iter()
        .find(|e| is_mine(e))
        .and_then(|e| e.get("fieldsV1"))
        .map(patch::parse_fields_v1)
        .unwrap_or_default();
    mine.extend(changed.iter().cloned());
    mine.retain(|p| now_owned.contains(p));
    let all_owned = owned_paths(rt, new, false)
        .union(&owned_paths(rt, new, true))
        .cloned()
        .collect::<BTreeSet<_>>();
    let mut kept = Vec::new();
    let mut mine_at = None;
    for entry in entries.drain(..) {
        if is_mine(&entry) {
            mine_at = Some(kept.len());
            kept.push(entry);
            continue;
        }
        let mut theirs = entry
            .get("fieldsV1")
            .map(patch::parse_fields_v1)
            .unwrap_or_default();
        let same_target = entry_subresource(&entry) == subresource;
        theirs.retain(|p| all_owned.contains(p) && !(same_target && changed.contains(p)));
        if !theirs.is_empty() {
            let mut entry = entry;
            entry["fieldsV1"] = patch::fields_v1(&theirs);
            kept.push(entry);
        }
    }
    let mut entry = json!({
        "manager": manager,
        "operation": "Update",
        "apiVersion": rt.api_version(),
        "time": clock::now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": patch::fields_v1(&mine),
    });
    if let Some(s) = subresource {
        entry["subresource"] = json!(s);
    }
    match mine_at {
        Some(i) if mine.is_empty() => {
            kept.remove(i);
        }
        Some(i) => {
            if changed.is_empty() {
                // Nothing changed: keep the old entry (and its time), so a no-op stays a no-op.
            } else {
                kept[i] = entry;
            }
        }
        None if !mine.is_empty() => kept.push(entry),
        None => {}
    }
    let meta = new
        .as_object_mut()
        .map(|m| m.entry("metadata").or_insert_with(|| json!({})));
    if let Some(Value::Object(meta)) = meta {
        if kept.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(kept));
        }
    }
}

/// The 409 of a server-side apply whose fields other managers own with other values, worded as the
/// apiserver's `NewConflictError`.
pub fn conflict_error(rt: &ResourceType, name: &str, conflicts: &[(Value, FieldPath)]) -> ApiError {
    let path = |p: &FieldPath| format!(".{}", p.join("."));
    let causes: Vec<StatusCause> = conflicts
        .iter()
        .map(|(entry, p)| StatusCause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with {}", manager_display(entry)),
            field: path(p),
        })
        .collect();
    let message = if let [(entry, p)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            manager_display(entry),
            path(p)
        )
    } else {
        let mut managers: Vec<String> = conflicts.iter().map(|(e, _)| manager_display(e)).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for manager in managers {
            lines.push(format!("conflicts with {manager}:"));
            for (e, p) in conflicts {
                if manager_display(e) == manager {
                    lines.push(format!("- {}", path(p)));
                }
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let mut err = ApiError::conflict(rt.group, rt.plural, name, "");
    err.message = message;
    err.causes = causes;
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;

    #[test]
    fn user_agents_name_managers_like_the_apiserver() {
        assert_eq!(
            manager_from_user_agent("kubectl/v1.37.0 (linux/amd64) kubernetes/abc"),
            "kubectl"
        );
        assert_eq!(
            manager_from_user_agent("OpenAPI-Generator/31.0.0/python"),
            "OpenAPI-Generator"
        );
    }

    #[test]
    fn updates_take_changed_fields_from_other_managers() {
        let rt = &registry::CONFIG_MAP;
        let mut created = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        record_update(rt, None, &mut created, "creator", false);
        let mut updated = created.clone();
        updated["data"]["b"] = json!("3");
        record_update(rt, Some(&created), &mut updated, "editor", false);
        let entries = updated["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{entries:#?}");
        assert_eq!(entries[0]["manager"], "creator");
        assert_eq!(entries[0]["fieldsV1"], json!({"f:data": {"f:a": {}}}));
        assert_eq!(entries[1]["manager"], "editor");
        assert_eq!(entries[1]["fieldsV1"], json!({"f:data": {"f:b": {}}}));
        assert_eq!(
            manager_display(&entries[1]),
            "\"editor\" using v1",
            "an Update manager is named with its apiVersion"
        );
    }

    #[test]
    fn conflict_messages_match_the_apiserver() {
        let entry = json!({"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1"});
        let one = conflict_error(
            &registry::CONFIG_MAP,
            "c",
            &[(entry.clone(), vec!["data".into(), "a".into()])],
        );
        assert_eq!(one.code, 409);
        assert_eq!(
            one.message,
            "Apply failed with 1 conflict: conflict with \"kubectl-create\" using v1: .data.a"
        );
        let two = conflict_error(
            &registry::CONFIG_MAP,
            "c",
            &[
                (entry.clone(), vec!["data".into(), "a".into()]),
                (entry, vec!["data".into(), "b".into()]),
            ],
        );
        assert_eq!(
            two.message,
            "Apply failed with 2 conflicts: conflicts with \"kubectl-create\" using v1:\n- .data.a\n- .data.b"
        );
    }
}
