//! `test_check_vms`: reads each migrated VM, its PVCs and (running, or started for the check) its
//! VMI, and hands them with the source facts to [`crate::validate`]. Every VM is checked and every
//! failure kept; the step fails once, naming each VM, check, expected and actual value.

use std::time::Duration;

use mtv_catalog::steps::{Step, StepExpectation};
use mtv_providers::SourceProvider;
use serde_json::Value;

use super::{PlanRun, PreparedVm, Runner};
use crate::build;
use crate::checklist::{self, VmChecks};
use crate::cluster::{ClusterError, Verdict, kinds};
use crate::step_error::{Missing, StepError};
use crate::validate::{self, Expected, Observed};

/// Python's `vm_dict` waits this long for the guest agent unless the scenario says otherwise.
const GUEST_AGENT_TIMEOUT: Duration = Duration::from_secs(301);
/// And this long for a started VM to run.
const VM_START_TIMEOUT: Duration = Duration::from_secs(120);

/// The power state a VirtualMachine asks for.
fn vm_power(vm: &Value) -> Option<bool> {
    match vm.pointer("/spec/runStrategy").and_then(Value::as_str) {
        Some("Always") | Some("RerunOnFailure") => Some(true),
        Some("Halted") => Some(false),
        _ => vm.pointer("/spec/running").and_then(Value::as_bool),
    }
}

fn vmi_ready(vmi: &Value, guest_agent: bool) -> bool {
    let conditions = vmi
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let agent = conditions
        .iter()
        .any(|c| c["type"] == "AgentConnected" && c["status"] == "True");
    vmi.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
        && (!guest_agent || agent)
}

impl Runner {
    fn plan_of(&self, vm: &PreparedVm) -> Option<&PlanRun> {
        self.state()
            .plans
            .iter()
            .find(|p| p.vm_keys.contains(&vm.key))
    }

    /// Waits that stand for Forklift or guest time follow the target's Forklift clock (a lab's is
    /// compressed; see `TargetTraits`).
    pub(super) fn guest_time(&self, real: Duration) -> Duration {
        self.session.traits.forklift_bound(real)
    }

    /// The migrated VirtualMachine of a source VM: by its `vmID` label in the target namespace,
    /// else (a misplaced VM) anywhere with the label of its Plan.
    pub(super) async fn find_target_vm(&self, vm: &PreparedVm) -> Result<Option<Value>, StepError> {
        let cluster = &self.session.cluster;
        let state = self.state();
        let selector = format!("vmID={}", vm.inventory_id);
        let found = cluster
            .list(
                &kinds::VIRTUAL_MACHINE,
                Some(&state.target_namespace),
                Some(&selector),
            )
            .await?;
        if let Some(found) = found.into_iter().next() {
            return Ok(Some(found));
        }
        let Some(plan_uid) = self.plan_of(vm).and_then(|p| p.plan_uid.as_deref()) else {
            return Ok(None);
        };
        let elsewhere = cluster
            .list(
                &kinds::VIRTUAL_MACHINE,
                None,
                Some(&format!("{selector},plan={plan_uid}")),
            )
            .await?;
        Ok(elsewhere.into_iter().next())
    }

