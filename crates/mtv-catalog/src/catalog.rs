//! Loading and validating catalog files: the built-in ones embedded at build time and any extra
//! directory given with `--catalog`. Every problem is reported with file:line and the fix, before
//! anything touches a cluster.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};
use mtv_api::ProviderType;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;

use crate::markers::known_marker_names;
use crate::model::{
    CATALOG_FORMAT_VERSION, CatalogFile, HookConfig, Power, PvcNameTemplate, ScenarioEntry,
    VmConfig,
};
use crate::steps::{Step, StepKind, steps_for};

/// The catalog files shipped in the repository's `catalog/` directory, embedded at build time.
const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "catalog/tier0.yaml",
        include_str!("../../../catalog/tier0.yaml"),
    ),
    (
        "catalog/comprehensive.yaml",
        include_str!("../../../catalog/comprehensive.yaml"),
    ),
    (
        "catalog/warm.yaml",
        include_str!("../../../catalog/warm.yaml"),
    ),
    (
        "catalog/remote.yaml",
        include_str!("../../../catalog/remote.yaml"),
    ),
    (
        "catalog/ova.yaml",
        include_str!("../../../catalog/ova.yaml"),
    ),
    (
        "catalog/copyoffload.yaml",
        include_str!("../../../catalog/copyoffload.yaml"),
    ),
];

/// Symbolic datastore ids resolved from the profile's `copyoffload` section at preparation time.
pub const SYMBOLIC_DATASTORE_IDS: &[&str] = &["secondary_datastore_id", "non_xcopy_datastore_id"];

/// Keys a per-provider `pvc_name_template` map may use besides the provider types.
const PVC_TEMPLATE_DEFAULT_KEY: &str = "default";

/// Where a scenario is defined.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The test id of a scenario's step, `Class[id]::test_create_storagemap`: the one place it is
/// formatted (collection, runner, preview and reports all use it).
pub fn item_id(scenario: &str, step: StepKind) -> String {
    format!("{scenario}::{}", step.test_name())
}

/// A validated scenario: its entry, the family of its file, where it is written and its steps.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub entry: ScenarioEntry,
    pub family: String,
    pub origin: Origin,
    pub steps: Vec<Step>,
}

impl Scenario {
    /// `Class[id]`, the pytest node name of the parametrised class.
    pub fn name(&self) -> String {
        format!("{}[{}]", self.entry.class, self.entry.id)
    }

    /// `Class[id]::test_create_storagemap`.
    pub fn item_id(&self, step: StepKind) -> String {
        item_id(&self.name(), step)
    }

    /// Whether the scenario carries a marker; `min_mtv_version` counts when the version is set.
    pub fn has_marker(&self, marker: &str) -> bool {
        (marker == "min_mtv_version" && self.entry.min_mtv_version.is_some())
            || self.entry.markers.iter().any(|m| m == marker)
    }

    /// The markers as shown on items: the written ones plus `min_mtv_version` when set.
    pub fn markers(&self) -> Vec<String> {
        let mut markers = self.entry.markers.clone();
        if self.entry.min_mtv_version.is_some() {
            markers.push("min_mtv_version".to_string());
        }
        markers
    }

    pub fn is_warm(&self) -> bool {
        self.entry.config.warm_migration
    }

    pub fn is_copyoffload(&self) -> bool {
        self.entry.config.copyoffload
    }

    pub fn is_remote(&self) -> bool {
        self.entry.config.remote_destination || self.has_marker("remote")
    }
}

/// The key `concurrent_plans` uses for a VM: its `clone_name` when set (several clones of one
/// template differ only there), else its `name`.
pub fn vm_plan_key(vm: &VmConfig) -> &str {
    vm.clone_name.as_deref().unwrap_or(&vm.name)
}

/// Every scenario known to a run, in file order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub scenarios: Vec<Scenario>,
}

/// A catalog file that cannot be used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CatalogError {
    /// Not YAML, an unknown key, or a value of the wrong type.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Syntax(Box<SyntaxError>),
    /// The file's `version` is not one this build reads.
    #[error(
        "{origin}: catalog format version {found} is not supported; set `version: {expected}` (the only version this build reads)"
    )]
    #[diagnostic(code(mtv::catalog::version))]
    Version {
        origin: Origin,
        found: u32,
        expected: u32,
        #[source_code]
        source_code: Arc<NamedSource<String>>,
        #[label("version {found}")]
        span: SourceSpan,
    },
    /// A well-formed scenario whose values break a rule.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Invalid(Box<InvalidScenario>),
    /// The same `Class[id]` defined twice.
    #[error(
        "{second}: scenario {name} is already defined at {first}; give one of them another `id` (or remove the copy)"
    )]
    #[diagnostic(code(mtv::catalog::duplicate))]
    Duplicate {
        name: String,
        first: Origin,
        second: Origin,
    },
    /// A `--catalog` directory or file that cannot be read.
    #[error("{path}: cannot read the catalog ({source}); check the --catalog path")]
    #[diagnostic(code(mtv::catalog::io))]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A `--catalog` directory without scenario files.
    #[error(
        "{path}: no *.yaml or *.yml catalog files found; point --catalog at a directory of catalog files"
    )]
    #[diagnostic(code(mtv::catalog::empty_dir))]
    EmptyDir { path: String },
}

