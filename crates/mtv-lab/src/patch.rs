//! Patch formats: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch (as a merge
//! patch that understands the `$patch`, `$retainKeys`, `$setElementOrder` and `$deleteFromPrimitiveList`
//! directives; lists are replaced, not merged by key) and server-side apply (see [`apply_config`]).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::error::ApiError;

/// A patch as the API receives it.
#[derive(Debug, Clone)]
pub enum Patch {
    /// `application/merge-patch+json`
    Merge(Value),
    /// `application/json-patch+json`
    Json(Value),
    /// `application/strategic-merge-patch+json`
    Strategic(Value),
    /// `application/apply-patch+yaml`: the applied configuration, its field manager and `force`.
    Apply {
        config: Value,
        field_manager: String,
        force: bool,
    },
}

/// Applies a JSON merge patch in place.
pub fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch in place.
pub fn json(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    json_patch::patch(target, &ops).map_err(|e| ApiError::unprocessable_patch(e.to_string()))
}

/// Applies a strategic merge patch as a merge patch after resolving its directives.
pub fn strategic(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut clean = Value::Object(p.clone());
                strip_directives(&mut clean);
                if let Value::Object(c) = clean {
                    *t = c;
                }
                return;
            }
            for (key, pv) in p {
                if let Some(list_key) = key.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(list)), Value::Array(remove)) =
                        (t.get_mut(list_key), pv)
                    {
                        list.retain(|v| !remove.contains(v));
                    }
                    continue;
                }
                if key.starts_with('$') {
                    continue;
                }
                match pv {
                    Value::Null => {
                        t.remove(key);
                    }
                    Value::Object(po)
                        if po.get("$patch").and_then(Value::as_str) == Some("delete") =>
                    {
                        t.remove(key);
                    }
                    Value::Object(_) => {
                        let entry = t
                            .entry(key.clone())
                            .or_insert_with(|| Value::Object(Map::new()));
                        if !entry.is_object() {
                            *entry = Value::Object(Map::new());
                        }
                        strategic(entry, pv);
                    }
                    Value::Array(items) => {
                        let kept: Vec<Value> = items
                            .iter()
                            .filter(|i| i.get("$patch").is_none())
                            .cloned()
                            .map(|mut i| {
                                strip_directives(&mut i);
                                i
                            })
                            .collect();
                        t.insert(key.clone(), Value::Array(kept));
                    }
                    other => {
                        t.insert(key.clone(), other.clone());
                    }
                }
            }
        }
        (target, patch) => {
            let mut clean = patch.clone();
            strip_directives(&mut clean);
            *target = clean;
        }
    }
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

/// A field path inside an object, as server-side apply tracks it (`["spec", "vms"]`).
pub type FieldPath = Vec<String>;

/// The leaf field paths an applied configuration sets. Maps are walked; lists and scalars are leaves (lists
/// are atomic in this simplified ownership model). `apiVersion`, `kind`, `metadata.name`,
/// `metadata.namespace` and status-less bookkeeping fields are not owned.
pub fn owned_fields(config: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    if let Value::Object(m) = config {
        for (k, v) in m {
            match k.as_str() {
                "apiVersion" | "kind" => {}
                "metadata" => {
                    if let Value::Object(meta) = v {
                        for (mk, mv) in meta {
                            if matches!(mk.as_str(), "labels" | "annotations") {
                                collect(mv, vec!["metadata".into(), mk.clone()], &mut out);
                            } else if mk == "finalizers" || mk == "ownerReferences" {
                                out.insert(vec!["metadata".into(), mk.clone()]);
                            }
                        }
                    }
                }
                _ => collect(v, vec![k.clone()], &mut out),
            }
        }
    }
    out
}

fn collect(v: &Value, path: FieldPath, out: &mut BTreeSet<FieldPath>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let mut p = path.clone();
                p.push(k.clone());
                collect(child, p, out);
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

/// The value at a field path.
pub fn value_at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, seg| cur.get(seg))
}

