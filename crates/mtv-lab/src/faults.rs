//! Fault injection. The spec is a comma-separated list of `key=value` items:
//!
//! | item | effect | implemented in |
//! |---|---|---|
//! | `api-error-rate=0.05` | that fraction of resource requests fail: reads with 503 `ServiceUnavailable`, writes with 500 `InternalError` | API server |
//! | `latency-ms=20` | every resource request waits this long first | API server |
//! | `watch-drop-secs=30` | every watch stream is closed after this many seconds | API server |
//! | `vm-fail=<vm>@<step>` (repeatable) | every VM whose name contains `<vm>` fails at the named pipeline step | Forklift controllers |
//! | `provider-conn-fail=<name>` (repeatable) | the named Provider's connection test fails | Forklift controllers (not yet) |
//! | `misbehave=<vm>@<point>` (repeatable) | every VM whose name or id contains `<vm>` gets that one point wrong; the migration still succeeds unless said otherwise | Forklift controllers |
//!
//! Discovery, OpenAPI and `/version` are never faulted, so clients can always start.
//!
//! The `misbehave` points ([`Misbehaviour`]) let a test suite prove that each of its checks fails when
//! Forklift gets exactly that point wrong:
//!
//! | point | what the simulated Forklift gets wrong | implemented in |
//! |---|---|---|
//! | `mac` | the first interface's MAC has its last octet changed (VM spec and VMI status) | `forklift/target.rs` |
//! | `network` | the first NIC lands on the pod network when mapped to multus, on multus `<target namespace>/lab-wrong-network` (created, owned by the VM) when mapped to pod | `forklift/target.rs` |
//! | `labels` | the Plan's `targetLabels` are not put on the VM template | `forklift/target.rs` |
//! | `storage-class` | PVCs and DataVolumes get another existing storage class (`lab-nfs`, or `lab-ceph-rbd` when the map says `lab-nfs`) | `forklift/misbehave.rs`, `forklift/target.rs` |
//! | `disk-size` | PVCs and DataVolumes request 1 GiB less than the source disk (never under 512 MiB) | `forklift/target.rs` |
//! | `disk-count` | the last disk has no disk/volume entry on the VirtualMachine (its PVC still exists) | `forklift/target.rs` |
//! | `power` | the VirtualMachine is left `Halted` (no VMI) whatever was asked | `forklift/target.rs` |
//! | `cpu` | one more socket than the source | `forklift/target.rs` |
//! | `memory` | half the source's memory | `forklift/target.rs` |
//! | `pvc-name` | PVC names ignore `pvcNameTemplate` (Forklift's default template is used) | `forklift/target.rs` |
//! | `node-selector` | `targetNodeSelector` is not applied and the VMI runs on a node without the label | `forklift/target.rs`, `forklift/kubevirt.rs` |
//! | `affinity` | `targetAffinity` is altered: its first `weight` +1 (or a preferred node term added) | `forklift/misbehave.rs`, `forklift/target.rs` |
//! | `guest-agent` | the VMI never gets `AgentConnected` | `forklift/target.rs`, `forklift/kubevirt.rs` |
//! | `static-ip` | the VMI's interfaces get new DHCP-like addresses instead of the preserved static ones | `forklift/target.rs` |
//! | `serial` | the firmware identity is another UUID: `firmware.serial` on vSphere, `firmware.uuid` on oVirt, an added `firmware.serial` elsewhere | `forklift/target.rs` |
//! | `firmware` | BIOS and EFI are swapped | `forklift/target.rs` |
//! | `nested-virt` | `enableNestedVirtualization` is ignored: no vmx/svm CPU features | `forklift/target.rs` |
//! | `name` | the VirtualMachine's name gets `-lab` appended | `forklift/target.rs` |
//! | `namespace` | the VirtualMachine (and its VMI) is created in the Plan's namespace, not `targetNamespace`; its PVCs stay in `targetNamespace`, owned by it | `forklift/target.rs` |
//! | `snapshots` | when the VM's migration completes, the newest snapshot of the source VM is removed | `forklift/exec.rs` |
//! | `xcopy` | copy-offload populators report `xcopyUsed=0` where XCOPY was used | `forklift/target.rs` |
//! | `hook-step` | the Plan's hooks run at the other step (a failing PostHook fails at PreHook) | `forklift/misbehave.rs`, `forklift/exec.rs` |
//! | `disconnected-nic` | NICs disconnected on the source are up on the target (no `state: down`) | `forklift/target.rs` |
//! | `precopy` | a warm migration records no precopy (`warm.precopies` stays empty, `successes` 0) and cuts over when due | `forklift/exec.rs` |

