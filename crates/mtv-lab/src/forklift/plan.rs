//! Plan validation (forklift-api.md §3.3) and the resolved view of a plan the executor works from.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use mtv_api::naming::{is_dns1123_subdomain, template_target_vm_name};
use mtv_api::template::{
    DEFAULT_OCP_PVC_TEMPLATE, DEFAULT_PVC_TEMPLATE, Template, TemplateData, render_pvc_name,
};
use serde_json::Value;

use super::conditions::{
    ADVISORY, CRITICAL, Condition, Conditions, REQUIRED, WARN, has as has_condition, ref_string,
};
use super::inventory::{InvDisk, InvVm, Inventory, Lookup};
use super::{Controller, array_at, controller_setting, meta, text_at};
use crate::registry;
use crate::store::ListOptions;

/// A plan with its providers, maps and source VMs resolved.
#[derive(Debug, Clone)]
pub(crate) struct PlanCtx {
    pub plan: Value,
    pub src: Value,
    pub dst: Value,
    pub src_type: String,
    pub inventory: Inventory,
    pub netmap: Value,
    pub storagemap: Value,
    pub warm: bool,
    pub local_dest: bool,
    /// Resolved source VMs by spec index (None: not found).
    pub vms: Vec<Option<InvVm>>,
}

impl PlanCtx {
    pub fn target_ns(&self) -> &str {
        text_at(&self.plan, "/spec/targetNamespace")
    }

    pub fn plan_type(&self) -> &str {
        text_at(&self.plan, "/spec/type")
    }

    /// The StorageMap entry for a source disk.
    pub fn storage_entry(&self, disk: &InvDisk) -> Option<Value> {
        let refs = array_at(&self.storagemap, "/status/references");
        let entries = array_at(&self.storagemap, "/spec/map");
        entries.into_iter().find(|e| {
            let (id, name) = (text_at(e, "/source/id"), text_at(e, "/source/name"));
            let direct = (!id.is_empty() && id == disk.storage)
                || (!name.is_empty()
                    && (name == disk.storage_name
                        || name == disk.storage
                        || disk.file.rsplit('/').next() == Some(name)));
            direct
                || refs.iter().any(|r| {
                    text_at(r, "/id") == disk.storage
                        && ((!id.is_empty() && (id == text_at(r, "/id")))
                            || (!name.is_empty() && name == text_at(r, "/name")))
                })
        })
    }

    /// The NetworkMap entry for a source NIC network.
    pub fn network_entry(&self, network: &str) -> Option<Value> {
        let refs = array_at(&self.netmap, "/status/references");
        let entries = array_at(&self.netmap, "/spec/map");
        let resolved = refs
            .iter()
            .find(|r| text_at(r, "/id") == network || text_at(r, "/name") == network)
            .cloned();
        entries.into_iter().find(|e| {
            let (id, name, typ) = (
                text_at(e, "/source/id"),
                text_at(e, "/source/name"),
                text_at(e, "/source/type"),
            );
            (typ == "pod" && network == "pod")
                || (!id.is_empty() && id == network)
                || (!name.is_empty() && name == network)
                || resolved.as_ref().is_some_and(|r| {
                    (!id.is_empty() && id == text_at(r, "/id"))
                        || (!name.is_empty() && name == text_at(r, "/name"))
                })
        })
    }

    /// Uses copy offload: some StorageMap entry names an offload plugin (and the feature is on).
    pub fn offload(&self) -> bool {
        self.storagemap
            .pointer("/spec/map")
            .and_then(Value::as_array)
            .is_some_and(|m| {
                m.iter()
                    .any(|e| e.get("offloadPlugin").is_some_and(|p| !p.is_null()))
            })
    }

    /// The PVC name template in force for a VM (§3.4) and whether it uses generateName.
    pub fn pvc_template(&self, vm_spec: &Value, global: Option<String>) -> (String, bool) {
        let ocp = self.src_type == "openshift";
        let tpl = [
            text_at(vm_spec, "/pvcNameTemplate"),
            text_at(&self.plan, "/spec/pvcNameTemplate"),
        ]
        .into_iter()
        .find(|t| !t.is_empty())
        .map(str::to_string)
        .or(global.map(|g| g.replace("\\{", "{").replace("\\}", "}")))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            if ocp {
                DEFAULT_OCP_PVC_TEMPLATE.to_string()
            } else {
                DEFAULT_PVC_TEMPLATE.to_string()
            }
        });
        let generate =
            super::bool_at(&self.plan, "/spec/pvcNameTemplateUseGenerateName").unwrap_or(!ocp);
        (tpl, generate)
    }

    /// Renders the PVC name data of one disk.
    pub fn pvc_data(&self, vm: &InvVm, index: usize) -> TemplateData {
        let disk = &vm.disks[index];
        let file = disk
            .file
            .rsplit('/')
            .next()
            .unwrap_or(&disk.file)
            .to_string();
        let mut data = TemplateData::pvc();
        // Variables of other source types' disks are empty.
        let only_if = |applies: bool, value: String| if applies { value } else { String::new() };
        let openshift = self.src_type == "openshift";
        let fields: Vec<(&str, mtv_api::template::Value)> = vec![
            ("VmName", vm.name.clone().into()),
            (
                "TargetVmName",
                template_target_vm_name(&vm.name, &vm.id).into(),
            ),
            ("PlanName", meta(&self.plan, "name").into()),
            ("DiskIndex", (index as i64).into()),
            ("VmId", vm.id.clone().into()),
            ("FileName", only_if(self.src_type == "vsphere", file).into()),
            (
                "SourcePVCName",
                only_if(openshift, disk.file.clone()).into(),
            ),
            (
                "SourcePVCNamespace",
                only_if(openshift, vm.namespace.clone()).into(),
            ),
            (
                "DiskId",
                only_if(
                    matches!(self.src_type.as_str(), "ovirt" | "hyperv"),
                    disk.file.clone(),
                )
                .into(),
            ),
        ];
        for (k, v) in fields {
            if let Ok(d) = data.clone().set(k, v) {
                data = d;
            }
        }
        data
    }
}

