//! The simulated Forklift control plane, in process: a Store, a small source lab, `spawn_forklift` at high
//! speed, and the objects a suite observes (conditions, pipelines, target objects) awaited through the store.

use std::time::{Duration, Instant};

use mtv_lab::faults::FaultSpec;
use mtv_lab::forklift::{ForkliftHandle, ForkliftOptions, spawn_forklift};
use mtv_lab::registry::{self, ResourceType};
use mtv_lab::selector::LabelSelector;
use mtv_lab::source::{PowerState, SourceLab};
use mtv_lab::store::{ListOptions, Store};
use serde_json::{Value, json};

mod common;

use common::{NS, PollsObjects, TARGET, b64, cond, s, vm_status};

/// The vSphere source's VMs: a running RHEL with CBT and an agent, a stopped Windows, one with a
/// disk on an XCOPY datastore, one with a snapshot and a critical concern.
const VSPHERE_VMS: &str = r#"
      - id: vm-1
        name: rhel8
        power_state: on
        host: host-1
        memory_mib: 2048
        guest_os: rhel8_64Guest
        uuid: 4201-aaaa
        cbt: true
        guest_agent: true
        disks: [{key: 2000, file: "[ds1] rhel8/rhel8.vmdk", datastore: datastore-1, capacity_gib: 30, unit_number: 0}]
        nics:
          - {mac: "00:50:56:00:00:01", network: network-1, ips: [{ip: 192.168.10.5, prefix: 24, static: true}]}
          - {mac: "00:50:56:00:00:02", network: network-2, start_connected: false}
      - id: vm-2
        name: win2019
        power_state: off
        host: host-1
        memory_mib: 4096
        guest_os: windows2019srv_64Guest
        uuid: 4201-bbbb
        cbt: true
        disks:
          - {key: 2000, file: "[ds1] win2019/win2019.vmdk", datastore: datastore-1, capacity_gib: 40, unit_number: 0}
          - {key: 2001, file: "[ds1] win2019/win2019_1.vmdk", datastore: datastore-1, capacity_gib: 10, unit_number: 1}
        nics: [{mac: "00:50:56:00:00:03", network: network-1}]
      - id: vm-3
        name: XCopy_Test_VM_CAPS
        power_state: off
        host: host-1
        memory_mib: 2048
        guest_os: rhel9_64Guest
        uuid: 4201-cccc
        disks:
          - {key: 2000, file: "[xcopy-ds] xcopy/xcopy.vmdk", datastore: datastore-2, capacity_gib: 20, unit_number: 0}
          - {key: 2001, file: "[ds1] xcopy/xcopy_1.vmdk", datastore: datastore-1, capacity_gib: 10, unit_number: 1}
        nics: [{mac: "00:50:56:00:00:04", network: network-1}]
      - id: vm-4
        name: snappy
        power_state: on
        tools: not_running
        host: host-1
        memory_mib: 2048
        guest_os: rhel8_64Guest
        uuid: 4201-dddd
        snapshots: [{id: snap-1, name: before, created: "2026-01-01T00:00:00Z"}]
        concerns: [{id: c1, label: Unsupported disk, category: Critical, assessment: nope}]
        disks: [{key: 2000, file: "[ds1] snappy/snappy.vmdk", datastore: datastore-1, capacity_gib: 10, unit_number: 0}]
        nics: [{mac: "00:50:56:00:00:05", network: network-1}]
"#;

/// The oVirt, OpenStack and OVA sources beside the vSphere one.
const OTHER_PROVIDERS: &str = r#"  - name: ovirt
    type: ovirt
    url: https://engine.lab.example/ovirt-engine/api
    username: admin@internal
    password: lab-password
    networks: [{id: net-ovirt, name: ovirtmgmt}]
    datastores: [{id: sd-1, name: data, capacity_gib: 1000, free_gib: 900}]
    vms:
      - id: 6b9a-0001
        name: ovirt-vm
        power_state: on
        memory_mib: 2048
        guest_os: rhel8
        uuid: 6b9a-0001
        disks: [{key: 1, file: disk-6b9a-1, datastore: sd-1, capacity_gib: 20, unit_number: 0}]
        nics: [{mac: "56:6f:00:00:00:01", network: net-ovirt}]
  - name: openstack
    type: openstack
    url: https://keystone.lab.example:5000/v3
    username: admin
    password: lab-password
    networks: [{id: net-os, name: private}]
    datastores: [{id: vt-1, name: ceph, capacity_gib: 1000, free_gib: 900}]
    vms:
      - id: 0f0f-0001
        name: os-vm
        power_state: on
        memory_mib: 2048
        guest_os: rhel8
        uuid: 0f0f-0001
        disks: [{key: 1, file: vol-0001, datastore: vt-1, capacity_gib: 10, unit_number: 0}]
        nics: [{mac: "fa:16:3e:00:00:01", network: net-os}]
  - name: ova
    type: ova
    url: nfs.lab.example:/exports/ova
    networks: [{id: net-ova, name: VM Network}]
    datastores: [{id: ova-store, name: ova-store, capacity_gib: 1000, free_gib: 900}]
    vms:
      - id: ova-0001
        name: ova-vm
        power_state: off
        memory_mib: 1024
        guest_os: rhel8
        uuid: ova-0001
        disks: [{key: 1, file: ova-vm-disk1.vmdk, datastore: ova-store, capacity_gib: 8, unit_number: 0}]
        nics: [{mac: "00:50:56:00:01:01", network: net-ova}]
"#;

/// The lab file: the vSphere source with two networks and two datastores (one XCOPY), and the others.
fn lab_file() -> String {
    common::lab_file(&[
        common::vsphere_provider(
            "[{id: network-1, name: VM Network}, {id: network-2, name: Storage Net}]",
            r#"
      - {id: datastore-1, name: ds1, capacity_gib: 1000, free_gib: 800}
      - {id: datastore-2, name: xcopy-ds, capacity_gib: 1000, free_gib: 800, xcopy: true}"#,
            VSPHERE_VMS,
        ),
        OTHER_PROVIDERS.to_string(),
    ])
}

struct Lab {
    store: Store,
    source: SourceLab,
    handle: Option<ForkliftHandle>,
}

fn step<'a>(vm: &'a Value, name: &str) -> &'a Value {
    vm["pipeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {}", vm["pipeline"]))
}

fn step_names(vm: &Value) -> Vec<String> {
    vm["pipeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["name"].as_str().unwrap().to_string())
        .collect()
}

impl PollsObjects for Lab {
    fn store(&self) -> &Store {
        &self.store
    }
}

impl Lab {
    async fn start(speed: f64, faults: &str) -> Lab {
        Self::start_with(speed, faults, |_| {}).await
    }

    async fn start_with(speed: f64, faults: &str, tune: impl FnOnce(&mut ForkliftOptions)) -> Lab {
        let store = Store::default();
        common::seed_cluster(
            &store,
            &["default", NS, "source-ns"],
            &["lab-ceph-rbd", "lab-nfs", "san-sc"],
        );
        let source = SourceLab::parse("lab.yaml", &lab_file()).unwrap();
        let mut options = ForkliftOptions::new(speed, FaultSpec::parse(faults).unwrap(), NS);
        tune(&mut options);
        let handle = spawn_forklift(store.clone(), source.clone(), options);
        Lab {
            store,
            source,
            handle: Some(handle),
        }
    }

    async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }

    fn create(&self, rt: &'static ResourceType, ns: &str, obj: Value) -> Value {
        self.store.create(rt, Some(ns), obj).unwrap()
    }

    fn get(&self, rt: &'static ResourceType, ns: &str, name: &str) -> Value {
        self.store.get(rt, Some(ns), name).unwrap()
    }

    fn list(&self, rt: &'static ResourceType, ns: &str, labels: &str) -> Vec<Value> {
        let opts = ListOptions {
            label_selector: LabelSelector::parse(labels).unwrap(),
            ..ListOptions::default()
        };
        self.store.list(rt, Some(ns), &opts).unwrap().items
    }

    fn secret(&self, name: &str, keys: &[(&str, &str)]) {
        common::secret(&self.store, name, keys);
    }

    /// A provider with a good secret for the lab source of that type.
    fn provider(&self, name: &str, kind: &str, settings: Value) {
        let (url, keys): (&str, Vec<(&str, &str)>) = match kind {
            "vsphere" => (
                "https://vcenter.lab.example/sdk",
                vec![
                    ("user", "administrator@vsphere.local"),
                    ("password", "lab-password"),
                    ("insecureSkipVerify", "true"),
                ],
            ),
            "ovirt" => (
                "https://engine.lab.example/ovirt-engine/api",
                vec![
                    ("user", "admin@internal"),
                    ("password", "lab-password"),
                    ("insecureSkipVerify", "true"),
                ],
            ),
            "openstack" => (
                "https://keystone.lab.example:5000/v3",
                vec![("username", "admin"), ("password", "lab-password")],
            ),
            "ova" => (
                "nfs.lab.example:/exports/ova",
                vec![("url", "nfs.lab.example:/exports/ova")],
            ),
            _ => panic!("{kind}"),
        };
        self.secret(&format!("{name}-secret"), &keys);
        self.create(
            &registry::PROVIDER,
            NS,
            json!({"metadata": {"name": name}, "spec": {"type": kind, "url": url, "secret": {"name": format!("{name}-secret"), "namespace": NS}, "settings": settings}}),
        );
    }

    fn maps(&self, name: &str, source: &str, networks: Value, storages: Value) {
        self.create(
            &registry::NETWORK_MAP,
            NS,
            json!({"metadata": {"name": format!("{name}-net")}, "spec": {
                "provider": {"source": {"name": source, "namespace": NS}, "destination": {"name": "host", "namespace": NS}},
                "map": networks}}),
        );
        self.create(
            &registry::STORAGE_MAP,
            NS,
            json!({"metadata": {"name": format!("{name}-st")}, "spec": {
                "provider": {"source": {"name": source, "namespace": NS}, "destination": {"name": "host", "namespace": NS}},
                "map": storages}}),
        );
    }

    fn plan(&self, name: &str, source: &str, maps: &str, extra: Value) -> Value {
        self.create(
            &registry::PLAN,
            NS,
            common::plan_object(name, source, maps, json!([]), extra),
        )
    }

    fn migrate(&self, name: &str, plan: &str, extra: Value) -> Value {
        let mut spec = json!({"plan": {"name": plan, "namespace": NS}});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        self.create(
            &registry::MIGRATION,
            NS,
            json!({"metadata": {"name": name}, "spec": spec}),
        )
    }

    async fn wait_condition(&self, rt: &'static ResourceType, name: &str, kind: &str) -> Value {
        self.wait(rt, NS, name, kind, |o| cond(o, kind).is_some())
            .await
    }

    /// Creates a plan and waits until it is Ready.
    async fn ready_plan(&self, name: &str, source: &str, maps: &str, extra: Value) -> Value {
        self.plan(name, source, maps, extra);
        self.wait_condition(&registry::PLAN, name, "Ready").await
    }

    /// Waits for the plan to finish, and checks that it Succeeded.
    async fn succeeded(&self, plan: &str) -> Value {
        let p = self.finished(plan).await;
        assert!(cond(&p, "Succeeded").is_some(), "{}", p["status"]);
        p
    }

    /// Runs a plan once it is Ready (its Migration is `<plan>-1`); the plan when it has finished.
    async fn run_plan(&self, plan: &str) -> Value {
        self.wait_condition(&registry::PLAN, plan, "Ready").await;
        self.migrate(&format!("{plan}-1"), plan, json!({}));
        self.finished(plan).await
    }

    /// Waits for the plan to finish (Succeeded, Failed or Canceled).
    async fn finished(&self, plan: &str) -> Value {
        self.wait(&registry::PLAN, NS, plan, "a terminal condition", |o| {
            ["Succeeded", "Failed", "Canceled"]
                .iter()
                .any(|k| cond(o, k).is_some())
        })
        .await
    }
}

/// The `vsphere` Provider with a VDDK init image, and the `vs` maps.
fn vsphere_with_vddk(lab: &Lab) {
    lab.provider(
        "vsphere",
        "vsphere",
        json!({"vddkInitImage": "quay.io/lab/vddk:8"}),
    );
    vsphere_maps(lab);
}

