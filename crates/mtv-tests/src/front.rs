//! The front half of every command: settings, providers file, profile, catalog and selection.
//! Nothing here touches a cluster.

use std::collections::BTreeSet;
use std::path::Path;

use miette::Report;
use mtv_catalog::collect::{Collection, CopyOffloadGate, GateContext, Selection, collect};
use mtv_catalog::expr::{KeywordExpr, MarkerExpr};
use mtv_catalog::{Catalog, known_marker_names};
use mtv_config::{
    ConfigWarning, Env, ProvidersFile, RunConfig, Settings, SettingsSources, resolve_run_config,
};
use mtv_engine::SessionContext;
use mtv_report::RerunState;

use crate::cli::CommonArgs;

/// Everything `list`, `plan` and `run` need, resolved and validated.
pub struct Front {
    pub config: RunConfig,
    pub warnings: Vec<ConfigWarning>,
    pub catalog: Catalog,
    pub collection: Collection,
    pub context: SessionContext,
}

/// Runtime settings from defaults, the settings file, the environment, `--tc`, `--set` and the
/// dedicated flags (which win).
pub fn load_settings(
    args: &CommonArgs,
    env: &dyn Env,
) -> Result<(Settings, Vec<ConfigWarning>), Report> {
    let mut set = args.set.clone();
    if let Some(name) = &args.source_provider {
        set.push(format!("source_provider={name}"));
    }
    if let Some(name) = &args.storage_class {
        set.push(format!("storage_class={name}"));
    }
    if let Some(url) = &args.inventory_url {
        set.push(format!("inventory_url={url}"));
    }
    let sources = SettingsSources {
        file: args.settings.as_deref(),
        tc: &args.tc,
        set: &set,
        env,
    };
    Settings::resolve(&sources).map_err(Report::new)
}

pub fn load_providers(
    args: &CommonArgs,
    env: &dyn Env,
    cwd: &Path,
) -> Result<ProvidersFile, Report> {
    ProvidersFile::discover(args.providers_file.as_deref(), env, cwd).map_err(Report::new)
}

pub fn load(args: &CommonArgs, env: &dyn Env, cwd: &Path) -> Result<Front, Report> {
    load_with_version(args, env, cwd, None)
}

/// [`load`], with the MTV version a cluster reported (it wins over the `mtv_version` setting for
/// `min_mtv_version` gating).
pub fn load_with_version(
    args: &CommonArgs,
    env: &dyn Env,
    cwd: &Path,
    cluster_mtv_version: Option<String>,
) -> Result<Front, Report> {
    let (settings, mut warnings) = load_settings(args, env)?;
    let providers = load_providers(args, env, cwd)?;
    warnings.extend(providers.warnings.iter().cloned());
    let config = resolve_run_config(settings, providers).map_err(Report::new)?;

    let mut catalog = Catalog::builtin().map_err(Report::new)?;
    for dir in &args.catalog {
        catalog.extend_from_dir(dir).map_err(Report::new)?;
    }

    let known = known_marker_names();
    let selection = Selection {
        markers: args
            .markers
            .as_deref()
            .map(|m| MarkerExpr::parse(m, &known))
            .transpose()
            .map_err(Report::new)?,
        keywords: args
            .keywords
            .as_deref()
            .map(KeywordExpr::parse)
            .transpose()
            .map_err(Report::new)?,
        scenarios: None,
    };
    let selection = match &args.last_failed {
        Some(path) => Selection {
            scenarios: Some(last_failed(
                &cwd.join(path),
                &config.profile.name,
                &mut warnings,
            )?),
            ..selection
        },
        None => selection,
    };

    let profile = &config.profile;
    // Keep the profile's own error: it lists every missing copy-offload field at once.
    let mut copy_offload_error = None;
    let copyoffload = if !profile.provider_type.supports_copy_offload() {
        CopyOffloadGate::Unsupported {
            reason: format!(
                "copy-offload needs a vSphere source; profile '{}' is {}",
                profile.name, profile.provider_type
            ),
        }
    } else {
        match profile.copyoffload(env) {
            Ok(Some(_)) => CopyOffloadGate::Ready,
            Ok(None) => CopyOffloadGate::Unsupported {
                reason: format!(
                    "profile '{}' has no copyoffload section; copy-offload scenarios need a vSphere profile with one",
                    profile.name
                ),
            },
            Err(error) => {
                let reason = error.to_string();
                copy_offload_error = Some(error);
                CopyOffloadGate::Misconfigured { reason }
            }
        }
    };
    let gate = GateContext {
        provider_type: profile.provider_type,
        profile_name: profile.name.clone(),
        remote_ocp_cluster: config.settings.remote_ocp_cluster.clone(),
        mtv_version: cluster_mtv_version.or_else(|| config.settings.mtv_version.clone()),
        copyoffload,
    };
    let collection = match collect(&catalog, &selection, &gate) {
        Ok(collection) => collection,
        Err(error) => {
            return Err(match copy_offload_error {
                Some(config_error) => Report::new(config_error),
                None => Report::new(error),
            });
        }
    };
    let context = SessionContext::from_run_config(&config, env);
    Ok(Front {
        config,
        warnings,
        catalog,
        collection,
        context,
    })
}

/// The scenarios `--last-failed` reruns, from the rerun state at `path`.
fn last_failed(
    path: &Path,
    profile: &str,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<BTreeSet<String>, Report> {
    let state = RerunState::read(path).map_err(|error| {
        miette::miette!(
            help = "`mtv-tests run` writes rerun.json into its results directory (--results, default \
                    results); pass the one of the run to repeat: --last-failed DIR/rerun.json",
            "--last-failed: {error}"
        )
    })?;
    if state.source_provider != profile {
        return Err(miette::miette!(
            help = format!(
                "pass --source-provider {} to rerun them, or leave out --last-failed",
                state.source_provider
            ),
            "--last-failed: {} holds the failures of source provider '{}', and this run uses '{profile}'",
            path.display(),
            state.source_provider
        ));
    }
    if state.failed.is_empty() {
        warnings.push(ConfigWarning {
            message: "--last-failed: no scenario failed last time; nothing to rerun".into(),
            location: Some(path.display().to_string()),
        });
    }
    Ok(state.failed)
}
