//! The HTTP API (axum): routing of Kubernetes REST paths onto the store, content negotiation (JSON, Table,
//! PartialObjectMetadata, aggregated discovery), watch streams and fault injection.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::discovery;
use crate::error::ApiError;
use crate::faults::FaultSpec;
use crate::ownership;
use crate::patch::Patch;
use crate::protobuf;
use crate::random;
use crate::registry::{self, ResourceType};
use crate::rules;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{
    DeleteOptions, FieldValidation, ListOptions, Propagation, Store, WatchItem, WatchStart,
    WriteOptions, Written,
};
use crate::table::{self, IncludeObject};

/// Shared state of the HTTP server.
pub(crate) struct AppState {
    pub store: Store,
    pub faults: Arc<RwLock<FaultSpec>>,
    pub server_address: String,
    pub bookmark_interval: Duration,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// Answers the review kinds and TokenRequests (authentication itself is [`crate::auth::guard`]).
    pub auth: Arc<crate::auth::Auth>,
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/version",
            get(|| async { json_response(StatusCode::OK, &discovery::version()) }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route(
            "/openapi/v3",
            get(|| async { json_response(StatusCode::OK, &discovery::openapi_v3_index()) }),
        )
        .route("/openapi/v3/{*gv}", get(openapi_v3))
        .route("/openapi/v2", get(openapi_v2))
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(state)
}

async fn openapi_v3(axum::extract::Path(gv): axum::extract::Path<String>) -> Response {
    let parts: Vec<&str> = gv.split('/').collect();
    let doc = match parts.as_slice() {
        ["api", v] => discovery::openapi_v3_group_version("", v),
        ["apis", g, v] => discovery::openapi_v3_group_version(g, v),
        _ => None,
    };
    match doc {
        Some(d) => json_response(StatusCode::OK, &d),
        None => error_response(&ApiError::path_not_found(&format!("/openapi/v3/{gv}"))),
    }
}

/// `/openapi/v2` in JSON; a client that accepts only the protobuf form gets 406 (and falls back on v3).
async fn openapi_v2(headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let json_ok = accept.is_empty()
        || accept
            .split(',')
            .any(|t| t.contains("json") || t.trim().starts_with("*/*"));
    if !json_ok {
        return error_response(&ApiError::not_acceptable(
            "only application/json is served for /openapi/v2",
        ));
    }
    json_response(StatusCode::OK, &discovery::openapi_v2())
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error_response(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json_response(code, &e.to_status());
    if let Some(s) = e.details.as_ref().and_then(|d| d.retry_after_seconds) {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    resp
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

/// A parsed request target.
#[derive(Debug)]
enum Target {
    ApiRoot,
    ApisRoot,
    Group(String),
    ResourceList(String, String),
    Collection {
        rt: &'static ResourceType,
        namespace: Option<String>,
        watch: bool,
    },
    Object {
        rt: &'static ResourceType,
        namespace: Option<String>,
        name: String,
        status: bool,
        watch: bool,
    },
    /// `subresources.kubevirt.io/v1/namespaces/<ns>/virtualmachines/<name>/<start|stop|restart>`.
    VmSubresource {
        namespace: String,
        name: String,
        action: String,
    },
    /// `pods/<name>/log`: the text of the pod's [`registry::POD_LOG_ANNOTATION`].
    PodLog {
        namespace: String,
        name: String,
    },
    /// `serviceaccounts/<name>/token`: a TokenRequest.
    ServiceAccountToken {
        namespace: String,
        name: String,
    },
}

fn parse_target(path: &str) -> Result<Target, ApiError> {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let not_found = || ApiError::path_not_found(path);
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api"] => return Ok(Target::ApiRoot),
        ["apis"] => return Ok(Target::ApisRoot),
        ["api", "v1"] => return Ok(Target::ResourceList(String::new(), "v1".into())),
        ["apis", g] => return Ok(Target::Group((*g).to_string())),
        ["apis", g, v] => return Ok(Target::ResourceList((*g).to_string(), (*v).to_string())),
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        [
            "apis",
            crate::kubevirt::subresources::GROUP,
            crate::kubevirt::subresources::VERSION,
            "namespaces",
            ns,
            "virtualmachines",
            name,
            action,
        ] if crate::kubevirt::subresources::VM_ACTIONS.contains(action) => {
            return Ok(Target::VmSubresource {
                namespace: (*ns).to_string(),
                name: (*name).to_string(),
                action: (*action).to_string(),
            });
        }
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return Err(not_found()),
    };
    let (watch, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    let find = |plural: &str| registry::find(group, version, plural).ok_or_else(not_found);
    // A type is reached under `namespaces/<ns>/` exactly when it is namespaced, and its `status` only
    // when it has that subresource.
    let object = |plural: &str, namespace: Option<&str>, name: &str, status: bool| {
        let rt = find(plural)?;
        if rt.namespaced != namespace.is_some() || (status && !rt.status_subresource) {
            return Err(not_found());
        }
        Ok(Target::Object {
            rt,
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            status,
            watch,
        })
    };
    let target = match rest {
        [plural] => Target::Collection {
            rt: find(plural)?,
            namespace: None,
            watch,
        },
        ["namespaces", name, sub @ ("status" | "finalize")] => Target::Object {
            rt: find("namespaces")?,
            namespace: None,
            name: (*name).to_string(),
            status: *sub == "status",
            watch,
        },
        ["namespaces", ns, plural] => {
            let rt = find(plural)?;
            if !rt.namespaced {
                return Err(not_found());
            }
            Target::Collection {
                rt,
                namespace: Some((*ns).to_string()),
                watch,
            }
        }
        [plural, name] => object(plural, None, name, false)?,
        [plural, name, "status"] => object(plural, None, name, true)?,
        ["namespaces", ns, plural, name] => object(plural, Some(ns), name, false)?,
        ["namespaces", ns, "serviceaccounts", name, "token"] if group.is_empty() => {
            Target::ServiceAccountToken {
                namespace: (*ns).to_string(),
                name: (*name).to_string(),
            }
        }
        ["namespaces", ns, "pods", name, "log"] if group.is_empty() => Target::PodLog {
            namespace: (*ns).to_string(),
            name: (*name).to_string(),
        },
        ["namespaces", ns, plural, name, "status"] => object(plural, Some(ns), name, true)?,
        _ => return Err(not_found()),
    };
    Ok(target)
}

/// How the client wants objects rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rendering {
    Json,
    Table(IncludeObject),
    PartialMetadata,
}

fn rendering(headers: &HeaderMap, query: &HashMap<String, String>) -> Rendering {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The first acceptable alternative wins, as in the apiserver's negotiation.
    for alt in accept.split(',') {
        let alt = alt.trim();
        if alt.contains("as=Table") {
            return Rendering::Table(IncludeObject::parse(
                query.get("includeObject").map(String::as_str),
            ));
        }
        if alt.contains("as=PartialObjectMetadata") {
            return Rendering::PartialMetadata;
        }
        if alt.starts_with("application/json")
            || alt.starts_with("*/*")
            || alt.starts_with("application/*")
        {
            return Rendering::Json;
        }
    }
    Rendering::Json
}

fn wants_aggregated(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split(',').next().map(str::to_string))
        .is_some_and(|first| first.contains("g=apidiscovery.k8s.io") && first.contains("v=v2"))
}

fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
    })
}

