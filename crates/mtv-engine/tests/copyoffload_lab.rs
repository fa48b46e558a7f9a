//! Copy-offload runs against the embedded lab, in process, with the built-in `vsphere-copy-offload`
//! profile: the populator pods' logs are captured during the migration and `test_check_xcopy_used`
//! compares them per VM and datastore; the snapshot scenarios write a data marker in the source guest
//! before their snapshots and find it in the migrated VM.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mtv_catalog::collect::{CopyOffloadGate, GateContext, Outcome, Selection, collect};
use mtv_catalog::expr::{KeywordExpr, MarkerExpr};
use mtv_catalog::{Catalog, known_marker_names};
use mtv_config::{MapEnv, ProvidersFile, Settings, SettingsSources, resolve_run_config};
use mtv_engine::SessionContext;
use mtv_engine::cluster::Cluster;
use mtv_engine::events::{Event, EventSink, StepOutcome};
use mtv_engine::ledger::Ledger;
use mtv_engine::run::{RunOptions, RunOutcome, SkippedItem, run};
use mtv_engine::scenario::ScenarioSpec;
use mtv_engine::session::{Bootstrap, SessionNeeds, Timeouts};
use mtv_engine::target::{Target, client_for};
use mtv_lab::{FaultSpec, LabOptions, LabServer};

#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl EventSink for Recorder {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    fn outcomes(&self) -> BTreeMap<String, StepOutcome> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::StepFinished { id, outcome, .. } => Some((id.clone(), outcome.clone())),
                _ => None,
            })
            .collect()
    }

    fn notes(&self, id_part: &str) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::StepNote { id, message } if id.contains(id_part) => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}

struct Run {
    outcome: RunOutcome,
    recorder: Arc<Recorder>,
    _results: tempfile::TempDir,
}

async fn run_copy_offload(lab: &LabServer, markers: &str, keywords: Option<&str>) -> Run {
    let env = MapEnv::new();
    let set = ["source_provider=vsphere-copy-offload".to_string()];
    let (settings, _) = Settings::resolve(&SettingsSources {
        file: None,
        tc: &[],
        set: &set,
        env: &env,
    })
    .unwrap();
    let config = resolve_run_config(settings, ProvidersFile::builtin()).unwrap();
    let copy_offload = config
        .profile
        .copyoffload(&env)
        .unwrap()
        .expect("the built-in copy-offload profile has a copyoffload section");
    let context = SessionContext::from_run_config(&config, &env);
    let catalog = Catalog::builtin().unwrap();
    let selection = Selection {
        markers: Some(MarkerExpr::parse(markers, &known_marker_names()).unwrap()),
        keywords: keywords.map(|k| KeywordExpr::parse(k).unwrap()),
    };
    let gate = GateContext {
        provider_type: config.profile.provider_type,
        profile_name: config.profile.name.clone(),
        remote_ocp_cluster: None,
        mtv_version: Some("2.10.0".into()),
        copyoffload: CopyOffloadGate::Ready,
    };
    let collection = collect(&catalog, &selection, &gate).unwrap();
    let scenarios: Vec<ScenarioSpec> = collection
        .selected_scenarios()
        .into_iter()
        .map(|i| {
            let s = &catalog.scenarios[i];
            ScenarioSpec {
                name: s.name(),
                class: s.entry.class.clone(),
                config: s.entry.config.clone(),
                steps: s.steps.clone(),
            }
        })
        .collect();
    assert!(
        !scenarios.is_empty(),
        "nothing selected by {markers} {keywords:?}"
    );
    let skipped = collection
        .items
        .iter()
        .filter_map(|item| match &item.outcome {
            Outcome::Skipped { reason } => Some(SkippedItem {
                id: item.id.clone(),
                scenario: item.scenario.clone(),
                step: item.step.test_name().to_string(),
                reason: reason.clone(),
            }),
            _ => None,
        })
        .collect();
    let results = tempfile::tempdir().unwrap();
    let ledger =
        Arc::new(Ledger::create(&results.path().join("resources.json"), "test", "lab").unwrap());
    let recorder = Arc::new(Recorder::default());
    let target = Target::Lab {
        kubeconfig_yaml: lab.kubeconfig_yaml(),
    };
    let client = client_for(&target).await.unwrap();
    let (_interrupt_tx, interrupt) = tokio::sync::watch::channel(false);
    let needs = SessionNeeds {
        warm: scenarios.iter().any(|s| s.config.warm_migration),
        remote: false,
        copy_offload: true,
    };
    let outcome = run(
        Bootstrap {
            cluster: Cluster::new(client, ledger, recorder.clone()),
            context,
            profile: &config.profile,
            copy_offload: Some(&copy_offload),
            needs,
            lab: true,
            cluster_url: lab.base_url(),
            cluster_token: Some("lab-token".into()),
            session_id: None,
            timeouts: Timeouts::from_settings(&config.settings),
        },
        scenarios,
        skipped,
        RunOptions {
            results_dir: results.path().to_path_buf(),
            jobs: 4,
            skip_teardown: false,
            fail_fast: false,
        },
        interrupt,
    )
    .await;
    Run {
        outcome,
        recorder,
        _results: results,
    }
}

async fn lab_with(lab_file: Option<std::path::PathBuf>) -> LabServer {
    LabServer::start(LabOptions {
        speed: 4.0,
        faults: FaultSpec::parse("").unwrap(),
        lab_file,
        ..LabOptions::default()
    })
    .await
    .unwrap()
}

fn assert_all_passed(run: &Run) {
    let outcomes = run.recorder.outcomes();
    let not_passed: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| **o != StepOutcome::Passed)
        .collect();
    assert!(not_passed.is_empty(), "{not_passed:#?}");
    assert_eq!(run.outcome.exit_code, 0);
    assert_eq!(run.outcome.leftovers, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copyoffload_sanity_passes_with_xcopy_used() {
    let lab = lab_with(None).await;
    let run = run_copy_offload(&lab, "copyoffload_sanity", None).await;
    assert_all_passed(&run);
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
    let lab = lab_with(None).await;
    let run = run_copy_offload(
        &lab,
        "copyoffload",
        Some("TestCopyoffloadMixedDatastoreMigration"),
    )
    .await;
    assert_all_passed(&run);
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
    assert_eq!(run.outcome.exit_code, 1);
    assert_eq!(run.outcome.leftovers, 0);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_scenarios_keep_the_data_marker_and_use_the_fallback_copy() {
    let lab = lab_with(None).await;
    let run = run_copy_offload(&lab, "copyoffload_snapshots", None).await;
    assert_all_passed(&run);
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
