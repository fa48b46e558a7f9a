//! What the lab costs: the request throughput of its API (GET of one object, LIST of a namespace with 500
//! ConfigMaps, merge PATCH) from concurrent HTTP clients on loopback, as a bare API server and with the
//! simulated Forklift running; and the memory it needs to hold 1,000 source VMs and drive 100 concurrent
//! cold vSphere Plans to `Succeeded`. Prints numbers; asserts nothing.
//!
//! Run with `cargo bench -p mtv-lab --bench lab`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use mtv_lab::registry::{self, ResourceType};
use mtv_lab::store::StoreEvent;
use mtv_lab::{LabOptions, LabServer, MTV_NAMESPACE, Patch, Store};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Concurrent HTTP clients driving the API, each with its own connection.
const CLIENTS: usize = 8;
/// How long each request kind is driven.
const DRIVE_FOR: Duration = Duration::from_secs(3);
/// A bound on the requests one client sends for one kind, whatever the machine's speed.
const MAX_REQUESTS_PER_CLIENT: usize = 200_000;
/// ConfigMaps in the listed namespace.
const CONFIG_MAPS: usize = 500;
const API_NAMESPACE: &str = "bench-api";

/// Source VMs of the generated lab file.
const SOURCE_VMS: usize = 1_000;
/// Concurrent single-VM cold Plans.
const PLANS: usize = 100;
/// Time scale of the simulated migrations in the memory phase.
const PLAN_SPEED: f64 = 50.0;
/// The longest the 100 Plans may take before the bench gives up on them.
const PLANS_DEADLINE: Duration = Duration::from_secs(180);
/// How long RSS is watched after the last Plan ends.
const SETTLE_FOR: Duration = Duration::from_secs(2);
const TARGET_NAMESPACE: &str = "bench-migrated";
const VSPHERE_URL: &str = "https://vcenter.bench.mtv-tests.internal/sdk";
const VSPHERE_USER: &str = "administrator@vsphere.local";
const VSPHERE_PASSWORD: &str = "bench-password";

