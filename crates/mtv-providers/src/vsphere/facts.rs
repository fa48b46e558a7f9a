//! vim25 properties to [`SourceVm`] facts: hardware, disks and NICs from `config.hardware.device`,
//! guest IPs from `guest.net` and `guest.ipStack`, snapshots from the snapshot tree.

use std::collections::BTreeMap;

use super::xml::Element;
use crate::{SourceDisk, SourceIp, SourceNic, SourceSnapshot, SourceVm};

/// Property path to value (`val`) of one object.
pub(crate) type Props = BTreeMap<String, Element>;

/// The `propSet`s of an `ObjectContent`.
pub(crate) fn props_of(object: &Element) -> Props {
    object
        .children_named("propSet")
        .filter_map(|prop| {
            let name = prop.text_at("name")?.to_string();
            Some((name, prop.child("val")?.clone()))
        })
        .collect()
}

/// The trimmed text of a property.
pub(crate) fn text<'a>(props: &'a Props, path: &str) -> Option<&'a str> {
    props.get(path).map(|v| v.text.trim())
}

fn number(props: &Props, path: &str) -> Option<i64> {
    text(props, path).and_then(|t| t.parse().ok())
}

/// `thin`, `thick-lazy`, `thick-eager` as (thinProvisioned, eagerlyScrub).
pub fn provisioning_flags(provisioning: &str) -> Result<(bool, bool), String> {
    match provisioning {
        "thin" | "" => Ok((true, false)),
        "thick-lazy" | "thick" => Ok((false, false)),
        "thick-eager" => Ok((false, true)),
        other => Err(format!(
            "unknown disk provisioning `{other}` (thin, thick-lazy or thick-eager)"
        )),
    }
}

/// The `VirtualDisk` devices of a device list.
pub(crate) fn disk_devices(devices: &Element) -> Vec<&Element> {
    devices
        .children
        .iter()
        .filter(|d| d.kind() == "VirtualDisk")
        .collect()
}

fn is_scsi_controller(device: &Element) -> bool {
    // Every SCSI controller type (LSI Logic, LSI SAS, ParaVirtual, BusLogic) has this field.
    device.child("scsiCtlrUnitNumber").is_some()
}

/// The first SCSI controller with a free unit (unit 7 is the controller's own).
pub(crate) fn free_scsi_slot(devices: &Element) -> Option<(i64, i64)> {
    devices
        .children
        .iter()
        .filter(|d| is_scsi_controller(d))
        .find_map(|controller| {
            let key = controller.i64_at("key")?;
            let own = controller.i64_at("scsiCtlrUnitNumber").unwrap_or(7);
            let used: Vec<i64> = devices
                .children
                .iter()
                .filter(|d| d.i64_at("controllerKey") == Some(key))
                .filter_map(|d| d.i64_at("unitNumber"))
                .collect();
            let unit = (0..16).find(|u| *u != own && !used.contains(u))?;
            Some((key, unit))
        })
}

fn disk_of(device: &Element) -> SourceDisk {
    let backing = device.child("backing");
    let at = |path: &str| backing.and_then(|b| b.text_at(path));
    let rdm = backing
        .filter(|b| b.kind() == "VirtualDiskRawDiskMappingVer1BackingInfo")
        .map(|b| match b.text_at("compatibilityMode") {
            Some("physicalMode") => "physical".to_string(),
            _ => "virtual".to_string(),
        });
    let bytes = device
        .i64_at("capacityInBytes")
        .filter(|b| *b > 0)
        .or_else(|| device.i64_at("capacityInKB").map(|kb| kb * 1024))
        .unwrap_or(0)
        .max(0) as u64;
    let thin = backing.and_then(|b| b.bool_at("thinProvisioned")) == Some(true);
    let eager = backing.and_then(|b| b.bool_at("eagerlyScrub")) == Some(true);
    SourceDisk {
        file: at("fileName").unwrap_or("").to_string(),
        datastore: at("datastore").unwrap_or("").to_string(),
        capacity_gib: bytes.div_ceil(1024 * 1024 * 1024),
        provisioning: match (thin, eager) {
            (true, _) => "thin",
            (false, true) => "thick-eager",
            (false, false) => "thick-lazy",
        }
        .to_string(),
        mode: at("diskMode").unwrap_or("persistent").to_string(),
        rdm,
        controller_key: device.i64_at("controllerKey").unwrap_or(0),
        unit_number: device.i64_at("unitNumber").unwrap_or(0),
    }
}

