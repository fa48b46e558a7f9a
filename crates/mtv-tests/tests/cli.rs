//! The `mtv-tests` binary as a user runs it: output of `list`, `plan`, `settings` and `profiles`
//! pinned by snapshots for several profiles, and every kind of bad input answered with exit code 2
//! and a message that says where and what to do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use served_lab::{
    KillOnDrop, PLAIN_INTO_OUT, SANITY_COLD, ServedLab, as_strs, kept_entries, ledger, mtv_tests,
    mtv_tests_command, send_signal, session_objects, wait_for_text,
};

mod served_lab;

const BIN: &str = env!("CARGO_BIN_EXE_mtv-tests");

/// A fresh working directory with no providers file, and an environment with none of ours.
struct Sandbox {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
            env: Vec::new(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // Stable, narrow diagnostics without colours.
            .env("NO_COLOR", "1")
            .env("COLUMNS", "400");
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command.output().expect("mtv-tests runs")
    }

    /// `mtv-tests run ARGS` on the embedded lab, in plain lines, with its results in `out/`.
    fn run_plain(&self, args: &[&str]) -> Output {
        self.run(&[&["run"], args, &PLAIN_INTO_OUT].concat())
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstderr:\n{}",
        output.status.code(),
        stderr(output)
    );
    stdout(output)
}

/// Runs a command expected to fail as a usage/configuration error, and returns its stderr.
fn usage_error(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(2),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
    stderr(output)
}

/// Runs `args` in a fresh sandbox as a usage/configuration error, and checks that its stderr says
/// each of `expected`.
fn assert_usage_error_says(args: &[&str], expected: &[&str]) {
    let err = usage_error(&Sandbox::new().run(args));
    for text in expected {
        assert!(err.contains(text), "{err}");
    }
}

fn python_example() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mtv-config/tests/fixtures/python-example.providers.json");
    std::fs::read_to_string(path).expect("the Python suite's example providers file")
}

const PROFILES: [&str; 6] = [
    "vsphere",
    "vsphere-copy-offload",
    "ovirt",
    "openstack",
    "openshift",
    "ova",
];

#[test]
fn list_works_with_no_argument_at_all() {
    let sandbox = Sandbox::new();
    let out = ok(&sandbox.run(&["list"]));
    assert!(out.starts_with("source provider 'vsphere' (vsphere 8.0.3, built-in lab profile)"));
    assert!(out.contains("TestSanityColdMtvMigration[rhel8]::test_create_storagemap\n"));
}

#[test]
fn list_tier0_for_every_builtin_profile() {
    let sandbox = Sandbox::new();
    for profile in PROFILES {
        let out = ok(&sandbox.run(&["list", "-m", "tier0", "--source-provider", profile]));
        insta::assert_snapshot!(format!("list_tier0_{profile}"), out);
    }
}

#[test]
fn plan_tier0_for_every_builtin_profile() {
    let sandbox = Sandbox::new();
    for profile in PROFILES {
        let out = ok(&sandbox.run(&["plan", "-m", "tier0", "--source-provider", profile]));
        // Every selected scenario shows its five steps and the objects they create.
        assert!(out.contains("session setup\n"), "{profile}");
        if profile == "vsphere" || profile == "ova" || profile == "openstack" {
            insta::assert_snapshot!(format!("plan_tier0_{profile}"), out);
        }
    }
}

#[test]
fn plan_of_a_mixed_datastore_copy_offload_scenario() {
    let sandbox = Sandbox::new();
    let out = ok(&sandbox.run(&[
        "plan",
        "--source-provider",
        "vsphere-copy-offload",
        "-k",
        "TestCopyoffloadMixedDatastoreMigration",
    ]));
    assert!(out.contains("offloadPlugin:"));
    assert!(out.contains("datastore-nonxcopy-1"));
    assert!(out.contains("pvcNameTemplate: pvc"));
    assert!(out.contains("test_check_xcopy_used"));
    insta::assert_snapshot!(out);
}

