//! `misbehave=<vm>@<point>` faults, nested virtualization on the target VM, and KubeVirt start/stop.
//!
//! Each misbehaviour test migrates a pair of identical vSphere VMs, `good-vm` and `bad-vm`, with the fault
//! naming `bad`: the point must be wrong on `bad-vm` only, and right on `good-vm`, in the same migration.

use std::time::{Duration, Instant};

use mtv_lab::Patch;
use mtv_lab::faults::FaultSpec;
use mtv_lab::forklift::{ForkliftHandle, ForkliftOptions, spawn_forklift};
use mtv_lab::registry::{self, ResourceType};
use mtv_lab::selector::LabelSelector;
use mtv_lab::source::{SourceLab, Vm};
use mtv_lab::store::{ListOptions, Store};
use serde_json::{Value, json};

mod common;

use common::{NS, PollsObjects, TARGET, cond, s, vm_status};

const GOOD: &str = "vm-101";
const BAD: &str = "vm-202";

/// One source VM: two disks (10 and 4 GiB), a NIC on the pod-mapped network with a static IP, and a
/// disconnected NIC on the multus-mapped one.
fn source_vm(id: &str, name: &str, n: u8) -> String {
    format!(
        r#"
      - id: {id}
        name: {name}
        power_state: on
        host: host-1
        cpu_sockets: 2
        cores_per_socket: 2
        memory_mib: 4096
        guest_os: rhel8_64Guest
        uuid: 4201{n:04x}-aaaa-bbbb-cccc-0000000000{n:02x}
        cbt: true
        guest_agent: true
        disks:
          - {{key: 2000, file: "[ds1] {name}/{name}.vmdk", datastore: datastore-1, capacity_gib: 10, unit_number: 0}}
          - {{key: 2001, file: "[ds1] {name}/{name}_1.vmdk", datastore: datastore-1, capacity_gib: 4, unit_number: 1}}
        nics:
          - {{mac: "00:50:56:00:{n:02x}:01", network: network-1, ips: [{{ip: 192.168.10.{n}, prefix: 24, static: true}}]}}
          - {{mac: "00:50:56:00:{n:02x}:02", network: network-2, start_connected: false}}"#
    )
}

/// The lab file: the vSphere source with two networks, an XCOPY datastore, the good and the bad VM.
fn lab_file() -> String {
    common::lab_file(&[common::vsphere_provider(
        "[{id: network-1, name: VM Network}, {id: network-2, name: Storage Net}]",
        "[{id: datastore-1, name: ds1, capacity_gib: 1000, free_gib: 800, xcopy: true}]",
        &(source_vm(GOOD, "good-vm", 1) + &source_vm(BAD, "bad-vm", 2)),
    )])
}

/// `spec.template.spec` of a VirtualMachine.
fn tmpl(vm: &Value) -> &Value {
    &vm["spec"]["template"]["spec"]
}

fn interfaces(vm: &Value) -> &Vec<Value> {
    tmpl(vm)["domain"]["devices"]["interfaces"]
        .as_array()
        .unwrap()
}

struct Lab {
    store: Store,
    source: SourceLab,
    handle: Option<ForkliftHandle>,
}

impl PollsObjects for Lab {
    fn store(&self) -> &Store {
        &self.store
    }
}

impl Lab {
    /// A store seeded like a small cluster, the two-VM source lab (changed by `edit` first), the
    /// controllers at high speed, a vSphere Provider and the maps `vs-net`/`vs-st`.
    async fn start(faults: &str, edit: impl FnOnce(&SourceLab)) -> Lab {
        let store = Store::default();
        common::seed_cluster(&store, &["default", NS], &["lab-ceph-rbd", "lab-nfs"]);
        let source = SourceLab::parse("lab.yaml", &lab_file()).unwrap();
        edit(&source);
        let options = ForkliftOptions::new(40.0, FaultSpec::parse(faults).unwrap(), NS);
        let handle = spawn_forklift(store.clone(), source.clone(), options);
        let lab = Lab {
            store,
            source,
            handle: Some(handle),
        };
        lab.secret(
            "vsphere-secret",
            &[
                ("user", "administrator@vsphere.local"),
                ("password", "lab-password"),
                ("insecureSkipVerify", "true"),
            ],
        );
        lab.create(&registry::PROVIDER, NS, json!({"metadata": {"name": "vsphere"}, "spec": {
            "type": "vsphere", "url": "https://vcenter.lab.example/sdk", "secret": {"name": "vsphere-secret", "namespace": NS}}}));
        lab.maps(
            "vs",
            json!([
                {"source": {"id": "network-1"}, "destination": {"type": "pod"}},
                {"source": {"id": "network-2"}, "destination": {"type": "multus", "namespace": "default", "name": "storage-net"}}
            ]),
            json!([{"source": {"id": "datastore-1"}, "destination": {"storageClass": "lab-ceph-rbd"}}]),
        );
        lab
    }