fn list_options(
    rt: &ResourceType,
    query: &HashMap<String, String>,
) -> Result<ListOptions, ApiError> {
    let param = |key: &str| query.get(key).map(String::as_str).unwrap_or_default();
    let label_selector = LabelSelector::parse(param("labelSelector"))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let field_selector = FieldSelector::parse(param("fieldSelector"))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    rules::check_field_selector(rt, &field_selector)?;
    let limit = match query.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        ),
        None => None,
    };
    Ok(ListOptions {
        label_selector,
        field_selector,
        limit,
        continue_token: query.get("continue").filter(|c| !c.is_empty()).cloned(),
    })
}

fn write_options(
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    status: bool,
    user: &Option<crate::auth::UserInfo>,
) -> Result<WriteOptions, ApiError> {
    let dry_run = match query.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other:?}, supported: All"
            )));
        }
    };
    let field_validation = match query.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Ignore, Warn or Strict, not {other:?}"
            )));
        }
    };
    // Every write through the API records its manager: `fieldManager`, else the User-Agent's product.
    let field_manager = match query.get("fieldManager").filter(|m| !m.is_empty()) {
        Some(m) => m.clone(),
        None => ownership::manager_from_user_agent(
            headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default(),
        ),
    };
    Ok(WriteOptions {
        dry_run,
        status,
        field_validation,
        field_manager: Some(field_manager),
        user: user.clone(),
    })
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