#[test]
fn plan_json_is_a_versioned_document_without_secrets() {
    let sandbox = Sandbox::new();
    let out = ok(&sandbox.run(&[
        "plan",
        "--format",
        "json",
        "--source-provider",
        "vsphere-copy-offload",
        "-m",
        "copyoffload",
    ]));
    let doc: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(doc["version"], 1);
    assert!(!doc["preview"]["scenarios"].as_array().unwrap().is_empty());
    assert!(
        !out.contains("lab-password"),
        "a secret leaked into the plan"
    );
}

#[test]
fn list_json_has_the_stable_shape() {
    let sandbox = Sandbox::new();
    let out = ok(&sandbox.run(&[
        "list",
        "--format",
        "json",
        "--source-provider",
        "openstack",
        "-k",
        "Sanity or PostHook",
    ]));
    let doc: Value = serde_json::from_str(&out).expect("JSON");
    let items = doc["items"].as_array().expect("items");
    assert!(!items.is_empty());
    for item in items {
        let keys: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["id", "scenario", "step", "markers", "outcome", "reason"]
        );
    }
    let warm = items
        .iter()
        .find(|i| i["id"] == "TestSanityWarmMtvMigration[rhel8]::test_migrate_vms")
        .expect("the warm sanity item");
    assert_eq!(warm["outcome"], "skipped");
    assert_eq!(warm["reason"], "openstack warm migration is not supported.");
    let hook = items
        .iter()
        .find(|i| {
            i["id"] == "TestPostHookRetainFailedVm[post-hook-retain-failed-vm]::test_create_plan"
        })
        .expect("the post-hook item");
    assert_eq!(hook["outcome"], "selected");
    assert_eq!(hook["reason"], Value::Null);
    assert_eq!(hook["step"], "test_create_plan");
    assert!(doc["summary"]["collected"].as_u64().unwrap() > 0);
}

#[test]
fn the_python_suites_example_providers_file_works() {
    let sandbox = Sandbox::new();
    sandbox.write(".providers.json", &python_example());
    for profile in ["vsphere", "ovirt", "openstack", "openshift", "ova"] {
        let out = ok(&sandbox.run(&[
            "list",
            "-m",
            "tier0",
            "--tc",
            &format!("source_provider:{profile}"),
            "--tc",
            "storage_class:ocs-storagecluster-ceph-rbd",
        ]));
        assert!(out.contains(".providers.json"), "{out}");
        assert!(out.contains("storage class ocs-storagecluster-ceph-rbd"));
        let plan = ok(&sandbox.run(&[
            "plan",
            "-m",
            "tier0",
            "--source-provider",
            profile,
            "--storage-class",
            "ocs-storagecluster-ceph-rbd",
        ]));
        assert!(!plan.contains("PASSWORD\""), "a password leaked: {profile}");
    }
    let out = ok(&sandbox.run(&["profiles"]));
    insta::assert_snapshot!(
        "profiles_python_example",
        out.replace(&sandbox.path().display().to_string(), "<dir>")
    );
}

#[test]
fn with_a_providers_file_source_provider_and_storage_class_are_required() {
    let sandbox = Sandbox::new();
    sandbox.write(".providers.json", &python_example());
    let err = usage_error(&sandbox.run(&["list"]));
    assert!(err.contains("source_provider"), "{err}");
    assert!(err.contains("storage_class"), "{err}");
}

#[test]
fn malformed_json_names_file_line_and_column() {
    let sandbox = Sandbox::new();
    let path = sandbox.write(
        "broken.json",
        "{\n  \"vsphere\": {\n    \"type\": \"vsphere\"\n    \"version\": \"8\"\n  }\n}\n",
    );
    let err = usage_error(&sandbox.run(&["list", "--providers-file", path.to_str().unwrap()]));
    assert!(err.contains("broken.json:4:5"), "{err}");
}

#[test]
fn a_providers_file_from_the_environment_is_used() {
    let sandbox = Sandbox::new();
    let path = sandbox.write("elsewhere/providers.json", &python_example());
    let sandbox = sandbox.env("MTV_PROVIDERS_FILE", path.to_str().unwrap());
    let out = ok(&sandbox.run(&["profiles"]));
    assert!(out.contains("elsewhere/providers.json"));
}

