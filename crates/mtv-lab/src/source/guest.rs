//! Files inside a simulated source guest, for what the Python suite writes and reads over Guest
//! Operations (the copy-offload data-integrity marker): a source VM keeps its files in its model, a
//! clone starts with its source's files, and a migration copies them into the migrated guest
//! ([`crate::guest::GuestImage`]), where the checks read them over SSH.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use super::SourceLab;
use super::api::{ApiResult, SourceApiError, body, provider_name};

/// The longest file the lab keeps in a guest: markers and small configuration files, not disk data.
const MAX_GUEST_FILE_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GuestFileWrite {
    path: String,
    content: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct GuestFileQuery {
    path: String,
}

fn check_path(path: &str) -> Result<(), SourceApiError> {
    if !path.starts_with('/') || path.contains('\0') {
        return Err(SourceApiError::bad_request(format!(
            "guest file path `{path}` must be absolute"
        )));
    }
    Ok(())
}

/// `POST /lab/v1/sources/{provider}/vms/{id}/files` `{path, content}`: writes a file in the guest.
pub(super) async fn write_file(
    State(lab): State<SourceLab>,
    Path((provider, id)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    let request: GuestFileWrite = body(&bytes)?;
    check_path(&request.path)?;
    if request.content.len() > MAX_GUEST_FILE_BYTES {
        return Err(SourceApiError::bad_request(format!(
            "guest file {} is {} bytes; the lab keeps files up to {MAX_GUEST_FILE_BYTES} bytes",
            request.path,
            request.content.len()
        )));
    }
    let vm = lab.vm(&name, &id)?;
    if vm.template {
        return Err(SourceApiError::bad_request(format!(
            "`{}` is a template; it has no running guest to write files in",
            vm.name
        )));
    }
    let (path, content) = (request.path.clone(), request.content.clone());
    lab.update_vm(&name, &id, move |vm| {
        vm.guest_files.insert(path, content);
    })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"path": request.path, "content": request.content})),
    )
        .into_response())
}

/// `GET /lab/v1/sources/{provider}/vms/{id}/files?path=`: reads a file of the guest.
pub(super) async fn read_file(
    State(lab): State<SourceLab>,
    Path((provider, id)): Path<(String, String)>,
    Query(query): Query<GuestFileQuery>,
) -> ApiResult {
    let name = provider_name(&lab, &provider)?;
    check_path(&query.path)?;
    let vm = lab.vm(&name, &id)?;
    match vm.guest_files.get(&query.path) {
        Some(content) => Ok(Json(json!({"path": query.path, "content": content})).into_response()),
        None => Err(SourceApiError::not_found(
            "FileNotFound",
            format!("no file {} in the guest of `{}`", query.path, vm.name),
        )),
    }
}

/// What a program run in a simulated guest did: its exit code, its standard output and the files its
/// shell redirections wrote (path, content, append).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramRun {
    pub exit_code: i32,
    pub stdout: String,
    pub writes: Vec<(String, String, bool)>,
}

/// Splits a command line into words as a shell does for the simple cases (quotes, no expansion).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// `nmcli device show` of the guest: each NIC under its guest name, with its MAC, addresses and
/// gateway, then the loopback.
pub fn nmcli_device_show(vm: &super::Vm) -> String {
    let mut out = String::new();
    let field = |out: &mut String, name: &str, value: &str| {
        out.push_str(&format!("{name:<40}{value}\n"));
    };
    for (index, nic) in vm.nics.iter().enumerate() {
        let device = nic.device.clone().unwrap_or_else(|| format!("eth{index}"));
        field(&mut out, "GENERAL.DEVICE:", &device);
        field(&mut out, "GENERAL.TYPE:", "ethernet");
        field(&mut out, "GENERAL.HWADDR:", &nic.mac.to_ascii_uppercase());
        field(&mut out, "GENERAL.MTU:", "1500");
        let connected = nic.start_connected;
        field(
            &mut out,
            "GENERAL.STATE:",
            if connected {
                "100 (connected)"
            } else {
                "30 (disconnected)"
            },
        );
        field(
            &mut out,
            "GENERAL.CONNECTION:",
            if connected { &device } else { "--" },
        );
        for (n, ip) in nic.ips.iter().filter(|ip| !ip.ip.contains(':')).enumerate() {
            field(
                &mut out,
                &format!("IP4.ADDRESS[{}]:", n + 1),
                &format!("{}/{}", ip.ip, ip.prefix),
            );
        }
        let gateway = nic.ips.iter().find_map(|ip| ip.gateway.clone());
        field(&mut out, "IP4.GATEWAY:", gateway.as_deref().unwrap_or("--"));
        for (n, ip) in nic.ips.iter().filter(|ip| ip.ip.contains(':')).enumerate() {
            field(
                &mut out,
                &format!("IP6.ADDRESS[{}]:", n + 1),
                &format!("{}/{}", ip.ip, ip.prefix),
            );
        }
        out.push('\n');
    }
    field(&mut out, "GENERAL.DEVICE:", "lo");
    field(&mut out, "GENERAL.TYPE:", "loopback");
    field(&mut out, "GENERAL.HWADDR:", "00:00:00:00:00:00");
    field(&mut out, "GENERAL.MTU:", "65536");
    field(&mut out, "GENERAL.STATE:", "100 (connected (externally))");
    field(&mut out, "GENERAL.CONNECTION:", "lo");
    field(&mut out, "IP4.ADDRESS[1]:", "127.0.0.1/8");
    field(&mut out, "IP4.GATEWAY:", "--");
    out
}

