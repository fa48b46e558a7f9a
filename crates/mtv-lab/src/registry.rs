//! The kinds the lab serves: names, scope, subresources and verbs, and for Forklift kinds the embedded CRD
//! (schema and printer columns).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

/// Annotation whose text `GET .../pods/<name>/log` serves as the pod's log (the lab runs no containers;
/// simulated components write their log lines here).
pub const POD_LOG_ANNOTATION: &str = "lab.mtv-tests.io/log";

/// Verbs of an ordinary resource.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Verbs of a `status` subresource.
pub const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// One served resource type.
#[derive(Debug)]
pub struct ResourceType {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    /// Whether writes to the main resource keep status and `/status` writes change only status.
    pub status_subresource: bool,
    pub verbs: &'static [&'static str],
    /// The embedded CRD YAML for kinds defined by a CustomResourceDefinition we ship.
    pub crd_yaml: Option<&'static str>,
}

impl ResourceType {
    /// `group/version`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plans.forklift.konveyor.io`, or `secrets` for the core group: the name error messages use.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Plan.forklift.konveyor.io`, or `Secret`: the kind in 422 messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// URL path of the collection, e.g. `/apis/forklift.konveyor.io/v1beta1/namespaces/ns/plans`.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let root = if self.group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{root}/namespaces/{ns}/{}", self.plural),
            _ => format!("{root}/{}", self.plural),
        }
    }

    /// The parsed CRD data, for kinds that have one.
    pub fn crd(&self) -> Option<Arc<CrdInfo>> {
        crd_table().get(self.plural).cloned()
    }
}

/// A printer column from a CRD's `additionalPrinterColumns`.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    pub name: String,
    pub column_type: String,
    pub json_path: String,
    pub description: String,
    pub priority: i64,
}

/// What the lab uses from a CRD.
#[derive(Debug)]
pub struct CrdInfo {
    /// The `openAPIV3Schema` of the served version.
    pub schema: Value,
    pub printer_columns: Vec<PrinterColumn>,
}

macro_rules! core {
    ($ident:ident, $plural:literal, $singular:literal, $kind:literal, [$($short:literal),*], [$($cat:literal),*], $namespaced:literal, $status:literal) => {
        grouped!($ident, "", "v1", $plural, $singular, $kind, [$($short),*], [$($cat),*], $namespaced, $status, None);
    };
}

macro_rules! grouped {
    ($ident:ident, $group:literal, $version:literal, $plural:literal, $singular:literal, $kind:literal, [$($short:literal),*], [$($cat:literal),*], $namespaced:literal, $status:literal, $crd:expr) => {
        pub static $ident: ResourceType = ResourceType {
            group: $group,
            version: $version,
            plural: $plural,
            singular: $singular,
            kind: $kind,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            namespaced: $namespaced,
            status_subresource: $status,
            verbs: ALL_VERBS,
            crd_yaml: $crd,
        };
    };
}

core!(
    NAMESPACE,
    "namespaces",
    "namespace",
    "Namespace",
    ["ns"],
    [],
    false,
    true
);
core!(SECRET, "secrets", "secret", "Secret", [], [], true, false);
core!(
    CONFIG_MAP,
    "configmaps",
    "configmap",
    "ConfigMap",
    ["cm"],
    [],
    true,
    false
);
core!(
    PERSISTENT_VOLUME_CLAIM,
    "persistentvolumeclaims",
    "persistentvolumeclaim",
    "PersistentVolumeClaim",
    ["pvc"],
    [],
    true,
    true
);
core!(POD, "pods", "pod", "Pod", ["po"], ["all"], true, true);
core!(EVENT, "events", "event", "Event", ["ev"], [], true, false);
core!(NODE, "nodes", "node", "Node", ["no"], [], false, true);
core!(
    SERVICE,
    "services",
    "service",
    "Service",
    ["svc"],
    ["all"],
    true,
    true
);

grouped!(
    STORAGE_CLASS,
    "storage.k8s.io",
    "v1",
    "storageclasses",
    "storageclass",
    "StorageClass",
    ["sc"],
    [],
    false,
    false,
    None
);
grouped!(
    JOB,
    "batch",
    "v1",
    "jobs",
    "job",
    "Job",
    [],
    ["all"],
    true,
    true,
    None
);

