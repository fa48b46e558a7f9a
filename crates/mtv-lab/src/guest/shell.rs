//! The commands a simulated guest answers, in the output formats of the real tools the checks parse:
//! Linux `nmcli device show`, `ip -j addr`, `cat` (and `cat > file`), `lsblk -J -f`, `xfs_info`,
//! `mount`, `umount`, `blockdev`, `sync`, `hostname`; Windows `ipconfig /all`, `hostname`, `type` and
//! the PowerShell `Get-Content`/`Set-Content` one-liners. Anything else is not found, as a shell says.

use serde_json::json;

use super::{GuestImage, GuestOs};

/// What a command printed and its exit status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    pub stdout: String,
    pub stderr: String,
    pub status: u32,
}

impl Answer {
    fn ok(stdout: impl Into<String>) -> Answer {
        Answer {
            stdout: stdout.into(),
            ..Answer::default()
        }
    }

    fn fail(status: u32, stderr: impl Into<String>) -> Answer {
        Answer {
            stderr: stderr.into(),
            status,
            ..Answer::default()
        }
    }
}

/// Splits a command line into words (single quotes, double quotes and backslashes as POSIX shells do).
pub fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    current.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => current.extend(chars.next()),
                        _ => current.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                current.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                current.push(c);
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

/// Runs one command line in the guest, with `stdin` as its input.
pub fn run(guest: &mut GuestImage, line: &str, stdin: &[u8]) -> Answer {
    let words = words(line);
    let Some(program) = words.first() else {
        return Answer::ok("");
    };
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    match guest.os {
        GuestOs::Linux => linux(guest, program, &args, stdin),
        GuestOs::Windows => windows(guest, program, &args, stdin),
    }
}

fn linux(guest: &mut GuestImage, program: &str, args: &[&str], stdin: &[u8]) -> Answer {
    match (program, args) {
        ("hostname", []) => Answer::ok(format!("{}\n", guest.hostname)),
        ("cat", [">", path]) => write_file(guest, path, stdin),
        ("cat", paths) if !paths.is_empty() => cat(guest, paths),
        ("nmcli", ["device", "show"]) => Answer::ok(nmcli_device_show(guest)),
        ("ip", ["-j", "addr"] | ["-j", "address"] | ["-j", "a"]) => Answer::ok(ip_json(guest)),
        ("lsblk", ["-J", "-f"] | ["-f", "-J"]) => Answer::ok(lsblk_json(guest)),
        ("xfs_info", [target]) => xfs_info(guest, target),
        ("mount", []) => Answer::ok(mount_table(guest)),
        ("mount", [device, dir]) => mount(guest, device, dir),
        ("umount", [target]) => umount(guest, target),
        ("blockdev", ["--flushbufs", device]) => blockdev(guest, device, |_| String::new()),
        ("blockdev", ["--getsize64", device]) => {
            blockdev(guest, device, |size| format!("{size}\n"))
        }
        ("sync", []) => Answer::ok(""),
        ("true", _) => Answer::ok(""),
        _ => Answer::fail(127, format!("bash: {program}: command not found\n")),
    }
}

fn windows(guest: &mut GuestImage, program: &str, args: &[&str], stdin: &[u8]) -> Answer {
    let lower = program.to_ascii_lowercase();
    match (lower.as_str(), args) {
        ("hostname", []) => Answer::ok(format!("{}\r\n", guest.hostname)),
        ("ipconfig", ["/all"]) => Answer::ok(ipconfig_all(guest)),
        ("type", [path]) => cat(guest, &[path]),
        ("powershell" | "powershell.exe", _) => powershell(guest, args, stdin),
        _ => Answer::fail(
            9009,
            format!(
                "'{program}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
            ),
        ),
    }
}

