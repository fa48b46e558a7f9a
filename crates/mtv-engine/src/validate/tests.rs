use super::*;
use crate::checklist::{Facts, vm_checks};
use mtv_catalog::model::{AddDisk, PlanConfig, Power, PvcNameTemplate, RdmType, VmConfig};
use mtv_catalog::steps::{Step, StepExpectation, StepKind};
use mtv_providers::{SourceIp, SourceNic};
use serde_json::json;

/// The scenario the table's conditions read: one VM that asks for every optional check.
fn scenario(template: Option<&str>) -> PlanConfig {
    let vm = VmConfig {
        name: "mtv-tests-rhel8".into(),
        guest_agent: true,
        source_vm_power: Some(Power::On),
        snapshots: Some(1),
        ..VmConfig::default()
    };
    PlanConfig {
        virtual_machines: vec![vm],
        preserve_static_ips: Some(true),
        enable_nested_virtualization: Some(false),
        target_labels: Some(BTreeMap::from([(
            "team".to_string(),
            Some("qe".to_string()),
        )])),
        target_node_selector: Some(BTreeMap::from([(
            "mtv-node-s1".to_string(),
            Some("s1".to_string()),
        )])),
        target_affinity: Some(json!({"podAffinity": {}})),
        pvc_name_template: template.map(|t| PvcNameTemplate::Single(t.to_string())),
        ..PlanConfig::default()
    }
}

const CHECK_VMS: Step = Step {
    kind: StepKind::CheckVms,
    expectation: StepExpectation::Succeed,
};

/// What the table says applies to the scenario's VM.
fn table(provider_type: ProviderType, config: &PlanConfig) -> crate::checklist::VmChecks {
    let facts =
        Facts::scenario(provider_type, config, CHECK_VMS).for_vm(&config.virtual_machines[0]);
    vm_checks(CHECK_VMS, &facts)
}

fn source() -> SourceVm {
    SourceVm {
        id: "vm-101".into(),
        name: "mtv-tests-rhel8".into(),
        powered_on: true,
        template: false,
        cpu_sockets: 2,
        cores_per_socket: 2,
        memory_mib: 4096,
        firmware: "efi".into(),
        uuid: "421a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8".into(),
        guest_agent: true,
        cbt: false,
        disks: vec![
            SourceDisk {
                file: "[ds1] rhel8/rhel8.vmdk".into(),
                datastore: "datastore-1".into(),
                capacity_gib: 20,
                provisioning: "thin".into(),
                mode: "persistent".into(),
                rdm: None,
                controller_key: 1000,
                unit_number: 0,
            },
            SourceDisk {
                file: "[ds1] rhel8/rhel8_1.vmdk".into(),
                datastore: "datastore-1".into(),
                capacity_gib: 5,
                provisioning: "thin".into(),
                mode: "persistent".into(),
                rdm: None,
                controller_key: 1000,
                unit_number: 1,
            },
        ],
        nics: vec![
            SourceNic {
                mac: "00:50:56:aa:00:01".into(),
                network: "network-1".into(),
                start_connected: true,
                device: None,
                ips: vec![SourceIp {
                    ip: "10.10.1.21".into(),
                    prefix: 24,
                    gateway: Some("10.10.1.1".into()),
                    is_static: true,
                }],
            },
            SourceNic {
                mac: "00:50:56:aa:00:02".into(),
                network: "network-2".into(),
                start_connected: false,
                device: None,
                ips: vec![],
            },
        ],
        snapshots: vec![SourceSnapshot {
            id: "snapshot-1".into(),
            name: "before".into(),
            created: "2026-11-25T04:00:10Z".into(),
        }],
        host: None,
        events: vec![],
    }
}

