//! Where a run goes (a kubeconfig: a file, a context of the default one, or one held in memory, as
//! the embedded lab's), and what differs between targets, read once from the target itself
//! ([`TargetTraits`]). Nothing here asks whether the target is a lab.

use std::path::PathBuf;

use std::collections::BTreeMap;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use mtv_api::clock::{CLOCK_CONFIG_MAP, ForkliftClock};
use secrecy::ExposeSecret;

use crate::cluster::{Cluster, ClusterError, kinds};

#[derive(Debug, Clone)]
pub enum Target {
    /// A kubeconfig held in memory (the embedded lab's, which the CLI starts itself).
    InMemory { kubeconfig_yaml: String },
    /// A real cluster from a kubeconfig file, optionally a named context of it.
    Kubeconfig {
        path: PathBuf,
        context: Option<String>,
    },
    /// A context of the default kubeconfig (`$KUBECONFIG` or `~/.kube/config`).
    Context(String),
}

impl Target {
    /// The cluster as its kubeconfig names it, for reports and the ledger.
    pub fn describe(&self) -> String {
        match self {
            Target::InMemory { .. } => match server_and_token(self) {
                Ok((server, _)) if !server.is_empty() => server,
                _ => "an in-memory kubeconfig".to_string(),
            },
            Target::Kubeconfig { path, context } => match context {
                Some(context) => format!("{} (context {context})", path.display()),
                None => path.display().to_string(),
            },
            Target::Context(context) => format!("context {context}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("cannot read the kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    #[error("cannot build a Kubernetes client for {target}: {message}")]
    Client { target: String, message: String },
    #[error(
        "remote_ocp_cluster is `{remote}`, but the run is connected to `{host}`: the remote scenarios \
         would migrate into another cluster than the one named; connect to that cluster \
         (--kubeconfig/--context) or set remote_ocp_cluster to a part of `{host}`"
    )]
    RemoteClusterMismatch { remote: String, host: String },
}

/// The Python suite's guard for remote scenarios: `remote_ocp_cluster` names the cluster the run is
/// connected to, so it must be a part of the API server's host or of the kubeconfig's name for that
/// cluster (`mtv-lab` for a lab); anything else is the wrong kubeconfig.
pub fn check_remote_cluster(
    remote: &str,
    server_url: &str,
    cluster_name: &str,
) -> Result<(), TargetError> {
    let host = server_url
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.host().map(str::to_string))
        .unwrap_or_else(|| server_url.to_string());
    if !remote.is_empty() && (host.contains(remote) || cluster_name.contains(remote)) {
        Ok(())
    } else {
        Err(TargetError::RemoteClusterMismatch {
            remote: remote.to_string(),
            host,
        })
    }
}

/// The target's kubeconfig, the context to use (None = its current context), and where it came from.
fn kubeconfig(target: &Target) -> Result<(Kubeconfig, Option<String>, String), TargetError> {
    // kube's YAML errors quote the lines around the error, tokens included.
    let read_error = |path: &str, e: kube::config::KubeconfigError| TargetError::Kubeconfig {
        path: path.to_string(),
        message: mtv_config::redact_credential_lines(&e.to_string()),
    };
    Ok(match target {
        Target::InMemory { kubeconfig_yaml } => (
            Kubeconfig::from_yaml(kubeconfig_yaml).map_err(|e| read_error("<in memory>", e))?,
            None,
            "<in memory>".to_string(),
        ),
        Target::Kubeconfig { path, context } => {
            let shown = path.display().to_string();
            (
                Kubeconfig::read_from(path).map_err(|e| read_error(&shown, e))?,
                context.clone(),
                shown,
            )
        }
        Target::Context(context) => (
            Kubeconfig::read().map_err(|e| read_error("$KUBECONFIG or ~/.kube/config", e))?,
            Some(context.clone()),
            "the default kubeconfig".to_string(),
        ),
    })
}

/// The kube-rs configuration of the target (server, CA, credentials).
pub async fn config_for(target: &Target) -> Result<kube::Config, TargetError> {
    let (kubeconfig, context, source) = kubeconfig(target)?;
    let options = KubeConfigOptions {
        context,
        ..KubeConfigOptions::default()
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| TargetError::Kubeconfig {
            path: source,
            message: e.to_string(),
        })
}

/// A kube-rs client for the target.
pub async fn client_for(target: &Target) -> Result<kube::Client, TargetError> {
    client_with_tls(target, None).await
}

/// [`config_for`], with the `insecure_verify_skip` setting applied: `Some(true)` skips verification
/// of the API server's certificate, `Some(false)` verifies it even when the kubeconfig says
/// `insecure-skip-tls-verify`, `None` does what the kubeconfig says.
pub async fn config_with_tls(
    target: &Target,
    insecure_skip_verify: Option<bool>,
) -> Result<kube::Config, TargetError> {
    let mut config = config_for(target).await?;
    if let Some(skip) = insecure_skip_verify {
        config.accept_invalid_certs = skip;
    }
    Ok(config)
}

