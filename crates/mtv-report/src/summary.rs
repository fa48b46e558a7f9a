//! The outcome of a run computed from its events alone (counts, failures, leftovers), and what
//! each exit code means.

use std::time::{Duration, Instant};

use mtv_events::{Event, ResourceRef, StepEnd, StepOutcome};

use crate::{ReportError, Reporter};

// Exit codes and their meanings are defined once, in mtv_api::exit.
pub use mtv_api::exit::{
    EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_LEFTOVERS, EXIT_OK, EXIT_TERMINATED, EXIT_TEST_FAILED,
    exit_meaning,
};

/// Whether a step failed on its own (pytest `FAILED`), could not run (pytest `ERROR`), or was
/// stopped by Ctrl-C or a signal before it finished (`INTERRUPTED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Failed,
    Error,
    Interrupted,
}

impl FailureKind {
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Failed => "FAILED",
            FailureKind::Error => "ERROR",
            FailureKind::Interrupted => "INTERRUPTED",
        }
    }
}

/// One failed or errored step, as the short test summary lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedStep {
    pub id: String,
    pub kind: FailureKind,
    pub message: String,
    pub diagnostics: Option<String>,
}

/// The outcome of a run, computed from its events alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    /// Steps the run was stopped before they finished (Ctrl-C, SIGTERM, SIGHUP).
    pub interrupted: usize,
    pub skipped: usize,
    pub xfailed: usize,
    /// What teardown could not delete (empty when teardown did not run).
    pub leftovers: Vec<ResourceRef>,
    /// The session's duration from `SessionFinished`; zero until that event arrives.
    pub duration: Duration,
    /// Whether `SessionFinished` was seen; without it the run ended early.
    pub session_finished: bool,
    /// The exit code `SessionFinished` carried: the engine's, which also knows about interruption.
    pub session_exit_code: Option<u8>,
    /// Failed and errored steps, in the order they finished.
    pub failures: Vec<FailedStep>,
    /// Skip reasons with how many steps each skipped, in first-seen order.
    pub skip_reasons: Vec<(String, usize)>,
    /// Expected-failure reasons with how many steps each covered, in first-seen order.
    pub xfail_reasons: Vec<(String, usize)>,
}