/// `powershell [-Command] "<cmdlet> ..."`: the file one-liners the Python suite sends.
fn powershell(guest: &mut GuestImage, args: &[&str], stdin: &[u8]) -> Answer {
    let script: Vec<&str> = args
        .iter()
        .copied()
        .skip_while(|a| a.starts_with('-') && !a.contains(' '))
        .collect();
    let script = words(&script.join(" "));
    let arg = |name: &str| {
        script
            .windows(2)
            .find(|w| w[0].eq_ignore_ascii_case(name))
            .map(|w| w[1].clone())
    };
    match script.first().map(|c| c.to_ascii_lowercase()).as_deref() {
        Some("get-content") => match arg("-Path").or_else(|| script.get(1).cloned()) {
            Some(path) => cat(guest, &[&path]),
            None => Answer::fail(1, "Get-Content: missing -Path\r\n"),
        },
        Some("set-content") => match (arg("-Path"), arg("-Value")) {
            (Some(path), Some(value)) => write_file(guest, &path, value.as_bytes()),
            (Some(path), None) => write_file(guest, &path, stdin),
            _ => Answer::fail(1, "Set-Content: missing -Path\r\n"),
        },
        Some("hostname") => Answer::ok(format!("{}\r\n", guest.hostname)),
        Some(other) => Answer::fail(
            1,
            format!("{other} : The term '{other}' is not recognized as the name of a cmdlet\r\n"),
        ),
        None => Answer::ok(""),
    }
}

fn cat(guest: &GuestImage, paths: &[&str]) -> Answer {
    let mut answer = Answer::default();
    for path in paths {
        match guest.files.get(*path) {
            Some(content) => answer.stdout.push_str(content),
            None => {
                answer
                    .stderr
                    .push_str(&format!("cat: {path}: No such file or directory\n"));
                answer.status = 1;
            }
        }
    }
    answer
}

fn write_file(guest: &mut GuestImage, path: &str, content: &[u8]) -> Answer {
    if !path.starts_with('/') && !path.contains(':') {
        return Answer::fail(
            1,
            format!("cannot create {path}: relative paths are not kept\n"),
        );
    }
    guest.files.insert(
        path.to_string(),
        String::from_utf8_lossy(content).into_owned(),
    );
    Answer::ok("")
}

fn nmcli_device_show(guest: &GuestImage) -> String {
    let mut blocks = Vec::new();
    for nic in &guest.nics {
        let mut lines = vec![
            format!("{:<40}{}", "GENERAL.DEVICE:", nic.name),
            format!("{:<40}ethernet", "GENERAL.TYPE:"),
            format!("{:<40}{}", "GENERAL.HWADDR:", nic.mac.to_ascii_uppercase()),
            format!("{:<40}100 (connected)", "GENERAL.STATE:"),
        ];
        for (index, address) in nic.addresses.iter().enumerate() {
            lines.push(format!(
                "{:<40}{}/{}",
                format!("IP4.ADDRESS[{}]:", index + 1),
                address.ip,
                address.prefix
            ));
        }
        let gateway = nic.addresses.iter().find_map(|a| a.gateway.clone());
        lines.push(format!(
            "{:<40}{}",
            "IP4.GATEWAY:",
            gateway.unwrap_or_else(|| "--".into())
        ));
        blocks.push(lines.join("\n"));
    }
    blocks.push(
        [
            format!("{:<40}lo", "GENERAL.DEVICE:"),
            format!("{:<40}loopback", "GENERAL.TYPE:"),
            format!("{:<40}00:00:00:00:00:00", "GENERAL.HWADDR:"),
            format!("{:<40}100 (connected (externally))", "GENERAL.STATE:"),
            format!("{:<40}127.0.0.1/8", "IP4.ADDRESS[1]:"),
            format!("{:<40}--", "IP4.GATEWAY:"),
        ]
        .join("\n"),
    );
    format!("{}\n", blocks.join("\n\n"))
}

