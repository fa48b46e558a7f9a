//! The vSphere `copyoffload` section: kept raw when the providers file is read, and resolved
//! (with the `COPYOFFLOAD_<FIELD>` environment override) only when a copy-offload run needs it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use miette::SourceSpan;

use crate::env::Env;
use crate::error::{ConfigError, ConfigWarning, Problem, labels_for};
use crate::secret::{REDACTED, Secret};
use crate::source::{Node, NodeKind, SourceLocation, SourceText, is_secret_key};
use crate::suggest::{did_you_mean, hint_suffix};

/// Storage array families the vSphere XCOPY populator can drive; `as_str` is the exact spelling
/// the providers file and Forklift use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StorageVendor {
    Ontap,
    Vantara,
    Primera3par,
    PureFlashArray,
    Powerflex,
    Powermax,
    Powerstore,
    Infinibox,
    Flashsystem,
}

impl StorageVendor {
    pub const ALL: [StorageVendor; 9] = [
        StorageVendor::Ontap,
        StorageVendor::Vantara,
        StorageVendor::Primera3par,
        StorageVendor::PureFlashArray,
        StorageVendor::Powerflex,
        StorageVendor::Powermax,
        StorageVendor::Powerstore,
        StorageVendor::Infinibox,
        StorageVendor::Flashsystem,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StorageVendor::Ontap => "ontap",
            StorageVendor::Vantara => "vantara",
            StorageVendor::Primera3par => "primera3par",
            StorageVendor::PureFlashArray => "pureFlashArray",
            StorageVendor::Powerflex => "powerflex",
            StorageVendor::Powermax => "powermax",
            StorageVendor::Powerstore => "powerstore",
            StorageVendor::Infinibox => "infinibox",
            StorageVendor::Flashsystem => "flashsystem",
        }
    }

    /// The vendor's required extra fields: (JSON field in `copyoffload`, key in the storage
    /// Secret). Empty for vendors that need only the base credentials.
    pub fn secret_fields(self) -> &'static [(&'static str, &'static str)] {
        match self {
            StorageVendor::Ontap => &[("ontap_svm", "ONTAP_SVM")],
            StorageVendor::Vantara => &[
                ("vantara_storage_id", "STORAGE_ID"),
                ("vantara_storage_port", "STORAGE_PORT"),
                ("vantara_hostgroup_id_list", "HOSTGROUP_ID_LIST"),
            ],
            StorageVendor::PureFlashArray => &[("pure_cluster_prefix", "PURE_CLUSTER_PREFIX")],
            StorageVendor::Powerflex => &[("powerflex_system_id", "POWERFLEX_SYSTEM_ID")],
            StorageVendor::Powermax => &[("powermax_symmetrix_id", "POWERMAX_SYMMETRIX_ID")],
            StorageVendor::Primera3par
            | StorageVendor::Powerstore
            | StorageVendor::Infinibox
            | StorageVendor::Flashsystem => &[],
        }
    }
}

impl fmt::Display for StorageVendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StorageVendor {
    type Err = String;

    /// Exact spelling only, as Forklift expects; the error says what was meant.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StorageVendor::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                let suggestion = did_you_mean(s, StorageVendor::ALL.iter().map(|v| v.as_str()));
                format!(
                    "unknown storage_vendor_product `{s}`{}; expected one of: {}",
                    hint_suffix(&suggestion),
                    StorageVendor::ALL.map(|v| v.as_str()).join(", ")
                )
            })
    }
}

/// How the populator reaches the ESXi host to run vmkfstools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EsxiCloneMethod {
    /// The Forklift default: a VIB installed on the host; nothing for the suite to patch.
    #[default]
    Vib,
    /// The suite installs a restricted SSH key on the ESXi host.
    Ssh,
}

impl EsxiCloneMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            EsxiCloneMethod::Vib => "vib",
            EsxiCloneMethod::Ssh => "ssh",
        }
    }
}