#[test]
fn unknown_profile_lists_the_available_ones() {
    assert_usage_error_says(
        &["list", "--source-provider", "vsphere-8.0.3"],
        &["vsphere-copy-offload", "openstack"],
    );
}

#[test]
fn unknown_marker_lists_the_known_ones() {
    assert_usage_error_says(
        &["list", "-m", "tier0 and not teir1"],
        &["did you mean 'tier1'", "copyoffload"],
    );
}

#[test]
fn bad_keyword_expression_is_a_usage_error() {
    assert_usage_error_says(
        &["list", "-k", "rhel8 and"],
        &["unexpected end of expression"],
    );
}

#[test]
fn missing_copy_offload_fields_are_reported_at_once_before_anything_runs() {
    let sandbox = Sandbox::new();
    let example = serde_json::json!({
        "vsphere-copy-offload": {
            "type": "vsphere", "version": "8.0.3", "fqdn": "vcenter.example",
            "api_url": "https://vcenter.example/sdk", "username": "administrator@vsphere.local",
            "password": "file-secret",
            "copyoffload": {
                "storage_vendor_product": "vantara",
                "datastore_id": "datastore-12345",
                "storage_hostname": "array.example"
            }
        }
    });
    let path = sandbox.write("co.json", &example.to_string());
    let args = [
        "list",
        "-m",
        "copyoffload",
        "--providers-file",
        path.to_str().unwrap(),
        "--source-provider",
        "vsphere-copy-offload",
        "--storage-class",
        "sc",
    ];
    let err = usage_error(&sandbox.run(&args));
    for field in [
        "storage_username",
        "storage_password",
        "vantara_storage_id",
        "vantara_storage_port",
        "vantara_hostgroup_id_list",
    ] {
        assert!(err.contains(field), "{field} missing from:\n{err}");
    }
    assert!(err.contains("COPYOFFLOAD_STORAGE_PASSWORD"), "{err}");

    // The environment wins over the file and fills the gaps.
    let sandbox = sandbox
        .env("COPYOFFLOAD_STORAGE_USERNAME", "admin")
        .env("COPYOFFLOAD_STORAGE_PASSWORD", "from-env-secret")
        .env("COPYOFFLOAD_VANTARA_STORAGE_ID", "123")
        .env("COPYOFFLOAD_VANTARA_STORAGE_PORT", "CL1-A")
        .env("COPYOFFLOAD_VANTARA_HOSTGROUP_ID_LIST", "CL1-A,1");
    let out = ok(&sandbox.run(&args));
    assert!(out.contains("TestCopyoffloadThinMigration"));
    let plan_args: Vec<&str> = std::iter::once("plan")
        .chain(args[1..].iter().copied())
        .collect();
    let plan = ok(&sandbox.run(&plan_args));
    assert!(plan.contains("STORAGE_PASSWORD"));
    assert!(!plan.contains("from-env-secret"), "a secret leaked");
    assert!(!plan.contains("file-secret"), "a secret leaked");
}

#[test]
fn copy_offload_with_a_non_vsphere_source_is_an_early_error() {
    let sandbox = Sandbox::new();
    let err =
        usage_error(&sandbox.run(&["list", "-m", "copyoffload", "--source-provider", "ovirt"]));
    assert!(err.contains("vSphere"), "{err}");
    // Not asked for explicitly: skipped with the reason.
    let out = ok(&sandbox.run(&["list", "--source-provider", "ovirt"]));
    assert!(out.contains("copy-offload needs a vSphere source; profile 'ovirt' is ovirt"));
}

#[test]
fn catalog_file_with_an_unknown_key_names_file_and_line() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "extra/mine.yaml",
        "version: 1\nfamily: Mine\nscenarios:\n  - class: TestMine\n    id: one\n    markers: [incremental]\n    config:\n      virtual_machines:\n        - name: mtv-tests-rhel8\n          guest_agnt: true\n",
    );
    let err = usage_error(&sandbox.run(&["list", "--catalog", "extra"]));
    assert!(err.contains("mine.yaml"), "{err}");
    assert!(err.contains("10"), "{err}");
    assert!(err.contains("guest_agnt"), "{err}");
}

