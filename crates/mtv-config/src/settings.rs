//! Runtime settings (the Python suite's `--tc` keys): one table drives parsing, the `settings`
//! command and the docs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use serde_saphyr::Spanned;

use crate::env::Env;
use crate::error::{ConfigError, ConfigWarning};
use crate::secret::{REDACTED, Secret};
use crate::source::{SourceText, is_secret_key};
use crate::suggest::{did_you_mean, hint_suffix};

/// How a setting's text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    String,
    /// `true`/`false`, case-insensitive.
    Bool,
    /// A non-negative integer.
    UInt,
    /// A string that is never printed.
    Secret,
}

impl SettingKind {
    pub fn expected(self) -> &'static str {
        match self {
            SettingKind::String | SettingKind::Secret => "a string",
            SettingKind::Bool => "a boolean (true or false)",
            SettingKind::UInt => "a non-negative integer",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SettingKind::String => "string",
            SettingKind::Bool => "bool",
            SettingKind::UInt => "uint",
            SettingKind::Secret => "secret",
        }
    }
}

/// One runtime setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingSpec {
    pub key: &'static str,
    pub kind: SettingKind,
    /// Default as text; None = unset.
    pub default: Option<&'static str>,
    /// Environment variable read as a fallback above the settings file.
    pub env: Option<&'static str>,
    pub description: &'static str,
}

/// Every setting, in the order `mtv-tests settings` shows them.
pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec {
        key: "source_provider",
        kind: SettingKind::String,
        default: None,
        env: None,
        description: "Profile key in the providers file to migrate from (a key, not a type). Required with a providers file; built-in profiles default to `vsphere`.",
    },
    SettingSpec {
        key: "storage_class",
        kind: SettingKind::String,
        default: None,
        env: None,
        description: "Destination StorageClass for every StorageMap and the post-migration storage check. Required with a providers file; built-in profiles default to `lab-ceph-rbd`.",
    },
    SettingSpec {
        key: "target_namespace_prefix",
        kind: SettingKind::String,
        default: Some("auto"),
        env: None,
        description: "Prefix material for the per-session target namespace.",
    },
    SettingSpec {
        key: "mtv_namespace",
        kind: SettingKind::String,
        default: Some("openshift-mtv"),
        env: None,
        description: "Namespace of the MTV operator, forklift pods, ForkliftController and inventory route.",
    },
    SettingSpec {
        key: "inventory_url",
        kind: SettingKind::String,
        default: None,
        env: None,
        description: "URL of the Forklift inventory (https://host[:port]); by default the run finds the Route `forklift-inventory` in mtv_namespace. Reached with the run's own token.",
    },
    SettingSpec {
        key: "remote_ocp_cluster",
        kind: SettingKind::String,
        default: None,
        env: None,
        description: "Enables the remote scenarios; must be a substring of the connected API host.",
    },
    SettingSpec {
        key: "snapshots_interval",
        kind: SettingKind::UInt,
        default: Some("2"),
        env: None,
        description: "Warm precopy interval written to ForkliftController spec.controller_precopy_interval (minutes).",
    },
    SettingSpec {
        key: "mins_before_cutover",
        kind: SettingKind::UInt,
        default: Some("5"),
        env: None,
        description: "Warm cutover time = now (UTC) + this many minutes.",
    },
    SettingSpec {
        key: "plan_wait_timeout",
        kind: SettingKind::UInt,
        default: Some("3600"),
        env: None,
        description: "Seconds to wait for a migration to finish.",
    },
    SettingSpec {
        key: "api_unreachable_timeout",
        kind: SettingKind::UInt,
        default: Some("180"),
        env: None,
        description: "Seconds a run keeps trying while the API server does not answer (it says so after 10 s); then the running steps fail with that cause and teardown starts.",
    },
    SettingSpec {
        key: "insecure_verify_skip",
        kind: SettingKind::Bool,
        // The Python suite defaults to true for the client it logs in with; ours comes from a
        // kubeconfig, which already says whether to verify, so unset defers to it.
        default: None,
        env: Some("CLUSTER_VERIFY_SSL"),
        description: "TLS verification of the cluster's API server certificate by `run`: true skips it, false verifies even when the kubeconfig says insecure-skip-tls-verify, unset (the default) does what the kubeconfig says. CLUSTER_VERIFY_SSL (true/1/yes verify, false/0/no skip; anything else is an error) inverts into this and wins over every other source.",
    },
    SettingSpec {
        key: "source_provider_insecure_skip_verify",
        kind: SettingKind::Bool,
        default: Some("false"),
        env: None,
        description: "insecureSkipVerify of the source Provider secret; when false the provider CA is fetched and stored.",
    },
    SettingSpec {
        key: "cluster_host",
        kind: SettingKind::String,
        default: None,
        env: Some("CLUSTER_HOST"),
        description: "OpenShift API URL, e.g. https://api.example:6443.",
    },
    SettingSpec {
        key: "cluster_username",
        kind: SettingKind::String,
        default: None,
        env: Some("CLUSTER_USERNAME"),
        description: "OpenShift user for the OAuth login.",
    },
    SettingSpec {
        key: "cluster_password",
        kind: SettingKind::Secret,
        default: None,
        env: Some("CLUSTER_PASSWORD"),
        description: "OpenShift password (prefer the environment variable to keep it off the command line).",
    },
    SettingSpec {
        key: "target_ocp_version",
        kind: SettingKind::String,
        default: None,
        env: None,
        description: "Target OpenShift version; only used in cloned-VM name suffixes (dots become dashes).",
    },
    SettingSpec {
        key: "mtv_version",
        kind: SettingKind::String,
        default: None,
        env: None,
        description: "Known MTV version for min_mtv_version gating in `list`/`plan`; a run reads it from the cluster.",
    },
];

