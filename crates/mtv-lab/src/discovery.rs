//! Discovery documents: `/version`, `/api`, `/apis`, per group-version `APIResourceList`s, the aggregated
//! discovery (`apidiscovery.k8s.io/v2`) recent clients ask for, and OpenAPI v3 documents that tell kubectl
//! the server validates fields itself (`fieldValidation`), so `kubectl apply` needs no client-side schema.

use serde_json::{Map, Value, json};

use crate::builtin_schemas;
use crate::registry::{self, ResourceType, STATUS_VERBS};

/// The Kubernetes version the lab reports.
pub const KUBE_MINOR: &str = "33";

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "emulationMajor": "1",
        "emulationMinor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0-mtv-lab"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}

/// `/api` (legacy form).
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for (g, v) in registry::group_versions() {
        if g.is_empty() {
            continue;
        }
        match out.iter_mut().find(|(name, _)| *name == g) {
            Some((_, versions)) => versions.push(v),
            None => out.push((g, vec![v])),
        }
    }
    out
}

fn api_group(name: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs[0]})
}

/// The groups of legacy discovery: the served kinds' groups, then KubeVirt's subresource group (an
/// aggregated API on a real cluster, with subresources and no kinds, so not in aggregated discovery).
fn legacy_groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out = groups();
    out.push((
        crate::kubevirt::subresources::GROUP,
        vec![crate::kubevirt::subresources::VERSION],
    ));
    out
}

/// `/apis` (legacy form).
pub fn api_group_list() -> Value {
    json!({
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": legacy_groups().iter().map(|(g, vs)| api_group(g, vs)).collect::<Vec<_>>(),
    })
}

/// `/apis/<group>`.
pub fn api_group_doc(group: &str) -> Option<Value> {
    legacy_groups()
        .into_iter()
        .find(|(g, _)| *g == group)
        .map(|(g, vs)| {
            let mut doc = api_group(g, &vs);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        })
}

