//! A lab reached like a cluster (`mtv-tests lab serve`, then `--kubeconfig`) gets exactly the code a
//! cluster run gets: the warm cutover follows the Forklift clock the target serves (the lab's
//! `--speed`), and `clean` reaches the source again through the ledger's source reference, also in
//! a ledger of the previous format.

mod served_lab;

use serde_json::Value;
use served_lab::{ServedLab, as_strs, mtv_tests, text};

/// Forklift minutes before the cutover: long enough that real time (1000 minutes), the lab clock at
/// speed 1 (about 7.9 s) and at speed 8 (about 1 s) are far apart.
const MINUTES_BEFORE_CUTOVER: &str = "mins_before_cutover=1000";

/// The Migrations the run left (it keeps everything), across namespaces.
fn migrations(lab: &ServedLab) -> Vec<Value> {
    let list = lab.kubectl_json(&["get", "migrations.forklift.konveyor.io", "-A"]);
    list["items"].as_array().cloned().unwrap_or_default()
}

/// Seconds from a Migration's creation to the cutover the run asked for.
fn cutover_delay(migration: &Value) -> i64 {
    let at = |pointer: &str| {
        let text = migration
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {pointer} in {migration:#}"));
        mtv_api::time::parse_rfc3339(text).unwrap_or_else(|| panic!("{text} is not RFC 3339"))
    };
    at("/spec/cutover") - at("/metadata/creationTimestamp")
}

/// Rewrites a ledger in the format of the previous version: version 1, and every source VM's
/// source as the `adapter:name` string that version wrote.
fn as_version_1(ledger: &mut Value) -> usize {
    ledger["version"] = Value::from(1);
    let mut rewritten = 0;
    for entry in ledger["entries"].as_array_mut().unwrap() {
        if entry["type"] != "source_vm" {
            continue;
        }
        let source = &entry["source"];
        let legacy = match source["adapter"].as_str().unwrap() {
            "lab" => format!("lab:{}", source["source"].as_str().unwrap()),
            "openshift" => format!("openshift:{}", source["namespace"].as_str().unwrap()),
            "vsphere" => format!("vsphere:{}", source["server"].as_str().unwrap()),
            other => panic!("adapter {other}"),
        };
        entry["source"] = Value::from(legacy);
        rewritten += 1;
    }
    rewritten
}

#[test]
fn a_served_lab_times_the_warm_cutover_by_its_speed_and_an_old_ledger_still_cleans() {
    let Some(lab) = ServedLab::start("8") else {
        return;
    };
    let before = lab.cluster_state();
    let args = lab.run_args(
        &["-m", "tier0", "-k", "SanityWarm"],
        &["--set", MINUTES_BEFORE_CUTOVER, "--skip-teardown"],
    );
    let run = mtv_tests(lab.path(), &as_strs(&args));
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));

    // The cutover is due when 1000 Forklift minutes have passed on the lab's clock at speed 8:
    // about a second, where speed 1 would be about 8 s and real time 16 hours.
    let migrations = migrations(&lab);
    let warm: Vec<&Value> = migrations
        .iter()
        .filter(|m| !m["spec"]["cutover"].is_null())
        .collect();
    assert!(!warm.is_empty(), "no warm Migration: {migrations:#?}");
    for migration in warm {
        let delay = cutover_delay(migration);
        assert!(
            (-1..=3).contains(&delay),
            "cutover {delay} s after creation: {migration:#}"
        );
    }

    // The ledger names the report's target by the kubeconfig's server, and each clone's source
    // by a typed reference; written back as the previous version wrote it, clean still reaches
    // the source and removes everything.
    let mut ledger = lab.ledger();
    assert!(
        ledger["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://")),
        "{ledger:#}"
    );
    assert!(as_version_1(&mut ledger) > 0, "no source VM: {ledger:#}");
    std::fs::write(
        lab.path().join("out/resources.json"),
        serde_json::to_string_pretty(&ledger).unwrap(),
    )
    .unwrap();
    let clean = lab.clean(&[]);
    let shown = text(&clean);
    assert_eq!(clean.status.code(), Some(0), "{shown}");
    assert!(shown.contains("deleted SourceVm"), "{shown}");
    assert!(lab.ledger_all_removed(), "{:#}", lab.ledger());
    assert_eq!(lab.cluster_state(), before);
}
