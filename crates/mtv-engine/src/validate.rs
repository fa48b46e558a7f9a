//! Post-migration validation (`test_check_vms`): the migrated VM compared with its source on every
//! point of the Python suite's `check_vms` (inventory §6). Every applicable check runs, and every
//! failure is kept with the check's name, what was expected and what was found; nothing here talks to
//! a cluster, so each check is tested on plain objects.
//!
//! Which checks apply is not decided here but in the table of [`crate::checklist`] (gating by provider
//! type follows the Python suite, with one deliberate difference: disk count, sizes and storage classes
//! are also checked for OVA, whose disks the inventory knows from the OVF).

use std::collections::BTreeMap;
use std::fmt;

use mtv_api::ProviderType;
use mtv_api::naming::{TargetVmName, predict_target_vm_name, template_target_vm_name};
use mtv_api::quantity;
use mtv_api::template::{PvcName, Template, TemplateData, render_pvc_name};
use mtv_providers::{SourceDisk, SourceSnapshot, SourceVm};
use serde_json::Value;

/// What the scenario asked for and what the source looked like, for one VM.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub provider_type: ProviderType,
    /// The source facts recorded after preparation (before the migration).
    pub source: &'a SourceVm,
    /// The source re-read after the migration (for the snapshot comparison), when it was.
    pub source_now: Option<&'a SourceVm>,
    pub snapshots_before: &'a [SourceSnapshot],
    /// `targetName` the suite chose (OVA), if any.
    pub target_name: Option<&'a str>,
    pub namespace: &'a str,
    pub plan_name: &'a str,
    /// Power state the migrated VM must have; `None` when nothing determines it.
    pub power: Option<bool>,
    /// `StorageMap.spec.map` and `NetworkMap.spec.map` as the cluster holds them.
    pub storage_map: &'a [Value],
    pub network_map: &'a [Value],
    /// `targetLabels` with the session values filled in.
    pub labels: Option<&'a BTreeMap<String, String>>,
    pub node_selector: Option<&'a BTreeMap<String, String>>,
    /// The node the run labelled for `target_node_selector`.
    pub labelled_node: Option<&'a str>,
    pub affinity: Option<&'a Value>,
    /// `pvc_name_template` for this provider and whether it is a `generateName` prefix.
    pub pvc_name_template: Option<(&'a str, bool)>,
    pub nested_virtualization: Option<bool>,
    pub target_ocp_version: Option<&'a str>,
}

/// What the cluster shows for that VM.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub vm: &'a Value,
    /// The VMI as read while the VM ran (started for the check when it was off), if any.
    pub vmi: Option<&'a Value>,
    /// The PVCs the VM's volumes claim, in volume order.
    pub pvcs: &'a [Value],
    /// The power state as migrated (before any start for the checks).
    pub powered_on: Option<bool>,
}

/// One point on which the migrated VM is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFailure {
    /// The Python suite's check name (`check_cpu`, `check_network`, …).
    pub check: &'static str,
    /// The part checked (`sockets`, `NIC 00:50:56:…`, `disk [ds] vm/vm.vmdk`).
    pub subject: String,
    pub expected: String,
    pub actual: String,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} - {}: expected {}, got {}",
            self.check, self.subject, self.expected, self.actual
        )
    }
}

/// The outcome of validating one VM.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub failures: Vec<CheckFailure>,
    /// Checks that ran (and passed, unless they appear in `failures`).
    pub ran: Vec<&'static str>,
    /// Checks that do not apply here, with the reason.
    pub skipped: Vec<(&'static str, String)>,
}

impl Report {
    fn fail(
        &mut self,
        check: &'static str,
        subject: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) {
        self.failures.push(CheckFailure {
            check,
            subject: subject.into(),
            expected: expected.into(),
            actual: actual.into(),
        });
    }

    fn skip(&mut self, check: &'static str, reason: impl Into<String>) {
        self.skipped.push((check, reason.into()));
    }

    fn run(&mut self, check: &'static str) {
        if !self.ran.contains(&check) {
            self.ran.push(check);
        }
    }
}

