//! Collection: expand scenarios into items, apply `-m` / `-k`, then gate what remains against the
//! source profile (provider type, warm support, copy-offload readiness, remote cluster, MTV
//! version), the way the Python suite's collection hooks and skip markers do.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use mtv_api::ProviderType;
use serde::Serialize;

use crate::catalog::{Catalog, Scenario};
use crate::expr::{KeywordExpr, MarkerExpr, keyword_hit};
use crate::steps::StepKind;

/// Whether the selected profile can run copy-offload scenarios.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyOffloadGate {
    /// A vSphere profile with a complete `copyoffload` section.
    Ready,
    /// The profile cannot do copy-offload at all (not vSphere, no section): such scenarios are
    /// skipped, unless the selection asks for them explicitly.
    Unsupported { reason: String },
    /// The profile has a `copyoffload` section that is incomplete or wrong: selecting any
    /// copy-offload scenario is an error.
    Misconfigured { reason: String },
}

/// What the gates know about the run.
#[derive(Debug, Clone)]
pub struct GateContext {
    pub provider_type: ProviderType,
    /// The profile key (`source_provider`), shown in skip reasons.
    pub profile_name: String,
    pub remote_ocp_cluster: Option<String>,
    /// The cluster's MTV version, when known (never known without a cluster).
    pub mtv_version: Option<String>,
    pub copyoffload: CopyOffloadGate,
}

/// `-m`, `-k`, and `--last-failed`.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub markers: Option<MarkerExpr>,
    pub keywords: Option<KeywordExpr>,
    /// Only these scenarios (`Class[id]`), the ones that failed last time (`--last-failed`).
    pub scenarios: Option<BTreeSet<String>>,
}

impl Selection {
    fn filters(&self) -> bool {
        self.markers.is_some() || self.keywords.is_some() || self.scenarios.is_some()
    }
}

/// What happens to an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Selected,
    Skipped {
        reason: String,
    },
    /// Filtered out by `-m` / `-k`.
    Deselected,
}

impl Outcome {
    /// `"selected"`, `"skipped"` or `"deselected"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Selected => "selected",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Deselected => "deselected",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Skipped { reason } => Some(reason),
            _ => None,
        }
    }
}

/// One collected step of one scenario.
#[derive(Debug, Clone)]
pub struct Item {
    /// `Class[id]::test_create_storagemap`.
    pub id: String,
    /// `Class[id]`.
    pub scenario: String,
    /// Index into `Catalog::scenarios`.
    pub scenario_index: usize,
    pub step: StepKind,
    pub markers: Vec<String>,
    pub outcome: Outcome,
}

/// Counts in the pytest summary's terms: `collected` = `selected` + `skipped` + `deselected`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub collected: usize,
    pub selected: usize,
    pub skipped: usize,
    pub deselected: usize,
    /// Skip reason → number of items skipped for it.
    pub skip_reasons: BTreeMap<String, usize>,
    pub scenarios: usize,
    /// Scenarios with at least one selected item.
    pub scenarios_selected: usize,
}

#[derive(Debug, Clone)]
pub struct Collection {
    pub items: Vec<Item>,
    pub summary: Summary,
}

impl Collection {
    /// The `list --format json` document. Its shape is a contract that tools read: keep it stable.
    pub fn to_json(&self) -> serde_json::Value {
        let items: Vec<serde_json::Value> = self
            .items
            .iter()
            .map(|item| {
                serde_json::json!({
                    "id": item.id,
                    "scenario": item.scenario,
                    "step": item.step.test_name(),
                    "markers": item.markers,
                    "outcome": item.outcome.as_str(),
                    "reason": item.outcome.reason(),
                })
            })
            .collect();
        let s = &self.summary;
        serde_json::json!({
            "items": items,
            "summary": {
                "collected": s.collected,
                "selected": s.selected,
                "skipped": s.skipped,
                "deselected": s.deselected,
                "skip_reasons": s.skip_reasons,
                "scenarios": s.scenarios,
                "scenarios_selected": s.scenarios_selected,
            },
        })
    }

    /// Indices (into `Catalog::scenarios`) of the scenarios that will run, in catalog order.
    pub fn selected_scenarios(&self) -> Vec<usize> {
        let mut indices: Vec<usize> = self
            .items
            .iter()
            .filter(|i| i.outcome == Outcome::Selected)
            .map(|i| i.scenario_index)
            .collect();
        indices.dedup();
        indices
    }
}

