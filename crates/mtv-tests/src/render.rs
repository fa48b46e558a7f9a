//! Human output of `list`, `plan`, `settings` and `profiles`. JSON output is the libraries' own
//! serialisation; this module only lays text out.

use std::fmt::Write as _;

use mtv_catalog::collect::{Collection, Outcome};
use mtv_config::{ProviderProfile, ProvidersFile, ProvidersOrigin, SETTINGS, Settings};
use mtv_engine::preview::{ObjectPreview, RunPreview};
use serde_json::Value;

use crate::front::Front;

/// One line describing what the run is configured against.
pub fn context_line(front: &Front) -> String {
    let profile = &front.config.profile;
    let origin = match &front.config.providers.origin {
        ProvidersOrigin::Builtin => "built-in lab profile".to_string(),
        ProvidersOrigin::File(path) => path.display().to_string(),
    };
    let version = profile
        .version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    format!(
        "source provider '{}' ({}{version}, {origin}) · storage class {}",
        front.config.source_provider, profile.provider_type, front.config.storage_class
    )
}

pub fn list(front: &Front, verbose: bool) -> String {
    let collection = &front.collection;
    let summary = &collection.summary;
    let mut out = String::new();
    let _ = writeln!(out, "{}", context_line(front));
    let _ = writeln!(
        out,
        "collected {} items / {} deselected / {} selected",
        summary.collected,
        summary.deselected,
        summary.selected + summary.skipped
    );
    let _ = writeln!(out);
    for item in &collection.items {
        match &item.outcome {
            Outcome::Selected => {
                let _ = writeln!(out, "{}", item.id);
            }
            Outcome::Skipped { reason } => {
                let _ = writeln!(out, "{} SKIPPED ({reason})", item.id);
            }
            Outcome::Deselected if verbose => {
                let _ = writeln!(out, "{} DESELECTED", item.id);
            }
            Outcome::Deselected => {}
        }
    }
    let _ = writeln!(out);
    out.push_str(&summary_block(collection));
    out
}

/// The pytest-like closing lines: skip reasons, then the counts.
pub fn summary_block(collection: &Collection) -> String {
    let summary = &collection.summary;
    let mut out = String::new();
    if !summary.skip_reasons.is_empty() {
        let _ = writeln!(out, "short test summary info");
        for (reason, count) in &summary.skip_reasons {
            let _ = writeln!(out, "SKIPPED [{count}] {reason}");
        }
    }
    let _ = writeln!(
        out,
        "== {} selected, {} skipped, {} deselected ({} scenarios of {}) ==",
        summary.selected,
        summary.skipped,
        summary.deselected,
        summary.scenarios_selected,
        summary.scenarios
    );
    out
}

fn yaml_block(value: &Value, indent: usize) -> String {
    let text = serde_saphyr::to_string(value).unwrap_or_else(|e| format!("<{e}>\n"));
    let pad = " ".repeat(indent);
    text.lines()
        .filter(|line| !line.trim().is_empty() && line.trim() != "---")
        .map(|line| format!("{pad}{line}\n"))
        .collect()
}

fn object_lines(object: &ObjectPreview, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    let location = object
        .namespace
        .as_deref()
        .map(|ns| format!(" in {ns}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{pad}{} {} {}{location}",
        object.action, object.kind, object.name
    );
    if let Some(note) = &object.note {
        let _ = writeln!(out, "{pad}  # {note}");
    }
    if !object.fields.is_null() {
        out.push_str(&yaml_block(&object.fields, indent + 4));
    }
    out
}

pub fn plan(front: &Front, preview: &RunPreview) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", context_line(front));
    let _ = writeln!(
        out,
        "Nothing is created: this is what `mtv-tests run` would do. <session> is the session id, <rand4> a random suffix."
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "session setup");
    for object in &preview.session.objects {
        out.push_str(&object_lines(object, 2));
    }

    let mut previews = preview.scenarios.iter();
    let mut shown_scenario = None;
    for item in &front.collection.items {
        if shown_scenario == Some(item.scenario_index) {
            continue;
        }
        match &item.outcome {
            Outcome::Deselected => continue,
            Outcome::Skipped { reason } => {
                let _ = writeln!(out);
                let _ = writeln!(out, "{} SKIPPED ({reason})", item.scenario);
            }
            Outcome::Selected => {
                let Some(scenario_preview) = previews.next() else {
                    continue;
                };
                let scenario = &front.catalog.scenarios[item.scenario_index];
                let _ = writeln!(out);
                let _ = writeln!(
                    out,
                    "{}  [{}]  ({})",
                    scenario_preview.scenario,
                    scenario.entry.markers.join(" "),
                    scenario.origin
                );
                if let Some(description) = &scenario.entry.description {
                    let _ = writeln!(out, "  {description}");
                }
                let _ = writeln!(out, "  prepare");
                for object in &scenario_preview.prepare {
                    out.push_str(&object_lines(object, 4));
                }
                for step in &scenario_preview.steps {
                    let _ = writeln!(out, "  {}  (expect: {})", step.step, step.expectation);
                    for object in &step.objects {
                        out.push_str(&object_lines(object, 4));
                    }
                    for wait in &step.waits {
                        let _ = writeln!(out, "    wait: {wait}");
                    }
                    if !step.checks.is_empty() {
                        let _ = writeln!(out, "    checks:");
                        for check in &step.checks {
                            let _ = writeln!(out, "      - {check}");
                        }
                    }
                }
            }
        }
        shown_scenario = Some(item.scenario_index);
    }
    let _ = writeln!(out);
    out.push_str(&summary_block(&front.collection));
    out
}

pub fn settings(settings: &Settings) -> String {
    let effective = settings.redacted_json();
    let mut out = String::new();
    let width = SETTINGS.iter().map(|s| s.key.len()).max().unwrap_or(0);
    for spec in SETTINGS {
        let value = effective
            .get(spec.key)
            .map(|v| match v {
                Value::Null => "(unset)".to_string(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "(unset)".to_string());
        let _ = writeln!(out, "{:<width$}  = {value}", spec.key);
        let mut details = vec![format!("{:?}", spec.kind).to_lowercase()];
        if let Some(default) = spec.default {
            details.push(format!("default {default}"));
        }
        if let Some(env) = spec.env {
            details.push(format!("env {env}"));
        }
        let _ = writeln!(
            out,
            "{:<width$}    {} ({})",
            "",
            spec.description,
            details.join(", ")
        );
    }
    out
}

pub fn profile_summary(profile: &ProviderProfile) -> String {
    let mut parts = vec![profile.provider_type.to_string()];
    if let Some(version) = &profile.version {
        parts.push(version.clone());
    }
    if let Some(url) = &profile.api_url {
        parts.push(url.clone());
    }
    if profile.copyoffload.is_some() {
        parts.push("copy-offload".into());
    }
    parts.join(" · ")
}

pub fn profiles(file: &ProvidersFile) -> String {
    let mut out = String::new();
    match &file.origin {
        ProvidersOrigin::Builtin => {
            let _ = writeln!(
                out,
                "built-in lab profiles (no providers file found: --providers-file, $MTV_PROVIDERS_FILE, ./.providers.json)"
            );
        }
        ProvidersOrigin::File(path) => {
            let _ = writeln!(out, "profiles of {}", path.display());
        }
    }
    let width = file.profiles.keys().map(String::len).max().unwrap_or(0);
    for (name, profile) in &file.profiles {
        let _ = writeln!(out, "  {name:<width$}  {}", profile_summary(profile));
    }
    out
}
