//! The lab refuses what a real API server refuses, with the same codes and messages: each rule proved with
//! real kubectl and the Python `kubernetes` client (the test peers of `scripts/install-test-deps.sh`)
//! against a started lab. `MTV_SKIP_KUBECTL_TESTS=1` skips only the kubectl halves.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use mtv_lab::{LabOptions, LabServer};

/// A started lab with its kubeconfig on disk, and kubectl when the kubectl peer is not skipped.
struct Fixture {
    lab: LabServer,
    dir: PathBuf,
    _scratch: ScratchDir,
    kubectl: Option<PathBuf>,
}

impl Fixture {
    /// The API server alone (no simulated Forklift).
    async fn bare() -> Self {
        Self::start(LabOptions {
            forklift: false,
            ..LabOptions::default()
        })
        .await
    }

    async fn start(options: LabOptions) -> Self {
        let lab = LabServer::start(options).await.expect("lab starts");
        let dir = std::env::temp_dir().join(format!(
            "mtv-lab-fidelity-{}",
            mtv_lab::random::name_suffix(10)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        lab.write_kubeconfig(&dir.join("kubeconfig")).unwrap();
        Self {
            lab,
            _scratch: ScratchDir(dir.clone()),
            dir,
            kubectl: mtv_test_peers::kubectl(),
        }
    }

    fn kubeconfig(&self) -> String {
        self.dir.join("kubeconfig").display().to_string()
    }

    async fn kubectl_run(&self, binary: &PathBuf, args: &[&str], stdin: Option<&str>) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut cmd = tokio::process::Command::new(binary);
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("kubectl starts");
        let mut input = child.stdin.take().expect("piped stdin");
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .await
            .unwrap();
        drop(input);
        tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} took over 60s"))
            .expect("kubectl runs")
    }

