//! The lab's oVirt engine API driven by oVirt's official SDK from PyPI (ovirt-engine-sdk-python) over
//! HTTPS with a certificate from the lab's CA: SSO login, wrong password and unknown CA refused, a VM
//! made from a template, its NICs, disks and snapshots, power and the power events, the engine's JSON,
//! deletion; and every change shows in the lab's Forklift inventory, which reads the same source model.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use mtv_lab::auth::Auth;
use mtv_lab::inventory::{InventoryOptions, inventory_router, seed_inventory_service};
use mtv_lab::registry;
use mtv_lab::source::SourceLab;
use mtv_lab::source::ovirt::{EngineCa, router};
use mtv_lab::store::Store;
use mtv_lab::tls::LabTls;
use serde_json::{Value, json};
use tower::ServiceExt;

const NS: &str = "openshift-mtv";
const ADMIN: &str = "admin-token";
const LAB_URL: &str = "https://engine.lab.mtv-tests.internal/ovirt-engine/api";
const USER: &str = "admin@internal";
const PASSWORD: &str = "lab-password";

/// The built-in lab's oVirt engine on a loopback HTTPS port, and its Forklift inventory.
struct Engine {
    url: String,
    ca_file: std::path::PathBuf,
    wrong_ca_file: std::path::PathBuf,
    inventory: axum::Router,
    provider_uid: String,
}

impl Engine {
    async fn start() -> Engine {
        let source = SourceLab::builtin();
        let tls = LabTls::generate().unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let app = router(source.clone(), "ovirt".into())
            .layer(axum::Extension(EngineCa(tls.ca_pem().to_string())));
        let listener = tls.listener(tcp).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = std::env::temp_dir();
        let suffix = mtv_lab::random::name_suffix(8);
        let ca_file = dir.join(format!("mtv-ovirt-ca-{suffix}.pem"));
        std::fs::write(&ca_file, tls.ca_pem()).unwrap();
        let wrong_ca_file = dir.join(format!("mtv-ovirt-wrong-ca-{suffix}.pem"));
        std::fs::write(&wrong_ca_file, LabTls::generate().unwrap().ca_pem()).unwrap();
        let (inventory, provider_uid) = inventory_of(&source);
        Engine {
            url: format!("https://127.0.0.1:{port}/ovirt-engine/api"),
            ca_file,
            wrong_ca_file,
            inventory,
            provider_uid,
        }
    }

