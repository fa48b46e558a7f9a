//! The lab file (validation, the built-in default lab and its coverage of the catalog) and the lab source
//! API under `/lab/v1/sources`.

mod source_api;

use source_api::{call, post, vsphere_vm_id};

use std::collections::BTreeSet;

use axum::http::StatusCode;
use mtv_api::ProviderType;
use mtv_catalog::Catalog;
use mtv_lab::source::model::{PowerState, Provisioning};
use mtv_lab::source::{
    BUILTIN_LAB_YAML, CloneSpec, ConnectError, PowerAction, SourceChangeKind, SourceError,
    SourceLab,
};
use serde_json::{Value, json};

const SMALL_LAB: &str = r#"version: 1
providers:
  - name: vsphere
    type: vsphere
    url: https://vcenter.example/sdk
    username: admin
    password: secret
    hosts: [{id: host-1, name: esx1, cluster: c1}]
    networks: [{id: network-1, name: VM Network}]
    datastores: [{id: datastore-1, name: ds1, capacity_gib: 100, free_gib: 50}]
    vms:
      - id: vm-1
        name: rhel8
        power_state: off
        host: host-1
        memory_mib: 2048
        guest_os: rhel8_64Guest
        uuid: u-1
        disks: [{key: 2000, file: "[ds1] rhel8/rhel8.vmdk", datastore: datastore-1, capacity_gib: 30, unit_number: 0}]
        nics: [{mac: "00:50:56:00:00:01", network: network-1}]
"#;

fn invalid_message(text: &str) -> String {
    match SourceLab::parse("lab.yaml", text) {
        Err(SourceError::InvalidLabFile { file, message }) => {
            assert_eq!(file, "lab.yaml");
            message
        }
        Err(other) => panic!("expected InvalidLabFile, got {other}"),
        Ok(_) => panic!("the lab file was accepted:\n{text}"),
    }
}

#[test]
fn small_lab_parses() {
    let lab = SourceLab::parse("lab.yaml", SMALL_LAB).unwrap();
    assert_eq!(lab.vm("vsphere", "vm-1").unwrap().name, "rhel8");
}

#[test]
fn connection_test_checks_url_and_credentials() {
    let lab = SourceLab::parse("lab.yaml", SMALL_LAB).unwrap();
    let url = "https://vcenter.example/sdk";
    assert_eq!(
        lab.connect("vsphere", url, Some("admin"), Some("secret")),
        Ok("vsphere".to_string())
    );
    assert_eq!(
        lab.connect("vsphere", url, Some("admin"), Some("wrong")),
        Err(ConnectError::AuthFailed)
    );
    assert!(matches!(
        lab.connect("vsphere", "https://nowhere.example/sdk", None, None),
        Err(ConnectError::Unreachable { .. })
    ));
}

#[test]
fn changes_are_announced() {
    let lab = SourceLab::parse("lab.yaml", SMALL_LAB).unwrap();
    let mut changes = lab.subscribe();
    lab.set_power("vsphere", "vm-1", PowerAction::Start)
        .unwrap();
    assert_eq!(
        lab.vm("vsphere", "vm-1").unwrap().power_state,
        PowerState::On
    );
    assert_eq!(
        changes.try_recv().unwrap().kind,
        SourceChangeKind::VmUpdated
    );
}

#[test]
fn power_changes_leave_events_and_repeats_do_not() {
    let lab = SourceLab::parse("lab.yaml", SMALL_LAB).unwrap();
    for action in [
        PowerAction::Start,
        PowerAction::Start,
        PowerAction::Shutdown,
        PowerAction::Start,
    ] {
        lab.set_power("vsphere", "vm-1", action).unwrap();
    }
    let vm = lab.set_power("vsphere", "vm-1", PowerAction::Stop).unwrap();
    let kinds: Vec<(&str, Option<u32>)> = vm
        .events
        .iter()
        .map(|e| (e.kind.as_str(), e.code))
        .collect();
    assert_eq!(
        kinds,
        [
            ("USER_RUN_VM", None),
            ("USER_INITIATED_SHUTDOWN_VM", None),
            ("USER_RUN_VM", None),
            ("USER_STOP_VM", Some(33)),
        ]
    );
}

