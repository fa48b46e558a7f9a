//! Selection (-m / -k) and gating against the source profile, and the JSON contract of `list`.

use std::collections::BTreeSet;

use mtv_api::ProviderType;
use mtv_catalog::collect::{REMOTE_UNSET_REASON, warm_unsupported_reason};
use mtv_catalog::expr::{KeywordExpr, MarkerExpr};
use mtv_catalog::markers::known_marker_names;
use mtv_catalog::steps::StepKind;
use mtv_catalog::{
    Catalog, Collection, CopyOffloadGate, GateContext, Outcome, Selection, SelectionError, collect,
};

const NO_SECTION: &str = "profile has no copyoffload section";

fn catalog() -> Catalog {
    Catalog::builtin().expect("builtin catalog")
}

fn gate(provider: ProviderType) -> GateContext {
    GateContext {
        provider_type: provider,
        profile_name: provider.as_str().to_string(),
        remote_ocp_cluster: None,
        mtv_version: None,
        copyoffload: CopyOffloadGate::Unsupported {
            reason: NO_SECTION.to_string(),
        },
    }
}

fn ready_vsphere() -> GateContext {
    GateContext {
        profile_name: "vsphere-copy-offload".into(),
        copyoffload: CopyOffloadGate::Ready,
        ..gate(ProviderType::Vsphere)
    }
}

fn m(expr: &str) -> Selection {
    Selection {
        markers: Some(MarkerExpr::parse(expr, &known_marker_names()).expect("marker expr")),
        keywords: None,
        scenarios: None,
    }
}

fn k(expr: &str) -> Selection {
    Selection {
        markers: None,
        keywords: Some(KeywordExpr::parse(expr).expect("keyword expr")),
        scenarios: None,
    }
}

fn run(catalog: &Catalog, selection: &Selection, gate: &GateContext) -> Collection {
    collect(catalog, selection, gate).unwrap_or_else(|e| panic!("collect: {e}"))
}

/// Scenario names whose items have this outcome kind.
fn scenarios_with(collection: &Collection, outcome: &str) -> BTreeSet<String> {
    collection
        .items
        .iter()
        .filter(|i| i.outcome.as_str() == outcome)
        .map(|i| i.scenario.clone())
        .collect()
}

