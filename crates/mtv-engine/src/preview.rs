//! The setup plan (`mtv-tests plan`): per scenario, its steps and the Kubernetes objects each step
//! would create, built by the same naming and spec builders a run uses, without touching a cluster.
//!
//! Values a run learns from the cluster or the inventory (ids, MACs, the random suffix of names) are
//! shown as `<placeholders>`.

use std::collections::BTreeMap;

use mtv_api::ProviderType;
use mtv_api::forklift::{
    self, InventoryRef, MigrationSpec, NetworkDestination, NetworkMapSpec, NetworkPair, ObjectRef,
    PlanHookRef, PlanMaps, PlanVm, ProviderPair, StorageMapSpec, StoragePair,
};
use mtv_catalog::catalog::vm_plan_key;
use mtv_catalog::model::{ExpectedResult, HookConfig, PlanConfig, Power, VmConfig};
use mtv_catalog::steps::{Step, StepExpectation, StepKind};
use serde::Serialize;
use serde_json::{Value, json};

use crate::checklist::{self, PlannedCheck};
use crate::context::SessionContext;
use crate::names::SessionNames;

/// The placeholder the preview uses for the random part of generated names.
pub const RAND4: &str = "<rand4>";
/// The placeholder for the session id (`<target_namespace_prefix>-<4 chars>` in a run).
pub const SESSION: &str = "<session>";

