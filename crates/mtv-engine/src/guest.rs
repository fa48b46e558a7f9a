//! Into a migrated VM's guest, as the Python suite goes (`virtctl port-forward` and SSH): a stream to
//! the VMI's port 22 through KubeVirt's port-forward subresource ([`portforward`]), an SSH login with
//! the profile's guest account for the VM's OS ([`ssh`]), retried while the guest boots. The same code
//! reaches the lab's simulated guests and a real cluster's VMs.

pub mod portforward;
pub mod ssh;

use std::time::Duration;

use mtv_config::Secret;
use serde_json::Value;

pub use ssh::{CommandOutput, GuestShell, HostKeys, Login, SshError};

/// The guest's SSH port.
pub const SSH_PORT: u16 = 22;

/// The operating-system family of a guest, which picks its account and its commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestOs {
    Linux,
    Windows,
}

/// The profile's guest accounts (`guest_vm_linux_user`/`_password`, `guest_vm_win_user`/`_password`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestLogins {
    pub linux: Option<Login>,
    pub windows: Option<Login>,
}

impl GuestLogins {
    /// The accounts a profile names; a user without a password is kept (a key may be added later).
    pub fn from_profile(profile: &mtv_config::ProviderProfile) -> Self {
        let login = |user: &str, password: &str| {
            profile.field_str(user).map(|u| Login {
                user: u.to_string(),
                password: profile
                    .field_secret(password)
                    .cloned()
                    .or_else(|| profile.field_str(password).map(Secret::new)),
                key: None,
            })
        };
        GuestLogins {
            linux: login("guest_vm_linux_user", "guest_vm_linux_password"),
            windows: login("guest_vm_win_user", "guest_vm_win_password"),
        }
    }

    /// Whether the profile names any guest account.
    pub fn any(&self) -> bool {
        self.linux.is_some() || self.windows.is_some()
    }

    /// The account for `os`, as the Python suite picks it (`win_os`).
    pub fn for_os(&self, os: GuestOs) -> Option<&Login> {
        match os {
            GuestOs::Linux => self.linux.as_ref(),
            GuestOs::Windows => self.windows.as_ref(),
        }
    }
}

/// The OS family of a migrated VM: the OS Forklift recorded on its template (`vm.kubevirt.io/os`,
/// the source's guest id), else what the guest agent reports on the VMI.
pub fn guest_os(vm: &Value, vmi: Option<&Value>) -> GuestOs {
    let recorded = vm
        .pointer("/spec/template/metadata/annotations/vm.kubevirt.io~1os")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let reported = vmi
        .and_then(|v| v.pointer("/status/guestOSInfo/id"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let text = format!("{recorded} {reported}").to_ascii_lowercase();
    if text.contains("win") {
        GuestOs::Windows
    } else {
        GuestOs::Linux
    }
}

/// How often and how long a login is tried while the guest boots (Python: 15 s polls for 300 s).
#[derive(Debug, Clone, Copy)]
pub struct BootWait {
    pub attempts: u32,
    pub pause: Duration,
}

impl Default for BootWait {
    fn default() -> Self {
        BootWait {
            attempts: 20,
            pause: Duration::from_secs(15),
        }
    }
}

/// Why a guest could not be entered.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("no guest account for {os:?} guests in the profile (set guest_vm_{}_user and its password)", if *.os == GuestOs::Windows { "win" } else { "linux" })]
    NoLogin { os: GuestOs },
    #[error(transparent)]
    PortForward(#[from] portforward::PortForwardError),
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("{last} (after {attempts} attempts)")]
    GaveUp {
        attempts: u32,
        last: Box<GuestError>,
    },
}

/// Logs into the guest of the VMI `namespace/name` through the port-forward subresource, trying again
/// (a fresh stream each time) while the guest boots; a refused login or a changed host key ends at once.
pub async fn login(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    login: &Login,
    keys: &HostKeys,
    wait: BootWait,
) -> Result<GuestShell, GuestError> {
    let guest = format!("{namespace}/{name}");
    let attempts = wait.attempts.max(1);
    let mut last = None;
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(wait.pause).await;
        }
        let tried = async {
            let stream = portforward::open(client, namespace, name, SSH_PORT).await?;
            Ok::<_, GuestError>(GuestShell::login(stream, &guest, login, keys).await?)
        };
        match tried.await {
            Ok(shell) => return Ok(shell),
            Err(GuestError::Ssh(
                error @ (SshError::Denied { .. } | SshError::HostKeyChanged { .. }),
            )) => return Err(error.into()),
            Err(error) => last = Some(error),
        }
    }
    let last = last.unwrap_or(GuestError::NoLogin { os: GuestOs::Linux });
    Err(if attempts == 1 {
        last
    } else {
        GuestError::GaveUp {
            attempts,
            last: Box::new(last),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_os_comes_from_the_template_annotation_or_the_agent() {
        let vm = |os: &str| json!({"spec": {"template": {"metadata": {"annotations": {"vm.kubevirt.io/os": os}}}}});
        assert_eq!(
            guest_os(&vm("windows2019srv_64Guest"), None),
            GuestOs::Windows
        );
        assert_eq!(guest_os(&vm("rhel8_64Guest"), None), GuestOs::Linux);
        let vmi = json!({"status": {"guestOSInfo": {"id": "mswindows"}}});
        assert_eq!(guest_os(&json!({}), Some(&vmi)), GuestOs::Windows);
        assert_eq!(guest_os(&json!({}), None), GuestOs::Linux);
    }

    #[test]
    fn logins_follow_the_os() {
        let logins = GuestLogins {
            linux: Some(Login::password("cloud-user", Secret::new("p1"))),
            windows: Some(Login::password("Administrator", Secret::new("p2"))),
        };
        assert_eq!(
            logins.for_os(GuestOs::Windows).unwrap().user,
            "Administrator"
        );
        assert_eq!(logins.for_os(GuestOs::Linux).unwrap().user, "cloud-user");
        let none = GuestLogins::default();
        let error = GuestError::NoLogin {
            os: GuestOs::Windows,
        };
        assert!(none.for_os(GuestOs::Windows).is_none());
        assert!(error.to_string().contains("guest_vm_win_user"), "{error}");
    }
}
