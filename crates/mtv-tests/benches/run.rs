//! What a tier0 run costs the harness: the suite runs in this process against a lab served by a separate
//! `mtv-tests lab serve` process (so the lab's CPU and memory are not counted here), three times. Per run:
//! wall time, the harness's own CPU time, the requests the lab served (all of them: bootstrap, scenarios
//! and teardown): the cluster's (Kubernetes API and the inventory's Route) per migrated VM, and the
//! sources' (vSphere SOAP, ...) apart, and how long after
//! a Plan turns Succeeded the engine finishes its `test_migrate_vms` step (a raw watch of this bench sees
//! the condition first). Then the medians and the harness's peak RSS. Prints numbers; asserts nothing.
//!
//! Run with `cargo bench -p mtv-tests --bench run`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use mtv_config::{MapEnv, ProvidersFile, SettingsSources};
use mtv_engine::cluster::Cluster;
use mtv_engine::events::{Event, EventSink, StepEnd, StepOutcome};
use mtv_engine::front::{Front, RunTarget, SelectionInput, load_front, resolve_config};
use mtv_engine::ledger::Ledger;
use mtv_engine::run::{RunOptions, run};
use mtv_engine::session::{mtv_version, random_suffix};
use mtv_engine::target::{Target, client_for, config_for, server_and_token};
use serde_json::Value;

const RUNS: usize = 3;
const MARKERS: &str = "tier0";
/// Scenarios at once, as `mtv-tests run` does by default.
const JOBS: usize = 4;
const LAB_SPEED: &str = "1";
/// The step whose end is the engine noticing a migration's end.
const MIGRATE_STEP: &str = "test_migrate_vms";
/// The longest the lab process may take to write its kubeconfig.
const LAB_START_DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------------
// The lab process

