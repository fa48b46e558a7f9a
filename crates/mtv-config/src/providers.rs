//! The providers file (`.providers.json`): discovery, tolerant JSON reading, the per-type schema
//! and the built-in lab profiles.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use miette::SourceSpan;
use mtv_api::ProviderType;

use crate::copyoffload::{CopyOffload, CopyOffloadSection};
use crate::env::Env;
use crate::error::{ConfigError, ConfigWarning, Problem, labels_for};
use crate::secret::{REDACTED, Secret};
use crate::source::{
    MAX_NESTING, Member, Node, NodeKind, SourceLocation, SourceText,
    blank_comments_and_trailing_commas, first_too_deep, is_secret_key, mask_json_secrets,
    scan_json,
};
use crate::suggest::{did_you_mean, hint_suffix};

/// Environment variable naming the providers file (ours).
pub const PROVIDERS_FILE_ENV: &str = "MTV_PROVIDERS_FILE";
/// Environment variable naming the providers file (the Python suite's).
pub const LEGACY_PROVIDERS_FILE_ENV: &str = "PROVIDERS_JSON_PATH";
/// File looked for in the working directory when nothing names one.
pub const DEFAULT_PROVIDERS_FILE: &str = ".providers.json";

const BUILTIN_PROVIDERS_JSON: &str = include_str!("../builtin-providers.json");
const BUILTIN_PROVIDERS_NAME: &str = "<built-in>/builtin-providers.json";

/// Where the profiles came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvidersOrigin {
    File(PathBuf),
    /// No providers file anywhere: the embedded lab's profiles.
    Builtin,
}

impl std::fmt::Display for ProvidersOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProvidersOrigin::File(path) => write!(f, "{}", path.display()),
            ProvidersOrigin::Builtin => f.write_str("built-in lab profiles"),
        }
    }
}

/// A profile field other than the five common ones.
#[derive(Debug, Clone, PartialEq)]
pub enum ProfileValue {
    /// A string of a non-secret field.
    Text(String),
    /// The value of a password/token/passphrase/secret field.
    Secret(Secret),
    /// Any other JSON value (booleans, numbers, objects) of a non-secret field.
    Json(serde_json::Value),
}

impl ProfileValue {
    fn redacted_json(&self) -> serde_json::Value {
        match self {
            ProfileValue::Text(s) => serde_json::Value::String(s.clone()),
            ProfileValue::Secret(_) => serde_json::Value::String(REDACTED.to_string()),
            // A non-secret field may still hold an object with a credential inside.
            ProfileValue::Json(v) => crate::secret::redact_json(v),
        }
    }
}

/// One named entry of the providers file.
#[derive(Debug, Clone)]
pub struct ProviderProfile {
    /// The profile's key in the file (what `source_provider` names).
    pub name: String,
    pub provider_type: ProviderType,
    pub version: Option<String>,
    pub fqdn: Option<String>,
    pub api_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Every other key (guest credentials, vddk_init_image, endpoint_type, region_name, …);
    /// secret-looking keys are held as `ProfileValue::Secret`.
    pub fields: BTreeMap<String, ProfileValue>,
    /// The raw `copyoffload` section; see [`ProviderProfile::copyoffload`].
    pub copyoffload: Option<CopyOffloadSection>,
    /// Where the profile's key is in its file.
    pub location: Option<SourceLocation>,
}

impl ProviderProfile {
    /// A non-secret string field from `fields` (e.g. `vddk_init_image`, `region_name`).
    pub fn field_str(&self, key: &str) -> Option<&str> {
        match self.fields.get(key) {
            Some(ProfileValue::Text(s)) => Some(s),
            _ => None,
        }
    }

    /// A secret field from `fields` (e.g. `guest_vm_linux_password`, `luks_passphrase`).
    pub fn field_secret(&self, key: &str) -> Option<&Secret> {
        match self.fields.get(key) {
            Some(ProfileValue::Secret(s)) => Some(s),
            _ => None,
        }
    }

    /// A boolean field from `fields` (e.g. openshift `verify_ssl`).
    pub fn field_bool(&self, key: &str) -> Option<bool> {
        match self.fields.get(key) {
            Some(ProfileValue::Json(serde_json::Value::Bool(b))) => Some(*b),
            _ => None,
        }
    }

