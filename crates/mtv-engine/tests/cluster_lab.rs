//! `Cluster` against the embedded lab's API server, over HTTP through kube-rs: creates are recorded in
//! the ledger before they return, waits see status written by a controller, timeouts say what they
//! waited for, deletes are observed.

mod common;

use std::time::Duration;

use common::{lab_cluster as setup, namespace, object};
use mtv_engine::cluster::{Cluster, ClusterError, Kind, Verdict, condition, kinds};
use mtv_engine::events::Event;
use mtv_engine::ledger::{Ledger, LedgerEntry};
use mtv_lab::LabServer;
use serde_json::{Value, json};

/// Marks the Hook `namespace/name` Ready with `message` after `delay`, as the lab's Forklift would,
/// while the test waits for it.
fn mark_hook_ready_later(
    lab: &LabServer,
    namespace: &'static str,
    name: &'static str,
    delay: Duration,
    message: &'static str,
) -> tokio::task::JoinHandle<()> {
    let store = lab.store().clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let rt = mtv_lab::registry::find("forklift.konveyor.io", "v1beta1", "hooks").unwrap();
        let status = json!({"conditions": [{"type": "Ready", "status": "True", "category": "Required", "message": message, "lastTransitionTime": "2026-11-25T00:00:00Z"}]});
        store
            .update_status(rt, Some(namespace), name, status)
            .unwrap();
    })
}

/// Creates the Hook `namespace/name` with the hook-runner image and returns the created object.
async fn hook(cluster: &Cluster, namespace: &str, name: &str) -> Value {
    cluster
        .create(
            &kinds::HOOK,
            Some(namespace),
            json!({"metadata": {"name": name}, "spec": {"image": "quay.io/konveyor/hook-runner:latest"}}),
            None,
        )
        .await
        .unwrap()
}

/// A Hook's Ready condition's message, once it has one.
fn ready_message(hook: &Value) -> Verdict<String> {
    match condition(hook, "Ready") {
        Some(c) => Verdict::Done(c["message"].as_str().unwrap_or("").to_string()),
        None => Verdict::Pending("no Ready condition".into()),
    }
}

/// Done once a Hook has a Ready condition.
fn ready(hook: &Value) -> Verdict<()> {
    match condition(hook, "Ready") {
        Some(_) => Verdict::Done(()),
        None => Verdict::Pending("no Ready condition".into()),
    }
}

/// Waits up to 10 s for the Hook `namespace/name` until `decide` says done: from `known` when the
/// test holds the object, else from the object as it is now.
async fn wait_hook<T>(
    cluster: &Cluster,
    namespace: &str,
    name: &str,
    known: Option<&Value>,
    decide: fn(&Value) -> Verdict<T>,
) -> Result<T, ClusterError> {
    let what = format!("Hook {namespace}/{name} Ready");
    let (hook, namespace, timeout) = (&kinds::HOOK, Some(namespace), Duration::from_secs(10));
    match known {
        Some(known) => {
            cluster
                .wait_for_from(hook, namespace, name, timeout, &what, known, decide)
                .await
        }
        None => {
            cluster
                .wait_for(hook, namespace, name, timeout, &what, decide)
                .await
        }
    }
}

/// Creates empty ConfigMaps with these names in `namespace`.
async fn config_maps(cluster: &Cluster, namespace: &str, names: &[&str]) {
    for name in names {
        object(cluster, &kinds::CONFIG_MAP, Some(namespace), name)
            .await
            .unwrap();
    }
}

/// Whether the object `namespace/name` of `kind` is on the cluster.
async fn exists(cluster: &Cluster, kind: &Kind, namespace: Option<&str>, name: &str) -> bool {
    cluster.get(kind, namespace, name).await.unwrap().is_some()
}

/// Runs teardown, which must leave nothing behind and every ledger entry marked removed, and
/// returns how many API requests it made.
async fn teardown_requests(lab: &LabServer, cluster: &Cluster) -> u64 {
    let before = lab.request_count();
    let leftovers = mtv_engine::teardown::teardown(cluster, Duration::from_secs(20)).await;
    let requests = lab.request_count() - before;
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(cluster.ledger().entries().iter().all(|e| e.is_removed()));
    requests
}

