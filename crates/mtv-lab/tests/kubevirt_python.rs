//! The lab's KubeVirt and CDI driven by independent real clients from PyPI: openshift-python-wrapper
//! (`ocp_resources`, what the Python suite and much OpenShift automation use) and the Python `kubernetes`
//! client, against a started lab through its kubeconfig. The scripts live in `kubevirt_python/`; each
//! prints what it checked and exits non-zero on the first mismatch (`lab_checks.py`'s `check`).

use mtv_lab::{LabOptions, LabServer};

/// Starts a lab (with its simulated cluster: KubeVirt, CDI, Forklift) and writes its kubeconfig.
async fn lab_with_kubeconfig() -> (LabServer, std::path::PathBuf) {
    let lab = LabServer::start(LabOptions::default())
        .await
        .expect("lab starts");
    let path = std::env::temp_dir().join(format!(
        "mtv-lab-kubevirt-{}.kubeconfig",
        mtv_lab::random::name_suffix(10)
    ));
    lab.write_kubeconfig(&path).expect("kubeconfig written");
    (lab, path)
}

/// Runs one script of `kubevirt_python/` against a fresh lab; returns its output.
async fn run(script: &'static str) -> String {
    let (lab, kubeconfig) = lab_with_kubeconfig().await;
    let config = kubeconfig.display().to_string();
    // The client blocks; the lab serves on this runtime's other threads meanwhile.
    let out = tokio::task::spawn_blocking(move || {
        // The scripts import what they share (`lab_checks`) from their folder.
        let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kubevirt_python");
        mtv_test_peers::run_python_ok(
            script,
            &[&config],
            &[("KUBECONFIG", &config), ("PYTHONPATH", shared)],
        )
    })
    .await;
    let _ = std::fs::remove_file(&kubeconfig);
    lab.shutdown().await;
    match out {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrapper_runs_vms_from_instancetypes_and_datasources_through_the_subresources() {
    let out = run(include_str!("kubevirt_python/vm_lifecycle.py")).await;
    assert!(out.contains("lifecycle ok"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_naming_a_missing_instancetype_is_refused() {
    let out = run(include_str!("kubevirt_python/instancetype_admission.py")).await;
    assert!(out.contains("admission ok"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vmi_on_a_missing_network_attachment_definition_does_not_start() {
    let out = run(include_str!("kubevirt_python/missing_nad.py")).await;
    assert!(out.contains("missing nad ok"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_volumes_succeed_with_bound_claims_and_volumes_or_fail_as_cdi_reports() {
    let out = run(include_str!("kubevirt_python/data_volumes.py")).await;
    assert!(out.contains("data volumes ok"), "{out}");
}