use std::time::Duration;

use crate::error::LabError;

/// The pipeline steps the simulated Forklift runs (Forklift's names, §4.3 of the API spec): the only
/// steps a `vm-fail` can name, so that a misspelt step is an error rather than a fault that never fires.
pub const PIPELINE_STEPS: [&str; 13] = [
    "Initialize",
    "PreHook",
    "PreflightInspection",
    "DiskAllocation",
    "DiskTransfer",
    "DiskTransferV2v",
    "Cutover",
    "ImageConversion",
    "ConvertOpenstackSnapshot",
    "VirtualMachineCreation",
    "WaitForGuestReboots",
    "PostHook",
    "WaitForFinalSnapshotConsolidation",
];

/// The fault keys `--faults` knows.
pub const FAULT_KEYS: [&str; 6] = [
    "api-error-rate",
    "latency-ms",
    "watch-drop-secs",
    "vm-fail",
    "provider-conn-fail",
    "misbehave",
];

/// A VM that must fail at a pipeline step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmFault {
    pub vm: String,
    pub step: String,
}

/// One thing the simulated Forklift can get wrong for a VM (`misbehave=<vm>@<point>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Misbehaviour {
    Mac,
    Network,
    Labels,
    StorageClass,
    DiskSize,
    DiskCount,
    Power,
    Cpu,
    Memory,
    PvcName,
    NodeSelector,
    Affinity,
    GuestAgent,
    StaticIp,
    Serial,
    Firmware,
    NestedVirt,
    Name,
    Namespace,
    Snapshots,
    Xcopy,
    HookStep,
    DisconnectedNic,
    Precopy,
    Lun,
    SourceStop,
    StaticMask,
    StaticGateway,
    NicName,
    GuestFiles,
    Ssh,
}

impl Misbehaviour {
    /// Every point, in the order the documentation lists them.
    pub const ALL: [Misbehaviour; 31] = [
        Misbehaviour::Mac,
        Misbehaviour::Network,
        Misbehaviour::Labels,
        Misbehaviour::StorageClass,
        Misbehaviour::DiskSize,
        Misbehaviour::DiskCount,
        Misbehaviour::Power,
        Misbehaviour::Cpu,
        Misbehaviour::Memory,
        Misbehaviour::PvcName,
        Misbehaviour::NodeSelector,
        Misbehaviour::Affinity,
        Misbehaviour::GuestAgent,
        Misbehaviour::StaticIp,
        Misbehaviour::Serial,
        Misbehaviour::Firmware,
        Misbehaviour::NestedVirt,
        Misbehaviour::Name,
        Misbehaviour::Namespace,
        Misbehaviour::Snapshots,
        Misbehaviour::Xcopy,
        Misbehaviour::HookStep,
        Misbehaviour::DisconnectedNic,
        Misbehaviour::Precopy,
        Misbehaviour::Lun,
        Misbehaviour::SourceStop,
        Misbehaviour::StaticMask,
        Misbehaviour::StaticGateway,
        Misbehaviour::NicName,
        Misbehaviour::GuestFiles,
        Misbehaviour::Ssh,
    ];