#[test]
fn extra_catalog_scenarios_are_listed() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "extra/mine.yaml",
        "version: 1\nfamily: Mine\nscenarios:\n  - class: TestMine\n    id: one\n    markers: [incremental, tier1]\n    config:\n      virtual_machines:\n        - name: mtv-tests-rhel8\n          guest_agent: true\n",
    );
    let out = ok(&sandbox.run(&["list", "--catalog", "extra", "-m", "tier1"]));
    assert!(out.contains("TestMine[one]::test_check_vms\n"), "{out}");
}

#[test]
fn settings_lists_every_key_and_redacts_secrets() {
    let sandbox = Sandbox::new().env("CLUSTER_PASSWORD", "hunter2-from-env");
    let out = ok(&sandbox.run(&[
        "settings",
        "--tc",
        "plan_wait_timeout:1800",
        "--set",
        "mins_before_cutover=1",
    ]));
    for key in [
        "source_provider",
        "storage_class",
        "target_namespace_prefix",
        "mtv_namespace",
        "remote_ocp_cluster",
        "snapshots_interval",
        "mins_before_cutover",
        "plan_wait_timeout",
        "insecure_verify_skip",
        "source_provider_insecure_skip_verify",
    ] {
        assert!(out.contains(key), "{key}");
    }
    assert!(out.contains("1800"));
    assert!(!out.contains("hunter2"), "a secret leaked");
    let json = ok(&sandbox.run(&["settings", "--format", "json"]));
    assert!(!json.contains("hunter2"), "a secret leaked");
    let doc: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["plan_wait_timeout"], 3600);
}

#[test]
fn bad_setting_values_are_usage_errors() {
    let sandbox = Sandbox::new();
    let err = usage_error(&sandbox.run(&["list", "--tc", "plan_wait_timeout:soon"]));
    assert!(err.contains("plan_wait_timeout"), "{err}");
    let err = usage_error(&sandbox.run(&["list", "--tc", "storage_clas:x"]));
    assert!(err.contains("storage_class"), "{err}");
}

#[test]
fn gating_skips_with_the_python_suites_reasons() {
    let sandbox = Sandbox::new();
    let out = ok(&sandbox.run(&["list", "-m", "warm", "--source-provider", "ova"]));
    assert!(out.contains("SKIPPED (ova warm migration is not supported.)"));
    let out = ok(&sandbox.run(&["list", "-m", "remote"]));
    assert!(out.contains("remote_ocp_cluster is not set"));
    let out = ok(&sandbox.run(&["list", "-m", "remote", "--tc", "remote_ocp_cluster:lab"]));
    assert!(!out.contains("SKIPPED"), "{out}");
}

/// Starts `lab serve` as `command` sets it up (its `--kubeconfig-out` being `kubeconfig`) and waits
/// until the kubeconfig is written, the sign that the lab is served; the lab stops when the
/// returned guard is dropped.
async fn serve_lab(mut command: Command, kubeconfig: &Path) -> KillOnDrop {
    let child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("lab serve starts");
    let lab = KillOnDrop::new(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !kubeconfig.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no kubeconfig after 30s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    lab
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_serve_writes_a_kubeconfig_that_reaches_the_simulated_mtv() {
    let sandbox = Sandbox::new();
    let kubeconfig = sandbox.path().join("lab.kubeconfig");
    let mut command = Command::new(BIN);
    command
        .args(["lab", "serve", "--port", "0", "--providers-out"])
        .arg(sandbox.path().join("lab-providers.json"))
        .arg("--kubeconfig-out")
        .arg(&kubeconfig);
    let _child = serve_lab(command, &kubeconfig).await;
    let yaml = std::fs::read_to_string(&kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&yaml).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    // The MTV operator's version is there, and the lab's sources answer on the same port.
    assert_eq!(
        mtv_engine::session::mtv_version(&client, "openshift-mtv")
            .await
            .unwrap()
            .as_deref(),
        Some("2.10.0")
    );
    // And its sources answer on ports of their own, as the providers file it wrote says, under the
    // built-in profiles' names.
    let providers: Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.path().join("lab-providers.json")).unwrap(),
    )
    .unwrap();
    for profile in ["vsphere", "ovirt", "openstack"] {
        let url = providers[profile]["api_url"].as_str().unwrap_or_default();
        assert!(url.starts_with("https://127.0.0.1:"), "{profile}: {url}");
        assert!(
            providers[profile]["cacert"]
                .as_str()
                .is_some_and(|pem| pem.contains("BEGIN CERTIFICATE")),
            "{profile}"
        );
    }
}

