//! The Forklift controllers over a running lab server: what kube-rs reads (plan status, hook pod logs)
//! is what the controllers wrote through the store.

mod common;

use common::PollsObjects;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, LogParams};
use mtv_lab::forklift::{ForkliftHandle, ForkliftOptions, spawn_forklift};
use mtv_lab::registry;
use mtv_lab::source::SourceLab;
use mtv_lab::store::Store;
use mtv_lab::{LabOptions, LabServer, MTV_NAMESPACE};
use serde_json::{Value, json};

/// The lab file: the oVirt source with its VM running.
fn ovirt_lab() -> String {
    common::lab_file(&[common::ovirt_provider("on", "")])
}

/// The test's own Forklift controllers on `store`, over the source lab of the lab file `lab_yaml`,
/// at `speed`.
fn forklift_over(store: &Store, lab_yaml: &str, speed: f64) -> ForkliftHandle {
    let source = SourceLab::parse("lab.yaml", lab_yaml).unwrap();
    spawn_forklift(
        store.clone(),
        source,
        ForkliftOptions::new(speed, Default::default(), MTV_NAMESPACE),
    )
}

#[tokio::test]
async fn hook_logs_and_plan_status_are_served_by_the_api() {
    let server = LabServer::start(LabOptions::default()).await.unwrap();
    let store = server.store().clone();
    let forklift = forklift_over(&store, &ovirt_lab(), 20.0);
    let ns = Some(MTV_NAMESPACE);
    let pair = common::ovirt_provider_with_maps(&store);
    let playbook =
        "- hosts: localhost\n  tasks:\n  - name: say hello\n    debug:\n      msg: hello\n";
    store
        .create(&registry::HOOK, ns, json!({"metadata": {"name": "hello"}, "spec": {"image": "quay.io/konveyor/hook-runner", "playbook": common::b64(playbook)}}))
        .unwrap();
    store
        .create(&registry::PLAN, ns, json!({"metadata": {"name": "p"}, "spec": {
            "provider": pair, "targetNamespace": "migrated",
            "map": {"network": {"name": "net", "namespace": MTV_NAMESPACE}, "storage": {"name": "st", "namespace": MTV_NAMESPACE}},
            "vms": [{"id": "6b9a-0001", "hooks": [{"step": "PostHook", "hook": {"name": "hello", "namespace": MTV_NAMESPACE}}]}]}}))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut migrated = false;
    let mut hook_pod = None;
    let mut events = store.subscribe();
    while Instant::now() < deadline {
        let plan = store.get(&registry::PLAN, ns, "p").unwrap();
        common::migrate_once_ready(&store, &plan, &mut migrated);
        let done = common::cond(&plan, "Succeeded").is_some();
        // Hook pods are deleted with their Job after success: remember one while it exists.
        while let Ok(e) = events.try_recv() {
            if std::ptr::eq(e.resource, &registry::POD)
                && e.object.pointer("/metadata/labels/job-name").is_some()
                && hook_pod.is_none()
            {
                hook_pod = Some(e.object.as_ref().clone());
            }
        }
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml()).unwrap(),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let plans: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        MTV_NAMESPACE,
        &ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "forklift.konveyor.io",
            "v1beta1",
            "Plan",
        )),
    );
    let plan = serde_json::to_value(plans.get("p").await.unwrap()).unwrap();
    assert!(
        common::cond(&plan, "Succeeded").is_some(),
        "{}",
        plan["status"]
    );
    assert_eq!(
        plan["status"]["migration"]["vms"][0]["pipeline"][3]["name"],
        "PostHook"
    );
    let vms: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "migrated",
        &ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            "kubevirt.io",
            "v1",
            "VirtualMachine",
        )),
    );
    let list = vms
        .list(&ListParams::default().labels("vmID=6b9a-0001"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    // The hook pod's log, as the server serves it.
    let pod = hook_pod.expect("a hook pod was created");
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    // Recreate it if the Job cleanup already removed it, so the log endpoint has something to serve.
    if store.get(&registry::POD, ns, &name).is_err() {
        let mut again = pod.clone();
        let meta = again["metadata"].as_object_mut().unwrap();
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "ownerReferences",
        ] {
            meta.remove(k);
        }
        store.create(&registry::POD, ns, again).unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(client, MTV_NAMESPACE);
    let log = pods.logs(&name, &LogParams::default()).await.unwrap();
    assert!(log.contains("TASK [say hello]"), "{log}");
    forklift.shutdown().await;
    server.shutdown().await;
}

/// The forklift-api webhooks: a Plan needs existing Providers, a Migration an existing Plan, warm
/// OpenStack Plans are refused, vSphere Providers get `sdkEndpoint: vcenter`, new Plans get
/// `populatorLabels: "True"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_webhooks_act_like_forklift_api() {
    use mtv_lab::registry;
    use serde_json::json;

    let lab = mtv_lab::LabServer::start(mtv_lab::LabOptions::default())
        .await
        .unwrap();
    let store = lab.store();
    let providers = registry::find("forklift.konveyor.io", "v1beta1", "providers").unwrap();
    let plans = registry::find("forklift.konveyor.io", "v1beta1", "plans").unwrap();
    let migrations = registry::find("forklift.konveyor.io", "v1beta1", "migrations").unwrap();
    let ns = "openshift-mtv";
    let plan = |source: &str, warm: bool| {
        json!({"metadata": {"name": format!("p-{source}-{warm}")}, "spec": {
            "provider": {"source": {"name": source, "namespace": ns}, "destination": {"name": "host", "namespace": ns}},
            "map": {"network": {"name": "n", "namespace": ns}, "storage": {"name": "s", "namespace": ns}},
            "targetNamespace": "default", "warm": warm, "vms": [{"name": "x"}]}})
    };
    // Forklift's admitters answer 400 with the client's not-found text or their own reason.
    let refused = |rt: &'static registry::ResourceType, object: Value| {
        let error = store.create(rt, Some(ns), object).unwrap_err();
        assert_eq!(error.code, 400, "{}", error.message);
        error.message
    };
    assert_eq!(
        refused(plans, plan("missing", false)),
        "admission webhook \"plans.forklift.konveyor\" denied the request: providers.forklift.konveyor.io \"missing\" not found"
    );

    let vsphere = store
        .create(providers, Some(ns), json!({"metadata": {"name": "vs"}, "spec": {"type": "vsphere", "url": "https://v/sdk", "secret": {"name": "s", "namespace": ns}}}))
        .unwrap();
    assert_eq!(vsphere["spec"]["settings"]["sdkEndpoint"], "vcenter");
    assert_eq!(
        refused(
            providers,
            json!({"metadata": {"name": "vs2"}, "spec": {"type": "vsphere", "url": "https://v/sdk", "secret": {"name": "s", "namespace": ns}, "settings": {"sdkEndpoint": "vc"}}})
        ),
        "admission webhook \"providers.forklift.konveyor\" denied the request: vSphere provider is set with an invalid SDK endpoint type"
    );

    store
        .create(providers, Some(ns), json!({"metadata": {"name": "osp"}, "spec": {"type": "openstack", "url": "https://k:5000/v3", "secret": {"name": "s", "namespace": ns}}}))
        .unwrap();
    let warm_openstack = refused(plans, plan("osp", true));
    assert!(
        warm_openstack.ends_with("warm migration is not supported by the provider"),
        "{warm_openstack}"
    );

    let created = store.create(plans, Some(ns), plan("vs", false)).unwrap();
    assert_eq!(
        created["metadata"]["annotations"]["populatorLabels"],
        "True"
    );

    assert_eq!(
        refused(
            migrations,
            json!({"metadata": {"name": "m"}, "spec": {"plan": {"name": "nope", "namespace": ns}}}),
        ),
        "admission webhook \"migrations.forklift.konveyor\" denied the request: plans.forklift.konveyor.io \"nope\" not found"
    );
    lab.shutdown().await;
}