impl Summary {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut summary = Self::new();
        for event in events {
            summary.record(event);
        }
        summary
    }

    pub fn record(&mut self, event: &Event) {
        match event {
            Event::StepFinished(StepEnd {
                id,
                outcome,
                diagnostics,
                ..
            }) => self.record_step(id, outcome, diagnostics.as_deref()),
            Event::TeardownFinished { leftovers } => self.leftovers = leftovers.clone(),
            Event::SessionFinished {
                exit_code,
                duration,
            } => {
                self.duration = *duration;
                self.session_finished = true;
                self.session_exit_code = Some(*exit_code);
            }
            _ => {}
        }
    }

    /// Counts one finished step, as `StepFinished` does.
    pub(crate) fn record_step(
        &mut self,
        id: &str,
        outcome: &StepOutcome,
        diagnostics: Option<&str>,
    ) {
        let failure = |kind, message: &str| FailedStep {
            id: id.to_string(),
            kind,
            message: message.to_string(),
            diagnostics: diagnostics.map(str::to_string),
        };
        match outcome {
            StepOutcome::Passed => self.passed += 1,
            StepOutcome::Failed { message } => {
                self.add_failure(failure(FailureKind::Failed, message))
            }
            StepOutcome::Error { message } => {
                self.add_failure(failure(FailureKind::Error, message))
            }
            StepOutcome::Interrupted { message } => {
                self.add_failure(failure(FailureKind::Interrupted, message))
            }
            StepOutcome::Skipped { reason } => {
                self.skipped += 1;
                count_reason(&mut self.skip_reasons, reason);
            }
            StepOutcome::Xfailed { reason } => {
                self.xfailed += 1;
                count_reason(&mut self.xfail_reasons, reason);
            }
        }
    }

    /// Counts a failed step under its kind and keeps it for the short summary.
    fn add_failure(&mut self, step: FailedStep) {
        match step.kind {
            FailureKind::Failed => self.failed += 1,
            FailureKind::Error => self.errors += 1,
            FailureKind::Interrupted => self.interrupted += 1,
        }
        self.failures.push(step);
    }

    /// Steps that reported an outcome.
    pub fn total(&self) -> usize {
        self.passed + self.failed + self.errors + self.interrupted + self.skipped + self.xfailed
    }

    /// The process exit code. Precedence: a failed, errored or interrupted test → 1 (it says more
    /// than a leftover does), else leftovers → 3, else 0. Interruption (130, 129, 143) is the
    /// caller's to decide.
    pub fn exit_code(&self) -> u8 {
        if self.failed > 0 || self.errors > 0 || self.interrupted > 0 {
            EXIT_TEST_FAILED
        } else if !self.leftovers.is_empty() {
            EXIT_LEFTOVERS
        } else {
            EXIT_OK
        }
    }

    /// The summary to print at the end: its own duration, or the time since `started` (the
    /// reporter's clock) when the session did not finish cleanly.
    pub fn at_end(&self, started: Option<Instant>) -> Summary {
        let mut summary = self.clone();
        if !summary.session_finished
            && let Some(started) = started
        {
            summary.duration = started.elapsed();
        }
        summary
    }

    /// The counts part of pytest's last line: `1 failed, 3 passed, 2 skipped, 6 xfailed, 1 error`,
    /// then our own `, 2 leftovers`; `no tests ran` when nothing reported.
    pub fn counts_line(&self) -> String {
        let mut parts = Vec::new();
        let mut push = |count: usize, singular: &str, plural: &str| {
            if count > 0 {
                let word = if count == 1 { singular } else { plural };
                parts.push(format!("{count} {word}"));
            }
        };
        push(self.failed, "failed", "failed");
        push(self.passed, "passed", "passed");
        push(self.skipped, "skipped", "skipped");
        push(self.xfailed, "xfailed", "xfailed");
        push(self.errors, "error", "errors");
        push(self.interrupted, "interrupted", "interrupted");
        push(self.leftovers.len(), "leftover", "leftovers");
        if parts.is_empty() {
            "no tests ran".to_string()
        } else {
            parts.join(", ")
        }
    }
}

/// A step's duration on its result line: `1.2s`, or `12m03s` past a minute.
pub(crate) fn step_duration(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = duration.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// The session's duration as pytest prints it: `12.34s`, with `(h:mm:ss)` past a minute.
pub(crate) fn session_duration(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.2}s")
    } else {
        let whole = duration.as_secs();
        format!(
            "{secs:.2}s ({}:{:02}:{:02})",
            whole / 3600,
            (whole / 60) % 60,
            whole % 60
        )
    }
}

fn count_reason(reasons: &mut Vec<(String, usize)>, reason: &str) {
    match reasons.iter_mut().find(|(known, _)| known == reason) {
        Some((_, count)) => *count += 1,
        None => reasons.push((reason.to_string(), 1)),
    }
}

/// A summary can ride along in a [`crate::Fanout`]; usually the caller keeps its own instead.
impl Reporter for Summary {
    fn handle(&mut self, event: &Event) {
        self.record(event);
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_pytest() {
        assert_eq!(step_duration(Duration::from_millis(1234)), "1.2s");
        assert_eq!(step_duration(Duration::from_secs(723)), "12m03s");
        assert_eq!(session_duration(Duration::from_millis(12_345)), "12.35s");
        assert_eq!(
            session_duration(Duration::from_secs(3723)),
            "3723.00s (1:02:03)"
        );
    }

    #[test]
    fn every_exit_code_of_a_run_has_a_meaning() {
        for code in [
            EXIT_OK,
            EXIT_TEST_FAILED,
            EXIT_LEFTOVERS,
            EXIT_INTERRUPTED,
            EXIT_HANGUP,
            EXIT_TERMINATED,
        ] {
            assert_ne!(exit_meaning(code), exit_meaning(42), "{code}");
        }
    }
}
