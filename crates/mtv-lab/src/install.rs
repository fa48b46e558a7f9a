//! Objects a real cluster with MTV installed has and the lab's API server would otherwise lack: a
//! CustomResourceDefinition for every custom resource kind the lab serves (Forklift's from the embedded
//! CRDs with their real schemas, the others — KubeVirt, CDI, Multus, OLM — with their names and an open
//! schema), and the Forklift Deployments in the MTV namespace that own the lab's Forklift pods' roles.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::registry::{self, ResourceType};
use crate::rules;
use crate::store::Store;

/// The CustomResourceDefinition object of a custom resource kind the lab serves.
pub fn crd_object(rt: &ResourceType) -> Value {
    let name = format!("{}.{}", rt.plural, rt.group);
    let embedded: Option<Value> = rt
        .crd_yaml
        .and_then(|yaml| serde_saphyr::from_str::<Value>(yaml).ok());
    let (names, versions) = match &embedded {
        Some(doc) => (
            doc["spec"]["names"].clone(),
            doc["spec"]["versions"].clone(),
        ),
        None => {
            let mut names = json!({
                "plural": rt.plural, "singular": rt.singular, "kind": rt.kind,
                "listKind": format!("{}List", rt.kind),
            });
            if !rt.short_names.is_empty() {
                names["shortNames"] = json!(rt.short_names);
            }
            if !rt.categories.is_empty() {
                names["categories"] = json!(rt.categories);
            }
            let mut version = json!({
                "name": rt.version, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            });
            if rt.status_subresource {
                version["subresources"] = json!({"status": {}});
            }
            (names, json!([version]))
        }
    };
    let scope = if rt.namespaced {
        "Namespaced"
    } else {
        "Cluster"
    };
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {"group": rt.group, "names": names, "scope": scope, "versions": versions,
                 "conversion": {"strategy": "None"}},
    })
}

/// The status the apiextensions server gives an accepted CRD.
fn crd_status(crd: &Value) -> Value {
    let now = crate::clock::now_rfc3339();
    let stored: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"] == true)
        .map(|v| v["name"].clone())
        .collect();
    json!({
        "acceptedNames": crd["spec"]["names"],
        "storedVersions": stored,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    })
}

/// A Deployment of one replica, available, whose pod template has these containers.
fn deployment(name: &str, containers: &[&str], image: &str) -> (Value, Value) {
    let labels = json!({"app": "forklift", "service": name});
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| json!({"name": c, "image": image}))
        .collect();
    let object = json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers, "serviceAccountName": "forklift-controller"}},
        },
    });
    let now = crate::clock::now_rfc3339();
    let status = json!({
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
             "message": "Deployment has minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": format!("ReplicaSet \"{name}\" has successfully progressed."), "lastUpdateTime": now, "lastTransitionTime": now},
        ],
    });
    (object, status)
}

/// Seeds the CRDs of every served custom resource kind and, with the simulated Forklift, its
/// Deployments (`forklift-controller` with the controller and inventory containers, `forklift-api`),
/// named like the lab's running Forklift pods.
pub fn seed(store: &Store, mtv_namespace: &str, mtv_version: &str) -> Result<(), ApiError> {
    for rt in registry::RESOURCE_TYPES {
        if !rules::is_custom_resource(rt) {
            continue;
        }
        let crd = crd_object(rt);
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let status = crd_status(&crd);
        store.create(&registry::CUSTOM_RESOURCE_DEFINITION, None, crd)?;
        store.update_status(&registry::CUSTOM_RESOURCE_DEFINITION, None, &name, status)?;
    }
    for (name, containers) in [
        ("forklift-controller", &["main", "inventory"][..]),
        ("forklift-api", &["main"][..]),
    ] {
        let image =
            format!("registry.redhat.io/migration-toolkit-virtualization/{name}:{mtv_version}");
        let (object, status) = deployment(name, containers, &image);
        store.create(&registry::DEPLOYMENT, Some(mtv_namespace), object)?;
        store.update_status(&registry::DEPLOYMENT, Some(mtv_namespace), name, status)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forklift_crds_carry_their_real_schema_and_others_an_open_one() {
        let plan = crd_object(&registry::PLAN);
        assert_eq!(plan["metadata"]["name"], "plans.forklift.konveyor.io");
        assert_eq!(plan["spec"]["scope"], "Namespaced");
        let schema = &plan["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert!(schema["properties"]["spec"]["properties"]["vms"].is_object());
        let vm = crd_object(&registry::VIRTUAL_MACHINE);
        assert_eq!(vm["metadata"]["name"], "virtualmachines.kubevirt.io");
        assert_eq!(vm["spec"]["names"]["shortNames"], json!(["vm", "vms"]));
        assert_eq!(
            vm["spec"]["versions"][0]["subresources"],
            json!({"status": {}})
        );
    }
}