    async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }

    fn create(&self, rt: &'static ResourceType, ns: &str, obj: Value) -> Value {
        self.store.create(rt, Some(ns), obj).unwrap()
    }

    fn get(&self, rt: &'static ResourceType, ns: &str, name: &str) -> Option<Value> {
        self.store.get(rt, Some(ns), name).ok()
    }

    fn merge(&self, rt: &'static ResourceType, ns: &str, name: &str, patch: Value) {
        self.store
            .patch(
                rt,
                Some(ns),
                name,
                &Patch::Merge(patch),
                &Default::default(),
            )
            .unwrap();
    }

    /// Objects of a kind with these labels, in `ns` or everywhere.
    fn list(&self, rt: &'static ResourceType, ns: Option<&str>, labels: &str) -> Vec<Value> {
        let opts = ListOptions {
            label_selector: LabelSelector::parse(labels).unwrap(),
            ..ListOptions::default()
        };
        self.store.list(rt, ns, &opts).unwrap().items
    }

    fn secret(&self, name: &str, keys: &[(&str, &str)]) {
        common::secret(&self.store, name, keys);
    }

    fn maps(&self, name: &str, networks: Value, storages: Value) {
        let provider = json!({"source": {"name": "vsphere", "namespace": NS}, "destination": {"name": "host", "namespace": NS}});
        self.create(
            &registry::NETWORK_MAP,
            NS,
            json!({"metadata": {"name": format!("{name}-net")}, "spec": {"provider": provider, "map": networks}}),
        );
        self.create(
            &registry::STORAGE_MAP,
            NS,
            json!({"metadata": {"name": format!("{name}-st")}, "spec": {"provider": provider, "map": storages}}),
        );
    }

    /// Runs a Plan over both VMs (`extra` overrides or adds spec fields) to its end.
    async fn run(&self, name: &str, extra: Value) -> Value {
        let vms = json!([{"id": GOOD}, {"id": BAD}]);
        self.create(
            &registry::PLAN,
            NS,
            common::plan_object(name, "vsphere", "vs", vms, extra),
        );
        self.wait(&registry::PLAN, NS, name, "Ready", |p| {
            cond(p, "Ready").is_some()
        })
        .await;
        let cutover = mtv_lab::clock::now_rfc3339();
        self.create(
            &registry::MIGRATION,
            NS,
            json!({"metadata": {"name": format!("{name}-1")}, "spec": {"plan": {"name": name, "namespace": NS}, "cutover": cutover}}),
        );
        self.wait(&registry::PLAN, NS, name, "a terminal condition", |p| {
            ["Succeeded", "Failed", "Canceled"]
                .iter()
                .any(|k| cond(p, k).is_some())
        })
        .await
    }

    /// A Hook whose image always fails, once Ready.
    async fn failing_hook(&self, name: &str) {
        self.create(
            &registry::HOOK,
            NS,
            json!({"metadata": {"name": name}, "spec": {"image": "quay.io/lab/hook-fail:1"}}),
        );
        self.wait(&registry::HOOK, NS, name, "Ready", |h| {
            cond(h, "Ready").is_some()
        })
        .await;
    }

    /// Waits until `check` holds of the lab.
    async fn until(&self, what: &str, check: impl Fn(&Lab) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !check(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The migrated VirtualMachine of a source VM, found by its `vmID` label in any namespace.
    fn target(&self, id: &str) -> Value {
        let found = self.list(&registry::VIRTUAL_MACHINE, None, &format!("vmID={id}"));
        assert_eq!(found.len(), 1, "VirtualMachines of {id}: {found:#?}");
        found.into_iter().next().unwrap()
    }

    fn instance(&self, vm: &Value) -> Option<Value> {
        self.get(
            &registry::VIRTUAL_MACHINE_INSTANCE,
            s(vm, "/metadata/namespace"),
            s(vm, "/metadata/name"),
        )
    }

    /// The PVCs of a source VM, in disk order.
    fn pvcs(&self, id: &str) -> Vec<Value> {
        let mut pvcs = self.list(
            &registry::PERSISTENT_VOLUME_CLAIM,
            Some(TARGET),
            &format!("vmID={id}"),
        );
        pvcs.sort_by_key(|p| {
            s(p, "/metadata/annotations/forklift.konveyor.io~1disk-index").to_string()
        });
        pvcs
    }

    /// The string at JSON `pointer` in each of a source VM's PVCs, in disk order.
    fn pvc_fields(&self, id: &str, pointer: &str) -> Vec<String> {
        self.pvcs(id)
            .iter()
            .map(|p| s(p, pointer).to_string())
            .collect()
    }

    fn source_vm(&self, id: &str) -> Vm {
        self.source.vm("vsphere", id).unwrap()
    }
}

/// Starts a lab with `misbehave=bad@<point>`, migrates both VMs with `extra`, and checks it succeeded.
async fn misbehaving(point: &str, extra: Value) -> Lab {
    let lab = Lab::start(&format!("misbehave=bad@{point}"), |_| {}).await;
    let plan = lab.run("p", extra).await;
    assert!(cond(&plan, "Succeeded").is_some(), "{:#}", plan["status"]);
    lab
}

#[tokio::test]
async fn mac_misbehaviour_changes_the_first_mac_in_the_spec_and_the_vmi() {
    let lab = misbehaving("mac", json!({})).await;
    for (id, wrong) in [(GOOD, false), (BAD, true)] {
        let source_mac = lab.source_vm(id).nics[0].mac.clone();
        let vm = lab.target(id);
        let mac = s(&interfaces(&vm)[0], "/macAddress").to_string();
        assert_eq!(mac != source_mac, wrong, "{id}: {mac} vs {source_mac}");
        // The second NIC is right either way, and the VMI shows what the spec says.
        assert_eq!(
            interfaces(&vm)[1]["macAddress"],
            lab.source_vm(id).nics[1].mac
        );
        let vmi = lab.instance(&vm).unwrap();
        assert_eq!(vmi["status"]["interfaces"][0]["mac"], mac.as_str());
    }
    lab.stop().await;
}

#[tokio::test]
async fn network_misbehaviour_swaps_pod_and_multus_for_the_first_nic() {
    let lab = misbehaving("network", json!({})).await;
    let good = lab.target(GOOD);
    assert!(tmpl(&good)["networks"][0].get("pod").is_some());
    assert!(interfaces(&good)[0].get("masquerade").is_some());
    let bad = lab.target(BAD);
    assert_eq!(
        tmpl(&bad)["networks"][0]["multus"]["networkName"],
        format!("{TARGET}/lab-wrong-network")
    );
    assert!(interfaces(&bad)[0].get("bridge").is_some());
    // Only the first NIC: the second stays on its mapped multus network.
    assert_eq!(
        tmpl(&bad)["networks"][1]["multus"]["networkName"],
        "default/storage-net"
    );
    lab.stop().await;

    // A first NIC mapped to multus lands on the pod network.
    let swap_nics = |source: &SourceLab| {
        for id in [GOOD, BAD] {
            source
                .update_vm("vsphere", id, |vm| vm.nics.reverse())
                .unwrap();
        }
    };
    let lab = Lab::start("misbehave=bad@network", swap_nics).await;
    let plan = lab.run("p", json!({})).await;
    assert!(cond(&plan, "Succeeded").is_some(), "{:#}", plan["status"]);
    assert_eq!(
        tmpl(&lab.target(GOOD))["networks"][0]["multus"]["networkName"],
        "default/storage-net"
    );
    assert_eq!(
        tmpl(&lab.target(BAD))["networks"][0],
        json!({"name": "net-0", "pod": {}})
    );
    lab.stop().await;
}

#[tokio::test]
async fn labels_misbehaviour_leaves_the_target_labels_off() {
    let lab = misbehaving("labels", json!({"targetLabels": {"team": "qe"}})).await;
    let labels = |id: &str| lab.target(id)["spec"]["template"]["metadata"]["labels"].clone();
    assert_eq!(labels(GOOD), json!({"team": "qe", "app": "good-vm"}));
    assert_eq!(labels(BAD), json!({"app": "bad-vm"}));
    lab.stop().await;
}

#[tokio::test]
async fn storage_class_misbehaviour_uses_another_existing_class() {
    let lab = misbehaving("storage-class", json!({})).await;
    let classes = |id: &str| lab.pvc_fields(id, "/spec/storageClassName");
    assert_eq!(classes(GOOD), ["lab-ceph-rbd", "lab-ceph-rbd"]);
    assert_eq!(classes(BAD), ["lab-nfs", "lab-nfs"]);
    assert!(lab.get(&registry::STORAGE_CLASS, "", "lab-nfs").is_some());
    lab.stop().await;
}

#[tokio::test]
async fn disk_size_misbehaviour_requests_a_gib_less() {
    let lab = misbehaving("disk-size", json!({})).await;
    let sizes = |id: &str| lab.pvc_fields(id, "/spec/resources/requests/storage");
    assert_eq!(sizes(GOOD), ["10Gi", "4Gi"]);
    assert_eq!(sizes(BAD), ["9Gi", "3Gi"]);
    lab.stop().await;
}

#[tokio::test]
async fn disk_count_misbehaviour_leaves_the_last_disk_unattached() {
    let lab = misbehaving("disk-count", json!({})).await;
    for (id, attached) in [(GOOD, 2), (BAD, 1)] {
        let vm = lab.target(id);
        assert_eq!(
            tmpl(&vm)["domain"]["devices"]["disks"]
                .as_array()
                .unwrap()
                .len(),
            attached,
            "{id}"
        );
        let volumes = tmpl(&vm)["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), attached, "{id}");
        // The disks were copied all the same: two PVCs, the first one attached.
        let pvcs = lab.pvcs(id);
        assert_eq!(pvcs.len(), 2);
        assert_eq!(
            volumes[0]["persistentVolumeClaim"]["claimName"],
            pvcs[0]["metadata"]["name"]
        );
    }
    lab.stop().await;
}

#[tokio::test]
async fn power_misbehaviour_leaves_the_vm_halted() {
    let lab = misbehaving("power", json!({"targetPowerState": "on"})).await;
    let good = lab.target(GOOD);
    assert_eq!(good["spec"]["runStrategy"], "Always");
    assert_eq!(good["status"]["printableStatus"], "Running");
    assert!(lab.instance(&good).is_some());
    let bad = lab.target(BAD);
    assert_eq!(bad["spec"]["runStrategy"], "Halted");
    assert_eq!(bad["status"]["printableStatus"], "Stopped");
    assert!(lab.instance(&bad).is_none());
    lab.stop().await;
}

#[tokio::test]
async fn cpu_misbehaviour_adds_a_socket() {
    let lab = misbehaving("cpu", json!({})).await;
    let cpu = |id: &str| tmpl(&lab.target(id))["domain"]["cpu"].clone();
    assert_eq!(cpu(GOOD), json!({"sockets": 2, "cores": 2, "threads": 1}));
    assert_eq!(cpu(BAD), json!({"sockets": 3, "cores": 2, "threads": 1}));
    lab.stop().await;
}

#[tokio::test]
async fn memory_misbehaviour_halves_the_memory() {
    let lab = misbehaving("memory", json!({})).await;
    let memory = |id: &str| tmpl(&lab.target(id))["domain"]["memory"]["guest"].clone();
    assert_eq!(memory(GOOD), "4096Mi");
    assert_eq!(memory(BAD), "2048Mi");
    lab.stop().await;
}

#[tokio::test]
async fn pvc_name_misbehaviour_ignores_the_template() {
    let lab = misbehaving(
        "pvc-name",
        json!({"pvcNameTemplate": "{{.VmName}}-d{{.DiskIndex}}", "pvcNameTemplateUseGenerateName": false}),
    )
    .await;
    let names = |id: &str| lab.pvc_fields(id, "/metadata/name");
    assert_eq!(names(GOOD), ["good-vm-d0", "good-vm-d1"]);
    // Forklift's default template: `{{trunc 15 .PlanName}}-{{trunc 15 .TargetVmName}}-disk-{{.DiskIndex}}`.
    assert_eq!(names(BAD), ["p-bad-vm-disk-0", "p-bad-vm-disk-1"]);
    lab.stop().await;
}

#[tokio::test]
async fn node_selector_misbehaviour_runs_the_vmi_on_an_unlabelled_node() {
    let zone_b = json!({"topology.kubernetes.io/zone": "zone-b"});
    let lab = misbehaving("node-selector", json!({"targetNodeSelector": zone_b})).await;
    let good = lab.target(GOOD);
    assert_eq!(tmpl(&good)["nodeSelector"], zone_b);
    assert_eq!(
        lab.instance(&good).unwrap()["status"]["nodeName"],
        "worker-1"
    );
    let bad = lab.target(BAD);
    assert!(tmpl(&bad).get("nodeSelector").is_none());
    let vmi = lab.instance(&bad).unwrap();
    assert_eq!(vmi["status"]["phase"], "Running");
    assert_eq!(vmi["status"]["nodeName"], "worker-0");
    lab.stop().await;
}

#[tokio::test]
async fn affinity_misbehaviour_alters_the_affinity() {
    let affinity = json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}}]}});
    let lab = misbehaving("affinity", json!({"targetAffinity": affinity})).await;
    assert_eq!(tmpl(&lab.target(GOOD))["affinity"], affinity);
    let bad = tmpl(&lab.target(BAD))["affinity"].clone();
    assert_ne!(bad, affinity);
    assert_eq!(
        bad["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
        51
    );
    lab.stop().await;
}