fn ip_json(guest: &GuestImage) -> String {
    let mut links = vec![
        json!({"ifindex": 1, "ifname": "lo", "link_type": "loopback",
        "address": "00:00:00:00:00:00", "operstate": "UNKNOWN",
        "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"}]}),
    ];
    for (index, nic) in guest.nics.iter().enumerate() {
        let addresses: Vec<_> = nic
            .addresses
            .iter()
            .map(|a| {
                json!({"family": "inet", "local": a.ip, "prefixlen": a.prefix, "scope": "global",
                       "dynamic": !a.is_static})
            })
            .collect();
        links.push(
            json!({"ifindex": index + 2, "ifname": nic.name, "link_type": "ether",
            "address": nic.mac, "operstate": "UP", "addr_info": addresses}),
        );
    }
    format!("{}\n", serde_json::Value::Array(links))
}

fn lsblk_json(guest: &GuestImage) -> String {
    let mountpoint = |device: &str| {
        guest
            .mounts
            .iter()
            .find(|(_, d)| d.trim_start_matches("/dev/") == device)
            .map(|(m, _)| m.clone())
    };
    let devices: Vec<_> = guest
        .devices
        .iter()
        .map(|d| {
            let mut device = json!({"name": d.name, "fstype": null, "fsver": null, "label": null,
                "uuid": null, "fsavail": null, "fsuse%": null, "mountpoints": [null]});
            if let Some(fstype) = &d.fstype {
                let part = format!("{}1", d.name);
                let mount = mountpoint(&part);
                device["children"] = json!([{"name": part, "fstype": fstype,
                    "fsver": if fstype == "crypto_LUKS" { "2" } else { "" },
                    "label": null, "uuid": d.uuid, "mountpoints": [mount]}]);
            }
            device
        })
        .collect();
    format!(
        "{}\n",
        serde_json::to_string_pretty(&json!({"blockdevices": devices})).unwrap_or_default()
    )
}

/// The device a path names: a mount point, `/dev/<name>` or `/dev/<name>1`.
fn device_of<'a>(guest: &'a GuestImage, target: &str) -> Option<&'a super::BlockDevice> {
    let device = guest.mounts.get(target).map_or(target, String::as_str);
    let name = device.trim_start_matches("/dev/");
    guest
        .devices
        .iter()
        .find(|d| d.name == name || format!("{}1", d.name) == name)
}

fn xfs_info(guest: &GuestImage, target: &str) -> Answer {
    match device_of(guest, target) {
        Some(device) if device.fstype.as_deref() == Some("xfs") => {
            let blocks = device.size_bytes / 4096;
            let agcount = 4;
            Answer::ok(format!(
                "meta-data=/dev/{name}1              isize=512    agcount={agcount}, agsize={agsize} blks\n         =                       sectsz=512   attr=2, projid32bit=1\n         =                       crc=1        finobt=1, sparse=1, rmapbt=0\n         =                       reflink=1    bigtime=1 inobtcount=1 nrext64=0\ndata     =                       bsize=4096   blocks={blocks}, imaxpct=25\n         =                       sunit=0      swidth=0 blks\nnaming   =version 2              bsize=4096   ascii-ci=0, ftype=1\nlog      =internal log           bsize=4096   blocks=16384, version=2\n         =                       sectsz=512   sunit=0 blks, lazy-count=1\nrealtime =none                   extsz=4096   blocks=0, rtextents=0\n",
                name = device.name,
                agsize = blocks / agcount,
            ))
        }
        Some(_) => Answer::fail(
            1,
            format!("xfs_info: {target} is not a mounted XFS filesystem\n"),
        ),
        None => Answer::fail(
            1,
            format!("xfs_info: {target}: No such file or directory\n"),
        ),
    }
}

fn mount_table(guest: &GuestImage) -> String {
    let mut table = String::from("proc on /proc type proc (rw,nosuid,nodev,noexec,relatime)\n");
    for (dir, device) in &guest.mounts {
        let fstype = device_of(guest, device)
            .and_then(|d| d.fstype.clone())
            .unwrap_or_else(|| "xfs".into());
        table.push_str(&format!(
            "{device} on {dir} type {fstype} (rw,relatime,seclabel,attr2,inode64)\n"
        ));
    }
    table
}

