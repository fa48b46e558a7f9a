//! A whole run: session bootstrap, the scenarios (at most `jobs` at once, each in its own task with
//! no shared mutable state but the ledger and the event sink), teardown, and the exit code.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::events::{Event, EventSink, SessionStart, StepEnd, StepOutcome};
use crate::scenario::{ScenarioSpec, run_scenario};
use crate::session::{Bootstrap, Session, bootstrap};
use crate::teardown::teardown;

/// Exit codes, defined once in `mtv_api::exit`.
pub use mtv_api::exit::{
    EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_LEFTOVERS, EXIT_OK, EXIT_TERMINATED, EXIT_TEST_FAILED,
};

/// What stopped a run: each stops it the same way (no new work, teardown, every report written) and
/// exits with its own code, as a shell reports a process that died of that signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// Ctrl-C (SIGINT).
    CtrlC,
    Terminate,
    Hangup,
}

impl Interrupt {
    pub fn signal_name(self) -> &'static str {
        match self {
            Interrupt::CtrlC => "Ctrl-C",
            Interrupt::Terminate => "SIGTERM",
            Interrupt::Hangup => "SIGHUP",
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Interrupt::CtrlC => EXIT_INTERRUPTED,
            Interrupt::Terminate => EXIT_TERMINATED,
            Interrupt::Hangup => EXIT_HANGUP,
        }
    }
}

/// An item the collection skipped; reported as such, never run.
#[derive(Debug, Clone)]
pub struct SkippedItem {
    pub id: String,
    pub scenario: String,
    pub step: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub results_dir: PathBuf,
    pub jobs: usize,
    pub skip_teardown: bool,
    pub fail_fast: bool,
}

/// What the run decided.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub exit_code: u8,
    pub failed_items: usize,
    pub leftovers: usize,
    pub interrupted: bool,
    pub session_id: Option<String>,
}

/// Counts failed items as they pass, so the engine knows its exit code without a reporter, and
/// remembers which items started and finished, so an interrupted run can report the others.
struct CountingSink {
    inner: Arc<dyn EventSink>,
    failures: AtomicUsize,
    started: Mutex<HashSet<String>>,
    finished: Mutex<HashSet<String>>,
}

impl CountingSink {
    fn new(inner: Arc<dyn EventSink>) -> Self {
        CountingSink {
            inner,
            failures: AtomicUsize::new(0),
            started: Mutex::new(HashSet::new()),
            finished: Mutex::new(HashSet::new()),
        }
    }

    fn has_started(&self, id: &str) -> bool {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }

    fn has_finished(&self, id: &str) -> bool {
        self.finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }
}

impl EventSink for CountingSink {
    fn emit(&self, event: Event) {
        match &event {
            Event::StepStarted { id, .. } => {
                self.started
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.clone());
            }
            Event::StepFinished(StepEnd { id, outcome, .. }) => {
                if outcome.is_failure() {
                    self.failures.fetch_add(1, Ordering::SeqCst);
                }
                self.finished
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.clone());
            }
            _ => {}
        }
        self.inner.emit(event);
    }
}

/// Reports every item of `scenarios` that has no outcome yet as interrupted, so the console, JUnit,
/// the HTML report and `rerun.json` all show what the interruption left undone.
fn report_interrupted(counting: &CountingSink, scenarios: &[ScenarioSpec], interrupt: Interrupt) {
    let signal = interrupt.signal_name();
    for spec in scenarios {
        for (id, step) in item_ids(spec) {
            if counting.has_finished(&id) {
                continue;
            }
            let message = if counting.has_started(&id) {
                format!("the run was stopped by {signal} while this step ran")
            } else {
                format!("the run was stopped by {signal} before this step started")
            };
            counting.emit(Event::StepFinished(StepEnd::not_run(
                id,
                spec.name.clone(),
                step,
                StepOutcome::Interrupted { message },
            )));
        }
    }
}

fn item_ids(spec: &ScenarioSpec) -> impl Iterator<Item = (String, String)> + '_ {
    spec.steps.iter().map(|step| {
        (
            mtv_catalog::catalog::item_id(&spec.name, step.kind),
            step.kind.test_name().to_string(),
        )
    })
}

