//! The service's singletons: the service content, sessions (Login, Logout, the session cookie) and
//! the search index.

use super::objects;
use super::value::V;
use super::xml::Element;
use super::{API_VERSION, Fault, MethodResult, SESSION_COOKIE, Sdk, Session, returnval};

pub(crate) const PROPERTY_COLLECTOR: &str = "propertyCollector";
pub(crate) const VIEW_MANAGER: &str = "ViewManager";
pub(crate) const SESSION_MANAGER: &str = "SessionManager";
pub(crate) const SEARCH_INDEX: &str = "SearchIndex";
pub(crate) const GUEST_OPERATIONS: &str = "guestOperationsManager";
pub(crate) const GUEST_FILES: &str = "guestOperationsFileManager";
pub(crate) const GUEST_PROCESSES: &str = "guestOperationsProcessManager";

/// `ServiceInstance.content`: where everything else is found.
pub(crate) fn content(sdk: &Sdk) -> Result<V, Fault> {
    let spec = sdk.spec()?;
    let version = spec.version.clone().unwrap_or_else(|| "8.0.3".into());
    let about = V::Obj(
        "AboutInfo",
        vec![
            ("name", V::s("VMware vCenter Server")),
            (
                "fullName",
                V::s(format!(
                    "VMware vCenter Server {version} build-24022515 (mtv-tests lab)"
                )),
            ),
            ("vendor", V::s("VMware, Inc.")),
            ("version", V::s(&version)),
            ("build", V::s("24022515")),
            ("localeVersion", V::s("INTL")),
            ("localeBuild", V::s("000")),
            ("osType", V::s("linux-x64")),
            ("productLineId", V::s("vpx")),
            ("apiType", V::s("VirtualCenter")),
            ("apiVersion", V::s(API_VERSION)),
            ("instanceUuid", V::s(crate::random::uuid_v4())),
        ],
    );
    Ok(V::Obj(
        "ServiceContent",
        vec![
            ("rootFolder", V::r("Folder", objects::ROOT_FOLDER)),
            (
                "propertyCollector",
                V::r("PropertyCollector", PROPERTY_COLLECTOR),
            ),
            ("viewManager", V::r("ViewManager", VIEW_MANAGER)),
            ("about", about),
            ("sessionManager", V::r("SessionManager", SESSION_MANAGER)),
            ("searchIndex", V::r("SearchIndex", SEARCH_INDEX)),
            (
                "guestOperationsManager",
                V::r("GuestOperationsManager", GUEST_OPERATIONS),
            ),
        ],
    ))
}

pub(crate) fn service_content(sdk: &Sdk) -> MethodResult {
    Ok(returnval(&content(sdk)?))
}

/// The properties of the singletons a client may read.
pub(crate) fn singleton_properties(
    sdk: &Sdk,
    kind: &str,
    id: &str,
    session: Option<&str>,
) -> Option<Vec<(&'static str, V)>> {
    match (kind, id) {
        ("ServiceInstance", "ServiceInstance") => Some(vec![("content", content(sdk).ok()?)]),
        ("GuestOperationsManager", GUEST_OPERATIONS) => Some(vec![
            ("fileManager", V::r("GuestFileManager", GUEST_FILES)),
            (
                "processManager",
                V::r("GuestProcessManager", GUEST_PROCESSES),
            ),
        ]),
        ("SessionManager", SESSION_MANAGER) => {
            let state = sdk.state();
            let current = session.and_then(|key| Some((key, state.sessions.get(key)?)));
            Some(
                current
                    .map(|(key, s)| vec![("currentSession", user_session(key, s))])
                    .unwrap_or_default(),
            )
        }
        ("PropertyCollector", PROPERTY_COLLECTOR)
        | ("ViewManager", VIEW_MANAGER)
        | ("SearchIndex", SEARCH_INDEX)
        | ("GuestFileManager", GUEST_FILES)
        | ("GuestProcessManager", GUEST_PROCESSES) => Some(Vec::new()),
        _ => None,
    }
}

fn user_session(key: &str, session: &Session) -> V {
    V::Obj(
        "UserSession",
        vec![
            ("key", V::s(key)),
            ("userName", V::s(&session.user)),
            ("fullName", V::s(&session.user)),
            ("loginTime", V::time(&session.login_time)),
            ("lastActiveTime", V::time(crate::clock::now_rfc3339())),
            ("locale", V::s("en")),
            ("messageLocale", V::s("en")),
            ("extensionSession", V::b(false)),
            ("ipAddress", V::s("127.0.0.1")),
            ("userAgent", V::s("")),
            ("callCount", V::long(0)),
        ],
    )
}

