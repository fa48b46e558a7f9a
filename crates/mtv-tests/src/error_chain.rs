//! How the binary prints an error that stopped it: the error, each of its causes on a line of its own
//! (once: many errors already quote their source), and a hint where one is known to help.
//! Configuration errors keep miette's rendering, which points at the file, line and column.
//!
//! A library error keeps its causes only if it reaches `main` whole: turn it into a report with
//! [`report`], not by formatting it into a message.

use std::error::Error;
use std::fmt;

use miette::{Diagnostic, Report};
use mtv_engine::cluster::ClusterError;
use mtv_engine::inventory::InventoryError;

/// A library error carried to `main` with its causes and its type (for the hint).
#[derive(Debug)]
pub struct Caused(Box<dyn Error + Send + Sync + 'static>);

impl fmt::Display for Caused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Error for Caused {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl Diagnostic for Caused {}

/// A library error as a report that keeps its chain of causes.
#[allow(dead_code)] // the run's wiring converts its library errors with it (see the module doc)
pub fn report(error: impl Error + Send + Sync + 'static) -> Report {
    Report::new(Caused(Box::new(error)))
}

/// The text `main` prints for a report.
pub fn render(report: &Report) -> String {
    let points_at_input =
        report.labels().is_some() || report.source_code().is_some() || report.related().is_some();
    if points_at_input {
        return format!("{report:?}");
    }
    let top: &(dyn Error + 'static) = match report.downcast_ref::<Caused>() {
        Some(caused) => caused.0.as_ref(),
        None => report.as_ref(),
    };
    let mut out = format!("error: {top}\n");
    let mut said = top.to_string();
    let mut hint = hint_for(top);
    let mut cause = top.source();
    while let Some(current) = cause {
        let text = own_words(current);
        if !text.is_empty() && !said.contains(&text) {
            out.push_str(&format!("  caused by: {text}\n"));
            said.push_str(&text);
        }
        hint = hint.or_else(|| hint_for(current));
        cause = current.source();
    }
    if let Some(help) = report.help() {
        out.push_str(&format!("  hint: {help}\n"));
    } else if let Some(hint) = hint {
        out.push_str(&format!("  hint: {hint}\n"));
    }
    out
}

/// What an error of the chain says: for an API server's `Status`, its message (kube's own text
/// adds the whole structure in debug form).
fn own_words(error: &(dyn Error + 'static)) -> String {
    if let Some(kube::Error::Api(status)) = error.downcast_ref::<kube::Error>() {
        return status.message.clone();
    }
    if let Some(status) = error.downcast_ref::<Box<kube::core::Status>>() {
        return status.message.clone();
    }
    match error.downcast_ref::<kube::core::Status>() {
        Some(status) => status.message.clone(),
        None => error.to_string(),
    }
}

/// What to do about one error of the chain, when something is known to help.
fn hint_for(error: &(dyn Error + 'static)) -> Option<&'static str> {
    if let Some(cluster) = error.downcast_ref::<ClusterError>() {
        return match (cluster, cluster.status()) {
            (_, Some(401)) => Some(
                "the API server refused the credentials: log in again (`oc login`) or check the \
                 kubeconfig's user and token",
            ),
            (_, Some(403)) => Some(
                "the account may not do this: run with an account that has cluster-admin on the \
                 test cluster",
            ),
            (ClusterError::Unreachable { .. }, _) => Some(
                "the API server stopped answering: check the network (VPN, proxy); the setting \
                 api_unreachable_timeout says how long a run waits",
            ),
            _ => None,
        };
    }
    if let Some(InventoryError::Status {
        status: 401 | 403, ..
    }) = error.downcast_ref::<InventoryError>()
    {
        return Some(
            "the Forklift inventory refused the token: it needs get and list on Providers",
        );
    }
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::TimedOut
        )
    {
        return Some(
            "nothing answered at that address: is the cluster reachable from here? \
             (`kubectl cluster-info` with the same kubeconfig says)",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[derive(Debug)]
    struct Bootstrap(ClusterError);

    impl fmt::Display for Bootstrap {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("session bootstrap")
        }
    }

    impl Error for Bootstrap {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    fn forbidden() -> ClusterError {
        ClusterError::Api {
            action: "create",
            resource: "Namespace auto-ab12".into(),
            source: kube::Error::Api(
                kube::core::Status::failure("namespaces is forbidden", "Forbidden")
                    .with_code(403)
                    .boxed(),
            ),
        }
    }

    #[test]
    fn a_chain_prints_each_cause_once_and_a_hint() {
        let text = render(&report(Bootstrap(forbidden())));
        insta::assert_snapshot!(text, @r"
        error: session bootstrap
          caused by: create Namespace auto-ab12: namespaces is forbidden (403 Forbidden)
          hint: the account may not do this: run with an account that has cluster-admin on the test cluster
        ");
    }

    #[test]
    fn a_timeout_says_what_it_awaited_and_has_no_hint() {
        let timeout = ClusterError::Timeout {
            what: "Provider p to be Ready".into(),
            waited: Duration::from_secs(600),
            last: Some("ConnectionTestFailed".into()),
        };
        insta::assert_snapshot!(render(&report(timeout)), @"error: timed out after 600s waiting for Provider p to be Ready; last seen: ConnectionTestFailed");
    }

    #[test]
    fn a_message_without_causes_is_one_line() {
        let text = render(&miette::miette!(
            "cannot start the embedded lab: port in use"
        ));
        assert_eq!(text, "error: cannot start the embedded lab: port in use\n");
    }
}
