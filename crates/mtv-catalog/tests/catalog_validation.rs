//! Catalog files that must be refused, each with file:line and the fix, and the `--catalog DIR`
//! loading rules.

use std::path::PathBuf;

use mtv_catalog::{Catalog, CatalogError};

/// A small valid file; each part is spliced in at the right indentation.
#[derive(Default)]
struct Doc<'a> {
    top: &'a str,
    markers: Option<&'a str>,
    scenario: &'a str,
    config: &'a str,
    vm: &'a str,
}

fn indent(text: &str, by: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(by)))
        .collect()
}

impl<'a> Doc<'a> {
    /// The base document with these lines at the top level.
    fn with_top(top: &'a str) -> Self {
        Doc {
            top,
            ..Doc::default()
        }
    }

    /// The base document with these scenario markers instead of `incremental` alone.
    fn with_markers(markers: &'a str) -> Self {
        Doc {
            markers: Some(markers),
            ..Doc::default()
        }
    }

    /// The base document with these lines in its scenario.
    fn with_scenario(scenario: &'a str) -> Self {
        Doc {
            scenario,
            ..Doc::default()
        }
    }

    /// The base document with these lines in its plan config.
    fn with_config(config: &'a str) -> Self {
        Doc {
            config,
            ..Doc::default()
        }
    }

    /// The base document with these lines in its VM.
    fn with_vm(vm: &'a str) -> Self {
        Doc {
            vm,
            ..Doc::default()
        }
    }

    fn render(&self) -> String {
        format!(
            "version: 1\nfamily: Test\n{top}scenarios:\n  - class: TestExample\n    id: one\n    markers: [{markers}]\n{scenario}    config:\n      virtual_machines:\n        - name: vm1\n          source_vm_power: \"on\"\n{vm}{config}",
            top = self.top,
            markers = self.markers.unwrap_or("incremental"),
            scenario = indent(self.scenario, 4),
            vm = indent(self.vm, 10),
            config = indent(self.config, 6),
        )
    }
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("`{needle}` not in\n{text}"))
        + 1
}

