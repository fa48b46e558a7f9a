//! `Cluster` against the embedded lab's API server, over HTTP through kube-rs: creates are recorded in
//! the ledger before they return, waits see status written by a controller, timeouts say what they
//! waited for, deletes are observed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mtv_engine::cluster::{Cluster, ClusterError, Verdict, condition, kinds};
use mtv_engine::events::{Event, EventSink};
use mtv_engine::ledger::{Ledger, LedgerEntry};
use mtv_engine::target::{Target, client_for};
use mtv_lab::{LabOptions, LabServer};
use serde_json::json;

#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl EventSink for Recorder {
    fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

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

async fn setup() -> (LabServer, Cluster, Arc<Recorder>, tempfile::TempDir) {
    let lab = LabServer::start(LabOptions::default())
        .await
        .expect("lab starts");
    let client = client_for(&Target::InMemory {
        kubeconfig_yaml: lab.kubeconfig_yaml(),
    })
    .await
    .expect("client");
    let dir = tempfile::tempdir().unwrap();
    let ledger =
        Arc::new(Ledger::create(&dir.path().join("resources.json"), "auto-t1", "lab").unwrap());
    let recorder = Arc::new(Recorder::default());
    let cluster = Cluster::new(client, ledger, recorder.clone());
    (lab, cluster, recorder, dir)
}

/// Creates an object of `kind` named `name` in `namespace`, with nothing else set.
async fn object(cluster: &Cluster, kind: &mtv_engine::cluster::Kind, namespace: &str, name: &str) {
    cluster
        .create(
            kind,
            Some(namespace),
            json!({"metadata": {"name": name}}),
            None,
        )
        .await
        .unwrap();
}

/// Creates a namespace of the test's.
async fn namespace(cluster: &Cluster, name: &str) {
    cluster
        .create(
            &kinds::NAMESPACE,
            None,
            json!({"metadata": {"name": name}}),
            None,
        )
        .await
        .unwrap();
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
    let events = recorder.0.lock().unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::ResourceCreated { .. }))
            .count(),
        2
    );
}