fn mount(guest: &mut GuestImage, device: &str, dir: &str) -> Answer {
    let Some(found) = device_of(guest, device) else {
        return Answer::fail(
            32,
            format!("mount: {dir}: special device {device} does not exist.\n"),
        );
    };
    if found.fstype.is_none() {
        return Answer::fail(
            32,
            format!("mount: {dir}: wrong fs type, bad option, bad superblock on {device}.\n"),
        );
    }
    guest.mounts.insert(dir.to_string(), device.to_string());
    Answer::ok("")
}

fn umount(guest: &mut GuestImage, target: &str) -> Answer {
    let dir = guest
        .mounts
        .iter()
        .find(|(dir, device)| *dir == target || *device == target)
        .map(|(dir, _)| dir.clone());
    match dir {
        Some(dir) if dir != "/" => {
            guest.mounts.remove(&dir);
            Answer::ok("")
        }
        Some(_) => Answer::fail(32, "umount: /: target is busy.\n"),
        None => Answer::fail(32, format!("umount: {target}: not mounted.\n")),
    }
}

fn blockdev(guest: &GuestImage, device: &str, answer: impl Fn(u64) -> String) -> Answer {
    match device_of(guest, device) {
        Some(found) => Answer::ok(answer(found.size_bytes)),
        None => Answer::fail(
            1,
            format!("blockdev: cannot open {device}: No such file or directory\n"),
        ),
    }
}

fn ipconfig_all(guest: &GuestImage) -> String {
    let mut text = format!(
        "\r\nWindows IP Configuration\r\n\r\n   Host Name . . . . . . . . . . . . : {}\r\n   Primary Dns Suffix  . . . . . . . : \r\n   Node Type . . . . . . . . . . . . : Hybrid\r\n   IP Routing Enabled. . . . . . . . : No\r\n",
        guest.hostname
    );
    for nic in &guest.nics {
        let dhcp = !nic.addresses.iter().any(|a| a.is_static);
        text.push_str(&format!(
            "\r\nEthernet adapter {}:\r\n\r\n   Connection-specific DNS Suffix  . : \r\n   Description . . . . . . . . . . . : Red Hat VirtIO Ethernet Adapter\r\n   Physical Address. . . . . . . . . : {}\r\n   DHCP Enabled. . . . . . . . . . . : {}\r\n",
            nic.name,
            nic.mac.replace(':', "-").to_ascii_uppercase(),
            if dhcp { "Yes" } else { "No" }
        ));
        for address in &nic.addresses {
            text.push_str(&format!(
                "   IPv4 Address. . . . . . . . . . . : {}(Preferred)\r\n   Subnet Mask . . . . . . . . . . . : {}\r\n",
                address.ip,
                prefix_mask(address.prefix)
            ));
        }
        let gateway = nic.addresses.iter().find_map(|a| a.gateway.clone());
        text.push_str(&format!(
            "   Default Gateway . . . . . . . . . : {}\r\n",
            gateway.unwrap_or_default()
        ));
    }
    text
}