#[test]
fn run_tier0_on_the_embedded_lab_passes_and_writes_its_results() {
    let sandbox = Sandbox::new();
    let output = sandbox.run_plain(&["-m", "tier0"]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{out}\n{}", stderr(&output));
    assert!(out.contains("25 passed, 5 skipped"), "{out}");
    let results = sandbox.path().join("out");
    let junit = std::fs::read_to_string(results.join("junit.xml")).unwrap();
    assert!(
        junit.contains(r#"tests="30""#) && junit.contains(r#"failures="0""#),
        "{junit}"
    );
    assert!(junit.contains(r#"name="test_create_storagemap[rhel8]""#));
    let events = std::fs::read_to_string(results.join("events.jsonl")).unwrap();
    assert!(events.lines().count() > 30);
    let html = std::fs::read_to_string(results.join("report.html")).unwrap();
    assert!(
        html.contains("25 passed, 5 skipped") && html.contains("TestSanityColdMtvMigration[rhel8]"),
        "{html}"
    );
    let ledger = ledger(&results);
    assert!(!ledger["entries"].as_array().unwrap().is_empty());
    assert!(kept_entries(&ledger).is_empty(), "{ledger}");
}

#[test]
fn a_failing_migration_exits_1_with_a_diagnostics_bundle() {
    let sandbox = Sandbox::new();
    let output = sandbox.run_plain(&[
        "-m",
        "tier0",
        "-k",
        "SanityWarm",
        "--lab-faults",
        "vm-fail=mtv-tests-rhel8@Cutover",
    ]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}\n{}", stderr(&output));
    assert!(out.contains("failed at Cutover"), "{out}");
    assert!(out.contains("XFAIL"), "{out}");
    let bundle = sandbox
        .path()
        .join("out/TestSanityWarmMtvMigration_rhel8_--test_migrate_vms");
    let files: Vec<String> = std::fs::read_dir(&bundle)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.iter().any(|f| f.starts_with("plan-")), "{files:?}");
    assert!(
        files.iter().any(|f| f.starts_with("migration-")),
        "{files:?}"
    );
    assert!(!files.iter().any(|f| f.contains("secret")), "{files:?}");
}

#[test]
fn ctrl_c_stops_the_run_tears_down_and_exits_130() {
    let sandbox = Sandbox::new();
    let args = [
        &["run", "-m", "tier0", "--lab-speed", "0.2"],
        PLAIN_INTO_OUT.as_slice(),
    ]
    .concat();
    let child = mtv_tests_command(sandbox.path(), &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mtv-tests runs");
    let child = KillOnDrop::new(child);
    // Interrupt once the migrations run, so there is something to cancel and tear down.
    wait_for_text(
        &sandbox.path().join("out/resources.json"),
        "\"Migration\"",
        std::time::Duration::from_secs(60),
    );
    send_signal(child.id(), "INT");
    assert_eq!(child.wait_with_output().status.code(), Some(130));
    let ledger = ledger(&sandbox.path().join("out"));
    let left = kept_entries(&ledger);
    assert!(left.is_empty(), "not torn down: {left:#?}");
}

#[test]
fn a_source_that_refuses_the_credentials_stops_the_run_at_once() {
    let sandbox = Sandbox::new();
    sandbox.write(
        ".providers.json",
        r#"{"vs": {"type": "vsphere", "version": "8.0.3", "fqdn": "vcenter.lab.mtv-tests.internal",
            "api_url": "https://vcenter.lab.mtv-tests.internal/sdk",
            "username": "administrator@vsphere.local", "password": "wrong-password"}}"#,
    );
    let started = std::time::Instant::now();
    let output = sandbox.run_plain(&[
        "-m",
        "tier0",
        "-k",
        "SanityCold",
        "--source-provider",
        "vs",
        "--storage-class",
        "lab-ceph-rbd",
    ]);
    let out = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{out}\n{}", stderr(&output));
    // The vSphere adapter's own error, naming the profile (the Provider such a Secret makes goes
    // ConnectionAuthFailed: crates/mtv-providers/tests/connect.rs).
    assert!(out.contains("refused the user name or password"), "{out}");
    assert!(out.contains("profile 'vs'"), "{out}");
    assert!(out.contains("session bootstrap failed"), "{out}");
    assert!(!out.contains("wrong-password"), "a secret leaked: {out}");
    // "At once": far below the 600 s a Provider may take to become Ready.
    assert!(started.elapsed() < std::time::Duration::from_secs(120));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_teardown_then_clean_against_a_served_lab_leaves_it_empty() {
    let lab = ServedLab::start_for_runs("4", "");
    let run = mtv_tests(
        lab.path(),
        &as_strs(&lab.run_args(&SANITY_COLD, &["--skip-teardown"])),
    );
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&run),
        stderr(&run)
    );
    assert!(stderr(&run).contains("mtv-tests clean --ledger"));

    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&std::fs::read_to_string(&lab.kubeconfig).unwrap())
                .unwrap(),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let plans = || async {
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::all_with(
            client.clone(),
            &mtv_engine::cluster::kinds::PLAN.api_resource(),
        );
        api.list(&Default::default()).await.unwrap().items.len()
    };
    assert_eq!(plans().await, 1, "skip-teardown kept the Plan");

    let clean = lab.clean(&[]);
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&clean),
        stderr(&clean)
    );
    assert!(stdout(&clean).contains("nothing left"));
    assert_eq!(plans().await, 0);
    let (names, _) = session_objects(&lab.kubeconfig).await;
    assert_eq!(names, ["default", "kube-system", "openshift-mtv"]);
}