// ---------------------------------------------------------------------------------------------------
// Process memory

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`), in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn rss_kib() -> u64 {
    status_kib("VmRSS").unwrap_or(0)
}

fn hwm_kib() -> u64 {
    status_kib("VmHWM").unwrap_or(0)
}

/// Resets `VmHWM` to the current RSS (Linux 4.0+), so a later peak belongs to one phase.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Samples `VmRSS` every 10 ms on its own thread until stopped; the highest sample is the peak even where
/// `VmHWM` cannot be reset.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib()));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Self {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------------------------------
// Statistics

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

// ---------------------------------------------------------------------------------------------------
// Throughput

#[derive(Clone, Copy)]
enum RequestKind {
    Get,
    List,
    MergePatch,
}

impl RequestKind {
    fn label(self) -> &'static str {
        match self {
            RequestKind::Get => "GET one ConfigMap",
            RequestKind::List => "LIST 500 ConfigMaps",
            RequestKind::MergePatch => "merge PATCH a ConfigMap",
        }
    }

    fn request(self, client: usize, sequence: usize) -> http::Request<Vec<u8>> {
        let base = format!("/api/v1/namespaces/{API_NAMESPACE}/configmaps");
        let built = match self {
            RequestKind::Get => http::Request::get(format!("{base}/cm-0000")).body(Vec::new()),
            RequestKind::List => http::Request::get(base).body(Vec::new()),
            // Each client patches its own object: no client waits on another's write.
            RequestKind::MergePatch => http::Request::patch(format!("{base}/cm-{client:04}"))
                .header("content-type", "application/merge-patch+json")
                .body(
                    json!({"data": {"sequence": sequence.to_string()}})
                        .to_string()
                        .into_bytes(),
                ),
        };
        built.expect("a well-formed request")
    }
}

async fn client_for(lab: &LabServer) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&lab.kubeconfig_yaml())
        .expect("the lab's kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("the lab's kubeconfig is usable");
    kube::Client::try_from(config).expect("a client for the lab")
}

fn seed_config_maps(store: &Store) {
    store
        .create(
            &registry::NAMESPACE,
            None,
            json!({"metadata": {"name": API_NAMESPACE}}),
        )
        .expect("the namespace is created");
    for i in 0..CONFIG_MAPS {
        // About 0.5 KiB of data each, like a small application config.
        let data: serde_json::Map<String, Value> = (0..8)
            .map(|k| {
                (
                    format!("key-{k}"),
                    json!(format!("value-{i:04}-{k}-{}", "x".repeat(40))),
                )
            })
            .collect();
        store
            .create(
                &registry::CONFIG_MAP,
                Some(API_NAMESPACE),
                json!({"metadata": {"name": format!("cm-{i:04}"), "labels": {"app": "bench"}}, "data": data}),
            )
            .expect("a ConfigMap is created");
    }
}

struct KindResult {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

async fn drive(clients: &[kube::Client], kind: RequestKind) -> KindResult {
    let started = Instant::now();
    let deadline = started + DRIVE_FOR;
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .enumerate()
        .map(|(index, client)| {
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                for sequence in 0..MAX_REQUESTS_PER_CLIENT {
                    if Instant::now() >= deadline {
                        break;
                    }
                    let request = kind.request(index, sequence);
                    let sent = Instant::now();
                    match client.request_text(request).await {
                        Ok(_) => latencies.push(sent.elapsed()),
                        Err(_) => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.expect("a client task ends");
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    KindResult {
        latencies,
        errors,
        elapsed,
    }
}

async fn throughput(forklift: bool) {
    let lab = LabServer::start(LabOptions {
        forklift,
        ..LabOptions::default()
    })
    .await
    .expect("the lab starts");
    seed_config_maps(lab.store());
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(client_for(&lab).await);
    }
    // One warm-up request per client opens its connection before the clock starts.
    for (index, client) in clients.iter().enumerate() {
        let _ = client
            .request_text(RequestKind::Get.request(index, 0))
            .await;
    }
    let mode = if forklift {
        "with the Forklift simulation"
    } else {
        "bare API server"
    };
    println!(
        "lab API throughput, {mode} ({CLIENTS} concurrent clients, {} s per kind, {} ConfigMaps in the listed namespace):",
        DRIVE_FOR.as_secs(),
        CONFIG_MAPS
    );
    for kind in [RequestKind::Get, RequestKind::List, RequestKind::MergePatch] {
        let served_before = lab.request_count();
        let result = drive(&clients, kind).await;
        let served = lab.request_count() - served_before;
        let count = result.latencies.len();
        println!(
            "  {:<24} {:>7.0} req/s  p50 {:>10}  p99 {:>10}  max {:>10}  ({count} ok, {} errors, {served} served by the lab)",
            kind.label(),
            count as f64 / result.elapsed.as_secs_f64(),
            ms(percentile(&result.latencies, 0.50)),
            ms(percentile(&result.latencies, 0.99)),
            ms(result.latencies.last().copied().unwrap_or_default()),
            result.errors,
        );
    }
    drop(clients);
    lab.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------
// Memory: 1,000 source VMs and 100 concurrent Plans

/// A lab file with one vSphere source of `vms` small powered-off RHEL VMs.
fn lab_file(vms: usize) -> String {
    let mut text = format!(
        "version: 1
description: {vms} vSphere VMs for the mtv-lab memory benchmark.
providers:
  - name: vsphere
    type: vsphere
    url: {VSPHERE_URL}
    username: {VSPHERE_USER}
    password: {VSPHERE_PASSWORD}
    version: 8.0.3
    datacenter: bench-dc
    hosts:
      - {{id: host-1, name: esxi-01.bench.mtv-tests.internal, cluster: bench-cluster}}
      - {{id: host-2, name: esxi-02.bench.mtv-tests.internal, cluster: bench-cluster}}
    networks:
      - {{id: network-1, name: VM Network}}
    datastores:
      - {{id: datastore-1, name: bench-datastore, kind: VMFS, capacity_gib: 1048576, free_gib: 1000000}}
    vms:
"
    );
    for i in 0..vms {
        let name = format!("bench-vm-{i:04}");
        let host = 1 + i % 2;
        let (a, b) = (i / 256, i % 256);
        text.push_str(&format!(
            "      - id: vm-{i}
        name: {name}
        power_state: off
        host: host-{host}
        cpu_sockets: 2
        memory_mib: 4096
        guest_os: rhel8_64Guest
        uuid: 4201{i:04x}-5a3c-4e7f-9d21-{i:012x}
        guest_agent: true
        disks:
          - {{key: 2000, file: \"[bench-datastore] {name}/{name}.vmdk\", datastore: datastore-1, capacity_gib: 10, unit_number: 0}}
        nics:
          - {{mac: \"00:50:56:b0:{a:02x}:{b:02x}\", network: network-1, device: ens192, ips: [{{ip: 10.30.{a}.{b}, prefix: 16}}]}}
"
        ));
    }
    text
}

fn b64(v: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(v)
}

fn has_condition(obj: &Value, kind: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == kind))
}

fn create(store: &Store, rt: &'static ResourceType, ns: &str, obj: Value) {
    if let Err(error) = store.create(rt, Some(ns), obj) {
        panic!("cannot create a {}: {error}", rt.kind);
    }
}

/// Polls the store until `ready` holds for the object, or the deadline passes.
async fn wait_until(
    store: &Store,
    rt: &'static ResourceType,
    name: &str,
    within: Duration,
    ready: impl Fn(&Value) -> bool,
) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if store
            .get(rt, Some(MTV_NAMESPACE), name)
            .is_ok_and(|o| ready(&o))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[derive(Default)]
struct PlanProgress {
    migration_created: bool,
    succeeded: Option<Instant>,
    failed: bool,
}

/// Reacts to one Plan as it is now: a Migration once Ready, the end once Succeeded or Failed.
fn observe_plan(store: &Store, plan: &Value, progress: &mut BTreeMap<String, PlanProgress>) {
    let Some(name) = plan.pointer("/metadata/name").and_then(Value::as_str) else {
        return;
    };
    let Some(state) = progress.get_mut(name) else {
        return;
    };
    if !state.migration_created && has_condition(plan, "Ready") {
        create(
            store,
            &registry::MIGRATION,
            MTV_NAMESPACE,
            json!({"metadata": {"name": format!("{name}-m")}, "spec": {"plan": {"name": name, "namespace": MTV_NAMESPACE}}}),
        );
        state.migration_created = true;
    }
    if state.succeeded.is_none() && has_condition(plan, "Succeeded") {
        state.succeeded = Some(Instant::now());
    }
    if has_condition(plan, "Failed") {
        state.failed = true;
    }
}

async fn memory(dir: &Path) {
    let before = rss_kib();
    let path = dir.join("lab-1000-vms.yaml");
    std::fs::write(&path, lab_file(SOURCE_VMS)).expect("the lab file is written");
    let peak_resettable = reset_peak();
    let started = Instant::now();
    let lab = LabServer::start(LabOptions {
        speed: PLAN_SPEED,
        lab_file: Some(path),
        forklift: true,
        ..LabOptions::default()
    })
    .await
    .expect("the lab starts with the generated lab file");
    let load_time = started.elapsed();
    let loaded = rss_kib();
    let store = lab.store().clone();
    let source_vms = lab
        .source()
        .and_then(|s| s.with_provider("vsphere", |p| p.vms.len()).ok())
        .unwrap_or(0);

    // The source Provider, its Secret and the maps; every VM may be in flight at once.
    create(
        &store,
        &registry::SECRET,
        MTV_NAMESPACE,
        json!({"metadata": {"name": "vsphere-secret"}, "data": {
            "user": b64(VSPHERE_USER), "password": b64(VSPHERE_PASSWORD), "insecureSkipVerify": b64("true")}}),
    );
    create(
        &store,
        &registry::PROVIDER,
        MTV_NAMESPACE,
        json!({"metadata": {"name": "vsphere"}, "spec": {"type": "vsphere", "url": VSPHERE_URL,
            "secret": {"name": "vsphere-secret", "namespace": MTV_NAMESPACE}}}),
    );
    if store
        .get(&registry::PROVIDER, Some(MTV_NAMESPACE), "host")
        .is_err()
    {
        create(
            &store,
            &registry::PROVIDER,
            MTV_NAMESPACE,
            json!({"metadata": {"name": "host"}, "spec": {"type": "openshift", "url": "", "secret": {}}}),
        );
    }
    store
        .patch(
            &registry::FORKLIFT_CONTROLLER,
            Some(MTV_NAMESPACE),
            "forklift-controller",
            &Patch::Merge(json!({"spec": {"controller_max_vm_inflight": PLANS}})),
            &Default::default(),
        )
        .expect("the in-flight limit is raised");
    store
        .create(
            &registry::NAMESPACE,
            None,
            json!({"metadata": {"name": TARGET_NAMESPACE}}),
        )
        .expect("the target namespace is created");
    let pair = json!({"source": {"name": "vsphere", "namespace": MTV_NAMESPACE}, "destination": {"name": "host", "namespace": MTV_NAMESPACE}});
    create(
        &store,
        &registry::NETWORK_MAP,
        MTV_NAMESPACE,
        json!({"metadata": {"name": "bench-net"}, "spec": {"provider": pair,
            "map": [{"source": {"id": "network-1"}, "destination": {"type": "pod"}}]}}),
    );
    create(
        &store,
        &registry::STORAGE_MAP,
        MTV_NAMESPACE,
        json!({"metadata": {"name": "bench-st"}, "spec": {"provider": pair,
            "map": [{"source": {"id": "datastore-1"}, "destination": {"storageClass": "lab-ceph-rbd"}}]}}),
    );
    let ready = wait_until(
        &store,
        &registry::PROVIDER,
        "vsphere",
        Duration::from_secs(60),
        |p| has_condition(p, "Ready"),
    )
    .await;
    if !ready {
        println!(
            "memory: the vSphere Provider did not become Ready within 60 s; skipping the Plans"
        );
        lab.shutdown().await;
        return;
    }
    let provider_ready = rss_kib();

    // 100 single-VM cold Plans at once; a Migration for each as soon as it is Ready.
    reset_peak();
    let sampler = RssSampler::start();
    let writes_before = store.resource_version();
    let mut events = store.subscribe();
    let plans_started = Instant::now();
    let mut progress: BTreeMap<String, PlanProgress> = BTreeMap::new();
    for i in 0..PLANS {
        let name = format!("bench-plan-{i:03}");
        // Spread over the inventory rather than the first hundred VMs.
        let vm = i * (SOURCE_VMS / PLANS);
        create(
            &store,
            &registry::PLAN,
            MTV_NAMESPACE,
            json!({"metadata": {"name": name}, "spec": {
                "provider": pair, "targetNamespace": TARGET_NAMESPACE, "warm": false,
                "map": {"network": {"name": "bench-net", "namespace": MTV_NAMESPACE}, "storage": {"name": "bench-st", "namespace": MTV_NAMESPACE}},
                "vms": [{"id": format!("vm-{vm}")}]}}),
        );
        progress.insert(name, PlanProgress::default());
    }
    let deadline = plans_started + PLANS_DEADLINE;
    let mut last_sweep = Instant::now();
    loop {
        let finished = progress
            .values()
            .filter(|p| p.succeeded.is_some() || p.failed)
            .count();
        if finished == PLANS || Instant::now() >= deadline {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            Ok(Ok(event)) => on_event(&store, &event, &mut progress),
            Ok(Err(broadcast::error::RecvError::Closed)) => break,
            Ok(Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => {}
        }
        // A sweep now and then catches what a lagged subscription missed.
        if last_sweep.elapsed() > Duration::from_millis(500) {
            for name in progress.keys().cloned().collect::<Vec<_>>() {
                if let Ok(plan) = store.get(&registry::PLAN, Some(MTV_NAMESPACE), &name) {
                    observe_plan(&store, &plan, &mut progress);
                }
            }
            last_sweep = Instant::now();
        }
    }
    let succeeded: Vec<Instant> = progress.values().filter_map(|p| p.succeeded).collect();
    let failed = progress.values().filter(|p| p.failed).count();
    let all_done = succeeded.iter().max().map(|t| *t - plans_started);
    let writes = store.resource_version() - writes_before;
    let sampled_peak = sampler.finish();
    let peak = if peak_resettable {
        sampled_peak.max(hwm_kib())
    } else {
        sampled_peak
    };
    let after_plans = rss_kib();
    // The controllers keep working after Succeeded (target VMs start, Migrations settle): watch that too.
    let settling = RssSampler::start();
    tokio::time::sleep(SETTLE_FOR).await;
    let settle_peak = settling.finish();
    let steady = rss_kib();
    let objects: usize = registry::RESOURCE_TYPES
        .iter()
        .map(|rt| store.count(rt))
        .sum();

    println!(
        "lab memory, {source_vms} source vSphere VMs and {PLANS} concurrent single-VM cold Plans (speed {PLAN_SPEED}, in-flight limit {PLANS}):"
    );
    let row = |label: &str, value: String| println!("  {label:<44} {value}");
    row("RSS before the lab", mib(before));
    row(
        &format!("RSS after loading {source_vms} VMs"),
        format!("{} (lab start {})", mib(loaded), ms(load_time)),
    );
    row("RSS with the vSphere Provider Ready", mib(provider_ready));
    row(
        &format!("RSS peak while the {PLANS} Plans ran"),
        format!(
            "{}{}",
            mib(peak),
            if peak_resettable {
                ""
            } else {
                " (sampled every 10 ms; VmHWM could not be reset)"
            }
        ),
    );
    row("RSS when the last Plan ended", mib(after_plans));
    row(
        &format!("RSS peak in the {} s after", SETTLE_FOR.as_secs()),
        mib(settle_peak),
    );
    row(
        &format!("RSS steady, {} s after", SETTLE_FOR.as_secs()),
        format!("{} ({objects} objects in the store)", mib(steady)),
    );
    match all_done {
        Some(took) if succeeded.len() == PLANS => row(
            &format!("all {PLANS} Plans Succeeded in"),
            format!(
                "{} from the first Plan's create ({writes} store writes by then)",
                ms(took)
            ),
        ),
        _ => row(
            "Plans Succeeded",
            format!(
                "only {} of {PLANS} ({failed} Failed) within {} s",
                succeeded.len(),
                PLANS_DEADLINE.as_secs()
            ),
        ),
    }
    lab.shutdown().await;
}

fn on_event(store: &Store, event: &StoreEvent, progress: &mut BTreeMap<String, PlanProgress>) {
    if std::ptr::eq(event.resource, &registry::PLAN) {
        observe_plan(store, &event.object, progress);
    }
}

/// A directory under the system's temp dir, removed when dropped.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let scratch = ScratchDir(std::env::temp_dir().join(format!(
        "mtv-lab-bench-{}-{}",
        std::process::id(),
        mtv_lab::random::name_suffix(6)
    )));
    std::fs::create_dir_all(&scratch.0).expect("a scratch directory");
    println!(
        "machine: {} CPUs available; the lab and its clients share one tokio runtime in this process",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // Memory first, so the heap the throughput phase leaves behind does not count.
    runtime.block_on(memory(&scratch.0));
    runtime.block_on(throughput(false));
    runtime.block_on(throughput(true));
}
