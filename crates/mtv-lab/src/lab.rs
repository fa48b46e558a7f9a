//! [`LabServer`]: starts the API server on loopback (HTTPS with a CA of its own, bearer tokens, RBAC),
//! seeds the cluster an MTV installation looks like, serves the inventory's Route on a port of its own,
//! and hands out a kubeconfig (the CA and the admin token) and the store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::auth::{self, Auth};
use crate::error::{ApiError, LabError};
use crate::faults::FaultSpec;
use crate::random;
use crate::registry::{self, ResourceType};
use crate::server::{AppState, router};
use crate::store::Store;
use crate::tls::LabTls;

/// The namespace MTV runs in.
pub const MTV_NAMESPACE: &str = "openshift-mtv";

/// How long [`LabServer::create_provider`] waits for a Provider's connection verdict (the lab's
/// connection test takes well under a second at any speed).
const PROVIDER_VERDICT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start a lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Loopback port; `None` or `Some(0)` picks a free one.
    pub port: Option<u16>,
    /// The MTV version the Subscription/ClusterServiceVersion report.
    pub mtv_version: String,
    /// Time scale of simulated work: every simulated duration is divided by it.
    pub speed: f64,
    pub faults: FaultSpec,
    /// The lab file describing source inventories; the built-in default lab when absent.
    pub lab_file: Option<PathBuf>,
    /// How many events the watch history keeps (older resourceVersions get 410 Expired, and clients
    /// relist, as with a real API server's watch cache). Each event holds a whole object, so this
    /// bounds the lab's memory: 10,000 events of Plans with large statuses came to about 70 MiB more
    /// than 1,000 in a copy-offload catalog run.
    pub watch_history: usize,
    /// Interval of periodic watch bookmarks.
    pub bookmark_interval: Duration,
    /// Run the simulated Forklift control plane, inventory service and source providers. Off, the lab is
    /// a bare Kubernetes API server.
    pub forklift: bool,
    /// How long a new Provider stays unknown to the inventory service (its sync lag).
    pub inventory_sync_delay: Duration,
    /// Forklift's `feature_auth_required`: the inventory checks the caller's bearer token (on by
    /// default, as in Forklift), so it answers 401 through the API server's service proxy.
    pub inventory_auth_required: bool,
}

impl Default for LabOptions {
    fn default() -> Self {
        Self {
            port: None,
            mtv_version: "2.10.0".to_string(),
            speed: 1.0,
            faults: FaultSpec::default(),
            lab_file: None,
            watch_history: 1_000,
            bookmark_interval: Duration::from_secs(10),
            forklift: true,
            inventory_sync_delay: Duration::from_millis(1500),
            inventory_auth_required: true,
        }
    }
}

/// A running lab.
pub struct LabServer {
    addr: SocketAddr,
    /// Where the inventory's Route leads (its own port), when the Forklift simulation runs.
    route_addr: Option<SocketAddr>,
    tls: LabTls,
    auth: Arc<Auth>,
    store: Store,
    faults: Arc<RwLock<FaultSpec>>,
    options: LabOptions,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    route_task: Option<JoinHandle<std::io::Result<()>>>,
    forklift: Option<crate::forklift::ForkliftHandle>,
    cdi: Option<crate::cdi::CdiHandle>,
    /// The controller manager's ServiceAccount controller (`default` in every namespace).
    service_accounts: Option<crate::controller_task::ControllerHandle>,
    source: Option<crate::source::SourceLab>,
    /// The sources' own HTTPS endpoints (vSphere's `/sdk`, ...).
    source_endpoints: Option<crate::source::endpoints::SourceEndpoints>,
    requests: Arc<RequestCounts>,
}

