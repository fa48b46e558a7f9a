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
use super::provider::secret_values;
use super::{Controller, controller_setting, meta, s};
use crate::registry;
use crate::store::ListOptions;

/// A plan with its providers, maps and source VMs resolved.
#[derive(Debug, Clone)]
pub(crate) struct PlanCtx {
    pub plan: Value,
    pub src: Value,
    pub dst: Value,
    pub src_type: String,
    pub inv: Inventory,
    pub netmap: Value,
    pub storagemap: Value,
    pub warm: bool,
    pub local_dest: bool,
    /// Resolved source VMs by spec index (None: not found).
    pub vms: Vec<Option<InvVm>>,
}

impl PlanCtx {
    pub fn target_ns(&self) -> &str {
        s(&self.plan, "/spec/targetNamespace")
    }

    pub fn plan_type(&self) -> &str {
        s(&self.plan, "/spec/type")
    }

    /// The StorageMap entry for a source disk.
    pub fn storage_entry(&self, disk: &InvDisk) -> Option<Value> {
        let refs = self
            .storagemap
            .pointer("/status/references")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let entries = self
            .storagemap
            .pointer("/spec/map")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        entries.into_iter().find(|e| {
            let (id, name) = (s(e, "/source/id"), s(e, "/source/name"));
            let direct = (!id.is_empty() && id == disk.storage)
                || (!name.is_empty()
                    && (name == disk.storage_name
                        || name == disk.storage
                        || disk.file.rsplit('/').next() == Some(name)));
            direct
                || refs.iter().any(|r| {
                    s(r, "/id") == disk.storage
                        && ((!id.is_empty() && (id == s(r, "/id")))
                            || (!name.is_empty() && name == s(r, "/name")))
                })
        })
    }

