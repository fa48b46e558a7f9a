//! The lab's vSphere source on the real protocol: pyVmomi, VMware's own SDK from PyPI, drives the vim25
//! SOAP endpoint (`/sdk`) exactly as `mtv-tests lab serve --providers-out` describes it: find, clone,
//! reconfigure, power, snapshot and delete a VM, with the lab's Forklift inventory showing each change,
//! and Guest Operations file transfers and programs. The scripts live in `vsphere_python/`.

use std::time::Duration;

use base64::Engine;
use mtv_lab::LabServer;
use mtv_lab::cli::{LabServeArgs, start};
use serde_json::{Value, json};

const NS: &str = "openshift-mtv";
const COMMON: &str = include_str!("vsphere_python/common.py");

/// A lab started as `lab serve --providers-out` starts it; the providers file's path.
async fn served_lab() -> (LabServer, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "mtv-lab-vsphere-{}",
        mtv_lab::random::name_suffix(10)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let args = LabServeArgs {
        port: None,
        lab: None,
        kubeconfig_out: dir.join("kubeconfig"),
        providers_out: Some(dir.join("providers.json")),
        speed: 20.0,
        faults: String::new(),
        mtv_version: "2.10.0".into(),
    };
    let lab = start(&args).await.expect("lab starts");
    (lab, dir.join("providers.json"))
}

/// Creates a vSphere Provider reaching the served `/sdk` with the profile's credentials and CA and
/// waits until it is Ready; its uid.
async fn ready_provider(lab: &LabServer, profile: &Value) -> String {
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let text = |key: &str| profile[key].as_str().unwrap().to_string();
    let provider = lab
        .create_provider(
            NS,
            json!({"metadata": {"name": "vsphere-pyvmomi"}, "data": {
                "user": b64(&text("username")), "password": b64(&text("password")),
                "url": b64(&text("api_url")), "cacert": b64(&text("cacert")),
                "insecureSkipVerify": b64("false")}}),
            json!({"metadata": {"name": "vsphere-pyvmomi"}, "spec": {"type": "vsphere",
                "url": text("api_url"), "secret": {"name": "vsphere-pyvmomi", "namespace": NS}}}),
        )
        .await
        .unwrap();
    assert_eq!(
        provider["status"]["phase"], "Ready",
        "the Provider reaching the served /sdk: {provider}"
    );
    // The inventory lists a Provider a moment after it is Ready.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    provider["metadata"]["uid"].as_str().unwrap().to_string()
}

async fn python(lab: LabServer, script: &'static str, args: Vec<String>) -> String {
    let source = format!("{COMMON}\n{script}");
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        mtv_test_peers::run_python_ok(&source, &args, &[])
    })
    .await;
    lab.shutdown().await;
    match out {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyvmomi_clones_reconfigures_powers_snapshots_and_deletes_a_vm_the_inventory_follows() {
    let (lab, providers) = served_lab().await;
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&providers).unwrap()).unwrap();
    let uid = ready_provider(&lab, &file["vsphere"]).await;
    let route = lab.inventory_route_url().unwrap();
    let token = lab.admin_token().to_string();
    let source = lab.source().unwrap().clone();
    let args = vec![
        providers.display().to_string(),
        "vsphere".into(),
        route,
        token,
        uid,
        mtv_lab::random::name_suffix(6),
    ];
    let out = python(lab, include_str!("vsphere_python/lifecycle.py"), args).await;
    assert!(out.contains("lifecycle ok"), "{out}");
    // The clone is gone from the one source model too.
    assert!(
        source
            .providers()
            .iter()
            .flat_map(|p| p.vms.iter())
            .all(|vm| !vm.name.starts_with("pyvmomi-clone-")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyvmomi_transfers_guest_files_and_runs_nmcli_through_guest_operations() {
    let (lab, providers) = served_lab().await;
    let source = lab.source().unwrap().clone();
    let args = vec![
        providers.display().to_string(),
        "vsphere".into(),
        "mtv-tests-rhel8".into(),
    ];
    let out = python(
        lab,
        include_str!("vsphere_python/guest_operations.py"),
        args,
    )
    .await;
    assert!(out.contains("guest operations ok"), "{out}");
    // The uploaded marker is a file of the source model's guest (what a clone and a migration carry).
    let vm = source.vm("vsphere", "vm-1001").unwrap();
    assert_eq!(
        vm.guest_files
            .get("/root/mtv-marker.txt")
            .map(String::as_str),
        Some("mtv-tests data marker 42\n")
    );
}