/// The network id of a NIC backing: the network, the port group key, or the opaque network id.
fn network_of(backing: Option<&Element>) -> String {
    let Some(backing) = backing else {
        return String::new();
    };
    backing
        .text_at("network")
        .or_else(|| backing.text_at("port/portgroupKey"))
        .or_else(|| backing.text_at("opaqueNetworkId"))
        .or_else(|| backing.text_at("deviceName"))
        .unwrap_or("")
        .to_string()
}

/// Default gateways by `guest.net` index, from the guest's routing tables.
fn gateways(ip_stack: Option<&Element>) -> BTreeMap<String, Vec<String>> {
    let mut gateways: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(ip_stack) = ip_stack else {
        return gateways;
    };
    for stack in &ip_stack.children {
        for route in stack
            .at("ipRouteConfig")
            .into_iter()
            .flat_map(|c| c.children_named("ipRoute"))
        {
            let default = route.i64_at("prefixLength") == Some(0);
            if let (true, Some(gateway), Some(device)) = (
                default,
                route.text_at("gateway/ipAddress"),
                route.text_at("gateway/device"),
            ) && !gateway.is_empty()
            {
                gateways
                    .entry(device.to_string())
                    .or_default()
                    .push(gateway.to_string());
            }
        }
    }
    gateways
}

fn ips_of(guest_nic: &Element, gateways: &[String]) -> Vec<SourceIp> {
    let gateway_for = |ip: &str| {
        let v6 = ip.contains(':');
        gateways.iter().find(|g| g.contains(':') == v6).cloned()
    };
    let configured: Vec<SourceIp> = guest_nic
        .at("ipConfig")
        .into_iter()
        .flat_map(|c| c.children_named("ipAddress"))
        .filter_map(|address| {
            let ip = address.text_at("ipAddress")?.to_string();
            Some(SourceIp {
                prefix: address.i64_at("prefixLength").unwrap_or(0).clamp(0, 128) as u8,
                gateway: gateway_for(&ip),
                is_static: address.text_at("origin") == Some("manual"),
                ip,
            })
        })
        .collect();
    if !configured.is_empty() {
        return configured;
    }
    // Older tools report only the addresses.
    guest_nic
        .children_named("ipAddress")
        .map(|a| a.text.trim().to_string())
        .filter(|ip| !ip.is_empty())
        .map(|ip| SourceIp {
            prefix: 0,
            gateway: gateway_for(&ip),
            is_static: false,
            ip,
        })
        .collect()
}

fn snapshots_of(list: &Element, out: &mut Vec<SourceSnapshot>) {
    for tree in list
        .children_named("rootSnapshotList")
        .chain(list.children_named("childSnapshotList"))
    {
        out.push(SourceSnapshot {
            id: tree.text_at("snapshot").unwrap_or("").to_string(),
            name: tree.text_at("name").unwrap_or("").to_string(),
            created: tree.text_at("createTime").unwrap_or("").to_string(),
        });
        snapshots_of(tree, out);
    }
}