fn check_json_body(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = content_type(headers);
    if ct.is_empty() || ct == "application/json" || ct == "application/yaml" || ct == "*/*" {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {ct})"
        )))
    }
}

fn parse_yaml_or_json(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    if content_type(headers) == "application/yaml" {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
        return serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("invalid YAML: {e}")));
    }
    parse_body(body)
}

/// The object of a POST/PUT body: JSON, YAML, or (for the kinds kubectl's typed commands write) protobuf.
fn parse_object_body(
    rt: &'static ResourceType,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Value, ApiError> {
    if content_type(headers) == protobuf::MEDIA_TYPE {
        return protobuf::decode(rt, body);
    }
    check_json_body(headers)?;
    parse_yaml_or_json(headers, body)
}

fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append("Warning", v);
        }
    }
    resp
}

fn render_one(rt: &ResourceType, object: &Value, rendering: Rendering, rv: u64) -> Value {
    match rendering {
        Rendering::Json => object.clone(),
        Rendering::PartialMetadata => partial_metadata(object),
        Rendering::Table(include) => {
            table::table(rt, std::slice::from_ref(object), rv, None, include)
        }
    }
}

/// The answer to a create, update or patch: 201 when it created the object, as kube-apiserver answers.
fn written_response(rt: &ResourceType, written: Written, rendering: Rendering) -> Response {
    let code = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let rv = written
        .object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    with_warnings(
        json_response(code, &render_one(rt, &written.object, rendering, rv)),
        &written.warnings,
    )
}

/// kube-apiserver's 405 for a method the requested path does not serve.
fn unsupported_method(method: &Method) -> ApiError {
    ApiError::method_not_allowed(format!(
        "the server does not allow this method on the requested resource ({method})"
    ))
}

/// `Ok` when `method` is the one the path serves, else kube-apiserver's 405.
fn serve_only(served: Method, method: &Method) -> Result<(), ApiError> {
    if *method == served {
        Ok(())
    } else {
        Err(unsupported_method(method))
    }
}

fn wants_watch(query: &HashMap<String, String>) -> bool {
    matches!(query.get("watch").map(String::as_str), Some("true" | "1"))
}

fn is_discovery(target: &Target) -> bool {
    matches!(
        target,
        Target::ApiRoot | Target::ApisRoot | Target::Group(_) | Target::ResourceList(..)
    )
}

