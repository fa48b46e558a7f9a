//! OpenShift as a source, on the embedded lab over HTTP through kube-rs: the source VMs are real
//! KubeVirt VirtualMachines (with their PVCs, and a NAD for a second network) in the session's
//! source namespace; the tier0 scenarios the gating selects for the `openshift` profile pass and
//! leave nothing behind, the same from a clean after `--skip-teardown`, and a kubeconfig without a
//! token stops the run at bootstrap with a clear message.

mod common;

use std::collections::BTreeMap;

use common::{RunRequest, lab_client, lab_contents, run_on_lab};
use mtv_engine::events::StepOutcome;
use mtv_engine::ledger::{Ledger, LedgerEntry, LedgerFile};
use mtv_lab::LabServer;
use serde_json::Value;

async fn lab() -> LabServer {
    common::lab("", None).await
}

/// Runs what tier0 selects for the `openshift` profile, plus the classes of `forced` past the gating.
async fn run_openshift(
    lab: &LabServer,
    token: Option<&str>,
    skip_teardown: bool,
    forced: &[&str],
) -> common::Run {
    run_on_lab(
        lab,
        RunRequest {
            profile: "openshift",
            token,
            skip_teardown,
            forced,
            ..RunRequest::default()
        },
    )
    .await
}

/// The source VMs the ledger recorded, as `(source, id)`.
fn source_vms(ledger: &LedgerFile) -> Vec<(String, String)> {
    ledger
        .entries
        .iter()
        .filter_map(|e| match e {
            LedgerEntry::SourceVm {
                source,
                provider_type,
                id,
                ..
            } => Some((
                source.resolve(provider_type).unwrap().describe(),
                id.clone(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier0_with_an_openshift_source_passes_on_the_lab_and_leaves_nothing_behind() {
    let lab = lab().await;
    let before = lab_contents(&lab);
    let run = run_openshift(&lab, Some("lab-token"), false, &[]).await;
    let outcomes = run.recorder.outcomes();
    let failed: Vec<_> = outcomes.iter().filter(|(_, o)| o.is_failure()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    run.assert_ended(0);
    // Post-hook retain and comprehensive cold run; warm and add_nic (sanity cold) are gated off.
    let passed: Vec<&String> = outcomes
        .iter()
        .filter(|(_, o)| **o == StepOutcome::Passed)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(passed.len(), 10, "{passed:#?}");
    assert!(outcomes.iter().any(|(id, o)| id.starts_with("TestSanityWarmMtvMigration")
        && matches!(o, StepOutcome::Skipped { reason } if reason.contains("warm migration is not supported"))));
    assert_eq!(
        lab_contents(&lab),
        before,
        "the run left objects in the lab"
    );
    let ledger = Ledger::load(&run.ledger).unwrap();
    let vms = source_vms(&ledger);
    assert_eq!(vms.len(), 2, "{vms:?}");
    assert!(
        vms.iter()
            .all(|(source, _)| source.starts_with("openshift:") && source.ends_with("-source-vms")),
        "{vms:?}"
    );
    assert!(ledger.entries.iter().all(|e| e.is_removed()));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openshift_source_vms_are_kubevirt_objects_and_clean_removes_them() {
    let lab = lab().await;
    let before = lab_contents(&lab);
    // The sanity scenario adds a NIC, which the gating allows on vSphere only (as the Python suite
    // does); forced here, it proves a second source network (a NAD of the source namespace) maps.
    let run = run_openshift(
        &lab,
        Some("lab-token"),
        true,
        &["TestSanityColdMtvMigration"],
    )
    .await;
    let outcomes = run.recorder.outcomes();
    assert_eq!(run.outcome.exit_code, 0, "{outcomes:#?}");
    assert_eq!(
        outcomes
            .iter()
            .filter(|(id, o)| id.starts_with("TestSanityColdMtvMigration")
                && **o == StepOutcome::Passed)
            .count(),
        5,
        "{outcomes:#?}"
    );
    let ledger = Ledger::load(&run.ledger).unwrap();
    let vms = source_vms(&ledger);
    assert_eq!(vms.len(), 3);
    let mut two_nics = 0;
    let store = lab.store();
    for (source, id) in &vms {
        let namespace = source.strip_prefix("openshift:").unwrap();
        let vm = store
            .get(&mtv_lab::registry::VIRTUAL_MACHINE, Some(namespace), id)
            .unwrap();
        let spec = &vm["spec"]["template"]["spec"];
        let claim = spec["volumes"][0]["persistentVolumeClaim"]["claimName"]
            .as_str()
            .unwrap();
        let pvc = store
            .get(
                &mtv_lab::registry::PERSISTENT_VOLUME_CLAIM,
                Some(namespace),
                claim,
            )
            .unwrap();
        assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "30Gi");
        assert!(spec["networks"][0].get("pod").is_some());
        let interfaces = spec["domain"]["devices"]["interfaces"].as_array().unwrap();
        assert!(interfaces.iter().all(|i| i["macAddress"].is_string()));
        // The sanity scenario's added NIC is on a NAD of the source namespace, started down.
        if interfaces.len() > 1 {
            two_nics += 1;
            let nad = spec["networks"][1]["multus"]["networkName"]
                .as_str()
                .unwrap();
            assert!(
                store
                    .get(
                        &mtv_lab::registry::NETWORK_ATTACHMENT_DEFINITION,
                        Some(namespace),
                        nad.rsplit('/').next().unwrap()
                    )
                    .is_ok()
            );
            assert_eq!(interfaces[1]["state"], "down");
        }
        // Forklift stopped the source VM after the cold migration.
        assert_eq!(vm["spec"]["runStrategy"], Value::from("Halted"));
    }
    assert_eq!(two_nics, 1);
    // Its NetworkMap: the pod network as `{type: pod}`, the NAD as `{name: "namespace/name"}`;
    // StorageMaps refer to the source PVCs' storage class by name.
    let kinds_of = |rt| {
        store
            .list(rt, None, &mtv_lab::store::ListOptions::default())
            .unwrap()
            .items
    };
    let sources: Vec<Value> = kinds_of(&mtv_lab::registry::NETWORK_MAP)
        .iter()
        .flat_map(|m| m["spec"]["map"].as_array().cloned().unwrap_or_default())
        .map(|entry| entry["source"].clone())
        .collect();
    assert!(
        sources.contains(&serde_json::json!({"type": "pod"})),
        "{sources:?}"
    );
    assert!(
        sources.iter().any(|s| s["name"]
            .as_str()
            .is_some_and(|n| n.contains("-source-vms/"))),
        "{sources:?}"
    );
    for map in kinds_of(&mtv_lab::registry::STORAGE_MAP) {
        assert_eq!(
            map["spec"]["map"][0]["source"],
            serde_json::json!({"name": "lab-ceph-rbd"})
        );
    }
    // A later process cleans from the ledger.
    let leftovers = run.clean_from_ledger(&lab).await;
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(lab_contents(&lab), before);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openshift_source_without_a_token_stops_at_bootstrap() {
    let lab = lab().await;
    let before = lab_contents(&lab);
    let run = run_openshift(&lab, None, false, &[]).await;
    let outcomes = run.recorder.outcomes();
    let errors: Vec<&String> = outcomes
        .values()
        .filter_map(|o| match o {
            StepOutcome::Error { message } => Some(message),
            _ => None,
        })
        .collect();
    assert!(!errors.is_empty());
    assert!(
        errors.iter().all(|m| m.contains("needs a bearer token")),
        "{errors:?}"
    );
    run.assert_ended(1);
    assert_eq!(lab_contents(&lab), before);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openshift_adapter_creates_powers_extends_reads_and_deletes_kubevirt_vms() {
    use mtv_providers::openshift::OpenShiftSource;
    use mtv_providers::{CloneRequest, NewDisk, NewNic, SourceProvider};
    let lab = lab().await;
    let before = lab_contents(&lab);
    let client = lab_client(&lab).await;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "adapter-source-vms"}}))
            .unwrap();
    namespaces
        .create(&Default::default(), &namespace)
        .await
        .unwrap();
    let adapter = OpenShiftSource::new(
        client.clone(),
        "adapter-source-vms",
        "lab-ceph-rbd",
        BTreeMap::from([("mtv-tests/session".to_string(), "adapter".to_string())]),
    );
    let request = CloneRequest {
        name: "win-src".into(),
        power_on: Some(false),
        add_disks: vec![NewDisk {
            size_gib: 5,
            provisioning: "thin".into(),
            mode: "persistent".into(),
            datastore: Some("lab-nfs".into()),
            rdm: None,
            lun: None,
        }],
        ..CloneRequest::default()
    };
    let vm = adapter
        .clone_vm("mtv-win2019-3disks", &request)
        .await
        .unwrap();
    assert_eq!(vm.id, "win-src");
    assert!(!vm.powered_on);
    assert_eq!(vm.firmware, "efi");
    let disks: Vec<(u64, &str)> = vm
        .disks
        .iter()
        .map(|d| (d.capacity_gib, d.datastore.as_str()))
        .collect();
    assert_eq!(disks, [(30, "lab-ceph-rbd"), (5, "lab-nfs")]);
    assert_eq!(vm.nics.len(), 1);
    assert_eq!(vm.nics[0].network, "pod");

    adapter.set_power("win-src", true).await.unwrap();
    assert!(adapter.facts("win-src").await.unwrap().powered_on);
    adapter.set_power("win-src", false).await.unwrap();
    assert!(!adapter.facts("win-src").await.unwrap().powered_on);

    // One pod NIC at most; a NAD NIC is fine.
    assert!(
        adapter
            .add_nic("win-src", &NewNic::new("pod", true))
            .await
            .is_err()
    );
    let mac = adapter
        .add_nic("win-src", &NewNic::new("adapter-source-vms/br-a", true))
        .await
        .unwrap();
    let found = adapter.find("win-src").await.unwrap().unwrap();
    assert_eq!(found.nics[1].mac, mac);
    assert_eq!(found.nics[1].network, "adapter-source-vms/br-a");
    assert!(found.nics[1].start_connected);
    assert!(adapter.find("missing").await.unwrap().is_none());
    assert!(adapter.ca_certificate().await.is_err());

    adapter.delete_vm("win-src").await.unwrap();
    // Deleting again is not an error.
    adapter.delete_vm("win-src").await.unwrap();
    assert_eq!(
        lab.store()
            .count(&mtv_lab::registry::PERSISTENT_VOLUME_CLAIM),
        before["PersistentVolumeClaim"]
    );
    namespaces
        .delete("adapter-source-vms", &Default::default())
        .await
        .unwrap();
    for _ in 0..100 {
        if lab_contents(&lab) == before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(lab_contents(&lab), before);
    lab.shutdown().await;
}
