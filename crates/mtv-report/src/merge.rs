//! Joining the event logs of partitioned runs (`--partition K/N`) into the stream one run over the
//! whole selection would have written, so every reporter (JUnit, HTML, rerun state, event log)
//! writes the merged results exactly as it writes a single run's.
//!
//! The merged stream has one `SessionStarted` (the partitions' sessions joined, their items added),
//! then each partition's scenario and step events in partition order, then one teardown
//! (its ledgered resources added, the leftovers of all) and one `SessionFinished` (the worst exit
//! code, the longest duration: partitions run side by side). An item reported by two partitions
//! is an error: the partitions were not of one split.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mtv_events::{Event, ResourceRef, SessionStart, StepEnd};

use crate::rerun::RerunState;
use crate::summary::{
    EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_LEFTOVERS, EXIT_OK, EXIT_TERMINATED, EXIT_TEST_FAILED,
};

/// One partition's event log and the name it is reported under (its results directory).
#[derive(Debug, Clone)]
pub struct PartitionLog {
    pub label: String,
    pub events: Vec<Event>,
}

/// Why partitions' results cannot be merged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    #[error("nothing to merge: no event log was given")]
    Nothing,
    #[error(
        "{label}: the event log has no session_started event (the run stopped before its session began)"
    )]
    NoSession { label: String },
    #[error(
        "{label} ran source provider '{theirs}' and {first} ran '{ours}': only partitions of one run can be merged"
    )]
    DifferentProviders {
        first: String,
        ours: String,
        label: String,
        theirs: String,
    },
    #[error("{id} is reported by both {first} and {second}: these are not partitions of one split")]
    Overlap {
        id: String,
        first: String,
        second: String,
    },
}

/// What the partitions' session-level events add up to.
#[derive(Default)]
struct Totals {
    session_ids: Vec<String>,
    targets: BTreeSet<String>,
    items: usize,
    teardown_started: Option<usize>,
    teardowns_finished: usize,
    leftovers: Vec<ResourceRef>,
    exit_codes: Vec<u8>,
    longest: Duration,
}

/// The single stream of several partitions' logs (see the module doc).
pub fn merge_event_logs(parts: &[PartitionLog]) -> Result<Vec<Event>, MergeError> {
    let first = parts.first().ok_or(MergeError::Nothing)?;
    let header = session_started(first)?.clone();
    let mut totals = Totals::default();
    let mut reported_by: BTreeMap<String, &str> = BTreeMap::new();
    let mut body = Vec::new();
    for part in parts {
        check_provider(first, &header.source_provider, part)?;
        for event in &part.events {
            if let Event::StepFinished(StepEnd { id, .. }) = event
                && let Some(earlier) = reported_by.insert(id.clone(), &part.label)
            {
                return Err(MergeError::Overlap {
                    id: id.clone(),
                    first: earlier.to_string(),
                    second: part.label.clone(),
                });
            }
            if !totals.add(event) {
                body.push(event.clone());
            }
        }
    }
    Ok(totals.into_stream(header, body, parts.len()))
}

fn session_started(part: &PartitionLog) -> Result<&SessionStart, MergeError> {
    part.events
        .iter()
        .find_map(|e| match e {
            Event::SessionStarted(start) => Some(start),
            _ => None,
        })
        .ok_or_else(|| MergeError::NoSession {
            label: part.label.clone(),
        })
}

fn check_provider(first: &PartitionLog, ours: &str, part: &PartitionLog) -> Result<(), MergeError> {
    let theirs = &session_started(part)?.source_provider;
    if theirs == ours {
        return Ok(());
    }
    Err(MergeError::DifferentProviders {
        first: first.label.clone(),
        ours: ours.to_string(),
        label: part.label.clone(),
        theirs: theirs.clone(),
    })
}

impl Totals {
    /// Takes in a session-level event (true), or leaves a scenario-level one to the body (false).
    fn add(&mut self, event: &Event) -> bool {
        match event {
            Event::SessionStarted(start) => {
                self.session_ids.push(start.session_id.clone());
                self.targets.insert(start.target.clone());
                self.items += start.items;
            }
            Event::TeardownStarted { resources } => {
                *self.teardown_started.get_or_insert(0) += resources;
            }
            Event::TeardownFinished { leftovers } => {
                self.teardowns_finished += 1;
                self.leftovers.extend(leftovers.iter().cloned());
            }
            Event::SessionFinished {
                exit_code,
                duration,
            } => {
                self.exit_codes.push(*exit_code);
                self.longest = self.longest.max(*duration);
            }
            _ => return false,
        }
        true
    }

    fn into_stream(self, header: SessionStart, body: Vec<Event>, parts: usize) -> Vec<Event> {
        let mut stream = vec![Event::SessionStarted(SessionStart {
            session_id: self.session_ids.join("+"),
            target: self.targets.into_iter().collect::<Vec<_>>().join(", "),
            items: self.items,
            ..header
        })];
        stream.extend(body);
        if let Some(resources) = self.teardown_started {
            stream.push(Event::TeardownStarted { resources });
        }
        // Teardown finished for the merged run only when it finished in every partition.
        if self.teardowns_finished == parts {
            stream.push(Event::TeardownFinished {
                leftovers: self.leftovers,
            });
        }
        if self.exit_codes.len() == parts {
            stream.push(Event::SessionFinished {
                exit_code: worst_exit_code(&self.exit_codes),
                duration: self.longest,
            });
        }
        stream
    }
}