/// The Python suite's keys that are defined there but unused; accepted with a warning.
pub const LEGACY_SETTINGS: &[&str] = &[
    "number_of_vms",
    "check_vms_signals",
    "vm_name_search_pattern",
];

/// The settings-file format version this build reads.
pub const SETTINGS_FILE_VERSION: u64 = 1;

/// Effective runtime settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub source_provider: Option<String>,
    pub storage_class: Option<String>,
    pub target_namespace_prefix: String,
    pub mtv_namespace: String,
    pub remote_ocp_cluster: Option<String>,
    /// The Forklift inventory's URL, overriding the Route.
    pub inventory_url: Option<String>,
    pub snapshots_interval: u64,
    pub mins_before_cutover: u64,
    pub plan_wait_timeout: u64,
    /// Seconds the run keeps trying while the API server does not answer.
    pub api_unreachable_timeout: u64,
    /// None: the kubeconfig decides.
    pub insecure_verify_skip: Option<bool>,
    pub source_provider_insecure_skip_verify: bool,
    pub cluster_host: Option<String>,
    pub cluster_username: Option<String>,
    pub cluster_password: Option<Secret>,
    pub target_ocp_version: Option<String>,
    pub mtv_version: Option<String>,
    /// Where each key's effective value came from: `default`, `settings.yaml:3:20`,
    /// `env CLUSTER_HOST`, `--tc`, `--set`.
    pub origins: BTreeMap<&'static str, String>,
}

impl Default for Settings {
    /// The defaults alone (no file, environment or flags).
    fn default() -> Self {
        let layers = Layers::defaults();
        layers.build()
    }
}

/// Everything `Settings::resolve` reads.
#[derive(Clone, Copy)]
pub struct SettingsSources<'a> {
    pub file: Option<&'a Path>,
    /// `key:value` (`--tc`), split at the first `:`.
    pub tc: &'a [String],
    /// `key=value` (`--set`), split at the first `=`.
    pub set: &'a [String],
    pub env: &'a dyn Env,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SettingValue {
    Str(String),
    Bool(bool),
    UInt(u64),
    Secret(Secret),
}