/// Removes the value at a field path (and parents that become empty maps because of it).
pub fn remove_at(v: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for seg in parents {
        match cur.get_mut(seg) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Value::Object(m) = cur {
        m.remove(last);
    }
}

/// Deep-merges an applied configuration into an object: maps merge, everything else (lists included) is
/// replaced by the configuration's value.
pub fn apply_config(target: &mut Value, config: &Value) {
    match (target, config) {
        (Value::Object(t), Value::Object(c)) => {
            for (k, cv) in c {
                match t.get_mut(k) {
                    Some(tv) if tv.is_object() && cv.is_object() => apply_config(tv, cv),
                    _ => {
                        t.insert(k.clone(), cv.clone());
                    }
                }
            }
        }
        (target, config) => *target = config.clone(),
    }
}

/// `managedFields[].fieldsV1` for a set of owned paths: nested `f:<name>` maps with `{}` leaves.
pub fn fields_v1(paths: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut cur = &mut root;
        for seg in path {
            let entry = cur
                .entry(format!("f:{seg}"))
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(next) = entry else { break };
            cur = next;
        }
    }
    Value::Object(root)
}

/// Reads the owned paths back from a `fieldsV1` document.
pub fn parse_fields_v1(v: &Value) -> BTreeSet<FieldPath> {
    fn walk(v: &Value, path: FieldPath, out: &mut BTreeSet<FieldPath>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    if let Some(name) = k.strip_prefix("f:") {
                        let mut p = path.clone();
                        p.push(name.to_string());
                        walk(child, p, out);
                    }
                }
            }
            _ => {
                if !path.is_empty() {
                    out.insert(path);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, Vec::new(), &mut out);
    out
}

impl ApiError {
    /// 422 for a JSON patch whose operations cannot be applied (a failed `test`, a missing path).
    pub fn unprocessable_patch(message: String) -> Self {
        let mut e = ApiError::bad_request(format!(
            "the server rejected our request due to an error in our request: {message}"
        ));
        e.code = 422;
        e.reason = "Invalid".into();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_sets_and_removes() {
        let mut v = json!({"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]});
        merge(&mut v, &json!({"a": null, "b": {"c": 5}, "l": [3]}));
        assert_eq!(v, json!({"b": {"c": 5, "d": 3}, "l": [3]}));
    }

    #[test]
    fn json_patch_ops_and_test_failure() {
        let mut v = json!({"spec": {"vms": [{"name": "a"}]}});
        json(
            &mut v,
            &json!([{"op": "add", "path": "/spec/vms/-", "value": {"name": "b"}}]),
        )
        .unwrap();
        assert_eq!(v["spec"]["vms"][1]["name"], "b");
        let err = json(
            &mut v,
            &json!([{"op": "test", "path": "/spec/vms/0/name", "value": "z"}]),
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        let err = json(&mut v, &json!({"not": "a list"})).unwrap_err();
        assert_eq!(err.code, 400);
    }

    #[test]
    fn strategic_patch_directives() {
        let mut v = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]}, "data": {"k": "v"}});
        strategic(
            &mut v,
            &json!({
                "$setElementOrder/containers": [{"name": "c"}],
                "metadata": {"labels": {"a": null, "c": "3"}, "$deleteFromPrimitiveList/finalizers": ["x"]},
                "data": {"$patch": "delete"}
            }),
        );
        assert_eq!(
            v,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}, "finalizers": ["y"]}})
        );
    }

    #[test]
    fn owned_fields_round_trip_through_fields_v1() {
        let config = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "labels": {"a": "1"}},
            "stringData": {"user": "u"}, "type": "Opaque", "spec": {"vms": [{"name": "a"}]}
        });
        let owned = owned_fields(&config);
        assert!(owned.contains(&vec![
            "metadata".to_string(),
            "labels".to_string(),
            "a".to_string()
        ]));
        assert!(owned.contains(&vec!["spec".to_string(), "vms".to_string()]));
        assert!(
            !owned
                .iter()
                .any(|p| p.last().map(String::as_str) == Some("name") && p.len() == 2)
        );
        assert_eq!(parse_fields_v1(&fields_v1(&owned)), owned);
    }

    #[test]
    fn apply_config_merges_maps_and_replaces_lists() {
        let mut v = json!({"spec": {"a": 1, "l": [1, 2], "m": {"x": 1}}});
        apply_config(&mut v, &json!({"spec": {"l": [3], "m": {"y": 2}}}));
        assert_eq!(
            v,
            json!({"spec": {"a": 1, "l": [3], "m": {"x": 1, "y": 2}}})
        );
        remove_at(
            &mut v,
            &["spec".to_string(), "m".to_string(), "x".to_string()],
        );
        assert_eq!(
            value_at(&v, &["spec".to_string(), "m".to_string()]),
            Some(&json!({"y": 2}))
        );
    }
}