/// The exit code of the whole from its partitions': an interruption, then a failure, then
/// leftovers, then success, as one run ranks them.
pub fn worst_exit_code(codes: &[u8]) -> u8 {
    let rank = |code: u8| match code {
        EXIT_INTERRUPTED | EXIT_TERMINATED | EXIT_HANGUP => 4,
        EXIT_TEST_FAILED => 3,
        EXIT_LEFTOVERS => 2,
        EXIT_OK => 0,
        // Anything else the engine may add ranks as a failure would.
        _ => 3,
    };
    codes
        .iter()
        .copied()
        .max_by_key(|code| rank(*code))
        .unwrap_or(EXIT_OK)
}

/// The rerun state the partitions started from: each partition's file holds the common previous
/// state minus what it ran plus what it failed, so the union of the files, with what the merged run
/// ran taken out and its failures put in (as [`crate::RerunReport`] does), is the state of one run.
pub fn union_rerun_states(states: &[RerunState]) -> Option<RerunState> {
    let first = states.first()?;
    Some(RerunState {
        source_provider: first.source_provider.clone(),
        failed: states
            .iter()
            .filter(|state| state.source_provider == first.source_provider)
            .flat_map(|state| state.failed.iter().cloned())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use mtv_events::StepOutcome;

    use super::*;

    fn started(session: &str, provider: &str, items: usize) -> Event {
        Event::SessionStarted(SessionStart {
            session_id: session.into(),
            target: "https://127.0.0.1:6443".into(),
            mtv_version: Some("2.10.0".into()),
            source_provider: provider.into(),
            provider_type: "vsphere".into(),
            storage_class: "lab-ceph-rbd".into(),
            items,
        })
    }

    fn step(id: &str, outcome: StepOutcome) -> Event {
        Event::StepFinished(StepEnd {
            id: id.into(),
            scenario: id.split("::").next().unwrap_or(id).into(),
            step: "test_migrate_vms".into(),
            outcome,
            duration: Duration::from_secs(1),
            diagnostics: None,
        })
    }

    fn resource(name: &str) -> ResourceRef {
        ResourceRef {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: name.into(),
            uid: None,
        }
    }

    fn partition(label: &str, session: &str, body: Vec<Event>, end: (u8, u64)) -> PartitionLog {
        let mut events = vec![started(session, "vsphere", body.len())];
        events.extend(body);
        events.push(Event::TeardownStarted { resources: 2 });
        events.push(Event::TeardownFinished {
            leftovers: if end.0 == EXIT_LEFTOVERS {
                vec![resource(session)]
            } else {
                Vec::new()
            },
        });
        events.push(Event::SessionFinished {
            exit_code: end.0,
            duration: Duration::from_secs(end.1),
        });
        PartitionLog {
            label: label.into(),
            events,
        }
    }

    #[test]
    fn one_session_with_everything_added_up() {
        let merged = merge_event_logs(&[
            partition(
                "p1",
                "s-a",
                vec![step("TestA[a]::test_migrate_vms", StepOutcome::Passed)],
                (EXIT_LEFTOVERS, 30),
            ),
            partition(
                "p2",
                "s-b",
                vec![step(
                    "TestB[b]::test_migrate_vms",
                    StepOutcome::Failed {
                        message: "boom".into(),
                    },
                )],
                (EXIT_TEST_FAILED, 50),
            ),
        ])
        .expect("merges");
        assert_eq!(merged.len(), 6, "{merged:#?}");
        assert!(matches!(
            &merged[0],
            Event::SessionStarted(start) if start.session_id == "s-a+s-b" && start.items == 2
        ));
        assert_eq!(merged[3], Event::TeardownStarted { resources: 4 });
        assert_eq!(
            merged[4],
            Event::TeardownFinished {
                leftovers: vec![resource("s-a")]
            }
        );
        assert_eq!(
            merged[5],
            Event::SessionFinished {
                exit_code: EXIT_TEST_FAILED,
                duration: Duration::from_secs(50)
            }
        );
    }

    #[test]
    fn an_unfinished_partition_leaves_the_whole_unfinished() {
        let mut cut = partition("p2", "s-b", Vec::new(), (EXIT_OK, 1));
        cut.events.truncate(1);
        let merged =
            merge_event_logs(&[partition("p1", "s-a", Vec::new(), (EXIT_OK, 1)), cut]).unwrap();
        assert!(!merged.iter().any(|e| matches!(
            e,
            Event::SessionFinished { .. } | Event::TeardownFinished { .. }
        )));
    }

    #[test]
    fn partitions_of_other_runs_are_refused() {
        let mut other = partition("p2", "s-b", Vec::new(), (EXIT_OK, 1));
        other.events[0] = started("s-b", "ovirt", 0);
        assert_eq!(
            merge_event_logs(&[partition("p1", "s-a", Vec::new(), (EXIT_OK, 1)), other]),
            Err(MergeError::DifferentProviders {
                first: "p1".into(),
                ours: "vsphere".into(),
                label: "p2".into(),
                theirs: "ovirt".into(),
            })
        );
        assert_eq!(merge_event_logs(&[]), Err(MergeError::Nothing));
    }

    #[test]
    fn the_worst_exit_code_wins() {
        assert_eq!(worst_exit_code(&[0, 3, 1, 0]), EXIT_TEST_FAILED);
        assert_eq!(worst_exit_code(&[1, 143]), EXIT_TERMINATED);
        assert_eq!(worst_exit_code(&[0, 3]), EXIT_LEFTOVERS);
        assert_eq!(worst_exit_code(&[]), EXIT_OK);
    }
}
