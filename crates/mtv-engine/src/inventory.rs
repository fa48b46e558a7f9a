//! The Forklift inventory service, reached through the API server's service proxy — the same path on
//! the embedded lab and on a real cluster, with the run's own credentials.
//!
//! The inventory lags behind reality (a new Provider or a fresh clone is not there at once), so lookups
//! that can be early retry until a deadline, and say what they were looking for when it passes.

use std::time::Duration;

use kube::client::Body;
use serde_json::Value;

/// The inventory Service in the MTV namespace.
pub const INVENTORY_SERVICE: &str = "https:forklift-inventory:8443";

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("inventory request {path}: {message}")]
    Request { path: String, message: String },
    #[error("inventory answered {status} for {path}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Status {
        path: String,
        status: u16,
        reason: Option<String>,
    },
    #[error("timed out after {}s waiting for the inventory to show {what}", waited.as_secs())]
    Timeout { what: String, waited: Duration },
}

impl InventoryError {
    /// Answers that mean "not there yet": 404 (incl. `X-Reason: ProviderNotFound`) and 206 Partial.
    pub fn is_transient(&self) -> bool {
        matches!(self, InventoryError::Status { status, .. } if *status == 404 || *status == 206)
    }
}

#[derive(Clone)]
pub struct Inventory {
    client: kube::Client,
    base: String,
}

impl Inventory {
    pub fn new(client: kube::Client, mtv_namespace: &str) -> Self {
        Inventory {
            client,
            base: format!("/api/v1/namespaces/{mtv_namespace}/services/{INVENTORY_SERVICE}/proxy"),
        }
    }

    /// GET a path of the inventory (`/providers/vsphere/...`).
    pub async fn get(&self, path: &str) -> Result<Value, InventoryError> {
        let full = format!("{}{path}", self.base);
        let request = http::Request::builder()
            .method(http::Method::GET)
            .uri(&full)
            .header(http::header::ACCEPT, "application/json")
            .body(Body::from(Vec::new()))
            .map_err(|e| InventoryError::Request {
                path: path.to_string(),
                message: e.to_string(),
            })?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| InventoryError::Request {
                path: path.to_string(),
                message: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let reason = response
            .headers()
            .get("X-Reason")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes =
            response
                .into_body()
                .collect_bytes()
                .await
                .map_err(|e| InventoryError::Request {
                    path: path.to_string(),
                    message: e.to_string(),
                })?;
        if status != 200 {
            return Err(InventoryError::Status {
                path: path.to_string(),
                status,
                reason,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| InventoryError::Request {
            path: path.to_string(),
            message: format!("not JSON: {e}"),
        })
    }

    /// Retries `lookup` while the inventory answers "not yet" (transient status, or `Ok(None)`).
    pub async fn wait_for<T, F>(
        &self,
        what: &str,
        timeout: Duration,
        mut lookup: impl FnMut(Inventory) -> F,
    ) -> Result<T, InventoryError>
    where
        F: std::future::Future<Output = Result<Option<T>, InventoryError>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pause = Duration::from_millis(100);
        loop {
            match lookup(self.clone()).await {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(error) if error.is_transient() => {}
                Err(error) => return Err(error),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(InventoryError::Timeout {
                    what: what.to_string(),
                    waited: timeout,
                });
            }
            // The inventory has no watch through the proxy; back off from 100 ms to 2 s.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// The inventory id (the Provider's uid) of a Provider CR, once the inventory knows it.
    pub async fn provider_uid(
        &self,
        provider_type: &str,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<String, InventoryError> {
        let what = format!("{provider_type} provider {namespace}/{name}");
        self.wait_for(&what, timeout, |inventory| async move {
            let list = inventory
                .get(&format!("/providers/{provider_type}"))
                .await?;
            Ok(list.as_array().and_then(|items| {
                items
                    .iter()
                    .find(|p| p["name"] == name && p["namespace"] == namespace)
                    .and_then(|p| p["uid"].as_str().or_else(|| p["id"].as_str()))
                    .map(str::to_string)
            }))
        })
        .await
    }

    /// The inventory VM named `name` of a provider, once it is there.
    pub async fn vm_by_name(
        &self,
        provider_type: &str,
        provider_uid: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<Value, InventoryError> {
        let what = format!("VM `{name}`");
        self.wait_for(&what, timeout, |inventory| async move {
            let list = inventory
                .get(&format!(
                    "/providers/{provider_type}/{provider_uid}/vms?name={}&detail=4",
                    query(name)
                ))
                .await?;
            Ok(list
                .as_array()
                .and_then(|vms| vms.iter().find(|vm| vm["name"] == name).cloned()))
        })
        .await
    }

    /// A provider collection (`networks`, `datastores`, ...), full detail.
    pub async fn collection(
        &self,
        provider_type: &str,
        provider_uid: &str,
        collection: &str,
    ) -> Result<Vec<Value>, InventoryError> {
        let value = self
            .get(&format!(
                "/providers/{provider_type}/{provider_uid}/{collection}?detail=4"
            ))
            .await?;
        Ok(value.as_array().cloned().unwrap_or_default())
    }
}

/// Percent-encodes a query value (`/` kept: vSphere names may be paths).
pub fn query(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