    /// kubectl that must succeed; `None` when kubectl tests are skipped.
    async fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> Option<String> {
        let binary = self.kubectl.as_ref()?;
        let out = self.kubectl_run(binary, args, stdin).await;
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// kubectl that must fail; its stderr, or `None` when kubectl tests are skipped.
    async fn kubectl_fails(&self, args: &[&str], stdin: Option<&str>) -> Option<String> {
        let binary = self.kubectl.as_ref()?;
        let out = self.kubectl_run(binary, args, stdin).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        Some(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Creates `manifest` with kubectl; false when kubectl tests are skipped.
    async fn kubectl_create(&self, manifest: &str) -> bool {
        self.kubectl_ok(&["create", "-f", "-"], Some(manifest))
            .await
            .is_some()
    }

    /// kubectl that must fail with `expected` in its stderr; nothing when kubectl tests are skipped.
    async fn kubectl_refused(&self, args: &[&str], stdin: Option<&str>, expected: &str) {
        if let Some(err) = self.kubectl_fails(args, stdin).await {
            assert!(err.contains(expected), "{err}");
        }
    }

    /// Runs a Python peer script with the kubeconfig's path as `sys.argv[1]`; the script prints `ok`.
    fn python(&self, script: &str) {
        let script = format!("{PYTHON_PRELUDE}\n{script}\nprint('ok')\n");
        let kubeconfig = self.kubeconfig();
        let out = tokio::task::block_in_place(|| {
            mtv_test_peers::run_python_ok(&script, &[&kubeconfig], &[])
        });
        assert!(out.trim_end().ends_with("ok"), "{out}");
    }
}

/// The fixture's scratch directory, removed when the test ends (also on failure).
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Shared by every Python peer script: clients from the lab's kubeconfig, and `refused(status, call)`,
/// which runs a call that must fail with that HTTP status and returns the decoded `Status` body.
const PYTHON_PRELUDE: &str = r#"
import json, sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException
config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
custom = client.CustomObjectsApi()
FORKLIFT = ("forklift.konveyor.io", "v1beta1")

def refused(status, call):
    try:
        call()
    except ApiException as e:
        assert e.status == status, (e.status, e.body)
        return json.loads(e.body)
    raise AssertionError("the call succeeded; expected HTTP %d" % status)

def raw_patch(path, content_type, body, **query):
    """A PATCH with any content type (the generated methods fix theirs)."""
    api = client.ApiClient()
    return api.call_api(path, "PATCH", query_params=list(query.items()),
                        header_params={"Content-Type": content_type, "Accept": "application/json"},
                        body=body, auth_settings=["BearerToken"], _preload_content=False)

def hook(name, **spec):
    spec.setdefault("image", "quay.io/konveyor/hook-runner")
    return {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Hook",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}
"#;

/// A Hook without resourceVersion, as JSON (`kubectl replace --raw` sends the file's bytes unchanged).
const RAW_HOOK: &str = r#"{"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Hook",
  "metadata": {"name": "pre", "namespace": "default"}, "spec": {"image": "quay.io/konveyor/hook-runner:v2"}}"#;

const LABEL_KEY_RULE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_labels_annotations_and_names_are_422_with_causes() {
    let f = Fixture::bare().await;
    let bad_label = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: labelled\n  namespace: default\n  labels:\n    bad key: v\n";
    let invalid_label = format!(
        "The ConfigMap \"labelled\" is invalid: metadata.labels: Invalid value: \"bad key\": {LABEL_KEY_RULE}"
    );
    f.kubectl_refused(&["create", "-f", "-"], Some(bad_label), &invalid_label)
        .await;
    let bad_service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: 1st-service\n  namespace: default\nspec:\n  ports:\n  - port: 80\n";
    let invalid_name = "The Service \"1st-service\" is invalid: metadata.name: Invalid value: \"1st-service\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character";
    f.kubectl_refused(&["create", "-f", "-"], Some(bad_service), invalid_name)
        .await;
    f.python(&format!(
        r#"
rule = {LABEL_KEY_RULE:?}
body = refused(422, lambda: core.create_namespaced_config_map("default", {{
    "metadata": {{"name": "c", "labels": {{"ok": "bad value!", "bad key": "v"}}}}}}))
assert body["reason"] == "Invalid", body
causes = body["details"]["causes"]
assert all(c["field"] == "metadata.labels" and c["reason"] == "FieldValueInvalid" for c in causes), causes
assert any(c["message"] == 'Invalid value: "bad key": ' + rule for c in causes), causes
assert any(c["message"].startswith('Invalid value: "bad value!": a valid label must be an empty string') for c in causes), causes

body = refused(422, lambda: core.create_namespaced_config_map("default", {{
    "metadata": {{"name": "big", "annotations": {{"k": "x" * (256 * 1024)}}}}}}))
assert body["details"]["causes"] == [{{"reason": "FieldValueTooLong", "field": "metadata.annotations",
    "message": "Too long: may not be more than 262144 bytes"}}], body
body = refused(422, lambda: core.create_namespaced_config_map("default", {{
    "metadata": {{"name": "c", "annotations": {{"/nope": "x"}}}}}}))
assert body["details"]["causes"][0]["message"] == 'Invalid value: "/nope": prefix part must be non-empty', body

body = refused(422, lambda: custom.create_namespaced_custom_object(*FORKLIFT, "default", "hooks", hook("Bad_Name")))
assert body["message"].startswith('Hook.forklift.konveyor.io "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'), body
core.create_namespaced_config_map("default", {{"metadata": {{"name": "fine.dotted-name", "labels": {{"example.com/tier": "front_end-1", "empty": ""}}}}}})
"#
    ));
    f.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_without_resource_version_is_refused_for_custom_resources_only() {
    let f = Fixture::bare().await;
    let hook = "apiVersion: forklift.konveyor.io/v1beta1\nkind: Hook\nmetadata:\n  name: pre\n  namespace: default\nspec:\n  image: quay.io/konveyor/hook-runner\n";
    let replaced = hook.replace("hook-runner", "hook-runner:v2");
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  a: \"1\"\n";
    if f.kubectl_create(hook).await {
        // `kubectl replace` fills in the current resourceVersion itself when the file has none; `--raw`
        // sends the file as it is.
        let path = "/apis/forklift.konveyor.io/v1beta1/namespaces/default/hooks/pre";
        f.kubectl_refused(
            &["replace", "--raw", path, "-f", "-"],
            Some(RAW_HOOK),
            "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
        )
        .await;
        f.kubectl_ok(&["replace", "-f", "-"], Some(&replaced)).await;
        f.kubectl_ok(&["create", "-f", "-"], Some(cm)).await;
        f.kubectl_ok(&["replace", "-f", "-"], Some(&cm.replace("\"1\"", "\"2\"")))
            .await;
    }
    f.python(
        r#"
custom.create_namespaced_custom_object(*FORKLIFT, "default", "hooks", hook("py"))
body = refused(422, lambda: custom.replace_namespaced_custom_object(*FORKLIFT, "default", "hooks", "py", hook("py", image="other")))
assert body["message"] == 'hooks.forklift.konveyor.io "py" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update', body
assert body["details"] == {"name": "py", "group": "forklift.konveyor.io", "kind": "hooks", "causes": [
    {"reason": "FieldValueInvalid", "message": "Invalid value: 0x0: must be specified for an update", "field": "metadata.resourceVersion"}]}, body
current = custom.get_namespaced_custom_object(*FORKLIFT, "default", "hooks", "py")
current["spec"]["image"] = "other"
custom.replace_namespaced_custom_object(*FORKLIFT, "default", "hooks", "py", current)
core.create_namespaced_config_map("default", {"metadata": {"name": "blind"}, "data": {"a": "1"}})
replaced = core.replace_namespaced_config_map("blind", "default", {"metadata": {"name": "blind"}, "data": {"a": "2"}})
assert replaced.data == {"a": "2"}
"#,
    );
    f.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_selectors_on_unsupported_fields_are_400() {
    let f = Fixture::bare().await;
    if let Some(err) = f
        .kubectl_fails(&["get", "hooks", "--field-selector", "spec.image=x"], None)
        .await
    {
        assert!(
            err.contains("field selector \"spec.image=x\": field label not supported: spec.image"),
            "{err}"
        );
        let only_metadata = "\"data.a\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"";
        f.kubectl_refused(
            &["get", "cm", "--field-selector", "data.a=1"],
            None,
            only_metadata,
        )
        .await;
        f.kubectl_ok(
            &[
                "get",
                "pods",
                "-A",
                "--field-selector",
                "status.phase=Running",
            ],
            None,
        )
        .await;
        f.kubectl_ok(
            &["get", "hooks", "-A", "--field-selector", "metadata.name=x"],
            None,
        )
        .await;
    }
    f.python(
        r#"
body = refused(400, lambda: custom.list_namespaced_custom_object(*FORKLIFT, "default", "hooks", field_selector="spec.image=x"))
assert body["reason"] == "BadRequest" and body["message"] == "field label not supported: spec.image", body
body = refused(400, lambda: core.list_namespace(field_selector="metadata.namespace=x"))
assert body["message"] == "field label not supported: metadata.namespace", body
core.list_namespace(field_selector="status.phase=Active")
core.list_pod_for_all_namespaces(field_selector="spec.nodeName=worker-0", _preload_content=False)
"#,
    );
    f.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_merge_patch_of_a_custom_resource_is_415() {
    let f = Fixture::bare().await;
    let hook = "apiVersion: forklift.konveyor.io/v1beta1\nkind: Hook\nmetadata:\n  name: pre\n  namespace: default\nspec:\n  image: a\n";
    let accepted = "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";
    if f.kubectl_create(hook).await {
        let refused = format!(
            "application/strategic-merge-patch+json is not supported by forklift.konveyor.io/v1beta1, Kind=Hook: {accepted}"
        );
        f.kubectl_refused(
            &[
                "patch",
                "hook",
                "pre",
                "-n",
                "default",
                "-p",
                r#"{"spec":{"image":"b"}}"#,
            ],
            None,
            &refused,
        )
        .await;
        f.kubectl_ok(
            &[
                "patch",
                "hook",
                "pre",
                "-n",
                "default",
                "--type",
                "merge",
                "-p",
                r#"{"spec":{"image":"b"}}"#,
            ],
            None,
        )
        .await;
        f.kubectl_ok(&["create", "configmap", "smp", "-n", "default"], None)
            .await;
        f.kubectl_ok(
            &[
                "patch",
                "cm",
                "smp",
                "-n",
                "default",
                "-p",
                r#"{"data":{"a":"1"}}"#,
            ],
            None,
        )
        .await;
    }
    f.python(&format!(
        r#"
custom.create_namespaced_custom_object(*FORKLIFT, "default", "hooks", hook("py"))
def smp(path):
    return raw_patch(path, "application/strategic-merge-patch+json", {{"metadata": {{"labels": {{"a": "b"}}}}}})
body = refused(415, lambda: smp("/apis/forklift.konveyor.io/v1beta1/namespaces/default/hooks/py"))
assert body["reason"] == "UnsupportedMediaType" and body["message"] == {accepted:?}, body
core.create_namespaced_config_map("default", {{"metadata": {{"name": "py-smp"}}}})
smp("/api/v1/namespaces/default/configmaps/py-smp")
assert core.read_namespaced_config_map("py-smp", "default").metadata.labels == {{"a": "b"}}
"#
    ));
    f.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forklift_webhook_denials_are_400_from_forklifts_webhooks() {
    let f = Fixture::start(LabOptions::default()).await;
    let plan = "apiVersion: forklift.konveyor.io/v1beta1\nkind: Plan\nmetadata:\n  name: orphan-plan\n  namespace: openshift-mtv\nspec:\n  targetNamespace: default\n  provider:\n    source: {name: missing, namespace: openshift-mtv}\n    destination: {name: host, namespace: openshift-mtv}\n  map:\n    storage: {name: store-map, namespace: openshift-mtv}\n    network: {name: net-map, namespace: openshift-mtv}\n  vms:\n  - name: vm\n";
    if let Some(err) = f.kubectl_fails(&["create", "-f", "-"], Some(plan)).await {
        // A 400 without reason: kubectl names no reason (a 403 would say "(Forbidden)").
        assert!(
            err.contains("Error from server: ")
                && err.contains("admission webhook \"plans.forklift.konveyor\" denied the request: providers.forklift.konveyor.io \"missing\" not found")
                && !err.contains("Forbidden"),
            "{err}"
        );
    }
    f.python(
        r#"
migration = {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Migration",
             "metadata": {"name": "m", "namespace": "openshift-mtv"},
             "spec": {"plan": {"name": "nope", "namespace": "openshift-mtv"}}}
body = refused(400, lambda: custom.create_namespaced_custom_object(*FORKLIFT, "openshift-mtv", "migrations", migration))
assert body["message"] == 'admission webhook "migrations.forklift.konveyor" denied the request: plans.forklift.konveyor.io "nope" not found', body
assert "reason" not in body, body
provider = {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Provider",
            "metadata": {"name": "vs", "namespace": "openshift-mtv"},
            "spec": {"type": "vsphere", "url": "https://vcenter.example/sdk", "settings": {"sdkEndpoint": "vc"},
                     "secret": {"name": "s", "namespace": "openshift-mtv"}}}
body = refused(400, lambda: custom.create_namespaced_custom_object(*FORKLIFT, "openshift-mtv", "providers", provider))
assert body["message"] == 'admission webhook "providers.forklift.konveyor" denied the request: vSphere provider is set with an invalid SDK endpoint type', body
"#,
    );
    f.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_with_fields_an_update_set() {
    let f = Fixture::bare().await;
    let created = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n  namespace: default\ndata:\n  key: one\n";
    let applied = created.replace("one", "two");
    if f.kubectl_create(created).await {
        f.kubectl_refused(
            &["apply", "--server-side", "-f", "-"],
            Some(&applied),
            "Apply failed with 1 conflict: conflict with \"kubectl-create\" using v1: .data.key",
        )
        .await;
        f.kubectl_ok(
            &["apply", "--server-side", "--force-conflicts", "-f", "-"],
            Some(&applied),
        )
        .await;
        let fields = f
            .kubectl_ok(
                &[
                    "get",
                    "cm",
                    "owned",
                    "-n",
                    "default",
                    "--show-managed-fields",
                    "-o",
                    "jsonpath={.metadata.managedFields[*].manager}",
                ],
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            fields.trim(),
            "kubectl",
            "the forced apply took the only field"
        );
    }
    f.python(
        r#"
core.create_namespaced_config_map("default", {"metadata": {"name": "py-owned"}, "data": {"key": "one", "other": "x"}})
entries = core.read_namespaced_config_map("py-owned", "default").metadata.managed_fields
assert [(e.manager, e.operation) for e in entries] == [("OpenAPI-Generator", "Update")], entries
assert entries[0].fields_v1 == {"f:data": {"f:key": {}, "f:other": {}}}, entries[0].fields_v1
core.patch_namespaced_config_map("py-owned", "default", {"data": {"other": "y"}}, field_manager="editor")
entries = core.read_namespaced_config_map("py-owned", "default").metadata.managed_fields
assert {e.manager: e.fields_v1 for e in entries} == {
    "OpenAPI-Generator": {"f:data": {"f:key": {}}}, "editor": {"f:data": {"f:other": {}}}}, entries
apply = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py-owned"}, "data": {"key": "two", "other": "z"}}
path = "/api/v1/namespaces/default/configmaps/py-owned"
body = refused(409, lambda: raw_patch(path, "application/apply-patch+yaml", apply, fieldManager="applier"))
assert body["reason"] == "Conflict", body
assert body["message"] == 'Apply failed with 2 conflicts: conflicts with "OpenAPI-Generator" using v1:\n- .data.key\nconflicts with "editor" using v1:\n- .data.other', body
assert sorted((c["field"], c["message"]) for c in body["details"]["causes"]) == [
    (".data.key", 'conflict with "OpenAPI-Generator" using v1'), (".data.other", 'conflict with "editor" using v1')], body
same = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py-owned"}, "data": {"key": "one"}}
raw_patch(path, "application/apply-patch+yaml", same, fieldManager="applier")
raw_patch(path, "application/apply-patch+yaml", apply, fieldManager="applier", force="true")
assert core.read_namespaced_config_map("py-owned", "default").data == {"key": "two", "other": "z"}
"#,
    );
    f.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_deletion_removes_the_owner_reference_from_dependents() {
    let f = Fixture::bare().await;
    let setup = |prefix: &str| {
        format!(
            r#"
owner = core.create_namespaced_config_map("default", {{"metadata": {{"name": "{prefix}-owner"}}}})
for child in ("{prefix}-child", "{prefix}-other"):
    core.create_namespaced_config_map("default", {{"metadata": {{"name": child, "ownerReferences": [
        {{"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid}}]}}}})
"#
        )
    };
    if f.kubectl.is_some() {
        f.python(&setup("kc"));
        f.kubectl_ok(
            &[
                "delete",
                "cm",
                "kc-owner",
                "-n",
                "default",
                "--cascade=orphan",
            ],
            None,
        )
        .await;
        let refs = f
            .kubectl_ok(
                &[
                    "get",
                    "cm",
                    "kc-child",
                    "-n",
                    "default",
                    "-o",
                    "jsonpath={.metadata.ownerReferences}",
                ],
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            refs.trim(),
            "",
            "the orphan keeps no reference to its deleted owner"
        );
    }
    f.python(&format!(
        r#"{}
core.delete_namespaced_config_map("py-owner", "default", propagation_policy="Orphan")
for child in ("py-child", "py-other"):
    assert core.read_namespaced_config_map(child, "default").metadata.owner_references is None
{}
core.delete_namespaced_config_map("bg-owner", "default", propagation_policy="Background")
import time
for _ in range(50):
    names = [c.metadata.name for c in core.list_namespaced_config_map("default").items]
    if "bg-child" not in names:
        break
    time.sleep(0.1)
assert "bg-child" not in names and "bg-other" not in names, names
"#,
        setup("py"),
        setup("bg")
    ));
    f.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_waits_only_for_blocking_dependents() {
    let f = Fixture::bare().await;
    // Each owner has a dependent held by a finalizer; only a blocking one holds the owner back.
    let setup = |prefix: &str, block: bool| {
        let block = if block { "True" } else { "False" };
        format!(
            r#"
owner = core.create_namespaced_config_map("default", {{"metadata": {{"name": "{prefix}-owner"}}}})
core.create_namespaced_config_map("default", {{"metadata": {{"name": "{prefix}-held", "finalizers": ["example.com/hold"],
    "ownerReferences": [{{"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid,
                         "blockOwnerDeletion": {block}}}]}}}})
"#
        )
    };
    if f.kubectl.is_some() {
        f.python(&setup("kc", true));
        f.kubectl_ok(
            &[
                "delete",
                "cm",
                "kc-owner",
                "-n",
                "default",
                "--cascade=foreground",
                "--wait=false",
            ],
            None,
        )
        .await;
        let finalizers = f
            .kubectl_ok(
                &[
                    "get",
                    "cm",
                    "kc-owner",
                    "-n",
                    "default",
                    "-o",
                    "jsonpath={.metadata.finalizers}",
                ],
                None,
            )
            .await
            .unwrap();
        assert!(finalizers.contains("foregroundDeletion"), "{finalizers}");
    }
    f.python(&format!(
        r#"{}{}
names = lambda: {{c.metadata.name for c in core.list_namespaced_config_map("default").items}}
core.delete_namespaced_config_map("free-owner", "default", propagation_policy="Foreground")
assert "free-owner" not in names(), "a non-blocking dependent does not hold its owner"
assert core.read_namespaced_config_map("free-held", "default").metadata.deletion_timestamp is not None
core.delete_namespaced_config_map("blocked-owner", "default", propagation_policy="Foreground")
owner = core.read_namespaced_config_map("blocked-owner", "default")
assert owner.metadata.deletion_timestamp is not None and "foregroundDeletion" in owner.metadata.finalizers
core.patch_namespaced_config_map("blocked-held", "default", {{"metadata": {{"finalizers": None}}}})
assert not {{"blocked-owner", "blocked-held"}} & names(), names()
"#,
        setup("free", false),
        setup("blocked", true)
    ));
    f.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_config_maps_and_secrets_refuse_data_changes() {
    let f = Fixture::bare().await;
    let frozen = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\n  namespace: default\nimmutable: true\ndata:\n  a: \"1\"\n";
    if f.kubectl_create(frozen).await {
        let immutable = "The ConfigMap \"frozen\" is invalid: data: Forbidden: field is immutable when `immutable` is set";
        f.kubectl_refused(
            &[
                "patch",
                "cm",
                "frozen",
                "-n",
                "default",
                "--type",
                "merge",
                "-p",
                r#"{"data":{"a":"2"}}"#,
            ],
            None,
            immutable,
        )
        .await;
        f.kubectl_ok(
            &[
                "label",
                "cm",
                "frozen",
                "-n",
                "default",
                "metadata-still=changes",
            ],
            None,
        )
        .await;
    }
    f.python(
        r#"
core.create_namespaced_secret("default", {"metadata": {"name": "sealed"}, "immutable": True, "stringData": {"k": "v"}})
body = refused(422, lambda: core.patch_namespaced_secret("sealed", "default", {"stringData": {"k": "w"}}))
assert body["details"]["causes"] == [{"reason": "FieldValueForbidden", "field": "data",
    "message": "Forbidden: field is immutable when `immutable` is set"}], body
body = refused(422, lambda: core.patch_namespaced_secret("sealed", "default", {"type": "kubernetes.io/tls"}))
assert body["details"]["causes"][0]["field"] == "type", body
"#,
    );
    f.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_deployments_and_openapi_are_served() {
    let f = Fixture::start(LabOptions::default()).await;
    if let Some(out) = f.kubectl_ok(&["get", "crd"], None).await {
        let header = out.lines().next().unwrap_or_default();
        assert!(
            header.starts_with("NAME") && header.contains("CREATED AT"),
            "{out}"
        );
        for crd in [
            "plans.forklift.konveyor.io",
            "virtualmachines.kubevirt.io",
            "datavolumes.cdi.kubevirt.io",
            "network-attachment-definitions.k8s.cni.cncf.io",
        ] {
            assert!(
                out.lines().any(|l| l.starts_with(crd)),
                "{crd} missing:\n{out}"
            );
        }
        let out = f
            .kubectl_ok(&["get", "deploy", "-n", "openshift-mtv"], None)
            .await
            .unwrap();
        for deployment in ["forklift-controller", "forklift-api"] {
            assert!(out.lines().any(|l| l.starts_with(deployment)), "{out}");
        }
        let explained = f
            .kubectl_ok(&["explain", "plans.spec.targetNamespace"], None)
            .await
            .unwrap();
        assert!(
            explained.contains("FIELD: targetNamespace <string>"),
            "{explained}"
        );
        let v2 = f
            .kubectl_ok(&["get", "--raw", "/openapi/v2"], None)
            .await
            .unwrap();
        assert!(
            v2.contains("\"io.konveyor.forklift.v1beta1.Plan\""),
            "{}",
            &v2[..200.min(v2.len())]
        );
    }
    f.python(
        r#"
ext = client.ApiextensionsV1Api()
crd = ext.read_custom_resource_definition("plans.forklift.konveyor.io")
assert crd.spec.scope == "Namespaced" and crd.spec.names.kind == "Plan", crd.spec
assert "vms" in crd.spec.versions[0].schema.open_apiv3_schema.properties["spec"].properties
assert any(c.type == "Established" and c.status == "True" for c in crd.status.conditions)
names = {c.metadata.name for c in ext.list_custom_resource_definition().items}
assert {"migrations.forklift.konveyor.io", "virtualmachineinstances.kubevirt.io", "subscriptions.operators.coreos.com"} <= names, names
body = refused(422, lambda: ext.replace_custom_resource_definition("plans.forklift.konveyor.io",
    {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
     "metadata": {"name": "plans.forklift.konveyor.io"}, "spec": crd.to_dict()["spec"]}))
assert "must be specified for an update" in body["message"], body
wrong = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
         "metadata": {"name": "widget.example.com"},
         "spec": {"group": "example.com", "scope": "Namespaced",
                  "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                  "versions": [{"name": "v1", "served": True, "storage": True,
                                "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
body = refused(422, lambda: ext.create_custom_resource_definition(wrong))
assert body["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "metadata.name",
    "message": 'Invalid value: "widget.example.com": must be spec.names.plural+"."+spec.group'}], body
apps = client.AppsV1Api()
deployment = apps.read_namespaced_deployment("forklift-controller", "openshift-mtv")
assert deployment.status.available_replicas == 1
assert [c.name for c in deployment.spec.template.spec.containers] == ["main", "inventory"]
v2 = client.ApiClient().call_api("/openapi/v2", "GET", header_params={"Accept": "application/json"},
                                 auth_settings=["BearerToken"], _preload_content=False)[0]
doc = json.loads(v2.data)
assert doc["swagger"] == "2.0"
assert doc["definitions"]["io.konveyor.forklift.v1beta1.Plan"]["x-kubernetes-group-version-kind"] == [
    {"group": "forklift.konveyor.io", "version": "v1beta1", "kind": "Plan"}]
"#,
    );
    f.lab.shutdown().await;
}

/// A Pod with a field Kubernetes does not know (`spec.bogus`).
const POD_WITH_UNKNOWN_FIELD: &str = r#"{"apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "odd", "namespace": "default"},
  "spec": {"bogus": true, "containers": [{"name": "main", "image": "registry.example/app:1"}]}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_kinds_have_kubernetes_schemas_for_explain_and_strict_validation() {
    let f = Fixture::bare().await;
    if let Some(explained) = f
        .kubectl_ok(&["explain", "pod.spec.containers"], None)
        .await
    {
        assert!(
            explained.contains("FIELD: containers <[]Container>"),
            "{explained}"
        );
        assert!(
            explained
                .lines()
                .any(|l| l.trim_start().starts_with("image") && l.contains("<string>")),
            "{explained}"
        );
        assert!(
            explained
                .lines()
                .any(|l| l.trim_start().starts_with("name") && l.contains("-required-")),
            "{explained}"
        );
        let explained = f
            .kubectl_ok(&["explain", "deployment.spec.strategy"], None)
            .await
            .unwrap();
        assert!(explained.contains("rollingUpdate"), "{explained}");
        let explained = f
            .kubectl_ok(&["explain", "clusterrole.rules.verbs"], None)
            .await
            .unwrap();
        assert!(explained.contains("FIELD: verbs <[]string>"), "{explained}");
        let refused = f
            .kubectl_fails(
                &["create", "--validate=strict", "-f", "-"],
                Some(POD_WITH_UNKNOWN_FIELD),
            )
            .await
            .unwrap();
        assert!(
            refused.contains(
                r#"Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.bogus""#
            ),
            "{refused}"
        );
        let warned = f
            .kubectl_run(
                f.kubectl.as_ref().unwrap(),
                &["create", "--validate=warn", "-f", "-"],
                Some(POD_WITH_UNKNOWN_FIELD),
            )
            .await;
        assert!(warned.status.success(), "{warned:?}");
        assert!(
            String::from_utf8_lossy(&warned.stderr).contains(r#"unknown field "spec.bogus""#),
            "{warned:?}"
        );
        let stored = f
            .kubectl_ok(&["get", "pod", "odd", "-o", "json"], None)
            .await
            .unwrap();
        assert!(!stored.contains("bogus"), "{stored}");
    }
    f.python(
        r##"
def raw_get(path):
    response = client.ApiClient().call_api(path, "GET", header_params={"Accept": "application/json"},
                                           auth_settings=["BearerToken"], _preload_content=False)[0]
    return json.loads(response.data)

v1 = raw_get("/openapi/v3/api/v1")["components"]["schemas"]
pod = v1["io.k8s.api.core.v1.Pod"]
assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "version": "v1", "kind": "Pod"}], pod
assert pod["properties"]["spec"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}]
assert "image" in v1["io.k8s.api.core.v1.Container"]["properties"]
assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in v1
apps = raw_get("/openapi/v3/apis/apps/v1")["components"]["schemas"]
assert "replicas" in apps["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]
rbac = raw_get("/openapi/v3/apis/rbac.authorization.k8s.io/v1")["components"]["schemas"]
assert "io.k8s.api.rbac.v1.PolicyRule" in rbac
v2 = raw_get("/openapi/v2")["definitions"]
assert v2["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["items"]["$ref"] == \
    "#/definitions/io.k8s.api.core.v1.Container"

cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
      "data": {"a": "1"}, "bogus": {"x": 1}}
body = refused(400, lambda: core.create_namespaced_config_map("default", cm, field_validation="Strict"))
assert body["reason"] == "BadRequest", body
assert body["message"] == 'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "bogus"', body
core.create_namespaced_config_map("default", cm, field_validation="Ignore")
stored = json.loads(core.read_namespaced_config_map("settings", "default", _preload_content=False).data)
assert "bogus" not in stored and stored["data"] == {"a": "1"}, stored
svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
       "spec": {"ports": [{"port": 80, "protocl": "TCP"}]}}
body = refused(400, lambda: core.create_namespaced_service("default", svc, field_validation="Strict"))
assert 'unknown field "spec.ports[0].protocl"' in body["message"], body
"##,
    );
    f.lab.shutdown().await;
}

/// Polls kubectl until it succeeds (a controller's work, such as the `default` ServiceAccount, lands
/// shortly after the write that causes it, on a cluster as in the lab).
async fn kubectl_eventually(f: &Fixture, args: &[&str]) -> Option<String> {
    let binary = f.kubectl.as_ref()?;
    for _ in 0..100 {
        let out = f.kubectl_run(binary, args, None).await;
        if out.status.success() {
            return Some(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("kubectl {args:?} never succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_get_a_default_service_account_and_impersonation_needs_the_verb() {
    let f = Fixture::bare().await;
    if f.kubectl.is_some() {
        f.kubectl_ok(&["create", "namespace", "team-x"], None).await;
        let sa = kubectl_eventually(&f, &["get", "sa", "default", "-n", "team-x", "-o", "name"])
            .await
            .unwrap();
        assert_eq!(sa.trim(), "serviceaccount/default");
        let whoami = f
            .kubectl_ok(
                &[
                    "auth",
                    "whoami",
                    "--as=bob",
                    "--as-group=devs",
                    "-o",
                    "json",
                ],
                None,
            )
            .await
            .unwrap();
        let review: serde_json::Value = serde_json::from_str(&whoami).unwrap();
        assert_eq!(review["status"]["userInfo"]["username"], "bob", "{whoami}");
        assert_eq!(
            review["status"]["userInfo"]["groups"],
            serde_json::json!(["devs", "system:authenticated"])
        );
        let refused = f
            .kubectl_fails(&["get", "secrets", "-n", "default", "--as=bob"], None)
            .await
            .unwrap();
        assert!(
            refused.contains(r#"User "bob" cannot list resource "secrets" in API group "" in the namespace "default""#),
            "{refused}"
        );
        f.kubectl_ok(&["create", "sa", "robot", "-n", "team-x"], None)
            .await;
        let token = f
            .kubectl_ok(&["create", "token", "robot", "-n", "team-x"], None)
            .await
            .unwrap();
        let token_flag = format!("--token={}", token.trim());
        let refused = f
            .kubectl_fails(
                &[&token_flag, "--as=bob", "get", "pods", "-n", "team-x"],
                None,
            )
            .await
            .unwrap();
        assert!(
            refused.contains(r#"users "bob" is forbidden: User "system:serviceaccount:team-x:robot" cannot impersonate resource "users" in API group "" at the cluster scope"#),
            "{refused}"
        );
        f.kubectl_ok(
            &[
                "create",
                "clusterrole",
                "impersonate-bob",
                "--verb=impersonate",
                "--resource=users",
                "--resource-name=bob",
            ],
            None,
        )
        .await;
        f.kubectl_ok(
            &[
                "create",
                "clusterrolebinding",
                "robot-impersonates-bob",
                "--clusterrole=impersonate-bob",
                "--serviceaccount=team-x:robot",
            ],
            None,
        )
        .await;
        let whoami = f
            .kubectl_ok(&[&token_flag, "--as=bob", "auth", "whoami"], None)
            .await
            .unwrap();
        assert!(whoami.contains("bob"), "{whoami}");
        assert!(!whoami.contains("robot"), "{whoami}");
        // bob, but not alice: resourceNames hold.
        f.kubectl_fails(&[&token_flag, "--as=alice", "auth", "whoami"], None)
            .await;
    }
    f.python(
        r#"
import time
core.create_namespace({"metadata": {"name": "team-y"}})
for _ in range(100):
    names = [sa.metadata.name for sa in core.list_namespaced_service_account("team-y").items]
    if names:
        break
    time.sleep(0.1)
assert names == ["default"], names
bob = client.ApiClient()
bob.set_default_header("Impersonate-User", "bob")
body = refused(403, lambda: client.CoreV1Api(bob).list_namespaced_secret("default"))
assert body["message"] == 'secrets is forbidden: User "bob" cannot list resource "secrets" in API group "" in the namespace "default"', body
review = client.AuthenticationV1Api(bob).create_self_subject_review({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
assert review.status.user_info.username == "bob", review
"#,
    );
    f.lab.shutdown().await;
}

/// A Plan in `team-p` from the host cluster's VM `default/vm1` into `team-p`.
const HOST_PLAN: &str = r#"{"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Plan",
  "metadata": {"name": "mine", "namespace": "team-p"},
  "spec": {"targetNamespace": "team-p",
           "provider": {"source": {"name": "host", "namespace": "openshift-mtv"},
                        "destination": {"name": "host", "namespace": "openshift-mtv"}},
           "map": {"network": {"name": "net", "namespace": "team-p"}, "storage": {"name": "disks", "namespace": "team-p"}},
           "vms": [{"name": "vm1", "namespace": "default"}]}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forklift_webhooks_check_the_users_rights_on_providers_and_vms() {
    let f = Fixture::start(LabOptions::default()).await;
    let denied = |what: &str| {
        format!(
            r#"admission webhook "plans.forklift.konveyor" denied the request: Action is forbidden: User "system:serviceaccount:team-p:planner" cannot {what}: "#
        )
    };
    if f.kubectl.is_some() {
        for args in [
            vec!["create", "namespace", "team-p"],
            vec!["create", "sa", "planner", "-n", "team-p"],
            vec![
                "create",
                "role",
                "plan-writer",
                "-n",
                "team-p",
                "--verb=create",
                "--resource=plans.forklift.konveyor.io",
            ],
            vec![
                "create",
                "rolebinding",
                "planner-writes",
                "-n",
                "team-p",
                "--role=plan-writer",
                "--serviceaccount=team-p:planner",
            ],
        ] {
            f.kubectl_ok(&args, None).await;
        }
        let token = f
            .kubectl_ok(&["create", "token", "planner", "-n", "team-p"], None)
            .await
            .unwrap();
        let as_planner = format!("--token={}", token.trim());
        let create = [as_planner.as_str(), "create", "-f", "-"];
        let refused = f.kubectl_fails(&create, Some(HOST_PLAN)).await.unwrap();
        assert!(
            refused.contains(&denied(r#"get resource "providers/host" in API group "forklift.konveyor.io" in the namespace "openshift-mtv""#)),
            "{refused}"
        );
        f.kubectl_ok(
            &[
                "create",
                "clusterrole",
                "provider-reader",
                "--verb=get",
                "--resource=providers.forklift.konveyor.io",
            ],
            None,
        )
        .await;
        f.kubectl_ok(
            &[
                "create",
                "clusterrolebinding",
                "planner-reads-providers",
                "--clusterrole=provider-reader",
                "--serviceaccount=team-p:planner",
            ],
            None,
        )
        .await;
        let refused = f.kubectl_fails(&create, Some(HOST_PLAN)).await.unwrap();
        assert!(
            refused.contains(&denied(r#"create resource "virtualmachines" in API group "kubevirt.io" in the namespace "team-p""#)),
            "{refused}"
        );
        f.kubectl_ok(
            &[
                "create",
                "role",
                "vm-creator",
                "-n",
                "team-p",
                "--verb=create",
                "--resource=virtualmachines.kubevirt.io",
            ],
            None,
        )
        .await;
        f.kubectl_ok(
            &[
                "create",
                "rolebinding",
                "planner-creates-vms",
                "-n",
                "team-p",
                "--role=vm-creator",
                "--serviceaccount=team-p:planner",
            ],
            None,
        )
        .await;
        let refused = f.kubectl_fails(&create, Some(HOST_PLAN)).await.unwrap();
        assert!(
            refused.contains(&denied(r#"get resource "virtualmachines/vm1" in API group "kubevirt.io" in the namespace "default""#)),
            "{refused}"
        );
    }
    f.python(
        r#"
core.create_namespace({"metadata": {"name": "team-q"}})
core.create_namespaced_service_account("team-q", {"metadata": {"name": "planner"}})
rbac = client.RbacAuthorizationV1Api()
rbac.create_namespaced_role("team-q", {"metadata": {"name": "plan-writer"},
    "rules": [{"apiGroups": ["forklift.konveyor.io"], "resources": ["plans"], "verbs": ["create"]}]})
rbac.create_namespaced_role_binding("team-q", {"metadata": {"name": "planner-writes"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "plan-writer"},
    "subjects": [{"kind": "ServiceAccount", "name": "planner", "namespace": "team-q"}]})
token = core.create_namespaced_service_account_token("planner", "team-q", {"spec": {}}).status.token
cfg = client.Configuration.get_default_copy()
cfg.api_key = {"authorization": "Bearer " + token}
cfg.refresh_api_key_hook = None  # else the kubeconfig's admin token comes back before each request
planner = client.CustomObjectsApi(client.ApiClient(cfg))
plan = {"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Plan",
        "metadata": {"name": "mine", "namespace": "team-q"},
        "spec": {"targetNamespace": "team-q",
                 "provider": {"source": {"name": "host", "namespace": "openshift-mtv"},
                              "destination": {"name": "host", "namespace": "openshift-mtv"}},
                 "map": {"network": {"name": "net"}, "storage": {"name": "disks"}}, "vms": []}}
body = refused(400, lambda: planner.create_namespaced_custom_object(*FORKLIFT, "team-q", "plans", plan))
assert body["message"] == 'admission webhook "plans.forklift.konveyor" denied the request: Action is forbidden: User "system:serviceaccount:team-q:planner" cannot get resource "providers/host" in API group "forklift.konveyor.io" in the namespace "openshift-mtv": ', body
"#,
    );
    f.lab.shutdown().await;
}