/// `mtv-tests lab serve` as a person uses it: without a token the API answers 401 (Python's urllib,
/// trusting only the CA of the written kubeconfig), and kubectl with that kubeconfig is the cluster admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_lab_needs_a_token_and_its_kubeconfig_carries_ca_and_admin_token() {
    let Some(kubectl) = mtv_test_peers::kubectl() else {
        return;
    };
    let sandbox = Sandbox::new();
    let kubeconfig = sandbox.path().join("lab.kubeconfig");
    let mut command = Command::new(BIN);
    command
        .args(["lab", "serve", "--port", "0", "--kubeconfig-out"])
        .arg(&kubeconfig);
    let _lab = serve_lab(command, &kubeconfig).await;
    let config =
        kube::config::Kubeconfig::from_yaml(&std::fs::read_to_string(&kubeconfig).unwrap())
            .unwrap();
    let cluster = config.clusters[0].cluster.clone().unwrap();
    let server = cluster.server.unwrap();
    assert!(server.starts_with("https://127.0.0.1:"), "{server}");
    let ca_data = cluster.certificate_authority_data.unwrap();
    let script = r#"
import base64, ssl, sys, urllib.request, urllib.error
server, ca = sys.argv[1], base64.b64decode(sys.argv[2]).decode()
context = ssl.create_default_context(cadata=ca)
try:
    urllib.request.urlopen(server + "/api/v1/namespaces/openshift-mtv/secrets", context=context)
    print("no token: allowed")
except urllib.error.HTTPError as error:
    print("no token:", error.code)
"#;
    // The lab is another process: blocking here holds nothing up.
    let out = mtv_test_peers::run_python_ok(script, &[&server, &ca_data], &[]);
    assert_eq!(out.trim(), "no token: 401");
    let can_i = std::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["auth", "can-i", "list", "secrets", "-n", "openshift-mtv"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert_eq!(stdout(&can_i).trim(), "yes", "{}", stderr(&can_i));
}