    async fn claimed_pvcs(&self, vm: &Value) -> Result<Vec<Value>, StepError> {
        let namespace = vm["metadata"]["namespace"].as_str().unwrap_or_default();
        let volumes = vm
            .pointer("/spec/template/spec/volumes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let claims: Vec<&str> = volumes
            .iter()
            .filter_map(|volume| {
                volume
                    .pointer("/persistentVolumeClaim/claimName")
                    .or_else(|| volume.pointer("/dataVolume/name"))
                    .and_then(Value::as_str)
            })
            .collect();
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        // One list of the namespace's claims instead of a read per disk.
        let listed = self
            .session
            .cluster
            .list(&kinds::PVC, Some(namespace), None)
            .await?;
        Ok(claims
            .iter()
            .filter_map(|claim| {
                listed
                    .iter()
                    .find(|pvc| pvc["metadata"]["name"] == *claim)
                    .cloned()
            })
            .collect())
    }

    /// The VMI of a migrated VM as it runs: waits for it (and for its guest agent when asked);
    /// a VM that is off is started for the reading and stopped again, as the Python suite does
    /// (unless `keep_running`: the guest checks that follow use it, and [`Runner::stop_started`]
    /// stops it after them). Returns the last VMI seen, or none when it never appeared.
    async fn running_vmi(
        &self,
        vm: &Value,
        powered_on: bool,
        guest_agent: bool,
        keep_running: bool,
    ) -> Result<Option<Value>, StepError> {
        let cluster = &self.session.cluster;
        let namespace = vm["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = vm["metadata"]["name"].as_str().unwrap_or_default();
        if !powered_on {
            cluster.set_vm_running(namespace, name, true).await?;
        }
        let timeout = self.guest_time(if guest_agent {
            self.spec
                .config
                .guest_agent_timeout
                .map_or(GUEST_AGENT_TIMEOUT, Duration::from_secs)
        } else {
            VM_START_TIMEOUT
        });
        let what = format!("VirtualMachineInstance {namespace}/{name} to run");
        let waited = cluster
            .wait_for(
                &kinds::VIRTUAL_MACHINE_INSTANCE,
                Some(namespace),
                name,
                timeout,
                &what,
                |vmi| {
                    if vmi_ready(vmi, guest_agent) {
                        Verdict::Done(vmi.clone())
                    } else {
                        Verdict::Pending(
                            vmi.pointer("/status/phase")
                                .and_then(Value::as_str)
                                .unwrap_or("no phase")
                                .to_string(),
                        )
                    }
                },
            )
            .await;
        let vmi = match waited {
            Ok(vmi) => Some(vmi),
            // What the checks see is what there is; they say what is missing.
            Err(ClusterError::Timeout { .. }) => {
                cluster
                    .get(&kinds::VIRTUAL_MACHINE_INSTANCE, Some(namespace), name)
                    .await?
            }
            Err(error) => return Err(error.into()),
        };
        if !powered_on && !keep_running {
            self.stop_started((namespace, name), vmi.as_ref()).await?;
        }
        Ok(vmi)
    }

    /// Stops a VM the checks started and waits for its VMI to go (watched from `vmi`, the VMI as
    /// last seen, when there is one).
    pub(super) async fn stop_started(
        &self,
        (namespace, name): (&str, &str),
        vmi: Option<&Value>,
    ) -> Result<(), ClusterError> {
        let cluster = &self.session.cluster;
        cluster.set_vm_running(namespace, name, false).await?;
        let (kind, timeout) = (
            &kinds::VIRTUAL_MACHINE_INSTANCE,
            self.guest_time(VM_START_TIMEOUT),
        );
        match vmi {
            Some(known) => {
                cluster
                    .wait_gone_from(kind, Some(namespace), name, known, timeout)
                    .await
            }
            None => {
                cluster
                    .wait_gone(kind, Some(namespace), name, timeout)
                    .await
            }
        }
    }

    /// The source Provider's Secret (as the session made it: the run's own object, not read
    /// again) against the profile's `insecureSkipVerify`.
    fn check_ssl_configuration(&self) -> Result<Option<validate::CheckFailure>, StepError> {
        let session = &self.session;
        validate::check_ssl_configuration(
            session.context.provider_type,
            &session.source_secret,
            session.context.source_provider_insecure_skip_verify,
        )
        .map_err(|e| Missing::SecretEncoding(e).into())
    }

    pub(super) async fn check_vms(&self, id: &str, step: Step) -> Result<(), StepError> {
        if let StepExpectation::SkippedAfterPreHookFailure = step.expectation {
            return Err(StepError::Skipped {
                reason:
                    "the migration failed at PreHook as expected; nothing was migrated to check"
                        .into(),
            });
        }
        let session = &self.session;
        let mut problems = Vec::new();
        if checklist::applies("check_ssl_configuration", &self.facts(step)) {
            self.ran("check_ssl_configuration", None);
            if let Some(failure) = self.check_ssl_configuration()? {
                problems.push(format!("Provider {}: {failure}", session.source_provider));
            }
        }
        for vm in &self.state().vms {
            let checks = checklist::vm_checks(step, &self.facts(step).for_vm(&vm.config));
            problems.extend(self.check_one_vm(id, vm, step, &checks).await?);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StepError::Validation { problems })
        }
    }

    /// Reads what the applicable checks of one VM need (the migrated VM, its PVCs, its VMI, the
    /// source again) once, runs them, and returns the problems found, each naming the VM.
    async fn check_one_vm(
        &self,
        id: &str,
        vm: &PreparedVm,
        step: Step,
        checks: &VmChecks,
    ) -> Result<Vec<String>, StepError> {
        let session = &self.session;
        let state = self.state();
        let config = &self.spec.config;
        let facts = self.facts(step).for_vm(&vm.config);
        let provider_type = session.context.provider_type;
        let Some(target) = self.find_target_vm(vm).await? else {
            return Ok(vec![format!(
                "VM {}: check_vm_namespace - VirtualMachine: expected one labelled vmID={} in {}, got none",
                vm.facts.name, vm.inventory_id, state.target_namespace
            )]);
        };
        let plan = self.plan_of(vm);
        let labels = build::target_labels(config, &session.id);
        let node_selector = build::node_selector(config, &session.id);
        let plan_name = plan.and_then(|p| p.plan.clone()).unwrap_or_default();
        let empty = Vec::new();
        let storage_map = plan.map_or(&empty, |p| &p.storage_map_entries);
        let network_map = plan.map_or(&empty, |p| &p.network_map_entries);
        let pvcs = self.claimed_pvcs(&target).await?;
        let powered_on = vm_power(&target);
        let guest_checks = checks.includes("check_ssh_connectivity");
        // A VM started to read its VMI stays up for the guest checks: one boot, not two.
        let started_for_guest = checks.needs_vmi() && guest_checks && powered_on != Some(true);
        let vmi = if checks.needs_vmi() {
            self.running_vmi(
                &target,
                powered_on == Some(true),
                vm.config.guest_agent,
                started_for_guest,
            )
            .await?
        } else {
            None
        };
        // The snapshot comparison (vSphere) and the power-off events (oVirt) read the source again.
        let source_now = if checks.needs_source_now() {
            Some(session.source.facts(&vm.facts.id).await?)
        } else {
            None
        };
        let expected = Expected {
            provider_type,
            source: &vm.facts,
            source_now: source_now.as_ref(),
            snapshots_before: &vm.snapshots_before_migration,
            target_name: vm.target_name.as_deref(),
            namespace: &state.target_namespace,
            plan_name: &plan_name,
            power: facts.power(),
            storage_map,
            network_map,
            labels: labels.as_ref(),
            node_selector: node_selector.as_ref(),
            labelled_node: state.labelled_node.as_deref(),
            affinity: config.target_affinity.as_ref(),
            pvc_name_template: facts.pvc_name_template(),
            nested_virtualization: config.enable_nested_virtualization,
            target_ocp_version: session.context.target_ocp_version.as_deref(),
        };
        let report = validate::check_vm(
            &expected,
            &Observed {
                vm: &target,
                vmi: vmi.as_ref(),
                pvcs: &pvcs,
                powered_on,
            },
            checks,
        );
        for check in &report.ran {
            self.ran(check, Some(&vm.key));
        }
        let guest = if guest_checks {
            let guest = self.check_guest(id, vm, &target, checks).await;
            if started_for_guest {
                let namespace = target["metadata"]["namespace"].as_str().unwrap_or_default();
                let name = target["metadata"]["name"].as_str().unwrap_or_default();
                self.stop_started((namespace, name), vmi.as_ref()).await?;
            }
            guest?
        } else {
            Vec::new()
        };
        let name = target["metadata"]["name"].as_str().unwrap_or("?");
        Ok(report
            .failures
            .iter()
            .chain(&guest)
            .map(|failure| format!("VM {name}: {failure}"))
            .collect())
    }
}
