//! The Forklift inventory REST service (forklift-api.md §7), reached through the OpenShift Route
//! `forklift-inventory` (its own HTTPS port, the bare `/providers` routes) with the caller's bearer
//! token, which it checks with a TokenReview and a SubjectAccessReview as Forklift does; or through the
//! API server's service proxy
//! (`/api/v1/namespaces/openshift-mtv/services/https:forklift-inventory:8443/proxy/...`), which removes
//! the `Authorization` header as the real one does, so there it answers 401 while auth is required.
//!
//! Providers are the Forklift `Provider` objects of the store; a provider's inventory is the source it
//! reaches ([`SourceLab::endpoint`]), except `openshift` providers, whose inventory is the lab's own
//! KubeVirt VirtualMachines, NADs, StorageClasses and Namespaces.

mod openshift;
pub mod render;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::clock;
use crate::error::ApiError;
use crate::lab::MTV_NAMESPACE;
use crate::registry;
use crate::source::{SourceLab, SourceProviderSpec};
use crate::store::{EventType, ListOptions, Store};
use render::{Detail, SourceView};

/// The inventory Service's name.
pub const INVENTORY_SERVICE_NAME: &str = "forklift-inventory";

/// The service-proxy path prefixes the inventory answers under (the first is what clients use).
pub const INVENTORY_PROXY_PREFIXES: &[&str] = &[
    "/api/v1/namespaces/openshift-mtv/services/https:forklift-inventory:8443/proxy",
    "/api/v1/namespaces/openshift-mtv/services/forklift-inventory:8443/proxy",
    "/api/v1/namespaces/openshift-mtv/services/https:forklift-inventory:/proxy",
    "/api/v1/namespaces/openshift-mtv/services/forklift-inventory/proxy",
];

/// Provider types the `/providers` listing always shows, in Forklift's order.
/// All the types a Provider may have but `nutanix`, which Forklift's inventory does not list.
const PROVIDER_TYPES: &[&str] = crate::forklift::provider::TYPES.split_last().unwrap().1;

/// How the inventory behaves.
#[derive(Debug, Clone)]
pub struct InventoryOptions {
    /// How long after a Provider appears the inventory still answers `404 ProviderNotFound` for it (the
    /// lag a harness must retry through). Zero turns the window off.
    pub provider_sync_delay: Duration,
    /// Require `Authorization: Bearer <token>` (Forklift's `feature_auth_required`, on by default): the
    /// token must pass a TokenReview and its user a SubjectAccessReview on the Provider.
    pub auth_required: bool,
    /// Who answers those reviews; without one, every token is refused (403).
    pub auth: Option<Arc<crate::auth::Auth>>,
}

impl Default for InventoryOptions {
    fn default() -> Self {
        InventoryOptions {
            provider_sync_delay: Duration::from_millis(1500),
            auth_required: true,
            auth: None,
        }
    }
}

struct Inventory {
    store: Store,
    source: SourceLab,
    options: InventoryOptions,
    /// When the inventory first knew each Provider (by uid).
    first_seen: Mutex<HashMap<String, Instant>>,
    /// Dropped with the inventory, which ends the task tracking new Providers.
    _alive: tokio::sync::watch::Sender<()>,
}

/// The inventory router: every service-proxy prefix plus the bare `/providers` routes (both of
/// [`inventory_routers`] in one). It has no fallback.
pub fn inventory_router(store: Store, source: SourceLab, options: InventoryOptions) -> Router {
    let routers = inventory_routers(store, source, options);
    routers.route.merge(routers.proxy)
}

/// The two ways in to one inventory.
pub struct InventoryRouters {
    /// The bare `/providers` routes, what the Route `forklift-inventory` reaches.
    pub route: Router,
    /// The service-proxy prefixes, to merge into the API server's router (no fallback). The
    /// `Authorization` header is removed on the way in, as the API server's proxy removes it.
    pub proxy: Router,
}

