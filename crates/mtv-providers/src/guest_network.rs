//! The network interfaces a guest shows, as its own tools print them: one parser of `nmcli device
//! show` for the source adapters (the guest's NIC names, by MAC) and the engine's checks inside
//! migrated guests (addresses, masks, gateways, names).

/// One network interface as the guest shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuestInterface {
    pub name: String,
    /// Lower-case, colon-separated.
    pub mac: String,
    /// `(address, prefix length)`.
    pub addresses: Vec<(String, u8)>,
    pub gateway: Option<String>,
}

/// A MAC in one spelling: lower case with colons (`00-50-56-A1-10-03` → `00:50:56:a1:10:03`).
pub fn normalize_mac(mac: &str) -> String {
    mac.trim().replace('-', ":").to_ascii_lowercase()
}

/// `nmcli device show`: blocks of `KEY: value` lines, one per device (loopback left out).
pub fn parse_nmcli_device_show(text: &str) -> Vec<GuestInterface> {
    let mut interfaces = Vec::new();
    for block in text.split("\n\n") {
        let mut interface = GuestInterface::default();
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "GENERAL.DEVICE" => interface.name = value.to_string(),
                "GENERAL.HWADDR" => interface.mac = normalize_mac(value),
                "IP4.GATEWAY" if !value.is_empty() && value != "--" => {
                    interface.gateway = Some(value.to_string())
                }
                k if k.starts_with("IP4.ADDRESS") => {
                    if let Some((ip, prefix)) = value.split_once('/')
                        && let Ok(prefix) = prefix.parse()
                    {
                        interface.addresses.push((ip.to_string(), prefix));
                    }
                }
                _ => {}
            }
        }
        if !interface.name.is_empty() && interface.name != "lo" {
            interfaces.push(interface);
        }
    }
    interfaces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nmcli_blocks_give_names_macs_addresses_and_gateways_without_loopback() {
        let text = "GENERAL.DEVICE:                         ens192\n\
                    GENERAL.HWADDR:                         00:50:56:A1:10:01\n\
                    IP4.ADDRESS[1]:                         192.168.1.10/24\n\
                    IP4.GATEWAY:                            192.168.1.1\n\n\
                    GENERAL.DEVICE:                         lo\n\
                    GENERAL.HWADDR:                         00:00:00:00:00:00\n";
        let interfaces = parse_nmcli_device_show(text);
        assert_eq!(
            interfaces,
            vec![GuestInterface {
                name: "ens192".into(),
                mac: "00:50:56:a1:10:01".into(),
                addresses: vec![("192.168.1.10".into(), 24)],
                gateway: Some("192.168.1.1".into()),
            }]
        );
    }
}
