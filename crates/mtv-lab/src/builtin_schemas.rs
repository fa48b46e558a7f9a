//! The OpenAPI schemas of the built-in kinds the lab serves (Pod, Service, ConfigMap, Secret, Deployment,
//! the RBAC and review kinds, ...), as the real API server publishes them: generated from k8s-openapi's
//! `schemars` implementations, which carry Kubernetes' own OpenAPI definitions. They feed `/openapi/v2`,
//! `/openapi/v3` (so `kubectl explain pod.spec.containers` works) and the pruning of unknown fields in
//! writes (so `fieldValidation=Strict` refuses `spec.bogus` of a Pod as the API server does).

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use k8s_openapi::api::{apps, authentication, authorization, batch, core, rbac, storage};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::registry::ResourceType;

/// Where OpenAPI v3 documents keep their schemas; `$ref`s point there.
const V3_REF_PREFIX: &str = "#/components/schemas/";

/// A built-in kind: its group, version and kind (from k8s-openapi's `Resource`) and how to generate its
/// schema (a `$ref` into the generator's definitions).
struct BuiltinKind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    generate: fn(&mut SchemaGenerator) -> schemars::Schema,
}

macro_rules! builtin {
    ($ty:ty) => {
        BuiltinKind {
            group: <$ty as k8s_openapi::Resource>::GROUP,
            version: <$ty as k8s_openapi::Resource>::VERSION,
            kind: <$ty as k8s_openapi::Resource>::KIND,
            generate: |generator| generator.subschema_for::<$ty>(),
        }
    };
}

/// Every built-in kind the registry serves (custom resources take their schemas from their CRDs).
const BUILTIN_KINDS: &[BuiltinKind] = &[
    builtin!(core::v1::Namespace),
    builtin!(core::v1::Secret),
    builtin!(core::v1::ConfigMap),
    builtin!(core::v1::PersistentVolumeClaim),
    builtin!(core::v1::PersistentVolume),
    builtin!(core::v1::Pod),
    builtin!(core::v1::Event),
    builtin!(core::v1::Node),
    builtin!(core::v1::Service),
    builtin!(core::v1::ServiceAccount),
    builtin!(storage::v1::StorageClass),
    builtin!(batch::v1::Job),
    builtin!(apps::v1::Deployment),
    builtin!(apiextensions::v1::CustomResourceDefinition),
    builtin!(rbac::v1::Role),
    builtin!(rbac::v1::ClusterRole),
    builtin!(rbac::v1::RoleBinding),
    builtin!(rbac::v1::ClusterRoleBinding),
    builtin!(authentication::v1::TokenReview),
    builtin!(authentication::v1::SelfSubjectReview),
    builtin!(authorization::v1::SubjectAccessReview),
    builtin!(authorization::v1::SelfSubjectAccessReview),
    builtin!(authorization::v1::LocalSubjectAccessReview),
];

/// The generated schemas, built once.
struct BuiltinSchemas {
    /// Every definition the built-in kinds reach, keyed by its OpenAPI name
    /// (`io.k8s.api.core.v1.Pod`), with v3 `$ref`s.
    definitions: Map<String, Value>,
    /// (group, kind) → the kind's definition name.
    roots: HashMap<(&'static str, &'static str), String>,
    /// (group, kind) → the kind's schema with every `$ref` inlined and descriptions dropped: what the
    /// pruning walk of `crate::schema` reads.
    pruning: HashMap<(&'static str, &'static str), Value>,
}

fn schemas() -> &'static BuiltinSchemas {
    static SCHEMAS: OnceLock<BuiltinSchemas> = OnceLock::new();
    SCHEMAS.get_or_init(generate)
}

fn generate() -> BuiltinSchemas {
    let mut generator = SchemaSettings::openapi3()
        .with(|settings| settings.meta_schema = None)
        .into_generator();
    let mut roots = HashMap::new();
    let mut gvks = Vec::new();
    for builtin in BUILTIN_KINDS {
        let reference = (builtin.generate)(&mut generator);
        let name = reference
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(V3_REF_PREFIX))
            .unwrap_or(builtin.kind)
            .to_string();
        gvks.push((name.clone(), builtin));
        roots.insert((builtin.group, builtin.kind), name);
    }
    let mut definitions = generator.take_definitions(true);
    for (name, builtin) in gvks {
        if let Some(Value::Object(schema)) = definitions.get_mut(&name) {
            schema.insert(
                "x-kubernetes-group-version-kind".into(),
                json!([{"group": builtin.group, "version": builtin.version, "kind": builtin.kind}]),
            );
        }
    }
    let pruning = roots
        .iter()
        .map(|(key, name)| {
            let root = json!({ "$ref": format!("{V3_REF_PREFIX}{name}") });
            (*key, inline_refs(&root, &definitions, &mut Vec::new()))
        })
        .collect();
    BuiltinSchemas {
        definitions,
        roots,
        pruning,
    }
}

/// The name of a `$ref`ed definition: `{"$ref": ...}` or, with siblings, `{"allOf": [{"$ref": ...}]}`
/// (how Kubernetes' v3 documents, and schemars' OpenAPI settings, describe a field of a named type).
fn referenced_name(schema: &Map<String, Value>) -> Option<&str> {
    let reference = schema.get("$ref").or_else(|| match schema.get("allOf") {
        Some(Value::Array(all_of)) if all_of.len() == 1 => all_of[0].get("$ref"),
        _ => None,
    })?;
    reference.as_str()?.strip_prefix(V3_REF_PREFIX)
}

