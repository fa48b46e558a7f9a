//! Copy-offload runs against the embedded lab, in process, with the built-in `vsphere-copy-offload`
//! profile: the populator pods' logs are captured during the migration and `test_check_xcopy_used`
//! compares them per VM and datastore; the snapshot scenarios write a data marker in the source guest
//! before their snapshots and find it in the migrated VM.

mod common;

use common::{RunRequest, run_on_lab};
use mtv_engine::events::StepOutcome;
use mtv_lab::LabServer;

async fn lab_with(lab_file: Option<std::path::PathBuf>) -> LabServer {
    common::lab("", lab_file).await
}

async fn run_copy_offload(lab: &LabServer, markers: &str, keywords: Option<&str>) -> common::Run {
    run_on_lab(
        lab,
        RunRequest {
            profile: "vsphere-copy-offload",
            markers,
            keywords,
            ..RunRequest::default()
        },
    )
    .await
}

/// Runs the copy-offload selection (`markers`, `keywords`) on a fresh built-in lab, where every
/// step must pass.
async fn passing_run(markers: &str, keywords: Option<&str>) -> (LabServer, common::Run) {
    let lab = lab_with(None).await;
    let run = run_copy_offload(&lab, markers, keywords).await;
    assert_all_passed(&run);
    (lab, run)
}

fn assert_all_passed(run: &common::Run) {
    let outcomes = run.recorder.outcomes();
    let not_passed: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| **o != StepOutcome::Passed)
        .collect();
    assert!(not_passed.is_empty(), "{not_passed:#?}");
    run.assert_ended(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copyoffload_sanity_passes_with_xcopy_used() {
    let (lab, run) = passing_run("copyoffload_sanity", None).await;
    let outcomes = run.recorder.outcomes();
    assert!(
        outcomes
            .keys()
            .any(|id| id.ends_with("::test_check_xcopy_used")),
        "{outcomes:#?}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mixed_datastore_scenario_reports_xcopy_per_datastore() {
    let (lab, run) = passing_run(
        "copyoffload",
        Some("TestCopyoffloadMixedDatastoreMigration"),
    )
    .await;
    let notes = run.recorder.notes("::test_check_xcopy_used").join("\n");
    assert!(
        notes.contains("datastore datastore-xcopy-1: xcopyUsed=1"),
        "{notes}"
    );
    assert!(
        notes.contains("datastore datastore-nonxcopy-1: xcopyUsed=0"),
        "{notes}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xcopy_not_used_on_an_xcopy_datastore_fails_naming_vm_datastore_and_values() {
    // The array behind the profile's XCOPY datastore cannot do XCOPY: the populator falls back to the
    // host copy and reports xcopyUsed=0 where the scenario expects 1.
    let original = "{id: datastore-xcopy-1, name: xcopy-datastore-1, kind: VMFS, capacity_gib: 8192, free_gib: 7168, xcopy: true}";
    assert!(mtv_lab::source::BUILTIN_LAB_YAML.contains(original));
    let broken = mtv_lab::source::BUILTIN_LAB_YAML
        .replace(original, &original.replace("xcopy: true", "xcopy: false"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.yaml");
    std::fs::write(&path, broken).unwrap();
    let lab = lab_with(Some(path)).await;
    let run = run_copy_offload(&lab, "copyoffload", Some("TestCopyoffloadThinMigration")).await;
    let outcomes = run.recorder.outcomes();
    let id = "TestCopyoffloadThinMigration[MTV-559]::test_check_xcopy_used";
    match &outcomes[id] {
        StepOutcome::Failed { message } => {
            assert!(message.contains("xcopy-template-test"), "{message}");
            assert!(message.contains("datastore datastore-xcopy-1"), "{message}");
            assert!(
                message.contains("expected xcopyUsed=1, got xcopyUsed=0"),
                "{message}"
            );
        }
        other => panic!("expected {id} to fail, got {other:?}"),
    }
    run.assert_ended(1);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_scenarios_keep_the_data_marker_and_use_the_fallback_copy() {
    let (lab, run) = passing_run("copyoffload_snapshots", None).await;
    let outcomes = run.recorder.outcomes();
    let integrity: Vec<_> = outcomes
        .keys()
        .filter(|id| id.ends_with("::test_check_data_integrity"))
        .collect();
    assert!(!integrity.is_empty(), "{outcomes:#?}");
    let notes = run.recorder.notes("::test_check_xcopy_used").join("\n");
    assert!(
        notes.contains("xcopyUsed=0") && !notes.contains("xcopyUsed=1"),
        "{notes}"
    );
    lab.shutdown().await;
}
