//! The vSphere Web Services API (vim25 SOAP) of a lab source at `/sdk`, as vCenter serves it to
//! govmomi, pyVmomi and the project's own adapter: sessions, the service content, the property
//! collector with container views and filters, the search index, VM tasks (clone, power, reconfigure,
//! snapshot, destroy) and Guest Operations (file transfers through `/guestFile`, programs), all as a view
//! of the one source model the lab's Forklift inventory reads.

mod collector;
mod guestops;
mod objects;
mod service;
mod tasks;
mod value;
mod xml;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::{SourceError, SourceLab, SourceProviderSpec};
use value::V;
use xml::{Element, escape};

/// The session cookie vCenter sets at Login.
pub const SESSION_COOKIE: &str = "vmware_soap_session";

/// A vim25 fault: its type (`InvalidLogin`), message and fields.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub kind: &'static str,
    pub message: String,
    pub fields: Vec<(&'static str, V)>,
}

impl Fault {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Fault {
        Fault {
            kind,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn with(mut self, name: &'static str, value: V) -> Fault {
        self.fields.push((name, value));
        self
    }

    pub fn not_found(kind: &str, id: &str) -> Fault {
        Fault::new(
            "ManagedObjectNotFound",
            format!("The object '{kind}:{id}' has already been deleted or has not been completely created"),
        )
        .with("obj", V::r(kind, id))
    }

    pub fn invalid_argument(property: &str, message: impl Into<String>) -> Fault {
        Fault::new("InvalidArgument", message).with("invalidProperty", V::s(property))
    }

    /// As the value of a `LocalizedMethodFault.fault` (a failed task's error).
    pub fn as_value(&self) -> V {
        V::Obj(self.kind, self.fields.clone())
    }
}

/// What a source model error is on the wire.
impl From<SourceError> for Fault {
    fn from(error: SourceError) -> Fault {
        match &error {
            SourceError::UnknownVm { vm, .. } => Fault::not_found("VirtualMachine", vm),
            SourceError::Conflict(message) => Fault::new("DuplicateName", message.clone()),
            SourceError::Invalid(message) => Fault::invalid_argument("spec", message.clone()),
            other => {
                Fault::new("SystemError", other.to_string()).with("reason", V::s(other.to_string()))
            }
        }
    }
}

pub(crate) type MethodResult = Result<String, Fault>;

/// A logged-in session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub user: String,
    pub login_time: String,
}

/// What the endpoint keeps between calls.
#[derive(Debug, Default)]
pub(crate) struct SdkState {
    pub sessions: BTreeMap<String, Session>,
    next_id: u64,
    pub views: BTreeMap<String, collector::View>,
    pub filters: BTreeMap<String, Element>,
    pub tasks: BTreeMap<String, tasks::TaskRecord>,
    /// Bumped by every task: the version `WaitForUpdates` reports.
    pub update_version: u64,
    /// Results of `RetrievePropertiesEx` not handed out yet, by token.
    pub pending: BTreeMap<String, Vec<String>>,
    pub transfers: BTreeMap<String, guestops::Transfer>,
    pub processes: BTreeMap<String, Vec<guestops::Process>>,
}

impl SdkState {
    pub fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A new id for a session's own managed object of `kind` (a view, a filter), as vCenter names
    /// them: `session[…]kind-N`.
    pub fn session_object_id(&mut self, kind: &str) -> String {
        format!(
            "session[{}]{kind}-{}",
            crate::random::name_suffix(8),
            self.next()
        )
    }
}

/// One source's endpoint.
pub(crate) struct Sdk {
    pub lab: SourceLab,
    pub provider: String,
    state: Mutex<SdkState>,
}

impl Sdk {
    pub fn state(&self) -> MutexGuard<'_, SdkState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The provider's inventory as it is now.
    pub fn spec(&self) -> Result<SourceProviderSpec, Fault> {
        self.lab
            .provider(&self.provider)
            .map_err(|e| Fault::new("SystemError", e.to_string()))
    }
}

/// The vim25 endpoint of source `provider`: `/sdk`, the version documents clients negotiate with, and
/// the Guest Operations file transfer URL.
pub fn router(lab: SourceLab, provider: String) -> axum::Router {
    let sdk = Arc::new(Sdk {
        lab,
        provider,
        state: Mutex::new(SdkState::default()),
    });
    axum::Router::new()
        .route("/sdk", post(soap))
        .route("/sdk/vimServiceVersions.xml", get(service_versions))
        .route("/guestFile", get(guestops::download).put(guestops::upload))
        .with_state(sdk)
}

/// The API version this endpoint speaks, and older ones clients may ask for.
pub(crate) const API_VERSION: &str = "8.0.3.0";
const PRIOR_VERSIONS: &[&str] = &[
    "8.0.2.0", "8.0.1.0", "8.0.0.2", "8.0.0.1", "8.0.0.0", "7.0.3.2", "7.0.3.1", "7.0.3.0",
    "7.0.2.1", "7.0.2.0", "7.0.1.1", "7.0.1.0", "7.0.0.2", "7.0.0.1", "7.0.0.0", "6.7.3", "6.7.2",
    "6.7.1", "6.7", "6.5", "6.0", "5.5", "5.1", "5.0",
];

/// `GET /sdk/vimServiceVersions.xml`: the versions pyVmomi's `SmartConnect` negotiates from.
async fn service_versions() -> Response {
    let prior: String = PRIOR_VERSIONS
        .iter()
        .map(|v| format!("<version>{v}</version>"))
        .collect();
    (
        [(header::CONTENT_TYPE, "text/xml")],
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<namespaces version=\"1.0\">\
             <namespace><name>urn:vim25</name><version>{API_VERSION}</version>\
             <priorVersions>{prior}</priorVersions></namespace></namespaces>\n"
        ),
    )
        .into_response()
}

