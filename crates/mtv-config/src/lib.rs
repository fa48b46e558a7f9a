//! Providers file, per-type schema, copy-offload rules, runtime settings and secret redaction (no network).
//!
//! - [`ProvidersFile`] reads `.providers.json` (JSON with `//`/`#` comments and trailing commas),
//!   validates each profile against its provider type and falls back to built-in lab profiles.
//! - [`ProviderProfile::copyoffload`] resolves the vSphere copy-offload section with the
//!   `COPYOFFLOAD_<FIELD>` environment override.
//! - [`Settings::resolve`] layers defaults, a YAML settings file, the environment, `--tc` and
//!   `--set`; [`SETTINGS`] is the one table of keys.
//! - [`Secret`] keeps credentials out of every printed form.

mod copyoffload;
mod env;
mod error;
mod providers;
mod run;
mod secret;
mod settings;
mod source;
mod suggest;

pub use copyoffload::{
    CopyOffload, CopyOffloadSection, EsxiCloneMethod, StorageVendor, env_var_for,
};
pub use env::{Env, MapEnv, ProcessEnv};
pub use error::{ConfigError, ConfigWarning, FileSource, Problem};
pub use providers::{
    DEFAULT_PROVIDERS_FILE, LEGACY_PROVIDERS_FILE_ENV, PROVIDERS_FILE_ENV, ProfileValue,
    ProviderProfile, ProvidersFile, ProvidersOrigin, schema_fields,
};
pub use run::{
    LAB_DEFAULT_SOURCE_PROVIDER, LAB_DEFAULT_STORAGE_CLASS, RunConfig, resolve_run_config,
};
pub use secret::{
    REDACTED, SCHEMA_SECRET_FIELDS, Secret, is_secret_key, redact_credential_lines, redact_json,
};
pub use settings::{
    LEGACY_SETTINGS, SETTINGS, SETTINGS_FILE_VERSION, SettingKind, SettingSpec, Settings,
    SettingsSources,
};
pub use source::SourceLocation;
