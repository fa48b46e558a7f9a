//! `mtv-tests diagnose PLAN -n NS` on a Plan that failed on a `mtv-tests lab serve` with an injected
//! `vm-fail`: the same one-line root cause as the failed step's bundle, and a bundle of its own with
//! the Plan, the virt-v2v pod's and the Forklift controller's logs, the inventory's view of the VM
//! and the Events.

mod served_lab;

use served_lab::{SANITY_COLD, ServedLab, as_strs, kubeconfig_args, mtv_tests, text};

#[test]
fn diagnose_finds_the_same_root_cause_as_the_runs_bundle() {
    let Some(lab) = ServedLab::start_with_faults("4", "vm-fail=cold@ImageConversion") else {
        return;
    };
    let dir = &lab.dir;
    let args = lab.run_args(&SANITY_COLD, &["--skip-teardown"]);
    let output = mtv_tests(dir.path(), &as_strs(&args));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let bundle = dir
        .path()
        .join("out/TestSanityColdMtvMigration_rhel8_--test_migrate_vms");
    let cause = std::fs::read_to_string(bundle.join("root-cause.txt")).expect("root-cause.txt");
    let plan_file = std::fs::read_dir(&bundle)
        .expect("bundle")
        .map(|e| e.expect("entry").path())
        .find(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("plan-"))
        })
        .expect("the Plan's YAML");
    let plan_object: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(plan_file).expect("plan YAML"))
            .expect("YAML");
    let plan = plan_object["metadata"]["name"].as_str().expect("name");
    let namespace = plan_object["metadata"]["namespace"]
        .as_str()
        .expect("namespace")
        .to_string();

    let args = kubeconfig_args(
        "diagnose",
        &[plan, "-n", &namespace, "-o", "diag"],
        &lab.kubeconfig,
    );
    let output = mtv_tests(dir.path(), &as_strs(&args));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("Plan {namespace}/{plan}: {}", cause.trim())),
        "{stdout}\nexpected the bundle's cause: {cause}"
    );
    let diag = dir.path().join("diag");
    assert_eq!(
        std::fs::read_to_string(diag.join("root-cause.txt")).expect("root-cause.txt"),
        cause
    );
    // The inventory's view of each VM of the Plan, as the run's bundle has it.
    let inventory_files = |dir: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("bundle")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("inventory-"))
            .collect();
        names.sort();
        names
    };
    let in_bundle = inventory_files(&bundle);
    assert_eq!(in_bundle.len(), 1, "{in_bundle:?}");
    assert_eq!(inventory_files(&diag), in_bundle);
    let view = std::fs::read_to_string(diag.join(&in_bundle[0])).expect("inventory view");
    assert!(view.contains("rhel8"), "{view}");
    for file in [format!("plan-{plan}.yaml"), "events.yaml".to_string()] {
        assert!(diag.join(&file).exists(), "{file}");
    }
    // The root cause names the VM's virt-v2v pod and its error line; diagnose kept that pod's log,
    // as the run's bundle did, and the line is in it.
    let (pod, line) = cause
        .trim_end()
        .split_once("; pod ")
        .and_then(|(_, rest)| rest.split_once(": "))
        .expect("the root cause names a pod and its log line");
    assert!(line.starts_with("virt-v2v: error: "), "{cause}");
    for dir in [&diag, &bundle] {
        let log = std::fs::read_to_string(dir.join("logs").join(format!("{pod}.log")))
            .unwrap_or_else(|e| panic!("{pod}.log in {}: {e}", dir.display()));
        assert!(log.starts_with("Building command: virt-v2v"), "{log}");
        assert!(log.lines().any(|l| l == line), "{line} in {log}");
    }
    assert!(
        std::fs::read_dir(diag.join("logs"))
            .expect("logs/")
            .any(|e| e
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .starts_with("forklift-controller")),
        "the controller's log"
    );
}
