//! `mtv-tests port-forward VM LOCAL:REMOTE` and `mtv-tests ssh VM [-- COMMAND]`: a look inside a
//! migrated VM when a check fails, through the same port-forward and SSH code the guest checks use.

use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, ListParams};
use miette::{Report, miette};
use mtv_config::Env;
use mtv_engine::guest::{self, BootWait, GuestLogins, HostKeys};
use mtv_engine::target::{Target, client_for};
use serde_json::Value;

use crate::cli::{CommonArgs, GuestVmArgs, PortForwardArgs, SshArgs};

/// `LOCAL:REMOTE` as two ports.
pub fn parse_ports(ports: &str) -> Result<(u16, u16), String> {
    let (local, remote) = ports
        .split_once(':')
        .ok_or_else(|| format!("`{ports}` is not LOCAL:REMOTE (e.g. 2222:22)"))?;
    let port = |text: &str, what: &str| {
        text.parse::<u16>()
            .map_err(|_| format!("the {what} port `{text}` in `{ports}` is not a port number"))
    };
    let remote = port(remote, "remote")?;
    if remote == 0 {
        return Err(format!("the remote port in `{ports}` must not be 0"));
    }
    Ok((port(local, "local")?, remote))
}

/// The cluster the command goes to: these commands reach an existing VM, never a fresh lab.
async fn client(args: &GuestVmArgs) -> Result<kube::Client, Report> {
    let target = match (&args.target.kubeconfig, &args.target.context) {
        (Some(path), context) => Target::Kubeconfig {
            path: path.clone(),
            context: context.clone(),
        },
        (None, Some(context)) => Target::Context(context.clone()),
        (None, None) => {
            return Err(miette!(
                help = "pass --kubeconfig PATH (for a lab from `mtv-tests lab serve`, its kubeconfig) or --context NAME",
                "say which cluster holds {}",
                args.vm
            ));
        }
    };
    client_for(&target).await.map_err(|e| miette!("{e}"))
}

/// The VirtualMachine the arguments name: in `--namespace`, else the one namespace that has it.
async fn find_vm(client: &kube::Client, args: &GuestVmArgs) -> Result<Value, Report> {
    let resource = ApiResource {
        group: "kubevirt.io".into(),
        version: "v1".into(),
        api_version: "kubevirt.io/v1".into(),
        kind: "VirtualMachine".into(),
        plural: "virtualmachines".into(),
    };
    let api: kube::Api<DynamicObject> = match &args.namespace {
        Some(ns) => kube::Api::namespaced_with(client.clone(), ns, &resource),
        None => kube::Api::all_with(client.clone(), &resource),
    };
    let selector = format!("metadata.name={}", args.vm);
    let found = api
        .list(&ListParams::default().fields(&selector))
        .await
        .map_err(|e| miette!("listing VirtualMachines named {}: {e}", args.vm))?;
    let vms: Vec<Value> = found
        .items
        .into_iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect();
    match vms.as_slice() {
        [vm] => Ok(vm.clone()),
        [] => Err(miette!(
            help = "`kubectl get vm -A` lists them; pass --namespace when it is elsewhere",
            "no VirtualMachine {}{}",
            args.vm,
            args.namespace
                .as_deref()
                .map(|ns| format!(" in {ns}"))
                .unwrap_or_default()
        )),
        several => {
            let namespaces: Vec<&str> = several
                .iter()
                .filter_map(|vm| vm.pointer("/metadata/namespace").and_then(Value::as_str))
                .collect();
            Err(miette!(
                help = "pass --namespace NAME",
                "VirtualMachines named {} are in several namespaces: {}",
                args.vm,
                namespaces.join(", ")
            ))
        }
    }
}

