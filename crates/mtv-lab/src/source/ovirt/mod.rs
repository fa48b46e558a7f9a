//! The lab's oVirt engine: the REST API v4 at `/ovirt-engine/api` (XML, or JSON by `Accept`), SSO at
//! `/ovirt-engine/sso/oauth/token`, and the engine CA at `/ovirt-engine/services/pki-resource`, as a
//! view of one source provider of the [`SourceLab`]: what a client changes here, the lab's Forklift
//! inventory shows, and the other way round.
//!
//! Mount [`router`] on the source's own HTTPS listener; give it the CA its certificate chains to with
//! an [`EngineCa`] extension layer, so `pki-resource` can hand it out as the engine does.

mod auth;
pub mod node;
mod render;
mod search;
mod vms;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::model::{SourceProviderSpec, Vm};
use super::{SourceError, SourceLab};
use node::Node;
use render::{API, View};
use search::Search;

pub use render::audit_code;

/// The PEM CA the engine's certificate chains to, for `pki-resource` (an axum extension).
#[derive(Debug, Clone)]
pub struct EngineCa(pub String);

/// One engine: the lab and the source provider it shows, and the SSO tokens it handed out.
#[derive(Debug, Clone)]
pub struct Engine {
    lab: SourceLab,
    provider: String,
    tokens: auth::Tokens,
}

/// The engine's routes for the lab source provider `provider` (its lab-file name).
pub fn router(lab: SourceLab, provider: String) -> Router {
    let engine = Engine {
        lab,
        provider,
        tokens: auth::Tokens::default(),
    };
    let api = Router::new()
        .route(API, get(api_root))
        .route(&format!("{API}/datacenters"), get(data_centers))
        .route(&format!("{API}/datacenters/{{id}}"), get(data_center))
        .route(&format!("{API}/clusters"), get(clusters))
        .route(&format!("{API}/clusters/{{id}}"), get(cluster))
        .route(&format!("{API}/hosts"), get(hosts))
        .route(&format!("{API}/hosts/{{id}}"), get(host))
        .route(&format!("{API}/networks"), get(networks))
        .route(&format!("{API}/networks/{{id}}"), get(network))
        .route(&format!("{API}/vnicprofiles"), get(vnic_profiles))
        .route(&format!("{API}/vnicprofiles/{{id}}"), get(vnic_profile))
        .route(&format!("{API}/storagedomains"), get(storage_domains))
        .route(&format!("{API}/storagedomains/{{id}}"), get(storage_domain))
        .route(&format!("{API}/disks"), get(disks))
        .route(&format!("{API}/disks/{{id}}"), get(disk))
        .route(&format!("{API}/events"), get(events))
        .route(&format!("{API}/events/{{id}}"), get(event))
        .route(&format!("{API}/templates"), get(templates))
        .route(&format!("{API}/templates/{{id}}"), get(template))
        .route(&format!("{API}/templates/{{id}}/nics"), get(template_nics))
        .route(
            &format!("{API}/templates/{{id}}/nics/{{sub}}"),
            get(template_nic),
        )
        .route(
            &format!("{API}/templates/{{id}}/diskattachments"),
            get(template_disk_attachments),
        )
        .route(
            &format!("{API}/templates/{{id}}/diskattachments/{{sub}}"),
            get(template_disk_attachment),
        )
        .merge(vms::routes())
        .layer(axum::middleware::from_fn_with_state(
            engine.clone(),
            auth::require,
        ));
    Router::new()
        .route("/ovirt-engine/sso/oauth/token", post(auth::token))
        .route("/ovirt-engine/services/sso-logout", post(auth::logout))
        .route("/ovirt-engine/services/pki-resource", get(pki_resource))
        .merge(api)
        .with_state(engine)
}

/// How the client wants answers: the engine's XML unless `Accept` asks for JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
}

impl<S: Send + Sync> FromRequestParts<S> for Format {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(format_of(&parts.headers, header::ACCEPT))
    }
}

fn format_of(headers: &HeaderMap, name: header::HeaderName) -> Format {
    let json = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if json { Format::Json } else { Format::Xml }
}

/// An answer in the client's format.
fn reply(format: Format, status: StatusCode, node: &Node) -> Response {
    match format {
        Format::Xml => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            )],
            node.to_xml(),
        )
            .into_response(),
        Format::Json => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            serde_json::to_string_pretty(&node.to_json()).unwrap_or_default(),
        )
            .into_response(),
    }
}

fn ok(format: Format, node: &Node) -> Response {
    reply(format, StatusCode::OK, node)
}

/// An error as the engine answers it: `<fault><reason/><detail/></fault>`.
#[derive(Debug)]
pub struct Fault {
    format: Format,
    status: StatusCode,
    reason: &'static str,
    detail: String,
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        let node = Node::new("fault")
            .field("reason", self.reason)
            .field("detail", &self.detail);
        reply(self.format, self.status, &node)
    }
}