/// `schema` with every reference replaced by its definition, without descriptions. A type that contains
/// itself (the CRD's `JSONSchemaProps`) keeps whatever it holds below the first repetition.
fn inline_refs(schema: &Value, definitions: &Map<String, Value>, path: &mut Vec<String>) -> Value {
    let Value::Object(object) = schema else {
        return schema.clone();
    };
    if let Some(name) = referenced_name(object) {
        if path.iter().any(|seen| seen == name) {
            return json!({"x-kubernetes-preserve-unknown-fields": true});
        }
        let Some(definition) = definitions.get(name) else {
            return json!({"x-kubernetes-preserve-unknown-fields": true});
        };
        path.push(name.to_string());
        let inlined = inline_refs(definition, definitions, path);
        path.pop();
        return inlined;
    }
    let mut inlined = Map::new();
    for (key, value) in object {
        let value = match key.as_str() {
            "description" | "x-kubernetes-group-version-kind" => continue,
            "properties" => match value {
                Value::Object(properties) => Value::Object(
                    properties
                        .iter()
                        .map(|(field, sub)| (field.clone(), inline_refs(sub, definitions, path)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" | "additionalProperties" => inline_refs(value, definitions, path),
            _ => value.clone(),
        };
        inlined.insert(key.clone(), value);
    }
    Value::Object(inlined)
}

/// The OpenAPI definition name of a built-in kind (`io.k8s.api.apps.v1.Deployment`), if it is one.
pub fn definition_name(resource: &ResourceType) -> Option<&'static str> {
    schemas()
        .roots
        .get(&(resource.group, resource.kind))
        .map(String::as_str)
}

/// The schema of a built-in kind with references inlined, for pruning unknown fields.
pub fn pruning_schema(resource: &ResourceType) -> Option<&'static Value> {
    schemas().pruning.get(&(resource.group, resource.kind))
}

/// The definitions a document must carry for the given built-in kinds: their own and every definition
/// they reach through `$ref`s, with v3 references.
pub fn definitions_for(resources: &[&ResourceType]) -> Map<String, Value> {
    let all = &schemas().definitions;
    let mut wanted: Vec<String> = resources
        .iter()
        .filter_map(|r| definition_name(r))
        .map(str::to_string)
        .collect();
    let mut reached = BTreeSet::new();
    while let Some(name) = wanted.pop() {
        if !reached.insert(name.clone()) {
            continue;
        }
        if let Some(definition) = all.get(&name) {
            collect_refs(definition, &mut wanted);
        }
    }
    reached
        .into_iter()
        .filter_map(|name| all.get(&name).map(|d| (name, d.clone())))
        .collect()
}

fn collect_refs(schema: &Value, into: &mut Vec<String>) {
    match schema {
        Value::Object(object) => {
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => {
                        if let Some(name) = reference.strip_prefix(V3_REF_PREFIX) {
                            into.push(name.to_string());
                        }
                    }
                    _ => collect_refs(value, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, into)),
        _ => {}
    }
}

/// A v3 schema rewritten for Swagger 2.0 documents: `$ref`s point into `#/definitions/`.
pub fn to_swagger_v2(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => (
                        key.clone(),
                        Value::String(reference.replace(V3_REF_PREFIX, "#/definitions/")),
                    ),
                    _ => (key.clone(), to_swagger_v2(value)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(to_swagger_v2).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;

    #[test]
    fn every_built_in_kind_of_the_registry_has_its_kubernetes_schema() {
        for resource in registry::RESOURCE_TYPES {
            if resource.crd_yaml.is_some()
                || !matches!(
                    resource.group,
                    "" | "apps"
                        | "batch"
                        | "storage.k8s.io"
                        | "rbac.authorization.k8s.io"
                        | "authentication.k8s.io"
                        | "authorization.k8s.io"
                        | "apiextensions.k8s.io"
                )
            {
                continue;
            }
            assert!(
                definition_name(resource).is_some(),
                "{} has no built-in schema",
                resource.kind
            );
        }
        assert_eq!(
            definition_name(&registry::DEPLOYMENT),
            Some("io.k8s.api.apps.v1.Deployment")
        );
    }

    #[test]
    fn pod_schema_reaches_containers_and_knows_their_fields() {
        let pod = pruning_schema(&registry::POD).unwrap();
        let container = &pod["properties"]["spec"]["properties"]["containers"]["items"];
        assert_eq!(container["properties"]["image"]["type"], "string");
        assert!(container.get("description").is_none());
        let docs = definitions_for(&[&registry::POD]);
        assert!(docs.contains_key("io.k8s.api.core.v1.Container"));
        assert!(docs.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
        let pod_doc = &docs["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod_doc["x-kubernetes-group-version-kind"][0]["kind"],
            json!("Pod")
        );
        assert_eq!(
            pod_doc["properties"]["spec"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.PodSpec"
        );
    }

    #[test]
    fn self_containing_crd_schema_is_cut_at_the_repetition() {
        let crd = pruning_schema(&registry::CUSTOM_RESOURCE_DEFINITION).unwrap();
        let props = &crd["properties"]["spec"]["properties"]["versions"]["items"]["properties"]["schema"]
            ["properties"]["openAPIV3Schema"];
        assert_eq!(
            props["properties"]["properties"]["additionalProperties"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
    }
}
