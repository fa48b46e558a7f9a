//! The one table of what a scenario checks and when: every check of every step, with the condition
//! under which it applies. The runner runs what this table says applies, `plan` lists it, and the
//! HTML report shows the checks the run reported, so the three cannot drift apart.
//!
//! The steps themselves are defined once too, in [`mtv_catalog::steps::steps_for`]; the runner and the
//! preview both walk that list.
//!
//! # Adding a check
//! One row in [`CHECKS`]: its name (the Python suite's, where it has one), the step it belongs to, a
//! line saying what it verifies, its condition and its body.
//! - A check of one migrated VM that only compares objects is a [`Body::Vm`] function of
//!   [`crate::validate`] (`fn(&Expected, &Observed, &mut Report)`); the runner calls it for every VM
//!   the condition admits, and nothing else needs an edit.
//! - A check that talks to something (the guest over SSH, a source's API, pod logs) is a
//!   [`Body::Step`]: the step's own code runs it and reports it with [`ChecksRan::ran`] under the
//!   row's name. Its row still decides whether it runs: ask [`applies`] or [`vm_checks`] first.
//!
//! Conditions read only what is known before a run starts ([`Facts`]: the provider type, the
//! scenario's configuration, the VM's entry and the step's expectation), so `plan` can evaluate them
//! exactly as the run does.

use mtv_api::ProviderType;
use mtv_catalog::catalog::vm_plan_key;
use mtv_catalog::model::{PlanConfig, Power, TargetPowerState, VmConfig};
use mtv_catalog::steps::{Step, StepExpectation, StepKind};
use serde::Serialize;

use crate::events::CheckRun;
use crate::validate::{self, Expected, Observed, Report};

/// What a condition may read: everything a scenario says before it runs.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub provider_type: ProviderType,
    pub config: &'a PlanConfig,
    pub expectation: StepExpectation,
    /// The VM, for checks of one VM; `None` for checks of the whole scenario.
    pub vm: Option<&'a VmConfig>,
    /// The profile names a guest account (`guest_vm_linux_user` or `guest_vm_win_user`), so the
    /// guests can be entered over SSH.
    pub guest_account: bool,
}

impl<'a> Facts<'a> {
    pub fn scenario(provider_type: ProviderType, config: &'a PlanConfig, step: Step) -> Self {
        Facts {
            provider_type,
            config,
            expectation: step.expectation,
            vm: None,
            guest_account: false,
        }
    }

    /// Whether the profile names a guest account (the guest checks need one).
    pub fn with_guest_account(self, guest_account: bool) -> Self {
        Facts {
            guest_account,
            ..self
        }
    }

    pub fn for_vm(self, vm: &'a VmConfig) -> Self {
        Facts {
            vm: Some(vm),
            ..self
        }
    }

    fn vm(&self) -> Option<&'a VmConfig> {
        self.vm
    }

    /// The power state the migrated VM must have: the VM's `target_power_state`, else the scenario's,
    /// else the source's power; `None` when nothing determines it (`auto` included).
    pub fn power(&self) -> Option<bool> {
        let target = |power: Option<TargetPowerState>| match power? {
            TargetPowerState::On => Some(true),
            TargetPowerState::Off => Some(false),
            TargetPowerState::Auto => None,
        };
        let vm = self.vm()?;
        target(vm.target_power_state)
            .or_else(|| target(self.config.target_power_state))
            .or_else(|| vm.source_vm_power.map(|p| p == Power::On))
    }

    /// `pvc_name_template` for this provider and whether it is a `generateName` prefix; copy-offload
    /// Plans name their PVCs themselves, so the template is not theirs to check.
    pub fn pvc_name_template(&self) -> Option<(&'a str, bool)> {
        let template = self
            .config
            .pvc_name_template
            .as_ref()?
            .for_provider(self.provider_type)?;
        if scenario_offloads(self.config) {
            return None;
        }
        let generate = self
            .config
            .pvc_name_template_use_generate_name
            .unwrap_or(self.provider_type != ProviderType::Openshift);
        Some((template, generate))
    }

    fn is(&self, provider_type: ProviderType) -> bool {
        self.provider_type == provider_type
    }
}

