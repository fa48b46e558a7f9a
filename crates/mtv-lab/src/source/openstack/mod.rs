//! The lab's OpenStack source on the real OpenStack APIs, as openstacksdk and the suite's adapter
//! speak them: Keystone v3 (password authentication, the service catalog), Nova, Cinder v3, Glance v2
//! and Neutron v2.0, each under its own path prefix of one listener. It is a view of the one source
//! model ([`SourceLab`]): the servers are the provider's VMs, their volumes its disks, so whatever
//! these APIs change, the Forklift inventory shows.
//!
//! The catalog's URLs are built from each request's own scheme, host and mount point, so the router
//! answers right wherever it is mounted (`Router::nest` included).

mod compute;
mod identity;
mod image;
mod network;
pub mod store;
mod volume;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{SourceError, SourceLab};

/// Path prefixes of the services under the listener (Keystone is at the root: `/v3`).
pub const COMPUTE_PREFIX: &str = "/compute";
pub const VOLUME_PREFIX: &str = "/volume";
pub const IMAGE_PREFIX: &str = "/image";
pub const NETWORK_PREFIX: &str = "/network";

/// Every OpenStack API of one lab source provider, on one listener.
pub fn router(lab: SourceLab, provider: String) -> Router {
    let api = Api {
        lab,
        provider,
        tokens: Arc::new(Mutex::new(BTreeMap::new())),
    };
    let authenticated = Router::new()
        .merge(compute::routes())
        .merge(volume::routes())
        .merge(image::routes())
        .merge(network::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            api.clone(),
            require_token,
        ));
    Router::new()
        .merge(identity::routes())
        .merge(compute::version_routes())
        .merge(volume::version_routes())
        .merge(image::version_routes())
        .merge(network::version_routes())
        .merge(authenticated)
        .with_state(api)
}

/// What every handler shares: the model, which provider this is, the issued tokens.
#[derive(Clone)]
pub(crate) struct Api {
    lab: SourceLab,
    provider: String,
    /// Issued token → its scope.
    tokens: Arc<Mutex<BTreeMap<String, identity::Scope>>>,
}

impl Api {
    fn spec(&self) -> Result<super::SourceProviderSpec, SourceError> {
        self.lab.provider(&self.provider)
    }

    /// The project id servers, volumes and networks belong to.
    fn project_id(&self) -> String {
        self.spec()
            .ok()
            .and_then(|s| s.project)
            .unwrap_or_else(|| "admin".to_string())
    }
}

/// Where this router is reached from the client's side: `scheme://host[/mount]`, no trailing `/`.
pub(crate) struct Base(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let scheme = parts
            .uri
            .scheme_str()
            .map(str::to_string)
            .or_else(|| header(&parts.headers, "x-forwarded-proto"))
            // The router is served over TLS (the sources' listeners are HTTPS only).
            .unwrap_or_else(|| "https".to_string());
        let host = header(&parts.headers, "host")
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".to_string());
        // Nested under a prefix, the original URI's path is the prefix plus this router's path.
        let path = parts.uri.path();
        let mount = parts
            .extensions
            .get::<OriginalUri>()
            .and_then(|original| original.path().strip_suffix(path).map(str::to_string))
            .unwrap_or_default();
        Ok(Base(format!(
            "{scheme}://{host}{}",
            mount.trim_end_matches('/')
        )))
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Rejects a request without a token Keystone issued, as every OpenStack service does.
async fn require_token(State(api): State<Api>, request: Request, next: Next) -> Response {
    let known = header(request.headers(), "x-auth-token").is_some_and(|token| {
        api.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&token)
    });
    if known {
        next.run(request).await
    } else {
        identity::unauthorized()
    }
}

/// An error answer of a handler, boxed: a response is too large to travel in every `Result`.
pub(crate) struct Fault(Box<Response>);

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for Fault {
    fn from(response: Response) -> Self {
        Fault(Box::new(response))
    }
}

/// An error in the body shape of Nova and Cinder (`{"itemNotFound": {"code": 404, ...}}`).
pub(crate) fn fault(status: StatusCode, message: impl Into<String>) -> Fault {
    let kind = match status {
        StatusCode::NOT_FOUND => "itemNotFound",
        StatusCode::CONFLICT => "conflictingRequest",
        StatusCode::FORBIDDEN => "forbidden",
        _ => "badRequest",
    };
    let body = json!({kind: {"code": status.as_u16(), "message": message.into()}});
    (status, axum::Json(body)).into_response().into()
}

/// A model error as Nova and Cinder answer it.
pub(crate) fn model_fault(error: SourceError) -> Fault {
    let status = if store::is_not_found(&error) {
        StatusCode::NOT_FOUND
    } else {
        match error {
            SourceError::Conflict(_) => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        }
    };
    fault(status, error.to_string())
}

pub(crate) type ApiResult = Result<Response, Fault>;

/// The provider's current model, or the model's error as the service answers it.
pub(crate) fn spec_of(api: &Api) -> Result<super::SourceProviderSpec, Fault> {
    api.spec().map_err(model_fault)
}

/// A request's JSON body, or the 400 Nova and Cinder answer for one they cannot read.
pub(crate) fn json_body(body: &str) -> Result<Value, Fault> {
    serde_json::from_str(body).map_err(|e| {
        fault(
            StatusCode::BAD_REQUEST,
            format!("Malformed request body: {e}"),
        )
    })
}

/// What a request's `OpenStack-API-Version: {service} x.y` header names, if it names `service`.
pub(crate) fn requested_microversion<'h>(headers: &'h HeaderMap, service: &str) -> Option<&'h str> {
    headers
        .get("openstack-api-version")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix(service).map(str::trim))
}

/// The microversion a request names in `text` (`latest` or `major.minor`); `min` when it names none,
/// and the message the service answers for one outside `min..=max`.
pub(crate) fn microversion_in(
    text: Option<&str>,
    min: (u32, u32),
    max: (u32, u32),
) -> Result<(u32, u32), String> {
    let Some(text) = text else {
        return Ok(min);
    };
    if text.eq_ignore_ascii_case("latest") {
        return Ok(max);
    }
    let parsed = text
        .split_once('.')
        .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)));
    match parsed {
        Some(v) if v >= min && v <= max => Ok(v),
        _ => Err(format!(
            "Version {text} is not supported by the API. Minimum is {}.{} and maximum is {}.{}.",
            min.0, min.1, max.0, max.1
        )),
    }
}

/// A JSON answer with a status.
pub(crate) fn reply(status: StatusCode, body: Value) -> ApiResult {
    Ok((status, axum::Json(body)).into_response())
}

/// The id the Forklift inventory and these APIs both give a server's volume attachment.
pub(crate) fn attachment_id(server_id: &str, volume_id: &str) -> String {
    crate::inventory::render::stable_uuid(&format!("{server_id}/{volume_id}"))
}

/// Whether `name` passes a Nova-style `name` filter (a regular expression searched in the name).
pub(crate) fn name_matches(filter: Option<&String>, name: &str) -> bool {
    match filter {
        None => true,
        Some(pattern) => match regex::Regex::new(pattern) {
            Ok(re) => re.is_match(name),
            Err(_) => name.contains(pattern.as_str()),
        },
    }
}