    /// GET on the Forklift inventory: the status and the JSON body.
    async fn inventory(&self, path: &str) -> (StatusCode, Value) {
        let uri = format!("/providers/ovirt/{}{path}", self.provider_uid);
        let request = Request::builder()
            .uri(uri)
            .header("authorization", format!("Bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap();
        let response = self.inventory.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Runs a script of `ovirt_python/` with `args`; its stdout.
    async fn python(&self, script: &'static str, args: Vec<String>) -> String {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            mtv_test_peers::run_python_ok(script, &args, &[])
        })
        .await
        .unwrap()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
        let _ = std::fs::remove_file(&self.wrong_ca_file);
    }
}

/// The lab's Forklift inventory over `source`, with a Provider for its oVirt engine; its uid.
fn inventory_of(source: &SourceLab) -> (axum::Router, String) {
    let store = Store::default();
    seed_inventory_service(&store).unwrap();
    let auth = Auth::new(store.clone(), ADMIN, "");
    let options = InventoryOptions {
        auth: Some(auth),
        provider_sync_delay: Duration::ZERO,
        ..InventoryOptions::default()
    };
    let inventory = inventory_router(store.clone(), source.clone(), options);
    let encode = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    store
        .create(
            &registry::SECRET,
            Some(NS),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ovirt-secret"},
                   "data": {"url": encode(LAB_URL), "user": encode(USER), "password": encode(PASSWORD)}}),
        )
        .unwrap();
    let provider = store
        .create(
            &registry::PROVIDER,
            Some(NS),
            json!({"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Provider",
                   "metadata": {"name": "ovirt"},
                   "spec": {"type": "ovirt", "url": LAB_URL,
                            "secret": {"name": "ovirt-secret", "namespace": NS}}}),
        )
        .unwrap();
    let uid = provider["metadata"]["uid"].as_str().unwrap().to_string();
    (inventory, uid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdk_creates_powers_and_deletes_a_vm_that_the_inventory_sees() {
    if mtv_test_peers::skipped("ovirt_sdk") {
        return;
    }
    let engine = Engine::start().await;
    let name = format!("sdk-{}", mtv_lab::random::name_suffix(6));
    let args = [
        engine.url.clone(),
        engine.ca_file.display().to_string(),
        engine.wrong_ca_file.display().to_string(),
        USER.into(),
        PASSWORD.into(),
        "mtv-tests-rhel8".into(),
        name.clone(),
    ];
    let out = engine
        .python(include_str!("ovirt_python/lifecycle.py"), args.to_vec())
        .await;
    assert!(out.contains("wrong password refused"), "{out}");
    assert!(out.contains("unknown CA refused"), "{out}");
    let made: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let id = made["id"].as_str().unwrap();

    // The inventory lists the VM the SDK made, with its MACs, disks and power state.
    let (status, vms) = engine.inventory("/vms").await;
    assert_eq!(status, StatusCode::OK, "{vms}");
    assert!(
        vms.as_array().unwrap().iter().any(|vm| vm["id"] == id),
        "{vms}"
    );
    let (_, vm) = engine.inventory(&format!("/vms/{id}")).await;
    assert_eq!(vm["name"], name.as_str());
    assert_eq!(vm["status"], "down");
    let macs: Vec<&str> = vm["nics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["mac"].as_str().unwrap())
        .collect();
    let sdk_macs: Vec<&str> = made["nics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(macs, sdk_macs);
    assert_eq!(
        vm["diskAttachments"].as_array().unwrap().len() as u64,
        made["disks"].as_u64().unwrap()
    );

    let delete = [
        engine.url.clone(),
        engine.ca_file.display().to_string(),
        USER.into(),
        PASSWORD.into(),
        name.clone(),
    ];
    let out = engine
        .python(include_str!("ovirt_python/delete.py"), delete.to_vec())
        .await;
    assert!(out.contains(&format!("deleted {id}")), "{out}");
    let (status, _) = engine.inventory(&format!("/vms/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// One request to the engine's router, without TLS: the status, content type and body.
async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, String, String) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        content_type,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test]
async fn the_engine_answers_faults_and_refusals_as_the_engine_does() {
    let source = SourceLab::builtin();
    let app = router(source.clone(), "ovirt".into());
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let json_auth = [
        ("authorization", basic.as_str()),
        ("accept", "application/json"),
        ("content-type", "application/json"),
    ];
    // No credentials, a wrong bearer token: 401 with the engine's challenge.
    let (status, _, _) = call(&app, "GET", "/ovirt-engine/api/vms", &[], "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let bearer = [("authorization", "Bearer forged")];
    let (status, _, _) = call(&app, "GET", "/ovirt-engine/api/vms", &bearer, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // SSO: a token for the right password, access_denied for a wrong one.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (status, _, body) = call(
        &app,
        "POST",
        "/ovirt-engine/sso/oauth/token",
        &form,
        "grant_type=password&scope=ovirt-app-api&username=admin%40internal&password=nope",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("access_denied"), "{body}");
    let (status, _, body) = call(
        &app,
        "POST",
        "/ovirt-engine/sso/oauth/token",
        &form,
        "grant_type=password&scope=ovirt-app-api&username=admin%40internal&password=lab-password",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let (status, content_type, body) = call(
        &app,
        "GET",
        "/ovirt-engine/api/datacenters",
        &[("authorization", bearer.as_str())],
        "",
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "application/xml")
    );
    assert!(
        body.contains("<name>MTV-CNV</name>") && body.contains("<status>up</status>"),
        "{body}"
    );

    // Faults in the client's format: an unknown VM, a search field the engine does not know, a VM
    // that is already running, a template in place of a VM.
    let (status, content_type, body) =
        call(&app, "GET", "/ovirt-engine/api/vms/nope", &json_auth, "").await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::NOT_FOUND, "application/json")
    );
    let fault: Value = serde_json::from_str(&body).unwrap();
    assert!(fault["detail"].as_str().unwrap().contains("nope"), "{body}");
    let (status, _, _) = call(
        &app,
        "GET",
        "/ovirt-engine/api/templates?search=colour%3Dred",
        &json_auth,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let template = "3e5c7a90-1b2d-4f6e-8a0c-2d4f6a8c0e01";
    let (status, _, _) = call(
        &app,
        "GET",
        &format!("/ovirt-engine/api/vms/{template}"),
        &json_auth,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = call(
        &app,
        "POST",
        "/ovirt-engine/api/vms",
        &json_auth,
        &json!({"name": "bad name!", "template": {"id": template}}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, body) = call(
        &app,
        "POST",
        "/ovirt-engine/api/vms",
        &json_auth,
        &json!({"name": "json-vm", "template": {"name": "mtv-tests-rhel8"}}).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let start = format!("/ovirt-engine/api/vms/{id}/start");
    let (status, _, _) = call(&app, "POST", &start, &json_auth, "{}").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = call(&app, "POST", &start, &json_auth, "{}").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("VM is running"), "{body}");
    let (status, _, body) = call(
        &app,
        "DELETE",
        &format!("/ovirt-engine/api/vms/{id}"),
        &json_auth,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        source.vm("ovirt", &id).unwrap().power_state,
        mtv_lab::source::PowerState::On
    );

    // The CA is served only when the engine was given one.
    let (status, _, _) = call(
        &app,
        "GET",
        "/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA",
        &[],
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