/// The facts of a VM from its [`super::VM_PROPERTIES`].
pub(crate) fn source_vm(id: &str, props: &Props) -> SourceVm {
    let no_devices = Element::default();
    let devices = props.get("config.hardware.device").unwrap_or(&no_devices);
    let guest_net: Vec<&Element> = props
        .get("guest.net")
        .map(|n| n.children.iter().collect())
        .unwrap_or_default();
    let gateways = gateways(props.get("guest.ipStack"));
    let nics = devices
        .children
        .iter()
        .filter(|d| d.child("macAddress").is_some())
        .map(|device| {
            let mac = device.text_at("macAddress").unwrap_or("").to_string();
            let ips = guest_net
                .iter()
                .enumerate()
                .find(|(_, g)| {
                    g.text_at("macAddress")
                        .is_some_and(|m| m.eq_ignore_ascii_case(&mac))
                })
                .map(|(index, g)| {
                    ips_of(
                        g,
                        gateways
                            .get(&index.to_string())
                            .map(Vec::as_slice)
                            .unwrap_or(&[]),
                    )
                })
                .unwrap_or_default();
            SourceNic {
                network: network_of(device.child("backing")),
                start_connected: device.bool_at("connectable/startConnected") != Some(false),
                // Guest NIC names are not among vSphere's properties (the Python suite asks the guest).
                device: None,
                ips,
                mac,
            }
        })
        .collect();
    let cpus = number(props, "config.hardware.numCPU").unwrap_or(1).max(1) as u32;
    let cores = number(props, "config.hardware.numCoresPerSocket")
        .unwrap_or(1)
        .max(1) as u32;
    let mut snapshots = Vec::new();
    if let Some(info) = props.get("snapshot") {
        snapshots_of(info, &mut snapshots);
    }
    SourceVm {
        id: id.to_string(),
        name: text(props, "name").unwrap_or("").to_string(),
        powered_on: text(props, "runtime.powerState") == Some("poweredOn"),
        template: text(props, "config.template") == Some("true"),
        cpu_sockets: (cpus / cores).max(1),
        cores_per_socket: cores,
        memory_mib: number(props, "config.hardware.memoryMB")
            .unwrap_or(0)
            .max(0) as u64,
        firmware: text(props, "config.firmware").unwrap_or("bios").to_string(),
        uuid: text(props, "config.uuid").unwrap_or("").to_string(),
        guest_agent: text(props, "guest.toolsRunningStatus") == Some("guestToolsRunning"),
        cbt: text(props, "config.changeTrackingEnabled") == Some("true"),
        disks: disk_devices(devices).into_iter().map(disk_of).collect(),
        nics,
        snapshots,
        host: text(props, "runtime.host")
            .filter(|h| !h.is_empty())
            .map(str::to_string),
        events: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::xml::parse;
    use super::*;

    fn props(xml: &str) -> Props {
        let root = parse(&format!(
            r#"<returnval xmlns:xsi="x"><obj type="VirtualMachine">vm-1</obj>{xml}</returnval>"#
        ))
        .unwrap();
        props_of(&root)
    }

    #[test]
    fn vim25_properties_map_to_source_facts() {
        let props = props(
            r#"
            <propSet><name>name</name><val xsi:type="xsd:string">rhel8</val></propSet>
            <propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">poweredOn</val></propSet>
            <propSet><name>config.hardware.numCPU</name><val>4</val></propSet>
            <propSet><name>config.hardware.numCoresPerSocket</name><val>2</val></propSet>
            <propSet><name>config.hardware.memoryMB</name><val>4096</val></propSet>
            <propSet><name>config.firmware</name><val>efi</val></propSet>
            <propSet><name>config.changeTrackingEnabled</name><val>true</val></propSet>
            <propSet><name>guest.toolsRunningStatus</name><val>guestToolsRunning</val></propSet>
            <propSet><name>runtime.host</name><val type="HostSystem">host-21</val></propSet>
            <propSet><name>config.hardware.device</name><val xsi:type="ArrayOfVirtualDevice">
              <VirtualDevice xsi:type="ParaVirtualSCSIController"><key>1000</key><busNumber>0</busNumber><scsiCtlrUnitNumber>7</scsiCtlrUnitNumber></VirtualDevice>
              <VirtualDevice xsi:type="VirtualDisk"><key>2000</key>
                <backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[ds1] rhel8/rhel8.vmdk</fileName><datastore type="Datastore">datastore-1</datastore><diskMode>persistent</diskMode><thinProvisioned>false</thinProvisioned><eagerlyScrub>true</eagerlyScrub></backing>
                <controllerKey>1000</controllerKey><unitNumber>0</unitNumber><capacityInKB>31457280</capacityInKB><capacityInBytes>32212254720</capacityInBytes></VirtualDevice>
              <VirtualDevice xsi:type="VirtualDisk"><key>2001</key>
                <backing xsi:type="VirtualDiskRawDiskMappingVer1BackingInfo"><fileName>[ds1] rhel8/rdm.vmdk</fileName><datastore type="Datastore">datastore-1</datastore><compatibilityMode>physicalMode</compatibilityMode><diskMode>independent_persistent</diskMode></backing>
                <controllerKey>1000</controllerKey><unitNumber>1</unitNumber><capacityInKB>1024</capacityInKB></VirtualDevice>
              <VirtualDevice xsi:type="VirtualVmxnet3"><key>4000</key>
                <backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>VM Network</deviceName><network type="Network">network-7</network></backing>
                <connectable><startConnected>false</startConnected></connectable><macAddress>00:50:56:AA:00:01</macAddress></VirtualDevice>
              <VirtualDevice xsi:type="VirtualE1000"><key>4001</key>
                <backing xsi:type="VirtualEthernetCardDistributedVirtualPortBackingInfo"><port><switchUuid>u</switchUuid><portgroupKey>dvportgroup-13</portgroupKey></port></backing>
                <connectable><startConnected>true</startConnected></connectable><macAddress>00:50:56:aa:00:02</macAddress></VirtualDevice>
            </val></propSet>
            <propSet><name>guest.net</name><val>
              <GuestNicInfo><macAddress>00:50:56:aa:00:01</macAddress><ipConfig>
                <ipAddress><ipAddress>10.0.0.5</ipAddress><prefixLength>24</prefixLength><origin>manual</origin></ipAddress>
              </ipConfig></GuestNicInfo>
              <GuestNicInfo><macAddress>00:50:56:aa:00:02</macAddress><ipAddress>192.168.1.9</ipAddress></GuestNicInfo>
            </val></propSet>
            <propSet><name>guest.ipStack</name><val><GuestStackInfo><ipRouteConfig>
              <ipRoute><network>0.0.0.0</network><prefixLength>0</prefixLength><gateway><ipAddress>10.0.0.1</ipAddress><device>0</device></gateway></ipRoute>
            </ipRouteConfig></GuestStackInfo></val></propSet>
            <propSet><name>snapshot</name><val><currentSnapshot type="VirtualMachineSnapshot">snapshot-2</currentSnapshot>
              <rootSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-1</snapshot><name>one</name><createTime>2026-01-01T10:00:00Z</createTime>
                <childSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-2</snapshot><name>two</name><createTime>2026-01-01T10:05:00Z</createTime></childSnapshotList>
              </rootSnapshotList></val></propSet>
            "#,
        );
        let vm = source_vm("vm-1", &props);
        assert_eq!(vm.name, "rhel8");
        assert!(vm.powered_on && vm.cbt && vm.guest_agent && !vm.template);
        assert_eq!(
            (vm.cpu_sockets, vm.cores_per_socket, vm.memory_mib),
            (2, 2, 4096)
        );
        assert_eq!(vm.firmware, "efi");
        assert_eq!(vm.host.as_deref(), Some("host-21"));
        assert_eq!(vm.disks.len(), 2);
        assert_eq!(vm.disks[0].capacity_gib, 30);
        assert_eq!(vm.disks[0].provisioning, "thick-eager");
        assert_eq!(vm.disks[0].datastore, "datastore-1");
        assert_eq!(
            (vm.disks[0].controller_key, vm.disks[0].unit_number),
            (1000, 0)
        );
        assert_eq!(vm.disks[1].rdm.as_deref(), Some("physical"));
        assert_eq!(vm.disks[1].capacity_gib, 1);
        assert_eq!(vm.nics.len(), 2);
        assert_eq!(vm.nics[0].network, "network-7");
        assert!(!vm.nics[0].start_connected);
        assert_eq!(vm.nics[0].ips[0].ip, "10.0.0.5");
        assert_eq!(vm.nics[0].ips[0].prefix, 24);
        assert!(vm.nics[0].ips[0].is_static);
        assert_eq!(vm.nics[0].ips[0].gateway.as_deref(), Some("10.0.0.1"));
        assert_eq!(vm.nics[1].network, "dvportgroup-13");
        assert_eq!(vm.nics[1].ips[0].ip, "192.168.1.9");
        let names: Vec<&str> = vm.snapshots.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["one", "two"]);
        assert_eq!(vm.snapshots[1].id, "snapshot-2");
        let devices = props.get("config.hardware.device").unwrap();
        assert_eq!(free_scsi_slot(devices), Some((1000, 2)));
    }

    #[test]
    fn provisioning_names_map_to_backing_flags() {
        assert_eq!(provisioning_flags("thin"), Ok((true, false)));
        assert_eq!(provisioning_flags("thick-lazy"), Ok((false, false)));
        assert_eq!(provisioning_flags("thick-eager"), Ok((false, true)));
        assert!(provisioning_flags("sparse").is_err());
    }
}
