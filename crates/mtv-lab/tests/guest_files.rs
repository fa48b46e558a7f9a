//! The lab's simulated guest files (`/lab/v1/sources/{provider}/vms/{id}/files`): written and read on a
//! source VM, kept by clones, and copied into the migrated VM's guest.

mod common;
mod source_api;

use source_api::{call, post, vsphere_vm_id};

use axum::http::StatusCode;
use mtv_lab::source::SourceLab;
use serde_json::json;

#[tokio::test]
async fn a_guest_file_is_written_read_and_kept_by_clones() {
    let lab = SourceLab::builtin();
    let template = vsphere_vm_id(&lab, "xcopy-template-test");
    let (status, clone) = post(
        &lab,
        &format!("/lab/v1/sources/vsphere/vms/{template}/clone"),
        json!({"name": "guest-files-clone"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{clone}");
    let id = clone["id"].as_str().unwrap().to_string();
    let files = format!("/lab/v1/sources/vsphere/vms/{id}/files");

    let (status, missing) = call(&lab, "GET", &format!("{files}?path=/root/marker"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error"], "FileNotFound");

    let (status, written) = post(
        &lab,
        &files,
        json!({"path": "/root/marker", "content": "mtv-data-integrity-s1"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{written}");
    let (status, read) = call(&lab, "GET", &format!("{files}?path=/root/marker"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        read,
        json!({"path": "/root/marker", "content": "mtv-data-integrity-s1"})
    );

    // A clone of the VM starts with its guest's files.
    let (status, second) = post(
        &lab,
        &format!("/lab/v1/sources/vsphere/vms/{id}/clone"),
        json!({"name": "guest-files-clone-2"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second_id = second["id"].as_str().unwrap();
    assert_eq!(
        lab.vm("vsphere", second_id).unwrap().guest_files["/root/marker"],
        "mtv-data-integrity-s1"
    );
}

#[tokio::test]
async fn bad_guest_file_requests_are_rejected() {
    let lab = SourceLab::builtin();
    let template = vsphere_vm_id(&lab, "xcopy-template-test");
    let vm = lab.vm("vsphere", &template).unwrap();
    let base = format!("/lab/v1/sources/vsphere/vms/{template}/files");
    let (status, error) = post(
        &lab,
        &base,
        json!({"path": "relative/marker", "content": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["message"].as_str().unwrap().contains("absolute"),
        "{error}"
    );
    if vm.template {
        let (status, _) = post(&lab, &base, json!({"path": "/root/marker", "content": "x"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, error) = post(
        &lab,
        "/lab/v1/sources/vsphere/vms/vm-999999/files",
        json!({"path": "/root/marker", "content": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"], "VmNotFound");
    let (status, _) = post(&lab, &base, json!({"path": "/root/marker"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// The lab file: the oVirt source with its VM stopped and a marker file in the guest.
fn ovirt_lab() -> String {
    common::lab_file(&[common::ovirt_provider(
        "off",
        "        guest_files: {/root/marker: mtv-data-integrity-lab}\n",
    )])
}

#[tokio::test]
async fn the_migrated_guest_holds_the_source_guest_files() {
    use mtv_lab::forklift::{ForkliftOptions, spawn_forklift};
    use mtv_lab::registry;
    use mtv_lab::{LabOptions, LabServer, MTV_NAMESPACE};
    use std::time::{Duration, Instant};

    let server = LabServer::start(LabOptions::default()).await.unwrap();
    let store = server.store().clone();
    let source = SourceLab::parse("lab.yaml", &ovirt_lab()).unwrap();
    let options = ForkliftOptions::new(20.0, Default::default(), MTV_NAMESPACE);
    let guests = options.guests.clone();
    let forklift = spawn_forklift(store.clone(), source, options);
    let ns = Some(MTV_NAMESPACE);
    let pair = common::ovirt_provider_with_maps(&store);
    store
        .create(&registry::PLAN, ns, json!({"metadata": {"name": "p"}, "spec": {
            "provider": pair, "targetNamespace": "migrated",
            "map": {"network": {"name": "net", "namespace": MTV_NAMESPACE}, "storage": {"name": "st", "namespace": MTV_NAMESPACE}},
            "vms": [{"id": "6b9a-0001"}]}}))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut migrated = false;
    let mut succeeded = false;
    while Instant::now() < deadline {
        let plan = store.get(&registry::PLAN, ns, "p").unwrap();
        common::migrate_once_ready(&store, &plan, &mut migrated);
        if common::cond(&plan, "Succeeded").is_some() {
            succeeded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(succeeded, "the Plan did not succeed in time");
    let vms = store
        .list(
            &registry::VIRTUAL_MACHINE,
            Some("migrated"),
            &Default::default(),
        )
        .unwrap();
    let vm = vms
        .items
        .iter()
        .find(|vm| vm.pointer("/metadata/labels/vmID") == Some(&json!("6b9a-0001")))
        .expect("the migrated VirtualMachine");
    assert!(
        vm.pointer("/metadata/annotations/lab.mtv-tests.io~1guest-files")
            .is_none(),
        "guest files no longer travel as an annotation"
    );
    let uid = vm["metadata"]["uid"].as_str().unwrap();
    let guest = guests.get(uid).expect("the migrated guest");
    {
        let guest = guest.lock().unwrap();
        assert_eq!(guest.files["/root/marker"], "mtv-data-integrity-lab");
        assert_eq!(guest.nics[0].mac, "56:6f:00:00:00:01");
    }
    forklift.shutdown().await;
    server.shutdown().await;
}