/// Runs the checks the table ([`crate::checklist`]) found applicable to one migrated VM; those it
/// found inapplicable are reported as skipped with the table's reason.
pub fn check_vm(
    expected: &Expected<'_>,
    observed: &Observed<'_>,
    checks: &crate::checklist::VmChecks,
) -> Report {
    let mut report = Report::default();
    for check in &checks.applying {
        if let crate::checklist::Body::Vm(body) = check.body {
            report.run(check.name);
            body(expected, observed, &mut report);
        }
    }
    for (check, reason) in &checks.not_applying {
        report.skip(check, reason.clone());
    }
    report
}

fn template_spec(vm: &Value) -> &Value {
    vm.pointer("/spec/template/spec").unwrap_or(&Value::Null)
}

fn array<'a>(value: &'a Value, pointer: &str) -> &'a [Value] {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn on_off(power: Option<bool>) -> &'static str {
    match power {
        Some(true) => "on",
        Some(false) => "off",
        None => "unknown",
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

pub(crate) fn check_vm_name(expected: &Expected<'_>, observed: &Observed<'_>, report: &mut Report) {
    const CHECK: &str = "check_vm_name";
    let actual = str_at(observed.vm, "/metadata/name").unwrap_or_default();
    match predict_target_vm_name(&expected.source.name, expected.target_name) {
        TargetVmName::Exact(name) if name != actual => {
            report.fail(CHECK, "name", name, actual);
        }
        TargetVmName::Random
            if !(actual.len() == 7
                && actual.starts_with("vm-")
                && actual[3..]
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())) =>
        {
            report.fail(CHECK, "name", "vm-<4 random characters>", actual);
        }
        _ => {}
    }
}

pub(crate) fn check_vm_namespace(
    expected: &Expected<'_>,
    observed: &Observed<'_>,
    report: &mut Report,
) {
    const CHECK: &str = "check_vm_namespace";
    let actual = str_at(observed.vm, "/metadata/namespace").unwrap_or_default();
    if actual != expected.namespace {
        report.fail(CHECK, "namespace", expected.namespace, actual);
    }
}

pub(crate) fn check_power_state(
    expected: &Expected<'_>,
    observed: &Observed<'_>,
    report: &mut Report,
) {
    const CHECK: &str = "check_vms_power_state";
    let Some(power) = expected.power else {
        return;
    };
    if observed.powered_on != Some(power) {
        report.fail(
            CHECK,
            "power state",
            on_off(Some(power)),
            on_off(observed.powered_on),
        );
    }
}

pub(crate) fn check_cpu(expected: &Expected<'_>, observed: &Observed<'_>, report: &mut Report) {
    const CHECK: &str = "check_cpu";
    let cpu = template_spec(observed.vm).pointer("/domain/cpu");
    let get = |key: &str| cpu.and_then(|c| c.get(key)).and_then(Value::as_u64);
    for (subject, source, key) in [
        ("sockets", expected.source.cpu_sockets, "sockets"),
        (
            "cores per socket",
            expected.source.cores_per_socket,
            "cores",
        ),
    ] {
        // A zero on the source means "not reported"; the Python suite skips it too.
        if source == 0 {
            continue;
        }
        let actual = get(key);
        if actual != Some(u64::from(source)) {
            report.fail(
                CHECK,
                subject,
                source.to_string(),
                actual.map_or("none".into(), |a| a.to_string()),
            );
        }
    }
}

pub(crate) fn check_memory(expected: &Expected<'_>, observed: &Observed<'_>, report: &mut Report) {
    const CHECK: &str = "check_memory";
    let domain = template_spec(observed.vm).get("domain");
    let text = domain
        .and_then(|d| d.pointer("/memory/guest"))
        .or_else(|| domain.and_then(|d| d.pointer("/resources/requests/memory")))
        .and_then(Value::as_str);
    let actual = text.and_then(quantity::bytes).map(|b| b / quantity::MIB);
    if actual != Some(u128::from(expected.source.memory_mib)) {
        report.fail(
            CHECK,
            "memory",
            format!("{} MiB", expected.source.memory_mib),
            match (actual, text) {
                (Some(mib), _) => format!("{mib} MiB"),
                (None, Some(text)) => format!("{text:?}"),
                (None, None) => "none".into(),
            },
        );
    }
}

/// A map entry's source matches an id or name (`ns/name` for OpenShift).
fn source_matches(entry: &Value, id: &str) -> bool {
    let source = &entry["source"];
    let name = source["name"].as_str();
    let namespaced = match (source["namespace"].as_str(), name) {
        (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
        _ => None,
    };
    source["id"].as_str() == Some(id) || name == Some(id) || namespaced.as_deref() == Some(id)
}

fn map_entry<'a>(map: &'a [Value], id: &str) -> Option<&'a Value> {
    map.iter().find(|entry| source_matches(entry, id))
}

