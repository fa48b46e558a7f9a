//! A whole run: session bootstrap, the scenarios (at most `jobs` at once, each in its own task with
//! no shared mutable state but the ledger and the event sink), teardown, and the exit code.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::events::{Event, EventSink, StepOutcome};
use crate::scenario::{ScenarioSpec, run_scenario};
use crate::session::{Bootstrap, Session, bootstrap};
use crate::teardown::teardown;

/// Exit codes (ARCHITECTURE.md).
pub const EXIT_OK: u8 = 0;
pub const EXIT_TEST_FAILED: u8 = 1;
pub const EXIT_LEFTOVERS: u8 = 3;
pub const EXIT_INTERRUPTED: u8 = 130;

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

/// Counts failed items as they pass, so the engine knows its exit code without a reporter.
struct CountingSink {
    inner: Arc<dyn EventSink>,
    failures: AtomicUsize,
}

impl EventSink for CountingSink {
    fn emit(&self, event: Event) {
        if let Event::StepFinished { outcome, .. } = &event
            && outcome.is_failure()
        {
            self.failures.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.emit(event);
    }
}

fn item_ids(spec: &ScenarioSpec) -> impl Iterator<Item = (String, String)> + '_ {
    spec.steps.iter().map(|step| {
        (
            format!("{}::{}", spec.name, step.kind.test_name()),
            step.kind.test_name().to_string(),
        )
    })
}

pub async fn run(
    input: Bootstrap<'_>,
    scenarios: Vec<ScenarioSpec>,
    skipped: Vec<SkippedItem>,
    options: RunOptions,
    mut interrupt: watch::Receiver<bool>,
) -> RunOutcome {
    let started = Instant::now();
    let counting = Arc::new(CountingSink {
        inner: input.cluster.events().clone(),
        failures: AtomicUsize::new(0),
    });
    let sink: Arc<dyn EventSink> = counting.clone();
    let cluster = input.cluster.with_events(sink.clone());
    let target = if input.lab {
        "lab".to_string()
    } else {
        input.cluster_url.clone()
    };
    let items = scenarios.iter().map(|s| s.steps.len()).sum::<usize>() + skipped.len();
    let context = input.context.clone();
    let timeouts = input.timeouts;

    let session_started = |session_id: String, mtv_version: Option<String>| Event::SessionStarted {
        session_id,
        target: target.clone(),
        mtv_version,
        source_provider: context.source_provider.clone(),
        provider_type: context.provider_type.to_string(),
        storage_class: context.storage_class.clone(),
        items,
    };
    // Nothing to run (everything deselected or skipped): nothing to create on the cluster either.
    let session = if scenarios.is_empty() {
        sink.emit(session_started(String::new(), None));
        None
    } else {
        let session = tokio::select! {
            result = bootstrap(Bootstrap { cluster: cluster.clone(), ..input }) => Some(result),
            _ = interrupt.wait_for(|stop| *stop) => None,
        };
        match session {
            Some(Ok(session)) => {
                sink.emit(session_started(
                    session.id.clone(),
                    session.mtv_version.clone(),
                ));
                Some(Arc::new(session))
            }
            other => {
                sink.emit(session_started(String::new(), None));
                let message = match other {
                    Some(Err(error)) => format!("session bootstrap failed: {error}"),
                    _ => "interrupted during session bootstrap".to_string(),
                };
                for spec in &scenarios {
                    for (id, step) in item_ids(spec) {
                        sink.emit(Event::StepFinished {
                            id,
                            scenario: spec.name.clone(),
                            step,
                            outcome: StepOutcome::Error {
                                message: message.clone(),
                            },
                            duration: Duration::ZERO,
                            diagnostics: None,
                        });
                    }
                }
                None
            }
        }
    };

    for item in &skipped {
        sink.emit(Event::StepFinished {
            id: item.id.clone(),
            scenario: item.scenario.clone(),
            step: item.step.clone(),
            outcome: StepOutcome::Skipped {
                reason: item.reason.clone(),
            },
            duration: Duration::ZERO,
            diagnostics: None,
        });
    }

    let mut interrupted = *interrupt.borrow();
    if let Some(session) = &session {
        interrupted |=
            run_scenarios(session, scenarios, &options, &counting, interrupt.clone()).await;
    }

    let leftovers = if options.skip_teardown {
        Vec::new()
    } else {
        teardown(&cluster, timeouts.teardown).await
    };
    let failed_items = counting.failures.load(Ordering::SeqCst);
    let exit_code = if interrupted {
        EXIT_INTERRUPTED
    } else if failed_items > 0 {
        EXIT_TEST_FAILED
    } else if !leftovers.is_empty() {
        EXIT_LEFTOVERS
    } else {
        EXIT_OK
    };
    sink.emit(Event::SessionFinished {
        exit_code,
        duration: started.elapsed(),
    });
    RunOutcome {
        exit_code,
        failed_items,
        leftovers: leftovers.len(),
        interrupted,
        session_id: session.map(|s| s.id.clone()),
    }
}

/// Runs the scenarios; returns true when interrupted.
async fn run_scenarios(
    session: &Arc<Session>,
    scenarios: Vec<ScenarioSpec>,
    options: &RunOptions,
    counting: &Arc<CountingSink>,
    mut interrupt: watch::Receiver<bool>,
) -> bool {
    let permits = Arc::new(Semaphore::new(options.jobs.max(1)));
    let stop_launching = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for spec in scenarios {
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
                    session.cluster.events().emit(Event::StepFinished {
                        id,
                        scenario: spec.name.clone(),
                        step,
                        outcome: StepOutcome::Skipped {
                            reason: "not started: an earlier scenario failed (--fail-fast)".into(),
                        },
                        duration: Duration::ZERO,
                        diagnostics: None,
                    });
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
                    return false;
                }
            }
            _ = interrupt.wait_for(|stop| *stop) => {
                // Ctrl-C: stop every scenario where it is; teardown cancels what runs on the cluster.
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                return true;
            }
        }
    }
}