/// One inventory served both through its Route and through the API server's service proxy.
pub fn inventory_routers(
    store: Store,
    source: SourceLab,
    options: InventoryOptions,
) -> InventoryRouters {
    let (alive, stopped) = tokio::sync::watch::channel(());
    let inventory = Arc::new(Inventory {
        store,
        source,
        options,
        first_seen: Mutex::new(HashMap::new()),
        _alive: alive,
    });
    track_new_providers(&inventory, stopped);
    let routes = || {
        Router::new()
            .route("/providers", get(root))
            .route("/providers/{*rest}", get(nested))
            .with_state(inventory.clone())
    };
    let mut proxy = Router::new();
    for prefix in INVENTORY_PROXY_PREFIXES {
        proxy = proxy.nest(prefix, routes());
    }
    let proxy = proxy.layer(axum::middleware::map_request(
        |mut request: axum::extract::Request| async move {
            request.headers_mut().remove(header::AUTHORIZATION);
            request
        },
    ));
    InventoryRouters {
        route: routes(),
        proxy,
    }
}

/// Records the moment each Provider is created, so the not-found window starts at creation rather than
/// at the first request (when a runtime is there to watch the store).
fn track_new_providers(inventory: &Arc<Inventory>, mut stopped: tokio::sync::watch::Receiver<()>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak: Weak<Inventory> = Arc::downgrade(inventory);
    let mut events = inventory.store.subscribe();
    runtime.spawn(async move {
        loop {
            let received = tokio::select! {
                received = events.recv() => received,
                _ = stopped.changed() => return,
            };
            let event = match received {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let Some(inventory) = weak.upgrade() else {
                return;
            };
            if std::ptr::eq(event.resource, &registry::PROVIDER)
                && event.event_type == EventType::Added
                && let Some(uid) = event
                    .object
                    .pointer("/metadata/uid")
                    .and_then(Value::as_str)
                && let Ok(mut seen) = inventory.first_seen.lock()
            {
                seen.entry(uid.to_string()).or_insert_with(Instant::now);
            }
        }
    });
}

/// Creates the `forklift-inventory` Service in `openshift-mtv` (and the namespace if it is missing).
pub fn seed_inventory_service(store: &Store) -> Result<(), ApiError> {
    if store
        .get(&registry::NAMESPACE, None, MTV_NAMESPACE)
        .is_err()
    {
        ignore_exists(store.create(
            &registry::NAMESPACE,
            None,
            json!({"metadata": {"name": MTV_NAMESPACE}}),
        ))?;
    }
    ignore_exists(store.create(
        &registry::SERVICE,
        Some(MTV_NAMESPACE),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": INVENTORY_SERVICE_NAME,
                "namespace": MTV_NAMESPACE,
                "labels": {"app": "forklift", "service": "forklift-inventory"},
                "annotations": {"service.beta.openshift.io/serving-cert-secret-name": "forklift-cert"},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "172.30.40.10",
                "clusterIPs": ["172.30.40.10"],
                "ports": [{"name": "api-https", "port": 8443, "protocol": "TCP", "targetPort": 8443}],
                "selector": {"app": "forklift", "service": "forklift-inventory"},
                "sessionAffinity": "None",
            },
        }),
    ))
}

/// The Route's `spec.host`: a name in the style of an OpenShift apps domain. Only the router's admitted
/// host (`status.ingress[].host`, the Route listener's loopback address and port) actually reaches it.
pub const INVENTORY_ROUTE_HOST: &str =
    "forklift-inventory-openshift-mtv.apps.lab.mtv-tests.internal";

