//! The inventory of `openshift` providers: the lab's own KubeVirt VirtualMachines, NADs, StorageClasses,
//! Namespaces, PVCs, DataVolumes and (cluster) instancetypes, each as `{uid, id, version, namespace, name, selfLink, object}`.

use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{InventoryQuery, KnownProvider, json_response, not_found};
use crate::registry::{self, ResourceType};
use crate::store::{ListOptions, Store};

fn list(store: &Store, rt: &'static ResourceType, namespace: Option<&str>) -> Vec<Value> {
    let namespace = namespace.filter(|ns| !ns.is_empty() && rt.namespaced);
    store
        .list(rt, namespace, &ListOptions::default())
        .map(|l| l.items)
        .unwrap_or_default()
}

fn meta<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer(&format!("/metadata/{key}"))
        .and_then(Value::as_str)
}

/// The inventory resource wrapping one Kubernetes object.
fn resource(provider: &KnownProvider, collection: &str, object: &Value) -> Map<String, Value> {
    let uid = meta(object, "uid").unwrap_or_default();
    let mut map = Map::new();
    map.insert("uid".into(), json!(uid));
    map.insert("id".into(), json!(uid));
    map.insert(
        "version".into(),
        json!(meta(object, "resourceVersion").unwrap_or_default()),
    );
    if let Some(namespace) = meta(object, "namespace") {
        map.insert("namespace".into(), json!(namespace));
    }
    map.insert(
        "name".into(),
        json!(meta(object, "name").unwrap_or_default()),
    );
    map.insert(
        "selfLink".into(),
        json!(format!("{}/{collection}/{uid}", provider.self_link())),
    );
    map
}

/// Counts shown on an `openshift` provider in `/providers`.
pub(super) fn counts(store: &Store) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(
        "vmCount".into(),
        json!(store.count(&registry::VIRTUAL_MACHINE)),
    );
    map.insert(
        "networkCount".into(),
        json!(store.count(&registry::NETWORK_ATTACHMENT_DEFINITION)),
    );
    map.insert(
        "storageClassCount".into(),
        json!(store.count(&registry::STORAGE_CLASS)),
    );
    map.insert(
        "namespaceCount".into(),
        json!(store.count(&registry::NAMESPACE)),
    );
    map
}

pub(super) fn collection(
    store: &Store,
    provider: &KnownProvider,
    collection: &str,
    id: Option<&str>,
    query: &InventoryQuery,
) -> Response {
    let rt: &'static ResourceType = match collection {
        "vms" => &registry::VIRTUAL_MACHINE,
        "namespaces" => &registry::NAMESPACE,
        "networkattachmentdefinitions" => &registry::NETWORK_ATTACHMENT_DEFINITION,
        "storageclasses" => &registry::STORAGE_CLASS,
        "persistentvolumeclaims" => &registry::PERSISTENT_VOLUME_CLAIM,
        "datavolumes" => &registry::DATA_VOLUME,
        "instancetypes" => &registry::VIRTUAL_MACHINE_INSTANCETYPE,
        "clusterinstancetypes" => &registry::VIRTUAL_MACHINE_CLUSTER_INSTANCETYPE,
        _ => return not_found("unknown collection"),
    };
    let full = id.is_some() || query.detail() == super::render::Detail::Full;
    let render = |object: &Value| -> Value {
        let mut map = resource(provider, collection, object);
        if full {
            map.insert("object".into(), object.clone());
            if collection == "vms" {
                let instance = meta(object, "namespace").and_then(|ns| {
                    store
                        .get(
                            &registry::VIRTUAL_MACHINE_INSTANCE,
                            Some(ns),
                            meta(object, "name").unwrap_or_default(),
                        )
                        .ok()
                });
                map.insert("instance".into(), instance.unwrap_or(Value::Null));
            }
        }
        Value::Object(map)
    };
    let objects = list(store, rt, query.namespace.as_deref());
    if let Some(id) = id {
        // Ids are uids; `namespace/name` is accepted too.
        let found = objects.iter().find(|o| {
            meta(o, "uid") == Some(id)
                || id.split_once('/').is_some_and(|(ns, name)| {
                    meta(o, "namespace") == Some(ns) && meta(o, "name") == Some(name)
                })
        });
        return match found {
            Some(object) => json_response(render(object)),
            None => not_found("not found"),
        };
    }
    // OCP's `name=` is a field selector on metadata.name.
    let items: Vec<Value> = objects
        .iter()
        .filter(|o| {
            query
                .name
                .as_deref()
                .is_none_or(|n| meta(o, "name") == Some(n))
        })
        .map(render)
        .collect();
    json_response(Value::Array(query.page(items)))
}