fn vm_ref_of(vm: &Value) -> (String, String, String) {
    (
        text_at(vm, "/type").to_string(),
        text_at(vm, "/id").to_string(),
        text_at(vm, "/name").to_string(),
    )
}

impl Controller {
    /// Validates a plan: the condition set and, when providers and maps resolve, the plan context.
    /// The steps follow Forklift's `validate()` in `pkg/controller/plan/validation.go`.
    pub(crate) fn validate_plan(
        &mut self,
        plan: &Value,
        executing: bool,
    ) -> (Conditions, Option<PlanCtx>) {
        let mut conds = Conditions::default();
        let (source, destination) = self.provider_pair(plan, &mut conds);
        validate_target_namespace(plan, &mut conds);
        let [network_map, storage_map] = self.resolve_maps(plan, &mut conds);
        if let (Some(source), Some(network_map)) = (&source, &network_map) {
            network_map_checks(plan, source, network_map, &mut conds);
        }
        let (Some(source), Some(destination), Some(network_map)) =
            (source, destination, network_map)
        else {
            return (conds, None);
        };
        if conds.has_blocker() {
            return (conds, None);
        }
        let Some(inventory) = Inventory::of(&self.source, &source) else {
            return (conds, None);
        };
        let src_type = text_at(&source, "/spec/type").to_string();
        let warm = super::bool_at(plan, "/spec/warm") == Some(true)
            || text_at(plan, "/spec/type") == "warm";
        let mut ctx = PlanCtx {
            plan: plan.clone(),
            local_dest: text_at(&destination, "/spec/url").is_empty(),
            src: source,
            dst: destination,
            src_type,
            inventory,
            netmap: network_map,
            storagemap: storage_map.unwrap_or(Value::Null),
            warm,
            vms: Vec::new(),
        };
        self.validate_migration_type(&ctx, &mut conds);
        self.validate_vms(&mut ctx, executing, &mut conds);
        self.validate_hooks(plan, Some(&ctx), &mut conds);
        self.validate_transfer_network(plan, &mut conds);
        // validateServiceAccount: the Plan's, else the ForkliftController's.
        let service_account = Some(text_at(plan, "/spec/serviceAccount").to_string())
            .filter(|a| !a.is_empty())
            .or_else(|| {
                self.setting("controller_migration_service_account")
                    .filter(|a| !a.is_empty())
            });
        if let Some(service_account) = service_account {
            self.validate_service_account(plan, &service_account, &mut conds);
        }
        if ctx.src_type == "vsphere" {
            self.validate_vddk(&ctx, &mut conds);
        }
        (conds, Some(ctx))
    }

    /// A ForkliftController setting (`controller_*`, `vddk_image`) from the MTV namespace.
    pub(crate) fn setting(&self, key: &str) -> Option<String> {
        controller_setting(&self.store, &self.opts.mtv_namespace, key)
    }

