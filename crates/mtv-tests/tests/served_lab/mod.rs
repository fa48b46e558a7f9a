//! What the tests against a `mtv-tests lab serve` process share: the lab process, `mtv-tests` runs
//! against it (waited for or left running), and real kubectl to see what the cluster holds.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mtv_engine::cluster::kinds;
use mtv_engine::retry::standalone_client;
use mtv_engine::session::SESSION_LABEL;
use mtv_engine::target::{Target, client_for};
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_mtv-tests");

/// Every kind a run creates or changes, for kubectl to list.
pub const RUN_KINDS: &str = "namespaces,secrets,configmaps,persistentvolumeclaims,\
providers.forklift.konveyor.io,storagemaps.forklift.konveyor.io,networkmaps.forklift.konveyor.io,\
plans.forklift.konveyor.io,migrations.forklift.konveyor.io,hooks.forklift.konveyor.io,\
network-attachment-definitions.k8s.cni.cncf.io,virtualmachines.kubevirt.io,datavolumes.cdi.kubevirt.io";

/// Stops a child process when the test ends, whatever happens.
pub struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    pub fn new(child: Child) -> Self {
        KillOnDrop(Some(child))
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// Waits for the process to end and collects its output.
    pub fn wait_with_output(mut self) -> Output {
        let child = self.0.take().expect("a running child");
        child.wait_with_output().expect("the child ends")
    }

    /// Its standard output, when it was piped and not taken yet.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.0.as_mut().and_then(|child| child.stdout.take())
    }

    /// Whether the process has ended.
    pub fn has_exited(&mut self) -> bool {
        self.0
            .as_mut()
            .is_none_or(|child| child.try_wait().ok().flatten().is_some())
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `mtv-tests lab serve` process in its own temporary directory, with kubectl pointed at it, and
/// the providers file it wrote (`--providers-out`): the built-in profiles pointed at where this lab
/// serves each source, which runs against it use, as they would a cluster's.
pub struct ServedLab {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub providers: PathBuf,
    /// `None` for a lab started without kubectl ([`ServedLab::start_for_runs`]).
    kubectl: Option<PathBuf>,
    process: KillOnDrop,
}

impl ServedLab {
    /// Starts a lab at `speed`; `None` when kubectl tests are skipped (`MTV_SKIP_KUBECTL_TESTS=1`).
    pub fn start(speed: &str) -> Option<ServedLab> {
        Self::start_with_faults(speed, "")
    }

    /// Starts a lab at `speed` that misbehaves as `faults` says (`lab serve --faults`; empty for
    /// none); `None` when kubectl tests are skipped.
    pub fn start_with_faults(speed: &str, faults: &str) -> Option<ServedLab> {
        let kubectl = mtv_test_peers::kubectl()?;
        Some(Self::spawn(speed, faults, Some(kubectl)))
    }

    /// A lab for tests that only run `mtv-tests` against it (no kubectl, so never skipped).
    pub fn start_for_runs(speed: &str, faults: &str) -> ServedLab {
        Self::spawn(speed, faults, None)
    }

    fn spawn(speed: &str, faults: &str, kubectl: Option<PathBuf>) -> ServedLab {
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("lab.kubeconfig");
        let providers = dir.path().join("lab-providers.json");
        let process = Command::new(BIN)
            .args(["lab", "serve", "--port", "0", "--speed", speed])
            .args(["--faults", faults])
            .arg("--providers-out")
            .arg(&providers)
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("lab serve starts");
        let process = KillOnDrop::new(process);
        let deadline = Instant::now() + Duration::from_secs(30);
        // The providers file is written first, then the kubeconfig.
        while !kubeconfig.exists() {
            assert!(Instant::now() < deadline, "no kubeconfig after 30s");
            std::thread::sleep(Duration::from_millis(50));
        }
        ServedLab {
            dir,
            kubeconfig,
            providers,
            kubectl,
            process,
        }
    }

    /// Kills the lab process now, as a crashed API server would go.
    pub fn kill(&mut self) {
        if let Some(child) = self.process.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn kubeconfig_arg(&self) -> String {
        self.kubeconfig.to_str().expect("utf-8 path").to_string()
    }

    /// The lab's providers file, as an argument.
    pub fn providers_arg(&self) -> String {
        self.providers.to_str().expect("utf-8 path").to_string()
    }

    /// The options that make a command use this lab's profiles (each unless `given` has it):
    /// `--providers-file`, and the built-in defaults `--source-provider vsphere --storage-class
    /// lab-ceph-rbd`, which a providers file does not imply.
    pub fn profile_args(&self, given: &[&str]) -> Vec<String> {
        let mut args = Vec::new();
        let providers = self.providers_arg();
        for (flag, default) in [
            ("--providers-file", providers.as_str()),
            ("--source-provider", "vsphere"),
            ("--storage-class", "lab-ceph-rbd"),
        ] {
            if !given.contains(&flag) {
                args.extend([flag.to_string(), default.to_string()]);
            }
        }
        args
    }

    /// The lab's profile `name` from its providers file.
    pub fn profile(&self, name: &str) -> Value {
        let text = std::fs::read_to_string(&self.providers).expect("the lab's providers file");
        let profiles: Value = serde_json::from_str(&text).expect("the providers file is JSON");
        profiles[name].clone()
    }

    /// `VERB ARGS --kubeconfig KUBECONFIG` and this lab's profiles for what `args` does not give:
    /// the command line of a `mtv-tests` verb that selects scenarios (`run`, `doctor`) against this
    /// lab, as the user whose kubeconfig is `kubeconfig` (the lab's admin: [`Self::kubeconfig`]).
    pub fn selecting_args(&self, verb: &str, args: &[&str], kubeconfig: &Path) -> Vec<String> {
        let mut line = kubeconfig_args(verb, args, kubeconfig);
        line.extend(self.profile_args(args));
        line
    }

    /// Runs [`Self::selecting_args`] in [`Self::path`] to its end.
    pub fn mtv_tests_on(&self, verb: &str, args: &[&str], kubeconfig: &Path) -> Output {
        mtv_tests(
            self.path(),
            &as_strs(&self.selecting_args(verb, args, kubeconfig)),
        )
    }

    /// `mtv-tests run` against this lab: `selection` (markers, keywords, `-j`), plain output, results
    /// in `out/` (run from [`Self::path`]), then `extra` options, and the lab's profiles.
    pub fn run_args(&self, selection: &[&str], extra: &[&str]) -> Vec<String> {
        let args = [selection, &PLAIN_INTO_OUT, extra].concat();
        self.selecting_args("run", &args, &self.kubeconfig)
    }

    /// Runs `selection` to its end, keeping everything it made (`--skip-teardown`); returns the
    /// ledger.
    pub fn run_and_keep_everything(&self, selection: &[&str]) -> Value {
        let args = self.run_args(selection, &["--skip-teardown"]);
        let run = mtv_tests(self.path(), &as_strs(&args));
        assert_eq!(run.status.code(), Some(0), "{}", text(&run));
        self.ledger()
    }

    /// Starts [`Self::run_args`] and returns once the run has recorded a Migration in its ledger:
    /// the run is then migrating, with something to cancel and tear down.
    pub fn spawn_run_until_migrating(&self, selection: &[&str]) -> KillOnDrop {
        let args = self.run_args(selection, &[]);
        let run = self.spawn_mtv_tests(self.path(), &as_strs(&args));
        wait_for_text(
            &self.path().join("out/resources.json"),
            "\"Migration\"",
            Duration::from_secs(120),
        );
        run
    }

    /// The ledger (`out/resources.json`) a run made with [`Self::run_args`] wrote.
    pub fn ledger(&self) -> Value {
        ledger(&self.path().join("out"))
    }

    /// `mtv-tests clean` of the ledger in `out/` against this lab, then `extra` options.
    pub fn clean(&self, extra: &[&str]) -> Output {
        let args = [&["--ledger", "out/resources.json"], extra].concat();
        let args = kubeconfig_args("clean", &args, &self.kubeconfig);
        mtv_tests(self.path(), &as_strs(&args))
    }

    /// Whether every entry of the ledger in `out/` is marked removed.
    pub fn ledger_all_removed(&self) -> bool {
        kept_entries(&self.ledger()).is_empty()
    }

    /// A kubectl command against the lab.
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let kubectl = self.kubectl.as_ref().expect("a lab started with kubectl");
        let mut command = Command::new(kubectl);
        command.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        command
    }

    /// Runs kubectl; panics with its output unless it exits 0; returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let output = self.kubectl_command(args).output().expect("kubectl runs");
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// kubectl with `-o json`, parsed.
    pub fn kubectl_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all)).expect("kubectl prints JSON")
    }

    /// Sets the finalizers of Secret `namespace/name` to `finalizers` (JSON: a list, or `null` to
    /// remove them all), as a controller that holds an object's deletion would.
    pub fn set_secret_finalizers(&self, namespace: &str, name: &str, finalizers: &str) {
        let patch = format!(r#"{{"metadata":{{"finalizers":{finalizers}}}}}"#);
        self.kubectl(&[
            "patch", "secret", name, "-n", namespace, "--type", "merge", "-p", &patch,
        ]);
    }

    /// What a run may leave behind, as kubectl sees it: every object of [`RUN_KINDS`] by
    /// kind/namespace/name, the ForkliftController's spec and annotations, and the nodes' labels
    /// and annotations.
    pub fn cluster_state(&self) -> Vec<String> {
        let mut state: Vec<String> = self.kubectl_json(&["get", RUN_KINDS, "-A"])["items"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|o| {
                format!(
                    "{} {}/{}",
                    o["kind"].as_str().unwrap_or("?"),
                    o["metadata"]["namespace"].as_str().unwrap_or(""),
                    o["metadata"]["name"].as_str().unwrap_or("?")
                )
            })
            .collect();
        state.sort();
        for controller in self.kubectl_json(&["get", "forkliftcontrollers", "-A"])["items"]
            .as_array()
            .expect("a list")
        {
            state.push(format!(
                "ForkliftController spec {} annotations {}",
                controller["spec"],
                annotations(controller)
            ));
        }
        for node in self.kubectl_json(&["get", "nodes"])["items"]
            .as_array()
            .expect("a list")
        {
            state.push(format!(
                "Node {} labels {} annotations {}",
                node["metadata"]["name"],
                node["metadata"]["labels"],
                annotations(node)
            ));
        }
        state
    }

    /// The ForkliftController's `spec.controller_precopy_interval` (null when unset) and its
    /// annotations.
    pub fn precopy_interval(&self) -> (Value, Value) {
        let controller =
            &self.kubectl_json(&["get", "forkliftcontrollers", "-n", "openshift-mtv"])["items"][0];
        (
            controller["spec"]["controller_precopy_interval"].clone(),
            controller["metadata"]["annotations"].clone(),
        )
    }

    /// `mtv-tests ARGS` in `dir` with a clean environment, not waited for.
    pub fn spawn_mtv_tests(&self, dir: &Path, args: &[&str]) -> KillOnDrop {
        KillOnDrop::new(
            mtv_tests_command(dir, args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("mtv-tests runs"),
        )
    }
}

/// An object's annotations; none and an empty map read the same (a merge patch removing the last
/// one leaves an empty map).
fn annotations(object: &Value) -> Value {
    match &object["metadata"]["annotations"] {
        Value::Object(map) if !map.is_empty() => Value::Object(map.clone()),
        _ => Value::Null,
    }
}

/// The vSphere cold sanity scenario, which most tests run: `-m tier0 -k SanityCold`.
pub const SANITY_COLD: [&str; 4] = ["-m", "tier0", "-k", "SanityCold"];

/// The options of a run that reports in plain lines and writes its results into `out/`.
pub const PLAIN_INTO_OUT: [&str; 3] = ["--no-progress", "--results", "out"];

/// `VERB ARGS --kubeconfig KUBECONFIG`: a `mtv-tests` command line against the cluster of
/// `kubeconfig`, with no providers file given.
pub fn kubeconfig_args(verb: &str, args: &[&str], kubeconfig: &Path) -> Vec<String> {
    let kubeconfig = kubeconfig.to_str().expect("utf-8 path");
    std::iter::once(verb)
        .chain(args.iter().copied())
        .chain(["--kubeconfig", kubeconfig])
        .map(str::to_string)
        .collect()
}

/// Runs `mtv-tests ARGS --format json` (a `list` or `plan`) in `dir`, which must succeed; returns
/// what it printed.
pub fn mtv_tests_json(dir: &Path, args: &[&str]) -> Value {
    let all = [args, &["--format", "json"]].concat();
    let output = mtv_tests(dir, &all);
    assert!(output.status.success(), "{}", text(&output));
    serde_json::from_slice(&output.stdout).expect("mtv-tests prints JSON")
}

/// The items of a `list --format json` listing that its selection kept (selected or skipped).
pub fn listed_items(listing: &Value) -> impl Iterator<Item = &Value> {
    listing["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item["outcome"] != "deselected")
}

/// The first ledger entry's resource of `kind`.
pub fn recorded<'a>(ledger: &'a Value, kind: &str) -> &'a Value {
    &ledger["entries"]
        .as_array()
        .expect("ledger entries")
        .iter()
        .find(|e| e["resource"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the ledger: {ledger:#}"))["resource"]
}

/// `mtv-tests ARGS` in `dir`, with only `PATH` of the environment and no colours.
pub fn mtv_tests_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("COLUMNS", "400");
    command
}

/// Runs `mtv-tests ARGS` in `dir` to its end.
pub fn mtv_tests(dir: &Path, args: &[&str]) -> Output {
    mtv_tests_command(dir, args)
        .output()
        .expect("mtv-tests runs")
}

/// The output of a finished child as text: stdout, then stderr.
pub fn text(output: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Waits until a file contains `needle`.
pub fn wait_for_text(path: &Path, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} never contained {needle:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends a signal (`TERM`, `HUP`, `INT`) to a process with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// The ledger (`resources.json`) a run wrote into its results directory.
pub fn ledger(results: &Path) -> Value {
    let text =
        std::fs::read_to_string(results.join("resources.json")).expect("the run wrote its ledger");
    serde_json::from_str(&text).expect("the ledger is JSON")
}

/// The entries of `ledger` not marked removed: what the run left behind.
pub fn kept_entries(ledger: &Value) -> Vec<&Value> {
    ledger["entries"]
        .as_array()
        .expect("ledger entries")
        .iter()
        .filter(|e| e["removed"] != true)
        .collect()
}

/// The event log of a run, one JSON value per line.
pub fn events(results: &Path) -> Vec<Value> {
    std::fs::read_to_string(results.join("events.jsonl"))
        .expect("events.jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON event"))
        .collect()
}

/// The namespaces of the cluster of `kubeconfig` (sorted), and objects of the suite's kinds that carry a session label.
pub async fn session_objects(kubeconfig: &Path) -> (Vec<String>, Vec<String>) {
    // Behind the engine's retrying layer, so a lab that still injects faults can be inspected.
    let client = standalone_client(
        client_for(&Target::Kubeconfig {
            path: kubeconfig.to_path_buf(),
            context: None,
        })
        .await
        .unwrap(),
    );
    let all = |kind: &mtv_engine::cluster::Kind| -> kube::Api<kube::api::DynamicObject> {
        kube::Api::all_with(client.clone(), &kind.api_resource())
    };
    let mut namespaces: Vec<String> = all(&kinds::NAMESPACE)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    namespaces.sort();
    let mut labelled = Vec::new();
    for kind in [
        kinds::PROVIDER,
        kinds::STORAGE_MAP,
        kinds::NETWORK_MAP,
        kinds::PLAN,
        kinds::MIGRATION,
        kinds::HOOK,
        kinds::SECRET,
        kinds::CONFIG_MAP,
        kinds::NAD,
        kinds::VIRTUAL_MACHINE,
        kinds::PVC,
        kinds::DATA_VOLUME,
    ] {
        let params = kube::api::ListParams::default().labels(SESSION_LABEL);
        for object in all(&kind).list(&params).await.unwrap().items {
            labelled.push(format!(
                "{} {}/{}",
                kind.kind,
                object.metadata.namespace.unwrap_or_default(),
                object.metadata.name.unwrap_or_default()
            ));
        }
    }
    (namespaces, labelled)
}

/// `args` as the `&[&str]` the command helpers take.
pub fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