impl fmt::Display for EsxiCloneMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every field the section understands; anything else is reported as unknown.
const BASE_FIELDS: &[&str] = &[
    "storage_vendor_product",
    "datastore_id",
    "secondary_datastore_id",
    "non_xcopy_datastore_id",
    "storage_hostname",
    "storage_username",
    "storage_password",
    "storage_skip_ssl_verification",
    "storage_secret_extra",
    "esxi_clone_method",
    "esxi_host",
    "esxi_user",
    "esxi_password",
    "rdm_lun_uuid",
    "default_vm_name",
    "resource_pool",
    "dedicated_migration_hosts",
];

pub(crate) fn known_fields() -> impl Iterator<Item = &'static str> {
    BASE_FIELDS.iter().copied().chain(
        StorageVendor::ALL
            .into_iter()
            .flat_map(|v| v.secret_fields().iter().map(|(field, _)| *field)),
    )
}

/// The environment variable that overrides a credential-like field.
pub fn env_var_for(field: &str) -> String {
    format!("COPYOFFLOAD_{}", field.to_ascii_uppercase())
}

/// The `copyoffload` section as written in the providers file, not yet validated.
#[derive(Clone)]
pub struct CopyOffloadSection {
    /// Where the `copyoffload` key is (None for sections built in code).
    pub location: Option<SourceLocation>,
    entries: BTreeMap<String, SectionEntry>,
    source: Option<Arc<SourceText>>,
    span: Option<SourceSpan>,
}

#[derive(Clone)]
struct SectionEntry {
    value: SectionValue,
    location: Option<SourceLocation>,
    span: Option<SourceSpan>,
}

#[derive(Clone)]
enum SectionValue {
    Text(String),
    /// A credential; `is_string` false means the file had another JSON type there.
    Secret {
        value: Secret,
        is_string: bool,
    },
    Json(serde_json::Value),
    /// `storage_secret_extra`: values may be credentials, so they are held as secrets, or the
    /// reason the object is unusable.
    Extra(Result<BTreeMap<String, Secret>, String>),
}

impl SectionValue {
    fn json_type(&self) -> &'static str {
        match self {
            SectionValue::Text(_) => "a string",
            SectionValue::Secret {
                is_string: true, ..
            } => "a string",
            SectionValue::Secret { .. } => "a non-string value",
            SectionValue::Json(v) => json_type(v),
            SectionValue::Extra(_) => "an object",
        }
    }
}

fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

impl fmt::Debug for CopyOffloadSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyOffloadSection")
            .field("location", &self.location.as_ref().map(ToString::to_string))
            .field("fields", &self.redacted_json())
            .finish()
    }
}

/// Normalises one `storage_secret_extra` object: non-empty string keys, scalar values, booleans
/// as `true`/`false`.
fn secret_extra_from_json(value: &serde_json::Value) -> Result<BTreeMap<String, Secret>, String> {
    let serde_json::Value::Object(map) = value else {
        return Err(format!("must be a JSON object, found {}", json_type(value)));
    };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        if key.is_empty() {
            return Err("keys must be non-empty strings".to_string());
        }
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(format!(
                    "value of `{key}` must be a string, number or boolean, found {}",
                    json_type(other)
                ));
            }
        };
        out.insert(key.clone(), Secret::new(text));
    }
    Ok(out)
}

impl CopyOffloadSection {
    /// Builds the raw section from the scanned JSON object, warning about unknown fields.
    pub(crate) fn from_node(
        profile: &str,
        object: &[crate::source::Member],
        key_span: SourceSpan,
        location: SourceLocation,
        source: &Arc<SourceText>,
        warnings: &mut Vec<ConfigWarning>,
    ) -> Self {
        let mut entries = BTreeMap::new();
        for member in object {
            let member_location = source.location(member.key_start);
            if !known_fields().any(|k| k == member.key) {
                let suggestion = did_you_mean(&member.key, known_fields());
                warnings.push(ConfigWarning::new(
                    format!(
                        "unknown field `{}` in the copyoffload section of profile `{profile}` is ignored{}",
                        member.key,
                        hint_suffix(&suggestion)
                    ),
                    Some(member_location.to_string()),
                ));
            }
            let value = section_value(&member.key, &member.value);
            entries.insert(
                member.key.clone(),
                SectionEntry {
                    value,
                    location: Some(member_location),
                    span: Some(source.span(member.key_start, member.value.end - member.key_start)),
                },
            );
        }
        CopyOffloadSection {
            location: Some(location),
            entries,
            source: Some(source.clone()),
            span: Some(key_span),
        }
    }