fn target_vm() -> Value {
    json!({
        "metadata": {"name": "mtv-tests-rhel8", "namespace": "target"},
        "spec": {"runStrategy": "Always", "template": {
            "metadata": {"labels": {"app": "mtv-tests-rhel8", "team": "qe"}},
            "spec": {
                "domain": {
                    "cpu": {"sockets": 2, "cores": 2, "threads": 1,
                            "features": [{"name": "vmx", "policy": "disable"}, {"name": "svm", "policy": "disable"}]},
                    "memory": {"guest": "4Gi"},
                    "firmware": {"serial": "421a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8", "bootloader": {"efi": {"secureBoot": false}}},
                    "devices": {
                        "disks": [{"name": "vol-0", "disk": {"bus": "virtio"}}, {"name": "vol-1", "disk": {"bus": "virtio"}}],
                        "interfaces": [
                            {"name": "net-0", "macAddress": "00:50:56:aa:00:01", "masquerade": {}},
                            {"name": "net-1", "macAddress": "00:50:56:AA:00:02", "bridge": {}, "state": "down"}
                        ]
                    }
                },
                "networks": [{"name": "net-0", "pod": {}}, {"name": "net-1", "multus": {"networkName": "nads/nad-1"}}],
                "nodeSelector": {"mtv-node-s1": "s1"},
                "affinity": {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50}]}}
            }
        }}
    })
}

fn pvcs() -> Vec<Value> {
    [("mtv-t-disk-0", "[ds1] rhel8/rhel8.vmdk", "20Gi"), ("mtv-t-disk-1", "[ds1] rhel8/rhel8_1.vmdk", "5120Mi")]
        .iter()
        .map(|(name, file, size)| {
            json!({"metadata": {"name": name, "annotations": {"forklift.konveyor.io/disk-source": file}},
                   "spec": {"storageClassName": "lab-ceph-rbd", "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": size}}}})
        })
        .collect()
}

fn vmi() -> Value {
    json!({"status": {"nodeName": "worker-1",
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "AgentConnected", "status": "True"}],
        "interfaces": [{"mac": "00:50:56:aa:00:01", "ipAddress": "10.10.1.21", "ipAddresses": ["10.10.1.21"]}]}})
}

struct Case {
    source: SourceVm,
    source_now: SourceVm,
    vm: Value,
    vmi: Option<Value>,
    pvcs: Vec<Value>,
    storage_map: Vec<Value>,
    network_map: Vec<Value>,
    labels: BTreeMap<String, String>,
    selector: BTreeMap<String, String>,
    affinity: Value,
    provider_type: ProviderType,
    template: Option<(&'static str, bool)>,
    ocp: Option<&'static str>,
}

impl Case {
    fn new() -> Self {
        Case {
            source: source(),
            source_now: source(),
            vm: target_vm(),
            vmi: Some(vmi()),
            pvcs: pvcs(),
            storage_map: vec![
                json!({"source": {"id": "datastore-1"}, "destination": {"storageClass": "lab-ceph-rbd"}}),
            ],
            network_map: vec![
                json!({"source": {"id": "network-1"}, "destination": {"type": "pod"}}),
                json!({"source": {"id": "network-2"}, "destination": {"type": "multus", "namespace": "nads", "name": "nad-1"}}),
            ],
            labels: BTreeMap::from([("team".to_string(), "qe".to_string())]),
            selector: BTreeMap::from([("mtv-node-s1".to_string(), "s1".to_string())]),
            affinity: json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50}]}}),
            provider_type: ProviderType::Vsphere,
            template: Some(("{{.VmName | trunc 5}}-disk-{{.DiskIndex}}", false)),
            ocp: Some("4.19"),
        }
    }

    fn report(&self) -> Report {
        let config = scenario(self.template.map(|(t, _)| t));
        let expected = Expected {
            provider_type: self.provider_type,
            source: &self.source,
            source_now: Some(&self.source_now),
            snapshots_before: &self.source.snapshots,
            target_name: None,
            namespace: "target",
            plan_name: "plan",
            power: Some(true),
            storage_map: &self.storage_map,
            network_map: &self.network_map,
            labels: Some(&self.labels),
            node_selector: Some(&self.selector),
            labelled_node: Some("worker-1"),
            affinity: Some(&self.affinity),
            pvc_name_template: self.template,
            nested_virtualization: Some(false),
            target_ocp_version: self.ocp,
        };
        let observed = Observed {
            vm: &self.vm,
            vmi: self.vmi.as_ref(),
            pvcs: &self.pvcs,
            powered_on: Some(self.vm["spec"]["runStrategy"] == "Always"),
        };
        check_vm(&expected, &observed, &table(self.provider_type, &config))
    }

    /// The one failure this case must produce, as text.
    fn only_failure(&self) -> String {
        let report = self.report();
        assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
        report.failures[0].to_string()
    }
}

