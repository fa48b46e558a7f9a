//! Why a step did not pass, typed by where it went wrong: an API request (with the HTTP status), a
//! wait that ran out (what it awaited, what it last saw), a verdict Forklift or KubeVirt reached
//! (with the condition), the source adapter, the inventory, the ledger, a guest, or the scenario's
//! own checks (validation). Causes are kept as `#[source]`, so a reader of the chain sees them all.
//!
//! Each variant is a failure of the behaviour under test (pytest's FAILED) or an error around it
//! (ERROR); [`StepError::is_failure`] says which.

use std::time::Duration;

use crate::cluster::ClusterError;

/// Why a step did not pass.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// An API request failed; `status` is the server's HTTP status when it answered.
    #[error("{source}")]
    Api {
        status: Option<u16>,
        #[source]
        source: ClusterError,
    },
    /// A wait ran out.
    #[error("timed out after {}s waiting for {what}{}", waited.as_secs(), last_seen.as_deref().map(|l| format!("; last seen: {l}")).unwrap_or_default())]
    Timeout {
        what: String,
        waited: Duration,
        last_seen: Option<String>,
    },
    /// An object reached a state it will not leave (a Forklift condition, a canceled migration).
    #[error("{what}: {condition}")]
    Verdict { what: String, condition: String },
    /// The source adapter failed.
    #[error("source: {0}")]
    Source(#[source] mtv_providers::SourceError),
    #[error(transparent)]
    Inventory(#[from] crate::inventory::InventoryError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(transparent)]
    Guest(#[from] crate::guest::GuestError),
    /// What the step observed is not what the scenario expects: each problem found, in order.
    #[error("{}", problems.join(" | "))]
    Validation { problems: Vec<Problem> },
    /// Something the step needs is not there (a source VM, a NIC to copy, an earlier step's object).
    #[error("{0}")]
    Missing(Missing),
    /// The step does not apply, with the reason (pytest's SKIPPED).
    #[error("skipped: {reason}")]
    Skipped { reason: String },
}

/// One problem a check or a verdict found, already phrased for the reader (it names the VM, the
/// check, what was expected and what was found).
pub type Problem = String;

/// What a step found missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    #[error("source VM or template `{name}` not found on {provider_type} source '{profile}'")]
    SourceVm {
        name: String,
        provider_type: String,
        profile: String,
    },
    #[error("VM {vm} has no NIC to copy for add_nic")]
    NicToCopy { vm: String },
    #[error("target_node_selector needs a node to label, and the cluster has none")]
    NodeToLabel,
    #[error("a source-side NAD exists only for OpenShift sources")]
    SourceNamespace,
    #[error("the VMs have no {0} to map")]
    ToMap(&'static str),
    #[error("{0} was not created (an earlier step did not finish)")]
    Earlier(&'static str),
    #[error("the source Provider {0} is gone")]
    SourceProvider(String),
    #[error("test_check_xcopy_used needs a vSphere profile with a copyoffload section")]
    CopyOffloadProfile,
    #[error("the scenario has no copy-offload Plan to check")]
    CopyOffloadPlan,
    #[error("insecureSkipVerify of the Provider Secret is not base64: {0}")]
    SecretEncoding(String),
}

impl StepError {
    /// One problem as a validation failure.
    pub fn failed(problem: impl Into<Problem>) -> Self {
        StepError::Validation {
            problems: vec![problem.into()],
        }
    }

    /// A failure of the behaviour under test (FAILED) rather than an error around it (ERROR).
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            StepError::Timeout { .. }
                | StepError::Verdict { .. }
                | StepError::Validation { .. }
                | StepError::Inventory(_)
        )
    }

    /// The message a report shows. An API error's text already gives the server's answer; a source
    /// error's causes (the adapter's transport, the hypervisor's fault) are added, each once.
    pub fn message(&self) -> String {
        match self {
            StepError::Skipped { reason } => reason.clone(),
            StepError::Source(error) => format!("source: {}", chain_text(error)),
            other => other.to_string(),
        }
    }
}

/// An error and its causes on one line, each cause once (many errors already quote their source).
pub fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let said = current.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = current.source();
    }
    text
}

impl From<ClusterError> for StepError {
    fn from(error: ClusterError) -> Self {
        match error {
            ClusterError::Timeout { what, waited, last } => StepError::Timeout {
                what,
                waited,
                last_seen: last,
            },
            ClusterError::Condition { what, reason } => StepError::Verdict {
                what,
                condition: reason,
            },
            other => StepError::Api {
                status: other.status(),
                source: other,
            },
        }
    }
}

impl From<mtv_providers::SourceError> for StepError {
    fn from(error: mtv_providers::SourceError) -> Self {
        StepError::Source(error)
    }
}

impl From<Missing> for StepError {
    fn from(missing: Missing) -> Self {
        StepError::Missing(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_and_verdicts_are_failures_api_errors_are_errors() {
        let timeout = StepError::from(ClusterError::Timeout {
            what: "Plan p to be Ready".into(),
            waited: Duration::from_secs(360),
            last: Some("VMNotFound".into()),
        });
        assert!(timeout.is_failure());
        assert_eq!(
            timeout.message(),
            "timed out after 360s waiting for Plan p to be Ready; last seen: VMNotFound"
        );
        let verdict = StepError::from(ClusterError::Condition {
            what: "Plan p to be Ready".into(),
            reason: "Forklift will not make it Ready: NetworkMapNotReady".into(),
        });
        assert!(verdict.is_failure());
        assert!(matches!(verdict, StepError::Verdict { .. }));
        let missing = StepError::from(Missing::Earlier("the Plan"));
        assert!(!missing.is_failure());
        assert_eq!(
            missing.message(),
            "the Plan was not created (an earlier step did not finish)"
        );
    }

    #[test]
    fn the_message_adds_causes_the_error_does_not_already_say() {
        #[derive(Debug, thiserror::Error)]
        #[error("connection refused")]
        struct Refused;
        #[derive(Debug, thiserror::Error)]
        #[error("clone vm-1")]
        struct Clone(#[source] Refused);
        #[derive(Debug, thiserror::Error)]
        #[error("clone vm-1: connection refused")]
        struct Quoting(#[source] Refused);
        assert_eq!(
            chain_text(&Clone(Refused)),
            "clone vm-1: connection refused"
        );
        assert_eq!(
            chain_text(&Quoting(Refused)),
            "clone vm-1: connection refused"
        );
    }
}