/// `SessionManager.Login`: the lab file's user name and password open a session (its key is the
/// cookie); anything else is `InvalidLogin`, as vCenter answers it.
pub(crate) fn login(sdk: &Sdk, call: &Element) -> Result<(String, String), Fault> {
    let spec = sdk.spec()?;
    let user = call.text_at("userName").unwrap_or("");
    let password = call.child("password").map_or("", |p| p.text.as_str());
    let user_ok = spec.username.as_deref().is_none_or(|u| u == user);
    let password_ok = spec.password.as_deref().is_none_or(|p| p == password);
    if !(user_ok && password_ok) {
        return Err(Fault::new(
            "InvalidLogin",
            "Cannot complete login due to an incorrect user name or password.",
        ));
    }
    let key = crate::random::uuid_v4();
    let session = Session {
        user: user.to_string(),
        login_time: crate::clock::now_rfc3339(),
    };
    let value = user_session(&key, &session);
    sdk.state().sessions.insert(key.clone(), session);
    let cookie = format!("{SESSION_COOKIE}=\"{key}\"; Path=/; HttpOnly; Secure;");
    Ok((returnval(&value), cookie))
}

pub(crate) fn logout(sdk: &Sdk, session: Option<&str>) -> MethodResult {
    if let Some(key) = session {
        sdk.state().sessions.remove(key);
    }
    Ok(String::new())
}

/// A VM's reference as a search answers it, or nothing.
fn found(id: Option<String>) -> String {
    id.map(|id| returnval(&V::r("VirtualMachine", &id)))
        .unwrap_or_default()
}

/// `SearchIndex.FindByUuid`: a VM by BIOS uuid (or instance uuid).
pub(crate) fn find_by_uuid(sdk: &Sdk, call: &Element) -> MethodResult {
    let spec = sdk.spec()?;
    let uuid = call.text_at("uuid").unwrap_or("").to_ascii_lowercase();
    if call.bool_at("vmSearch") == Some(false) {
        return Ok(String::new());
    }
    let properties = |vm: &crate::source::Vm| objects::properties(&spec, "VirtualMachine", &vm.id);
    let instance = call.bool_at("instanceUuid") == Some(true);
    let id = spec
        .vms
        .iter()
        .find(|vm| {
            if instance {
                properties(vm)
                    .and_then(|p| {
                        let config = p.into_iter().find(|(n, _)| *n == "config")?.1;
                        match config.path("instanceUuid") {
                            Some(V::Prim(_, text)) => Some(text.to_ascii_lowercase() == uuid),
                            _ => None,
                        }
                    })
                    .unwrap_or(false)
            } else {
                vm.uuid.to_ascii_lowercase() == uuid
            }
        })
        .map(|vm| vm.id.clone());
    Ok(found(id))
}

/// `SearchIndex.FindByInventoryPath`: `<datacenter>/vm/<name>`.
pub(crate) fn find_by_inventory_path(sdk: &Sdk, call: &Element) -> MethodResult {
    let spec = sdk.spec()?;
    let path = call
        .text_at("inventoryPath")
        .unwrap_or("")
        .trim_matches('/');
    let prefix = format!("{}/vm/", objects::datacenter(&spec));
    let id = path
        .strip_prefix(&prefix)
        .and_then(|name| spec.vms.iter().find(|vm| vm.name == name))
        .map(|vm| vm.id.clone());
    if id.is_some() {
        return Ok(found(id));
    }
    if path == objects::datacenter(&spec) {
        return Ok(returnval(&V::r("Datacenter", path)));
    }
    Ok(String::new())
}

/// `SearchIndex.FindChild`: a direct child of an entity by name (VMs of the vm folder).
pub(crate) fn find_child(sdk: &Sdk, call: &Element) -> MethodResult {
    let spec = sdk.spec()?;
    let entity = call
        .child("entity")
        .and_then(Element::moref)
        .unwrap_or_default();
    let name = call.text_at("name").unwrap_or("");
    for (kind, id) in objects::children(&spec, &entity.1) {
        let child_name = objects::properties(&spec, &kind, &id)
            .and_then(|p| p.into_iter().find(|(n, _)| *n == "name"))
            .and_then(|(_, v)| match v {
                V::Prim(_, text) => Some(text),
                _ => None,
            });
        if child_name.as_deref() == Some(name) {
            return Ok(returnval(&V::Ref(kind, id)));
        }
    }
    Ok(String::new())
}
