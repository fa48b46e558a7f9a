//! The run's Kubernetes client with `insecure_verify_skip` applied, and cluster connection errors
//! that say what failed: a certificate the client did not accept is named as such, with the server
//! and what to do, instead of kube's "client error (Connect)".

use miette::Report;
use mtv_engine::target::{Target, client_with_tls, server_and_token};

/// A client for `target`; `insecure_verify_skip` (the setting, or `CLUSTER_VERIFY_SSL`) overrides
/// the kubeconfig's own choice when set.
pub async fn client(
    target: &Target,
    insecure_verify_skip: Option<bool>,
) -> Result<kube::Client, Report> {
    client_with_tls(target, insecure_verify_skip)
        .await
        .map_err(|e| miette::miette!("{e}"))
}

/// The API server URL of `target`, for messages (empty when the kubeconfig does not say).
pub fn server_of(target: &Target) -> String {
    server_and_token(target)
        .map(|(server, _)| server)
        .unwrap_or_default()
}

/// `error` and every cause under it, outermost first.
fn causes(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut messages = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        let message = current.to_string();
        if !messages.iter().any(|m: &String| m == &message) {
            messages.push(message);
        }
        next = current.source();
    }
    messages
}

/// Whether a cause says the peer's certificate was refused (rustls' and webpki's wording).
fn is_certificate_failure(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "certificate",
        "unknownissuer",
        "notvalidforname",
        "badsignature",
        "expired",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

/// A failed request to the cluster, as a user reads it: `doing` (e.g. "read the MTV version"),
/// the server, every cause, and for a refused certificate what to do about it.
pub fn describe(doing: &str, target: &Target, error: &(dyn std::error::Error + 'static)) -> Report {
    let server = server_of(target);
    let causes = causes(error);
    if causes.iter().any(|c| is_certificate_failure(c)) {
        return miette::miette!(
            help = "give the kubeconfig the cluster's CA (certificate-authority-data of the cluster \
                    entry); for a test cluster with a self-signed certificate, skip the check with \
                    --tc insecure_verify_skip:true or CLUSTER_VERIFY_SSL=false",
            "cannot {doing}: the TLS certificate of the cluster's API server {server} ({}) was not \
             accepted: {}",
            target.describe(),
            causes.join(": ")
        );
    }
    miette::miette!(
        help = "check that the API server is up and reachable from here, and that the kubeconfig is the cluster's",
        "cannot {doing} from the cluster's API server {server} ({}): {}",
        target.describe(),
        causes.join(": ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn a_refused_certificate_is_named_with_the_server_and_what_to_do() {
        let error = Layer(
            "client error (Connect)",
            Some(Box::new(Layer(
                "invalid peer certificate: UnknownIssuer",
                None,
            ))),
        );
        let target = Target::Kubeconfig {
            path: "k.yaml".into(),
            context: None,
        };
        // The message and the help as they are, not wrapped at a terminal's width.
        let shown = |report: Report| {
            let help = report.help().map(|h| h.to_string()).unwrap_or_default();
            format!("{report}\n{help}")
        };
        let text = shown(describe("read the MTV version", &target, &error));
        assert!(
            text.contains("TLS certificate of the cluster's API server"),
            "{text}"
        );
        assert!(
            text.contains("invalid peer certificate: UnknownIssuer"),
            "{text}"
        );
        assert!(text.contains("insecure_verify_skip"), "{text}");

        let refused = Layer(
            "client error (Connect)",
            Some(Box::new(Layer("Connection refused", None))),
        );
        let text = shown(describe("read the MTV version", &target, &refused));
        assert!(!text.contains("TLS certificate"), "{text}");
        assert!(
            text.contains("client error (Connect): Connection refused"),
            "{text}"
        );
    }
}
