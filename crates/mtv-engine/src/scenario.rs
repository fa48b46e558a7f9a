//! One scenario, run as pytest runs an `incremental` class: preparation, then StorageMap →
//! NetworkMap → Plan → migrate → validate, each a test item with its own outcome. A failed step turns
//! the later ones into expected failures naming it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mtv_api::ProviderType;
use mtv_api::forklift::{
    InventoryRef, MigrationSpec, NetworkDestination, NetworkMapSpec, NetworkPair, ObjectRef,
    PlanHookRef, PlanMaps, PlanVm, ProviderPair, StorageMapSpec, StoragePair,
};
use mtv_catalog::catalog::vm_plan_key;
use mtv_catalog::model::{ExpectedResult, HookConfig, HookStep, PlanConfig, Power, VmConfig};
use mtv_catalog::steps::{Step, StepExpectation, StepKind};
use mtv_providers::{CloneRequest, NewDisk, NewNic, SourceProvider, SourceSnapshot, SourceVm};
use serde_json::{Value, json};

use crate::build;
use crate::checklist::{self, ChecksRan, Facts};
use crate::cluster::{Kind, Verdict, blockers, condition, kinds, ready_verdict};
use crate::diagnostics;
use crate::events::{Event, StepEnd, StepOutcome, VmProgress};
use crate::ledger::LedgerEntry;
use crate::names::k8s_name;
use crate::session::{SESSION_LABEL, Session};
use crate::step_error::{Missing, StepError};

mod checks;
pub mod guest_checks;

/// A scenario to run.
#[derive(Debug, Clone)]
pub struct ScenarioSpec {
    /// `Class[id]`.
    pub name: String,
    pub class: String,
    pub config: PlanConfig,
    pub steps: Vec<Step>,
}

/// A source VM prepared for the scenario.
#[derive(Debug, Clone)]
struct PreparedVm {
    /// The catalog entry's key (`clone_name` or `name`), which `concurrent_plans` refers to.
    key: String,
    config: VmConfig,
    /// Facts after preparation (clone, power, disks, NICs, snapshots).
    facts: SourceVm,
    /// The inventory's id of the VM (what the Plan references).
    inventory_id: String,
    /// OVA only: the target VM name the suite chooses.
    target_name: Option<String>,
    /// The source snapshots as they were before the migration (for a later `check_snapshots`).
    snapshots_before_migration: Vec<SourceSnapshot>,
}

/// Which of a Plan's two maps a step creates.
#[derive(Debug, Clone, Copy)]
enum MapOf {
    Storage,
    Network,
}

/// One Plan of the scenario (several for the simultaneous/concurrent scenarios).
#[derive(Debug, Clone, Default)]
struct PlanRun {
    vm_keys: Vec<String>,
    copy_offload: bool,
    storage_map: Option<String>,
    network_map: Option<String>,
    /// `spec.map` of each map as the cluster held it when Ready (from the wait's watch).
    storage_map_entries: Vec<Value>,
    network_map_entries: Vec<Value>,
    plan: Option<String>,
    plan_uid: Option<String>,
    /// The Plan as the wait for Ready delivered it (the migration's wait goes on from there).
    ready_plan: Option<Value>,
    migration: Option<String>,
    migration_uid: Option<String>,
    /// Copy-offload: the populator pods' logs captured during the migration (MTV deletes the pods).
    populate_logs: std::collections::BTreeMap<String, crate::xcopy::PopulateLog>,
}

/// What the steps of one scenario share (pytest's class-scoped state).
struct ScenarioState {
    target_namespace: String,
    multus_namespace: String,
    vms: Vec<PreparedVm>,
    nads: Vec<String>,
    hooks: Vec<PlanHookRef>,
    plans: Vec<PlanRun>,
    /// The worker node labelled for `target_node_selector`.
    labelled_node: Option<String>,
}

/// The built-in hook playbooks (base64 of our own Ansible text), as the Python suite predefines them.
pub const HOOK_PLAYBOOK_SUCCEED: &str = "- name: mtv-tests hook\n  hosts: localhost\n  tasks:\n    - name: report\n      debug:\n        msg: Hook executed successfully\n";
pub const HOOK_PLAYBOOK_FAIL: &str = "- name: mtv-tests hook\n  hosts: localhost\n  tasks:\n    - name: fail on purpose\n      fail:\n        msg: This hook is designed to fail for testing purposes\n";

fn base64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn hook_spec(hook: &HookConfig) -> Value {
    match (
        hook.expected_result,
        &hook.playbook_base64,
        hook.aap_job_template_id,
    ) {
        (_, _, Some(id)) => json!({"aap": {"jobTemplateId": id}}),
        (_, Some(playbook), _) => {
            json!({"image": mtv_api::forklift::HOOK_RUNNER_IMAGE, "playbook": playbook})
        }
        (Some(ExpectedResult::Fail), _, _) => json!({
            "image": mtv_api::forklift::HOOK_RUNNER_IMAGE,
            "playbook": base64(HOOK_PLAYBOOK_FAIL),
        }),
        _ => json!({
            "image": mtv_api::forklift::HOOK_RUNNER_IMAGE,
            "playbook": base64(HOOK_PLAYBOOK_SUCCEED),
        }),
    }
}

/// Runs a scenario to the end, emitting its events. Never panics on cluster behaviour.
pub async fn run_scenario(
    session: Arc<Session>,
    spec: ScenarioSpec,
    results_dir: std::path::PathBuf,
) {
    let events = session.cluster.events().clone();
    events.emit(Event::ScenarioStarted {
        scenario: spec.name.clone(),
    });
    let mut runner = Runner {
        session: session.clone(),
        spec: spec.clone(),
        state: None,
        results_dir,
        ran: std::sync::Mutex::default(),
    };
    let mut failed_step: Option<String> = None;
    for step in &spec.steps {
        let id = mtv_catalog::catalog::item_id(&spec.name, step.kind);
        events.emit(Event::StepStarted {
            id: id.clone(),
            scenario: spec.name.clone(),
            step: step.kind.test_name().to_string(),
        });
        let started = Instant::now();
        let mut diagnostics_path = None;
        let outcome = if let Some(previous) = &failed_step {
            StepOutcome::Xfailed {
                reason: format!("previous step failed ({previous})"),
            }
        } else {
            match runner.run_step(*step, &id).await {
                Ok(()) => StepOutcome::Passed,
                Err(StepError::Skipped { reason }) => StepOutcome::Skipped { reason },
                Err(error) => {
                    failed_step = Some(id.clone());
                    diagnostics_path = runner.collect_diagnostics(&id).await;
                    let message = error.message();
                    if error.is_failure() {
                        StepOutcome::Failed { message }
                    } else {
                        StepOutcome::Error { message }
                    }
                }
            }
        };
        let ran = std::mem::take(runner.ran.get_mut().unwrap_or_else(|e| e.into_inner()));
        if !ran.is_empty() {
            events.emit(Event::ChecksRan {
                id: id.clone(),
                checks: ran.into_runs(),
            });
        }
        events.emit(Event::StepFinished(StepEnd {
            id,
            scenario: spec.name.clone(),
            step: step.kind.test_name().to_string(),
            outcome,
            duration: started.elapsed(),
            diagnostics: diagnostics_path,
        }));
    }
    events.emit(Event::ScenarioFinished {
        scenario: spec.name.clone(),
    });
}

struct Runner {
    session: Arc<Session>,
    spec: ScenarioSpec,
    state: Option<ScenarioState>,
    results_dir: std::path::PathBuf,
    /// The checks the running step has run (waits of one step run side by side, hence the lock).
    ran: std::sync::Mutex<ChecksRan>,
}

/// A source VM made ready, with its facts as they are before the migration.
fn prepared(vm: &VmConfig, facts: SourceVm, target_name: Option<String>) -> PreparedVm {
    PreparedVm {
        key: vm_plan_key(vm).to_string(),
        config: vm.clone(),
        snapshots_before_migration: facts.snapshots.clone(),
        facts,
        inventory_id: String::new(),
        target_name,
    }
}

