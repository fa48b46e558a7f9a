//! kube-rs against a started lab, over HTTP.

use std::collections::BTreeSet;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use mtv_lab::registry;
use mtv_lab::{FaultSpec, LabOptions, LabServer};
use serde_json::{Value, json};

use crate::{kube_client, kube_config, start_lab};

fn plan_api(client: kube::Client, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("forklift.konveyor.io", "v1beta1", "Plan");
    Api::namespaced_with(
        client,
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, "plans"),
    )
}

/// The minimal Plan the store tests use too, named `name`.
fn plan_object(name: &str) -> DynamicObject {
    let mut plan: DynamicObject =
        serde_json::from_str(include_str!("../fixtures/minimal-plan.json")).expect("plan parses");
    plan.metadata.name = Some(name.to_string());
    plan
}

fn api_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Deletes the objects `names` through `api`, and checks that none is left in its namespace.
async fn delete_all<K>(api: &Api<K>, names: &[&str])
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for name in names {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    let left = api.list(&ListParams::default()).await.unwrap().items;
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn namespace_crud_with_typed_objects() {
    let lab = start_lab().await;
    let api: Api<Namespace> = Api::all(kube_client(&lab).await);
    let ns: Namespace = serde_json::from_value(
        json!({"metadata": {"name": "kube-rs-ns", "labels": {"team": "mtv"}}}),
    )
    .unwrap();
    let created = api.create(&PostParams::default(), &ns).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let got = api.get("kube-rs-ns").await.unwrap();
    assert_eq!(got.metadata.labels.unwrap()["team"], "mtv");
    let listed = api
        .list(&ListParams::default().labels("team=mtv"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.metadata.resource_version.is_some());
    let seeded = api.list(&ListParams::default()).await.unwrap();
    assert!(
        seeded
            .items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some("openshift-mtv"))
    );
    let patched = api
        .patch(
            "kube-rs-ns",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"extra": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap().len(), 2);
    let applied = api
        .patch(
            "kube-rs-ns",
            &PatchParams::apply("mtv-tests"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-rs-ns", "annotations": {"owner": "suite"}}})),
        )
        .await
        .unwrap();
    assert_eq!(applied.metadata.annotations.unwrap()["owner"], "suite");
    api.delete("kube-rs-ns", &DeleteParams::default())
        .await
        .unwrap();
    let err = api.get("kube-rs-ns").await.unwrap_err();
    assert_eq!(api_code(&err), Some(404));
    lab.shutdown().await;
}

#[tokio::test]
async fn secret_crud_and_server_side_apply() {
    let lab = start_lab().await;
    let api: Api<Secret> = Api::namespaced(kube_client(&lab).await, "openshift-mtv");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "vsphere-credentials"},
        "stringData": {"user": "administrator@vsphere.local", "password": "s3cret"}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &secret).await.unwrap();
    let data = created.data.clone().unwrap();
    assert_eq!(data["user"].0, b"administrator@vsphere.local");
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    let err = api
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), Some(409));
    // Server-side apply creates, then updates, the same object.
    let config = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "applied", "labels": {"createdBy": "suite"}},
        "stringData": {"url": "https://vcenter.example.com/sdk"}
    });
    let ssa = PatchParams::apply("mtv-tests").force();
    let first = api
        .patch("applied", &ssa, &Patch::Apply(&config))
        .await
        .unwrap();
    assert_eq!(first.metadata.labels.unwrap()["createdBy"], "suite");
    let managers: Vec<String> = first
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, vec!["mtv-tests".to_string()]);
    let mut second = config.clone();
    second["stringData"]["url"] = json!("https://other.example.com/sdk");
    let updated = api
        .patch("applied", &ssa, &Patch::Apply(&second))
        .await
        .unwrap();
    assert_eq!(
        updated.data.unwrap()["url"].0,
        b"https://other.example.com/sdk"
    );
    // A stale resourceVersion is a conflict.
    let mut stale = created.clone();
    stale.metadata.resource_version = Some("1".into());
    let err = api
        .replace("vsphere-credentials", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), Some(409));
    delete_all(&api, &["vsphere-credentials", "applied"]).await;
    lab.shutdown().await;
}