#[test]
fn a_faithful_migration_passes_every_check() {
    let report = Case::new().report();
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    for check in [
        "check_vm_name",
        "check_vms_power_state",
        "check_cpu",
        "check_memory",
        "check_storage",
        "check_pvc_names",
        "check_network",
        "check_disconnected_nic_state",
        "check_vm_labels",
        "check_vm_node_placement",
        "check_vm_affinity",
        "check_guest_agent",
        "check_static_ip_preservation",
        "check_cpu_features",
        "check_serial_preservation",
        "check_boot_configuration",
        "check_snapshots",
    ] {
        assert!(
            report.ran.contains(&check),
            "{check} did not run: {:?}",
            report.skipped
        );
    }
}

#[test]
fn each_wrong_point_fails_its_check_with_expected_and_actual() {
    type Break = fn(&mut Case);
    let cases: Vec<(Break, &str)> = vec![
        (
            |c| c.vm["spec"]["runStrategy"] = json!("Halted"),
            "check_vms_power_state - power state: expected on, got off",
        ),
        (
            |c| c.vm["spec"]["template"]["spec"]["domain"]["cpu"]["sockets"] = json!(3),
            "check_cpu - sockets: expected 2, got 3",
        ),
        (
            |c| c.vm["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] = json!(1),
            "check_cpu - cores per socket: expected 2, got 1",
        ),
        (
            |c| c.vm["spec"]["template"]["spec"]["domain"]["memory"]["guest"] = json!("2Gi"),
            "check_memory - memory: expected 4096 MiB, got 2048 MiB",
        ),
        (
            |c| c.pvcs[1]["spec"]["storageClassName"] = json!("lab-nfs"),
            "check_storage - disk [ds1] rhel8/rhel8_1.vmdk (PVC mtv-t-disk-1) storage class: expected lab-ceph-rbd, got lab-nfs",
        ),
        (
            |c| c.pvcs[0]["spec"]["resources"]["requests"]["storage"] = json!("19Gi"),
            "check_storage - disk [ds1] rhel8/rhel8.vmdk (PVC mtv-t-disk-0) size: expected at least 20 GiB, got 19Gi",
        ),
        (
            |c| {
                c.vm["spec"]["template"]["spec"]["domain"]["devices"]["disks"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            },
            "check_storage - disk count: expected 2, got 1",
        ),
        (
            |c| c.pvcs[1]["metadata"]["name"] = json!("plan-vm-101-x7k2p"),
            "check_pvc_names - disk [ds1] rhel8/rhel8_1.vmdk: expected PVC mtv-t-disk-1, got PVCs plan-vm-101-x7k2p",
        ),
        (
            |c| {
                c.vm["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][0]["macAddress"] =
                    json!("00:50:56:aa:00:09")
            },
            "check_network - NIC 00:50:56:aa:00:01: expected an interface with this MAC, got MACs 00:50:56:aa:00:09, 00:50:56:aa:00:02",
        ),
        (
            |c| {
                c.vm["spec"]["template"]["spec"]["networks"][1] =
                    json!({"name": "net-1", "pod": {}})
            },
            "check_network - NIC 00:50:56:aa:00:02 network: expected nads/nad-1, got pod",
        ),
        (
            |c| {
                c.vm["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][1]
                    .as_object_mut()
                    .unwrap()
                    .remove("state");
            },
            "check_disconnected_nic_state - NIC 00:50:56:aa:00:02: expected state down, got state up",
        ),
        (
            |c| {
                c.vm["spec"]["template"]["metadata"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("team");
            },
            "check_vm_labels - label team: expected qe, got no such label",
        ),
        (
            |c| c.vmi.as_mut().unwrap()["status"]["nodeName"] = json!("worker-0"),
            "check_vm_node_placement - node: expected worker-1, got worker-0",
        ),
        (
            |c| {
                c.affinity["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] =
                    json!(51)
            },
            "check_vm_affinity - affinity: expected",
        ),
        (
            |c| {
                c.vmi.as_mut().unwrap()["status"]["conditions"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            },
            "check_guest_agent - guest agent: expected connected, got not connected",
        ),
        (
            |c| {
                c.vmi.as_mut().unwrap()["status"]["interfaces"][0]["ipAddresses"] =
                    json!(["10.128.2.7"])
            },
            "check_static_ip_preservation - NIC 00:50:56:aa:00:01 IPs: expected 10.10.1.21, got 10.128.2.7",
        ),
        (
            |c| {
                c.vm["spec"]["template"]["spec"]["domain"]["cpu"]
                    .as_object_mut()
                    .unwrap()
                    .remove("features");
            },
            "check_cpu_features - CPU feature vmx: expected policy disable, got absent",
        ),
        (
            |c| {
                c.vm["spec"]["template"]["spec"]["domain"]["firmware"]["serial"] =
                    json!("11111111-2222-3333-4444-555555555555")
            },
            "check_serial_preservation - firmware serial: expected 421a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8, got 11111111-2222-3333-4444-555555555555",
        ),
        (
            |c| {
                c.vm["spec"]["template"]["spec"]["domain"]["firmware"]["bootloader"] =
                    json!({"bios": {}})
            },
            "check_boot_configuration - boot firmware: expected efi, got bios",
        ),
        (
            |c| c.source_now.snapshots.clear(),
            "check_snapshots - source snapshots: expected snapshot-1 \"before\" 2026-11-25T04:00, got none",
        ),
        (
            |c| c.vm["metadata"]["name"] = json!("mtv-tests-rhel8-lab"),
            "check_vm_name - name: expected mtv-tests-rhel8, got mtv-tests-rhel8-lab",
        ),
        (
            |c| c.vm["metadata"]["namespace"] = json!("session"),
            "check_vm_namespace - namespace: expected target, got session",
        ),
    ];
    for (index, (wreck, wanted)) in cases.into_iter().enumerate() {
        let mut case = Case::new();
        wreck(&mut case);
        let failures = case.report().failures;
        // The CPU-feature case breaks vmx and svm alike; every other case breaks one point.
        let text: Vec<String> = failures.iter().map(ToString::to_string).collect();
        assert!(
            !text.is_empty()
                && text[0].starts_with(wanted)
                && failures.iter().all(|f| f.check == failures[0].check),
            "case {index}: wanted {wanted:?}, got {text:#?}"
        );
    }
}

#[test]
fn ova_skips_cpu_memory_network_and_the_vsphere_only_checks() {
    let mut case = Case::new();
    case.provider_type = ProviderType::Ova;
    case.template = None;
    case.vm["spec"]["template"]["spec"]["domain"]["cpu"]["sockets"] = json!(8);
    let report = case.report();
    let skipped: Vec<&str> = report.skipped.iter().map(|(c, _)| *c).collect();
    for check in [
        "check_cpu",
        "check_memory",
        "check_network",
        "check_serial_preservation",
        "check_static_ip_preservation",
        "check_pvc_names",
    ] {
        assert!(skipped.contains(&check), "{check} not skipped: {skipped:?}");
    }
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
}

#[test]
fn pvc_templates_with_disk_index_are_skipped_off_vsphere() {
    let mut case = Case::new();
    case.provider_type = ProviderType::Ovirt;
    let report = case.report();
    let reason = report
        .skipped
        .iter()
        .find(|(c, _)| *c == "check_pvc_names")
        .map(|(_, r)| r.as_str());
    assert!(
        reason.is_some_and(|r| r.contains("vSphere only")),
        "{reason:?}"
    );
}

#[test]
fn generate_name_templates_match_the_prefix_and_five_random_characters() {
    let mut case = Case::new();
    case.template = Some(("{{.VmName}}-{{.DiskIndex}}", true));
    case.pvcs[0]["metadata"]["name"] = json!("mtv-tests-rhel8-0-ab12c");
    case.pvcs[1]["metadata"]["name"] = json!("mtv-tests-rhel8-1-zz9x0");
    assert!(case.report().failures.is_empty());
    case.pvcs[1]["metadata"]["name"] = json!("mtv-tests-rhel8-1");
    assert_eq!(
        case.only_failure(),
        "check_pvc_names - disk [ds1] rhel8/rhel8_1.vmdk: expected a PVC named mtv-tests-rhel8-1-<5 random>, got PVCs mtv-tests-rhel8-1"
    );
}

#[test]
fn the_serial_follows_the_openshift_version() {
    let uuid = "421a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8";
    assert_eq!(vsphere_serial(uuid, Some("4.19")), vec![uuid]);
    assert_eq!(
        vsphere_serial(uuid, Some("4.20.1")),
        vec!["VMware-42 1a 2b 3c 4d 5e 6f 70-81 92 a3 b4 c5 d6 e7 f8"]
    );
    assert_eq!(vsphere_serial(uuid, None).len(), 2);
    let mut case = Case::new();
    case.ocp = Some("4.20");
    assert!(
        case.only_failure()
            .starts_with("check_serial_preservation - firmware serial: expected VMware-42 1a")
    );
}

#[test]
fn ignored_networks_must_have_no_interface() {
    let mut case = Case::new();
    case.network_map[1] =
        json!({"source": {"id": "network-2"}, "destination": {"type": "ignored"}});
    assert_eq!(
        case.only_failure(),
        "check_network - NIC 00:50:56:aa:00:02: expected no interface (the map ignores its network), got an interface"
    );
}

#[test]
fn rdm_disks_must_be_scsi_luns() {
    let mut case = Case::new();
    case.source.disks[1].rdm = Some("lun-1".into());
    let mut config = scenario(None);
    config.rdm_as_lun = Some(true);
    config.virtual_machines[0].add_disks = vec![AddDisk {
        size_gb: 1,
        provision_type: None,
        disk_mode: None,
        datastore_id: None,
        datastore_path: None,
        rdm_type: Some(RdmType::Physical),
    }];
    let checks = table(ProviderType::Vsphere, &config);
    assert!(checks.includes("verify_rdm_disk_bus_types"));
    let only_rdm = crate::checklist::VmChecks {
        applying: checks
            .applying
            .into_iter()
            .filter(|c| c.name == "verify_rdm_disk_bus_types")
            .collect(),
        not_applying: vec![],
    };
    let expected_report = |vm: &Value| {
        let expected = Expected {
            provider_type: ProviderType::Vsphere,
            source: &case.source,
            source_now: None,
            snapshots_before: &[],
            target_name: None,
            namespace: "target",
            plan_name: "plan",
            power: None,
            storage_map: &case.storage_map,
            network_map: &case.network_map,
            labels: None,
            node_selector: None,
            labelled_node: None,
            affinity: None,
            pvc_name_template: None,
            nested_virtualization: None,
            target_ocp_version: None,
        };
        let observed = Observed {
            vm,
            vmi: None,
            pvcs: &case.pvcs,
            powered_on: Some(true),
        };
        check_vm(&expected, &observed, &only_rdm)
            .failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    let mut vm = case.vm.clone();
    assert_eq!(
        expected_report(&vm),
        vec!["verify_rdm_disk_bus_types - LUN disks: expected at least one, got none"]
    );
    vm["spec"]["template"]["spec"]["domain"]["devices"]["disks"][1] =
        json!({"name": "vol-1", "lun": {"bus": "sata"}});
    assert_eq!(
        expected_report(&vm),
        vec!["verify_rdm_disk_bus_types - LUN vol-1: expected bus scsi, got bus sata"]
    );
    vm["spec"]["template"]["spec"]["domain"]["devices"]["disks"][1] =
        json!({"name": "vol-1", "lun": {"bus": "scsi"}});
    assert!(expected_report(&vm).is_empty());
}

#[test]
fn plan_options_must_be_kept_as_sent() {
    let sent = json!({"targetLabels": {"a": "b"}, "vms": [{"id": "vm-1"}], "warm": true});
    let stored = json!({"targetLabels": {"a": "b"}, "vms": [{"id": "vm-1", "name": "x"}], "warm": true, "type": "cold"});
    assert!(fields_not_kept(&sent, &stored).is_empty());
    let lost = json!({"targetLabels": {}, "vms": [{"id": "vm-2"}], "warm": false});
    assert_eq!(
        fields_not_kept(&sent, &lost),
        vec![
            "spec.targetLabels.a: expected \"b\", got nothing",
            "spec.vms[0].id: expected \"vm-1\", got \"vm-2\"",
            "spec.warm: expected true, got false",
        ]
    );
}

#[test]
fn the_provider_secret_must_say_what_the_profile_says_about_tls() {
    let secret = |value: &str| json!({"data": {"insecureSkipVerify": value}});
    // "true" and "false" in base64.
    assert_eq!(
        check_ssl_configuration(ProviderType::Vsphere, &secret("dHJ1ZQ=="), true),
        Ok(None)
    );
    assert_eq!(
        check_ssl_configuration(ProviderType::Ovirt, &secret("ZmFsc2U="), true)
            .unwrap()
            .unwrap()
            .to_string(),
        "check_ssl_configuration - Provider Secret insecureSkipVerify: expected true, got false"
    );
    assert_eq!(
        check_ssl_configuration(ProviderType::Ova, &json!({}), true),
        Ok(None)
    );
    assert!(check_ssl_configuration(ProviderType::Openstack, &secret("%%"), true).is_err());
}

#[test]
fn a_hard_power_off_during_the_migration_fails_on_ovirt() {
    let mut case = Case::new();
    case.provider_type = ProviderType::Ovirt;
    case.template = None;
    let stop = |kind: &str, code: Option<u32>| mtv_providers::SourceEvent {
        kind: kind.into(),
        code,
        description: format!("{kind} on mtv-tests-rhel8"),
        time: "2026-11-25T05:00:00Z".into(),
    };
    // The suite's own stop during preparation does not count; Forklift's shutdown is fine.
    case.source.events = vec![stop("USER_STOP_VM", Some(33))];
    case.source_now.events = vec![
        stop("USER_STOP_VM", Some(33)),
        stop("USER_INITIATED_SHUTDOWN_VM", None),
    ];
    assert!(
        case.report().failures.is_empty(),
        "{:#?}",
        case.report().failures
    );
    case.source_now.events.push(stop("USER_STOP_VM", Some(33)));
    assert_eq!(
        case.only_failure(),
        "check_false_vm_power_off - source events: expected no USER_STOP_VM (code 33) during the migration, got USER_STOP_VM on mtv-tests-rhel8 at 2026-11-25T05:00:00Z"
    );
}
