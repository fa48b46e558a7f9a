//! The suite catches a Forklift that gets one thing wrong: for every validation, the lab's simulated
//! Forklift misbehaves on exactly that point (`misbehave=<vm>@<point>`) and the run fails the right
//! step with a message naming the VM, the check, what was expected and what was found, while teardown
//! still leaves the lab as it found it.

mod common;

use common::{COMPREHENSIVE, Misbehaviour, WIN2019, comprehensive};

caught! {
    a_wrong_mac: comprehensive("mac", &["check_network - NIC 00:50:56:", ": expected an interface with this MAC, got MACs 00:50:56:"]);
    a_nic_on_the_wrong_network: comprehensive("network", &["check_network - NIC", "network: expected"]);
    a_missing_label: comprehensive("labels", &["check_vm_labels - label mtv-comprehensive-label", "got no such label"]);
    a_pvc_in_the_wrong_storage_class: comprehensive("storage-class", &["check_storage - disk", "storage class: expected lab-ceph-rbd, got"]);
    a_pvc_smaller_than_the_disk: comprehensive("disk-size", &["check_storage - disk", "size: expected at least"]);
    a_disk_left_out: comprehensive("disk-count", &["check_storage - disk count: expected 3, got 2"]);
    a_vm_left_powered_off: comprehensive("power", &["check_vms_power_state - power state: expected on, got off"]);
    a_wrong_cpu_topology: comprehensive("cpu", &["check_cpu - sockets: expected"]);
    a_wrong_memory_size: comprehensive("memory", &["check_memory - memory: expected"]);
    pvc_names_not_from_the_template: comprehensive("pvc-name", &["check_pvc_names - disk", "expected PVC"]);
    a_vm_not_on_the_labelled_node: comprehensive("node-selector", &["check_vm_node_placement - nodeSelector", "expected"]);
    an_altered_affinity: comprehensive("affinity", &["check_vm_affinity - affinity: expected {\"podAffinity\""]);
    a_guest_agent_that_never_connects: comprehensive("guest-agent", &["check_guest_agent - guest agent: expected connected, got not connected"]);
    static_ips_not_preserved: comprehensive("static-ip", &["check_static_ip_preservation - NIC 00:50:56:", "IPs: expected 10.10.1.33, got 10.128."]);
    a_changed_serial: comprehensive("serial", &["check_serial_preservation - firmware serial: expected"]);
    a_swapped_firmware: comprehensive("firmware", &["check_boot_configuration - boot firmware: expected"]);
    nested_virtualization_left_on: comprehensive("nested-virt", &["check_cpu_features - CPU feature vmx: expected policy disable, got absent"]);
    a_renamed_vm: comprehensive("name", &["check_vm_name - name: expected", "-lab"]);
    a_vm_in_the_wrong_namespace: comprehensive("namespace", &["check_vm_namespace - namespace: expected mtv-vms-cold-comprehensive-"]);
    a_disconnected_nic_brought_up: Misbehaviour {
        point: "disconnected-nic",
        vm: "mtv-tests-rhel8",
        profile: "vsphere",
        markers: "tier0",
        scenario: "TestSanityColdMtvMigration[rhel8]",
        step: "test_check_vms",
        wanted: &["check_disconnected_nic_state - NIC", "expected state down, got state up"],
    };
    a_hook_failing_at_the_other_step: Misbehaviour {
        point: "hook-step",
        vm: "mtv-tests-rhel8",
        profile: "vsphere",
        markers: "tier0",
        scenario: "TestPostHookRetainFailedVm[post-hook-retain-failed-vm]",
        step: "test_migrate_vms",
        wanted: &["failed at PreHook", "expected PostHook"],
    };
    a_warm_migration_without_precopy: Misbehaviour {
        point: "precopy",
        vm: "mtv-tests-rhel8",
        profile: "vsphere",
        markers: "tier0",
        scenario: "TestSanityWarmMtvMigration[rhel8]",
        step: "test_migrate_vms",
        wanted: &["warm migration: expected at least one precopy before the cutover, got none"],
    };
    xcopy_not_used: Misbehaviour {
        point: "xcopy",
        vm: "xcopy-template-test",
        profile: "vsphere-copy-offload",
        markers: "copyoffload",
        scenario: "TestCopyoffloadThinMigration[MTV-559]",
        step: "test_check_xcopy_used",
        wanted: &["expected xcopyUsed=1, got xcopyUsed=0"],
    };
    a_source_snapshot_removed: Misbehaviour {
        point: "snapshots",
        vm: "xcopy-template-test",
        profile: "vsphere-copy-offload",
        markers: "copyoffload",
        scenario: "TestCopyoffloadThinSnapshotsMigration[MTV-560]",
        step: "test_check_vms",
        wanted: &["check_snapshots - source snapshots: expected"],
    };
    rdm_disks_not_attached_as_luns: Misbehaviour {
        point: "lun",
        vm: "xcopy-template-test",
        profile: "vsphere-copy-offload",
        markers: "copyoffload",
        scenario: "TestCopyoffloadRdmVirtualDiskMigration[MTV-562]",
        step: "test_check_vms",
        wanted: &["verify_rdm_disk_bus_types - LUN disks: expected at least one, got none"],
    };
    a_source_powered_off_hard: Misbehaviour {
        point: "source-stop",
        vm: WIN2019,
        profile: "ovirt",
        markers: "tier0",
        scenario: COMPREHENSIVE,
        step: "test_check_vms",
        wanted: &["check_false_vm_power_off - source events: expected no USER_STOP_VM (code 33) during the migration, got VM"],
    };
}