const FORKLIFT: &str = "forklift.konveyor.io";
grouped!(
    PROVIDER,
    "forklift.konveyor.io",
    "v1beta1",
    "providers",
    "provider",
    "Provider",
    [],
    [],
    true,
    true,
    Some(include_str!("../crds/forklift.konveyor.io_providers.yaml"))
);
grouped!(
    STORAGE_MAP,
    "forklift.konveyor.io",
    "v1beta1",
    "storagemaps",
    "storagemap",
    "StorageMap",
    [],
    [],
    true,
    true,
    Some(include_str!(
        "../crds/forklift.konveyor.io_storagemaps.yaml"
    ))
);
grouped!(
    NETWORK_MAP,
    "forklift.konveyor.io",
    "v1beta1",
    "networkmaps",
    "networkmap",
    "NetworkMap",
    [],
    [],
    true,
    true,
    Some(include_str!(
        "../crds/forklift.konveyor.io_networkmaps.yaml"
    ))
);
grouped!(
    PLAN,
    "forklift.konveyor.io",
    "v1beta1",
    "plans",
    "plan",
    "Plan",
    [],
    [],
    true,
    true,
    Some(include_str!("../crds/forklift.konveyor.io_plans.yaml"))
);
grouped!(
    MIGRATION,
    "forklift.konveyor.io",
    "v1beta1",
    "migrations",
    "migration",
    "Migration",
    [],
    [],
    true,
    true,
    Some(include_str!("../crds/forklift.konveyor.io_migrations.yaml"))
);
grouped!(
    HOOK,
    "forklift.konveyor.io",
    "v1beta1",
    "hooks",
    "hook",
    "Hook",
    [],
    [],
    true,
    true,
    Some(include_str!("../crds/forklift.konveyor.io_hooks.yaml"))
);
grouped!(
    HOST,
    "forklift.konveyor.io",
    "v1beta1",
    "hosts",
    "host",
    "Host",
    [],
    [],
    true,
    true,
    Some(include_str!("../crds/forklift.konveyor.io_hosts.yaml"))
);
grouped!(
    FORKLIFT_CONTROLLER,
    "forklift.konveyor.io",
    "v1beta1",
    "forkliftcontrollers",
    "forkliftcontroller",
    "ForkliftController",
    [],
    [],
    true,
    true,
    Some(include_str!(
        "../crds/forklift.konveyor.io_forkliftcontrollers.yaml"
    ))
);
grouped!(
    XCOPY_POPULATOR,
    "forklift.konveyor.io",
    "v1beta1",
    "vspherexcopyvolumepopulators",
    "vspherexcopyvolumepopulator",
    "VSphereXcopyVolumePopulator",
    ["vxvp", "vxvps"],
    [],
    true,
    true,
    Some(include_str!(
        "../crds/forklift.konveyor.io_vspherexcopyvolumepopulators.yaml"
    ))
);
grouped!(
    OVA_PROVIDER_SERVER,
    "forklift.konveyor.io",
    "v1beta1",
    "ovaproviderservers",
    "ovaproviderserver",
    "OVAProviderServer",
    [],
    [],
    true,
    true,
    Some(include_str!(
        "../crds/forklift.konveyor.io_ovaproviderservers.yaml"
    ))
);

grouped!(
    VIRTUAL_MACHINE,
    "kubevirt.io",
    "v1",
    "virtualmachines",
    "virtualmachine",
    "VirtualMachine",
    ["vm", "vms"],
    ["all"],
    true,
    true,
    None
);
grouped!(
    VIRTUAL_MACHINE_INSTANCE,
    "kubevirt.io",
    "v1",
    "virtualmachineinstances",
    "virtualmachineinstance",
    "VirtualMachineInstance",
    ["vmi", "vmis"],
    ["all"],
    true,
    true,
    None
);
grouped!(
    DATA_VOLUME,
    "cdi.kubevirt.io",
    "v1beta1",
    "datavolumes",
    "datavolume",
    "DataVolume",
    ["dv", "dvs"],
    ["all"],
    true,
    true,
    None
);
grouped!(
    NETWORK_ATTACHMENT_DEFINITION,
    "k8s.cni.cncf.io",
    "v1",
    "network-attachment-definitions",
    "network-attachment-definition",
    "NetworkAttachmentDefinition",
    ["net-attach-def"],
    [],
    true,
    false,
    None
);
grouped!(
    SUBSCRIPTION,
    "operators.coreos.com",
    "v1alpha1",
    "subscriptions",
    "subscription",
    "Subscription",
    ["sub", "subs"],
    ["olm"],
    true,
    true,
    None
);
grouped!(
    CLUSTER_SERVICE_VERSION,
    "operators.coreos.com",
    "v1alpha1",
    "clusterserviceversions",
    "clusterserviceversion",
    "ClusterServiceVersion",
    ["csv", "csvs"],
    ["olm"],
    true,
    true,
    None
);