    /// Builds a section from plain JSON (no file locations), e.g. in code or tests.
    pub fn from_json(value: &serde_json::Map<String, serde_json::Value>) -> Self {
        let entries = value
            .iter()
            .map(|(key, value)| {
                let node = Node {
                    start: 0,
                    end: 0,
                    kind: NodeKind::Scalar(value.clone()),
                };
                (
                    key.clone(),
                    SectionEntry {
                        value: section_value(key, &node),
                        location: None,
                        span: None,
                    },
                )
            })
            .collect();
        CopyOffloadSection {
            location: None,
            entries,
            source: None,
            span: None,
        }
    }

    /// Field names present in the section.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The section as JSON with every credential shown as `<redacted>`.
    pub fn redacted_json(&self) -> serde_json::Value {
        let map = self
            .entries
            .iter()
            .map(|(key, entry)| {
                let value = match &entry.value {
                    SectionValue::Text(s) => serde_json::Value::String(s.clone()),
                    SectionValue::Secret { .. } => serde_json::Value::String(REDACTED.into()),
                    SectionValue::Json(v) => crate::secret::redact_json(v),
                    SectionValue::Extra(Ok(map)) => serde_json::Value::Object(
                        map.keys()
                            .map(|k| (k.clone(), serde_json::Value::String(REDACTED.into())))
                            .collect(),
                    ),
                    SectionValue::Extra(Err(_)) => serde_json::Value::String(REDACTED.into()),
                };
                (key.clone(), value)
            })
            .collect();
        serde_json::Value::Object(map)
    }

    /// Resolves the section with the environment override and checks every rule, reporting all
    /// problems at once.
    pub fn resolve(&self, profile: &str, env: &dyn Env) -> Result<CopyOffload, ConfigError> {
        let mut check = Checker {
            section: self,
            env,
            problems: Vec::new(),
        };
        let resolved = check.run();
        match resolved {
            Some(copy_offload) if check.problems.is_empty() => Ok(copy_offload),
            _ => Err(ConfigError::CopyOffload {
                profile: profile.to_string(),
                location: self.location_text(),
                labels: labels_for(&check.problems),
                problems: check.problems,
                src: self.source.as_ref().map(|s| s.named_source()),
            }),
        }
    }

    fn location_text(&self) -> String {
        self.location
            .as_ref()
            .map_or_else(|| "<built in code>".to_string(), ToString::to_string)
    }
}

fn section_value(key: &str, node: &Node) -> SectionValue {
    if key == "storage_secret_extra" {
        return SectionValue::Extra(secret_extra_from_json(&node.to_json()));
    }
    match (&node.kind, is_secret_key(key)) {
        (NodeKind::Scalar(serde_json::Value::String(s)), true) => SectionValue::Secret {
            value: Secret::new(s.clone()),
            is_string: true,
        },
        (_, true) => SectionValue::Secret {
            value: Secret::new(node.to_json().to_string()),
            is_string: false,
        },
        (NodeKind::Scalar(serde_json::Value::String(s)), false) => SectionValue::Text(s.clone()),
        (_, false) => SectionValue::Json(node.to_json()),
    }
}