/// The lab file: the vSphere source with one stopped Windows VM on a 400 GiB disk.
fn vsphere_lab() -> String {
    common::lab_file(&[common::vsphere_provider(
        "[{id: network-1, name: VM Network}]",
        "[{id: datastore-1, name: ds1, capacity_gib: 1000, free_gib: 800}]",
        r#"
      - id: vm-2
        name: win2019
        power_state: off
        host: host-1
        memory_mib: 4096
        guest_os: windows2019srv_64Guest
        uuid: 4201-bbbb
        disks: [{key: 2000, file: "[ds1] win2019/win2019.vmdk", datastore: datastore-1, capacity_gib: 400, unit_number: 0}]
        nics: [{mac: "00:50:56:00:00:03", network: network-1}]
"#,
    )])
}

/// kubectl's arguments that print Plan `p` in `MTV_NAMESPACE` as `output` (`-o`) says.
fn plan_p_output(output: &str) -> [&str; 7] {
    ["get", "plan", "p", "-n", MTV_NAMESPACE, "-o", output]
}

/// A lab server whose own controllers are off, with the test's Forklift over [`vsphere_lab`] at
/// real speed, a kubeconfig for real kubectl in a directory of its own, and the vSphere Provider
/// (with `settings`, when given) and its maps `net` and `st` in `MTV_NAMESPACE`.
struct KubectlLab {
    server: LabServer,
    dir: PathBuf,
    store: Store,
    forklift: ForkliftHandle,
    /// The Provider pair of the maps, for a Plan.
    pair: Value,
}

