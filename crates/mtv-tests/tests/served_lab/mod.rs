//! What the tests against a `mtv-tests lab serve` process share: the lab process, `mtv-tests` runs
//! against it (waited for or left running), and real kubectl to see what the cluster holds.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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

    /// `mtv-tests run` against this lab: `selection` (markers, keywords, `-j`), plain output, results
    /// in `out/` (run from [`Self::path`]), the lab's profiles, then `extra` options.
    pub fn run_args(&self, selection: &[&str], extra: &[&str]) -> Vec<String> {
        let kubeconfig = self.kubeconfig_arg();
        let fixed = [
            "--no-progress",
            "--results",
            "out",
            "--kubeconfig",
            &kubeconfig,
        ];
        let given: Vec<&str> = selection.iter().chain(extra).copied().collect();
        std::iter::once("run")
            .chain(selection.iter().copied())
            .chain(fixed)
            .chain(extra.iter().copied())
            .map(str::to_string)
            .chain(self.profile_args(&given))
            .collect()
    }

    /// The ledger (`out/resources.json`) a run made with [`Self::run_args`] wrote.
    pub fn ledger(&self) -> Value {
        let text = std::fs::read_to_string(self.path().join("out/resources.json"))
            .expect("the run wrote its ledger");
        serde_json::from_str(&text).expect("the ledger is JSON")
    }

    /// `mtv-tests clean` of the ledger in `out/` against this lab, then `extra` options.
    pub fn clean(&self, extra: &[&str]) -> Output {
        let kubeconfig = self.kubeconfig_arg();
        let mut args = vec![
            "clean",
            "--ledger",
            "out/resources.json",
            "--kubeconfig",
            &kubeconfig,
        ];
        args.extend(extra);
        mtv_tests(self.path(), &args)
    }

    /// Whether every entry of the ledger in `out/` is marked removed.
    pub fn ledger_all_removed(&self) -> bool {
        self.ledger()["entries"]
            .as_array()
            .expect("ledger entries")
            .iter()
            .all(|e| e["removed"] == true)
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

/// The event log of a run, one JSON value per line.
pub fn events(results: &Path) -> Vec<Value> {
    std::fs::read_to_string(results.join("events.jsonl"))
        .expect("events.jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON event"))
        .collect()
}

/// `args` as the `&[&str]` the command helpers take.
pub fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