#[tokio::test]
async fn creates_are_in_the_ledger_and_announced() {
    let (_lab, cluster, recorder, dir) = setup().await;
    namespace(&cluster, "auto-t1").await;
    let secret = cluster
        .create(
            &kinds::SECRET,
            Some("auto-t1"),
            json!({"metadata": {"generateName": "auto-t1-source-"}, "stringData": {"user": "u"}}),
            Some("TestX[a]"),
        )
        .await
        .unwrap();
    let name = secret["metadata"]["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("auto-t1-source-"));
    let ledger = Ledger::load(&dir.path().join("resources.json")).unwrap();
    assert_eq!(ledger.entries.len(), 2);
    assert!(
        matches!(&ledger.entries[1], LedgerEntry::Kube { resource, scenario, .. }
        if resource.name == name && scenario.as_deref() == Some("TestX[a]") && resource.uid.is_some())
    );
    let created = recorder
        .events()
        .iter()
        .filter(|e| matches!(e, Event::ResourceCreated { .. }))
        .count();
    assert_eq!(created, 2);
}

#[tokio::test]
async fn waits_see_status_written_by_a_controller() {
    let (lab, cluster, _recorder, _dir) = setup().await;
    namespace(&cluster, "w1").await;
    hook(&cluster, "w1", "h1").await;
    let writer = mark_hook_ready_later(
        &lab,
        "w1",
        "h1",
        Duration::from_millis(300),
        "The hook is ready.",
    );
    let message = wait_hook(&cluster, "w1", "h1", None, ready_message)
        .await
        .unwrap();
    assert_eq!(message, "The hook is ready.");
    writer.await.unwrap();
}

#[tokio::test]
async fn a_timeout_says_what_it_waited_for_and_what_it_saw() {
    let (_lab, cluster, _recorder, _dir) = setup().await;
    namespace(&cluster, "t2").await;
    config_maps(&cluster, "t2", &["c"]).await;
    let err = cluster
        .wait_for(
            &kinds::CONFIG_MAP,
            Some("t2"),
            "c",
            Duration::from_millis(400),
            "ConfigMap t2/c to be Ready",
            |_| Verdict::<()>::Pending("no data".into()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Timeout { .. }));
    let text = err.to_string();
    assert!(text.contains("ConfigMap t2/c to be Ready"), "{text}");
    assert!(text.contains("last seen: no data"), "{text}");
}

#[tokio::test]
async fn deletes_are_observed_and_repeat_deletes_are_harmless() {
    let (_lab, cluster, _recorder, _dir) = setup().await;
    namespace(&cluster, "d1").await;
    object(&cluster, &kinds::SECRET, Some("d1"), "s")
        .await
        .unwrap();
    assert!(
        cluster
            .delete(&kinds::SECRET, Some("d1"), "s")
            .await
            .unwrap()
    );
    cluster
        .wait_gone(&kinds::SECRET, Some("d1"), "s", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        !cluster
            .delete(&kinds::SECRET, Some("d1"), "s")
            .await
            .unwrap()
    );
    assert!(!exists(&cluster, &kinds::SECRET, Some("d1"), "s").await);
}

#[tokio::test]
async fn an_object_that_cannot_go_away_is_a_leftover() {
    let (lab, cluster, recorder, _dir) = setup().await;
    namespace(&cluster, "stuck").await;
    // A finalizer nobody removes keeps the ConfigMap after its deletion is requested.
    cluster
        .create(
            &kinds::CONFIG_MAP,
            Some("stuck"),
            json!({"metadata": {"name": "held", "finalizers": ["example.com/never"]}}),
            None,
        )
        .await
        .unwrap();
    let leftovers = mtv_engine::teardown::teardown(&cluster, Duration::from_millis(500)).await;
    let names: Vec<&str> = leftovers.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&"held"), "{leftovers:?}");
    let reported = recorder
        .events()
        .iter()
        .any(|e| matches!(e, Event::TeardownFinished { leftovers } if !leftovers.is_empty()));
    assert!(reported);
    // The ledger still lists it, so a later `clean` can try again.
    let open: Vec<_> = cluster
        .ledger()
        .entries()
        .into_iter()
        .filter(|e| !e.is_removed())
        .collect();
    assert!(!open.is_empty());
    lab.shutdown().await;
}

/// A wait that starts from an object the caller holds (a create's answer) watches from its
/// resourceVersion: one request (the watch), not a list and then a watch; and it sees the change.
#[tokio::test]
async fn a_wait_from_a_known_object_needs_no_list() {
    let (lab, cluster, _recorder, _dir) = setup().await;
    namespace(&cluster, "w2").await;
    let created = hook(&cluster, "w2", "h2").await;
    let before = lab.request_count();
    let writer = mark_hook_ready_later(
        &lab,
        "w2",
        "h2",
        Duration::from_millis(200),
        "ready from the watch",
    );
    let message = wait_hook(&cluster, "w2", "h2", Some(&created), ready_message)
        .await
        .unwrap();
    writer.await.unwrap();
    // The lab's Forklift may make the Hook Ready before the writer does; either came by the watch.
    assert!(
        ["ready from the watch", "The hook is ready."].contains(&message.as_str()),
        "{message}"
    );
    assert_eq!(lab.request_count() - before, 1, "the watch alone");
    // An object the caller already knows to be done ends the wait without any request.
    let known = cluster
        .get(&kinds::HOOK, Some("w2"), "h2")
        .await
        .unwrap()
        .unwrap();
    let before = lab.request_count();
    let done = wait_hook(&cluster, "w2", "h2", Some(&known), ready).await;
    assert!(done.is_ok());
    assert_eq!(lab.request_count(), before);
}