/// A catalog file that is not YAML, has an unknown key, or a value of the wrong type
/// (see [`CatalogError::Syntax`]).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{file}:{line}:{column}: {message}; {fix}")]
#[diagnostic(code(mtv::catalog::syntax))]
pub struct SyntaxError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// What to change.
    pub fix: String,
    /// The short form of `message` shown under the offending text.
    pub label: String,
    #[source_code]
    pub source_code: Arc<NamedSource<String>>,
    #[label("{label}")]
    pub span: SourceSpan,
}

/// A scenario that parses but breaks a catalog rule (see [`CatalogError::Invalid`]).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{origin}: {scenario}: {problem}; {fix}")]
#[diagnostic(code(mtv::catalog::invalid))]
pub struct InvalidScenario {
    pub origin: Origin,
    /// `Class[id]`.
    pub scenario: String,
    pub problem: String,
    /// What to change.
    pub fix: String,
    #[source_code]
    pub source_code: Arc<NamedSource<String>>,
    #[label("{problem}")]
    pub span: SourceSpan,
}

impl Catalog {
    /// The catalog shipped with the binary.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::default();
        for (file, text) in BUILTIN_FILES {
            catalog.add(Self::parse_file(file, text)?)?;
        }
        Ok(catalog)
    }

    /// Names of the embedded files, as their origins show them (`catalog/tier0.yaml`, ...).
    pub fn builtin_file_names() -> Vec<&'static str> {
        BUILTIN_FILES.iter().map(|(name, _)| *name).collect()
    }

    /// Parses and validates one catalog file; `file_name` is what errors and origins show.
    pub fn parse_file(file_name: &str, text: &str) -> Result<Vec<Scenario>, CatalogError> {
        let file: CatalogFile =
            serde_saphyr::from_str(text).map_err(|e| syntax_error(file_name, text, &e))?;
        // The same text read again for positions only; it cannot fail where the first read passed.
        let lines: FileLines = serde_saphyr::from_str(text).unwrap_or_default();
        let checker = Checker {
            file: file_name,
            text,
        };
        if file.version != CATALOG_FORMAT_VERSION {
            let at = lines.version.as_ref().map(pos_of).unwrap_or_default();
            return Err(CatalogError::Version {
                origin: checker.origin(at),
                found: file.version,
                expected: CATALOG_FORMAT_VERSION,
                source_code: checker.source(),
                span: checker.span(at),
            });
        }
        let mut scenarios: Vec<Scenario> = Vec::with_capacity(file.scenarios.len());
        let mut seen: BTreeMap<String, Origin> = BTreeMap::new();
        for (index, entry) in file.scenarios.into_iter().enumerate() {
            let empty = ScenarioLines::default();
            let at = lines.scenarios.get(index).unwrap_or(&empty);
            checker.scenario(&entry, at)?;
            let scenario = Scenario {
                steps: steps_for(&entry.config),
                family: file.family.clone(),
                origin: checker.origin(at.anchor()),
                entry,
            };
            let name = scenario.name();
            if let Some(first) = seen.get(&name) {
                return Err(checker.invalid(
                    at.anchor(),
                    &name,
                    format!("defined twice in this file (first at {first})"),
                    "give one of them another `id`".to_string(),
                ));
            }
            seen.insert(name, scenario.origin.clone());
            scenarios.push(scenario);
        }
        Ok(scenarios)
    }

    /// Adds every `*.yaml` / `*.yml` file of `dir` (sorted by name), as `--catalog DIR` does.
    pub fn extend_from_dir(&mut self, dir: &Path) -> Result<(), CatalogError> {
        let io = |source| CatalogError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let is_yaml = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yaml" || e == "yml");
            if is_yaml && path.is_file() {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(CatalogError::EmptyDir {
                path: dir.display().to_string(),
            });
        }
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|source| CatalogError::Io {
                path: path.display().to_string(),
                source,
            })?;
            self.add(Self::parse_file(&path.display().to_string(), &text)?)?;
        }
        Ok(())
    }

    /// Appends scenarios, refusing a `Class[id]` that is already known.
    pub fn add(&mut self, scenarios: Vec<Scenario>) -> Result<(), CatalogError> {
        for scenario in scenarios {
            let name = scenario.name();
            if let Some(first) = self.scenarios.iter().find(|s| s.name() == name) {
                return Err(CatalogError::Duplicate {
                    name,
                    first: first.origin.clone(),
                    second: scenario.origin,
                });
            }
            self.scenarios.push(scenario);
        }
        Ok(())
    }

    /// The scenario called `Class[id]`.
    pub fn find(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name() == name)
    }
}