struct Checker<'a> {
    section: &'a CopyOffloadSection,
    env: &'a dyn Env,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn at_section(&mut self, message: String) {
        self.problems.push(Problem {
            location: self.section.location_text(),
            message,
            span: self.section.span,
        });
    }

    fn at_entry(&mut self, key: &str, message: String) {
        let entry = self.section.entries.get(key);
        let location = entry
            .and_then(|e| e.location.as_ref())
            .map_or_else(|| self.section.location_text(), ToString::to_string);
        self.problems.push(Problem {
            location,
            message,
            span: entry.and_then(|e| e.span).or(self.section.span),
        });
    }

    /// A string read from the file only; wrong JSON types are reported.
    fn file_string(&mut self, key: &str) -> Option<String> {
        let entry = self.section.entries.get(key)?;
        match &entry.value {
            SectionValue::Text(s) => Some(s.clone()),
            other => {
                let found = other.json_type();
                self.at_entry(key, format!("`{key}` must be a string, found {found}"));
                None
            }
        }
    }

    fn required_file_string(&mut self, key: &str) -> Option<String> {
        if !self.section.entries.contains_key(key) {
            self.at_section(format!(
                "missing `{key}` (read from the providers file only; there is no {} override)",
                env_var_for(key)
            ));
            return None;
        }
        let value = self.file_string(key)?;
        if value.is_empty() {
            self.at_entry(key, format!("`{key}` must not be empty"));
            return None;
        }
        Some(value)
    }

    /// A credential-like value: `COPYOFFLOAD_<FIELD>` wins, an empty variable falls through to
    /// the file. Numbers in the file are accepted as their text (ports, ids).
    fn credential(&mut self, key: &str) -> Option<Secret> {
        if let Some(value) = self.env.var(&env_var_for(key)) {
            return Some(Secret::new(value));
        }
        let entry = self.section.entries.get(key)?;
        match &entry.value {
            SectionValue::Text(s) if !s.is_empty() => Some(Secret::new(s.clone())),
            SectionValue::Secret {
                value,
                is_string: true,
            } if !value.is_empty() => Some(value.clone()),
            SectionValue::Json(serde_json::Value::Number(n)) => Some(Secret::new(n.to_string())),
            SectionValue::Text(_)
            | SectionValue::Secret {
                is_string: true, ..
            } => None,
            other => {
                let found = other.json_type();
                self.at_entry(
                    key,
                    format!(
                        "`{key}` must be a string, found {found} (or set {})",
                        env_var_for(key)
                    ),
                );
                None
            }
        }
    }

    fn required_credential(&mut self, key: &str, why: &str) -> Option<Secret> {
        let before = self.problems.len();
        let value = self.credential(key);
        if value.is_none() && self.problems.len() == before {
            self.at_section(format!(
                "missing `{key}`{why} (set it in the copyoffload section or export {})",
                env_var_for(key)
            ));
        }
        value
    }

    fn run(&mut self) -> Option<CopyOffload> {
        let vendor_text = self.required_file_string("storage_vendor_product");
        let vendor = vendor_text.and_then(|text| match text.parse::<StorageVendor>() {
            Ok(v) => Some(v),
            Err(message) => {
                self.at_entry("storage_vendor_product", message);
                None
            }
        });
        let datastore_id = self.required_file_string("datastore_id");
        let secondary_datastore_id = self.file_string("secondary_datastore_id");
        let non_xcopy_datastore_id = self.file_string("non_xcopy_datastore_id");

        let storage_hostname = self.required_credential("storage_hostname", "");
        let storage_username = self.required_credential("storage_username", "");
        let storage_password = self.required_credential("storage_password", "");

        let mut vendor_fields = BTreeMap::new();
        if let Some(vendor) = vendor {
            for (field, _) in vendor.secret_fields() {
                let why = format!(", required for storage_vendor_product `{vendor}`");
                if let Some(value) = self.required_credential(field, &why) {
                    vendor_fields.insert((*field).to_string(), value.expose().to_string());
                }
            }
        }

        let storage_skip_ssl_verification = self.skip_ssl_verification();
        let storage_secret_extra = self.secret_extra();

        let esxi_clone_method = match self.file_string("esxi_clone_method").as_deref() {
            None => EsxiCloneMethod::Vib,
            Some("vib") => EsxiCloneMethod::Vib,
            Some("ssh") => EsxiCloneMethod::Ssh,
            Some(other) => {
                self.at_entry(
                    "esxi_clone_method",
                    format!("`esxi_clone_method` must be `vib` or `ssh`, found `{other}`"),
                );
                EsxiCloneMethod::Vib
            }
        };
        let (esxi_host, esxi_user, esxi_password) = if esxi_clone_method == EsxiCloneMethod::Ssh {
            let why = ", required when esxi_clone_method is `ssh`";
            (
                self.required_credential("esxi_host", why),
                self.required_credential("esxi_user", why),
                self.required_credential("esxi_password", why),
            )
        } else {
            (
                self.credential("esxi_host"),
                self.credential("esxi_user"),
                self.credential("esxi_password"),
            )
        };

        let rdm_lun_uuid = self.file_string("rdm_lun_uuid");
        if let Some(uuid) = &rdm_lun_uuid
            && !uuid.starts_with("naa.")
        {
            self.at_entry(
                "rdm_lun_uuid",
                format!(
                    "`rdm_lun_uuid` must be an NAA LUN id starting with `naa.`, found `{uuid}`"
                ),
            );
        }
        let default_vm_name = self.file_string("default_vm_name");
        let resource_pool = self.file_string("resource_pool");
        let dedicated_migration_hosts = self.dedicated_hosts();

        Some(CopyOffload {
            storage_vendor_product: vendor?,
            datastore_id: datastore_id?,
            secondary_datastore_id,
            non_xcopy_datastore_id,
            storage_hostname: storage_hostname?.expose().to_string(),
            storage_username: storage_username?.expose().to_string(),
            storage_password: storage_password?,
            storage_skip_ssl_verification,
            vendor_fields,
            storage_secret_extra,
            esxi_clone_method,
            esxi_host: esxi_host.map(|s| s.expose().to_string()),
            esxi_user: esxi_user.map(|s| s.expose().to_string()),
            esxi_password,
            rdm_lun_uuid,
            default_vm_name,
            resource_pool,
            dedicated_migration_hosts,
        })
    }

    fn skip_ssl_verification(&mut self) -> bool {
        const KEY: &str = "storage_skip_ssl_verification";
        let text = if let Some(value) = self.env.var(&env_var_for(KEY)) {
            value
        } else {
            match self.section.entries.get(KEY).map(|e| &e.value) {
                None => return false,
                Some(SectionValue::Json(serde_json::Value::Bool(b))) => return *b,
                Some(SectionValue::Text(s)) => s.clone(),
                Some(other) => {
                    let found = other.json_type();
                    self.at_entry(KEY, format!("`{KEY}` must be a boolean, found {found}"));
                    return false;
                }
            }
        };
        match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" | "" => false,
            _ => {
                self.at_entry(
                    KEY,
                    format!(
                        "`{KEY}` must be true/1/yes or false/0/no (from the file or {})",
                        env_var_for(KEY)
                    ),
                );
                false
            }
        }
    }

    fn secret_extra(&mut self) -> BTreeMap<String, String> {
        const KEY: &str = "storage_secret_extra";
        let mut merged = BTreeMap::new();
        match self.section.entries.get(KEY).map(|e| &e.value) {
            Some(SectionValue::Extra(Ok(map))) => {
                merged.extend(map.iter().map(|(k, v)| (k.clone(), v.expose().to_string())))
            }
            Some(SectionValue::Extra(Err(reason))) => {
                let message = format!("`{KEY}` {reason}");
                self.at_entry(KEY, message);
            }
            _ => {}
        }
        let var = env_var_for(KEY);
        if let Some(text) = self.env.var(&var) {
            // Only the parser's position goes into the message: the text may hold credentials.
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(value) => match secret_extra_from_json(&value) {
                    Ok(map) => merged.extend(map.into_iter().map(|(k, v)| (k, v.expose().to_string()))),
                    Err(reason) => self.problems.push(Problem {
                        location: format!("environment variable {var}"),
                        message: format!("{var} {reason}"),
                        span: None,
                    }),
                },
                Err(e) => self.problems.push(Problem {
                    location: format!("environment variable {var}"),
                    message: format!(
                        "{var} is not valid JSON (line {} column {}); it must be a JSON object such as {{\"POWERMAX_PORT_GROUP_NAME\": \"pg1\"}}",
                        e.line(),
                        e.column()
                    ),
                    span: None,
                }),
            }
        }
        merged
    }

    fn dedicated_hosts(&mut self) -> Vec<String> {
        const KEY: &str = "dedicated_migration_hosts";
        let Some(entry) = self.section.entries.get(KEY) else {
            return Vec::new();
        };
        let hosts = match &entry.value {
            SectionValue::Json(serde_json::Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().filter(|s| !s.is_empty()).map(str::to_string))
                .collect::<Option<Vec<_>>>(),
            _ => None,
        };
        match hosts {
            Some(hosts) if !hosts.is_empty() => hosts,
            _ => {
                self.at_entry(
                    KEY,
                    format!(
                        "`{KEY}` must be a non-empty list of ESXi host ids (e.g. [\"host-1001\"])"
                    ),
                );
                Vec::new()
            }
        }
    }
}