    /// The point's name in the fault syntax.
    pub fn name(self) -> &'static str {
        match self {
            Misbehaviour::Mac => "mac",
            Misbehaviour::Network => "network",
            Misbehaviour::Labels => "labels",
            Misbehaviour::StorageClass => "storage-class",
            Misbehaviour::DiskSize => "disk-size",
            Misbehaviour::DiskCount => "disk-count",
            Misbehaviour::Power => "power",
            Misbehaviour::Cpu => "cpu",
            Misbehaviour::Memory => "memory",
            Misbehaviour::PvcName => "pvc-name",
            Misbehaviour::NodeSelector => "node-selector",
            Misbehaviour::Affinity => "affinity",
            Misbehaviour::GuestAgent => "guest-agent",
            Misbehaviour::StaticIp => "static-ip",
            Misbehaviour::Serial => "serial",
            Misbehaviour::Firmware => "firmware",
            Misbehaviour::NestedVirt => "nested-virt",
            Misbehaviour::Name => "name",
            Misbehaviour::Namespace => "namespace",
            Misbehaviour::Snapshots => "snapshots",
            Misbehaviour::Xcopy => "xcopy",
            Misbehaviour::HookStep => "hook-step",
            Misbehaviour::DisconnectedNic => "disconnected-nic",
            Misbehaviour::Precopy => "precopy",
            Misbehaviour::Lun => "lun",
            Misbehaviour::SourceStop => "source-stop",
            Misbehaviour::StaticMask => "static-mask",
            Misbehaviour::StaticGateway => "static-gateway",
            Misbehaviour::NicName => "nic-name",
            Misbehaviour::GuestFiles => "guest-files",
            Misbehaviour::Ssh => "ssh",
        }
    }

    /// The point named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Misbehaviour> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl std::fmt::Display for Misbehaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A VM the simulated Forklift migrates wrongly on one point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmMisbehaviour {
    pub vm: String,
    pub point: Misbehaviour,
}

/// Parsed `--faults`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    pub api_error_rate: f64,
    pub latency: Option<Duration>,
    pub watch_drop_after: Option<Duration>,
    pub vm_failures: Vec<VmFault>,
    pub provider_connection_failures: Vec<String>,
    pub misbehaviours: Vec<VmMisbehaviour>,
}