    /// The NetworkMap entry for a source NIC network.
    pub fn network_entry(&self, network: &str) -> Option<Value> {
        let refs = self
            .netmap
            .pointer("/status/references")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let entries = self
            .netmap
            .pointer("/spec/map")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let resolved = refs
            .iter()
            .find(|r| s(r, "/id") == network || s(r, "/name") == network)
            .cloned();
        entries.into_iter().find(|e| {
            let (id, name, typ) = (
                s(e, "/source/id"),
                s(e, "/source/name"),
                s(e, "/source/type"),
            );
            (typ == "pod" && network == "pod")
                || (!id.is_empty() && id == network)
                || (!name.is_empty() && name == network)
                || resolved.as_ref().is_some_and(|r| {
                    (!id.is_empty() && id == s(r, "/id"))
                        || (!name.is_empty() && name == s(r, "/name"))
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
            s(vm_spec, "/pvcNameTemplate"),
            s(&self.plan, "/spec/pvcNameTemplate"),
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
        let generate = super::b(&self.plan, "/spec/pvcNameTemplateUseGenerateName").unwrap_or(!ocp);
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
        let fields: Vec<(&str, mtv_api::template::Value)> = vec![
            ("VmName", vm.name.clone().into()),
            (
                "TargetVmName",
                template_target_vm_name(&vm.name, &vm.id).into(),
            ),
            ("PlanName", meta(&self.plan, "name").into()),
            ("DiskIndex", (index as i64).into()),
            ("VmId", vm.id.clone().into()),
            (
                "FileName",
                if self.src_type == "vsphere" {
                    file
                } else {
                    String::new()
                }
                .into(),
            ),
            (
                "SourcePVCName",
                if self.src_type == "openshift" {
                    disk.file.clone()
                } else {
                    String::new()
                }
                .into(),
            ),
            (
                "SourcePVCNamespace",
                if self.src_type == "openshift" {
                    vm.namespace.clone()
                } else {
                    String::new()
                }
                .into(),
            ),
            (
                "DiskId",
                if matches!(self.src_type.as_str(), "ovirt" | "hyperv") {
                    disk.file.clone()
                } else {
                    String::new()
                }
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
        s(vm, "/type").to_string(),
        s(vm, "/id").to_string(),
        s(vm, "/name").to_string(),
    )
}

impl Controller {
    /// Validates a plan: the condition set and, when providers and maps resolve, the plan context.
    pub(crate) fn validate_plan(
        &mut self,
        plan: &Value,
        executing: bool,
    ) -> (Conditions, Option<PlanCtx>) {
        let mut conds = Conditions::default();
        let ns = meta(plan, "namespace").to_string();
        let (src, dst) = self.provider_pair(plan, &mut conds);
        let target_ns = s(plan, "/spec/targetNamespace");
        if target_ns.is_empty() {
            conds.set(Condition::new(
                "NamespaceNotValid",
                CRITICAL,
                "NotSet",
                "Target namespace is not valid.",
            ));
        } else if !is_dns1123_subdomain(target_ns) {
            conds.set(Condition::new(
                "NamespaceNotValid",
                CRITICAL,
                "NotValid",
                "Target namespace is not valid.",
            ));
        }
        let conversion_only = s(plan, "/spec/type") == "conversion";
        let mut maps = [None, None];
        for (i, (key, rt, refname, notready, label)) in [
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
            let name = s(plan, &format!("/spec/map/{key}/name"));
            let mns = Some(s(plan, &format!("/spec/map/{key}/namespace")))
                .filter(|n| !n.is_empty())
                .unwrap_or(&ns);
            if name.is_empty() {
                conds.set(Condition::new(
                    refname,
                    CRITICAL,
                    "NotSet",
                    &format!("{label} is not valid."),
                ));
                continue;
            }
            match self.store.get(rt, Some(mns), name) {
                Err(_) => conds.set(Condition::new(
                    refname,
                    CRITICAL,
                    "NotFound",
                    &format!("{label} is not valid."),
                )),
                Ok(m) => {
                    if !has_condition(m.pointer("/status/conditions"), "Ready") {
                        conds.set(Condition::new(
                            notready,
                            CRITICAL,
                            "",
                            &format!("{label} does not have Ready condition."),
                        ));
                    }
                    maps[i] = Some(m);
                }
            }
        }
        let (Some(src), Some(dst)) = (src, dst) else {
            return (conds, None);
        };
        if conds.has_blocker() {
            return (conds, None);
        }
        let [Some(netmap), storagemap] = maps else {
            return (conds, None);
        };
        let storagemap = storagemap.unwrap_or(Value::Null);
        let Some(inv) = Inventory::of(&self.source, &src) else {
            return (conds, None);
        };
        let src_type = s(&src, "/spec/type").to_string();
        let warm = super::b(plan, "/spec/warm") == Some(true) || s(plan, "/spec/type") == "warm";
        let mut ctx = PlanCtx {
            plan: plan.clone(),
            src: src.clone(),
            dst: dst.clone(),
            src_type: src_type.clone(),
            inv,
            netmap,
            storagemap,
            warm,
            local_dest: s(&dst, "/spec/url").is_empty(),
            vms: Vec::new(),
        };
        let mtv = self.opts.mtv_namespace.clone();
        let setting = |k: &str| controller_setting(&self.store, &mtv, k);

        // Migration type.
        if warm {
            let supported = match src_type.as_str() {
                "vsphere" => true,
                "ovirt" => setting("controller_ovirt_warm_migration").as_deref() != Some("false"),
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
        let ptype = s(plan, "/spec/type");
        let type_ok = match ptype {
            "" | "cold" | "warm" => true,
            "live" => src_type == "openshift",
            "conversion" => src_type == "vsphere",
            _ => false,
        };
        if !type_ok {
            conds.set(Condition::new(
                "MigrationTypeNotValid",
                CRITICAL,
                "NotSupported",
                &format!("Migration type '{ptype}' is not supported by the source provider."),
            ));
        }

        // Per-VM checks.
        let spec_vms = plan
            .pointer("/spec/vms")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let status_vms = plan
            .pointer("/status/migration/vms")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let succeeded: BTreeSet<String> = status_vms
            .iter()
            .filter(|v| has_condition(v.get("conditions"), "Succeeded"))
            .map(|v| s(v, "/id").to_string())
            .collect();
        let in_status: BTreeSet<String> =
            status_vms.iter().map(|v| s(v, "/id").to_string()).collect();
        let mut items: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut duplicate_reason = None;
        let mut seen_ids = BTreeSet::new();
        let mut seen_targets = BTreeSet::new();
        // MACs already used by VMs at the destination (not this plan's own targets).
        let plan_uid = meta(plan, "uid").to_string();
        let destination_macs: BTreeSet<String> = if src_type == "openshift" {
            BTreeSet::new()
        } else {
            self.store
                .list(&registry::VIRTUAL_MACHINE, None, &ListOptions::default())
                .map(|l| l.items)
                .unwrap_or_default()
                .iter()
                .filter(|vm| s(vm, "/metadata/labels/plan") != plan_uid)
                .flat_map(|vm| {
                    vm.pointer("/spec/template/spec/domain/devices/interfaces")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .map(|i| s(&i, "/macAddress").to_lowercase())
                .filter(|m| !m.is_empty())
                .collect()
        };
        let mut mac_conflicts = Vec::new();
        let existing_vms = self
            .store
            .list(
                &registry::VIRTUAL_MACHINE,
                Some(target_ns),
                &ListOptions::default(),
            )
            .map(|l| l.items)
            .unwrap_or_default();
        let offload = ctx.offload();
        let global_template = setting(if src_type == "openshift" {
            "controller_ocp_pvc_name_template"
        } else {
            "controller_pvc_name_template"
        });
        let mut template_errors = Vec::new();
        for spec_vm in &spec_vms {
            let (typ, id, name) = vm_ref_of(spec_vm);
            if id.is_empty() && name.is_empty() && typ.is_empty() {
                items
                    .entry("VMRefNotValid")
                    .or_default()
                    .push(ref_string(&typ, &id, &name));
                ctx.vms.push(None);
                continue;
            }
            let found = ctx.inv.find_vm(&self.source, &self.store, spec_vm);
            let vm = match found {
                Err(Lookup::NotFound) => {
                    items
                        .entry("VMNotFound")
                        .or_default()
                        .push(ref_string(&typ, &id, &name));
                    ctx.vms.push(None);
                    continue;
                }
                Err(Lookup::Ambiguous) => {
                    items
                        .entry("DuplicateVM")
                        .or_default()
                        .push(ref_string(&typ, &id, &name));
                    duplicate_reason.get_or_insert(("Ambiguous", "VM reference is ambiguous."));
                    ctx.vms.push(None);
                    continue;
                }
                Ok(vm) => vm,
            };
            ctx.vms.push(Some(vm.clone()));
            if executing || succeeded.contains(&vm.id) {
                continue;
            }
            let r = ref_string(&typ, &vm.id, &vm.name);
            if !seen_ids.insert(vm.id.clone()) {
                items.entry("DuplicateVM").or_default().push(r.clone());
                duplicate_reason = Some(("NotUnique", "Duplicate (source) VM."));
            }
            let target_name = s(spec_vm, "/targetName");
            if !target_name.is_empty() {
                if !is_dns1123_subdomain(target_name) {
                    items.entry("NotValid").or_default().push(r.clone());
                }
                if !seen_targets.insert(target_name.to_string()) {
                    items.entry("DuplicateVM").or_default().push(r.clone());
                    duplicate_reason.get_or_insert(("NotUnique", "Duplicate targetName."));
                }
            } else if !is_dns1123_subdomain(&vm.name) {
                items
                    .entry("TargetNameNotValid")
                    .or_default()
                    .push(r.clone());
            }
            let wanted = if target_name.is_empty() {
                vm.name.as_str()
            } else {
                target_name
            };
            if !in_status.contains(&vm.id) && existing_vms.iter().any(|e| meta(e, "name") == wanted)
            {
                items.entry("VMAlreadyExists").or_default().push(r.clone());
            }
            let conflicts: Vec<&str> = vm
                .nics
                .iter()
                .filter(|n| destination_macs.contains(&n.mac.to_lowercase()))
                .map(|n| n.mac.as_str())
                .collect();
            if !conflicts.is_empty() {
                mac_conflicts.push(format!("{r}MACs: {}", conflicts.join(", ")));
            }
            let mut pod_nics = 0;
            for nic in &vm.nics {
                match ctx.network_entry(&nic.network) {
                    None => {
                        items
                            .entry("VMNetworksNotMapped")
                            .or_default()
                            .push(r.clone());
                        break;
                    }
                    Some(e) => {
                        if s(&e, "/destination/type") == "pod" {
                            pod_nics += 1;
                        }
                    }
                }
            }
            if pod_nics > 1 {
                items
                    .entry("VMMultiplePodNetworkMappings")
                    .or_default()
                    .push(r.clone());
            }
            let mut unmapped = false;
            let mut mixed = false;
            for disk in &vm.disks {
                match ctx.storage_entry(disk) {
                    None => unmapped = true,
                    Some(e) => {
                        if offload && e.get("offloadPlugin").is_none_or(Value::is_null) {
                            mixed = true;
                        }
                    }
                }
                if disk.capacity_mib == 0 {
                    items.entry("InvalidDiskSizes").or_default().push(r.clone());
                }
            }
            if unmapped && !conversion_only {
                items
                    .entry("VMStorageNotMapped")
                    .or_default()
                    .push(r.clone());
            }
            if mixed {
                items
                    .entry("VDDKAndOffloadMixedUsage")
                    .or_default()
                    .push(r.clone());
            }
            if ptype == "live" && src_type == "openshift" && !vm.powered_on {
                items
                    .entry("VMPowerStateUnsupported")
                    .or_default()
                    .push(r.clone());
            }
            if warm && src_type == "vsphere" {
                if !vm.cbt {
                    items
                        .entry("VMMissingChangedBlockTracking")
                        .or_default()
                        .push(r.clone());
                }
                if vm.has_snapshots {
                    items.entry("VMHasSnapshots").or_default().push(r.clone());
                }
            }
            if src_type == "vsphere"
                && vm.powered_on
                && vm.tools != crate::source::model::ToolsStatus::Ok
            {
                items.entry("GuestToolsIssue").or_default().push(r.clone());
            }
            for (label, category) in &vm.concerns {
                if category == "Critical" {
                    items
                        .entry("VMCriticalConcerns")
                        .or_default()
                        .push(format!("{r} ({label})"));
                }
            }
            // The effective PVC template must render a DNS-1123 label for every disk.
            let (tpl, generate) = ctx.pvc_template(spec_vm, global_template.clone());
            match Template::parse(&tpl) {
                Err(e) => template_errors.push(format!("{r} template:{tpl} error:{}", e.message())),
                Ok(t) => {
                    for i in 0..vm.disks.len() {
                        if let Err(e) = render_pvc_name(&t, &ctx.pvc_data(&vm, i), generate) {
                            template_errors
                                .push(format!("{r} template:{tpl} error:{}", e.message()));
                            break;
                        }
                    }
                }
            }
        }
        let table: &[(&str, &'static str, &str, &str)] = &[
            (
                "VMRefNotValid",
                CRITICAL,
                "NotSet",
                "VM reference is not valid.",
            ),
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
                "VMMissingChangedBlockTracking",
                CRITICAL,
                "MissingChangedBlockTracking",
                "Changed Block Tracking (CBT) has not been enabled on some VM. This feature is a prerequisite for VM warm migration.",
            ),
            (
                "VMHasSnapshots",
                CRITICAL,
                "NotValid",
                "VM has snapshots; warm migration of VMs with snapshots is not supported.",
            ),
            (
                "GuestToolsIssue",
                CRITICAL,
                "NotValid",
                "VMware Tools is not installed or not running on the powered-on VM.",
            ),
            (
                "InvalidDiskSizes",
                CRITICAL,
                "NotValid",
                "VM has disks with an invalid size.",
            ),
            (
                "VMCriticalConcerns",
                CRITICAL,
                "NotValid",
                "Source VM has critical concerns.",
            ),
            (
                "VMPowerStateUnsupported",
                CRITICAL,
                "NotSupported",
                "Live migration requires the source VM to be running.",
            ),
            (
                "VDDKAndOffloadMixedUsage",
                CRITICAL,
                "NotSupported",
                "The plan uses storage offload, but some VM disks are on datastores without an offload plugin; VDDK and offload cannot be mixed.",
            ),
        ];
        for (kind, category, reason, message) in table {
            if let Some(list) = items.remove(kind) {
                let (reason, message) = match (*kind, duplicate_reason) {
                    ("DuplicateVM", Some((r, m))) => (r, m),
                    _ => (*reason, *message),
                };
                conds.set(Condition::new(kind, category, reason, message).items(list));
            }
        }
        if !mac_conflicts.is_empty() {
            conds.set(
                Condition::new(
                    "MacConflicts",
                    CRITICAL,
                    "NotValid",
                    &format!(
                        "Source VM has a MAC address already used by a VM at the destination: {}",
                        mac_conflicts.join("; ")
                    ),
                )
                .items(mac_conflicts),
            );
        }
        if !template_errors.is_empty() {
            // Same condition type as an invalid targetName: the type is literally `NotValid`.
            let mut c = conds.get("NotValid").cloned().unwrap_or_else(|| {
                Condition::new(
                    "NotValid",
                    CRITICAL,
                    "NotValid",
                    "VM PVC name template is invalid.",
                )
            });
            if c.items.is_empty() {
                c.message = "VM PVC name template is invalid.".into();
            }
            c.items.extend(template_errors);
            conds.set(c);
        }

        // Hooks.
        let (mut hook_invalid, mut hook_not_ready, mut bad_steps) =
            (Vec::new(), Vec::new(), Vec::new());
        let mut hook_reason = "NotSet";
        for vm in &spec_vms {
            for h in vm
                .get("hooks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let step = s(&h, "/step");
                if step != "PreHook" && step != "PostHook" {
                    bad_steps.push(step.to_string());
                }
                let name = s(&h, "/hook/name");
                let hns = Some(s(&h, "/hook/namespace"))
                    .filter(|n| !n.is_empty())
                    .unwrap_or(&ns);
                if name.is_empty() {
                    hook_invalid.push(format!("{hns}/{name}"));
                    continue;
                }
                match self.store.get(&registry::HOOK, Some(hns), name) {
                    Err(_) => {
                        hook_reason = "NotFound";
                        hook_invalid.push(format!("{hns}/{name}"));
                    }
                    Ok(hook) => {
                        if !has_condition(hook.pointer("/status/conditions"), "Ready") {
                            hook_not_ready.push(format!("{hns}/{name}"));
                        }
                    }
                }
            }
        }
        if !hook_invalid.is_empty() {
            conds.set(
                Condition::new(
                    "HookNotValid",
                    CRITICAL,
                    hook_reason,
                    "Hook specified by: `namespace` and `name` is not valid.",
                )
                .items(hook_invalid),
            );
        }
        if !hook_not_ready.is_empty() {
            conds.set(
                Condition::new(
                    "HookNotReady",
                    CRITICAL,
                    "NotFound",
                    "Hook does not have `Ready` condition.",
                )
                .items(hook_not_ready),
            );
        }
        if !bad_steps.is_empty() {
            conds.set(
                Condition::new(
                    "HookStepNotValid",
                    CRITICAL,
                    "NotValid",
                    "Hook step not valid.",
                )
                .items(bad_steps),
            );
        }

        // Transfer network.
        let tn = s(plan, "/spec/transferNetwork/name");
        if !tn.is_empty() {
            let tns = Some(s(plan, "/spec/transferNetwork/namespace"))
                .filter(|n| !n.is_empty())
                .unwrap_or(target_ns);
            if self
                .store
                .get(&registry::NETWORK_ATTACHMENT_DEFINITION, Some(tns), tn)
                .is_err()
            {
                conds.set(Condition::new(
                    "TransferNetworkNotValid",
                    CRITICAL,
                    "NotFound",
                    "Transfer network is not valid.",
                ));
            }
        }

        // VDDK (vSphere).
        if src_type == "vsphere" {
            let image = Some(s(&src, "/spec/settings/vddkInitImage").to_string())
                .filter(|i| !i.is_empty())
                .or_else(|| setting("vddk_image").filter(|i| !i.is_empty()));
            let raw_copy = super::b(plan, "/spec/skipGuestConversion") == Some(true) && !offload;
            match image {
                None if warm || raw_copy => conds.set(Condition::new(
                    "VDDKInitImageUnavailable",
                    CRITICAL,
                    "NotSet",
                    "VDDK init image is not set on the provider or in the ForkliftController; it is required for this migration.",
                )),
                Some(image) if !self.opts.vddk_validation.is_zero() => {
                    let key = (meta(plan, "uid").to_string(), image);
                    let started = *self.vddk_started.entry(key).or_insert_with(Instant::now);
                    if started.elapsed() < self.opts.real(self.opts.vddk_validation) {
                        conds.set(Condition::new("ValidatingVDDK", ADVISORY, "Started", "Validating VDDK init image."));
                    }
                }
                _ => {}
            }
        }
        // Secrets of offload plugins must exist in the source provider's namespace.
        if offload {
            let sns = meta(&src, "namespace");
            for e in ctx
                .storagemap
                .pointer("/spec/map")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let secret = s(&e, "/offloadPlugin/vsphereXcopyConfig/secretRef");
                if !secret.is_empty()
                    && self
                        .store
                        .get(&registry::SECRET, Some(sns), secret)
                        .map(|x| secret_values(&x))
                        .is_err()
                {
                    conds.set(Condition::new(
                        "StorageOffloadSecretNotValid",
                        WARN,
                        "NotFound",
                        "Storage offload secret not found.",
                    ));
                }
            }
        }
        (conds, Some(ctx))
    }

    /// When the plan must wait for objects whose controllers have not caught up (§0.1).
    pub(crate) fn dependencies_pending(&self) -> bool {
        // Hosts have no controller in the lab yet, so they are not waited for.
        [&registry::PROVIDER, &registry::NETWORK_MAP, &registry::HOOK]
            .into_iter()
            .any(|rt| {
                self.store
                    .list(rt, None, &ListOptions::default())
                    .map(|l| {
                        l.items.iter().any(|o| {
                            let observed = o
                                .pointer("/status/observedGeneration")
                                .and_then(Value::as_i64);
                            observed.is_none_or(|g| g < super::generation(o))
                        })
                    })
                    .unwrap_or(false)
            })
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