/// A selection that cannot run as asked.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SelectionError {
    /// Copy-offload scenarios were asked for (or selected with a broken copy-offload section)
    /// but the profile cannot run them.
    #[error("cannot run the selected copy-offload scenarios: {reason}")]
    #[diagnostic(
        code(mtv::selection::copyoffload),
        help(
            "copy-offload needs a vSphere profile with a complete `copyoffload` section (e.g. --source-provider vsphere-copy-offload); to leave these scenarios out, add -m \"not copyoffload\""
        )
    )]
    CopyOffload { reason: String },
}

/// The reason text the Python suite uses for warm scenarios on sources without warm support.
pub fn warm_unsupported_reason(provider: ProviderType) -> String {
    format!("{provider} warm migration is not supported.")
}

/// The Python suite's reason for vSphere-only scenarios on other sources.
pub const VSPHERE_ONLY_REASON: &str = "Test is only applicable to vSphere source providers";

/// Why a scenario that adds a NIC to its source clone is skipped on other source types.
pub const ADD_NIC_VSPHERE_ONLY_REASON: &str =
    "add_nic is only supported for vSphere source providers";

/// The skip reason of remote scenarios without a remote cluster.
pub const REMOTE_UNSET_REASON: &str =
    "remote_ocp_cluster is not set (pass --tc remote_ocp_cluster:<cluster name>)";

/// The keywords `-k` matches an item against.
fn item_keywords<'a>(
    scenario: &'a Scenario,
    name: &'a str,
    id: &'a str,
    step: StepKind,
) -> Vec<&'a str> {
    let mut keywords = vec![
        step.test_name(),
        scenario.entry.class.as_str(),
        scenario.entry.id.as_str(),
        name,
        id,
        scenario.family.as_str(),
    ];
    keywords.extend(scenario.entry.markers.iter().map(String::as_str));
    if scenario.entry.min_mtv_version.is_some() {
        keywords.push("min_mtv_version");
    }
    if let Some(config_name) = &scenario.entry.config_name {
        keywords.push(config_name);
    }
    keywords
}

/// Expands, filters and gates the catalog.
pub fn collect(
    catalog: &Catalog,
    selection: &Selection,
    gate: &GateContext,
) -> Result<Collection, SelectionError> {
    // Pass 1: -m and -k.
    let mut items = Vec::new();
    let mut passing = vec![false; catalog.scenarios.len()];
    for (index, scenario) in catalog.scenarios.iter().enumerate() {
        let name = scenario.name();
        let marker_hit = selection
            .scenarios
            .as_ref()
            .is_none_or(|only| only.contains(&name))
            && selection
                .markers
                .as_ref()
                .is_none_or(|m| m.matches(|marker| scenario.has_marker(marker)));
        for step in &scenario.steps {
            let id = scenario.item_id(step.kind);
            let keyword_hit_all = marker_hit
                && selection.keywords.as_ref().is_none_or(|k| {
                    let keywords = item_keywords(scenario, &name, &id, step.kind);
                    k.matches(|ident| keyword_hit(ident, &keywords))
                });
            passing[index] |= keyword_hit_all;
            items.push(Item {
                id,
                scenario: name.clone(),
                scenario_index: index,
                step: step.kind,
                markers: scenario.markers(),
                outcome: if keyword_hit_all {
                    Outcome::Selected
                } else {
                    Outcome::Deselected
                },
            });
        }
    }

    // Copy-offload: decide once for the whole selection whether skipping is acceptable.
    let copyoffload_gate = effective_copyoffload_gate(gate);
    let copyoffload_passing = catalog
        .scenarios
        .iter()
        .zip(&passing)
        .any(|(s, p)| *p && s.is_copyoffload());
    if copyoffload_passing {
        match &copyoffload_gate {
            CopyOffloadGate::Ready => {}
            CopyOffloadGate::Misconfigured { reason } => {
                return Err(SelectionError::CopyOffload {
                    reason: reason.clone(),
                });
            }
            CopyOffloadGate::Unsupported { reason } => {
                let asked_by_marker = selection
                    .markers
                    .as_ref()
                    .is_some_and(|m| m.implies("copyoffload"));
                let only_copyoffload = selection.filters()
                    && catalog
                        .scenarios
                        .iter()
                        .zip(&passing)
                        .filter(|(_, p)| **p)
                        .all(|(s, _)| s.is_copyoffload());
                if asked_by_marker || only_copyoffload {
                    return Err(SelectionError::CopyOffload {
                        reason: reason.clone(),
                    });
                }
            }
        }
    }

    // Pass 2: gates, per scenario.
    let reasons: Vec<Option<String>> = catalog
        .scenarios
        .iter()
        .map(|s| gate_reason(s, gate, &copyoffload_gate))
        .collect();
    for item in &mut items {
        if item.outcome == Outcome::Selected
            && let Some(reason) = &reasons[item.scenario_index]
        {
            item.outcome = Outcome::Skipped {
                reason: reason.clone(),
            };
        }
    }

    let mut summary = Summary {
        collected: items.len(),
        scenarios: catalog.scenarios.len(),
        ..Summary::default()
    };
    for item in &items {
        match &item.outcome {
            Outcome::Selected => summary.selected += 1,
            Outcome::Deselected => summary.deselected += 1,
            Outcome::Skipped { reason } => {
                summary.skipped += 1;
                *summary.skip_reasons.entry(reason.clone()).or_default() += 1;
            }
        }
    }
    let collection = Collection { items, summary };
    let scenarios_selected = collection.selected_scenarios().len();
    Ok(Collection {
        summary: Summary {
            scenarios_selected,
            ..collection.summary
        },
        items: collection.items,
    })
}