/// The PVC of a source disk: the one whose `forklift.konveyor.io/disk-source` names the disk's
/// file, else the one in the disk's position.
fn pvc_of<'a>(pvcs: &'a [Value], disk: &SourceDisk, index: usize) -> Option<&'a Value> {
    pvcs.iter()
        .find(|pvc| {
            str_at(
                pvc,
                "/metadata/annotations/forklift.konveyor.io~1disk-source",
            ) == Some(disk.file.as_str())
        })
        .or_else(|| pvcs.get(index))
}

pub(crate) fn check_storage(expected: &Expected<'_>, observed: &Observed<'_>, report: &mut Report) {
    const CHECK: &str = "check_storage";
    let disks = array(template_spec(observed.vm), "/domain/devices/disks").len();
    if disks != expected.source.disks.len() {
        report.fail(
            CHECK,
            "disk count",
            expected.source.disks.len().to_string(),
            disks.to_string(),
        );
    }
    for (index, disk) in expected.source.disks.iter().enumerate() {
        let subject = format!("disk {}", disk.file);
        let Some(pvc) = pvc_of(observed.pvcs, disk, index) else {
            report.fail(CHECK, subject, "a PVC for the disk", "none");
            continue;
        };
        let pvc_name = str_at(pvc, "/metadata/name").unwrap_or("?");
        let subject = format!("{subject} (PVC {pvc_name})");
        let entry = map_entry(expected.storage_map, &disk.datastore);
        if let Some(class) = entry.and_then(|e| str_at(e, "/destination/storageClass")) {
            let actual = str_at(pvc, "/spec/storageClassName");
            if actual != Some(class) {
                report.fail(
                    CHECK,
                    format!("{subject} storage class"),
                    class,
                    actual.unwrap_or("none"),
                );
            }
        }
        if let Some(mode) = entry.and_then(|e| str_at(e, "/destination/accessMode")) {
            let modes: Vec<String> = array(pvc, "/spec/accessModes")
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            if !modes.iter().any(|m| m == mode) {
                report.fail(
                    CHECK,
                    format!("{subject} access mode"),
                    mode,
                    list_or_none(&modes),
                );
            }
        }
        if let Some(mode) = entry.and_then(|e| str_at(e, "/destination/volumeMode")) {
            let actual = str_at(pvc, "/spec/volumeMode").unwrap_or("Filesystem");
            if actual != mode {
                report.fail(CHECK, format!("{subject} volume mode"), mode, actual);
            }
        }
        let request = str_at(pvc, "/spec/resources/requests/storage");
        let bytes = request.and_then(quantity::bytes);
        let needed = u128::from(disk.capacity_gib) * quantity::GIB;
        if bytes.is_none_or(|b| b < needed) {
            report.fail(
                CHECK,
                format!("{subject} size"),
                format!("at least {} GiB", disk.capacity_gib),
                request.unwrap_or("no storage request"),
            );
        }
    }
}

/// The file name Forklift's `{{.FileName}}` gives a vSphere disk: after `]`, the base name.
fn file_name(file: &str) -> &str {
    let path = file.rsplit_once(']').map_or(file, |(_, p)| p).trim();
    path.rsplit('/').next().unwrap_or(path)
}