/// `mtv-tests lab serve` in a child process, killed when dropped (a panicking bench included).
struct LabProcess {
    child: Child,
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the lab and waits until its kubeconfig names a server (its providers file, which it
/// writes first, is then complete too).
fn start_lab(kubeconfig: &Path, providers: &Path) -> (LabProcess, String, Duration) {
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_mtv-tests"))
        .args(["lab", "serve", "--port", "0", "--kubeconfig-out"])
        .arg(kubeconfig)
        .arg("--providers-out")
        .arg(providers)
        .args(["--speed", LAB_SPEED])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("`mtv-tests lab serve` starts");
    let mut lab = LabProcess { child };
    let deadline = started + LAB_START_DEADLINE;
    loop {
        if let Some(status) = lab.child.try_wait().expect("the lab process can be polled") {
            panic!("`mtv-tests lab serve` exited early: {status}");
        }
        // The file may exist before it is complete: only a kubeconfig with a server counts.
        let server = std::fs::read_to_string(kubeconfig)
            .ok()
            .and_then(|text| kube::config::Kubeconfig::from_yaml(&text).ok())
            .and_then(|k| k.clusters.into_iter().next())
            .and_then(|c| c.cluster)
            .and_then(|c| c.server);
        if let Some(server) = server {
            return (lab, server, started.elapsed());
        }
        assert!(
            Instant::now() < deadline,
            "the lab wrote no kubeconfig within {LAB_START_DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Requests the lab has served so far by endpoint (`GET /lab/v1/stats`; this request included, as
/// the `api` endpoint's).
async fn lab_requests(client: &kube::Client) -> BTreeMap<String, u64> {
    let request = http::Request::get("/lab/v1/stats")
        .body(Vec::new())
        .expect("a well-formed request");
    let text = client
        .request_text(request)
        .await
        .expect("the lab answers /lab/v1/stats");
    let stats: Value = serde_json::from_str(&text).expect("the stats are JSON");
    serde_json::from_value(stats["by_endpoint"].clone()).expect("request counts by endpoint")
}

/// The endpoints of the cluster in the lab's counts: the Kubernetes API server (the service proxy
/// included) and the inventory's Route. The rest are sources.
const CLUSTER_ENDPOINTS: &[&str] = &["api", "inventory-route"];

/// What was served between two counts, by endpoint (the second count's own request taken off).
fn served_between(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    let mut served: BTreeMap<String, u64> = after
        .iter()
        .map(|(endpoint, n)| {
            let earlier = before.get(endpoint).copied().unwrap_or(0);
            (endpoint.clone(), n.saturating_sub(earlier))
        })
        .collect();
    if let Some(api) = served.get_mut("api") {
        *api = api.saturating_sub(1);
    }
    served
}

// ---------------------------------------------------------------------------------------------------
// Measurements of this process

/// User and system CPU time of this process so far.
fn cpu_time() -> (Duration, Duration) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one whole `rusage` through the pointer, which points at one.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    // SAFETY: getrusage succeeded, so the value is initialised (and it was zeroed before anyway).
    let usage = unsafe { usage.assume_init() };
    let duration = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (duration(usage.ru_utime), duration(usage.ru_stime))
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`), in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

// ---------------------------------------------------------------------------------------------------
// What the engine and the lab say, timestamped

/// Keeps the events this bench needs, each with the instant it was emitted.
#[derive(Default)]
struct TimedSink(Mutex<Vec<(Instant, Event)>>);

impl EventSink for TimedSink {
    fn emit(&self, event: Event) {
        let at = Instant::now();
        let keep = match &event {
            Event::ResourceCreated { resource, .. } => resource.kind == "Plan",
            Event::StepFinished(..) | Event::SessionStarted { .. } => true,
            _ => false,
        };
        if keep && let Ok(mut events) = self.0.lock() {
            events.push((at, event));
        }
    }
}

/// When this bench's own watch first saw each Plan Succeeded, and how many VMs it migrated.
#[derive(Default)]
struct PlanSightings(Mutex<HashMap<String, (Instant, usize)>>);

/// How many VMs of each Plan Forklift created on the target (their `VirtualMachineCreation` step
/// completed), whether or not the Plan went on to succeed: a post-hook failure leaves its VM there.
#[derive(Default)]
struct OnTarget(Mutex<HashMap<String, usize>>);

fn vms_created(plan: &Value) -> usize {
    let vms = plan
        .pointer("/status/migration/vms")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    vms.iter()
        .filter(|vm| {
            vm["pipeline"].as_array().is_some_and(|steps| {
                steps.iter().any(|step| {
                    step["name"] == "VirtualMachineCreation"
                        && step.get("completed").is_some_and(|c| !c.is_null())
                        && step.get("error").is_none_or(Value::is_null)
                })
            })
        })
        .count()
}

fn succeeded(plan: &Value) -> bool {
    plan.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Succeeded" && c["status"] == "True")
        })
}

/// Watches the Plans of `namespace` until aborted, noting the first Succeeded of each; `watching` fires
/// once the initial list is done.
fn watch_plans(
    client: kube::Client,
    namespace: String,
    sightings: Arc<PlanSightings>,
    on_target: Arc<OnTarget>,
    watching: tokio::sync::oneshot::Sender<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let plans: Api<DynamicObject> = Api::namespaced_with(
            client,
            &namespace,
            &ApiResource::from_gvk(&GroupVersionKind::gvk(
                "forklift.konveyor.io",
                "v1beta1",
                "Plan",
            )),
        );
        let mut stream = watcher(plans, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut watching = Some(watching);
        loop {
            let plan = match stream.try_next().await {
                Ok(Some(watcher::Event::Apply(plan) | watcher::Event::InitApply(plan))) => plan,
                Ok(Some(watcher::Event::InitDone)) => {
                    if let Some(tx) = watching.take() {
                        let _ = tx.send(());
                    }
                    continue;
                }
                Ok(Some(_)) => continue,
                Ok(None) => break,
                // The backoff retries; errors are transient.
                Err(_) => continue,
            };
            let at = Instant::now();
            let Ok(plan) = serde_json::to_value(plan) else {
                continue;
            };
            let created = vms_created(&plan);
            if let (Some(name), Ok(mut counts)) =
                (plan["metadata"]["name"].as_str(), on_target.0.lock())
            {
                let count = counts.entry(name.to_string()).or_default();
                *count = (*count).max(created);
            }
            if !succeeded(&plan) {
                continue;
            }
            let name = plan["metadata"]["name"].as_str().unwrap_or_default();
            let vms = plan["spec"]["vms"].as_array().map_or(0, Vec::len);
            if let Ok(mut seen) = sightings.0.lock() {
                seen.entry(name.to_string()).or_insert((at, vms));
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------------
// One run

/// The default settings and the built-in vSphere profile, from an empty environment (whatever the
/// caller's shell has), with the tier0 selection gated by the MTV version the cluster runs: the
/// CLI's own path (`mtv_engine::front`).
/// The tier0 selection with the served lab's profiles (`providers`, the file `--providers-out`
/// wrote), as `run --kubeconfig --providers-file` resolves it.
fn suite(providers: &Path) -> Front {
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(providers).expect("the lab's providers file"),
    )
    .expect("the lab's providers file is JSON");
    let profiles = ProvidersFile::lab_profiles(&json).expect("the lab's profiles resolve");
    let env = MapEnv::new();
    let sources = SettingsSources {
        file: None,
        tc: &[],
        set: &[],
        env: &env,
    };
    let (config, warnings) =
        resolve_config(&sources, profiles).expect("the default settings resolve");
    let selection = SelectionInput {
        markers: Some(MARKERS),
        ..SelectionInput::default()
    };
    load_front(config, warnings, &[], &selection, None, &env)
        .expect("the tier0 collection succeeds")
}

struct RunFigures {
    wall: Duration,
    cpu_user: Duration,
    cpu_sys: Duration,
    /// The cluster's requests (see [`CLUSTER_ENDPOINTS`]).
    requests: u64,
    /// Every endpoint's requests, the sources' included.
    by_endpoint: BTreeMap<String, u64>,
    migrated_vms: usize,
    /// VMs Forklift created on the target, in any Plan (one whose post-hook failed included).
    vms_on_target: usize,
    /// Plan Succeeded (bench's watch) → its scenario's `test_migrate_vms` StepFinished, per Plan, in ms.
    delays_per_plan: Vec<f64>,
    /// The same from the last Plan of each scenario to Succeed: what the engine waited for.
    delays_per_scenario: Vec<f64>,
    outcomes: BTreeMap<&'static str, usize>,
    exit_code: u8,
    leftovers: usize,
}

impl RunFigures {
    fn cpu(&self) -> Duration {
        self.cpu_user + self.cpu_sys
    }

    fn requests_per_vm(&self) -> f64 {
        per(self.requests, self.migrated_vms)
    }

    fn requests_per_vm_on_target(&self) -> f64 {
        per(self.requests, self.vms_on_target)
    }
}

fn per(requests: u64, vms: usize) -> f64 {
    if vms == 0 {
        f64::NAN
    } else {
        requests as f64 / vms as f64
    }
}

async fn run_once(kubeconfig: &Path, providers: &Path, results: &Path) -> RunFigures {
    let target = Target::Kubeconfig {
        path: kubeconfig.to_path_buf(),
        context: None,
    };
    // The bench's own clients (stats, Plan watch) are set up before the clock starts.
    let stats_client = client_for(&target).await.expect("a client for the lab");
    let watch_client = client_for(&target).await.expect("a client for the lab");
    let session_id = format!(
        "{}-{}",
        suite(providers).config.settings.target_namespace_prefix,
        random_suffix(4)
    );
    let namespace = mtv_engine::names::k8s_name(&session_id);
    let sightings = Arc::new(PlanSightings::default());
    let on_target = Arc::new(OnTarget::default());
    let (watching_tx, watching) = tokio::sync::oneshot::channel();
    let watch = watch_plans(
        watch_client,
        namespace,
        sightings.clone(),
        on_target.clone(),
        watching_tx,
    );
    let _ = tokio::time::timeout(Duration::from_secs(10), watching).await;
    // After its initial LIST the watcher opens the WATCH on its next poll: let that happen first, so
    // neither request counts as the run's.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // From here on, what `mtv-tests run --kubeconfig` does (bar process start-up and the reporters).
    let requests_before = lab_requests(&stats_client).await;
    let (user_before, sys_before) = cpu_time();
    let started = Instant::now();
    let client = client_for(&target).await.expect("a client for the lab");
    let suite = suite(providers);
    let version = mtv_version(&client, &suite.config.settings.mtv_namespace)
        .await
        .expect("the lab reports an MTV version");
    let suite = suite
        .with_cluster_version(version)
        .expect("the collection succeeds");
    let scenarios = suite.scenarios();
    let (cluster_url, cluster_token) = server_and_token(&target).expect("the lab's server");
    let ledger = Arc::new(
        Ledger::create(&results.join("resources.json"), &session_id, &cluster_url)
            .expect("a ledger"),
    );
    let sink = Arc::new(TimedSink::default());
    let kube_config = config_for(&target).await.expect("the lab's kubeconfig");
    let (_interrupt_tx, interrupt) = tokio::sync::watch::channel(None);
    let run_target = RunTarget {
        cluster_url,
        cluster_token,
        kube_config,
        session_id: Some(session_id),
    };
    let outcome = run(
        suite.bootstrap(
            Cluster::new(client, ledger, sink.clone()),
            run_target,
            &scenarios,
        ),
        scenarios.clone(),
        suite.skipped(),
        RunOptions {
            results_dir: results.to_path_buf(),
            jobs: JOBS,
            skip_teardown: false,
            fail_fast: false,
        },
        interrupt,
    )
    .await;
    let wall = started.elapsed();
    let (user_after, sys_after) = cpu_time();
    let by_endpoint = served_between(&requests_before, &lab_requests(&stats_client).await);
    let requests = CLUSTER_ENDPOINTS
        .iter()
        .filter_map(|endpoint| by_endpoint.get(*endpoint))
        .sum();
    watch.abort();

    let events = sink.0.lock().map(|e| e.clone()).unwrap_or_default();
    let sightings = sightings.0.lock().map(|s| s.clone()).unwrap_or_default();
    let observed = observe(&events, &sightings);
    RunFigures {
        wall,
        cpu_user: user_after.saturating_sub(user_before),
        cpu_sys: sys_after.saturating_sub(sys_before),
        requests,
        by_endpoint,
        migrated_vms: observed.migrated_vms,
        vms_on_target: on_target.0.lock().map_or(0, |counts| counts.values().sum()),
        delays_per_plan: observed.delays_per_plan,
        delays_per_scenario: observed.delays_per_scenario,
        outcomes: observed.outcomes,
        exit_code: outcome.exit_code,
        leftovers: outcome.leftovers,
    }
}

/// What the events and the bench's own Plan watch show of one run.
struct Observed {
    migrated_vms: usize,
    delays_per_plan: Vec<f64>,
    delays_per_scenario: Vec<f64>,
    outcomes: BTreeMap<&'static str, usize>,
}

/// Outcomes by label, migrated VMs, and how long after each Plan's success (the bench's watch saw
/// it) the engine finished its scenario's `test_migrate_vms` step.
fn observe(events: &[(Instant, Event)], sightings: &HashMap<String, (Instant, usize)>) -> Observed {
    let mut plan_scenario = HashMap::new();
    let mut step_finished = HashMap::new();
    let mut outcomes = BTreeMap::new();
    for (at, event) in events {
        match event {
            Event::ResourceCreated {
                resource,
                scenario: Some(scenario),
            } => {
                plan_scenario.insert(resource.name.clone(), scenario.clone());
            }
            Event::StepFinished(StepEnd {
                scenario,
                step,
                outcome,
                ..
            }) => {
                *outcomes.entry(outcome.label()).or_default() += 1;
                if step == MIGRATE_STEP && *outcome == StepOutcome::Passed {
                    step_finished.insert(scenario.clone(), *at);
                }
            }
            _ => {}
        }
    }
    let signed_ms = |later: Instant, earlier: Instant| match later.checked_duration_since(earlier) {
        Some(d) => d.as_secs_f64() * 1e3,
        None => -(earlier.duration_since(later).as_secs_f64() * 1e3),
    };
    let mut delays_per_plan = Vec::new();
    let mut last_plan_of_scenario: HashMap<&String, Instant> = HashMap::new();
    let mut migrated_vms = 0;
    for (plan, (seen, vms)) in sightings {
        migrated_vms += vms;
        let Some(scenario) = plan_scenario.get(plan) else {
            continue;
        };
        let Some(finished) = step_finished.get(scenario) else {
            continue;
        };
        delays_per_plan.push(signed_ms(*finished, *seen));
        let last = last_plan_of_scenario.entry(scenario).or_insert(*seen);
        *last = (*last).max(*seen);
    }
    let delays_per_scenario = last_plan_of_scenario
        .iter()
        .filter_map(|(scenario, seen)| {
            step_finished
                .get(*scenario)
                .map(|finished| signed_ms(*finished, *seen))
        })
        .collect();
    Observed {
        migrated_vms,
        delays_per_plan,
        delays_per_scenario,
        outcomes,
    }
}

fn min_median_max(values: &[f64]) -> String {
    if values.is_empty() {
        return "none observed".to_string();
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "min {min:.1} ms, median {:.1} ms, max {max:.1} ms (n={})",
        median(values),
        values.len()
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let kubeconfig: PathBuf = scratch.path().join("lab.kubeconfig");
    let providers: PathBuf = scratch.path().join("lab.providers.json");
    let (lab, server, lab_start) = start_lab(&kubeconfig, &providers);
    println!(
        "tier0 on a lab process (`mtv-tests lab serve --speed {LAB_SPEED}` at {server}, up in {}), engine in this process, jobs {JOBS}, {RUNS} runs, {} CPUs",
        secs(lab_start),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut all = Vec::with_capacity(RUNS);
    for index in 1..=RUNS {
        let results = scratch.path().join(format!("run-{index}"));
        std::fs::create_dir_all(&results).expect("a results directory");
        let figures = runtime.block_on(run_once(&kubeconfig, &providers, &results));
        let outcomes: Vec<String> = figures
            .outcomes
            .iter()
            .map(|(label, n)| format!("{n} {label}"))
            .collect();
        println!(
            "run {index}: exit {} ({}; {} leftovers)",
            figures.exit_code,
            outcomes.join(", "),
            figures.leftovers
        );
        println!(
            "  wall {}  harness CPU {} (user {}, sys {}; {:.0}% of one core)",
            secs(figures.wall),
            secs(figures.cpu()),
            secs(figures.cpu_user),
            secs(figures.cpu_sys),
            100.0 * figures.cpu().as_secs_f64() / figures.wall.as_secs_f64()
        );
        println!(
            "  cluster requests {}  migrated VMs (in Plans that Succeeded) {}  requests per migrated VM {:.1}",
            figures.requests,
            figures.migrated_vms,
            figures.requests_per_vm()
        );
        let endpoints: Vec<String> = figures
            .by_endpoint
            .iter()
            .map(|(endpoint, n)| format!("{endpoint} {n}"))
            .collect();
        println!("  by endpoint: {}", endpoints.join(", "));
        println!(
            "  VMs created on the target (any Plan) {}  requests per such VM {:.1}",
            figures.vms_on_target,
            figures.requests_per_vm_on_target()
        );
        println!(
            "  Plan Succeeded -> engine's {MIGRATE_STEP} finished, per Plan: {}",
            min_median_max(&figures.delays_per_plan)
        );
        // Only informative where a scenario migrates several Plans and waits for the last.
        if figures.delays_per_scenario.len() != figures.delays_per_plan.len() {
            println!(
                "  the same from each scenario's last Plan: {}",
                min_median_max(&figures.delays_per_scenario)
            );
        }
        all.push(figures);
    }
    let column = |f: &dyn Fn(&RunFigures) -> f64| all.iter().map(f).collect::<Vec<_>>();
    let plan_delays: Vec<f64> = all
        .iter()
        .flat_map(|f| f.delays_per_plan.iter().copied())
        .collect();
    let scenario_delays: Vec<f64> = all
        .iter()
        .flat_map(|f| f.delays_per_scenario.iter().copied())
        .collect();
    println!("median of {RUNS} runs:");
    println!(
        "  wall {:.3} s  harness CPU {:.3} s  cluster requests {:.0}, per migrated VM (Plans that Succeeded) {:.1}, per VM created on the target {:.1}",
        median(&column(&|f| f.wall.as_secs_f64())),
        median(&column(&|f| f.cpu().as_secs_f64())),
        median(&column(&|f| f.requests as f64)),
        median(&column(&|f| f.requests_per_vm())),
        median(&column(&|f| f.requests_per_vm_on_target()))
    );
    println!(
        "  Plan Succeeded -> engine noticed, all runs, per Plan: {}",
        min_median_max(&plan_delays)
    );
    if scenario_delays.len() != plan_delays.len() {
        println!(
            "  the same from each scenario's last Plan: {}",
            min_median_max(&scenario_delays)
        );
    }
    println!(
        "harness peak RSS (VmHWM): {}",
        mib(status_kib("VmHWM").unwrap_or(0))
    );
    drop(lab);
}