/// The requests the lab served, in all and by endpoint: `api` (the Kubernetes API server, the
/// service proxy to the inventory included), `inventory-route`, and each source by its provider type
/// (`vsphere`, `ovirt`, `openstack`): a run's cost on the cluster and on its sources apart.
#[derive(Default)]
pub struct RequestCounts {
    by_endpoint: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl RequestCounts {
    fn count(&self, endpoint: &str) {
        let mut counts = self.by_endpoint.lock().unwrap_or_else(|e| e.into_inner());
        // The name is copied only the first time an endpoint is seen, not on every request.
        match counts.get_mut(endpoint) {
            Some(count) => *count += 1,
            None => {
                counts.insert(endpoint.to_string(), 1);
            }
        }
    }

    /// Every request so far.
    pub fn total(&self) -> u64 {
        self.by_endpoint().values().sum()
    }

    /// The requests so far by endpoint.
    pub fn by_endpoint(&self) -> std::collections::BTreeMap<String, u64> {
        self.by_endpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The endpoint name of the Kubernetes API server in [`RequestCounts`].
pub const API_ENDPOINT: &str = "api";

impl LabServer {
    /// Binds 127.0.0.1, seeds the store and starts serving.
    pub async fn start(options: LabOptions) -> Result<LabServer, LabError> {
        Self::start_with(options, axum::Router::new()).await
    }

    /// [`LabServer::start`] with extra routes served beside the Kubernetes API on the same port (for lab
    /// services such as an inventory or source-provider API). They must not use `/api`, `/apis`,
    /// `/openapi`, `/version` or the health paths, and must not set a fallback.
    pub async fn start_with(
        options: LabOptions,
        extra_routes: axum::Router,
    ) -> Result<LabServer, LabError> {
        let listener = bind(options.port.unwrap_or(0)).await?;
        let addr = local_addr(&listener)?;
        let tls = LabTls::generate()?;
        let store = Store::new(options.watch_history);
        let auth = Auth::new(store.clone(), auth::new_token(), tls.ca_pem());
        // The token controller's part: legacy ServiceAccount token Secrets get their token at creation.
        store.add_admission(auth::LegacyTokenSecrets::new(&auth));
        seed(&store, &options)?;
        let faults = Arc::new(RwLock::new(options.faults.clone()));
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        // Every HTTP request counts, whatever it asks for: benchmarks report requests per migrated VM.
        let requests = Arc::new(RequestCounts::default());
        let mut route_addr = None;
        let mut route_task = None;
        // The simulated MTV: source inventories, the inventory service and the Forklift controllers;
        // the controllers reconcile through the store.
        let (extra_routes, forklift, source) = if options.forklift {
            let source = match &options.lab_file {
                Some(path) => crate::source::SourceLab::load(path)
                    .map_err(|e| LabError::LabFile(e.to_string()))?,
                None => crate::source::SourceLab::builtin(),
            };
            crate::inventory::seed_inventory_service(&store)?;
            let inventory = crate::inventory::inventory_routers(
                store.clone(),
                source.clone(),
                crate::inventory::InventoryOptions {
                    provider_sync_delay: options.inventory_sync_delay,
                    auth_required: options.inventory_auth_required,
                    auth: Some(auth.clone()),
                },
            );
            // The Route: the inventory on a port of its own, like a router in front of the service.
            let route_listener = bind(0).await?;
            let route = local_addr(&route_listener)?;
            crate::inventory::seed_inventory_route(&store, &route.to_string())?;
            route_task = Some(serve(
                tls.listener(route_listener)?,
                count_requests(inventory.route, requests.clone(), "inventory-route"),
                shutdown_rx.clone(),
            ));
            route_addr = Some(route);
            let guests = crate::guest::GuestImages::default();
            let routes = extra_routes
                .merge(crate::source::source_router(source.clone()))
                .merge(inventory.proxy)
                .merge(crate::guest::sshd::portforward_router(
                    store.clone(),
                    guests.clone(),
                ));
            let mut forklift_options = crate::forklift::ForkliftOptions::new(
                options.speed,
                options.faults.clone(),
                MTV_NAMESPACE,
            );
            forklift_options.faults = faults.clone();
            forklift_options.guests = guests;
            // The forklift-api webhooks admit every Forklift write, as on a real cluster.
            store.add_admission(Arc::new(crate::forklift::webhooks::ForkliftWebhooks));
            // KubeVirt's VirtualMachine validation of instancetype and preference references.
            store.add_admission(Arc::new(
                crate::kubevirt::instancetype::InstancetypeValidation,
            ));
            let handle =
                crate::forklift::spawn_forklift(store.clone(), source.clone(), forklift_options);
            (routes, Some(handle), Some(source))
        } else {
            (extra_routes, None, None)
        };
        // Each source on its own HTTPS port, speaking its platform's protocol.
        let source_endpoints = match &source {
            Some(source) => {
                let counter = requests.clone();
                Some(
                    crate::source::endpoints::start(
                        source,
                        &tls,
                        move |provider_type, router| {
                            count_requests(router, counter.clone(), provider_type)
                        },
                        shutdown_rx.clone(),
                    )
                    .await?,
                )
            }
            None => None,
        };
        // CDI and the storage provisioner run wherever the simulated cluster does.
        let cdi = options
            .forklift
            .then(|| crate::cdi::spawn_cdi(store.clone(), options.speed));
        let service_accounts = auth::spawn_default_service_accounts(store.clone());
        let state = Arc::new(AppState {
            store: store.clone(),
            faults: faults.clone(),
            server_address: addr.to_string(),
            bookmark_interval: options.bookmark_interval,
            shutdown: shutdown_rx.clone(),
            auth: auth.clone(),
        });
        let stats_counter = requests.clone();
        let stats = axum::Router::new().route(
            "/lab/v1/stats",
            axum::routing::get(move || {
                let by_endpoint = stats_counter.by_endpoint();
                let total: u64 = by_endpoint.values().sum();
                async move { axum::Json(json!({"requests": total, "by_endpoint": by_endpoint})) }
            }),
        );
        // Every path of the API port, the lab's own included, passes authentication and RBAC first.
        let app = router(state).merge(extra_routes).merge(stats).layer(
            axum::middleware::from_fn_with_state(auth.clone(), auth::guard),
        );
        let task = serve(
            tls.listener(listener)?,
            count_requests(app, requests.clone(), API_ENDPOINT),
            shutdown_rx,
        );
        tracing::info!(%addr, "mtv-lab API server listening (HTTPS)");
        Ok(LabServer {
            addr,
            route_addr,
            tls,
            auth,
            store,
            faults,
            options,
            shutdown_tx,
            task: Some(task),
            route_task,
            forklift,
            cdi,
            service_accounts: Some(service_accounts),
            source,
            source_endpoints,
            requests,
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `https://127.0.0.1:PORT` of the inventory's Route, when the Forklift simulation runs.
    pub fn inventory_route_url(&self) -> Option<String> {
        self.route_addr.map(|a| format!("https://{a}"))
    }

    /// The lab's CA certificate (PEM): what a client must trust to reach the lab.
    pub fn ca_pem(&self) -> &str {
        self.tls.ca_pem()
    }

    /// The cluster admin's bearer token (the kubeconfig's).
    pub fn admin_token(&self) -> &str {
        self.auth.admin_token()
    }

    /// The lab's authenticator and authorizer.
    pub fn auth(&self) -> &Arc<Auth> {
        &self.auth
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The store, for in-process controllers and tests.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn options(&self) -> &LabOptions {
        &self.options
    }

    /// Creates a Provider's `secret` and the `provider` (JSON bodies) in `namespace`, as a user
    /// would, and waits for Forklift's connection test: the Provider once its phase is `Ready` or
    /// `ConnectionFailed`. For tests that stand a Provider up by hand (a run creates its own).
    pub async fn create_provider(
        &self,
        namespace: &str,
        secret: Value,
        provider: Value,
    ) -> Result<Value, LabError> {
        let name = provider["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // Subscribed before the create, so no change after it is missed.
        let mut changes = self.store.subscribe();
        self.store
            .create(&registry::SECRET, Some(namespace), secret)?;
        self.store
            .create(&registry::PROVIDER, Some(namespace), provider)?;
        let verdict = async {
            loop {
                if let Ok(provider) = self.store.get(&registry::PROVIDER, Some(namespace), &name)
                    && matches!(
                        provider.pointer("/status/phase").and_then(Value::as_str),
                        Some("Ready" | "ConnectionFailed")
                    )
                {
                    return provider;
                }
                // Any change may be the verdict; a lagging receiver only means there were many.
                if let Err(broadcast::error::RecvError::Closed) = changes.recv().await {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(PROVIDER_VERDICT_TIMEOUT, verdict)
            .await
            .map_err(|_| LabError::NoVerdict(name))
    }

    /// The faults in force.
    pub fn faults(&self) -> FaultSpec {
        self.faults.read().map(|f| f.clone()).unwrap_or_default()
    }

    /// Replaces the faults in force (applies to requests and watches started from now on).
    pub fn set_faults(&self, faults: FaultSpec) {
        if let Ok(mut f) = self.faults.write() {
            *f = faults;
        }
    }

    /// A kubeconfig whose cluster, user and context are all named `mtv-lab`: the lab's URL and CA, and
    /// the admin token.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.base_url(), &self.tls.ca_data(), self.admin_token())
    }

    /// Writes [`LabServer::kubeconfig_yaml`] to a file only its owner can read (it holds the admin token),
    /// whole or not at all: a reader waiting for the file never sees half of it.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), LabError> {
        write_private_file(path, &self.kubeconfig_yaml()).map_err(|source| {
            LabError::WriteKubeconfig {
                path: path.display().to_string(),
                source,
            }
        })
    }

    /// HTTP requests served so far (API, inventory and sources alike).
    pub fn request_count(&self) -> u64 {
        self.requests.total()
    }

    /// HTTP requests served so far, by endpoint (see [`RequestCounts`]).
    pub fn request_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.requests.by_endpoint()
    }

    /// The simulated source providers, when the Forklift simulation runs.
    pub fn source(&self) -> Option<&crate::source::SourceLab> {
        self.source.as_ref()
    }

    /// Stops serving: the controllers stop, open watches end, then the server task finishes.
    pub async fn shutdown(mut self) {
        if let Some(forklift) = self.forklift.take() {
            forklift.shutdown().await;
        }
        if let Some(cdi) = self.cdi.take() {
            cdi.shutdown().await;
        }
        if let Some(service_accounts) = self.service_accounts.take() {
            service_accounts.shutdown().await;
        }
        let _ = self.shutdown_tx.send(true);
        if let Some(endpoints) = self.source_endpoints.take() {
            endpoints.shutdown().await;
        }
        for task in [self.task.take(), self.route_task.take()]
            .into_iter()
            .flatten()
        {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for LabServer {
    /// A lab dropped without [`LabServer::shutdown`] (a panicking test, say) still stops serving.
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
    }
}

/// Writes a file only its owner can read (it holds credentials), whole or not at all: the text goes
/// to a `.partial` sibling first and is renamed into place, so a reader waiting for the file never
/// sees half of it.
pub(crate) fn write_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    let mut file = file.open(&partial)?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    std::fs::rename(&partial, path)
}

async fn bind(port: u16) -> Result<tokio::net::TcpListener, LabError> {
    let bind = format!("127.0.0.1:{port}");
    tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|source| LabError::Bind { addr: bind, source })
}

fn local_addr(listener: &tokio::net::TcpListener) -> Result<SocketAddr, LabError> {
    listener.local_addr().map_err(|source| LabError::Bind {
        addr: "127.0.0.1".into(),
        source,
    })
}

/// Counts every request the router serves, as `endpoint`'s.
fn count_requests(
    router: axum::Router,
    counts: Arc<RequestCounts>,
    endpoint: &str,
) -> axum::Router {
    let endpoint = endpoint.to_string();
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            counts.count(&endpoint);
            next.run(request)
        },
    ))
}

/// Serves `app` on TLS connections until the lab shuts down.
fn serve(
    listener: crate::tls::TlsListener,
    app: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> JoinHandle<std::io::Result<()>> {
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
    })
}

/// The kubeconfig for a lab at `server` whose CA is `ca_data` (base64 PEM), with a bearer token.
pub fn kubeconfig_yaml(server: &str, ca_data: &str, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: mtv-lab
  cluster:
    server: {server}
    certificate-authority-data: {ca_data}
users:
- name: mtv-lab
  user:
    token: {token}
contexts:
- name: mtv-lab
  context:
    cluster: mtv-lab
    user: mtv-lab
    namespace: default
current-context: mtv-lab
preferences: {{}}
"
    )
}

fn create(
    store: &Store,
    rt: &'static ResourceType,
    ns: Option<&str>,
    obj: Value,
) -> Result<Value, ApiError> {
    store.create(rt, ns, obj)
}

/// Seeds what a cluster with MTV installed shows.
fn seed(store: &Store, options: &LabOptions) -> Result<(), ApiError> {
    for (rt, object) in auth::bootstrap_policy() {
        create(store, rt, None, object)?;
    }
    for ns in ["default", "kube-system", MTV_NAMESPACE] {
        create(
            store,
            &registry::NAMESPACE,
            None,
            json!({"metadata": {"name": ns}}),
        )?;
    }
    for (i, zone) in ["lab-zone-a", "lab-zone-b"].iter().enumerate() {
        let name = format!("worker-{i}");
        create(
            store,
            &registry::NODE,
            None,
            json!({
                "metadata": {"name": name, "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node-role.kubernetes.io/worker": "",
                    "topology.kubernetes.io/zone": zone,
                    "cpu-model.node.kubevirt.io/Skylake": "true"
                }},
                "spec": {}
            }),
        )?;
        store.update_status(
            &registry::NODE,
            None,
            &name,
            json!({
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
                "capacity": {"cpu": "32", "memory": "131072Mi", "pods": "250"},
                "allocatable": {"cpu": "31", "memory": "128000Mi", "pods": "250"},
                "nodeInfo": {"kubeletVersion": format!("v1.{}.0", crate::discovery::KUBE_MINOR), "architecture": "amd64", "operatingSystem": "linux"},
                "addresses": [{"type": "InternalIP", "address": format!("192.0.2.{}", 10 + i)}, {"type": "Hostname", "address": name}]
            }),
        )?;
    }
    // A default Ceph RBD class that can grow its volumes, and an NFS one.
    for storage_class in [
        json!({
            "metadata": {"name": "lab-ceph-rbd", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "openshift-storage.rbd.csi.ceph.com",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
            "allowVolumeExpansion": true
        }),
        json!({
            "metadata": {"name": "lab-nfs"},
            "provisioner": "nfs.csi.k8s.io",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate"
        }),
    ] {
        create(store, &registry::STORAGE_CLASS, None, storage_class)?;
    }
    let version = &options.mtv_version;
    // The lab's Forklift clock, served like any target trait: a run reads it instead of asking
    // whether it talks to a lab (mtv_api::clock).
    let clock = mtv_api::clock::ForkliftClock::Compressed {
        speed: options.speed,
    };
    create(
        store,
        &registry::CONFIG_MAP,
        Some(MTV_NAMESPACE),
        json!({"metadata": {"name": mtv_api::clock::CLOCK_CONFIG_MAP}, "data": clock.config_map_data()}),
    )?;
    create(
        store,
        &registry::FORKLIFT_CONTROLLER,
        Some(MTV_NAMESPACE),
        json!({"metadata": {"name": "forklift-controller"}, "spec": {"feature_ui_plugin": "true", "feature_validation": "true", "feature_volume_populator": "true"}}),
    )?;
    let csv_name = format!("mtv-operator.v{version}");
    create(
        store,
        &registry::SUBSCRIPTION,
        Some(MTV_NAMESPACE),
        json!({"metadata": {"name": "mtv-operator"}, "spec": {
            "name": "mtv-operator", "channel": "release-v2.10", "source": "redhat-operators",
            "sourceNamespace": "openshift-marketplace", "installPlanApproval": "Automatic", "startingCSV": csv_name
        }}),
    )?;
    store.update_status(
        &registry::SUBSCRIPTION,
        Some(MTV_NAMESPACE),
        "mtv-operator",
        json!({"currentCSV": csv_name, "installedCSV": csv_name, "state": "AtLatestKnown"}),
    )?;
    create(
        store,
        &registry::CLUSTER_SERVICE_VERSION,
        Some(MTV_NAMESPACE),
        json!({"metadata": {"name": csv_name, "labels": {"operators.coreos.com/mtv-operator.openshift-mtv": ""}},
               "spec": crate::olm::mtv_csv_spec(version)}),
    )?;
    store.update_status(
        &registry::CLUSTER_SERVICE_VERSION,
        Some(MTV_NAMESPACE),
        &csv_name,
        json!({"phase": "Succeeded", "reason": "InstallSucceeded", "message": "install strategy completed with no errors"}),
    )?;
    for (deployment, containers) in [
        ("forklift-controller", vec!["main", "inventory"]),
        ("forklift-api", vec!["main"]),
    ] {
        let name = format!(
            "{deployment}-{}-{}",
            random::name_suffix(10),
            random::name_suffix(5)
        );
        let containers: Vec<Value> = containers
            .iter()
            .map(|c| json!({"name": c, "image": format!("registry.redhat.io/migration-toolkit-virtualization/{deployment}:{version}")}))
            .collect();
        let statuses: Vec<Value> = containers
            .iter()
            .map(|c| json!({"name": c["name"], "ready": true, "started": true, "restartCount": 0, "image": c["image"], "imageID": c["image"], "state": {"running": {"startedAt": crate::clock::now_rfc3339()}}}))
            .collect();
        create(
            store,
            &registry::POD,
            Some(MTV_NAMESPACE),
            json!({"metadata": {"name": name, "labels": {"app": "forklift", "service": deployment}},
                   "spec": {"containers": containers, "nodeName": "worker-0"}}),
        )?;
        store.update_status(
            &registry::POD,
            Some(MTV_NAMESPACE),
            &name,
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": statuses, "podIP": "10.128.0.10"}),
        )?;
    }
    create(
        store,
        &registry::PROVIDER,
        Some(MTV_NAMESPACE),
        json!({"metadata": {"name": "host"}, "spec": {"type": "openshift", "url": "", "secret": {}}}),
    )?;
    crate::install::seed(store, MTV_NAMESPACE, version)?;
    Ok(())
}
