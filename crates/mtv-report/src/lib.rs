//! Consumers of the engine's typed event stream: the console (live view or plain lines, then a
//! pytest-like summary), the JUnit XML file, the JSON event log, the HTML report (one
//! self-contained page), the rerun state for `--last-failed`, and the run's [`Summary`].
//!
//! Every writer is a [`Reporter`]: it sees each [`Event`] once, in order, and writes its file or
//! final text in [`Reporter::finish`]. None of them reads the environment or the configuration, so
//! what they write is exactly what the events carry (and events never carry secrets).

mod atomic_file;
mod console;
mod error;
mod event_log;
mod html;
mod junit;
mod merge;
mod names;
mod rerun;
mod summary;
mod timeline;

pub use console::{
    Console, ConsoleMode, LiveConsole, LiveView, PlainConsole, RunningScenario, write_summary,
};
pub use error::ReportError;
pub use event_log::{EventLog, LOG_STARTED, parse_event_log};
pub use html::HtmlReport;
pub use junit::JunitReport;
pub use merge::{MergeError, PartitionLog, merge_event_logs, union_rerun_states, worst_exit_code};
pub use names::TestName;
pub use rerun::{RERUN_STATE_VERSION, RerunReport, RerunState, RerunStateError};
pub use summary::{
    EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_LEFTOVERS, EXIT_OK, EXIT_TERMINATED, EXIT_TEST_FAILED,
    FailedStep, FailureKind, Summary, exit_meaning,
};

pub use mtv_events::Event;

/// One consumer of the event stream.
pub trait Reporter {
    /// Called once per event, in emission order. Write errors are kept and returned by `finish`,
    /// so one broken writer never stops the run or the other writers.
    fn handle(&mut self, event: &Event);

    /// Called once after the last event: write final files and text, report the first error seen.
    fn finish(&mut self) -> Result<(), ReportError>;
}

impl<R: Reporter + ?Sized> Reporter for Box<R> {
    fn handle(&mut self, event: &Event) {
        (**self).handle(event);
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        (**self).finish()
    }
}

/// Feeds every event to several reporters, in the order they were added.
#[derive(Default)]
pub struct Fanout {
    reporters: Vec<Box<dyn Reporter + Send>>,
}

impl Fanout {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, reporter: impl Reporter + Send + 'static) -> Self {
        self.push(reporter);
        self
    }

    pub fn push(&mut self, reporter: impl Reporter + Send + 'static) {
        self.reporters.push(Box::new(reporter));
    }

    pub fn len(&self) -> usize {
        self.reporters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reporters.is_empty()
    }
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("reporters", &self.reporters.len())
            .finish()
    }
}

impl Reporter for Fanout {
    fn handle(&mut self, event: &Event) {
        for reporter in &mut self.reporters {
            reporter.handle(event);
        }
    }

    /// Finishes every reporter even when one fails, so the JUnit file is written even if the
    /// console is gone; all errors are returned.
    fn finish(&mut self) -> Result<(), ReportError> {
        let mut errors: Vec<ReportError> = self
            .reporters
            .iter_mut()
            .filter_map(|reporter| reporter.finish().err())
            .collect();
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(ReportError::Several(errors)),
        }
    }
}
