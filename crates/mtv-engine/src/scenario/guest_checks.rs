//! The checks made inside migrated guests over SSH (port-forward to the VMI's port 22), on the lab and
//! on a cluster alike: `check_ssh_connectivity`, `check_static_ip_preservation` (addresses, masks and
//! gateways), `check_nic_name_preservation` and `verify_data_integrity` (the marker written in the
//! source guest before the snapshots). A VM that is off is started for the checks and stopped again,
//! as the Python suite does. The parsers of the guests' answers are pure functions, tested below.

use std::time::Duration;

use mtv_providers::SourceVm;
use serde_json::Value;

use super::{PreparedVm, Runner, StepError};
use crate::checklist::VmChecks;
use crate::cluster::{Verdict, kinds};
use crate::guest::{self, BootWait, GuestOs, GuestShell};
use crate::validate::CheckFailure;

/// How long a started VM may take to run before its guest is entered (Python: 300 s).
const GUEST_START_TIMEOUT: Duration = Duration::from_secs(300);

pub use mtv_providers::guest_network::{GuestInterface, normalize_mac, parse_nmcli_device_show};

/// `ip -j addr`: the JSON list of links with their IPv4 addresses (loopback left out).
pub fn parse_ip_json(text: &str) -> Vec<GuestInterface> {
    let links: Vec<Value> = serde_json::from_str(text).unwrap_or_default();
    links
        .iter()
        .filter(|l| l["ifname"].as_str().is_some_and(|n| n != "lo"))
        .map(|link| GuestInterface {
            name: link["ifname"].as_str().unwrap_or_default().to_string(),
            mac: normalize_mac(link["address"].as_str().unwrap_or_default()),
            addresses: link["addr_info"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["family"] == "inet")
                .filter_map(|a| {
                    Some((
                        a["local"].as_str()?.to_string(),
                        u8::try_from(a["prefixlen"].as_u64()?).ok()?,
                    ))
                })
                .collect(),
            gateway: None,
        })
        .collect()
}

/// `ipconfig /all` (Windows): one section per adapter, `Ethernet adapter NAME:` then dotted keys.
pub fn parse_ipconfig_all(text: &str) -> Vec<GuestInterface> {
    let mut interfaces: Vec<GuestInterface> = Vec::new();
    let mut last_ip: Option<String> = None;
    for line in text.lines() {
        if !line.starts_with(' ') && line.trim_end().ends_with(':') && line.contains("adapter ") {
            let name = line.trim_end().trim_end_matches(':');
            let name = name.split_once("adapter ").map_or(name, |(_, n)| n);
            interfaces.push(GuestInterface {
                name: name.to_string(),
                ..GuestInterface::default()
            });
            last_ip = None;
            continue;
        }
        let (Some(current), Some((key, value))) = (interfaces.last_mut(), line.split_once(" : "))
        else {
            continue;
        };
        let key = key.trim().trim_end_matches(['.', ' ']);
        let value = value.trim();
        match key {
            "Physical Address" => current.mac = normalize_mac(value),
            "IPv4 Address" => {
                let ip = value.trim_end_matches("(Preferred)").trim().to_string();
                last_ip = Some(ip);
            }
            "Subnet Mask" => {
                if let (Some(ip), Some(prefix)) = (last_ip.take(), mask_prefix(value)) {
                    current.addresses.push((ip, prefix));
                }
            }
            "Default Gateway" if !value.is_empty() => current.gateway = Some(value.to_string()),
            _ => {}
        }
    }
    interfaces
}