    /// A numeric ForkliftController setting, or `default` when it is unset or not a number.
    pub(crate) fn setting_or<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        self.setting(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// The Plan's NetworkMap and StorageMap (none for a conversion-only plan's storage): each must be
    /// named, exist and be Ready.
    fn resolve_maps(&self, plan: &Value, conds: &mut Conditions) -> [Option<Value>; 2] {
        let plan_namespace = meta(plan, "namespace");
        let conversion_only = text_at(plan, "/spec/type") == "conversion";
        let mut maps = [None, None];
        for (slot, (key, resource, ref_condition, not_ready_condition, label)) in [
            (
                "network",
                &registry::NETWORK_MAP,
                "NetworkMapRefNotValid",
                "NetworkMapNotReady",
                "Map.Network",
            ),
            (
                "storage",
                &registry::STORAGE_MAP,
                "StorageRefNotValid",
                "StorageMapNotReady",
                "Map.Storage",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            if key == "storage" && conversion_only {
                continue;
            }
            let name = text_at(plan, &format!("/spec/map/{key}/name"));
            let map_namespace = Some(text_at(plan, &format!("/spec/map/{key}/namespace")))
                .filter(|n| !n.is_empty())
                .unwrap_or(plan_namespace);
            if name.is_empty() {
                conds.set(Condition::new(
                    ref_condition,
                    CRITICAL,
                    "NotSet",
                    &format!("{label} is not valid."),
                ));
                continue;
            }
            match self.store.get(resource, Some(map_namespace), name) {
                Err(_) => conds.set(Condition::new(
                    ref_condition,
                    CRITICAL,
                    "NotFound",
                    &format!("{label} is not valid."),
                )),
                Ok(map) => {
                    if !has_condition(map.pointer("/status/conditions"), "Ready") {
                        conds.set(Condition::new(
                            not_ready_condition,
                            CRITICAL,
                            "",
                            &format!("{label} does not have Ready condition."),
                        ));
                    }
                    maps[slot] = Some(map);
                }
            }
        }
        maps
    }

    /// Warm migration only from vSphere (and oVirt unless switched off); `live` only from OpenShift,
    /// `conversion` only from vSphere.
    fn validate_migration_type(&self, ctx: &PlanCtx, conds: &mut Conditions) {
        if ctx.warm {
            let supported = match ctx.src_type.as_str() {
                "vsphere" => true,
                "ovirt" => {
                    self.setting("controller_ovirt_warm_migration").as_deref() != Some("false")
                }
                _ => false,
            };
            if !supported {
                conds.set(Condition::new(
                    "WarmMigrationNotReady",
                    CRITICAL,
                    "NotSupported",
                    "Warm migration from the source provider is not supported.",
                ));
            }
        }
        let plan_type = ctx.plan_type();
        let type_ok = match plan_type {
            "" | "cold" | "warm" => true,
            "live" => ctx.src_type == "openshift",
            "conversion" => ctx.src_type == "vsphere",
            _ => false,
        };
        if !type_ok {
            conds.set(Condition::new(
                "MigrationTypeNotValid",
                CRITICAL,
                "NotSupported",
                &format!("`{plan_type}` migration from the source provider is not supported."),
            ));
        }
    }

    /// The per-VM checks (validateVM and the provider validators): each VM is resolved in the inventory
    /// (`ctx.vms`), and what it fails is gathered into one condition per type, with the VMs as items.
    fn validate_vms(&self, ctx: &mut PlanCtx, executing: bool, conds: &mut Conditions) {
        let facts = self.plan_wide_facts(ctx);
        let spec_vms = ctx
            .plan
            .pointer("/spec/vms")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut findings = VmFindings::default();
        for spec_vm in &spec_vms {
            let (typ, id, name) = vm_ref_of(spec_vm);
            if id.is_empty() && name.is_empty() && typ.is_empty() {
                // validateVM: one condition, no items.
                conds.set(Condition::new(
                    "VMRefNotValid",
                    CRITICAL,
                    "NotSet",
                    "Either `ID` or `Name` required.",
                ));
                ctx.vms.push(None);
                continue;
            }
            let vm = match ctx.inventory.find_vm(&self.source, &self.store, spec_vm) {
                Err(Lookup::NotFound) => {
                    findings.add("VMNotFound", ref_string(&typ, &id, &name));
                    ctx.vms.push(None);
                    continue;
                }
                Err(Lookup::Ambiguous) => {
                    findings.add("DuplicateVM", ref_string(&typ, &id, &name));
                    findings
                        .duplicate_reason
                        .get_or_insert(("Ambiguous", "VM reference is ambiguous."));
                    ctx.vms.push(None);
                    continue;
                }
                Ok(vm) => vm,
            };
            ctx.vms.push(Some(vm.clone()));
            if executing || facts.succeeded.contains(&vm.id) {
                continue;
            }
            let vm_ref = ref_string(&typ, &vm.id, &vm.name);
            check_vm_identity(spec_vm, &vm, &vm_ref, &facts, &mut findings);
            check_mac_conflicts(&vm, &vm_ref, &facts, &mut findings);
            check_vm_networks(ctx, &vm, &vm_ref, &facts, &mut findings);
            check_vm_storage(ctx, &vm, &vm_ref, &facts, &mut findings);
            check_vm_source_state(ctx, &vm, &vm_ref, &mut findings);
            check_pvc_name_template(ctx, spec_vm, &vm, &vm_ref, &facts, &mut findings);
        }
        findings.into_conditions(conds);
    }

    /// What every VM's checks compare against, read once per validation.
    fn plan_wide_facts(&self, ctx: &PlanCtx) -> PlanWideFacts {
        let plan = &ctx.plan;
        let status_vms = array_at(plan, "/status/migration/vms");
        let existing_vms = self
            .store
            .list(
                &registry::VIRTUAL_MACHINE,
                Some(ctx.target_ns()),
                &ListOptions::default(),
            )
            .map(|l| l.items)
            .unwrap_or_default();
        PlanWideFacts {
            succeeded: status_vms
                .iter()
                .filter(|v| has_condition(v.get("conditions"), "Succeeded"))
                .map(|v| text_at(v, "/id").to_string())
                .collect(),
            in_status: status_vms
                .iter()
                .map(|v| text_at(v, "/id").to_string())
                .collect(),
            existing_target_names: existing_vms
                .iter()
                .map(|vm| meta(vm, "name").to_string())
                .collect(),
            destination_macs: self.destination_macs(ctx),
            preserve_ips: super::bool_at(plan, "/spec/preserveStaticIPs") != Some(false),
            conversion_only: ctx.plan_type() == "conversion",
            offload: ctx.offload(),
            global_pvc_template: self.setting(if ctx.src_type == "openshift" {
                "controller_ocp_pvc_name_template"
            } else {
                "controller_pvc_name_template"
            }),
        }
    }

    /// MAC → `namespace/name` of the destination VM using it, other than this plan's own targets
    /// (base/mac_conflicts.go CheckMacConflicts; not checked for OpenShift sources).
    fn destination_macs(&self, ctx: &PlanCtx) -> BTreeMap<String, String> {
        if ctx.src_type == "openshift" {
            return BTreeMap::new();
        }
        let plan_uid = meta(&ctx.plan, "uid");
        self.store
            .list_shared(&registry::VIRTUAL_MACHINE, None)
            .iter()
            .filter(|vm| text_at(vm, "/metadata/labels/plan") != plan_uid)
            .flat_map(|vm| {
                let owner = format!("{}/{}", meta(vm, "namespace"), meta(vm, "name"));
                vm.pointer("/spec/template/spec/domain/devices/interfaces")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |interface| {
                        (
                            text_at(&interface, "/macAddress").to_string(),
                            owner.clone(),
                        )
                    })
            })
            .filter(|(mac, _)| !mac.is_empty())
            .collect()
    }

    /// validateTransferNetwork: the NetworkAttachmentDefinition must exist, be reachable from the
    /// target namespace, and carry a usable `forklift.konveyor.io/route` annotation.
    fn validate_transfer_network(&self, plan: &Value, conds: &mut Conditions) {
        let name = text_at(plan, "/spec/transferNetwork/name");
        if name.is_empty() {
            return;
        }
        let namespace = text_at(plan, "/spec/transferNetwork/namespace");
        let target_namespace = text_at(plan, "/spec/targetNamespace");
        match self
            .store
            .get(&registry::NETWORK_ATTACHMENT_DEFINITION, Some(namespace), name)
        {
            Err(_) => conds.set(Condition::new(
                "TransferNetworkNotValid",
                CRITICAL,
                "NotFound",
                "Transfer network is not valid.",
            )),
            Ok(_) if namespace != target_namespace && namespace != "default" => {
                conds.set(Condition::new(
                    "TransferNetworkNotValid",
                    CRITICAL,
                    "NotValid",
                    &format!(
                        "Transfer network {namespace}/{name} is in a different namespace than the target namespace {target_namespace}. Pods cannot reference network attachment definitions across namespaces."
                    ),
                ))
            }
            Ok(nad) => {
                let route = nad.pointer("/metadata/annotations/forklift.konveyor.io~1route");
                match route.and_then(Value::as_str) {
                    None => conds.set(Condition::new(
                        "TransferNetworkMissingDefaultRoute",
                        WARN,
                        "NotValid",
                        "Transfer network missing default route annotation.",
                    )),
                    Some(route) if route != "none" && route.parse::<std::net::IpAddr>().is_err() => {
                        conds.set(Condition::new(
                            "TransferNetworkNotValid",
                            CRITICAL,
                            "NotValid",
                            "Transfer network default route annotation is not a valid IP address.",
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
    }

    /// vSphere's VDDK image (the provider's, else the global one): required for warm and raw-copy
    /// plans; while the lab "validates" a new image, the advisory `ValidatingVDDK` stands.
    fn validate_vddk(&mut self, ctx: &PlanCtx, conds: &mut Conditions) {
        let plan = &ctx.plan;
        let image = Some(text_at(&ctx.src, "/spec/settings/vddkInitImage").to_string())
            .filter(|i| !i.is_empty())
            .or_else(|| self.setting("vddk_image").filter(|i| !i.is_empty()));
        let raw_copy =
            super::bool_at(plan, "/spec/skipGuestConversion") == Some(true) && !ctx.offload();
        match image {
            None if ctx.warm => conds.set(Condition::new(
                "VDDKInitImageUnavailable",
                CRITICAL,
                "NotSet",
                "VDDK image is required for warm migration. Set it on the source provider or configure a global VDDK image.",
            )),
            None if raw_copy => conds.set(Condition::new(
                "VDDKInitImageUnavailable",
                CRITICAL,
                "NotSet",
                "VDDK image is required for raw copy mode migration. Set it on the source provider or configure a global VDDK image.",
            )),
            Some(image) if !self.opts.vddk_validation.is_zero() => {
                let key = (meta(plan, "uid").to_string(), image);
                let started = *self.vddk_started.entry(key).or_insert_with(Instant::now);
                if started.elapsed() < self.opts.real(self.opts.vddk_validation) {
                    conds.set(Condition::new(
                        "ValidatingVDDK",
                        ADVISORY,
                        "Started",
                        "Validating VDDK init image",
                    ));
                }
            }
            _ => {}
        }
    }

    /// validation.go validateHooks: a step other than PreHook/PostHook, a reference without namespace
    /// and name, a hook not found, not Ready, or whose ServiceAccount is missing from the plan namespace.
    fn validate_hooks(&self, plan: &Value, ctx: Option<&PlanCtx>, conds: &mut Conditions) {
        let ns = meta(plan, "namespace");
        let (mut not_set, mut not_found, mut not_ready, mut bad_steps, mut sa_missing) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (index, vm) in array(plan, "/spec/vms").iter().enumerate() {
            let vm_ref = resolved_ref_string(vm, ctx.and_then(|c| c.vms.get(index)));
            for h in array(vm, "/hooks") {
                let step = text_at(&h, "/step");
                if step != "PreHook" && step != "PostHook" {
                    bad_steps.push(format!("VM: {vm_ref} step: {step}"));
                }
                let (hns, name) = (text_at(&h, "/hook/namespace"), text_at(&h, "/hook/name"));
                if name.is_empty() {
                    not_set.push(format!("VM: {vm_ref}"));
                    continue;
                }
                let described = format!(
                    "VM: {vm_ref} hook: &ObjectReference{{Kind:,Namespace:{hns},Name:{name},UID:,APIVersion:,ResourceVersion:,FieldPath:,}}"
                );
                let lookup_ns = Some(hns).filter(|n| !n.is_empty()).unwrap_or(ns);
                let Ok(hook) = self.store.get(&registry::HOOK, Some(lookup_ns), name) else {
                    not_found.push(described);
                    continue;
                };
                if !has_condition(hook.pointer("/status/conditions"), "Ready") {
                    not_ready.push(described.clone());
                }
                let sa = text_at(&hook, "/spec/serviceAccount");
                let aap = hook.pointer("/spec/aap").is_some_and(|a| !a.is_null());
                if !sa.is_empty()
                    && !aap
                    && self
                        .store
                        .get(&registry::SERVICE_ACCOUNT, Some(ns), sa)
                        .is_err()
                {
                    sa_missing.push(format!(
                        "{described} ServiceAccount '{sa}' not found in namespace '{ns}'"
                    ));
                }
            }
        }
        let found: [(&str, &str, &str, Vec<String>); 5] = [
            (
                "HookNotValid",
                "NotSet",
                "Hook specified by: `namespace` and `name`.",
                not_set,
            ),
            ("HookNotValid", "NotFound", "Hook not found.", not_found),
            (
                "HookNotReady",
                "NotFound",
                "Hook does not have `Ready` condition.",
                not_ready,
            ),
            (
                "HookStepNotValid",
                "NotValid",
                "Hook step not valid.",
                bad_steps,
            ),
            (
                "HookServiceAccountNotValid",
                "NotFound",
                "Hook ServiceAccount not found in plan namespace.",
                sa_missing,
            ),
        ];
        for (kind, reason, message, items) in found {
            if !items.is_empty() {
                conds.set(Condition::new(kind, CRITICAL, reason, message).items(items));
            }
        }
    }

    /// validation.go validateServiceAccount: the account must exist in the target namespace, and in the
    /// plan namespace too when a hook runs a pod there.
    fn validate_service_account(&self, plan: &Value, sa: &str, conds: &mut Conditions) {
        let target_ns = text_at(plan, "/spec/targetNamespace");
        let exists = |ns: &str| {
            self.store
                .get(&registry::SERVICE_ACCOUNT, Some(ns), sa)
                .is_ok()
        };
        if !exists(target_ns) {
            conds.set(Condition::new(
                "ServiceAccountNotValid",
                CRITICAL,
                "NotFound",
                &format!("ServiceAccount '{sa}' not found in target namespace '{target_ns}'."),
            ));
            return;
        }
        let plan_ns = meta(plan, "namespace");
        if plan_ns != target_ns && self.has_local_hook_pods(plan) && !exists(plan_ns) {
            conds.set(Condition::new(
                "ServiceAccountNotValid",
                CRITICAL,
                "NotFound",
                &format!(
                    "ServiceAccount '{sa}' not found in plan namespace '{plan_ns}' (required for hook pods)."
                ),
            ));
        }
    }

    /// Some hook of the plan runs an image in the cluster (not an AAP job).
    fn has_local_hook_pods(&self, plan: &Value) -> bool {
        array(plan, "/spec/vms")
            .iter()
            .flat_map(|vm| array(vm, "/hooks"))
            .filter_map(|h| {
                self.store
                    .get(
                        &registry::HOOK,
                        Some(text_at(&h, "/hook/namespace")),
                        text_at(&h, "/hook/name"),
                    )
                    .ok()
            })
            .any(|hook| {
                hook.pointer("/spec/aap").is_none_or(Value::is_null)
                    && !text_at(&hook, "/spec/image").trim().is_empty()
            })
    }

    /// When the plan must wait for objects whose controllers have not caught up (§0.1).
    pub(crate) fn dependencies_pending(&self) -> bool {
        // Hosts have no controller in the lab yet, so they are not waited for.
        [&registry::PROVIDER, &registry::NETWORK_MAP, &registry::HOOK]
            .into_iter()
            .any(|rt| {
                self.store.list_shared(rt, None).iter().any(|o| {
                    let observed = o
                        .pointer("/status/observedGeneration")
                        .and_then(Value::as_i64);
                    observed.is_none_or(|g| g < super::generation(o))
                })
            })
    }
}

fn array(v: &Value, pointer: &str) -> Vec<Value> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A plan VM's reference as Forklift prints it once validateVM has resolved it (id and name filled in).
fn resolved_ref_string(spec_vm: &Value, resolved: Option<&Option<InvVm>>) -> String {
    let (typ, id, name) = vm_ref_of(spec_vm);
    match resolved {
        Some(Some(vm)) => ref_string(&typ, &vm.id, &vm.name),
        _ => ref_string(&typ, &id, &name),
    }
}

/// validation.go validateNetworkMap, past the map's existence: static IPs kept on the pod network (a
/// warning, for sources whose IPs Forklift can preserve) and multus destinations outside the target or
/// `default` namespace.
fn network_map_checks(plan: &Value, src: &Value, netmap: &Value, conds: &mut Conditions) {
    let pairs = array(netmap, "/spec/map");
    let preserves_ips = matches!(text_at(src, "/spec/type"), "vsphere" | "hyperv")
        && super::bool_at(plan, "/spec/preserveStaticIPs") != Some(false);
    if preserves_ips
        && pairs
            .iter()
            .any(|p| text_at(p, "/destination/type") == "pod")
    {
        conds.set(Condition::new(
            "NetMapPreservingIPsOnPodNetwork",
            WARN,
            "",
            "Your migration plan preserves the static IPs of VMs and uses Pod Networking target network mapping. This combination isn't supported, because VM IPs aren't preserved in Pod Networking migrations.",
        ));
    }
    let target_ns = text_at(plan, "/spec/targetNamespace");
    if let Some(pair) = pairs.iter().find(|p| {
        let nns = text_at(p, "/destination/namespace");
        text_at(p, "/destination/type") == "multus" && nns != target_ns && nns != "default"
    }) {
        let (nns, nname) = (
            text_at(pair, "/destination/namespace"),
            text_at(pair, "/destination/name"),
        );
        conds.set(Condition::new(
            "NetMapDestinationNADNotValid",
            CRITICAL,
            "NotValid",
            &format!(
                "Destination NAD {nns}/{nname} must be in either the target namespace ({target_ns}) or the default namespace. Pods cannot reference network attachment definitions from other namespaces."
            ),
        ));
    }
}

/// How long the plan waits while dependencies catch up.
pub(crate) const SLOW_REQUEUE: Duration = Duration::from_secs(3);

/// Labels `Ready` from the condition set.
pub(crate) fn ready_condition(conds: &Conditions, waiting: usize, limit: u64) -> Option<Condition> {
    if conds.has_blocker() || conds.has("Archived") || conds.has("ValidatingVDDK") {
        return None;
    }
    let message = if waiting > 0 {
        format!("{waiting} VM(s) waiting to start migration (in-flight limit: {limit}).")
    } else {
        "The migration plan is ready.".to_string()
    };
    Some(Condition::new("Ready", REQUIRED, "", &message))
}

/// The target namespace must be set and a DNS-1123 subdomain.
fn validate_target_namespace(plan: &Value, conds: &mut Conditions) {
    let target_namespace = text_at(plan, "/spec/targetNamespace");
    let reason = if target_namespace.is_empty() {
        "NotSet"
    } else if !is_dns1123_subdomain(target_namespace) {
        "NotValid"
    } else {
        return;
    };
    conds.set(Condition::new(
        "NamespaceNotValid",
        CRITICAL,
        reason,
        "Target namespace is not valid.",
    ));
}

/// What the per-VM checks of one validation compare against.
struct PlanWideFacts {
    /// Ids of VMs that already migrated (they are not checked again).
    succeeded: BTreeSet<String>,
    /// Ids of VMs in the Plan's migration status (their target may already exist).
    in_status: BTreeSet<String>,
    /// Names of the VirtualMachines already in the target namespace.
    existing_target_names: BTreeSet<String>,
    /// MAC → `namespace/name` of the destination VM using it.
    destination_macs: BTreeMap<String, String>,
    preserve_ips: bool,
    conversion_only: bool,
    offload: bool,
    /// The ForkliftController's PVC name template, if set.
    global_pvc_template: Option<String>,
}

/// What the per-VM checks found: VM references per condition type, and the details some conditions
/// carry in their message.
#[derive(Default)]
struct VmFindings {
    items: BTreeMap<&'static str, Vec<String>>,
    /// `DuplicateVM`'s reason and message, which depend on how the duplicate arose.
    duplicate_reason: Option<(&'static str, &'static str)>,
    seen_ids: BTreeSet<String>,
    seen_target_names: BTreeSet<String>,
    mac_conflicts: Vec<String>,
    mac_messages: Vec<String>,
    template_errors: Vec<String>,
}

/// Per condition type: category, reason and message (validation.go's definitions), in the order
/// Forklift sets them.
const VM_CONDITIONS: &[(&str, &str, &str, &str)] = &[
    ("VMNotFound", CRITICAL, "NotFound", "VM not found."),
    (
        "DuplicateVM",
        CRITICAL,
        "NotUnique",
        "Duplicate (source) VM.",
    ),
    (
        "TargetNameNotValid",
        WARN,
        "NotValid",
        "Target VM name does not comply with DNS1123 RFC, will be automatically changed.",
    ),
    ("NotValid", CRITICAL, "NotValid", "TargetName is invalid."),
    (
        "VMAlreadyExists",
        CRITICAL,
        "NotUnique",
        "Target VM already exists.",
    ),
    (
        "VMNetworksNotMapped",
        CRITICAL,
        "NotValid",
        "VM has unmapped networks.",
    ),
    (
        "VMStorageNotMapped",
        CRITICAL,
        "NotValid",
        "VM has unmapped storage.",
    ),
    (
        "VMMultiplePodNetworkMappings",
        CRITICAL,
        "NotValid",
        "VM has more than one interface mapped to the pod network.",
    ),
    (
        "VMMissingGuestIPs",
        WARN,
        "MissingGuestInformation",
        "Guest information on vNICs is missing, cannot preserve static IPs. Make sure VMware Tools is installed and the VM is running.",
    ),
    (
        "VMMissingChangedBlockTracking",
        CRITICAL,
        "MissingChangedBlockTracking",
        "Changed Block Tracking (CBT) has not been enabled on some VM. This feature is a prerequisite for VM warm migration.",
    ),
    (
        "VMHasSnapshots",
        CRITICAL,
        "NotValid",
        // vsphere/validator.go HasSnapshot's message replaces the default one.
        "VM has pre-existing snapshots which are incompatible with warm migration",
    ),
    (
        "GuestToolsIssue",
        CRITICAL,
        "NotValid",
        "VMware Tools issues detected. This may impact migration performance, guest OS detection, and network configuration. Ensure VMware Tools are properly installed and running before migration. If this is an encrypted VM, please turn the VM off manually before migration.",
    ),
    (
        "InvalidDiskSizes",
        CRITICAL,
        "NotValid",
        "VM has disks with invalid sizes.",
    ),
    (
        "VMCriticalConcerns",
        CRITICAL,
        "NotValid",
        "One or more VMs in the plan have critical concerns that block migration.",
    ),
    (
        "VMPowerStateUnsupported",
        CRITICAL,
        "NotSupported",
        "VM power state is incompatible with the selected migration type.",
    ),
    (
        "VDDKAndOffloadMixedUsage",
        CRITICAL,
        "NotSupported",
        "Copy offload is enabled. MTV does not support mixed copy methods. Each migration plan can use one migration strategy, either VDDK or copy offload. Check your storage map and VMs to ensure they are using the same migration strategy.",
    ),
];

impl VmFindings {
    fn add(&mut self, condition: &'static str, vm_ref: String) {
        self.items.entry(condition).or_default().push(vm_ref);
    }

    /// One condition per type found, then `MacConflicts` and the PVC name template errors.
    fn into_conditions(mut self, conds: &mut Conditions) {
        for (condition, category, reason, message) in VM_CONDITIONS {
            if let Some(list) = self.items.remove(condition) {
                let (reason, message) = match (*condition, self.duplicate_reason) {
                    ("DuplicateVM", Some(duplicate)) => duplicate,
                    _ => (*reason, *message),
                };
                conds.set(Condition::new(condition, category, reason, message).items(list));
            }
        }
        if !self.mac_conflicts.is_empty() {
            conds.set(
                Condition::new(
                    "MacConflicts",
                    CRITICAL,
                    "NotValid",
                    &self.mac_messages.join("; "),
                )
                .items(self.mac_conflicts),
            );
        }
        if !self.template_errors.is_empty() {
            // Same condition type as an invalid targetName: the type is literally `NotValid`.
            let mut condition = conds.get("NotValid").cloned().unwrap_or_else(|| {
                Condition::new(
                    "NotValid",
                    CRITICAL,
                    "NotValid",
                    "VM PVC name template is invalid.",
                )
            });
            if condition.items.is_empty() {
                condition.message = "VM PVC name template is invalid.".into();
            }
            condition.items.extend(self.template_errors);
            conds.set(condition);
        }
    }
}

/// Duplicates, the target name's validity, and a target VM that already exists.
fn check_vm_identity(
    spec_vm: &Value,
    vm: &InvVm,
    vm_ref: &str,
    facts: &PlanWideFacts,
    findings: &mut VmFindings,
) {
    if !findings.seen_ids.insert(vm.id.clone()) {
        findings.add("DuplicateVM", vm_ref.to_string());
        findings.duplicate_reason = Some(("NotUnique", "Duplicate (source) VM."));
    }
    let target_name = text_at(spec_vm, "/targetName");
    if !target_name.is_empty() {
        if !is_dns1123_subdomain(target_name) {
            findings.add("NotValid", vm_ref.to_string());
        }
        if !findings.seen_target_names.insert(target_name.to_string()) {
            findings.add("DuplicateVM", vm_ref.to_string());
            findings
                .duplicate_reason
                .get_or_insert(("NotUnique", "Duplicate targetName."));
        }
    } else if !is_dns1123_subdomain(&vm.name) {
        findings.add("TargetNameNotValid", vm_ref.to_string());
    }
    let wanted = if target_name.is_empty() {
        vm.name.as_str()
    } else {
        target_name
    };
    if !facts.in_status.contains(&vm.id) && facts.existing_target_names.contains(wanted) {
        findings.add("VMAlreadyExists", vm_ref.to_string());
    }
}

/// MACs of the VM already used by a VM at the destination.
fn check_mac_conflicts(vm: &InvVm, vm_ref: &str, facts: &PlanWideFacts, findings: &mut VmFindings) {
    let mut by_owner: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for nic in &vm.nics {
        if let Some(owner) = facts.destination_macs.get(&nic.mac) {
            by_owner.entry(owner).or_default().push(&nic.mac);
        }
    }
    if by_owner.is_empty() {
        return;
    }
    findings.mac_conflicts.push(vm_ref.to_string());
    let details: Vec<String> = by_owner
        .iter()
        .map(|(owner, macs)| {
            format!(
                "MACs {} conflict with destination VM {owner}",
                macs.join(", ")
            )
        })
        .collect();
    findings.mac_messages.push(format!(
        "VM {vm_ref} has MAC address conflicts: {}",
        details.join("; ")
    ));
}

/// Guest IPs for preserveStaticIPs, every NIC mapped, at most one on the pod network.
fn check_vm_networks(
    ctx: &PlanCtx,
    vm: &InvVm,
    vm_ref: &str,
    facts: &PlanWideFacts,
    findings: &mut VmFindings,
) {
    // vsphere/validator.go StaticIPs: with preserveStaticIPs, a VM with NICs must report guest
    // networks (the inventory lists them only while VMware Tools runs in a powered-on guest).
    if ctx.src_type == "vsphere" && facts.preserve_ips && !vm.nics.is_empty() {
        let reporting = vm.powered_on
            && vm.tools == crate::source::model::ToolsStatus::Ok
            && vm.nics.iter().any(|n| !n.ips.is_empty());
        if !reporting {
            findings.add("VMMissingGuestIPs", vm_ref.to_string());
        }
    }
    let mut pod_nics = 0;
    for nic in &vm.nics {
        match ctx.network_entry(&nic.network) {
            None => {
                findings.add("VMNetworksNotMapped", vm_ref.to_string());
                break;
            }
            Some(entry) if text_at(&entry, "/destination/type") == "pod" => pod_nics += 1,
            Some(_) => {}
        }
    }
    if pod_nics > 1 {
        findings.add("VMMultiplePodNetworkMappings", vm_ref.to_string());
    }
}

/// Every disk mapped (unless conversion only), sized, and one copy method for the whole plan.
fn check_vm_storage(
    ctx: &PlanCtx,
    vm: &InvVm,
    vm_ref: &str,
    facts: &PlanWideFacts,
    findings: &mut VmFindings,
) {
    let mut unmapped = false;
    let mut mixed = false;
    for disk in &vm.disks {
        match ctx.storage_entry(disk) {
            None => unmapped = true,
            Some(entry) => {
                if facts.offload && entry.get("offloadPlugin").is_none_or(Value::is_null) {
                    mixed = true;
                }
            }
        }
        if disk.capacity_mib == 0 {
            findings.add("InvalidDiskSizes", vm_ref.to_string());
        }
    }
    if unmapped && !facts.conversion_only {
        findings.add("VMStorageNotMapped", vm_ref.to_string());
    }
    if mixed {
        findings.add("VDDKAndOffloadMixedUsage", vm_ref.to_string());
    }
}

/// Power state for live migration, CBT and snapshots for warm, VMware Tools, critical concerns.
fn check_vm_source_state(ctx: &PlanCtx, vm: &InvVm, vm_ref: &str, findings: &mut VmFindings) {
    let vsphere = ctx.src_type == "vsphere";
    if ctx.plan_type() == "live" && ctx.src_type == "openshift" && !vm.powered_on {
        findings.add("VMPowerStateUnsupported", vm_ref.to_string());
    }
    if ctx.warm && vsphere {
        if !vm.cbt {
            findings.add("VMMissingChangedBlockTracking", vm_ref.to_string());
        }
        if vm.has_snapshots {
            findings.add("VMHasSnapshots", vm_ref.to_string());
        }
    }
    if vsphere && vm.powered_on && vm.tools != crate::source::model::ToolsStatus::Ok {
        findings.add("GuestToolsIssue", vm_ref.to_string());
    }
    for (label, category) in &vm.concerns {
        if category == "Critical" {
            findings.add("VMCriticalConcerns", format!("{vm_ref} ({label})"));
        }
    }
}

/// The effective PVC name template must parse and render a DNS-1123 label for every disk.
fn check_pvc_name_template(
    ctx: &PlanCtx,
    spec_vm: &Value,
    vm: &InvVm,
    vm_ref: &str,
    facts: &PlanWideFacts,
    findings: &mut VmFindings,
) {
    let (template, generate) = ctx.pvc_template(spec_vm, facts.global_pvc_template.clone());
    let error = match Template::parse(&template) {
        Err(e) => Some(e.message().to_string()),
        Ok(parsed) => (0..vm.disks.len()).find_map(|disk| {
            render_pvc_name(&parsed, &ctx.pvc_data(vm, disk), generate)
                .err()
                .map(|e| e.message().to_string())
        }),
    };
    if let Some(error) = error {
        findings
            .template_errors
            .push(format!("{vm_ref} template:{template} error:{error}"));
    }
}