#[test]
fn unknown_key_is_reported_with_its_line() {
    let text = SMALL_LAB.replace("        memory_mib: 2048", "        memory_mb: 2048");
    let message = invalid_message(&text);
    assert!(message.contains("memory_mb"), "{message}");
    // `memory_mb` is on line 16 of the file, indented by 8.
    assert!(
        message.contains("line 16 column 9"),
        "no position in: {message}"
    );
}

#[test]
fn dangling_references_are_rejected() {
    let message = invalid_message(&SMALL_LAB.replace("host: host-1", "host: host-9"));
    assert!(message.contains("host-9"), "{message}");
    let message = invalid_message(&SMALL_LAB.replace("network: network-1", "network: network-7"));
    assert!(message.contains("network-7"), "{message}");
    let message =
        invalid_message(&SMALL_LAB.replace("datastore: datastore-1", "datastore: datastore-3"));
    assert!(message.contains("datastore-3"), "{message}");
}

#[test]
fn duplicate_ids_and_macs_are_rejected() {
    let twice = SMALL_LAB.replace(
        "hosts: [{id: host-1, name: esx1, cluster: c1}]",
        "hosts: [{id: host-1, name: esx1}, {id: host-1, name: esx2}]",
    );
    let message = invalid_message(&twice);
    assert!(
        message.contains("host id `host-1` appears twice"),
        "{message}"
    );

    let vm_block = SMALL_LAB.split_once("    vms:\n").unwrap().1.to_string();
    let second_vm = vm_block.replace("name: rhel8", "name: other");
    let message = invalid_message(&format!("{SMALL_LAB}{second_vm}"));
    assert!(message.contains("VM id `vm-1` appears twice"), "{message}");

    let same_mac = second_vm.replace("id: vm-1", "id: vm-2");
    let message = invalid_message(&format!("{SMALL_LAB}{same_mac}"));
    assert!(message.contains("00:50:56:00:00:01"), "{message}");
    assert!(message.contains("unique lab-wide"), "{message}");
}

#[test]
fn unsupported_version_is_rejected() {
    let message = invalid_message(&SMALL_LAB.replace("version: 1", "version: 2"));
    assert!(message.contains("version 2"), "{message}");
}

#[test]
fn builtin_lab_parses_and_matches_the_builtin_profiles() {
    let lab = SourceLab::parse("default-lab.yaml", BUILTIN_LAB_YAML).unwrap();
    let providers = lab.providers();
    let types: Vec<&str> = providers.iter().map(|p| p.provider_type.as_str()).collect();
    assert_eq!(types, ["vsphere", "ovirt", "openstack", "ova"]);
    let profiles: Value = {
        let text = include_str!("../../mtv-config/builtin-providers.json");
        // The profiles file carries `//` comment lines.
        let json: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        serde_json::from_str(&json).unwrap()
    };
    for (key, profile) in profiles.as_object().unwrap() {
        let kind = profile["type"].as_str().unwrap();
        if kind == "openshift" {
            continue;
        }
        let url = profile["api_url"].as_str().unwrap();
        let user = profile["username"].as_str();
        let password = profile["password"].as_str();
        // OVA has no credentials: its Provider Secret holds only the URL.
        let (user, password) = if kind == "ova" {
            (None, None)
        } else {
            (user, password)
        };
        let reached = lab.connect(kind, url, user, password);
        assert_eq!(reached, Ok(kind.to_string()), "profile {key}");
    }
    // The copy-offload datastores of the profile exist, with the XCOPY capability they claim.
    let vsphere = lab.provider("vsphere").unwrap();
    for (id, xcopy) in [
        ("datastore-xcopy-1", true),
        ("datastore-xcopy-2", true),
        ("datastore-nonxcopy-1", false),
    ] {
        let ds = vsphere.datastores.iter().find(|d| d.id == id).unwrap();
        assert_eq!(ds.xcopy, xcopy, "{id}");
    }
    assert!(vsphere.hosts.len() >= 3);
    let template = &lab.vms_named("vsphere", "xcopy-template-test").unwrap()[0];
    assert_eq!(template.disks[0].datastore, "datastore-xcopy-1");
    assert_eq!(template.disks[0].provisioning, Provisioning::Thin);
}

