//! What a run may do on the cluster, in one place: `doctor` asks the API server about each line
//! (SelfSubjectAccessReview) and `job` grants exactly these to its ServiceAccount.
//!
//! Cluster-wide, because a run creates its own namespaces (the session's, the source VMs', a
//! scenario's `vm_target_namespace`) and works in them. Lines a selection does not need (node
//! labels for node placement, the ForkliftController for warm migrations, KubeVirt's start/stop for
//! OpenShift sources) are asked only when a selected scenario needs them.

/// When a run needs a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Always,
    /// Warm scenarios lease the ForkliftController's `controller_precopy_interval`.
    Warm,
    /// `target_node_selector` scenarios label a worker node.
    NodePlacement,
    /// An OpenShift source: KubeVirt VMs the run starts and stops.
    OpenShiftSource,
}

/// What the selected scenarios need, for [`Need`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    pub warm: bool,
    pub node_placement: bool,
    pub openshift_source: bool,
}

impl Needs {
    pub fn wants(&self, need: Need) -> bool {
        match need {
            Need::Always => true,
            Need::Warm => self.warm,
            Need::NodePlacement => self.node_placement,
            Need::OpenShiftSource => self.openshift_source,
        }
    }

    /// Everything: what a Job, whose selection is decided when it runs, must be granted.
    pub fn all() -> Needs {
        Needs {
            warm: true,
            node_placement: true,
            openshift_source: true,
        }
    }
}

/// Verbs on one resource of one API group.
#[derive(Debug, Clone, Copy)]
pub struct Permission {
    pub group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    pub need: Need,
}

impl Permission {
    /// `plans.forklift.konveyor.io`, `namespaces`: as kubectl names a resource.
    pub fn resource_name(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

const CRUD: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];
const READ: &[&str] = &["get", "list", "watch"];
const FORKLIFT: &str = "forklift.konveyor.io";

/// Every permission a run may use; see the module doc.
pub const RUN_PERMISSIONS: &[Permission] = &[
    Permission {
        group: "",
        resource: "namespaces",
        verbs: CRUD,
        need: Need::Always,
    },
    Permission {
        group: "",
        resource: "secrets",
        verbs: CRUD,
        need: Need::Always,
    },
    Permission {
        group: "",
        resource: "configmaps",
        verbs: CRUD,
        need: Need::Always,
    },
    Permission {
        group: "",
        resource: "persistentvolumeclaims",
        verbs: CRUD,
        need: Need::Always,
    },
    Permission {
        group: "",
        resource: "pods",
        verbs: READ,
        need: Need::Always,
    },
    Permission {
        group: "",
        resource: "pods/log",
        verbs: &["get"],
        need: Need::Always,
    },
    Permission {
        group: "",
        resource: "events",
        verbs: &["list"],
        need: Need::Always,
    },
    Permission {
        group: "",
        resource: "nodes",
        verbs: &["get", "list"],
        need: Need::Always,
    },
    Permission {
        group: "",
        resource: "nodes",
        verbs: &["patch"],
        need: Need::NodePlacement,
    },
    Permission {
        group: "storage.k8s.io",
        resource: "storageclasses",
        verbs: &["get", "list"],
        need: Need::Always,
    },
    Permission {
        group: "operators.coreos.com",
        resource: "clusterserviceversions",
        verbs: &["list"],
        need: Need::Always,
    },
    Permission {
        group: "route.openshift.io",
        resource: "routes",
        verbs: &["get", "list"],
        need: Need::Always,
    },
    Permission {
        group: FORKLIFT,
        resource: "providers",
        verbs: CRUD,
        need: Need::Always,
    },
    Permission {
        group: FORKLIFT,
        resource: "storagemaps",
        verbs: CRUD,
        need: Need::Always,
    },
    Permission {
        group: FORKLIFT,
        resource: "networkmaps",
        verbs: CRUD,
        need: Need::Always,
    },
    Permission {
        group: FORKLIFT,
        resource: "plans",
        verbs: CRUD,
        need: Need::Always,
    },
    Permission {
        group: FORKLIFT,
        resource: "migrations",
        verbs: CRUD,
        need: Need::Always,
    },
    Permission {
        group: FORKLIFT,
        resource: "hooks",
        verbs: CRUD,
        need: Need::Always,
    },
    Permission {
        group: FORKLIFT,
        resource: "forkliftcontrollers",
        verbs: &["get", "list"],
        need: Need::Always,
    },
    Permission {
        group: FORKLIFT,
        resource: "forkliftcontrollers",
        verbs: &["patch"],
        need: Need::Warm,
    },
    Permission {
        group: "k8s.cni.cncf.io",
        resource: "network-attachment-definitions",
        verbs: CRUD,
        need: Need::Always,
    },
    Permission {
        group: "kubevirt.io",
        resource: "virtualmachines",
        verbs: CRUD,
        need: Need::Always,
    },
    Permission {
        group: "kubevirt.io",
        resource: "virtualmachineinstances",
        verbs: READ,
        need: Need::Always,
    },
    Permission {
        group: "subresources.kubevirt.io",
        resource: "virtualmachines/start",
        verbs: &["update"],
        need: Need::Always,
    },
    Permission {
        group: "subresources.kubevirt.io",
        resource: "virtualmachines/stop",
        verbs: &["update"],
        need: Need::Always,
    },
    Permission {
        // The guest checks reach a migrated VM's SSH port through KubeVirt's `portforward`
        // (a GET that upgrades to a stream).
        group: "subresources.kubevirt.io",
        resource: "virtualmachineinstances/portforward",
        verbs: &["get"],
        need: Need::Always,
    },
    Permission {
        group: "cdi.kubevirt.io",
        resource: "datavolumes",
        verbs: CRUD,
        need: Need::OpenShiftSource,
    },
];

/// The permissions `needs` asks for, one `(verb, permission)` each.
pub fn needed(needs: &Needs) -> impl Iterator<Item = (&'static str, &'static Permission)> + '_ {
    RUN_PERMISSIONS
        .iter()
        .filter(|p| needs.wants(p.need))
        .flat_map(|p| p.verbs.iter().map(move |verb| (*verb, p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_selection_needs_plans_and_only_some_need_node_labels() {
        let plain: Vec<String> = needed(&Needs::default())
            .map(|(verb, p)| format!("{verb} {}", p.resource_name()))
            .collect();
        assert!(plain.contains(&"create plans.forklift.konveyor.io".to_string()));
        assert!(!plain.contains(&"patch nodes".to_string()));
        assert!(needed(&Needs::all()).any(|(verb, p)| verb == "patch" && p.resource == "nodes"));
    }
}