fn error(text: &str) -> CatalogError {
    match Catalog::parse_file("family.yaml", text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// The error names family.yaml:<line of `at`> and contains every `parts`.
#[track_caller]
fn assert_refused(doc: Doc<'_>, at: &str, parts: &[&str]) {
    let text = doc.render();
    let err = error(&text);
    let message = err.to_string();
    let location = format!("family.yaml:{}:", line_of(&text, at));
    assert!(
        message.starts_with(&location),
        "`{message}` should start with {location}"
    );
    for part in parts {
        assert!(message.contains(part), "`{message}` lacks `{part}`");
    }
}

#[track_caller]
fn assert_accepted(doc: Doc<'_>) {
    let text = doc.render();
    if let Err(e) = Catalog::parse_file("family.yaml", &text) {
        panic!("refused: {e}\n{text}");
    }
}

#[test]
fn the_base_document_is_valid() {
    let text = Doc::default().render();
    let scenarios = Catalog::parse_file("family.yaml", &text).expect("valid");
    assert_eq!(scenarios.len(), 1);
    assert_eq!(scenarios[0].name(), "TestExample[one]");
    assert_eq!(scenarios[0].origin.to_string(), "family.yaml:4");
    assert_eq!(scenarios[0].family, "Test");
}

// ---- unknown keys and syntax ------------------------------------------------------------------

#[track_caller]
fn assert_syntax(text: &str, line: usize, column: usize, parts: &[&str]) {
    match error(text) {
        CatalogError::Syntax(e) => {
            assert_eq!((e.line, e.column), (line, column), "{}", e.message);
        }
        other => panic!("not a syntax error: {other}"),
    }
    let message = error(text).to_string();
    assert!(
        message.starts_with(&format!("family.yaml:{line}:{column}: ")),
        "{message}"
    );
    for part in parts {
        assert!(message.contains(part), "`{message}` lacks `{part}`");
    }
}

#[test]
fn unknown_top_level_key() {
    let text = Doc::with_top("descripton: typo\n").render();
    assert_syntax(
        &text,
        3,
        1,
        &[
            "unknown field `descripton`",
            "remove the key or correct its spelling",
        ],
    );
}

#[test]
fn unknown_plan_config_key() {
    let text = Doc::with_config("warm_migratoin: true").render();
    let line = line_of(&text, "warm_migratoin");
    assert_syntax(&text, line, 7, &["unknown field `warm_migratoin`"]);
}

#[test]
fn unknown_vm_key() {
    let text = Doc::with_vm("guest_agnet: true").render();
    let line = line_of(&text, "guest_agnet");
    assert_syntax(&text, line, 11, &["unknown field `guest_agnet`"]);
}

#[test]
fn unknown_scenario_key_and_bad_values() {
    let text = Doc::with_scenario("tags: [a]").render();
    assert_syntax(&text, line_of(&text, "tags:"), 5, &["unknown field `tags`"]);

    let text = Doc::with_vm("disk_type: thick").render();
    let line = line_of(&text, "disk_type");
    match error(&text) {
        CatalogError::Syntax(e) => assert_eq!(e.line, line),
        other => panic!("{other}"),
    }
}

#[test]
fn syntax_errors_carry_a_source_span() {
    let text = Doc::with_config("bogus: 1").render();
    match error(&text) {
        CatalogError::Syntax(e) => {
            assert_eq!(
                &text[e.span.offset()..e.span.offset() + e.span.len()],
                "bogus"
            );
        }
        other => panic!("{other}"),
    }
}

#[test]
fn unquoted_on_and_off_are_power_states() {
    let text = Doc::default().render().replace("\"on\"", "on");
    let scenarios = Catalog::parse_file("family.yaml", &text).expect("valid");
    assert_eq!(
        scenarios[0].entry.config.virtual_machines[0].source_vm_power,
        Some(mtv_catalog::model::Power::On)
    );
}

#[test]
fn unsupported_version() {
    let text = Doc::default().render().replace("version: 1", "version: 2");
    let err = error(&text);
    assert!(matches!(err, CatalogError::Version { found: 2, .. }));
    let message = err.to_string();
    assert!(message.starts_with("family.yaml:1: "), "{message}");
    assert!(message.contains("set `version: 1`"), "{message}");
}

// ---- scenario rules ---------------------------------------------------------------------------

#[test]
fn class_and_id_shapes() {
    let text = Doc::default()
        .render()
        .replace("TestExample", "ExampleTest");
    let message = error(&text).to_string();
    assert!(
        message.starts_with("family.yaml:4: ExampleTest[one]: "),
        "{message}"
    );
    assert!(message.contains("start it with `Test`"), "{message}");

    let text = Doc::default()
        .render()
        .replace("id: one", "id: MTV-200 rhel");
    let message = error(&text).to_string();
    assert!(message.starts_with("family.yaml:5: "), "{message}");
    assert!(message.contains("e.g. `MTV-200-rhel`"), "{message}");
}

#[test]
fn unregistered_marker() {
    assert_refused(
        Doc::with_markers("incremental, tier9"),
        "markers:",
        &[
            "TestExample[one]",
            "unknown marker `tier9`",
            "registered markers: tier0, tier1",
        ],
    );
}

#[test]
fn marker_on_its_own_line_is_located() {
    let text = Doc::default().render().replace(
        "markers: [incremental]",
        "markers:\n      - incremental\n      - smoke",
    );
    let message = error(&text).to_string();
    let line = line_of(&text, "- smoke");
    assert!(
        message.starts_with(&format!("family.yaml:{line}: ")),
        "{message}"
    );
}

#[test]
fn min_mtv_version_rules() {
    assert_refused(
        Doc::with_markers("incremental, min_mtv_version"),
        "markers:",
        &["write `min_mtv_version: \"X.Y.Z\"`"],
    );
    assert_refused(
        Doc::with_scenario("min_mtv_version: \"2.10\""),
        "min_mtv_version",
        &[
            "min_mtv_version `2.10` is not X.Y.Z",
            "e.g. `min_mtv_version: \"2.10.0\"`",
        ],
    );
    assert_accepted(Doc::with_scenario("min_mtv_version: \"2.10.0\""));
}

#[test]
fn incremental_is_required() {
    assert_refused(
        Doc::with_markers("tier0"),
        "markers:",
        &["the `incremental` marker is missing", "add `incremental`"],
    );
}

#[test]
fn warm_marker_iff_warm_migration() {
    assert_refused(
        Doc::with_markers("incremental, warm"),
        "markers:",
        &["has the `warm` marker but `config.warm_migration` is not true"],
    );
    assert_refused(
        Doc::with_config("warm_migration: true"),
        "warm_migration",
        &[
            "`config.warm_migration: true` without the `warm` marker",
            "add `warm`",
        ],
    );
    assert_accepted(Doc {
        markers: Some("incremental, warm"),
        config: "warm_migration: true",
        ..Doc::default()
    });
}

#[test]
fn copyoffload_marker_iff_copyoffload() {
    assert_refused(
        Doc::with_markers("incremental, copyoffload"),
        "markers:",
        &["has the `copyoffload` marker but `config.copyoffload` is not true"],
    );
    assert_refused(
        Doc::with_config("copyoffload: true"),
        "copyoffload: true",
        &["without the `copyoffload` marker"],
    );
    assert_refused(
        Doc::with_markers("incremental, copyoffload_sanity"),
        "markers:",
        &["`copyoffload_sanity` without the `copyoffload` marker"],
    );
}

#[test]
fn remote_marker_iff_remote_destination() {
    assert_refused(
        Doc::with_markers("incremental, remote"),
        "markers:",
        &["`config.remote_destination` is not true"],
    );
    assert_refused(
        Doc::with_config("remote_destination: true"),
        "remote_destination",
        &["without the `remote` marker"],
    );
}

#[test]
fn providers_must_not_be_empty_or_repeat() {
    assert_refused(
        Doc::with_scenario("providers: []"),
        "providers:",
        &["`providers` is empty"],
    );
    assert_refused(
        Doc::with_scenario("providers: [ova, ova]"),
        "providers:",
        &["`ova` is listed twice"],
    );
}

#[test]
fn add_nic_needs_start_connected() {
    assert_refused(
        Doc::with_vm("add_nic: true"),
        "add_nic",
        &[
            "VM `vm1` has `add_nic: true` without `add_nic_start_connected`",
            "add `add_nic_start_connected: true` or `false`",
        ],
    );
    assert_accepted(Doc::with_vm(
        "add_nic: true\nadd_nic_start_connected: false",
    ));
}

#[test]
fn preserve_static_ips_needs_running_vms() {
    let doc = Doc::with_config("preserve_static_ips: true");
    let text = doc
        .render()
        .replace("source_vm_power: \"on\"", "source_vm_power: \"off\"");
    let message = error(&text).to_string();
    let line = line_of(&text, "source_vm_power");
    assert!(
        message.starts_with(&format!("family.yaml:{line}: ")),
        "{message}"
    );
    assert!(
        message.contains("VM `vm1` is not `source_vm_power: on`"),
        "{message}"
    );
    assert!(
        message.contains("set `source_vm_power: on` on every VM"),
        "{message}"
    );
    assert_accepted(Doc::with_config("preserve_static_ips: true"));
}

#[test]
fn node_selector_has_one_label() {
    assert_refused(
        Doc::with_config("target_node_selector:\n  a: x\n  b: null"),
        "  a: x",
        &["target_node_selector has 2 labels; exactly one is supported"],
    );
    assert_accepted(Doc::with_config("target_node_selector:\n  a: null"));
}

#[test]
fn pvc_name_template_keys() {
    assert_refused(
        Doc::with_config("pvc_name_template:\n  rhv: tpl-rhv\n  default: tpl-default"),
        "rhv: tpl-rhv",
        &[
            "unknown key `rhv`",
            "vsphere, ovirt, openstack, openshift, ova, default",
        ],
    );
    assert_refused(
        Doc::with_config("pvc_name_template:\n  vsphere: tpl-vsphere"),
        "vsphere: tpl-vsphere",
        &["no template for `ovirt` sources", "add a `default:` entry"],
    );
    // Restricted to vSphere, a vsphere entry alone is enough.
    assert_accepted(Doc {
        scenario: "providers: [vsphere]",
        config: "pvc_name_template:\n  vsphere: tpl-vsphere",
        ..Doc::default()
    });
    assert_accepted(Doc::with_config(
        "pvc_name_template: \"{{.VmName}}-disk-{{.DiskIndex}}\"",
    ));
    // A value that is not a string gets the shape explained.
    let text = Doc::with_config("pvc_name_template:\n  vsphere: 3").render();
    let message = error(&text).to_string();
    assert!(
        message.contains("or a map from a provider type"),
        "{message}"
    );
}

#[test]
fn hooks_set_exactly_one_action() {
    assert_refused(
        Doc::with_config("pre_hook:\n  expected_result: succeed\n  aap_job_template_id: 7"),
        "expected_result",
        &[
            "pre_hook: sets 2 of expected_result / playbook_base64 / aap_job_template_id",
            "set exactly one",
        ],
    );
    assert_refused(
        Doc::with_config("post_hook: {}"),
        "post_hook",
        &["post_hook: sets 0 of"],
    );
    assert_refused(
        Doc::with_config("post_hook:\n  playbook_base64: \"not base64!\""),
        "playbook_base64",
        &["playbook_base64 is not valid base64", "base64 -w0"],
    );
    assert_refused(
        Doc::with_config("post_hook:\n  playbook_base64: \"/w==\""),
        "playbook_base64",
        &["does not decode to UTF-8 text"],
    );
    assert_refused(
        Doc::with_config("post_hook:\n  aap_job_template_id: 0"),
        "aap_job_template_id",
        &["aap_job_template_id is 0"],
    );
    // "- hosts: localhost\n" in base64.
    assert_accepted(Doc::with_config(
        "pre_hook:\n  playbook_base64: LSBob3N0czogbG9jYWxob3N0Cg==",
    ));
}

#[test]
fn skip_clone_conflicts() {
    assert_refused(
        Doc {
            scenario: "providers: [vsphere]",
            vm: "add_nic: true\nadd_nic_start_connected: true",
            config: "skip_clone: true\nclone_to_same_host: true",
            ..Doc::default()
        },
        "skip_clone",
        &[
            "`skip_clone: true` conflicts with clone_to_same_host, add_nic",
            "drop `skip_clone`",
        ],
    );
    assert_refused(
        Doc {
            config: "skip_clone: true\npreserve_static_ips: true",
            scenario: "providers: [vsphere]",
            ..Doc::default()
        },
        "skip_clone",
        &["conflicts with preserve_static_ips"],
    );
    assert_refused(
        Doc::with_config("skip_clone: true"),
        "skip_clone",
        &[
            "cannot run on ovirt sources",
            "list `providers:` without ovirt",
        ],
    );
    assert_accepted(Doc {
        scenario: "providers: [vsphere, openstack]",
        config: "skip_clone: true",
        ..Doc::default()
    });
}

fn two_vms(plans: &str) -> String {
    Doc {
        vm: "clone_name: a",
        config: plans,
        ..Doc::default()
    }
    .render()
    .replacen(
        "          clone_name: a\n",
        "          clone_name: a\n        - name: vm1\n          clone_name: b\n",
        1,
    )
}

#[test]
fn concurrent_plans_name_existing_vms_once() {
    let ok = two_vms(
        "concurrent_plans:\n  - virtual_machines: [a]\n  - virtual_machines: [b]\n    copyoffload: false",
    );
    Catalog::parse_file("family.yaml", &ok).unwrap_or_else(|e| panic!("{e}\n{ok}"));

    let text = two_vms("concurrent_plans:\n  - virtual_machines: [a]\n  - virtual_machines: [c]");
    let message = error(&text).to_string();
    assert!(
        message.starts_with(&format!("family.yaml:{}: ", line_of(&text, "[c]"))),
        "{message}"
    );
    assert!(
        message.contains("names VM `c`, which is not in `virtual_machines`"),
        "{message}"
    );
    assert!(message.contains("use one of: a, b"), "{message}");

    let text =
        two_vms("concurrent_plans:\n  - virtual_machines: [a]\n  - virtual_machines: [b, a]");
    let message = error(&text).to_string();
    assert!(
        message.contains("VM `a` is in concurrent plan 1 and 2"),
        "{message}"
    );
    assert!(
        message.contains("put each VM in one Plan only"),
        "{message}"
    );

    let text = two_vms("concurrent_plans:\n  - virtual_machines: [a, b]");
    assert!(error(&text).to_string().contains("lists a single Plan"));

    // Two clones of one template without clone names cannot be told apart.
    let text = Doc::with_config(
        "concurrent_plans:\n  - virtual_machines: [vm1]\n  - virtual_machines: [vm1]",
    )
    .render()
    .replacen(
        "          source_vm_power: \"on\"\n",
        "          source_vm_power: \"on\"\n        - name: vm1\n",
        1,
    );
    assert!(
        error(&text)
            .to_string()
            .contains("give the clones distinct `clone_name`s")
    );
}

#[test]
fn target_namespace_is_a_dns_label() {
    assert_refused(
        Doc::with_config("vm_target_namespace: Custom_NS"),
        "vm_target_namespace",
        &[
            "vm_target_namespace `Custom_NS` is not a valid namespace name",
            "at most 63 lower-case",
        ],
    );
    let long = format!("vm_target_namespace: {}-{{rand4}}", "a".repeat(60));
    assert_refused(
        Doc::with_config(&long),
        "vm_target_namespace",
        &["is not a valid namespace name"],
    );
    assert_accepted(Doc::with_config("vm_target_namespace: mtv-vms-{rand4}"));
}

#[test]
fn datastore_ids_are_morefs_or_known_symbols() {
    assert_refused(
        Doc::with_vm("target_datastore_id: third_datastore_id"),
        "target_datastore_id",
        &[
            "target_datastore_id `third_datastore_id` is not a datastore id",
            "secondary_datastore_id",
        ],
    );
    assert_refused(
        Doc::with_vm("add_disks:\n  - size_gb: 1\n    datastore_id: nfs-store"),
        "datastore_id: nfs-store",
        &["added disk 1: datastore_id `nfs-store`"],
    );
    assert_accepted(Doc::with_vm(
        "target_datastore_id: datastore-1021\nadd_disks:\n  - {size_gb: 1, datastore_id: non_xcopy_datastore_id}",
    ));
}

#[test]
fn added_disks_need_a_size_unless_rdm() {
    assert_refused(
        Doc::with_vm("add_disks:\n  - provision_type: thin"),
        "- provision_type: thin",
        &["added disk 1 has no `size_gb`"],
    );
    assert_refused(
        Doc::with_vm("add_disks:\n  - {rdm_type: virtual, size_gb: 10}"),
        "rdm_type",
        &["an RDM disk takes its size and provisioning from the LUN"],
    );
}

#[test]
fn duplicate_scenario_in_one_file() {
    let one = Doc::default().render();
    let scenario = &one[one.find("  - class").expect("class")..];
    let text = format!("{one}{scenario}");
    let message = error(&text).to_string();
    assert!(
        message.starts_with("family.yaml:11: TestExample[one]: "),
        "{message}"
    );
    assert!(message.contains("first at family.yaml:4"), "{message}");
}

#[test]
fn invalid_errors_carry_source_and_span() {
    let text = Doc::with_config("vm_target_namespace: Bad").render();
    match error(&text) {
        CatalogError::Invalid(e) => {
            assert_eq!(e.scenario, "TestExample[one]");
            assert_eq!(
                &text[e.span.offset()..e.span.offset() + e.span.len()],
                "Bad"
            );
            assert_eq!(e.origin.line, line_of(&text, "Bad"));
        }
        other => panic!("{other}"),
    }
}

// ---- --catalog DIR ----------------------------------------------------------------------------

fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("catalog-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir
}

#[test]
fn extra_directory_adds_sorted_yaml_files() {
    let dir = scratch_dir("extra");
    let b = Doc::default().render().replace("id: one", "id: b");
    let a = Doc::default().render().replace("id: one", "id: a");
    std::fs::write(dir.join("b.yml"), b).expect("write");
    std::fs::write(dir.join("a.yaml"), a).expect("write");
    std::fs::write(dir.join("notes.txt"), "not a catalog").expect("write");
    let mut catalog = Catalog::builtin().expect("builtin");
    let before = catalog.scenarios.len();
    catalog.extend_from_dir(&dir).expect("extend");
    let added: Vec<String> = catalog.scenarios[before..]
        .iter()
        .map(|s| s.name())
        .collect();
    assert_eq!(added, ["TestExample[a]", "TestExample[b]"]);
    assert!(catalog.scenarios[before].origin.file.ends_with("a.yaml"));
}

#[test]
fn duplicate_across_catalog_dir_and_builtin() {
    let dir = scratch_dir("duplicate");
    let text = Doc::default()
        .render()
        .replace("TestExample", "TestSanityColdMtvMigration")
        .replace("id: one", "id: rhel8");
    let path = dir.join("mine.yaml");
    std::fs::write(&path, text).expect("write");
    let mut catalog = Catalog::builtin().expect("builtin");
    let builtin_origin = catalog
        .find("TestSanityColdMtvMigration[rhel8]")
        .expect("builtin")
        .origin
        .to_string();
    let err = catalog.extend_from_dir(&dir).expect_err("duplicate");
    let message = err.to_string();
    assert!(matches!(err, CatalogError::Duplicate { .. }));
    assert!(
        message.starts_with(&format!("{}:4: ", path.display())),
        "{message}"
    );
    assert!(
        message.contains(&format!("already defined at {builtin_origin}")),
        "{message}"
    );
    assert!(
        message.contains("give one of them another `id`"),
        "{message}"
    );
}

#[test]
fn directory_problems() {
    let dir = scratch_dir("empty");
    let mut catalog = Catalog::default();
    let message = catalog
        .extend_from_dir(&dir)
        .expect_err("empty")
        .to_string();
    assert!(
        message.contains("no *.yaml or *.yml catalog files found"),
        "{message}"
    );

    let missing = dir.join("missing");
    let err = catalog.extend_from_dir(&missing).expect_err("missing");
    assert!(matches!(err, CatalogError::Io { .. }));
    assert!(err.to_string().contains("check the --catalog path"));

    let dir = scratch_dir("broken");
    std::fs::write(
        dir.join("x.yaml"),
        "version: 1\nfamily: X\nscenarios:\n  - klass: T\n",
    )
    .expect("write");
    let message = catalog
        .extend_from_dir(&dir)
        .expect_err("broken")
        .to_string();
    assert!(
        message.starts_with(&format!(
            "{}:4:5: unknown field `klass`",
            dir.join("x.yaml").display()
        )),
        "{message}"
    );
}
