//! Structural-schema processing of custom resources, in the order the apiserver applies it: prune unknown
//! fields (and nulls of non-nullable fields), apply `default`s, then validate types, `required`, `enum`,
//! `pattern`, lengths, bounds and `format: date-time`/`int32`.
//!
//! Not done: `x-kubernetes-validations` (CEL rules) are skipped; `x-kubernetes-list-type: set|map`
//! uniqueness is not checked. `metadata` is not touched here (the store validates it).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::StatusCause;

/// What schema processing found: validation causes (-> 422) and pruned unknown fields (-> strict decoding).
#[derive(Debug, Default)]
pub struct SchemaReport {
    pub causes: Vec<StatusCause>,
    /// Dotted paths of fields that were unknown to the schema and pruned.
    pub unknown_fields: Vec<String>,
}

/// Prunes, defaults and validates a whole custom resource against its CRD's `openAPIV3Schema`.
/// `metadata` is left as it is; `apiVersion`/`kind` are kept.
pub fn process_object(object: &mut Value, schema: &Value) -> SchemaReport {
    let mut report = SchemaReport::default();
    let Some(obj) = object.as_object_mut() else {
        report
            .causes
            .push(cause("FieldValueTypeInvalid", "must be an object", ""));
        return report;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match props.and_then(|p| p.get(&key)) {
            Some(sub) => {
                if obj.get(&key).is_some_and(Value::is_null) && !is_nullable(sub) {
                    obj.remove(&key);
                    continue;
                }
                if let Some(v) = obj.get_mut(&key) {
                    walk(v, sub, &key, &mut report);
                }
            }
            None => {
                if !preserves_unknown(schema) {
                    obj.remove(&key);
                    report.unknown_fields.push(key);
                }
            }
        }
    }
    if let Some(props) = props {
        for (key, sub) in props {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") || obj.contains_key(key) {
                continue;
            }
            if let Some(default) = sub.get("default") {
                let mut v = default.clone();
                walk(&mut v, sub, key, &mut report);
                obj.insert(key.clone(), v);
            }
        }
    }
    check_required(obj, schema, "", &mut report);
    report
}

fn is_nullable(schema: &Value) -> bool {
    schema
        .get("nullable")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn cause(reason: &str, message: impl Into<String>, field: &str) -> StatusCause {
    StatusCause {
        reason: reason.to_string(),
        message: message.into(),
        field: field.to_string(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn short_json(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) | Value::Array(_) => format!("\"{}\"", type_name(v)),
        other => other.to_string(),
    }
}

fn walk(value: &mut Value, schema: &Value, path: &str, report: &mut SchemaReport) {
    if value.is_null() {
        if !is_nullable(schema) {
            report.causes.push(cause(
                "FieldValueTypeInvalid",
                format!(
                    "Invalid value: \"null\": {path} in body must be of type {}: \"null\"",
                    schema_type(schema)
                ),
                path,
            ));
        }
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let expected = schema.get("type").and_then(Value::as_str).unwrap_or("");
    let actual = type_name(value);
    let type_ok = if int_or_string {
        matches!(actual, "integer" | "string")
    } else {
        match expected {
            "" => true,
            "number" => matches!(actual, "integer" | "number"),
            other => other == actual,
        }
    };
    if !type_ok {
        let want = if int_or_string {
            "integer or string"
        } else {
            expected
        };
        report.causes.push(cause(
            "FieldValueTypeInvalid",
            format!(
                "Invalid value: \"{actual}\": {path} in body must be of type {want}: \"{actual}\""
            ),
            path,
        ));
        return;
    }
    match value {
        Value::Object(obj) => walk_object(obj, schema, path, report),
        Value::Array(items) => {
            let len = items.len() as u64;
            if let Some(min) = schema
                .get("minItems")
                .and_then(Value::as_u64)
                .filter(|m| len < *m)
            {
                report.causes.push(cause(
                    "FieldValueInvalid",
                    format!(
                        "Invalid value: {len}: {path} in body should have at least {min} items"
                    ),
                    path,
                ));
            }
            if let Some(max) = schema
                .get("maxItems")
                .and_then(Value::as_u64)
                .filter(|m| len > *m)
            {
                report.causes.push(cause(
                    "FieldValueTooMany",
                    format!("Too many: {len}: must have at most {max} items"),
                    path,
                ));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), report);
                }
            }
        }
        Value::String(s) => check_string(s, schema, path, report),
        Value::Number(_) => check_number(value, schema, path, report),
        _ => {}
    }
    check_enum(value, schema, path, report);
}