/// A validated copy-offload configuration with the environment override applied.
#[derive(Clone, PartialEq, Eq)]
pub struct CopyOffload {
    pub storage_vendor_product: StorageVendor,
    pub datastore_id: String,
    pub secondary_datastore_id: Option<String>,
    pub non_xcopy_datastore_id: Option<String>,
    pub storage_hostname: String,
    pub storage_username: String,
    pub storage_password: Secret,
    pub storage_skip_ssl_verification: bool,
    /// The vendor's extra fields, keyed by JSON field name (e.g. `ontap_svm`).
    pub vendor_fields: BTreeMap<String, String>,
    /// Extra storage Secret keys (file, then `COPYOFFLOAD_STORAGE_SECRET_EXTRA` over it).
    pub storage_secret_extra: BTreeMap<String, String>,
    pub esxi_clone_method: EsxiCloneMethod,
    pub esxi_host: Option<String>,
    pub esxi_user: Option<String>,
    pub esxi_password: Option<Secret>,
    pub rdm_lun_uuid: Option<String>,
    pub default_vm_name: Option<String>,
    pub resource_pool: Option<String>,
    pub dedicated_migration_hosts: Vec<String>,
}

impl CopyOffload {
    /// `stringData` of the storage Secret the XCOPY populator reads: base credentials, the
    /// vendor's keys, `STORAGE_SKIP_SSL_VERIFICATION=true` when set, then the extras, merged
    /// last so they override anything before them.
    pub fn storage_secret_data(&self) -> BTreeMap<String, Secret> {
        let mut data = BTreeMap::new();
        data.insert(
            "STORAGE_HOSTNAME".to_string(),
            Secret::new(self.storage_hostname.clone()),
        );
        data.insert(
            "STORAGE_USERNAME".to_string(),
            Secret::new(self.storage_username.clone()),
        );
        data.insert(
            "STORAGE_PASSWORD".to_string(),
            self.storage_password.clone(),
        );
        for (field, secret_key) in self.storage_vendor_product.secret_fields() {
            if let Some(value) = self.vendor_fields.get(*field) {
                data.insert((*secret_key).to_string(), Secret::new(value.clone()));
            }
        }
        if self.storage_skip_ssl_verification {
            data.insert(
                "STORAGE_SKIP_SSL_VERIFICATION".to_string(),
                Secret::new("true"),
            );
        }
        for (key, value) in &self.storage_secret_extra {
            data.insert(key.clone(), Secret::new(value.clone()));
        }
        data
    }
}