const ENVELOPE_OPEN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<soapenv:Envelope xmlns:soapenc=\"http://schemas.xmlsoap.org/soap/encoding/\" \
xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>";
const ENVELOPE_CLOSE: &str = "</soapenv:Body></soapenv:Envelope>";

fn xml_response(status: StatusCode, body: String, cookie: Option<String>) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        format!("{ENVELOPE_OPEN}{body}{ENVELOPE_CLOSE}"),
    )
        .into_response();
    if let Some(cookie) = cookie
        && let Ok(value) = cookie.parse()
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn fault_response(fault: &Fault) -> Response {
    let mut fields = String::new();
    for (name, value) in &fault.fields {
        value.write_field(name, &mut fields);
    }
    let body = format!(
        "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{}</faultstring>\
         <detail><{kind}Fault xmlns=\"urn:vim25\" xsi:type=\"{kind}\">{fields}</{kind}Fault></detail>\
         </soapenv:Fault>",
        escape(&fault.message),
        kind = fault.kind,
    );
    xml_response(StatusCode::INTERNAL_SERVER_ERROR, body, None)
}

/// The session key a request's `Cookie` header carries (`vmware_soap_session="…"`).
fn session_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"').to_string())
}

/// `POST /sdk`: one vim25 call.
async fn soap(State(sdk): State<Arc<Sdk>>, headers: HeaderMap, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let envelope = match xml::parse(&text) {
        Ok(envelope) => envelope,
        Err(e) => {
            return fault_response(&Fault::new(
                "InvalidRequest",
                format!("the request is not an XML document: {e}"),
            ));
        }
    };
    let Some(call) = envelope.at("Body").and_then(|b| b.children.first()) else {
        return fault_response(&Fault::new(
            "InvalidRequest",
            "the request has no SOAP body",
        ));
    };
    let session = session_key(&headers);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    match dispatch(&sdk, call, session.as_deref(), &host).await {
        Ok((returnval, cookie)) => xml_response(
            StatusCode::OK,
            format!(
                "<{name}Response xmlns=\"urn:vim25\">{returnval}</{name}Response>",
                name = call.name
            ),
            cookie,
        ),
        Err(fault) => fault_response(&fault),
    }
}

/// The methods a caller may use before logging in.
const ANONYMOUS: &[&str] = &["RetrieveServiceContent", "Login", "CurrentTime"];

/// Routes a call to its method.
async fn dispatch(
    sdk: &Arc<Sdk>,
    call: &Element,
    session: Option<&str>,
    host: &str,
) -> Result<(String, Option<String>), Fault> {
    let method = call.name.as_str();
    let this = call
        .child("_this")
        .and_then(Element::moref)
        .unwrap_or_default();
    let logged_in = session.is_some_and(|key| sdk.state().sessions.contains_key(key));
    if !logged_in && !ANONYMOUS.contains(&method) {
        return Err(
            Fault::new("NotAuthenticated", "The session is not authenticated.")
                .with("object", V::r(&this.0, &this.1))
                .with("privilegeId", V::s("System.View")),
        );
    }
    if method == "Login" {
        return service::login(sdk, call).map(|(body, cookie)| (body, Some(cookie)));
    }
    let answer = match method {
        "RetrieveServiceContent" => service::service_content(sdk),
        "CurrentTime" => Ok(returnval(&V::time(crate::clock::now_rfc3339()))),
        "Logout" => service::logout(sdk, session),
        "SessionIsActive" => Ok(returnval(&V::b(true))),
        "Fetch" => collector::fetch(sdk, &this, call, session),
        "RetrieveProperties" => collector::retrieve_properties(sdk, call, session),
        "RetrievePropertiesEx" => collector::retrieve_properties_ex(sdk, call, session),
        "ContinueRetrievePropertiesEx" => collector::continue_retrieve(sdk, call),
        "CancelRetrievePropertiesEx" => collector::cancel_retrieve(sdk, call),
        "CreateFilter" => collector::create_filter(sdk, call),
        "DestroyPropertyFilter" => collector::destroy_filter(sdk, &this),
        "WaitForUpdates" | "WaitForUpdatesEx" | "CheckForUpdates" => {
            collector::wait_for_updates(sdk, method, call, session).await
        }
        "CreateContainerView" => collector::create_container_view(sdk, call),
        "DestroyView" => collector::destroy_view(sdk, &this),
        "FindByUuid" => service::find_by_uuid(sdk, call),
        "FindByInventoryPath" => service::find_by_inventory_path(sdk, call),
        "FindChild" => service::find_child(sdk, call),
        "CloneVM_Task"
        | "PowerOnVM_Task"
        | "PowerOffVM_Task"
        | "ReconfigVM_Task"
        | "CreateSnapshot_Task"
        | "Destroy_Task" => tasks::run(sdk, method, &this, call),
        "InitiateFileTransferToGuest" => guestops::transfer_to_guest(sdk, call, host),
        "InitiateFileTransferFromGuest" => guestops::transfer_from_guest(sdk, call, host),
        "StartProgramInGuest" => guestops::start_program(sdk, call),
        "ListProcessesInGuest" => guestops::list_processes(sdk, call),
        other => Err(Fault::new(
            "NotSupported",
            format!("the lab's vSphere endpoint does not implement {other}"),
        )),
    }?;
    Ok((answer, None))
}

/// A value as the method's `returnval` (an array as repeated `returnval`s).
pub(crate) fn returnval(value: &V) -> String {
    let mut out = String::new();
    match value {
        V::Arr(_, items) => {
            for item in items {
                item.write_any("returnval", &mut out);
            }
        }
        other => other.write_any("returnval", &mut out),
    }
    out
}
