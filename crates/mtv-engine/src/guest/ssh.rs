//! The SSH client the guest checks share (russh): log in over any stream (a port-forward, a TCP socket)
//! with a password or a key, record each guest's host key for the session, run a command, read and
//! write a file. Passwords stay in [`mtv_config::Secret`] and never reach an error message.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mtv_config::Secret;
use russh::client;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long a command may run in the guest before the check gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// A guest account: the user, and a password or a private key file (or both: the key is tried first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: Option<Secret>,
    /// An OpenSSH private key file (unencrypted).
    pub key: Option<PathBuf>,
}

impl Login {
    pub fn password(user: impl Into<String>, password: Secret) -> Self {
        Login {
            user: user.into(),
            password: Some(password),
            key: None,
        }
    }
}

/// Why the guest could not be reached or did not answer.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("SSH to {vm}: {message}")]
    Protocol { vm: String, message: String },
    #[error("SSH to {vm}: the guest refused the login of `{user}` ({method})")]
    Denied {
        vm: String,
        user: String,
        method: &'static str,
    },
    #[error(
        "SSH to {vm}: the host key changed within this session (was {recorded}, now {offered}); refusing to log in"
    )]
    HostKeyChanged {
        vm: String,
        recorded: String,
        offered: String,
    },
    #[error("SSH to {vm}: `{command}` gave no answer within {}s", .timeout.as_secs())]
    Timeout {
        vm: String,
        command: String,
        timeout: Duration,
    },
}

/// The host keys seen in this session, per guest: the first key a guest shows is trusted (a fresh
/// migrated VM has no known key), a different key later in the session is refused.
#[derive(Debug, Clone, Default)]
pub struct HostKeys {
    seen: Arc<Mutex<BTreeMap<String, String>>>,
}

impl HostKeys {
    /// Records `fingerprint` for `guest`; `Err(recorded)` when the guest showed another key before.
    pub fn admit(&self, guest: &str, fingerprint: &str) -> Result<(), String> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(guest) {
            Some(recorded) if recorded != fingerprint => Err(recorded.clone()),
            Some(_) => Ok(()),
            None => {
                seen.insert(guest.to_string(), fingerprint.to_string());
                Ok(())
            }
        }
    }

    /// Every guest's recorded fingerprint (`SHA256:…`).
    pub fn recorded(&self) -> BTreeMap<String, String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The client side's host-key decision, remembered so a refusal can say why.
struct HostKeyCheck {
    guest: String,
    keys: HostKeys,
    changed: Arc<Mutex<Option<(String, String)>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let fingerprint = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.fingerprint(HashAlg::Sha256),
            PublicKeyOrCertificate::Certificate(cert) => {
                cert.public_key().fingerprint(HashAlg::Sha256)
            }
        }
        .to_string();
        match self.keys.admit(&self.guest, &fingerprint) {
            Ok(()) => Ok(true),
            Err(recorded) => {
                *self.changed.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((recorded, fingerprint));
                Ok(false)
            }
        }
    }
}

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandOutput {
    pub stdout: String,
    pub stderr: String,
    /// `None` when the guest closed the channel without an exit status.
    pub exit_status: Option<u32>,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.exit_status == Some(0)
    }
}

/// A logged-in SSH session to one guest.
pub struct GuestShell {
    handle: client::Handle<HostKeyCheck>,
    guest: String,
}