    /// The profile in the file's shape, every secret shown as `<redacted>`.
    pub fn redacted_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("type".into(), self.provider_type.as_str().into());
        let common = [
            ("version", &self.version),
            ("fqdn", &self.fqdn),
            ("api_url", &self.api_url),
            ("username", &self.username),
        ];
        for (key, value) in common {
            if let Some(value) = value {
                map.insert(key.into(), value.clone().into());
            }
        }
        if self.password.is_some() {
            map.insert("password".into(), REDACTED.into());
        }
        for (key, value) in &self.fields {
            map.insert(key.clone(), value.redacted_json());
        }
        if let Some(section) = &self.copyoffload {
            map.insert("copyoffload".into(), section.redacted_json());
        }
        serde_json::Value::Object(map)
    }

    /// Resolves the copy-offload section with the `COPYOFFLOAD_<FIELD>` override; `Ok(None)`
    /// when the profile has no section. The error lists every missing or invalid field.
    pub fn copyoffload(&self, env: &dyn Env) -> Result<Option<CopyOffload>, ConfigError> {
        self.copyoffload
            .as_ref()
            .map(|section| section.resolve(&self.name, env))
            .transpose()
    }
}

/// All profiles of one providers file (or the built-in ones).
#[derive(Debug, Clone)]
pub struct ProvidersFile {
    pub origin: ProvidersOrigin,
    pub profiles: BTreeMap<String, ProviderProfile>,
    pub warnings: Vec<ConfigWarning>,
}

static BUILTIN: LazyLock<ProvidersFile> = LazyLock::new(|| {
    let mut file = ProvidersFile::parse(Path::new(BUILTIN_PROVIDERS_NAME), BUILTIN_PROVIDERS_JSON)
        // The embedded file is ours and a unit test parses it; failing here is a build defect.
        .expect("builtin-providers.json is valid");
    file.origin = ProvidersOrigin::Builtin;
    file
});

impl ProvidersFile {
    /// Finds the providers file: `--providers-file`, then `MTV_PROVIDERS_FILE`, then
    /// `PROVIDERS_JSON_PATH`, then `./.providers.json` (relative to `cwd`); when none exists, the
    /// built-in lab profiles. A file named by the flag or a variable must exist.
    pub fn discover(cli: Option<&Path>, env: &dyn Env, cwd: &Path) -> Result<Self, ConfigError> {
        let named = cli
            .map(|p| (p.to_path_buf(), "--providers-file".to_string()))
            .or_else(|| {
                [PROVIDERS_FILE_ENV, LEGACY_PROVIDERS_FILE_ENV]
                    .into_iter()
                    .find_map(|var| env.var(var).map(|v| (PathBuf::from(v), var.to_string())))
            });
        if let Some((path, named_by)) = named {
            let path = cwd.join(path);
            if !path.exists() {
                return Err(ConfigError::ProvidersFileNotFound {
                    path: path.display().to_string(),
                    named_by,
                });
            }
            return Self::load(&path);
        }
        let default = cwd.join(DEFAULT_PROVIDERS_FILE);
        if default.exists() {
            return Self::load(&default);
        }
        Ok(Self::builtin())
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses providers-file text; `path` is used in messages and as the origin.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let blanked = blank_comments_and_trailing_commas(text);
        let source = SourceText::new(name.clone(), mask_json_secrets(&blanked));
        if blanked.trim().is_empty() {
            return Err(ConfigError::EmptyProvidersFile { path: name });
        }
        if let Some(offset) = first_too_deep(&blanked) {
            return Err(ConfigError::JsonSyntax {
                location: source.location(offset).to_string(),
                message: format!(
                    "objects and arrays are nested more than {MAX_NESTING} levels deep here; a providers file needs only a few levels (profile, copyoffload section, storage_secret_extra)"
                ),
                src: source.named_source(),
                span: source.span(offset, 1),
            });
        }
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&blanked) {
            return Err(json_syntax_error(&source, &e));
        }
        let Some(root) = scan_json(&blanked) else {
            return Err(ConfigError::JsonSyntax {
                location: source.location(0).to_string(),
                message: "could not read the file as JSON".to_string(),
                src: source.named_source(),
                span: source.span(0, 0),
            });
        };
        let NodeKind::Object(members) = &root.kind else {
            return Err(ConfigError::ProvidersRootNotObject {
                location: source.location(root.start).to_string(),
                found: root.json_type(),
                src: source.named_source(),
                span: source.span(root.start, root.end - root.start),
            });
        };