/// Runs one simple command (words already split) in the guest: exit code and standard output.
fn run_words(vm: &super::Vm, words: &[String]) -> (i32, String) {
    let Some(program) = words.first() else {
        return (0, String::new());
    };
    let name = program.rsplit('/').next().unwrap_or(program);
    let args = &words[1..];
    match name {
        // NetworkManager runs in Linux guests only; a Windows guest has no such command.
        "nmcli"
            if args.iter().any(|a| a == "show")
                && crate::guest::GuestOs::from_guest_id(&vm.guest_os)
                    != crate::guest::GuestOs::Windows =>
        {
            (0, nmcli_device_show(vm))
        }
        "cat" => {
            let mut out = String::new();
            for path in args {
                match vm.guest_files.get(path) {
                    Some(content) => out.push_str(content),
                    None => return (1, out),
                }
            }
            (0, out)
        }
        "echo" => (0, format!("{}\n", args.join(" "))),
        "hostname" => (0, format!("{}\n", vm.name)),
        "true" | "sync" => (0, String::new()),
        "false" => (1, String::new()),
        // As a shell answers a command it does not have.
        _ => (127, String::new()),
    }
}

/// Runs a program the way Guest Operations' `StartProgramInGuest` does: a shell (`/bin/bash -c
/// "…"`) runs its command line with `>`/`>>` redirections into guest files; any other program runs
/// with its arguments. The lab's guest knows `nmcli device show`, `cat`, `echo`, `hostname`, `true`,
/// `false` and `sync`; anything else exits 127 as a shell does.
pub fn run_program(vm: &super::Vm, program: &str, arguments: &str) -> ProgramRun {
    let name = program.rsplit('/').next().unwrap_or(program);
    let mut words = shell_words(arguments);
    let line_words =
        if matches!(name, "bash" | "sh") && words.first().map(String::as_str) == Some("-c") {
            shell_words(&words.drain(1..).collect::<Vec<_>>().join(" "))
        } else {
            std::iter::once(program.to_string()).chain(words).collect()
        };
    let mut command = Vec::new();
    let mut writes = Vec::new();
    let mut target: Option<(String, bool)> = None;
    let mut iter = line_words.into_iter();
    while let Some(word) = iter.next() {
        match word.as_str() {
            ">" | ">>" => {
                if let Some(path) = iter.next() {
                    target = Some((path, word == ">>"));
                }
            }
            "2>&1" | "2>/dev/null" => {}
            w if w.starts_with(">>") => target = Some((w[2..].to_string(), true)),
            w if w.starts_with('>') => target = Some((w[1..].to_string(), false)),
            _ => command.push(word),
        }
    }
    let (exit_code, stdout) = run_words(vm, &command);
    let stdout = match target {
        Some((path, append)) => {
            writes.push((path, stdout, append));
            String::new()
        }
        None => stdout,
    };
    ProgramRun {
        exit_code,
        stdout,
        writes,
    }
}

#[cfg(test)]
mod program_tests {
    use super::*;

    fn vm() -> super::super::Vm {
        let lab = super::super::SourceLab::builtin();
        lab.vms_named("vsphere", "mtv-tests-rhel8")
            .unwrap()
            .remove(0)
    }

    #[test]
    fn nmcli_output_is_redirected_into_a_guest_file() {
        let run = run_program(
            &vm(),
            "/bin/bash",
            "-c \"nmcli device show > /tmp/nmcli.txt\"",
        );
        assert_eq!(run.exit_code, 0);
        let (path, content, append) = &run.writes[0];
        assert_eq!((path.as_str(), *append), ("/tmp/nmcli.txt", false));
        assert!(
            content.contains("GENERAL.HWADDR:                         00:50:56:A1:10:01"),
            "{content}"
        );
        assert!(content.contains("IP4.ADDRESS[1]:                         10.10.1.21/24"));
        assert!(content.contains("IP4.GATEWAY:                            10.10.1.1"));
        assert!(content.contains("GENERAL.DEVICE:                         ens224"));
    }

    #[test]
    fn unknown_commands_exit_127() {
        assert_eq!(run_program(&vm(), "/usr/bin/frobnicate", "").exit_code, 127);
        assert_eq!(run_program(&vm(), "/bin/sh", "-c 'echo hi'").stdout, "hi\n");
    }
}