grouped!(
    DEPLOYMENT,
    "apps",
    "v1",
    "deployments",
    "deployment",
    "Deployment",
    ["deploy"],
    ["all"],
    true,
    true,
    None
);
grouped!(
    CUSTOM_RESOURCE_DEFINITION,
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "customresourcedefinition",
    "CustomResourceDefinition",
    ["crd", "crds"],
    ["api-extensions"],
    false,
    true,
    None
);

// Identity and access (crate::auth; Forklift's ServiceAccountNotValid reads them too): ServiceAccounts, RBAC, and the review kinds, which are only ever
// created (answered at once, never stored).
core!(
    SERVICE_ACCOUNT,
    "serviceaccounts",
    "serviceaccount",
    "ServiceAccount",
    ["sa"],
    [],
    true,
    false
);
const RBAC: &str = "rbac.authorization.k8s.io";
grouped!(
    ROLE,
    "rbac.authorization.k8s.io",
    "v1",
    "roles",
    "role",
    "Role",
    [],
    [],
    true,
    false,
    None
);
grouped!(
    CLUSTER_ROLE,
    "rbac.authorization.k8s.io",
    "v1",
    "clusterroles",
    "clusterrole",
    "ClusterRole",
    [],
    [],
    false,
    false,
    None
);
grouped!(
    ROLE_BINDING,
    "rbac.authorization.k8s.io",
    "v1",
    "rolebindings",
    "rolebinding",
    "RoleBinding",
    [],
    [],
    true,
    false,
    None
);
grouped!(
    CLUSTER_ROLE_BINDING,
    "rbac.authorization.k8s.io",
    "v1",
    "clusterrolebindings",
    "clusterrolebinding",
    "ClusterRoleBinding",
    [],
    [],
    false,
    false,
    None
);

/// Verbs of a review kind: it is only ever created.
pub const CREATE_ONLY: &[&str] = &["create"];

macro_rules! review {
    ($ident:ident, $group:literal, $plural:literal, $singular:literal, $kind:literal, $namespaced:literal) => {
        pub static $ident: ResourceType = ResourceType {
            group: $group,
            version: "v1",
            plural: $plural,
            singular: $singular,
            kind: $kind,
            short_names: &[],
            categories: &[],
            namespaced: $namespaced,
            status_subresource: false,
            verbs: CREATE_ONLY,
            crd_yaml: None,
        };
    };
}
review!(
    TOKEN_REVIEW,
    "authentication.k8s.io",
    "tokenreviews",
    "tokenreview",
    "TokenReview",
    false
);
review!(
    SELF_SUBJECT_REVIEW,
    "authentication.k8s.io",
    "selfsubjectreviews",
    "selfsubjectreview",
    "SelfSubjectReview",
    false
);
review!(
    SUBJECT_ACCESS_REVIEW,
    "authorization.k8s.io",
    "subjectaccessreviews",
    "subjectaccessreview",
    "SubjectAccessReview",
    false
);
review!(
    SELF_SUBJECT_ACCESS_REVIEW,
    "authorization.k8s.io",
    "selfsubjectaccessreviews",
    "selfsubjectaccessreview",
    "SelfSubjectAccessReview",
    false
);
review!(
    LOCAL_SUBJECT_ACCESS_REVIEW,
    "authorization.k8s.io",
    "localsubjectaccessreviews",
    "localsubjectaccessreview",
    "LocalSubjectAccessReview",
    true
);