fn syntax_error(file: &str, text: &str, error: &serde_saphyr::Error) -> CatalogError {
    let mut message = error.without_snippet().to_string();
    // The position is printed by us, in file:line:col form.
    if let Some(cut) = message.rfind(" at line ") {
        message.truncate(cut);
    }
    // A hint about the parser's own options is no use to someone editing a catalog file.
    if let Some(cut) = message.find(", set DuplicateKeyPolicy") {
        message.truncate(cut);
    }
    let fix = if message.starts_with("unknown field") {
        "remove the key or correct its spelling (the keys are the Python suite's plan-config keys; see the comment header of catalog/tier0.yaml)"
    } else if message.starts_with("duplicate mapping key") {
        "keep only one of the two keys"
    } else if message.contains("untagged enum PvcNameTemplate") {
        "write one template string, or a map from a provider type (vsphere, ovirt, openstack, openshift, ova) or `default` to a quoted template string"
    } else if message.starts_with("missing field") {
        "add the required key to this mapping"
    } else {
        "correct the YAML at this position"
    };
    let location = error.location();
    let (line, column, offset, len) = match location {
        Some(loc) => (
            to_usize(loc.line()),
            to_usize(loc.column()),
            loc.span().byte_offset().map(to_usize).unwrap_or(0),
            loc.span().byte_len().map(to_usize).unwrap_or(0),
        ),
        None => (1, 1, 0, 0),
    };
    CatalogError::Syntax(Box::new(SyntaxError {
        file: file.to_string(),
        line,
        column,
        label: message
            .split(", expected one of")
            .next()
            .unwrap_or_default()
            .to_string(),
        message,
        fix: fix.to_string(),
        source_code: Arc::new(NamedSource::new(file, text.to_string())),
        span: {
            let start = offset.min(text.len());
            SourceSpan::new(start.into(), len.min(text.len() - start))
        },
    }))
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

// ---- positions ------------------------------------------------------------------------------

/// A position in a catalog file, 1-based line and column; line 0 means unknown.
#[derive(Debug, Clone, Copy, Default)]
struct Pos {
    line: usize,
    offset: usize,
}

fn pos_of(spanned: &Spanned<IgnoredAny>) -> Pos {
    let loc = spanned.referenced;
    Pos {
        line: to_usize(loc.line()),
        offset: loc.span().byte_offset().map(to_usize).unwrap_or(0),
    }
}

type At = Option<Spanned<IgnoredAny>>;

/// A second, lenient reading of a catalog file that keeps only where things are.
#[derive(Debug, Default, Deserialize)]
struct FileLines {
    #[serde(default)]
    version: At,
    #[serde(default)]
    scenarios: Vec<ScenarioLines>,
}

#[derive(Debug, Default, Deserialize)]
struct ScenarioLines {
    #[serde(default)]
    class: At,
    #[serde(default)]
    id: At,
    #[serde(default)]
    markers: Vec<Spanned<IgnoredAny>>,
    #[serde(default)]
    min_mtv_version: At,
    #[serde(default)]
    providers: At,
    #[serde(default)]
    config: ConfigLines,
}

impl ScenarioLines {
    /// The scenario's own line: its `class`.
    fn anchor(&self) -> Pos {
        self.class.as_ref().map(pos_of).unwrap_or_default()
    }

    /// `field`'s position, else the scenario's.
    fn or_anchor(&self, field: &At) -> Pos {
        field.as_ref().map(pos_of).unwrap_or_else(|| self.anchor())
    }
}

#[derive(Debug, Default, Deserialize)]
struct ConfigLines {
    #[serde(default)]
    virtual_machines: Vec<VmLines>,
    #[serde(default)]
    warm_migration: At,
    #[serde(default)]
    copyoffload: At,
    #[serde(default)]
    remote_destination: At,
    #[serde(default)]
    preserve_static_ips: At,
    #[serde(default)]
    pvc_name_template: At,
    #[serde(default)]
    target_node_selector: At,
    #[serde(default)]
    vm_target_namespace: At,
    #[serde(default)]
    multus_namespace: At,
    #[serde(default)]
    pre_hook: At,
    #[serde(default)]
    post_hook: At,
    #[serde(default)]
    skip_clone: At,
    #[serde(default)]
    concurrent_plans: Vec<PlanLines>,
}

#[derive(Debug, Default, Deserialize)]
struct VmLines {
    #[serde(default)]
    name: At,
    #[serde(default)]
    add_nic: At,
    #[serde(default)]
    source_vm_power: At,
    #[serde(default)]
    target_datastore_id: At,
    #[serde(default)]
    add_disks: Vec<DiskLines>,
}

#[derive(Debug, Default, Deserialize)]
struct DiskLines {
    #[serde(default)]
    size_gb: At,
    #[serde(default)]
    provision_type: At,
    #[serde(default)]
    disk_mode: At,
    #[serde(default)]
    datastore_id: At,
    #[serde(default)]
    datastore_path: At,
    #[serde(default)]
    rdm_type: At,
}

impl DiskLines {
    /// The first key written in the disk's mapping (where the `- ` item starts).
    fn start(&self) -> Option<&Spanned<IgnoredAny>> {
        [
            &self.size_gb,
            &self.provision_type,
            &self.disk_mode,
            &self.datastore_id,
            &self.datastore_path,
            &self.rdm_type,
        ]
        .into_iter()
        .flatten()
        .min_by_key(|s| (s.referenced.line(), s.referenced.column()))
    }
}

#[derive(Debug, Default, Deserialize)]
struct PlanLines {
    #[serde(default)]
    virtual_machines: Vec<Spanned<IgnoredAny>>,
}

// ---- validation -----------------------------------------------------------------------------

struct Checker<'a> {
    file: &'a str,
    text: &'a str,
}

