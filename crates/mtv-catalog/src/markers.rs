//! The pytest markers a catalog file may use: the Python suite's registered markers that matter here.
//! A marker outside this list is a load error, as `--strict-markers` makes it in pytest.

/// `(name, description)` of every registered marker.
pub const KNOWN_MARKERS: &[(&str, &str)] = &[
    ("tier0", "Core functionality tests (smoke tests)"),
    ("tier1", "Extended functionality tests"),
    (
        "remote",
        "Remote cluster migration tests (need remote_ocp_cluster)",
    ),
    ("warm", "Warm migration tests"),
    ("copyoffload", "Copy-offload (XCOPY) tests"),
    (
        "copyoffload_sanity",
        "The short copy-offload slice run on every storage vendor",
    ),
    (
        "copyoffload_snapshots",
        "Copy-offload tests that migrate VMs with source snapshots",
    ),
    (
        "incremental",
        "Steps depend on each other: after a failed step the rest of the class is xfailed",
    ),
    (
        "min_mtv_version",
        "Requires a minimum MTV version (set with `min_mtv_version: \"X.Y.Z\"`)",
    ),
    (
        "vsphere",
        "Meant for VMware vSphere sources (documentation and -m only)",
    ),
    (
        "rhv",
        "Meant for RHV / oVirt sources (documentation and -m only)",
    ),
    (
        "openstack",
        "Meant for OpenStack sources (documentation and -m only)",
    ),
    (
        "openshift",
        "Meant for OpenShift sources (documentation and -m only)",
    ),
    (
        "esxi",
        "Meant for standalone ESXi endpoints (documentation and -m only)",
    ),
    (
        "hyperv",
        "Meant for Hyper-V sources (documentation and -m only)",
    ),
    ("ova", "Meant for OVA sources (documentation and -m only)"),
];

/// Provider markers document where a scenario is meant to run; they never skip anything.
pub const PROVIDER_MARKERS: &[&str] = &[
    "vsphere",
    "rhv",
    "openstack",
    "openshift",
    "esxi",
    "hyperv",
    "ova",
];

/// The names of [`KNOWN_MARKERS`], in order (for `MarkerExpr::parse`).
pub fn known_marker_names() -> Vec<&'static str> {
    KNOWN_MARKERS.iter().map(|(name, _)| *name).collect()
}

/// The description of a registered marker.
pub fn marker_description(name: &str) -> Option<&'static str> {
    KNOWN_MARKERS
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, description)| *description)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_provider_markers_registered() {
        let names = known_marker_names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        for provider in PROVIDER_MARKERS {
            assert!(names.contains(provider), "{provider}");
        }
        assert!(marker_description("tier0").is_some());
        assert!(marker_description("cold").is_none());
    }
}
