//! The lab's OpenStack APIs driven by the official openstacksdk from PyPI, over HTTPS with a
//! certificate from the lab's CA: authenticate (and be refused with a wrong password), find a server,
//! snapshot its volume, create a volume from the snapshot, boot a server from it, stop and start it,
//! snapshot it through Nova, delete everything; the Forklift inventory sees the server come and go.
//! The scripts live in `openstack_python/`.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use mtv_lab::inventory::{InventoryOptions, inventory_router, seed_inventory_service};
use mtv_lab::registry;
use mtv_lab::source::SourceLab;
use mtv_lab::store::Store;
use mtv_lab::tls::LabTls;
use serde_json::{Value, json};
use tower::ServiceExt;

const NS: &str = "openshift-mtv";

/// The OpenStack router of the built-in lab's `openstack` provider, served over TLS on a free port.
struct Served {
    auth_url: String,
    cacert: std::path::PathBuf,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_file(&self.cacert);
    }
}

async fn serve(lab: &SourceLab) -> Served {
    let tls = LabTls::generate().unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = tls.listener(tcp).unwrap();
    let router = mtv_lab::source::openstack::router(lab.clone(), "openstack".to_string());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let cacert = std::env::temp_dir().join(format!(
        "mtv-lab-openstack-{}.pem",
        mtv_lab::random::name_suffix(10)
    ));
    std::fs::write(&cacert, tls.ca_pem()).unwrap();
    Served {
        auth_url: format!("https://127.0.0.1:{port}/v3"),
        cacert,
        server,
    }
}

/// The Forklift inventory over the same source model, with an OpenStack Provider reaching it.
struct Inventory {
    router: axum::Router,
    uid: String,
}

impl Inventory {
    fn new(lab: &SourceLab) -> Inventory {
        let store = Store::default();
        seed_inventory_service(&store).unwrap();
        let options = InventoryOptions {
            provider_sync_delay: Duration::ZERO,
            auth_required: false,
            auth: None,
        };
        let router = inventory_router(store.clone(), lab.clone(), options);
        let url = lab.provider("openstack").unwrap().url;
        let secret = |v: &str| base64_encode(v);
        store
            .create(
                &registry::SECRET,
                Some(NS),
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "os"},
                       "data": {"url": secret(&url), "username": secret("admin"), "password": secret("lab-password")}}),
            )
            .unwrap();
        let created = store
            .create(
                &registry::PROVIDER,
                Some(NS),
                json!({"apiVersion": "forklift.konveyor.io/v1beta1", "kind": "Provider",
                       "metadata": {"name": "os"},
                       "spec": {"type": "openstack", "url": url, "secret": {"name": "os", "namespace": NS}}}),
            )
            .unwrap();
        Inventory {
            router,
            uid: created["metadata"]["uid"].as_str().unwrap().to_string(),
        }
    }

    /// The inventory's VM of that id, or None on 404.
    async fn vm(&self, id: &str) -> Option<Value> {
        let uri = format!("/providers/openstack/{}/vms/{id}", self.uid);
        let response = self
            .router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        match status {
            StatusCode::OK => Some(serde_json::from_slice(&bytes).unwrap()),
            StatusCode::NOT_FOUND => None,
            other => panic!(
                "inventory answered {other}: {}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Runs a script of `openstack_python/` on a blocking thread (the lab serves on the others).
async fn python(script: &'static str, args: Vec<String>) -> String {
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // The scripts import what they share (`lab_cloud`) from their folder.
        let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openstack_python");
        mtv_test_peers::run_python_ok(script, &args, &[("PYTHONPATH", shared)])
    })
    .await;
    match out {
        Ok(out) => out,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openstacksdk_clones_a_server_from_volume_snapshots_and_the_inventory_sees_it() {
    let lab = SourceLab::builtin();
    let served = serve(&lab).await;
    let inventory = Inventory::new(&lab);
    let common = vec![served.auth_url.clone(), served.cacert.display().to_string()];

    let out = python(
        include_str!("openstack_python/sdk_clone.py"),
        common.clone(),
    )
    .await;
    let made: Value = serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {out}"));
    let server = made["server"].as_str().unwrap();

    // The clone is in the one model the Forklift inventory reads: stopped, on the new volume.
    let vm = inventory
        .vm(server)
        .await
        .expect("the inventory has the clone");
    assert_eq!(vm["name"], "sdk-clone");
    assert_eq!(vm["status"], "SHUTOFF");
    assert_eq!(vm["attachedVolumes"], json!([{"ID": made["volume"]}]));
    let model = lab.vm("openstack", server).unwrap();
    let macs: Vec<&str> = model.nics.iter().map(|n| n.mac.as_str()).collect();
    assert_eq!(json!(macs), made["macs"]);
    // It boots the source's guest, with the source's flavor.
    let source = lab
        .vms_named("openstack", "mtv-tests-rhel8")
        .unwrap()
        .remove(0);
    assert_eq!(model.guest_os, source.guest_os);
    assert_eq!(model.flavor, source.flavor);
    assert_eq!(
        (model.cpu_sockets * model.cores_per_socket, model.memory_mib),
        (2, 4096)
    );

    let mut args = common;
    args.push(server.to_string());
    args.push(made["snapshot"].as_str().unwrap().to_string());
    let out = python(include_str!("openstack_python/sdk_cleanup.py"), args).await;
    assert!(out.contains("cleanup ok"), "{out}");

    assert_eq!(
        inventory.vm(server).await,
        None,
        "the clone left the inventory"
    );
    let spec = lab.provider("openstack").unwrap();
    assert!(
        spec.openstack.volumes.is_empty(),
        "{:?}",
        spec.openstack.volumes
    );
    assert!(
        spec.openstack.snapshots.is_empty(),
        "{:?}",
        spec.openstack.snapshots
    );
    assert!(
        spec.openstack.images.is_empty(),
        "{:?}",
        spec.openstack.images
    );
    // The source is untouched.
    assert_eq!(lab.vm("openstack", &source.id).unwrap(), source);
}

/// One request to a router, as a client on `host` would send it; the status and JSON answer.
async fn send(
    router: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "os.example:13000");
    if let Some(token) = token {
        request = request.header("x-auth-token", token);
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn password_auth(password: &str, project: Value) -> Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": project},
    }})
}