/// Creates the Route `forklift-inventory` in `openshift-mtv`, admitted by the lab's router at `address`
/// (`127.0.0.1:PORT`, the port the inventory's Route is served on).
pub fn seed_inventory_route(store: &Store, address: &str) -> Result<(), ApiError> {
    ignore_exists(store.create(
        &registry::ROUTE,
        Some(MTV_NAMESPACE),
        json!({
            "apiVersion": "route.openshift.io/v1",
            "kind": "Route",
            "metadata": {
                "name": INVENTORY_SERVICE_NAME,
                "namespace": MTV_NAMESPACE,
                "labels": {"app": "forklift", "service": "forklift-inventory"},
            },
            "spec": {
                "host": INVENTORY_ROUTE_HOST,
                "to": {"kind": "Service", "name": INVENTORY_SERVICE_NAME, "weight": 100},
                "port": {"targetPort": "api-https"},
                "tls": {"termination": "reencrypt", "insecureEdgeTerminationPolicy": "Redirect"},
                "wildcardPolicy": "None",
            },
        }),
    ))?;
    store.update_status(
        &registry::ROUTE,
        Some(MTV_NAMESPACE),
        INVENTORY_SERVICE_NAME,
        json!({"ingress": [{
            "host": address,
            "routerName": "default",
            "routerCanonicalHostname": address,
            "wildcardPolicy": "None",
            "conditions": [{"type": "Admitted", "status": "True", "lastTransitionTime": clock::now_rfc3339()}],
        }]}),
    )?;
    Ok(())
}

fn ignore_exists(result: Result<Value, ApiError>) -> Result<(), ApiError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.is_conflict() || e.to_status()["reason"] == "AlreadyExists" => Ok(()),
        Err(e) => Err(e),
    }
}

/// Query parameters (§7.2).
#[derive(Debug, Default, serde::Deserialize)]
struct InventoryQuery {
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: Option<usize>,
}

impl InventoryQuery {
    fn detail(&self) -> Detail {
        match self.detail.as_deref().map(str::trim) {
            Some("all") => Detail::Full,
            Some(n) => match n.parse::<u32>() {
                Ok(level) if level >= 1 => Detail::Full,
                _ => Detail::Summary,
            },
            None => Detail::Summary,
        }
    }

    fn page(&self, items: Vec<Value>) -> Vec<Value> {
        let offset = self.offset.unwrap_or(0);
        let iter = items.into_iter().skip(offset);
        match self.limit {
            Some(limit) if limit > 0 => iter.take(limit).collect(),
            _ => iter.collect(),
        }
    }
}

/// A Provider object the inventory knows.
pub(crate) struct KnownProvider {
    pub uid: String,
    pub provider_type: String,
    pub namespace: String,
    pub name: String,
    pub object: Value,
}

impl KnownProvider {
    fn self_link(&self) -> String {
        format!("providers/{}/{}", self.provider_type, self.uid)
    }
}

fn not_found(message: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_string(),
    )
        .into_response()
}

fn provider_not_found() -> Response {
    let mut response = not_found("provider not found");
    response.headers_mut().insert(
        "X-Reason",
        header::HeaderValue::from_static("ProviderNotFound"),
    );
    response
}

fn json_response(value: Value) -> Response {
    (StatusCode::OK, axum::Json(value)).into_response()
}

/// Why the inventory refused a request.
enum Refusal {
    /// No bearer token (401).
    NoToken,
    /// The token failed its TokenReview, or its user its SubjectAccessReview (403, as Forklift answers
    /// both).
    Forbidden,
}

impl Refusal {
    fn response(&self) -> Response {
        let (code, text) = match self {
            Refusal::NoToken => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            Refusal::Forbidden => (StatusCode::FORBIDDEN, "Forbidden"),
        };
        (
            code,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            Body::from(text),
        )
            .into_response()
    }
}