impl FaultSpec {
    /// Parses the `--faults` syntax (empty = no faults).
    pub fn parse(spec: &str) -> Result<Self, LabError> {
        let mut out = Self::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| LabError::Faults(format!("{item:?} is not key=value")))?;
            let (key, value) = (key.trim(), value.trim());
            let bad = |why: &str| LabError::Faults(format!("{key}={value}: {why}"));
            match key {
                "api-error-rate" => {
                    let rate: f64 = value.parse().map_err(|_| bad("not a number"))?;
                    if !(0.0..=1.0).contains(&rate) {
                        return Err(bad("must be between 0 and 1"));
                    }
                    out.api_error_rate = rate;
                }
                "latency-ms" => {
                    let ms: u64 = value
                        .parse()
                        .map_err(|_| bad("not a whole number of milliseconds"))?;
                    out.latency = Some(Duration::from_millis(ms));
                }
                "watch-drop-secs" => {
                    let secs: f64 = value.parse().map_err(|_| bad("not a number of seconds"))?;
                    if !(secs > 0.0 && secs.is_finite()) {
                        return Err(bad("must be positive"));
                    }
                    out.watch_drop_after = Some(Duration::from_secs_f64(secs));
                }
                "vm-fail" => {
                    let (vm, step) = value
                        .split_once('@')
                        .ok_or_else(|| bad("expected <vm>@<step>"))?;
                    if vm.is_empty() || step.is_empty() {
                        return Err(bad("expected <vm>@<step>"));
                    }
                    if !PIPELINE_STEPS.contains(&step) {
                        return Err(bad(&format!(
                            "unknown pipeline step {step:?} (known: {})",
                            PIPELINE_STEPS.join(", ")
                        )));
                    }
                    out.vm_failures.push(VmFault {
                        vm: vm.to_string(),
                        step: step.to_string(),
                    });
                }
                "provider-conn-fail" => {
                    if value.is_empty() {
                        return Err(bad("expected a provider name"));
                    }
                    out.provider_connection_failures.push(value.to_string());
                }
                "misbehave" => {
                    let (vm, point) = value
                        .split_once('@')
                        .filter(|(vm, point)| !vm.is_empty() && !point.is_empty())
                        .ok_or_else(|| bad("expected <vm>@<point>"))?;
                    let point = Misbehaviour::from_name(point).ok_or_else(|| {
                        let known: Vec<&str> = Misbehaviour::ALL.iter().map(|m| m.name()).collect();
                        bad(&format!(
                            "unknown point {point:?} (known: {})",
                            known.join(", ")
                        ))
                    })?;
                    out.misbehaviours.push(VmMisbehaviour {
                        vm: vm.to_string(),
                        point,
                    });
                }
                other => {
                    return Err(LabError::Faults(format!(
                        "unknown fault {other:?} (known: {})",
                        FAULT_KEYS.join(", ")
                    )));
                }
            }
        }
        Ok(out)
    }

    /// True when the VM has a fault at that step. `<vm>` matches every VM whose name contains it, so a
    /// fault can name the source VM a scenario clones (clone names carry a per-session suffix).
    pub fn vm_fails_at(&self, vm: &str, step: &str) -> bool {
        self.vm_failures
            .iter()
            .any(|f| f.step == step && vm.contains(f.vm.as_str()))
    }

    /// True when the simulated Forklift must get `point` wrong for the VM with this source name and
    /// inventory id (`<vm>` matches either by containment, like `vm-fail`).
    pub fn misbehaves(&self, vm_name: &str, vm_id: &str, point: Misbehaviour) -> bool {
        self.misbehaviours.iter().any(|m| {
            m.point == point && (vm_name.contains(m.vm.as_str()) || vm_id.contains(m.vm.as_str()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_item() {
        let f = FaultSpec::parse(
            "api-error-rate=0.05, latency-ms=20,watch-drop-secs=30,vm-fail=rhel8@DiskTransfer,vm-fail=win@Cutover,provider-conn-fail=vsphere",
        )
        .unwrap();
        assert_eq!(f.api_error_rate, 0.05);
        assert_eq!(f.latency, Some(Duration::from_millis(20)));
        assert_eq!(f.watch_drop_after, Some(Duration::from_secs(30)));
        assert!(f.vm_fails_at("rhel8", "DiskTransfer"));
        assert!(f.vm_fails_at("win", "Cutover"));
        assert!(f.vm_fails_at("auto-ab12-rhel8-ceph-rbd-cold-x1y2", "DiskTransfer"));
        assert!(!f.vm_fails_at("rhel8", "Cutover"));
        assert_eq!(f.provider_connection_failures, vec!["vsphere"]);
        assert_eq!(FaultSpec::parse("").unwrap(), FaultSpec::default());
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "api-error-rate=2",
            "latency-ms=fast",
            "vm-fail=novm",
            "vm-fail=rhel8@NoSuchStep",
            "vm-fail=rhel8@disktransfer",
            "explode=1",
            "watch-drop-secs=0",
            "noequals",
            "misbehave=rhel8",
            "misbehave=@mac",
            "misbehave=rhel8@",
        ] {
            assert!(FaultSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_misbehaviours_by_name_or_id() {
        let f = FaultSpec::parse(
            "misbehave=rhel8@mac, misbehave=vm-7@storage-class,misbehave=win@hook-step",
        )
        .unwrap();
        assert!(f.misbehaves("auto-x1-rhel8-y2", "vm-1", Misbehaviour::Mac));
        assert!(!f.misbehaves("auto-x1-rhel8-y2", "vm-1", Misbehaviour::Cpu));
        assert!(f.misbehaves("other", "vm-77", Misbehaviour::StorageClass));
        assert!(!f.misbehaves("other", "vm-1", Misbehaviour::StorageClass));
        assert!(f.misbehaves("win2019", "vm-2", Misbehaviour::HookStep));
        assert!(!f.vm_fails_at("rhel8", "mac"));
        // Every documented point parses back to itself.
        for point in Misbehaviour::ALL {
            let f = FaultSpec::parse(&format!("misbehave=x@{point}")).unwrap();
            assert_eq!(f.misbehaviours[0].point, point);
        }
    }

    #[test]
    fn an_unknown_step_or_key_lists_the_known_ones() {
        let step = FaultSpec::parse("vm-fail=rhel8@NoSuchStep")
            .unwrap_err()
            .to_string();
        assert!(
            step.contains("unknown pipeline step \"NoSuchStep\""),
            "{step}"
        );
        assert!(step.contains("DiskTransfer, DiskTransferV2v"), "{step}");
        let key = FaultSpec::parse("api-eror-rate=0.1")
            .unwrap_err()
            .to_string();
        assert!(key.contains("known: api-error-rate, latency-ms"), "{key}");
        for step in PIPELINE_STEPS {
            assert!(
                FaultSpec::parse(&format!("vm-fail=x@{step}")).is_ok(),
                "{step}"
            );
        }
    }

    #[test]
    fn an_unknown_point_lists_the_known_ones() {
        let err = FaultSpec::parse("misbehave=rhel8@colour")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown point \"colour\""), "{err}");
        for point in Misbehaviour::ALL {
            assert!(err.contains(point.name()), "{err} lacks {point}");
        }
    }
}