/// The `ov` maps: the oVirt network to the pod network, its storage domain to `lab-nfs`.
fn ovirt_maps(lab: &Lab) {
    lab.maps(
        "ov",
        "ovirt",
        json!([{"source": {"id": "net-ovirt"}, "destination": {"type": "pod"}}]),
        json!([{"source": {"id": "sd-1"}, "destination": {"storageClass": "lab-nfs"}}]),
    );
}

fn vsphere_maps(lab: &Lab) {
    lab.maps(
        "vs",
        "vsphere",
        json!([
            {"source": {"id": "network-1"}, "destination": {"type": "pod"}},
            {"source": {"name": "Storage Net"}, "destination": {"type": "multus", "namespace": "default", "name": "storage-net"}}
        ]),
        json!([
            {"source": {"id": "datastore-1"}, "destination": {"storageClass": "lab-ceph-rbd"}},
            {"source": {"name": "xcopy-ds"}, "destination": {"storageClass": "san-sc"}}
        ]),
    );
}

// ---------------------------------------------------------------------------------------------------
// Providers

#[tokio::test]
async fn providers_become_ready_with_the_usual_conditions() {
    let lab = Lab::start(50.0, "").await;
    lab.provider(
        "vsphere",
        "vsphere",
        json!({"vddkInitImage": "quay.io/lab/vddk:8"}),
    );
    let p = lab
        .wait_condition(&registry::PROVIDER, "vsphere", "Ready")
        .await;
    assert_eq!(p["status"]["phase"], "Ready");
    let kinds: Vec<&str> = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ConnectionInsecure",
            "ConnectionTestSucceeded",
            "InventoryCreated",
            "Validated",
            "Ready"
        ]
    );
    assert_eq!(cond(&p, "ConnectionInsecure").unwrap()["category"], "Warn");
    assert_eq!(
        cond(&p, "ConnectionTestSucceeded").unwrap()["message"],
        "Connection test, succeeded."
    );
    assert_eq!(cond(&p, "InventoryCreated").unwrap()["reason"], "Completed");
    assert_eq!(p["status"]["fingerprint"].as_str().unwrap().len(), 59);
    assert_eq!(p["status"]["observedGeneration"], 1);
    let host = lab
        .wait_condition(&registry::PROVIDER, "host", "Ready")
        .await;
    assert_eq!(host["status"]["phase"], "Ready");
    lab.stop().await;
}

#[tokio::test]
async fn provider_failures_read_like_forklift() {
    let lab = Lab::start(50.0, "provider-conn-fail=faulty").await;
    // Wrong password: ConnectionAuthFailed, not retried.
    lab.secret(
        "bad",
        &[
            ("user", "administrator@vsphere.local"),
            ("password", "wrong"),
            ("insecureSkipVerify", "true"),
        ],
    );
    lab.create(&registry::PROVIDER, NS, json!({"metadata": {"name": "badauth"}, "spec": {"type": "vsphere", "url": "https://vcenter.lab.example/sdk", "secret": {"name": "bad", "namespace": NS}}}));
    let p = lab
        .wait_condition(&registry::PROVIDER, "badauth", "ConnectionAuthFailed")
        .await;
    assert_eq!(p["status"]["phase"], "ConnectionFailed");
    let c = cond(&p, "ConnectionAuthFailed").unwrap();
    assert_eq!(c["category"], "Critical");
    assert_eq!(c["reason"], "Tested");
    assert!(c["message"].as_str().unwrap().contains("401"), "{c}");
    assert!(cond(&p, "Ready").is_none());
    // Fixing the Secret triggers a new connection test.
    lab.store
        .patch(
            &registry::SECRET,
            Some(NS),
            "bad",
            &mtv_lab::Patch::Merge(json!({"data": {"password": b64("lab-password")}})),
            &Default::default(),
        )
        .unwrap();
    let p = lab
        .wait_condition(&registry::PROVIDER, "badauth", "Ready")
        .await;
    assert!(cond(&p, "ConnectionAuthFailed").is_none());
    // Unknown host: ConnectionTestFailed.
    lab.secret(
        "good",
        &[
            ("user", "u"),
            ("password", "p"),
            ("insecureSkipVerify", "true"),
        ],
    );
    lab.create(&registry::PROVIDER, NS, json!({"metadata": {"name": "nowhere"}, "spec": {"type": "vsphere", "url": "https://nowhere.example/sdk", "secret": {"name": "good", "namespace": NS}}}));
    let p = lab
        .wait_condition(&registry::PROVIDER, "nowhere", "ConnectionTestFailed")
        .await;
    assert_eq!(p["status"]["phase"], "ConnectionFailed");
    assert!(s(cond(&p, "ConnectionTestFailed").unwrap(), "/message").contains("nowhere.example"));
    // The provider-conn-fail fault.
    lab.secret(
        "faulty-secret",
        &[
            ("user", "administrator@vsphere.local"),
            ("password", "lab-password"),
            ("insecureSkipVerify", "true"),
        ],
    );
    lab.create(&registry::PROVIDER, NS, json!({"metadata": {"name": "faulty"}, "spec": {"type": "vsphere", "url": "https://vcenter.lab.example/sdk", "secret": {"name": "faulty-secret", "namespace": NS}}}));
    lab.wait_condition(&registry::PROVIDER, "faulty", "ConnectionTestFailed")
        .await;
    // Missing keys: SecretNotValid with items.
    lab.secret("partial", &[("user", "u")]);
    lab.create(&registry::PROVIDER, NS, json!({"metadata": {"name": "partial"}, "spec": {"type": "vsphere", "url": "https://vcenter.lab.example/sdk", "secret": {"name": "partial", "namespace": NS}}}));
    let p = lab
        .wait_condition(&registry::PROVIDER, "partial", "SecretNotValid")
        .await;
    assert_eq!(p["status"]["phase"], "ValidationFailed");
    let c = cond(&p, "SecretNotValid").unwrap();
    assert_eq!(c["reason"], "DataErr");
    assert_eq!(c["items"], json!(["password", "ca.crt"]));
    // OVA URL must match `^[^:]+:/[^:].*$` (server:/path).
    lab.secret("ova", &[("url", "nfs-server")]);
    lab.create(&registry::PROVIDER, NS, json!({"metadata": {"name": "ova-bad"}, "spec": {"type": "ova", "url": "nfs-server/share", "secret": {"name": "ova", "namespace": NS}}}));
    let p = lab
        .wait_condition(&registry::PROVIDER, "ova-bad", "UrlNotValid")
        .await;
    assert_eq!(cond(&p, "UrlNotValid").unwrap()["reason"], "Malformed");
    // Unknown type.
    lab.create(&registry::PROVIDER, NS, json!({"metadata": {"name": "weird"}, "spec": {"type": "xen", "url": "https://x", "secret": {"name": "good", "namespace": NS}}}));
    lab.wait_condition(&registry::PROVIDER, "weird", "ProviderTypeNotSupported")
        .await;
    lab.stop().await;
}

// ---------------------------------------------------------------------------------------------------
// Maps and plan validation

#[tokio::test]
async fn maps_resolve_references_and_report_categories() {
    let lab = Lab::start(50.0, "").await;
    lab.provider("vsphere", "vsphere", json!({}));
    lab.maps(
        "m",
        "vsphere",
        json!([
            {"source": {"id": "network-1"}, "destination": {"type": "pod"}},
            {"source": {"name": "nope"}, "destination": {"type": "pod"}}
        ]),
        json!([{"source": {"id": "datastore-1"}, "destination": {"storageClass": "missing-sc"}}]),
    );
    let net = lab
        .wait_condition(&registry::NETWORK_MAP, "m-net", "Ready")
        .await;
    let c = cond(&net, "SourceNetworkNotValid").unwrap();
    assert_eq!(c["category"], "Warn");
    assert_eq!(c["reason"], "NotFound");
    assert_eq!(c["message"], "Source network not found.");
    assert_eq!(c["items"], json!([" id: name:'nope' "]));
    assert_eq!(net["status"]["references"][0]["id"], "network-1");
    let st = lab
        .wait_condition(&registry::STORAGE_MAP, "m-st", "DestinationStorageNotValid")
        .await;
    let c = cond(&st, "DestinationStorageNotValid").unwrap();
    assert_eq!(c["category"], "Critical");
    assert_eq!(c["message"], "Destination storage not valid.");
    // A NetworkMap naming a NAD that does not exist is not Ready (Forklift's wording).
    lab.maps(
        "nad",
        "vsphere",
        json!([{"source": {"id": "network-1"}, "destination": {"type": "multus", "namespace": "default", "name": "no-such-nad"}}]),
        json!([{"source": {"id": "datastore-1"}, "destination": {"storageClass": "lab-ceph-rbd"}}]),
    );
    let net = lab
        .wait_condition(
            &registry::NETWORK_MAP,
            "nad-net",
            "DestinationNetworkNotValid",
        )
        .await;
    let c = cond(&net, "DestinationNetworkNotValid").unwrap();
    assert_eq!(
        (
            c["category"].as_str(),
            c["reason"].as_str(),
            c["message"].as_str()
        ),
        (
            Some("Critical"),
            Some("NotFound"),
            Some("Destination network (NAD) not found.")
        )
    );
    assert_eq!(c["items"], json!(["default/no-such-nad"]));
    assert!(cond(&net, "Ready").is_none());
    assert!(cond(&st, "Ready").is_none());
    lab.stop().await;
}

#[tokio::test]
async fn plan_validation_conditions_carry_categories_and_items() {
    let lab = Lab::start(50.0, "").await;
    lab.provider("vsphere", "vsphere", json!({}));
    lab.provider("openstack", "openstack", json!({}));
    vsphere_maps(&lab);
    lab.maps(
        "os",
        "openstack",
        json!([{"source": {"id": "net-os"}, "destination": {"type": "pod"}}]),
        json!([{"source": {"id": "vt-1"}, "destination": {"storageClass": "lab-ceph-rbd"}}]),
    );
    // An existing VM with the source name in the target namespace.
    lab.create(
        &registry::NAMESPACE,
        "",
        json!({"metadata": {"name": TARGET}}),
    );
    lab.create(
        &registry::VIRTUAL_MACHINE,
        TARGET,
        json!({"metadata": {"name": "win2019"}, "spec": {}}),
    );
    lab.plan("invalid", "vsphere", "vs", json!({"warm": true, "vms": [
        {"id": "vm-404"},
        {"id": "vm-1"}, {"id": "vm-1"},
        {"name": "win2019"},
        {"id": "vm-3", "pvcNameTemplate": "{{.VmName}}"},
        {"id": "vm-4", "hooks": [{"step": "Sideways", "hook": {"name": "missing", "namespace": NS}}]}
    ]}));
    let p = lab
        .wait_condition(&registry::PLAN, "invalid", "VMNotFound")
        .await;
    let expect = |kind: &str, category: &str| {
        let c =
            cond(&p, kind).unwrap_or_else(|| panic!("no {kind}: {}", p["status"]["conditions"]));
        assert_eq!(c["category"], category, "{kind}");
        c.clone()
    };
    assert_eq!(
        expect("VMNotFound", "Critical")["items"],
        json!([" id:vm-404 name:'' "])
    );
    let dup = expect("DuplicateVM", "Critical");
    assert_eq!(dup["items"], json!([" id:vm-1 name:'rhel8' "]));
    assert_eq!(dup["message"], "Duplicate (source) VM.");
    assert_eq!(
        expect("VMAlreadyExists", "Critical")["items"],
        json!([" id:vm-2 name:'win2019' "])
    );
    assert_eq!(
        expect("TargetNameNotValid", "Warn")["items"],
        json!([" id:vm-3 name:'XCopy_Test_VM_CAPS' "])
    );
    assert!(
        expect("NotValid", "Critical")["items"][0]
            .as_str()
            .unwrap()
            .contains("template:{{.VmName}}")
    );
    expect("VMMissingChangedBlockTracking", "Critical");
    assert_eq!(
        expect("VMHasSnapshots", "Critical")["items"],
        json!([" id:vm-4 name:'snappy' "])
    );
    expect("GuestToolsIssue", "Critical");
    assert_eq!(
        expect("VMCriticalConcerns", "Critical")["items"],
        json!([" id:vm-4 name:'snappy'  (Unsupported disk)"])
    );
    expect("HookNotValid", "Critical");
    expect("HookStepNotValid", "Critical");
    expect("VDDKInitImageUnavailable", "Critical");
    assert!(cond(&p, "Ready").is_none());
    assert_eq!(p["metadata"]["annotations"]["populatorLabels"], "True");
    // Warm from OpenStack is not supported.
    lab.plan(
        "os-warm",
        "openstack",
        "os",
        json!({"warm": true, "vms": [{"id": "0f0f-0001"}]}),
    );
    let p = lab
        .wait_condition(&registry::PLAN, "os-warm", "WarmMigrationNotReady")
        .await;
    assert_eq!(
        cond(&p, "WarmMigrationNotReady").unwrap()["message"],
        "Warm migration from the source provider is not supported."
    );
    // Unmapped networks and storage.
    lab.maps(
        "narrow",
        "vsphere",
        json!([{"source": {"id": "network-1"}, "destination": {"type": "pod"}}]),
        json!([{"source": {"id": "datastore-1"}, "destination": {"storageClass": "lab-ceph-rbd"}}]),
    );
    lab.plan(
        "unmapped",
        "vsphere",
        "narrow",
        json!({"vms": [{"id": "vm-1"}, {"id": "vm-3"}]}),
    );
    let p = lab
        .wait_condition(&registry::PLAN, "unmapped", "VMStorageNotMapped")
        .await;
    assert_eq!(
        cond(&p, "VMNetworksNotMapped").unwrap()["items"],
        json!([" id:vm-1 name:'rhel8' "])
    );
    assert_eq!(
        cond(&p, "VMStorageNotMapped").unwrap()["items"],
        json!([" id:vm-3 name:'XCopy_Test_VM_CAPS' "])
    );
    lab.stop().await;
}