/// The source types a scenario may run on, by its `providers:` list and the warm and copy-offload gates.
fn runnable_types(scenario: &mtv_catalog::Scenario) -> Vec<ProviderType> {
    ProviderType::ALL
        .into_iter()
        .filter(|t| *t != ProviderType::Openshift)
        .filter(|t| {
            scenario
                .entry
                .providers
                .as_ref()
                .is_none_or(|list| list.contains(t))
        })
        .filter(|t| !scenario.is_warm() || t.supports_warm())
        .filter(|t| !scenario.is_copyoffload() || t.supports_copy_offload())
        .collect()
}

#[test]
fn builtin_lab_holds_every_catalog_vm_on_every_type_that_may_run_it() {
    let catalog = Catalog::builtin().unwrap();
    let lab = SourceLab::builtin();
    let mut missing = BTreeSet::new();
    let mut checked = 0;
    for scenario in &catalog.scenarios {
        for kind in runnable_types(scenario) {
            let provider = lab.resolve_provider(kind.as_str()).unwrap();
            for vm in &scenario.entry.config.virtual_machines {
                checked += 1;
                if lab.vms_named(&provider, &vm.name).unwrap().is_empty() {
                    missing.insert(format!("{} on {kind} ({})", vm.name, scenario.name()));
                }
            }
        }
    }
    assert!(checked > 30, "only {checked} checks");
    assert!(
        missing.is_empty(),
        "missing from the default lab: {missing:#?}"
    );
}

#[test]
fn builtin_lab_facts_the_scenarios_rely_on() {
    let lab = SourceLab::builtin();
    let rhel8 = &lab.vms_named("vsphere", "mtv-tests-rhel8").unwrap()[0];
    let networks: BTreeSet<&str> = rhel8.nics.iter().map(|n| n.network.as_str()).collect();
    assert_eq!(networks.len(), 2, "RHEL 8 has NICs on two networks");
    assert!(rhel8.cbt, "the warm sanity VM has CBT");
    for name in ["mtv-win2019-3disks", "mtv-win2022-ip-3disks"] {
        for provider in ["vsphere", "ovirt"] {
            let vm = &lab.vms_named(provider, name).unwrap()[0];
            assert_eq!(vm.disks.len(), 3, "{name} on {provider}");
            assert!(
                vm.nics.iter().flat_map(|n| &n.ips).all(|ip| ip.is_static),
                "{name} on {provider} has static IPs"
            );
        }
    }
    let warm = &lab
        .vms_named("vsphere", "mtv-rhel8-warm-2disks2nics")
        .unwrap()[0];
    assert_eq!((warm.disks.len(), warm.nics.len(), warm.cbt), (2, 2, true));
    assert!(!lab.vms_named("ova", "mtv-ova-rhel9").unwrap().is_empty());
    // MACs carry their provider type's prefix.
    for (provider, prefix) in [
        ("vsphere", "00:50:56"),
        ("ovirt", "56:6f"),
        ("openstack", "fa:16:3e"),
    ] {
        for vm in lab.provider(provider).unwrap().vms {
            for nic in vm.nics {
                assert!(nic.mac.starts_with(prefix), "{provider} {}", nic.mac);
            }
        }
    }
}

// ---- the lab source API ----

