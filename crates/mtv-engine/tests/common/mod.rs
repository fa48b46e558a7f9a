//! The harness the in-process run tests share: run a selection of the catalog for a built-in profile
//! against a started lab, over HTTP through kube-rs, recording every event.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use mtv_config::{MapEnv, SettingsSources};
use mtv_engine::cluster::{Cluster, ClusterError, Kind, kinds};
use mtv_engine::events::{Event, EventSink, ResourceRef, StepEnd, StepOutcome};
use mtv_engine::front::{RunTarget, SelectionInput, load_front, resolve_config};
use mtv_engine::ledger::Ledger;
use mtv_engine::run::{RunOptions, RunOutcome, SkippedItem, run};
use mtv_engine::scenario::ScenarioSpec;
use mtv_engine::target::{Target, client_for, config_for};
use mtv_lab::{FaultSpec, LabOptions, LabServer};
use serde_json::{Value, json};

#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Event>>);

impl EventSink for Recorder {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    /// The events recorded so far.
    pub fn events(&self) -> MutexGuard<'_, Vec<Event>> {
        self.0.lock().unwrap()
    }

    pub fn outcomes(&self) -> BTreeMap<String, StepOutcome> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                Event::StepFinished(StepEnd { id, outcome, .. }) => {
                    Some((id.clone(), outcome.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// The notes of the steps whose id contains `id_part`.
    pub fn notes(&self, id_part: &str) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                Event::StepNote { id, message } if id.contains(id_part) => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Object counts of every kind in the lab (Events excluded: they are a log).
pub fn lab_contents(lab: &LabServer) -> BTreeMap<String, usize> {
    mtv_lab::registry::RESOURCE_TYPES
        .iter()
        .filter(|rt| rt.kind != "Event")
        .map(|rt| (rt.kind.to_string(), lab.store().count(rt)))
        .collect()
}

/// VMs of every simulated source.
pub fn source_vm_count(lab: &LabServer) -> usize {
    let source = lab.source().expect("the lab simulates sources");
    source
        .provider_names()
        .iter()
        .map(|(name, _)| source.with_provider(name, |p| p.vms.len()).unwrap())
        .sum()
}

/// A lab at speed 4 with these faults and, optionally, its own lab file.
pub async fn lab(faults: &str, lab_file: Option<PathBuf>) -> LabServer {
    LabServer::start(LabOptions {
        speed: 4.0,
        faults: FaultSpec::parse(faults).unwrap(),
        lab_file,
        ..LabOptions::default()
    })
    .await
    .unwrap()
}

/// A Kubernetes client of `lab`'s API server, over HTTP as a run's.
pub async fn lab_client(lab: &LabServer) -> kube::Client {
    client_for(&Target::InMemory {
        kubeconfig_yaml: lab.kubeconfig_yaml(),
    })
    .await
    .expect("a client for the lab")
}

/// A `Cluster` of the session `auto-t1` on a freshly started lab, recording its events, with its
/// ledger `resources.json` in the returned directory.
pub async fn lab_cluster() -> (LabServer, Cluster, Arc<Recorder>, tempfile::TempDir) {
    let lab = LabServer::start(LabOptions::default())
        .await
        .expect("lab starts");
    let client = lab_client(&lab).await;
    let dir = tempfile::tempdir().unwrap();
    let ledger =
        Arc::new(Ledger::create(&dir.path().join("resources.json"), "auto-t1", "lab").unwrap());
    let recorder = Arc::new(Recorder::default());
    let cluster = Cluster::new(client, ledger, recorder.clone());
    (lab, cluster, recorder, dir)
}

/// Creates an object of `kind` named `name` in `namespace` (none: cluster-scoped), with nothing
/// else set; returns the API server's answer.
pub async fn object(
    cluster: &Cluster,
    kind: &Kind,
    namespace: Option<&str>,
    name: &str,
) -> Result<Value, ClusterError> {
    cluster
        .create(kind, namespace, json!({"metadata": {"name": name}}), None)
        .await
}

/// Creates a namespace of the test's.
pub async fn namespace(cluster: &Cluster, name: &str) {
    object(cluster, &kinds::NAMESPACE, None, name)
        .await
        .unwrap();
}

/// What to run.
pub struct RunRequest<'a> {
    /// A built-in profile.
    pub profile: &'a str,
    pub markers: &'a str,
    pub keywords: Option<&'a str>,
    pub skip_teardown: bool,
    /// The bearer token the run has (remote destinations and OpenShift sources need one).
    pub token: Option<&'a str>,
    /// Scenario classes to run even when the gating skips them.
    pub forced: &'a [&'a str],
    /// Runtime settings `KEY=VALUE`, as `--set` gives them.
    pub settings: &'a [&'a str],
    /// A change to every selected scenario before the run (a spec Forklift must refuse, ...).
    pub tweak: fn(&mut ScenarioSpec),
}