#[tokio::test]
async fn plan_crud_defaults_validation_and_apply() {
    let lab = start_lab().await;
    let api = plan_api(kube_client(&lab).await, "openshift-mtv");
    let created = api
        .create(&PostParams::default(), &plan_object("plan-a"))
        .await
        .unwrap();
    // The CRD's defaults, as the schema tests know them.
    let defaults: serde_json::Map<String, Value> =
        serde_json::from_str(include_str!("../fixtures/minimal-plan-defaults.json")).unwrap();
    for (field, value) in defaults {
        assert_eq!(created.data["spec"][&field], value, "{field}");
    }
    assert_eq!(created.metadata.generation, Some(1));
    let patched = api
        .patch(
            "plan-a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"warm": true, "preserveStaticIPs": false}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["warm"], json!(true));
    assert_eq!(patched.data["spec"]["preserveStaticIPs"], json!(false));
    assert_eq!(patched.metadata.generation, Some(2));
    // Server-side apply of the whole plan by the suite's field manager.
    let mut config = plan_object("plan-b");
    config.data["spec"]["targetPowerState"] = json!("on");
    let applied = api
        .patch(
            "plan-b",
            &PatchParams::apply("mtv-tests"),
            &Patch::Apply(&config),
        )
        .await
        .unwrap();
    assert_eq!(applied.data["spec"]["targetPowerState"], "on");
    assert_eq!(applied.data["spec"]["preserveStaticIPs"], json!(true));
    // Invalid: an enum violation and a wrong type come back as 422 with causes naming the fields.
    let mut bad = plan_object("plan-bad");
    bad.data["spec"]["targetPowerState"] = json!("sideways");
    bad.data["spec"]["warm"] = json!("yes");
    match api.create(&PostParams::default(), &bad).await.unwrap_err() {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422);
            assert_eq!(status.reason, "Invalid");
            assert!(
                status.message.contains("spec.targetPowerState"),
                "{}",
                status.message
            );
            assert!(status.message.contains("spec.warm"), "{}", status.message);
        }
        other => panic!("expected a 422, got {other:?}"),
    }
    // Writes to the main resource never change status.
    let mut with_status = api.get("plan-a").await.unwrap();
    with_status.data["status"] = json!({"conditions": []});
    let replaced = api
        .replace("plan-a", &PostParams::default(), &with_status)
        .await
        .unwrap();
    assert!(replaced.data.get("status").is_none());
    let list = api.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.continue_.is_some());
    delete_all(&api, &["plan-a", "plan-b"]).await;
    lab.shutdown().await;
}

#[tokio::test]
async fn await_condition_sees_a_condition_written_through_status() {
    let lab = start_lab().await;
    let api = plan_api(kube_client(&lab).await, "openshift-mtv");
    api.create(&PostParams::default(), &plan_object("ready-plan"))
        .await
        .unwrap();
    let store = lab.store().clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        store
            .update_status(
                &registry::PLAN,
                Some("openshift-mtv"),
                "ready-plan",
                json!({"conditions": [{"type": "Ready", "status": "True", "category": "Required", "message": "The migration plan is ready.", "lastTransitionTime": mtv_lab::clock::now_rfc3339()}]}),
            )
            .expect("status write");
    });
    let ready = |obj: Option<&DynamicObject>| {
        obj.and_then(|o| o.data.pointer("/status/conditions"))
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
    };
    let found = tokio::time::timeout(
        Duration::from_secs(20),
        kube::runtime::wait::await_condition(api.clone(), "ready-plan", ready),
    )
    .await
    .expect("condition within 20s")
    .unwrap();
    writer.await.unwrap();
    let found = found.expect("object exists");
    assert_eq!(found.data["status"]["conditions"][0]["type"], "Ready");
    // The status write did not bump the generation.
    assert_eq!(found.metadata.generation, Some(1));
    // And it can be written over HTTP through /status too.
    let patched = api
        .patch_status(
            "ready-plan",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["observedGeneration"], 1);
    lab.shutdown().await;
}

/// Names of ConfigMaps in watcher events, in order.
fn applied_name(event: &watcher::Event<ConfigMap>) -> Option<String> {
    match event {
        watcher::Event::Apply(cm) | watcher::Event::InitApply(cm) => cm.metadata.name.clone(),
        _ => None,
    }
}

