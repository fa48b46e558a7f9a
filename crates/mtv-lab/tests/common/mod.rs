//! What the Forklift controller tests share: a store seeded like a small cluster, JSON readers,
//! Secrets, and polling an object until it is ready.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use base64::Engine;
use mtv_lab::registry::{self, ResourceType};
use mtv_lab::store::Store;
use serde_json::{Value, json};

pub const NS: &str = "openshift-mtv";
pub const TARGET: &str = "target";

pub fn b64(v: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(v)
}

pub fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

pub fn cond<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| s(c, "/type") == kind)
}

/// A VM's entry in a Plan's `status.migration.vms`.
pub fn vm_status(plan: &Value, id: &str) -> Value {
    plan["status"]["migration"]["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .cloned()
        .unwrap()
}

/// Seeds a store like a small cluster: the namespaces, two zoned workers, the storage classes, the
/// `default/storage-net` NAD, the ForkliftController (precopy every minute) and the `host` Provider.
pub fn seed_cluster(store: &Store, namespaces: &[&str], storage_classes: &[&str]) {
    for ns in namespaces {
        store
            .create(
                &registry::NAMESPACE,
                None,
                json!({"metadata": {"name": ns}}),
            )
            .unwrap();
    }
    for (i, zone) in ["zone-a", "zone-b"].iter().enumerate() {
        store
            .create(
                &registry::NODE,
                None,
                json!({"metadata": {"name": format!("worker-{i}"), "labels": {"topology.kubernetes.io/zone": zone}}}),
            )
            .unwrap();
    }
    for sc in storage_classes {
        store
            .create(
                &registry::STORAGE_CLASS,
                None,
                json!({"metadata": {"name": sc}, "provisioner": "x"}),
            )
            .unwrap();
    }
    store
        .create(
            &registry::NETWORK_ATTACHMENT_DEFINITION,
            Some("default"),
            json!({"metadata": {"name": "storage-net"}, "spec": {"config": "{}"}}),
        )
        .unwrap();
    store
        .create(
            &registry::FORKLIFT_CONTROLLER,
            Some(NS),
            json!({"metadata": {"name": "forklift-controller"}, "spec": {"controller_precopy_interval": 1}}),
        )
        .unwrap();
    store
        .create(
            &registry::PROVIDER,
            Some(NS),
            json!({"metadata": {"name": "host"}, "spec": {"type": "openshift", "url": "", "secret": {}}}),
        )
        .unwrap();
}

/// A Secret in `NS` with these keys (base64 `data`).
pub fn secret(store: &Store, name: &str, keys: &[(&str, &str)]) {
    let data: serde_json::Map<String, Value> = keys
        .iter()
        .map(|(k, v)| ((*k).to_string(), json!(b64(v))))
        .collect();
    store
        .create(
            &registry::SECRET,
            Some(NS),
            json!({"metadata": {"name": name}, "data": data}),
        )
        .unwrap();
}

/// The lab's vSphere source as a lab file's provider entry: `vsphere` at the URL and with the
/// credentials the tests' Providers and Secrets carry, one host `host-1`, and the given YAML after
/// `networks:`, `datastores:` and `vms:`.
pub fn vsphere_provider(networks: &str, datastores: &str, vms: &str) -> String {
    format!(
        "  - name: vsphere
    type: vsphere
    url: https://vcenter.lab.example/sdk
    username: administrator@vsphere.local
    password: lab-password
    hosts: [{{id: host-1, name: esx1}}]
    networks: {networks}
    datastores: {datastores}
    vms:{vms}
"
    )
}

/// The lab's oVirt source as a lab file's provider entry: one network `net-1`, one storage domain
/// `sd-1` and the VM `ovirt-vm` (one 4 GiB disk, one NIC) in `power_state`, with `vm_extra` (YAML
/// lines of the VM's) appended.
pub fn ovirt_provider(power_state: &str, vm_extra: &str) -> String {
    format!(
        "  - name: ovirt
    type: ovirt
    url: https://engine.lab.example/ovirt-engine/api
    username: admin@internal
    password: lab-password
    networks: [{{id: net-1, name: ovirtmgmt}}]
    datastores: [{{id: sd-1, name: data, capacity_gib: 1000, free_gib: 900}}]
    vms:
      - id: 6b9a-0001
        name: ovirt-vm
        power_state: {power_state}
        memory_mib: 2048
        guest_os: rhel8
        uuid: 6b9a-0001
        disks: [{{key: 1, file: disk-1, datastore: sd-1, capacity_gib: 4, unit_number: 0}}]
        nics: [{{mac: \"56:6f:00:00:00:01\", network: net-1}}]
{vm_extra}"
    )
}

/// A lab file (version 1) of these provider entries, in order.
pub fn lab_file(providers: &[String]) -> String {
    format!("version: 1\nproviders:\n{}", providers.concat())
}

/// Starts the Migration `m` of `plan` (in `NS`) once the Plan is Ready, unless `migrated` says it
/// was started already; the tests that poll a Plan call it on each look.
pub fn migrate_once_ready(store: &Store, plan: &Value, migrated: &mut bool) {
    if *migrated || cond(plan, "Ready").is_none() {
        return;
    }
    let name = plan["metadata"]["name"].as_str().unwrap();
    store
        .create(
            &registry::MIGRATION,
            Some(NS),
            json!({"metadata": {"name": "m"}, "spec": {"plan": {"name": name, "namespace": NS}}}),
        )
        .unwrap();
    *migrated = true;
}

/// A Plan `name` in `NS` from the `source` provider to the host, with the maps `{maps}-net` and
/// `{maps}-st`, into `TARGET`, of `vms`; `extra` overrides or adds spec fields.
pub fn plan_object(name: &str, source: &str, maps: &str, vms: Value, extra: Value) -> Value {
    let mut spec = json!({
        "provider": {"source": {"name": source, "namespace": NS}, "destination": {"name": "host", "namespace": NS}},
        "map": {"network": {"name": format!("{maps}-net"), "namespace": NS}, "storage": {"name": format!("{maps}-st"), "namespace": NS}},
        "targetNamespace": TARGET,
        "vms": vms
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"metadata": {"name": name}, "spec": spec})
}

/// A store the controllers run on, or a test lab around one: its objects can be polled.
#[allow(async_fn_in_trait)] // the tests await it where they call it; no Send bound is needed
pub trait PollsObjects {
    /// The store the controllers read and write.
    fn store(&self) -> &Store;

    /// Polls an object until `ready` holds (short polling; the controllers run on their own), for
    /// 30 s.
    async fn wait(
        &self,
        rt: &'static ResourceType,
        ns: &str,
        name: &str,
        what: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let store = self.store();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(obj) = store.get(rt, Some(ns), name)
                && ready(&obj)
            {
                return obj;
            }
            if Instant::now() > deadline {
                let obj = store.get(rt, Some(ns), name).ok();
                panic!(
                    "timed out waiting for {what} on {ns}/{name}: {}",
                    serde_json::to_string_pretty(&obj).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl PollsObjects for Store {
    fn store(&self) -> &Store {
        self
    }
}

/// A source Provider in `NS` named after its type, from `spec` (its `type`, `url`, any settings)
/// with a Secret of `user` and the lab's password, and the maps `net` (`network` → pod) and `st`
/// (`datastore` → lab-ceph-rbd); returns the provider pair the maps use.
pub fn provider_with_maps(
    store: &Store,
    mut spec: Value,
    user: &str,
    network: &str,
    datastore: &str,
) -> Value {
    let name = spec["type"].as_str().expect("a provider type").to_string();
    secret(
        store,
        &name,
        &[
            ("user", user),
            ("password", "lab-password"),
            ("insecureSkipVerify", "true"),
        ],
    );
    spec["secret"] = json!({"name": name, "namespace": NS});
    store
        .create(
            &registry::PROVIDER,
            Some(NS),
            json!({"metadata": {"name": name}, "spec": spec}),
        )
        .unwrap();
    let pair = json!({"source": {"name": name, "namespace": NS}, "destination": {"name": "host", "namespace": NS}});
    for (map, name, entry) in [
        (
            &registry::NETWORK_MAP,
            "net",
            json!({"source": {"id": network}, "destination": {"type": "pod"}}),
        ),
        (
            &registry::STORAGE_MAP,
            "st",
            json!({"source": {"id": datastore}, "destination": {"storageClass": "lab-ceph-rbd"}}),
        ),
    ] {
        let object =
            json!({"metadata": {"name": name}, "spec": {"provider": pair, "map": [entry]}});
        store.create(map, Some(NS), object).unwrap();
    }
    pair
}

/// An oVirt Provider (`ovirt`, with its Secret) in `NS` and the maps `net` (net-1 → pod) and `st`
/// (sd-1 → lab-ceph-rbd); returns the provider pair the maps use.
pub fn ovirt_provider_with_maps(store: &Store) -> Value {
    provider_with_maps(
        store,
        json!({"type": "ovirt", "url": "https://engine.lab.example/ovirt-engine/api"}),
        "admin@internal",
        "net-1",
        "sd-1",
    )
}