pub(crate) fn check_pvc_names(
    expected: &Expected<'_>,
    observed: &Observed<'_>,
    report: &mut Report,
) {
    const CHECK: &str = "check_pvc_names";
    let Some((source, generate)) = expected.pvc_name_template else {
        return;
    };
    let vsphere = expected.provider_type == ProviderType::Vsphere;
    let template = match Template::parse(source) {
        Ok(template) => template,
        Err(error) => {
            report.fail(
                CHECK,
                "template",
                "a valid template",
                error.message().to_string(),
            );
            return;
        }
    };
    // DiskIndex counts the disks in (controller, unit) order on vSphere.
    let mut disks: Vec<&SourceDisk> = expected.source.disks.iter().collect();
    if vsphere {
        disks.sort_by_key(|d| (d.controller_key, d.unit_number));
    }
    let mut unmatched: Vec<&str> = observed
        .pvcs
        .iter()
        .filter_map(|p| str_at(p, "/metadata/name"))
        .collect();
    for (index, disk) in disks.iter().enumerate() {
        let data = pvc_template_data(expected, disk, index);
        let rendered = data.and_then(|data| {
            render_pvc_name(&template, &data, generate).map_err(|e| e.message().to_string())
        });
        let wanted = match rendered {
            Ok(name) => name,
            Err(message) => {
                report.fail(
                    CHECK,
                    format!("disk {}", disk.file),
                    "a name from the template",
                    message,
                );
                continue;
            }
        };
        match unmatched.iter().position(|name| wanted.matches(name)) {
            Some(found) => {
                unmatched.remove(found);
            }
            None => report.fail(
                CHECK,
                format!("disk {}", disk.file),
                match &wanted {
                    PvcName::Exact(name) => format!("PVC {name}"),
                    PvcName::GenerateName(prefix) => format!("a PVC named {prefix}<5 random>"),
                },
                format!(
                    "PVCs {}",
                    list_or_none(&unmatched.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                ),
            ),
        }
    }
}

fn pvc_template_data(
    expected: &Expected<'_>,
    disk: &SourceDisk,
    index: usize,
) -> Result<TemplateData, String> {
    let source = expected.source;
    TemplateData::pvc()
        .set("VmName", source.name.as_str())
        .and_then(|d| {
            d.set(
                "TargetVmName",
                template_target_vm_name(&source.name, &source.id),
            )
        })
        .and_then(|d| d.set("PlanName", expected.plan_name))
        .and_then(|d| d.set("DiskIndex", index))
        .and_then(|d| d.set("VmId", source.id.as_str()))
        .and_then(|d| d.set("FileName", file_name(&disk.file)))
        .map_err(|e| e.message().to_string())
}

/// The network a template interface is on: `pod`, or the multus network as `namespace/name`.
fn interface_network(vm: &Value, interface: &Value) -> Option<String> {
    let name = interface["name"].as_str()?;
    let network = array(template_spec(vm), "/networks")
        .iter()
        .find(|n| n["name"].as_str() == Some(name))?;
    if network.get("pod").is_some() {
        return Some("pod".into());
    }
    let multus = network.pointer("/multus/networkName")?.as_str()?;
    Some(if multus.contains('/') {
        multus.to_string()
    } else {
        format!(
            "{}/{multus}",
            str_at(vm, "/metadata/namespace").unwrap_or_default()
        )
    })
}

fn interface_by_mac<'a>(vm: &'a Value, mac: &str) -> Option<&'a Value> {
    array(template_spec(vm), "/domain/devices/interfaces")
        .iter()
        .find(|i| {
            i["macAddress"]
                .as_str()
                .is_some_and(|m| m.eq_ignore_ascii_case(mac))
        })
}