        let mut reader = ProfileReader {
            source: &source,
            problems: Vec::new(),
            warnings: Vec::new(),
            clone_refs: Vec::new(),
        };
        let mut profiles = BTreeMap::new();
        for member in last_of_each_key(members, &source, &mut reader.warnings) {
            if member.key == "$schema" {
                continue;
            }
            if let Some(profile) = reader.profile(member) {
                profiles.insert(member.key.clone(), profile);
            }
        }
        reader.check_clone_refs(&profiles);
        if members.iter().all(|m| m.key == "$schema") {
            reader.problems.push(Problem {
                location: source.location(root.start).to_string(),
                message: "the file defines no provider profiles".to_string(),
                span: Some(source.span(root.start, 1)),
            });
        }
        if !reader.problems.is_empty() {
            return Err(ConfigError::InvalidProvidersFile {
                path: name,
                labels: labels_for(&reader.problems),
                problems: reader.problems,
                src: source.named_source(),
            });
        }
        Ok(ProvidersFile {
            origin: ProvidersOrigin::File(path.to_path_buf()),
            profiles,
            warnings: reader.warnings,
        })
    }

    /// The embedded lab's profiles (used when no providers file exists).
    pub fn builtin() -> Self {
        BUILTIN.clone()
    }

    /// The built-in profiles as plain JSON (comments removed, secrets in clear), for a lab that
    /// writes them, pointed at where it serves each source, as a providers file of its own.
    pub fn builtin_json() -> serde_json::Value {
        serde_json::from_str(&blank_comments_and_trailing_commas(BUILTIN_PROVIDERS_JSON))
            // The embedded file is ours and a unit test parses it; failing here is a build defect.
            .expect("builtin-providers.json is JSON")
    }

    /// Profiles a lab wrote from the built-in ones (same names and keys, each pointed at where
    /// that lab serves the source): read like any providers file, yet with the built-in
    /// profiles' defaults (`source_provider` and `storage_class` may be left out).
    pub fn lab_profiles(json: &serde_json::Value) -> Result<Self, ConfigError> {
        let mut file = ProvidersFile::parse(Path::new(BUILTIN_PROVIDERS_NAME), &json.to_string())?;
        file.origin = ProvidersOrigin::Builtin;
        Ok(file)
    }

    /// The profile named `name`; an unknown name lists the available ones.
    pub fn profile(&self, name: &str) -> Result<&ProviderProfile, ConfigError> {
        self.profiles
            .get(name)
            .ok_or_else(|| ConfigError::UnknownProfile {
                name: name.to_string(),
                file: self.origin.to_string(),
                available: self.profiles.keys().cloned().collect(),
                suggestion: self.suggest_profile(name),
            })
    }

    /// A close spelling, or the only profile of the type the user named instead of a key.
    fn suggest_profile(&self, name: &str) -> Option<String> {
        did_you_mean(name, self.profiles.keys().map(String::as_str)).or_else(|| {
            let of_type: Vec<&String> = self
                .profiles
                .iter()
                .filter(|(key, p)| p.provider_type.as_str() == name || key.starts_with(name))
                .map(|(key, _)| key)
                .collect();
            match of_type.as_slice() {
                [only] => Some((*only).clone()),
                _ => None,
            }
        })
    }
}

fn json_syntax_error(source: &SourceText, e: &serde_json::Error) -> ConfigError {
    let offset = source.offset_of(e.line(), e.column());
    let location = source.location(offset);
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    ConfigError::JsonSyntax {
        location: location.to_string(),
        message,
        src: source.named_source(),
        span: source.span(offset, 1),
    }
}

/// serde_json keeps the last of duplicate keys; we do the same and say so.
fn last_of_each_key<'m>(
    members: &'m [Member],
    source: &SourceText,
    warnings: &mut Vec<ConfigWarning>,
) -> Vec<&'m Member> {
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, m) in members.iter().enumerate() {
        last.insert(&m.key, i);
    }
    members
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            let keep = last.get(m.key.as_str()) == Some(i);
            if !keep {
                warnings.push(ConfigWarning::new(
                    format!(
                        "`{}` is defined more than once; the last definition wins",
                        m.key
                    ),
                    Some(source.location(m.key_start).to_string()),
                ));
            }
            keep
        })
        .map(|(_, m)| m)
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Rule {
    Str,
    OneOf(&'static [&'static str]),
    Bool,
    ProfileRef,
    CopyOffload,
    /// One or more PEM certificates.
    Pem,
    /// A SHA-256 certificate fingerprint: 64 hex digits, `:` optional.
    Fingerprint,
    /// A host name or address without a scheme (`fqdn`, where a client builds URLs from it).
    BareHost,
    /// A URL ending in the given API path, https when it has a scheme (`api_url` of an oVirt engine).
    ApiPath(&'static str),
}