impl<'a> RunRequest<'a> {
    /// The default request (the vSphere profile's tier0) narrowed to `-k keywords`.
    pub fn keywords(keywords: &'a str) -> Self {
        RunRequest {
            keywords: Some(keywords),
            ..RunRequest::default()
        }
    }
}

impl Default for RunRequest<'_> {
    fn default() -> Self {
        RunRequest {
            profile: "vsphere",
            markers: "tier0",
            keywords: None,
            skip_teardown: false,
            token: Some("lab-token"),
            forced: &[],
            settings: &[],
            tweak: |_| {},
        }
    }
}

pub struct Run {
    pub outcome: RunOutcome,
    pub recorder: Arc<Recorder>,
    pub ledger: PathBuf,
    _results: tempfile::TempDir,
}

impl Run {
    /// The run exited with `exit_code` and its teardown left nothing behind.
    pub fn assert_ended(&self, exit_code: u8) {
        assert_eq!(self.outcome.exit_code, exit_code, "the run's exit code");
        assert_eq!(self.outcome.leftovers, 0, "the run's leftovers");
    }

    /// What a later process does with this run's ledger (`mtv-tests clean`): reopens it and tears
    /// down on `lab` everything it lists; returns what could not be removed.
    pub async fn clean_from_ledger(&self, lab: &LabServer) -> Vec<ResourceRef> {
        let cluster = Cluster::new(
            lab_client(lab).await,
            Arc::new(Ledger::open(&self.ledger).unwrap()),
            Arc::new(Recorder::default()),
        );
        mtv_engine::teardown::teardown(&cluster, std::time::Duration::from_secs(30)).await
    }
}

pub async fn run_on_lab(lab: &LabServer, request: RunRequest<'_>) -> Run {
    let env = MapEnv::new();
    let set: Vec<String> = std::iter::once(format!("source_provider={}", request.profile))
        .chain(request.settings.iter().map(|s| s.to_string()))
        .collect();
    let sources = SettingsSources {
        file: None,
        tc: &[],
        set: &set,
        env: &env,
    };
    // The CLI's path: mtv_engine::front, with the version the lab's MTV reports.
    // The built-in profiles pointed at where this lab serves each source, as the CLI does.
    let (config, warnings) =
        resolve_config(&sources, mtv_lab::cli::lab_profiles(lab).unwrap()).unwrap();
    let selection = SelectionInput {
        markers: Some(request.markers),
        keywords: request.keywords,
        scenarios: None,
        partition: None,
    };
    let front = load_front(
        config,
        warnings,
        &[],
        &selection,
        Some("2.10.0".into()),
        &env,
    )
    .unwrap();
    let mut chosen = front.collection.selected_scenarios();
    for (i, scenario) in front.catalog.scenarios.iter().enumerate() {
        if request.forced.contains(&scenario.entry.class.as_str()) && !chosen.contains(&i) {
            chosen.push(i);
        }
    }
    let scenarios: Vec<ScenarioSpec> = chosen
        .into_iter()
        .map(|i| {
            let mut spec = front.scenario(i);
            (request.tweak)(&mut spec);
            spec
        })
        .collect();
    assert!(
        !scenarios.is_empty(),
        "nothing selected by {} {:?}",
        request.markers,
        request.keywords
    );
    let skipped: Vec<SkippedItem> = front
        .skipped()
        .into_iter()
        .filter(|item| {
            !request
                .forced
                .iter()
                .any(|class| item.scenario.starts_with(class))
        })
        .collect();
    let results = tempfile::tempdir().unwrap();
    let ledger_path = results.path().join("resources.json");
    let ledger = Arc::new(Ledger::create(&ledger_path, "test", &lab.base_url()).unwrap());
    let recorder = Arc::new(Recorder::default());
    let target = Target::InMemory {
        kubeconfig_yaml: lab.kubeconfig_yaml(),
    };
    let client = client_for(&target).await.unwrap();
    let kube_config = config_for(&target).await.unwrap();
    let (_interrupt_tx, interrupt) = tokio::sync::watch::channel(None);
    // These runs make no remote destination Provider, whatever the scenarios ask.
    let mut bootstrap = front.bootstrap(
        Cluster::new(client, ledger, recorder.clone()),
        RunTarget {
            cluster_url: lab.base_url(),
            cluster_token: request.token.map(str::to_string),
            kube_config,
            session_id: None,
        },
        &scenarios,
    );
    bootstrap.needs.remote = false;
    let outcome = run(
        bootstrap,
        scenarios,
        skipped,
        RunOptions {
            results_dir: results.path().to_path_buf(),
            jobs: 4,
            skip_teardown: request.skip_teardown,
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

/// One point on which the lab's simulated Forklift (or guest) misbehaves (`misbehave=<vm>@<point>`),
/// and what the run's failure must say.
pub struct Misbehaviour<'a> {
    pub point: &'a str,
    /// A part of the source VM name the fault targets (clones carry it).
    pub vm: &'a str,
    pub profile: &'a str,
    pub markers: &'a str,
    /// The scenario (`Class[id]`) and the step that must fail.
    pub scenario: &'a str,
    pub step: &'a str,
    /// Every text the failure message must contain.
    pub wanted: &'a [&'a str],
}

/// The comprehensive cold scenario, whose guest checks catch most misbehaviours, and its Windows VM.
pub const COMPREHENSIVE: &str = "TestColdMigrationComprehensive[comprehensive-cold]";
pub const WIN2019: &str = "mtv-win2019-3disks";

/// A misbehaviour on `point` of the comprehensive cold scenario's Windows VM, which its
/// `test_check_vms` step must catch with every `wanted` text.
pub fn comprehensive<'a>(point: &'a str, wanted: &'a [&'a str]) -> Misbehaviour<'a> {
    Misbehaviour {
        point,
        vm: WIN2019,
        profile: "vsphere",
        markers: "tier0",
        scenario: COMPREHENSIVE,
        step: "test_check_vms",
        wanted,
    }
}

