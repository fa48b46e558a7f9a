//! The rerun state (`results/rerun.json`): which scenarios failed, for `--last-failed`, as pytest's
//! `--lf` cache. A run adds the scenarios that failed, errored or were interrupted
//! (Ctrl-C, SIGTERM, SIGHUP) and removes the ones that ran without
//! failing; scenarios it did not run keep their state, so `-m tier0 --last-failed` after a whole run
//! leaves the other families' failures for later. A different source provider starts afresh: a
//! failure on one profile says nothing about another.
//!
//! The file is versioned: `{"version": 1, "source_provider": "...", "failed": ["Class[id]", ...]}`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use mtv_events::{Event, StepEnd};
use serde_json::{Value, json};

use crate::atomic_file::write_atomically;
use crate::{ReportError, Reporter};

pub const RERUN_STATE_VERSION: u64 = 1;

/// What the last runs left to rerun.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RerunState {
    /// The profile (`source_provider`) the failures were seen with.
    pub source_provider: String,
    /// Failed scenarios (`Class[id]`), sorted.
    pub failed: BTreeSet<String>,
}

/// Why a rerun state cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RerunStateError {
    #[error("cannot read the rerun state {path}: {message}")]
    Read { path: String, message: String },
    #[error(
        "{path} is not a rerun state of this version (version {RERUN_STATE_VERSION}): {message}"
    )]
    Format { path: String, message: String },
}

impl RerunState {
    pub fn read(path: &Path) -> Result<RerunState, RerunStateError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RerunStateError::Read {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        let format = |message: &str| RerunStateError::Format {
            path: shown.clone(),
            message: message.to_string(),
        };
        let doc: Value = serde_json::from_str(&text).map_err(|e| format(&e.to_string()))?;
        if doc["version"].as_u64() != Some(RERUN_STATE_VERSION) {
            return Err(format(&format!("it has version {}", doc["version"])));
        }
        let source_provider = doc["source_provider"]
            .as_str()
            .ok_or_else(|| format("`source_provider` is missing"))?
            .to_string();
        let failed = doc["failed"]
            .as_array()
            .ok_or_else(|| format("`failed` is not a list"))?
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<BTreeSet<String>>>()
            .ok_or_else(|| format("`failed` holds something other than scenario names"))?;
        Ok(RerunState {
            source_provider,
            failed,
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "version": RERUN_STATE_VERSION,
            "source_provider": self.source_provider,
            "failed": self.failed,
        })
    }
}

/// Writes the rerun state when the run finishes, merged with the state the file held before.
pub struct RerunReport {
    path: PathBuf,
    previous: Option<RerunState>,
    source_provider: Option<String>,
    ran: BTreeSet<String>,
    failed: BTreeSet<String>,
}

impl RerunReport {
    /// A writer to `path`; what the file holds now (if anything readable) is merged in at the end.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let previous = RerunState::read(&path).ok();
        Self::with_previous(path, previous)
    }

    /// A writer to `path` that merges `previous` in at the end instead of what the file holds
    /// (`report merge`: the state the partitions started from).
    pub fn with_previous(path: impl Into<PathBuf>, previous: Option<RerunState>) -> Self {
        let path = path.into();
        RerunReport {
            path,
            previous,
            source_provider: None,
            ran: BTreeSet::new(),
            failed: BTreeSet::new(),
        }
    }

    /// The state this run leaves.
    pub fn state(&self) -> RerunState {
        let source_provider = self.source_provider.clone().unwrap_or_default();
        let mut failed: BTreeSet<String> = self
            .previous
            .iter()
            .filter(|previous| previous.source_provider == source_provider)
            .flat_map(|previous| previous.failed.difference(&self.ran).cloned())
            .collect();
        failed.extend(self.failed.iter().cloned());
        RerunState {
            source_provider,
            failed,
        }
    }
}

impl Reporter for RerunReport {
    fn handle(&mut self, event: &Event) {
        match event {
            Event::SessionStarted(start) => {
                self.source_provider = Some(start.source_provider.clone())
            }
            Event::StepFinished(StepEnd {
                scenario, outcome, ..
            }) => {
                if outcome.is_failure() {
                    self.failed.insert(scenario.clone());
                } else if matches!(outcome, mtv_events::StepOutcome::Skipped { .. }) {
                    // A skipped scenario did not run: what was known of it stays.
                    return;
                }
                self.ran.insert(scenario.clone());
            }
            _ => {}
        }
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        // A run that never started a session (bad input) leaves the state as it was.
        if self.source_provider.is_none() {
            return Ok(());
        }
        let text = serde_json::to_string_pretty(&self.state().to_json())?;
        write_atomically(&self.path, |out| writeln!(out, "{text}")).map_err(|source| {
            ReportError::File {
                what: "the rerun state",
                path: self.path.clone(),
                source,
            }
        })
    }
}
