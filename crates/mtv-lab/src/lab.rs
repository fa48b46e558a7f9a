//! [`LabServer`]: starts the API server on loopback, seeds the cluster an MTV installation looks like, and
//! hands out a kubeconfig and the store.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::error::{ApiError, LabError};
use crate::faults::FaultSpec;
use crate::random;
use crate::registry::{self, ResourceType};
use crate::server::{AppState, router};
use crate::store::Store;

/// The namespace MTV runs in.
pub const MTV_NAMESPACE: &str = "openshift-mtv";

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
        }
    }
}

/// A running lab.
pub struct LabServer {
    addr: SocketAddr,
    store: Store,
    faults: Arc<RwLock<FaultSpec>>,
    options: LabOptions,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    forklift: Option<crate::forklift::ForkliftHandle>,
    cdi: Option<crate::cdi::CdiHandle>,
    source: Option<crate::source::SourceLab>,
    requests: Arc<std::sync::atomic::AtomicU64>,
}

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
        let bind = format!("127.0.0.1:{}", options.port.unwrap_or(0));
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .map_err(|source| LabError::Bind {
                addr: bind.clone(),
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| LabError::Bind { addr: bind, source })?;
        let store = Store::new(options.watch_history);
        seed(&store, &options)?;
        let faults = Arc::new(RwLock::new(options.faults.clone()));
        // The simulated MTV: source inventories, the inventory service and the Forklift controllers,
        // all behind the same HTTP port as the API; the controllers reconcile through the store.
        let (extra_routes, forklift, source) = if options.forklift {
            let source = match &options.lab_file {
                Some(path) => crate::source::SourceLab::load(path)
                    .map_err(|e| LabError::LabFile(e.to_string()))?,
                None => crate::source::SourceLab::builtin(),
            };
            crate::inventory::seed_inventory_service(&store)?;
            let routes = extra_routes
                .merge(crate::source::source_router(source.clone()))
                .merge(crate::inventory::inventory_router(
                    store.clone(),
                    source.clone(),
                    crate::inventory::InventoryOptions {
                        provider_sync_delay: options.inventory_sync_delay,
                        ..crate::inventory::InventoryOptions::default()
                    },
                ));
            let mut forklift_options = crate::forklift::ForkliftOptions::new(
                options.speed,
                options.faults.clone(),
                MTV_NAMESPACE,
            );
            forklift_options.faults = faults.clone();
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
        // CDI and the storage provisioner run wherever the simulated cluster does.
        let cdi = options
            .forklift
            .then(|| crate::cdi::spawn_cdi(store.clone(), options.speed));
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let state = Arc::new(AppState {
            store: store.clone(),
            faults: faults.clone(),
            server_address: addr.to_string(),
            bookmark_interval: options.bookmark_interval,
            shutdown: shutdown_rx.clone(),
        });
        let mut stop = shutdown_rx;
        // Every HTTP request counts, whatever it asks for: benchmarks report requests per migrated VM.
        let requests = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = requests.clone();
        let stats_counter = requests.clone();
        let stats = axum::Router::new().route(
            "/lab/v1/stats",
            axum::routing::get(move || {
                let served = stats_counter.load(std::sync::atomic::Ordering::Relaxed);
                async move { axum::Json(json!({"requests": served})) }
            }),
        );
        let app = router(state)
            .merge(extra_routes)
            .merge(stats)
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    next.run(request)
                },
            ));
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
        });
        tracing::info!(%addr, "mtv-lab API server listening");
        Ok(LabServer {
            addr,
            store,
            faults,
            options,
            shutdown_tx,
            task: Some(task),
            forklift,
            cdi,
            source,
            requests,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
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

    /// A kubeconfig whose cluster, user and context are all named `mtv-lab`.
    pub fn kubeconfig_yaml(&self) -> String {
        kubeconfig_yaml(&self.base_url())
    }

    /// Writes [`LabServer::kubeconfig_yaml`] to a file.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), LabError> {
        std::fs::write(path, self.kubeconfig_yaml()).map_err(|source| LabError::WriteKubeconfig {
            path: path.display().to_string(),
            source,
        })
    }

    /// HTTP requests served so far (API, inventory and source API alike).
    pub fn request_count(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
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
        let _ = self.shutdown_tx.send(true);
        if let Some(task) = self.task.take() {
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

/// The kubeconfig for a lab at `server`.
pub fn kubeconfig_yaml(server: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: mtv-lab
  cluster:
    server: {server}
users:
- name: mtv-lab
  user:
    token: mtv-lab-token
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
    create(
        store,
        &registry::STORAGE_CLASS,
        None,
        json!({
            "metadata": {"name": "lab-ceph-rbd", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "openshift-storage.rbd.csi.ceph.com",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
            "allowVolumeExpansion": true
        }),
    )?;
    create(
        store,
        &registry::STORAGE_CLASS,
        None,
        json!({
            "metadata": {"name": "lab-nfs"},
            "provisioner": "nfs.csi.k8s.io",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate"
        }),
    )?;
    let version = &options.mtv_version;
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
            .map(|c| json!({"name": c["name"], "ready": true, "started": true, "restartCount": 0, "image": c["image"], "state": {"running": {"startedAt": crate::clock::now_rfc3339()}}}))
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
    Ok(())
}
