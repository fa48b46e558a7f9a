//! Objects a migration creates (forklift-api.md §4.8, §3.4, §3.5, §5, §6): target namespace, DataVolumes,
//! PVCs, copy-offload populators and their pods, hook ConfigMaps and Jobs, the VirtualMachine and its VMI,
//! and the cleanup of a failed VM (§5.3).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mtv_api::naming::{forklift_collision_name, forklift_target_vm_name, is_dns1123_subdomain};
use mtv_api::template::{
    DEFAULT_OCP_PVC_TEMPLATE, DEFAULT_PVC_TEMPLATE, PvcName, Template, render_pvc_name,
};
use serde_json::{Map, Value, json};

use super::exec::MigratingVm;
use super::inventory::{InvDisk, InvVm};
use super::kubevirt::{AddressLeases, GuestFacts};
use super::misbehave;
use super::plan::PlanCtx;
use super::{Controller, meta, text_at};
use crate::clock;
use crate::faults::Misbehaviour;
use crate::random;
use crate::registry::{self, POD_LOG_ANNOTATION, ResourceType};
use crate::selector::LabelSelector;
use crate::store::{DeleteOptions, ListOptions};

/// How long a finished populator pod stays: the scaled delay, but never under a few real seconds.
/// On a cluster the pod goes only after the populator has rebound the volume to the claim and deleted
/// its temporary claim, seconds after the copy; a one-second window here was shorter than a client
/// watching under load needs to read the final log (a flaky copy-offload check, seen on 2 loaded cores).
fn populate_pod_grace(scaled: Duration) -> Duration {
    scaled.max(Duration::from_secs(4))
}

fn owner(rt: &ResourceType, obj: &Value, controller: bool) -> Value {
    json!({
        "apiVersion": rt.api_version(),
        "kind": rt.kind,
        "name": meta(obj, "name"),
        "uid": meta(obj, "uid"),
        "controller": controller,
        "blockOwnerDeletion": true
    })
}

fn quantity(mib: u64) -> String {
    if mib.is_multiple_of(1024) {
        format!("{}Gi", mib / 1024)
    } else {
        format!("{mib}Mi")
    }
}

