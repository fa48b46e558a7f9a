//! Into a migrated VM of a served lab from outside: OpenSSH's own client (Debian `openssh-client`) logs
//! into the guest through `mtv-tests port-forward`, and `mtv-tests ssh` runs commands there with the
//! profile's guest account, exiting with the command's status and never printing the password.

mod served_lab;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use served_lab::{KillOnDrop, SANITY_COLD, ServedLab, mtv_tests, mtv_tests_command, text};

/// A migrated VM of the lab, running: the sanity cold scenario with teardown skipped, then started.
fn running_migrated_vm(lab: &ServedLab) -> (String, String) {
    lab.run_and_keep_everything(&SANITY_COLD);
    let vms = lab.kubectl_json(&["get", "virtualmachines.kubevirt.io", "-A"]);
    let vm = vms["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|vm| vm.pointer("/metadata/labels/vmID").is_some())
        .expect("a migrated VirtualMachine");
    let name = vm["metadata"]["name"].as_str().unwrap().to_string();
    let namespace = vm["metadata"]["namespace"].as_str().unwrap().to_string();
    lab.kubectl(&[
        "patch",
        "virtualmachines.kubevirt.io",
        &name,
        "-n",
        &namespace,
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"runStrategy":"Always"}}"#,
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let phase = lab
            .kubectl_command(&[
                "get",
                "virtualmachineinstances.kubevirt.io",
                &name,
                "-n",
                &namespace,
                "-o",
                "jsonpath={.status.phase}",
            ])
            .output()
            .expect("kubectl runs");
        if String::from_utf8_lossy(&phase.stdout) == "Running" {
            return (name, namespace);
        }
        assert!(Instant::now() < deadline, "the VMI of {name} never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `mtv-tests port-forward VM 0:22`, and the local port it printed.
fn port_forward(lab: &ServedLab, name: &str, namespace: &str) -> (KillOnDrop, u16) {
    let kubeconfig = lab.kubeconfig_arg();
    let mut forward = KillOnDrop::new(
        mtv_tests_command(
            lab.path(),
            &[
                "port-forward",
                name,
                "0:22",
                "-n",
                namespace,
                "--kubeconfig",
                &kubeconfig,
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mtv-tests port-forward runs"),
    );
    let mut line = String::new();
    BufReader::new(forward.take_stdout().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the first line");
    // `Forwarding from 127.0.0.1:PORT -> 22`
    let port = line
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no local port in {line:?}"));
    assert!(line.trim_end().ends_with("-> 22"), "{line}");
    (forward, port)
}

/// OpenSSH's client with the password from an askpass helper (no terminal), trusting the new host key.
fn openssh(dir: &Path, port: u16, user: &str, command: &str) -> Output {
    let askpass = dir.join("askpass.sh");
    std::fs::write(&askpass, "#!/bin/sh\necho lab-guest-password\n").unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).unwrap();
    Command::new("ssh")
        .args(["-p", &port.to_string()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg(format!("{user}@127.0.0.1"))
        .arg(command)
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", "none")
        .stdin(Stdio::null())
        .output()
        .expect("ssh runs (Debian openssh-client; scripts/install-test-deps.sh)")
}

fn ssh_available() -> bool {
    if mtv_test_peers::skipped("openssh") {
        return false;
    }
    let found = Command::new("ssh").arg("-V").output().is_ok();
    assert!(
        found,
        "ssh is missing: run scripts/install-test-deps.sh (Debian openssh-client), or set MTV_SKIP_OPENSSH_TESTS=1"
    );
    true
}

#[test]
fn openssh_logs_into_a_lab_guest_through_port_forward() {
    if !ssh_available() {
        return;
    }
    let Some(lab) = ServedLab::start("4") else {
        return;
    };
    let (name, namespace) = running_migrated_vm(&lab);
    let (_forward, port) = port_forward(&lab, &name, &namespace);
    let hostname = openssh(lab.path(), port, "cloud-user", "hostname");
    assert!(hostname.status.success(), "{}", text(&hostname));
    assert_eq!(
        String::from_utf8_lossy(&hostname.stdout),
        format!("{name}\n")
    );
    let nmcli = openssh(lab.path(), port, "cloud-user", "nmcli device show");
    let shown = String::from_utf8_lossy(&nmcli.stdout);
    assert!(
        shown.contains("GENERAL.DEVICE:                         ens192"),
        "{shown}"
    );
    let unknown = openssh(lab.path(), port, "cloud-user", "frobnicate --now");
    assert_eq!(unknown.status.code(), Some(127), "{}", text(&unknown));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("frobnicate: command not found"));
    let refused = openssh(lab.path(), port, "Administrator", "hostname");
    assert_eq!(refused.status.code(), Some(255), "{}", text(&refused));

    // `mtv-tests ssh` with the built-in profile's account for a Linux guest.
    let kubeconfig = lab.kubeconfig_arg();
    let ssh = |command: &[&str]| {
        let mut args = vec![
            "ssh",
            &name,
            "-n",
            &namespace,
            "--kubeconfig",
            &kubeconfig,
            "--",
        ];
        args.extend_from_slice(command);
        mtv_tests(lab.path(), &args)
    };
    let ran = ssh(&["hostname"]);
    assert!(ran.status.success(), "{}", text(&ran));
    assert_eq!(String::from_utf8_lossy(&ran.stdout), format!("{name}\n"));
    // Without a command: a shell, fed from standard input.
    let mut shell = mtv_tests_command(
        lab.path(),
        &["ssh", &name, "-n", &namespace, "--kubeconfig", &kubeconfig],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("mtv-tests ssh runs");
    shell
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(b"hostname\nexit\n")
        .expect("the shell reads its input");
    let session = shell.wait_with_output().expect("the shell ends");
    assert!(session.status.success(), "{}", text(&session));
    let shown = String::from_utf8_lossy(&session.stdout);
    assert!(shown.contains(&format!("[{name}]$ {name}")), "{shown}");
    let failed = ssh(&["frobnicate"]);
    assert_eq!(failed.status.code(), Some(127), "{}", text(&failed));
    assert!(!text(&failed).contains("lab-guest-password"));
    let missing = mtv_tests(
        lab.path(),
        &[
            "ssh",
            "no-such-vm",
            "--kubeconfig",
            &kubeconfig,
            "--",
            "hostname",
        ],
    );
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("no VirtualMachine no-such-vm"),
        "{}",
        text(&missing)
    );
}
