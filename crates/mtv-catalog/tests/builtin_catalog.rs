//! The shipped catalog: it loads, holds every scenario the issue names with the Python suite's
//! markers and values, and its copy-offload VMs follow the matrix conventions.

use std::collections::{BTreeMap, BTreeSet};

use mtv_api::ProviderType;
use mtv_catalog::Catalog;
use mtv_catalog::markers::known_marker_names;
use mtv_catalog::model::{
    DiskMode, DiskProvisioning, PlanConfig, Power, PvcNameTemplate, RdmType, TargetPowerState,
};
use mtv_catalog::steps::StepKind;

fn catalog() -> Catalog {
    Catalog::builtin().unwrap_or_else(|e| panic!("builtin catalog: {e}"))
}

/// The plan config of the scenario `name`, which the catalog must hold.
fn config<'c>(catalog: &'c Catalog, name: &str) -> &'c PlanConfig {
    &catalog
        .find(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .entry
        .config
}

fn classes_with(catalog: &Catalog, marker: &str) -> BTreeSet<String> {
    catalog
        .scenarios
        .iter()
        .filter(|s| s.has_marker(marker))
        .map(|s| s.entry.class.clone())
        .collect()
}

const ISSUE_CLASSES: &[&str] = &[
    // Tier0
    "TestSanityColdMtvMigration",
    "TestSanityWarmMtvMigration",
    "TestColdMigrationComprehensive",
    "TestWarmMigrationComprehensive",
    "TestPostHookRetainFailedVm",
    // Warm
    "TestMtvMigrationWarm2disks2nics",
    // Remote
    "TestColdRemoteOcp",
    "TestWarmRemoteOcp",
    // OVA
    "TestOvaColdMigration",
    // Copy-offload matrix
    "TestCopyoffloadThinMigration",
    "TestCopyoffloadThickLazyMigration",
    "TestCopyoffloadThickEagerMigration",
    "TestCopyoffloadMultiDiskMigration",
    "TestCopyoffloadDualDiskMixedThinThickMigration",
    "TestCopyoffloadMultiDiskDifferentPathMigration",
    "TestCopyoffloadMultiDatastoreMigration",
    "TestCopyoffloadMultiDiskDifferentDatastorePathMigration",
    "TestCopyoffloadMixedDatastoreMigration",
    "TestCopyoffloadFallbackLargeMigration",
    "TestCopyoffloadRdmVirtualDiskMigration",
    "TestCopyoffloadRdmPhysicalDiskMigration",
    "TestCopyoffloadWarmRdmVirtualDiskMigration",
    "TestCopyoffloadThinSnapshotsMigration",
    "TestCopyoffloadThickLazySnapshotsMigration",
    "TestCopyoffloadThickEagerSnapshotsMigration",
    "TestCopyoffload2TbVmSnapshotsMigration",
    "TestCopyoffloadIndependentPersistentDiskMigration",
    "TestCopyoffloadIndependentNonpersistentDiskMigration",
    "TestCopyoffloadLargeVmMigration",
    "TestCopyoffload10MixedDisksMigration",
    "TestCopyoffloadNonconformingNameMigration",
    "TestCopyoffloadWarmMigration",
    "TestCopyoffloadScaleMigration",
    "TestSimultaneousCopyoffloadMigrations",
    "TestConcurrentXcopyVddkMigration",
];

#[test]
fn holds_exactly_the_scenarios_of_the_issue() {
    let catalog = catalog();
    let classes: Vec<&str> = catalog
        .scenarios
        .iter()
        .map(|s| s.entry.class.as_str())
        .collect();
    let expected: BTreeSet<&str> = ISSUE_CLASSES.iter().copied().collect();
    assert_eq!(classes.iter().copied().collect::<BTreeSet<_>>(), expected);
    assert_eq!(classes.len(), ISSUE_CLASSES.len(), "one scenario per class");
}

#[test]
fn scenario_names_and_ids() {
    let catalog = catalog();
    for name in [
        "TestSanityColdMtvMigration[rhel8]",
        "TestSanityWarmMtvMigration[rhel8]",
        "TestColdMigrationComprehensive[comprehensive-cold]",
        "TestWarmMigrationComprehensive[comprehensive-warm]",
        "TestMtvMigrationWarm2disks2nics[MTV-200-rhel]",
        "TestColdRemoteOcp[MTV-79]",
        "TestWarmRemoteOcp[MTV-394]",
        "TestCopyoffloadThinMigration[MTV-559]",
        "TestCopyoffloadScaleMigration[MTV-572]",
        "TestSimultaneousCopyoffloadMigrations[MTV-574]",
        "TestConcurrentXcopyVddkMigration[MTV-569]",
    ] {
        assert!(catalog.find(name).is_some(), "{name} missing");
    }
    let cold = catalog
        .find("TestSanityColdMtvMigration[rhel8]")
        .expect("sanity cold");
    assert_eq!(
        cold.item_id(StepKind::CreateStorageMap),
        "TestSanityColdMtvMigration[rhel8]::test_create_storagemap"
    );
    assert_eq!(cold.origin.file, "catalog/tier0.yaml");
    assert_eq!(cold.family, "Tier0");
}

