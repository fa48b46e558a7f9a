//! Leases on shared settings against the lab's API server, over HTTP: sessions needing the same value
//! share it, another value is refused, concurrent sessions never lose each other's lease (the
//! resourceVersion guards every change), the last one to leave restores the original, and an object
//! made again under the same name is not touched.

use std::sync::Arc;

use mtv_engine::cluster::{Cluster, kinds};
use mtv_engine::events::{Event, EventSink, ResourceRef};
use mtv_engine::lease::{LEASE_ANNOTATION, Released, Setting, acquire, release};
use mtv_engine::ledger::{Ledger, LedgerEntry};
use mtv_engine::target::{Target, client_for};
use mtv_lab::{LabOptions, LabServer};
use serde_json::{Value, json};

struct Quiet;

impl EventSink for Quiet {
    fn emit(&self, _event: Event) {}
}

const MTV: &str = "openshift-mtv";

fn precopy() -> Setting {
    Setting::Spec("controller_precopy_interval".into())
}

/// One session's view of the cluster: its own ledger, as a separate run has.
async fn session(lab: &LabServer, dir: &tempfile::TempDir, id: &str) -> Cluster {
    let client = client_for(&Target::InMemory {
        kubeconfig_yaml: lab.kubeconfig_yaml(),
    })
    .await
    .expect("client");
    let ledger = Ledger::create(&dir.path().join(format!("{id}.json")), id, "lab").unwrap();
    Cluster::new(client, Arc::new(ledger), Arc::new(Quiet))
}

async fn controller(cluster: &Cluster) -> Value {
    cluster
        .list(&kinds::FORKLIFT_CONTROLLER, Some(MTV), None)
        .await
        .unwrap()
        .remove(0)
}