fn schema_type(schema: &Value) -> &str {
    schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("object")
}

fn walk_object(
    obj: &mut Map<String, Value>,
    schema: &Value,
    path: &str,
    report: &mut SchemaReport,
) {
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let keep_unknown =
        preserves_unknown(schema) || additional.and_then(Value::as_bool) == Some(true);
    let keys: Vec<String> = obj.keys().cloned().collect();
    for key in keys {
        let child_path = join(path, &key);
        let sub = props
            .and_then(|p| p.get(&key))
            .or_else(|| additional.filter(|a| a.is_object()));
        match sub {
            Some(sub) => {
                if obj.get(&key).is_some_and(Value::is_null) && !is_nullable(sub) {
                    obj.remove(&key);
                    continue;
                }
                if let Some(v) = obj.get_mut(&key) {
                    walk(v, sub, &child_path, report);
                }
            }
            None if keep_unknown => {}
            None => {
                obj.remove(&key);
                report.unknown_fields.push(child_path);
            }
        }
    }
    if let Some(props) = props {
        for (key, sub) in props {
            if obj.contains_key(key) {
                continue;
            }
            if let Some(default) = sub.get("default") {
                let mut v = default.clone();
                walk(&mut v, sub, &join(path, key), report);
                obj.insert(key.clone(), v);
            }
        }
    }
    check_required(obj, schema, path, report);
}

fn check_required(obj: &Map<String, Value>, schema: &Value, path: &str, report: &mut SchemaReport) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !obj.contains_key(name) {
                report.causes.push(cause(
                    "FieldValueRequired",
                    "Required value",
                    &join(path, name),
                ));
            }
        }
    }
}

fn check_enum(value: &Value, schema: &Value, path: &str, report: &mut SchemaReport) {
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let listed: Vec<String> = allowed.iter().map(short_json).collect();
        report.causes.push(cause(
            "FieldValueNotSupported",
            format!(
                "Unsupported value: {}: supported values: {}",
                short_json(value),
                listed.join(", ")
            ),
            path,
        ));
    }
}

