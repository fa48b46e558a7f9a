//! The Forklift controllers over a running lab server: what kube-rs reads (plan status, hook pod logs)
//! is what the controllers wrote through the store.

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, LogParams};
use mtv_lab::forklift::{ForkliftOptions, spawn_forklift};
use mtv_lab::registry;
use mtv_lab::source::SourceLab;
use mtv_lab::{LabOptions, LabServer, MTV_NAMESPACE};
use serde_json::json;

const LAB: &str = r#"
version: 1
providers:
  - name: ovirt
    type: ovirt
    url: https://engine.lab.example/ovirt-engine/api
    username: admin@internal
    password: lab-password
    networks: [{id: net-1, name: ovirtmgmt}]
    datastores: [{id: sd-1, name: data, capacity_gib: 1000, free_gib: 900}]
    vms:
      - id: 6b9a-0001
        name: ovirt-vm
        power_state: on
        memory_mib: 2048
        guest_os: rhel8
        uuid: 6b9a-0001
        disks: [{key: 1, file: disk-1, datastore: sd-1, capacity_gib: 4, unit_number: 0}]
        nics: [{mac: "56:6f:00:00:00:01", network: net-1}]
"#;

#[tokio::test]
async fn hook_logs_and_plan_status_are_served_by_the_api() {
    let server = LabServer::start(LabOptions::default()).await.unwrap();
    let store = server.store().clone();
    let source = SourceLab::parse("lab.yaml", LAB).unwrap();
    let forklift = spawn_forklift(
        store.clone(),
        source,
        ForkliftOptions::new(20.0, Default::default(), MTV_NAMESPACE),
    );
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
        if !migrated && common::cond(&plan, "Ready").is_some() {
            store
                .create(&registry::MIGRATION, ns, json!({"metadata": {"name": "m"}, "spec": {"plan": {"name": "p", "namespace": MTV_NAMESPACE}}}))
                .unwrap();
            migrated = true;
        }
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
    let denied = store
        .create(plans, Some(ns), plan("missing", false))
        .unwrap_err();
    // Forklift's plan admitter answers 400 with the client's not-found text.
    assert_eq!(denied.code, 400);
    assert_eq!(
        denied.message,
        "admission webhook \"plans.forklift.konveyor\" denied the request: providers.forklift.konveyor.io \"missing\" not found"
    );

    let vsphere = store
        .create(providers, Some(ns), json!({"metadata": {"name": "vs"}, "spec": {"type": "vsphere", "url": "https://v/sdk", "secret": {"name": "s", "namespace": ns}}}))
        .unwrap();
    assert_eq!(vsphere["spec"]["settings"]["sdkEndpoint"], "vcenter");
    let bad = store
        .create(providers, Some(ns), json!({"metadata": {"name": "vs2"}, "spec": {"type": "vsphere", "url": "https://v/sdk", "secret": {"name": "s", "namespace": ns}, "settings": {"sdkEndpoint": "vc"}}}))
        .unwrap_err();
    assert_eq!(
        bad.message,
        "admission webhook \"providers.forklift.konveyor\" denied the request: vSphere provider is set with an invalid SDK endpoint type"
    );

    store
        .create(providers, Some(ns), json!({"metadata": {"name": "osp"}, "spec": {"type": "openstack", "url": "https://k:5000/v3", "secret": {"name": "s", "namespace": ns}}}))
        .unwrap();
    let warm_openstack = store
        .create(plans, Some(ns), plan("osp", true))
        .unwrap_err();
    assert!(
        warm_openstack
            .message
            .ends_with("warm migration is not supported by the provider"),
        "{}",
        warm_openstack.message
    );

    let created = store.create(plans, Some(ns), plan("vs", false)).unwrap();
    assert_eq!(
        created["metadata"]["annotations"]["populatorLabels"],
        "True"
    );

    let orphan = store
        .create(
            migrations,
            Some(ns),
            json!({"metadata": {"name": "m"}, "spec": {"plan": {"name": "nope", "namespace": ns}}}),
        )
        .unwrap_err();
    assert_eq!(
        orphan.message,
        "admission webhook \"migrations.forklift.konveyor\" denied the request: plans.forklift.konveyor.io \"nope\" not found"
    );
    lab.shutdown().await;
}
