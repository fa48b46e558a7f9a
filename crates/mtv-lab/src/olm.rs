//! The MTV operator's ClusterServiceVersion as OLM shows it: what operators and must-gather tools read,
//! namely `spec.install` (the `deployment` strategy with the forklift-operator Deployment, whose
//! `RELATED_IMAGE_*` variables name every component image, and the operator's permissions) and
//! `spec.relatedImages`.

use serde_json::{Value, json};

/// The registry path of the MTV images.
const REGISTRY: &str = "registry.redhat.io/migration-toolkit-virtualization";

/// The component images the operator deploys: (`RELATED_IMAGE_` suffix, image name).
const COMPONENTS: &[(&str, &str)] = &[
    ("CONTROLLER", "mtv-controller-rhel9"),
    ("API", "mtv-api-rhel9"),
    ("VALIDATION", "mtv-validation-rhel9"),
    ("UI_PLUGIN", "mtv-console-plugin-rhel9"),
    ("MUST_GATHER", "mtv-must-gather-rhel8"),
    ("VIRT_V2V", "mtv-virt-v2v-rhel9"),
    ("POPULATOR_CONTROLLER", "mtv-populator-controller-rhel9"),
    ("OVIRT_POPULATOR", "mtv-rhv-populator-rhel8"),
    ("OPENSTACK_POPULATOR", "mtv-openstack-populator-rhel9"),
    ("OVA_PROVIDER_SERVER", "mtv-ova-provider-server-rhel9"),
    (
        "VSPHERE_XCOPY_VOLUME_POPULATOR",
        "mtv-vsphere-xcopy-volume-populator-rhel9",
    ),
];

fn image(name: &str, version: &str) -> String {
    format!("{REGISTRY}/{name}:{version}")
}

/// The CSV `spec` of MTV `version`.
pub fn mtv_csv_spec(version: &str) -> Value {
    let operator_image = image("mtv-rhel9-operator", version);
    let env: Vec<Value> = COMPONENTS
        .iter()
        .map(|(key, name)| json!({"name": format!("RELATED_IMAGE_{key}"), "value": image(name, version)}))
        .chain([
            json!({"name": "WATCH_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['olm.targetNamespaces']"}}}),
        ])
        .collect();
    let mut related: Vec<Value> = COMPONENTS
        .iter()
        .map(|(key, name)| json!({"name": key.to_ascii_lowercase(), "image": image(name, version)}))
        .collect();
    related.insert(
        0,
        json!({"name": "forklift-operator", "image": operator_image}),
    );
    let deployment = json!({
        "name": "forklift-operator",
        "label": {"app": "forklift", "name": "forklift-operator"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "forklift", "name": "forklift-operator"}},
            "strategy": {},
            "template": {
                "metadata": {"labels": {"app": "forklift", "name": "forklift-operator"}},
                "spec": {
                    "serviceAccountName": "forklift-operator",
                    "containers": [{"name": "forklift-operator", "image": operator_image, "imagePullPolicy": "Always", "env": env,
                                    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "150Mi"}}}],
                },
            },
        },
    });
    let rules =
        |groups: &[&str]| json!([{"apiGroups": groups, "resources": ["*"], "verbs": ["*"]}]);
    json!({
        "displayName": "Migration Toolkit for Virtualization Operator",
        "version": version,
        "provider": {"name": "Red Hat"},
        "maturity": "stable",
        "minKubeVersion": "1.27.0",
        "installModes": [
            {"type": "OwnNamespace", "supported": true}, {"type": "SingleNamespace", "supported": true},
            {"type": "MultiNamespace", "supported": false}, {"type": "AllNamespaces", "supported": false}
        ],
        "install": {
            "strategy": "deployment",
            "spec": {
                "deployments": [deployment],
                "permissions": [{"serviceAccountName": "forklift-operator", "rules": rules(&["", "apps", "forklift.konveyor.io"])}],
                "clusterPermissions": [{"serviceAccountName": "forklift-operator",
                                        "rules": rules(&["", "kubevirt.io", "cdi.kubevirt.io", "k8s.cni.cncf.io", "storage.k8s.io", "forklift.konveyor.io"])}],
            },
        },
        "relatedImages": related,
        "customresourcedefinitions": {"owned": [
            {"name": "forkliftcontrollers.forklift.konveyor.io", "kind": "ForkliftController", "version": "v1beta1"},
            {"name": "providers.forklift.konveyor.io", "kind": "Provider", "version": "v1beta1"},
            {"name": "plans.forklift.konveyor.io", "kind": "Plan", "version": "v1beta1"},
            {"name": "migrations.forklift.konveyor.io", "kind": "Migration", "version": "v1beta1"},
            {"name": "networkmaps.forklift.konveyor.io", "kind": "NetworkMap", "version": "v1beta1"},
            {"name": "storagemaps.forklift.konveyor.io", "kind": "StorageMap", "version": "v1beta1"},
            {"name": "hooks.forklift.konveyor.io", "kind": "Hook", "version": "v1beta1"},
            {"name": "hosts.forklift.konveyor.io", "kind": "Host", "version": "v1beta1"}
        ]},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_install_strategy_names_every_related_image() {
        let spec = mtv_csv_spec("2.10.0");
        assert_eq!(spec["install"]["strategy"], "deployment");
        let container =
            &spec["install"]["spec"]["deployments"][0]["spec"]["template"]["spec"]["containers"][0];
        let env: Vec<&str> = container["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["value"].as_str())
            .collect();
        for related in spec["relatedImages"].as_array().unwrap() {
            let image = related["image"].as_str().unwrap();
            assert!(image.ends_with(":2.10.0"), "{image}");
            assert!(
                env.contains(&image) || container["image"] == image,
                "{image} is not deployed"
            );
        }
        assert!(env.iter().any(|i| i.contains("must-gather")));
    }
}