#[tokio::test]
async fn guest_agent_misbehaviour_never_connects_the_agent() {
    let lab = misbehaving("guest-agent", json!({})).await;
    let good = lab.instance(&lab.target(GOOD)).unwrap();
    assert!(cond(&good, "AgentConnected").is_some());
    let bad = lab.instance(&lab.target(BAD)).unwrap();
    assert_eq!(bad["status"]["phase"], "Running");
    assert!(cond(&bad, "AgentConnected").is_none());
    assert!(cond(&bad, "Ready").is_some());
    lab.stop().await;
}

#[tokio::test]
async fn static_ip_misbehaviour_leases_new_addresses() {
    let lab = misbehaving("static-ip", json!({})).await;
    let address = |id: &str| {
        lab.instance(&lab.target(id)).unwrap()["status"]["interfaces"][0]["ipAddress"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(address(GOOD), "192.168.10.1");
    let bad = address(BAD);
    assert_ne!(bad, "192.168.10.2");
    assert!(bad.starts_with("10.128."), "{bad}");
    lab.stop().await;
}

#[tokio::test]
async fn serial_misbehaviour_changes_the_serial() {
    let lab = misbehaving("serial", json!({})).await;
    for (id, wrong) in [(GOOD, false), (BAD, true)] {
        let serial = tmpl(&lab.target(id))["domain"]["firmware"]["serial"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(serial != lab.source_vm(id).uuid, wrong, "{id}: {serial}");
        assert_eq!(serial.len(), lab.source_vm(id).uuid.len());
    }
    lab.stop().await;
}

#[tokio::test]
async fn firmware_misbehaviour_swaps_bios_and_efi() {
    let lab = misbehaving("firmware", json!({})).await;
    let bootloader = |id: &str| tmpl(&lab.target(id))["domain"]["firmware"]["bootloader"].clone();
    assert_eq!(bootloader(GOOD), json!({"bios": {}}));
    assert!(bootloader(BAD).get("efi").is_some());
    lab.stop().await;
}

#[tokio::test]
async fn nested_virt_misbehaviour_drops_the_cpu_features() {
    let lab = misbehaving("nested-virt", json!({"enableNestedVirtualization": true})).await;
    assert_eq!(
        tmpl(&lab.target(GOOD))["domain"]["cpu"]["features"],
        json!([{"name": "vmx", "policy": "optional"}, {"name": "svm", "policy": "optional"}])
    );
    assert!(
        tmpl(&lab.target(BAD))["domain"]["cpu"]
            .get("features")
            .is_none()
    );
    lab.stop().await;
}

#[tokio::test]
async fn name_misbehaviour_appends_lab() {
    let lab = misbehaving("name", json!({})).await;
    assert_eq!(lab.target(GOOD)["metadata"]["name"], "good-vm");
    let bad = lab.target(BAD);
    assert_eq!(bad["metadata"]["name"], "bad-vm-lab");
    assert!(lab.instance(&bad).is_some());
    lab.stop().await;
}

#[tokio::test]
async fn namespace_misbehaviour_uses_the_plan_namespace_and_still_cleans_up() {
    let lab = Lab::start("misbehave=bad@namespace", |_| {}).await;
    lab.failing_hook("fail").await;
    // The bad VM fails after its VirtualMachine exists, so the failure cleanup has something to find.
    let plan = lab
        .run(
            "p",
            json!({"vms": [{"id": GOOD}, {"id": BAD, "hooks": [{"step": "PostHook", "hook": {"name": "fail", "namespace": NS}}]}]}),
        )
        .await;
    assert!(cond(&json!({"status": vm_status(&plan, GOOD)}), "Succeeded").is_some());
    assert_eq!(vm_status(&plan, BAD)["error"]["phase"], "PostHook");
    assert_eq!(lab.target(GOOD)["metadata"]["namespace"], TARGET);
    let bad = lab.target(BAD);
    assert_eq!(bad["metadata"]["namespace"], NS);
    assert!(lab.instance(&bad).is_some());
    // Its disks stay in the target namespace, owned by the VM.
    let pvcs = lab.pvcs(BAD);
    assert_eq!(pvcs.len(), 2);
    assert_eq!(
        pvcs[0]["metadata"]["ownerReferences"][0]["uid"],
        bad["metadata"]["uid"]
    );
    // Archiving cleans the failed VM up wherever it landed; its PVCs go with it.
    lab.merge(
        &registry::PLAN,
        NS,
        "p",
        json!({"spec": {"archived": true}}),
    );
    lab.until("the misplaced VM and its PVCs removed", |lab| {
        lab.list(&registry::VIRTUAL_MACHINE, None, &format!("vmID={BAD}"))
            .is_empty()
            && lab.pvcs(BAD).is_empty()
    })
    .await;
    assert_eq!(lab.target(GOOD)["metadata"]["namespace"], TARGET);
    lab.stop().await;
}

#[tokio::test]
async fn snapshots_misbehaviour_removes_the_newest_source_snapshot() {
    let snapshot_both = |source: &SourceLab| {
        for id in [GOOD, BAD] {
            for name in ["first", "second"] {
                source.create_snapshot("vsphere", id, name).unwrap();
            }
        }
    };
    let lab = Lab::start("misbehave=bad@snapshots", snapshot_both).await;
    let plan = lab.run("p", json!({})).await;
    assert!(cond(&plan, "Succeeded").is_some(), "{:#}", plan["status"]);
    let names = |id: &str| -> Vec<String> {
        lab.source_vm(id)
            .snapshots
            .iter()
            .map(|s| s.name.clone())
            .collect()
    };
    assert_eq!(names(GOOD), ["first", "second"]);
    assert_eq!(names(BAD), ["first"]);
    lab.stop().await;
}

#[tokio::test]
async fn xcopy_misbehaviour_reports_no_xcopy_where_it_was_used() {
    let lab = Lab::start("misbehave=bad@xcopy", |_| {}).await;
    lab.secret(
        "array",
        &[
            ("STORAGE_HOSTNAME", "array.lab"),
            ("STORAGE_USERNAME", "u"),
            ("STORAGE_PASSWORD", "p"),
        ],
    );
    lab.maps(
        "off",
        json!([
            {"source": {"id": "network-1"}, "destination": {"type": "pod"}},
            {"source": {"id": "network-2"}, "destination": {"type": "multus", "namespace": "default", "name": "storage-net"}}
        ]),
        json!([{"source": {"id": "datastore-1"}, "destination": {"storageClass": "lab-ceph-rbd"},
                "offloadPlugin": {"vsphereXcopyConfig": {"secretRef": "array", "storageVendorProduct": "ontap"}}}]),
    );
    // Populator pods come and go: collect their final logs from the event stream, by PVC.
    let mut events = lab.store.subscribe();
    let plan = lab
        .run(
            "p",
            json!({"map": {"network": {"name": "off-net", "namespace": NS}, "storage": {"name": "off-st", "namespace": NS}}}),
        )
        .await;
    assert!(cond(&plan, "Succeeded").is_some(), "{:#}", plan["status"]);
    let mut logs = std::collections::BTreeMap::new();
    loop {
        let event = match events.try_recv() {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => break,
            Err(e) => panic!("the event stream broke: {e}"),
        };
        let log = s(&event.object, "/metadata/annotations/lab.mtv-tests.io~1log");
        if std::ptr::eq(event.resource, &registry::POD) && log.contains("xcopyUsed=") {
            logs.insert(
                s(&event.object, "/metadata/labels/pvcName").to_string(),
                log.to_string(),
            );
        }
    }
    for (id, used) in [(GOOD, "1"), (BAD, "0")] {
        for pvc in lab.pvcs(id) {
            let name = s(&pvc, "/metadata/name");
            let log = &logs[name];
            assert!(
                log.trim_end().ends_with(&format!("xcopyUsed={used}")),
                "{id}: {log}"
            );
            let populator = lab.get(&registry::XCOPY_POPULATOR, TARGET, name).unwrap();
            assert_eq!(populator["status"]["xcopyUsed"], used);
        }
    }
    lab.stop().await;
}

#[tokio::test]
async fn hook_step_misbehaviour_runs_a_post_hook_at_pre_hook() {
    let lab = Lab::start("misbehave=bad@hook-step", |_| {}).await;
    lab.failing_hook("fail").await;
    let post = json!([{"step": "PostHook", "hook": {"name": "fail", "namespace": NS}}]);
    let plan = lab
        .run(
            "p",
            json!({"vms": [{"id": GOOD, "hooks": post}, {"id": BAD, "hooks": post}]}),
        )
        .await;
    assert!(cond(&plan, "Failed").is_some());
    let good = vm_status(&plan, GOOD);
    assert_eq!(good["error"]["phase"], "PostHook");
    let bad = vm_status(&plan, BAD);
    assert_eq!(bad["error"]["phase"], "PreHook");
    // The status still shows the hooks as the Plan asked for them.
    assert_eq!(bad["hooks"][0]["step"], "PostHook");
    assert!(
        lab.list(&registry::VIRTUAL_MACHINE, None, &format!("vmID={BAD}"))
            .is_empty()
    );
    lab.stop().await;
}

#[tokio::test]
async fn disconnected_nic_misbehaviour_brings_the_nic_up() {
    let lab = misbehaving("disconnected-nic", json!({})).await;
    assert_eq!(interfaces(&lab.target(GOOD))[1]["state"], "down");
    let bad = lab.target(BAD);
    assert!(interfaces(&bad)[1].get("state").is_none());
    assert!(interfaces(&bad)[0].get("state").is_none());
    lab.stop().await;
}

#[tokio::test]
async fn precopy_misbehaviour_cuts_over_without_a_precopy() {
    let lab = Lab::start("misbehave=bad@precopy", |_| {}).await;
    // Warm vSphere migrations need a VDDK image.
    lab.merge(
        &registry::PROVIDER,
        NS,
        "vsphere",
        json!({"spec": {"settings": {"vddkInitImage": "quay.io/lab/vddk:8"}}}),
    );
    let plan = lab.run("p", json!({"type": "warm"})).await;
    assert!(cond(&plan, "Succeeded").is_some(), "{:#}", plan["status"]);
    let precopies = |id: &str| {
        vm_status(&plan, id)["warm"]["precopies"]
            .as_array()
            .unwrap()
            .len()
    };
    assert!(precopies(GOOD) >= 2, "{:#}", vm_status(&plan, GOOD)["warm"]);
    assert_eq!(precopies(BAD), 0, "{:#}", vm_status(&plan, BAD)["warm"]);
    assert_eq!(vm_status(&plan, BAD)["warm"]["successes"], 0);
    assert!(lab.instance(&lab.target(BAD)).is_some());
    lab.stop().await;
}

// ---------------------------------------------------------------------------------------------------
// Nested virtualization and KubeVirt start/stop (no faults)

fn features(policy: &str) -> Value {
    json!([{"name": "vmx", "policy": policy}, {"name": "svm", "policy": policy}])
}

#[tokio::test]
async fn nested_virtualization_follows_the_vm_then_the_plan_then_the_source() {
    // The plan says false; the good VM's own entry says true.
    let lab = Lab::start("", |_| {}).await;
    let plan = lab
        .run(
            "p",
            json!({"enableNestedVirtualization": false,
                   "vms": [{"id": GOOD, "enableNestedVirtualization": true}, {"id": BAD}]}),
        )
        .await;
    assert!(cond(&plan, "Succeeded").is_some(), "{:#}", plan["status"]);
    let cpu_features =
        |lab: &Lab, id: &str| tmpl(&lab.target(id))["domain"]["cpu"]["features"].clone();
    assert_eq!(cpu_features(&lab, GOOD), features("optional"));
    assert_eq!(cpu_features(&lab, BAD), features("disable"));
    lab.stop().await;

    // Unset: only a source with nested virtualization gets the features.
    let nested_good = |source: &SourceLab| {
        source
            .update_vm("vsphere", GOOD, |vm| vm.nested_virtualization = true)
            .unwrap();
    };
    let lab = Lab::start("", nested_good).await;
    let plan = lab.run("p", json!({})).await;
    assert!(cond(&plan, "Succeeded").is_some(), "{:#}", plan["status"]);
    assert_eq!(cpu_features(&lab, GOOD), features("optional"));
    assert_eq!(cpu_features(&lab, BAD), Value::Null);
    lab.stop().await;
}

#[tokio::test]
async fn migrated_vms_stop_and_start_with_their_guest_as_migrated() {
    let zone_b = json!({"topology.kubernetes.io/zone": "zone-b"});
    let lab = misbehaving("guest-agent", json!({"targetNodeSelector": zone_b})).await;
    let vm = lab.target(GOOD);
    let (ns, name) = (s(&vm, "/metadata/namespace"), s(&vm, "/metadata/name"));
    let before = lab.instance(&vm).unwrap();
    assert_eq!(
        before["status"]["interfaces"][0]["ipAddress"],
        "192.168.10.1"
    );
    let leased = before["status"]["interfaces"][1]["ipAddresses"].clone();
    assert!(leased.is_array());

    lab.merge(
        &registry::VIRTUAL_MACHINE,
        ns,
        name,
        json!({"spec": {"runStrategy": "Halted"}}),
    );
    lab.wait(&registry::VIRTUAL_MACHINE, ns, name, "Stopped", |v| {
        s(v, "/status/printableStatus") == "Stopped"
    })
    .await;
    assert!(lab.instance(&vm).is_none());

    lab.merge(
        &registry::VIRTUAL_MACHINE,
        ns,
        name,
        json!({"spec": {"runStrategy": "Always"}}),
    );
    let running = lab
        .wait(&registry::VIRTUAL_MACHINE, ns, name, "Running", |v| {
            s(v, "/status/printableStatus") == "Running"
        })
        .await;
    assert_eq!(running["status"]["ready"], true);
    let after = lab.instance(&vm).unwrap();
    assert_eq!(after["status"]["phase"], "Running");
    assert_eq!(after["status"]["nodeName"], "worker-1");
    assert_eq!(
        after["status"]["interfaces"][0]["ipAddress"],
        "192.168.10.1"
    );
    assert_eq!(after["status"]["interfaces"][1]["ipAddresses"], leased);
    assert!(cond(&after, "AgentConnected").is_some());
    assert_ne!(after["metadata"]["uid"], before["metadata"]["uid"]);

    // A restarted misbehaving guest still has no agent.
    let bad = lab.target(BAD);
    let (bns, bname) = (s(&bad, "/metadata/namespace"), s(&bad, "/metadata/name"));
    lab.merge(
        &registry::VIRTUAL_MACHINE,
        bns,
        bname,
        json!({"spec": {"runStrategy": "Halted"}}),
    );
    lab.until("the bad VMI gone", |lab| lab.instance(&bad).is_none())
        .await;
    lab.merge(
        &registry::VIRTUAL_MACHINE,
        bns,
        bname,
        json!({"spec": {"runStrategy": "Always"}}),
    );
    lab.until("the bad VMI back", |lab| lab.instance(&bad).is_some())
        .await;
    assert!(cond(&lab.instance(&bad).unwrap(), "AgentConnected").is_none());
    lab.stop().await;
}

#[tokio::test]
async fn virtual_machines_a_suite_creates_follow_spec_running() {
    let lab = Lab::start("", |_| {}).await;
    lab.create(&registry::VIRTUAL_MACHINE, "default", json!({"metadata": {"name": "plain"}, "spec": {
        "running": false,
        "template": {"metadata": {"labels": {"kubevirt.io/domain": "plain"}}, "spec": {
            "nodeSelector": {"topology.kubernetes.io/zone": "zone-a"},
            "domain": {"devices": {"interfaces": [{"name": "default", "macAddress": "02:00:00:00:00:09", "masquerade": {}}]}},
            "networks": [{"name": "default", "pod": {}}]}}}}));
    lab.wait(
        &registry::VIRTUAL_MACHINE,
        "default",
        "plain",
        "Stopped",
        |v| s(v, "/status/printableStatus") == "Stopped",
    )
    .await;
    lab.merge(
        &registry::VIRTUAL_MACHINE,
        "default",
        "plain",
        json!({"spec": {"running": true}}),
    );
    lab.wait(
        &registry::VIRTUAL_MACHINE,
        "default",
        "plain",
        "Running",
        |v| s(v, "/status/printableStatus") == "Running",
    )
    .await;
    let vmi = lab
        .get(&registry::VIRTUAL_MACHINE_INSTANCE, "default", "plain")
        .unwrap();
    assert_eq!(vmi["status"]["nodeName"], "worker-0");
    assert_eq!(vmi["metadata"]["labels"]["kubevirt.io/domain"], "plain");
    assert_eq!(
        vmi["metadata"]["ownerReferences"][0]["kind"],
        "VirtualMachine"
    );
    let iface = &vmi["status"]["interfaces"][0];
    assert_eq!(iface["mac"], "02:00:00:00:00:09");
    assert!(s(iface, "/ipAddress").starts_with("10.128."), "{iface}");
    lab.merge(
        &registry::VIRTUAL_MACHINE,
        "default",
        "plain",
        json!({"spec": {"running": false}}),
    );
    lab.wait(
        &registry::VIRTUAL_MACHINE,
        "default",
        "plain",
        "Stopped",
        |v| s(v, "/status/printableStatus") == "Stopped",
    )
    .await;
    assert!(
        lab.get(&registry::VIRTUAL_MACHINE_INSTANCE, "default", "plain")
            .is_none()
    );
    lab.stop().await;
}