/// The review kinds: answered by `crate::auth`, never stored.
pub static REVIEW_TYPES: &[&ResourceType] = &[
    &TOKEN_REVIEW,
    &SELF_SUBJECT_REVIEW,
    &SUBJECT_ACCESS_REVIEW,
    &SELF_SUBJECT_ACCESS_REVIEW,
    &LOCAL_SUBJECT_ACCESS_REVIEW,
];

/// The RBAC group.
pub fn rbac_group() -> &'static str {
    RBAC
}

grouped!(
    ROUTE,
    "route.openshift.io",
    "v1",
    "routes",
    "route",
    "Route",
    [],
    [],
    true,
    true,
    Some(include_str!("../crds/route.openshift.io_routes.yaml"))
);

// KubeVirt's instancetypes and preferences, CDI's DataSource and the PersistentVolumes CDI-made claims bind
// (the lab's KubeVirt and CDI: `kubevirt/`, `cdi/`).
core!(
    PERSISTENT_VOLUME,
    "persistentvolumes",
    "persistentvolume",
    "PersistentVolume",
    ["pv"],
    [],
    false,
    true
);
grouped!(
    VIRTUAL_MACHINE_INSTANCETYPE,
    "instancetype.kubevirt.io",
    "v1beta1",
    "virtualmachineinstancetypes",
    "virtualmachineinstancetype",
    "VirtualMachineInstancetype",
    ["vminstancetype", "vminstancetypes", "vmf", "vmfs"],
    [],
    true,
    false,
    None
);
grouped!(
    VIRTUAL_MACHINE_CLUSTER_INSTANCETYPE,
    "instancetype.kubevirt.io",
    "v1beta1",
    "virtualmachineclusterinstancetypes",
    "virtualmachineclusterinstancetype",
    "VirtualMachineClusterInstancetype",
    [
        "vmclusterinstancetype",
        "vmclusterinstancetypes",
        "vmcf",
        "vmcfs"
    ],
    [],
    false,
    false,
    None
);
grouped!(
    VIRTUAL_MACHINE_PREFERENCE,
    "instancetype.kubevirt.io",
    "v1beta1",
    "virtualmachinepreferences",
    "virtualmachinepreference",
    "VirtualMachinePreference",
    ["vmpref", "vmprefs", "vmp", "vmps"],
    [],
    true,
    false,
    None
);
grouped!(
    VIRTUAL_MACHINE_CLUSTER_PREFERENCE,
    "instancetype.kubevirt.io",
    "v1beta1",
    "virtualmachineclusterpreferences",
    "virtualmachineclusterpreference",
    "VirtualMachineClusterPreference",
    ["vmcp", "vmcps", "vmclusterpref", "vmclusterprefs"],
    [],
    false,
    false,
    None
);
grouped!(
    DATA_SOURCE,
    "cdi.kubevirt.io",
    "v1beta1",
    "datasources",
    "datasource",
    "DataSource",
    ["das"],
    ["all"],
    true,
    true,
    None
);

/// Every resource type the lab serves, in discovery order.
pub static RESOURCE_TYPES: &[&ResourceType] = &[
    &NAMESPACE,
    &SECRET,
    &CONFIG_MAP,
    &PERSISTENT_VOLUME_CLAIM,
    &POD,
    &EVENT,
    &NODE,
    &SERVICE,
    &STORAGE_CLASS,
    &JOB,
    &PROVIDER,
    &STORAGE_MAP,
    &NETWORK_MAP,
    &PLAN,
    &MIGRATION,
    &HOOK,
    &HOST,
    &FORKLIFT_CONTROLLER,
    &XCOPY_POPULATOR,
    &OVA_PROVIDER_SERVER,
    &VIRTUAL_MACHINE,
    &VIRTUAL_MACHINE_INSTANCE,
    &DATA_VOLUME,
    &NETWORK_ATTACHMENT_DEFINITION,
    &SUBSCRIPTION,
    &CLUSTER_SERVICE_VERSION,
    &DEPLOYMENT,
    &CUSTOM_RESOURCE_DEFINITION,
    &SERVICE_ACCOUNT,
    &ROLE,
    &CLUSTER_ROLE,
    &ROLE_BINDING,
    &CLUSTER_ROLE_BINDING,
    &TOKEN_REVIEW,
    &SELF_SUBJECT_REVIEW,
    &SUBJECT_ACCESS_REVIEW,
    &SELF_SUBJECT_ACCESS_REVIEW,
    &LOCAL_SUBJECT_ACCESS_REVIEW,
    &ROUTE,
    &PERSISTENT_VOLUME,
    &VIRTUAL_MACHINE_INSTANCETYPE,
    &VIRTUAL_MACHINE_CLUSTER_INSTANCETYPE,
    &VIRTUAL_MACHINE_PREFERENCE,
    &VIRTUAL_MACHINE_CLUSTER_PREFERENCE,
    &DATA_SOURCE,
];