/// A stable 5-character suffix (copy-offload PVCs cannot use generateName).
fn deterministic_suffix(seed: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in seed.bytes() {
        h ^= u64::from(c);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..5)
        .map(|i| ALPHABET[((h >> (i * 8)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

fn klog(level: char, file: &str, msg: &str) -> String {
    let now = clock::now_rfc3339();
    // `I1125 02:40:01.000000       1 file.go:NN] msg`, as klog prints.
    let (date, time) = (&now[5..10].replace('-', ""), &now[11..19]);
    format!("{level}{date} {time}.000000       1 {file}] {msg}\n")
}

fn selector(text: &str) -> ListOptions {
    ListOptions {
        label_selector: LabelSelector::parse(text).unwrap_or_default(),
        ..ListOptions::default()
    }
}

impl Controller {
    pub(super) fn list_labelled(
        &self,
        rt: &'static ResourceType,
        ns: &str,
        labels: &str,
    ) -> Vec<Value> {
        self.store
            .list(rt, Some(ns), &selector(labels))
            .map(|l| l.items)
            .unwrap_or_default()
    }

    fn delete_obj(&self, rt: &'static ResourceType, obj: &Value) {
        let _ = self.store.delete(
            rt,
            Some(meta(obj, "namespace")),
            meta(obj, "name"),
            &DeleteOptions::default(),
        );
    }

    pub(crate) fn ensure_namespace(&self, ns: &str) -> Result<(), String> {
        if self.store.get(&registry::NAMESPACE, None, ns).is_ok() {
            return Ok(());
        }
        match self.store.create(
            &registry::NAMESPACE,
            None,
            json!({"metadata": {"name": ns}}),
        ) {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(format!(
                "failed to create the target namespace {ns}: {}",
                e.message
            )),
        }
    }

    fn vm_labels(plan: &Value, migration: &Value, vm_id: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("migration".into(), json!(meta(migration, "uid")));
        m.insert("plan".into(), json!(meta(plan, "uid")));
        m.insert("plan-name".into(), json!(meta(plan, "name")));
        m.insert("plan-namespace".into(), json!(meta(plan, "namespace")));
        m.insert("vmID".into(), json!(vm_id));
        m
    }

    /// §3.5: `targetName`, else the source name if it is a DNS-1123 subdomain, else `ChangeVmName` with
    /// collision handling; `newName` only when renamed.
    pub(crate) fn assign_target_name(
        &self,
        ctx: &PlanCtx,
        vm: &mut Value,
        inventory_vm: &InvVm,
        spec_vm: &Value,
    ) {
        if !text_at(spec_vm, "/targetName").is_empty() || is_dns1123_subdomain(&inventory_vm.name) {
            return;
        }
        if !text_at(vm, "/newName").is_empty() {
            return;
        }
        let mut rnd = || random::name_suffix(4);
        let mut name = forklift_target_vm_name(&inventory_vm.name, &mut rnd);
        let taken = self
            .store
            .get(&registry::VIRTUAL_MACHINE, Some(ctx.target_ns()), &name)
            .is_ok()
            || ctx
                .plan
                .pointer("/status/migration/vms")
                .and_then(Value::as_array)
                .is_some_and(|vms| {
                    vms.iter().any(|o| {
                        text_at(o, "/id") != inventory_vm.id
                            && (text_at(o, "/newName") == name || text_at(o, "/targetName") == name)
                    })
                });
        if taken {
            name = forklift_collision_name(&name, &random::name_suffix(4));
        }
        vm["newName"] = json!(name);
    }

    /// The name the target VM gets.
    fn target_name(vm: &Value, spec_vm_target: &str) -> String {
        [
            text_at(vm, "/newName"),
            spec_vm_target,
            text_at(vm, "/targetName"),
            text_at(vm, "/name"),
        ]
        .into_iter()
        .find(|n| !n.is_empty())
        .unwrap_or_default()
        .to_string()
    }

    /// DataVolumes and PVCs (CDI and virt-v2v paths), or populator CRs, PVCs and pods (copy offload).
    pub(super) fn create_disks(&mut self, migrating: &MigratingVm<'_>) -> Result<(), String> {
        let (ctx, inventory_vm) = (migrating.ctx, migrating.inventory_vm);
        let setup = self.disk_copy_setup(
            migrating.plan,
            ctx,
            migrating.migration,
            inventory_vm,
            migrating.spec_vm,
        )?;
        if setup.offload {
            self.create_populator_plan_secret(migrating.plan, ctx, &setup);
        }
        for (index, disk) in inventory_vm.disks.iter().enumerate() {
            let entry = ctx.storage_entry(disk).unwrap_or(Value::Null);
            let target = self.disk_target(ctx, inventory_vm, &setup, &entry, disk, index)?;
            match entry.pointer("/offloadPlugin/vsphereXcopyConfig") {
                Some(plugin) if setup.offload => self.create_xcopy_disk(
                    ctx,
                    migrating.migration,
                    inventory_vm,
                    &setup,
                    &target,
                    plugin,
                    disk,
                    index,
                )?,
                _ => self.create_cdi_disk(ctx, inventory_vm, &setup, &target, disk)?,
            }
        }
        Ok(())
    }

    /// What every disk of one VM shares: namespace, labels, the PVC name template, the copy method and
    /// the misbehaviours the VM asks for.
    fn disk_copy_setup(
        &mut self,
        plan: &Value,
        ctx: &PlanCtx,
        migration: &Value,
        inventory_vm: &InvVm,
        spec_vm: &Value,
    ) -> Result<DiskCopySetup, String> {
        let labels = Self::vm_labels(plan, migration, &inventory_vm.id);
        let global = self.setting(if ctx.src_type == "openshift" {
            "controller_ocp_pvc_name_template"
        } else {
            "controller_pvc_name_template"
        });
        let (mut template, generate) = ctx.pvc_template(spec_vm, global);
        if self.misbehaves(inventory_vm, Misbehaviour::PvcName) {
            template = if ctx.src_type == "openshift" {
                DEFAULT_OCP_PVC_TEMPLATE
            } else {
                DEFAULT_PVC_TEMPLATE
            }
            .to_string();
        }
        let template = Template::parse(&template)
            .map_err(|e| format!("VM PVC name template is invalid: {}", e.message()))?;
        let feature_offload = self.setting("feature_copy_offload").as_deref() != Some("false");
        let offload = ctx.offload() && feature_offload;
        let wrong_class = self.misbehaves(inventory_vm, Misbehaviour::StorageClass);
        let existing_classes = if wrong_class {
            self.store
                .list(&registry::STORAGE_CLASS, None, &ListOptions::default())
                .map(|l| {
                    l.items
                        .iter()
                        .map(|c| meta(c, "name").to_string())
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        // The credentials Secret CDI's importer reads, one per VM (kubevirt.go DataVolumes/ensureSecret).
        let needs_data_volume = !offload
            || inventory_vm.disks.iter().any(|d| {
                ctx.storage_entry(d)
                    .and_then(|e| e.pointer("/offloadPlugin/vsphereXcopyConfig").cloned())
                    .is_none()
            });
        let importer_secret =
            if needs_data_volume && matches!(ctx.src_type.as_str(), "vsphere" | "ovirt") {
                self.ensure_dv_secret(plan, ctx, &labels, inventory_vm)?
            } else {
                String::new()
            };
        Ok(DiskCopySetup {
            namespace: ctx.target_ns().to_string(),
            labels,
            template,
            generate,
            offload,
            wrong_class: wrong_class.then_some(existing_classes),
            short_disks: self.misbehaves(inventory_vm, Misbehaviour::DiskSize),
            importer_secret,
        })
    }

    /// The plan Secret the populators read (created once the migration runs).
    fn create_populator_plan_secret(&self, plan: &Value, ctx: &PlanCtx, setup: &DiskCopySetup) {
        let mut secret_labels = setup.labels.clone();
        secret_labels.insert("isPopulator".into(), json!("true"));
        let _ = self.store.create(
            &registry::SECRET,
            Some(&setup.namespace),
            json!({"metadata": {"generateName": format!("{}-", meta(plan, "name")), "labels": secret_labels},
                   "type": "Opaque",
                   "stringData": {"GOVMOMI_HOSTNAME": super::provider::host_of(text_at(&ctx.src, "/spec/url"))}}),
        );
    }

    /// The claim one disk becomes: class, size, modes, name and the disk annotations.
    fn disk_target(
        &self,
        ctx: &PlanCtx,
        inventory_vm: &InvVm,
        setup: &DiskCopySetup,
        entry: &Value,
        disk: &InvDisk,
        index: usize,
    ) -> Result<DiskTarget, String> {
        let mut storage_class = Some(text_at(entry, "/destination/storageClass"))
            .filter(|x| !x.is_empty())
            .unwrap_or("lab-ceph-rbd")
            .to_string();
        if let Some(existing_classes) = &setup.wrong_class {
            storage_class = misbehave::other_storage_class(&storage_class, existing_classes);
        }
        let size = if setup.short_disks {
            quantity(disk.capacity_mib.saturating_sub(1024).max(512))
        } else {
            quantity(disk.capacity_mib)
        };
        let name = render_pvc_name(
            &setup.template,
            &ctx.pvc_data(inventory_vm, index),
            setup.generate && !setup.offload,
        )
        .map_err(|e| format!("VM PVC name template is invalid: {}", e.message()))?;
        let mut annotations = setup.labels.clone();
        annotations.insert("forklift.konveyor.io/disk-source".into(), json!(disk.file));
        annotations.insert(
            "forklift.konveyor.io/disk-index".into(),
            json!(index.to_string()),
        );
        Ok(DiskTarget {
            storage_class,
            size,
            volume_mode: Some(text_at(entry, "/destination/volumeMode"))
                .filter(|x| !x.is_empty())
                .unwrap_or("Filesystem")
                .to_string(),
            access_mode: Some(text_at(entry, "/destination/accessMode"))
                .filter(|x| !x.is_empty())
                .unwrap_or("ReadWriteOnce")
                .to_string(),
            name,
            annotations,
        })
    }

    /// Creates a disk's PVC in `namespace`, `Pending` until its copy binds it (the populator's or
    /// CDI's).
    fn create_pending_pvc(&self, namespace: &str, pvc: Value) -> Result<Value, String> {
        let pvc = self
            .store
            .create(&registry::PERSISTENT_VOLUME_CLAIM, Some(namespace), pvc)
            .map_err(|e| format!("failed to create the PVC: {}", e.message))?;
        let _ = self.store.update_status(
            &registry::PERSISTENT_VOLUME_CLAIM,
            Some(namespace),
            meta(&pvc, "name"),
            json!({"phase": "Pending"}),
        );
        Ok(pvc)
    }

    /// Copy offload for one disk: the merged per-disk Secret, the VSphereXcopyVolumePopulator, the claim
    /// that names it as `dataSourceRef`, and the running `populate-<pvc uid>` pod.
    #[allow(clippy::too_many_arguments)]
    fn create_xcopy_disk(
        &self,
        ctx: &PlanCtx,
        migration: &Value,
        inventory_vm: &InvVm,
        setup: &DiskCopySetup,
        target: &DiskTarget,
        plugin: &Value,
        disk: &InvDisk,
        index: usize,
    ) -> Result<(), String> {
        let namespace = &setup.namespace;
        let base = match &target.name {
            PvcName::Exact(n) | PvcName::GenerateName(n) => n.trim_end_matches('-').to_string(),
        };
        let name = format!(
            "{base}-{}",
            deterministic_suffix(&format!(
                "{}/{}/{index}",
                meta(migration, "uid"),
                inventory_vm.id
            ))
        );
        let vendor = text_at(plugin, "/storageVendorProduct").to_string();
        let disk_secret = format!("{}-{index}", text_at(plugin, "/secretRef"));
        self.create_xcopy_disk_secret(ctx, setup, text_at(plugin, "/secretRef"), &disk_secret);
        let populator = self
            .store
            .create(
                &registry::XCOPY_POPULATOR,
                Some(namespace),
                json!({"metadata": {"name": name, "labels": setup.labels},
                       "spec": {"vmId": inventory_vm.id, "vmdkPath": disk.file, "secretName": disk_secret, "storageVendorProduct": vendor}}),
            )
            .map_err(|e| format!("failed to create the volume populator: {}", e.message))?;
        let host = if inventory_vm.host.is_empty() {
            "esxi-host".to_string()
        } else {
            inventory_vm.host.clone()
        };
        let mut pvc_labels = setup.labels.clone();
        let vmdk_label: String = disk
            .file
            .replace(['[', ']', ' ', '/'], "_")
            .trim_matches('_')
            .chars()
            .take(63)
            .collect();
        pvc_labels.insert(
            "copy-offload".into(),
            json!(vmdk_label.trim_end_matches(['_', '.', '-'])),
        );
        pvc_labels.insert("sourceHost".into(), json!(host));
        let data_source = json!({"apiGroup": "forklift.konveyor.io", "kind": "VSphereXcopyVolumePopulator", "name": meta(&populator, "name")});
        let pvc = self.create_pending_pvc(
            namespace,
            json!({"metadata": {"name": name, "labels": pvc_labels, "annotations": target.annotations},
                   "spec": target.pvc_spec(Some(data_source))}),
        )?;
        self.start_populate_pod(migration, namespace, &name, &pvc, &vendor, &host, disk);
        let _ = self.store.update_status(
            &registry::XCOPY_POPULATOR,
            Some(namespace),
            &name,
            json!({"progress": "0", "storageVendor": vendor, "cloneMethod": "vib", "storageProtocol": "iSCSI"}),
        );
        Ok(())
    }

    /// The merged per-disk Secret a populator reads: the storage Secret's keys, plus the provider's
    /// credentials as `GOVMOMI_*` and the ESXi clone method.
    fn create_xcopy_disk_secret(
        &self,
        ctx: &PlanCtx,
        setup: &DiskCopySetup,
        storage_secret: &str,
        disk_secret: &str,
    ) {
        let provider_namespace = Some(meta(&ctx.src, "namespace"));
        let provider_secret = self
            .store
            .get(
                &registry::SECRET,
                provider_namespace,
                text_at(&ctx.src, "/spec/secret/name"),
            )
            .map(|x| super::provider::secret_values(&x))
            .unwrap_or_default();
        let mut merged: Map<String, Value> = self
            .store
            .get(&registry::SECRET, provider_namespace, storage_secret)
            .map(|x| super::provider::secret_values(&x))
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect();
        merged.insert(
            "GOVMOMI_HOSTNAME".into(),
            json!(super::provider::host_of(text_at(&ctx.src, "/spec/url"))),
        );
        for (key, from) in [
            ("GOVMOMI_USERNAME", "user"),
            ("GOVMOMI_PASSWORD", "password"),
            ("GOVMOMI_INSECURE", "insecureSkipVerify"),
        ] {
            if let Some(v) = provider_secret.get(from) {
                merged.insert(key.into(), json!(v));
            }
        }
        merged.insert(
            "ESXI_CLONE_METHOD".into(),
            json!(
                Some(text_at(&ctx.src, "/spec/settings/esxiCloneMethod"))
                    .filter(|m| !m.is_empty())
                    .unwrap_or("vib")
            ),
        );
        let mut secret_labels = Map::new();
        for key in ["migration", "plan", "vmID"] {
            secret_labels.insert(key.into(), setup.labels[key].clone());
        }
        let _ = self.store.create(
            &registry::SECRET,
            Some(&setup.namespace),
            json!({"metadata": {"name": disk_secret, "labels": secret_labels}, "type": "Opaque", "stringData": merged}),
        );
    }

    /// The populator's `populate-<pvc uid>` pod, Running, with the log lines the xcopy populator writes.
    #[allow(clippy::too_many_arguments)]
    fn start_populate_pod(
        &self,
        migration: &Value,
        namespace: &str,
        pvc_name: &str,
        pvc: &Value,
        vendor: &str,
        host: &str,
        disk: &InvDisk,
    ) {
        let log = klog(
            'I',
            "populate.go:61",
            &format!(
                "\"Starting vSphere XCOPY volume populator\" source_vmdk=\"{}\" target_pvc=\"{namespace}/{pvc_name}\" storage_vendor=\"{vendor}\"",
                disk.file
            ),
        ) + &klog(
            'I',
            "remote_esxcli.go:120",
            &format!(
                "\"Cloning VMDK\" source_vmdk=\"{}\" host=\"{host}\" clone_method=\"vib\"",
                disk.file
            ),
        );
        let pod_name = format!("populate-{}", meta(pvc, "uid"));
        let _ = self.store.create(
            &registry::POD,
            Some(namespace),
            json!({"metadata": {"name": pod_name,
                                "labels": {"migration": meta(migration, "uid"), "pvcName": pvc_name, "sourceHost": host},
                                "annotations": {POD_LOG_ANNOTATION: log}},
                   "spec": {"restartPolicy": "Never", "nodeName": "worker-0",
                            "containers": [{"name": "populate", "image": "quay.io/kubev2v/vsphere-xcopy-volume-populator:latest"}]}}),
        );
        let _ = self.store.update_status(
            &registry::POD,
            Some(namespace),
            &pod_name,
            json!({"phase": "Running", "startTime": clock::now_rfc3339()}),
        );
    }

    /// A CDI copy for one disk: the DataVolume (VDDK, imageio, PVC clone or blank) and its claim.
    fn create_cdi_disk(
        &self,
        ctx: &PlanCtx,
        inventory_vm: &InvVm,
        setup: &DiskCopySetup,
        target: &DiskTarget,
        disk: &InvDisk,
    ) -> Result<(), String> {
        let namespace = &setup.namespace;
        let mut dv_meta =
            json!({"labels": setup.labels, "annotations": target.annotations.clone()});
        dv_meta["annotations"]["cdi.kubevirt.io/storage.deleteAfterCompletion"] = json!("false");
        if ctx.warm || !ctx.local_dest || ctx.src_type == "openshift" {
            dv_meta["annotations"]["cdi.kubevirt.io/storage.bind.immediate.requested"] =
                json!("true");
        }
        if ctx.warm {
            dv_meta["annotations"]["cdi.kubevirt.io/storage.usePopulator"] = json!("false");
        }
        match &target.name {
            PvcName::Exact(n) => dv_meta["name"] = json!(n),
            PvcName::GenerateName(n) => dv_meta["generateName"] = json!(n),
        }
        let source = match ctx.src_type.as_str() {
            "vsphere" => {
                json!({"vddk": {"backingFile": disk.file, "url": text_at(&ctx.src, "/spec/url"), "uuid": inventory_vm.uuid, "thumbprint": text_at(&ctx.src, "/status/fingerprint"), "secretRef": setup.importer_secret}})
            }
            "openshift" => json!({"pvc": {"namespace": inventory_vm.namespace, "name": disk.file}}),
            "ovirt" => {
                json!({"imageio": {"url": text_at(&ctx.src, "/spec/url"), "diskId": disk.file, "secretRef": setup.importer_secret}})
            }
            _ => json!({"blank": {}}),
        };
        let dv = self
            .store
            .create(
                &registry::DATA_VOLUME,
                Some(namespace),
                json!({"metadata": dv_meta, "spec": {"source": source, "storage": target.pvc_spec(None)}}),
            )
            .map_err(|e| format!("failed to create the DataVolume: {}", e.message))?;
        let dv_name = meta(&dv, "name").to_string();
        let _ = self.store.update_status(
            &registry::DATA_VOLUME,
            Some(namespace),
            &dv_name,
            json!({"phase": "ImportScheduled", "progress": "N/A"}),
        );
        let mut pvc_meta = json!({"name": dv_name, "labels": setup.labels, "annotations": target.annotations,
                                  "ownerReferences": [owner(&registry::DATA_VOLUME, &dv, true)]});
        pvc_meta["labels"]["app"] = json!("containerized-data-importer");
        self.create_pending_pvc(
            namespace,
            json!({"metadata": pvc_meta, "spec": target.pvc_spec(None)}),
        )?;
        Ok(())
    }

    /// kubevirt.go ensureSecret/secret: the VM's transfer Secret in the target namespace, named
    /// `<plan>-<vmID>-<random>`, labelled like the VM's objects plus `isDV`, holding the source
    /// credentials as CDI reads them (`accessKeyId`, `secretKey`); reused while one with those labels
    /// exists. Forklift sets no owner reference on it: the plan's cleanup deletes it by label.
    fn ensure_dv_secret(
        &mut self,
        plan: &Value,
        ctx: &PlanCtx,
        labels: &Map<String, Value>,
        inventory_vm: &InvVm,
    ) -> Result<String, String> {
        let mut secret_labels = labels.clone();
        secret_labels.insert("isDV".into(), json!("true"));
        let selector = secret_labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(",");
        if let Some(existing) = self
            .list_labelled(&registry::SECRET, ctx.target_ns(), &selector)
            .first()
        {
            return Ok(meta(existing, "name").to_string());
        }
        let provider = self
            .store
            .get(
                &registry::SECRET,
                Some(meta(&ctx.src, "namespace")),
                text_at(&ctx.src, "/spec/secret/name"),
            )
            .map(|x| super::provider::secret_values(&x))
            .unwrap_or_default();
        let value = |k: &str| provider.get(k).cloned().unwrap_or_default();
        let created = self
            .store
            .create(
                &registry::SECRET,
                Some(ctx.target_ns()),
                json!({"metadata": {"generateName": format!("{}-{}-", meta(plan, "name"), inventory_vm.id), "labels": secret_labels},
                       "type": "Opaque",
                       "stringData": {"accessKeyId": value("user"), "secretKey": value("password")}}),
            )
            .map_err(|e| format!("failed to create the transfer Secret: {}", e.message))?;
        Ok(meta(&created, "name").to_string())
    }

    /// Mirrors copy progress onto DataVolumes, populators, PVCs and populator pods.
    pub(super) fn update_transfer_objects(
        &mut self,
        migrating: &MigratingVm<'_>,
        fraction: f64,
        done: bool,
    ) {
        let (inventory_vm, it) = (migrating.inventory_vm, migrating.itinerary);
        let ns = migrating.ctx.target_ns().to_string();
        let sel = migrating.selector();
        for dv in self.list_labelled(&registry::DATA_VOLUME, &ns, &sel) {
            let status = if done {
                json!({"phase": "Succeeded", "progress": "100.0%", "conditions": [{"type": "Ready", "status": "True", "reason": ""}, {"type": "Bound", "status": "True", "reason": "Bound"}, {"type": "Running", "status": "False", "reason": "Completed"}]})
            } else {
                json!({"phase": "ImportInProgress", "progress": format!("{:.2}%", fraction * 100.0), "conditions": [{"type": "Bound", "status": "True", "reason": "Bound"}, {"type": "Running", "status": "True", "reason": "Pod is running"}]})
            };
            if dv.get("status") != Some(&status) {
                let _ = self.store.update_status(
                    &registry::DATA_VOLUME,
                    Some(&ns),
                    meta(&dv, "name"),
                    status,
                );
            }
        }
        let pvcs = self.list_labelled(&registry::PERSISTENT_VOLUME_CLAIM, &ns, &sel);
        let xcopy_hidden = it.offload && self.misbehaves(inventory_vm, Misbehaviour::Xcopy);
        for pvc in &pvcs {
            let name = meta(pvc, "name").to_string();
            let index: usize = text_at(
                pvc,
                "/metadata/annotations/forklift.konveyor.io~1disk-index",
            )
            .parse()
            .unwrap_or(0);
            let disk = inventory_vm.disks.get(index);
            let bound =
                done || text_at(pvc, "/status/phase") == "Bound" || (!it.offload && fraction > 0.0);
            if bound && text_at(pvc, "/status/phase") != "Bound" {
                let cap = text_at(pvc, "/spec/resources/requests/storage").to_string();
                let _ = self.store.update_status(
                    &registry::PERSISTENT_VOLUME_CLAIM,
                    Some(&ns),
                    &name,
                    json!({"phase": "Bound", "accessModes": pvc.pointer("/spec/accessModes").cloned().unwrap_or(json!([])), "capacity": {"storage": cap}}),
                );
            }
            if !it.offload {
                continue;
            }
            let Some(disk) = disk else { continue };
            let xcopy = disk.xcopy && !inventory_vm.has_snapshots && !xcopy_hidden;
            let bytes = (disk.capacity_mib as f64 * 1024.0 * 1024.0 * fraction) as u64;
            let mut status = json!({
                "progress": bytes.to_string(),
                "storageVendor": text_at(&self.store.get(&registry::XCOPY_POPULATOR, Some(&ns), &name).unwrap_or_default(), "/spec/storageVendorProduct"),
                "cloneMethod": "vib",
                "storageProtocol": "iSCSI",
            });
            if done {
                status["xcopyUsed"] = json!(if xcopy { "1" } else { "0" });
                status["result"] = json!("success");
                status["copyDurationSeconds"] =
                    json!(format!("{}", (disk.capacity_mib / 1024).max(1)));
                status["provisionedBytes"] = json!((disk.capacity_mib * 1024 * 1024).to_string());
                status["allocatedBytes"] = json!(bytes.to_string());
            }
            let _ = self
                .store
                .update_status(&registry::XCOPY_POPULATOR, Some(&ns), &name, status);
            self.update_populate_pod(&ns, pvc, disk, fraction, done, xcopy);
        }
    }

    /// The populator pod's log follows the copy (progress lines, then `Populate finished` with
    /// `xcopyUsed`); once done it Succeeds and is reaped after its grace.
    fn update_populate_pod(
        &mut self,
        ns: &str,
        pvc: &Value,
        disk: &InvDisk,
        fraction: f64,
        done: bool,
        xcopy: bool,
    ) {
        let name = meta(pvc, "name");
        let pod_name = format!("populate-{}", meta(pvc, "uid"));
        let Ok(pod) = self.store.get(&registry::POD, Some(ns), &pod_name) else {
            return;
        };
        let mut log = text_at(
            &pod,
            &format!(
                "/metadata/annotations/{}",
                POD_LOG_ANNOTATION.replace('/', "~1")
            ),
        )
        .to_string();
        let percent = (fraction * 100.0) as u32;
        let line = format!(
            "\"Copy progress\" source_vmdk=\"{}\" progress={percent}",
            disk.file
        );
        if !log.contains(&format!("progress={percent}\""))
            && !log.contains(&format!("progress={percent}\n"))
            && !done
        {
            log.push_str(&klog('I', "populate.go:140", &line));
        }
        if done && !log.contains("xcopyUsed=") {
            if !xcopy {
                log.push_str(&klog('I', "remote_esxcli.go:210", &format!("\"XCOPY not available between the source datastore and the target array; falling back to host-based copy\" source_vmdk=\"{}\"", disk.file)));
            }
            log.push_str(&klog('I', "populate.go:188", &format!("\"Populate finished\" source_vmdk=\"{}\" target_pvc=\"{ns}/{name}\" xcopyUsed={}", disk.file, if xcopy { 1 } else { 0 })));
        }
        self.amend(&registry::POD, Some(ns), &pod_name, |o| {
            o["metadata"]["annotations"][POD_LOG_ANNOTATION] = json!(log);
        });
        if done {
            let _ = self.store.update_status(
                &registry::POD,
                Some(ns),
                &pod_name,
                json!({"phase": "Succeeded"}),
            );
            // MTV removes finished populator pods shortly after the PVC binds.
            self.pod_reaper.push((
                Instant::now() + populate_pod_grace(self.opts.real(Duration::from_secs(10))),
                ns.to_string(),
                pod_name,
            ));
        }
    }

    /// The KubeVirt VM, its VMI when running, PVC ownership, and DataVolume removal (§4.8).
    pub(crate) fn create_target_vm(
        &mut self,
        plan: &Value,
        ctx: &PlanCtx,
        migration: &Value,
        vm: &mut Value,
        inventory_vm: &InvVm,
    ) -> Result<(), String> {
        let disk_ns = ctx.target_ns().to_string();
        // The VM's disks stay in the target namespace whatever namespace the VM itself lands in.
        let ns = if self.misbehaves(inventory_vm, Misbehaviour::Namespace) {
            meta(plan, "namespace").to_string()
        } else {
            disk_ns.clone()
        };
        let mut name = Self::target_name(vm, text_at(vm, "/targetName"));
        if self.misbehaves(inventory_vm, Misbehaviour::Name) {
            name.push_str("-lab");
        }
        let running = self.target_running(plan, vm, inventory_vm);
        let run_strategy = if running { "Always" } else { "Halted" };
        let networks = self.target_networks(plan, ctx, inventory_vm, &ns);
        let claim_selector = format!(
            "migration={},vmID={}",
            meta(migration, "uid"),
            inventory_vm.id
        );
        let claims = self.target_claims(&disk_ns, &claim_selector);
        let template_spec =
            self.target_template_spec(plan, ctx, vm, inventory_vm, &claims, &networks);
        let object = json!({
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": {"name": name, "labels": self.target_labels(plan, ctx, migration, inventory_vm),
                         "annotations": self.target_annotations(vm, inventory_vm)},
            "spec": {
                "runStrategy": run_strategy,
                "template": {
                    "metadata": {"labels": self.target_template_labels(plan, inventory_vm, &name),
                                 "annotations": {"vm.kubevirt.io/flavor": "", "vm.kubevirt.io/os": inventory_vm.guest_os, "vm.kubevirt.io/workload": ""}},
                    "spec": template_spec
                }
            }
        });
        let created = self
            .store
            .create(&registry::VIRTUAL_MACHINE, Some(&ns), object)
            .map_err(|e| {
                format!(
                    "failed to create the VirtualMachine {ns}/{name}: {}",
                    e.message
                )
            })?;
        if self.misbehaves(inventory_vm, Misbehaviour::Network) {
            self.own_wrong_network(&created);
        }
        self.hand_claims_to_vm(&created, &claims, &disk_ns, &claim_selector, migration);
        self.install_guest(ctx, &created, &name, inventory_vm, &networks.addresses);
        // What the guest shows whenever it runs, now and after a restart.
        let node_selector = plan
            .pointer("/spec/targetNodeSelector")
            .and_then(Value::as_object)
            .cloned();
        self.guest_facts.insert(
            meta(&created, "uid").to_string(),
            GuestFacts {
                addresses: networks.addresses,
                agent: inventory_vm.guest_agent
                    && !self.misbehaves(inventory_vm, Misbehaviour::GuestAgent),
                guest_os: inventory_vm.guest_os.clone(),
                avoid_selector: node_selector
                    .filter(|_| self.misbehaves(inventory_vm, Misbehaviour::NodeSelector)),
            },
        );
        let _ = self.store.update_status(
            &registry::VIRTUAL_MACHINE,
            Some(&ns),
            &name,
            json!({"printableStatus": "Stopped", "runStrategy": run_strategy, "volumeSnapshotStatuses": []}),
        );
        if running {
            self.start_vmi(&created)?;
        }
        Ok(())
    }

    /// The VM's labels: the migration's, `resource: vm-config`, and `guestConverted` for the sources
    /// virt-v2v converts.
    fn target_labels(
        &self,
        plan: &Value,
        ctx: &PlanCtx,
        migration: &Value,
        inventory_vm: &InvVm,
    ) -> Map<String, Value> {
        let mut labels = Self::vm_labels(plan, migration, &inventory_vm.id);
        labels.insert("resource".into(), json!("vm-config"));
        let skip_conversion = super::bool_at(plan, "/spec/skipGuestConversion") == Some(true);
        if matches!(ctx.src_type.as_str(), "vsphere" | "ova" | "hyperv" | "ec2") {
            labels.insert(
                "guestConverted".into(),
                json!(if skip_conversion { "false" } else { "true" }),
            );
        }
        labels
    }

    /// The original name and id of a renamed VM.
    fn target_annotations(&self, vm: &Value, inventory_vm: &InvVm) -> Map<String, Value> {
        let mut annotations = Map::new();
        if !text_at(vm, "/newName").is_empty() {
            annotations.insert("openshift.io/display-name".into(), json!(inventory_vm.name));
            annotations.insert("original-ID".into(), json!(inventory_vm.id));
        }
        annotations
    }

    /// The guest the VM's disks carry (configuration, files, filesystems), answering SSH through the
    /// port-forward subresource whenever the VM runs.
    fn install_guest(
        &mut self,
        ctx: &PlanCtx,
        created: &Value,
        name: &str,
        inventory_vm: &InvVm,
        addresses: &BTreeMap<String, Vec<String>>,
    ) {
        let source_vm = match &ctx.inventory {
            super::inventory::Inventory::Lab { name: source, .. } => {
                self.source.vm(source, &inventory_vm.id).ok()
            }
            _ => None,
        };
        let interfaces = created
            .pointer("/spec/template/spec/domain/devices/interfaces")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let wrong = |point| self.misbehaves(inventory_vm, point);
        let guest = crate::guest::GuestImage::migrated(
            &crate::guest::Migrated {
                source: source_vm.as_ref(),
                name,
                guest_os: &inventory_vm.guest_os,
                interfaces: &interfaces,
                addresses,
            },
            &wrong,
        );
        self.opts.guests.insert(meta(created, "uid"), guest);
    }

    /// The Plan's `targetLabels` and `app: <name>` on the VM's pods.
    fn target_template_labels(
        &self,
        plan: &Value,
        inventory_vm: &InvVm,
        name: &str,
    ) -> Map<String, Value> {
        let mut template_labels = if self.misbehaves(inventory_vm, Misbehaviour::Labels) {
            Map::new()
        } else {
            plan.pointer("/spec/targetLabels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        template_labels.insert("app".into(), json!(name));
        template_labels
    }

    /// Whether the migrated VM starts: the VM's or the Plan's `targetPowerState`, else the source's
    /// power state; Windows guests that must finish their first-boot reboots are started anyway.
    fn target_running(&self, plan: &Value, vm: &Value, inventory_vm: &InvVm) -> bool {
        let power = Some(text_at(vm, "/targetPowerState"))
            .filter(|p| !p.is_empty())
            .unwrap_or(text_at(plan, "/spec/targetPowerState"));
        let running = match power {
            "on" => true,
            "off" => false,
            _ => {
                text_at(vm, "/restorePowerState") == "On"
                    || (vm.get("restorePowerState").is_none() && inventory_vm.powered_on)
            }
        };
        let reboots = vm
            .get("pipeline")
            .and_then(Value::as_array)
            .is_some_and(|p| {
                p.iter()
                    .any(|st| text_at(st, "/name") == "WaitForGuestReboots")
            });
        (running || reboots) && !self.misbehaves(inventory_vm, Misbehaviour::Power)
    }

    /// Interfaces and networks from the NetworkMap, and the addresses the guest will show on them.
    fn target_networks(
        &self,
        plan: &Value,
        ctx: &PlanCtx,
        inventory_vm: &InvVm,
        ns: &str,
    ) -> TargetNetworks {
        let compat = compatibility_mode(plan);
        let model = if compat { "e1000e" } else { "virtio" };
        let preserve = super::bool_at(plan, "/spec/preserveStaticIPs") != Some(false);
        let mut leases = AddressLeases::default();
        let mut target = TargetNetworks::default();
        for (i, nic) in inventory_vm.nics.iter().enumerate() {
            let entry = ctx.network_entry(&nic.network).unwrap_or(Value::Null);
            let mapped = text_at(&entry, "/destination/type");
            if mapped == "ignored" {
                continue;
            }
            let first = target.interfaces.is_empty();
            let net_name = format!("net-{i}");
            let mac = if first && self.misbehaves(inventory_vm, Misbehaviour::Mac) {
                misbehave::other_mac(&nic.mac)
            } else {
                nic.mac.clone()
            };
            let mut interface = json!({"name": net_name, "macAddress": mac, "model": model});
            let multus = if first && self.misbehaves(inventory_vm, Misbehaviour::Network) {
                (mapped != "multus").then(|| self.ensure_wrong_network(ns))
            } else {
                (mapped == "multus").then(|| {
                    format!(
                        "{}/{}",
                        text_at(&entry, "/destination/namespace"),
                        text_at(&entry, "/destination/name")
                    )
                })
            };
            match &multus {
                Some(network) => {
                    interface["bridge"] = json!({});
                    target
                        .networks
                        .push(json!({"name": net_name, "multus": {"networkName": network}}));
                }
                None => {
                    interface["masquerade"] = json!({});
                    target.networks.push(json!({"name": net_name, "pod": {}}));
                }
            }
            if !nic.connected && !self.misbehaves(inventory_vm, Misbehaviour::DisconnectedNic) {
                interface["state"] = json!("down");
            }
            target.interfaces.push(interface);
            let statics: Vec<String> = nic
                .ips
                .iter()
                .filter(|ip| ip.is_static)
                .map(|ip| ip.ip.clone())
                .collect();
            let preserved = preserve && !statics.is_empty();
            let ips = if preserved && !self.misbehaves(inventory_vm, Misbehaviour::StaticIp) {
                statics
            } else if !preserved && multus.is_some() && !inventory_vm.guest_agent {
                // Without an agent nothing reports what a multus interface got.
                Vec::new()
            } else {
                vec![leases.lease(multus.is_some(), i)]
            };
            target.addresses.insert(net_name, ips);
        }
        target
    }

    /// The VM's claims in disk order (the populators' `prime-` claims are not the VM's).
    fn target_claims(&self, disk_ns: &str, claim_selector: &str) -> Vec<Value> {
        let mut claims: Vec<Value> = self
            .list_labelled(&registry::PERSISTENT_VOLUME_CLAIM, disk_ns, claim_selector)
            .into_iter()
            .filter(|p| !meta(p, "name").starts_with("prime-"))
            .collect();
        claims.sort_by_key(|p| {
            text_at(p, "/metadata/annotations/forklift.konveyor.io~1disk-index")
                .parse::<usize>()
                .unwrap_or(0)
        });
        claims
    }

    /// The VMI template's spec: CPU, memory, firmware, disks, interfaces, networks, volumes and the
    /// Plan's node selector and affinity.
    fn target_template_spec(
        &self,
        plan: &Value,
        ctx: &PlanCtx,
        vm: &Value,
        inventory_vm: &InvVm,
        claims: &[Value],
        networks: &TargetNetworks,
    ) -> Value {
        let wrong = |point| self.misbehaves(inventory_vm, point);
        let (disks, volumes) = self.target_disks(plan, inventory_vm, claims);
        let mut cpu = json!({
            "sockets": inventory_vm.cpu_sockets + u32::from(wrong(Misbehaviour::Cpu)),
            "cores": inventory_vm.cores_per_socket,
            "threads": 1
        });
        if !wrong(Misbehaviour::NestedVirt)
            && let Some(features) = nested_virtualization_features(plan, vm, inventory_vm)
        {
            cpu["features"] = features;
        }
        let memory_mib = if wrong(Misbehaviour::Memory) {
            inventory_vm.memory_mib / 2
        } else {
            inventory_vm.memory_mib
        };
        let mut template_spec = json!({
            "domain": {
                "cpu": cpu,
                "memory": {"guest": format!("{memory_mib}Mi")},
                "firmware": self.target_firmware(ctx, inventory_vm),
                "devices": {"disks": disks, "interfaces": networks.interfaces}
            },
            "networks": networks.networks,
            "volumes": volumes
        });
        if let Some(selector) = plan
            .pointer("/spec/targetNodeSelector")
            .and_then(Value::as_object)
            && !wrong(Misbehaviour::NodeSelector)
        {
            template_spec["nodeSelector"] = json!(selector);
        }
        if let Some(affinity) = plan
            .pointer("/spec/targetAffinity")
            .filter(|v| v.is_object())
        {
            template_spec["affinity"] = if wrong(Misbehaviour::Affinity) {
                misbehave::altered_affinity(affinity)
            } else {
                affinity.clone()
            };
        }
        template_spec
    }

    /// A disk and a volume per attached claim; the first boots; RDM disks become SCSI LUNs when the
    /// VM (else the Plan) says `rdmAsLun`.
    fn target_disks(
        &self,
        plan: &Value,
        inventory_vm: &InvVm,
        claims: &[Value],
    ) -> (Vec<Value>, Vec<Value>) {
        let bus = if compatibility_mode(plan) {
            "sata"
        } else {
            "virtio"
        };
        let attached = if self.misbehaves(inventory_vm, Misbehaviour::DiskCount) {
            &claims[..claims.len().saturating_sub(1)]
        } else {
            claims
        };
        let rdm_as_lun = plan
            .pointer("/spec/vms")
            .and_then(Value::as_array)
            .and_then(|vms| vms.iter().find(|v| text_at(v, "/id") == inventory_vm.id))
            .and_then(|v| super::bool_at(v, "/rdmAsLun"))
            .or(super::bool_at(plan, "/spec/rdmAsLun"))
            .unwrap_or(false);
        let lun_misbehaves = self.misbehaves(inventory_vm, Misbehaviour::Lun);
        let (mut disks, mut volumes) = (Vec::new(), Vec::new());
        for (i, claim) in attached.iter().enumerate() {
            let volume = format!("vol-{i}");
            let source_disk = text_at(
                claim,
                "/metadata/annotations/forklift.konveyor.io~1disk-index",
            )
            .parse::<usize>()
            .ok()
            .and_then(|index| inventory_vm.disks.get(index));
            let mut disk = if rdm_as_lun && source_disk.is_some_and(|d| d.rdm) && !lun_misbehaves {
                json!({"name": volume, "lun": {"bus": "scsi"}})
            } else {
                json!({"name": volume, "disk": {"bus": bus}})
            };
            if i == 0 {
                disk["bootOrder"] = json!(1);
            }
            disks.push(disk);
            volumes.push(
                json!({"name": volume, "persistentVolumeClaim": {"claimName": meta(claim, "name")}}),
            );
        }
        (disks, volumes)
    }

    /// The source's identity (vSphere's UUID as serial, oVirt's id as UUID) and its boot loader.
    fn target_firmware(&self, ctx: &PlanCtx, inventory_vm: &InvVm) -> Value {
        let mut firmware = json!({});
        let wrong_serial = self.misbehaves(inventory_vm, Misbehaviour::Serial);
        match ctx.src_type.as_str() {
            "vsphere" if wrong_serial => {
                firmware["serial"] = json!(misbehave::other_uuid(&inventory_vm.uuid))
            }
            "vsphere" => firmware["serial"] = json!(inventory_vm.uuid),
            "ovirt" if wrong_serial => {
                firmware["uuid"] = json!(misbehave::other_uuid(&inventory_vm.id))
            }
            "ovirt" => firmware["uuid"] = json!(inventory_vm.id),
            _ if wrong_serial => {
                firmware["serial"] = json!(misbehave::other_uuid(&inventory_vm.uuid))
            }
            _ => {}
        }
        let efi = (inventory_vm.firmware == "efi")
            != self.misbehaves(inventory_vm, Misbehaviour::Firmware);
        firmware["bootloader"] = if efi {
            json!({"efi": {"secureBoot": false}})
        } else {
            json!({"bios": {}})
        };
        firmware
    }

    /// The claims now belong to the VM; then the DataVolumes go, and finished populator pods are
    /// reaped after their grace.
    fn hand_claims_to_vm(
        &mut self,
        created: &Value,
        claims: &[Value],
        disk_ns: &str,
        claim_selector: &str,
        migration: &Value,
    ) {
        for claim in claims {
            let vm_owner = owner(&registry::VIRTUAL_MACHINE, created, false);
            self.amend(
                &registry::PERSISTENT_VOLUME_CLAIM,
                Some(disk_ns),
                meta(claim, "name"),
                |o| {
                    o["metadata"]["ownerReferences"] = json!([vm_owner]);
                },
            );
        }
        for dv in self.list_labelled(&registry::DATA_VOLUME, disk_ns, claim_selector) {
            self.delete_obj(&registry::DATA_VOLUME, &dv);
        }
        for pod in self.list_labelled(
            &registry::POD,
            disk_ns,
            &format!("migration={}", meta(migration, "uid")),
        ) {
            if meta(&pod, "name").starts_with("populate-")
                && text_at(&pod, "/status/phase") == "Succeeded"
            {
                self.pod_reaper.push((
                    Instant::now() + populate_pod_grace(self.opts.real(Duration::from_secs(5))),
                    disk_ns.to_string(),
                    meta(&pod, "name").to_string(),
                ));
            }
        }
    }

    /// After a VM succeeds MTV removes its helpers: hook Jobs and ConfigMaps, populator Secrets.
    pub(crate) fn cleanup_after_success(
        &mut self,
        plan: &Value,
        ctx: &PlanCtx,
        migration: &Value,
        vm_id: &str,
    ) {
        self.finish_conversion_pods(plan, vm_id, false);
        let sel = format!("migration={},vmID={vm_id}", meta(migration, "uid"));
        let plan_ns = meta(plan, "namespace").to_string();
        for rt in [&registry::JOB, &registry::CONFIG_MAP] {
            for o in self.list_labelled(rt, &plan_ns, &sel) {
                self.delete_obj(rt, &o);
            }
        }
        for o in self.list_labelled(&registry::SECRET, ctx.target_ns(), &sel) {
            self.delete_obj(&registry::SECRET, &o);
        }
    }

    /// Plan deletion removes what carries its `plan-name`/`plan-namespace` labels, except PVCs and
    /// DataVolumes a VirtualMachine owns (§4.8).
    pub(crate) fn cleanup_deleted_plan(&mut self, plan: &Value) {
        let ns = text_at(plan, "/spec/targetNamespace").to_string();
        let sel = format!(
            "plan-name={},plan-namespace={}",
            meta(plan, "name"),
            meta(plan, "namespace")
        );
        let vm_owned = |o: &Value| {
            o.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| refs.iter().any(|r| text_at(r, "/kind") == "VirtualMachine"))
        };
        for rt in [
            &registry::DATA_VOLUME,
            &registry::PERSISTENT_VOLUME_CLAIM,
            &registry::POD,
            &registry::SECRET,
            &registry::CONFIG_MAP,
        ] {
            for o in self.list_labelled(rt, &ns, &sel) {
                if !vm_owned(&o) {
                    self.delete_obj(rt, &o);
                }
            }
        }
    }

    /// Whether cleanup deletes this VM's target objects (§5.3): plan-level true wins over the VM flag.
    fn deletes_on_failure(plan: &Value, vm: &Value) -> bool {
        super::bool_at(plan, "/spec/deleteVmOnFailMigration") != Some(false)
            || super::bool_at(vm, "/deleteVmOnFailMigration") == Some(true)
    }

    /// kubevirt.go EnsureGuestConversionPod: the virt-v2v pod `<plan>-<vmID>-<random>` in the target
    /// namespace, labelled like the VM's objects plus `forklift.app: virt-v2v`, running while the guest
    /// converts. Forklift sets no owner reference on it.
    pub(crate) fn create_conversion_pod(
        &mut self,
        plan: &Value,
        ctx: &PlanCtx,
        migration: &Value,
        inventory_vm: &InvVm,
    ) -> Result<(), String> {
        let mut labels = Self::vm_labels(plan, migration, &inventory_vm.id);
        labels.insert("forklift.app".into(), json!("virt-v2v"));
        let mut spec = json!({
            "restartPolicy": "Never",
            "containers": [{"name": "virt-v2v", "image": "quay.io/kubev2v/forklift-virt-v2v:latest"}],
        });
        let account = text_at(plan, "/spec/serviceAccount");
        if !account.is_empty() {
            spec["serviceAccountName"] = json!(account);
        }
        let log = format!(
            "Building command: virt-v2v -v -x -o kubevirt -os /var/tmp -on {}\nvirt-v2v: finished\n",
            inventory_vm.name
        );
        let pod = self
            .store
            .create(
                &registry::POD,
                Some(ctx.target_ns()),
                json!({"metadata": {"generateName": format!("{}-{}-", meta(plan, "name"), inventory_vm.id), "labels": labels,
                                    "annotations": {POD_LOG_ANNOTATION: log}},
                       "spec": spec}),
            )
            .map_err(|e| format!("failed to create the guest conversion pod: {}", e.message))?;
        let _ = self.store.update_status(
            &registry::POD,
            Some(ctx.target_ns()),
            meta(&pod, "name"),
            json!({"phase": "Running"}),
        );
        Ok(())
    }

    /// The VM's conversion pods once it finished: Succeeded and kept, or deleted when the Plan says
    /// `deleteGuestConversionPod` or `forced` (migration.go cleanup: archive and cancel force it).
    pub(crate) fn finish_conversion_pods(&mut self, plan: &Value, vm_id: &str, forced: bool) {
        let ns = text_at(plan, "/spec/targetNamespace").to_string();
        let sel = format!(
            "plan={},vmID={vm_id},forklift.app=virt-v2v",
            meta(plan, "uid")
        );
        let delete = forced || super::bool_at(plan, "/spec/deleteGuestConversionPod") == Some(true);
        for pod in self.list_labelled(&registry::POD, &ns, &sel) {
            if delete {
                self.delete_obj(&registry::POD, &pod);
            } else if text_at(&pod, "/status/phase") == "Running" {
                let _ = self.store.update_status(
                    &registry::POD,
                    Some(&ns),
                    meta(&pod, "name"),
                    json!({"phase": "Succeeded"}),
                );
            }
        }
    }

    /// Deletes a failed or canceled VM's target objects when `deleteVmOnFailMigration` says so.
    pub(crate) fn cleanup_vm(&mut self, plan: &Value, vm_id: &str, vm: &Value, forced: bool) {
        self.finish_conversion_pods(plan, vm_id, forced);
        if super::conditions::has(vm.get("conditions"), "Succeeded")
            || text_at(plan, "/spec/type") == "conversion"
            || !Self::deletes_on_failure(plan, vm)
        {
            return;
        }
        let ns = text_at(plan, "/spec/targetNamespace").to_string();
        let sel = format!("plan={},vmID={vm_id}", meta(plan, "uid"));
        self.delete_leftovers(plan, &ns, &sel, None);
    }

    /// Deletes a VM's target objects in `ns`; VirtualMachines in the Plan's namespace too, where
    /// `misbehave=…@namespace` puts them.
    fn delete_leftovers(
        &mut self,
        plan: &Value,
        ns: &str,
        sel: &str,
        keep_migration: Option<&str>,
    ) {
        let plan_ns = meta(plan, "namespace");
        for (rt, ns) in [
            (&registry::VIRTUAL_MACHINE, ns),
            (&registry::VIRTUAL_MACHINE, plan_ns),
            (&registry::DATA_VOLUME, ns),
            (&registry::PERSISTENT_VOLUME_CLAIM, ns),
            (&registry::XCOPY_POPULATOR, ns),
        ] {
            if std::ptr::eq(rt, &registry::VIRTUAL_MACHINE) && ns.is_empty() {
                continue;
            }
            for o in self.list_labelled(rt, ns, sel) {
                if keep_migration.is_some_and(|m| text_at(&o, "/metadata/labels/migration") == m) {
                    continue;
                }
                self.delete_obj(rt, &o);
            }
        }
    }

    /// A retried VM's `Started` phase removes what earlier attempts left (§4.7, §5.3).
    pub(crate) fn cleanup_previous_attempts(
        &mut self,
        plan: &Value,
        vm: &Value,
        migration_uid: &str,
    ) {
        if !Self::deletes_on_failure(plan, vm) {
            return;
        }
        let ns = text_at(plan, "/spec/targetNamespace").to_string();
        let sel = format!("plan={},vmID={}", meta(plan, "uid"), text_at(vm, "/id"));
        self.delete_leftovers(plan, &ns, &sel, Some(migration_uid));
    }

    /// Archive: clean up every VM that did not succeed.
    pub(crate) fn cleanup_failed_vms(&mut self, plan: &Value, mig: &Value) {
        for vm in mig
            .get("vms")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let id = text_at(&vm, "/id").to_string();
            self.cleanup_vm(plan, &id, &vm, true);
        }
    }

    fn hook_for(&self, plan: &Value, spec_vm: &Value, step: &str) -> Option<(String, String)> {
        let h = spec_vm
            .get("hooks")
            .and_then(Value::as_array)?
            .iter()
            .find(|h| text_at(h, "/step") == step)?
            .clone();
        let ns = Some(text_at(&h, "/hook/namespace"))
            .filter(|n| !n.is_empty())
            .unwrap_or(meta(plan, "namespace"));
        Some((ns.to_string(), text_at(&h, "/hook/name").to_string()))
    }

    /// Creates the hook's ConfigMap and Job in the plan namespace (§5.2).
    pub(crate) fn start_hook(
        &mut self,
        plan: &Value,
        migration: &Value,
        vm: &mut Value,
        inventory_vm: &InvVm,
        spec_vm: &Value,
        step: &str,
    ) -> Result<(), String> {
        let Some((hns, hname)) = self.hook_for(plan, spec_vm, step) else {
            return Err("Hook not found.".into());
        };
        let hook = self
            .store
            .get(&registry::HOOK, Some(&hns), &hname)
            .map_err(|_| "Hook not found.".to_string())?;
        let plan_ns = meta(plan, "namespace").to_string();
        let labels = json!({
            "plan": meta(plan, "uid"), "migration": meta(migration, "uid"), "vmID": inventory_vm.id,
            "step": step, "hook": meta(&hook, "uid"), "resource": "hook-config"
        });
        let generate =
            format!("{}-{}-{}-", meta(plan, "name"), inventory_vm.id, step).to_lowercase();
        let mut pod_spec = json!({
            "restartPolicy": "Never",
            "containers": [{"name": "hook", "image": text_at(&hook, "/spec/image"),
                            "command": if text_at(&hook, "/spec/playbook").is_empty() { Value::Null } else { json!(["/bin/entrypoint", "ansible-runner", "run", "/tmp/runner", "-p", "/tmp/hook/playbook.yml"]) },
                            "volumeMounts": [{"name": "hook", "mountPath": "/tmp/hook"}]}],
            "volumes": [{"name": "hook", "configMap": {"name": ""}}]
        });
        if pod_spec["containers"][0]["command"].is_null()
            && let Some(c) = pod_spec["containers"][0].as_object_mut()
        {
            c.remove("command");
        }
        if let Some(sa) = [
            text_at(&hook, "/spec/serviceAccount"),
            text_at(plan, "/spec/serviceAccount"),
        ]
        .into_iter()
        .find(|x| !x.is_empty())
        {
            pod_spec["serviceAccountName"] = json!(sa);
        }
        let mut job_spec = json!({"backoffLimit": 1, "template": {"metadata": {"labels": labels}, "spec": pod_spec}});
        if let Some(d) = hook
            .pointer("/spec/deadline")
            .and_then(Value::as_i64)
            .filter(|d| *d > 0)
        {
            job_spec["activeDeadlineSeconds"] = json!(d);
        }
        let job = self
            .store
            .create(
                &registry::JOB,
                Some(&plan_ns),
                json!({"metadata": {"generateName": generate, "labels": labels, "ownerReferences": [owner(&registry::PLAN, plan, false)]}, "spec": job_spec}),
            )
            .map_err(|e| format!("failed to create the hook Job: {}", e.message))?;
        let job_name = meta(&job, "name").to_string();
        let cm = self
            .store
            .create(
                &registry::CONFIG_MAP,
                Some(&plan_ns),
                json!({"metadata": {"generateName": generate, "labels": labels, "ownerReferences": [owner(&registry::JOB, &job, false)]},
                       "data": {
                           "workload.yml": serde_json::to_string_pretty(&json!({"vm": {"id": inventory_vm.id, "name": inventory_vm.name, "powerState": if inventory_vm.powered_on { "poweredOn" } else { "poweredOff" }, "host": inventory_vm.host, "uuid": inventory_vm.uuid}})).unwrap_or_default(),
                           "playbook.yml": super::hook::playbook(&hook).unwrap_or_default(),
                           "plan.yml": serde_json::to_string_pretty(&plan.get("spec").cloned().unwrap_or_default()).unwrap_or_default()
                       }}),
            )
            .map_err(|e| format!("failed to create the hook ConfigMap: {}", e.message))?;
        let cm_name = meta(&cm, "name").to_string();
        self.amend(&registry::JOB, Some(&plan_ns), &job_name, |o| {
            if let Some(v) = o.pointer_mut("/spec/template/spec/volumes/0/configMap/name") {
                *v = json!(cm_name);
            }
        });
        let _ = self.store.update_status(
            &registry::JOB,
            Some(&plan_ns),
            &job_name,
            json!({"active": 1, "startTime": clock::now_rfc3339()}),
        );
        let _ = vm;
        Ok(())
    }

    /// Completes the hook Job as its Hook asks and reads the result like Forklift (§5.2).
    pub(crate) fn finish_hook(
        &mut self,
        plan: &Value,
        migration: &Value,
        vm: &mut Value,
        inventory_vm: &InvVm,
        step: &str,
    ) -> Result<(), String> {
        let plan_ns = meta(plan, "namespace").to_string();
        let sel = format!(
            "migration={},vmID={},step={step}",
            meta(migration, "uid"),
            inventory_vm.id
        );
        let Some(job) = self
            .list_labelled(&registry::JOB, &plan_ns, &sel)
            .into_iter()
            .next()
        else {
            return Err("Hook not found.".into());
        };
        let hook_uid = text_at(&job, "/metadata/labels/hook").to_string();
        let hook = self
            .store
            .list(&registry::HOOK, None, &ListOptions::default())
            .ok()
            .and_then(|l| l.items.into_iter().find(|h| meta(h, "uid") == hook_uid));
        let Some(hook) = hook else {
            return Err("Hook not found.".into());
        };
        let job_name = meta(&job, "name").to_string();
        let now = clock::now_rfc3339();
        let deadline = hook
            .pointer("/spec/deadline")
            .and_then(Value::as_i64)
            .filter(|d| *d > 0);
        // A hook runs for 10 lab seconds; a shorter deadline kills it.
        let outcome = if deadline.is_some_and(|d| d < 10) {
            Err((
                String::from("PLAY [localhost] ***\n"),
                String::new(),
                (
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                ),
            ))
        } else {
            super::hook::hook_outcome(&hook).map_err(|(log, msg)| {
                (
                    log,
                    msg,
                    (
                        "BackoffLimitExceeded",
                        "Job has reached the specified backoff limit",
                    ),
                )
            })
        };
        let attempts = if outcome.is_ok() { 1 } else { 2 };
        let log = match &outcome {
            Ok(l) => l.clone(),
            Err((l, _, _)) => l.clone(),
        };
        for attempt in 0..attempts {
            let pod_name = format!("{job_name}-{}", random::name_suffix(5));
            let _ = self.store.create(
                &registry::POD,
                Some(&plan_ns),
                json!({"metadata": {"name": pod_name, "labels": {"job-name": job_name, "batch.kubernetes.io/job-name": job_name, "controller-uid": meta(&job, "uid")},
                                    "annotations": {POD_LOG_ANNOTATION: log},
                                    "ownerReferences": [owner(&registry::JOB, &job, true)]},
                       "spec": job.pointer("/spec/template/spec").cloned().unwrap_or_default()}),
            );
            let failed = outcome.is_err() || attempt + 1 < attempts;
            let _ = self.store.update_status(
                &registry::POD,
                Some(&plan_ns),
                &pod_name,
                json!({"phase": if failed { "Failed" } else { "Succeeded" },
                       "containerStatuses": [{"name": "hook", "ready": false, "restartCount": 0, "image": text_at(&hook, "/spec/image"),
                                              "state": {"terminated": {"exitCode": if failed { 2 } else { 0 }, "reason": if failed { "Error" } else { "Completed" }}}}]}),
            );
        }
        let result = match outcome {
            Ok(_) => {
                let _ = self.store.update_status(
                    &registry::JOB,
                    Some(&plan_ns),
                    &job_name,
                    json!({"succeeded": 1, "startTime": text_at(&job, "/status/startTime"), "completionTime": now, "ready": 0,
                           "conditions": [{"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now, "lastProbeTime": now},
                                          {"type": "Complete", "status": "True", "lastTransitionTime": now, "lastProbeTime": now}]}),
                );
                Ok(())
            }
            Err((_, _, (reason, message))) => {
                let _ = self.store.update_status(
                    &registry::JOB,
                    Some(&plan_ns),
                    &job_name,
                    json!({"failed": attempts, "startTime": text_at(&job, "/status/startTime"), "ready": 0,
                           "conditions": [{"type": "FailureTarget", "status": "True", "reason": reason, "message": message, "lastTransitionTime": now, "lastProbeTime": now},
                                          {"type": "Failed", "status": "True", "reason": reason, "message": message, "lastTransitionTime": now, "lastProbeTime": now}]}),
                );
                Err(message.to_string())
            }
        };
        let _ = vm;
        result
    }
}

/// §3.1 `enableNestedVirtualization`: the VM's override, else the Plan's, else what the source VM has;
/// vmx and svm together so the VM runs on Intel and AMD hosts alike.
fn nested_virtualization_features(plan: &Value, vm: &Value, inventory_vm: &InvVm) -> Option<Value> {
    let asked = super::bool_at(vm, "/enableNestedVirtualization")
        .or_else(|| super::bool_at(plan, "/spec/enableNestedVirtualization"));
    let policy = match asked {
        Some(false) => "disable",
        Some(true) => "optional",
        None if inventory_vm.nested_virtualization => "optional",
        None => return None,
    };
    Some(json!([{"name": "vmx", "policy": policy}, {"name": "svm", "policy": policy}]))
}

/// What every disk of one VM shares when its copies are created.
struct DiskCopySetup {
    namespace: String,
    /// The VM's labels (`migration`, `plan`, `vmID`), also the disks' annotations.
    labels: Map<String, Value>,
    template: Template,
    /// Whether the template's name is a `generateName`.
    generate: bool,
    /// Copy offload is configured and the feature is on.
    offload: bool,
    /// The storage classes to pick a wrong one from, when the VM asks for a wrong class.
    wrong_class: Option<Vec<String>>,
    /// The VM asks for claims a GiB short of its disks.
    short_disks: bool,
    /// The Secret CDI's importer reads (empty when no DataVolume needs one).
    importer_secret: String,
}

/// The claim one disk becomes.
struct DiskTarget {
    storage_class: String,
    size: String,
    volume_mode: String,
    access_mode: String,
    name: PvcName,
    annotations: Map<String, Value>,
}

impl DiskTarget {
    /// The PVC (or DataVolume `storage`) spec, with the populator as `dataSourceRef` if any.
    fn pvc_spec(&self, data_source: Option<Value>) -> Value {
        let mut spec = json!({
            "accessModes": [self.access_mode],
            "volumeMode": self.volume_mode,
            "storageClassName": self.storage_class,
            "resources": {"requests": {"storage": self.size}}
        });
        if let Some(data_source) = data_source {
            spec["dataSourceRef"] = data_source;
        }
        spec
    }
}

/// The migrated VM's interfaces and networks, and the addresses its guest shows on each network.
#[derive(Default)]
struct TargetNetworks {
    interfaces: Vec<Value>,
    networks: Vec<Value>,
    addresses: BTreeMap<String, Vec<String>>,
}

/// `skipGuestConversion` with `useCompatibilityMode` (the default): SATA disks and e1000e NICs.
fn compatibility_mode(plan: &Value) -> bool {
    super::bool_at(plan, "/spec/skipGuestConversion") == Some(true)
        && super::bool_at(plan, "/spec/useCompatibilityMode") != Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_stable() {
        assert_eq!(deterministic_suffix("a"), deterministic_suffix("a"));
        assert_eq!(deterministic_suffix("a").len(), 5);
        assert_eq!(quantity(30 * 1024), "30Gi");
        assert_eq!(quantity(100), "100Mi");
    }
}