struct Layers {
    values: BTreeMap<&'static str, (Option<SettingValue>, String)>,
}

fn spec(key: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// Converts text by kind; Err is the expected-type description.
fn convert(spec: &SettingSpec, text: &str) -> Result<Option<SettingValue>, &'static str> {
    Ok(Some(match spec.kind {
        SettingKind::String if text.is_empty() => return Ok(None),
        SettingKind::Secret if text.is_empty() => return Ok(None),
        SettingKind::String => SettingValue::Str(text.to_string()),
        SettingKind::Secret => SettingValue::Secret(Secret::new(text)),
        SettingKind::Bool => match text.to_ascii_lowercase().as_str() {
            "true" => SettingValue::Bool(true),
            "false" => SettingValue::Bool(false),
            _ => return Err(spec.kind.expected()),
        },
        SettingKind::UInt => match text.trim().parse::<u64>() {
            Ok(n) => SettingValue::UInt(n),
            Err(_) => return Err(spec.kind.expected()),
        },
    }))
}

impl Layers {
    fn defaults() -> Self {
        let values = SETTINGS
            .iter()
            .map(|s| {
                let value = s.default.and_then(|d| convert(s, d).ok().flatten());
                (s.key, (value, "default".to_string()))
            })
            .collect();
        Layers { values }
    }

    fn set(&mut self, key: &'static str, value: Option<SettingValue>, origin: String) {
        self.values.insert(key, (value, origin));
    }

    fn string(&self, key: &str) -> Option<String> {
        match self.values.get(key) {
            Some((Some(SettingValue::Str(s)), _)) => Some(s.clone()),
            _ => None,
        }
    }

    fn uint(&self, key: &str) -> u64 {
        match self.values.get(key) {
            Some((Some(SettingValue::UInt(n)), _)) => *n,
            _ => 0,
        }
    }

    fn optional_bool(&self, key: &str) -> Option<bool> {
        match self.values.get(key) {
            Some((Some(SettingValue::Bool(b)), _)) => Some(*b),
            _ => None,
        }
    }

    fn bool(&self, key: &str) -> bool {
        matches!(
            self.values.get(key),
            Some((Some(SettingValue::Bool(true)), _))
        )
    }

    fn build(&self) -> Settings {
        Settings {
            source_provider: self.string("source_provider"),
            storage_class: self.string("storage_class"),
            target_namespace_prefix: self.string("target_namespace_prefix").unwrap_or_default(),
            mtv_namespace: self.string("mtv_namespace").unwrap_or_default(),
            remote_ocp_cluster: self.string("remote_ocp_cluster"),
            inventory_url: self.string("inventory_url"),
            snapshots_interval: self.uint("snapshots_interval"),
            mins_before_cutover: self.uint("mins_before_cutover"),
            plan_wait_timeout: self.uint("plan_wait_timeout"),
            api_unreachable_timeout: self.uint("api_unreachable_timeout"),
            insecure_verify_skip: self.optional_bool("insecure_verify_skip"),
            source_provider_insecure_skip_verify: self.bool("source_provider_insecure_skip_verify"),
            cluster_host: self.string("cluster_host"),
            cluster_username: self.string("cluster_username"),
            cluster_password: match self.values.get("cluster_password") {
                Some((Some(SettingValue::Secret(s)), _)) => Some(s.clone()),
                _ => None,
            },
            target_ocp_version: self.string("target_ocp_version"),
            mtv_version: self.string("mtv_version"),
            origins: self
                .values
                .iter()
                .map(|(k, (_, origin))| (*k, origin.clone()))
                .collect(),
        }
    }
}

fn known_keys() -> Vec<&'static str> {
    SETTINGS.iter().map(|s| s.key).collect()
}

static KNOWN_SETTINGS_HELP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "known settings: {} (legacy, ignored: {})",
        known_keys().join(", "),
        LEGACY_SETTINGS.join(", ")
    )
});