#[tokio::test]
async fn the_catalog_points_back_at_the_mount_point_and_services_want_a_token() {
    let lab = SourceLab::builtin();
    let router = axum::Router::new().nest(
        "/sources/openstack",
        mtv_lab::source::openstack::router(lab.clone(), "openstack".to_string()),
    );
    let project = lab.provider("openstack").unwrap().project.unwrap();

    // Scoped by project name in the Default domain, or by project id.
    let (status, headers, token) = send(
        &router,
        "POST",
        "/sources/openstack/v3/auth/tokens",
        None,
        Some(password_auth(
            "lab-password",
            json!({"name": "admin", "domain": {"id": "default"}}),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let subject = headers["x-subject-token"].to_str().unwrap().to_string();
    assert_eq!(token["token"]["project"]["id"], project.as_str());
    let compute = token["token"]["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "compute")
        .unwrap();
    assert_eq!(
        compute["endpoints"][0]["url"],
        "https://os.example:13000/sources/openstack/compute/v2.1"
    );
    assert_eq!(compute["endpoints"][0]["region_id"], "regionOne");
    let (status, _, _) = send(
        &router,
        "POST",
        "/sources/openstack/v3/auth/tokens",
        None,
        Some(password_auth("lab-password", json!({"id": project}))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // The user by the id Keystone gave it.
    let mut by_id = password_auth("lab-password", json!({"id": project}));
    by_id["auth"]["identity"]["password"]["user"] =
        json!({"id": token["token"]["user"]["id"], "password": "lab-password"});
    let (status, _, _) = send(
        &router,
        "POST",
        "/sources/openstack/v3/auth/tokens",
        None,
        Some(by_id),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // A wrong password or an unknown project: 401.
    for (password, scope) in [
        (
            "wrong",
            json!({"name": "admin", "domain": {"id": "default"}}),
        ),
        (
            "lab-password",
            json!({"name": "other", "domain": {"id": "default"}}),
        ),
    ] {
        let (status, _, body) = send(
            &router,
            "POST",
            "/sources/openstack/v3/auth/tokens",
            None,
            Some(password_auth(password, scope)),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], 401);
    }

    // Services want the token; version documents do not.
    let servers = "/sources/openstack/compute/v2.1/servers/detail";
    let (status, _, _) = send(&router, "GET", servers, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, headers, body) = send(&router, "GET", servers, Some(&subject), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["openstack-api-version"], "compute 2.1");
    assert_eq!(body["servers"].as_array().unwrap().len(), 3);
    let (status, _, body) = send(
        &router,
        "GET",
        "/sources/openstack/compute/v2.1",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["version"]["links"][0]["href"],
        "https://os.example:13000/sources/openstack/compute/v2.1/"
    );

    // A volume with a snapshot, or attached, cannot be deleted; Cinder says why.
    let volume = &lab.vms_named("openstack", "mtv-tests-rhel8").unwrap()[0].disks[0].file;
    let path = format!("/sources/openstack/volume/v3/{project}/volumes/{volume}");
    let (status, _, body) = send(&router, "DELETE", &path, Some(&subject), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["badRequest"]["message"]
            .as_str()
            .unwrap()
            .contains("in-use"),
        "{body}"
    );
    // An unknown server is Nova's itemNotFound.
    let (status, _, body) = send(
        &router,
        "GET",
        "/sources/openstack/compute/v2.1/servers/nope",
        Some(&subject),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["itemNotFound"]["code"], 404);
}