fn fault(format: Format, status: StatusCode, reason: &'static str, detail: &str) -> Fault {
    Fault {
        format,
        status,
        reason,
        detail: detail.to_string(),
    }
}

fn not_found(format: Format, what: &str, id: &str) -> Fault {
    fault(
        format,
        StatusCode::NOT_FOUND,
        "Operation Failed",
        &format!("Entity not found: {what} {id}"),
    )
}

/// A change the lab refused, as the engine's fault.
fn source_fault(format: Format, error: SourceError) -> Fault {
    let status = match &error {
        SourceError::UnknownVm { .. } | SourceError::UnknownProvider(_) => StatusCode::NOT_FOUND,
        SourceError::Conflict(_) => StatusCode::CONFLICT,
        SourceError::Invalid(_) => StatusCode::BAD_REQUEST,
        SourceError::InvalidLabFile { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    fault(format, status, "Operation Failed", &format!("[{error}]"))
}

type Reply = Result<Response, Fault>;

/// An object's values for a search field; `None` for a field it cannot be searched by.
type Fields<'a> = Box<dyn Fn(&str) -> Option<Vec<String>> + 'a>;

impl Engine {
    /// The provider's current inventory.
    fn spec(&self, format: Format) -> Result<SourceProviderSpec, Fault> {
        self.lab
            .provider(&self.provider)
            .map_err(|e| source_fault(format, e))
    }

    /// A VM (`template` false) or template (true) by id.
    fn vm(&self, format: Format, id: &str, template: bool) -> Result<Vm, Fault> {
        let what = if template { "template" } else { "VM" };
        match self.lab.vm(&self.provider, id) {
            Ok(vm) if vm.template == template => Ok(vm),
            Ok(_) | Err(SourceError::UnknownVm { .. }) => Err(not_found(format, what, id)),
            Err(other) => Err(source_fault(format, other)),
        }
    }
}

/// The `search` and `max` query parameters of a list.
fn listed(
    format: Format,
    query: &HashMap<String, String>,
    collection: &str,
    members: Vec<(Node, Fields<'_>)>,
) -> Reply {
    let search = Search::parse(query.get("search").map_or("", String::as_str))
        .map_err(|e| fault(format, StatusCode::BAD_REQUEST, "Operation Failed", &e))?;
    let max = query
        .get("max")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let mut kept = Vec::new();
    for (node, fields) in members {
        let matched = search
            .matches(fields)
            .map_err(|e| fault(format, StatusCode::BAD_REQUEST, "Operation Failed", &e))?;
        if matched && kept.len() < max {
            kept.push(node);
        }
    }
    Ok(ok(format, &Node::collection(collection, kept)))
}

/// Search fields every object has: its name and id.
fn named(name: &str, id: &str, field: &str) -> Option<Vec<String>> {
    match field {
        "name" => Some(vec![name.to_string()]),
        "id" => Some(vec![id.to_string()]),
        _ => None,
    }
}

async fn pki_resource(
    ca: Option<axum::Extension<EngineCa>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let resource = query.get("resource").map(String::as_str);
    match (resource, ca) {
        (Some("ca-certificate"), Some(axum::Extension(EngineCa(pem)))) => {
            ([(header::CONTENT_TYPE, "application/x-x509-ca-cert")], pem).into_response()
        }
        (Some("ca-certificate"), None) => (
            StatusCode::NOT_FOUND,
            "this lab engine was mounted without its CA (an EngineCa extension)",
        )
            .into_response(),
        _ => (
            StatusCode::BAD_REQUEST,
            "resource must be ca-certificate (format X509-PEM-CA)",
        )
            .into_response(),
    }
}

async fn api_root(State(engine): State<Engine>, format: Format) -> Reply {
    let spec = engine.spec(format)?;
    Ok(ok(format, &View { spec: &spec }.api()))
}

async fn data_centers(
    State(engine): State<Engine>,
    format: Format,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let id = view.datacenter().to_string();
    let fields: Fields<'_> = Box::new(move |f| named(&id, &id, f));
    listed(
        format,
        &query,
        "data_centers",
        vec![(view.data_center(), fields)],
    )
}

async fn data_center(
    State(engine): State<Engine>,
    format: Format,
    Path(id): Path<String>,
) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    if view.datacenter() != id {
        return Err(not_found(format, "data center", &id));
    }
    Ok(ok(format, &view.data_center()))
}

async fn clusters(
    State(engine): State<Engine>,
    format: Format,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let members = view
        .clusters()
        .into_iter()
        .map(|c| {
            let node = view.cluster(&c);
            let fields: Fields<'_> = Box::new(move |f| named(&c, &c, f));
            (node, fields)
        })
        .collect();
    listed(format, &query, "clusters", members)
}

async fn cluster(State(engine): State<Engine>, format: Format, Path(id): Path<String>) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    if !view.clusters().contains(&id) {
        return Err(not_found(format, "cluster", &id));
    }
    Ok(ok(format, &view.cluster(&id)))
}

async fn hosts(
    State(engine): State<Engine>,
    format: Format,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let members = spec
        .hosts
        .iter()
        .map(|h| {
            let fields: Fields<'_> = Box::new(move |f| named(&h.name, &h.id, f));
            (view.host(h), fields)
        })
        .collect();
    listed(format, &query, "hosts", members)
}

async fn host(State(engine): State<Engine>, format: Format, Path(id): Path<String>) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let host = spec.hosts.iter().find(|h| h.id == id);
    host.map(|h| ok(format, &view.host(h)))
        .ok_or_else(|| not_found(format, "host", &id))
}

