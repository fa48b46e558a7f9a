//! The SSH daemon of the lab's guests (russh) and KubeVirt's `portforward` subresource that reaches it:
//! `GET /apis/subresources.kubevirt.io/v1/namespaces/NS/virtualmachineinstances/NAME/portforward/PORT[/tcp]`
//! upgrades to a WebSocket (`plain.kubevirt.io`) whose binary messages carry the raw TCP stream, as
//! virt-api's does. Port 22 of a running VMI of a migrated VM is its guest's SSH daemon; any other port,
//! or a guest whose daemon is off, closes the stream at once (a refused connection).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use russh::keys::PrivateKey;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::server::{Auth, Msg, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{GuestImage, GuestImages, shell};
use crate::error::ApiError;
use crate::registry;
use crate::store::Store;

/// The subprotocol virt-api's streaming subresources speak: one channel of raw bytes.
pub const PLAIN_SUBPROTOCOL: &str = "plain.kubevirt.io";
/// The guest port the SSH daemon listens on.
pub const SSH_PORT: u16 = 22;

/// A fresh Ed25519 host key for a guest (the lab's random source: a simulated guest needs a distinct
/// key, not a secret one).
pub fn new_host_key() -> PrivateKey {
    let mut seed = [0u8; 32];
    for chunk in seed.chunks_mut(8) {
        chunk.copy_from_slice(&crate::random::next_u64().to_le_bytes());
    }
    PrivateKey::from(Ed25519Keypair::from_seed(&seed))
}

#[derive(Clone)]
struct PortForward {
    store: Store,
    guests: GuestImages,
}

/// The port-forward routes, served on the API port beside the Kubernetes API.
pub fn portforward_router(store: Store, guests: GuestImages) -> axum::Router {
    const PATH: &str = "/apis/subresources.kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances/{name}/portforward/{port}";
    axum::Router::new()
        .route(PATH, get(portforward))
        .route(
            &format!("{PATH}/{{protocol}}"),
            get(portforward_with_protocol),
        )
        .with_state(PortForward { store, guests })
}

async fn portforward_with_protocol(
    state: State<PortForward>,
    Path((namespace, name, port, protocol)): Path<(String, String, String, String)>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if protocol != "tcp" {
        return error(&ApiError::bad_request(format!(
            "protocol {protocol} is not supported; only tcp is"
        )));
    }
    portforward(state, Path((namespace, name, port)), upgrade).await
}

async fn portforward(
    State(state): State<PortForward>,
    Path((namespace, name, port)): Path<(String, String, String)>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Ok(port) = port.parse::<u16>() else {
        return error(&ApiError::bad_request(format!("invalid port {port:?}")));
    };
    let guest = match running_guest(&state, &namespace, &name) {
        Ok(guest) => guest,
        Err(e) => return error(&e),
    };
    upgrade
        .protocols([PLAIN_SUBPROTOCOL])
        .on_upgrade(move |socket| serve(socket, guest, port))
}

/// The guest behind a running VMI (`None` when no migration recorded one: nothing listens).
fn running_guest(
    state: &PortForward,
    namespace: &str,
    name: &str,
) -> Result<Option<Arc<Mutex<GuestImage>>>, ApiError> {
    let vmi = state
        .store
        .get(&registry::VIRTUAL_MACHINE_INSTANCE, Some(namespace), name)
        .map_err(|_| ApiError::not_found("kubevirt.io", "virtualmachineinstances", name))?;
    let phase = vmi
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("Pending");
    if phase != "Running" {
        // virt-api's words for a VMI that does not run.
        return Err(ApiError::bad_request(format!(
            "Unable to connect to VirtualMachineInstance because phase is {phase} instead of Running"
        )));
    }
    let vm_uid = vmi
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r["kind"] == "VirtualMachine"))
        .and_then(|r| r["uid"].as_str().map(str::to_string))
        .or_else(|| {
            state
                .store
                .get(&registry::VIRTUAL_MACHINE, Some(namespace), name)
                .ok()
                .and_then(|vm| {
                    vm.pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
        });
    Ok(vm_uid.and_then(|uid| state.guests.get(&uid)))
}

fn error(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(e.to_status())).into_response()
}

/// One forwarded connection: SSH on port 22 of a guest whose daemon runs, else closed at once.
async fn serve(socket: WebSocket, guest: Option<Arc<Mutex<GuestImage>>>, port: u16) {
    let listening = guest.filter(|g| port == SSH_PORT && lock(g).sshd);
    let Some(guest) = listening else {
        let mut socket = socket;
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    let (local, remote) = tokio::io::duplex(64 * 1024);
    tokio::spawn(pump(socket, remote));
    let host_key = lock(&guest).host_key.as_ref().clone();
    let config = Arc::new(russh::server::Config {
        keys: vec![host_key],
        inactivity_timeout: Some(Duration::from_secs(600)),
        auth_rejection_time: Duration::from_millis(200),
        auth_rejection_time_initial: Some(Duration::ZERO),
        ..Default::default()
    });
    let handler = GuestSession {
        guest,
        channels: HashMap::new(),
    };
    if let Ok(session) = russh::server::run_stream(config, local, handler).await {
        let _ = session.await;
    }
}

/// Copies between the WebSocket and the daemon's end of the stream until either side closes.
async fn pump(socket: WebSocket, mut local: DuplexStream) {
    let (mut sink, mut source) = socket.split();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = local.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let bytes = axum::body::Bytes::copy_from_slice(&buffer[..n]);
                    if sink.send(Message::Binary(bytes)).await.is_err() {
                        break;
                    }
                }
            },
            message = source.next() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    if local.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    if local.write_all(text.as_bytes()).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    let _ = local.shutdown().await;
}