/// Whether any Plan of the scenario offloads its copy (a concurrent Plan may say otherwise than the
/// scenario).
pub fn scenario_offloads(config: &PlanConfig) -> bool {
    if config.concurrent_plans.is_empty() {
        config.copyoffload
    } else {
        config
            .concurrent_plans
            .iter()
            .any(|plan| plan.copyoffload.unwrap_or(config.copyoffload))
    }
}

/// Whether a check runs once for the scenario or once per VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Scenario,
    Vm,
}

/// Who runs a check.
#[derive(Clone, Copy)]
pub enum Body {
    /// A pure comparison of one migrated VM with its source ([`crate::validate`]).
    Vm(fn(&Expected<'_>, &Observed<'_>, &mut Report)),
    /// The step's own code (it talks to the cluster, the inventory, the source or the guest).
    Step,
}

/// `Ok` when the check applies, else why not.
pub type Condition = fn(&Facts<'_>) -> Result<(), String>;

/// One row of the table.
#[derive(Clone, Copy)]
pub struct Check {
    pub name: &'static str,
    pub step: StepKind,
    pub scope: Scope,
    /// What it verifies, in a line (shown by `plan` and the HTML report).
    pub summary: &'static str,
    pub condition: Condition,
    pub body: Body,
    /// The runner must read the migrated VM's running VMI for it (starting the VM if it is off).
    pub needs_vmi: bool,
    /// The runner must read the source VM again after the migration for it.
    pub needs_source_now: bool,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

fn always(_: &Facts<'_>) -> Result<(), String> {
    Ok(())
}

fn unless_ova(what: &'static str) -> impl Fn(&Facts<'_>) -> Result<(), String> {
    move |facts| {
        if facts.is(ProviderType::Ova) {
            Err(format!("OVA sources are not compared on {what}"))
        } else {
            Ok(())
        }
    }
}

fn only_on(provider_type: ProviderType, what: &str, facts: &Facts<'_>) -> Result<(), String> {
    if facts.is(provider_type) {
        Ok(())
    } else {
        Err(format!(
            "{what} for {provider_type} sources only ({} source)",
            facts.provider_type
        ))
    }
}

fn when(holds: bool, otherwise: &str) -> Result<(), String> {
    if holds {
        Ok(())
    } else {
        Err(otherwise.to_string())
    }
}

/// Static IPs are compared when the scenario preserves them on a vSphere source.
fn static_ips_apply(facts: &Facts<'_>) -> Result<(), String> {
    when(
        facts.config.preserve_static_ips == Some(true),
        "preserve_static_ips is not set",
    )?;
    only_on(ProviderType::Vsphere, "static IPs are compared", facts)
}

/// A VM-scoped row (the common case).
const fn vm_row(
    name: &'static str,
    summary: &'static str,
    condition: Condition,
    body: fn(&Expected<'_>, &Observed<'_>, &mut Report),
) -> Check {
    Check {
        name,
        step: StepKind::CheckVms,
        scope: Scope::Vm,
        summary,
        condition,
        body: Body::Vm(body),
        needs_vmi: false,
        needs_source_now: false,
    }
}

/// A row whose step's own code runs the check.
const fn step_row(
    name: &'static str,
    step: StepKind,
    scope: Scope,
    summary: &'static str,
    condition: Condition,
) -> Check {
    Check {
        name,
        step,
        scope,
        summary,
        condition,
        body: Body::Step,
        needs_vmi: false,
        needs_source_now: false,
    }
}

const fn reads_vmi(mut check: Check) -> Check {
    check.needs_vmi = true;
    check
}

const fn rereads_source(mut check: Check) -> Check {
    check.needs_source_now = true;
    check
}

/// Every check of every step, in the order they run and are listed.
pub const CHECKS: &[Check] = &[
    step_row(
        "check_migration_outcome",
        StepKind::MigrateVms,
        Scope::Scenario,
        "each Plan ends as expected (Succeeded, or Failed where and how the scenario says)",
        always,
    ),
    step_row(
        "check_precopy_before_cutover",
        StepKind::MigrateVms,
        Scope::Scenario,
        "every VM of a warm Plan had at least one precopy before the cutover",
        |f| {
            when(
                f.config.warm_migration && f.expectation == StepExpectation::Succeed,
                "not a warm migration that must succeed",
            )
        },
    ),
    step_row(
        "check_plans_ran_together",
        StepKind::MigrateVms,
        Scope::Scenario,
        "the scenario's Plans ran at the same time (each started before any other completed)",
        |f| {
            when(
                f.config.concurrent_plans.len() > 1,
                "the scenario has one Plan",
            )
        },
    ),
    step_row(
        "check_xcopy_used",
        StepKind::CheckXcopyUsed,
        Scope::Scenario,
        "populate pod logs: last xcopyUsed per datastore (1 on XCOPY datastores, 0 on the others)",
        always,
    ),
    step_row(
        "check_ssl_configuration",
        StepKind::CheckVms,
        Scope::Scenario,
        "the source Provider's Secret says insecureSkipVerify as the profile does",
        |f| {
            when(
                !matches!(f.provider_type, ProviderType::Ova | ProviderType::Openshift),
                "OVA and OpenShift sources have no TLS choice to check",
            )
        },
    ),
    vm_row(
        "check_vm_name",
        "the VM's name: the source's, sanitised, or the targetName the suite chose",
        always,
        validate::check_vm_name,
    ),
    vm_row(
        "check_vm_namespace",
        "the VM is in the target namespace",
        always,
        validate::check_vm_namespace,
    ),
    vm_row(
        "check_vms_power_state",
        "power state as target_power_state or the source's power says",
        |f| {
            when(
                f.power().is_some(),
                "neither target_power_state nor source_vm_power is set",
            )
        },
        validate::check_power_state,
    ),
    vm_row(
        "check_cpu",
        "CPU sockets and cores",
        |f| unless_ova("CPU")(f),
        validate::check_cpu,
    ),
    vm_row(
        "check_memory",
        "memory",
        |f| unless_ova("memory")(f),
        validate::check_memory,
    ),
    vm_row(
        "check_storage",
        "disk count, sizes, storage class, access and volume mode of every PVC",
        always,
        validate::check_storage,
    ),
    vm_row(
        "check_pvc_names",
        "PVC names from pvc_name_template",
        |f| match f.pvc_name_template() {
            None => Err("no pvc_name_template (or a copy-offload Plan names its PVCs)".into()),
            Some((template, _))
                if !f.is(ProviderType::Vsphere)
                    && (template.contains(".FileName") || template.contains(".DiskIndex")) =>
            {
                Err(format!(
                    "{{{{.FileName}}}} and {{{{.DiskIndex}}}} are checked on vSphere only ({} source)",
                    f.provider_type
                ))
            }
            Some(_) => Ok(()),
        },
        validate::check_pvc_names,
    ),
    vm_row(
        "check_network",
        "every NIC by MAC on the network the NetworkMap gives it",
        |f| unless_ova("networks")(f),
        validate::check_network,
    ),
    vm_row(
        "check_disconnected_nic_state",
        "NICs the source starts disconnected are down",
        always,
        validate::check_disconnected_nics,
    ),
    vm_row(
        "check_vm_labels",
        "target labels",
        |f| when(f.config.target_labels.is_some(), "no target_labels"),
        validate::check_labels,
    ),
    reads_vmi(vm_row(
        "check_vm_node_placement",
        "node selector, and the VM runs on the labelled node",
        |f| {
            when(
                f.config.target_node_selector.is_some(),
                "no target_node_selector",
            )
        },
        validate::check_node_placement,
    )),
    vm_row(
        "check_vm_affinity",
        "affinity (deep equality)",
        |f| when(f.config.target_affinity.is_some(), "no target_affinity"),
        validate::check_affinity,
    ),
    reads_vmi(vm_row(
        "check_guest_agent",
        "the guest agent is connected",
        |f| {
            when(
                f.vm().is_some_and(|vm| vm.guest_agent),
                "guest_agent is not set",
            )
        },
        validate::check_guest_agent,
    )),
    reads_vmi(vm_row(
        "check_static_ip_preservation",
        "the source's static IPs on the VMI's interfaces and, with a guest account, in the guest with masks and gateways",
        |f| {
            static_ips_apply(f)?;
            when(
                f.power() == Some(true),
                "the migrated VM is not to run (its guest's IPs cannot be read)",
            )
        },
        validate::check_static_ips,
    )),
    vm_row(
        "check_cpu_features",
        "nested virtualization: vmx/svm policy optional when enabled, disable when disabled",
        |f| {
            when(
                f.config.enable_nested_virtualization.is_some(),
                "enable_nested_virtualization is not set",
            )?;
            when(
                !f.is(ProviderType::Openshift),
                "an OpenShift source keeps its own CPU features",
            )
        },
        validate::check_cpu_features,
    ),
    vm_row(
        "verify_rdm_disk_bus_types",
        "RDM disks are LUNs on the SCSI bus",
        |f| {
            when(
                f.config.rdm_as_lun == Some(true)
                    && f.vm()
                        .is_some_and(|vm| vm.add_disks.iter().any(|d| d.rdm_type.is_some())),
                "no RDM disk migrated with rdm_as_lun",
            )
        },
        validate::check_rdm_luns,
    ),
    vm_row(
        "check_serial_preservation",
        "the firmware serial is the source's BIOS UUID",
        |f| only_on(ProviderType::Vsphere, "serials are compared", f),
        validate::check_serial,
    ),
    vm_row(
        "check_boot_configuration",
        "boot firmware (BIOS or EFI) as the source's",
        |f| only_on(ProviderType::Vsphere, "boot firmware is compared", f),
        validate::check_boot,
    ),
    rereads_source(vm_row(
        "check_snapshots",
        "the source VM's snapshots are unchanged by the migration",
        |f| {
            only_on(ProviderType::Vsphere, "snapshots are compared", f)?;
            when(
                f.vm().is_some_and(|vm| vm.snapshots.unwrap_or(0) > 0),
                "the VM has no snapshots",
            )
        },
        validate::check_snapshots,
    )),
    rereads_source(vm_row(
        "check_false_vm_power_off",
        "no hard power-off (USER_STOP_VM) of the source during the migration",
        |f| only_on(ProviderType::Ovirt, "power-off events are checked", f),
        validate::check_false_power_off,
    )),
    step_row(
        "check_ssh_connectivity",
        StepKind::CheckVms,
        Scope::Vm,
        "an SSH login into the migrated guest (port-forward to the VMI's port 22, the profile's account)",
        |f| {
            when(
                f.guest_account,
                "the profile has no guest account (guest_vm_linux_user, guest_vm_win_user)",
            )
        },
    ),
    step_row(
        "check_nic_name_preservation",
        StepKind::CheckVms,
        Scope::Vm,
        "inside the guest: each source NIC's guest name on the interface with its MAC",
        |f| {
            only_on(ProviderType::Vsphere, "guest NIC names are known", f)?;
            when(
                f.guest_account,
                "the profile has no guest account to look inside the guest",
            )
        },
    ),
    step_row(
        "verify_data_integrity",
        StepKind::CheckDataIntegrity,
        Scope::Vm,
        "the data marker written before the snapshots is intact in the migrated guest (read over SSH)",
        always,
    ),
];

/// Whether a check applies at all to a step of this kind and expectation (before looking at VMs).
fn step_runs_checks(step: Step) -> bool {
    // A validation skipped because nothing was migrated checks nothing.
    step.expectation != StepExpectation::SkippedAfterPreHookFailure
}

/// The row of a check by name.
pub fn check(name: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.name == name)
}

/// Whether the scenario-scoped check `name` applies to this step of the scenario.
pub fn applies(name: &str, facts: &Facts<'_>) -> bool {
    check(name).is_some_and(|c| c.scope == Scope::Scenario && (c.condition)(facts).is_ok())
}

/// The scenario-scoped checks of a step that apply.
pub fn scenario_checks(step: Step, facts: &Facts<'_>) -> Vec<&'static Check> {
    if !step_runs_checks(step) {
        return Vec::new();
    }
    CHECKS
        .iter()
        .filter(|c| c.step == step.kind && c.scope == Scope::Scenario)
        .filter(|c| (c.condition)(facts).is_ok())
        .collect()
}

/// The VM-scoped checks of a step for one VM.
#[derive(Debug, Default, Clone)]
pub struct VmChecks {
    pub applying: Vec<&'static Check>,
    /// The others, with the table's reason.
    pub not_applying: Vec<(&'static str, String)>,
}

impl VmChecks {
    pub fn needs_vmi(&self) -> bool {
        self.applying.iter().any(|c| c.needs_vmi)
    }

    pub fn needs_source_now(&self) -> bool {
        self.applying.iter().any(|c| c.needs_source_now)
    }

    pub fn includes(&self, name: &str) -> bool {
        self.applying.iter().any(|c| c.name == name)
    }
}

/// The VM-scoped checks of a step for one VM (`facts` made with [`Facts::for_vm`]).
pub fn vm_checks(step: Step, facts: &Facts<'_>) -> VmChecks {
    let mut checks = VmChecks::default();
    if !step_runs_checks(step) {
        return checks;
    }
    for check in CHECKS
        .iter()
        .filter(|c| c.step == step.kind && c.scope == Scope::Vm)
    {
        match (check.condition)(facts) {
            Ok(()) => checks.applying.push(check),
            Err(reason) => checks.not_applying.push((check.name, reason)),
        }
    }
    checks
}

/// A check `plan` lists: what it verifies and for which VMs (by catalog key; none for the scenario).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedCheck {
    pub check: &'static str,
    pub summary: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vms: Vec<String>,
}

impl std::fmt::Display for PlannedCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.summary)?;
        if !self.vms.is_empty() {
            write!(f, " [{}]", self.vms.join(", "))?;
        }
        Ok(())
    }
}