/// [`client_for`], with the `insecure_verify_skip` setting applied as [`config_with_tls`] does.
pub async fn client_with_tls(
    target: &Target,
    insecure_skip_verify: Option<bool>,
) -> Result<kube::Client, TargetError> {
    let mut config = config_with_tls(target, insecure_skip_verify).await?;
    // Retries are the engine's own layer (crate::retry, put in front by `Cluster::new`), which also
    // retries 500 and transport failures and knows when to give up.
    config.default_retry = false;
    kube::Client::try_from(config).map_err(|e| TargetError::Client {
        target: target.describe(),
        message: e.to_string(),
    })
}

/// The API server URL and bearer token of the target's current (or chosen) context, as the kubeconfig
/// gives them; remote destination Providers need both.
pub fn server_and_token(target: &Target) -> Result<(String, Option<String>), TargetError> {
    let (server, token, _) = server_token_and_cluster(target)?;
    Ok((server, token))
}

/// [`server_and_token`], and the kubeconfig's name of the cluster.
pub fn server_token_and_cluster(
    target: &Target,
) -> Result<(String, Option<String>, String), TargetError> {
    let (kubeconfig, context, _) = kubeconfig(target)?;
    let context_name = context.or_else(|| kubeconfig.current_context.clone());
    let named = kubeconfig
        .contexts
        .iter()
        .find(|c| Some(&c.name) == context_name.as_ref())
        .and_then(|c| c.context.clone());
    let server = named
        .as_ref()
        .and_then(|c| kubeconfig.clusters.iter().find(|cl| cl.name == c.cluster))
        .and_then(|cl| cl.cluster.as_ref())
        .and_then(|cl| cl.server.clone())
        .unwrap_or_default();
    let token = named
        .as_ref()
        .and_then(|c| c.user.as_ref())
        .and_then(|user| kubeconfig.auth_infos.iter().find(|a| &a.name == user))
        .and_then(|a| a.auth_info.as_ref())
        .and_then(|a| a.token.as_ref())
        .map(|t| t.expose_secret().to_string());
    let cluster = named.map(|c| c.cluster).unwrap_or_default();
    Ok((server, token, cluster))
}

/// What differs between targets, read once at bootstrap from what the target serves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetTraits {
    /// How long a Forklift minute lasts (the ConfigMap `mtv_api::clock::CLOCK_CONFIG_MAP` in the
    /// MTV namespace; real time without it).
    pub clock: ForkliftClock,
}

impl Default for TargetTraits {
    fn default() -> Self {
        TargetTraits {
            clock: ForkliftClock::Real,
        }
    }
}

impl TargetTraits {
    /// Reads the target's traits; a malformed clock ConfigMap stops the run, saying what to fix.
    pub async fn read(cluster: &Cluster, mtv_namespace: &str) -> Result<Self, ClusterError> {
        let config_map = cluster
            .get(&kinds::CONFIG_MAP, Some(mtv_namespace), CLOCK_CONFIG_MAP)
            .await?;
        let data: Option<BTreeMap<String, String>> =
            config_map.map(|c| serde_json::from_value(c["data"].clone()).unwrap_or_default());
        let clock = ForkliftClock::from_config_map_data(data.as_ref()).map_err(|reason| {
            ClusterError::Condition {
                what: format!("read the Forklift clock of {mtv_namespace}"),
                reason,
            }
        })?;
        Ok(TargetTraits { clock })
    }

    /// How long `minutes` Forklift minutes last on this target (a warm cutover's delay).
    pub fn forklift_minutes(&self, minutes: f64) -> Duration {
        self.clock.minutes(minutes)
    }

    /// A bound on Forklift or guest time that takes up to `real` on a real cluster.
    pub fn forklift_bound(&self, real: Duration) -> Duration {
        self.clock.bound(real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remote_cluster_must_be_part_of_the_api_host() {
        assert!(
            check_remote_cluster(
                "qe-cluster-b",
                "https://api.qe-cluster-b.example.com:6443",
                ""
            )
            .is_ok()
        );
        assert!(
            check_remote_cluster("cluster-b", "https://api.qe-cluster-b.example.com:6443", "")
                .is_ok()
        );
        let error = check_remote_cluster(
            "cluster-a",
            "https://api.qe-cluster-b.example.com:6443",
            "b",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("`cluster-a`") && error.contains("`api.qe-cluster-b.example.com`"),
            "{error}"
        );
        // The port and scheme are not the host.
        assert!(check_remote_cluster("6443", "https://api.b.example.com:6443", "").is_err());
        assert!(check_remote_cluster("https", "https://api.b.example.com:6443", "").is_err());
        // The kubeconfig's name of the cluster counts too (a lab's is `mtv-lab`).
        assert!(check_remote_cluster("lab", "https://127.0.0.1:6443", "mtv-lab").is_ok());
        assert!(check_remote_cluster("", "https://api.b.example.com:6443", "b").is_err());
    }
}