fn unknown_setting(key: &str, origin: String) -> ConfigError {
    let suggestion = did_you_mean(key, SETTINGS.iter().map(|s| s.key));
    ConfigError::UnknownSetting {
        key: key.to_string(),
        origin,
        hint: hint_suffix(&suggestion),
        help: KNOWN_SETTINGS_HELP.as_str(),
        src: None,
        span: None,
    }
}

fn legacy_warning(key: &str, origin: &str) -> ConfigWarning {
    ConfigWarning::new(
        format!(
            "setting `{key}` (from {origin}) is a legacy key of the Python suite and has no effect"
        ),
        None,
    )
}

fn value_help(spec: &SettingSpec) -> &'static str {
    match spec.kind {
        SettingKind::Bool => "use true or false (any letter case)",
        SettingKind::UInt => "use a whole number such as 3600",
        SettingKind::String | SettingKind::Secret => "use a plain string",
    }
}

impl Settings {
    /// Resolves the layers, lowest first: defaults < settings file < environment fallbacks
    /// (CLUSTER_HOST, CLUSTER_USERNAME, CLUSTER_PASSWORD) < `--tc` < `--set`; a set
    /// CLUSTER_VERIFY_SSL inverts into `insecure_verify_skip` and wins over everything.
    pub fn resolve(
        sources: &SettingsSources,
    ) -> Result<(Settings, Vec<ConfigWarning>), ConfigError> {
        let mut layers = Layers::defaults();
        let mut warnings = Vec::new();

        if let Some(path) = sources.file {
            read_settings_file(path, &mut layers, &mut warnings)?;
        }

        for spec in SETTINGS {
            if spec.key == "insecure_verify_skip" {
                continue;
            }
            if let Some(var) = spec.env
                && let Some(text) = sources.env.var(var)
            {
                let value =
                    convert(spec, &text).map_err(|expected| ConfigError::InvalidSettingValue {
                        key: spec.key.to_string(),
                        origin: format!("environment variable {var}"),
                        expected,
                        help: value_help(spec),
                        src: None,
                        span: None,
                    })?;
                layers.set(spec.key, value, format!("env {var}"));
            }
        }

        for (flag, separator, args) in [("--tc", ':', sources.tc), ("--set", '=', sources.set)] {
            for argument in args {
                apply_argument(flag, separator, argument, &mut layers, &mut warnings)?;
            }
        }

        if let Some(text) = sources
            .env
            .var("CLUSTER_VERIFY_SSL")
            .filter(|t| !t.trim().is_empty())
        {
            let verify = match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                // Anything else used to mean "skip": a typo must not switch verification off.
                _ => {
                    return Err(ConfigError::InvalidSettingValue {
                        key: "insecure_verify_skip".to_string(),
                        origin: "environment variable CLUSTER_VERIFY_SSL".to_string(),
                        expected: "true, false, 1, 0, yes or no",
                        help: "CLUSTER_VERIFY_SSL=true verifies the cluster's certificate, false skips the check; unset it to follow the kubeconfig",
                        src: None,
                        span: None,
                    });
                }
            };
            layers.set(
                "insecure_verify_skip",
                Some(SettingValue::Bool(!verify)),
                "env CLUSTER_VERIFY_SSL".to_string(),
            );
        }

