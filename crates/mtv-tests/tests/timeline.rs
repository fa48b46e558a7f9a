//! Where the time went: a run on the embedded lab reports each migrated VM's pipeline (from the
//! Plan's status) in the event log, as JUnit properties of the migrate step and as an inline SVG
//! timeline in report.html, for a failed migration too (the failed step in red, with its error); the
//! failed step's bundle has the virt-v2v pod's and the Forklift controller's logs, and the root cause in
//! one line: the step, its error, the pod and its log line.

mod served_lab;

use served_lab::{events, mtv_tests, text};

#[test]
fn each_migrated_vm_has_its_pipeline_timeline_in_the_log_junit_and_html() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = mtv_tests(
        dir.path(),
        &[
            "run",
            "-m",
            "tier0",
            "-k",
            "SanityCold or SanityWarm",
            "--no-progress",
            "--results",
            "out",
            "--lab-speed",
            "4",
            "--lab-faults",
            "vm-fail=cold@ImageConversion",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let out = dir.path().join("out");
    let log = events(&out);
    let timelines: Vec<_> = log.iter().filter(|e| e["event"] == "vm_timeline").collect();
    let migrated: Vec<&str> = timelines
        .iter()
        .map(|e| e["id"].as_str().expect("an id"))
        .collect();
    assert!(
        migrated.contains(&"TestSanityColdMtvMigration[rhel8]::test_migrate_vms")
            && migrated
                .iter()
                .any(|id| id.starts_with("TestSanityWarmMtvMigration")),
        "{migrated:?}"
    );
    for timeline in &timelines {
        let phases = timeline["phases"].as_array().expect("phases");
        assert!(
            phases[0]["name"] == "Initialize" && phases[0]["start"] == 0.0,
            "{timeline}"
        );
        assert!(
            phases.iter().any(|p| p["duration"].is_number()),
            "{timeline}"
        );
    }
    // The cold VM failed at ImageConversion: its timeline says so, with Forklift's error.
    let cold = timelines
        .iter()
        .find(|e| e["vm"].as_str().is_some_and(|vm| vm.contains("cold")))
        .expect("the cold VM's timeline");
    let failed: Vec<&str> = cold["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .filter(|p| p["error"].is_string())
        .map(|p| p["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(failed, ["ImageConversion"], "{cold}");

    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("junit.xml");
    let vm = cold["vm"].as_str().expect("vm");
    assert!(
        junit.contains(&format!(
            "<property name=\"pipeline.{vm}.Initialize\" value=\""
        )),
        "{junit}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html");
    assert_eq!(
        html.matches("<figure class=\"timeline\"><svg").count(),
        2,
        "one timeline per migrate step"
    );
    assert!(html.contains(&format!("{vm} ImageConversion: failed: ")));
    assert!(!html.contains("<script"));

    // The failed step's bundle says why in one line, with the Forklift controller's log beside it.
    let bundle = out.join("TestSanityColdMtvMigration_rhel8_--test_migrate_vms");
    let cause = std::fs::read_to_string(bundle.join("root-cause.txt")).expect("root-cause.txt");
    assert_eq!(cause.lines().count(), 1, "{cause}");
    assert!(
        cause.starts_with(&format!(
            "VM {vm}: pipeline step ImageConversion failed: Injected fault"
        )),
        "{cause}"
    );
    let logs: Vec<String> = std::fs::read_dir(bundle.join("logs"))
        .expect("logs/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        logs.iter()
            .any(|name| name.starts_with("forklift-controller")),
        "{logs:?}"
    );
    // The virt-v2v pod's log is there, and its error line is the root cause's last part.
    let v2v = logs
        .iter()
        .find(|name| !name.starts_with("forklift-controller"))
        .expect("the VM's conversion pod's log");
    let v2v_log = std::fs::read_to_string(bundle.join("logs").join(v2v)).expect("log");
    assert!(
        v2v_log.starts_with("Building command: virt-v2v"),
        "{v2v_log}"
    );
    let error_line = v2v_log
        .lines()
        .find(|l| l.starts_with("virt-v2v: error: Injected fault"))
        .expect("the error line");
    let pod = v2v.trim_end_matches(".log");
    assert!(
        cause
            .trim_end()
            .ends_with(&format!("; pod {pod}: {error_line}")),
        "{cause}"
    );
}