fn lock(guest: &Arc<Mutex<GuestImage>>) -> std::sync::MutexGuard<'_, GuestImage> {
    guest.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a session channel is doing.
#[derive(Default)]
struct ChannelState {
    /// An `exec` waiting for the end of its input (a command that reads stdin).
    command: Option<String>,
    stdin: Vec<u8>,
    /// An interactive shell: each line is a command.
    shell: bool,
    line: Vec<u8>,
}

/// One SSH connection to a guest.
struct GuestSession {
    guest: Arc<Mutex<GuestImage>>,
    channels: HashMap<ChannelId, ChannelState>,
}

/// Whether a command reads its standard input (then it runs at the end of the input).
fn reads_stdin(command: &str) -> bool {
    let words = shell::words(command);
    matches!(words.as_slice(), [cat, redirect, _] if cat == "cat" && redirect == ">")
        || (command.to_ascii_lowercase().contains("set-content") && !command.contains("-Value"))
}

impl GuestSession {
    fn answer(&self, command: &str, stdin: &[u8]) -> shell::Answer {
        shell::run(&mut lock(&self.guest), command, stdin)
    }

    /// Sends a finished command's output and exit status, then closes the channel.
    fn finish(
        &self,
        channel: ChannelId,
        answer: shell::Answer,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        if !answer.stdout.is_empty() {
            session.data(channel, answer.stdout.into_bytes())?;
        }
        if !answer.stderr.is_empty() {
            session.extended_data(channel, 1, answer.stderr.into_bytes())?;
        }
        session.exit_status_request(channel, answer.status)?;
        session.eof(channel)?;
        session.close(channel)
    }

    /// The interactive shell's lines: each runs as a command; `exit` ends the shell.
    fn shell_input(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let mut lines = Vec::new();
        if let Some(state) = self.channels.get_mut(&channel) {
            for byte in data {
                match byte {
                    b'\r' | b'\n' => lines.push(
                        String::from_utf8_lossy(&std::mem::take(&mut state.line)).into_owned(),
                    ),
                    _ => state.line.push(*byte),
                }
            }
        }
        for line in lines {
            let line = line.trim();
            if line == "exit" || line == "logout" {
                return self.finish(channel, shell::Answer::default(), session);
            }
            let answer = self.answer(line, &[]);
            let mut text = answer.stdout + &answer.stderr;
            text.push_str(&prompt(&lock(&self.guest)));
            session.data(channel, text.replace('\n', "\r\n").into_bytes())?;
        }
        Ok(())
    }
}

fn prompt(guest: &GuestImage) -> String {
    match guest.os {
        super::GuestOs::Linux => format!("[{}]$ ", guest.hostname),
        super::GuestOs::Windows => "C:\\Users\\Administrator>".to_string(),
    }
}

impl russh::server::Handler for GuestSession {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(if lock(&self.guest).accepts_password(user, password) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let openssh = key.public_key.to_openssh().unwrap_or_default();
        Ok(if lock(&self.guest).accepts_key(user, &openssh) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), ChannelState::default());
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(state) = self.channels.get_mut(&channel) {
            state.shell = true;
        }
        session.channel_success(channel)?;
        let prompt = prompt(&lock(&self.guest));
        session.data(channel, prompt.into_bytes())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        let command = String::from_utf8_lossy(data).into_owned();
        if reads_stdin(&command) {
            if let Some(state) = self.channels.get_mut(&channel) {
                state.command = Some(command);
            }
            return Ok(());
        }
        let answer = self.answer(&command, &[]);
        self.finish(channel, answer, session)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let shell = self.channels.get(&channel).is_some_and(|s| s.shell);
        if shell {
            return self.shell_input(channel, data, session);
        }
        if let Some(state) = self.channels.get_mut(&channel) {
            state.stdin.extend_from_slice(data);
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(state) = self.channels.get_mut(&channel) else {
            return Ok(());
        };
        if let Some(command) = state.command.take() {
            let stdin = std::mem::take(&mut state.stdin);
            let answer = self.answer(&command, &stdin);
            return self.finish(channel, answer, session);
        }
        if state.shell {
            return self.finish(channel, shell::Answer::default(), session);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_that_read_input_wait_for_its_end() {
        assert!(reads_stdin("cat > /root/marker"));
        assert!(reads_stdin("cat > '/root/a b'"));
        assert!(!reads_stdin("cat /root/marker"));
        assert!(!reads_stdin("nmcli device show"));
        assert!(reads_stdin(
            "powershell -Command \"Set-Content -Path C:\\m\""
        ));
        assert!(!reads_stdin(
            "powershell -Command \"Set-Content -Path C:\\m -Value x\""
        ));
    }

    #[test]
    fn every_guest_gets_its_own_host_key() {
        let a = new_host_key();
        let b = new_host_key();
        assert_ne!(
            a.public_key().to_openssh().unwrap(),
            b.public_key().to_openssh().unwrap()
        );
    }
}