fn namespace_of(vm: &Value) -> String {
    vm.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Listens on `LOCAL` and forwards every connection to `REMOTE` of the VM's VMI until Ctrl-C.
pub async fn port_forward_command(args: PortForwardArgs) -> Result<u8, Report> {
    let (local, remote) = parse_ports(&args.ports).map_err(|e| miette!("{e}"))?;
    let client = client(&args.guest).await?;
    let vm = find_vm(&client, &args.guest).await?;
    let namespace = namespace_of(&vm);
    let name = args.guest.vm.clone();
    let listener = tokio::net::TcpListener::bind((args.address, local))
        .await
        .map_err(|e| miette!("cannot listen on {}:{local}: {e}", args.address))?;
    let bound = listener
        .local_addr()
        .map_err(|e| miette!("cannot read the local address: {e}"))?;
    // kubectl's words, so scripts that wait for this line work with both.
    println!("Forwarding from {bound} -> {remote}");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((mut connection, _)) = accepted else { continue };
                let (client, namespace, name) = (client.clone(), namespace.clone(), name.clone());
                tokio::spawn(async move {
                    match guest::portforward::open(&client, &namespace, &name, remote).await {
                        Ok(mut stream) => {
                            let _ = tokio::io::copy_bidirectional(&mut connection, &mut stream).await;
                        }
                        Err(error) => eprintln!("port-forward: {error}"),
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => return Ok(0),
        }
    }
}

/// The guest account for the VM: the profile's for its OS, with `--user`/`--identity` applied.
fn login_for(
    args: &SshArgs,
    env: &dyn Env,
    cwd: &std::path::Path,
    os: guest::GuestOs,
) -> Result<guest::Login, Report> {
    let common = CommonArgs {
        source_provider: args.source_provider.clone(),
        providers_file: args.providers_file.clone(),
        ..CommonArgs::default()
    };
    let (settings, _) = crate::front::load_settings(&common, env)?;
    let providers = crate::front::load_providers(&common, env, cwd)?;
    let config = mtv_config::resolve_run_config(settings, providers).map_err(Report::new)?;
    let logins = GuestLogins::from_profile(&config.profile);
    let mut login = logins.for_os(os).cloned().unwrap_or_default();
    if let Some(user) = &args.user {
        login.user = user.clone();
    }
    login.key = args.identity.clone();
    if login.user.is_empty() {
        return Err(miette!(
            help = "set guest_vm_linux_user/guest_vm_win_user in the profile, or pass --user",
            "{}",
            guest::GuestError::NoLogin { os }
        ));
    }
    Ok(login)
}

/// Logs into the VM's guest and runs the command (or a shell); exits with the command's status.
pub async fn ssh_command(
    args: SshArgs,
    env: &dyn Env,
    cwd: &std::path::Path,
) -> Result<u8, Report> {
    let client = client(&args.guest).await?;
    let vm = find_vm(&client, &args.guest).await?;
    let namespace = namespace_of(&vm);
    let os = guest::guest_os(&vm, None);
    let login = login_for(&args, env, cwd, os)?;
    let wait = BootWait {
        attempts: 3,
        pause: Duration::from_secs(2),
    };
    let shell = guest::login(
        &client,
        &namespace,
        &args.guest.vm,
        &login,
        &HostKeys::default(),
        wait,
    )
    .await
    .map_err(|e| miette!("{e}"))?;
    let status = if args.command.is_empty() {
        shell
            .shell(tokio::io::stdin(), tokio::io::stdout())
            .await
            .map_err(|e| miette!("{e}"))?
    } else {
        let command = args.command.join(" ");
        let output = shell.run(&command).await.map_err(|e| miette!("{e}"))?;
        print!("{}", output.stdout);
        eprint!("{}", output.stderr);
        output.exit_status
    };
    shell.close().await;
    // A status past 255 (Windows' 9009) still reads as a failure.
    Ok(status.map_or(255, |s| u8::try_from(s).unwrap_or(255)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_read_as_local_and_remote() {
        assert_eq!(parse_ports("2222:22"), Ok((2222, 22)));
        assert_eq!(parse_ports("0:22"), Ok((0, 22)));
        assert!(parse_ports("22").unwrap_err().contains("LOCAL:REMOTE"));
        assert!(parse_ports("a:22").unwrap_err().contains("local port `a`"));
        assert!(parse_ports("1:0").unwrap_err().contains("must not be 0"));
    }
}