impl Runner {
    /// What the table's conditions read for a step of this scenario.
    fn facts(&self, step: Step) -> Facts<'_> {
        Facts::scenario(self.session.context.provider_type, &self.spec.config, step)
            .with_guest_account(self.session.context.guest_logins.any())
    }

    /// Records that a check of the table ran (for one VM by catalog key, or for the scenario).
    fn ran(&self, check: &'static str, vm: Option<&str>) {
        debug_assert!(crate::checklist::check(check).is_some(), "{check}");
        self.ran
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ran(check, vm);
    }

    fn note(&self, id: &str, message: impl Into<String>) {
        self.session.cluster.events().emit(Event::StepNote {
            id: id.to_string(),
            message: message.into(),
        });
    }

    async fn run_step(&mut self, step: Step, id: &str) -> Result<(), StepError> {
        if self.state.is_none() {
            self.note(id, "preparing the source VMs");
            let state = self.prepare(id).await?;
            self.state = Some(state);
        }
        match step.kind {
            StepKind::CreateStorageMap => self.create_maps(id, MapOf::Storage).await,
            StepKind::CreateNetworkMap => self.create_maps(id, MapOf::Network).await,
            StepKind::CreatePlan => self.create_plans(id).await,
            StepKind::MigrateVms => self.migrate(id, step).await,
            StepKind::CheckVms => self.check_vms(id, step).await,
            StepKind::CheckXcopyUsed => self.check_xcopy_used(id).await,
            StepKind::CreateSnapshotsAndDataMarker => {
                self.create_snapshots_and_data_marker(id).await
            }
            StepKind::CheckDataIntegrity => self.check_data_integrity(id, step).await,
        }
    }

    fn has_step(&self, kind: StepKind) -> bool {
        self.spec.steps.iter().any(|s| s.kind == kind)
    }

    fn state(&self) -> &ScenarioState {
        self.state.as_ref().expect("prepared before any step")
    }

    fn scenario_labels(&self) -> Value {
        json!({ SESSION_LABEL: self.session.id, "mtv-tests/scenario": k8s_name(&crate::names::scenario_slug(&self.spec.class)) })
    }

    async fn ensure_namespace(&self, name: &str) -> Result<(), StepError> {
        let cluster = &self.session.cluster;
        if cluster.get(&kinds::NAMESPACE, None, name).await?.is_some() {
            return Ok(());
        }
        let mut labels = self.scenario_labels();
        labels["pod-security.kubernetes.io/enforce"] = json!("restricted");
        labels["mutatevirtualmachines.kubemacpool.io"] = json!("ignore");
        cluster
            .create(
                &kinds::NAMESPACE,
                None,
                json!({"metadata": {"name": name, "labels": labels}}),
                Some(&self.spec.name),
            )
            .await?;
        Ok(())
    }

    /// Prepares what the steps share, as named steps: the target namespaces, a labelled node, the
    /// source VMs, the inventory's view of them, the NADs, the Hooks, and the Plans to make.
    async fn prepare(&mut self, id: &str) -> Result<ScenarioState, StepError> {
        let (target_namespace, multus_namespace) = self.scenario_namespaces().await?;
        let labelled_node = match build::node_selector(&self.spec.config, &self.session.id) {
            Some(selector) => Some(self.label_worker_node(&selector).await?),
            None => None,
        };
        let mut vms = Vec::new();
        for vm in &self.spec.config.virtual_machines {
            vms.push(self.prepare_source_vm(id, vm).await?);
        }
        self.note(
            id,
            "waiting for the Forklift inventory to show the source VMs",
        );
        for vm in &mut vms {
            vm.inventory_id = self.wait_inventory_shows(&vm.facts).await?;
        }
        let nads = self.create_nads(&vms, &multus_namespace).await?;
        let hooks = self.create_hooks().await?;
        let plans = self.plan_runs(&vms);
        Ok(ScenarioState {
            target_namespace,
            multus_namespace,
            vms,
            nads,
            hooks,
            labelled_node,
            plans,
        })
    }

    /// The namespace the VMs migrate to and the one of the NADs: the session's unless the scenario
    /// names its own (then made for it).
    async fn scenario_namespaces(&self) -> Result<(String, String), StepError> {
        let config = &self.spec.config;
        let session = &self.session;
        let target_namespace = match &config.vm_target_namespace {
            Some(ns) => {
                let ns = k8s_name(&ns.replace("{rand4}", &crate::session::random_suffix(4)));
                self.ensure_namespace(&ns).await?;
                ns
            }
            None => session.namespace.clone(),
        };
        let multus_namespace = match &config.multus_namespace {
            Some(ns) => {
                self.ensure_namespace(ns).await?;
                ns.clone()
            }
            None => session.namespace.clone(),
        };
        Ok((target_namespace, multus_namespace))
    }

    /// The catalog VM's name on the source: the profile's copy-offload `default_vm_name` for
    /// `clone: true` VMs, else its own.
    fn source_name(&self, vm: &VmConfig) -> String {
        match (&self.session.context.copy_offload, vm.clone) {
            (Some(co), true) => co
                .default_vm_name
                .clone()
                .unwrap_or_else(|| vm.name.clone()),
            _ => vm.name.clone(),
        }
    }

    /// One source VM made ready for the scenario: used as it is (OVA, `skip_clone`), or cloned (created
    /// fresh for OpenShift sources) and shaped (power, disks, NICs, snapshots).
    async fn prepare_source_vm(&self, id: &str, vm: &VmConfig) -> Result<PreparedVm, StepError> {
        let session = &self.session;
        let provider_type = session.context.provider_type;
        let source_name = self.source_name(vm);
        let used_as_is = provider_type == ProviderType::Ova || self.spec.config.skip_clone;
        // A catalog VM another scenario cloned already: only its id is needed, and it is held.
        if !used_as_is && let Some(source_id) = session.template_id(&source_name) {
            return self.cloned_vm(id, vm, &source_name, &source_id).await;
        }
        // OpenShift source VMs are created for the scenario; there is no catalog VM to clone.
        let existing = if provider_type == ProviderType::Openshift {
            None
        } else {
            Some(
                session
                    .source
                    .find(&source_name)
                    .await?
                    .ok_or_else(|| Missing::SourceVm {
                        name: source_name.clone(),
                        provider_type: provider_type.to_string(),
                        profile: session.context.source_provider.clone(),
                    })?,
            )
        };
        let source = match existing {
            Some(source) if used_as_is => {
                let target = (provider_type == ProviderType::Ova)
                    .then(|| k8s_name(&format!("{}-{}", session.id, source.name)));
                return Ok(prepared(vm, source, target));
            }
            Some(source) => {
                session.remember_template(&source_name, &source.id);
                source.id
            }
            None => source_name.clone(),
        };
        self.cloned_vm(id, vm, &source_name, &source).await
    }

    /// The scenario's clone of the catalog VM `source_id`.
    async fn cloned_vm(
        &self,
        id: &str,
        vm: &VmConfig,
        source_name: &str,
        source_id: &str,
    ) -> Result<PreparedVm, StepError> {
        let facts = self.clone_source_vm(id, vm, source_name, source_id).await?;
        Ok(prepared(vm, facts, None))
    }

    /// The clone's name: the suite's naming scheme, or `<session>-<name>` for `preserve_name_format`.
    fn clone_name(&self, vm: &VmConfig, source_name: &str) -> String {
        let session = &self.session;
        let base = vm.clone_name.as_deref().unwrap_or(source_name);
        if vm.preserve_name_format {
            format!("{}-{base}", session.id)
        } else {
            session.names(|names| {
                names.clone_name(
                    base,
                    &session.context.storage_class,
                    session.context.target_ocp_version.as_deref(),
                    self.spec.config.warm_migration,
                )
            })
        }
    }

    /// What the source adapter is asked to make of the catalog VM.
    fn clone_request(&self, vm: &VmConfig, clone_name: &str) -> CloneRequest {
        let add_disks = vm
            .add_disks
            .iter()
            .map(|disk| NewDisk {
                size_gib: disk.size_gb,
                provisioning: disk
                    .provision_type
                    .map(provisioning_name)
                    .unwrap_or("thin")
                    .to_string(),
                mode: disk
                    .disk_mode
                    .map(mode_name)
                    .unwrap_or("persistent")
                    .to_string(),
                datastore: disk.datastore_id.as_deref().and_then(|d| self.datastore(d)),
                rdm: disk.rdm_type.map(|r| match r {
                    mtv_catalog::model::RdmType::Virtual => "virtual".to_string(),
                    mtv_catalog::model::RdmType::Physical => "physical".to_string(),
                }),
                // An RDM disk maps the profile's LUN, as the Python suite's does.
                lun: disk
                    .rdm_type
                    .and(self.session.context.copy_offload.as_ref())
                    .and_then(|co| co.rdm_lun_uuid.clone()),
            })
            .collect();
        CloneRequest {
            name: clone_name.to_string(),
            power_on: vm.source_vm_power.map(|p| p == Power::On),
            cbt: self.spec.config.warm_migration,
            disk_type: vm.disk_type.map(|d| provisioning_name(d).to_string()),
            target_datastore: vm
                .target_datastore_id
                .as_deref()
                .and_then(|d| self.datastore(d)),
            host: vm.target_esxi_host.clone(),
            add_disks,
        }
    }

    /// Clones (or creates) the scenario's copy of a source VM, records it in the ledger, and adds
    /// its snapshots and extra NIC; returns its facts.
    async fn clone_source_vm(
        &self,
        id: &str,
        vm: &VmConfig,
        source_name: &str,
        source_id: &str,
    ) -> Result<SourceVm, StepError> {
        let session = &self.session;
        let adapter = &session.source;
        let clone_name = self.clone_name(vm, source_name);
        self.note(
            id,
            if session.context.provider_type == ProviderType::Openshift {
                format!("creating source VM {clone_name} shaped as {source_name}")
            } else {
                format!("cloning {source_name} to {clone_name}")
            },
        );
        let clone = adapter
            .clone_vm(source_id, &self.clone_request(vm, &clone_name))
            .await?;
        session.cluster.ledger().record(LedgerEntry::SourceVm {
            provider_type: session.context.provider_type.to_string(),
            source: session.source.source_ref().into(),
            id: clone.id.clone(),
            name: clone.name.clone(),
            scenario: Some(self.spec.name.clone()),
            removed: false,
        })?;
        let mut changed = false;
        // With a data-marker step, the snapshots come after the marker, in that step.
        if !self.has_step(StepKind::CreateSnapshotsAndDataMarker) {
            for index in 0..vm.snapshots.unwrap_or(0) {
                adapter
                    .create_snapshot(&clone.id, &snapshot_name(&clone.name, &session.id, index))
                    .await?;
                changed = true;
            }
        }
        if vm.add_nic {
            let network = self.network_for_added_nic(&clone).await?;
            adapter
                .add_nic(
                    &clone.id,
                    &NewNic::new(network, vm.add_nic_start_connected.unwrap_or(false)),
                )
                .await?;
            changed = true;
        }
        // The clone's answer holds its facts; only what changed it since needs another read.
        if changed {
            Ok(adapter.facts(&clone.id).await?)
        } else {
            Ok(clone)
        }
    }

    /// The network of the NIC `add_nic` adds: the backing of the first non-pod NIC (the second
    /// network), as the Python suite does.
    async fn network_for_added_nic(&self, clone: &SourceVm) -> Result<String, StepError> {
        if self.session.context.provider_type == ProviderType::Openshift {
            // KubeVirt allows one pod NIC: the second network is a NAD of the source namespace.
            return match clone.nics.iter().find(|n| n.network != "pod") {
                Some(nic) => Ok(nic.network.clone()),
                None => self.source_nad().await,
            };
        }
        clone
            .nics
            .get(1)
            .or_else(|| clone.nics.first())
            .map(|n| n.network.clone())
            .ok_or_else(|| {
                Missing::NicToCopy {
                    vm: clone.name.clone(),
                }
                .into()
            })
    }

    /// Waits until the Forklift inventory shows a source VM with the NICs it now has; returns the
    /// inventory's id of it (what the Plan references).
    async fn wait_inventory_shows(&self, facts: &SourceVm) -> Result<String, StepError> {
        let session = &self.session;
        let timeout = self
            .spec
            .config
            .inventory_timeout
            .map(Duration::from_secs)
            .unwrap_or(session.timeouts.inventory);
        let expected_macs: Vec<String> = facts.nics.iter().map(|n| n.mac.to_lowercase()).collect();
        let what = format!("VM `{}` with {} NICs", facts.name, expected_macs.len());
        let provider_type = session.context.provider_type;
        let path = format!(
            "/providers/{provider_type}/{}/vms?name={}&detail=4",
            session.source_provider_uid,
            crate::inventory::query(&facts.name)
        );
        let source_namespace = session.source.cluster_namespace();
        let name = facts.name.clone();
        let found = session
            .inventory
            .wait_for(&what, timeout, |inventory| {
                let (path, name, expected_macs, source_namespace) = (
                    path.clone(),
                    name.clone(),
                    expected_macs.clone(),
                    source_namespace.clone(),
                );
                async move {
                    let list = inventory.get(&path).await?;
                    Ok(list.as_array().and_then(|vms| {
                        vms.iter()
                            .find(|v| {
                                inventory_shows(
                                    v,
                                    provider_type,
                                    &name,
                                    source_namespace.as_deref(),
                                    &expected_macs,
                                )
                            })
                            .cloned()
                    }))
                }
            })
            .await?;
        Ok(found["id"].as_str().unwrap_or(&facts.id).to_string())
    }

    /// One NetworkAttachmentDefinition per network after the first (per NIC with
    /// `per_nic_network_map`).
    async fn create_nads(
        &self,
        vms: &[PreparedVm],
        multus_namespace: &str,
    ) -> Result<Vec<String>, StepError> {
        let session = &self.session;
        let networks = self.network_sources(vms, self.spec.config.per_nic_network_map);
        let mut nads = Vec::new();
        for index in 1..networks.len() {
            let name = session.names(|names| names.nad(&self.spec.name, index));
            let cni = if index == 1 {
                json!({"cniVersion": "0.3.1", "type": "cnv-bridge", "bridge": "cnv-bridge"})
            } else {
                json!({"cniVersion": "0.3.1", "type": "bridge", "bridge": name})
            };
            let spec = json!({"config": cni.to_string()});
            self.create_object_in(&kinds::NAD, multus_namespace, &name, spec)
                .await?;
            nads.push(name);
        }
        Ok(nads)
    }

    /// The scenario's pre and post Hooks, as the Plan's VMs will reference them.
    async fn create_hooks(&self) -> Result<Vec<PlanHookRef>, StepError> {
        let session = &self.session;
        let config = &self.spec.config;
        let mut hooks = Vec::new();
        for (step, hook) in [
            (HookStep::PreHook, &config.pre_hook),
            (HookStep::PostHook, &config.post_hook),
        ] {
            let Some(hook) = hook else { continue };
            let name = session.names(|names| {
                names.scenario_object(&self.spec.class, &step.to_string().to_ascii_lowercase())
            });
            self.create_object(&kinds::HOOK, &name, json!(hook_spec(hook)))
                .await?;
            hooks.push(PlanHookRef {
                hook: ObjectRef::new(&session.namespace, &name),
                step: step.to_string(),
            });
        }
        Ok(hooks)
    }

    /// The Plans of the scenario: one with every VM, or the `concurrent_plans` it lists.
    fn plan_runs(&self, vms: &[PreparedVm]) -> Vec<PlanRun> {
        let config = &self.spec.config;
        if config.concurrent_plans.is_empty() {
            return vec![PlanRun {
                vm_keys: vms.iter().map(|v| v.key.clone()).collect(),
                copy_offload: config.copyoffload,
                ..PlanRun::default()
            }];
        }
        config
            .concurrent_plans
            .iter()
            .map(|plan| PlanRun {
                vm_keys: plan.virtual_machines.clone(),
                copy_offload: plan.copyoffload.unwrap_or(config.copyoffload),
                ..PlanRun::default()
            })
            .collect()
    }

    /// Labels one worker node with the scenario's node selector, so the migrated VM has somewhere to
    /// run; the session's lease on each label (in the ledger) takes it off again when the last
    /// session needing it ends.
    async fn label_worker_node(
        &self,
        selector: &std::collections::BTreeMap<String, String>,
    ) -> Result<String, StepError> {
        let cluster = &self.session.cluster;
        let workers = cluster
            .list(&kinds::NODE, None, Some("node-role.kubernetes.io/worker"))
            .await?;
        let nodes = if workers.is_empty() {
            cluster.list(&kinds::NODE, None, None).await?
        } else {
            workers
        };
        let node = nodes.first().ok_or(Missing::NodeToLabel)?;
        let name = node["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // A lease per label: scenarios of other sessions may need the same label on this node.
        for (key, value) in selector {
            crate::lease::acquire(
                cluster,
                &kinds::NODE,
                None,
                &name,
                &crate::lease::Setting::Label(key.clone()),
                json!(value),
                &self.session.id,
            )
            .await?;
        }
        Ok(name)
    }

    /// A NetworkAttachmentDefinition in the OpenShift source namespace, for a source VM's second
    /// network; returns it as `namespace/name`, the way the inventory names NAD networks.
    async fn source_nad(&self) -> Result<String, StepError> {
        let session = &self.session;
        let Some(namespace) = session.source.cluster_namespace() else {
            return Err(Missing::SourceNamespace.into());
        };
        // Index 0 is free: the scenario's destination NADs count from 1.
        let name = session.names(|names| names.nad(&self.spec.name, 0));
        if session
            .cluster
            .get(&kinds::NAD, Some(&namespace), &name)
            .await?
            .is_none()
        {
            let cni = json!({"cniVersion": "0.3.1", "type": "bridge", "bridge": name});
            let spec = json!({"config": cni.to_string()});
            self.create_object_in(&kinds::NAD, &namespace, &name, spec)
                .await?;
        }
        Ok(format!("{namespace}/{name}"))
    }

    /// A catalog datastore id (MoRef or a symbolic copy-offload name) as the source knows it.
    fn datastore(&self, id: &str) -> Option<String> {
        match &self.session.context.copy_offload {
            Some(co) => co.resolve_datastore(id).map(str::to_string),
            None => Some(id.to_string()),
        }
    }

    /// The source networks to map, in NIC order: distinct networks, or every NIC.
    fn network_sources(&self, vms: &[PreparedVm], per_nic: bool) -> Vec<String> {
        let mut networks: Vec<String> = Vec::new();
        for vm in vms {
            for nic in &vm.facts.nics {
                if per_nic || !networks.contains(&nic.network) {
                    networks.push(nic.network.clone());
                }
            }
        }
        networks
    }

    fn provider_pair(&self) -> ProviderPair {
        let session = &self.session;
        let destination = if self.spec.config.remote_destination {
            session
                .remote_destination_provider
                .clone()
                .unwrap_or_else(|| session.destination_provider.clone())
        } else {
            session.destination_provider.clone()
        };
        ProviderPair {
            source: ObjectRef::new(&session.namespace, &session.source_provider),
            destination: ObjectRef::new(&session.namespace, destination),
        }
    }

    fn plan_vms(&self, plan: &PlanRun) -> Vec<&PreparedVm> {
        self.state()
            .vms
            .iter()
            .filter(|vm| plan.vm_keys.contains(&vm.key))
            .collect()
    }

    /// Creates one of the scenario's objects in the session namespace; see `create_object_in`.
    async fn create_object(
        &self,
        kind: &Kind,
        name: &str,
        spec: Value,
    ) -> Result<Value, StepError> {
        self.create_object_in(kind, &self.session.namespace, name, spec)
            .await
    }

    /// Creates one of the scenario's objects, labelled as the scenario's and put in the ledger under
    /// it; returns the create's answer.
    async fn create_object_in(
        &self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        spec: Value,
    ) -> Result<Value, StepError> {
        let object =
            json!({"metadata": {"name": name, "labels": self.scenario_labels()}, "spec": spec});
        let created = self
            .session
            .cluster
            .create(kind, Some(namespace), object, Some(&self.spec.name))
            .await?;
        Ok(created)
    }

    /// Creates a StorageMap or NetworkMap of the scenario and waits until it is Ready; returns its name
    /// and its `spec.map` as the cluster holds it.
    async fn create_map(
        &self,
        id: &str,
        kind: &Kind,
        slug: &str,
        spec: Value,
    ) -> Result<(String, Vec<Value>), StepError> {
        let session = &self.session;
        let name = session.names(|n| n.scenario_object(&self.spec.class, slug));
        let created = self.create_object(kind, &name, json!(spec)).await?;
        self.note(id, format!("waiting for {} {name} to be Ready", kind.kind));
        let ready = self.wait_map_ready(kind, &name, &created).await?;
        let entries = ready
            .pointer("/spec/map")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok((name, entries))
    }

    /// Waits until a map is Ready, from the create's answer; returns it as the watch delivered it.
    async fn wait_map_ready(
        &self,
        kind: &crate::cluster::Kind,
        name: &str,
        created: &Value,
    ) -> Result<Value, StepError> {
        let session = &self.session;
        let what = format!("{} {}/{name} to be Ready", kind.kind, session.namespace);
        let ready = session
            .cluster
            .wait_for_from(
                kind,
                Some(&session.namespace),
                name,
                session.timeouts.map_ready,
                &what,
                created,
                |map| match ready_verdict(map) {
                    Verdict::Done(()) => Verdict::Done(map.clone()),
                    Verdict::Failed(reason) => Verdict::Failed(reason),
                    Verdict::Pending(state) => Verdict::Pending(state),
                },
            )
            .await?;
        Ok(ready)
    }

    /// Creates one map of the given kind per Plan, waits for each to be Ready, and records its name
    /// and entries on the Plan.
    async fn create_maps(&mut self, id: &str, which: MapOf) -> Result<(), StepError> {
        let mut plans = self.state().plans.clone();
        for plan in &mut plans {
            let (kind, slug, spec) = match which {
                MapOf::Storage => (
                    &kinds::STORAGE_MAP,
                    "storagemap",
                    self.storage_map_spec(plan)?,
                ),
                MapOf::Network => (
                    &kinds::NETWORK_MAP,
                    "networkmap",
                    self.network_map_spec(plan)?,
                ),
            };
            let (name, entries) = self.create_map(id, kind, slug, spec).await?;
            match which {
                MapOf::Storage => {
                    plan.storage_map = Some(name);
                    plan.storage_map_entries = entries;
                }
                MapOf::Network => {
                    plan.network_map = Some(name);
                    plan.network_map_entries = entries;
                }
            }
        }
        self.store_plans(plans);
        Ok(())
    }

    /// Keeps the Plans' progress for the next steps.
    fn store_plans(&mut self, plans: Vec<PlanRun>) {
        if let Some(state) = &mut self.state {
            state.plans = plans;
        }
    }

    /// The StorageMap of one Plan: each datastore its VMs' disks use, offloaded where the Plan is.
    fn storage_map_spec(&self, plan: &PlanRun) -> Result<Value, StepError> {
        let session = &self.session;
        let mut datastores: Vec<String> = Vec::new();
        for vm in self.plan_vms(plan) {
            for disk in &vm.facts.disks {
                if !datastores.contains(&disk.datastore) {
                    datastores.push(disk.datastore.clone());
                }
            }
        }
        let entries: Vec<StoragePair> = match (
            &session.context.copy_offload,
            plan.copy_offload,
            &session.storage_secret,
        ) {
            (Some(co), true, Some(secret)) => datastores
                .iter()
                .map(|d| build::offload_storage_pair(d, &session.context.storage_class, co, secret))
                .collect(),
            _ => datastores
                .iter()
                .map(|d| {
                    let mut pair = build::plain_storage_pair(d, &session.context.storage_class);
                    // An OpenShift source's storage is a storage class, referred to by name.
                    if session.context.provider_type == ProviderType::Openshift {
                        pair.source = InventoryRef::name(d);
                    }
                    pair
                })
                .collect(),
        };
        if entries.is_empty() {
            return Err(Missing::ToMap("disks").into());
        }
        Ok(json!(StorageMapSpec {
            provider: self.provider_pair(),
            map: entries,
        }))
    }

    /// The NetworkMap of one Plan: the first source network to the pod network, the others to the
    /// scenario's NADs in order.
    fn network_map_spec(&self, plan: &PlanRun) -> Result<Value, StepError> {
        let vms: Vec<PreparedVm> = self.plan_vms(plan).into_iter().cloned().collect();
        let networks = self.network_sources(&vms, self.spec.config.per_nic_network_map);
        let state = self.state();
        let map: Vec<NetworkPair> = networks
            .iter()
            .enumerate()
            .map(|(index, network)| NetworkPair {
                source: network_source(self.session.context.provider_type, network),
                destination: if index == 0 {
                    NetworkDestination::pod()
                } else {
                    NetworkDestination::multus(
                        &state.multus_namespace,
                        state.nads.get(index - 1).cloned().unwrap_or_default(),
                    )
                },
            })
            .collect();
        if map.is_empty() {
            return Err(Missing::ToMap("NICs").into());
        }
        Ok(json!(NetworkMapSpec {
            provider: self.provider_pair(),
            map,
        }))
    }

    async fn create_plans(&mut self, id: &str) -> Result<(), StepError> {
        let session = self.session.clone();
        let config = self.spec.config.clone();
        let mode = config.migration_mode();
        let mut plans = self.state().plans.clone();
        for plan in &mut plans {
            let (Some(storage_map), Some(network_map)) = (&plan.storage_map, &plan.network_map)
            else {
                return Err(Missing::Earlier("the maps of this Plan").into());
            };
            let state = self.state();
            let vms: Vec<PlanVm> = self
                .plan_vms(plan)
                .into_iter()
                .map(|vm| PlanVm {
                    id: Some(vm.inventory_id.clone()),
                    name: None,
                    target_name: vm.target_name.clone(),
                    hooks: state.hooks.clone(),
                    migrate_shared_disks: vm.config.migrate_shared_disks,
                    luks: None,
                    target_power_state: vm
                        .config
                        .target_power_state
                        .map(|p| p.as_str().to_string()),
                })
                .collect();
            let spec = build::plan_spec(
                session.context.provider_type,
                &session.id,
                &config,
                self.provider_pair(),
                PlanMaps {
                    network: ObjectRef::new(&session.namespace, network_map),
                    storage: ObjectRef::new(&session.namespace, storage_map),
                },
                &state.target_namespace,
                vms,
                plan.copy_offload,
            );
            let name =
                session.names(|n| n.scenario_object(&self.spec.class, &format!("plan-{mode}")));
            let created = self.create_object(&kinds::PLAN, &name, json!(spec)).await?;
            plan.plan_uid = created["metadata"]["uid"].as_str().map(str::to_string);
            // Every option of the scenario must reach the Plan as sent (no webhook may drop one).
            let lost = crate::validate::fields_not_kept(&json!(spec), &created["spec"]);
            if !lost.is_empty() {
                return Err(StepError::failed(format!(
                    "Plan {name} does not hold the scenario's options: {}",
                    lost.join("; ")
                )));
            }
            self.note(id, format!("waiting for Plan {name} to be Ready"));
            let what = format!("Plan {}/{name} to be Ready", session.namespace);
            let ready = session
                .cluster
                .wait_for_from(
                    &kinds::PLAN,
                    Some(&session.namespace),
                    &name,
                    session.timeouts.plan_ready,
                    &what,
                    &created,
                    |plan| match ready_verdict(plan) {
                        Verdict::Done(()) => Verdict::Done(plan.clone()),
                        Verdict::Failed(reason) => Verdict::Failed(reason),
                        Verdict::Pending(state) => Verdict::Pending(state),
                    },
                )
                .await?;
            plan.plan = Some(name);
            plan.ready_plan = Some(ready);
        }
        self.store_plans(plans);
        Ok(())
    }

    async fn migrate(&mut self, id: &str, step: Step) -> Result<(), StepError> {
        let session = self.session.clone();
        let config = self.spec.config.clone();
        let mode = config.migration_mode();
        let mut plans = self.state().plans.clone();
        // Copy-offload: read the populator pods' logs while they exist (MTV deletes them after the
        // copy); the watch starts before the Migrations so no pod comes and goes unseen.
        let (stop_capture, capture_stopped) = tokio::sync::watch::channel(false);
        let capture = if plans.iter().any(|p| p.copy_offload) {
            let (watching, ready) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(crate::xcopy::capture_populate_logs(
                session.cluster.client().clone(),
                self.state().target_namespace.clone(),
                watching,
                capture_stopped,
            ));
            // A watch that cannot start is not fatal here: the check reports what was not seen.
            let _ = tokio::time::timeout(Duration::from_secs(30), ready).await;
            Some(task)
        } else {
            None
        };
        // Create every Migration first, so several Plans run at the same time.
        for plan in &mut plans {
            let Some(plan_name) = &plan.plan else {
                return Err(Missing::Earlier("the Plan").into());
            };
            let cutover = config.warm_migration.then(|| {
                // The cutover is due when that many Forklift minutes have passed on the target's
                // clock (a lab serves a compressed one).
                let minutes = session.context.mins_before_cutover as f64;
                let wait = session.traits.forklift_minutes(minutes);
                rfc3339(std::time::SystemTime::now() + wait)
            });
            let name = session
                .names(|n| n.scenario_object(&self.spec.class, &format!("migration-{mode}")));
            let spec = MigrationSpec {
                plan: ObjectRef::new(&session.namespace, plan_name),
                cutover,
            };
            let created = self
                .create_object(&kinds::MIGRATION, &name, json!(spec))
                .await?;
            plan.migration = Some(name);
            plan.migration_uid = created["metadata"]["uid"].as_str().map(str::to_string);
        }
        self.store_plans(plans.clone());
        // Several Plans must all be Executing before any of them ends (they run at the same time).
        let overlap = std::sync::Mutex::new(Overlap::new(
            plans
                .iter()
                .map(|p| p.plan.clone().unwrap_or_default())
                .collect(),
        ));
        let waits = plans
            .iter()
            .enumerate()
            .map(|(index, plan)| self.wait_migration(id, plan, step, index, &overlap));
        let results = futures_util::future::join_all(waits).await;
        let _ = stop_capture.send(true);
        if let Some(capture) = capture
            && let Ok(logs) = capture.await
            && let Some(state) = &mut self.state
        {
            for plan in state.plans.iter_mut().filter(|p| p.copy_offload) {
                plan.populate_logs = logs
                    .iter()
                    .filter(|(_, log)| {
                        log.migration.is_some() && log.migration == plan.migration_uid
                    })
                    .map(|(name, log)| (name.clone(), log.clone()))
                    .collect();
            }
        }
        results
            .into_iter()
            .collect::<Result<Vec<()>, StepError>>()?;
        if !checklist::applies("check_plans_ran_together", &self.facts(step)) {
            return Ok(());
        }
        self.ran("check_plans_ran_together", None);
        match overlap.into_inner().map(|o| o.violation()) {
            Ok(Some(violation)) => Err(StepError::failed(violation)),
            _ => Ok(()),
        }
    }

    async fn wait_migration(
        &self,
        id: &str,
        plan: &PlanRun,
        step: Step,
        index: usize,
        overlap: &std::sync::Mutex<Overlap>,
    ) -> Result<(), StepError> {
        let session = &self.session;
        let Some(plan_name) = &plan.plan else {
            return Err(Missing::Earlier("the Plan").into());
        };
        let events = session.cluster.events().clone();
        let what = format!("Plan {}/{plan_name} to finish migrating", session.namespace);
        let id_owned = id.to_string();
        let migration_uid = plan.migration_uid.clone().unwrap_or_default();
        // The watch goes on from the Plan its Ready wait delivered: no second list of it.
        let known = plan.ready_plan.clone().unwrap_or(Value::Null);
        let final_plan = session
            .cluster
            .wait_for_from(
                &kinds::PLAN,
                Some(&session.namespace),
                plan_name,
                session.timeouts.migration,
                &what,
                &known,
                |plan| {
                    let vms = migration_progress(plan);
                    if !vms.is_empty() {
                        events.emit(Event::MigrationProgress {
                            id: id_owned.clone(),
                            vms,
                        });
                    }
                    let ended = condition(plan, "Succeeded").is_some()
                        || condition(plan, "Failed").is_some();
                    if ended && let Ok(mut overlap) = overlap.lock() {
                        overlap.ended(index, plan);
                    }
                    if ended {
                        Verdict::Done(plan.clone())
                    } else if let Some(why) = canceled(plan, &migration_uid) {
                        Verdict::Failed(format!("the migration was canceled: {why}"))
                    } else {
                        Verdict::Pending(if condition(plan, "Executing").is_some() {
                            "Executing".to_string()
                        } else {
                            "not started".to_string()
                        })
                    }
                },
            )
            .await?;
        for (vm, phases) in crate::events::vm_timelines(&final_plan) {
            events.emit(Event::VmTimeline {
                id: id.to_string(),
                plan: plan_name.to_string(),
                vm,
                phases,
            });
        }
        self.judge_migration(plan_name, &final_plan, step)
    }

    /// `check_migration_outcome` (and, for warm Plans, `check_precopy_before_cutover`) on a Plan that
    /// ended: did it end as the step expects?
    fn judge_migration(
        &self,
        plan_name: &str,
        final_plan: &Value,
        step: Step,
    ) -> Result<(), StepError> {
        let succeeded = condition(final_plan, "Succeeded").is_some();
        let failures = vm_failures(final_plan);
        self.ran("check_migration_outcome", None);
        match step.expectation {
            StepExpectation::Succeed => {
                if succeeded {
                    if checklist::applies("check_precopy_before_cutover", &self.facts(step)) {
                        self.ran("check_precopy_before_cutover", None);
                        let cold: Vec<String> = without_precopy(final_plan)
                            .iter()
                            .map(|vm| format!("VM {vm}: warm migration: expected at least one precopy before the cutover, got none"))
                            .collect();
                        if !cold.is_empty() {
                            return Err(StepError::failed(cold.join("; ")));
                        }
                    }
                    Ok(())
                } else {
                    Err(StepError::failed(if failures.is_empty() {
                        format!(
                            "Plan {plan_name} Failed: {}",
                            blockers(final_plan).join("; ")
                        )
                    } else {
                        failures
                            .iter()
                            .map(|f| format!("VM {} failed at {}: {}", f.vm, f.step, f.reasons))
                            .collect::<Vec<_>>()
                            .join("; ")
                    }))
                }
            }
            StepExpectation::FailAtStep { step } => {
                if succeeded {
                    return Err(StepError::failed(format!(
                        "the migration was expected to fail at {step} but Plan {plan_name} Succeeded"
                    )));
                }
                let expected = step.to_string();
                let wrong: Vec<String> = failures
                    .iter()
                    .filter(|f| f.step != expected)
                    .map(|f| {
                        format!(
                            "VM {} failed at {} ({}), expected {expected}",
                            f.vm, f.step, f.reasons
                        )
                    })
                    .collect();
                // Every VM of the Plan must have failed there, not only some.
                let unfailed: Vec<String> = plan_vm_names(final_plan)
                    .into_iter()
                    .filter(|vm| !failures.iter().any(|f| &f.vm == vm))
                    .map(|vm| format!("VM {vm} did not fail, expected to fail at {expected}"))
                    .collect();
                if failures.is_empty() {
                    Err(StepError::failed(format!(
                        "Plan {plan_name} Failed but no VM reports a failed step"
                    )))
                } else if !wrong.is_empty() || !unfailed.is_empty() {
                    let mut wrong = wrong;
                    wrong.extend(unfailed);
                    Err(StepError::failed(wrong.join("; ")))
                } else {
                    Ok(())
                }
            }
            StepExpectation::Fail => {
                if succeeded {
                    Err(StepError::failed(format!(
                        "the migration was expected to fail but Plan {plan_name} Succeeded"
                    )))
                } else {
                    Ok(())
                }
            }
            StepExpectation::CheckRetained | StepExpectation::SkippedAfterPreHookFailure => Ok(()),
        }
    }

    /// `test_check_xcopy_used`: per Plan, VM and source datastore, the populator's last `xcopyUsed`
    /// must be 1, or 0 on the non-XCOPY datastore and for VMs with snapshots (the fallback copy).
    async fn check_xcopy_used(&self, id: &str) -> Result<(), StepError> {
        let session = &self.session;
        let state = self.state();
        let Some(co) = &session.context.copy_offload else {
            return Err(Missing::CopyOffloadProfile.into());
        };
        let listed = session
            .inventory
            .get(&format!(
                "/providers/{}/{}/datastores",
                session.context.provider_type, session.source_provider_uid
            ))
            .await?;
        let datastores: std::collections::BTreeMap<String, String> = listed
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|d| {
                        Some((
                            d["name"].as_str()?.to_string(),
                            d["id"].as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let offload_plans: Vec<&PlanRun> = state.plans.iter().filter(|p| p.copy_offload).collect();
        if offload_plans.is_empty() {
            return Err(Missing::CopyOffloadPlan.into());
        }
        let several = offload_plans.len() > 1;
        let mut failures = Vec::new();
        for plan in offload_plans {
            let expected: Vec<crate::xcopy::ExpectedDisk> = self
                .plan_vms(plan)
                .into_iter()
                .flat_map(|vm| {
                    let fallback = !vm.snapshots_before_migration.is_empty()
                        || vm.config.snapshots.unwrap_or(0) > 0;
                    vm.facts
                        .disks
                        .iter()
                        .map(move |disk| crate::xcopy::ExpectedDisk {
                            vm: vm.facts.name.clone(),
                            file: disk.file.clone(),
                            datastore_id: disk.datastore.clone(),
                            expected: if fallback
                                || co.non_xcopy_datastore_id.as_deref()
                                    == Some(disk.datastore.as_str())
                            {
                                0
                            } else {
                                1
                            },
                        })
                })
                .collect();
            let verdict = crate::xcopy::verify(&expected, &plan.populate_logs, &datastores);
            self.ran("check_xcopy_used", None);
            let plan_name = plan.plan.as_deref().unwrap_or("?");
            self.note(id, format!("Plan {plan_name}: {}", verdict.seen.join("; ")));
            failures.extend(verdict.failures.into_iter().map(|f| {
                if several {
                    format!("Plan {plan_name}: {f}")
                } else {
                    f
                }
            }));
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(StepError::failed(failures.join("; ")))
        }
    }

    /// `test_create_snapshots_and_data_marker`: the marker file in each source guest, then the
    /// scenario's snapshots (so the snapshots hold the marker), as the Python suite does.
    async fn create_snapshots_and_data_marker(&mut self, id: &str) -> Result<(), StepError> {
        let session = self.session.clone();
        let (path, content) = data_marker(&session.id);
        let mut vms = self.state().vms.clone();
        for vm in &mut vms {
            self.note(
                id,
                format!("writing {path} in the guest of {}", vm.facts.name),
            );
            // A guest is written while it runs: a VM the scenario keeps off is started for the
            // write and stopped again before its snapshots, as the Python suite does.
            let started = !vm.facts.powered_on;
            if started {
                session.source.set_power(&vm.facts.id, true).await?;
            }
            session
                .source
                .write_guest_file(&vm.facts.id, path, &content)
                .await?;
            if started {
                session.source.set_power(&vm.facts.id, false).await?;
            }
            for index in 0..vm.config.snapshots.unwrap_or(0) {
                session
                    .source
                    .create_snapshot(
                        &vm.facts.id,
                        &snapshot_name(&vm.facts.name, &session.id, index),
                    )
                    .await?;
            }
            vm.facts = session.source.facts(&vm.facts.id).await?;
            vm.snapshots_before_migration = vm.facts.snapshots.clone();
        }
        if let Some(state) = &mut self.state {
            state.vms = vms;
        }
        Ok(())
    }

    /// `test_check_data_integrity`: the marker written before the snapshots is in every migrated guest.
    async fn check_data_integrity(&self, id: &str, step: Step) -> Result<(), StepError> {
        let session = &self.session;
        let state = self.state();
        let (path, content) = data_marker(&session.id);
        let mut problems = Vec::new();
        for vm in &state.vms {
            let facts = self.facts(step);
            if !checklist::vm_checks(step, &facts.for_vm(&vm.config))
                .includes("verify_data_integrity")
            {
                continue;
            }
            let Some(target) = self.find_target_vm(vm).await? else {
                problems.push(format!(
                    "VM {}: no VirtualMachine with label vmID={} in {}",
                    vm.facts.name, vm.inventory_id, state.target_namespace
                ));
                continue;
            };
            let name = target["metadata"]["name"].as_str().unwrap_or("?");
            self.ran("verify_data_integrity", Some(&vm.key));
            if let Some(failure) = self
                .verify_data_integrity(id, &target, path, &content)
                .await?
            {
                problems.push(format!("VM {name}: {failure}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StepError::Validation { problems })
        }
    }

    async fn collect_diagnostics(&self, id: &str) -> Option<String> {
        let state = self.state.as_ref();
        let plans: Vec<diagnostics::PlanObjects> = state
            .map(|s| {
                s.plans
                    .iter()
                    .map(|p| diagnostics::PlanObjects {
                        plan: p.plan.clone(),
                        migration: p.migration.clone(),
                        storage_map: p.storage_map.clone(),
                        network_map: p.network_map.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let target_namespace = state.map(|s| s.target_namespace.clone());
        diagnostics::collect(
            &self.session,
            &self.results_dir,
            id,
            &plans,
            target_namespace.as_deref(),
        )
        .await
    }
}

/// Whether an inventory VM is the source VM awaited: its name (and namespace, for OpenShift, where
/// names are unique per namespace only), and on vSphere and OpenShift the NICs the source now has
/// (a vSphere clone regenerates its MACs; an OpenShift VM gains the NICs added after creation).
fn inventory_shows(
    found: &Value,
    provider_type: ProviderType,
    name: &str,
    source_namespace: Option<&str>,
    expected_macs: &[String],
) -> bool {
    if found["name"] != name || source_namespace.is_some_and(|ns| found["namespace"] != ns) {
        return false;
    }
    let (nics, mac_key) = match provider_type {
        ProviderType::Openshift => (
            found.pointer("/object/spec/template/spec/domain/devices/interfaces"),
            "macAddress",
        ),
        ProviderType::Vsphere => (found.get("nics"), "mac"),
        _ => return true,
    };
    let macs: Vec<String> = nics
        .and_then(Value::as_array)
        .map(|nics| {
            nics.iter()
                .filter_map(|n| n[mac_key].as_str())
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default();
    macs.len() == expected_macs.len() && expected_macs.iter().all(|m| macs.contains(m))
}

/// A NetworkMap source for a source network: OpenShift's pod network is `{type: pod}` and its NADs
/// `{name: "namespace/name"}`; other sources' networks are inventory ids.
fn network_source(provider_type: ProviderType, network: &str) -> InventoryRef {
    match provider_type {
        ProviderType::Openshift if network == "pod" => InventoryRef {
            kind: Some("pod".into()),
            ..InventoryRef::default()
        },
        ProviderType::Openshift => InventoryRef::name(network),
        _ => InventoryRef::id(network),
    }
}

/// The name of a scenario snapshot, as the Python suite names them.
fn snapshot_name(vm: &str, session: &str, index: u32) -> String {
    format!("{vm}-{session}-snapshot-{index}")
}

/// Where the data-integrity marker lives in the guest, and what it says.
fn data_marker(session: &str) -> (&'static str, String) {
    (
        "/root/mtv-data-integrity-marker",
        format!("mtv-data-integrity-{session}"),
    )
}

fn provisioning_name(p: mtv_catalog::model::DiskProvisioning) -> &'static str {
    match p {
        mtv_catalog::model::DiskProvisioning::Thin => "thin",
        mtv_catalog::model::DiskProvisioning::ThickLazy => "thick-lazy",
        mtv_catalog::model::DiskProvisioning::ThickEager => "thick-eager",
    }
}

fn mode_name(m: mtv_catalog::model::DiskMode) -> &'static str {
    match m {
        mtv_catalog::model::DiskMode::Persistent => "persistent",
        mtv_catalog::model::DiskMode::IndependentPersistent => "independent_persistent",
        mtv_catalog::model::DiskMode::IndependentNonpersistent => "independent_nonpersistent",
    }
}

/// RFC 3339 UTC with second precision.
pub fn rfc3339(at: std::time::SystemTime) -> String {
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    mtv_api::time::format_rfc3339(secs)
}

/// Per-VM progress of a Plan: the running pipeline step and the disk-transfer percentage.
/// Why the Plan's run of this Migration was canceled, if it was. Forklift puts `Canceled` on the Plan
/// only when it cancels a migration it still runs; when the Migration is deleted it records `Canceled`
/// (reason `Deleted`) in the Migration's snapshot of `status.migration.history` alone.
fn canceled(plan: &Value, migration_uid: &str) -> Option<String> {
    if let Some(c) = condition(plan, "Canceled") {
        return Some(c["message"].as_str().unwrap_or("Canceled").to_string());
    }
    plan.pointer("/status/migration/history")
        .and_then(Value::as_array)?
        .iter()
        .filter(|snapshot| {
            !migration_uid.is_empty() && snapshot["migration"]["uid"] == migration_uid
        })
        .find_map(|snapshot| {
            snapshot["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Canceled" && c["status"] == "True")
        })
        .map(|c| c["message"].as_str().unwrap_or("Canceled").to_string())
}

pub fn migration_progress(plan: &Value) -> Vec<VmProgress> {
    plan.pointer("/status/migration/vms")
        .and_then(Value::as_array)
        .map(|vms| {
            vms.iter()
                .map(|vm| {
                    let pipeline = vm["pipeline"].as_array().cloned().unwrap_or_default();
                    let running = pipeline
                        .iter()
                        .find(|s| s["phase"] == "Running")
                        .and_then(|s| s["name"].as_str())
                        .or_else(|| vm["phase"].as_str())
                        .unwrap_or("Pending")
                        .to_string();
                    let (done, total) = pipeline
                        .iter()
                        .filter(|s| s["annotations"]["unit"] == "MB")
                        .fold((0.0, 0.0), |(d, t), s| {
                            (
                                d + s["progress"]["completed"].as_f64().unwrap_or(0.0),
                                t + s["progress"]["total"].as_f64().unwrap_or(0.0),
                            )
                        });
                    VmProgress {
                        vm: vm["name"]
                            .as_str()
                            .or_else(|| vm["id"].as_str())
                            .unwrap_or("?")
                            .to_string(),
                        pipeline_step: running,
                        percent: (total > 0.0).then(|| (done / total * 100.0).min(100.0)),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A VM that failed, where, and why (from the Plan's pipeline, which is updated first).
/// Whether the Plans of one migrate step ran at the same time (the Python suite's simultaneous-migration
/// assertion), judged from the server's own timestamps once every Plan has ended: each Plan's
/// migration must have started before (or in the second that) every other one completed. Not judged
/// from the order the watches deliver: separate watches can show one Plan's end before another's
/// start that happened earlier. One Plan always passes.
#[derive(Debug)]
pub struct Overlap {
    plans: Vec<String>,
    /// `status.migration.started` and `completed` of each Plan as it ended, in Unix seconds.
    spans: Vec<Option<(Option<i64>, Option<i64>)>>,
}

impl Overlap {
    pub fn new(plans: Vec<String>) -> Self {
        let spans = vec![None; plans.len()];
        Overlap { plans, spans }
    }

    /// Records a Plan as it ended.
    pub fn ended(&mut self, index: usize, plan: &Value) {
        let at = |field: &str| {
            plan.pointer(&format!("/status/migration/{field}"))
                .and_then(Value::as_str)
                .and_then(mtv_api::time::parse_rfc3339)
        };
        if let Some(span) = self.spans.get_mut(index) {
            *span = Some((at("started"), at("completed")));
        }
    }

    pub fn violation(&self) -> Option<String> {
        if self.plans.len() < 2 {
            return None;
        }
        let shown = |secs: i64| mtv_api::time::format_rfc3339(secs);
        for (b, span) in self.spans.iter().enumerate() {
            let Some((started, _)) = span else { continue };
            let Some(started) = started else {
                return Some(format!(
                    "the Plans were expected to run at the same time, but Plan {} never started",
                    self.plans[b]
                ));
            };
            for (a, other) in self.spans.iter().enumerate() {
                if let Some((_, Some(completed))) = other
                    && a != b
                    && started > completed
                {
                    return Some(format!(
                        "the Plans were expected to run at the same time, but Plan {} started at {} after Plan {} completed at {}",
                        self.plans[b],
                        shown(*started),
                        self.plans[a],
                        shown(*completed)
                    ));
                }
            }
        }
        None
    }
}

/// The VMs of a Plan's current migration (`status.migration.vms`).
fn migration_vms(plan: &Value) -> &[Value] {
    plan.pointer("/status/migration/vms")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// How a migration VM is named in messages: its name, else its id.
fn migration_vm_name(vm: &Value) -> String {
    vm["name"]
        .as_str()
        .or_else(|| vm["id"].as_str())
        .unwrap_or("?")
        .to_string()
}

/// The VMs of a Plan's current migration, by name (else id).
pub fn plan_vm_names(plan: &Value) -> Vec<String> {
    migration_vms(plan).iter().map(migration_vm_name).collect()
}

/// The VMs of a warm Plan that reached the end without a single precopy.
pub fn without_precopy(plan: &Value) -> Vec<String> {
    migration_vms(plan)
        .iter()
        .filter(|vm| {
            vm.pointer("/warm/precopies")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
        })
        .map(migration_vm_name)
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmFailure {
    pub vm: String,
    pub step: String,
    pub reasons: String,
}

pub fn vm_failures(plan: &Value) -> Vec<VmFailure> {
    migration_vms(plan)
        .iter()
        .filter_map(|vm| {
            let pipeline = vm["pipeline"].as_array()?;
            let failed = pipeline
                .iter()
                .find(|s| s.get("error").is_some_and(|e| !e.is_null()))?;
            let reasons = failed["error"]["reasons"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            Some(VmFailure {
                vm: migration_vm_name(vm),
                step: failed["name"].as_str().unwrap_or("?").to_string(),
                reasons,
            })
        })
        .collect()
}

#[cfg(test)]
mod cancel_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_deleted_migration_is_seen_in_the_history_where_forklift_records_it() {
        // plan/controller.go activeMigration(): the snapshot gets Canceled/Deleted, the Plan does not.
        let plan = json!({"status": {
            "conditions": [{"type": "Ready", "status": "True", "category": "Required"}],
            "migration": {"history": [
                {"migration": {"uid": "m-0"}, "conditions": [{"type": "Succeeded", "status": "True"}]},
                {"migration": {"uid": "m-1"}, "conditions": [{"type": "Canceled", "status": "True", "reason": "Deleted", "message": "The migration has been deleted."}]}
            ]}
        }});
        assert_eq!(
            canceled(&plan, "m-1").as_deref(),
            Some("The migration has been deleted.")
        );
        assert_eq!(canceled(&plan, "m-0"), None);
        assert_eq!(canceled(&plan, ""), None);
        let on_plan = json!({"status": {"conditions": [{"type": "Canceled", "status": "True", "message": "The plan execution has been CANCELED."}]}});
        assert!(canceled(&on_plan, "m-2").is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scenario_can_run_on_any_worker_thread() {
        fn is_send<T: Send>(_: &T) {}
        fn check(session: Arc<Session>, spec: ScenarioSpec) {
            let future = run_scenario(session, spec, std::path::PathBuf::new());
            is_send(&future);
        }
        let _ = check;
    }

    #[test]
    fn openshift_networks_are_the_pod_type_or_nad_names() {
        let pod = network_source(ProviderType::Openshift, "pod");
        assert_eq!(serde_json::to_value(&pod).unwrap(), json!({"type": "pod"}));
        let nad = network_source(ProviderType::Openshift, "s-source-vms/cb-1");
        assert_eq!(
            serde_json::to_value(&nad).unwrap(),
            json!({"name": "s-source-vms/cb-1"})
        );
        let vsphere = network_source(ProviderType::Vsphere, "network-1");
        assert_eq!(
            serde_json::to_value(&vsphere).unwrap(),
            json!({"id": "network-1"})
        );
    }

    #[test]
    fn rfc3339_is_utc_with_seconds() {
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        assert_eq!(rfc3339(at), "2025-11-24T16:00:00Z");
    }

    #[test]
    fn failures_name_the_vm_the_step_and_the_reasons() {
        let plan = json!({"status": {"migration": {"vms": [
            {"name": "web", "pipeline": [
                {"name": "Initialize", "phase": "Completed"},
                {"name": "PostHook", "phase": "Completed", "error": {"phase": "PostHook", "reasons": ["Job has reached the specified backoff limit"]}}
            ]},
            {"name": "db", "pipeline": [{"name": "Initialize", "phase": "Completed"}]}
        ]}}});
        assert_eq!(
            vm_failures(&plan),
            [VmFailure {
                vm: "web".into(),
                step: "PostHook".into(),
                reasons: "Job has reached the specified backoff limit".into()
            }]
        );
    }

    #[test]
    fn plans_must_have_run_at_the_same_time() {
        let plan = |started: Option<&str>, completed: &str| json!({"status": {"migration": {"started": started, "completed": completed}}});
        // The Plans' ends in the order the watches report them: (index, started, completed).
        let ended = |ends: &[(usize, Option<&str>, &str)]| {
            let mut overlap = Overlap::new(vec!["a".into(), "b".into()]);
            for (index, started, completed) in ends {
                overlap.ended(*index, &plan(*started, completed));
            }
            overlap
        };
        // Watches may report b's end first; only the timestamps count.
        let together = ended(&[
            (1, Some("2026-12-03T08:00:05Z"), "2026-12-03T08:03:00Z"),
            (0, Some("2026-12-03T08:00:00Z"), "2026-12-03T08:02:00Z"),
        ]);
        assert_eq!(together.violation(), None);
        // Started in the second the other completed: not provably apart.
        let same_second = ended(&[
            (0, Some("2026-12-03T08:00:00Z"), "2026-12-03T08:00:01Z"),
            (1, Some("2026-12-03T08:00:01Z"), "2026-12-03T08:00:02Z"),
        ]);
        assert_eq!(same_second.violation(), None);
        let one_after_the_other = ended(&[
            (0, Some("2026-12-03T08:00:00Z"), "2026-12-03T08:02:00Z"),
            (1, Some("2026-12-03T08:02:01Z"), "2026-12-03T08:04:00Z"),
        ]);
        assert_eq!(
            one_after_the_other.violation().as_deref(),
            Some(
                "the Plans were expected to run at the same time, but Plan b started at 2026-12-03T08:02:01Z after Plan a completed at 2026-12-03T08:02:00Z"
            )
        );
        let never = ended(&[
            (0, Some("2026-12-03T08:00:00Z"), "2026-12-03T08:02:00Z"),
            (1, None, "2026-12-03T08:02:00Z"),
        ]);
        assert_eq!(
            never.violation().as_deref(),
            Some("the Plans were expected to run at the same time, but Plan b never started")
        );
        let mut alone = Overlap::new(vec!["a".into()]);
        alone.ended(0, &plan(None, "2026-12-03T08:02:00Z"));
        assert_eq!(alone.violation(), None);
    }

    #[test]
    fn progress_sums_the_disk_steps() {
        let plan = json!({"status": {"migration": {"vms": [
            {"name": "web", "phase": "CopyDisks", "pipeline": [
                {"name": "Initialize", "phase": "Completed", "progress": {"completed": 0, "total": 1}},
                {"name": "DiskTransfer", "phase": "Running", "annotations": {"unit": "MB"}, "progress": {"completed": 512, "total": 2048}}
            ]}
        ]}}});
        let progress = migration_progress(&plan);
        assert_eq!(progress[0].pipeline_step, "DiskTransfer");
        assert_eq!(progress[0].percent, Some(25.0));
    }
}