#[tokio::test]
async fn watcher_resumes_after_forced_drops_without_losing_events() {
    let lab = start_lab().await;
    let client = kube_client(&lab).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    lab.set_faults(FaultSpec {
        watch_drop_after: Some(Duration::from_millis(700)),
        ..FaultSpec::default()
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stream_api = api.clone();
    let watch_task = tokio::spawn(async move {
        let mut stream = watcher(stream_api, watcher::Config::default()).boxed();
        while let Some(event) = stream.next().await {
            if tx.send(event).is_err() {
                break;
            }
        }
    });
    let expected: BTreeSet<String> = (0..12).map(|i| format!("cm-{i}")).collect();
    let creator_api = api.clone();
    let creator = tokio::spawn(async move {
        for i in 0..12 {
            let cm: ConfigMap = serde_json::from_value(
                json!({"metadata": {"name": format!("cm-{i}")}, "data": {"i": i.to_string()}}),
            )
            .unwrap();
            creator_api
                .create(&PostParams::default(), &cm)
                .await
                .unwrap();
            // Spread the writes over several forced drops.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    let mut seen = BTreeSet::new();
    let mut inits = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen != expected {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("all events within 30s")
            .expect("watcher alive");
        match event {
            Ok(watcher::Event::Init) => inits += 1,
            Ok(e) => {
                if let Some(name) = applied_name(&e) {
                    seen.insert(name);
                }
            }
            Err(e) => panic!("watcher error: {e}"),
        }
    }
    creator.await.unwrap();
    // The drops were resumed from the last resourceVersion, not re-listed.
    assert_eq!(inits, 1, "the watcher re-listed instead of resuming");
    watch_task.abort();
    lab.shutdown().await;
}

#[tokio::test]
async fn streaming_list_watcher_uses_initial_events() {
    let lab = start_lab().await;
    let api: Api<Namespace> = Api::all(kube_client(&lab).await);
    let config = watcher::Config::default().streaming_lists();
    let objects: Vec<Namespace> = tokio::time::timeout(
        Duration::from_secs(10),
        watcher(api, config)
            .default_backoff()
            .take_while(|e| std::future::ready(!matches!(e, Ok(watcher::Event::InitDone))))
            .try_filter_map(|e| async move {
                Ok(match e {
                    watcher::Event::InitApply(ns) => Some(ns),
                    _ => None,
                })
            })
            .try_collect(),
    )
    .await
    .expect("initial events end with a bookmark")
    .unwrap();
    let names: BTreeSet<String> = objects
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(
        names.contains("default")
            && names.contains("openshift-mtv")
            && names.contains("kube-system")
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn watch_from_a_compacted_resource_version_gets_410() {
    let lab = LabServer::start(LabOptions {
        watch_history: 5,
        ..super::bare()
    })
    .await
    .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(kube_client(&lab).await, "default");
    for i in 0..10 {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}})).unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default(), "2")
        .await
        .unwrap()
        .boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    lab.shutdown().await;
}

#[tokio::test]
async fn api_error_rate_fault_returns_503() {
    let lab = start_lab().await;
    // kube-rs retries 429/503/504 by default (up to 15 times with backoff); see the raw answer instead.
    let mut config = kube_config(&lab).await;
    config.default_retry = false;
    let api: Api<Namespace> = Api::all(kube::Client::try_from(config).unwrap());
    lab.set_faults(FaultSpec::parse("api-error-rate=1.0,latency-ms=5").unwrap());
    let err = api.get("default").await.unwrap_err();
    assert_eq!(api_code(&err), Some(503));
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
    let err = api.create(&PostParams::default(), &ns).await.unwrap_err();
    assert_eq!(api_code(&err), Some(500));
    lab.set_faults(FaultSpec::default());
    assert!(api.get("default").await.is_ok());
    // With its default retry policy, kube-rs rides out an occasional 503 on reads.
    lab.set_faults(FaultSpec::parse("api-error-rate=0.3").unwrap());
    let retrying: Api<Namespace> = Api::all(kube_client(&lab).await);
    for _ in 0..5 {
        assert!(retrying.get("default").await.is_ok());
    }
    lab.shutdown().await;
}

#[tokio::test]
async fn seeded_cluster_reports_the_mtv_version() {
    let lab = LabServer::start(LabOptions {
        mtv_version: "2.9.3".into(),
        ..super::bare()
    })
    .await
    .unwrap();
    let client = kube_client(&lab).await;
    let gvk = GroupVersionKind::gvk("operators.coreos.com", "v1alpha1", "ClusterServiceVersion");
    let csvs: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "openshift-mtv",
        &ApiResource::from_gvk_with_plural(&gvk, "clusterserviceversions"),
    );
    let csv = csvs.get("mtv-operator.v2.9.3").await.unwrap();
    assert_eq!(csv.data["spec"]["version"], "2.9.3");
    let gvk = GroupVersionKind::gvk("forklift.konveyor.io", "v1beta1", "Provider");
    let providers: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "openshift-mtv",
        &ApiResource::from_gvk_with_plural(&gvk, "providers"),
    );
    let host = providers.get("host").await.unwrap();
    assert_eq!(host.data["spec"]["type"], "openshift");
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(client.clone(), "openshift-mtv");
    let running: Vec<String> = pods
        .list(&ListParams::default().fields("status.phase=Running"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(
        running
            .iter()
            .any(|n| n.starts_with("forklift-controller-"))
    );
    assert!(running.iter().any(|n| n.starts_with("forklift-api-")));
    let classes: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(client);
    let default_class = classes.get("lab-ceph-rbd").await.unwrap();
    assert_eq!(
        default_class.metadata.annotations.unwrap()["storageclass.kubernetes.io/is-default-class"],
        "true"
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn dry_run_json_patch_selectors_and_delete_collection() {
    let lab = start_lab().await;
    let client = kube_client(&lab).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let cm = |name: &str, tier: &str| -> ConfigMap {
        serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"tier": tier}}, "data": {"k": "v"}}),
        )
        .unwrap()
    };
    let preview = api.create(&dry, &cm("dry", "x")).await.unwrap();
    assert_eq!(preview.metadata.name.as_deref(), Some("dry"));
    assert_eq!(api_code(&api.get("dry").await.unwrap_err()), Some(404));
    for (name, tier) in [
        ("web-1", "web"),
        ("web-2", "web"),
        ("db-1", "db"),
        ("cache-1", "cache"),
    ] {
        api.create(&PostParams::default(), &cm(name, tier))
            .await
            .unwrap();
    }
    let names = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        list.items
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier in (web,db)"))
                .await
                .unwrap()
        )
        .len(),
        3
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier notin (web),tier"))
                .await
                .unwrap()
        ),
        vec!["cache-1", "db-1"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier!=web"))
                .await
                .unwrap()
        )
        .len(),
        2
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=db-1"))
                .await
                .unwrap()
        ),
        vec!["db-1"]
    );
    let patched = api
        .patch(
            "db-1",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([{"op": "add", "path": "/data/extra", "value": "1"}]))
                    .unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["extra"], "1");
    let deleted = api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("tier=web"),
        )
        .await
        .unwrap();
    assert!(deleted.is_left());
    assert_eq!(
        names(api.list(&ListParams::default()).await.unwrap()),
        vec!["cache-1", "db-1"]
    );
    // generateName over HTTP.
    let generated: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let created = api
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let name = created.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    // A method the resource does not serve is a 405 Status.
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/api/v1/namespaces/default/configmaps/db-1")
        .header("content-type", "application/json")
        .body(b"{}".to_vec())
        .unwrap();
    let err = client.request::<ConfigMap>(request).await.unwrap_err();
    assert_eq!(api_code(&err), Some(405));
    lab.shutdown().await;
}

