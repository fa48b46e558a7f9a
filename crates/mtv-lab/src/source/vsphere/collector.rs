//! The property collector: `Fetch` (pyVmomi's property reads), `RetrieveProperties(Ex)` with
//! traversal specs, container views, filters and `WaitForUpdates(Ex)` as task polling uses them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::objects;
use super::service;
use super::tasks;
use super::value::V;
use super::xml::{Element, escape};
use super::{Fault, MethodResult, Sdk, returnval};
use crate::source::SourceProviderSpec;

/// A container view: the objects of some types below a container.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub container: (String, String),
    pub types: Vec<String>,
    pub recursive: bool,
}

/// The objects of a view as they are now.
fn view_objects(spec: &SourceProviderSpec, view: &View) -> Vec<(String, String)> {
    let candidates = if view.recursive {
        objects::descendants(spec, &view.container.1)
    } else {
        objects::children(spec, &view.container.1)
    };
    candidates
        .into_iter()
        .filter(|(kind, _)| {
            view.types.is_empty() || view.types.iter().any(|t| objects::is_a(kind, t))
        })
        .collect()
}

/// Every top-level property of an object, or `None` when there is no such object.
pub(crate) fn object_properties(
    sdk: &Sdk,
    spec: &SourceProviderSpec,
    kind: &str,
    id: &str,
    session: Option<&str>,
) -> Option<Vec<(&'static str, V)>> {
    if let Some(props) = service::singleton_properties(sdk, kind, id, session) {
        return Some(props);
    }
    match kind {
        "ContainerView" => {
            let view = sdk.state().views.get(id).cloned()?;
            Some(vec![
                (
                    "container",
                    V::Ref(view.container.0.clone(), view.container.1.clone()),
                ),
                ("type", V::strings(view.types.clone())),
                ("recursive", V::b(view.recursive)),
                ("view", V::refs(view_objects(spec, &view))),
            ])
        }
        "Task" => tasks::task_properties(sdk, id),
        "PropertyFilter" => sdk.state().filters.contains_key(id).then(Vec::new),
        _ => {
            // The reference's type must be the object's (a Network reference to a port group is not).
            let actual = objects::kind_of(spec, id)?;
            (actual == kind || objects::is_a(actual, kind))
                .then(|| objects::properties(spec, actual, id))
                .flatten()
        }
    }
}

