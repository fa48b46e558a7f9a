//! The engine's JSON documents (scalars as strings, lists as arrays under the member's name) read into
//! the suite's source facts.

use serde_json::Value;

use crate::{SourceDisk, SourceEvent, SourceIp, SourceNic, SourceSnapshot};

const GIB: u64 = 1024 * 1024 * 1024;
const MIB: u64 = 1024 * 1024;

/// The string at a `/`-separated path of keys.
pub(crate) fn text<'a>(value: &'a Value, path: &str) -> Option<&'a str> {
    path.split('/')
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

pub(crate) fn number(value: &Value, path: &str) -> Option<u64> {
    text(value, path).and_then(|t| t.parse().ok())
}

/// The members of a list (`{"vm": [...]}` → the VMs); an absent list is empty.
pub(crate) fn members<'a>(value: &'a Value, member: &str) -> Vec<&'a Value> {
    match value.get(member) {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

/// `bios/type` as the suite's firmware name.
pub(crate) fn firmware(vm: &Value) -> &'static str {
    match text(vm, "bios/type") {
        Some(t) if t.contains("ovmf") || t.contains("secure_boot") => "efi",
        _ => "bios",
    }
}

pub(crate) fn memory_mib(vm: &Value) -> u64 {
    number(vm, "memory").unwrap_or(0) / MIB
}

/// A NIC: its MAC, the network its vNIC profile is on, and what the guest agent reports.
pub(crate) fn nic(nic: &Value, network: String) -> SourceNic {
    let ips = members(
        nic.get("reported_devices").unwrap_or(&Value::Null),
        "reported_device",
    )
    .into_iter()
    .flat_map(|device| members(device.get("ips").unwrap_or(&Value::Null), "ip"))
    .filter_map(|ip| {
        Some(SourceIp {
            ip: text(ip, "address")?.to_string(),
            prefix: prefix_of(text(ip, "netmask").unwrap_or("")),
            gateway: text(ip, "gateway").map(str::to_string),
            // The engine does not say how the guest got an address.
            is_static: false,
        })
    })
    .collect();
    SourceNic {
        mac: text(nic, "mac/address").unwrap_or_default().to_string(),
        network,
        start_connected: text(nic, "plugged") != Some("false"),
        device: None,
        ips,
    }
}

/// A dotted netmask (or a plain length) as a prefix length.
fn prefix_of(netmask: &str) -> u8 {
    match netmask.parse::<std::net::Ipv4Addr>() {
        Ok(mask) => u32::from(mask).count_ones() as u8,
        Err(_) => netmask.parse().unwrap_or(0),
    }
}

/// A disk, in the order of its attachment (`index`).
pub(crate) fn disk(disk: &Value, index: usize) -> SourceDisk {
    let domain = members(
        disk.get("storage_domains").unwrap_or(&Value::Null),
        "storage_domain",
    )
    .first()
    .and_then(|d| text(d, "id"))
    .unwrap_or_default()
    .to_string();
    let sparse = text(disk, "sparse").map_or(text(disk, "format") == Some("cow"), |s| s == "true");
    SourceDisk {
        file: text(disk, "id").unwrap_or_default().to_string(),
        datastore: domain,
        capacity_gib: number(disk, "provisioned_size").unwrap_or(0) / GIB,
        provisioning: if sparse { "thin" } else { "thick-lazy" }.to_string(),
        mode: "persistent".to_string(),
        rdm: (text(disk, "storage_type") == Some("lun")).then(|| "physical".to_string()),
        controller_key: 0,
        unit_number: index as i64,
    }
}

pub(crate) fn snapshot(snapshot: &Value) -> SourceSnapshot {
    SourceSnapshot {
        id: text(snapshot, "id").unwrap_or_default().to_string(),
        name: text(snapshot, "description")
            .unwrap_or_default()
            .to_string(),
        created: text(snapshot, "date").unwrap_or_default().to_string(),
    }
}

/// The audit-log type of an event code (the engine's JSON has only the number).
fn event_kind(code: i64) -> String {
    match code {
        32 => "USER_RUN_VM".into(),
        33 => "USER_STOP_VM".into(),
        73 => "USER_INITIATED_SHUTDOWN_VM".into(),
        other => format!("AUDIT_LOG_{other}"),
    }
}

pub(crate) fn event(event: &Value) -> SourceEvent {
    let code = text(event, "code")
        .and_then(|c| c.parse::<i64>().ok())
        .unwrap_or(-1);
    SourceEvent {
        kind: event_kind(code),
        code: u32::try_from(code).ok(),
        description: text(event, "description").unwrap_or_default().to_string(),
        time: text(event, "time").unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn engine_json_reads_into_facts() {
        let nic_json = json!({"mac": {"address": "56:6f:00:00:00:01"}, "plugged": "false",
            "reported_devices": {"reported_device": [{"ips": {"ip": [
                {"address": "10.0.0.5", "netmask": "255.255.255.0", "gateway": "10.0.0.1"}]}}]}});
        let read = nic(&nic_json, "net-1".into());
        assert_eq!(read.mac, "56:6f:00:00:00:01");
        assert!(!read.start_connected);
        assert_eq!(
            (read.ips[0].ip.as_str(), read.ips[0].prefix),
            ("10.0.0.5", 24)
        );
        let disk_json = json!({"id": "d1", "provisioned_size": "32212254720", "sparse": "false",
            "storage_domains": {"storage_domain": [{"id": "sd1"}]}});
        let read = disk(&disk_json, 1);
        assert_eq!((read.capacity_gib, read.datastore.as_str()), (30, "sd1"));
        assert_eq!(read.provisioning, "thick-lazy");
        let stop = event(&json!({"code": "33", "description": "off", "time": "t"}));
        assert_eq!((stop.kind.as_str(), stop.code), ("USER_STOP_VM", Some(33)));
        assert_eq!(firmware(&json!({"bios": {"type": "q35_ovmf"}})), "efi");
        assert_eq!(members(&json!({}), "vm").len(), 0);
    }
}