impl Inventory {
    /// Forklift's check: the token from `Authorization: Bearer <token>` must pass a TokenReview, and its
    /// user may `get` the Provider asked about (or `list` Providers, optionally in `?namespace=`).
    fn permit(
        &self,
        headers: &HeaderMap,
        provider: Option<&KnownProvider>,
        list_namespace: Option<&str>,
    ) -> Result<(), Refusal> {
        if !self.options.auth_required {
            return Ok(());
        }
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(
                |v| match v.split_whitespace().collect::<Vec<_>>().as_slice() {
                    ["Bearer", token] => Some(token.to_string()),
                    _ => None,
                },
            )
            .ok_or(Refusal::NoToken)?;
        let auth = self.options.auth.as_ref().ok_or(Refusal::Forbidden)?;
        let user = auth.authenticate(&token).ok_or(Refusal::Forbidden)?;
        let attributes = crate::auth::Attributes {
            verb: if provider.is_some() { "get" } else { "list" }.into(),
            path: None,
            group: registry::PROVIDER.group.into(),
            resource: registry::PROVIDER.plural.into(),
            subresource: String::new(),
            namespace: provider
                .map(|p| p.namespace.clone())
                .or_else(|| list_namespace.map(str::to_string))
                .unwrap_or_default(),
            name: provider.map(|p| p.name.clone()).unwrap_or_default(),
        };
        match auth.authorize(&user, &attributes) {
            crate::auth::Decision::Allow(_) => Ok(()),
            crate::auth::Decision::Deny(_) => Err(Refusal::Forbidden),
        }
    }

    /// Whether the provider is past its not-found window.
    fn synced(&self, uid: &str, created: Option<i64>) -> bool {
        let delay = self.options.provider_sync_delay;
        if delay.is_zero() {
            return true;
        }
        // Providers far older than the window (created before this inventory started) are known at once.
        if let Some(created) = created
            && clock::unix_now() - created > delay.as_secs() as i64 + 1
        {
            return true;
        }
        let Ok(mut seen) = self.first_seen.lock() else {
            return true;
        };
        seen.entry(uid.to_string())
            .or_insert_with(Instant::now)
            .elapsed()
            >= delay
    }

    /// The Providers of the store the inventory has caught up with.
    fn providers(&self) -> Vec<KnownProvider> {
        let Ok(list) = self
            .store
            .list(&registry::PROVIDER, None, &ListOptions::default())
        else {
            return Vec::new();
        };
        list.items
            .into_iter()
            .filter_map(|object| {
                let meta = object.get("metadata")?;
                let uid = meta.get("uid")?.as_str()?.to_string();
                let created = meta
                    .get("creationTimestamp")
                    .and_then(Value::as_str)
                    .and_then(clock::parse_rfc3339);
                if !self.synced(&uid, created) {
                    return None;
                }
                Some(KnownProvider {
                    provider_type: object
                        .pointer("/spec/type")
                        .and_then(Value::as_str)
                        .unwrap_or("openshift")
                        .to_string(),
                    namespace: meta
                        .get("namespace")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    name: meta
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    uid,
                    object,
                })
            })
            .collect()
    }

    /// The source inventory a provider reaches with its URL and Secret, if it reaches one.
    fn source_of(&self, provider: &KnownProvider) -> Option<SourceProviderSpec> {
        let url = provider
            .object
            .pointer("/spec/url")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let secret = self.secret_of(provider);
        let user = secret
            .get("user")
            .or_else(|| secret.get("username"))
            .map(String::as_str);
        let password = secret.get("password").map(String::as_str);
        let name = self
            .source
            .connect(&provider.provider_type, url, user, password)
            .ok()?;
        self.source.provider(&name).ok()
    }

