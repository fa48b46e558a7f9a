//! The Forklift inventory service, reached the way its users reach it on a real cluster: through the
//! OpenShift Route `forklift-inventory` in the MTV namespace (or an explicit `inventory_url`), with the
//! run's own credentials. Never through the API server's service proxy, which drops the bearer token
//! the inventory requires (Forklift's `feature_auth_required`).
//!
//! The inventory lags behind reality (a new Provider or a fresh clone is not there at once), so lookups
//! that can be early retry until a deadline, and say what they were looking for when it passes.

use std::time::Duration;

use kube::client::Body;
use serde_json::Value;

use crate::cluster::{Cluster, Kind};

/// The inventory's Route (and Service) in the MTV namespace.
pub const INVENTORY_ROUTE: &str = "forklift-inventory";

/// OpenShift's Route kind.
const ROUTE: Kind = Kind {
    group: "route.openshift.io",
    version: "v1",
    kind: "Route",
    plural: "routes",
    namespaced: true,
};

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("inventory request {path}: {message}")]
    Request { path: String, message: String },
    #[error("inventory answered {status} for {path}{}{}", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default(), status_hint(*status))]
    Status {
        path: String,
        status: u16,
        reason: Option<String>,
    },
    #[error("timed out after {}s waiting for the inventory to show {what}", waited.as_secs())]
    Timeout { what: String, waited: Duration },
    #[error(
        "cannot find the Forklift inventory: namespace {namespace} has no Route `{INVENTORY_ROUTE}` (nor \
         one labelled service=forklift-inventory){}; pass its URL with --inventory-url \
         https://<inventory host> or the setting inventory_url (the inventory is never reached through \
         the API server's service proxy, which drops the token it requires)",
        lookup_error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    NotFound {
        namespace: String,
        lookup_error: Option<String>,
    },
    #[error("cannot build a client for the inventory at {url}: {message}")]
    Client { url: String, message: String },
}

/// What a 401/403 from the inventory means for the person running the suite.
fn status_hint(status: u16) -> &'static str {
    match status {
        401 => ": the inventory got no bearer token (a service proxy in the way?)",
        403 => ": the run's token is not valid for the inventory, or may not get/list Providers",
        _ => "",
    }
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
    url: String,
}

impl Inventory {
    /// The inventory at `url` (`https://host[:port]`), reached with the credentials and trust of the
    /// run's own cluster configuration, plus the system's trusted CAs (a router's certificate is often
    /// signed by another CA than the API server's).
    pub fn at_url(config: &kube::Config, url: &str) -> Result<Inventory, InventoryError> {
        let client_error = |message: String| InventoryError::Client {
            url: url.to_string(),
            message,
        };
        let mut config = config.clone();
        config.cluster_url = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| client_error(e.to_string()))?;
        // A server name pinned for the API server's certificate is not the inventory's.
        config.tls_server_name = None;
        if let Some(roots) = config.root_cert.as_mut() {
            roots.extend(
                rustls_native_certs::load_native_certs()
                    .certs
                    .into_iter()
                    .map(|c| c.to_vec()),
            );
        }
        let client = kube::Client::try_from(config).map_err(|e| client_error(e.to_string()))?;
        Ok(Inventory {
            client,
            url: url.trim_end_matches('/').to_string(),
        })
    }

    /// The inventory of the cluster: `url` when given, else the Route `forklift-inventory` of the MTV
    /// namespace; without either, an error that says what to do.
    pub async fn discover(
        cluster: &Cluster,
        config: &kube::Config,
        mtv_namespace: &str,
        url: Option<&str>,
    ) -> Result<Inventory, InventoryError> {
        if let Some(url) = url.filter(|u| !u.trim().is_empty()) {
            return Inventory::at_url(config, url.trim());
        }
        let url = route_url(cluster, mtv_namespace).await?;
        Inventory::at_url(config, &url)
    }

    /// A client whose base URL is the inventory, with the run's credentials.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The inventory's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// GET a path of the inventory (`/providers/vsphere/...`).
    pub async fn get(&self, path: &str) -> Result<Value, InventoryError> {
        let full = path.to_string();
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

/// `https://<host>` of the inventory's Route: found by name, else by the label Forklift puts on it; the
/// host a router admitted (`status.ingress[].host`) before `spec.host`.
async fn route_url(cluster: &Cluster, namespace: &str) -> Result<String, InventoryError> {
    let not_found = |lookup_error: Option<String>| InventoryError::NotFound {
        namespace: namespace.to_string(),
        lookup_error,
    };
    let route = match cluster.get(&ROUTE, Some(namespace), INVENTORY_ROUTE).await {
        Ok(Some(route)) => route,
        Ok(None) => cluster
            .list(&ROUTE, Some(namespace), Some("service=forklift-inventory"))
            .await
            .map_err(|e| not_found(Some(e.to_string())))?
            .into_iter()
            .next()
            .ok_or_else(|| not_found(None))?,
        Err(e) => return Err(not_found(Some(e.to_string()))),
    };
    route_host(&route)
        .map(|host| format!("https://{host}"))
        .ok_or_else(|| not_found(Some("the Route has no host".into())))
}

/// The host a router admitted the Route at, else its `spec.host`.
fn route_host(route: &Value) -> Option<String> {
    let admitted = route
        .pointer("/status/ingress")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|ingress| {
            ingress["conditions"].as_array().is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c["type"] == "Admitted" && c["status"] == "True")
            })
        })
        .and_then(|ingress| ingress["host"].as_str());
    admitted
        .or_else(|| route.pointer("/spec/host").and_then(Value::as_str))
        .filter(|h| !h.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_admitted_host_wins_over_the_spec_host() {
        let route = json!({
            "spec": {"host": "inventory.apps.example.com"},
            "status": {"ingress": [
                {"host": "pending.example.com", "conditions": [{"type": "Admitted", "status": "False"}]},
                {"host": "127.0.0.1:40443", "conditions": [{"type": "Admitted", "status": "True"}]}
            ]}
        });
        assert_eq!(route_host(&route).as_deref(), Some("127.0.0.1:40443"));
        let unadmitted = json!({"spec": {"host": "inventory.apps.example.com"}});
        assert_eq!(
            route_host(&unadmitted).as_deref(),
            Some("inventory.apps.example.com")
        );
        assert_eq!(route_host(&json!({"spec": {}})), None);
    }

    #[test]
    fn the_not_found_error_says_what_to_do() {
        let message = InventoryError::NotFound {
            namespace: "openshift-mtv".into(),
            lookup_error: None,
        }
        .to_string();
        assert!(message.contains("--inventory-url"), "{message}");
        assert!(message.contains("inventory_url"), "{message}");
        assert!(message.contains("openshift-mtv"), "{message}");
    }
}
