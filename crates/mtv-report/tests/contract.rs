//! The reporters read the event contract (`mtv-events`) and nothing of the engine: a reporter or a
//! tool built on this crate compiles without the Kubernetes client.

#[test]
fn the_reporters_and_the_event_contract_do_not_depend_on_the_engine_or_a_kubernetes_client() {
    let manifests = [
        include_str!("../Cargo.toml"),
        include_str!("../../mtv-events/Cargo.toml"),
    ];
    for manifest in manifests {
        for forbidden in ["mtv-engine", "kube", "k8s-openapi", "tokio"] {
            assert!(
                !manifest
                    .lines()
                    .any(|line| line.trim_start().starts_with(forbidden)),
                "a manifest depends on {forbidden}:\n{manifest}"
            );
        }
    }
}
