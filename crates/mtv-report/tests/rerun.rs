//! The rerun state: failures are added, scenarios that ran clean are removed, the rest is kept, and a
//! different source provider starts afresh.

use std::time::Duration;

use mtv_events::{Event, SessionStart, StepEnd, StepOutcome};
use mtv_report::{Reporter, RerunReport, RerunState};

fn started(profile: &str) -> Event {
    Event::SessionStarted(SessionStart {
        session_id: "auto-abcd".into(),
        target: "lab".into(),
        mtv_version: Some("2.10.0".into()),
        source_provider: profile.into(),
        provider_type: "vsphere".into(),
        storage_class: "lab-ceph-rbd".into(),
        items: 3,
    })
}

fn step(scenario: &str, step: &str, outcome: StepOutcome) -> Event {
    Event::StepFinished(StepEnd {
        id: format!("{scenario}::{step}"),
        scenario: scenario.into(),
        step: step.into(),
        outcome,
        duration: Duration::from_millis(10),
        diagnostics: None,
    })
}

fn failed() -> StepOutcome {
    StepOutcome::Failed {
        message: "VM x: check_cpu - sockets: expected 2, got 1".into(),
    }
}

fn run(path: &std::path::Path, events: &[Event]) -> RerunState {
    let mut report = RerunReport::new(path);
    for event in events {
        report.handle(event);
    }
    report.finish().unwrap();
    RerunState::read(path).unwrap()
}

fn names(state: &RerunState) -> Vec<&str> {
    state.failed.iter().map(String::as_str).collect()
}

#[test]
fn failures_are_added_clean_runs_removed_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rerun.json");
    let first = run(
        &path,
        &[
            started("vsphere"),
            step("TestA[a]", "test_create_plan", StepOutcome::Passed),
            step("TestA[a]", "test_migrate_vms", failed()),
            step(
                "TestA[a]",
                "test_check_vms",
                StepOutcome::Xfailed {
                    reason: "previous step failed".into(),
                },
            ),
            step(
                "TestB[b]",
                "test_migrate_vms",
                StepOutcome::Error {
                    message: "session bootstrap failed".into(),
                },
            ),
            step("TestC[c]", "test_migrate_vms", StepOutcome::Passed),
        ],
    );
    assert_eq!(first.source_provider, "vsphere");
    assert_eq!(names(&first), ["TestA[a]", "TestB[b]"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"version\": 1"), "{text}");

    // A rerun of A alone that passes: A goes, B (not run) stays, D (new failure) comes.
    let second = run(
        &path,
        &[
            started("vsphere"),
            step("TestA[a]", "test_migrate_vms", StepOutcome::Passed),
            step(
                "TestB[b]",
                "test_migrate_vms",
                StepOutcome::Skipped {
                    reason: "deselected by the gating".into(),
                },
            ),
            step("TestD[d]", "test_check_vms", failed()),
        ],
    );
    assert_eq!(names(&second), ["TestB[b]", "TestD[d]"]);
}

#[test]
fn another_source_provider_starts_afresh_and_a_run_without_a_session_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rerun.json");
    run(
        &path,
        &[
            started("vsphere"),
            step("TestA[a]", "test_migrate_vms", failed()),
        ],
    );
    let ovirt = run(
        &path,
        &[
            started("ovirt"),
            step("TestB[b]", "test_migrate_vms", failed()),
        ],
    );
    assert_eq!(ovirt.source_provider, "ovirt");
    assert_eq!(names(&ovirt), ["TestB[b]"]);
    let unchanged = run(&path, &[]);
    assert_eq!(unchanged, ovirt);
}

#[test]
fn a_state_that_is_not_one_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rerun.json");
    let missing = RerunState::read(&path).unwrap_err().to_string();
    assert!(missing.contains("rerun.json"), "{missing}");
    std::fs::write(&path, r#"{"version": 7, "failed": []}"#).unwrap();
    let wrong = RerunState::read(&path).unwrap_err().to_string();
    assert!(
        wrong.contains("rerun.json") && wrong.contains("version 7"),
        "{wrong}"
    );
}

#[test]
fn interrupted_scenarios_are_kept_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rerun.json");
    let interrupted = |when: &str| StepOutcome::Interrupted {
        message: format!("the run was stopped by SIGTERM {when}"),
    };
    let state = run(
        &path,
        &[
            started("vsphere"),
            step("TestA[a]", "test_create_plan", StepOutcome::Passed),
            step(
                "TestA[a]",
                "test_migrate_vms",
                interrupted("while this step ran"),
            ),
            step(
                "TestB[b]",
                "test_create_storagemap",
                interrupted("before this step started"),
            ),
            step("TestC[c]", "test_check_vms", StepOutcome::Passed),
        ],
    );
    assert_eq!(names(&state), ["TestA[a]", "TestB[b]"]);
}