#[tokio::test]
async fn plans_are_ready_after_the_vddk_window() {
    let lab = Lab::start_with(50.0, "", |o| o.vddk_validation = Duration::from_secs(600)).await;
    vsphere_with_vddk(&lab);
    lab.plan("p", "vsphere", "vs", json!({"vms": [{"id": "vm-1"}]}));
    let p = lab
        .wait_condition(&registry::PLAN, "p", "ValidatingVDDK")
        .await;
    assert!(cond(&p, "Ready").is_none());
    let p = lab.wait_condition(&registry::PLAN, "p", "Ready").await;
    assert_eq!(
        cond(&p, "Ready").unwrap()["message"],
        "The migration plan is ready."
    );
    assert!(cond(&p, "ValidatingVDDK").is_none());
    lab.stop().await;
}

// ---------------------------------------------------------------------------------------------------
// Execution

#[tokio::test]
async fn vsphere_cold_migration_creates_the_target_objects() {
    let lab = Lab::start(20.0, "").await;
    lab.provider("vsphere", "vsphere", json!({}));
    vsphere_maps(&lab);
    lab.ready_plan(
        "cold",
        "vsphere",
        "vs",
        json!({
            "vms": [{"id": "vm-1"}, {"id": "vm-3"}],
            "targetLabels": {"team": "qe"},
            "targetNodeSelector": {"topology.kubernetes.io/zone": "zone-b"},
            "pvcNameTemplate": "{{.TargetVmName}}-d{{.DiskIndex}}"
        }),
    )
    .await;
    let m = lab.migrate("cold-1", "cold", json!({}));
    // Progress grows while copying.
    let running = lab
        .wait(&registry::PLAN, NS, "cold", "disk progress", |p| {
            p.pointer("/status/migration/vms/0/pipeline")
                .and_then(Value::as_array)
                .is_some_and(|steps| {
                    steps.iter().any(|st| {
                        st["name"] == "DiskAllocation"
                            && st["progress"]["completed"].as_u64().unwrap_or(0) > 0
                    })
                })
        })
        .await;
    assert!(cond(&running, "Executing").is_some() || cond(&running, "Succeeded").is_some());
    let p = lab.finished("cold").await;
    assert_eq!(
        cond(&p, "Succeeded").unwrap()["message"],
        "The plan execution has SUCCEEDED."
    );
    let vm = vm_status(&p, "vm-1");
    assert_eq!(
        step_names(&vm),
        [
            "Initialize",
            "DiskAllocation",
            "ImageConversion",
            "DiskTransferV2v",
            "VirtualMachineCreation"
        ]
    );
    assert_eq!(vm["phase"], "Completed");
    assert_eq!(vm["restorePowerState"], "On");
    assert!(cond(&json!({"status": vm}), "Succeeded").is_some());
    let transfer = step(&vm, "DiskTransferV2v");
    assert_eq!(transfer["annotations"]["unit"], "MB");
    assert_eq!(transfer["tasks"][0]["name"], "[ds1] rhel8/rhel8.vmdk");
    assert_eq!(
        transfer["tasks"][0]["progress"],
        json!({"completed": 30720, "total": 30720})
    );
    assert_eq!(step(&vm, "Initialize")["progress"]["completed"], 0);
    assert_eq!(step(&vm, "Initialize")["phase"], "Completed");
    assert_eq!(step(&vm, "ImageConversion")["progress"]["completed"], 1);
    assert_eq!(
        step(&vm, "VirtualMachineCreation")["progress"]["completed"],
        0
    );
    // The source was powered off.
    assert_eq!(
        lab.source.vm("vsphere", "vm-1").unwrap().power_state,
        PowerState::Off
    );
    // Migration mirrors the plan.
    let mig = lab
        .wait_condition(&registry::MIGRATION, "cold-1", "Succeeded")
        .await;
    assert!(mig["status"]["completed"].is_string());
    assert_eq!(mig["status"]["vms"].as_array().unwrap().len(), 2);
    assert_eq!(mig["metadata"]["ownerReferences"][0]["kind"], "Plan");
    assert_eq!(
        p["status"]["migration"]["history"][0]["migration"]["uid"],
        m["metadata"]["uid"]
    );
    // Target VM.
    let target = lab.get(&registry::VIRTUAL_MACHINE, TARGET, "rhel8");
    let labels = &target["metadata"]["labels"];
    assert_eq!(labels["vmID"], "vm-1");
    assert_eq!(labels["migration"], m["metadata"]["uid"]);
    assert_eq!(labels["guestConverted"], "true");
    assert_eq!(target["spec"]["runStrategy"], "Always");
    let tmpl = &target["spec"]["template"];
    assert_eq!(
        tmpl["metadata"]["labels"],
        json!({"team": "qe", "app": "rhel8"})
    );
    assert_eq!(
        tmpl["spec"]["nodeSelector"]["topology.kubernetes.io/zone"],
        "zone-b"
    );
    assert_eq!(tmpl["spec"]["domain"]["firmware"]["serial"], "4201-aaaa");
    let ifaces = tmpl["spec"]["domain"]["devices"]["interfaces"]
        .as_array()
        .unwrap();
    assert_eq!(ifaces[0]["macAddress"], "00:50:56:00:00:01");
    assert!(ifaces[0].get("masquerade").is_some());
    assert!(ifaces[1].get("bridge").is_some());
    assert_eq!(ifaces[1]["state"], "down");
    assert_eq!(
        tmpl["spec"]["networks"][1]["multus"]["networkName"],
        "default/storage-net"
    );
    // PVCs: template-rendered generateName, storage class, labels, owned by the VM; DVs gone.
    let pvcs = lab.list(&registry::PERSISTENT_VOLUME_CLAIM, TARGET, "vmID=vm-1");
    assert_eq!(pvcs.len(), 1);
    let pvc = &pvcs[0];
    let name = s(pvc, "/metadata/name");
    assert!(
        name.starts_with("rhel8-d0-") && name.len() == "rhel8-d0-".len() + 5,
        "{name}"
    );
    assert_eq!(pvc["spec"]["storageClassName"], "lab-ceph-rbd");
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "30Gi");
    assert_eq!(
        pvc["metadata"]["annotations"]["forklift.konveyor.io/disk-source"],
        "[ds1] rhel8/rhel8.vmdk"
    );
    assert_eq!(
        pvc["metadata"]["ownerReferences"][0]["kind"],
        "VirtualMachine"
    );
    assert_eq!(
        tmpl["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
        name
    );
    assert!(lab.list(&registry::DATA_VOLUME, TARGET, "").is_empty());
    // VMI: node selector honoured, static IP preserved, guest agent.
    let vmi = lab.get(&registry::VIRTUAL_MACHINE_INSTANCE, TARGET, "rhel8");
    assert_eq!(vmi["status"]["phase"], "Running");
    assert_eq!(vmi["status"]["nodeName"], "worker-1");
    assert_eq!(vmi["status"]["interfaces"][0]["ipAddress"], "192.168.10.5");
    assert!(cond(&vmi, "AgentConnected").is_some());
    assert_eq!(
        lab.get(&registry::VIRTUAL_MACHINE, TARGET, "rhel8")["status"]["printableStatus"],
        "Running"
    );
    // The nonconforming name is sanitised, recorded and annotated; the VM was off, so Halted.
    let renamed = vm_status(&p, "vm-3");
    assert_eq!(renamed["newName"], "xcopy-test-vm-caps");
    let vm3 = lab.get(&registry::VIRTUAL_MACHINE, TARGET, "xcopy-test-vm-caps");
    assert_eq!(
        vm3["metadata"]["annotations"]["openshift.io/display-name"],
        "XCopy_Test_VM_CAPS"
    );
    assert_eq!(vm3["metadata"]["annotations"]["original-ID"], "vm-3");
    assert_eq!(vm3["spec"]["runStrategy"], "Halted");
    assert_eq!(
        lab.list(&registry::PERSISTENT_VOLUME_CLAIM, TARGET, "vmID=vm-3")
            .len(),
        2
    );
    // The plan is frozen after success: a new migration does nothing.
    lab.migrate("cold-2", "cold", json!({}));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = lab.get(&registry::PLAN, NS, "cold");
    assert_eq!(
        again["status"]["migration"]["history"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Deleting the plan deletes its migrations; PVCs owned by the VMs stay.
    lab.store
        .delete(&registry::PLAN, Some(NS), "cold", &Default::default())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab
        .store
        .get(&registry::MIGRATION, Some(NS), "cold-1")
        .is_ok()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        lab.store
            .get(&registry::MIGRATION, Some(NS), "cold-1")
            .is_err()
    );
    assert_eq!(
        lab.list(&registry::PERSISTENT_VOLUME_CLAIM, TARGET, "vmID=vm-1")
            .len(),
        1
    );
    lab.stop().await;
}

#[tokio::test]
async fn pipelines_match_each_provider_type() {
    let lab = Lab::start(20.0, "").await;
    lab.provider("ovirt", "ovirt", json!({}));
    lab.provider("openstack", "openstack", json!({}));
    lab.provider("ova", "ova", json!({}));
    ovirt_maps(&lab);
    lab.maps(
        "os",
        "openstack",
        json!([{"source": {"name": "private"}, "destination": {"type": "pod"}}]),
        json!([{"source": {"name": "ceph"}, "destination": {"storageClass": "lab-ceph-rbd"}}]),
    );
    lab.maps("va", "ova", json!([{"source": {"id": "net-ova"}, "destination": {"type": "pod"}}]), json!([{"source": {"name": "ova-vm-disk1.vmdk"}, "destination": {"storageClass": "lab-ceph-rbd"}}]));
    lab.plan(
        "ovirt-cold",
        "ovirt",
        "ov",
        json!({"vms": [{"id": "6b9a-0001"}], "targetPowerState": "off"}),
    );
    lab.plan(
        "os-cold",
        "openstack",
        "os",
        json!({"vms": [{"name": "os-vm"}]}),
    );
    lab.plan(
        "ova-cold",
        "ova",
        "va",
        json!({"vms": [{"id": "ova-0001"}]}),
    );
    for p in ["ovirt-cold", "os-cold", "ova-cold"] {
        lab.wait_condition(&registry::PLAN, p, "Ready").await;
        lab.migrate(&format!("{p}-m"), p, json!({}));
    }
    let p = lab.succeeded("ovirt-cold").await;
    let vm = vm_status(&p, "6b9a-0001");
    assert_eq!(
        step_names(&vm),
        ["Initialize", "DiskTransfer", "VirtualMachineCreation"]
    );
    assert_eq!(step(&vm, "DiskTransfer")["tasks"][0]["name"], "disk-6b9a-1");
    let target = lab.get(&registry::VIRTUAL_MACHINE, TARGET, "ovirt-vm");
    assert_eq!(target["spec"]["runStrategy"], "Halted");
    assert_eq!(
        target["spec"]["template"]["spec"]["domain"]["firmware"]["uuid"],
        "6b9a-0001"
    );
    assert!(target["metadata"]["labels"].get("guestConverted").is_none());
    assert!(
        lab.store
            .get(
                &registry::VIRTUAL_MACHINE_INSTANCE,
                Some(TARGET),
                "ovirt-vm"
            )
            .is_err()
    );

    let p = lab.succeeded("os-cold").await;
    let vm = vm_status(&p, "0f0f-0001");
    assert_eq!(vm["name"], "os-vm");
    assert_eq!(
        step_names(&vm),
        [
            "Initialize",
            "DiskTransfer",
            "ConvertOpenstackSnapshot",
            "VirtualMachineCreation"
        ]
    );
    // The OpenStack quirk: the ConvertOpenstackSnapshot step stays Pending.
    assert_eq!(step(&vm, "ConvertOpenstackSnapshot")["phase"], "Pending");
    assert_eq!(step(&vm, "DiskTransfer")["phase"], "Completed");

    let p = lab.succeeded("ova-cold").await;
    let vm = vm_status(&p, "ova-0001");
    assert_eq!(
        step_names(&vm),
        [
            "Initialize",
            "DiskAllocation",
            "ImageConversion",
            "DiskTransferV2v",
            "VirtualMachineCreation"
        ]
    );
    lab.stop().await;
}

#[tokio::test]
async fn warm_migration_precopies_then_cuts_over_when_due() {
    let lab = Lab::start(40.0, "").await;
    vsphere_with_vddk(&lab);
    lab.ready_plan(
        "warm",
        "vsphere",
        "vs",
        json!({"type": "warm", "vms": [{"id": "vm-1"}]}),
    )
    .await;
    lab.migrate("warm-1", "warm", json!({}));
    let p = lab
        .wait(&registry::PLAN, NS, "warm", "two precopies", |p| {
            p.pointer("/status/migration/vms/0/warm/successes")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                >= 2
                && s(p, "/status/migration/vms/0/phase") == "CopyingPaused"
        })
        .await;
    let vm = vm_status(&p, "vm-1");
    assert!(vm["warm"]["nextPrecopyAt"].is_string());
    assert!(vm["warm"]["precopies"][0]["end"].is_string());
    assert_eq!(step(&vm, "DiskTransfer")["phase"], "Running");
    assert!(step(&vm, "Cutover").get("started").is_none());
    // Not cut over without a due cutover; the source still runs.
    assert_eq!(
        lab.source.vm("vsphere", "vm-1").unwrap().power_state,
        PowerState::On
    );
    let now = mtv_lab::clock::now_rfc3339();
    lab.store
        .patch(
            &registry::MIGRATION,
            Some(NS),
            "warm-1",
            &mtv_lab::Patch::Merge(json!({"spec": {"cutover": now}})),
            &Default::default(),
        )
        .unwrap();
    let p = lab.succeeded("warm").await;
    let vm = vm_status(&p, "vm-1");
    assert_eq!(
        step_names(&vm),
        [
            "Initialize",
            "PreflightInspection",
            "DiskTransfer",
            "Cutover",
            "ImageConversion",
            "VirtualMachineCreation",
            "WaitForFinalSnapshotConsolidation"
        ]
    );
    assert_eq!(step(&vm, "Cutover")["phase"], "Completed");
    assert_eq!(
        step(&vm, "Cutover")["tasks"][0]["progress"]["completed"],
        30720
    );
    assert!(step(&vm, "DiskTransfer")["tasks"][0]["annotations"]["Precopy"].is_string());
    assert_eq!(
        lab.source.vm("vsphere", "vm-1").unwrap().power_state,
        PowerState::Off
    );
    lab.stop().await;
}

#[tokio::test]
async fn hooks_pass_and_fail_by_what_the_hook_asks() {
    let lab = Lab::start(20.0, "").await;
    lab.provider("ovirt", "ovirt", json!({}));
    ovirt_maps(&lab);
    let ok = "- hosts: localhost\n  tasks:\n  - name: hello\n    debug:\n      msg: hi\n";
    let bad = "- hosts: localhost\n  tasks:\n  - name: stop here\n    ansible.builtin.fail:\n      msg: \"post hook says no\"\n";
    lab.create(&registry::HOOK, NS, json!({"metadata": {"name": "ok"}, "spec": {"image": "quay.io/konveyor/hook-runner", "playbook": b64(ok)}}));
    lab.create(&registry::HOOK, NS, json!({"metadata": {"name": "bad"}, "spec": {"image": "quay.io/konveyor/hook-runner", "playbook": b64(bad)}}));
    lab.create(
        &registry::HOOK,
        NS,
        json!({"metadata": {"name": "bad-image"}, "spec": {"image": "quay.io/lab/hook-fail:1"}}),
    );
    lab.wait_condition(&registry::HOOK, "bad", "Ready").await;
    // Pre-hook passes, post-hook fails: the VM is retained (deleteVmOnFailMigration=false).
    lab.plan(
        "hooked",
        "ovirt",
        "ov",
        json!({"deleteVmOnFailMigration": false, "vms": [{"id": "6b9a-0001", "hooks": [
            {"step": "PreHook", "hook": {"name": "ok", "namespace": NS}},
            {"step": "PostHook", "hook": {"name": "bad", "namespace": NS}}
        ]}]}),
    );
    let p = lab.run_plan("hooked").await;
    assert_eq!(
        cond(&p, "Failed").unwrap()["message"],
        "The plan execution has FAILED."
    );
    let vm = vm_status(&p, "6b9a-0001");
    assert_eq!(
        step_names(&vm),
        [
            "Initialize",
            "PreHook",
            "DiskTransfer",
            "VirtualMachineCreation",
            "PostHook"
        ]
    );
    assert_eq!(step(&vm, "PreHook")["progress"]["completed"], 1);
    assert_eq!(step(&vm, "PreHook")["phase"], "Completed");
    assert_eq!(vm["error"]["phase"], "PostHook");
    assert_eq!(
        vm["error"]["reasons"],
        json!(["Job has reached the specified backoff limit"])
    );
    assert_eq!(
        step(&vm, "PostHook")["error"]["reasons"],
        vm["error"]["reasons"]
    );
    assert!(cond(&json!({"status": vm}), "Failed").is_some());
    // The VM stays for troubleshooting.
    assert!(
        lab.store
            .get(&registry::VIRTUAL_MACHINE, Some(TARGET), "ovirt-vm")
            .is_ok()
    );
    // Hook Jobs and ConfigMaps live in the plan namespace with Forklift's labels; the failing hook's log has the msg.
    let jobs = lab.list(&registry::JOB, NS, "step=PostHook,vmID=6b9a-0001");
    assert_eq!(jobs.len(), 1);
    assert!(s(&jobs[0], "/metadata/name").starts_with("hooked-6b9a-0001-posthook-"));
    assert_eq!(
        cond(&jobs[0], "Failed").unwrap()["reason"],
        "BackoffLimitExceeded"
    );
    assert_eq!(
        lab.list(&registry::CONFIG_MAP, NS, "resource=hook-config")
            .len(),
        2
    );
    let pods = lab.list(
        &registry::POD,
        NS,
        &format!("job-name={}", s(&jobs[0], "/metadata/name")),
    );
    assert!(
        s(&pods[0], "/metadata/annotations/lab.mtv-tests.io~1log").contains("post hook says no")
    );
    // A pre-hook that fails (by image): nothing touched on the source.
    lab.source
        .set_power("ovirt", "6b9a-0001", mtv_lab::source::PowerAction::Start)
        .unwrap();
    lab.create(
        &registry::NAMESPACE,
        "",
        json!({"metadata": {"name": "target2"}}),
    );
    lab.plan(
        "prefail",
        "ovirt",
        "ov",
        json!({"targetNamespace": "target2", "vms": [{"id": "6b9a-0001", "hooks": [
        {"step": "PreHook", "hook": {"name": "bad-image", "namespace": NS}}]}]}),
    );
    // The retained VM still holds the source MACs at the destination.
    let p = lab
        .wait_condition(&registry::PLAN, "prefail", "MacConflicts")
        .await;
    assert_eq!(cond(&p, "MacConflicts").unwrap()["category"], "Critical");
    lab.store
        .delete(
            &registry::VIRTUAL_MACHINE,
            Some(TARGET),
            "ovirt-vm",
            &Default::default(),
        )
        .unwrap();
    let p = lab.run_plan("prefail").await;
    assert!(cond(&p, "Failed").is_some());
    let vm = vm_status(&p, "6b9a-0001");
    assert_eq!(vm["error"]["phase"], "PreHook");
    assert_eq!(step(&vm, "DiskTransfer")["phase"], "Pending");
    assert_eq!(
        lab.source.vm("ovirt", "6b9a-0001").unwrap().power_state,
        PowerState::On
    );
    // A hook whose deadline is shorter than its run: the Job's DeadlineExceeded message.
    lab.create(&registry::HOOK, NS, json!({"metadata": {"name": "slow"}, "spec": {"image": "quay.io/konveyor/hook-runner", "deadline": 5}}));
    lab.wait_condition(&registry::HOOK, "slow", "Ready").await;
    lab.plan(
        "deadline",
        "ovirt",
        "ov",
        json!({"targetNamespace": "target3", "vms": [{"id": "6b9a-0001", "hooks": [
        {"step": "PreHook", "hook": {"name": "slow", "namespace": NS}}]}]}),
    );
    let p = lab.run_plan("deadline").await;
    let vm = vm_status(&p, "6b9a-0001");
    assert_eq!(
        vm["error"]["reasons"],
        json!(["Job was active longer than specified deadline"])
    );
    lab.stop().await;
}

#[tokio::test]
async fn a_vm_fail_fault_fails_the_vm_at_disk_transfer() {
    let lab = Lab::start(20.0, "vm-fail=ovirt-vm@DiskTransfer").await;
    lab.provider("ovirt", "ovirt", json!({}));
    ovirt_maps(&lab);
    lab.plan(
        "faulty",
        "ovirt",
        "ov",
        json!({"vms": [{"id": "6b9a-0001"}]}),
    );
    let p = lab.run_plan("faulty").await;
    assert!(cond(&p, "Failed").is_some());
    let vm = vm_status(&p, "6b9a-0001");
    assert_eq!(vm["error"]["phase"], "CopyDisks");
    let dt = step(&vm, "DiskTransfer");
    assert!(!dt["error"]["reasons"].as_array().unwrap().is_empty());
    assert!(
        dt["progress"]["completed"].as_u64().unwrap() < dt["progress"]["total"].as_u64().unwrap()
    );
    assert_eq!(step(&vm, "VirtualMachineCreation")["phase"], "Pending");
    let mig = lab
        .wait_condition(&registry::MIGRATION, "faulty-1", "Failed")
        .await;
    assert!(mig["status"]["completed"].is_string());
    // A failed VM is cleaned up only on archive (deleteVmOnFailMigration defaults to true).
    assert!(
        !lab.list(&registry::PERSISTENT_VOLUME_CLAIM, TARGET, "vmID=6b9a-0001")
            .is_empty()
    );
    lab.store
        .patch(
            &registry::PLAN,
            Some(NS),
            "faulty",
            &mtv_lab::Patch::Merge(json!({"spec": {"archived": true}})),
            &Default::default(),
        )
        .unwrap();
    let p = lab
        .wait_condition(&registry::PLAN, "faulty", "Archived")
        .await;
    assert_eq!(cond(&p, "Archived").unwrap()["reason"], "UserRequested");
    assert!(
        lab.list(&registry::PERSISTENT_VOLUME_CLAIM, TARGET, "vmID=6b9a-0001")
            .is_empty()
    );
    lab.stop().await;
}

#[tokio::test]
async fn cancel_restores_the_source_power_state() {
    let lab = Lab::start(1.0, "").await;
    lab.provider("vsphere", "vsphere", json!({}));
    vsphere_maps(&lab);
    lab.ready_plan(
        "cancelme",
        "vsphere",
        "vs",
        json!({"vms": [{"id": "vm-1"}]}),
    )
    .await;
    lab.migrate("cancel-1", "cancelme", json!({}));
    lab.wait(
        &registry::PLAN,
        NS,
        "cancelme",
        "the source powered off",
        |p| {
            s(p, "/status/migration/vms/0/restorePowerState") == "On"
                && !matches!(
                    s(p, "/status/migration/vms/0/phase"),
                    "Started" | "StorePowerState" | "PowerOffSource"
                )
        },
    )
    .await;
    assert_eq!(
        lab.source.vm("vsphere", "vm-1").unwrap().power_state,
        PowerState::Off
    );
    lab.store
        .patch(
            &registry::MIGRATION,
            Some(NS),
            "cancel-1",
            &mtv_lab::Patch::Merge(json!({"spec": {"cancel": [{"id": "vm-1"}]}})),
            &Default::default(),
        )
        .unwrap();
    let p = lab.finished("cancelme").await;
    // migration.go end(): no VM failed or succeeded, so the snapshot (and the Plan) is Canceled, no reason.
    assert_eq!(
        cond(&p, "Canceled").unwrap()["message"],
        "The plan execution has been CANCELED."
    );
    assert!(cond(&p, "Canceled").unwrap().get("reason").is_none());
    let vm = vm_status(&p, "vm-1");
    assert_eq!(vm["phase"], "Completed");
    let c = cond(&json!({"status": vm}), "Canceled").unwrap().clone();
    assert_eq!(c["reason"], "UserRequested");
    assert_eq!(
        lab.source.vm("vsphere", "vm-1").unwrap().power_state,
        PowerState::On
    );
    lab.stop().await;
}

#[tokio::test]
async fn copy_offload_reports_xcopy_per_datastore() {
    let lab = Lab::start(20.0, "").await;
    lab.provider("vsphere", "vsphere", json!({}));
    lab.secret(
        "array",
        &[
            ("STORAGE_HOSTNAME", "array.lab"),
            ("STORAGE_USERNAME", "u"),
            ("STORAGE_PASSWORD", "p"),
        ],
    );
    let plugin =
        json!({"vsphereXcopyConfig": {"secretRef": "array", "storageVendorProduct": "ontap"}});
    lab.maps(
        "off",
        "vsphere",
        json!([{"source": {"id": "network-1"}, "destination": {"type": "pod"}}]),
        json!([
            {"source": {"id": "datastore-1"}, "destination": {"storageClass": "san-sc"}, "offloadPlugin": plugin},
            {"source": {"id": "datastore-2"}, "destination": {"storageClass": "san-sc"}, "offloadPlugin": plugin}
        ]),
    );
    lab.ready_plan(
        "offload",
        "vsphere",
        "off",
        json!({"vms": [{"id": "vm-3"}]}),
    )
    .await;
    // Populator pods come and go quickly: collect their logs from the store's event stream.
    let mut events = lab.store.subscribe();
    let m = lab.migrate("offload-1", "offload", json!({}));
    let uid = s(&m, "/metadata/uid").to_string();
    let mut populator_secrets = Vec::new();
    let mut logs = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while logs.len() < 2 && Instant::now() < deadline {
        let Ok(Ok(event)) = tokio::time::timeout(Duration::from_secs(1), events.recv()).await
        else {
            continue;
        };
        if std::ptr::eq(event.resource, &registry::SECRET)
            && s(&event.object, "/metadata/labels/isPopulator") == "true"
        {
            populator_secrets.push(event.object.as_ref().clone());
        }
        if !std::ptr::eq(event.resource, &registry::POD)
            || s(&event.object, "/metadata/labels/migration") != uid
        {
            continue;
        }
        let log = s(&event.object, "/metadata/annotations/lab.mtv-tests.io~1log").to_string();
        if log.contains("xcopyUsed=") {
            logs.insert(
                s(&event.object, "/metadata/labels/pvcName").to_string(),
                log,
            );
        }
    }
    let p = lab.succeeded("offload").await;
    let vm = vm_status(&p, "vm-3");
    assert_eq!(
        step_names(&vm),
        [
            "Initialize",
            "DiskTransfer",
            "ImageConversion",
            "VirtualMachineCreation"
        ]
    );
    assert_eq!(logs.len(), 2, "{logs:?}");
    let xcopy_ds = logs
        .values()
        .find(|l| l.contains("source_vmdk=\"[xcopy-ds] xcopy/xcopy.vmdk\""))
        .unwrap();
    assert!(xcopy_ds.trim_end().ends_with("xcopyUsed=1"), "{xcopy_ds}");
    let plain = logs
        .values()
        .find(|l| l.contains("source_vmdk=\"[ds1] xcopy/xcopy_1.vmdk\""))
        .unwrap();
    assert!(plain.trim_end().ends_with("xcopyUsed=0"), "{plain}");
    // Deterministic PVC names with dataSourceRef; populators report; the pods go away.
    let pvcs = lab.list(&registry::PERSISTENT_VOLUME_CLAIM, TARGET, "vmID=vm-3");
    assert_eq!(pvcs.len(), 2);
    for pvc in &pvcs {
        assert!(
            s(pvc, "/metadata/name").starts_with("offload-xcopy-test-vm-c-disk-"),
            "{}",
            pvc["metadata"]["name"]
        );
        assert_eq!(
            pvc["spec"]["dataSourceRef"]["kind"],
            "VSphereXcopyVolumePopulator"
        );
        let pop = lab.get(&registry::XCOPY_POPULATOR, TARGET, s(pvc, "/metadata/name"));
        assert_eq!(pop["status"]["result"], "success");
    }
    // The plan Secret existed while the migration ran, and is removed after success like MTV does.
    assert_eq!(
        populator_secrets[0]["metadata"]["labels"]["plan-name"],
        "offload"
    );
    assert!(
        lab.list(&registry::SECRET, TARGET, "isPopulator=true")
            .is_empty()
    );
    lab.wait(
        &registry::PLAN,
        NS,
        "offload",
        "populator pods removed",
        |_| {
            // The virt-v2v conversion pod stays (Forklift keeps it unless deleteGuestConversionPod).
            lab.list(&registry::POD, TARGET, &format!("migration={uid}"))
                .iter()
                .all(|p| s(p, "/metadata/labels/forklift.app") == "virt-v2v")
        },
    )
    .await;
    // Mixed offload and non-offload datastores are rejected.
    lab.maps(
        "mixed",
        "vsphere",
        json!([{"source": {"id": "network-1"}, "destination": {"type": "pod"}}]),
        json!([
            {"source": {"id": "datastore-1"}, "destination": {"storageClass": "lab-ceph-rbd"}},
            {"source": {"id": "datastore-2"}, "destination": {"storageClass": "san-sc"}, "offloadPlugin": plugin}
        ]),
    );
    lab.plan(
        "mixed",
        "vsphere",
        "mixed",
        json!({"vms": [{"id": "vm-3"}]}),
    );
    let p = lab
        .wait_condition(&registry::PLAN, "mixed", "VDDKAndOffloadMixedUsage")
        .await;
    let c = cond(&p, "VDDKAndOffloadMixedUsage").unwrap();
    assert_eq!(c["category"], "Critical");
    assert_eq!(c["items"], json!([" id:vm-3 name:'XCopy_Test_VM_CAPS' "]));
    lab.stop().await;
}

#[tokio::test]
async fn in_flight_limit_queues_vms_with_pending() {
    let lab = Lab::start(5.0, "").await;
    lab.store
        .patch(
            &registry::FORKLIFT_CONTROLLER,
            Some(NS),
            "forklift-controller",
            &mtv_lab::Patch::Merge(json!({"spec": {"controller_max_vm_inflight": 1}})),
            &Default::default(),
        )
        .unwrap();
    lab.provider("vsphere", "vsphere", json!({}));
    vsphere_maps(&lab);
    lab.ready_plan(
        "queued",
        "vsphere",
        "vs",
        json!({"vms": [{"id": "vm-1"}, {"id": "vm-2"}]}),
    )
    .await;
    lab.migrate("queued-1", "queued", json!({}));
    let p = lab
        .wait(&registry::PLAN, NS, "queued", "a Pending VM", |p| {
            p.pointer("/status/migration/vms")
                .and_then(Value::as_array)
                .is_some_and(|vms| {
                    vms.iter()
                        .any(|v| cond(&json!({"status": v}), "Pending").is_some())
                })
        })
        .await;
    assert_eq!(
        cond(&p, "Ready").unwrap()["message"],
        "1 VM(s) waiting to start migration (in-flight limit: 1)."
    );
    let p = lab.succeeded("queued").await;
    let win = vm_status(&p, "vm-2");
    // The Windows VM waits for its first-boot reboots.
    assert_eq!(step_names(&win).last().unwrap(), "WaitForGuestReboots");
    assert!(cond(&json!({"status": win}), "Pending").is_none());
    lab.stop().await;
}

#[tokio::test]
async fn openshift_source_vms_migrate_with_their_pvc_names() {
    let lab = Lab::start(20.0, "").await;
    lab.create(&registry::PERSISTENT_VOLUME_CLAIM, "source-ns", json!({"metadata": {"name": "src-vm-rootdisk"}, "spec": {
        "storageClassName": "lab-ceph-rbd", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}));
    let src = lab.create(&registry::VIRTUAL_MACHINE, "source-ns", json!({"metadata": {"name": "src-vm"}, "spec": {
        "runStrategy": "Always",
        "template": {"spec": {
            "domain": {"devices": {"interfaces": [{"name": "default", "macAddress": "02:00:00:00:00:01", "masquerade": {}}]}},
            "networks": [{"name": "default", "pod": {}}],
            "volumes": [{"name": "rootdisk", "persistentVolumeClaim": {"claimName": "src-vm-rootdisk"}}]}}}}));
    lab.maps(
        "ocp",
        "host",
        json!([{"source": {"type": "pod"}, "destination": {"type": "pod"}}]),
        json!([{"source": {"name": "lab-ceph-rbd"}, "destination": {"storageClass": "lab-nfs"}}]),
    );
    lab.plan(
        "ocp-cold",
        "host",
        "ocp",
        json!({"vms": [{"name": "src-vm", "namespace": "source-ns"}]}),
    );
    lab.plan(
        "ocp-warm",
        "host",
        "ocp",
        json!({"warm": true, "vms": [{"name": "src-vm", "namespace": "source-ns"}]}),
    );
    lab.wait_condition(&registry::PLAN, "ocp-warm", "WarmMigrationNotReady")
        .await;
    let p = lab.run_plan("ocp-cold").await;
    assert!(cond(&p, "Succeeded").is_some(), "{}", p["status"]);
    let vm = vm_status(&p, s(&src, "/metadata/uid"));
    assert_eq!(
        step_names(&vm),
        ["Initialize", "DiskTransfer", "VirtualMachineCreation"]
    );
    assert_eq!(
        step(&vm, "DiskTransfer")["tasks"][0]["progress"]["total"],
        10240
    );
    // `{{.SourcePVCName}}` with exact names for OpenShift sources.
    let pvc = lab.get(
        &registry::PERSISTENT_VOLUME_CLAIM,
        TARGET,
        "src-vm-rootdisk",
    );
    assert_eq!(pvc["spec"]["storageClassName"], "lab-nfs");
    let target = lab.get(&registry::VIRTUAL_MACHINE, TARGET, "src-vm");
    assert_eq!(target["spec"]["runStrategy"], "Always");
    assert!(target["metadata"]["labels"].get("guestConverted").is_none());
    // The source VM was stopped.
    assert_eq!(
        lab.get(&registry::VIRTUAL_MACHINE, "source-ns", "src-vm")["spec"]["runStrategy"],
        "Halted"
    );
    // Live migration needs a running source VM.
    lab.plan(
        "ocp-live",
        "host",
        "ocp",
        json!({"type": "live", "targetNamespace": "live-target",
        "vms": [{"name": "src-vm", "namespace": "source-ns"}]}),
    );
    let p = lab
        .wait_condition(&registry::PLAN, "ocp-live", "VMPowerStateUnsupported")
        .await;
    assert!(cond(&p, "Ready").is_none());
    lab.store
        .patch(
            &registry::VIRTUAL_MACHINE,
            Some("source-ns"),
            "src-vm",
            &mtv_lab::Patch::Merge(json!({"spec": {"runStrategy": "Always"}})),
            &Default::default(),
        )
        .unwrap();
    let p = lab.run_plan("ocp-live").await;
    assert!(cond(&p, "Succeeded").is_some(), "{}", p["status"]);
    let vm = vm_status(&p, s(&src, "/metadata/uid"));
    assert_eq!(
        step_names(&vm),
        ["Initialize", "PrepareTarget", "Synchronization"]
    );
    assert_eq!(
        lab.get(&registry::VIRTUAL_MACHINE, "live-target", "src-vm")["spec"]["runStrategy"],
        "Always"
    );
    assert_eq!(
        lab.get(&registry::VIRTUAL_MACHINE, "source-ns", "src-vm")["spec"]["runStrategy"],
        "Halted"
    );
    lab.stop().await;
}

#[tokio::test]
async fn remote_destination_uses_the_cdi_path_and_removes_datavolumes() {
    let lab = Lab::start(3.0, "").await;
    lab.provider("vsphere", "vsphere", json!({}));
    lab.secret(
        "remote-token",
        &[("token", "sha256~abc"), ("insecureSkipVerify", "true")],
    );
    lab.create(&registry::PROVIDER, NS, json!({"metadata": {"name": "remote"}, "spec": {"type": "openshift", "url": "https://api.remote.example:6443", "secret": {"name": "remote-token", "namespace": NS}}}));
    let remote = lab
        .wait_condition(&registry::PROVIDER, "remote", "Ready")
        .await;
    assert!(cond(&remote, "ConnectionInsecure").is_some());
    for kind in [&registry::NETWORK_MAP, &registry::STORAGE_MAP] {
        let (name, map) = if std::ptr::eq(kind, &registry::NETWORK_MAP) {
            (
                "r-net",
                json!([{"source": {"id": "network-1"}, "destination": {"type": "pod"}}]),
            )
        } else {
            (
                "r-st",
                json!([{"source": {"id": "datastore-1"}, "destination": {"storageClass": "lab-ceph-rbd"}}]),
            )
        };
        lab.create(kind, NS, json!({"metadata": {"name": name}, "spec": {
            "provider": {"source": {"name": "vsphere", "namespace": NS}, "destination": {"name": "remote", "namespace": NS}}, "map": map}}));
    }
    let mut spec = json!({"vms": [{"id": "vm-2"}]});
    spec["provider"] = json!({"source": {"name": "vsphere", "namespace": NS}, "destination": {"name": "remote", "namespace": NS}});
    lab.plan("remote", "vsphere", "r", spec);
    lab.wait_condition(&registry::PLAN, "remote", "Ready").await;
    lab.migrate("remote-1", "remote", json!({}));
    let copying = lab
        .wait(&registry::PLAN, NS, "remote", "CopyDisks", |p| {
            s(p, "/status/migration/vms/0/phase") == "CopyDisks"
        })
        .await;
    assert!(step(&vm_status(&copying, "vm-2"), "DiskTransfer")["phase"] == "Running");
    let dvs = lab.list(&registry::DATA_VOLUME, TARGET, "vmID=vm-2");
    assert_eq!(dvs.len(), 2);
    assert!(
        dvs[0]["metadata"]["annotations"]["forklift.konveyor.io/disk-index"]
            .as_str()
            .is_some()
    );
    assert_eq!(
        dvs[0]["metadata"]["annotations"]["cdi.kubevirt.io/storage.bind.immediate.requested"],
        "true"
    );
    let p = lab.succeeded("remote").await;
    let vm = vm_status(&p, "vm-2");
    assert_eq!(
        step_names(&vm),
        [
            "Initialize",
            "DiskTransfer",
            "ImageConversion",
            "VirtualMachineCreation",
            "WaitForGuestReboots"
        ]
    );
    assert_eq!(
        step(&vm, "DiskTransfer")["progress"],
        json!({"completed": 51200, "total": 51200})
    );
    assert!(
        lab.list(&registry::DATA_VOLUME, TARGET, "vmID=vm-2")
            .is_empty()
    );
    let pvcs = lab.list(&registry::PERSISTENT_VOLUME_CLAIM, TARGET, "vmID=vm-2");
    assert_eq!(pvcs.len(), 2);
    assert!(
        pvcs.iter()
            .all(|p| p["metadata"]["ownerReferences"][0]["kind"] == "VirtualMachine")
    );
    lab.stop().await;
}

#[tokio::test]
async fn deleting_the_migration_cancels_and_a_new_one_retries() {
    let faults = std::sync::Arc::new(std::sync::RwLock::new(
        FaultSpec::parse("vm-fail=ovirt-vm@VirtualMachineCreation").unwrap(),
    ));
    let shared = faults.clone();
    let lab = Lab::start_with(2.0, "", move |o| o.faults = shared).await;
    lab.provider("ovirt", "ovirt", json!({}));
    ovirt_maps(&lab);
    lab.ready_plan(
        "retry",
        "ovirt",
        "ov",
        json!({"vms": [{"id": "6b9a-0001"}]}),
    )
    .await;
    // First attempt: deleted while copying.
    lab.migrate("retry-1", "retry", json!({}));
    lab.wait(&registry::PLAN, NS, "retry", "CopyDisks", |p| {
        s(p, "/status/migration/vms/0/phase") == "CopyDisks"
    })
    .await;
    lab.store
        .delete(
            &registry::MIGRATION,
            Some(NS),
            "retry-1",
            &Default::default(),
        )
        .unwrap();
    // plan/controller.go activeMigration(): the deleted Migration's snapshot is Canceled (Deleted) in the
    // history; execute() finds no migration to run, drops Executing and reflects nothing onto the Plan.
    let p = lab
        .wait(&registry::PLAN, NS, "retry", "a canceled snapshot", |p| {
            p["status"]["migration"]["history"][0]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Canceled"))
        })
        .await;
    let snapshot = json!({"status": p["status"]["migration"]["history"][0]});
    let c = cond(&snapshot, "Canceled").unwrap();
    assert_eq!(c["reason"], "Deleted");
    assert_eq!(c["message"], "The migration has been deleted.");
    assert!(cond(&p, "Canceled").is_none(), "{}", p["status"]);
    assert!(cond(&p, "Executing").is_none(), "{}", p["status"]);
    assert!(cond(&p, "Ready").is_some(), "{}", p["status"]);
    let vm = vm_status(&p, "6b9a-0001");
    assert_eq!(vm["phase"], "Completed");
    // The source is powered back on.
    assert_eq!(
        lab.source.vm("ovirt", "6b9a-0001").unwrap().power_state,
        PowerState::On
    );
    // Second attempt fails at VM creation.
    lab.migrate("retry-2", "retry", json!({}));
    let p = lab.wait_condition(&registry::PLAN, "retry", "Failed").await;
    assert!(cond(&p, "Canceled").is_none());
    assert_eq!(vm_status(&p, "6b9a-0001")["error"]["phase"], "CreateVM");
    let first_pvcs = lab.list(&registry::PERSISTENT_VOLUME_CLAIM, TARGET, "vmID=6b9a-0001");
    assert_eq!(first_pvcs.len(), 1);
    // Third attempt, fault cleared: the leftovers of the failed one go, the VM succeeds.
    *faults.write().unwrap() = FaultSpec::default();
    let m3 = lab.migrate("retry-3", "retry", json!({}));
    let p = lab
        .wait_condition(&registry::PLAN, "retry", "Succeeded")
        .await;
    assert!(cond(&p, "Failed").is_none());
    assert_eq!(
        p["status"]["migration"]["history"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let pvcs = lab.list(&registry::PERSISTENT_VOLUME_CLAIM, TARGET, "vmID=6b9a-0001");
    assert_eq!(pvcs.len(), 1);
    assert_eq!(
        pvcs[0]["metadata"]["labels"]["migration"],
        m3["metadata"]["uid"]
    );
    let m1 = lab.store.get(&registry::MIGRATION, Some(NS), "retry-1");
    assert!(m1.is_err());
    lab.wait_condition(&registry::MIGRATION, "retry-2", "Failed")
        .await;
    lab.stop().await;
}

#[tokio::test]
async fn ovirt_warm_and_a_future_cutover() {
    let lab = Lab::start(40.0, "").await;
    lab.provider("ovirt", "ovirt", json!({}));
    ovirt_maps(&lab);
    lab.ready_plan(
        "ow",
        "ovirt",
        "ov",
        json!({"warm": true, "vms": [{"id": "6b9a-0001"}]}),
    )
    .await;
    let later = mtv_lab::clock::format_rfc3339(mtv_lab::clock::unix_now() + 3600);
    lab.migrate("ow-1", "ow", json!({"cutover": later}));
    lab.wait(&registry::PLAN, NS, "ow", "three precopies", |p| {
        p.pointer("/status/migration/vms/0/warm/successes")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            >= 3
    })
    .await;
    let p = lab.get(&registry::PLAN, NS, "ow");
    assert!(cond(&p, "Executing").is_some());
    assert!(
        step(&vm_status(&p, "6b9a-0001"), "Cutover")
            .get("started")
            .is_none()
    );
    let now = mtv_lab::clock::now_rfc3339();
    lab.store
        .patch(
            &registry::MIGRATION,
            Some(NS),
            "ow-1",
            &mtv_lab::Patch::Merge(
                json!({"spec": {"vmCutover": [{"id": "6b9a-0001", "cutover": now}]}}),
            ),
            &Default::default(),
        )
        .unwrap();
    let p = lab.succeeded("ow").await;
    let vm = vm_status(&p, "6b9a-0001");
    assert_eq!(
        step_names(&vm),
        [
            "Initialize",
            "DiskTransfer",
            "Cutover",
            "VirtualMachineCreation"
        ]
    );
    assert!(vm["warm"]["precopies"].as_array().unwrap().len() >= 4);
    lab.stop().await;
}

#[tokio::test]
async fn renamed_vms_avoid_collisions_and_static_ips_follow_the_plan() {
    let lab = Lab::start(20.0, "").await;
    lab.provider("vsphere", "vsphere", json!({}));
    vsphere_maps(&lab);
    lab.create(
        &registry::NAMESPACE,
        "",
        json!({"metadata": {"name": TARGET}}),
    );
    lab.create(
        &registry::VIRTUAL_MACHINE,
        TARGET,
        json!({"metadata": {"name": "xcopy-test-vm-caps"}, "spec": {}}),
    );
    lab.ready_plan(
        "names",
        "vsphere",
        "vs",
        json!({"preserveStaticIPs": false, "targetPowerState": "on", "vms": [
            {"id": "vm-1", "targetName": "web-01"},
            {"id": "vm-3"}
        ]}),
    )
    .await;
    lab.migrate(
        "names-1",
        "names",
        json!({"cancel": [{"name": "nothing-like-this"}]}),
    );
    let mig = lab
        .wait_condition(&registry::MIGRATION, "names-1", "VMNotFound")
        .await;
    assert_eq!(cond(&mig, "VMNotFound").unwrap()["category"], "Warn");
    let p = lab.succeeded("names").await;
    // An explicit targetName is used as is, without newName.
    let vm1 = vm_status(&p, "vm-1");
    assert!(vm1.get("newName").is_none());
    let web = lab.get(&registry::VIRTUAL_MACHINE, TARGET, "web-01");
    assert_eq!(web["spec"]["runStrategy"], "Always");
    let vmi = lab.get(&registry::VIRTUAL_MACHINE_INSTANCE, TARGET, "web-01");
    assert_ne!(vmi["status"]["interfaces"][0]["ipAddress"], "192.168.10.5");
    // The sanitised name collides: cut and suffixed with 4 random characters.
    let vm3 = vm_status(&p, "vm-3");
    let new_name = vm3["newName"].as_str().unwrap();
    assert!(
        new_name.starts_with("xcopy-test-vm-caps-")
            && new_name.len() == "xcopy-test-vm-caps-".len() + 4,
        "{new_name}"
    );
    let target = lab.get(&registry::VIRTUAL_MACHINE, TARGET, new_name);
    assert_eq!(target["spec"]["runStrategy"], "Always");
    lab.stop().await;
}

#[tokio::test]
async fn failures_at_named_steps_on_each_provider_type() {
    let lab = Lab::start(20.0, "vm-fail=os-vm@DiskTransfer,vm-fail=ova-vm@ImageConversion,vm-fail=rhel8@Cutover,vm-fail=win2019@DiskTransferV2v").await;
    lab.provider(
        "vsphere",
        "vsphere",
        json!({"vddkInitImage": "quay.io/lab/vddk:8"}),
    );
    lab.provider("openstack", "openstack", json!({}));
    lab.provider("ova", "ova", json!({}));
    vsphere_maps(&lab);
    lab.maps(
        "os",
        "openstack",
        json!([{"source": {"id": "net-os"}, "destination": {"type": "pod"}}]),
        json!([{"source": {"id": "vt-1"}, "destination": {"storageClass": "lab-ceph-rbd"}}]),
    );
    lab.maps("va", "ova", json!([{"source": {"id": "net-ova"}, "destination": {"type": "pod"}}]), json!([{"source": {"name": "ova-vm-disk1.vmdk"}, "destination": {"storageClass": "lab-ceph-rbd"}}]));
    lab.plan(
        "os",
        "openstack",
        "os",
        json!({"vms": [{"id": "0f0f-0001"}]}),
    );
    lab.plan("ova", "ova", "va", json!({"vms": [{"id": "ova-0001"}]}));
    lab.plan(
        "vw",
        "vsphere",
        "vs",
        json!({"warm": true, "vms": [{"id": "vm-1"}]}),
    );
    lab.plan("vc", "vsphere", "vs", json!({"vms": [{"id": "vm-2"}]}));
    for p in ["os", "ova", "vw", "vc"] {
        lab.wait_condition(&registry::PLAN, p, "Ready").await;
        let cutover = mtv_lab::clock::now_rfc3339();
        lab.migrate(&format!("{p}-1"), p, json!({"cutover": cutover}));
    }
    for (plan, id, step_name, phase) in [
        ("os", "0f0f-0001", "DiskTransfer", "CopyDisks"),
        (
            "ova",
            "ova-0001",
            "ImageConversion",
            "CreateGuestConversionPod",
        ),
        ("vw", "vm-1", "Cutover", "StorePowerState"),
        ("vc", "vm-2", "DiskTransferV2v", "CopyDisksVirtV2V"),
    ] {
        let p = lab.finished(plan).await;
        assert_eq!(
            cond(&p, "Failed").unwrap()["message"],
            "The plan execution has FAILED.",
            "{plan}"
        );
        let vm = vm_status(&p, id);
        assert_eq!(vm["error"]["phase"], phase, "{plan}");
        assert!(
            step(&vm, step_name)["error"]["reasons"][0]
                .as_str()
                .unwrap()
                .contains(step_name)
        );
        assert!(cond(&json!({"status": vm}), "Failed").is_some());
        assert_eq!(step(&vm, "VirtualMachineCreation")["phase"], "Pending");
        let m = lab
            .wait_condition(&registry::MIGRATION, &format!("{plan}-1"), "Failed")
            .await;
        assert_eq!(m["status"]["vms"][0]["error"]["phase"], phase);
    }
    lab.stop().await;
}

// ---------------------------------------------------------------------------------------------------
// Fidelity to kubev2v/forklift's validation (pkg/controller/plan/validation.go, pkg/controller/map/...)

/// validation.go validateNetworkMap (NetMapPreservingIPsOnPodNetwork) and validateVM with the vSphere
/// validator's StaticIPs (plan/adapter/vsphere/validator.go): warnings that leave the Plan Ready.
#[tokio::test]
async fn static_ip_warnings_follow_forklift() {
    let lab = Lab::start(50.0, "").await;
    lab.provider("vsphere", "vsphere", json!({}));
    vsphere_maps(&lab);
    // vm-1 runs with VMware Tools and reports its IPs; vm-2 is powered off, so no guest networks.
    let p = lab
        .ready_plan(
            "ips",
            "vsphere",
            "vs",
            json!({"vms": [{"id": "vm-1"}, {"id": "vm-2"}]}),
        )
        .await;
    let pod = cond(&p, "NetMapPreservingIPsOnPodNetwork").expect("the pod-network warning");
    assert_eq!(pod["category"], "Warn");
    assert!(pod.get("reason").is_none());
    assert_eq!(
        pod["message"],
        "Your migration plan preserves the static IPs of VMs and uses Pod Networking target network mapping. This combination isn't supported, because VM IPs aren't preserved in Pod Networking migrations."
    );
    let missing = cond(&p, "VMMissingGuestIPs").expect("the missing guest IPs warning");
    assert_eq!(missing["category"], "Warn");
    assert_eq!(missing["reason"], "MissingGuestInformation");
    assert_eq!(missing["items"], json!([" id:vm-2 name:'win2019' "]));
    assert_eq!(
        missing["message"],
        "Guest information on vNICs is missing, cannot preserve static IPs. Make sure VMware Tools is installed and the VM is running."
    );
    // Without preserveStaticIPs neither warning applies.
    let p = lab
        .ready_plan(
            "no-ips",
            "vsphere",
            "vs",
            json!({"preserveStaticIPs": false, "vms": [{"id": "vm-2"}]}),
        )
        .await;
    assert!(cond(&p, "NetMapPreservingIPsOnPodNetwork").is_none());
    assert!(cond(&p, "VMMissingGuestIPs").is_none());
    // oVirt cannot preserve static IPs: no warning there (Provider.SupportsPreserveStaticIps).
    lab.provider("ovirt", "ovirt", json!({}));
    ovirt_maps(&lab);
    let p = lab
        .ready_plan(
            "ov-ips",
            "ovirt",
            "ov",
            json!({"vms": [{"id": "6b9a-0001"}]}),
        )
        .await;
    assert!(cond(&p, "NetMapPreservingIPsOnPodNetwork").is_none());
    lab.stop().await;
}

/// validation.go validateServiceAccount: the Plan's `serviceAccount` must exist in the target namespace.
#[tokio::test]
async fn a_missing_service_account_blocks_the_plan() {
    let lab = Lab::start(50.0, "").await;
    lab.provider("vsphere", "vsphere", json!({}));
    vsphere_maps(&lab);
    lab.create(
        &registry::NAMESPACE,
        "",
        json!({"metadata": {"name": TARGET}}),
    );
    lab.plan(
        "sa",
        "vsphere",
        "vs",
        json!({"serviceAccount": "migrator", "vms": [{"id": "vm-1"}]}),
    );
    let p = lab
        .wait_condition(&registry::PLAN, "sa", "ServiceAccountNotValid")
        .await;
    let c = cond(&p, "ServiceAccountNotValid").unwrap();
    assert_eq!(c["category"], "Critical");
    assert_eq!(c["reason"], "NotFound");
    assert_eq!(
        c["message"],
        "ServiceAccount 'migrator' not found in target namespace 'target'."
    );
    assert!(cond(&p, "Ready").is_none());
    lab.create(
        &registry::SERVICE_ACCOUNT,
        TARGET,
        json!({"metadata": {"name": "migrator"}}),
    );
    let p = lab.wait_condition(&registry::PLAN, "sa", "Ready").await;
    assert!(cond(&p, "ServiceAccountNotValid").is_none());
    lab.stop().await;
}

/// validation.go validateNetworkMap (NetMapDestinationNADNotValid), validateMigrationType, validateHooks
/// (items `VM: <ref> hook: <ObjectReference>`), validateVM's MacConflicts message, and the map
/// controllers' validateSource/validateDestination (pkg/controller/map/network/validation.go).
#[tokio::test]
async fn reasons_messages_and_items_read_like_forklift() {
    let lab = Lab::start(50.0, "").await;
    lab.provider("vsphere", "vsphere", json!({}));
    lab.create(
        &registry::NETWORK_ATTACHMENT_DEFINITION,
        "source-ns",
        json!({"metadata": {"name": "elsewhere"}, "spec": {"config": "{}"}}),
    );
    lab.maps(
        "far",
        "vsphere",
        json!([{"source": {"id": "network-1"}, "destination": {"type": "multus", "namespace": "source-ns", "name": "elsewhere"}}]),
        json!([{"source": {"id": "datastore-1"}, "destination": {"storageClass": "lab-ceph-rbd"}}]),
    );
    lab.plan("far", "vsphere", "far", json!({"vms": [{"id": "vm-2"}]}));
    let p = lab
        .wait_condition(&registry::PLAN, "far", "NetMapDestinationNADNotValid")
        .await;
    let c = cond(&p, "NetMapDestinationNADNotValid").unwrap();
    assert_eq!(c["category"], "Critical");
    assert_eq!(c["reason"], "NotValid");
    assert_eq!(
        c["message"],
        "Destination NAD source-ns/elsewhere must be in either the target namespace (target) or the default namespace. Pods cannot reference network attachment definitions from other namespaces."
    );

    vsphere_maps(&lab);
    lab.plan(
        "live",
        "vsphere",
        "vs",
        json!({"type": "live", "vms": [{"id": "vm-2"}]}),
    );
    let p = lab
        .wait_condition(&registry::PLAN, "live", "MigrationTypeNotValid")
        .await;
    assert_eq!(
        cond(&p, "MigrationTypeNotValid").unwrap()["message"],
        "`live` migration from the source provider is not supported."
    );

    lab.plan(
        "hooks",
        "vsphere",
        "vs",
        json!({"vms": [{"id": "vm-1", "hooks": [{"step": "PreHook", "hook": {"name": "absent", "namespace": NS}}]}, {}]}),
    );
    let p = lab
        .wait_condition(&registry::PLAN, "hooks", "HookNotValid")
        .await;
    let c = cond(&p, "HookNotValid").unwrap();
    assert_eq!(c["reason"], "NotFound");
    assert_eq!(c["message"], "Hook not found.");
    assert_eq!(
        c["items"],
        json!([format!(
            "VM:  id:vm-1 name:'rhel8'  hook: &ObjectReference{{Kind:,Namespace:{NS},Name:absent,UID:,APIVersion:,ResourceVersion:,FieldPath:,}}"
        )])
    );
    let c = cond(&p, "VMRefNotValid").unwrap();
    assert_eq!(c["message"], "Either `ID` or `Name` required.");
    assert!(c.get("items").is_none());

    // A VM at the destination already holds win2019's MAC.
    lab.create(
        &registry::NAMESPACE,
        "",
        json!({"metadata": {"name": TARGET}}),
    );
    lab.create(
        &registry::VIRTUAL_MACHINE,
        TARGET,
        json!({"metadata": {"name": "holder"}, "spec": {"template": {"spec": {"domain": {"devices": {"interfaces": [{"name": "a", "macAddress": "00:50:56:00:00:03"}]}}}}}}),
    );
    lab.plan("macs", "vsphere", "vs", json!({"vms": [{"id": "vm-2"}]}));
    let p = lab
        .wait_condition(&registry::PLAN, "macs", "MacConflicts")
        .await;
    let c = cond(&p, "MacConflicts").unwrap();
    assert_eq!(c["items"], json!([" id:vm-2 name:'win2019' "]));
    assert_eq!(
        c["message"],
        "VM  id:vm-2 name:'win2019'  has MAC address conflicts: MACs 00:50:56:00:00:03 conflict with destination VM target/holder"
    );

    // Maps: an unset source ref, an ambiguous NAD reference.
    lab.maps(
        "bad",
        "vsphere",
        json!([{"source": {}, "destination": {"type": "pod"}},
               {"source": {"id": "network-2"}, "destination": {"type": "multus", "name": "storage-net"}}]),
        json!([{"source": {"id": "datastore-1"}, "destination": {"storageClass": "missing-sc"}}]),
    );
    let net = lab
        .wait_condition(
            &registry::NETWORK_MAP,
            "bad-net",
            "DestinationNetworkNotValid",
        )
        .await;
    let c = cond(&net, "SourceNetworkNotValid").unwrap();
    assert_eq!(
        (c["reason"].as_str(), c["message"].as_str()),
        (
            Some("NotSet"),
            Some("Source network: either `ID` or `Name` required.")
        )
    );
    let c = cond(&net, "DestinationNetworkNotValid").unwrap();
    assert_eq!(c["reason"], "Ambiguous");
    assert_eq!(
        c["message"],
        "Destination network (NAD) namespace required."
    );
    assert_eq!(c["items"], json!(["storage-net"]));
    let st = lab
        .wait_condition(
            &registry::STORAGE_MAP,
            "bad-st",
            "DestinationStorageNotValid",
        )
        .await;
    let c = cond(&st, "DestinationStorageNotValid").unwrap();
    assert_eq!(c["message"], "Destination storage not valid.");
    assert_eq!(c["items"], json!(["missing-sc"]));
    lab.stop().await;
}

/// What a migration leaves behind as Forklift's code makes it: kubevirt.go DataVolumes/ensureSecret (the
/// transfer Secret `<plan>-<vmID>-…` the DataVolumes name), EnsureGuestConversionPod (the virt-v2v pod,
/// kept after success unless `deleteGuestConversionPod`, migration.go cleanup), and base/controller.go
/// Record (an Event per condition change on the Plan, Warning for Critical/Error/Warn).
#[tokio::test]
async fn a_migration_leaves_forklifts_side_effects() {
    let lab = Lab::start(20.0, "").await;
    vsphere_with_vddk(&lab);
    lab.plan("fx", "vsphere", "vs", json!({"vms": [{"id": "vm-1"}]}));
    let plan = lab.wait_condition(&registry::PLAN, "fx", "Ready").await;
    let plan_uid = s(&plan, "/metadata/uid").to_string();
    lab.migrate("fx-1", "fx", json!({}));
    lab.succeeded("fx").await;
    // The conversion pod stays, Succeeded, without an owner.
    let pods = lab.list(
        &registry::POD,
        TARGET,
        &format!("plan={plan_uid},forklift.app=virt-v2v"),
    );
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert!(s(&pods[0], "/metadata/name").starts_with("fx-vm-1-"));
    assert_eq!(pods[0]["status"]["phase"], "Succeeded");
    assert!(pods[0]["metadata"].get("ownerReferences").is_none());
    // Events on the Plan, as the plan controller's recorder writes them.
    let events = lab.list(&registry::EVENT, NS, "");
    let on_plan: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["involvedObject"]["name"] == "fx" && e["involvedObject"]["kind"] == "Plan")
        .map(|e| (s(e, "/type"), s(e, "/reason")))
        .collect();
    for expected in [
        ("Normal", "Ready"),
        ("Normal", "Executing"),
        ("Normal", "Succeeded"),
        ("Warning", "NetMapPreservingIPsOnPodNetwork"),
    ] {
        assert!(on_plan.contains(&expected), "{expected:?} in {on_plan:?}");
    }
    let succeeded = events
        .iter()
        .find(|e| e["involvedObject"]["name"] == "fx" && e["reason"] == "Succeeded")
        .unwrap();
    assert_eq!(succeeded["message"], "The plan execution has SUCCEEDED.");
    assert_eq!(succeeded["source"]["component"], "plan");

    // oVirt copies through CDI: while the disks copy, each DataVolume names the VM's transfer Secret.
    lab.provider("ovirt", "ovirt", json!({}));
    ovirt_maps(&lab);
    let plan = lab
        .ready_plan(
            "fx-ov",
            "ovirt",
            "ov",
            json!({"targetNamespace": "target3", "vms": [{"id": "6b9a-0001"}]}),
        )
        .await;
    // Every change is seen through the store's event stream: the DataVolumes live only while copying.
    let mut changes = lab.store.subscribe();
    lab.migrate("fx-ov-1", "fx-ov", json!({}));
    lab.finished("fx-ov").await;
    let (mut dv, mut secret) = (None, None);
    while let Ok(e) = changes.try_recv() {
        if std::ptr::eq(e.resource, &registry::DATA_VOLUME) && dv.is_none() {
            dv = Some(e.object.as_ref().clone());
        }
        if std::ptr::eq(e.resource, &registry::SECRET)
            && s(&e.object, "/metadata/namespace") == "target3"
            && secret.is_none()
        {
            secret = Some(e.object.as_ref().clone());
        }
    }
    let (dv, secret) = (dv.expect("a DataVolume"), secret.expect("a Secret"));
    let secret_name = s(&dv, "/spec/source/imageio/secretRef").to_string();
    assert!(secret_name.starts_with("fx-ov-6b9a-0001-"), "{secret_name}");
    assert_eq!(secret["metadata"]["name"], secret_name.as_str());
    assert_eq!(secret["metadata"]["labels"]["isDV"], "true");
    assert_eq!(
        secret["metadata"]["labels"]["plan"],
        s(&plan, "/metadata/uid")
    );
    assert_eq!(secret["data"]["accessKeyId"], b64("admin@internal"));

    // With deleteGuestConversionPod the pod goes once the VM succeeded.
    let plan = lab.ready_plan("fx-del", "vsphere", "vs", json!({"deleteGuestConversionPod": true, "targetNamespace": "target2", "vms": [{"id": "vm-2"}]})).await;
    lab.migrate("fx-del-1", "fx-del", json!({}));
    lab.succeeded("fx-del").await;
    let pods = lab.list(
        &registry::POD,
        "target2",
        &format!("plan={},forklift.app=virt-v2v", s(&plan, "/metadata/uid")),
    );
    assert!(pods.is_empty(), "{pods:?}");
    lab.stop().await;
}

/// CDI's importer pods for a cold vSphere (VDDK) copy, as containerized-data-importer's
/// pkg/controller/import-controller.go leaves them: `createImportPodNameFromPvc` names the pod
/// `importer-<pvc>`, `makeImporterPodSpec`/`createImporterPod` label it and make the claim its
/// controlling owner, `updatePvcFromPod` writes the pod's name and phase onto the claim, and
/// `reconcilePvc` deletes the pod once it Succeeded (no retain annotation here).
#[tokio::test]
async fn cold_vsphere_copies_run_in_cdi_importer_pods() {
    use mtv_lab::store::EventType;

    let lab = Lab::start(20.0, "").await;
    vsphere_with_vddk(&lab);
    // Skipping the guest conversion keeps the copy with CDI (virt-v2v would write the disks itself).
    lab.ready_plan(
        "imp",
        "vsphere",
        "vs",
        json!({"vms": [{"id": "vm-2"}], "skipGuestConversion": true}),
    )
    .await;
    let mut events = lab.store.subscribe();
    let seen = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(event) = events.recv().await {
            let pod = std::ptr::eq(event.resource, &registry::POD);
            let pvc = std::ptr::eq(event.resource, &registry::PERSISTENT_VOLUME_CLAIM);
            if pod || pvc {
                seen.push((pod, event.event_type, (*event.object).clone()));
            }
            let plan = std::ptr::eq(event.resource, &registry::PLAN);
            if plan && cond(&event.object, "Succeeded").is_some() {
                break;
            }
        }
        seen
    });
    lab.migrate("imp-1", "imp", json!({}));
    lab.succeeded("imp").await;
    let seen = seen.await.unwrap();
    let pvcs = lab.list(&registry::PERSISTENT_VOLUME_CLAIM, TARGET, "vmID=vm-2");
    assert_eq!(pvcs.len(), 2);
    for pvc in &pvcs {
        let claim = s(pvc, "/metadata/name");
        let name = format!("importer-{claim}");
        let of_pod = |e: &EventType| {
            seen.iter()
                .filter(|(pod, t, o)| *pod && t == e && s(o, "/metadata/name") == name)
                .map(|(_, _, o)| o.clone())
                .collect::<Vec<_>>()
        };
        let running: Vec<Value> = of_pod(&EventType::Modified)
            .into_iter()
            .filter(|o| s(o, "/status/phase") == "Running")
            .collect();
        assert!(!running.is_empty(), "no Running {name} among {seen:?}");
        let pod = &running[0];
        assert_eq!(s(pod, "/metadata/namespace"), TARGET);
        let labels = &pod["metadata"]["labels"];
        assert_eq!(labels["app"], "containerized-data-importer");
        assert_eq!(labels["cdi.kubevirt.io"], "importer");
        assert_eq!(labels["prometheus.cdi.kubevirt.io"], "true");
        assert_eq!(labels["vmID"], "vm-2", "the claim's labels are merged in");
        let owner = &pod["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "PersistentVolumeClaim");
        assert_eq!(owner["name"], claim);
        assert_eq!(owner["uid"], pvc["metadata"]["uid"]);
        assert_eq!(owner["controller"], true);
        assert_eq!(
            pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            claim
        );
        let succeeded = of_pod(&EventType::Modified)
            .into_iter()
            .any(|o| s(&o, "/status/phase") == "Succeeded");
        assert!(succeeded, "{name} never Succeeded");
        assert_eq!(
            of_pod(&EventType::Deleted).len(),
            1,
            "{name} not deleted once"
        );
        // While it ran the claim named its pod and showed it Running; at the end, Succeeded.
        let claim_states: Vec<(String, String)> = seen
            .iter()
            .filter(|(pod, _, o)| !*pod && s(o, "/metadata/name") == claim)
            .map(|(_, _, o)| {
                let ann = &o["metadata"]["annotations"];
                (
                    ann["cdi.kubevirt.io/storage.import.importPodName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    ann["cdi.kubevirt.io/storage.pod.phase"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        assert!(
            claim_states.contains(&(name.clone(), "Running".into())),
            "{claim_states:?}"
        );
        let last = &pvc["metadata"]["annotations"];
        assert_eq!(last["cdi.kubevirt.io/storage.import.importPodName"], name);
        assert_eq!(last["cdi.kubevirt.io/storage.pod.phase"], "Succeeded");
        assert!(lab.store.get(&registry::POD, Some(TARGET), &name).is_err());
    }
    lab.stop().await;
}

/// A claim annotated `cdi.kubevirt.io/storage.pod.retainAfterCompletion: "true"` keeps its importer
/// pod, Succeeded, after the copy (import-controller.go `shouldDeletePod`); the pod goes with the claim.
#[tokio::test]
async fn a_retained_importer_pod_stays_succeeded() {
    let lab = Lab::start(1.0, "").await;
    vsphere_with_vddk(&lab);
    lab.ready_plan(
        "keep",
        "vsphere",
        "vs",
        json!({"vms": [{"id": "vm-2"}], "skipGuestConversion": true}),
    )
    .await;
    lab.migrate("keep-1", "keep", json!({}));
    // The 50 GiB copy takes seconds at this speed: the claims are annotated while it runs.
    let claims = loop {
        let claims = lab.list(&registry::PERSISTENT_VOLUME_CLAIM, TARGET, "vmID=vm-2");
        if claims.len() == 2 {
            break claims;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for claim in &claims {
        lab.store
            .modify(
                &registry::PERSISTENT_VOLUME_CLAIM,
                Some(TARGET),
                s(claim, "/metadata/name"),
                &Default::default(),
                |o| {
                    o["metadata"]["annotations"]
                        ["cdi.kubevirt.io/storage.pod.retainAfterCompletion"] = json!("true");
                    Ok(())
                },
            )
            .unwrap();
    }
    lab.succeeded("keep").await;
    for claim in &claims {
        let name = format!("importer-{}", s(claim, "/metadata/name"));
        let pod = lab.get(&registry::POD, TARGET, &name);
        assert_eq!(pod["status"]["phase"], "Succeeded");
        // The claim owns it: deleting the claim collects the pod.
        lab.store
            .delete(
                &registry::PERSISTENT_VOLUME_CLAIM,
                Some(TARGET),
                s(claim, "/metadata/name"),
                &Default::default(),
            )
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while lab.store.get(&registry::POD, Some(TARGET), &name).is_ok() {
            assert!(Instant::now() < deadline, "{name} outlived its claim");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    lab.stop().await;
}
