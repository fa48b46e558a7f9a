//! The configuration one run uses: settings plus the chosen source profile.

use crate::error::ConfigError;
use crate::providers::{ProviderProfile, ProvidersFile, ProvidersOrigin};
use crate::settings::Settings;

/// Storage class of the embedded lab, used when no providers file exists.
pub const LAB_DEFAULT_STORAGE_CLASS: &str = "lab-ceph-rbd";
/// Source profile of the embedded lab, used when no providers file exists.
pub const LAB_DEFAULT_SOURCE_PROVIDER: &str = "vsphere";

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub settings: Settings,
    pub providers: ProvidersFile,
    /// The profile `source_provider` names.
    pub profile: ProviderProfile,
    pub source_provider: String,
    pub storage_class: String,
}

/// Picks the source profile and storage class. With the built-in profiles both default to the
/// lab's; with a providers file both are required and every missing one is reported at once.
pub fn resolve_run_config(
    settings: Settings,
    providers: ProvidersFile,
) -> Result<RunConfig, ConfigError> {
    let (source_provider, storage_class) = match providers.origin {
        ProvidersOrigin::Builtin => (
            settings
                .source_provider
                .clone()
                .unwrap_or_else(|| LAB_DEFAULT_SOURCE_PROVIDER.to_string()),
            settings
                .storage_class
                .clone()
                .unwrap_or_else(|| LAB_DEFAULT_STORAGE_CLASS.to_string()),
        ),
        ProvidersOrigin::File(ref path) => {
            match (
                settings.source_provider.clone(),
                settings.storage_class.clone(),
            ) {
                (Some(source), Some(storage)) => (source, storage),
                (source, storage) => {
                    let mut missing = Vec::new();
                    let mut hints = Vec::new();
                    if source.is_none() {
                        missing.push("source_provider");
                        let profiles: Vec<&str> =
                            providers.profiles.keys().map(String::as_str).collect();
                        hints.push(format!(
                            "pass --source-provider NAME or --tc source_provider:NAME (profiles in {}: {})",
                            path.display(),
                            profiles.join(", ")
                        ));
                    }
                    if storage.is_none() {
                        missing.push("storage_class");
                        hints.push(
                            "pass --storage-class NAME or --tc storage_class:NAME".to_string(),
                        );
                    }
                    return Err(ConfigError::MissingRunSettings {
                        missing,
                        hint: hints.join("; "),
                    });
                }
            }
        }
    };
    let profile = providers.profile(&source_provider)?.clone();
    Ok(RunConfig {
        settings,
        providers,
        profile,
        source_provider,
        storage_class,
    })
}