/// A `Ready` gate on a non-vSphere source is still unsupported.
fn effective_copyoffload_gate(gate: &GateContext) -> CopyOffloadGate {
    match &gate.copyoffload {
        CopyOffloadGate::Ready if !gate.provider_type.supports_copy_offload() => {
            CopyOffloadGate::Unsupported {
                reason: format!(
                    "{VSPHERE_ONLY_REASON}; profile '{}' is {}",
                    gate.profile_name, gate.provider_type
                ),
            }
        }
        other => other.clone(),
    }
}

/// Why a scenario is skipped for this profile, if it is; the first gate that applies wins.
fn gate_reason(
    scenario: &Scenario,
    gate: &GateContext,
    copyoffload: &CopyOffloadGate,
) -> Option<String> {
    let provider = gate.provider_type;
    if let Some(providers) = &scenario.entry.providers
        && !providers.contains(&provider)
    {
        let list: Vec<&str> = providers.iter().map(|p| p.as_str()).collect();
        return Some(format!(
            "{} is meant for {} sources; profile '{}' is {}",
            scenario.entry.class,
            list.join(", "),
            gate.profile_name,
            provider
        ));
    }
    if scenario.is_warm() && !provider.supports_warm() {
        return Some(warm_unsupported_reason(provider));
    }
    // The Python suite skips a scenario that adds a NIC to its clone when the source is not vSphere.
    if provider != ProviderType::Vsphere
        && scenario
            .entry
            .config
            .virtual_machines
            .iter()
            .any(|vm| vm.add_nic)
    {
        return Some(format!(
            "{ADD_NIC_VSPHERE_ONLY_REASON}; profile '{}' is {provider}",
            gate.profile_name
        ));
    }
    if scenario.is_copyoffload() {
        match copyoffload {
            CopyOffloadGate::Ready => {}
            CopyOffloadGate::Unsupported { reason } | CopyOffloadGate::Misconfigured { reason } => {
                return Some(reason.clone());
            }
        }
    }
    if scenario.is_remote()
        && gate
            .remote_ocp_cluster
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
    {
        return Some(REMOTE_UNSET_REASON.to_string());
    }
    if let (Some(minimum), Some(cluster)) = (&scenario.entry.min_mtv_version, &gate.mtv_version)
        && compare_versions(cluster, minimum) == Some(Ordering::Less)
    {
        return Some(format!(
            "Test requires MTV {minimum}+ (cluster has {cluster})"
        ));
    }
    None
}

/// The numeric parts of a version: `v2.10.0-rc1` → [2, 10, 0]. None when there is no number.
pub fn parse_version(version: &str) -> Option<Vec<u64>> {
    let trimmed = version.trim();
    let trimmed = trimmed
        .strip_prefix('v')
        .or_else(|| trimmed.strip_prefix('V'))
        .unwrap_or(trimmed);
    let end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let parts: Option<Vec<u64>> = trimmed[..end]
        .split('.')
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().ok())
        .collect();
    parts.filter(|p| !p.is_empty())
}

/// Numeric comparison, missing parts count as 0 (`2.10` == `2.10.0` > `2.9.1`).
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let (mut a, mut b) = (parse_version(a)?, parse_version(b)?);
    let len = a.len().max(b.len());
    a.resize(len, 0);
    b.resize(len, 0);
    Some(a.cmp(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("2.10.0", "2.9.1"), Some(Ordering::Greater));
        assert_eq!(compare_versions("v2.9.1", "2.10.0"), Some(Ordering::Less));
        assert_eq!(
            compare_versions("2.10.0-rc1", "2.10.0"),
            Some(Ordering::Equal)
        );
        assert_eq!(compare_versions("2.10", "2.10.0"), Some(Ordering::Equal));
        assert_eq!(compare_versions("unknown", "2.10.0"), None);
        assert_eq!(parse_version("V2.11.3+build7"), Some(vec![2, 11, 3]));
    }
}
