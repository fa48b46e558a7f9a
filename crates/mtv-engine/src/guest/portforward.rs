//! A TCP stream to a port of a VirtualMachineInstance through KubeVirt's `portforward` subresource
//! (what `virtctl port-forward` uses): a WebSocket with the `plain.kubevirt.io` subprotocol whose binary
//! messages carry the raw bytes, opened over the session's own authenticated kube client.

use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use kube::client::Body;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The WebSocket subprotocol of virt-api's streaming subresources: one channel, raw bytes.
pub const PLAIN_SUBPROTOCOL: &str = "plain.kubevirt.io";

/// How much the local end of a forwarded stream buffers before the writer waits.
const STREAM_BUFFER: usize = 64 * 1024;

/// Why a port could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum PortForwardError {
    #[error("port-forward to {target}: {message}")]
    Refused { target: String, message: String },
    #[error("port-forward to {target}: {source}")]
    Request {
        target: String,
        #[source]
        source: kube::Error,
    },
}

/// The subresource path for `port` of the VMI `name` in `namespace` (TCP, as virtctl asks).
pub fn portforward_path(namespace: &str, name: &str, port: u16) -> String {
    format!(
        "/apis/subresources.kubevirt.io/v1/namespaces/{namespace}/virtualmachineinstances/{name}/portforward/{port}/tcp"
    )
}

/// Opens a stream to `port` of the VMI: bytes written to the returned stream reach the guest's port,
/// bytes the guest sends can be read from it. The WebSocket is pumped by a task that ends with it.
pub async fn open(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    port: u16,
) -> Result<DuplexStream, PortForwardError> {
    let target = format!("{namespace}/{name}:{port}");
    let socket = connect(client, &portforward_path(namespace, name, port), &target).await?;
    let (local, remote) = tokio::io::duplex(STREAM_BUFFER);
    tokio::spawn(pump(socket, remote));
    Ok(local)
}

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The WebSocket handshake over the kube client (its TLS, its credentials, its retrying layer).
async fn connect(
    client: &kube::Client,
    path: &str,
    target: &str,
) -> Result<Socket, PortForwardError> {
    let refused = |message: String| PortForwardError::Refused {
        target: target.to_string(),
        message,
    };
    let key = generate_key();
    let request = http::Request::get(path)
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header(http::header::SEC_WEBSOCKET_VERSION, "13")
        .header(http::header::SEC_WEBSOCKET_KEY, &key)
        .header(http::header::SEC_WEBSOCKET_PROTOCOL, PLAIN_SUBPROTOCOL)
        .body(Body::empty())
        .map_err(|e| refused(e.to_string()))?;
    let response = client
        .send(request)
        .await
        .map_err(|source| PortForwardError::Request {
            target: target.to_string(),
            source,
        })?;
    if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        let body = response
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        return Err(refused(format!(
            "the API server answered {status}: {}",
            status_message(&body)
        )));
    }
    let headers = response.headers();
    let accepted = headers
        .get(http::header::SEC_WEBSOCKET_ACCEPT)
        .is_some_and(|v| v.as_bytes() == derive_accept_key(key.as_bytes()).as_bytes());
    if !accepted {
        return Err(refused("the WebSocket handshake was not accepted".into()));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| refused(format!("the connection did not upgrade: {e}")))?;
    Ok(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await)
}

/// A Kubernetes Status' message, else the body as text.
fn status_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

/// Copies between the WebSocket and the local stream until either side closes.
async fn pump(socket: Socket, mut local: DuplexStream) {
    let (mut sink, mut source) = socket.split();
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = local.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink.send(Message::binary(buffer[..n].to_vec())).await.is_err() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_names_the_vmi_and_the_tcp_port() {
        assert_eq!(
            portforward_path("ns1", "rhel8", 22),
            "/apis/subresources.kubevirt.io/v1/namespaces/ns1/virtualmachineinstances/rhel8/portforward/22/tcp"
        );
    }

    #[test]
    fn refusals_show_the_status_message() {
        let body = br#"{"kind":"Status","message":"VMI is not running","code":400}"#;
        assert_eq!(status_message(body), "VMI is not running");
        assert_eq!(status_message(b"plain text\n"), "plain text");
    }
}