async fn networks(
    State(engine): State<Engine>,
    format: Format,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let members = spec
        .networks
        .iter()
        .map(|n| {
            let fields: Fields<'_> = Box::new(move |f| named(&n.name, &n.id, f));
            (view.network(n), fields)
        })
        .collect();
    listed(format, &query, "networks", members)
}

async fn network(State(engine): State<Engine>, format: Format, Path(id): Path<String>) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let network = spec.networks.iter().find(|n| n.id == id);
    network
        .map(|n| ok(format, &view.network(n)))
        .ok_or_else(|| not_found(format, "network", &id))
}

async fn vnic_profiles(
    State(engine): State<Engine>,
    format: Format,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let members = spec
        .networks
        .iter()
        .map(|n| {
            let id = View::profile_id(n);
            let fields: Fields<'_> = Box::new(move |f| named(&n.name, &id, f));
            (view.vnic_profile(n), fields)
        })
        .collect();
    listed(format, &query, "vnic_profiles", members)
}

async fn vnic_profile(
    State(engine): State<Engine>,
    format: Format,
    Path(id): Path<String>,
) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    view.network_of_profile(&id)
        .map(|n| ok(format, &view.vnic_profile(n)))
        .ok_or_else(|| not_found(format, "vNIC profile", &id))
}

async fn storage_domains(
    State(engine): State<Engine>,
    format: Format,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let members = spec
        .datastores
        .iter()
        .map(|d| {
            let fields: Fields<'_> = Box::new(move |f| named(&d.name, &d.id, f));
            (view.storage_domain(d), fields)
        })
        .collect();
    listed(format, &query, "storage_domains", members)
}

async fn storage_domain(
    State(engine): State<Engine>,
    format: Format,
    Path(id): Path<String>,
) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let domain = spec.datastores.iter().find(|d| d.id == id);
    domain
        .map(|d| ok(format, &view.storage_domain(d)))
        .ok_or_else(|| not_found(format, "storage domain", &id))
}

async fn disks(
    State(engine): State<Engine>,
    format: Format,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let members = spec
        .vms
        .iter()
        .flat_map(|vm| vm.disks.iter().map(move |d| (vm, d)))
        .map(|(vm, d)| {
            let name = View::disk_name(vm, d);
            let fields: Fields<'_> = Box::new(move |f| named(&name, &d.file, f));
            (view.disk(vm, d), fields)
        })
        .collect();
    listed(format, &query, "disks", members)
}

async fn disk(State(engine): State<Engine>, format: Format, Path(id): Path<String>) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let found = spec
        .vms
        .iter()
        .find_map(|vm| vm.disks.iter().find(|d| d.file == id).map(|d| (vm, d)));
    found
        .map(|(vm, d)| ok(format, &view.disk(vm, d)))
        .ok_or_else(|| not_found(format, "disk", &id))
}

/// Every VM's events, newest first.
fn all_events(spec: &SourceProviderSpec) -> Vec<(&Vm, usize)> {
    let mut events: Vec<(&Vm, usize)> = spec
        .vms
        .iter()
        .flat_map(|vm| (0..vm.events.len()).map(move |i| (vm, i)))
        .collect();
    events.sort_by(|(a, i), (b, j)| (&b.events[*j].time, j).cmp(&(&a.events[*i].time, i)));
    events
}

async fn events(
    State(engine): State<Engine>,
    format: Format,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let members = all_events(&spec)
        .into_iter()
        .map(|(vm, i)| {
            let event = &vm.events[i];
            let fields: Fields<'_> = Box::new(move |f| match f {
                "vm.id" => Some(vec![vm.id.clone()]),
                "vm.name" => Some(vec![vm.name.clone()]),
                "type" | "code" => Some(vec![audit_code(event).map_or(-1, i64::from).to_string()]),
                "severity" => Some(vec!["normal".into()]),
                _ => None,
            });
            (view.event(vm, i), fields)
        })
        .collect();
    listed(format, &query, "events", members)
}

