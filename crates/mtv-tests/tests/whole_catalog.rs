//! The whole catalog, as a user runs it: `mtv-tests run` with no marker on the embedded lab, for every
//! built-in profile. Every item that `mtv-tests list` selects must pass, every item it skips must be
//! skipped with the same reason, and nothing else may run. The remote scenarios use the lab as their
//! remote cluster (`--tc remote_ocp_cluster:lab`).
//!
//! The same runs prove that `plan` and the run agree: for every step that passed, the checks `plan`
//! lists are exactly the checks the run reports having run (`checks_ran` events), VM by VM.
//!
//! One test per profile, so the harness runs them side by side and a failure names its profile.

mod served_lab;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

use serde_json::Value;
use served_lab::{kept_entries, ledger, listed_items, mtv_tests, mtv_tests_json};

/// The lab's speed for these runs: fast, yet below the README's limit of about 20, where every scenario
/// stays meaningful (the simultaneous copy-offload Plans must still overlap).
const LAB_SPEED: &str = "10";

/// What `list` expects of each item: `None` for selected, `Some(reason)` for skipped.
fn listed(dir: &std::path::Path, profile: &str) -> BTreeMap<String, Option<String>> {
    let listing = mtv_tests_json(
        dir,
        &[
            "list",
            "--source-provider",
            profile,
            "--tc",
            "remote_ocp_cluster:lab",
            "--tc",
            "mtv_version:2.10.0",
        ],
    );
    listed_items(&listing)
        .map(|item| {
            let id = item["id"].as_str().expect("id").to_string();
            let reason = (item["outcome"] == "skipped")
                .then(|| item["reason"].as_str().unwrap_or_default().to_string());
            (id, reason)
        })
        .collect()
}

/// Each step's outcome as the run's event stream reports it: `outcome` and its reason or message.
fn ran(output: &Output) -> BTreeMap<String, (String, String)> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("one JSON event per line"))
        .filter(|event| event["event"] == "step_finished")
        .map(|event| {
            let detail = event
                .get("reason")
                .or_else(|| event.get("message"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (
                event["id"].as_str().expect("id").to_string(),
                (
                    event["outcome"].as_str().expect("outcome").to_string(),
                    detail,
                ),
            )
        })
        .collect()
}

/// One check of one step: the check's name and the VM it is for (empty for the whole scenario).
type Checks = BTreeMap<String, BTreeSet<(String, String)>>;

/// Flattens `[{check, vms: [...]}, ...]` (the shape `plan` and `checks_ran` share) into pairs.
fn check_pairs(checks: &Value) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for check in checks.as_array().expect("a list of checks") {
        let name = check["check"].as_str().expect("a check name").to_string();
        match check.get("vms").and_then(Value::as_array) {
            Some(vms) if !vms.is_empty() => {
                for vm in vms {
                    pairs.insert((name.clone(), vm.as_str().expect("a VM key").to_string()));
                }
            }
            _ => {
                pairs.insert((name, String::new()));
            }
        }
    }
    pairs
}

/// The checks `mtv-tests plan` lists, per step id.
fn planned_checks(dir: &std::path::Path, profile: &str) -> Checks {
    let plan = mtv_tests_json(
        dir,
        &[
            "plan",
            "--source-provider",
            profile,
            "--tc",
            "remote_ocp_cluster:lab",
        ],
    );
    plan["preview"]["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .flat_map(|scenario| scenario["steps"].as_array().expect("steps"))
        .map(|step| {
            (
                step["id"].as_str().expect("a step id").to_string(),
                check_pairs(&step["checks"]),
            )
        })
        .collect()
}

/// The checks the run reports having run, per step id.
fn reported_checks(output: &Output) -> Checks {
    let mut checks = Checks::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let event: Value = serde_json::from_str(line).expect("one JSON event per line");
        if event["event"] == "checks_ran" {
            checks
                .entry(event["id"].as_str().expect("a step id").to_string())
                .or_default()
                .extend(check_pairs(&event["checks"]));
        }
    }
    checks
}

/// Every step that passed ran exactly the checks `plan` listed for it.
fn plan_equals_run(profile: &str, planned: &Checks, output: &Output) {
    let outcomes = ran(output);
    let reported = reported_checks(output);
    let empty = BTreeSet::new();
    let mut differ = Vec::new();
    let mut compared = 0;
    for (id, (outcome, _)) in &outcomes {
        if outcome != "passed" {
            continue;
        }
        let Some(listed) = planned.get(id) else {
            differ.push(format!("{id}: passed, but plan does not list the step"));
            continue;
        };
        let run = reported.get(id).unwrap_or(&empty);
        compared += usize::from(!listed.is_empty());
        if listed != run {
            differ.push(format!(
                "{id}:\n  plan lists, the run did not report: {:?}\n  the run reported, plan does not list: {:?}",
                listed.difference(run).collect::<Vec<_>>(),
                run.difference(listed).collect::<Vec<_>>()
            ));
        }
    }
    assert!(compared > 0, "{profile}: no step with checks was compared");
    assert!(
        differ.is_empty(),
        "{profile}: plan and run disagree on the checks of {} steps:\n{}",
        differ.len(),
        differ.join("\n")
    );
}

fn whole_catalog_passes(profile: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = listed(dir.path(), profile);
    let planned = planned_checks(dir.path(), profile);
    assert!(
        expected.values().any(Option::is_none),
        "{profile}: list selects nothing"
    );
    let output = mtv_tests(
        dir.path(),
        &[
            "run",
            "--source-provider",
            profile,
            "--tc",
            "remote_ocp_cluster:lab",
            "-j",
            "8",
            "--lab-speed",
            LAB_SPEED,
            "--format",
            "json",
            "--results",
            "out",
        ],
    );
    let outcomes = ran(&output);
    let mut wrong = Vec::new();
    for (id, skip_reason) in &expected {
        let got = outcomes.get(id);
        let right = match (skip_reason, got) {
            (None, Some((outcome, _))) => outcome == "passed",
            (Some(reason), Some((outcome, detail))) => outcome == "skipped" && detail == reason,
            (_, None) => false,
        };
        if !right {
            wrong.push(format!("{id}: expected {skip_reason:?}, got {got:?}"));
        }
    }
    for id in outcomes.keys().filter(|id| !expected.contains_key(*id)) {
        wrong.push(format!("{id}: ran, but list does not have it"));
    }
    assert!(
        wrong.is_empty(),
        "{profile}: {} of {} items wrong:\n{}\nstderr:\n{}",
        wrong.len(),
        expected.len(),
        wrong.join("\n"),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{profile}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Nothing left behind: every ledger entry was removed.
    let ledger = ledger(&dir.path().join("out"));
    let kept = kept_entries(&ledger);
    assert!(kept.is_empty(), "{profile}: left behind: {kept:#?}");
    plan_equals_run(profile, &planned, &output);
}

#[test]
fn vsphere() {
    whole_catalog_passes("vsphere");
}

#[test]
fn vsphere_copy_offload() {
    whole_catalog_passes("vsphere-copy-offload");
}

#[test]
fn ovirt() {
    whole_catalog_passes("ovirt");
}

#[test]
fn openstack() {
    whole_catalog_passes("openstack");
}

#[test]
fn openshift() {
    whole_catalog_passes("openshift");
}

#[test]
fn ova() {
    whole_catalog_passes("ova");
}