async fn dispatch(
    State(app): State<Arc<AppState>>,
    caller: Option<axum::Extension<crate::auth::UserInfo>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = parse_query(uri.query());
    let target = match parse_target(uri.path()) {
        Ok(t) => t,
        Err(e) => return error_response(&e),
    };
    if !is_discovery(&target) {
        let faults = app.faults.read().map(|f| f.clone()).unwrap_or_default();
        if let Some(latency) = faults.latency {
            tokio::time::sleep(latency).await;
        }
        if faults.api_error_rate > 0.0 && random::unit_f64() < faults.api_error_rate {
            let e = if method == Method::GET {
                ApiError::service_unavailable("the lab injected a fault (api-error-rate)")
            } else {
                ApiError::internal("the lab injected a fault (api-error-rate)")
            };
            return error_response(&e);
        }
    }
    let user = caller.as_ref().map(|axum::Extension(user)| user.clone());
    if let Some(response) = answer_identity_request(&app, caller, &method, &headers, &body, &target)
    {
        return response.unwrap_or_else(|e| error_response(&e));
    }
    match handle(&app, user, &method, &uri, &query, &headers, &body, target).await {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    }
}

fn is_review(rt: &ResourceType) -> bool {
    registry::REVIEW_TYPES.iter().any(|r| std::ptr::eq(*r, rt))
}