#[tokio::test]
async fn lists_providers_and_finds_vms_and_templates_by_name() {
    let lab = SourceLab::builtin();
    let (status, providers) = call(&lab, "GET", "/lab/v1/sources", None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = providers
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["vsphere", "ovirt", "openstack", "ova"]);
    assert!(providers[0].get("password").is_none());

    let (status, vms) = call(
        &lab,
        "GET",
        "/lab/v1/sources/vsphere/vms?name=xcopy-template-test",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(vms.as_array().unwrap().len(), 1);
    assert_eq!(vms[0]["template"], true);

    let (status, vm) = call(&lab, "GET", "/lab/v1/sources/vsphere/vms/vm-1001", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(vm["name"], "mtv-tests-rhel8");
    assert_eq!(vm["disks"][0]["capacity_gib"], 30);
    assert_eq!(vm["guest_ips"], json!([]), "powered off: no guest IPs");
}

#[tokio::test]
async fn clone_gives_a_new_id_fresh_macs_and_renamed_disks() {
    let lab = SourceLab::builtin();
    let mut changes = lab.subscribe();
    let source = lab.vms_named("vsphere", "xcopy-template-test").unwrap()[0].clone();
    let (status, clone) = post(
        &lab,
        &format!("/lab/v1/sources/vsphere/vms/{}/clone", source.id),
        json!({
            "name": "auto-ab12-xcopy-thick",
            "power_state": "on",
            "cbt": true,
            "disk_type": "thick-eager",
            "target_datastore": "datastore-xcopy-2",
            "host": "host-103",
            "add_disks": [
                {"size_gib": 30, "provisioning": "thick-lazy", "mode": "independent_persistent", "folder": "shared_disks"},
                {"rdm": "physical"}
            ],
            "regenerate_macs": true
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{clone}");
    let id = clone["id"].as_str().unwrap();
    assert!(id.starts_with("vm-") && id != source.id, "{id}");
    assert_eq!(clone["template"], false);
    assert_eq!(clone["power_state"], "on");
    assert_eq!(clone["cbt"], true);
    assert_eq!(clone["host"], "host-103");
    let disks = clone["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 3);
    assert_eq!(
        disks[0]["file"],
        "[xcopy-datastore-2] auto-ab12-xcopy-thick/auto-ab12-xcopy-thick.vmdk"
    );
    assert_eq!(disks[0]["datastore"], "datastore-xcopy-2");
    assert_eq!(disks[0]["provisioning"], "thick-eager");
    assert_eq!(
        disks[1]["file"],
        "[xcopy-datastore-2] shared_disks/auto-ab12-xcopy-thick_1.vmdk"
    );
    assert_eq!(disks[1]["mode"], "independent_persistent");
    assert_eq!(disks[1]["capacity_gib"], 30);
    assert_eq!(disks[2]["rdm"], "physical");
    assert_eq!(disks[2]["mode"], "independent_persistent");
    assert!(disks[2]["lun_uuid"].as_str().unwrap().starts_with("naa."));
    let unit_numbers: BTreeSet<i64> = disks
        .iter()
        .map(|d| d["unit_number"].as_i64().unwrap())
        .collect();
    assert_eq!(unit_numbers.len(), 3);
    let mac = clone["nics"][0]["mac"].as_str().unwrap();
    assert_ne!(mac, source.nics[0].mac);
    assert!(mac.starts_with("00:50:56:"), "{mac}");
    // Powered on with tools: the guest reports its IPs.
    assert!(!clone["guest_ips"].as_array().unwrap().is_empty());
    // The source is untouched and subscribers saw the clone.
    assert_eq!(lab.vm("vsphere", &source.id).unwrap(), source);
    let change = changes.try_recv().unwrap();
    assert_eq!(
        (change.vm_id.as_str(), change.kind),
        (id, SourceChangeKind::VmAdded)
    );

    // The same name again is a conflict; a missing source is not found.
    let (status, error) = post(
        &lab,
        &format!("/lab/v1/sources/vsphere/vms/{}/clone", source.id),
        json!({"name": "auto-ab12-xcopy-thick"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["error"], "Conflict");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("auto-ab12-xcopy-thick")
    );
    let (status, error) = post(
        &lab,
        "/lab/v1/sources/vsphere/vms/vm-999999/clone",
        json!({"name": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"], "VmNotFound");
}

#[tokio::test]
async fn clones_on_other_types_get_uuids_and_their_mac_prefix() {
    let lab = SourceLab::builtin();
    for (provider, prefix) in [("ovirt", "56:6f:"), ("openstack", "fa:16:3e:")] {
        let source = lab.vms_named(provider, "mtv-tests-rhel8").unwrap()[0].clone();
        let clone = lab
            .clone_vm(provider, &source.id, &CloneSpec::named("auto-x-rhel8"))
            .unwrap();
        assert_eq!(clone.id.len(), 36, "{}", clone.id);
        assert_ne!(clone.id, source.id);
        assert!(!clone.template);
        assert!(clone.nics.iter().all(|n| n.mac.starts_with(prefix)));
        assert!(
            clone
                .disks
                .iter()
                .zip(&source.disks)
                .all(|(a, b)| a.file != b.file)
        );
        // Static addresses stay (the guest's configuration is cloned); leases change.
        for (a, b) in clone.nics.iter().zip(&source.nics) {
            for (x, y) in a.ips.iter().zip(&b.ips) {
                assert_eq!(x.ip == y.ip, x.is_static, "{provider} {} vs {}", x.ip, y.ip);
            }
        }
    }
    // Every MAC in the lab is still unique.
    let macs: Vec<String> = lab
        .providers()
        .iter()
        .flat_map(|p| {
            p.vms
                .iter()
                .flat_map(|vm| vm.nics.iter().map(|n| n.mac.clone()))
        })
        .collect();
    let unique: BTreeSet<&String> = macs.iter().collect();
    assert_eq!(unique.len(), macs.len());
}

#[tokio::test]
async fn power_disks_nics_snapshots_and_delete() {
    let lab = SourceLab::builtin();
    let id = vsphere_vm_id(&lab, "mtv-tests-rhel8");
    let base = format!("/lab/v1/sources/vsphere/vms/{id}");

    let (status, vm) = post(&lab, &format!("{base}/power"), json!({"state": "on"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(vm["power_state"], "on");
    let ips: Vec<&str> = vm["guest_ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ip| ip["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, ["10.10.1.21", "10.20.1.21"]);
    assert_eq!(lab.vm("vsphere", &id).unwrap().power_state, PowerState::On);
    let (status, _) = post(&lab, &format!("{base}/power"), json!({"state": "off"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lab.vm("vsphere", &id).unwrap().power_state, PowerState::Off);
    let (status, error) = post(&lab, &format!("{base}/power"), json!({"state": "sideways"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "BadRequest");

    let (status, disk) = post(
        &lab,
        &format!("{base}/disks"),
        json!({"size_gib": 5, "provisioning": "thin", "datastore": "datastore-nonxcopy-1"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{disk}");
    assert_eq!(
        disk["file"],
        "[nonxcopy-datastore-1] mtv-tests-rhel8/mtv-tests-rhel8_1.vmdk"
    );
    assert_eq!(disk["key"], 2001);
    assert_eq!(lab.vm("vsphere", &id).unwrap().disks.len(), 2);
    let (status, _) = post(
        &lab,
        &format!("{base}/disks"),
        json!({"size_gib": 5, "datastore": "nowhere"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post(&lab, &format!("{base}/disks"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, nic) = post(
        &lab,
        &format!("{base}/nics"),
        json!({"network": "mtv-secondary", "start_connected": false}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{nic}");
    assert_eq!(nic["network"], "dvportgroup-21");
    assert_eq!(nic["start_connected"], false);
    assert!(nic["mac"].as_str().unwrap().starts_with("00:50:56:"));
    assert_eq!(lab.vm("vsphere", &id).unwrap().nics.len(), 3);
    let (status, _) = post(&lab, &format!("{base}/nics"), json!({"network": "nope"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, first) = post(&lab, &format!("{base}/snapshots"), json!({"name": "s-1"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, second) = post(&lab, &format!("{base}/snapshots"), json!({"name": "s-2"})).await;
    assert_eq!(first["name"], "s-1");
    assert!(first["id"].as_str().unwrap().starts_with("snapshot-"));
    assert_ne!(first["id"], second["id"]);
    assert!(first["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lab.vm("vsphere", &id).unwrap().snapshots.len(), 2);

    let (status, deleted) = call(&lab, "DELETE", &base, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["id"], id.as_str());
    let (status, error) = call(&lab, "GET", &base, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"], "VmNotFound");
    let (status, error) = call(&lab, "GET", "/lab/v1/sources/hyperv/vms", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"], "ProviderNotFound");
}

#[tokio::test]
async fn templates_cannot_be_powered_on_or_snapshotted() {
    let lab = SourceLab::builtin();
    let id = vsphere_vm_id(&lab, "xcopy-template-test");
    let base = format!("/lab/v1/sources/vsphere/vms/{id}");
    let (status, _) = post(&lab, &format!("{base}/power"), json!({"state": "on"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post(&lab, &format!("{base}/snapshots"), json!({"name": "s"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