fn check_string(s: &str, schema: &Value, path: &str, report: &mut SchemaReport) {
    let len = s.chars().count() as u64;
    if let Some(min) = schema
        .get("minLength")
        .and_then(Value::as_u64)
        .filter(|m| len < *m)
    {
        report.causes.push(cause(
            "FieldValueInvalid",
            format!("Invalid value: {s:?}: {path} in body should be at least {min} chars long"),
            path,
        ));
    }
    if let Some(max) = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .filter(|m| len > *m)
    {
        report.causes.push(cause(
            "FieldValueTooLong",
            format!("Too long: may not be more than {max} bytes"),
            path,
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match compiled(pattern) {
            Some(re) if !re.is_match(s) => report.causes.push(cause(
                "FieldValueInvalid",
                format!("Invalid value: {s:?}: {path} in body should match '{pattern}'"),
                path,
            )),
            _ => {}
        }
    }
    if schema.get("format").and_then(Value::as_str) == Some("date-time")
        && crate::clock::parse_rfc3339(s).is_none()
    {
        report.causes.push(cause(
            "FieldValueInvalid",
            format!("Invalid value: {s:?}: {path} in body must be of type date-time: {s:?}"),
            path,
        ));
    }
}

fn check_number(value: &Value, schema: &Value, path: &str, report: &mut SchemaReport) {
    let Some(n) = value.as_f64() else { return };
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let exclusive = schema
            .get("exclusiveMinimum")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if n < min || (exclusive && n == min) {
            let word = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            report.causes.push(cause(
                "FieldValueInvalid",
                format!("Invalid value: {value}: {path} in body should be {word} {min}"),
                path,
            ));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let exclusive = schema
            .get("exclusiveMaximum")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if n > max || (exclusive && n == max) {
            let word = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            report.causes.push(cause(
                "FieldValueInvalid",
                format!("Invalid value: {value}: {path} in body should be {word} {max}"),
                path,
            ));
        }
    }
    if schema.get("format").and_then(Value::as_str) == Some("int32")
        && value.as_i64().is_some_and(|i| i32::try_from(i).is_err())
    {
        report.causes.push(cause(
            "FieldValueInvalid",
            format!("Invalid value: {value}: {path} in body must be of type int32"),
            path,
        ));
    }
}

fn compiled(pattern: &str) -> Option<Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = cache.lock().unwrap_or_else(|p| p.into_inner());
    guard
        .entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).ok())
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;
    use serde_json::json;

    fn plan_schema() -> Value {
        registry::PLAN.crd().unwrap().schema.clone()
    }

    /// The spec fields the CRD defaults in a minimal Plan, with their values (shared with the kube-rs
    /// tests).
    fn minimal_plan_defaults() -> serde_json::Map<String, Value> {
        serde_json::from_str(include_str!("../tests/fixtures/minimal-plan-defaults.json")).unwrap()
    }

    fn minimal_plan() -> Value {
        let mut plan = crate::store_tests::plan("p");
        plan["metadata"]["namespace"] = json!("ns");
        plan
    }

    #[test]
    fn plan_true_defaults_are_applied() {
        let mut plan = minimal_plan();
        let report = process_object(&mut plan, &plan_schema());
        assert!(report.causes.is_empty(), "{:?}", report.causes);
        for (field, value) in minimal_plan_defaults() {
            assert_eq!(plan["spec"][&field], value, "{field}");
        }
    }

    #[test]
    fn explicit_false_is_kept() {
        let mut plan = minimal_plan();
        plan["spec"]["preserveStaticIPs"] = json!(false);
        process_object(&mut plan, &plan_schema());
        assert_eq!(plan["spec"]["preserveStaticIPs"], json!(false));
    }

    #[test]
    fn unknown_fields_are_pruned_and_reported() {
        let mut plan = minimal_plan();
        plan["spec"]["bogus"] = json!(1);
        plan["spec"]["vms"][0]["alsoBogus"] = json!("x");
        plan["topLevelBogus"] = json!(true);
        let report = process_object(&mut plan, &plan_schema());
        assert!(plan["spec"].get("bogus").is_none());
        assert!(plan["spec"]["vms"][0].get("alsoBogus").is_none());
        assert!(plan.get("topLevelBogus").is_none());
        let mut unknown = report.unknown_fields.clone();
        unknown.sort();
        assert_eq!(
            unknown,
            vec!["spec.bogus", "spec.vms[0].alsoBogus", "topLevelBogus"]
        );
    }

    #[test]
    fn type_enum_and_required_errors_name_the_field() {
        let mut plan = minimal_plan();
        plan["spec"]["warm"] = json!("yes");
        plan["spec"]["targetPowerState"] = json!("sideways");
        plan["spec"]["provider"]
            .as_object_mut()
            .unwrap()
            .remove("source");
        let report = process_object(&mut plan, &plan_schema());
        let fields: Vec<&str> = report.causes.iter().map(|c| c.field.as_str()).collect();
        assert!(fields.contains(&"spec.warm"), "{fields:?}");
        assert!(fields.contains(&"spec.targetPowerState"), "{fields:?}");
        assert!(fields.contains(&"spec.provider.source"), "{fields:?}");
        let enum_cause = report
            .causes
            .iter()
            .find(|c| c.field == "spec.targetPowerState")
            .unwrap();
        assert_eq!(enum_cause.reason, "FieldValueNotSupported");
        assert!(
            enum_cause.message.contains("\"on\""),
            "{}",
            enum_cause.message
        );
    }

    #[test]
    fn provider_required_secret_and_preserve_unknown_status() {
        let schema = registry::PROVIDER.crd().unwrap().schema.clone();
        let mut p = json!({"spec": {"type": "hyperspace", "url": "https://x"}});
        let report = process_object(&mut p, &schema);
        // The CRD has no enum for the provider type (the controller reports unsupported types), but
        // `secret` is required.
        let fields: Vec<&str> = report.causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.secret"]);
        let schema = registry::FORKLIFT_CONTROLLER.crd().unwrap().schema.clone();
        let mut fc = json!({"spec": {}, "status": {"anything": {"goes": 1}}});
        let report = process_object(&mut fc, &schema);
        assert!(report.unknown_fields.is_empty());
        assert_eq!(fc["status"]["anything"]["goes"], 1);
    }

    #[test]
    fn nulls_of_non_nullable_fields_are_pruned_then_defaulted() {
        let mut plan = minimal_plan();
        plan["spec"]["preserveStaticIPs"] = Value::Null;
        let report = process_object(&mut plan, &plan_schema());
        assert!(report.causes.is_empty());
        assert_eq!(plan["spec"]["preserveStaticIPs"], json!(true));
    }
}