struct FieldRule {
    key: &'static str,
    required: bool,
    rule: Rule,
}

const fn req(key: &'static str) -> FieldRule {
    FieldRule {
        key,
        required: true,
        rule: Rule::Str,
    }
}

const fn opt(key: &'static str, rule: Rule) -> FieldRule {
    FieldRule {
        key,
        required: false,
        rule,
    }
}

const COPYOFFLOAD_RULE: FieldRule = opt("copyoffload", Rule::CopyOffload);

/// `cacert`: the PEM certificates a provider's adapter trusts.
const CACERT_RULE: FieldRule = opt("cacert", Rule::Pem);

const GUEST_CREDENTIALS: [FieldRule; 4] = [
    opt("guest_vm_linux_user", Rule::Str),
    opt("guest_vm_linux_password", Rule::Str),
    opt("guest_vm_win_user", Rule::Str),
    opt("guest_vm_win_password", Rule::Str),
];

const COMMON_REQUIRED: [FieldRule; 5] = [
    req("version"),
    req("fqdn"),
    req("api_url"),
    req("username"),
    req("password"),
];

static VSPHERE_RULES: LazyLock<Vec<FieldRule>> = LazyLock::new(|| {
    COMMON_REQUIRED
        .into_iter()
        .chain(GUEST_CREDENTIALS)
        .chain([
            opt("endpoint_type", Rule::OneOf(&["vcenter", "esxi"])),
            opt("vddk_init_image", Rule::Str),
            opt("clone_provider", Rule::ProfileRef),
            opt("luks_passphrase", Rule::Str),
            COPYOFFLOAD_RULE,
            // TLS trust of the vSphere adapter (and the Provider Secret's `cacert`).
            CACERT_RULE,
            opt("certificate_fingerprint", Rule::Fingerprint),
        ])
        .collect()
});

static OVIRT_RULES: LazyLock<Vec<FieldRule>> = LazyLock::new(|| {
    [
        req("version"),
        // The engine's CA is always read from https://<fqdn>/ovirt-engine/services/pki-resource.
        FieldRule {
            key: "fqdn",
            required: true,
            rule: Rule::BareHost,
        },
        FieldRule {
            key: "api_url",
            required: true,
            rule: Rule::ApiPath("/ovirt-engine/api"),
        },
        req("username"),
        req("password"),
    ]
    .into_iter()
    .chain(GUEST_CREDENTIALS)
    // The CA to verify the engine with instead of the one it serves at pki-resource.
    .chain([CACERT_RULE])
    .collect()
});

static OPENSTACK_RULES: LazyLock<Vec<FieldRule>> = LazyLock::new(|| {
    COMMON_REQUIRED
        .into_iter()
        .chain([
            req("user_domain_name"),
            req("region_name"),
            req("project_name"),
            req("user_domain_id"),
            req("project_domain_id"),
            // The project's domain by name, where a cloud's users know it so (Keystone takes either).
            opt("project_domain_name", Rule::Str),
            // TLS trust of the OpenStack adapter (and the Provider Secret's `cacert`).
            CACERT_RULE,
        ])
        .chain(GUEST_CREDENTIALS)
        .collect()
});

static OPENSHIFT_RULES: LazyLock<Vec<FieldRule>> = LazyLock::new(|| {
    [
        req("version"),
        req("host"),
        req("api_url"),
        req("username"),
        req("password"),
        req("storage_class"),
        opt("verify_ssl", Rule::Bool),
        opt("ca_bundle", Rule::Str),
    ]
    .into_iter()
    .chain(GUEST_CREDENTIALS)
    .collect()
});

static OVA_RULES: LazyLock<Vec<FieldRule>> = LazyLock::new(|| {
    COMMON_REQUIRED
        .into_iter()
        .chain(GUEST_CREDENTIALS)
        .collect()
});