/// Review kinds and TokenRequests, which are answered rather than stored; `None` for any other target.
fn answer_identity_request(
    app: &AppState,
    caller: Option<axum::Extension<crate::auth::UserInfo>>,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    target: &Target,
) -> Option<Result<Response, ApiError>> {
    let answered = match target {
        Target::Collection { rt, namespace, .. } if is_review(rt) => {
            let Some(axum::Extension(caller)) = caller else {
                return Some(Err(crate::auth::unauthorized()));
            };
            serve_only(Method::POST, method)
                .and_then(|()| parse_object_body(rt, headers, body))
                .and_then(|review| {
                    crate::auth::answer_review(
                        &app.auth,
                        rt,
                        namespace.as_deref(),
                        &caller,
                        &review,
                    )
                })
        }
        Target::Object { rt, .. } if is_review(rt) => Err(ApiError::method_not_allowed(
            "review objects are not stored; create one instead",
        )),
        Target::ServiceAccountToken { namespace, name } => serve_only(Method::POST, method)
            .and_then(|()| {
                if content_type(headers) == protobuf::MEDIA_TYPE {
                    protobuf::decode_token_request(body)
                } else {
                    parse_yaml_or_json(headers, body)
                }
            })
            .and_then(|request| crate::auth::token_request(&app.auth, namespace, name, &request)),
        _ => return None,
    };
    Some(answered.map(|answer| json_response(StatusCode::CREATED, &answer)))
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    app: &Arc<AppState>,
    user: Option<crate::auth::UserInfo>,
    method: &Method,
    uri: &Uri,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
    target: Target,
) -> Result<Response, ApiError> {
    let store = &app.store;
    let rendering = rendering(headers, query);
    match target {
        Target::ApiRoot => {
            serve_only(Method::GET, method)?;
            if wants_aggregated(headers) {
                return Ok(aggregated_response(discovery::aggregated(true)));
            }
            Ok(json_response(
                StatusCode::OK,
                &discovery::api_versions(&app.server_address),
            ))
        }
        Target::ApisRoot => {
            serve_only(Method::GET, method)?;
            if wants_aggregated(headers) {
                return Ok(aggregated_response(discovery::aggregated(false)));
            }
            Ok(json_response(StatusCode::OK, &discovery::api_group_list()))
        }
        Target::Group(g) => {
            serve_only(Method::GET, method)?;
            discovery::api_group_doc(&g)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(|| ApiError::path_not_found(uri.path()))
        }
        Target::ResourceList(g, v) => {
            serve_only(Method::GET, method)?;
            discovery::api_resource_list(&g, &v)
                .map(|d| json_response(StatusCode::OK, &d))
                .ok_or_else(|| ApiError::path_not_found(uri.path()))
        }
        Target::Collection {
            rt,
            namespace,
            watch,
        } => {
            let ns = namespace.as_deref();
            let is_watch = watch || wants_watch(query);
            match *method {
                Method::GET if is_watch => {
                    watch_response(app, rt, namespace, query, rendering, None)
                }
                Method::GET => {
                    let opts = list_options(rt, query)?;
                    let list = store.list(rt, ns, &opts)?;
                    let body = match rendering {
                        Rendering::Table(include) => table::table(
                            rt,
                            &list.items,
                            list.resource_version,
                            list.continue_token.as_deref(),
                            include,
                        ),
                        other => {
                            let mut metadata =
                                json!({"resourceVersion": list.resource_version.to_string()});
                            if let Some(c) = &list.continue_token {
                                metadata["continue"] = json!(c);
                            }
                            if let Some(n) = list.remaining_item_count {
                                metadata["remainingItemCount"] = json!(n);
                            }
                            let (kind, api_version, items) = if other == Rendering::PartialMetadata
                            {
                                (
                                    "PartialObjectMetadataList".to_string(),
                                    "meta.k8s.io/v1".to_string(),
                                    list.items.iter().map(partial_metadata).collect::<Vec<_>>(),
                                )
                            } else {
                                (format!("{}List", rt.kind), rt.api_version(), list.items)
                            };
                            json!({"kind": kind, "apiVersion": api_version, "metadata": metadata, "items": items})
                        }
                    };
                    Ok(json_response(StatusCode::OK, &body))
                }
                Method::POST => {
                    if rt.namespaced && ns.is_none() {
                        return Err(ApiError::method_not_allowed(
                            "create needs a namespace in the path for a namespaced resource",
                        ));
                    }
                    let obj = parse_object_body(rt, headers, body)?;
                    let written = store.create_with(
                        rt,
                        ns,
                        obj,
                        &write_options(query, headers, false, &user)?,
                    )?;
                    Ok(written_response(rt, written, rendering))
                }
                Method::DELETE => {
                    let opts = delete_options(query, body)?;
                    let deleted =
                        store.delete_collection(rt, ns, &list_options(rt, query)?, &opts)?;
                    Ok(json_response(
                        StatusCode::OK,
                        &json!({
                            "kind": format!("{}List", rt.kind),
                            "apiVersion": rt.api_version(),
                            "metadata": {"resourceVersion": store.resource_version().to_string()},
                            "items": deleted,
                        }),
                    ))
                }
                _ => Err(unsupported_method(method)),
            }
        }
        Target::ServiceAccountToken { .. } => Err(ApiError::method_not_allowed(
            "TokenRequests are answered before the store",
        )),
        Target::VmSubresource {
            namespace,
            name,
            action,
        } => {
            serve_only(Method::PUT, method)?;
            // virt-api reads an optional JSON body (StartOptions, StopOptions, RestartOptions).
            let options = if body.is_empty() {
                json!({})
            } else {
                parse_body(body)?
            };
            crate::kubevirt::subresources::handle(store, &namespace, &name, &action, &options)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Target::PodLog { namespace, name } => {
            serve_only(Method::GET, method)?;
            let pod = store.get(&registry::POD, Some(&namespace), &name)?;
            let text = pod
                .pointer(&format!(
                    "/metadata/annotations/{}",
                    registry::POD_LOG_ANNOTATION.replace('/', "~1")
                ))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let tail = query.get("tailLines").and_then(|t| t.parse::<usize>().ok());
            let lines: Vec<&str> = text.lines().collect();
            let start = tail.map_or(0, |t| lines.len().saturating_sub(t));
            let mut body = lines[start..].join("\n");
            if !body.is_empty() {
                body.push('\n');
            }
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body).into_response())
        }
        Target::Object {
            rt,
            namespace,
            name,
            status,
            watch,
        } => {
            let ns = namespace.as_deref();
            match *method {
                Method::GET if watch || wants_watch(query) => {
                    watch_response(app, rt, namespace.clone(), query, rendering, Some(name))
                }
                Method::GET => {
                    let obj = store.get(rt, ns, &name)?;
                    let rv = store.resource_version();
                    Ok(json_response(
                        StatusCode::OK,
                        &render_one(rt, &obj, rendering, rv),
                    ))
                }
                Method::PUT => {
                    let obj = parse_object_body(rt, headers, body)?;
                    let written = store.update_with(
                        rt,
                        ns,
                        &name,
                        obj,
                        &write_options(query, headers, status, &user)?,
                    )?;
                    Ok(written_response(rt, written, rendering))
                }
                Method::PATCH => {
                    let opts = write_options(query, headers, status, &user)?;
                    let patch = match content_type(headers).as_str() {
                        "application/merge-patch+json" => Patch::Merge(parse_body(body)?),
                        "application/json-patch+json" => Patch::Json(parse_body(body)?),
                        "application/strategic-merge-patch+json" => {
                            Patch::Strategic(parse_body(body)?)
                        }
                        "application/apply-patch+yaml" => {
                            let text = std::str::from_utf8(body).map_err(|_| {
                                ApiError::bad_request("the applied configuration is not UTF-8")
                            })?;
                            let config = serde_json::from_str(text).or_else(|_| {
                                serde_saphyr::from_str::<Value>(text).map_err(|e| {
                                    ApiError::bad_request(format!(
                                        "invalid applied configuration: {e}"
                                    ))
                                })
                            })?;
                            Patch::Apply {
                                config,
                                field_manager: query
                                    .get("fieldManager")
                                    .cloned()
                                    .unwrap_or_default(),
                                force: query.get("force").map(String::as_str) == Some("true"),
                            }
                        }
                        _ => return Err(rules::unsupported_patch_type(rt)),
                    };
                    let written = store.patch(rt, ns, &name, &patch, &opts)?;
                    Ok(written_response(rt, written, rendering))
                }
                Method::DELETE => {
                    if status {
                        return Err(ApiError::method_not_allowed(
                            "the status subresource cannot be deleted",
                        ));
                    }
                    let opts = delete_options(query, body)?;
                    let deleted = store.delete(rt, ns, &name, &opts)?;
                    let code = if deleted.removed {
                        StatusCode::OK
                    } else {
                        StatusCode::ACCEPTED
                    };
                    Ok(json_response(code, &deleted.object))
                }
                _ => Err(unsupported_method(method)),
            }
        }
    }
}

