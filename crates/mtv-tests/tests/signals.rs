//! SIGTERM and SIGHUP stop a run as the first Ctrl-C does: no new work, migrations cancelled, teardown,
//! every report written with the unfinished items INTERRUPTED, exit 143 / 129; `--last-failed` then
//! selects what was interrupted. Proven against a `mtv-tests lab serve` process, with kubectl
//! checking that nothing is left.

mod served_lab;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use served_lab::{ServedLab, events, mtv_tests_json, recorded, send_signal, text, wait_for_text};

/// Starts `run -m tier0 -j 2` against a served lab, sends `signal` once a Migration exists, and
/// checks the run's exit code, its reports and the cluster.
fn stop_mid_run_with(signal: &str, exit_code: i32, name: &str) {
    let Some(lab) = ServedLab::start("0.3") else {
        return;
    };
    let before = lab.cluster_state();
    let run = lab.spawn_run_until_migrating(&["-m", "tier0", "-j", "2"]);
    let results = lab.path().join("out");
    let (during, _) = lab.precopy_interval();
    assert_eq!(during, 2, "the warm scenario set the precopy interval");
    send_signal(run.id(), signal);
    let output = run.wait_with_output();
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(exit_code), "{shown}");
    assert!(
        shown.contains(&format!("{name}: stopping the scenarios and tearing down")),
        "{shown}"
    );

    // Nothing left: the same objects, the same ForkliftController spec, the same node labels.
    assert_eq!(lab.cluster_state(), before, "{shown}");
    assert!(lab.ledger_all_removed(), "{:#}", lab.ledger());

    // The event log: the interrupted items, and the session's end with the signal's exit code.
    let events = events(&results);
    let interrupted: BTreeSet<String> = events
        .iter()
        .filter(|e| e["event"] == "step_finished" && e["outcome"] == "interrupted")
        .map(|e| e["scenario"].as_str().unwrap().to_string())
        .collect();
    assert!(!interrupted.is_empty(), "{shown}");
    let messages: Vec<&str> = events
        .iter()
        .filter(|e| e["outcome"] == "interrupted")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| *m == format!("the run was stopped by {name} while this step ran")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| *m == format!("the run was stopped by {name} before this step started")),
        "{messages:?}"
    );
    let finished = events.last().unwrap();
    assert_eq!(finished["event"], "session_finished");
    assert_eq!(finished["exit_code"], exit_code);
    // Every collected item has exactly one outcome.
    let outcomes = events
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .count();
    let collected = events
        .iter()
        .find(|e| e["event"] == "session_started")
        .unwrap()["items"]
        .as_u64()
        .unwrap();
    assert_eq!(outcomes as u64, collected);

    // The console, JUnit and HTML say INTERRUPTED.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("INTERRUPTED TestSanity"), "{stdout}");
    assert!(stdout.contains(" interrupted"), "{stdout}");
    let junit = std::fs::read_to_string(results.join("junit.xml")).unwrap();
    assert!(
        junit.contains(&format!(
            "<error message=\"INTERRUPTED: the run was stopped by {name}"
        )) && junit.contains("type=\"INTERRUPTED\""),
        "{junit}"
    );
    let html = std::fs::read_to_string(results.join("report.html")).unwrap();
    assert!(
        html.contains(&format!("INTERRUPTED ({name})")) && html.contains("Interrupted scenarios"),
        "{html}"
    );

    // rerun.json holds the interrupted scenarios, and `--last-failed` selects exactly them.
    let rerun: Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("rerun.json")).unwrap())
            .unwrap();
    let failed: BTreeSet<String> = rerun["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(failed, interrupted);
    let listed = mtv_tests_json(
        lab.path(),
        &["list", "-m", "tier0", "--last-failed", "out/rerun.json"],
    );
    let selected: BTreeSet<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["outcome"] == "selected")
        .map(|i| i["scenario"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(selected, interrupted);
}

#[test]
fn sigterm_mid_run_tears_down_reports_interrupted_items_and_exits_143() {
    stop_mid_run_with("TERM", 143, "SIGTERM");
}

#[test]
fn sighup_mid_run_tears_down_reports_interrupted_items_and_exits_129() {
    stop_mid_run_with("HUP", 129, "SIGHUP");
}

#[test]
fn a_second_signal_exits_at_once_and_clean_finishes_the_job() {
    let Some(lab) = ServedLab::start("0.3") else {
        return;
    };
    let before = lab.cluster_state();
    let run = lab.spawn_run_until_migrating(&["-m", "tier0", "-k", "SanityWarm"]);
    let results = lab.path().join("out");
    // A finalizer nobody removes keeps teardown waiting, so the second signal finds it busy.
    let ledger = lab.ledger();
    let secret = recorded(&ledger, "Secret");
    let (ns, name) = (
        secret["namespace"].as_str().unwrap(),
        secret["name"].as_str().unwrap(),
    );
    lab.set_secret_finalizers(ns, name, r#"["example.com/held"]"#);
    send_signal(run.id(), "TERM");
    // Teardown's own note, not a step's "waiting for the inventory ...": only once the first signal
    // has been taken may the second be sent, else both are pending and either may be read first.
    wait_for_text(
        &results.join("events.jsonl"),
        r#""event":"teardown_note","message":"waiting for"#,
        Duration::from_secs(60),
    );
    send_signal(run.id(), "HUP");
    let output = run.wait_with_output();
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(129), "{shown}");
    assert!(
        shown.contains("SIGHUP: exiting now; `mtv-tests clean --ledger out/resources.json`"),
        "{shown}"
    );

    // The ledger on disk is whole and still lists what teardown had not finished.
    assert!(!lab.ledger_all_removed(), "{:#}", lab.ledger());
    lab.set_secret_finalizers(ns, name, "null");
    let clean = lab.clean(&[]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    assert_eq!(lab.cluster_state(), before);
}