/// Waits on several objects of one kind in one namespace read one shared watch: the first wait opens
/// it (one request), the next ones cost nothing, also for an object made after the watch opened.
#[tokio::test]
async fn waits_in_one_namespace_share_one_watch() {
    let (lab, cluster, _recorder, _dir) = setup().await;
    namespace(&cluster, "w3").await;
    let mut requests = Vec::new();
    for name in ["h1", "h2", "h3"] {
        let created = hook(&cluster, "w3", name).await;
        let before = lab.request_count();
        wait_hook(&cluster, "w3", name, Some(&created), ready)
            .await
            .unwrap();
        requests.push(lab.request_count() - before);
    }
    assert_eq!(requests, [1, 0, 0], "one watch for the three waits");
    // A wait with nothing in hand reads the same watch.
    let before = lab.request_count();
    wait_hook(&cluster, "w3", "h1", None, ready).await.unwrap();
    assert_eq!(lab.request_count(), before);
    lab.shutdown().await;
}

/// Teardown deletes a namespace the run made as a whole: one delete for the namespace and its
/// recorded contents, one watch to see it go, and every entry marked removed and announced.
#[tokio::test]
async fn teardown_deletes_a_run_namespace_whole_with_a_delete_and_a_watch() {
    let (lab, cluster, recorder, _dir) = setup().await;
    namespace(&cluster, "whole").await;
    config_maps(&cluster, "whole", &["a", "b", "c", "d"]).await;
    assert_eq!(
        teardown_requests(&lab, &cluster).await,
        2,
        "the namespace's delete and one watch"
    );
    let deleted = recorder
        .events()
        .iter()
        .filter(|e| matches!(e, Event::ResourceDeleted { .. }))
        .count();
    assert_eq!(deleted, 5);
    assert!(!exists(&cluster, &kinds::NAMESPACE, None, "whole").await);
    lab.shutdown().await;
}

/// An object without finalizers goes at once, and the API server answers its delete with the
/// object's last state (no deletionTimestamp), whose resourceVersion is the deletion's own: teardown
/// counts it gone then and there. Were it taken for one still being deleted, a watch from that
/// version would never see it go, and teardown would wait out its deadline.
#[tokio::test]
async fn teardown_counts_an_object_deleted_at_once_as_gone_without_a_watch() {
    let (lab, cluster, recorder, _dir) = setup().await;
    config_maps(&cluster, "default", &["x", "y", "z"]).await;
    assert_eq!(
        teardown_requests(&lab, &cluster).await,
        3,
        "three deletes, and no watch or read after them"
    );
    let notes: Vec<String> = recorder
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::TeardownNote { message } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert!(notes.is_empty(), "{notes:?}");
    lab.shutdown().await;
}

/// A create is in the ledger before it is sent: one the API server refused leaves nothing there; one
/// whose answer never came (an entry without uid) is settled by teardown, which deletes the object
/// when it carries the session's label and leaves anyone else's alone.
#[tokio::test]
async fn creates_are_written_down_before_they_are_sent_and_settled_at_teardown() {
    let (lab, cluster, recorder, _dir) = setup().await;
    let refused = object(
        &cluster,
        &kinds::CONFIG_MAP,
        Some("no-such-namespace"),
        "refused",
    )
    .await;
    assert!(refused.is_err());
    assert!(
        cluster.ledger().entries().is_empty(),
        "a refused create leaves no entry"
    );

    // As a run stopped while its creates waited for their answers leaves the ledger: names, no uids.
    let client = cluster.client().clone();
    let configmaps: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client, "default", &kinds::CONFIG_MAP.api_resource());
    for (name, labels) in [
        ("unanswered", json!({"mtv-tests/session": "auto-t1"})),
        ("someone-elses", json!({})),
    ] {
        let object: kube::api::DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "labels": labels}
        }))
        .unwrap();
        configmaps
            .create(&kube::api::PostParams::default(), &object)
            .await
            .unwrap();
        cluster
            .ledger()
            .record(LedgerEntry::Kube {
                resource: mtv_engine::events::ResourceRef {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    namespace: Some("default".into()),
                    name: name.into(),
                    uid: None,
                },
                scenario: None,
                removed: false,
            })
            .unwrap();
    }
    teardown_requests(&lab, &cluster).await;
    let configmap = |name| exists(&cluster, &kinds::CONFIG_MAP, Some("default"), name);
    assert!(
        !configmap("unanswered").await,
        "the session's object is deleted"
    );
    assert!(configmap("someone-elses").await, "another's object stays");
    let left_alone = recorder
        .events()
        .iter()
        .any(|e| matches!(e, Event::ResourceLeftAlone { resource, .. } if resource.name == "someone-elses"));
    assert!(left_alone);
}