impl Checker<'_> {
    fn origin(&self, at: Pos) -> Origin {
        Origin {
            file: self.file.to_string(),
            line: at.line.max(1),
        }
    }

    fn source(&self) -> Arc<NamedSource<String>> {
        Arc::new(NamedSource::new(self.file, self.text.to_string()))
    }

    /// From the position to the end of its line.
    fn span(&self, at: Pos) -> SourceSpan {
        let start = at.offset.min(self.text.len());
        let end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |n| start + n);
        SourceSpan::new(start.into(), end - start)
    }

    fn invalid(&self, at: Pos, scenario: &str, problem: String, fix: String) -> CatalogError {
        CatalogError::Invalid(Box::new(InvalidScenario {
            origin: self.origin(at),
            scenario: scenario.to_string(),
            problem,
            fix,
            source_code: self.source(),
            span: self.span(at),
        }))
    }

    fn scenario(&self, entry: &ScenarioEntry, lines: &ScenarioLines) -> Result<(), CatalogError> {
        let name = format!("{}[{}]", entry.class, entry.id);
        let fail = |at: Pos, problem: String, fix: &str| {
            Err(self.invalid(at, &name, problem, fix.to_string()))
        };
        let config = &entry.config;
        let cfg_lines = &lines.config;

        if !is_class_name(&entry.class) {
            return fail(
                lines.anchor(),
                format!("`{}` is not a pytest class name", entry.class),
                "start it with `Test` and use only letters, digits and `_`",
            );
        }
        if !is_param_id(&entry.id) {
            return fail(
                lines.or_anchor(&lines.id),
                format!("id `{}` cannot be part of an item id", entry.id),
                "use letters, digits, `-`, `_` or `.` only (e.g. `MTV-200-rhel`)",
            );
        }

        // Markers: registered, and consistent with what the config does.
        let known = known_marker_names();
        for (index, marker) in entry.markers.iter().enumerate() {
            let at = lines
                .markers
                .get(index)
                .map(pos_of)
                .unwrap_or_else(|| lines.anchor());
            if marker == "min_mtv_version" {
                return fail(
                    at,
                    "`min_mtv_version` needs a version".to_string(),
                    "remove it from `markers` and write `min_mtv_version: \"X.Y.Z\"` on the scenario",
                );
            }
            if !known.contains(&marker.as_str()) {
                return fail(
                    at,
                    format!("unknown marker `{marker}`"),
                    &format!("use one of the registered markers: {}", known.join(", ")),
                );
            }
            if entry.markers[..index].contains(marker) {
                return fail(
                    at,
                    format!("marker `{marker}` is listed twice"),
                    "list it once",
                );
            }
        }
        let markers_at = lines
            .markers
            .first()
            .map(pos_of)
            .unwrap_or_else(|| lines.anchor());
        let has = |m: &str| entry.markers.iter().any(|x| x == m);
        if !has("incremental") {
            return fail(
                markers_at,
                "the `incremental` marker is missing".to_string(),
                "add `incremental` to `markers`: every catalog scenario is a chain of dependent steps",
            );
        }
        let flag_pairs = [
            (
                "warm",
                config.warm_migration,
                "config.warm_migration",
                &cfg_lines.warm_migration,
            ),
            (
                "copyoffload",
                config.copyoffload,
                "config.copyoffload",
                &cfg_lines.copyoffload,
            ),
            (
                "remote",
                config.remote_destination,
                "config.remote_destination",
                &cfg_lines.remote_destination,
            ),
        ];
        for (marker, flag, key, key_at) in flag_pairs {
            if has(marker) && !flag {
                return fail(
                    markers_at,
                    format!("has the `{marker}` marker but `{key}` is not true"),
                    &format!("set `{key}: true` or remove the `{marker}` marker"),
                );
            }
            if flag && !has(marker) {
                return fail(
                    lines.or_anchor(key_at),
                    format!("`{key}: true` without the `{marker}` marker"),
                    &format!(
                        "add `{marker}` to `markers` (selection and gating rely on it) or drop `{key}`"
                    ),
                );
            }
        }
        for sub in ["copyoffload_sanity", "copyoffload_snapshots"] {
            if has(sub) && !has("copyoffload") {
                return fail(
                    markers_at,
                    format!("`{sub}` without the `copyoffload` marker"),
                    "add `copyoffload` (and `config.copyoffload: true`) or remove the marker",
                );
            }
        }

        if let Some(version) = &entry.min_mtv_version
            && !is_release_version(version)
        {
            return fail(
                lines.or_anchor(&lines.min_mtv_version),
                format!("min_mtv_version `{version}` is not X.Y.Z"),
                "write three numbers, e.g. `min_mtv_version: \"2.10.0\"`",
            );
        }
        if let Some(providers) = &entry.providers {
            let at = lines.or_anchor(&lines.providers);
            if providers.is_empty() {
                return fail(
                    at,
                    "`providers` is empty, so the scenario could never run".to_string(),
                    "list the source types it is meant for, or remove `providers` to allow all",
                );
            }
            for (index, provider) in providers.iter().enumerate() {
                if providers[..index].contains(provider) {
                    return fail(
                        at,
                        format!("provider type `{provider}` is listed twice"),
                        "list it once",
                    );
                }
            }
        }

        // The VMs.
        if config.virtual_machines.is_empty() {
            return fail(
                lines.anchor(),
                "`config.virtual_machines` is empty".to_string(),
                "list at least one source VM",
            );
        }
        let empty_vm = VmLines::default();
        for (index, vm) in config.virtual_machines.iter().enumerate() {
            let vm_lines = cfg_lines.virtual_machines.get(index).unwrap_or(&empty_vm);
            let vm_at = |field: Option<&Spanned<IgnoredAny>>| {
                field
                    .or(vm_lines.name.as_ref())
                    .map(pos_of)
                    .unwrap_or_else(|| lines.anchor())
            };
            if vm.add_nic && vm.add_nic_start_connected.is_none() {
                return fail(
                    vm_at(vm_lines.add_nic.as_ref()),
                    format!(
                        "VM `{}` has `add_nic: true` without `add_nic_start_connected`",
                        vm.name
                    ),
                    "add `add_nic_start_connected: true` or `false` to the VM",
                );
            }
            if let Some(id) = &vm.target_datastore_id
                && !is_datastore_id(id)
            {
                return fail(
                    vm_at(vm_lines.target_datastore_id.as_ref()),
                    format!(
                        "VM `{}`: target_datastore_id `{id}` is not a datastore id",
                        vm.name
                    ),
                    DATASTORE_FIX,
                );
            }
            for (disk_index, disk) in vm.add_disks.iter().enumerate() {
                let disk_lines = vm_lines.add_disks.get(disk_index);
                let disk_at = || vm_at(disk_lines.and_then(DiskLines::start));
                match (disk.rdm_type, disk.size_gb) {
                    (Some(_), size) if size > 0 || disk.provision_type.is_some() => {
                        return fail(
                            disk_at(),
                            format!(
                                "VM `{}`, added disk {}: an RDM disk takes its size and provisioning from the LUN",
                                vm.name,
                                disk_index + 1
                            ),
                            "remove `size_gb` and `provision_type` from the RDM disk",
                        );
                    }
                    (None, 0) => {
                        return fail(
                            disk_at(),
                            format!(
                                "VM `{}`, added disk {} has no `size_gb`",
                                vm.name,
                                disk_index + 1
                            ),
                            "set `size_gb` (GiB) or `rdm_type: virtual|physical` for an RDM disk",
                        );
                    }
                    _ => {}
                }
                if let Some(id) = &disk.datastore_id
                    && !is_datastore_id(id)
                {
                    return fail(
                        vm_at(disk_lines.and_then(|d| d.datastore_id.as_ref())),
                        format!(
                            "VM `{}`, added disk {}: datastore_id `{id}` is not a datastore id",
                            vm.name,
                            disk_index + 1
                        ),
                        DATASTORE_FIX,
                    );
                }
            }
        }

        if config.preserve_static_ips == Some(true)
            && let Some((index, vm)) = config
                .virtual_machines
                .iter()
                .enumerate()
                .find(|(_, vm)| vm.source_vm_power != Some(Power::On))
        {
            let at = cfg_lines
                .virtual_machines
                .get(index)
                .and_then(|l| l.source_vm_power.as_ref().or(l.name.as_ref()))
                .map(pos_of)
                .unwrap_or_else(|| lines.or_anchor(&cfg_lines.preserve_static_ips));
            return fail(
                at,
                format!(
                    "`preserve_static_ips: true` but VM `{}` is not `source_vm_power: on` (the guest must report its IPs)",
                    vm.name
                ),
                "set `source_vm_power: on` on every VM, or drop `preserve_static_ips`",
            );
        }

        if let Some(selector) = &config.target_node_selector
            && selector.len() != 1
        {
            return fail(
                lines.or_anchor(&cfg_lines.target_node_selector),
                format!(
                    "target_node_selector has {} labels; exactly one is supported",
                    selector.len()
                ),
                "keep a single `label: value` (null means the session id)",
            );
        }

        if let Some(template) = &config.pvc_name_template {
            self.pvc_name_template(
                entry,
                template,
                lines.or_anchor(&cfg_lines.pvc_name_template),
            )?;
        }

        for (key, hook, at) in [
            ("pre_hook", &config.pre_hook, &cfg_lines.pre_hook),
            ("post_hook", &config.post_hook, &cfg_lines.post_hook),
        ] {
            if let Some(hook) = hook
                && let Err((problem, fix)) = check_hook(hook)
            {
                return fail(lines.or_anchor(at), format!("{key}: {problem}"), fix);
            }
        }

        if config.skip_clone {
            let mut conflicts: Vec<&str> = Vec::new();
            if config.disable_drs_for_vms {
                conflicts.push("disable_drs_for_vms");
            }
            if config.clone_to_same_host {
                conflicts.push("clone_to_same_host");
            }
            if config.migrate_shared_disks.is_some()
                || config
                    .virtual_machines
                    .iter()
                    .any(|vm| vm.migrate_shared_disks.is_some())
            {
                conflicts.push("migrate_shared_disks");
            }
            if config.virtual_machines.iter().any(|vm| vm.add_nic) {
                conflicts.push("add_nic");
            }
            if config.preserve_static_ips == Some(true) {
                conflicts.push("preserve_static_ips");
            }
            let at = lines.or_anchor(&cfg_lines.skip_clone);
            if !conflicts.is_empty() {
                return fail(
                    at,
                    format!(
                        "`skip_clone: true` conflicts with {} (they act on a fresh clone)",
                        conflicts.join(", ")
                    ),
                    "drop `skip_clone` or the conflicting keys",
                );
            }
            let runs_on_ovirt = entry
                .providers
                .as_ref()
                .is_none_or(|p| p.contains(&ProviderType::Ovirt));
            if runs_on_ovirt {
                return fail(
                    at,
                    "`skip_clone: true` cannot run on ovirt sources (RHV VMs are always cloned from templates)"
                        .to_string(),
                    "list `providers:` without ovirt",
                );
            }
        }

        if !config.concurrent_plans.is_empty() {
            self.concurrent_plans(entry, &name, lines)?;
        }

        for (key, value, at) in [
            (
                "vm_target_namespace",
                &config.vm_target_namespace,
                &cfg_lines.vm_target_namespace,
            ),
            (
                "multus_namespace",
                &config.multus_namespace,
                &cfg_lines.multus_namespace,
            ),
        ] {
            if let Some(namespace) = value
                && !is_dns1123_label(&namespace.replace("{rand4}", "abcd"))
            {
                return fail(
                    lines.or_anchor(at),
                    format!("{key} `{namespace}` is not a valid namespace name"),
                    "use at most 63 lower-case letters, digits and `-`, starting and ending with a letter or digit (`{rand4}` becomes 4 hex characters)",
                );
            }
        }
        Ok(())
    }

    fn pvc_name_template(
        &self,
        entry: &ScenarioEntry,
        template: &PvcNameTemplate,
        at: Pos,
    ) -> Result<(), CatalogError> {
        let name = format!("{}[{}]", entry.class, entry.id);
        let fail = |problem: String, fix: String| Err(self.invalid(at, &name, problem, fix));
        let allowed: Vec<&str> = ProviderType::ALL
            .iter()
            .map(|t| t.as_str())
            .chain([PVC_TEMPLATE_DEFAULT_KEY])
            .collect();
        match template {
            PvcNameTemplate::Single(t) if t.trim().is_empty() => fail(
                "pvc_name_template is empty".to_string(),
                "write a template or remove the key".to_string(),
            ),
            PvcNameTemplate::Single(t) => self.go_template(&name, at.offset, t),
            PvcNameTemplate::PerProvider(map) => {
                if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
                    return fail(
                        format!("pvc_name_template has an unknown key `{key}`"),
                        format!("use provider types or `default`: {}", allowed.join(", ")),
                    );
                }
                for (key, t) in map {
                    self.go_template(&name, self.map_value_offset(at.offset, key), t)?;
                }
                if map.contains_key(PVC_TEMPLATE_DEFAULT_KEY) {
                    return Ok(());
                }
                let runs_on = applicable_providers(entry);
                if let Some(missing) = runs_on.iter().find(|t| !map.contains_key(t.as_str())) {
                    return fail(
                        format!("pvc_name_template has no template for `{missing}` sources"),
                        "add a `default:` entry or one for that provider type".to_string(),
                    );
                }
                Ok(())
            }
        }
    }

    /// Parses and test-renders a Go template whose YAML value starts at `value_offset`; an error
    /// names the file, line and column of the character the template engine stopped at.
    fn go_template(
        &self,
        scenario: &str,
        value_offset: usize,
        template: &str,
    ) -> Result<(), CatalogError> {
        let Err(problem) = crate::templates::check_pvc_template(self.text, value_offset, template)
        else {
            return Ok(());
        };
        let offset = problem.offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rfind('\n')
            .map_or(before, |newline| &before[newline + 1..])
            .chars()
            .count()
            + 1;
        Err(self.invalid(
            Pos { line, offset },
            scenario,
            format!(
                "pvc_name_template is not a valid Go template at {}:{line}:{column}: {}",
                self.file, problem.message
            ),
            "Forklift would mark the Plan NotValid; fix the template (Go text/template with Forklift's \
             functions; PVC fields: .VmName, .TargetVmName, .PlanName, .DiskIndex, .RootDiskIndex, \
             .VmId, .FileName, .WinDriveLetter, .Shared, ...)"
                .to_string(),
        ))
    }

    /// Where the value of `key` starts inside the YAML mapping at `map_offset` (the mapping's
    /// start when it cannot be found).
    fn map_value_offset(&self, map_offset: usize, key: &str) -> usize {
        let Some(rest) = self.text.get(map_offset..) else {
            return map_offset;
        };
        let found = [
            format!("{key}:"),
            format!("\"{key}\":"),
            format!("'{key}':"),
        ]
        .iter()
        .filter_map(|pattern| rest.find(pattern.as_str()).map(|i| i + pattern.len()))
        .min();
        let Some(after_colon) = found else {
            return map_offset;
        };
        let spaces = rest[after_colon..]
            .find(|c: char| c != ' ' && c != '\t')
            .unwrap_or(0);
        map_offset + after_colon + spaces
    }

    fn concurrent_plans(
        &self,
        entry: &ScenarioEntry,
        name: &str,
        lines: &ScenarioLines,
    ) -> Result<(), CatalogError> {
        let config = &entry.config;
        let plans_lines = &lines.config.concurrent_plans;
        let fail = |at: Pos, problem: String, fix: &str| {
            Err(self.invalid(at, name, problem, fix.to_string()))
        };
        if config.concurrent_plans.len() < 2 {
            return fail(
                lines.anchor(),
                "`concurrent_plans` lists a single Plan".to_string(),
                "list two or more Plans, or remove `concurrent_plans` for an ordinary Plan",
            );
        }
        let keys: Vec<&str> = config.virtual_machines.iter().map(vm_plan_key).collect();
        for (index, key) in keys.iter().enumerate() {
            if keys[..index].contains(key) {
                return fail(
                    lines.anchor(),
                    format!(
                        "two VMs are both called `{key}`, so `concurrent_plans` cannot tell them apart"
                    ),
                    "give the clones distinct `clone_name`s and use those in `concurrent_plans`",
                );
            }
        }
        let mut used: BTreeMap<&str, usize> = BTreeMap::new();
        for (plan_index, plan) in config.concurrent_plans.iter().enumerate() {
            let plan_at = |vm_index: usize| {
                plans_lines
                    .get(plan_index)
                    .and_then(|p| p.virtual_machines.get(vm_index))
                    .map(pos_of)
                    .unwrap_or_else(|| lines.anchor())
            };
            if plan.virtual_machines.is_empty() {
                return fail(
                    plan_at(0),
                    format!("concurrent plan {} has no VMs", plan_index + 1),
                    "name at least one VM of `virtual_machines` in it",
                );
            }
            for (vm_index, vm) in plan.virtual_machines.iter().enumerate() {
                if !keys.contains(&vm.as_str()) {
                    return fail(
                        plan_at(vm_index),
                        format!(
                            "concurrent plan {} names VM `{vm}`, which is not in `virtual_machines`",
                            plan_index + 1
                        ),
                        &format!(
                            "use one of: {} (a VM's `clone_name` if it has one, else its `name`)",
                            keys.join(", ")
                        ),
                    );
                }
                if let Some(first) = used.insert(vm.as_str(), plan_index) {
                    return fail(
                        plan_at(vm_index),
                        format!(
                            "VM `{vm}` is in concurrent plan {} and {}",
                            first + 1,
                            plan_index + 1
                        ),
                        "put each VM in one Plan only",
                    );
                }
            }
        }
        Ok(())
    }
}

