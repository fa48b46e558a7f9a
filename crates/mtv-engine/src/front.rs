//! The one path from configuration to a run: settings → providers file → profile → catalog →
//! collection → the scenarios, skipped items and session needs a run takes. The CLI (`list`, `plan`,
//! `run`), the engine's tests and the benchmarks all go through here, so they resolve the settings
//! once, the profile's copy-offload section once, and collect with the same gating.

use std::collections::BTreeSet;
use std::path::PathBuf;

use mtv_catalog::collect::{
    Collection, CopyOffloadGate, GateContext, Outcome, Selection, SelectionError, collect,
};
use mtv_catalog::expr::{ExprError, KeywordExpr, MarkerExpr};
use mtv_catalog::partition::{self, Partition};
use mtv_catalog::{Catalog, CatalogError, known_marker_names};
use mtv_config::{
    ConfigError, ConfigWarning, CopyOffload, Env, ProvidersFile, RunConfig, Settings,
    SettingsSources, resolve_run_config,
};

use crate::SessionContext;
use crate::cluster::Cluster;
use crate::run::SkippedItem;
use crate::scenario::ScenarioSpec;
use crate::session::{Bootstrap, SessionNeeds, Timeouts};

/// Why the front could not be resolved: a configuration, catalog or selection error, each with its
/// own diagnostic (file, line, what to do).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FrontError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Expression(#[from] ExprError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Selection(#[from] SelectionError),
}

/// Resolves the settings (once) and picks the profile; the warnings of both come back.
pub fn resolve_config(
    sources: &SettingsSources<'_>,
    providers: ProvidersFile,
) -> Result<(RunConfig, Vec<ConfigWarning>), FrontError> {
    let (settings, mut warnings) = Settings::resolve(sources)?;
    warnings.extend(providers.warnings.iter().cloned());
    let config = resolve_run_config(settings, providers)?;
    Ok((config, warnings))
}

/// What to select: `-m`, `-k`, and the scenarios `--last-failed` names.
#[derive(Debug, Clone, Default)]
pub struct SelectionInput<'a> {
    pub markers: Option<&'a str>,
    pub keywords: Option<&'a str>,
    pub scenarios: Option<BTreeSet<String>>,
    /// Only this partition of the selection (`--partition`).
    pub partition: Option<Partition>,
}

/// Everything `list`, `plan` and `run` need, resolved and validated.
pub struct Front {
    pub config: RunConfig,
    pub warnings: Vec<ConfigWarning>,
    pub catalog: Catalog,
    pub collection: Collection,
    pub context: SessionContext,
    /// The profile's copy-offload section, resolved once (`None` when it has none).
    pub copy_offload: Option<CopyOffload>,
    selection: Selection,
    gate: GateContext,
    partition: Option<Partition>,
    /// What the cluster's ClusterServiceVersion said (`with_cluster_version`), so the bootstrap
    /// does not ask again.
    cluster_version: Option<Option<String>>,
}

/// Loads the catalog (built-in plus `catalog_dirs`) and collects `selection` for `config`'s
/// profile. `cluster_mtv_version`, when a cluster reported one, wins over the `mtv_version` setting
/// for `min_mtv_version` gating.
pub fn load_front(
    config: RunConfig,
    warnings: Vec<ConfigWarning>,
    catalog_dirs: &[PathBuf],
    selection_input: &SelectionInput<'_>,
    cluster_mtv_version: Option<String>,
    env: &dyn Env,
) -> Result<Front, FrontError> {
    let mut catalog = Catalog::builtin()?;
    for dir in catalog_dirs {
        catalog.extend_from_dir(dir)?;
    }
    let known = known_marker_names();
    let selection = Selection {
        markers: selection_input
            .markers
            .map(|m| MarkerExpr::parse(m, &known))
            .transpose()?,
        keywords: selection_input
            .keywords
            .map(KeywordExpr::parse)
            .transpose()?,
        scenarios: selection_input.scenarios.clone(),
    };
    let (copy_offload, gate) = copy_offload_gate(&config, env)?;
    let gate = GateContext {
        provider_type: config.profile.provider_type,
        profile_name: config.profile.name.clone(),
        remote_ocp_cluster: config.settings.remote_ocp_cluster.clone(),
        mtv_version: cluster_mtv_version.or_else(|| config.settings.mtv_version.clone()),
        copyoffload: gate,
    };
    let partition = selection_input.partition;
    let collection = partition::apply(collect(&catalog, &selection, &gate)?, partition.as_ref());
    let context = SessionContext::from_run_config(&config, env);
    Ok(Front {
        config,
        warnings,
        catalog,
        collection,
        context,
        copy_offload,
        selection,
        gate,
        partition,
        cluster_version: None,
    })
}