fn aggregated_response(doc: Value) -> Response {
    let body = serde_json::to_vec(&doc).unwrap_or_default();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, discovery::AGGREGATED_DISCOVERY_V2)],
        body,
    )
        .into_response()
}

fn delete_options(
    query: &HashMap<String, String>,
    body: &Bytes,
) -> Result<DeleteOptions, ApiError> {
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        parse_body(body)?
    };
    let policy = query.get("propagationPolicy").cloned().or_else(|| {
        body.get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let propagation = match policy.as_deref() {
        None | Some("") | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown propagationPolicy {other:?}"
            )));
        }
    };
    if body.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
        return Ok(DeleteOptions {
            propagation: Propagation::Orphan,
            ..delete_options(query, &Bytes::new())?
        });
    }
    let dry_run = query.get("dryRun").map(String::as_str) == Some("All")
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        dry_run,
        propagation,
        precondition_uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn watch_line(event_type: &str, object: &Value) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({"type": event_type, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn bookmark(rt: &ResourceType, rv: u64, initial_events_end: bool) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": metadata})
}

fn watch_response(
    app: &Arc<AppState>,
    rt: &'static ResourceType,
    namespace: Option<String>,
    query: &HashMap<String, String>,
    rendering: Rendering,
    single_name: Option<String>,
) -> Result<Response, ApiError> {
    let mut opts = list_options(rt, query)?;
    if let Some(name) = single_name {
        opts.field_selector
            .0
            .push(("metadata.name".into(), name, true));
    }
    let bookmarks = query.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let send_initial = query.get("sendInitialEvents").map(String::as_str);
    let rv = query
        .get("resourceVersion")
        .map(String::as_str)
        .unwrap_or_default();
    let start = match (send_initial, rv) {
        (Some("true"), _) => WatchStart::InitialEvents {
            bookmark: bookmarks,
        },
        (Some("false"), "" | "0") => WatchStart::Now,
        (_, "" | "0") => WatchStart::InitialEvents { bookmark: false },
        (_, rv) => WatchStart::After(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs);
    let drop_after = app.faults.read().ok().and_then(|f| f.watch_drop_after);
    let deadline = match (timeout, drop_after) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    match app.store.watch(rt, namespace.as_deref(), &opts, start) {
        Err(e) if e.code == 410 => {
            // The apiserver answers a too-old resourceVersion inside the stream, as an ERROR event.
            let line = watch_line("ERROR", &e.to_status());
            let _ = tx.try_send(line);
        }
        Err(e) => return Err(e),
        Ok(mut watch) => {
            let bookmark_interval = app.bookmark_interval;
            let mut shutdown = app.shutdown.clone();
            tokio::spawn(async move {
                let sleep = async move {
                    match deadline {
                        Some(d) => tokio::time::sleep(d).await,
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::pin!(sleep);
                let mut ticker = tokio::time::interval(bookmark_interval);
                ticker.tick().await;
                loop {
                    let line = tokio::select! {
                        _ = &mut sleep => break,
                        _ = shutdown.changed() => break,
                        _ = tx.closed() => break,
                        _ = ticker.tick(), if bookmarks => {
                            watch_line("BOOKMARK", &bookmark(rt, watch.last_resource_version(), false))
                        }
                        item = watch.next() => match item {
                            Ok(WatchItem::Event { event_type, object, resource_version }) => {
                                let rendered = render_one(rt, &object, rendering, resource_version);
                                watch_line(event_type.as_str(), &rendered)
                            }
                            Ok(WatchItem::InitialEventsEnd { resource_version }) => {
                                watch_line("BOOKMARK", &bookmark(rt, resource_version, true))
                            }
                            Err(_) => break,
                        },
                    };
                    if tx.send(line).await.is_err() {
                        break;
                    }
                }
            });
        }
    }
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_targets() {
        assert!(matches!(parse_target("/api").unwrap(), Target::ApiRoot));
        assert!(matches!(
            parse_target("/apis/forklift.konveyor.io/v1beta1").unwrap(),
            Target::ResourceList(..)
        ));
        match parse_target("/apis/forklift.konveyor.io/v1beta1/namespaces/ns/plans/p/status")
            .unwrap()
        {
            Target::Object {
                rt,
                namespace,
                name,
                status,
                ..
            } => {
                assert_eq!(
                    (rt.kind, namespace.as_deref(), name.as_str(), status),
                    ("Plan", Some("ns"), "p", true)
                );
            }
            other => panic!("{other:?}"),
        }
        match parse_target("/api/v1/namespaces/ns").unwrap() {
            Target::Object { rt, name, .. } => {
                assert_eq!((rt.kind, name.as_str()), ("Namespace", "ns"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_target("/api/v1/watch/namespaces/ns/secrets").unwrap(),
            Target::Collection { watch: true, .. }
        ));
        assert!(matches!(
            parse_target("/api/v1/secrets").unwrap(),
            Target::Collection {
                namespace: None,
                ..
            }
        ));
        assert_eq!(parse_target("/api/v1/nothings").unwrap_err().code, 404);
        assert_eq!(parse_target("/api/v1/secrets/x").unwrap_err().code, 404);
        assert_eq!(
            parse_target("/apis/storage.k8s.io/v1/namespaces/x/storageclasses")
                .unwrap_err()
                .code,
            404
        );
    }

    #[test]
    fn query_strings_decode() {
        let q = parse_query(Some(
            "labelSelector=app%3Dweb%2Ctier+in+%28a%29&limit=5&watch",
        ));
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["limit"], "5");
        assert_eq!(q["watch"], "");
    }
}