/// The group of the Forklift kinds.
pub fn forklift_group() -> &'static str {
    FORKLIFT
}

/// The resource type served at `group/version/plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCE_TYPES
        .iter()
        .copied()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource type of an `apiVersion` + `kind` pair.
pub fn find_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCE_TYPES
        .iter()
        .copied()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// The served group/versions, core first, in a stable order.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCE_TYPES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

fn crd_table() -> &'static HashMap<&'static str, Arc<CrdInfo>> {
    static TABLE: OnceLock<HashMap<&'static str, Arc<CrdInfo>>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = HashMap::new();
        for r in RESOURCE_TYPES {
            if let Some(yaml) = r.crd_yaml {
                // The YAMLs are embedded at build time and covered by tests, so a parse failure is a build defect.
                match parse_crd(yaml, r.version) {
                    Ok(info) => {
                        table.insert(r.plural, Arc::new(info));
                    }
                    Err(e) => tracing::error!(plural = r.plural, error = %e, "embedded CRD does not parse"),
                }
            }
        }
        table
    })
}

/// Parses a CRD document and picks the served version's schema and printer columns.
pub fn parse_crd(yaml: &str, version: &str) -> Result<CrdInfo, String> {
    let doc: Value = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
    let versions = doc
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .ok_or("CRD has no spec.versions")?;
    let served = versions
        .iter()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
        .ok_or_else(|| format!("CRD has no version {version}"))?;
    let schema = served
        .pointer("/schema/openAPIV3Schema")
        .cloned()
        .ok_or("CRD version has no openAPIV3Schema")?;
    let printer_columns = served
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .map(|c| PrinterColumn {
                    name: str_field(c, "name"),
                    column_type: str_field(c, "type"),
                    json_path: str_field(c, "jsonPath"),
                    description: str_field(c, "description"),
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(CrdInfo {
        schema,
        printer_columns,
    })
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_crd_parses_and_matches_its_registration() {
        for r in RESOURCE_TYPES.iter().filter(|r| r.crd_yaml.is_some()) {
            let yaml = r.crd_yaml.unwrap_or_default();
            let doc: Value = serde_saphyr::from_str(yaml).unwrap();
            assert_eq!(
                doc.pointer("/spec/names/kind").and_then(Value::as_str),
                Some(r.kind)
            );
            assert_eq!(
                doc.pointer("/spec/names/plural").and_then(Value::as_str),
                Some(r.plural)
            );
            assert_eq!(
                doc.pointer("/spec/group").and_then(Value::as_str),
                Some(r.group)
            );
            let info = r.crd().expect("crd info");
            assert_eq!(
                info.schema.get("type").and_then(Value::as_str),
                Some("object")
            );
        }
        let plan = PLAN.crd().unwrap();
        assert_eq!(plan.printer_columns.len(), 5);
        assert_eq!(plan.printer_columns[0].name, "READY");
    }

    #[test]
    fn lookups_work() {
        assert_eq!(find("", "v1", "secrets").map(|r| r.kind), Some("Secret"));
        assert_eq!(
            find_kind("forklift.konveyor.io/v1beta1", "Plan").map(|r| r.plural),
            Some("plans")
        );
        assert_eq!(group_versions()[0], ("", "v1"));
        let names: std::collections::HashSet<_> =
            RESOURCE_TYPES.iter().map(|r| (r.group, r.plural)).collect();
        assert_eq!(names.len(), RESOURCE_TYPES.len());
    }
}