#[test]
fn run_with_format_json_streams_the_event_log() {
    let sandbox = Sandbox::new();
    let output = sandbox.run(&[
        "run",
        "-m",
        "tier0",
        "-k",
        "SanityCold",
        "--format",
        "json",
        "--results",
        "out",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let events: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON event per line"))
        .collect();
    assert_eq!(events[0]["event"], "log_started");
    let passed = events
        .iter()
        .filter(|e| e["event"] == "step_finished" && e["outcome"] == "passed")
        .count();
    assert_eq!(passed, 5);
    assert_eq!(events.last().unwrap()["event"], "session_finished");
}

/// The selected items of `list --format json`.
fn selected_ids(list_json: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(list_json).expect("JSON");
    doc["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item["outcome"] == "selected")
        .map(|item| item["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn last_failed_reruns_only_what_failed_until_nothing_is_left() {
    let sandbox = Sandbox::new();
    let first = sandbox.run_plain(&[
        "-m",
        "tier0",
        "-k",
        "Sanity",
        "--lab-faults",
        "vm-fail=mtv-tests-rhel8@Cutover",
    ]);
    assert_eq!(first.status.code(), Some(1), "{}", stdout(&first));
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.path().join("out/rerun.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["version"], 1);
    assert_eq!(state["source_provider"], "vsphere");
    assert_eq!(
        state["failed"],
        serde_json::json!(["TestSanityWarmMtvMigration[rhel8]"])
    );

    // The preview shows exactly the failed scenario's steps.
    let listed = ok(&sandbox.run(&[
        "list",
        "--last-failed",
        "out/rerun.json",
        "--format",
        "json",
    ]));
    let ids = selected_ids(&listed);
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(
        ids.iter()
            .all(|id| id.starts_with("TestSanityWarmMtvMigration[rhel8]::")),
        "{ids:?}"
    );

    // Rerun it without the fault: it passes, and nothing is left to rerun.
    let rerun = sandbox.run_plain(&["--lf", "out/rerun.json"]);
    let out = stdout(&rerun);
    assert_eq!(rerun.status.code(), Some(0), "{out}\n{}", stderr(&rerun));
    assert!(out.contains("5 passed in"), "{out}");
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.path().join("out/rerun.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["failed"], serde_json::json!([]));

    // Nothing failed: nothing runs, and nothing is created on the cluster.
    let nothing = sandbox.run(&[
        "run",
        "--last-failed",
        "out/rerun.json",
        "--no-progress",
        "--results",
        "again",
    ]);
    assert_eq!(nothing.status.code(), Some(0), "{}", stderr(&nothing));
    assert!(
        stderr(&nothing).contains("no scenario failed last time; nothing to rerun"),
        "{}",
        stderr(&nothing)
    );
    let ledger = ledger(&sandbox.path().join("again"));
    assert_eq!(ledger["entries"], serde_json::json!([]), "{ledger}");
}

#[test]
fn last_failed_needs_a_rerun_state_of_the_same_source_provider() {
    let sandbox = Sandbox::new();
    let missing = usage_error(&sandbox.run(&["list", "--last-failed"]));
    assert!(
        missing.contains("--last-failed") && missing.contains("results/rerun.json"),
        "{missing}"
    );
    sandbox.write(
        "results/rerun.json",
        r#"{"version": 1, "source_provider": "ovirt", "failed": ["TestSanityWarmMtvMigration[rhel8]"]}"#,
    );
    let other =
        usage_error(&sandbox.run(&["list", "--last-failed", "--source-provider", "vsphere"]));
    assert!(
        other.contains("source provider 'ovirt'") && other.contains("--source-provider ovirt"),
        "{other}"
    );
    let listed = ok(&sandbox.run(&[
        "list",
        "--lf",
        "--source-provider",
        "ovirt",
        "--format",
        "json",
    ]));
    assert_eq!(selected_ids(&listed).len(), 5);
}