        Ok((layers.build(), warnings))
    }

    /// Every key with its effective value (null when unset); secrets show `<redacted>`.
    pub fn redacted_json(&self) -> serde_json::Value {
        use serde_json::Value;
        let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
        let mut map = serde_json::Map::new();
        for spec in SETTINGS {
            let value = match spec.key {
                "source_provider" => opt(&self.source_provider),
                "storage_class" => opt(&self.storage_class),
                "target_namespace_prefix" => self.target_namespace_prefix.clone().into(),
                "mtv_namespace" => self.mtv_namespace.clone().into(),
                "remote_ocp_cluster" => opt(&self.remote_ocp_cluster),
                "inventory_url" => opt(&self.inventory_url),
                "snapshots_interval" => self.snapshots_interval.into(),
                "mins_before_cutover" => self.mins_before_cutover.into(),
                "plan_wait_timeout" => self.plan_wait_timeout.into(),
                "api_unreachable_timeout" => self.api_unreachable_timeout.into(),
                "insecure_verify_skip" => {
                    self.insecure_verify_skip.map_or(Value::Null, Value::Bool)
                }
                "source_provider_insecure_skip_verify" => {
                    self.source_provider_insecure_skip_verify.into()
                }
                "cluster_host" => opt(&self.cluster_host),
                "cluster_username" => opt(&self.cluster_username),
                "cluster_password" => self
                    .cluster_password
                    .as_ref()
                    .map_or(Value::Null, |_| REDACTED.into()),
                "target_ocp_version" => opt(&self.target_ocp_version),
                "mtv_version" => opt(&self.mtv_version),
                _ => Value::Null,
            };
            map.insert(spec.key.to_string(), value);
        }
        Value::Object(map)
    }

    /// Where a key's effective value came from (`default`, a file location, `env X`, a flag).
    pub fn origin(&self, key: &str) -> Option<&str> {
        self.origins.get(key).map(String::as_str)
    }
}