#[tokio::test]
async fn waits_see_status_written_by_a_controller() {
    let (lab, cluster, _recorder, _dir) = setup().await;
    namespace(&cluster, "w1").await;
    cluster
        .create(
            &kinds::HOOK,
            Some("w1"),
            json!({"metadata": {"name": "h1"}, "spec": {"image": "quay.io/konveyor/hook-runner:latest"}}),
            None,
        )
        .await
        .unwrap();
    let writer = mark_hook_ready_later(
        &lab,
        "w1",
        "h1",
        Duration::from_millis(300),
        "The hook is ready.",
    );
    let message = cluster
        .wait_for(
            &kinds::HOOK,
            Some("w1"),
            "h1",
            Duration::from_secs(10),
            "Hook w1/h1 Ready",
            |hook| match condition(hook, "Ready") {
                Some(c) => Verdict::Done(c["message"].as_str().unwrap_or("").to_string()),
                None => Verdict::Pending("no Ready condition".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(message, "The hook is ready.");
    writer.await.unwrap();
}

#[tokio::test]
async fn a_timeout_says_what_it_waited_for_and_what_it_saw() {
    let (_lab, cluster, _recorder, _dir) = setup().await;
    namespace(&cluster, "t2").await;
    object(&cluster, &kinds::CONFIG_MAP, "t2", "c").await;
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
    object(&cluster, &kinds::SECRET, "d1", "s").await;
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
    let err = cluster.get(&kinds::SECRET, Some("d1"), "s").await.unwrap();
    assert!(err.is_none());
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
        .0
        .lock()
        .unwrap()
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
    let created = cluster
        .create(
            &kinds::HOOK,
            Some("w2"),
            json!({"metadata": {"name": "h2"}, "spec": {"image": "quay.io/konveyor/hook-runner"}}),
            None,
        )
        .await
        .unwrap();
    let before = lab.request_count();
    let writer = mark_hook_ready_later(
        &lab,
        "w2",
        "h2",
        Duration::from_millis(200),
        "ready from the watch",
    );
    let message = cluster
        .wait_for_from(
            &kinds::HOOK,
            Some("w2"),
            "h2",
            Duration::from_secs(10),
            "Hook w2/h2 Ready",
            &created,
            |hook| match condition(hook, "Ready") {
                Some(c) => Verdict::Done(c["message"].as_str().unwrap_or("").to_string()),
                None => Verdict::Pending("no Ready condition".into()),
            },
        )
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
    let ready = cluster
        .get(&kinds::HOOK, Some("w2"), "h2")
        .await
        .unwrap()
        .unwrap();
    let before = lab.request_count();
    let done = cluster
        .wait_for_from(
            &kinds::HOOK,
            Some("w2"),
            "h2",
            Duration::from_secs(10),
            "Hook w2/h2 Ready",
            &ready,
            |hook| match condition(hook, "Ready") {
                Some(_) => Verdict::Done(()),
                None => Verdict::Pending("no Ready condition".into()),
            },
        )
        .await;
    assert!(done.is_ok());
    assert_eq!(lab.request_count(), before);
}

/// Waits on several objects of one kind in one namespace read one shared watch: the first wait opens
/// it (one request), the next ones cost nothing, also for an object made after the watch opened.
#[tokio::test]
async fn waits_in_one_namespace_share_one_watch() {
    let (lab, cluster, _recorder, _dir) = setup().await;
    namespace(&cluster, "w3").await;
    let hook = |name: &str| json!({"metadata": {"name": name}, "spec": {"image": "quay.io/konveyor/hook-runner"}});
    let ready = |hook: &serde_json::Value| match condition(hook, "Ready") {
        Some(_) => Verdict::Done(()),
        None => Verdict::Pending("no Ready condition".into()),
    };
    let mut requests = Vec::new();
    for name in ["h1", "h2", "h3"] {
        let created = cluster
            .create(&kinds::HOOK, Some("w3"), hook(name), None)
            .await
            .unwrap();
        let before = lab.request_count();
        cluster
            .wait_for_from(
                &kinds::HOOK,
                Some("w3"),
                name,
                Duration::from_secs(10),
                "Hook Ready",
                &created,
                ready,
            )
            .await
            .unwrap();
        requests.push(lab.request_count() - before);
    }
    assert_eq!(requests, [1, 0, 0], "one watch for the three waits");
    // A wait with nothing in hand reads the same watch.
    let before = lab.request_count();
    cluster
        .wait_for(
            &kinds::HOOK,
            Some("w3"),
            "h1",
            Duration::from_secs(10),
            "Hook Ready",
            ready,
        )
        .await
        .unwrap();
    assert_eq!(lab.request_count(), before);
    lab.shutdown().await;
}

/// Teardown deletes a namespace the run made as a whole: one delete for the namespace and its
/// recorded contents, one watch to see it go, and every entry marked removed and announced.
#[tokio::test]
async fn teardown_deletes_a_run_namespace_whole_with_a_delete_and_a_watch() {
    let (lab, cluster, recorder, _dir) = setup().await;
    namespace(&cluster, "whole").await;
    for name in ["a", "b", "c", "d"] {
        object(&cluster, &kinds::CONFIG_MAP, "whole", name).await;
    }
    let before = lab.request_count();
    let leftovers = mtv_engine::teardown::teardown(&cluster, Duration::from_secs(20)).await;
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(
        lab.request_count() - before,
        2,
        "the namespace's delete and one watch"
    );
    assert!(cluster.ledger().entries().iter().all(|e| e.is_removed()));
    let deleted = recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::ResourceDeleted { .. }))
        .count();
    assert_eq!(deleted, 5);
    assert!(
        cluster
            .get(&kinds::NAMESPACE, None, "whole")
            .await
            .unwrap()
            .is_none()
    );
    lab.shutdown().await;
}

/// An object without finalizers goes at once, and the API server answers its delete with the
/// object's last state (no deletionTimestamp), whose resourceVersion is the deletion's own: teardown
/// counts it gone then and there. Were it taken for one still being deleted, a watch from that
/// version would never see it go, and teardown would wait out its deadline.
#[tokio::test]
async fn teardown_counts_an_object_deleted_at_once_as_gone_without_a_watch() {
    let (lab, cluster, recorder, _dir) = setup().await;
    for name in ["x", "y", "z"] {
        object(&cluster, &kinds::CONFIG_MAP, "default", name).await;
    }
    let before = lab.request_count();
    let leftovers = mtv_engine::teardown::teardown(&cluster, Duration::from_secs(20)).await;
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(
        lab.request_count() - before,
        3,
        "three deletes, and no watch or read after them"
    );
    let notes: Vec<String> = recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::TeardownNote { message } => Some(message.clone()),
            _ => None,
        })
        .collect();
    assert!(notes.is_empty(), "{notes:?}");
    assert!(cluster.ledger().entries().iter().all(|e| e.is_removed()));
    lab.shutdown().await;
}

/// A create is in the ledger before it is sent: one the API server refused leaves nothing there; one
/// whose answer never came (an entry without uid) is settled by teardown, which deletes the object
/// when it carries the session's label and leaves anyone else's alone.
#[tokio::test]
async fn creates_are_written_down_before_they_are_sent_and_settled_at_teardown() {
    let (_lab, cluster, recorder, _dir) = setup().await;
    let refused = cluster
        .create(
            &kinds::CONFIG_MAP,
            Some("no-such-namespace"),
            json!({"metadata": {"name": "refused"}}),
            None,
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
    let leftovers = mtv_engine::teardown::teardown(&cluster, Duration::from_secs(20)).await;
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(
        cluster
            .get(&kinds::CONFIG_MAP, Some("default"), "unanswered")
            .await
            .unwrap()
            .is_none(),
        "the session's object is deleted"
    );
    assert!(
        cluster
            .get(&kinds::CONFIG_MAP, Some("default"), "someone-elses")
            .await
            .unwrap()
            .is_some(),
        "another's object stays"
    );
    let left_alone = recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::ResourceLeftAlone { resource, .. } if resource.name == "someone-elses"));
    assert!(left_alone);
    assert!(cluster.ledger().entries().iter().all(|e| e.is_removed()));
}
