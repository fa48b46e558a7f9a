//! The engine against an API server that fails some requests and a Forklift that refuses a Plan,
//! over HTTP through kube-rs as in a run: a create whose answer was lost is adopted only when the
//! object is this run's own; tier0 passes with one request in twenty failing; a Plan Forklift judged
//! invalid fails `test_create_plan` with Forklift's own words instead of waiting out the timeout.

mod common;

use common::{
    RunRequest, lab, lab_client, lab_cluster, lab_contents, namespace, object, run_on_lab,
};
use mtv_catalog::model::PvcNameTemplate;
use mtv_engine::cluster::{ClusterError, kinds};
use mtv_engine::events::{Event, StepOutcome};
use mtv_engine::ledger::LedgerEntry;
use mtv_engine::session::SESSION_LABEL;
use mtv_lab::LabServer;
use serde_json::{Value, json};

/// A ConfigMap made behind the run's back (no ledger entry), labelled as `session`'s.
async fn made_elsewhere(lab: &LabServer, name: &str, session: &str) -> String {
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        lab_client(lab).await,
        "auto-t1",
        &kinds::CONFIG_MAP.api_resource(),
    );
    let object = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {SESSION_LABEL: session}},
        "data": {"made": "elsewhere"}
    }))
    .unwrap();
    let made = api.create(&Default::default(), &object).await.unwrap();
    made.metadata.uid.unwrap()
}

#[tokio::test]
async fn a_create_that_finds_its_own_object_adopts_it_and_refuses_anyone_elses() {
    let (lab, cluster, recorder, _dir) = lab_cluster().await;
    let ledger = cluster.ledger();
    namespace(&cluster, "auto-t1").await;
    let ours =
        |name: &str| json!({"metadata": {"name": name, "labels": {SESSION_LABEL: "auto-t1"}}});

    // What a create whose answer was lost leaves: the object, made by this session, not in the ledger.
    let uid = made_elsewhere(&lab, "lost-answer", "auto-t1").await;
    let adopted = cluster
        .create(
            &kinds::CONFIG_MAP,
            Some("auto-t1"),
            ours("lost-answer"),
            Some("TestX[a]"),
        )
        .await
        .expect("our own object is adopted");
    assert_eq!(adopted["metadata"]["uid"], Value::String(uid.clone()));
    let recorded = ledger.entries().into_iter().any(|entry| {
        matches!(entry, LedgerEntry::Kube { resource, scenario, .. }
            if resource.name == "lost-answer" && resource.uid.as_deref() == Some(uid.as_str())
                && scenario.as_deref() == Some("TestX[a]"))
    });
    assert!(
        recorded,
        "the adopted object is in the ledger, so teardown removes it"
    );
    assert!(recorder.events().iter().any(
        |e| matches!(e, Event::ResourceCreated { resource, .. } if resource.name == "lost-answer")
    ));

    // Another session's object of the same name is not ours: the server's refusal, and nothing recorded.
    made_elsewhere(&lab, "someone-elses", "auto-other").await;
    let refused = cluster
        .create(
            &kinds::CONFIG_MAP,
            Some("auto-t1"),
            ours("someone-elses"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, ClusterError::NotOurs { .. }), "{refused}");
    let message = refused.to_string();
    assert!(
        message.contains("already exists") && message.contains("auto-other"),
        "{message}"
    );
    assert!(
        !ledger.entries().into_iter().any(|entry| matches!(entry,
            LedgerEntry::Kube { resource, .. } if resource.name == "someone-elses")),
        "someone else's object must never reach the ledger"
    );
    // An object without our label (nothing to prove it is ours) is refused too.
    let unlabelled = object(&cluster, &kinds::CONFIG_MAP, Some("auto-t1"), "lost-answer").await;
    assert!(unlabelled.is_ok(), "it is in the ledger already: ours");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier0_passes_with_one_api_request_in_twenty_failing_twice_in_a_row() {
    for round in 1..=2 {
        let lab = lab("api-error-rate=0.05", None).await;
        let before = lab_contents(&lab);
        let run = run_on_lab(&lab, RunRequest::default()).await;
        let outcomes = run.recorder.outcomes();
        let failed: Vec<_> = outcomes
            .iter()
            .filter(|(_, outcome)| outcome.is_failure())
            .collect();
        assert!(failed.is_empty(), "round {round}: {failed:#?}");
        assert_eq!(run.outcome.exit_code, 0, "round {round}");
        assert_eq!(run.outcome.leftovers, 0, "round {round}");
        assert_eq!(
            lab_contents(&lab),
            before,
            "round {round}: the lab is as it was"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_forklift_refuses_fails_test_create_plan_with_forklifts_words() {
    let lab = lab("", None).await;
    let before = lab_contents(&lab);
    let run = run_on_lab(
        &lab,
        RunRequest {
            keywords: Some("TestSanityColdMtvMigration"),
            // A template Forklift cannot parse: its plan validation marks the Plan `NotValid`.
            tweak: |spec| {
                spec.config.pvc_name_template = Some(PvcNameTemplate::Single("{{.VmName".into()));
            },
            ..RunRequest::default()
        },
    )
    .await;
    let outcomes = run.recorder.outcomes();
    let (_, outcome) = outcomes
        .iter()
        .find(|(id, _)| id.ends_with("::test_create_plan"))
        .expect("test_create_plan ran");
    let StepOutcome::Failed { message } = outcome else {
        panic!("test_create_plan must fail: {outcomes:#?}");
    };
    // Type, reason and message of Forklift's condition; the wait did not run into its timeout.
    assert!(
        message.contains("NotValid (NotValid): VM PVC name template is invalid."),
        "{message}"
    );
    assert!(
        message.contains("Forklift will not make it Ready"),
        "{message}"
    );
    assert!(!message.contains("timed out"), "{message}");
    assert_eq!(run.outcome.leftovers, 0);
    assert_eq!(lab_contents(&lab), before);
}
