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

use super::model::{Datastore, Host, Network, SourceProviderSpec, Vm};
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
    let api = COLLECTIONS
        .iter()
        .fold(Router::new().route(API, get(api_root)), collection_routes);
    let api = owned_routes(api, "templates", true)
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

    /// The provider's current inventory and a VM (`template` false) or template (true) in it.
    fn spec_and_vm(
        &self,
        format: Format,
        id: &str,
        template: bool,
    ) -> Result<(SourceProviderSpec, Vm), Fault> {
        Ok((self.spec(format)?, self.vm(format, id, template)?))
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

/// One member of a collection: the id `/{collection}/{id}` finds it by, its node (built only when
/// answered) and its search fields.
struct Member<'a> {
    id: String,
    node: Box<dyn Fn() -> Node + 'a>,
    fields: Fields<'a>,
}

impl<'a> Member<'a> {
    /// A member searchable by its name and id.
    fn named(name: String, id: String, node: impl Fn() -> Node + 'a) -> Member<'a> {
        let search_id = id.clone();
        Member {
            id,
            node: Box::new(node),
            fields: Box::new(move |f| named(&name, &search_id, f)),
        }
    }
}

/// The `search` and `max` query parameters of a list.
fn listed(
    format: Format,
    query: &HashMap<String, String>,
    collection: &str,
    members: Vec<Member<'_>>,
) -> Reply {
    let search = Search::parse(query.get("search").map_or("", String::as_str))
        .map_err(|e| fault(format, StatusCode::BAD_REQUEST, "Operation Failed", &e))?;
    let max = query
        .get("max")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let mut kept = Vec::new();
    for member in members {
        let matched = search
            .matches(member.fields)
            .map_err(|e| fault(format, StatusCode::BAD_REQUEST, "Operation Failed", &e))?;
        if matched && kept.len() < max {
            kept.push((member.node)());
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

/// One of the engine's collections read from the provider's inventory: `/{path}` lists it (by
/// `search` and `max`) and `/{path}/{id}` reads one member.
struct Collection {
    path: &'static str,
    /// The list's root element.
    element: &'static str,
    /// What a member is called in the engine's "Entity not found".
    what: &'static str,
    members: for<'a> fn(&'a View<'a>) -> Vec<Member<'a>>,
}

/// The collections that are plain views of the inventory (VMs and templates are the lab's own).
const COLLECTIONS: [Collection; 8] = [
    Collection {
        path: "datacenters",
        element: "data_centers",
        what: "data center",
        members: |view| {
            let id = view.datacenter().to_string();
            vec![Member::named(id.clone(), id, || view.data_center())]
        },
    },
    Collection {
        path: "clusters",
        element: "clusters",
        what: "cluster",
        members: |view| {
            let member = |c: String| Member::named(c.clone(), c.clone(), move || view.cluster(&c));
            view.clusters().into_iter().map(member).collect()
        },
    },
    Collection {
        path: "hosts",
        element: "hosts",
        what: "host",
        members: |view| {
            let host = |h: &Host| (h.name.clone(), h.id.clone());
            by_name(view, &view.spec.hosts, host, View::host)
        },
    },
    Collection {
        path: "networks",
        element: "networks",
        what: "network",
        members: |view| {
            let network = |n: &Network| (n.name.clone(), n.id.clone());
            by_name(view, &view.spec.networks, network, View::network)
        },
    },
    Collection {
        path: "vnicprofiles",
        element: "vnic_profiles",
        what: "vNIC profile",
        members: |view| {
            let profile = |n: &Network| (n.name.clone(), View::profile_id(n));
            by_name(view, &view.spec.networks, profile, View::vnic_profile)
        },
    },
    Collection {
        path: "storagedomains",
        element: "storage_domains",
        what: "storage domain",
        members: |view| {
            let domain = |d: &Datastore| (d.name.clone(), d.id.clone());
            by_name(view, &view.spec.datastores, domain, View::storage_domain)
        },
    },
    Collection {
        path: "disks",
        element: "disks",
        what: "disk",
        members: |view| {
            let disks = (view.spec.vms.iter()).flat_map(|vm| vm.disks.iter().map(move |d| (vm, d)));
            disks
                .map(|(vm, d)| {
                    Member::named(View::disk_name(vm, d), d.file.clone(), move || {
                        view.disk(vm, d)
                    })
                })
                .collect()
        },
    },
    Collection {
        path: "events",
        element: "events",
        what: "event",
        members: |view| {
            all_events(view.spec)
                .into_iter()
                .map(|(vm, i)| event_member(view, vm, i))
                .collect()
        },
    },
];

/// The members of a list of the inventory searchable by their name and id: `key` gives an item's
/// name and id, `node` its node.
fn by_name<'a, T>(
    view: &'a View<'a>,
    items: &'a [T],
    key: fn(&T) -> (String, String),
    node: fn(&View<'a>, &'a T) -> Node,
) -> Vec<Member<'a>> {
    let member = move |item| {
        let (name, id) = key(item);
        Member::named(name, id, move || node(view, item))
    };
    items.iter().map(member).collect()
}

/// The GET routes of a [`Collection`].
fn collection_routes(router: Router<Engine>, collection: &'static Collection) -> Router<Engine> {
    let list = move |State(engine): State<Engine>,
                     format: Format,
                     Query(query): Query<HashMap<String, String>>| async move {
        let spec = engine.spec(format)?;
        let view = View { spec: &spec };
        listed(
            format,
            &query,
            collection.element,
            (collection.members)(&view),
        )
    };
    let one = move |State(engine): State<Engine>, format: Format, Path(id): Path<String>| async move {
        let spec = engine.spec(format)?;
        let view = View { spec: &spec };
        let found = (collection.members)(&view).into_iter().find(|m| m.id == id);
        found
            .map(|m| ok(format, &(m.node)()))
            .ok_or_else(|| not_found(format, collection.what, &id))
    };
    let path = collection.path;
    router
        .route(&format!("{API}/{path}"), get(list))
        .route(&format!("{API}/{path}/{{id}}"), get(one))
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

/// An event of a VM, searchable by its VM, its code and its severity.
fn event_member<'a>(view: &'a View<'a>, vm: &'a Vm, i: usize) -> Member<'a> {
    let event = &vm.events[i];
    Member {
        id: View::event_id(vm, i).to_string(),
        node: Box::new(move || view.event(vm, i)),
        fields: Box::new(move |f| match f {
            "vm.id" => Some(vec![vm.id.clone()]),
            "vm.name" => Some(vec![vm.name.clone()]),
            "type" | "code" => Some(vec![audit_code(event).map_or(-1, i64::from).to_string()]),
            "severity" => Some(vec!["normal".into()]),
            _ => None,
        }),
    }
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

/// The GET routes of what the engine keeps of VMs (`template` false, under `/vms`) or templates
/// (under `/templates`): the list, one, and each one's NICs and disk attachments.
fn owned_routes(router: Router<Engine>, owner: &str, template: bool) -> Router<Engine> {
    let list = move |State(engine): State<Engine>,
                     format: Format,
                     Query(query): Query<HashMap<String, String>>| async move {
        vm_list(&engine, format, &query, template)
    };
    let one = move |State(engine): State<Engine>, format: Format, Path(id): Path<String>| async move {
        let (spec, vm) = engine.spec_and_vm(format, &id, template)?;
        Ok::<_, Fault>(ok(format, &View { spec: &spec }.vm(&vm)))
    };
    let nics = move |State(engine): State<Engine>, format: Format, Path(id): Path<String>| async move {
        nic_list(&engine, format, &id, template)
    };
    let nic = move |State(engine): State<Engine>,
                    format: Format,
                    Path((id, nic)): Path<(String, String)>| async move {
        nic_one(&engine, format, &id, &nic, template)
    };
    let attachments =
        move |State(engine): State<Engine>, format: Format, Path(id): Path<String>| async move {
            attachment_list(&engine, format, &id, template)
        };
    let attachment = move |State(engine): State<Engine>,
                           format: Format,
                           Path((id, disk)): Path<(String, String)>| async move {
        attachment_one(&engine, format, &id, &disk, template)
    };
    let base = format!("{API}/{owner}");
    router
        .route(&base, get(list))
        .route(&format!("{base}/{{id}}"), get(one))
        .route(&format!("{base}/{{id}}/nics"), get(nics))
        .route(&format!("{base}/{{id}}/nics/{{sub}}"), get(nic))
        .route(&format!("{base}/{{id}}/diskattachments"), get(attachments))
        .route(
            &format!("{base}/{{id}}/diskattachments/{{sub}}"),
            get(attachment),
        )
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
    let view = &view;
    let members = spec
        .vms
        .iter()
        .filter(|vm| vm.template == template)
        .map(|vm| Member {
            id: vm.id.clone(),
            node: Box::new(move || view.vm(vm)),
            fields: vm_fields(view, vm),
        })
        .collect();
    listed(
        format,
        query,
        if template { "templates" } else { "vms" },
        members,
    )
}

/// The NICs of a VM or template.
fn nic_list(engine: &Engine, format: Format, id: &str, template: bool) -> Reply {
    let (spec, vm) = engine.spec_and_vm(format, id, template)?;
    let nics = View { spec: &spec }.nics(&vm);
    Ok(ok(format, &Node::collection("nics", nics)))
}

/// One NIC of a VM or template.
fn nic_one(engine: &Engine, format: Format, id: &str, nic: &str, template: bool) -> Reply {
    let (spec, vm) = engine.spec_and_vm(format, id, template)?;
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
    let (spec, vm) = engine.spec_and_vm(format, id, template)?;
    let view = View { spec: &spec };
    let attachments = (0..vm.disks.len()).map(|i| view.disk_attachment(&vm, i));
    Ok(ok(
        format,
        &Node::collection("disk_attachments", attachments),
    ))
}

/// One disk attachment (its id is the disk's) of a VM or template.
fn attachment_one(engine: &Engine, format: Format, id: &str, disk: &str, template: bool) -> Reply {
    let (spec, vm) = engine.spec_and_vm(format, id, template)?;
    let index = vm.disks.iter().position(|d| d.file == disk);
    index
        .map(|i| ok(format, &View { spec: &spec }.disk_attachment(&vm, i)))
        .ok_or_else(|| not_found(format, "disk attachment", disk))
}