    /// The provider Secret's keys, decoded.
    fn secret_of(&self, provider: &KnownProvider) -> BTreeMap<String, String> {
        let spec_secret = provider.object.pointer("/spec/secret");
        let name = spec_secret
            .and_then(|s| s.get("name"))
            .and_then(Value::as_str);
        let namespace = spec_secret
            .and_then(|s| s.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or(&provider.namespace);
        let Some(name) = name else {
            return BTreeMap::new();
        };
        let Ok(secret) = self.store.get(&registry::SECRET, Some(namespace), name) else {
            return BTreeMap::new();
        };
        let mut keys = BTreeMap::new();
        if let Some(Value::Object(data)) = secret.get("data") {
            for (key, value) in data {
                if let Some(decoded) = value
                    .as_str()
                    .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                {
                    keys.insert(key.clone(), decoded);
                }
            }
        }
        if let Some(Value::Object(data)) = secret.get("stringData") {
            for (key, value) in data {
                if let Some(text) = value.as_str() {
                    keys.insert(key.clone(), text.to_string());
                }
            }
        }
        keys
    }

    /// The `/providers` item of a provider.
    fn provider_item(&self, provider: &KnownProvider) -> Value {
        let mut item = Map::new();
        item.insert("uid".into(), json!(provider.uid));
        item.insert("id".into(), json!(provider.uid));
        item.insert(
            "version".into(),
            provider
                .object
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null),
        );
        item.insert("namespace".into(), json!(provider.namespace));
        item.insert("name".into(), json!(provider.name));
        item.insert("selfLink".into(), json!(provider.self_link()));
        item.insert("type".into(), json!(provider.provider_type));
        item.insert("object".into(), provider.object.clone());
        let counts = if provider.provider_type == "openshift" {
            openshift::counts(&self.store)
        } else {
            match self.source_of(provider) {
                Some(spec) => SourceView {
                    spec: &spec,
                    base: provider.self_link(),
                }
                .counts(),
                None => {
                    let mut zero = Map::new();
                    zero.insert("vmCount".into(), json!(0));
                    zero.insert("networkCount".into(), json!(0));
                    zero
                }
            }
        };
        item.extend(counts);
        Value::Object(item)
    }
}

async fn root(
    State(inventory): State<Arc<Inventory>>,
    headers: HeaderMap,
    Query(query): Query<InventoryQuery>,
) -> Response {
    serve(&inventory, &headers, &query, "")
}

async fn nested(
    State(inventory): State<Arc<Inventory>>,
    headers: HeaderMap,
    Path(rest): Path<String>,
    Query(query): Query<InventoryQuery>,
) -> Response {
    serve(&inventory, &headers, &query, &rest)
}

fn serve(
    inventory: &Inventory,
    headers: &HeaderMap,
    query: &InventoryQuery,
    rest: &str,
) -> Response {
    let list_namespace = query.namespace.as_deref().filter(|ns| !ns.is_empty());
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let in_namespace = |p: &KnownProvider| {
        query
            .namespace
            .as_deref()
            .is_none_or(|ns| ns.is_empty() || p.namespace == ns)
    };
    match segments.as_slice() {
        [] => {
            if let Err(refusal) = inventory.permit(headers, None, list_namespace) {
                return refusal.response();
            }
            let providers = inventory.providers();
            let mut grouped = Map::new();
            for kind in PROVIDER_TYPES {
                grouped.insert((*kind).to_string(), Value::Array(Vec::new()));
            }
            for provider in providers.iter().filter(|p| in_namespace(p)) {
                let item = inventory.provider_item(provider);
                if let Value::Array(list) = grouped
                    .entry(provider.provider_type.clone())
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    list.push(item);
                }
            }
            json_response(Value::Object(grouped))
        }
        [kind] => {
            if let Err(refusal) = inventory.permit(headers, None, list_namespace) {
                return refusal.response();
            }
            if !PROVIDER_TYPES.contains(kind) {
                return not_found("unknown provider type");
            }
            let items: Vec<Value> = inventory
                .providers()
                .iter()
                .filter(|p| p.provider_type == *kind && in_namespace(p))
                .filter(|p| query.name.as_deref().is_none_or(|n| p.name == n))
                .map(|p| inventory.provider_item(p))
                .collect();
            json_response(Value::Array(query.page(items)))
        }
        [kind, uid, rest @ ..] => {
            let providers = inventory.providers();
            let Some(provider) = providers
                .iter()
                .find(|p| p.uid == *uid && p.provider_type == *kind)
            else {
                return provider_not_found();
            };
            if let Err(refusal) = inventory.permit(headers, Some(provider), None) {
                return refusal.response();
            }
            match rest {
                [] => json_response(inventory.provider_item(provider)),
                [collection, id @ ..] => {
                    let id = (!id.is_empty()).then(|| id.join("/"));
                    if provider.provider_type == "openshift" {
                        openshift::collection(
                            &inventory.store,
                            provider,
                            collection,
                            id.as_deref(),
                            query,
                        )
                    } else {
                        source_collection(inventory, provider, collection, id.as_deref(), query)
                    }
                }
            }
        }
    }
}

