//! Whole runs against the embedded lab, in process, over HTTP through kube-rs: the tier0 suite passes
//! and leaves nothing behind; injected faults (a VM failing at DiskTransfer, API errors, dropped
//! watches) are reported with their true cause while the other scenarios stay green and teardown still
//! removes everything; `--skip-teardown` followed by a clean from the ledger empties the lab.

mod common;

use common::{RunRequest, lab, lab_contents, run_on_lab, source_vm_count};
use mtv_engine::events::StepOutcome;
use mtv_engine::ledger::Ledger;
use mtv_lab::FaultSpec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier0_passes_on_the_lab_and_leaves_nothing_behind() {
    let lab = lab("", None).await;
    let before = lab_contents(&lab);
    let vms_before = source_vm_count(&lab);
    let run = run_on_lab(&lab, RunRequest::default()).await;
    let outcomes = run.recorder.outcomes();
    let failed: Vec<_> = outcomes.iter().filter(|(_, o)| o.is_failure()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    run.assert_ended(0);
    assert_eq!(
        outcomes
            .values()
            .filter(|o| **o == StepOutcome::Passed)
            .count(),
        25
    );
    assert_eq!(
        lab_contents(&lab),
        before,
        "the run left objects in the lab"
    );
    assert_eq!(
        source_vm_count(&lab),
        vms_before,
        "the run left source clones"
    );
    let ledger = Ledger::load(&run.ledger).unwrap();
    assert!(ledger.entries.iter().all(|e| e.is_removed()));
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vm_failing_at_disk_transfer_fails_its_scenario_only() {
    // vSphere cold to the local cluster copies through virt-v2v (no DiskTransfer step); warm has one.
    let lab = lab("vm-fail=mtv-win2022-ip-3disks@DiskTransfer", None).await;
    let before = lab_contents(&lab);
    let run = run_on_lab(&lab, RunRequest::keywords("Comprehensive or SanityCold")).await;
    let outcomes = run.recorder.outcomes();
    let migrate = &outcomes["TestWarmMigrationComprehensive[comprehensive-warm]::test_migrate_vms"];
    match migrate {
        StepOutcome::Failed { message } => {
            assert!(message.contains("failed at DiskTransfer"), "{message}");
            assert!(message.contains("mtv-win2022-ip-3disks"), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(
        outcomes["TestWarmMigrationComprehensive[comprehensive-warm]::test_check_vms"],
        StepOutcome::Xfailed {
            reason: "previous step failed (TestWarmMigrationComprehensive[comprehensive-warm]::test_migrate_vms)".into()
        }
    );
    // The other scenarios stay green.
    for (id, outcome) in &outcomes {
        if !id.starts_with("TestWarmMigrationComprehensive") {
            assert_eq!(*outcome, StepOutcome::Passed, "{id}");
        }
    }
    run.assert_ended(1);
    assert_eq!(lab_contents(&lab), before);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_resume_and_the_run_passes() {
    let lab = lab("watch-drop-secs=1", None).await;
    let before = lab_contents(&lab);
    let run = run_on_lab(&lab, RunRequest::keywords("Sanity")).await;
    let outcomes = run.recorder.outcomes();
    assert!(
        outcomes.values().all(|o| *o == StepOutcome::Passed),
        "{outcomes:#?}"
    );
    assert_eq!(run.outcome.exit_code, 0);
    assert_eq!(lab_contents(&lab), before);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_for_a_while_are_survived_or_reported_and_teardown_completes() {
    let lab = lab("", None).await;
    let before = lab_contents(&lab);
    let faults = FaultSpec::parse("api-error-rate=0.2").unwrap();
    lab.set_faults(faults);
    let lab_ref = &lab;
    let (run, ()) = tokio::join!(
        run_on_lab(lab_ref, RunRequest::keywords("SanityCold")),
        async {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            lab_ref.set_faults(FaultSpec::default());
        }
    );
    let outcomes = run.recorder.outcomes();
    // kube-rs retries 5xx answers; a step that still failed names the API error it met.
    for (id, outcome) in &outcomes {
        if let StepOutcome::Failed { message } | StepOutcome::Error { message } = outcome {
            assert!(
                message.contains("503") || message.contains("500") || message.contains("Service"),
                "{id}: {message}"
            );
        }
    }
    assert_eq!(run.outcome.leftovers, 0);
    assert_eq!(lab_contents(&lab), before);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_teardown_then_clean_from_the_ledger_empties_the_lab() {
    let lab = lab("", None).await;
    let before = lab_contents(&lab);
    let vms_before = source_vm_count(&lab);
    let run = run_on_lab(
        &lab,
        RunRequest {
            skip_teardown: true,
            ..RunRequest::keywords("SanityCold")
        },
    )
    .await;
    assert_eq!(run.outcome.exit_code, 0);
    assert_ne!(lab_contents(&lab), before, "skip-teardown kept the objects");
    assert!(source_vm_count(&lab) > vms_before);
    // A later process: reopen the ledger and clean.
    let leftovers = run.clean_from_ledger(&lab).await;
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(lab_contents(&lab), before);
    assert_eq!(source_vm_count(&lab), vms_before);
    lab.shutdown().await;
}