/// One `#[tokio::test]` per `name: case;`, each asserting with [`assert_caught`] that the run
/// catches the case's misbehaviour. Exported to the crate root: a `macro_rules!` is otherwise not
/// seen outside its module.
#[macro_export]
macro_rules! caught {
    ($($name:ident: $case:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::common::assert_caught($case).await;
            }
        )*
    };
}

/// Runs the case's scenario on a lab that misbehaves on its point: exactly its step fails, with a
/// message naming the VM and every wanted text (and no guest password), the run exits 1, and
/// teardown leaves the lab as it found it.
pub async fn assert_caught(case: Misbehaviour<'_>) {
    let lab = lab(&format!("misbehave={}@{}", case.vm, case.point), None).await;
    let before = lab_contents(&lab);
    let keyword = case.scenario.split('[').next().unwrap();
    let run = run_on_lab(
        &lab,
        RunRequest {
            profile: case.profile,
            markers: case.markers,
            keywords: Some(keyword),
            ..RunRequest::default()
        },
    )
    .await;
    let outcomes = run.recorder.outcomes();
    let id = format!("{}::{}", case.scenario, case.step);
    let message = match outcomes.get(&id) {
        Some(StepOutcome::Failed { message }) => message.clone(),
        other => panic!(
            "{}: expected {id} to fail, got {other:?}; all: {outcomes:#?}",
            case.point
        ),
    };
    // The VM, the check, expected and actual.
    assert!(
        message.contains("VM ") && message.contains(case.vm),
        "{}: the message does not name the VM: {message}",
        case.point
    );
    for wanted in case.wanted {
        assert!(
            message.contains(wanted),
            "{}: {wanted:?} missing from: {message}",
            case.point
        );
    }
    assert!(!message.contains("lab-guest-password"), "{message}");
    // Nothing else failed: the misbehaviour is caught where it shows, and only there.
    let others: Vec<_> = outcomes
        .iter()
        .filter(|(step_id, outcome)| **step_id != id && outcome.is_failure())
        .collect();
    assert!(others.is_empty(), "{}: {others:#?}", case.point);
    assert_eq!(run.outcome.exit_code, 1, "{}", case.point);
    assert_eq!(run.outcome.leftovers, 0, "{}", case.point);
    assert_eq!(
        lab_contents(&lab),
        before,
        "{}: objects left behind",
        case.point
    );
    lab.shutdown().await;
}