/// A collection (or one object of it) of a source provider's inventory.
fn source_collection(
    inventory: &Inventory,
    provider: &KnownProvider,
    collection: &str,
    id: Option<&str>,
    query: &InventoryQuery,
) -> Response {
    let empty;
    let spec = match inventory.source_of(provider) {
        Some(spec) => spec,
        None => {
            // Not connected (bad URL or credentials): the inventory holds nothing for it.
            empty = SourceProviderSpec {
                name: provider.name.clone(),
                provider_type: provider.provider_type.clone(),
                url: String::new(),
                username: None,
                password: None,
                version: None,
                datacenter: None,
                hosts: Vec::new(),
                networks: Vec::new(),
                datastores: Vec::new(),
                vms: Vec::new(),
                flavors: Vec::new(),
                project: None,
                region: None,
                project_name: None,
                openstack: Default::default(),
                tls: None,
            };
            empty
        }
    };
    let view = SourceView {
        spec: &spec,
        base: provider.self_link(),
    };
    let kind = spec.provider_type.as_str();
    let detail = query.detail();
    let by_name = |item: &Value| {
        query
            .name
            .as_deref()
            .is_none_or(|n| item.get("name").and_then(Value::as_str) == Some(n))
    };
    let items: Vec<Value> = match (kind, collection) {
        (_, "vms") | (_, "workloads") => {
            if let Some(id) = id {
                let Some(vm) = view.listed_vms().find(|vm| vm.id == id) else {
                    return not_found("vm not found");
                };
                return json_response(if collection == "vms" {
                    view.vm(vm, Detail::Full)
                } else {
                    view.workload(vm)
                });
            }
            // vSphere's VM list always answers full objects (its handler forces the detail).
            let detail = if kind == "vsphere" {
                Detail::Full
            } else {
                detail
            };
            let items = view
                .listed_vms()
                .filter(|vm| query.name.as_deref().is_none_or(|n| view.vm_matches(vm, n)))
                .map(|vm| {
                    if collection == "vms" {
                        view.vm(vm, detail)
                    } else {
                        view.workload(vm)
                    }
                })
                .collect();
            return json_response(Value::Array(query.page(items)));
        }
        (_, "networks") => view.networks(),
        (_, "hosts") => view.hosts(),
        ("vsphere", "datastores") | ("ovirt", "storagedomains") | ("openstack", "volumetypes") => {
            view.storage()
        }
        ("vsphere" | "ovirt", "clusters") => view.clusters(),
        ("vsphere" | "ovirt", "datacenters") => view.datacenters(),
        ("ovirt", "disks") => view.ovirt_disks(),
        ("ovirt", "nicprofiles") => view.nic_profiles(),
        ("openstack", "volumes") => view.openstack_volumes(),
        ("openstack", "flavors") => view.flavors(),
        ("ova", "disks") => view.ova_disks(),
        ("ova", "storages") => view.ova_storages(),
        _ => return not_found("unknown collection"),
    };
    if let Some(id) = id {
        return match items
            .into_iter()
            .find(|item| item.get("id").and_then(Value::as_str) == Some(id))
        {
            Some(item) => json_response(item),
            None => not_found("not found"),
        };
    }
    let items: Vec<Value> = items
        .into_iter()
        .filter(by_name)
        .map(|item| {
            if detail == Detail::Summary {
                summary(item)
            } else {
                item
            }
        })
        .collect();
    json_response(Value::Array(query.page(items)))
}

/// The `detail=0` form of an inventory object.
fn summary(item: Value) -> Value {
    let Value::Object(map) = item else {
        return item;
    };
    let keep = ["id", "parent", "path", "revision", "name", "selfLink"];
    Value::Object(
        map.into_iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .collect(),
    )
}