fn reason_of(collection: &Collection, scenario: &str) -> Option<String> {
    let reasons: BTreeSet<Option<String>> = collection
        .items
        .iter()
        .filter(|i| i.scenario == scenario)
        .map(|i| i.outcome.reason().map(str::to_string))
        .collect();
    assert_eq!(reasons.len(), 1, "one outcome per scenario: {scenario}");
    reasons.into_iter().next().flatten()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn tier0_on_vsphere_selects_exactly_the_tier0_items() {
    let catalog = catalog();
    let collection = run(&catalog, &m("tier0"), &gate(ProviderType::Vsphere));
    assert_eq!(
        scenarios_with(&collection, "selected"),
        set(&[
            "TestSanityColdMtvMigration[rhel8]",
            "TestSanityWarmMtvMigration[rhel8]",
            "TestColdMigrationComprehensive[comprehensive-cold]",
            "TestWarmMigrationComprehensive[comprehensive-warm]",
            "TestPostHookRetainFailedVm[post-hook-retain-failed-vm]",
        ])
    );
    assert_eq!(
        scenarios_with(&collection, "skipped"),
        set(&["TestOvaColdMigration[ova-cold]"])
    );
    let s = &collection.summary;
    assert_eq!(
        (s.collected, s.selected, s.skipped, s.deselected),
        (209, 25, 5, 179)
    );
    assert_eq!(s.scenarios, 35);
    assert_eq!(s.scenarios_selected, 5);
    // Every non-deselected item carries tier0.
    assert!(
        collection
            .items
            .iter()
            .filter(|i| i.outcome != Outcome::Deselected)
            .all(|i| i.markers.iter().any(|m| m == "tier0"))
    );
    let first = &collection.items[0];
    assert_eq!(
        first.id,
        "TestSanityColdMtvMigration[rhel8]::test_create_storagemap"
    );
    assert_eq!(first.step, StepKind::CreateStorageMap);
    assert_eq!(collection.selected_scenarios(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn warm_is_skipped_with_the_python_reason_on_openstack_openshift_and_ova() {
    let catalog = catalog();
    for provider in [
        ProviderType::Openstack,
        ProviderType::Openshift,
        ProviderType::Ova,
    ] {
        let collection = run(&catalog, &m("warm and not copyoffload"), &gate(provider));
        let expected = format!("{} warm migration is not supported.", provider.as_str());
        assert_eq!(warm_unsupported_reason(provider), expected);
        for scenario in [
            "TestSanityWarmMtvMigration[rhel8]",
            "TestWarmMigrationComprehensive[comprehensive-warm]",
            "TestMtvMigrationWarm2disks2nics[MTV-200-rhel]",
            "TestWarmRemoteOcp[MTV-394]",
        ] {
            assert_eq!(
                reason_of(&collection, scenario).as_deref(),
                Some(expected.as_str())
            );
        }
        assert_eq!(collection.summary.selected, 0);
        assert_eq!(collection.summary.skip_reasons.get(&expected), Some(&20));
    }
    for provider in [ProviderType::Vsphere, ProviderType::Ovirt] {
        let collection = run(
            &catalog,
            &m("warm and not remote and not copyoffload"),
            &gate(provider),
        );
        assert_eq!(collection.summary.skipped, 0, "{provider}");
        assert_eq!(collection.summary.selected, 15, "{provider}");
    }
}

#[test]
fn remote_needs_a_remote_cluster() {
    let catalog = catalog();
    let collection = run(&catalog, &m("remote"), &gate(ProviderType::Vsphere));
    assert_eq!(
        reason_of(&collection, "TestColdRemoteOcp[MTV-79]").as_deref(),
        Some(REMOTE_UNSET_REASON)
    );
    assert_eq!(
        REMOTE_UNSET_REASON,
        "remote_ocp_cluster is not set (pass --tc remote_ocp_cluster:<cluster name>)"
    );
    assert_eq!(collection.summary.skipped, 10);

    let with_cluster = GateContext {
        remote_ocp_cluster: Some("cluster-b".into()),
        ..gate(ProviderType::Vsphere)
    };
    let collection = run(&catalog, &m("remote"), &with_cluster);
    assert_eq!(collection.summary.selected, 10);

    // An empty value counts as unset.
    let empty = GateContext {
        remote_ocp_cluster: Some(String::new()),
        ..gate(ProviderType::Vsphere)
    };
    assert_eq!(run(&catalog, &m("remote"), &empty).summary.skipped, 10);

    // On a source without warm support the warm gate speaks first.
    let collection = run(&catalog, &m("remote"), &gate(ProviderType::Openstack));
    assert_eq!(
        reason_of(&collection, "TestWarmRemoteOcp[MTV-394]").as_deref(),
        Some("openstack warm migration is not supported.")
    );
    assert_eq!(
        reason_of(&collection, "TestColdRemoteOcp[MTV-79]").as_deref(),
        Some(REMOTE_UNSET_REASON)
    );
}

fn versioned_catalog() -> Catalog {
    let text = "version: 1\nfamily: Versioned\nscenarios:\n  - class: TestNewFeature\n    id: new\n    min_mtv_version: \"2.10.0\"\n    markers: [incremental]\n    config:\n      virtual_machines:\n        - name: vm1\n";
    let mut catalog = Catalog::default();
    catalog
        .add(Catalog::parse_file("versioned.yaml", text).expect("valid"))
        .expect("add");
    catalog
}

#[test]
fn min_mtv_version_skips_older_clusters_only() {
    let catalog = versioned_catalog();
    let with = |version: Option<&str>| GateContext {
        mtv_version: version.map(String::from),
        ..gate(ProviderType::Vsphere)
    };
    let collection = run(&catalog, &Selection::default(), &with(Some("2.9.1")));
    assert_eq!(
        reason_of(&collection, "TestNewFeature[new]").as_deref(),
        Some("Test requires MTV 2.10.0+ (cluster has 2.9.1)")
    );
    for kept in [
        Some("2.10.0"),
        Some("v2.10.0-rc1"),
        Some("2.11.0"),
        Some("2.10.1"),
        None,
    ] {
        let collection = run(&catalog, &Selection::default(), &with(kept));
        assert_eq!(collection.summary.selected, 5, "{kept:?}");
    }
    // Markers shown on items and -m selection both know the version marker.
    let collection = run(&catalog, &m("min_mtv_version"), &with(None));
    assert_eq!(collection.summary.selected, 5);
    assert!(
        collection.items[0]
            .markers
            .contains(&"min_mtv_version".to_string())
    );
}

#[test]
fn provider_restrictions_skip_with_a_reason() {
    let catalog = catalog();
    let collection = run(&catalog, &m("tier0"), &gate(ProviderType::Vsphere));
    assert_eq!(
        reason_of(&collection, "TestOvaColdMigration[ova-cold]").as_deref(),
        Some("TestOvaColdMigration is meant for ova sources; profile 'vsphere' is vsphere")
    );
    let ova = GateContext {
        profile_name: "my-ova".into(),
        ..gate(ProviderType::Ova)
    };
    let collection = run(&catalog, &m("tier0"), &ova);
    assert_eq!(
        reason_of(&collection, "TestSanityColdMtvMigration[rhel8]").as_deref(),
        Some(
            "TestSanityColdMtvMigration is meant for vsphere, ovirt, openstack, openshift sources; profile 'my-ova' is ova"
        )
    );
    assert_eq!(
        scenarios_with(&collection, "selected"),
        set(&["TestOvaColdMigration[ova-cold]"])
    );
}

#[test]
fn copy_offload_ready_runs_the_matrix() {
    let catalog = catalog();
    let collection = run(&catalog, &Selection::default(), &ready_vsphere());
    let selected = scenarios_with(&collection, "selected");
    assert_eq!(
        catalog
            .scenarios
            .iter()
            .filter(|s| s.is_copyoffload() && selected.contains(&s.name()))
            .count(),
        26
    );
    // Only the remote ones and the OVA one are skipped on a vSphere profile.
    assert_eq!(
        scenarios_with(&collection, "skipped"),
        set(&[
            "TestColdRemoteOcp[MTV-79]",
            "TestWarmRemoteOcp[MTV-394]",
            "TestOvaColdMigration[ova-cold]"
        ])
    );
    let collection = run(&catalog, &m("copyoffload"), &ready_vsphere());
    assert_eq!(collection.summary.selected, 22 * 6 + 4 * 8);
}

#[test]
fn copy_offload_unsupported_is_skipped_when_not_asked_for() {
    let catalog = catalog();
    let collection = run(
        &catalog,
        &Selection::default(),
        &gate(ProviderType::Vsphere),
    );
    assert_eq!(
        reason_of(&collection, "TestCopyoffloadThinMigration[MTV-559]").as_deref(),
        Some(NO_SECTION)
    );
    assert_eq!(collection.summary.skip_reasons.get(NO_SECTION), Some(&164));
    // A filter that also selects other scenarios keeps the skip.
    let collection = run(&catalog, &m("warm"), &gate(ProviderType::Ovirt));
    assert_eq!(
        reason_of(&collection, "TestCopyoffloadWarmMigration[MTV-577]").as_deref(),
        Some(NO_SECTION)
    );
    assert_eq!(
        reason_of(&collection, "TestSanityWarmMtvMigration[rhel8]"),
        None
    );
}

#[track_caller]
fn assert_copyoffload_error(selection: &Selection, gate: &GateContext, reason_part: &str) {
    match collect(&catalog(), selection, gate) {
        Err(SelectionError::CopyOffload { reason }) => {
            assert!(reason.contains(reason_part), "{reason}");
        }
        Ok(c) => panic!("expected an error, got {:?}", c.summary),
    }
}

#[test]
fn copy_offload_asked_for_explicitly_is_an_error() {
    // -m copyoffload on an oVirt profile.
    assert_copyoffload_error(&m("copyoffload"), &gate(ProviderType::Ovirt), NO_SECTION);
    assert_copyoffload_error(
        &m("copyoffload and warm"),
        &gate(ProviderType::Vsphere),
        NO_SECTION,
    );
    assert_copyoffload_error(
        &m("copyoffload_sanity"),
        &gate(ProviderType::Vsphere),
        NO_SECTION,
    );
    // A keyword filter that only selects copy-offload scenarios asks for them too.
    assert_copyoffload_error(&k("Copyoffload"), &gate(ProviderType::Vsphere), NO_SECTION);
    assert_copyoffload_error(&k("MTV-559"), &gate(ProviderType::Vsphere), NO_SECTION);
    // A Ready gate on a non-vSphere source is still unsupported, with the Python suite's words.
    let ready_ovirt = GateContext {
        copyoffload: CopyOffloadGate::Ready,
        ..gate(ProviderType::Ovirt)
    };
    assert_copyoffload_error(
        &m("copyoffload"),
        &ready_ovirt,
        "Test is only applicable to vSphere source providers; profile 'ovirt' is ovirt",
    );
    // Expressions that do not require the marker keep skipping.
    for markers in ["copyoffload or tier0", "not copyoffload"] {
        let collected = collect(&catalog(), &m(markers), &gate(ProviderType::Ovirt));
        assert!(collected.is_ok(), "-m {markers}");
    }
    let err =
        collect(&catalog(), &m("copyoffload"), &gate(ProviderType::Ovirt)).expect_err("error");
    assert!(
        err.to_string()
            .starts_with("cannot run the selected copy-offload scenarios: ")
    );
}

#[test]
fn copy_offload_misconfigured_is_an_error_whenever_selected() {
    let broken = GateContext {
        copyoffload: CopyOffloadGate::Misconfigured {
            reason: "copyoffload section of profile 'vsphere-copy-offload' lacks storage_hostname"
                .into(),
        },
        ..ready_vsphere()
    };
    assert_copyoffload_error(&Selection::default(), &broken, "lacks storage_hostname");
    assert_copyoffload_error(&m("warm"), &broken, "lacks storage_hostname");
    // Nothing copy-offload selected: fine.
    assert!(collect(&catalog(), &m("tier0"), &broken).is_ok());
    assert!(collect(&catalog(), &m("not copyoffload"), &broken).is_ok());
}

#[test]
fn keyword_examples() {
    let catalog = catalog();
    let vsphere = gate(ProviderType::Vsphere);

    let collection = run(&catalog, &k("rhel8"), &vsphere);
    assert_eq!(
        scenarios_with(&collection, "selected"),
        set(&[
            "TestSanityColdMtvMigration[rhel8]",
            "TestSanityWarmMtvMigration[rhel8]"
        ])
    );
    assert_eq!(collection.summary.selected, 10);

    let collection = run(&catalog, &k("test_create_plan"), &vsphere);
    let kept: Vec<_> = collection
        .items
        .iter()
        .filter(|i| i.outcome != Outcome::Deselected)
        .collect();
    assert_eq!(kept.len(), 35, "one item per scenario");
    assert!(kept.iter().all(|i| i.step == StepKind::CreatePlan));

    let collection = run(&catalog, &k("Comprehensive and not Warm"), &vsphere);
    assert_eq!(
        scenarios_with(&collection, "selected"),
        set(&["TestColdMigrationComprehensive[comprehensive-cold]"])
    );
    assert_eq!(collection.summary.selected, 5);
    assert_eq!(collection.summary.skipped, 0);

    // Full item ids, families and config names are keywords too.
    let versioned = versioned_catalog();
    for (catalog, keyword, selected) in [
        (
            &catalog,
            "TestSanityColdMtvMigration[rhel8]::test_check_vms",
            1,
        ),
        // `Tier0` hits the Tier0 family and, case-insensitively, every tier0 marker.
        (&catalog, "Tier0", 25),
        (&versioned, "Versioned", 5),
        (&catalog, "test_mtv_migration_warm_2disks2nics", 5),
    ] {
        let collection = run(catalog, &k(keyword), &vsphere);
        assert_eq!(collection.summary.selected, selected, "-k {keyword}");
    }
}

#[test]
fn markers_and_keywords_combine() {
    let catalog = catalog();
    let selection = Selection {
        markers: Some(MarkerExpr::parse("tier0", &known_marker_names()).expect("m")),
        keywords: Some(KeywordExpr::parse("Warm").expect("k")),
        scenarios: None,
    };
    let collection = run(&catalog, &selection, &gate(ProviderType::Openshift));
    // Selected by both filters, then skipped by the warm gate: skipped, not deselected.
    assert_eq!(collection.summary.skipped, 10);
    assert_eq!(collection.summary.selected, 0);
    assert_eq!(collection.summary.deselected, 199);
    assert_eq!(collection.summary.scenarios_selected, 0);
}

#[test]
fn deselected_and_skipped_are_counted_apart() {
    let catalog = catalog();
    let collection = run(&catalog, &m("tier0"), &gate(ProviderType::Openstack));
    let s = &collection.summary;
    assert_eq!(s.collected, 209);
    assert_eq!(s.selected, 10);
    assert_eq!(s.skipped, 20);
    assert_eq!(s.deselected, 179);
    assert_eq!(s.collected, s.selected + s.skipped + s.deselected);
    assert_eq!(s.skip_reasons.len(), 3);
    assert_eq!(
        s.skip_reasons
            .get("openstack warm migration is not supported."),
        Some(&10)
    );
    assert_eq!(
        s.skip_reasons
            .get("TestOvaColdMigration is meant for ova sources; profile 'openstack' is openstack"),
        Some(&5)
    );
    assert_eq!(
        s.skip_reasons.get(
            "add_nic is only supported for vSphere source providers; profile 'openstack' is openstack"
        ),
        Some(&5)
    );
    assert_eq!(s.scenarios_selected, 2);
    assert_eq!(collection.selected_scenarios().len(), 2);
}

#[test]
fn json_shape_is_stable() {
    let text = "version: 1\nfamily: Small\nscenarios:\n  - class: TestSmallCold\n    id: one\n    markers: [tier0, incremental]\n    config:\n      virtual_machines:\n        - name: vm1\n  - class: TestSmallWarm\n    id: two\n    markers: [warm, incremental]\n    config:\n      warm_migration: true\n      virtual_machines:\n        - name: vm2\n          source_vm_power: \"on\"\n";
    let mut catalog = Catalog::default();
    catalog
        .add(Catalog::parse_file("small.yaml", text).expect("valid"))
        .expect("add");
    let collection = run(
        &catalog,
        &k("not test_check_vms"),
        &gate(ProviderType::Openshift),
    );
    let json = collection.to_json();
    let item_keys: Vec<&str> = json["items"][0]
        .as_object()
        .expect("item")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        item_keys,
        ["id", "scenario", "step", "markers", "outcome", "reason"]
    );
    let top_keys: Vec<&str> = json
        .as_object()
        .expect("doc")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(top_keys, ["items", "summary"]);
    insta::assert_json_snapshot!("small_collection_on_openshift", json);
}

#[test]
fn adding_a_nic_is_vsphere_only() {
    let catalog = mtv_catalog::Catalog::builtin().unwrap();
    for (provider, skipped) in [
        (mtv_api::ProviderType::Vsphere, false),
        (mtv_api::ProviderType::Ovirt, true),
        (mtv_api::ProviderType::Openstack, true),
    ] {
        let gate = mtv_catalog::collect::GateContext {
            provider_type: provider,
            profile_name: provider.as_str().to_string(),
            remote_ocp_cluster: None,
            mtv_version: None,
            copyoffload: mtv_catalog::collect::CopyOffloadGate::Unsupported {
                reason: "no copy-offload".into(),
            },
        };
        let selection = mtv_catalog::collect::Selection {
            markers: None,
            keywords: Some(
                mtv_catalog::expr::KeywordExpr::parse("TestSanityColdMtvMigration").unwrap(),
            ),
            scenarios: None,
        };
        let collection = mtv_catalog::collect::collect(&catalog, &selection, &gate).unwrap();
        let item = collection
            .items
            .iter()
            .find(|i| i.id == "TestSanityColdMtvMigration[rhel8]::test_create_plan")
            .unwrap();
        match &item.outcome {
            mtv_catalog::collect::Outcome::Skipped { reason } => {
                assert!(skipped, "{provider}: {reason}");
                assert!(
                    reason.starts_with("add_nic is only supported for vSphere source providers")
                );
            }
            other => assert!(!skipped, "{provider}: {other:?}"),
        }
    }
}
