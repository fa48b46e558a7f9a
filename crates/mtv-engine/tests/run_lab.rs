//! Whole runs against the embedded lab, in process, over HTTP through kube-rs: the tier0 suite passes
//! and leaves nothing behind; injected faults (a VM failing at DiskTransfer, API errors, dropped
//! watches) are reported with their true cause while the other scenarios stay green and teardown still
//! removes everything; `--skip-teardown` followed by a clean from the ledger empties the lab.

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
}

/// Object counts of every kind in the lab (Events excluded: they are a log).
fn lab_contents(lab: &LabServer) -> BTreeMap<String, usize> {
    mtv_lab::registry::RESOURCE_TYPES
        .iter()
        .filter(|rt| rt.kind != "Event")
        .map(|rt| (rt.kind.to_string(), lab.store().count(rt)))
        .collect()
}

fn source_vm_count(lab: &LabServer) -> usize {
    let source = lab.source().expect("the lab simulates sources");
    source
        .provider_names()
        .iter()
        .map(|(name, _)| source.with_provider(name, |p| p.vms.len()).unwrap())
        .sum()
}

struct Run {
    outcome: RunOutcome,
    recorder: Arc<Recorder>,
    ledger: std::path::PathBuf,
    _results: tempfile::TempDir,
}

async fn run_on_lab(
    lab: &LabServer,
    markers: &str,
    keywords: Option<&str>,
    skip_teardown: bool,
) -> Run {
    let env = MapEnv::new();
    let (settings, _) = Settings::resolve(&SettingsSources {
        file: None,
        tc: &[],
        set: &[],
        env: &env,
    })
    .unwrap();
    let config = resolve_run_config(settings, ProvidersFile::builtin()).unwrap();
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
        copyoffload: CopyOffloadGate::Unsupported {
            reason: "not in these tests".into(),
        },
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
    let ledger_path = results.path().join("resources.json");
    let ledger = Arc::new(Ledger::create(&ledger_path, "test", "lab").unwrap());
    let recorder = Arc::new(Recorder::default());
    let target = Target::Lab {
        kubeconfig_yaml: lab.kubeconfig_yaml(),
    };
    let client = client_for(&target).await.unwrap();
    let (_interrupt_tx, interrupt) = tokio::sync::watch::channel(false);
    let needs = SessionNeeds {
        warm: scenarios.iter().any(|s| s.config.warm_migration),
        remote: false,
        copy_offload: false,
    };
    let outcome = run(
        Bootstrap {
            cluster: Cluster::new(client, ledger, recorder.clone()),
            context,
            profile: &config.profile,
            copy_offload: None,
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
            skip_teardown,
            fail_fast: false,
        },
        interrupt,
    )
    .await;
    Run {
        outcome,
        recorder,
        ledger: ledger_path,
        _results: results,
    }
}

async fn lab(faults: &str) -> LabServer {
    LabServer::start(LabOptions {
        speed: 4.0,
        faults: FaultSpec::parse(faults).unwrap(),
        ..LabOptions::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier0_passes_on_the_lab_and_leaves_nothing_behind() {
    let lab = lab("").await;
    let before = lab_contents(&lab);
    let vms_before = source_vm_count(&lab);
    let run = run_on_lab(&lab, "tier0", None, false).await;
    let outcomes = run.recorder.outcomes();
    let failed: Vec<_> = outcomes.iter().filter(|(_, o)| o.is_failure()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(run.outcome.exit_code, 0);
    assert_eq!(run.outcome.leftovers, 0);
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
    let lab = lab("vm-fail=mtv-win2022-ip-3disks@DiskTransfer").await;
    let before = lab_contents(&lab);
    let run = run_on_lab(&lab, "tier0", Some("Comprehensive or SanityCold"), false).await;
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
    assert_eq!(run.outcome.exit_code, 1);
    assert_eq!(run.outcome.leftovers, 0);
    assert_eq!(lab_contents(&lab), before);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_resume_and_the_run_passes() {
    let lab = lab("watch-drop-secs=1").await;
    let before = lab_contents(&lab);
    let run = run_on_lab(&lab, "tier0", Some("Sanity"), false).await;
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
    let lab = lab("").await;
    let before = lab_contents(&lab);
    let faults = FaultSpec::parse("api-error-rate=0.2").unwrap();
    lab.set_faults(faults);
    let lab_ref = &lab;
    let (run, ()) = tokio::join!(
        run_on_lab(lab_ref, "tier0", Some("SanityCold"), false),
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
    let lab = lab("").await;
    let before = lab_contents(&lab);
    let vms_before = source_vm_count(&lab);
    let run = run_on_lab(&lab, "tier0", Some("SanityCold"), true).await;
    assert_eq!(run.outcome.exit_code, 0);
    assert_ne!(lab_contents(&lab), before, "skip-teardown kept the objects");
    assert!(source_vm_count(&lab) > vms_before);
    // A later process: reopen the ledger and clean.
    let client = client_for(&Target::Lab {
        kubeconfig_yaml: lab.kubeconfig_yaml(),
    })
    .await
    .unwrap();
    let cluster = Cluster::new(
        client,
        Arc::new(Ledger::open(&run.ledger).unwrap()),
        Arc::new(Recorder::default()),
    );
    let leftovers =
        mtv_engine::teardown::teardown(&cluster, std::time::Duration::from_secs(30)).await;
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(lab_contents(&lab), before);
    assert_eq!(source_vm_count(&lab), vms_before);
    lab.shutdown().await;
}