/// The value at a property path (`config.hardware.device`), if set.
fn value_at(props: &[(&'static str, V)], path: &str) -> Option<V> {
    let (top, rest) = match path.split_once('.') {
        Some((top, rest)) => (top, Some(rest)),
        None => (path, None),
    };
    let value = props.iter().find(|(name, _)| *name == top)?.1.clone();
    match rest {
        Some(rest) => value.path(rest).cloned(),
        None => Some(value),
    }
}

/// `Fetch`: one property of one object (how pyVmomi reads `vm.name`, `vm.config`, `view.view`).
pub(crate) fn fetch(
    sdk: &Sdk,
    this: &(String, String),
    call: &Element,
    session: Option<&str>,
) -> MethodResult {
    let spec = sdk.spec()?;
    let path = call.text_at("prop").unwrap_or("");
    let props = object_properties(sdk, &spec, &this.0, &this.1, session)
        .ok_or_else(|| Fault::not_found(&this.0, &this.1))?;
    Ok(value_at(&props, path)
        .map(|v| returnval(&v))
        .unwrap_or_default())
}

/// The objects an `ObjectSpec` selects, following its traversal specs.
fn select_objects(
    sdk: &Sdk,
    spec: &SourceProviderSpec,
    object_spec: &Element,
    session: Option<&str>,
) -> Result<Vec<(String, String)>, Fault> {
    let start = object_spec
        .child("obj")
        .and_then(Element::moref)
        .ok_or_else(|| Fault::invalid_argument("obj", "an ObjectSpec needs obj"))?;
    if object_properties(sdk, spec, &start.0, &start.1, session).is_none() {
        return Err(Fault::not_found(&start.0, &start.1));
    }
    let mut named = BTreeMap::new();
    collect_named(object_spec, &mut named);
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let selects: Vec<&Element> = object_spec.children_named("selectSet").collect();
    walk(
        sdk,
        spec,
        &start,
        object_spec.bool_at("skip") == Some(true),
        &selects,
        &named,
        session,
        &mut seen,
        &mut out,
    );
    Ok(out)
}

/// The named traversal specs anywhere below an element (what `SelectionSpec`s refer to).
fn collect_named<'a>(element: &'a Element, named: &mut BTreeMap<String, &'a Element>) {
    for select in element.children_named("selectSet") {
        if select.child("path").is_some()
            && let Some(name) = select.text_at("name")
        {
            named.insert(name.to_string(), select);
        }
        collect_named(select, named);
    }
}

#[allow(clippy::too_many_arguments)]
fn walk(
    sdk: &Sdk,
    spec: &SourceProviderSpec,
    object: &(String, String),
    skip: bool,
    selects: &[&Element],
    named: &BTreeMap<String, &Element>,
    session: Option<&str>,
    seen: &mut BTreeSet<(String, String, usize)>,
    out: &mut Vec<(String, String)>,
) {
    if !skip && !out.contains(object) {
        out.push(object.clone());
    }
    for select in selects {
        // A SelectionSpec names a TraversalSpec given elsewhere.
        let traversal = if select.child("path").is_some() {
            *select
        } else {
            match select.text_at("name").and_then(|n| named.get(n)) {
                Some(t) => *t,
                None => continue,
            }
        };
        let wanted = traversal.text_at("type").unwrap_or("");
        if !objects::is_a(&object.0, wanted) {
            continue;
        }
        let key = (
            object.0.clone(),
            object.1.clone(),
            traversal as *const Element as usize,
        );
        if !seen.insert(key) {
            continue;
        }
        let Some(props) = object_properties(sdk, spec, &object.0, &object.1, session) else {
            continue;
        };
        let path = traversal.text_at("path").unwrap_or("");
        let targets = value_at(&props, path)
            .map(|v| v.references())
            .unwrap_or_default();
        let next: Vec<&Element> = traversal.children_named("selectSet").collect();
        for target in targets {
            walk(
                sdk,
                spec,
                &target,
                traversal.bool_at("skip") == Some(true),
                &next,
                named,
                session,
                seen,
                out,
            );
        }
    }
}

/// The `ObjectContent`s (inner XML of each) a `PropertyFilterSpec` selects.
fn object_contents(
    sdk: &Sdk,
    spec: &SourceProviderSpec,
    filter_spec: &Element,
    session: Option<&str>,
) -> Result<Vec<String>, Fault> {
    let mut selected = Vec::new();
    for object_spec in filter_spec.children_named("objectSet") {
        for object in select_objects(sdk, spec, object_spec, session)? {
            if !selected.contains(&object) {
                selected.push(object);
            }
        }
    }
    let prop_specs: Vec<&Element> = filter_spec.children_named("propSet").collect();
    let mut out = Vec::new();
    for (kind, id) in selected {
        let matching: Vec<&&Element> = prop_specs
            .iter()
            .filter(|p| objects::is_a(&kind, p.text_at("type").unwrap_or("")))
            .collect();
        if matching.is_empty() {
            continue;
        }
        let Some(props) = object_properties(sdk, spec, &kind, &id, session) else {
            continue;
        };
        let mut paths: Vec<String> = Vec::new();
        for prop_spec in matching {
            if prop_spec.bool_at("all") == Some(true) {
                paths.extend(props.iter().map(|(n, _)| n.to_string()));
            }
            paths.extend(
                prop_spec
                    .children_named("pathSet")
                    .map(|p| p.text.trim().to_string()),
            );
        }
        paths.dedup();
        let mut content = format!("<obj type=\"{}\">{}</obj>", escape(&kind), escape(&id));
        for path in paths {
            if let Some(value) = value_at(&props, &path) {
                content.push_str(&format!("<propSet><name>{}</name>", escape(&path)));
                value.write_any("val", &mut content);
                content.push_str("</propSet>");
            }
        }
        out.push(content);
    }
    Ok(out)
}

fn all_contents(sdk: &Sdk, call: &Element, session: Option<&str>) -> Result<Vec<String>, Fault> {
    let spec = sdk.spec()?;
    let mut out = Vec::new();
    for filter_spec in call.children_named("specSet") {
        out.extend(object_contents(sdk, &spec, filter_spec, session)?);
    }
    Ok(out)
}

/// `RetrieveProperties`: every `ObjectContent` as a `returnval`.
pub(crate) fn retrieve_properties(
    sdk: &Sdk,
    call: &Element,
    session: Option<&str>,
) -> MethodResult {
    Ok(all_contents(sdk, call, session)?
        .into_iter()
        .map(|c| format!("<returnval>{c}</returnval>"))
        .collect())
}

/// One page of results, and a token for the rest when there is more.
fn page(sdk: &Sdk, mut contents: Vec<String>, max: usize) -> String {
    if contents.is_empty() {
        return String::new();
    }
    let rest = if contents.len() > max {
        contents.split_off(max)
    } else {
        Vec::new()
    };
    let mut out = String::from("<returnval>");
    if !rest.is_empty() {
        let token = format!("token-{}", sdk.state().next());
        out.push_str(&format!("<token>{token}</token>"));
        sdk.state().pending.insert(token, rest);
    }
    for content in contents {
        out.push_str(&format!("<objects>{content}</objects>"));
    }
    out.push_str("</returnval>");
    out
}

/// How many objects one page holds when the caller does not say.
const DEFAULT_PAGE: usize = 100;

/// `RetrievePropertiesEx`: the first page (`options.maxObjects`).
pub(crate) fn retrieve_properties_ex(
    sdk: &Sdk,
    call: &Element,
    session: Option<&str>,
) -> MethodResult {
    let max = call
        .i64_at("options/maxObjects")
        .filter(|n| *n > 0)
        .map_or(DEFAULT_PAGE, |n| n as usize);
    let contents = all_contents(sdk, call, session)?;
    Ok(page(sdk, contents, max))
}

/// `ContinueRetrievePropertiesEx`: the next page of a token.
pub(crate) fn continue_retrieve(sdk: &Sdk, call: &Element) -> MethodResult {
    let token = call.text_at("token").unwrap_or("");
    let contents = sdk.state().pending.remove(token).ok_or_else(|| {
        Fault::invalid_argument("token", format!("no results under token {token}"))
    })?;
    Ok(page(sdk, contents, DEFAULT_PAGE))
}

pub(crate) fn cancel_retrieve(sdk: &Sdk, call: &Element) -> MethodResult {
    let token = call.text_at("token").unwrap_or("");
    sdk.state().pending.remove(token);
    Ok(String::new())
}

/// `ViewManager.CreateContainerView`.
pub(crate) fn create_container_view(sdk: &Sdk, call: &Element) -> MethodResult {
    let spec = sdk.spec()?;
    let container = call
        .child("container")
        .and_then(Element::moref)
        .ok_or_else(|| {
            Fault::invalid_argument("container", "a container view needs a container")
        })?;
    if objects::kind_of(&spec, &container.1).is_none() {
        return Err(Fault::not_found(&container.0, &container.1));
    }
    let view = View {
        container,
        types: call
            .children_named("type")
            .map(|t| t.text.trim().to_string())
            .collect(),
        recursive: call.bool_at("recursive") == Some(true),
    };
    let mut state = sdk.state();
    let id = state.session_object_id("view");
    state.views.insert(id.clone(), view);
    Ok(returnval(&V::r("ContainerView", &id)))
}

/// The answer to destroying a session's object: nothing, or not found when `removed` is `None`.
fn destroyed<T>(removed: Option<T>, this: &(String, String)) -> MethodResult {
    removed
        .map(|_| String::new())
        .ok_or_else(|| Fault::not_found(&this.0, &this.1))
}

pub(crate) fn destroy_view(sdk: &Sdk, this: &(String, String)) -> MethodResult {
    destroyed(sdk.state().views.remove(&this.1), this)
}

/// `PropertyCollector.CreateFilter`: what `WaitForUpdates` reports on.
pub(crate) fn create_filter(sdk: &Sdk, call: &Element) -> MethodResult {
    let spec = call
        .child("spec")
        .cloned()
        .ok_or_else(|| Fault::invalid_argument("spec", "CreateFilter needs a spec"))?;
    let mut state = sdk.state();
    let id = state.session_object_id("filter");
    state.filters.insert(id.clone(), spec);
    Ok(returnval(&V::r("PropertyFilter", &id)))
}

pub(crate) fn destroy_filter(sdk: &Sdk, this: &(String, String)) -> MethodResult {
    destroyed(sdk.state().filters.remove(&this.1), this)
}

/// The changes of every filter since `version` (everything, as `enter`, for a first call).
fn update_set(sdk: &Sdk, first: bool, session: Option<&str>) -> Result<String, Fault> {
    let spec = sdk.spec()?;
    let (filters, version) = {
        let state = sdk.state();
        (state.filters.clone(), state.update_version)
    };
    let mut out = format!("<version>{version}</version>");
    for (id, filter_spec) in filters {
        let contents = object_contents(sdk, &spec, &filter_spec, session)?;
        if contents.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "<filterSet><filter type=\"PropertyFilter\">{}</filter>",
            escape(&id)
        ));
        for content in contents {
            // An ObjectContent's propSets become the update's changeSet.
            let changes = content
                .replace("<propSet>", "<changeSet>")
                .replace("</propSet>", "<op>assign</op></changeSet>");
            let kind = if first { "enter" } else { "modify" };
            out.push_str(&format!(
                "<objectSet><kind>{kind}</kind>{changes}</objectSet>"
            ));
        }
        out.push_str("</filterSet>");
    }
    Ok(out)
}

/// `WaitForUpdates(Ex)`/`CheckForUpdates`: the lab's tasks finish as they are created, so every
/// change a caller can wait for has happened by the time it asks; a caller already up to date waits
/// briefly and gets nothing (`Ex`) or an empty update set.
pub(crate) async fn wait_for_updates(
    sdk: &Sdk,
    method: &str,
    call: &Element,
    session: Option<&str>,
) -> MethodResult {
    let asked: Option<u64> = call
        .text_at("version")
        .filter(|v| !v.is_empty())
        .and_then(|v| v.parse().ok());
    let current = sdk.state().update_version;
    let behind = asked.is_none_or(|v| v < current);
    if behind {
        let body = update_set(sdk, asked.is_none(), session)?;
        return Ok(format!("<returnval>{body}</returnval>"));
    }
    if method != "CheckForUpdates" {
        let max_wait = call
            .i64_at("options/maxWaitSeconds")
            .unwrap_or(1)
            .clamp(0, 1);
        tokio::time::sleep(Duration::from_secs(max_wait as u64)).await;
    }
    Ok(match method {
        "WaitForUpdates" => format!("<returnval><version>{current}</version></returnval>"),
        _ => String::new(),
    })
}