/// The profile's copy-offload section and what it means for gating. A broken section is an error
/// whatever is selected, so that `list`, `plan` and `run` judge the same file the same way.
fn copy_offload_gate(
    config: &RunConfig,
    env: &dyn Env,
) -> Result<(Option<CopyOffload>, CopyOffloadGate), FrontError> {
    let profile = &config.profile;
    if !profile.provider_type.supports_copy_offload() {
        let reason = format!(
            "copy-offload needs a vSphere source; profile '{}' is {}",
            profile.name, profile.provider_type
        );
        return Ok((None, CopyOffloadGate::Unsupported { reason }));
    }
    Ok(match profile.copyoffload(env)? {
        Some(section) => (Some(section), CopyOffloadGate::Ready),
        None => (
            None,
            CopyOffloadGate::Unsupported {
                reason: format!(
                    "profile '{}' has no copyoffload section; copy-offload scenarios need a \
                     vSphere profile with one",
                    profile.name
                ),
            },
        ),
    })
}

impl Front {
    /// Collects again with the MTV version a cluster reported (it wins over the `mtv_version`
    /// setting for `min_mtv_version` gating); nothing else is resolved again.
    pub fn with_cluster_version(mut self, version: Option<String>) -> Result<Front, FrontError> {
        self.cluster_version = Some(version.clone());
        if version.is_some() && version != self.gate.mtv_version {
            self.gate.mtv_version = version;
            self.collection = partition::apply(
                collect(&self.catalog, &self.selection, &self.gate)?,
                self.partition.as_ref(),
            );
        }
        Ok(self)
    }

    /// The same run with the profiles of `providers` in place of those it was loaded with (e.g. an
    /// embedded lab's, each pointed at where that lab serves its source): the source profile is the
    /// one of the same name there.
    pub fn with_providers(mut self, providers: ProvidersFile) -> Result<Front, FrontError> {
        let profile = providers.profile(&self.config.source_provider)?.clone();
        self.context.provider_url = profile.api_url.clone().unwrap_or_default();
        self.config.profile = profile;
        self.config.providers = providers;
        Ok(self)
    }

    /// The same run with its source profile pointed at `api_url` (and `fqdn`), trusting `cacert`:
    /// where the source the profile names actually answers (an embedded lab's endpoint for a host
    /// of its lab file).
    pub fn with_source_endpoint(mut self, api_url: &str, fqdn: &str, cacert: &str) -> Front {
        let point = |profile: &mut mtv_config::ProviderProfile| {
            profile.api_url = Some(api_url.to_string());
            profile.fqdn = Some(fqdn.to_string());
            profile.fields.insert(
                "cacert".into(),
                mtv_config::ProfileValue::Text(cacert.to_string()),
            );
        };
        point(&mut self.config.profile);
        if let Some(profile) = self
            .config
            .providers
            .profiles
            .get_mut(&self.config.source_provider)
        {
            point(profile);
        }
        self.context.provider_url = api_url.to_string();
        self
    }

    /// The selected scenarios, as the runner takes them.
    pub fn scenarios(&self) -> Vec<ScenarioSpec> {
        self.collection
            .selected_scenarios()
            .into_iter()
            .map(|index| self.scenario(index))
            .collect()
    }

    /// The catalog's scenario `index`, as the runner takes it.
    pub fn scenario(&self, index: usize) -> ScenarioSpec {
        let scenario = &self.catalog.scenarios[index];
        ScenarioSpec {
            name: scenario.name(),
            class: scenario.entry.class.clone(),
            config: scenario.entry.config.clone(),
            steps: scenario.steps.clone(),
        }
    }

    /// The items the gating skipped, reported as such and never run.
    pub fn skipped(&self) -> Vec<SkippedItem> {
        self.collection
            .items
            .iter()
            .filter_map(|item| match &item.outcome {
                Outcome::Skipped { reason } => Some(SkippedItem {
                    id: item.id.clone(),
                    scenario: item.scenario.clone(),
                    step: item.step.test_name().to_string(),
                    reason: reason.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The bootstrap of a run of `scenarios` on `target`: the one place a front becomes the
    /// engine's input.
    pub fn bootstrap(
        &self,
        cluster: Cluster,
        target: RunTarget,
        scenarios: &[ScenarioSpec],
    ) -> Bootstrap<'_> {
        Bootstrap {
            cluster,
            context: self.context.clone(),
            profile: &self.config.profile,
            copy_offload: self.copy_offload.as_ref(),
            needs: SessionNeeds::of(scenarios),
            cluster_url: target.cluster_url,
            cluster_token: target.cluster_token,
            kube_config: target.kube_config,
            session_id: target.session_id,
            timeouts: Timeouts::from_settings(&self.config.settings),
            mtv_version: self.cluster_version.clone(),
        }
    }
}

/// The cluster a run goes to, as its kubeconfig gives it.
pub struct RunTarget {
    /// The API URL (reports name the target by it; remote destinations use it).
    pub cluster_url: String,
    pub cluster_token: Option<String>,
    pub kube_config: kube::Config,
    pub session_id: Option<String>,
}