/// The checks a step of a scenario will run, in table order: what `plan` shows.
pub fn planned(
    provider_type: ProviderType,
    guest_account: bool,
    config: &PlanConfig,
    step: Step,
) -> Vec<PlannedCheck> {
    let facts = Facts::scenario(provider_type, config, step).with_guest_account(guest_account);
    let mut planned: Vec<PlannedCheck> = Vec::new();
    if !step_runs_checks(step) {
        return planned;
    }
    for check in CHECKS.iter().filter(|c| c.step == step.kind) {
        let vms: Vec<String> = match check.scope {
            Scope::Scenario => {
                if (check.condition)(&facts).is_err() {
                    continue;
                }
                Vec::new()
            }
            Scope::Vm => {
                let vms: Vec<String> = config
                    .virtual_machines
                    .iter()
                    .filter(|vm| (check.condition)(&facts.for_vm(vm)).is_ok())
                    .map(|vm| vm_plan_key(vm).to_string())
                    .collect();
                if vms.is_empty() {
                    continue;
                }
                vms
            }
        };
        planned.push(PlannedCheck {
            check: check.name,
            summary: check.summary,
            vms,
        });
    }
    planned
}

/// The checks a step ran, gathered as it runs, in table order: what the run reports.
#[derive(Debug, Default, Clone)]
pub struct ChecksRan {
    ran: Vec<(&'static str, Option<String>)>,
}

impl ChecksRan {
    /// Records that a check ran (for one VM, by catalog key, or for the scenario).
    pub fn ran(&mut self, check: &'static str, vm: Option<&str>) {
        let entry = (check, vm.map(str::to_string));
        if !self.ran.contains(&entry) {
            self.ran.push(entry);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ran.is_empty()
    }

    /// One entry per check, with the VMs it ran for, in table order.
    pub fn into_runs(self) -> Vec<CheckRun> {
        CHECKS
            .iter()
            .filter_map(|check| {
                let mut ran = self.ran.iter().filter(|(name, _)| *name == check.name);
                let first = ran.next()?;
                let vms = std::iter::once(first)
                    .chain(ran)
                    .filter_map(|(_, vm)| vm.clone())
                    .collect();
                Some(CheckRun {
                    check: check.name.to_string(),
                    vms,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mtv_catalog::model::{AddDisk, ConcurrentPlan, PvcNameTemplate, RdmType};
    use mtv_catalog::steps::steps_for;

    use super::*;

    fn vm(name: &str) -> VmConfig {
        VmConfig {
            name: name.into(),
            ..VmConfig::default()
        }
    }

    fn names(provider_type: ProviderType, config: &PlanConfig, kind: StepKind) -> Vec<String> {
        let step = steps_for(config)
            .into_iter()
            .find(|s| s.kind == kind)
            .expect("the step");
        planned(provider_type, true, config, step)
            .into_iter()
            .map(|c| c.check.to_string())
            .collect()
    }

    fn has(provider_type: ProviderType, config: &PlanConfig, check: &str) -> bool {
        names(provider_type, config, StepKind::CheckVms)
            .iter()
            .any(|c| c == check)
    }

    #[test]
    fn every_name_is_in_the_table_once() {
        for check in CHECKS {
            assert_eq!(
                CHECKS.iter().filter(|c| c.name == check.name).count(),
                1,
                "{}",
                check.name
            );
        }
    }

    #[test]
    fn nested_virtualization_is_checked_when_enabled_and_when_disabled() {
        for nested in [true, false] {
            let config = PlanConfig {
                virtual_machines: vec![vm("a")],
                enable_nested_virtualization: Some(nested),
                ..PlanConfig::default()
            };
            assert!(has(ProviderType::Vsphere, &config, "check_cpu_features"));
            assert!(!has(ProviderType::Openshift, &config, "check_cpu_features"));
        }
        let unset = PlanConfig {
            virtual_machines: vec![vm("a")],
            ..PlanConfig::default()
        };
        assert!(!has(ProviderType::Vsphere, &unset, "check_cpu_features"));
    }

    #[test]
    fn networks_are_checked_for_openshift_sources_and_not_for_ova() {
        let config = PlanConfig {
            virtual_machines: vec![vm("a")],
            ..PlanConfig::default()
        };
        assert!(has(ProviderType::Openshift, &config, "check_network"));
        assert!(has(ProviderType::Vsphere, &config, "check_network"));
        assert!(!has(ProviderType::Ova, &config, "check_network"));
        assert!(!has(ProviderType::Ova, &config, "check_cpu"));
        assert!(has(
            ProviderType::Ovirt,
            &config,
            "check_false_vm_power_off"
        ));
        assert!(!has(
            ProviderType::Vsphere,
            &config,
            "check_false_vm_power_off"
        ));
        assert!(has(
            ProviderType::Openstack,
            &config,
            "check_ssl_configuration"
        ));
        assert!(!has(ProviderType::Ova, &config, "check_ssl_configuration"));
    }

    #[test]
    fn warm_and_concurrent_plans_add_migration_checks() {
        let mut config = PlanConfig {
            virtual_machines: vec![vm("a"), vm("b")],
            ..PlanConfig::default()
        };
        let migrate = |c: &PlanConfig| names(ProviderType::Vsphere, c, StepKind::MigrateVms);
        assert_eq!(migrate(&config), ["check_migration_outcome"]);
        config.warm_migration = true;
        config.concurrent_plans = ["a", "b"]
            .iter()
            .map(|key| ConcurrentPlan {
                virtual_machines: vec![key.to_string()],
                copyoffload: None,
            })
            .collect();
        assert_eq!(
            migrate(&config),
            [
                "check_migration_outcome",
                "check_precopy_before_cutover",
                "check_plans_ran_together"
            ]
        );
    }

    #[test]
    fn per_vm_conditions_name_the_vms_they_hold_for() {
        let mut agent = vm("with-agent");
        agent.guest_agent = true;
        agent.source_vm_power = Some(Power::On);
        let config = PlanConfig {
            virtual_machines: vec![agent, vm("without")],
            preserve_static_ips: Some(true),
            ..PlanConfig::default()
        };
        let step = steps_for(&config)
            .into_iter()
            .find(|s| s.kind == StepKind::CheckVms)
            .unwrap();
        let planned = planned(ProviderType::Vsphere, true, &config, step);
        let vms_of = |name: &str| {
            planned
                .iter()
                .find(|c| c.check == name)
                .map(|c| c.vms.clone())
        };
        assert_eq!(vms_of("check_guest_agent"), Some(vec!["with-agent".into()]));
        assert_eq!(
            vms_of("check_static_ip_preservation"),
            Some(vec!["with-agent".into()])
        );
        assert_eq!(
            vms_of("check_vms_power_state"),
            Some(vec!["with-agent".into()])
        );
        assert_eq!(
            vms_of("check_cpu"),
            Some(vec!["with-agent".into(), "without".into()])
        );
        assert_eq!(vms_of("check_ssl_configuration"), Some(vec![]));
    }

    #[test]
    fn pvc_templates_rdm_and_snapshots_follow_the_scenario() {
        let mut with_rdm = vm("a");
        with_rdm.add_disks = vec![AddDisk {
            size_gb: 1,
            provision_type: None,
            disk_mode: None,
            datastore_id: None,
            datastore_path: None,
            rdm_type: Some(RdmType::Virtual),
        }];
        with_rdm.snapshots = Some(2);
        let mut config = PlanConfig {
            virtual_machines: vec![with_rdm],
            rdm_as_lun: Some(true),
            pvc_name_template: Some(PvcNameTemplate::Single("{{.VmName}}-{{.DiskIndex}}".into())),
            ..PlanConfig::default()
        };
        assert!(has(
            ProviderType::Vsphere,
            &config,
            "verify_rdm_disk_bus_types"
        ));
        assert!(has(ProviderType::Vsphere, &config, "check_snapshots"));
        assert!(has(ProviderType::Vsphere, &config, "check_pvc_names"));
        assert!(!has(ProviderType::Ovirt, &config, "check_pvc_names"));
        config.pvc_name_template = Some(PvcNameTemplate::PerProvider(BTreeMap::from([(
            "ovirt".to_string(),
            "{{.VmName}}-disk".to_string(),
        )])));
        assert!(has(ProviderType::Ovirt, &config, "check_pvc_names"));
        assert!(!has(ProviderType::Vsphere, &config, "check_pvc_names"));
        config.copyoffload = true;
        assert!(!has(ProviderType::Ovirt, &config, "check_pvc_names"));
    }

    #[test]
    fn a_validation_skipped_after_a_pre_hook_failure_checks_nothing() {
        let config = PlanConfig {
            virtual_machines: vec![vm("a")],
            ..PlanConfig::default()
        };
        let step = Step {
            kind: StepKind::CheckVms,
            expectation: StepExpectation::SkippedAfterPreHookFailure,
        };
        assert!(planned(ProviderType::Vsphere, true, &config, step).is_empty());
    }

    #[test]
    fn what_ran_is_reported_in_table_order_with_its_vms() {
        let mut ran = ChecksRan::default();
        ran.ran("check_cpu", Some("b"));
        ran.ran("check_ssl_configuration", None);
        ran.ran("check_cpu", Some("a"));
        ran.ran("check_cpu", Some("a"));
        assert_eq!(
            ran.into_runs(),
            [
                CheckRun {
                    check: "check_ssl_configuration".into(),
                    vms: vec![]
                },
                CheckRun {
                    check: "check_cpu".into(),
                    vms: vec!["b".into(), "a".into()]
                }
            ]
        );
    }
}