async fn event(State(engine): State<Engine>, format: Format, Path(id): Path<String>) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    all_events(&spec)
        .into_iter()
        .find(|(vm, i)| View::event_id(vm, *i).to_string() == id)
        .map(|(vm, i)| ok(format, &view.event(vm, i)))
        .ok_or_else(|| not_found(format, "event", &id))
}

/// The search fields of a VM or template.
fn vm_fields<'a>(view: &'a View<'a>, vm: &'a Vm) -> Fields<'a> {
    Box::new(move |f| match f {
        "cluster" => Some(vec![view.cluster_of(vm)]),
        "status" => Some(vec![
            if vm.template {
                "ok"
            } else if vm.power_state == super::PowerState::On {
                "up"
            } else {
                "down"
            }
            .to_string(),
        ]),
        other => named(&vm.name, &vm.id, other),
    })
}

/// `/vms` or `/templates`.
fn vm_list(
    engine: &Engine,
    format: Format,
    query: &HashMap<String, String>,
    template: bool,
) -> Reply {
    let spec = engine.spec(format)?;
    let view = View { spec: &spec };
    let members = spec
        .vms
        .iter()
        .filter(|vm| vm.template == template)
        .map(|vm| (view.vm(vm), vm_fields(&view, vm)))
        .collect();
    listed(
        format,
        query,
        if template { "templates" } else { "vms" },
        members,
    )
}

async fn templates(
    State(engine): State<Engine>,
    format: Format,
    Query(query): Query<HashMap<String, String>>,
) -> Reply {
    vm_list(&engine, format, &query, true)
}

async fn template(State(engine): State<Engine>, format: Format, Path(id): Path<String>) -> Reply {
    let spec = engine.spec(format)?;
    let vm = engine.vm(format, &id, true)?;
    Ok(ok(format, &View { spec: &spec }.vm(&vm)))
}

/// The NICs of a VM or template.
fn nic_list(engine: &Engine, format: Format, id: &str, template: bool) -> Reply {
    let spec = engine.spec(format)?;
    let vm = engine.vm(format, id, template)?;
    let nics = View { spec: &spec }.nics(&vm);
    Ok(ok(format, &Node::collection("nics", nics)))
}

/// One NIC of a VM or template.
fn nic_one(engine: &Engine, format: Format, id: &str, nic: &str, template: bool) -> Reply {
    let spec = engine.spec(format)?;
    let vm = engine.vm(format, id, template)?;
    let index = vm
        .nics
        .iter()
        .position(|n| View::nic_id(&vm, &n.mac) == nic);
    index
        .map(|i| ok(format, &View { spec: &spec }.nic(&vm, i)))
        .ok_or_else(|| not_found(format, "NIC", nic))
}

/// The disk attachments of a VM or template.
fn attachment_list(engine: &Engine, format: Format, id: &str, template: bool) -> Reply {
    let spec = engine.spec(format)?;
    let vm = engine.vm(format, id, template)?;
    let view = View { spec: &spec };
    let attachments = (0..vm.disks.len()).map(|i| view.disk_attachment(&vm, i));
    Ok(ok(
        format,
        &Node::collection("disk_attachments", attachments),
    ))
}

/// One disk attachment (its id is the disk's) of a VM or template.
fn attachment_one(engine: &Engine, format: Format, id: &str, disk: &str, template: bool) -> Reply {
    let spec = engine.spec(format)?;
    let vm = engine.vm(format, id, template)?;
    let index = vm.disks.iter().position(|d| d.file == disk);
    index
        .map(|i| ok(format, &View { spec: &spec }.disk_attachment(&vm, i)))
        .ok_or_else(|| not_found(format, "disk attachment", disk))
}

async fn template_nics(
    State(engine): State<Engine>,
    format: Format,
    Path(id): Path<String>,
) -> Reply {
    nic_list(&engine, format, &id, true)
}

async fn template_nic(
    State(engine): State<Engine>,
    format: Format,
    Path((id, nic)): Path<(String, String)>,
) -> Reply {
    nic_one(&engine, format, &id, &nic, true)
}

async fn template_disk_attachments(
    State(engine): State<Engine>,
    format: Format,
    Path(id): Path<String>,
) -> Reply {
    attachment_list(&engine, format, &id, true)
}

async fn template_disk_attachment(
    State(engine): State<Engine>,
    format: Format,
    Path((id, disk)): Path<(String, String)>,
) -> Reply {
    attachment_one(&engine, format, &id, &disk, true)
}