fn prefix_mask(prefix: u8) -> String {
    let bits = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    std::net::Ipv4Addr::from(bits).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::{BlockDevice, GuestAddress, GuestNic};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn guest(os: GuestOs) -> GuestImage {
        GuestImage {
            os,
            hostname: "vm1".into(),
            nics: vec![GuestNic {
                name: "ens192".into(),
                mac: "00:50:56:a1:10:01".into(),
                addresses: vec![GuestAddress {
                    ip: "10.10.1.21".into(),
                    prefix: 24,
                    gateway: Some("10.10.1.1".into()),
                    is_static: true,
                }],
            }],
            files: BTreeMap::from([("/root/m".to_string(), "hello\n".to_string())]),
            devices: vec![
                BlockDevice {
                    name: "vda".into(),
                    size_bytes: 30 << 30,
                    fstype: Some("xfs".into()),
                    uuid: Some("u1".into()),
                    shared: false,
                },
                BlockDevice {
                    name: "vdb".into(),
                    size_bytes: 1 << 30,
                    fstype: None,
                    uuid: None,
                    shared: true,
                },
            ],
            mounts: BTreeMap::from([("/".to_string(), "/dev/vda1".to_string())]),
            sshd: true,
            host_key: Arc::new(crate::guest::sshd::new_host_key()),
        }
    }

    #[test]
    fn words_follow_shell_quoting() {
        assert_eq!(
            words("cat '/a b' \"c\\\"d\" e\\ f"),
            ["cat", "/a b", "c\"d", "e f"]
        );
        assert!(words("   ").is_empty());
    }

    #[test]
    fn files_are_read_written_and_missing_like_cat() {
        let mut g = guest(GuestOs::Linux);
        assert_eq!(run(&mut g, "cat /root/m", b"").stdout, "hello\n");
        assert_eq!(run(&mut g, "cat > /tmp/x", b"data").status, 0);
        assert_eq!(run(&mut g, "cat /tmp/x", b"").stdout, "data");
        let missing = run(&mut g, "cat /nope", b"");
        assert_eq!(missing.status, 1);
        assert!(missing.stderr.contains("No such file"));
        let unknown = run(&mut g, "frobnicate --now", b"");
        assert_eq!(unknown.status, 127);
        assert_eq!(unknown.stderr, "bash: frobnicate: command not found\n");
    }

    #[test]
    fn network_commands_show_the_interfaces() {
        let mut g = guest(GuestOs::Linux);
        let nmcli = run(&mut g, "nmcli device show", b"").stdout;
        assert!(nmcli.contains("GENERAL.HWADDR:                         00:50:56:A1:10:01"));
        assert!(nmcli.contains("IP4.ADDRESS[1]:                         10.10.1.21/24"));
        assert!(nmcli.contains("IP4.GATEWAY:                            10.10.1.1"));
        let ip: serde_json::Value =
            serde_json::from_str(&run(&mut g, "ip -j addr", b"").stdout).unwrap();
        assert_eq!(ip[1]["ifname"], "ens192");
        assert_eq!(ip[1]["addr_info"][0]["prefixlen"], 24);
        let mut w = guest(GuestOs::Windows);
        let ipconfig = run(&mut w, "ipconfig /all", b"").stdout;
        assert!(ipconfig.contains("Ethernet adapter ens192:"));
        assert!(ipconfig.contains("Physical Address. . . . . . . . . : 00-50-56-A1-10-01"));
        assert!(ipconfig.contains("Subnet Mask . . . . . . . . . . . : 255.255.255.0"));
        assert_eq!(run(&mut w, "frob", b"").status, 9009);
        assert_eq!(
            run(
                &mut w,
                "powershell -Command \"Get-Content -Path /root/m\"",
                b""
            )
            .stdout,
            "hello\n"
        );
    }

    #[test]
    fn disks_mount_and_show_their_filesystems() {
        let mut g = guest(GuestOs::Linux);
        let lsblk: serde_json::Value =
            serde_json::from_str(&run(&mut g, "lsblk -J -f", b"").stdout).unwrap();
        assert_eq!(lsblk["blockdevices"][0]["children"][0]["fstype"], "xfs");
        assert_eq!(
            lsblk["blockdevices"][0]["children"][0]["mountpoints"][0],
            "/"
        );
        assert!(run(&mut g, "xfs_info /", b"").stdout.contains("reflink=1"));
        assert_eq!(run(&mut g, "xfs_info /dev/vdb", b"").status, 1);
        assert_eq!(run(&mut g, "mount /dev/vdb /mnt", b"").status, 32);
        assert_eq!(
            run(&mut g, "blockdev --getsize64 /dev/vdb", b"").stdout,
            "1073741824\n"
        );
        assert_eq!(run(&mut g, "umount /", b"").status, 32);
        assert!(
            run(&mut g, "mount", b"")
                .stdout
                .contains("/dev/vda1 on / type xfs")
        );
        assert_eq!(run(&mut g, "sync", b"").status, 0);
        assert_eq!(run(&mut g, "hostname", b"").stdout, "vm1\n");
    }
}
