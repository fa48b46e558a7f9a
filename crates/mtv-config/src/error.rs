//! Configuration errors and warnings. Every message that has a location says `file:line:column`
//! and ends with what to do; none of them ever contains a secret value.

use std::fmt;

use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};

/// A file's (secret-masked) text attached to a diagnostic; shared so errors stay small.
pub type FileSource = Arc<NamedSource<String>>;

/// Something suspicious but harmless (an unknown field, a legacy setting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub message: String,
    /// `file:line:column` when the warning is about a place in a file.
    pub location: Option<String>,
}

impl ConfigWarning {
    pub(crate) fn new(message: impl Into<String>, location: Option<String>) -> Self {
        ConfigWarning {
            message: message.into(),
            location,
        }
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// One finding inside a file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `file:line:column`, or a plain description (an environment variable) when not in a file.
    pub location: String,
    pub message: String,
    pub(crate) span: Option<SourceSpan>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

pub(crate) fn bullet_list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("\n  - {p}"))
        .collect::<String>()
}

/// One label per distinct span; several problems at the same place (e.g. every missing field of a
/// section) share a short label naming their fields, the full messages being in the list above.
pub(crate) fn labels_for(problems: &[Problem]) -> Vec<LabeledSpan> {
    let mut groups: Vec<(SourceSpan, Vec<&Problem>)> = Vec::new();
    for problem in problems {
        let Some(span) = problem.span else { continue };
        match groups.iter_mut().find(|(s, _)| *s == span) {
            Some((_, group)) => group.push(problem),
            None => groups.push((span, vec![problem])),
        }
    }
    groups
        .into_iter()
        .map(|(span, group)| {
            let label = if let [single] = group.as_slice() {
                single.message.clone()
            } else {
                let names: Vec<&str> = group
                    .iter()
                    .filter_map(|p| p.message.split('`').nth(1))
                    .collect();
                format!("{} problems here: {}", group.len(), names.join(", "))
            };
            LabeledSpan::new_with_span(Some(label), span)
        })
        .collect()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("providers file {path} (named by {named_by}) does not exist")]
    #[diagnostic(
        code(mtv_config::providers_file_not_found),
        help(
            "fix the path, or unset {named_by} to use ./.providers.json or the built-in lab profiles"
        )
    )]
    ProvidersFileNotFound { path: String, named_by: String },

    #[error("cannot read {path}: {source}")]
    #[diagnostic(
        code(mtv_config::io),
        help("check that the file exists and is readable")
    )]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("providers file {path} is empty")]
    #[diagnostic(
        code(mtv_config::empty_providers_file),
        help(
            "write a JSON object whose keys are profile names, e.g. {{\"vsphere\": {{\"type\": \"vsphere\", ...}}}}"
        )
    )]
    EmptyProvidersFile { path: String },

    #[error("{location}: {message}")]
    #[diagnostic(
        code(mtv_config::json_syntax),
        help(
            "the providers file is JSON; `//` and `#` line comments and trailing commas are allowed"
        )
    )]
    JsonSyntax {
        location: String,
        message: String,
        #[source_code]
        src: FileSource,
        #[label("here")]
        span: SourceSpan,
    },

    #[error("{location}: the providers file must be a JSON object of profiles, found {found}")]
    #[diagnostic(
        code(mtv_config::providers_root),
        help(
            "wrap the profiles in one object: {{\"<profile name>\": {{\"type\": \"vsphere\", ...}}, ...}}"
        )
    )]
    ProvidersRootNotObject {
        location: String,
        found: &'static str,
        #[source_code]
        src: FileSource,
        #[label("expected an object")]
        span: SourceSpan,
    },

    #[error("{path}: {} problem{} in the providers file:{}", problems.len(), plural(problems.len()), bullet_list(problems))]
    #[diagnostic(
        code(mtv_config::invalid_providers_file),
        help(
            "fix the fields listed above; unknown fields are only warnings, missing or mistyped ones stop the run"
        )
    )]
    InvalidProvidersFile {
        path: String,
        problems: Vec<Problem>,
        #[source_code]
        src: FileSource,
        #[label(collection)]
        labels: Vec<LabeledSpan>,
    },

    #[error("unknown source provider profile `{name}` in {file}{}; available profiles: {}", crate::suggest::hint_suffix(suggestion), available.join(", "))]
    #[diagnostic(
        code(mtv_config::unknown_profile),
        help(
            "source_provider names a profile key of the providers file (not a provider type); pass one of the available profiles with --source-provider NAME or --tc source_provider:NAME"
        )
    )]
    UnknownProfile {
        name: String,
        file: String,
        available: Vec<String>,
        suggestion: Option<String>,
    },

    #[error(
        "copy-offload section of profile `{profile}` at {location} is not usable:{}",
        bullet_list(problems)
    )]
    #[diagnostic(
        code(mtv_config::copyoffload),
        help(
            "set the fields in the profile's `copyoffload` section; credential-like fields can come from the COPYOFFLOAD_<FIELD> environment variables instead (the environment wins)"
        )
    )]
    CopyOffload {
        profile: String,
        location: String,
        problems: Vec<Problem>,
        #[source_code]
        src: Option<FileSource>,
        #[label(collection)]
        labels: Vec<LabeledSpan>,
    },

    #[error("settings file {path} does not exist")]
    #[diagnostic(
        code(mtv_config::settings_file_not_found),
        help("fix the path, or drop the option to use the defaults")
    )]
    SettingsFileNotFound { path: String },

    #[error("{location}: {message}")]
    #[diagnostic(
        code(mtv_config::settings_syntax),
        help("the settings file is YAML with one `key: value` per line (optionally `version: 1`)")
    )]
    SettingsSyntax {
        location: String,
        message: String,
        #[source_code]
        src: Option<FileSource>,
        #[label("here")]
        span: Option<SourceSpan>,
    },

    #[error("unknown setting `{key}` (from {origin}){hint}")]
    #[diagnostic(code(mtv_config::unknown_setting))]
    UnknownSetting {
        key: String,
        origin: String,
        /// " (did you mean `x`?)" or empty.
        hint: String,
        /// Lists the known settings.
        #[help]
        help: &'static str,
        #[source_code]
        src: Option<FileSource>,
        #[label("unknown key")]
        span: Option<SourceSpan>,
    },

    #[error("invalid value for setting `{key}` (from {origin}): expected {expected}")]
    #[diagnostic(code(mtv_config::invalid_setting), help("{help}"))]
    InvalidSettingValue {
        key: String,
        origin: String,
        expected: &'static str,
        help: &'static str,
        #[source_code]
        src: Option<FileSource>,
        #[label("expected {expected}")]
        span: Option<SourceSpan>,
    },

    #[error("malformed {flag} argument `{argument}`: expected {shape}")]
    #[diagnostic(
        code(mtv_config::malformed_setting_argument),
        help("for example {flag} {example}")
    )]
    MalformedSettingArgument {
        flag: &'static str,
        argument: String,
        shape: &'static str,
        example: &'static str,
    },

    #[error("missing required setting{}: {}", plural(missing.len()), missing.join(", "))]
    #[diagnostic(code(mtv_config::missing_run_settings), help("{hint}"))]
    MissingRunSettings {
        missing: Vec<&'static str>,
        hint: String,
    },
}

#[cfg(test)]
mod tests {
    /// Callers return `Result<_, ConfigError>` everywhere; clippy flags errors of 128+ bytes.
    #[test]
    fn error_stays_small() {
        assert!(std::mem::size_of::<super::ConfigError>() < 128);
    }
}
