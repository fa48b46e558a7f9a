//! The typed event stream of a run: the engine emits; the console, JUnit, JSON-log, HTML and any
//! other writer consume. Nothing else shares state with the engine.
//!
//! Events are plain serialisable values (no secrets ever), so the JSON log is the stream itself.
//! This crate is that contract alone (serde, no Kubernetes client, no async runtime), so a reporter
//! or a tool reading `events.jsonl` depends on it and not on the engine, as cargo-nextest keeps its
//! machine-readable format in a crate of its own. The engine re-exports it as `mtv_engine::events`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Version of the JSON event log format (one event per line).
pub const EVENT_LOG_VERSION: u32 = 1;

/// How a test item ended, with pytest's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StepOutcome {
    Passed,
    /// The step failed; `message` is the one line a user reads first (VM, pipeline step, reason).
    Failed {
        message: String,
    },
    /// Expected failure: an earlier step of the same scenario failed (`incremental`).
    Xfailed {
        reason: String,
    },
    Skipped {
        reason: String,
    },
    /// The step could not run because of an error outside the scenario (session bootstrap, API errors).
    Error {
        message: String,
    },
    /// The run was stopped (Ctrl-C, SIGTERM, SIGHUP) before the step finished, or before it started.
    Interrupted {
        message: String,
    },
}

impl StepOutcome {
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            StepOutcome::Failed { .. }
                | StepOutcome::Error { .. }
                | StepOutcome::Interrupted { .. }
        )
    }

    pub fn label(&self) -> &'static str {
        match self {
            StepOutcome::Passed => "PASSED",
            StepOutcome::Failed { .. } => "FAILED",
            StepOutcome::Xfailed { .. } => "XFAIL",
            StepOutcome::Skipped { .. } => "SKIPPED",
            StepOutcome::Error { .. } => "ERROR",
            StepOutcome::Interrupted { .. } => "INTERRUPTED",
        }
    }
}

/// A Kubernetes (or source-side) object the run created, as recorded in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl std::fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Progress of one VM of a running migration (from the Plan's `status.migration.vms[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmProgress {
    pub vm: String,
    /// The pipeline step now running (`DiskTransfer`, `Cutover`, ...), or the VM phase.
    pub pipeline_step: String,
    /// 0–100 over the disk steps, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
}

/// A check a step ran, and for which VMs (by catalog key; none for a check of the whole scenario).
/// The names are those of the engine's table of checks (`checklist.rs`), which `plan` lists too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRun {
    pub check: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vms: Vec<String>,
}

/// One step of a VM's migration pipeline as Forklift recorded it in the Plan's
/// `status.migration.vms[].pipeline[]`: where the time went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelinePhase {
    /// Forklift's step name (`Initialize`, `DiskTransfer`, `ImageConversion`, `Cutover`, ...).
    pub name: String,
    /// When the step started, after the first step of any VM of the same Plan started (so the VMs
    /// of one Plan share one time axis); absent when it never started.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration_secs"
    )]
    pub start: Option<Duration>,
    /// How long it ran (`completed - started`; Forklift's timestamps have one-second resolution);
    /// absent when it never finished.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration_secs"
    )]
    pub duration: Option<Duration>,
    /// The step's own error (`pipeline[].error.reasons`), when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a run states as its session starts (the `session_started` event, the first of every log):
/// the facts each reporter's header shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionStart {
    pub session_id: String,
    /// `lab` for the embedded lab, else the cluster's API URL.
    pub target: String,
    pub mtv_version: Option<String>,
    pub source_provider: String,
    pub provider_type: String,
    pub storage_class: String,
    /// Items (scenario × step) that will be reported, for progress bars.
    pub items: usize,
}

/// How one item (scenario × step) ended (the `step_finished` event): every item gets one, run or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepEnd {
    pub id: String,
    pub scenario: String,
    pub step: String,
    #[serde(flatten)]
    pub outcome: StepOutcome,
    #[serde(with = "duration_secs")]
    pub duration: Duration,
    /// Where the diagnostics bundle of a failed step was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
}

impl StepEnd {
    /// An item that never ran (skipped, or ended by a failed bootstrap or a stop before it started):
    /// it took no time and has no diagnostics.
    pub fn not_run(id: String, scenario: String, step: String, outcome: StepOutcome) -> Self {
        Self {
            id,
            scenario,
            step,
            outcome,
            duration: Duration::ZERO,
            diagnostics: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Its fields stand beside `"event"` in the JSON line, as every other event's do.
    SessionStarted(SessionStart),
    ResourceCreated {
        resource: ResourceRef,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scenario: Option<String>,
    },
    ResourceDeleted {
        resource: ResourceRef,
    },
    ScenarioStarted {
        scenario: String,
    },
    StepStarted {
        id: String,
        scenario: String,
        step: String,
    },
    /// A short human note about what a running step is doing or waiting for.
    StepNote {
        id: String,
        message: String,
    },
    MigrationProgress {
        id: String,
        vms: Vec<VmProgress>,
    },
    /// The checks a step ran (passed or not), emitted before its `StepFinished`.
    ChecksRan {
        id: String,
        checks: Vec<CheckRun>,
    },
    /// Its fields stand beside `"event"` in the JSON line, the outcome's among them.
    StepFinished(StepEnd),
    /// Where a migrated VM's time went: its pipeline steps with start and duration, from the
    /// Plan's status once the migration ended (emitted during the migrate step `id`).
    VmTimeline {
        id: String,
        plan: String,
        vm: String,
        phases: Vec<PipelinePhase>,
    },
    ScenarioFinished {
        scenario: String,
    },
    TeardownStarted {
        resources: usize,
    },
    /// What teardown is waiting for (an object still there, its finalizers), said while it waits.
    TeardownNote {
        message: String,
    },
    /// A recorded object teardown did not touch because it is not the one the run made (another uid:
    /// deleted and made again by someone else), or because another session still needs a setting.
    ResourceLeftAlone {
        resource: ResourceRef,
        reason: String,
    },
    TeardownFinished {
        leftovers: Vec<ResourceRef>,
    },
    /// The API server has not answered for a while; the run keeps trying until `giving_up_after`.
    ApiNotAnswering {
        server: String,
        #[serde(with = "duration_secs")]
        silent_for: Duration,
        last_error: String,
        /// What waits on the server (the steps' waits and requests).
        waiting_for: Vec<String>,
        #[serde(with = "duration_secs")]
        giving_up_after: Duration,
    },
    /// The API server answers again after [`Event::ApiNotAnswering`].
    ApiAnswering {
        server: String,
        #[serde(with = "duration_secs")]
        silent_for: Duration,
    },
    SessionFinished {
        exit_code: u8,
        #[serde(with = "duration_secs")]
        duration: Duration,
    },
}

mod duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Ok(Duration::from_secs_f64(secs.max(0.0)))
    }
}

mod opt_duration_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::duration_secs::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(|secs| Duration::from_secs_f64(secs.max(0.0))))
    }
}

/// Where the engine sends its events.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_finished_serialises_flat_with_the_outcome() {
        let event = Event::StepFinished(StepEnd {
            id: "TestX[a]::test_create_plan".into(),
            scenario: "TestX[a]".into(),
            step: "test_create_plan".into(),
            outcome: StepOutcome::Failed {
                message: "Plan not Ready after 360s: VMNotFound".into(),
            },
            duration: Duration::from_millis(1500),
            diagnostics: None,
        });
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "step_finished");
        assert_eq!(json["outcome"], "failed");
        assert_eq!(json["message"], "Plan not Ready after 360s: VMNotFound");
        assert_eq!(json["duration"], 1.5);
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