pub(crate) fn check_network(expected: &Expected<'_>, observed: &Observed<'_>, report: &mut Report) {
    const CHECK: &str = "check_network";
    let macs: Vec<String> = array(template_spec(observed.vm), "/domain/devices/interfaces")
        .iter()
        .filter_map(|i| i["macAddress"].as_str().map(str::to_lowercase))
        .collect();
    for nic in &expected.source.nics {
        let subject = format!("NIC {}", nic.mac);
        let entry = map_entry(expected.network_map, &nic.network);
        let wanted = entry.map(|e| {
            let destination = &e["destination"];
            match destination["type"].as_str() {
                Some("multus") => format!(
                    "{}/{}",
                    destination["namespace"].as_str().unwrap_or_default(),
                    destination["name"].as_str().unwrap_or_default()
                ),
                Some(other) => other.to_string(),
                None => "pod".into(),
            }
        });
        let interface = interface_by_mac(observed.vm, &nic.mac);
        match (wanted.as_deref(), interface) {
            (Some("ignored"), None) => {}
            (Some("ignored"), Some(_)) => {
                report.fail(
                    CHECK,
                    subject,
                    "no interface (the map ignores its network)",
                    "an interface",
                );
            }
            (_, None) => report.fail(
                CHECK,
                subject,
                "an interface with this MAC",
                format!("MACs {}", list_or_none(&macs)),
            ),
            (None, Some(_)) => {}
            (Some(wanted), Some(interface)) => {
                let actual = interface_network(observed.vm, interface);
                if actual.as_deref() != Some(wanted) {
                    report.fail(
                        CHECK,
                        format!("{subject} network"),
                        wanted,
                        actual.unwrap_or_else(|| "no network".into()),
                    );
                }
            }
        }
    }
}

pub(crate) fn check_disconnected_nics(
    expected: &Expected<'_>,
    observed: &Observed<'_>,
    report: &mut Report,
) {
    const CHECK: &str = "check_disconnected_nic_state";
    let disconnected: Vec<_> = expected
        .source
        .nics
        .iter()
        .filter(|n| !n.start_connected)
        .collect();
    for nic in disconnected {
        if let Some(interface) = interface_by_mac(observed.vm, &nic.mac) {
            let state = interface["state"].as_str().unwrap_or("up");
            if state != "down" {
                report.fail(
                    CHECK,
                    format!("NIC {}", nic.mac),
                    "state down",
                    format!("state {state}"),
                );
            }
        }
    }
}

pub(crate) fn check_labels(expected: &Expected<'_>, observed: &Observed<'_>, report: &mut Report) {
    const CHECK: &str = "check_vm_labels";
    let Some(labels) = expected.labels else {
        return;
    };
    let actual = observed.vm.pointer("/spec/template/metadata/labels");
    let subject = |key: &str| format!("label {key}");
    check_entries(report, CHECK, labels, actual, subject, "no such label");
}

/// Fails `check` for each entry of `wanted` that the JSON object `actual` lacks (`missing`) or
/// holds another value for; `subject` names an entry by its key.
fn check_entries(
    report: &mut Report,
    check: &'static str,
    wanted: &BTreeMap<String, String>,
    actual: Option<&Value>,
    subject: impl Fn(&str) -> String,
    missing: &str,
) {
    for (key, value) in wanted {
        let found = actual.and_then(|a| a.get(key)).and_then(Value::as_str);
        if found != Some(value.as_str()) {
            report.fail(
                check,
                subject(key),
                value.as_str(),
                found.unwrap_or(missing),
            );
        }
    }
}