// Extras may carry credentials, so only their keys are shown.
impl fmt::Debug for CopyOffload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra_keys: Vec<&String> = self.storage_secret_extra.keys().collect();
        f.debug_struct("CopyOffload")
            .field("storage_vendor_product", &self.storage_vendor_product)
            .field("datastore_id", &self.datastore_id)
            .field("secondary_datastore_id", &self.secondary_datastore_id)
            .field("non_xcopy_datastore_id", &self.non_xcopy_datastore_id)
            .field("storage_hostname", &self.storage_hostname)
            .field("storage_username", &self.storage_username)
            .field("storage_password", &self.storage_password)
            .field(
                "storage_skip_ssl_verification",
                &self.storage_skip_ssl_verification,
            )
            .field("vendor_fields", &self.vendor_fields)
            .field("storage_secret_extra_keys", &extra_keys)
            .field("esxi_clone_method", &self.esxi_clone_method)
            .field("esxi_host", &self.esxi_host)
            .field("esxi_user", &self.esxi_user)
            .field("esxi_password", &self.esxi_password)
            .field("rdm_lun_uuid", &self.rdm_lun_uuid)
            .field("default_vm_name", &self.default_vm_name)
            .field("resource_pool", &self.resource_pool)
            .field("dedicated_migration_hosts", &self.dedicated_migration_hosts)
            .finish()
    }
}