const DATASTORE_FIX: &str = "use a vSphere MoRef (`datastore-<n>`) or `secondary_datastore_id` / `non_xcopy_datastore_id` (resolved from the profile's copyoffload section)";

/// The source types a scenario can actually run on: its `providers`, narrowed by the warm and
/// copy-offload gates.
fn applicable_providers(entry: &ScenarioEntry) -> Vec<ProviderType> {
    ProviderType::ALL
        .into_iter()
        .filter(|t| entry.providers.as_ref().is_none_or(|p| p.contains(t)))
        .filter(|t| !entry.config.warm_migration || t.supports_warm())
        .filter(|t| !entry.config.copyoffload || t.supports_copy_offload())
        .collect()
}

fn check_hook(hook: &HookConfig) -> Result<(), (String, &'static str)> {
    let given = [
        hook.expected_result.is_some(),
        hook.playbook_base64.is_some(),
        hook.aap_job_template_id.is_some(),
    ]
    .into_iter()
    .filter(|b| *b)
    .count();
    if given != 1 {
        return Err((
            format!("sets {given} of expected_result / playbook_base64 / aap_job_template_id"),
            "set exactly one: `expected_result: succeed|fail`, `playbook_base64: <playbook>` or `aap_job_template_id: <id>`",
        ));
    }
    if let Some(playbook) = &hook.playbook_base64 {
        let decoded = decode_base64(playbook).ok_or((
            "playbook_base64 is not valid base64".to_string(),
            "encode the Ansible playbook with `base64 -w0 playbook.yml`",
        ))?;
        if String::from_utf8(decoded).is_err() {
            return Err((
                "playbook_base64 does not decode to UTF-8 text".to_string(),
                "encode the Ansible playbook (a YAML text file) with `base64 -w0 playbook.yml`",
            ));
        }
    }
    if hook.aap_job_template_id == Some(0) {
        return Err((
            "aap_job_template_id is 0".to_string(),
            "use the positive id of the AAP job template",
        ));
    }
    Ok(())
}