#[tokio::test]
async fn finalizers_and_owner_garbage_collection_over_http() {
    let lab = start_lab().await;
    let api: Api<ConfigMap> = Api::namespaced(kube_client(&lab).await, "default");
    let owner: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap();
    let owner = api.create(&PostParams::default(), &owner).await.unwrap();
    let dependent: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dependent", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.clone().unwrap()}
    ]}}))
    .unwrap();
    api.create(&PostParams::default(), &dependent)
        .await
        .unwrap();
    let held: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["mtv.test/hold"]}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &held).await.unwrap();
    api.delete("owner", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        api_code(&api.get("dependent").await.unwrap_err()),
        Some(404)
    );
    // Foreground: the owner stays until its (finalizer-held) dependent is gone.
    let fg_owner: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "fg-owner"}})).unwrap();
    let fg_owner = api.create(&PostParams::default(), &fg_owner).await.unwrap();
    let child: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "fg-child", "finalizers": ["mtv.test/hold"], "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "fg-owner", "uid": fg_owner.metadata.uid.clone().unwrap(), "blockOwnerDeletion": true}
    ]}}))
    .unwrap();
    api.create(&PostParams::default(), &child).await.unwrap();
    let waiting = api
        .delete("fg-owner", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(
        waiting.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );
    api.patch(
        "fg-child",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_code(&api.get("fg-owner").await.unwrap_err()), Some(404));
    let pending = api.delete("held", &DeleteParams::default()).await.unwrap();
    let pending = pending
        .left()
        .expect("the object is returned while finalizers hold it");
    assert!(pending.metadata.deletion_timestamp.is_some());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_code(&api.get("held").await.unwrap_err()), Some(404));
    lab.shutdown().await;
}