fn apply_argument(
    flag: &'static str,
    separator: char,
    argument: &str,
    layers: &mut Layers,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<(), ConfigError> {
    let Some((key, text)) = argument.split_once(separator) else {
        // Without a separator the whole argument may be a pasted credential.
        let shown = if is_secret_key(argument) || argument.len() > 64 {
            REDACTED.to_string()
        } else {
            argument.to_string()
        };
        return Err(ConfigError::MalformedSettingArgument {
            flag,
            argument: shown,
            shape: if separator == ':' {
                "KEY:VALUE"
            } else {
                "KEY=VALUE"
            },
            example: if separator == ':' {
                "storage_class:my-sc"
            } else {
                "storage_class=my-sc"
            },
        });
    };
    let key = key.trim();
    if LEGACY_SETTINGS.contains(&key) {
        warnings.push(legacy_warning(key, flag));
        return Ok(());
    }
    let Some(spec) = spec(key) else {
        // The value is left out: a mistyped key may hold a password.
        return Err(unknown_setting(key, format!("{flag} {key}")));
    };
    let value = convert(spec, text).map_err(|expected| ConfigError::InvalidSettingValue {
        key: key.to_string(),
        origin: format!("{flag} {key}{separator}{text}"),
        expected,
        help: value_help(spec),
        src: None,
        span: None,
    })?;
    layers.set(spec.key, value, flag.to_string());
    Ok(())
}

/// A scalar as the YAML parser saw it.
#[derive(Debug, Clone)]
enum YamlScalar {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    /// A sequence or mapping (never valid for a flat setting).
    Nested,
}

impl<'de> Deserialize<'de> for YamlScalar {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = YamlScalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<YamlScalar, E> {
                Ok(YamlScalar::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<YamlScalar, E> {
                Ok(YamlScalar::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<YamlScalar, E> {
                Ok(YamlScalar::Int(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<YamlScalar, E> {
                Ok(YamlScalar::Int(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<YamlScalar, E> {
                Ok(YamlScalar::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<YamlScalar, E> {
                Ok(YamlScalar::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<YamlScalar, E> {
                Ok(YamlScalar::Str(v))
            }
            fn visit_unit<E>(self) -> Result<YamlScalar, E> {
                Ok(YamlScalar::Null)
            }
            fn visit_none<E>(self) -> Result<YamlScalar, E> {
                Ok(YamlScalar::Null)
            }
            fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<YamlScalar, D::Error> {
                YamlScalar::deserialize(d)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<YamlScalar, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(YamlScalar::Nested)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<YamlScalar, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(YamlScalar::Nested)
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// The settings file's top-level mapping, in file order.
struct SettingsDocument(Vec<(Spanned<String>, Spanned<YamlScalar>)>);

impl<'de> Deserialize<'de> for SettingsDocument {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DocumentVisitor;
        impl<'de> Visitor<'de> for DocumentVisitor {
            type Value = SettingsDocument;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of `key: value` settings")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<SettingsDocument, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(SettingsDocument(entries))
            }
            fn visit_unit<E>(self) -> Result<SettingsDocument, E> {
                Ok(SettingsDocument(Vec::new()))
            }
        }
        deserializer.deserialize_map(DocumentVisitor)
    }
}

/// Masks the values of secret settings line by line, keeping byte offsets: the rest of a line
/// whose key reads as a credential, and every following line indented deeper than that key (a
/// nested or multi-line value), whatever the value's type.
fn mask_yaml_secrets(text: &str) -> String {
    let mask = |part: &str| -> String {
        part.chars()
            .map(|c| {
                if c.is_whitespace() {
                    c.to_string()
                } else {
                    "*".repeat(c.len_utf8())
                }
            })
            .collect()
    };
    let mut out = String::with_capacity(text.len());
    // The indentation of the secret key whose value may continue on the following lines.
    let mut secret_block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if let Some(key_indent) = secret_block {
            if trimmed.trim().is_empty() || indent > key_indent {
                out.push_str(&mask(line));
                continue;
            }
            secret_block = None;
        }
        let secret_line = trimmed.split_once(':').is_some_and(|(key, _)| {
            is_secret_key(
                key.trim()
                    .trim_start_matches("- ")
                    .trim_matches(['"', '\'']),
            )
        });
        match line.find(':') {
            Some(colon) if secret_line => {
                out.push_str(&line[..=colon]);
                out.push_str(&mask(&line[colon + 1..]));
                secret_block = Some(indent);
            }
            _ => out.push_str(line),
        }
    }
    out
}

fn read_settings_file(
    path: &Path,
    layers: &mut Layers,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<(), ConfigError> {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::SettingsFileNotFound { path: name });
        }
        Err(source) => return Err(ConfigError::Io { path: name, source }),
    };
    let source = SourceText::new(name.clone(), mask_yaml_secrets(&text));
    if text.trim().is_empty() {
        return Ok(());
    }
    let document: SettingsDocument = serde_saphyr::from_str(&text).map_err(|e| {
        let e = e.without_snippet();
        let (location, span) = match e.location() {
            Some(loc) if loc.line() > 0 => {
                let offset = source.offset_of_char(loc.line() as usize, loc.column() as usize);
                (
                    source.location(offset).to_string(),
                    Some(source.span(offset, 1)),
                )
            }
            _ => (format!("{name}:1:1"), None),
        };
        let message = yaml_message(e);
        ConfigError::SettingsSyntax {
            location,
            message,
            src: span.map(|_| source.named_source()),
            span,
        }
    })?;
    for (key, value) in document.0 {
        apply_file_entry(&source, &text, key, value, layers, warnings)?;
    }
    Ok(())
}

/// serde-saphyr's message without its own location suffix (we print file:line:column first).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    let first_line = full.lines().next().unwrap_or("invalid YAML").trim();
    let without_position = match (first_line.rfind(" at line "), e.location()) {
        (Some(i), Some(_)) => &first_line[..i],
        _ => first_line,
    };
    without_position.to_string()
}

fn location_of(source: &Arc<SourceText>, loc: &serde_saphyr::Location) -> (usize, String) {
    let offset = source.offset_of_char(loc.line() as usize, loc.column() as usize);
    (offset, source.location(offset).to_string())
}

fn apply_file_entry(
    source: &Arc<SourceText>,
    original: &str,
    key: Spanned<String>,
    value: Spanned<YamlScalar>,
    layers: &mut Layers,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<(), ConfigError> {
    let (key_offset, key_location) = location_of(source, &key.referenced);
    let (value_offset, value_location) = location_of(source, &value.referenced);
    let value_len = value
        .referenced
        .span()
        .byte_len()
        .map_or(1, |l| (l as usize).max(1));
    let key_name = key.value.as_str();

    if key_name == "version" {
        return match value.value {
            YamlScalar::Int(n) if n == i128::from(SETTINGS_FILE_VERSION) => Ok(()),
            YamlScalar::Str(ref s) if s.trim() == SETTINGS_FILE_VERSION.to_string() => Ok(()),
            _ => Err(ConfigError::InvalidSettingValue {
                key: "version".to_string(),
                origin: value_location,
                expected: "1 (the only settings-file version)",
                help: "write `version: 1` or leave the key out",
                src: Some(source.named_source()),
                span: Some(source.span(value_offset, value_len)),
            }),
        };
    }
    if LEGACY_SETTINGS.contains(&key_name) {
        let mut warning = legacy_warning(key_name, "the settings file");
        warning.location = Some(key_location);
        warnings.push(warning);
        return Ok(());
    }
    let Some(spec) = spec(key_name) else {
        let mut error = unknown_setting(key_name, key_location);
        if let ConfigError::UnknownSetting { src, span, .. } = &mut error {
            *src = Some(source.named_source());
            *span = Some(source.span(key_offset, key_name.len().max(1)));
        }
        return Err(error);
    };
    // A plain scalar's own text keeps what YAML would reinterpret (`4.20` stays "4.20").
    let raw_text = || -> Option<String> {
        let start = value.referenced.span().byte_offset()? as usize;
        let len = value.referenced.span().byte_len()? as usize;
        original
            .get(start..start + len)
            .map(|s| s.trim().to_string())
    };
    let text = match &value.value {
        YamlScalar::Null => return Ok(()),
        YamlScalar::Str(s) => Some(s.clone()),
        YamlScalar::Bool(b) => match spec.kind {
            SettingKind::Bool => Some(b.to_string()),
            _ => raw_text().or_else(|| Some(b.to_string())),
        },
        YamlScalar::Int(n) => match spec.kind {
            SettingKind::UInt => Some(n.to_string()),
            _ => raw_text().or_else(|| Some(n.to_string())),
        },
        YamlScalar::Float(f) => raw_text().or_else(|| Some(f.to_string())),
        YamlScalar::Nested => None,
    };
    let converted = text
        .as_deref()
        .map(|t| convert(spec, t))
        .unwrap_or(Err(spec.kind.expected()));
    match converted {
        Ok(v) => {
            layers.set(spec.key, v, value_location);
            Ok(())
        }
        Err(expected) => Err(ConfigError::InvalidSettingValue {
            key: spec.key.to_string(),
            origin: value_location,
            expected,
            help: value_help(spec),
            src: Some(source.named_source()),
            span: Some(source.span(value_offset, value_len)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_converts() {
        for spec in SETTINGS {
            if let Some(default) = spec.default {
                assert!(convert(spec, default).is_ok(), "{}", spec.key);
            }
        }
    }

    #[test]
    fn yaml_masking_keeps_offsets() {
        let text = "cluster_password: hunter2\nplan_wait_timeout: 5\n";
        let masked = mask_yaml_secrets(text);
        assert_eq!(masked.len(), text.len());
        assert!(!masked.contains("hunter2"));
        assert!(masked.contains("plan_wait_timeout: 5"));
    }

    #[test]
    fn yaml_masking_covers_nested_and_multi_line_values() {
        let text = "cluster_password:\n  - hunter2\n  - 4242\napi_key: |\n  line-one\n\n  line-two\nmtv_version: 2.9\n";
        let masked = mask_yaml_secrets(text);
        assert_eq!(masked.len(), text.len());
        for leaked in ["hunter2", "4242", "line-one", "line-two", "|"] {
            assert!(!masked.contains(leaked), "{leaked} in {masked}");
        }
        assert!(masked.contains("mtv_version: 2.9"), "{masked}");
    }
}