fn resources_of(group: &str, version: &str) -> Vec<&'static ResourceType> {
    registry::RESOURCE_TYPES
        .iter()
        .copied()
        .filter(|r| r.group == group && r.version == version)
        .collect()
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    if group == crate::kubevirt::subresources::GROUP
        && version == crate::kubevirt::subresources::VERSION
    {
        return Some(crate::kubevirt::subresources::api_resource_list());
    }
    let rts = resources_of(group, version);
    if rts.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in rts {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        add_names(&mut entry, r);
        resources.push(entry);
        if std::ptr::eq(r, &registry::POD) {
            resources.push(json!({
                "name": "pods/log",
                "singularName": "",
                "namespaced": true,
                "kind": "Pod",
                "verbs": ["get"],
            }));
        }
        if r.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": STATUS_VERBS,
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// A type's short names and categories on its discovery entry, where it has some (the apiserver
/// leaves the fields out otherwise).
fn add_names(entry: &mut Value, r: &ResourceType) {
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
}

/// The media type of aggregated discovery responses.
pub const AGGREGATED_DISCOVERY_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn discovery_group(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = resources_of(group, v)
                .into_iter()
                .map(|r| {
                    let kind = json!({"group": r.group, "version": r.version, "kind": r.kind});
                    let mut entry = json!({
                        "resource": r.plural,
                        "responseKind": kind,
                        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": r.singular,
                        "verbs": r.verbs,
                    });
                    add_names(&mut entry, r);
                    let mut subresources = Vec::new();
                    if r.status_subresource {
                        subresources.push(json!({
                            "subresource": "status",
                            "responseKind": kind,
                            "verbs": STATUS_VERBS,
                        }));
                    }
                    if std::ptr::eq(r, &registry::POD) {
                        subresources.push(json!({
                            "subresource": "log",
                            "responseKind": {"group": "", "version": "v1", "kind": "Pod"},
                            "verbs": ["get"],
                        }));
                    }
                    if !subresources.is_empty() {
                        entry["subresources"] = Value::Array(subresources);
                    }
                    entry
                })
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let mut metadata = Map::new();
    if !group.is_empty() {
        metadata.insert("name".into(), json!(group));
    }
    json!({"metadata": metadata, "versions": versions})
}

/// Aggregated discovery for `/api` (core) or `/apis` (named groups).
pub fn aggregated(core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![discovery_group("", &["v1"])]
    } else {
        groups()
            .iter()
            .map(|(g, vs)| discovery_group(g, vs))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: the index of group-version documents.
pub fn openapi_v3_index() -> Value {
    let mut paths = Map::new();
    for (g, v) in registry::group_versions() {
        let p = gv_path(g, v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", spec_hash(g, v))}),
        );
    }
    json!({"paths": paths})
}

fn spec_hash(group: &str, version: &str) -> String {
    // Stable per build: the documents only change with the registry.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{group}/{version}/{}", env!("CARGO_PKG_VERSION")).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// The definition name of a kind in OpenAPI documents, e.g. `io.konveyor.forklift.v1beta1.Plan`, or
/// Kubernetes' own name for a built-in kind (`io.k8s.api.apps.v1.Deployment`).
pub fn definition_name(r: &ResourceType) -> String {
    if let Some(name) = builtin_schemas::definition_name(r) {
        return name.to_string();
    }
    if r.group.is_empty() {
        return format!("io.k8s.api.core.{}.{}", r.version, r.kind);
    }
    let reversed: Vec<&str> = r.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), r.version, r.kind)
}

fn query_param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
pub fn openapi_v3_group_version(group: &str, version: &str) -> Option<Value> {
    let rts = resources_of(group, version);
    if rts.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for r in rts.iter().copied() {
        let def = definition_name(r);
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let reference = json!({"$ref": format!("#/components/schemas/{def}")});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
        let write_params = vec![
            query_param("dryRun"),
            query_param("fieldManager"),
            query_param("fieldValidation"),
        ];
        let mut patch_params = write_params.clone();
        patch_params.push(query_param("force"));
        let mut patch_types = Map::new();
        for t in [
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ] {
            patch_types.insert(t.into(), json!({"schema": {"type": "object"}}));
        }
        let item = json!({
            "get": {"operationId": format!("read{}", r.kind), "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk, "responses": ok},
            "put": {"operationId": format!("replace{}", r.kind), "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk,
                    "parameters": write_params, "requestBody": {"content": {"application/json": {"schema": reference}}}, "responses": ok},
            "patch": {"operationId": format!("patch{}", r.kind), "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk,
                      "parameters": patch_params, "requestBody": {"content": patch_types}, "responses": ok},
            "delete": {"operationId": format!("delete{}", r.kind), "x-kubernetes-action": "delete", "x-kubernetes-group-version-kind": gvk, "responses": ok},
        });
        let collection = json!({
            "get": {"operationId": format!("list{}", r.kind), "x-kubernetes-action": "list", "x-kubernetes-group-version-kind": gvk, "responses": ok},
            "post": {"operationId": format!("create{}", r.kind), "x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk,
                     "parameters": write_params, "requestBody": {"content": {"application/json": {"schema": reference}}}, "responses": ok},
        });
        let base = if r.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}",
                gv_path(group, version),
                r.plural
            )
        } else {
            format!("/{}/{}", gv_path(group, version), r.plural)
        };
        paths.insert(format!("{base}/{{name}}"), item);
        paths.insert(base, collection);
        if builtin_schemas::definition_name(r).is_some() {
            continue;
        }
        let mut schema = match r.crd() {
            Some(crd) => crd.schema.clone(),
            None => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        };
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        schemas.insert(def, schema);
    }
    // Built-in kinds: Kubernetes' own schemas and every definition they reach (ObjectMeta, PodSpec, ...).
    schemas.extend(builtin_schemas::definitions_for(&rts));
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (mtv-lab)", "version": format!("v1.{KUBE_MINOR}.0")},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// `/openapi/v2` (Swagger 2.0, JSON only): the definitions of every served kind, with their
/// `x-kubernetes-group-version-kind`, for clients that still read v2 (the schemas are the v3 ones, which
/// the structural CRD schemas keep compatible).
pub fn openapi_v2() -> Value {
    let mut definitions = Map::new();
    for (g, v) in registry::group_versions() {
        if let Some(doc) = openapi_v3_group_version(g, v)
            && let Some(Value::Object(schemas)) = doc.pointer("/components/schemas")
        {
            for (name, schema) in schemas {
                definitions.insert(name.clone(), builtin_schemas::to_swagger_v2(schema));
            }
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes (mtv-lab)", "version": format!("v1.{KUBE_MINOR}.0")},
        "paths": {},
        "definitions": definitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_lists_carry_verbs_short_names_and_status() {
        let core = api_resource_list("", "v1").unwrap();
        let ns = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "namespaces")
            .unwrap();
        assert_eq!(ns["shortNames"], json!(["ns"]));
        assert_eq!(ns["namespaced"], false);
        let forklift = api_resource_list("forklift.konveyor.io", "v1beta1").unwrap();
        let names: Vec<&str> = forklift["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"plans") && names.contains(&"plans/status"));
        assert!(api_resource_list("nope", "v1").is_none());
    }

    #[test]
    fn aggregated_discovery_lists_every_group() {
        let apis = aggregated(false);
        let groups: Vec<&str> = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["metadata"]["name"].as_str().unwrap())
            .collect();
        for g in [
            "forklift.konveyor.io",
            "kubevirt.io",
            "cdi.kubevirt.io",
            "k8s.cni.cncf.io",
            "operators.coreos.com",
            "storage.k8s.io",
            "batch",
        ] {
            assert!(groups.contains(&g), "{g}");
        }
        assert_eq!(aggregated(true)["items"][0]["versions"][0]["version"], "v1");
    }

    #[test]
    fn openapi_v3_advertises_field_validation() {
        let doc = openapi_v3_group_version("forklift.konveyor.io", "v1beta1").unwrap();
        let op = &doc["paths"]["/apis/forklift.konveyor.io/v1beta1/namespaces/{namespace}/plans/{name}"]
            ["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "Plan");
        assert!(
            op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(
            doc["components"]["schemas"]["io.konveyor.forklift.v1beta1.Plan"]["properties"]["spec"]
                .is_object()
        );
        assert!(
            openapi_v3_index()["paths"]["apis/forklift.konveyor.io/v1beta1"]["serverRelativeURL"]
                .is_string()
        );
    }
}