/// A raw request through the kube-rs client: status, content type, `Warning` headers and JSON body.
async fn raw(
    client: &kube::Client,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, String, Vec<String>, Value) {
    let mut builder = axum::http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let bytes = body
        .map(|b| serde_json::to_vec(&b).unwrap())
        .unwrap_or_default();
    let response = client
        .send(builder.body(kube::client::Body::from(bytes)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let body = response.into_body().collect_bytes().await.unwrap();
    (
        status,
        content_type,
        warnings,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn content_negotiation_discovery_tables_and_warnings() {
    let lab = start_lab().await;
    let client = kube_client(&lab).await;
    let v2 =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let (code, content_type, _, doc) = raw(&client, "GET", "/apis", &[("accept", v2)], None).await;
    assert_eq!(code, 200);
    assert!(
        content_type.contains("as=APIGroupDiscoveryList"),
        "{content_type}"
    );
    assert_eq!(doc["kind"], "APIGroupDiscoveryList");
    let (_, content_type, _, doc) = raw(
        &client,
        "GET",
        "/apis",
        &[("accept", "application/json")],
        None,
    )
    .await;
    assert_eq!(content_type, "application/json");
    assert_eq!(doc["kind"], "APIGroupList");
    let table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let (_, _, _, table) = raw(
        &client,
        "GET",
        "/api/v1/nodes",
        &[("accept", table_accept)],
        None,
    )
    .await;
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["rows"].as_array().unwrap().len(), 2);
    assert_eq!(table["rows"][0]["cells"][1], "Ready");
    assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    let meta_accept = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io";
    let (_, _, _, partial) = raw(
        &client,
        "GET",
        "/api/v1/namespaces",
        &[("accept", meta_accept)],
        None,
    )
    .await;
    assert_eq!(partial["kind"], "PartialObjectMetadataList");
    // Unknown fields are pruned with a Warning by default, and rejected under Strict.
    let plan = json!({
        "apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Plan",
        "metadata": {"name": "warned"},
        "spec": {"targetNamespace": "default", "vms": [], "bogus": true,
                 "provider": {"source": {"name": "a"}, "destination": {"name": "host"}},
                 "map": {"network": {"name": "n"}, "storage": {"name": "s"}}}
    });
    let plans = "/apis/forklift.konveyor.io/v1beta1/namespaces/openshift-mtv/plans";
    let json_ct = [("content-type", "application/json")];
    let (code, _, warnings, created) =
        raw(&client, "POST", plans, &json_ct, Some(plan.clone())).await;
    assert_eq!(code, 201);
    assert!(created["spec"].get("bogus").is_none());
    assert_eq!(
        warnings,
        vec![r#"299 - "unknown field \"spec.bogus\"""#.to_string()]
    );
    let mut strict = plan.clone();
    strict["metadata"]["name"] = json!("strict");
    let (code, _, _, status) = raw(
        &client,
        "POST",
        &format!("{plans}?fieldValidation=Strict"),
        &json_ct,
        Some(strict),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(status["reason"], "BadRequest");
    // A server dry run answers the object without storing it.
    let mut dry = plan;
    dry["metadata"]["name"] = json!("dry");
    let (code, _, _, answered) = raw(
        &client,
        "POST",
        &format!("{plans}?dryRun=All"),
        &json_ct,
        Some(dry),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(answered["spec"]["preserveStaticIPs"], true);
    let (code, _, _, missing) = raw(&client, "GET", &format!("{plans}/dry"), &[], None).await;
    assert_eq!(code, 404);
    assert_eq!(missing["kind"], "Status");
    assert_eq!(missing["details"]["name"], "dry");
    // Patches in an unsupported format are 415; unknown paths are 404 Status objects.
    let (code, _, _, _) = raw(
        &client,
        "PATCH",
        &format!("{plans}/warned"),
        &json_ct,
        Some(json!({})),
    )
    .await;
    assert_eq!(code, 415);
    let (code, _, _, status) =
        raw(&client, "GET", "/apis/nothing.example/v1/things", &[], None).await;
    assert_eq!((code, status["kind"].as_str()), (404, Some("Status")));
    lab.shutdown().await;
}

#[tokio::test]
async fn extra_routes_are_served_beside_the_api() {
    let routes = axum::Router::new().route(
        "/lab/ping",
        axum::routing::get(|| async { axum::Json(json!({"pong": true})) }),
    );
    let lab = LabServer::start_with(super::bare(), routes).await.unwrap();
    let client = kube_client(&lab).await;
    let (code, _, _, body) = raw(&client, "GET", "/lab/ping", &[], None).await;
    assert_eq!((code, body), (200, json!({"pong": true})));
    let (code, _, _, _) = raw(&client, "GET", "/api/v1/namespaces/default", &[], None).await;
    assert_eq!(code, 200);
    lab.shutdown().await;
}

#[tokio::test]
async fn pod_logs_come_from_the_log_annotation() {
    let lab = start_lab().await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> =
        Api::namespaced(kube_client(&lab).await, "default");
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "metadata": {"name": "populator", "annotations": {registry::POD_LOG_ANNOTATION: "line one\nline two\nxcopyUsed=1\n"}},
        "spec": {"containers": [{"name": "populate", "image": "example"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let all = pods
        .logs("populator", &kube::api::LogParams::default())
        .await
        .unwrap();
    assert_eq!(all, "line one\nline two\nxcopyUsed=1\n");
    let tail = pods
        .logs(
            "populator",
            &kube::api::LogParams {
                tail_lines: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tail, "xcopyUsed=1\n");
    assert_eq!(
        api_code(
            &pods
                .logs("absent", &kube::api::LogParams::default())
                .await
                .unwrap_err()
        ),
        Some(404)
    );
    lab.shutdown().await;
}

/// The lines of a raw watch stream that the server ends (via `timeoutSeconds`).
async fn watch_lines(client: &kube::Client, uri: &str) -> Vec<Value> {
    let request = axum::http::Request::builder()
        .uri(uri)
        .body(kube::client::Body::from(Vec::new()))
        .unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = tokio::time::timeout(
        Duration::from_secs(20),
        response.into_body().collect_bytes(),
    )
    .await
    .expect("the server ends the watch at timeoutSeconds")
    .unwrap();
    String::from_utf8_lossy(&body)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

#[tokio::test]
async fn raw_watch_streams_bookmarks_initial_events_and_timeouts() {
    let lab = LabServer::start(LabOptions {
        bookmark_interval: Duration::from_millis(200),
        ..super::bare()
    })
    .await
    .unwrap();
    let client = kube_client(&lab).await;
    let rv = lab.store().resource_version();
    // Periodic bookmarks carry the current resourceVersion; the stream ends at timeoutSeconds.
    let lines = watch_lines(
        &client,
        &format!("/api/v1/namespaces?watch=true&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion={rv}"),
    )
    .await;
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l["type"] == "BOOKMARK"), "{lines:?}");
    assert_eq!(
        lines[0]["object"]["metadata"]["resourceVersion"],
        rv.to_string()
    );
    assert_eq!(lines[0]["object"]["kind"], "Namespace");
    // sendInitialEvents: ADDED for each object, then the initial-events-end bookmark.
    let lines = watch_lines(
        &client,
        "/api/v1/namespaces?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=1",
    )
    .await;
    let added = lines.iter().take_while(|l| l["type"] == "ADDED").count();
    assert_eq!(added, 3, "{lines:?}");
    assert_eq!(lines[3]["type"], "BOOKMARK");
    assert_eq!(
        lines[3]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    // A selector-filtered watch of one namespace's secrets sees only matching changes.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let watcher_client = client.clone();
    let rv = lab.store().resource_version();
    let reader = tokio::spawn(async move {
        watch_lines(
            &watcher_client,
            &format!("/api/v1/namespaces/default/secrets?watch=true&labelSelector=pick%3Dme&timeoutSeconds=2&resourceVersion={rv}"),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (name, pick) in [("a", "me"), ("b", "other")] {
        let s: Secret =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"pick": pick}}}))
                .unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    let lines = reader.await.unwrap();
    let names: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["object"]["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, vec!["a"]);
    assert_eq!(lines[0]["type"], "ADDED");
    lab.shutdown().await;
}