fn vmi_node(observed: &Observed<'_>) -> Option<String> {
    observed
        .vmi
        .and_then(|vmi| str_at(vmi, "/status/nodeName"))
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

pub(crate) fn check_node_placement(
    expected: &Expected<'_>,
    observed: &Observed<'_>,
    report: &mut Report,
) {
    const CHECK: &str = "check_vm_node_placement";
    let Some(selector) = expected.node_selector else {
        return;
    };
    let spec_selector = template_spec(observed.vm).get("nodeSelector");
    let subject = |key: &str| format!("nodeSelector {key}");
    check_entries(report, CHECK, selector, spec_selector, subject, "not set");
    if let Some(node) = expected.labelled_node {
        let actual = vmi_node(observed);
        if actual.as_deref() != Some(node) {
            report.fail(
                CHECK,
                "node",
                node,
                actual.unwrap_or_else(|| "no running VMI".into()),
            );
        }
    }
}

pub(crate) fn check_affinity(
    expected: &Expected<'_>,
    observed: &Observed<'_>,
    report: &mut Report,
) {
    const CHECK: &str = "check_vm_affinity";
    let Some(affinity) = expected.affinity else {
        return;
    };
    let actual = template_spec(observed.vm).get("affinity");
    if actual != Some(affinity) {
        report.fail(
            CHECK,
            "affinity",
            affinity.to_string(),
            actual.map_or("none".into(), Value::to_string),
        );
    }
}

fn agent_connected(vmi: &Value) -> bool {
    array(vmi, "/status/conditions")
        .iter()
        .any(|c| c["type"] == "AgentConnected" && c["status"] == "True")
}

pub(crate) fn check_guest_agent(_: &Expected<'_>, observed: &Observed<'_>, report: &mut Report) {
    const CHECK: &str = "check_guest_agent";
    match observed.vmi {
        Some(vmi) if agent_connected(vmi) => {}
        Some(_) => report.fail(CHECK, "guest agent", "connected", "not connected"),
        None => report.fail(CHECK, "guest agent", "connected", "no running VMI"),
    }
}

pub(crate) fn check_static_ips(
    expected: &Expected<'_>,
    observed: &Observed<'_>,
    report: &mut Report,
) {
    const CHECK: &str = "check_static_ip_preservation";
    let statics: Vec<_> = expected
        .source
        .nics
        .iter()
        .filter(|n| n.ips.iter().any(|ip| ip.is_static))
        .collect();
    if statics.is_empty() {
        report.fail(CHECK, "source", "a NIC with a static IP to compare", "none");
        return;
    }
    let interfaces = observed
        .vmi
        .map(|v| array(v, "/status/interfaces"))
        .unwrap_or(&[]);
    for nic in statics {
        let subject = format!("NIC {}", nic.mac);
        let interface = interfaces.iter().find(|i| {
            i["mac"]
                .as_str()
                .is_some_and(|m| m.eq_ignore_ascii_case(&nic.mac))
        });
        let Some(interface) = interface else {
            report.fail(CHECK, subject, "a guest interface with this MAC", "none");
            continue;
        };
        let mut actual: Vec<String> = array(interface, "/ipAddresses")
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        if actual.is_empty()
            && let Some(ip) = interface["ipAddress"].as_str()
        {
            actual.push(ip.to_string());
        }
        let actual: Vec<String> = actual
            .into_iter()
            .map(|ip| ip.split('/').next().unwrap_or_default().to_string())
            .collect();
        let wanted: Vec<String> = nic
            .ips
            .iter()
            .filter(|ip| ip.is_static)
            .map(|ip| ip.ip.clone())
            .collect();
        let missing: Vec<&String> = wanted.iter().filter(|ip| !actual.contains(ip)).collect();
        if !missing.is_empty() {
            report.fail(
                CHECK,
                format!("{subject} IPs"),
                wanted.join(", "),
                list_or_none(&actual),
            );
        }
    }
}

pub(crate) fn check_cpu_features(
    expected: &Expected<'_>,
    observed: &Observed<'_>,
    report: &mut Report,
) {
    const CHECK: &str = "check_cpu_features";
    let Some(nested) = expected.nested_virtualization else {
        return;
    };
    let policy = if nested { "optional" } else { "disable" };
    let features = array(template_spec(observed.vm), "/domain/cpu/features");
    for name in ["vmx", "svm"] {
        let actual = features
            .iter()
            .find(|f| f["name"].as_str() == Some(name))
            .map(|f| f["policy"].as_str().unwrap_or("require").to_string());
        if actual.as_deref() != Some(policy) {
            report.fail(
                CHECK,
                format!("CPU feature {name}"),
                format!("policy {policy}"),
                actual.map_or("absent".into(), |p| format!("policy {p}")),
            );
        }
    }
}

pub(crate) fn check_rdm_luns(_: &Expected<'_>, observed: &Observed<'_>, report: &mut Report) {
    const CHECK: &str = "verify_rdm_disk_bus_types";
    let disks = array(template_spec(observed.vm), "/domain/devices/disks");
    let luns: Vec<&Value> = disks.iter().filter(|d| d.get("lun").is_some()).collect();
    if luns.is_empty() {
        report.fail(CHECK, "LUN disks", "at least one", "none");
    }
    for lun in luns {
        let bus = lun
            .pointer("/lun/bus")
            .and_then(Value::as_str)
            .unwrap_or("none");
        if bus != "scsi" {
            report.fail(
                CHECK,
                format!("LUN {}", lun["name"].as_str().unwrap_or("?")),
                "bus scsi",
                format!("bus {bus}"),
            );
        }
    }
}

/// The serial Forklift gives a vSphere VM: the BIOS UUID as vSphere prints it
/// (`VMware-42 1a … 6f 70-81 92 … f8`) from OpenShift 4.20 on, the plain UUID before.
pub fn vsphere_serial(uuid: &str, ocp_version: Option<&str>) -> Vec<String> {
    let hex: String = uuid.chars().filter(char::is_ascii_hexdigit).collect();
    let formatted = (hex.len() == 32).then(|| {
        let pairs: Vec<&str> = (0..16).map(|i| &hex[i * 2..i * 2 + 2]).collect();
        format!("VMware-{}-{}", pairs[..8].join(" "), pairs[8..].join(" "))
    });
    let new_format = ocp_version.and_then(|v| {
        let mut parts = v.trim_start_matches('v').split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next()?.parse().ok()?;
        Some((major, minor) >= (4, 20))
    });
    match (new_format, formatted) {
        (Some(true), Some(f)) => vec![f],
        (Some(false), _) | (_, None) => vec![uuid.to_string()],
        (None, Some(f)) => vec![uuid.to_string(), f],
    }
}

pub(crate) fn check_serial(expected: &Expected<'_>, observed: &Observed<'_>, report: &mut Report) {
    const CHECK: &str = "check_serial_preservation";
    let forms = vsphere_serial(&expected.source.uuid, expected.target_ocp_version);
    let actual = str_at(template_spec(observed.vm), "/domain/firmware/serial");
    if !actual.is_some_and(|a| forms.iter().any(|f| f.eq_ignore_ascii_case(a))) {
        report.fail(
            CHECK,
            "firmware serial",
            forms.join(" or "),
            actual.unwrap_or("none"),
        );
    }
}

pub(crate) fn check_boot(expected: &Expected<'_>, observed: &Observed<'_>, report: &mut Report) {
    const CHECK: &str = "check_boot_configuration";
    let bootloader = template_spec(observed.vm).pointer("/domain/firmware/bootloader");
    let actual = match bootloader {
        Some(b) if b.get("efi").is_some() => "efi",
        Some(b) if b.get("bios").is_some() => "bios",
        // KubeVirt boots BIOS when nothing is said.
        _ => "bios",
    };
    let wanted = if expected.source.firmware.eq_ignore_ascii_case("efi") {
        "efi"
    } else {
        "bios"
    };
    if actual != wanted {
        report.fail(CHECK, "boot firmware", wanted, actual);
    }
}

fn snapshot_line(s: &SourceSnapshot) -> String {
    // Creation times are compared to the minute, as the Python suite does.
    let minute: String = s.created.chars().take(16).collect();
    format!("{} {:?} {minute}", s.id, s.name)
}

pub(crate) fn check_snapshots(expected: &Expected<'_>, _: &Observed<'_>, report: &mut Report) {
    const CHECK: &str = "check_snapshots";
    let Some(now) = expected.source_now else {
        report.fail(
            CHECK,
            "source snapshots",
            "the source VM read again",
            "not read",
        );
        return;
    };
    let lines = |list: &[SourceSnapshot]| {
        let mut sorted: Vec<&SourceSnapshot> = list.iter().collect();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        sorted.into_iter().map(snapshot_line).collect::<Vec<_>>()
    };
    let (before, after) = (lines(expected.snapshots_before), lines(&now.snapshots));
    if before != after {
        report.fail(
            CHECK,
            "source snapshots",
            list_or_none(&before),
            list_or_none(&after),
        );
    }
}

/// `check_false_vm_power_off`: oVirt leaves a `USER_STOP_VM` (code 33) event when a VM is powered off
/// hard; Forklift must shut the source down instead. Only events after preparation count (the suite
/// itself may stop a VM while preparing it).
pub(crate) fn check_false_power_off(
    expected: &Expected<'_>,
    _: &Observed<'_>,
    report: &mut Report,
) {
    const CHECK: &str = "check_false_vm_power_off";
    let Some(now) = expected.source_now else {
        report.fail(
            CHECK,
            "source events",
            "the source VM read again",
            "not read",
        );
        return;
    };
    let stops: Vec<String> = now
        .events
        .iter()
        .skip(expected.source.events.len())
        .filter(|e| e.code == Some(33) || e.kind == "USER_STOP_VM")
        .map(|e| format!("{} at {}", e.description, e.time))
        .collect();
    if !stops.is_empty() {
        report.fail(
            CHECK,
            "source events",
            "no USER_STOP_VM (code 33) during the migration",
            stops.join(", "),
        );
    }
}

/// `check_ssl_configuration`: the source Provider's Secret says `insecureSkipVerify` as the profile
/// does (vSphere, oVirt and OpenStack; the others have no such choice to check). The error is why
/// the Secret's value is not base64.
pub fn check_ssl_configuration(
    provider_type: ProviderType,
    secret: &Value,
    insecure: bool,
) -> Result<Option<CheckFailure>, String> {
    use base64::Engine;
    const CHECK: &str = "check_ssl_configuration";
    if matches!(provider_type, ProviderType::Ova | ProviderType::Openshift) {
        return Ok(None);
    }
    let expected = insecure.to_string();
    let actual = match (
        secret
            .pointer("/data/insecureSkipVerify")
            .and_then(Value::as_str),
        secret
            .pointer("/stringData/insecureSkipVerify")
            .and_then(Value::as_str),
    ) {
        (Some(encoded), _) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| e.to_string())?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        (None, plain) => plain.map(str::to_string),
    };
    Ok(
        (actual.as_deref() != Some(expected.as_str())).then(|| CheckFailure {
            check: CHECK,
            subject: "Provider Secret insecureSkipVerify".into(),
            expected,
            actual: actual.unwrap_or_else(|| "not set".into()),
        }),
    )
}

/// The fields of `sent` that `stored` does not hold as sent, as `path: expected …, got …` (objects
/// compared key by key, so fields the API server adds do not count; lists element by element).
pub fn fields_not_kept(sent: &Value, stored: &Value) -> Vec<String> {
    let mut out = Vec::new();
    compare_kept("spec", sent, stored, &mut out);
    out
}

fn compare_kept(path: &str, sent: &Value, stored: &Value, out: &mut Vec<String>) {
    match (sent, stored) {
        (Value::Object(sent), Value::Object(stored)) => {
            for (key, value) in sent {
                let child = format!("{path}.{key}");
                match stored.get(key) {
                    Some(found) => compare_kept(&child, value, found, out),
                    None => out.push(format!("{child}: expected {value}, got nothing")),
                }
            }
        }
        (Value::Array(sent_items), Value::Array(stored_items))
            if sent_items.len() == stored_items.len() =>
        {
            for (index, (a, b)) in sent_items.iter().zip(stored_items).enumerate() {
                compare_kept(&format!("{path}[{index}]"), a, b, out);
            }
        }
        _ if sent != stored => out.push(format!("{path}: expected {sent}, got {stored}")),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
