//! The OVA adapter against the lab: facts from the Forklift inventory (through its Route, with a bearer
//! token and the lab's CA), a per-session targetName, and clear errors for what an OVA cannot do.

use std::time::Duration;

use mtv_lab::{LabOptions, LabServer};
use mtv_providers::ova::{OvaConfig, OvaSource};
use mtv_providers::{CloneRequest, SourceProvider};
use serde_json::json;

const NS: &str = "openshift-mtv";

/// An OVA Provider for the lab's NFS share, Ready; its uid.
async fn ova_provider(lab: &LabServer) -> String {
    let provider = lab
        .create_provider(
            NS,
            json!({"metadata": {"name": "ova"}, "stringData": {"url": "nfs.lab.mtv-tests.internal:/ova"}}),
            json!({"metadata": {"name": "ova"}, "spec": {"type": "ova",
                   "url": "nfs.lab.mtv-tests.internal:/ova", "secret": {"name": "ova", "namespace": NS}}}),
        )
        .await
        .unwrap();
    assert_eq!(provider["status"]["phase"], "Ready", "{provider}");
    provider["metadata"]["uid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn facts_come_from_the_inventory_and_nothing_is_cloned() {
    let lab = LabServer::start(LabOptions {
        speed: 20.0,
        ..LabOptions::default()
    })
    .await
    .unwrap();
    let uid = ova_provider(&lab).await;
    let ova = OvaSource::new(OvaConfig {
        inventory_url: lab.inventory_route_url().unwrap(),
        token: lab.admin_token().to_string(),
        ca_certificate: Some(lab.ca_pem().to_string()),
        insecure_skip_verify: false,
        provider_uid: uid,
        session: "mtv-s1".into(),
        request_timeout: Duration::from_secs(30),
    })
    .unwrap();
    // The inventory knows a new Provider a moment after it is Ready.
    let mut found = None;
    for _ in 0..100 {
        match ova.find("mtv-ova-rhel9").await {
            Ok(Some(vm)) => {
                found = Some(vm);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let vm = found.expect("the OVA VM is in the inventory");
    let model = lab
        .source()
        .unwrap()
        .vms_named("ova", "mtv-ova-rhel9")
        .unwrap()
        .remove(0);
    assert_eq!(
        (vm.id.as_str(), vm.uuid.as_str()),
        (model.id.as_str(), model.uuid.as_str())
    );
    assert_eq!((vm.cpu_sockets, vm.memory_mib), (2, 4096));
    assert_eq!(vm.nics[0].mac, "00:50:56:b2:20:01");
    assert_eq!(vm.nics[0].network, "ova-network-1");
    assert_eq!(
        (vm.disks[0].file.as_str(), vm.disks[0].capacity_gib),
        ("mtv-ova-rhel9-disk1.vmdk", 20)
    );
    assert!(ova.find("no-such-ova").await.unwrap().is_none());
    assert_eq!(ova.target_name("mtv-ova-rhel9"), "mtv-s1-mtv-ova-rhel9");

    let request = CloneRequest {
        name: "copy".into(),
        ..CloneRequest::default()
    };
    let error = ova
        .clone_vm(&vm.id, &request)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("NFS share") && error.contains("targetName"),
        "{error}"
    );
    assert!(ova.set_power(&vm.id, true).await.is_err());
    assert!(ova.delete_vm(&vm.id).await.is_err());
    lab.shutdown().await;
}
