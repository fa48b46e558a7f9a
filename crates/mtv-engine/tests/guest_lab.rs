//! Into the lab's migrated guests with the engine's own code: the guest checks run in tier0 (SSH through
//! the port-forward subresource, in the event log), each guest-side `misbehave` point fails exactly the
//! check that sees it (naming the VM, the check, expected and actual), and no guest password is shown.

mod common;

use common::{Misbehaviour, RunRequest, comprehensive, lab, lab_client, run_on_lab};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier0_enters_every_migrated_guest() {
    let lab = lab("", None).await;
    let run = run_on_lab(&lab, RunRequest::default()).await;
    let outcomes = run.recorder.outcomes();
    let failed: Vec<_> = outcomes.iter().filter(|(_, o)| o.is_failure()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let notes = run
        .recorder
        .notes("TestSanityColdMtvMigration[rhel8]::test_check_vms");
    for wanted in [
        "SSH to port 22 as cloud-user (Linux guest)",
        "check_ssh_connectivity passed",
        "check_nic_name_preservation ran (0 problems)",
    ] {
        assert!(
            notes.iter().any(|n| n.contains(wanted)),
            "{wanted:?} not among the notes: {notes:#?}"
        );
    }
    let windows = run
        .recorder
        .notes("TestColdMigrationComprehensive[comprehensive-cold]::test_check_vms");
    for wanted in [
        "SSH to port 22 as Administrator (Windows guest)",
        "check_static_ip_preservation ran (0 problems)",
    ] {
        assert!(
            windows.iter().any(|n| n.contains(wanted)),
            "{wanted:?} not among the notes: {windows:#?}"
        );
    }
    let all = format!("{:?}", run.recorder.0.lock().unwrap());
    assert!(
        !all.contains("lab-guest-password"),
        "a guest password reached the events"
    );
    assert_eq!(run.outcome.leftovers, 0);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_copy_offload_data_marker_is_read_over_ssh() {
    let lab = lab("", None).await;
    let run = run_on_lab(
        &lab,
        RunRequest {
            profile: "vsphere-copy-offload",
            markers: "copyoffload",
            keywords: Some("TestCopyoffloadThinSnapshotsMigration"),
            ..RunRequest::default()
        },
    )
    .await;
    let outcomes = run.recorder.outcomes();
    let failed: Vec<_> = outcomes.iter().filter(|(_, o)| o.is_failure()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    let notes = run.recorder.notes("test_check_data_integrity");
    assert!(
        notes
            .iter()
            .any(|n| n
                .contains("verify_data_integrity read /root/mtv-data-integrity-marker over SSH")),
        "{notes:#?}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forward_refusals_say_why() {
    use mtv_engine::guest::{GuestShell, HostKeys, Login, portforward};
    use mtv_lab::registry::VIRTUAL_MACHINE_INSTANCE;
    use serde_json::json;

    let lab = lab("", None).await;
    let client = lab_client(&lab).await;
    let error = portforward::open(&client, "default", "nope", 22)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("404 Not Found"), "{error}");
    assert!(error.contains("\"nope\" not found"), "{error}");
    let store = lab.store();
    store
        .create(
            &VIRTUAL_MACHINE_INSTANCE,
            Some("default"),
            json!({"metadata": {"name": "idle"}, "spec": {}}),
        )
        .unwrap();
    let set_phase = |phase: &str| {
        store
            .update_status(
                &VIRTUAL_MACHINE_INSTANCE,
                Some("default"),
                "idle",
                json!({ "phase": phase }),
            )
            .unwrap();
    };
    set_phase("Scheduling");
    let error = portforward::open(&client, "default", "idle", 22)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("Unable to connect to VirtualMachineInstance because phase is Scheduling instead of Running"),
        "{error}"
    );
    // A running VMI that no migration made has no guest: the port closes at once.
    set_phase("Running");
    let stream = portforward::open(&client, "default", "idle", 22)
        .await
        .unwrap();
    let login = Login::password("cloud-user", mtv_config::Secret::new("lab-guest-password"));
    let refused = GuestShell::login(stream, "default/idle", &login, &HostKeys::default()).await;
    assert!(refused.is_err(), "a login where nothing listens");
    lab.shutdown().await;
}

caught! {
    a_static_ip_lost_in_the_guest: comprehensive("static-ip", &["check_static_ip_preservation - NIC 00:50:56:", "(Ethernet0) address: expected 10.10.1.33, got 10.128."]);
    a_wrong_subnet_mask_in_the_guest: comprehensive("static-mask", &["check_static_ip_preservation - NIC 00:50:56:", "(Ethernet0) subnet mask of 10.10.1.33: expected 255.255.255.0, got 255.255.0.0"]);
    a_wrong_gateway_in_the_guest: comprehensive("static-gateway", &["check_static_ip_preservation - NIC 00:50:56:", "(Ethernet0) gateway: expected 10.10.1.1, got 10.10.1.254"]);
    // The source's NIC names come from `nmcli device show` through Guest Operations, which a running
    // Linux source guest answers (a Windows guest has no NetworkManager).
    a_renamed_nic_in_the_guest: Misbehaviour {
        point: "nic-name",
        vm: "mtv-tests-rhel8",
        profile: "vsphere",
        markers: "tier0",
        scenario: "TestSanityWarmMtvMigration[rhel8]",
        step: "test_check_vms",
        wanted: &["check_nic_name_preservation - NIC 00:50:56:", "name: expected ens192, got eth9"],
    };
    a_guest_refusing_ssh: Misbehaviour {
        point: "ssh",
        vm: "mtv-tests-rhel8",
        profile: "vsphere",
        markers: "tier0",
        scenario: "TestSanityColdMtvMigration[rhel8]",
        step: "test_check_vms",
        wanted: &["check_ssh_connectivity - SSH to port 22: expected a login as cloud-user, got SSH to"],
    };
    a_data_marker_lost_in_the_guest: Misbehaviour {
        point: "guest-files",
        vm: "xcopy-template-test",
        profile: "vsphere-copy-offload",
        markers: "copyoffload",
        scenario: "TestCopyoffloadThinSnapshotsMigration[MTV-560]",
        step: "test_check_data_integrity",
        wanted: &["verify_data_integrity - data marker /root/mtv-data-integrity-marker: expected \"mtv-data-integrity-", "got no such file"],
    };
}