/// One object a step would create, patch or read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectPreview {
    /// `create`, `patch`, `clone` or `read`.
    pub action: &'static str,
    pub kind: String,
    pub api_version: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The spec (or, for Secrets, the key names only; values never appear).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub fields: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepPreview {
    pub id: String,
    pub step: StepKind,
    pub expectation: String,
    pub objects: Vec<ObjectPreview>,
    /// What the step waits for, with its timeout.
    pub waits: Vec<String>,
    /// The checks the step runs, from the table the runner reads ([`crate::checklist`]).
    pub checks: Vec<PlannedCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioPreview {
    pub scenario: String,
    /// Objects prepared before the first step (source clones, NADs, Hooks, namespaces).
    pub prepare: Vec<ObjectPreview>,
    pub steps: Vec<StepPreview>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionPreview {
    pub session_id: String,
    pub objects: Vec<ObjectPreview>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunPreview {
    pub version: u32,
    pub source_provider: String,
    pub provider_type: ProviderType,
    pub storage_class: String,
    pub session: SessionPreview,
    pub scenarios: Vec<ScenarioPreview>,
}

/// A scenario to preview: its name (`Class[id]`), class, config and steps.
pub struct ScenarioInput<'a> {
    pub name: &'a str,
    pub class: &'a str,
    pub config: &'a PlanConfig,
    pub steps: &'a [Step],
}

fn object(
    action: &'static str,
    kind: &str,
    api_version: &str,
    name: impl Into<String>,
    namespace: Option<&str>,
    fields: Value,
) -> ObjectPreview {
    ObjectPreview {
        action,
        kind: kind.to_string(),
        api_version: api_version.to_string(),
        name: name.into(),
        namespace: namespace.map(str::to_string),
        fields,
        note: None,
    }
}

fn with_note(mut object: ObjectPreview, note: impl Into<String>) -> ObjectPreview {
    object.note = Some(note.into());
    object
}

fn to_value<T: Serialize>(value: &T) -> Value {
    // Serialising our own plain structs cannot fail; fall back to null rather than panic.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The name a source VM has in the catalog after the profile's copy-offload `default_vm_name`.
fn source_vm_name<'a>(vm: &'a VmConfig, ctx: &'a SessionContext) -> &'a str {
    match (&ctx.copy_offload, vm.clone) {
        (Some(co), true) => co.default_vm_name.as_deref().unwrap_or(&vm.name),
        _ => &vm.name,
    }
}

/// Builds the whole preview. Session-level objects appear once; scenario objects refer to them.
pub fn preview_run(ctx: &SessionContext, scenarios: &[ScenarioInput<'_>]) -> RunPreview {
    let any_copy_offload = scenarios.iter().any(|s| s.config.copyoffload);
    let any_warm = scenarios.iter().any(|s| s.config.warm_migration);
    let any_remote = scenarios.iter().any(|s| s.config.remote_destination);
    let mut names = SessionNames::new(
        SESSION,
        ctx.provider_type,
        &ctx.provider_version,
        any_copy_offload,
        || RAND4.to_string(),
    );
    let namespace = names.session_namespace();
    let source_secret = names.source_secret();
    let source_provider = names.source_provider();
    let destination_provider = names.destination_provider();

    let mut session_objects = vec![with_note(
        object(
            "create",
            "Namespace",
            "v1",
            &namespace,
            None,
            json!({"labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "mutatevirtualmachines.kubemacpool.io": "ignore",
                "mtv-tests/session": SESSION,
            }}),
        ),
        "the session namespace; every object below carries the label mtv-tests/session",
    )];
    let secret_keys: Vec<&str> = ctx.source_secret_keys();
    session_objects.push(object(
        "create",
        "Secret",
        "v1",
        &source_secret,
        Some(&namespace),
        json!({"labels": {"createdForProviderType": ctx.provider_type.as_str()}, "keys": secret_keys}),
    ));
    let provider = source_provider_preview(
        ctx,
        &namespace,
        &source_provider,
        &source_secret,
        any_copy_offload,
    );
    session_objects.push(with_note(
        provider,
        format!(
            "wait Ready (600s; stop at once on ConnectionFailed); profile '{}'",
            ctx.source_provider
        ),
    ));
    session_objects.push(with_note(
        object(
            "create",
            "Provider",
            forklift::API_VERSION,
            &destination_provider,
            Some(&namespace),
            json!({"type": "openshift", "url": "", "secret": {}}),
        ),
        "the host cluster as destination; wait Ready",
    ));
    if any_remote {
        session_objects.extend(remote_destination_preview(&mut names, &namespace));
    }
    let mut storage_secret = None;
    if let (true, Some(co)) = (any_copy_offload, &ctx.copy_offload) {
        let name = names.copy_offload_storage_secret();
        session_objects.push(with_note(
            object(
                "create",
                "Secret",
                "v1",
                &name,
                Some(&namespace),
                json!({"keys": co.storage_secret_keys}),
            ),
            format!(
                "storage array credentials for {} (COPYOFFLOAD_* variables win over the file)",
                co.storage_vendor_product
            ),
        ));
        storage_secret = Some(name);
    }
    if any_warm {
        session_objects.push(with_note(
            object(
                "patch",
                "ForkliftController",
                forklift::API_VERSION,
                "forklift-controller",
                Some(&ctx.mtv_namespace),
                json!({"controller_precopy_interval": ctx.snapshots_interval}),
            ),
            "warm scenarios: precopy interval from snapshots_interval; restored at teardown",
        ));
    }

    let session = Session {
        ctx,
        namespace: namespace.clone(),
        source_provider,
        destination_provider,
        storage_secret,
    };
    let scenarios = scenarios
        .iter()
        .map(|input| preview_scenario(&session, &mut names, input))
        .collect();
    RunPreview {
        version: 1,
        source_provider: ctx.source_provider.clone(),
        provider_type: ctx.provider_type,
        storage_class: ctx.storage_class.clone(),
        session: SessionPreview {
            session_id: SESSION.to_string(),
            objects: session_objects,
        },
        scenarios,
    }
}

struct Session<'a> {
    ctx: &'a SessionContext,
    namespace: String,
    source_provider: String,
    destination_provider: String,
    storage_secret: Option<String>,
}

fn hook_playbook_note(hook: &HookConfig) -> String {
    match (
        hook.expected_result,
        &hook.playbook_base64,
        hook.aap_job_template_id,
    ) {
        (Some(ExpectedResult::Succeed), _, _) => "built-in playbook that succeeds".into(),
        (Some(ExpectedResult::Fail), _, _) => "built-in playbook that fails".into(),
        (_, Some(_), _) => "custom playbook from the catalog".into(),
        (_, _, Some(id)) => format!("AAP job template {id}"),
        _ => "no playbook".into(),
    }
}

fn preview_scenario(
    session: &Session<'_>,
    names: &mut SessionNames<'_>,
    input: &ScenarioInput<'_>,
) -> ScenarioPreview {
    let ctx = session.ctx;
    let config = input.config;
    let namespace = &session.namespace;
    let class = input.class;
    let mut prepare = Vec::new();

    let target_namespace = config
        .vm_target_namespace
        .as_ref()
        .map(|ns| ns.replace("{rand4}", RAND4))
        .unwrap_or_else(|| namespace.clone());
    if config.vm_target_namespace.is_some() {
        prepare.push(with_note(
            object(
                "create",
                "Namespace",
                "v1",
                &target_namespace,
                None,
                Value::Null,
            ),
            "vm_target_namespace, same labels as the session namespace",
        ));
    }

    // Source VMs: OVA is never cloned, OpenShift sources are created fresh, the rest are cloned.
    let mut plan_vm_names = Vec::new();
    for vm in &config.virtual_machines {
        let (vm_ref, prepared) = source_vm_preview(ctx, names, config, vm);
        prepare.push(prepared);
        plan_vm_names.push((vm, vm_ref));
    }
    prepare.push(with_note(
        object(
            "read",
            "inventory",
            "forklift-inventory",
            "vms",
            None,
            Value::Null,
        ),
        format!(
            "wait until every source VM is in the Forklift inventory ({}s)",
            config.inventory_timeout.unwrap_or(300)
        ),
    ));

    let multus_namespace = config
        .multus_namespace
        .clone()
        .unwrap_or_else(|| namespace.clone());
    let first_nad = names.nad(input.name, 1);
    prepare.push(with_note(
        object(
            "create",
            "NetworkAttachmentDefinition",
            "k8s.cni.cncf.io/v1",
            format!("{}-<n>", first_nad.trim_end_matches("-1")),
            Some(&multus_namespace),
            json!({"config": {"cniVersion": "0.3.1", "type": "cnv-bridge", "bridge": "cnv-bridge"}}),
        ),
        if config.per_nic_network_map {
            "one per source NIC after the first (per_nic_network_map)"
        } else {
            "one per distinct source network after the first"
        },
    ));

    let (hook_objects, hooks) = hooks_preview(session, names, class, config);
    prepare.extend(hook_objects);

    let refs = ScenarioRefs {
        session,
        input,
        target_namespace,
        multus_namespace,
        first_nad,
        plan_vm_names,
        hooks,
    };
    let objects = plan_objects(&refs, names);
    let steps = input
        .steps
        .iter()
        .map(|step| step_preview(&refs, &objects, *step))
        .collect();

    ScenarioPreview {
        scenario: input.name.to_string(),
        prepare,
        steps,
    }
}

/// How one catalog VM is prepared, and how the Plan refers to it (the clone's or the OVA's name).
fn source_vm_preview(
    ctx: &SessionContext,
    names: &mut SessionNames<'_>,
    config: &PlanConfig,
    vm: &VmConfig,
) -> (String, ObjectPreview) {
    let source = source_vm_name(vm, ctx);
    match ctx.provider_type {
        ProviderType::Ova => {
            let target = format!("{SESSION}-{source}");
            (
                target.clone(),
                with_note(
                    object("read", "OVA image", "inventory", source, None, Value::Null),
                    format!("not cloned; Plan targetName {target}"),
                ),
            )
        }
        ProviderType::Openshift => {
            let name = format!("{source}-{RAND4}");
            (
                name.clone(),
                with_note(
                    object(
                        "create",
                        "VirtualMachine",
                        "kubevirt.io/v1",
                        &name,
                        Some(&names.source_vms_namespace()),
                        Value::Null,
                    ),
                    "source VM created in the source namespace and started",
                ),
            )
        }
        _ if config.skip_clone => (
            source.to_string(),
            with_note(
                object("read", "source VM", "inventory", source, None, Value::Null),
                "skip_clone: the existing VM is used; its power state is restored at teardown",
            ),
        ),
        _ => {
            let clone = if vm.preserve_name_format {
                format!("{SESSION}-{}", vm.clone_name.as_deref().unwrap_or(source))
            } else {
                names.clone_name(
                    vm.clone_name.as_deref().unwrap_or(source),
                    &ctx.storage_class,
                    ctx.target_ocp_version.as_deref(),
                    config.warm_migration,
                )
            };
            let details = clone_details(ctx, config, vm);
            let kind = if ctx.provider_type == ProviderType::Ovirt {
                "VM from template"
            } else {
                "VM clone"
            };
            (
                clone.clone(),
                with_note(
                    object("clone", kind, "source", &clone, None, Value::Null),
                    format!(
                        "from {source}{}",
                        if details.is_empty() {
                            String::new()
                        } else {
                            format!("; {}", details.join(", "))
                        }
                    ),
                ),
            )
        }
    }
}

/// What preparing a clone changes, in words (`plan` shows it beside the clone).
fn clone_details(ctx: &SessionContext, config: &PlanConfig, vm: &VmConfig) -> Vec<String> {
    let mut details = Vec::new();
    if let Some(power) = vm.source_vm_power {
        details.push(format!(
            "power {}",
            if power == Power::On { "on" } else { "off" }
        ));
    }
    if config.warm_migration && ctx.provider_type == ProviderType::Vsphere {
        details.push("CBT enabled".into());
    }
    if let Some(disk_type) = vm.disk_type {
        details.push(format!(
            "disks {}",
            to_value(&disk_type).as_str().unwrap_or("")
        ));
    }
    if !vm.add_disks.is_empty() {
        let sizes: Vec<String> = vm
            .add_disks
            .iter()
            .map(|d| match d.rdm_type {
                Some(rdm) => format!("RDM {}", to_value(&rdm).as_str().unwrap_or("")),
                None => format!("{} GB", d.size_gb),
            })
            .collect();
        details.push(format!("add disks {}", sizes.join(", ")));
    }
    if let Some(n) = vm.snapshots {
        details.push(format!("{n} snapshots"));
    }
    if vm.add_nic {
        details.push(format!(
            "add NIC (start {})",
            if vm.add_nic_start_connected == Some(true) {
                "connected"
            } else {
                "disconnected"
            }
        ));
    }
    details
}

/// What the preview of a scenario's steps refers to, once its preparation is known.
struct ScenarioRefs<'a, 'b> {
    session: &'a Session<'b>,
    input: &'a ScenarioInput<'a>,
    target_namespace: String,
    multus_namespace: String,
    first_nad: String,
    /// Each catalog VM with the name the Plan refers to it by.
    plan_vm_names: Vec<(&'a VmConfig, String)>,
    hooks: Vec<PlanHookRef>,
}

/// The objects the scenario's steps create, one of each per Plan.
struct StepObjects {
    storage_maps: Vec<ObjectPreview>,
    network_maps: Vec<ObjectPreview>,
    plans: Vec<ObjectPreview>,
    migrations: Vec<ObjectPreview>,
    several: bool,
}

fn plan_objects(refs: &ScenarioRefs<'_, '_>, names: &mut SessionNames<'_>) -> StepObjects {
    let (session, config, class) = (refs.session, refs.input.config, refs.input.class);
    let (ctx, namespace) = (session.ctx, &session.namespace);
    let mode = config.migration_mode();
    let plan_groups = plan_groups(config);

    let mut storage_maps = Vec::new();
    let mut network_maps = Vec::new();
    let mut plans = Vec::new();
    let mut migrations = Vec::new();
    let destination = if config.remote_destination {
        names.remote_destination_provider()
    } else {
        session.destination_provider.clone()
    };
    let provider_pair = ProviderPair {
        source: ObjectRef::new(namespace, &session.source_provider),
        destination: ObjectRef::new(namespace, &destination),
    };
    let several = plan_groups.len() > 1;
    for (index, (vms, copy_offload)) in plan_groups.iter().enumerate() {
        // Several Plans of one scenario are told apart by their number.
        let kind = |base: &str| {
            if several {
                format!("{base}-{}", index + 1)
            } else {
                base.to_string()
            }
        };
        let storage_map = names.scenario_object(class, &kind("storagemap"));
        let storage_entries = storage_map_entries(session, vms, *copy_offload);
        storage_maps.push(object(
            "create",
            "StorageMap",
            forklift::API_VERSION,
            &storage_map,
            Some(namespace),
            to_value(&StorageMapSpec {
                provider: provider_pair.clone(),
                map: storage_entries,
            }),
        ));
        let network_map = names.scenario_object(class, &kind("networkmap"));
        network_maps.push(network_map_preview(
            &network_map,
            namespace,
            &provider_pair,
            &refs.multus_namespace,
            &refs.first_nad,
        ));
        let plan_name = names.scenario_object(class, &kind(&format!("plan-{mode}")));
        let vm_entries = vms
            .iter()
            .map(|vm| {
                let reference = refs
                    .plan_vm_names
                    .iter()
                    .find(|(v, _)| std::ptr::eq(*v, *vm))
                    .map(|(_, r)| r.clone())
                    .unwrap_or_default();
                plan_vm(ctx, vm, &reference, &refs.hooks)
            })
            .collect();
        let spec = crate::build::plan_spec(
            ctx.provider_type,
            SESSION,
            config,
            provider_pair.clone(),
            PlanMaps {
                network: ObjectRef::new(namespace, &network_map),
                storage: ObjectRef::new(namespace, &storage_map),
            },
            &refs.target_namespace,
            vm_entries,
            *copy_offload,
        );
        plans.push(object(
            "create",
            "Plan",
            forklift::API_VERSION,
            &plan_name,
            Some(namespace),
            to_value(&spec),
        ));
        let migration_name = names.scenario_object(class, &kind(&format!("migration-{mode}")));
        migrations.push(object(
            "create",
            "Migration",
            forklift::API_VERSION,
            &migration_name,
            Some(namespace),
            to_value(&MigrationSpec {
                plan: ObjectRef::new(namespace, &plan_name),
                cutover: config
                    .warm_migration
                    .then(|| format!("<now + {} min, RFC 3339 UTC>", ctx.mins_before_cutover)),
            }),
        ));
    }

    StepObjects {
        storage_maps,
        network_maps,
        plans,
        migrations,
        several,
    }
}

/// One step as `plan` shows it: the objects it creates, what it waits for, what it checks.
fn step_preview(refs: &ScenarioRefs<'_, '_>, objects: &StepObjects, step: Step) -> StepPreview {
    let (ctx, config) = (refs.session.ctx, refs.input.config);
    let id = mtv_catalog::catalog::item_id(refs.input.name, step.kind);
    let (created, waits) = match step.kind {
        StepKind::CreateSnapshotsAndDataMarker => (
            vec![with_note(
                object(
                    "write",
                    "guest file",
                    "source",
                    "/root/mtv-data-integrity-marker",
                    None,
                    Value::Null,
                ),
                "the data marker mtv-data-integrity-<session> in each source guest, then the snapshots",
            )],
            vec![],
        ),
        StepKind::CreateStorageMap => (
            objects.storage_maps.clone(),
            vec!["StorageMap Ready (60s)".to_string()],
        ),
        StepKind::CreateNetworkMap => (
            objects.network_maps.clone(),
            vec!["NetworkMap Ready (60s)".to_string()],
        ),
        StepKind::CreatePlan => (
            objects.plans.clone(),
            vec!["Plan Ready (360s); on timeout the failing conditions are reported".to_string()],
        ),
        StepKind::MigrateVms => {
            let mut waits = vec![format!(
                "Plan {} by watch ({}s plan_wait_timeout)",
                match step.expectation {
                    StepExpectation::Succeed => "Succeeded".to_string(),
                    StepExpectation::FailAtStep { step } =>
                        format!("Failed with every VM failed at {step}"),
                    _ => "Failed".to_string(),
                },
                ctx.plan_wait_timeout
            )];
            if config.warm_migration {
                waits.insert(0, "at least one precopy before cutover".to_string());
            }
            if objects.several {
                waits.insert(
                    0,
                    "both Plans Executing at the same time (120s)".to_string(),
                );
            }
            (objects.migrations.clone(), waits)
        }
        StepKind::CheckXcopyUsed | StepKind::CheckVms | StepKind::CheckDataIntegrity => {
            (vec![], vec![])
        }
    };
    let checks = checklist::planned(ctx.provider_type, ctx.guest_logins.any(), config, step);
    StepPreview {
        id,
        step: step.kind,
        expectation: expectation_text(step.expectation),
        objects: created,
        waits,
        checks,
    }
}

/// The VMs of each Plan of a scenario and whether the Plan offloads its copy.
fn plan_groups(config: &PlanConfig) -> Vec<(Vec<&VmConfig>, bool)> {
    if config.concurrent_plans.is_empty() {
        vec![(config.virtual_machines.iter().collect(), config.copyoffload)]
    } else {
        config
            .concurrent_plans
            .iter()
            .map(|plan| {
                let vms = config
                    .virtual_machines
                    .iter()
                    .filter(|vm| {
                        plan.virtual_machines
                            .iter()
                            .any(|key| key == vm_plan_key(vm))
                    })
                    .collect();
                (vms, plan.copyoffload.unwrap_or(config.copyoffload))
            })
            .collect()
    }
}

/// The scenario's Hooks (created before the first step) and how the Plan's VMs refer to them.
fn hooks_preview(
    session: &Session<'_>,
    names: &mut SessionNames<'_>,
    class: &str,
    config: &PlanConfig,
) -> (Vec<ObjectPreview>, Vec<PlanHookRef>) {
    let namespace = &session.namespace;
    let mut prepare = Vec::new();
    let mut hooks: Vec<PlanHookRef> = Vec::new();
    for (step, hook) in [
        ("PreHook", &config.pre_hook),
        ("PostHook", &config.post_hook),
    ] {
        let Some(hook) = hook else { continue };
        let name = names.scenario_object(class, &step.to_ascii_lowercase());
        let spec = match hook.aap_job_template_id {
            Some(id) => json!({"aap": {"jobTemplateId": id}}),
            None => json!({"image": forklift::HOOK_RUNNER_IMAGE, "playbook": "<base64>"}),
        };
        prepare.push(with_note(
            object(
                "create",
                "Hook",
                forklift::API_VERSION,
                &name,
                Some(namespace),
                spec,
            ),
            format!("{step}: {}", hook_playbook_note(hook)),
        ));
        hooks.push(PlanHookRef {
            hook: ObjectRef::new(namespace, name),
            step: step.to_string(),
        });
    }
    (prepare, hooks)
}

/// A NetworkMap as `plan` shows it: the first source network to the pod network, the others to
/// the scenario's NADs.
fn network_map_preview(
    network_map: &str,
    namespace: &str,
    provider_pair: &ProviderPair,
    multus_namespace: &str,
    first_nad: &str,
) -> ObjectPreview {
    object(
        "create",
        "NetworkMap",
        forklift::API_VERSION,
        network_map,
        Some(namespace),
        to_value(&NetworkMapSpec {
            provider: provider_pair.clone(),
            map: vec![
                NetworkPair {
                    source: InventoryRef::id("<first source network>"),
                    destination: NetworkDestination::pod(),
                },
                NetworkPair {
                    source: InventoryRef::id("<n-th source network>"),
                    destination: NetworkDestination::multus(
                        multus_namespace,
                        format!("{}-<n>", first_nad.trim_end_matches("-1")),
                    ),
                },
            ],
        }),
    )
}

/// The source Provider `plan` shows: the profile's URL and settings, and its Secret.
fn source_provider_preview(
    ctx: &SessionContext,
    namespace: &str,
    source_provider: &str,
    source_secret: &str,
    any_copy_offload: bool,
) -> ObjectPreview {
    let mut settings = BTreeMap::new();
    if let Some(image) = &ctx.vddk_init_image {
        settings.insert("vddkInitImage".to_string(), image.clone());
    }
    if let Some(endpoint) = &ctx.sdk_endpoint {
        settings.insert("sdkEndpoint".to_string(), endpoint.clone());
    }
    if ctx
        .copy_offload
        .as_ref()
        .is_some_and(|c| c.esxi_clone_method_ssh)
        && any_copy_offload
    {
        settings.insert("esxiCloneMethod".to_string(), "ssh".to_string());
    }
    let mut provider = object(
        "create",
        "Provider",
        forklift::API_VERSION,
        source_provider,
        Some(namespace),
        to_value(&forklift::ProviderSpec {
            provider_type: ctx.provider_type.as_str().to_string(),
            url: ctx.provider_url.clone(),
            secret: ObjectRef::new(namespace, source_secret),
            settings,
        }),
    );
    if any_copy_offload {
        provider.note = Some(
            "annotated forklift.konveyor.io/empty-vddk-init-image: \"yes\" (copy-offload)".into(),
        );
    }
    provider
}

/// The remote destination's token Secret and Provider (remote scenarios).
fn remote_destination_preview(names: &mut SessionNames<'_>, namespace: &str) -> Vec<ObjectPreview> {
    let mut objects = Vec::new();
    let token_secret = names.remote_destination_secret();
    objects.push(object(
        "create",
        "Secret",
        "v1",
        &token_secret,
        Some(namespace),
        json!({"keys": ["token", "insecureSkipVerify"]}),
    ));
    objects.push(with_note(
        object(
            "create",
            "Provider",
            forklift::API_VERSION,
            names.remote_destination_provider(),
            Some(namespace),
            json!({"type": "openshift", "url": "<cluster API URL>", "secret": {"name": token_secret, "namespace": namespace}}),
        ),
        "remote destination (remote scenarios)",
    ));
    objects
}

fn expectation_text(expectation: StepExpectation) -> String {
    match expectation {
        StepExpectation::Succeed => "succeed".into(),
        StepExpectation::FailAtStep { step } => format!("migration fails at {step} for every VM"),
        StepExpectation::Fail => "migration fails".into(),
        StepExpectation::CheckRetained => "validate the VMs retained after the failure".into(),
        StepExpectation::SkippedAfterPreHookFailure => {
            "skipped: the pre hook fails before anything is created".into()
        }
    }
}

fn storage_map_entries(
    session: &Session<'_>,
    vms: &[&VmConfig],
    copy_offload: bool,
) -> Vec<StoragePair> {
    let ctx = session.ctx;
    let plain = |source: &str| crate::build::plain_storage_pair(source, &ctx.storage_class);
    let (Some(co), true, Some(secret)) = (&ctx.copy_offload, copy_offload, &session.storage_secret)
    else {
        // What a StorageMap source is differs per provider type (forklift-api.md §1.3).
        let source = match ctx.provider_type {
            ProviderType::Vsphere => "<each datastore of the VMs' disks, from inventory>",
            ProviderType::Ovirt => "<each storage domain of the VMs' disks, from inventory>",
            ProviderType::Openstack => "<each volume type of the VMs' volumes, from inventory>",
            ProviderType::Openshift => "<each storage class of the VMs' PVCs, from inventory>",
            ProviderType::Ova => "<each disk file of the OVA, from inventory>",
        };
        return vec![plain(source)];
    };
    // Offload entries for every datastore the scenario's disks use (the non-XCOPY one keeps the plugin).
    let mut datastores = vec![co.datastore_id.clone()];
    for vm in vms {
        let symbolic = vm
            .target_datastore_id
            .iter()
            .chain(vm.add_disks.iter().filter_map(|d| d.datastore_id.as_ref()));
        for id in symbolic {
            if let Some(resolved) = co.resolve_datastore(id)
                && !datastores.iter().any(|d| d == resolved)
            {
                datastores.push(resolved.to_string());
            }
        }
    }
    datastores
        .into_iter()
        .map(|id| crate::build::offload_storage_pair(&id, &ctx.storage_class, co, secret))
        .collect()
}

fn plan_vm(ctx: &SessionContext, vm: &VmConfig, reference: &str, hooks: &[PlanHookRef]) -> PlanVm {
    PlanVm {
        id: Some(format!("<inventory id of {reference}>")),
        name: None,
        target_name: (ctx.provider_type == ProviderType::Ova)
            .then(|| mtv_api_target_name(reference)),
        hooks: hooks.to_vec(),
        migrate_shared_disks: vm.migrate_shared_disks,
        luks: vm
            .luks
            .then(|| ObjectRef::new("<session>", "<luks passphrase secret>")),
        target_power_state: vm.target_power_state.map(|p| p.as_str().to_string()),
    }
}

/// OVA targets are named by the suite: the sanitised `<session>-<name>`.
fn mtv_api_target_name(reference: &str) -> String {
    crate::names::k8s_name(reference)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mtv_catalog::model::{AddDisk, ConcurrentPlan, PvcNameTemplate};
    use mtv_catalog::steps::steps_for;

    use super::*;
    use crate::context::CopyOffloadContext;

    fn context(provider_type: ProviderType) -> SessionContext {
        SessionContext {
            provider_type,
            source_provider: provider_type.as_str().into(),
            provider_version: "8.0.3".into(),
            provider_url: "https://vcenter.example/sdk".into(),
            storage_class: "lab-ceph-rbd".into(),
            target_namespace_prefix: "auto".into(),
            mtv_namespace: "openshift-mtv".into(),
            snapshots_interval: 2,
            mins_before_cutover: 5,
            plan_wait_timeout: 3600,
            target_ocp_version: None,
            remote_ocp_cluster: None,
            inventory_url: None,
            source_provider_insecure_skip_verify: false,
            vddk_init_image: None,
            sdk_endpoint: None,
            copy_offload: Some(CopyOffloadContext {
                storage_vendor_product: "ontap".into(),
                datastore_id: "datastore-x1".into(),
                secondary_datastore_id: Some("datastore-x2".into()),
                non_xcopy_datastore_id: Some("datastore-n1".into()),
                default_vm_name: Some("xcopy-template".into()),
                rdm_lun_uuid: None,
                dedicated_migration_hosts: vec![],
                esxi_clone_method_ssh: false,
                storage_secret_keys: vec!["STORAGE_HOSTNAME".into(), "STORAGE_PASSWORD".into()],
            }),
            guest_logins: Default::default(),
        }
    }

    fn vm(name: &str) -> VmConfig {
        VmConfig {
            name: name.into(),
            ..VmConfig::default()
        }
    }

    fn preview(ctx: &SessionContext, config: &PlanConfig) -> RunPreview {
        let steps = steps_for(config);
        preview_run(
            ctx,
            &[ScenarioInput {
                name: "TestExample[one]",
                class: "TestExample",
                config,
                steps: &steps,
            }],
        )
    }

    fn step_objects(preview: &RunPreview, kind: StepKind) -> Vec<ObjectPreview> {
        preview.scenarios[0]
            .steps
            .iter()
            .find(|s| s.step == kind)
            .map(|s| s.objects.clone())
            .unwrap_or_default()
    }

    #[test]
    fn plan_carries_explicit_false_and_only_the_fields_the_scenario_sets() {
        let config = PlanConfig {
            virtual_machines: vec![vm("mtv-tests-rhel8")],
            preserve_static_ips: Some(false),
            target_labels: Some(BTreeMap::from([
                ("generated".to_string(), None),
                ("static".to_string(), Some("value".to_string())),
            ])),
            ..PlanConfig::default()
        };
        let preview = preview(&context(ProviderType::Vsphere), &config);
        let plan = &step_objects(&preview, StepKind::CreatePlan)[0];
        assert_eq!(plan.fields["preserveStaticIPs"], json!(false));
        assert!(plan.fields.get("migrateSharedDisks").is_none());
        assert_eq!(plan.fields["targetLabels"]["generated"], json!(SESSION));
        assert_eq!(plan.fields["targetLabels"]["static"], json!("value"));
        assert_eq!(plan.fields["warm"], json!(false));
    }

    #[test]
    fn copy_offload_forces_the_pvc_template_and_offloads_every_used_datastore() {
        let mut source = vm("xcopy-template-test");
        source.clone = true;
        source.add_disks = vec![AddDisk {
            size_gb: 30,
            provision_type: None,
            disk_mode: None,
            datastore_id: Some("non_xcopy_datastore_id".into()),
            datastore_path: None,
            rdm_type: None,
        }];
        let config = PlanConfig {
            virtual_machines: vec![source],
            copyoffload: true,
            pvc_name_template: Some(PvcNameTemplate::Single("{{.VmName}}".into())),
            ..PlanConfig::default()
        };
        let preview = preview(&context(ProviderType::Vsphere), &config);
        let plan = &step_objects(&preview, StepKind::CreatePlan)[0];
        assert_eq!(plan.fields["pvcNameTemplate"], json!("pvc"));
        let map = &step_objects(&preview, StepKind::CreateStorageMap)[0];
        let sources: Vec<&Value> = map.fields["map"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["source"]["id"])
            .collect();
        assert_eq!(sources, [&json!("datastore-x1"), &json!("datastore-n1")]);
        for entry in map.fields["map"].as_array().unwrap() {
            assert_eq!(entry["destination"]["volumeMode"], json!("Block"));
            assert_eq!(
                entry["offloadPlugin"]["vsphereXcopyConfig"]["storageVendorProduct"],
                json!("ontap")
            );
        }
        // The profile's default_vm_name replaces the placeholder of clone: true VMs.
        assert!(
            preview.scenarios[0].prepare[0]
                .note
                .as_deref()
                .unwrap()
                .starts_with("from xcopy-template")
        );
        // The storage Secret shows key names only.
        let secret = preview
            .session
            .objects
            .iter()
            .find(|o| o.kind == "Secret" && o.name.contains("-storage-"))
            .unwrap();
        assert_eq!(
            secret.fields["keys"],
            json!(["STORAGE_HOSTNAME", "STORAGE_PASSWORD"])
        );
    }

    #[test]
    fn concurrent_plans_split_the_vms_and_the_vddk_plan_has_no_offload() {
        let config = PlanConfig {
            virtual_machines: vec![vm("a"), vm("b")],
            copyoffload: true,
            concurrent_plans: vec![
                ConcurrentPlan {
                    virtual_machines: vec!["a".into()],
                    copyoffload: None,
                },
                ConcurrentPlan {
                    virtual_machines: vec!["b".into()],
                    copyoffload: Some(false),
                },
            ],
            ..PlanConfig::default()
        };
        let preview = preview(&context(ProviderType::Vsphere), &config);
        let maps = step_objects(&preview, StepKind::CreateStorageMap);
        assert_eq!(maps.len(), 2);
        assert!(maps[0].fields["map"][0].get("offloadPlugin").is_some());
        assert!(maps[1].fields["map"][0].get("offloadPlugin").is_none());
        let plans = step_objects(&preview, StepKind::CreatePlan);
        assert_eq!(plans[0].fields["vms"].as_array().unwrap().len(), 1);
        assert_ne!(plans[0].name, plans[1].name);
        let migrate = preview.scenarios[0]
            .steps
            .iter()
            .find(|s| s.step == StepKind::MigrateVms)
            .unwrap();
        assert!(migrate.waits[0].contains("both Plans Executing"));
    }

    #[test]
    fn warm_sets_the_cutover_and_the_precopy_interval() {
        let mut source = vm("mtv-tests-rhel8");
        source.source_vm_power = Some(Power::On);
        let config = PlanConfig {
            virtual_machines: vec![source],
            warm_migration: true,
            ..PlanConfig::default()
        };
        let preview = preview(&context(ProviderType::Vsphere), &config);
        let migration = &step_objects(&preview, StepKind::MigrateVms)[0];
        assert_eq!(
            migration.fields["cutover"],
            json!("<now + 5 min, RFC 3339 UTC>")
        );
        assert!(migration.name.contains("migration-warm"));
        let patch = preview
            .session
            .objects
            .iter()
            .find(|o| o.kind == "ForkliftController")
            .unwrap();
        assert_eq!(patch.fields["controller_precopy_interval"], json!(2));
    }

    #[test]
    fn ova_is_not_cloned_and_gets_a_target_name() {
        let config = PlanConfig {
            virtual_machines: vec![vm("mtv-ova-rhel9")],
            ..PlanConfig::default()
        };
        let mut ctx = context(ProviderType::Ova);
        ctx.copy_offload = None;
        let preview = preview(&ctx, &config);
        assert_eq!(preview.scenarios[0].prepare[0].action, "read");
        let plan = &step_objects(&preview, StepKind::CreatePlan)[0];
        assert_eq!(
            plan.fields["vms"][0]["targetName"],
            json!("<session>-mtv-ova-rhel9")
        );
    }

    #[test]
    fn hooks_are_created_and_referenced_by_the_plan() {
        use mtv_catalog::model::{ExpectedResult, HookConfig};
        let config = PlanConfig {
            virtual_machines: vec![vm("mtv-tests-rhel8")],
            post_hook: Some(HookConfig {
                expected_result: Some(ExpectedResult::Fail),
                playbook_base64: None,
                aap_job_template_id: None,
            }),
            ..PlanConfig::default()
        };
        let preview = preview(&context(ProviderType::Vsphere), &config);
        let hook = preview.scenarios[0]
            .prepare
            .iter()
            .find(|o| o.kind == "Hook")
            .unwrap();
        let plan = &step_objects(&preview, StepKind::CreatePlan)[0];
        assert_eq!(plan.fields["vms"][0]["hooks"][0]["step"], json!("PostHook"));
        assert_eq!(
            plan.fields["vms"][0]["hooks"][0]["hook"]["name"],
            json!(hook.name)
        );
        let migrate = &preview.scenarios[0].steps[3];
        assert_eq!(
            migrate.expectation,
            "migration fails at PostHook for every VM"
        );
    }
}
