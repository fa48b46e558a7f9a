//! `--partition hash:K/N` and `--partition count:K/N`: split the selection so that N runs, one per
//! partition, together cover it exactly once, with cargo-nextest's semantics.
//!
//! The unit is the scenario (`Class[id]`), never a single step: a scenario's steps are incremental
//! and share what the earlier ones created, so they must run in the same process. A scenario is in
//! the selection when any of its items is selected or skipped (skips are reported by the partition
//! that owns the scenario, so merged reports hold every item once).
//! - `count:K/N`: round-robin over the selection's scenarios sorted by name; the i-th (from 0) goes
//!   to partition `i mod N + 1`. Balanced, but adding a scenario moves the ones after it.
//! - `hash:K/N`: xxHash64 (seed 0) of the scenario name, modulo N, plus 1; a scenario stays in its
//!   partition whatever else the catalog or the selection holds.
//!
//! Items of scenarios in other partitions become deselected, as `-m`/`-k` deselect.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::collect::{Collection, Outcome, Summary};

/// How scenarios are assigned to partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Count,
    Hash,
}

/// One partition of N: `shard` counts from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub scheme: Scheme,
    pub shard: u64,
    pub total: u64,
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Count => "count",
            Scheme::Hash => "hash",
        };
        write!(f, "{scheme}:{}/{}", self.shard, self.total)
    }
}

impl FromStr for Partition {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = if let Some(rest) = text.strip_prefix("hash:") {
            (Scheme::Hash, rest)
        } else if let Some(rest) = text.strip_prefix("count:") {
            (Scheme::Count, rest)
        } else {
            return Err(format!(
                "'{text}' must begin with \"hash:\" or \"count:\" (e.g. count:1/3)"
            ));
        };
        let (shard, total) = rest
            .split_once('/')
            .ok_or_else(|| format!("'{text}': expected K/N after the scheme, e.g. count:1/3"))?;
        let number = |part: &str, what: &str| {
            part.parse::<u64>()
                .map_err(|e| format!("'{text}': the {what} '{part}' is not a number: {e}"))
        };
        let (shard, total) = (number(shard, "partition")?, number(total, "count")?);
        if !(1..=total).contains(&shard) {
            return Err(format!(
                "'{text}': partition {shard} must be between 1 and the count {total}, inclusive"
            ));
        }
        Ok(Partition {
            scheme,
            shard,
            total,
        })
    }
}

impl Partition {
    /// The scenarios (by name) of the selection that belong to this partition.
    pub fn scenarios_of(&self, selection: &BTreeSet<String>) -> BTreeSet<String> {
        selection
            .iter()
            .enumerate()
            .filter(|(position, name)| self.owns(*position as u64, name))
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// Whether the scenario at `position` of the sorted selection, named `name`, is ours.
    fn owns(&self, position: u64, name: &str) -> bool {
        let bucket = match self.scheme {
            Scheme::Count => position % self.total,
            Scheme::Hash => xxhash_rust::xxh64::xxh64(name.as_bytes(), 0) % self.total,
        };
        bucket == self.shard - 1
    }
}

/// The scenarios a collection runs or reports as skipped, sorted by name.
fn selection(collection: &Collection) -> BTreeSet<String> {
    collection
        .items
        .iter()
        .filter(|item| item.outcome != Outcome::Deselected)
        .map(|item| item.scenario.clone())
        .collect()
}

/// Keeps only this partition's scenarios: the others' items become deselected, and the summary is
/// counted again. Without a partition the collection is returned as it is.
pub fn apply(mut collection: Collection, partition: Option<&Partition>) -> Collection {
    let Some(partition) = partition else {
        return collection;
    };
    let ours = partition.scenarios_of(&selection(&collection));
    for item in &mut collection.items {
        if !ours.contains(&item.scenario) {
            item.outcome = Outcome::Deselected;
        }
    }
    collection.summary = recount(&collection);
    collection
}

/// The summary of a collection whose outcomes changed.
fn recount(collection: &Collection) -> Summary {
    let mut summary = Summary {
        collected: collection.items.len(),
        scenarios: collection.summary.scenarios,
        ..Summary::default()
    };
    for item in &collection.items {
        match &item.outcome {
            Outcome::Selected => summary.selected += 1,
            Outcome::Deselected => summary.deselected += 1,
            Outcome::Skipped { reason } => {
                summary.skipped += 1;
                *summary.skip_reasons.entry(reason.clone()).or_default() += 1;
            }
        }
    }
    summary.scenarios_selected = collection.selected_scenarios().len();
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(count: usize) -> BTreeSet<String> {
        (0..count)
            .map(|i| format!("TestScenario[s{i:02}]"))
            .collect()
    }

    #[test]
    fn parses_nextests_forms_and_refuses_the_rest() {
        assert_eq!(
            "hash:1/2".parse::<Partition>(),
            Ok(Partition {
                scheme: Scheme::Hash,
                shard: 1,
                total: 2
            })
        );
        assert_eq!(
            "count:3/3".parse::<Partition>().map(|p| p.to_string()),
            Ok("count:3/3".to_string())
        );
        for bad in [
            "foo",
            "hash",
            "hash:",
            "hash:1",
            "hash:1/",
            "hash:0/2",
            "hash:3/2",
            "hash:m/2",
            "hash:1/n",
            "hash:1/2/3",
            "count:1/0",
        ] {
            assert!(bad.parse::<Partition>().is_err(), "{bad} was accepted");
        }
    }

    /// Every scheme and count: the partitions are disjoint and together are the selection.
    #[test]
    fn partitions_cover_the_selection_exactly_once() {
        let selection = names(23);
        for scheme in [Scheme::Count, Scheme::Hash] {
            for total in 1..=7 {
                let mut seen = BTreeSet::new();
                for shard in 1..=total {
                    let part = Partition {
                        scheme,
                        shard,
                        total,
                    }
                    .scenarios_of(&selection);
                    for name in part {
                        assert!(seen.insert(name.clone()), "{name} in two partitions");
                    }
                }
                assert_eq!(seen, selection, "{scheme:?} over {total}");
            }
        }
    }

    #[test]
    fn count_is_round_robin_over_sorted_names() {
        let selection = names(5);
        let second = Partition {
            scheme: Scheme::Count,
            shard: 2,
            total: 2,
        }
        .scenarios_of(&selection);
        assert_eq!(
            second.into_iter().collect::<Vec<_>>(),
            ["TestScenario[s01]", "TestScenario[s03]"]
        );
    }

    /// The hash is nextest's (xxHash64, seed 0): a scenario's partition does not depend on the others.
    #[test]
    fn hash_is_stable_and_independent_of_the_rest() {
        let part = |selection: &BTreeSet<String>| {
            Partition {
                scheme: Scheme::Hash,
                shard: 1,
                total: 3,
            }
            .scenarios_of(selection)
        };
        let small = part(&names(10));
        let large = part(&names(40));
        assert!(small.is_subset(&large));
        // xxh64("", 0) is the published test vector of xxHash64.
        assert_eq!(xxhash_rust::xxh64::xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
    }
}
