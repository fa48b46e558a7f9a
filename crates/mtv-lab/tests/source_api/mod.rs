//! A client for the lab source API in tests: one request through the router, in process.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use mtv_lab::source::{SourceLab, source_router};
use serde_json::Value;
use tower::ServiceExt;

/// Sends one request to the lab source API; the answer's status and JSON body (null when empty).
pub async fn call(
    lab: &SourceLab,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(match body {
            Some(b) => Body::from(b.to_string()),
            None => Body::empty(),
        })
        .unwrap();
    let response = source_router(lab.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, value)
}

/// POSTs `body` as JSON to the lab source API; the answer's status and JSON body.
pub async fn post(lab: &SourceLab, uri: &str, body: Value) -> (StatusCode, Value) {
    call(lab, "POST", uri, Some(body)).await
}

/// The id of the (first) vSphere VM or template named `name`.
pub fn vsphere_vm_id(lab: &SourceLab, name: &str) -> String {
    lab.vms_named("vsphere", name).unwrap()[0].id.clone()
}