impl GuestShell {
    /// Logs into `guest` (a name for messages and the host-key record) over `stream`.
    pub async fn login<S>(
        stream: S,
        guest: &str,
        login: &Login,
        keys: &HostKeys,
    ) -> Result<GuestShell, SshError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let protocol = |e: russh::Error| SshError::Protocol {
            vm: guest.to_string(),
            message: e.to_string(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(Duration::from_secs(300)),
            ..Default::default()
        });
        let changed = Arc::new(Mutex::new(None));
        let check = HostKeyCheck {
            guest: guest.to_string(),
            keys: keys.clone(),
            changed: changed.clone(),
        };
        let mut handle = match client::connect_stream(config, stream, check).await {
            Ok(handle) => handle,
            Err(error) => {
                if let Some((recorded, offered)) =
                    changed.lock().unwrap_or_else(|e| e.into_inner()).take()
                {
                    return Err(SshError::HostKeyChanged {
                        vm: guest.to_string(),
                        recorded,
                        offered,
                    });
                }
                return Err(protocol(error));
            }
        };
        authenticate(&mut handle, guest, login).await?;
        Ok(GuestShell {
            handle,
            guest: guest.to_string(),
        })
    }

    /// Runs `command` (a shell command line) with `stdin` as its input.
    pub async fn run_with_input(
        &self,
        command: &str,
        stdin: &[u8],
    ) -> Result<CommandOutput, SshError> {
        let protocol = |e: russh::Error| SshError::Protocol {
            vm: self.guest.clone(),
            message: e.to_string(),
        };
        let exchange = async {
            let mut channel = self.handle.channel_open_session().await.map_err(protocol)?;
            channel.exec(true, command).await.map_err(protocol)?;
            if !stdin.is_empty() {
                channel.data(stdin).await.map_err(protocol)?;
            }
            channel.eof().await.map_err(protocol)?;
            let mut output = CommandOutput::default();
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            while let Some(message) = channel.wait().await {
                match message {
                    ChannelMsg::Data { data } => stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => {
                        output.exit_status = Some(exit_status)
                    }
                    _ => {}
                }
            }
            output.stdout = String::from_utf8_lossy(&stdout).into_owned();
            output.stderr = String::from_utf8_lossy(&stderr).into_owned();
            Ok(output)
        };
        tokio::time::timeout(COMMAND_TIMEOUT, exchange)
            .await
            .map_err(|_| SshError::Timeout {
                vm: self.guest.clone(),
                command: command.to_string(),
                timeout: COMMAND_TIMEOUT,
            })?
    }

    /// Runs `command` in the guest.
    pub async fn run(&self, command: &str) -> Result<CommandOutput, SshError> {
        self.run_with_input(command, &[]).await
    }

    /// A file of the guest: `Ok(None)` when `cat` cannot read it.
    pub async fn read_file(&self, path: &str) -> Result<Option<String>, SshError> {
        let output = self.run(&format!("cat {}", shell_quote(path))).await?;
        Ok(output.success().then_some(output.stdout))
    }

    /// Writes `content` to a file of the guest (through `cat >`, as an operator would).
    pub async fn write_file(&self, path: &str, content: &str) -> Result<(), SshError> {
        let command = format!("cat > {}", shell_quote(path));
        let output = self.run_with_input(&command, content.as_bytes()).await?;
        if output.success() {
            Ok(())
        } else {
            Err(SshError::Protocol {
                vm: self.guest.clone(),
                message: format!(
                    "writing {path} failed (exit {:?}): {}",
                    output.exit_status,
                    output.stderr.trim()
                ),
            })
        }
    }

    /// An interactive shell: `input` goes to the guest until it ends, the guest's output to `output`;
    /// the shell's exit status when it gave one.
    pub async fn shell<I, O>(&self, mut input: I, mut output: O) -> Result<Option<u32>, SshError>
    where
        I: AsyncRead + Unpin,
        O: AsyncWrite + Unpin,
    {
        let protocol = |e: russh::Error| SshError::Protocol {
            vm: self.guest.clone(),
            message: e.to_string(),
        };
        let channel = self.handle.channel_open_session().await.map_err(protocol)?;
        channel.request_shell(true).await.map_err(protocol)?;
        let (mut from_guest, to_guest) = channel.split();
        let mut buffer = vec![0u8; 8 * 1024];
        let mut input_open = true;
        let mut status = None;
        loop {
            tokio::select! {
                read = input.read(&mut buffer), if input_open => match read {
                    Ok(0) | Err(_) => {
                        input_open = false;
                        to_guest.eof().await.map_err(protocol)?;
                    }
                    Ok(n) => to_guest.data(&buffer[..n]).await.map_err(protocol)?,
                },
                message = from_guest.wait() => match message {
                    Some(ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. }) => {
                        let _ = output.write_all(&data).await;
                        let _ = output.flush().await;
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                    Some(_) => {}
                    None => break,
                },
            }
        }
        Ok(status)
    }

    /// Ends the session politely.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "done", "en")
            .await;
    }
}

/// Key first (when given), then password; the first that the guest accepts wins.
async fn authenticate(
    handle: &mut client::Handle<HostKeyCheck>,
    guest: &str,
    login: &Login,
) -> Result<(), SshError> {
    let protocol = |message: String| SshError::Protocol {
        vm: guest.to_string(),
        message,
    };
    let mut method = "no method configured";
    if let Some(path) = &login.key {
        method = "public key";
        let key = russh::keys::load_secret_key(path, None)
            .map_err(|e| protocol(format!("reading the key {}: {e}", path.display())))?;
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| protocol(e.to_string()))?
            .flatten();
        let answer = handle
            .authenticate_publickey(
                login.user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            )
            .await
            .map_err(|e| protocol(e.to_string()))?;
        if answer.success() {
            return Ok(());
        }
    }
    if let Some(password) = &login.password {
        method = "password";
        let answer = handle
            .authenticate_password(login.user.clone(), password.expose())
            .await
            .map_err(|e| protocol(e.to_string()))?;
        if answer.success() {
            return Ok(());
        }
    }
    Err(SshError::Denied {
        vm: guest.to_string(),
        user: login.user.clone(),
        method,
    })
}

/// `value` as one POSIX shell word.
pub fn shell_quote(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@%,".contains(c))
    {
        return value.to_string();
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_host_key_is_refused_within_the_session() {
        let keys = HostKeys::default();
        assert_eq!(keys.admit("ns/vm1", "SHA256:a"), Ok(()));
        assert_eq!(keys.admit("ns/vm1", "SHA256:a"), Ok(()));
        assert_eq!(keys.admit("ns/vm2", "SHA256:b"), Ok(()));
        assert_eq!(
            keys.admit("ns/vm1", "SHA256:c"),
            Err("SHA256:a".to_string())
        );
        assert_eq!(keys.recorded().len(), 2);
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("/root/marker"), "/root/marker");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn a_login_never_shows_its_password() {
        let login = Login::password("cloud-user", Secret::new("hunter2"));
        assert!(!format!("{login:?}").contains("hunter2"));
    }
}