fn rules_for(provider_type: ProviderType) -> &'static [FieldRule] {
    match provider_type {
        ProviderType::Vsphere => &VSPHERE_RULES,
        ProviderType::Ovirt => &OVIRT_RULES,
        ProviderType::Openstack => &OPENSTACK_RULES,
        ProviderType::Openshift => &OPENSHIFT_RULES,
        ProviderType::Ova => &OVA_RULES,
    }
}

/// Required and optional field names of a provider type, as the schema check uses them.
pub fn schema_fields(provider_type: ProviderType) -> (Vec<&'static str>, Vec<&'static str>) {
    let rules = rules_for(provider_type);
    (
        rules.iter().filter(|r| r.required).map(|r| r.key).collect(),
        rules
            .iter()
            .filter(|r| !r.required)
            .map(|r| r.key)
            .collect(),
    )
}

/// What is wrong with a `cacert` (PEM) or `certificate_fingerprint` value, if anything.
fn tls_trust_problem(rule: Rule, text: &str) -> Option<&'static str> {
    match rule {
        Rule::Pem if !text.contains("-----BEGIN CERTIFICATE-----") => Some(
            "must be PEM: one or more `-----BEGIN CERTIFICATE-----` blocks (newlines as \\n in JSON)",
        ),
        Rule::Fingerprint => {
            let hex: Vec<char> = text
                .chars()
                .filter(|c| !matches!(c, ':' | ' ' | '-'))
                .collect();
            (hex.len() != 64 || !hex.iter().all(char::is_ascii_hexdigit)).then_some(
                "must be a SHA-256 fingerprint: 64 hex digits, optionally in pairs joined by `:` \
                 (as `openssl x509 -noout -fingerprint -sha256` prints it)",
            )
        }
        _ => None,
    }
}

/// What is wrong with a host or an API URL value, if anything.
fn endpoint_problem(rule: Rule, text: &str) -> Option<String> {
    match rule {
        Rule::BareHost if text.contains("://") || text.trim().is_empty() => Some(format!(
            "must be the host name or address alone (URLs are built from it), like \
             engine.example.com; found `{text}`"
        )),
        Rule::ApiPath(path) => {
            let scheme = text.split_once("://").map(|(scheme, _)| scheme);
            let wrong_scheme = scheme.is_some_and(|s| !s.eq_ignore_ascii_case("https"));
            let wrong_path = !text.trim_end_matches('/').ends_with(path);
            (wrong_scheme || wrong_path)
                .then(|| format!("must be the API URL, https://<host>{path}; found `{text}`"))
        }
        _ => None,
    }
}

/// Types the Python suite knows but this one does not run.
const UNSUPPORTED_TYPES: &[&str] = &["hyperv", "ec2", "nutanix"];

struct CloneRef {
    profile: String,
    target: String,
    location: SourceLocation,
    span: SourceSpan,
}

struct ProfileReader<'s> {
    source: &'s Arc<SourceText>,
    problems: Vec<Problem>,
    warnings: Vec<ConfigWarning>,
    clone_refs: Vec<CloneRef>,
}