impl KubectlLab {
    async fn start(name: &str, settings: Option<Value>) -> Self {
        let server = LabServer::start(LabOptions {
            forklift: false,
            ..LabOptions::default()
        })
        .await
        .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "mtv-lab-{name}-{}",
            mtv_lab::random::name_suffix(10)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        server.write_kubeconfig(&dir.join("kubeconfig")).unwrap();
        let store = server.store().clone();
        let forklift = forklift_over(&store, &vsphere_lab(), 1.0);
        let mut provider = json!({"type": "vsphere", "url": "https://vcenter.lab.example/sdk"});
        if let Some(settings) = settings {
            provider["settings"] = settings;
        }
        let pair = common::provider_with_maps(
            &store,
            provider,
            "administrator@vsphere.local",
            "network-1",
            "datastore-1",
        );
        KubectlLab {
            server,
            dir,
            store,
            forklift,
            pair,
        }
    }

    /// Runs real kubectl against the lab; `None` when kubectl tests are explicitly skipped.
    async fn kubectl(&self, args: &[&str]) -> Option<String> {
        let binary = mtv_test_peers::kubectl()?;
        let out = tokio::process::Command::new(binary)
            .arg("--kubeconfig")
            .arg(self.dir.join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true)
            .output()
            .await
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs kubectl with `args` every 50 ms until `found` finds what it looks for in the output,
    /// for at most `timeout`.
    async fn kubectl_until(
        &self,
        args: &[&str],
        timeout: Duration,
        found: impl Fn(&str) -> Option<String>,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let output = self.kubectl(args).await.expect("kubectl is there");
            if let Some(found) = found(&output) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "kubectl {args:?} never showed it: {output:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kubectl wait` until Plan `p` has `condition`; `None` when kubectl tests are skipped.
    async fn wait_for_plan(&self, condition: &str) -> Option<String> {
        self.kubectl(&[
            "wait",
            &format!("--for=condition={condition}"),
            "plan/p",
            "-n",
            MTV_NAMESPACE,
            "--timeout=60s",
        ])
        .await
    }

    /// Creates Plan `p` of the stopped Windows VM into the namespace `migrated`, through the maps,
    /// with the `extra` spec fields.
    fn create_plan(&self, extra: Value) {
        let mut spec = json!({
            "provider": self.pair, "targetNamespace": "migrated",
            "map": {"network": {"name": "net", "namespace": MTV_NAMESPACE}, "storage": {"name": "st", "namespace": MTV_NAMESPACE}},
            "vms": [{"id": "vm-2"}]});
        for (field, value) in extra.as_object().expect("spec fields") {
            spec[field] = value.clone();
        }
        self.store
            .create(
                &registry::PLAN,
                Some(MTV_NAMESPACE),
                json!({"metadata": {"name": "p"}, "spec": spec}),
            )
            .unwrap();
    }

    /// Starts Plan `p` with its Migration `m`.
    fn migrate(&self) {
        self.store
            .create(&registry::MIGRATION, Some(MTV_NAMESPACE), json!({"metadata": {"name": "m"}, "spec": {"plan": {"name": "p", "namespace": MTV_NAMESPACE}}}))
            .unwrap();
    }

    async fn shutdown(self) {
        self.forklift.shutdown().await;
        self.server.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Forklift's Plan validation seen with real kubectl: `kubectl wait --for=condition=...` on the
/// conditions validation.go sets (validateServiceAccount, validateNetworkMap's
/// NetMapPreservingIPsOnPodNetwork, validateVM's VMMissingGuestIPs via the vSphere validator's
/// StaticIPs), `kubectl get events` for the plan controller's recorder (base/controller.go Record), and a
/// deleted Migration's `Canceled` in the history only (plan/controller.go activeMigration).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_rules_are_seen_by_kubectl() {
    // The server's own controllers stay off: these run over a source lab of the test's own.
    let lab = KubectlLab::start("fidelity", None).await;
    let store = &lab.store;
    lab.create_plan(json!({"serviceAccount": "migrator"}));
    if lab.wait_for_plan("ServiceAccountNotValid").await.is_none() {
        eprintln!("kubectl tests skipped (MTV_SKIP_KUBECTL_TESTS)");
        lab.shutdown().await;
        return;
    }
    lab.wait_for_plan("NetMapPreservingIPsOnPodNetwork").await;
    lab.wait_for_plan("VMMissingGuestIPs").await;
    let events: serde_json::Value = serde_json::from_str(
        &lab.kubectl(&["get", "events", "-n", MTV_NAMESPACE, "-o", "json"])
            .await
            .unwrap(),
    )
    .unwrap();
    let warning = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["involvedObject"]["name"] == "p" && e["reason"] == "ServiceAccountNotValid")
        .expect("a ServiceAccountNotValid event on the Plan");
    assert_eq!(warning["type"], "Warning");
    assert_eq!(
        warning["message"],
        "ServiceAccount 'migrator' not found in target namespace 'migrated'."
    );
    // The account appears: the Plan turns Ready.
    store
        .create(
            &registry::NAMESPACE,
            None,
            json!({"metadata": {"name": "migrated"}}),
        )
        .ok();
    store
        .create(
            &registry::SERVICE_ACCOUNT,
            Some("migrated"),
            json!({"metadata": {"name": "migrator"}}),
        )
        .unwrap();
    lab.wait_for_plan("Ready").await;
    // A Migration deleted while it runs: Canceled (Deleted) in the history, not on the Plan.
    lab.migrate();
    // The 400 GiB disk copies for seconds: the Migration is deleted while it runs.
    store
        .wait(&registry::PLAN, MTV_NAMESPACE, "p", "Executing", |p| {
            common::s(p, "/status/migration/vms/0/phase") == "CopyDisksVirtV2V"
        })
        .await;
    lab.kubectl(&["delete", "migration", "m", "-n", MTV_NAMESPACE])
        .await;
    let reason = lab
        .kubectl_until(
            &plan_p_output(
                r#"jsonpath={.status.migration.history[0].conditions[?(@.type=="Canceled")].reason}"#,
            ),
            Duration::from_secs(30),
            |reason| (!reason.is_empty()).then(|| reason.to_string()),
        )
        .await;
    assert_eq!(reason, "Deleted");
    let types = lab
        .kubectl(&plan_p_output("jsonpath={.status.conditions[*].type}"))
        .await
        .unwrap();
    assert!(!types.contains("Canceled"), "{types}");
    assert!(!types.contains("Executing"), "{types}");
    lab.shutdown().await;
}

/// CDI's importer pod of a cold vSphere copy seen with real kubectl, as a user watching a migration
/// looks for it: `kubectl get pods -l app=containerized-data-importer` in the target namespace lists
/// `importer-<pvc>` Running while the disk copies (containerized-data-importer's
/// pkg/controller/import-controller.go, createImportPodNameFromPvc and makeImporterPodSpec).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importer_pods_are_seen_by_kubectl_during_a_cold_copy() {
    let lab = KubectlLab::start(
        "importer",
        Some(json!({"vddkInitImage": "quay.io/lab/vddk:8"})),
    )
    .await;
    let store = &lab.store;
    // Without the guest conversion CDI copies the disk (virt-v2v would write it itself).
    lab.create_plan(json!({"skipGuestConversion": true}));
    if lab.wait_for_plan("Ready").await.is_none() {
        eprintln!("kubectl tests skipped (MTV_SKIP_KUBECTL_TESTS)");
        lab.shutdown().await;
        return;
    }
    lab.migrate();
    // The 400 GiB disk copies for seconds at this speed: the pod is listed Running meanwhile.
    let seen = lab
        .kubectl_until(
            &[
                "get",
                "pods",
                "-n",
                "migrated",
                "-l",
                "app=containerized-data-importer",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}{\"\\n\"}{end}",
            ],
            Duration::from_secs(60),
            |listed| {
                listed
                    .lines()
                    .find(|l| l.contains(" Running "))
                    .map(str::to_string)
            },
        )
        .await;
    let pvcs = store
        .list(
            &registry::PERSISTENT_VOLUME_CLAIM,
            Some("migrated"),
            &Default::default(),
        )
        .unwrap()
        .items;
    let claim = pvcs
        .iter()
        .map(|p| common::s(p, "/metadata/name").to_string())
        .find(|name| seen.starts_with(&format!("importer-{name} ")))
        .unwrap_or_else(|| panic!("{seen} names none of the claims {pvcs:?}"));
    assert_eq!(
        seen,
        format!("importer-{claim} Running PersistentVolumeClaim/{claim}")
    );
    lab.shutdown().await;
}
