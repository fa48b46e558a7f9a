//! How a run finds the Forklift inventory: through the Route `forklift-inventory` of the MTV namespace
//! with its own token (the lab's inventory requires one, so the API server's service proxy, which drops
//! it, would get 401), or at `inventory_url`; with neither the run stops at bootstrap, creating nothing,
//! and says what to do.

mod common;

use common::{RunRequest, lab, lab_contents, run_on_lab};
use mtv_engine::events::StepOutcome;
use mtv_lab::store::DeleteOptions;
use mtv_lab::{LabServer, MTV_NAMESPACE, registry};

fn delete_route(lab: &LabServer) {
    lab.store()
        .delete(
            &registry::ROUTE,
            Some(MTV_NAMESPACE),
            "forklift-inventory",
            &DeleteOptions::default(),
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_route_or_an_inventory_url_the_run_stops_at_bootstrap() {
    let lab = lab("", None).await;
    delete_route(&lab);
    let before = lab_contents(&lab);
    let run = run_on_lab(&lab, RunRequest::keywords("SanityCold")).await;
    let outcomes = run.recorder.outcomes();
    assert!(!outcomes.is_empty());
    for (id, outcome) in &outcomes {
        let StepOutcome::Error { message } = outcome else {
            panic!("{id}: {outcome:?}");
        };
        assert!(
            message.contains("session bootstrap failed")
                && message.contains("--inventory-url")
                && message.contains("forklift-inventory"),
            "{id}: {message}"
        );
    }
    assert_ne!(run.outcome.exit_code, 0);
    assert_eq!(lab_contents(&lab), before, "the run created something");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inventory_url_is_used_instead_of_the_route() {
    let lab = lab("", None).await;
    delete_route(&lab);
    let url = format!(
        "inventory_url={}",
        lab.inventory_route_url().expect("the lab serves the Route")
    );
    let run = run_on_lab(
        &lab,
        RunRequest {
            settings: &[url.as_str()],
            ..RunRequest::keywords("SanityCold")
        },
    )
    .await;
    let outcomes = run.recorder.outcomes();
    let failed: Vec<_> = outcomes.iter().filter(|(_, o)| o.is_failure()).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(outcomes.values().any(|o| *o == StepOutcome::Passed));
    assert_eq!(run.outcome.exit_code, 0);
    lab.shutdown().await;
}