impl ProfileReader<'_> {
    fn problem_at(&mut self, start: usize, end: usize, message: String) {
        self.problems.push(Problem {
            location: self.source.location(start).to_string(),
            message,
            span: Some(self.source.span(start, end.saturating_sub(start))),
        });
    }

    fn profile(&mut self, member: &Member) -> Option<ProviderProfile> {
        let name = member.key.as_str();
        let NodeKind::Object(fields) = &member.value.kind else {
            self.problem_at(
                member.value.start,
                member.value.end,
                format!(
                    "profile `{name}` must be an object, found {}",
                    member.value.json_type()
                ),
            );
            return None;
        };
        let provider_type = self.provider_type(member, fields)?;
        let rules = rules_for(provider_type);
        let mut profile = ProviderProfile {
            name: name.to_string(),
            provider_type,
            version: None,
            fqdn: None,
            api_url: None,
            username: None,
            password: None,
            fields: BTreeMap::new(),
            copyoffload: None,
            location: Some(self.source.location(member.key_start)),
        };
        for field in fields {
            if field.key == "type" {
                continue;
            }
            // copyoffload is known to every type so a misplaced section is an error, not noise.
            let rule = rules
                .iter()
                .find(|r| r.key == field.key)
                .or((field.key == "copyoffload").then_some(&COPYOFFLOAD_RULE));
            match rule {
                Some(rule) => self.known_field(&mut profile, provider_type, field, rule.rule),
                None => {
                    self.unknown_field(name, provider_type, field, rules);
                    self.store(&mut profile, field, &field.value);
                }
            }
        }
        let given = |key: &str| fields.iter().find(|f| f.key == key);
        if let (Some(_), Some(fingerprint)) = (given("cacert"), given("certificate_fingerprint")) {
            self.problem_at(
                fingerprint.key_start,
                fingerprint.key_end,
                format!(
                    "profile `{name}` gives both `cacert` and `certificate_fingerprint`; give one: \
                     the CA to trust, or the fingerprint of the one certificate to trust"
                ),
            );
        }
        let missing: Vec<&str> = rules
            .iter()
            .filter(|r| r.required && !fields.iter().any(|f| f.key == r.key))
            .map(|r| r.key)
            .collect();
        for key in missing {
            self.problem_at(
                member.key_start,
                member.key_end,
                format!(
                    "profile `{name}` (type {provider_type}) is missing required field `{key}`"
                ),
            );
        }
        Some(profile)
    }

    fn provider_type(&mut self, member: &Member, fields: &[Member]) -> Option<ProviderType> {
        let name = &member.key;
        let expected = ProviderType::ALL.map(|t| t.as_str()).join(", ");
        let Some(type_field) = fields.iter().rev().find(|f| f.key == "type") else {
            self.problem_at(
                member.key_start,
                member.key_end,
                format!("profile `{name}` has no `type` (one of: {expected})"),
            );
            return None;
        };
        let value = &type_field.value;
        let Some(text) = value.as_str() else {
            self.problem_at(
                value.start,
                value.end,
                format!(
                    "`type` of profile `{name}` must be a string, found {}",
                    value.json_type()
                ),
            );
            return None;
        };
        match text.parse::<ProviderType>() {
            Ok(t) => Some(t),
            Err(_) if UNSUPPORTED_TYPES.contains(&text) => {
                self.problem_at(
                    value.start,
                    value.end,
                    format!(
                        "profile `{name}` has type `{text}`, which this suite does not support (supported: {expected}); remove the profile or keep it in another file"
                    ),
                );
                None
            }
            Err(_) => {
                let suggestion = if text.eq_ignore_ascii_case("rhv") {
                    Some("ovirt".to_string())
                } else {
                    did_you_mean(text, ProviderType::ALL.iter().map(|t| t.as_str()))
                };
                self.problem_at(
                    value.start,
                    value.end,
                    format!(
                        "profile `{name}` has unknown type `{text}`{}; expected one of: {expected}",
                        hint_suffix(&suggestion)
                    ),
                );
                None
            }
        }
    }

    fn known_field(
        &mut self,
        profile: &mut ProviderProfile,
        provider_type: ProviderType,
        field: &Member,
        rule: Rule,
    ) {
        let name = profile.name.clone();
        let key = field.key.as_str();
        let value = &field.value;
        let wrong_type = |expected: &str| {
            format!(
                "`{key}` of profile `{name}` must be {expected}, found {}",
                value.json_type()
            )
        };
        match rule {
            Rule::Pem | Rule::Fingerprint | Rule::BareHost | Rule::ApiPath(_) => {
                let Some(text) = value.as_str() else {
                    let message = wrong_type("a string");
                    self.problem_at(value.start, value.end, message);
                    return;
                };
                let problem = tls_trust_problem(rule, text)
                    .map(str::to_string)
                    .or_else(|| endpoint_problem(rule, text));
                if let Some(problem) = problem {
                    self.problem_at(
                        value.start,
                        value.end,
                        format!("`{key}` of profile `{name}` {problem}"),
                    );
                    return;
                }
                self.store(profile, field, value);
            }
            Rule::Str | Rule::OneOf(_) | Rule::ProfileRef => {
                let Some(text) = value.as_str() else {
                    let message = wrong_type("a string");
                    self.problem_at(value.start, value.end, message);
                    return;
                };
                if let Rule::OneOf(allowed) = rule
                    && !allowed.contains(&text)
                {
                    self.problem_at(
                        value.start,
                        value.end,
                        format!(
                            "`{key}` of profile `{name}` must be one of: {}; found `{text}`",
                            allowed.join(", ")
                        ),
                    );
                    return;
                }
                if rule == Rule::ProfileRef {
                    self.clone_refs.push(CloneRef {
                        profile: name.clone(),
                        target: text.to_string(),
                        location: self.source.location(value.start),
                        span: self.source.span(value.start, value.end - value.start),
                    });
                }
                self.store(profile, field, value);
            }
            Rule::Bool => match &value.kind {
                NodeKind::Scalar(serde_json::Value::Bool(_)) => self.store(profile, field, value),
                NodeKind::Scalar(serde_json::Value::String(s))
                    if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
                {
                    profile.fields.insert(
                        key.to_string(),
                        ProfileValue::Json(s.eq_ignore_ascii_case("true").into()),
                    );
                }
                _ => {
                    let message = wrong_type("a boolean");
                    self.problem_at(value.start, value.end, message);
                }
            },
            Rule::CopyOffload => {
                if !provider_type.supports_copy_offload() {
                    self.problem_at(
                        field.key_start,
                        field.key_end,
                        format!(
                            "profile `{name}` has a `copyoffload` section, but copy-offload is vSphere-only (type is {provider_type})"
                        ),
                    );
                    return;
                }
                let NodeKind::Object(section) = &value.kind else {
                    let message = wrong_type("an object");
                    self.problem_at(value.start, value.end, message);
                    return;
                };
                profile.copyoffload = Some(CopyOffloadSection::from_node(
                    &name,
                    section,
                    self.source
                        .span(field.key_start, field.key_end - field.key_start),
                    self.source.location(field.key_start),
                    self.source,
                    &mut self.warnings,
                ));
            }
        }
    }

    fn unknown_field(
        &mut self,
        name: &str,
        provider_type: ProviderType,
        field: &Member,
        rules: &[FieldRule],
    ) {
        let suggestion = did_you_mean(&field.key, rules.iter().map(|r| r.key));
        let mut message = format!(
            "unknown field `{}` in profile `{name}` (type {provider_type}) is ignored{}",
            field.key,
            hint_suffix(&suggestion)
        );
        if field.key == "copyoffload" {
            message.push_str("; copy-offload is vSphere-only");
        }
        self.warnings.push(ConfigWarning::new(
            message,
            Some(self.source.location(field.key_start).to_string()),
        ));
    }

    /// Keeps a field's value on the profile: the five common keys in their own slots, the rest
    /// in `fields` (secrets wrapped).
    fn store(&mut self, profile: &mut ProviderProfile, field: &Member, value: &Node) {
        let key = field.key.as_str();
        let text = value.as_str().map(str::to_string);
        match (key, text) {
            ("version", Some(t)) => profile.version = Some(t),
            ("fqdn", Some(t)) => profile.fqdn = Some(t),
            ("api_url", Some(t)) => profile.api_url = Some(t),
            ("username", Some(t)) => profile.username = Some(t),
            ("password", Some(t)) => profile.password = Some(Secret::new(t)),
            (key, Some(t)) if is_secret_key(key) => {
                profile
                    .fields
                    .insert(key.to_string(), ProfileValue::Secret(Secret::new(t)));
            }
            (key, Some(t)) => {
                profile
                    .fields
                    .insert(key.to_string(), ProfileValue::Text(t));
            }
            (key, None) if is_secret_key(key) => {
                profile.fields.insert(
                    key.to_string(),
                    ProfileValue::Secret(Secret::new(value.to_json().to_string())),
                );
            }
            (key, None) => {
                profile
                    .fields
                    .insert(key.to_string(), ProfileValue::Json(value.to_json()));
            }
        }
    }

    fn check_clone_refs(&mut self, profiles: &BTreeMap<String, ProviderProfile>) {
        for r in std::mem::take(&mut self.clone_refs) {
            let problem = match profiles.get(&r.target) {
                _ if r.target == r.profile => Some(format!(
                    "`clone_provider` of profile `{}` names the profile itself",
                    r.profile
                )),
                Some(target) if target.provider_type != ProviderType::Vsphere => Some(format!(
                    "`clone_provider` of profile `{}` names `{}`, which is type {} (a vsphere profile is needed)",
                    r.profile, r.target, target.provider_type
                )),
                Some(_) => None,
                None => {
                    let suggestion = did_you_mean(&r.target, profiles.keys().map(String::as_str));
                    Some(format!(
                        "`clone_provider` of profile `{}` names unknown profile `{}`{}; available profiles: {}",
                        r.profile,
                        r.target,
                        hint_suffix(&suggestion),
                        profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                }
            };
            if let Some(message) = problem {
                self.problems.push(Problem {
                    location: r.location.to_string(),
                    message,
                    span: Some(r.span),
                });
            }
        }
    }
}