/// Standard-alphabet base64 with optional padding; whitespace is ignored.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let symbols: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let body = match symbols.iter().position(|b| *b == b'=') {
        Some(pad) => {
            if symbols[pad..].iter().any(|b| *b != b'=')
                || !symbols.len().is_multiple_of(4)
                || symbols.len() - pad > 2
            {
                return None;
            }
            &symbols[..pad]
        }
        None => &symbols[..],
    };
    if body.len() % 4 == 1 {
        return None;
    }
    let value = |b: u8| -> Option<u32> {
        match b {
            b'A'..=b'Z' => Some(u32::from(b - b'A')),
            b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    for chunk in body.chunks(4) {
        let mut acc = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            acc |= value(*b)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

fn is_class_name(class: &str) -> bool {
    class.starts_with("Test") && class.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_param_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_release_version(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn is_datastore_id(id: &str) -> bool {
    SYMBOLIC_DATASTORE_IDS.contains(&id)
        || id.strip_prefix("datastore-").is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// RFC 1123 label, as Kubernetes requires of namespace names (the one rule, in `mtv_api::naming`).
pub use mtv_api::naming::is_dns1123_label;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_yaml_file_in_the_catalog_directory_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("catalog dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
            .map(|n| format!("catalog/{n}"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = Catalog::builtin_file_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
        // And the embedded text is the file's current text.
        for (name, text) in BUILTIN_FILES {
            let path = dir.join(name.trim_start_matches("catalog/"));
            assert_eq!(std::fs::read_to_string(path).expect("read"), *text);
        }
    }

    #[test]
    fn base64_decoding() {
        assert_eq!(decode_base64("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64("aGVsbG8").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(decode_base64("").as_deref(), Some(&b""[..]));
        assert_eq!(decode_base64("aGVs\nbG8=").as_deref(), Some(&b"hello"[..]));
        assert!(decode_base64("not base64!").is_none());
        assert!(decode_base64("a").is_none());
        assert!(decode_base64("aG=k").is_none());
    }

    #[test]
    fn namespace_labels() {
        assert!(is_dns1123_label("mtv-vms-cold-comprehensive-abcd"));
        assert!(!is_dns1123_label("Custom"));
        assert!(!is_dns1123_label("-a"));
        assert!(!is_dns1123_label("a-"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(!is_dns1123_label(""));
    }

    #[test]
    fn datastore_ids() {
        assert!(is_datastore_id("datastore-123"));
        assert!(is_datastore_id("secondary_datastore_id"));
        assert!(is_datastore_id("non_xcopy_datastore_id"));
        assert!(!is_datastore_id("datastore-"));
        assert!(!is_datastore_id("third_datastore_id"));
        assert!(!is_datastore_id("nfs-us-mtv-v8"));
    }
}