/// `255.255.255.0` → 24; `None` for a mask that is not a run of ones.
pub fn mask_prefix(mask: &str) -> Option<u8> {
    let address: std::net::Ipv4Addr = mask.parse().ok()?;
    let bits = u32::from(address);
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// The prefix length as a dotted mask (24 → `255.255.255.0`), for messages in the guest's terms.
pub fn prefix_mask(prefix: u8) -> String {
    let bits = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    std::net::Ipv4Addr::from(bits).to_string()
}

/// A check of the guest's interfaces against what the source said of the VM.
type NetworkCheck = fn(&SourceVm, &[GuestInterface]) -> Vec<CheckFailure>;

/// `check_static_ip_preservation`: every static address of the source, with its mask and gateway, on
/// the guest interface with the same MAC.
pub fn static_ip_failures(source: &SourceVm, guest: &[GuestInterface]) -> Vec<CheckFailure> {
    const CHECK: &str = "check_static_ip_preservation";
    let mut failures = Vec::new();
    let fail = |subject: String, expected: String, actual: String| CheckFailure {
        check: CHECK,
        subject,
        expected,
        actual,
    };
    let statics: Vec<_> = source
        .nics
        .iter()
        .filter(|n| n.ips.iter().any(|ip| ip.is_static))
        .collect();
    if statics.is_empty() {
        failures.push(fail(
            "static interfaces".into(),
            "at least one on the source VM".into(),
            "none".into(),
        ));
    }
    for nic in statics {
        let mac = normalize_mac(&nic.mac);
        let Some(found) = guest.iter().find(|g| g.mac == mac) else {
            failures.push(fail(
                format!("NIC {mac}"),
                "an interface in the guest".into(),
                "none".into(),
            ));
            continue;
        };
        for ip in nic.ips.iter().filter(|ip| ip.is_static) {
            let subject = format!("NIC {mac} ({})", found.name);
            match found.addresses.iter().find(|(a, _)| *a == ip.ip) {
                None => failures.push(fail(
                    format!("{subject} address"),
                    ip.ip.clone(),
                    shown_addresses(&found.addresses),
                )),
                Some((_, prefix)) if *prefix != ip.prefix => failures.push(fail(
                    format!("{subject} subnet mask of {}", ip.ip),
                    prefix_mask(ip.prefix),
                    prefix_mask(*prefix),
                )),
                Some(_) => {}
            }
            if let Some(gateway) = &ip.gateway
                && found.gateway.as_ref() != Some(gateway)
            {
                failures.push(fail(
                    format!("{subject} gateway"),
                    gateway.clone(),
                    found.gateway.clone().unwrap_or_else(|| "none".into()),
                ));
            }
        }
    }
    failures
}

fn shown_addresses(addresses: &[(String, u8)]) -> String {
    if addresses.is_empty() {
        return "no address".into();
    }
    addresses
        .iter()
        .map(|(a, p)| format!("{a}/{p}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `check_nic_name_preservation`: each source NIC whose guest name the source reported keeps it.
pub fn nic_name_failures(source: &SourceVm, guest: &[GuestInterface]) -> Vec<CheckFailure> {
    source
        .nics
        .iter()
        .filter_map(|nic| {
            let expected = nic.device.as_deref()?;
            let mac = normalize_mac(&nic.mac);
            let actual = guest.iter().find(|g| g.mac == mac).map(|g| g.name.as_str());
            (actual != Some(expected)).then(|| CheckFailure {
                check: "check_nic_name_preservation",
                subject: format!("NIC {mac} name"),
                expected: expected.to_string(),
                actual: actual.unwrap_or("no interface with this MAC").to_string(),
            })
        })
        .collect()
}

/// Whether a VMI runs (its guest can be entered).
fn vmi_running(vmi: &Value) -> bool {
    vmi.pointer("/status/phase").and_then(Value::as_str) == Some("Running")
}

impl Runner {
    /// The guest checks of one migrated VM that its row of the table admits; their failures, each
    /// naming the check, expected and actual.
    pub(super) async fn check_guest(
        &self,
        id: &str,
        vm: &PreparedVm,
        target: &Value,
        checks: &VmChecks,
    ) -> Result<Vec<CheckFailure>, StepError> {
        let name = target["metadata"]["name"].as_str().unwrap_or("?");
        self.ran("check_ssh_connectivity", Some(&vm.key));
        let mut entered = self
            .enter_guest(id, target, "check_ssh_connectivity")
            .await?;
        let shell_result = match &mut entered {
            Entered::Failed(failure) => return Ok(vec![failure.clone()]),
            Entered::Shell { shell, os, .. } => {
                self.network_checks(id, vm, name, shell, *os, checks).await
            }
        };
        entered.leave(self).await?;
        shell_result
    }

    /// `check_static_ip_preservation` and `check_nic_name_preservation` from the guest's own view.
    async fn network_checks(
        &self,
        id: &str,
        vm: &PreparedVm,
        name: &str,
        shell: &GuestShell,
        os: GuestOs,
        checks: &VmChecks,
    ) -> Result<Vec<CheckFailure>, StepError> {
        let static_ips = checks.includes("check_static_ip_preservation");
        let names = checks.includes("check_nic_name_preservation");
        if !static_ips && !names {
            return Ok(Vec::new());
        }
        let interfaces = self
            .guest_interfaces(shell, os)
            .await
            .map_err(|e| StepError::Guest(e.into()))?;
        let mut failures = Vec::new();
        let guest_checks = [
            (
                static_ips,
                "check_static_ip_preservation",
                static_ip_failures as NetworkCheck,
            ),
            (names, "check_nic_name_preservation", nic_name_failures),
        ];
        for (wanted, check, failures_of) in guest_checks {
            if wanted {
                self.ran(check, Some(&vm.key));
                let found = failures_of(&vm.facts, &interfaces);
                let problems = found.len();
                self.note(id, format!("VM {name}: {check} ran ({problems} problems)"));
                failures.extend(found);
            }
        }
        Ok(failures)
    }

    /// The guest's interfaces: `nmcli device show` (gateways) merged with `ip -j addr` on Linux,
    /// `ipconfig /all` on Windows.
    async fn guest_interfaces(
        &self,
        shell: &GuestShell,
        os: GuestOs,
    ) -> Result<Vec<GuestInterface>, guest::SshError> {
        if os == GuestOs::Windows {
            let output = shell.run("ipconfig /all").await?;
            return Ok(parse_ipconfig_all(&output.stdout));
        }
        let nmcli = parse_nmcli_device_show(&shell.run("nmcli device show").await?.stdout);
        if !nmcli.is_empty() {
            return Ok(nmcli);
        }
        Ok(parse_ip_json(&shell.run("ip -j addr").await?.stdout))
    }

    /// `verify_data_integrity`: the marker file in the migrated guest says what was written before the
    /// snapshots.
    pub(super) async fn verify_data_integrity(
        &self,
        id: &str,
        target: &Value,
        path: &str,
        content: &str,
    ) -> Result<Option<CheckFailure>, StepError> {
        let entered = self
            .enter_guest(id, target, "verify_data_integrity")
            .await?;
        let read = match &entered {
            Entered::Failed(failure) => return Ok(Some(failure.clone())),
            Entered::Shell { shell, .. } => shell.read_file(path).await,
        };
        entered.leave(self).await?;
        let name = target["metadata"]["name"].as_str().unwrap_or("?");
        let actual = read.map_err(|e| StepError::Guest(e.into()))?;
        self.note(
            id,
            format!("VM {name}: verify_data_integrity read {path} over SSH"),
        );
        let failure = |actual: String| CheckFailure {
            check: "verify_data_integrity",
            subject: format!("data marker {path}"),
            expected: format!("{content:?}"),
            actual,
        };
        Ok(match actual {
            Some(text) if text.trim_end() == content => None,
            Some(text) => Some(failure(format!("{:?}", text.trim_end()))),
            None => Some(failure("no such file".into())),
        })
    }

    /// Starts the VM when it is off, waits for its VMI, and logs in (`check_ssh_connectivity`); a
    /// profile without an account for the guest's OS fails the check that needed the login.
    async fn enter_guest(
        &self,
        id: &str,
        target: &Value,
        purpose: &'static str,
    ) -> Result<Entered, StepError> {
        let session = &self.session;
        let cluster = &session.cluster;
        let namespace = target["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = target["metadata"]["name"].as_str().unwrap_or_default();
        let vmi = cluster
            .get_watched(&kinds::VIRTUAL_MACHINE_INSTANCE, Some(namespace), name)
            .await?;
        // A VM without a VMI is started for the checks; one whose VMI is on its way is waited for.
        let started = vmi.is_none();
        if started {
            cluster.set_vm_running(namespace, name, true).await?;
        }
        let entered = self
            .log_in(id, target, purpose, (namespace, name), started)
            .await;
        // A VM started for nothing (no account, no login) is stopped at once.
        if started && !matches!(entered, Ok(Entered::Shell { .. })) {
            self.stop_started((namespace, name), None).await?;
        }
        entered
    }

    async fn log_in(
        &self,
        id: &str,
        target: &Value,
        purpose: &'static str,
        (namespace, name): (&str, &str),
        started: bool,
    ) -> Result<Entered, StepError> {
        let session = &self.session;
        let what = format!("VirtualMachineInstance {namespace}/{name} to run");
        let vmi = session
            .cluster
            .wait_for(
                &kinds::VIRTUAL_MACHINE_INSTANCE,
                Some(namespace),
                name,
                self.guest_time(GUEST_START_TIMEOUT),
                &what,
                |vmi| {
                    if vmi_running(vmi) {
                        Verdict::Done(vmi.clone())
                    } else {
                        Verdict::Pending("not running".into())
                    }
                },
            )
            .await?;
        let os = guest::guest_os(target, Some(&vmi));
        let Some(login) = session.context.guest_logins.for_os(os) else {
            return Ok(Entered::Failed(CheckFailure {
                check: purpose,
                subject: format!("guest account for {os:?} guests"),
                expected: "one in the profile".into(),
                actual: match os {
                    GuestOs::Windows => "none (set guest_vm_win_user and guest_vm_win_password)",
                    GuestOs::Linux => "none (set guest_vm_linux_user and guest_vm_linux_password)",
                }
                .into(),
            }));
        };
        // Python polls every 15 s for 300 s: twenty tries spread over the (lab-scaled) budget.
        let budget = self.guest_time(GUEST_START_TIMEOUT);
        let attempts = BootWait::default().attempts;
        let wait = BootWait {
            attempts,
            pause: budget / attempts,
        };
        self.note(
            id,
            format!("VM {name}: SSH to port 22 as {} ({os:?} guest)", login.user),
        );
        match guest::login(
            session.cluster.client(),
            namespace,
            name,
            login,
            &session.host_keys,
            wait,
        )
        .await
        {
            Ok(shell) => {
                self.note(id, format!("VM {name}: check_ssh_connectivity passed"));
                Ok(Entered::Shell {
                    shell,
                    vmi,
                    os,
                    started,
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                })
            }
            Err(error) => Ok(Entered::Failed(CheckFailure {
                check: "check_ssh_connectivity",
                subject: "SSH to port 22".into(),
                expected: format!("a login as {}", login.user),
                actual: error.to_string(),
            })),
        }
    }
}

/// A guest entered for checks, or the connectivity failure that kept the checks out.
enum Entered {
    Shell {
        shell: GuestShell,
        /// The VMI as it ran when the login began.
        vmi: Value,
        os: GuestOs,
        /// Started for the checks: stopped again when they are done.
        started: bool,
        namespace: String,
        name: String,
    },
    Failed(CheckFailure),
}

impl Entered {
    /// Logs out, and stops the VM again when the checks started it.
    async fn leave(self, runner: &Runner) -> Result<(), StepError> {
        if let Entered::Shell {
            shell,
            vmi,
            started,
            namespace,
            name,
            ..
        } = self
        {
            shell.close().await;
            if started {
                runner.stop_started((&namespace, &name), Some(&vmi)).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtv_providers::{SourceIp, SourceNic};

    const NMCLI: &str = "GENERAL.DEVICE:                         ens192\nGENERAL.TYPE:                           ethernet\nGENERAL.HWADDR:                         00:50:56:A1:10:01\nGENERAL.STATE:                          100 (connected)\nIP4.ADDRESS[1]:                         10.10.1.21/24\nIP4.GATEWAY:                            10.10.1.1\n\nGENERAL.DEVICE:                         lo\nGENERAL.HWADDR:                         00:00:00:00:00:00\nIP4.ADDRESS[1]:                         127.0.0.1/8\nIP4.GATEWAY:                            --\n";

    const IPCONFIG: &str = "Windows IP Configuration\n\n   Host Name . . . . . . . . . . . . : win1\n\nEthernet adapter Ethernet0:\n\n   Physical Address. . . . . . . . . : 00-50-56-A1-10-03\n   IPv4 Address. . . . . . . . . . . : 10.10.1.31(Preferred)\n   Subnet Mask . . . . . . . . . . . : 255.255.255.0\n   Default Gateway . . . . . . . . . : 10.10.1.1\n";

    fn source(mac: &str, device: &str, ip: &str, prefix: u8, gateway: &str) -> SourceVm {
        let mut vm: SourceVm = serde_json::from_value(serde_json::json!({
            "id": "vm-1", "name": "rhel8", "powered_on": true, "template": false, "cpu_sockets": 1,
            "cores_per_socket": 1, "memory_mib": 1024, "firmware": "bios", "uuid": "u",
            "guest_agent": true, "cbt": false, "disks": [], "nics": [], "snapshots": [], "host": null
        }))
        .unwrap();
        vm.nics.push(SourceNic {
            mac: mac.into(),
            network: "n".into(),
            start_connected: true,
            device: Some(device.into()),
            ips: vec![SourceIp {
                ip: ip.into(),
                prefix,
                gateway: Some(gateway.into()),
                is_static: true,
            }],
        });
        vm
    }

    #[test]
    fn nmcli_and_ipconfig_read_into_the_same_interfaces() {
        let linux = parse_nmcli_device_show(NMCLI);
        assert_eq!(
            linux,
            vec![GuestInterface {
                name: "ens192".into(),
                mac: "00:50:56:a1:10:01".into(),
                addresses: vec![("10.10.1.21".into(), 24)],
                gateway: Some("10.10.1.1".into()),
            }]
        );
        let windows = parse_ipconfig_all(IPCONFIG);
        assert_eq!(windows[0].name, "Ethernet0");
        assert_eq!(windows[0].mac, "00:50:56:a1:10:03");
        assert_eq!(windows[0].addresses, vec![("10.10.1.31".into(), 24)]);
        assert_eq!(windows[0].gateway.as_deref(), Some("10.10.1.1"));
        let ip = r#"[{"ifname":"lo","address":"00:00:00:00:00:00","addr_info":[]},{"ifname":"eth0","address":"02:00:00:00:00:01","addr_info":[{"family":"inet","local":"10.0.0.5","prefixlen":16}]}]"#;
        let parsed = parse_ip_json(ip);
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].addresses, vec![("10.0.0.5".into(), 16)]);
    }

    #[test]
    fn masks_and_prefixes_convert_both_ways() {
        assert_eq!(mask_prefix("255.255.255.0"), Some(24));
        assert_eq!(mask_prefix("255.255.0.0"), Some(16));
        assert_eq!(mask_prefix("255.0.255.0"), None);
        assert_eq!(prefix_mask(24), "255.255.255.0");
        assert_eq!(prefix_mask(0), "0.0.0.0");
    }

    #[test]
    fn each_wrong_network_fact_fails_its_own_check() {
        let vm = source("00:50:56:a1:10:01", "ens192", "10.10.1.21", 24, "10.10.1.1");
        let right = parse_nmcli_device_show(NMCLI);
        assert!(static_ip_failures(&vm, &right).is_empty());
        assert!(nic_name_failures(&vm, &right).is_empty());
        let mut wrong = right.clone();
        wrong[0].addresses = vec![("10.10.1.21".into(), 16)];
        wrong[0].gateway = Some("10.10.1.254".into());
        wrong[0].name = "eth0".into();
        let ips: Vec<String> = static_ip_failures(&vm, &wrong)
            .iter()
            .map(|f| f.to_string())
            .collect();
        assert_eq!(
            ips,
            [
                "check_static_ip_preservation - NIC 00:50:56:a1:10:01 (eth0) subnet mask of 10.10.1.21: expected 255.255.255.0, got 255.255.0.0",
                "check_static_ip_preservation - NIC 00:50:56:a1:10:01 (eth0) gateway: expected 10.10.1.1, got 10.10.1.254"
            ]
        );
        let names = nic_name_failures(&vm, &wrong);
        assert_eq!(
            names[0].to_string(),
            "check_nic_name_preservation - NIC 00:50:56:a1:10:01 name: expected ens192, got eth0"
        );
        wrong[0].addresses = vec![("10.128.0.7".into(), 24)];
        let lost = static_ip_failures(&vm, &wrong);
        assert_eq!(
            lost[0].to_string(),
            "check_static_ip_preservation - NIC 00:50:56:a1:10:01 (eth0) address: expected 10.10.1.21, got 10.128.0.7/24"
        );
    }
}