fn sessions_holding(controller: &Value) -> Vec<String> {
    let Some(text) = controller["metadata"]["annotations"][LEASE_ANNOTATION].as_str() else {
        return Vec::new();
    };
    let leases: Value = serde_json::from_str(text).unwrap();
    let mut sessions: Vec<String> = leases["spec.controller_precopy_interval"]["sessions"]
        .as_array()
        .map(|s| s.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    sessions.sort();
    sessions
}

/// The lease entry a session's ledger holds.
fn recorded_lease(cluster: &Cluster) -> (ResourceRef, String, String) {
    cluster
        .ledger()
        .entries()
        .into_iter()
        .find_map(|e| match e {
            LedgerEntry::Lease {
                resource,
                setting,
                session,
                ..
            } => Some((resource, setting, session)),
            _ => None,
        })
        .expect("the lease is in the ledger")
}

async fn setup() -> (LabServer, tempfile::TempDir, Cluster, String) {
    let lab = LabServer::start(LabOptions::default())
        .await
        .expect("lab starts");
    let dir = tempfile::tempdir().unwrap();
    let admin = session(&lab, &dir, "admin").await;
    let name = controller(&admin).await["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    // An administrator's value, which the last session must put back.
    admin
        .merge_patch(
            &kinds::FORKLIFT_CONTROLLER,
            Some(MTV),
            &name,
            json!({"spec": {"controller_precopy_interval": 60}}),
        )
        .await
        .unwrap();
    (lab, dir, admin, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_session_to_leave_restores_the_original_and_another_value_is_refused() {
    let (lab, dir, admin, name) = setup().await;
    let a = session(&lab, &dir, "auto-aaaa").await;
    let b = session(&lab, &dir, "auto-bbbb").await;
    let c = session(&lab, &dir, "auto-cccc").await;
    let take = |cluster: &Cluster, minutes: u64, id: &'static str| {
        let cluster = cluster.clone();
        let name = name.clone();
        async move {
            acquire(
                &cluster,
                &kinds::FORKLIFT_CONTROLLER,
                Some(MTV),
                &name,
                &precopy(),
                json!(minutes),
                id,
            )
            .await
        }
    };
    take(&a, 2, "auto-aaaa").await.unwrap();
    take(&b, 2, "auto-bbbb").await.unwrap();
    let refused = take(&c, 5, "auto-cccc").await.unwrap_err().to_string();
    assert!(
        refused.contains("sessions auto-aaaa, auto-bbbb hold it at 2, and this run needs 5"),
        "{refused}"
    );
    let now = controller(&admin).await;
    assert_eq!(now["spec"]["controller_precopy_interval"], 2);
    assert_eq!(sessions_holding(&now), ["auto-aaaa", "auto-bbbb"]);
    assert!(
        c.ledger().entries().is_empty(),
        "a refused lease is not ledgered"
    );

    let (resource, setting, id) = recorded_lease(&a);
    assert_eq!(setting, "spec.controller_precopy_interval");
    assert_eq!(resource.uid.as_deref(), now["metadata"]["uid"].as_str());
    let kind = kinds::FORKLIFT_CONTROLLER;
    assert_eq!(
        release(&a, &kind, &resource, &precopy(), &id)
            .await
            .unwrap(),
        Released::StillHeld {
            sessions: vec!["auto-bbbb".into()]
        }
    );
    assert_eq!(
        controller(&admin).await["spec"]["controller_precopy_interval"],
        2
    );
    // Releasing twice (a clean after a finished teardown) changes nothing.
    assert_eq!(
        release(&a, &kind, &resource, &precopy(), &id)
            .await
            .unwrap(),
        Released::NotHeld
    );
    let (resource, _, id) = recorded_lease(&b);
    assert_eq!(
        release(&b, &kind, &resource, &precopy(), &id)
            .await
            .unwrap(),
        Released::Restored
    );
    let now = controller(&admin).await;
    assert_eq!(now["spec"]["controller_precopy_interval"], 60);
    assert!(
        now["metadata"]["annotations"][LEASE_ANNOTATION].is_null(),
        "{now:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_never_lose_each_others_lease() {
    let (lab, dir, admin, name) = setup().await;
    let ids: Vec<String> = (0..8).map(|i| format!("auto-s00{i}")).collect();
    let mut sessions = Vec::new();
    for id in &ids {
        sessions.push(session(&lab, &dir, id).await);
    }
    let setting = precopy();
    let takes = sessions.iter().zip(&ids).map(|(cluster, id)| {
        acquire(
            cluster,
            &kinds::FORKLIFT_CONTROLLER,
            Some(MTV),
            &name,
            &setting,
            json!(2),
            id,
        )
    });
    for result in futures_util::future::join_all(takes).await {
        result.unwrap();
    }
    let now = controller(&admin).await;
    assert_eq!(sessions_holding(&now), ids);
    assert_eq!(now["spec"]["controller_precopy_interval"], 2);

    let leaves = sessions.iter().map(|cluster| async move {
        let (resource, _, id) = recorded_lease(cluster);
        release(
            cluster,
            &kinds::FORKLIFT_CONTROLLER,
            &resource,
            &precopy(),
            &id,
        )
        .await
        .unwrap()
    });
    let released = futures_util::future::join_all(leaves).await;
    assert_eq!(
        released
            .iter()
            .filter(|r| **r == Released::Restored)
            .count(),
        1,
        "exactly one session is the last: {released:?}"
    );
    let now = controller(&admin).await;
    assert_eq!(now["spec"]["controller_precopy_interval"], 60);
    assert!(now["metadata"]["annotations"][LEASE_ANNOTATION].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_label_lease_is_not_released_on_another_object_of_the_same_name() {
    let (lab, dir, admin, _) = setup().await;
    let a = session(&lab, &dir, "auto-aaaa").await;
    let node = admin
        .list(&kinds::NODE, None, None)
        .await
        .unwrap()
        .remove(0);
    let node_name = node["metadata"]["name"].as_str().unwrap();
    let label = Setting::Label("example.com/zone".into());
    acquire(
        &a,
        &kinds::NODE,
        None,
        node_name,
        &label,
        json!("east"),
        "auto-aaaa",
    )
    .await
    .unwrap();
    // The Node as the admin reads it now.
    let node_now = || async {
        admin
            .get(&kinds::NODE, None, node_name)
            .await
            .unwrap()
            .expect("the Node")
    };
    let labelled = node_now().await;
    assert_eq!(labelled["metadata"]["labels"]["example.com/zone"], "east");

    let (mut resource, _, id) = recorded_lease(&a);
    resource.uid = Some("0000-not-this-node".into());
    let found = release(&a, &kinds::NODE, &resource, &label, &id)
        .await
        .unwrap();
    assert_eq!(
        found,
        Released::NotOurs {
            uid: labelled["metadata"]["uid"].as_str().unwrap().to_string()
        }
    );
    let still = node_now().await;
    assert_eq!(still["metadata"]["labels"]["example.com/zone"], "east");

    let (resource, _, id) = recorded_lease(&a);
    assert_eq!(
        release(&a, &kinds::NODE, &resource, &label, &id)
            .await
            .unwrap(),
        Released::Restored
    );
    let restored = node_now().await;
    assert!(restored["metadata"]["labels"]["example.com/zone"].is_null());
}