pub async fn run(
    input: Bootstrap<'_>,
    scenarios: Vec<ScenarioSpec>,
    skipped: Vec<SkippedItem>,
    options: RunOptions,
    mut interrupt: watch::Receiver<Option<Interrupt>>,
) -> RunOutcome {
    let started = Instant::now();
    let counting = Arc::new(CountingSink::new(input.cluster.events().clone()));
    let sink: Arc<dyn EventSink> = counting.clone();
    let cluster = input.cluster.with_events(sink.clone());
    let target = input.cluster_url.clone();
    let items = scenarios.iter().map(|s| s.steps.len()).sum::<usize>() + skipped.len();
    let context = input.context.clone();
    let timeouts = input.timeouts;

    let session_started = |session_id: String, mtv_version: Option<String>| {
        Event::SessionStarted(SessionStart {
            session_id,
            target: target.clone(),
            mtv_version,
            source_provider: context.source_provider.clone(),
            provider_type: context.provider_type.to_string(),
            storage_class: context.storage_class.clone(),
            items,
        })
    };
    // Nothing to run (everything deselected or skipped): nothing to create on the cluster either.
    let session = if scenarios.is_empty() {
        sink.emit(session_started(String::new(), None));
        None
    } else {
        let session = tokio::select! {
            result = bootstrap(Bootstrap { cluster: cluster.clone(), ..input }) => Some(result),
            _ = interrupt.wait_for(Option::is_some) => None,
        };
        match session {
            Some(Ok(session)) => {
                sink.emit(session_started(
                    session.id.clone(),
                    session.mtv_version.clone(),
                ));
                Some(Arc::new(session))
            }
            Some(Err(error)) => {
                sink.emit(session_started(String::new(), None));
                let message = format!("session bootstrap failed: {error}");
                for spec in &scenarios {
                    for (id, step) in item_ids(spec) {
                        sink.emit(Event::StepFinished(StepEnd::not_run(
                            id,
                            spec.name.clone(),
                            step,
                            StepOutcome::Error {
                                message: message.clone(),
                            },
                        )));
                    }
                }
                None
            }
            // Interrupted during bootstrap: every item is reported below, as interrupted.
            None => {
                sink.emit(session_started(String::new(), None));
                None
            }
        }
    };

    for item in &skipped {
        sink.emit(Event::StepFinished(StepEnd::not_run(
            item.id.clone(),
            item.scenario.clone(),
            item.step.clone(),
            StepOutcome::Skipped {
                reason: item.reason.clone(),
            },
        )));
    }

    if let Some(session) = &session {
        run_scenarios(session, &scenarios, &options, &counting, interrupt.clone()).await;
    }
    let stopped_by = *interrupt.borrow();
    if let Some(stopped_by) = stopped_by {
        report_interrupted(&counting, &scenarios, stopped_by);
    }

    let leftovers = if options.skip_teardown {
        Vec::new()
    } else {
        teardown(&cluster, timeouts.teardown).await
    };
    // A signal during teardown does not stop it, but the run still ends as interrupted.
    let interrupted = *interrupt.borrow();
    let failed_items = counting.failures.load(Ordering::SeqCst);
    let exit_code = exit_code(interrupted, failed_items, leftovers.len());
    sink.emit(Event::SessionFinished {
        exit_code,
        duration: started.elapsed(),
    });
    RunOutcome {
        exit_code,
        failed_items,
        leftovers: leftovers.len(),
        interrupted: interrupted.is_some(),
        session_id: session.map(|s| s.id.clone()),
    }
}

/// The run's exit code: the interruption's, else 1 for a failed item, else 3 for leftovers, else 0.
fn exit_code(interrupted: Option<Interrupt>, failed_items: usize, leftovers: usize) -> u8 {
    if let Some(interrupt) = interrupted {
        interrupt.exit_code()
    } else if failed_items > 0 {
        EXIT_TEST_FAILED
    } else if leftovers > 0 {
        EXIT_LEFTOVERS
    } else {
        EXIT_OK
    }
}

/// Runs the scenarios until they end or an interrupt stops them where they are.
async fn run_scenarios(
    session: &Arc<Session>,
    scenarios: &[ScenarioSpec],
    options: &RunOptions,
    counting: &Arc<CountingSink>,
    mut interrupt: watch::Receiver<Option<Interrupt>>,
) {
    let permits = Arc::new(Semaphore::new(options.jobs.max(1)));
    let stop_launching = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for spec in scenarios.iter().cloned() {
        let session = session.clone();
        let permits = permits.clone();
        let stop = stop_launching.clone();
        let counting = counting.clone();
        let fail_fast = options.fail_fast;
        let results = options.results_dir.clone();
        tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            if stop.load(Ordering::SeqCst) {
                // Not started: report its items as skipped so every item has an outcome.
                for (id, step) in item_ids(&spec) {
                    session
                        .cluster
                        .events()
                        .emit(Event::StepFinished(StepEnd::not_run(
                            id,
                            spec.name.clone(),
                            step,
                            StepOutcome::Skipped {
                                reason: "not started: an earlier scenario failed (--fail-fast)"
                                    .into(),
                            },
                        )));
                }
                return;
            }
            let before = counting.failures.load(Ordering::SeqCst);
            run_scenario(session, spec, results).await;
            if fail_fast && counting.failures.load(Ordering::SeqCst) > before {
                stop.store(true, Ordering::SeqCst);
            }
        });
    }
    loop {
        tokio::select! {
            next = tasks.join_next() => {
                if next.is_none() {
                    return;
                }
            }
            _ = interrupt.wait_for(Option::is_some) => {
                // Ctrl-C or a signal: stop every scenario where it is; teardown cancels what runs
                // on the cluster.
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interruption_decides_the_exit_code_with_its_own_signal() {
        assert_eq!(exit_code(Some(Interrupt::CtrlC), 3, 2), 130);
        assert_eq!(exit_code(Some(Interrupt::Terminate), 0, 0), 143);
        assert_eq!(exit_code(Some(Interrupt::Hangup), 0, 0), 129);
        assert_eq!(exit_code(None, 1, 2), EXIT_TEST_FAILED);
        assert_eq!(exit_code(None, 0, 2), EXIT_LEFTOVERS);
        assert_eq!(exit_code(None, 0, 0), EXIT_OK);
    }
}