#[test]
fn tier0_is_the_five_core_classes_plus_ova() {
    let expected: BTreeSet<String> = [
        "TestSanityColdMtvMigration",
        "TestSanityWarmMtvMigration",
        "TestColdMigrationComprehensive",
        "TestWarmMigrationComprehensive",
        "TestPostHookRetainFailedVm",
        "TestOvaColdMigration",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(classes_with(&catalog(), "tier0"), expected);
}

#[test]
fn counts_per_marker() {
    let catalog = catalog();
    let counts: BTreeMap<&str, usize> = known_marker_names()
        .into_iter()
        .map(|m| (m, classes_with(&catalog, m).len()))
        .collect();
    let expected: BTreeMap<&str, usize> = [
        ("tier0", 6),
        ("tier1", 0),
        ("remote", 2),
        ("warm", 6),
        ("copyoffload", 26),
        ("copyoffload_sanity", 7),
        ("copyoffload_snapshots", 4),
        ("incremental", 35),
        ("min_mtv_version", 0),
        ("vsphere", 33),
        ("rhv", 7),
        ("openstack", 3),
        ("openshift", 3),
        ("esxi", 1),
        ("hyperv", 2),
        ("ova", 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected);
    assert_eq!(catalog.scenarios.len(), 35);
    let items: usize = catalog.scenarios.iter().map(|s| s.steps.len()).sum();
    assert_eq!(items, 209);
}

#[test]
fn warm_classes_and_sanity_sets() {
    let catalog = catalog();
    let warm: BTreeSet<String> = [
        "TestSanityWarmMtvMigration",
        "TestWarmMigrationComprehensive",
        "TestMtvMigrationWarm2disks2nics",
        "TestWarmRemoteOcp",
        "TestCopyoffloadWarmRdmVirtualDiskMigration",
        "TestCopyoffloadWarmMigration",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(classes_with(&catalog, "warm"), warm);
    let sanity: BTreeSet<String> = [
        "TestCopyoffloadMultiDatastoreMigration",
        "TestCopyoffloadMixedDatastoreMigration",
        "TestCopyoffloadRdmVirtualDiskMigration",
        "TestCopyoffloadThickEagerSnapshotsMigration",
        "TestCopyoffload10MixedDisksMigration",
        "TestCopyoffloadWarmMigration",
        "TestCopyoffloadScaleMigration",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(classes_with(&catalog, "copyoffload_sanity"), sanity);
    let remote: BTreeSet<String> = ["TestColdRemoteOcp", "TestWarmRemoteOcp"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(classes_with(&catalog, "remote"), remote);
    for s in &catalog.scenarios {
        assert_eq!(
            s.is_remote(),
            s.entry.config.remote_destination,
            "{}",
            s.name()
        );
        assert_eq!(s.is_warm(), s.has_marker("warm"), "{}", s.name());
    }
}

#[test]
fn every_scenario_says_what_it_proves() {
    for s in &catalog().scenarios {
        let description = s.entry.description.as_deref().unwrap_or("");
        assert!(description.len() > 20, "{} lacks a description", s.name());
    }
}

#[test]
fn provider_restrictions() {
    let catalog = catalog();
    let four = Some(vec![
        ProviderType::Vsphere,
        ProviderType::Ovirt,
        ProviderType::Openstack,
        ProviderType::Openshift,
    ]);
    for s in &catalog.scenarios {
        let expected = match s.entry.class.as_str() {
            "TestSanityColdMtvMigration"
            | "TestColdMigrationComprehensive"
            | "TestPostHookRetainFailedVm" => four.clone(),
            "TestOvaColdMigration" => Some(vec![ProviderType::Ova]),
            // Warm and copy-offload scenarios are gated by their own rules, remote by the cluster.
            _ => None,
        };
        assert_eq!(s.entry.providers, expected, "{}", s.name());
    }
}

#[test]
fn tier0_values_match_the_python_suite() {
    let catalog = catalog();
    let cold = config(&catalog, "TestSanityColdMtvMigration[rhel8]");
    assert_eq!(cold.virtual_machines[0].name, "mtv-tests-rhel8");
    assert!(cold.virtual_machines[0].add_nic);
    assert_eq!(
        cold.virtual_machines[0].add_nic_start_connected,
        Some(false)
    );
    assert!(cold.per_nic_network_map && !cold.warm_migration);

    let warm = config(&catalog, "TestSanityWarmMtvMigration[rhel8]");
    assert!(warm.warm_migration);
    assert_eq!(warm.preserve_static_ips, Some(true));
    assert_eq!(warm.virtual_machines[0].source_vm_power, Some(Power::On));

    let hook = config(
        &catalog,
        "TestPostHookRetainFailedVm[post-hook-retain-failed-vm]",
    );
    assert_eq!(hook.target_power_state, Some(TargetPowerState::Off));
    assert!(hook.expects_migration_failure());
    assert_eq!(
        hook.expected_failure_step(),
        Some(mtv_catalog::model::HookStep::PostHook)
    );
}

#[test]
fn comprehensive_values_match_the_python_suite() {
    let catalog = catalog();
    let cold = config(
        &catalog,
        "TestColdMigrationComprehensive[comprehensive-cold]",
    );
    assert_eq!(cold.virtual_machines[0].name, "mtv-win2019-3disks");
    assert_eq!(cold.target_power_state, Some(TargetPowerState::On));
    assert_eq!(cold.preserve_static_ips, Some(true));
    assert_eq!(cold.enable_nested_virtualization, Some(false));
    assert_eq!(
        cold.pvc_name_template,
        Some(PvcNameTemplate::Single(
            r#"{{ .VmName | trunc 32 | trimSuffix "-" }}-{{ .VmName | trunc -4 }}-disk-{{.DiskIndex}}"#
                .into()
        ))
    );
    assert_eq!(cold.pvc_name_template_use_generate_name, Some(false));
    let selector = cold.target_node_selector.as_ref().expect("selector");
    assert_eq!(selector.get("mtv-comprehensive-node"), Some(&None));
    let labels = cold.target_labels.as_ref().expect("labels");
    assert_eq!(labels.get("mtv-comprehensive-label"), Some(&None));
    assert_eq!(labels.get("test-type"), Some(&Some("comprehensive".into())));
    let affinity = cold.target_affinity.as_ref().expect("affinity");
    let term = &affinity["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(term["weight"], 50);
    assert_eq!(
        term["podAffinityTerm"]["labelSelector"]["matchLabels"]["app"],
        "test"
    );
    assert_eq!(
        term["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(
        cold.vm_target_namespace.as_deref(),
        Some("mtv-vms-cold-comprehensive-{rand4}")
    );
    assert_eq!(cold.multus_namespace.as_deref(), Some("default"));
    assert_eq!(cold.guest_agent_timeout, Some(600));

    let warm = config(
        &catalog,
        "TestWarmMigrationComprehensive[comprehensive-warm]",
    );
    assert_eq!(warm.virtual_machines[0].name, "mtv-win2022-ip-3disks");
    let template = warm.pvc_name_template.as_ref().expect("template");
    assert_eq!(
        template.for_provider(ProviderType::Vsphere),
        Some(r#"{{ .FileName | trimSuffix ".vmdk" | replace "_" "-" }}-{{.DiskIndex}}"#)
    );
    assert_eq!(
        template.for_provider(ProviderType::Ovirt),
        Some(
            r#"{{ .VmName | trunc 32 | trimSuffix "-" }}-{{ .VmName | trunc -4 }}-disk-{{.DiskIndex}}"#
        )
    );
    assert_eq!(warm.pvc_name_template_use_generate_name, Some(true));
    let labels = warm.target_labels.as_ref().expect("labels");
    assert_eq!(labels.get("mtv-comprehensive-test"), Some(&None));
    assert_eq!(
        labels.get("static-label"),
        Some(&Some("static-value".into()))
    );
    let term = &warm.target_affinity.as_ref().expect("affinity")["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        [0];
    assert_eq!(term["weight"], 75);
    assert_eq!(
        term["podAffinityTerm"]["labelSelector"]["matchLabels"]["app"],
        "comprehensive-test"
    );
    assert_eq!(
        warm.vm_target_namespace.as_deref(),
        Some("mtv-vms-warm-comprehensive-{rand4}")
    );
    assert_eq!(warm.guest_agent_timeout, Some(600));
}

#[test]
fn copy_offload_vms_follow_the_matrix_conventions() {
    let catalog = catalog();
    for s in catalog.scenarios.iter().filter(|s| s.is_copyoffload()) {
        assert!(s.has_marker("vsphere"), "{}", s.name());
        assert_eq!(
            s.steps
                .iter()
                .filter(|st| st.kind == StepKind::CheckXcopyUsed)
                .count(),
            1
        );
        let power = if s.is_warm() { Power::On } else { Power::Off };
        for vm in &s.entry.config.virtual_machines {
            assert_eq!(vm.name, "xcopy-template-test", "{}", s.name());
            assert!(vm.clone && vm.guest_agent, "{}", s.name());
            assert_eq!(vm.source_vm_power, Some(power), "{}", s.name());
        }
        let snapshots = s
            .entry
            .config
            .virtual_machines
            .iter()
            .any(|vm| vm.snapshots == Some(2));
        assert_eq!(
            snapshots,
            s.has_marker("copyoffload_snapshots"),
            "{}",
            s.name()
        );
        assert_eq!(s.steps.len(), if snapshots { 8 } else { 6 }, "{}", s.name());
    }
}

#[test]
fn copy_offload_matrix_values() {
    let catalog = catalog();
    let vm = |name: &str| config(&catalog, name).virtual_machines[0].clone();
    assert_eq!(
        vm("TestCopyoffloadThinMigration[MTV-559]").disk_type,
        Some(DiskProvisioning::Thin)
    );
    assert_eq!(
        vm("TestCopyoffloadThickEagerMigration[MTV-582]").disk_type,
        Some(DiskProvisioning::ThickEager)
    );
    let mixed = vm("TestCopyoffloadMixedDatastoreMigration[MTV-565]");
    assert_eq!(
        mixed.add_disks[0].datastore_id.as_deref(),
        Some("non_xcopy_datastore_id")
    );
    let fallback = vm("TestCopyoffloadFallbackLargeMigration[MTV-614]");
    assert_eq!(
        fallback.target_datastore_id.as_deref(),
        Some("non_xcopy_datastore_id")
    );
    assert_eq!(fallback.add_disks[0].size_gb, 100);
    let rdm = vm("TestCopyoffloadRdmVirtualDiskMigration[MTV-562]");
    assert_eq!(rdm.add_disks[0].rdm_type, Some(RdmType::Virtual));
    assert_eq!(rdm.add_disks[0].size_gb, 0);
    assert_eq!(
        config(&catalog, "TestCopyoffloadRdmVirtualDiskMigration[MTV-562]").rdm_as_lun,
        Some(true)
    );
    assert_eq!(
        config(
            &catalog,
            "TestCopyoffloadWarmRdmVirtualDiskMigration[warm-rdm-virtual]"
        )
        .rdm_as_lun,
        None
    );
    assert_eq!(
        vm("TestCopyoffload2TbVmSnapshotsMigration[MTV-575]").add_disks[0].size_gb,
        2048
    );
    assert_eq!(
        vm("TestCopyoffloadLargeVmMigration[MTV-600]").add_disks[0].size_gb,
        1024
    );
    assert_eq!(
        vm("TestCopyoffloadIndependentNonpersistentDiskMigration[MTV-568]").add_disks[0].disk_mode,
        Some(DiskMode::IndependentNonpersistent)
    );
    let ten = vm("TestCopyoffload10MixedDisksMigration[MTV-573]");
    assert_eq!(ten.add_disks.len(), 10);
    assert!(ten.add_disks.iter().all(|d| d.size_gb == 10));
    let odd = vm("TestCopyoffloadNonconformingNameMigration[MTV-579]");
    assert_eq!(odd.clone_name.as_deref(), Some("XCopy_Test_VM_CAPS"));
    assert!(odd.preserve_name_format);

    let scale = config(&catalog, "TestCopyoffloadScaleMigration[MTV-572]");
    assert_eq!(scale.virtual_machines.len(), 5);
    assert_eq!(scale.guest_agent_timeout, Some(600));

    let simultaneous = config(&catalog, "TestSimultaneousCopyoffloadMigrations[MTV-574]");
    assert_eq!(simultaneous.virtual_machines.len(), 2);
    assert_eq!(simultaneous.concurrent_plans.len(), 2);
    assert!(
        simultaneous
            .concurrent_plans
            .iter()
            .all(|p| p.copyoffload.is_none())
    );

    let vddk = config(&catalog, "TestConcurrentXcopyVddkMigration[MTV-569]");
    assert_eq!(vddk.concurrent_plans.len(), 2);
    assert_eq!(vddk.concurrent_plans[0].copyoffload, None);
    assert_eq!(vddk.concurrent_plans[1].copyoffload, Some(false));
}

#[test]
fn origins_point_at_each_class_line() {
    let catalog = catalog();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for s in &catalog.scenarios {
        let text = std::fs::read_to_string(dir.join(&s.origin.file)).expect("read");
        let line = text.lines().nth(s.origin.line - 1).expect("line");
        assert_eq!(
            line.trim(),
            format!("- class: {}", s.entry.class),
            "{}",
            s.origin
        );
    }
}
