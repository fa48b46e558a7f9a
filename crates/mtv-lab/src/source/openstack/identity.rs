//! Keystone v3: version discovery, password authentication scoped to the provider's project (in the
//! `Default` domain), the `X-Subject-Token` header and a service catalog pointing back at this
//! listener, and token validation.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Api, Base, COMPUTE_PREFIX, IMAGE_PREFIX, NETWORK_PREFIX, VOLUME_PREFIX, header};
use crate::{clock, random};

/// The one domain of the lab's Keystone.
const DOMAIN_ID: &str = "default";
const DOMAIN_NAME: &str = "Default";
/// The project name when the lab file names none.
const DEFAULT_PROJECT_NAME: &str = "admin";
/// Tokens last a day, as Keystone's default `[token] expiration`.
const TOKEN_LIFETIME_SECS: i64 = 24 * 3600;

/// What a token is scoped to.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    issued_at: String,
    expires_at: String,
}

pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/", get(versions))
        .route("/v3", get(version))
        .route("/v3/", get(version))
        .route("/v3/auth/tokens", post(issue_token).get(validate_token))
}

/// Keystone's 401 body.
pub(crate) fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", "Keystone uri=\"/v3\"")],
        Json(json!({"error": {
            "code": 401,
            "title": "Unauthorized",
            "message": "The request you have made requires authentication.",
        }})),
    )
        .into_response()
}

fn v3_document(base: &str) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

async fn versions(Base(base): Base) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(json!({"versions": {"values": [v3_document(&base)]}})),
    )
        .into_response()
}

async fn version(Base(base): Base) -> Response {
    Json(json!({"version": v3_document(&base)})).into_response()
}

/// Whether a `{"id"}` or `{"name"}` reference names the lab's domain.
fn is_default_domain(domain: Option<&Value>) -> bool {
    match domain {
        None => true,
        Some(d) => {
            d.get("id").and_then(Value::as_str) == Some(DOMAIN_ID)
                || d.get("name").and_then(Value::as_str) == Some(DOMAIN_NAME)
        }
    }
}

/// The id Keystone gives the provider's user (stable, as a real user's is).
pub(crate) fn user_id(name: &str) -> String {
    crate::inventory::render::stable_uuid(&format!("user/{name}")).replace('-', "")
}

/// Checks the password method's user against the provider's credentials.
fn user_ok(api: &Api, user: &Value) -> bool {
    let Ok(spec) = api.spec() else {
        return false;
    };
    let name_ok = match (user.get("name").and_then(Value::as_str), user.get("id")) {
        (Some(name), _) => {
            spec.username.as_deref() == Some(name) && is_default_domain(user.get("domain"))
        }
        (None, Some(id)) => spec
            .username
            .as_deref()
            .is_some_and(|name| id.as_str() == Some(user_id(name).as_str())),
        _ => false,
    };
    let password = user.get("password").and_then(Value::as_str);
    name_ok && spec.password.as_deref().is_none_or(|p| password == Some(p))
}

/// Checks a project scope: the provider's project by id, or by name in the lab's domain.
fn project_ok(api: &Api, project: &Value) -> bool {
    let Ok(spec) = api.spec() else {
        return false;
    };
    let name = spec.project_name.as_deref().unwrap_or(DEFAULT_PROJECT_NAME);
    match (
        project.get("id").and_then(Value::as_str),
        project.get("name"),
    ) {
        (Some(id), _) => spec.project.as_deref() == Some(id),
        (None, Some(n)) => n.as_str() == Some(name) && is_default_domain(project.get("domain")),
        _ => false,
    }
}

/// `POST /v3/auth/tokens` with the password method.
async fn issue_token(State(api): State<Api>, Base(base): Base, body: String) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return bad_request("the request body is not JSON");
    };
    let identity = &body["auth"]["identity"];
    let password_method = identity["methods"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m == "password"));
    if !password_method {
        return bad_request("the lab's Keystone supports the password method only");
    }
    if !user_ok(&api, &identity["password"]["user"]) {
        return unauthorized();
    }
    let project = body["auth"]["scope"].get("project");
    if project.is_some_and(|p| !project_ok(&api, p)) {
        return unauthorized();
    }
    let now = clock::unix_now();
    let scope = Scope {
        issued_at: rfc3339(now),
        expires_at: rfc3339(now + TOKEN_LIFETIME_SECS),
    };
    let token = random::uuid_v4().replace('-', "");
    let document = token_document(&api, &base, &scope, project.is_some());
    api.tokens
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), scope);
    (
        StatusCode::CREATED,
        [("x-subject-token", token)],
        Json(document),
    )
        .into_response()
}

/// `GET /v3/auth/tokens`: the `X-Subject-Token`'s document, for a caller holding a token too.
async fn validate_token(State(api): State<Api>, Base(base): Base, headers: HeaderMap) -> Response {
    let tokens = api.tokens.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let caller = header(&headers, "x-auth-token").and_then(|t| tokens.get(&t).cloned());
    if caller.is_none() {
        return unauthorized();
    }
    match header(&headers, "x-subject-token").and_then(|t| tokens.get(&t).cloned()) {
        Some(scope) => Json(token_document(&api, &base, &scope, true)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": 404, "title": "Not Found", "message": "Could not find token."}})),
        )
            .into_response(),
    }
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"code": 400, "title": "Bad Request", "message": message}})),
    )
        .into_response()
}

/// Keystone writes token times with microseconds.
fn rfc3339(unix: i64) -> String {
    clock::format_rfc3339(unix).replace('Z', ".000000Z")
}

/// The token body: user, project, roles and (scoped) the catalog.
fn token_document(api: &Api, base: &str, scope: &Scope, scoped: bool) -> Value {
    let spec = api.spec().ok();
    let username = spec
        .as_ref()
        .and_then(|s| s.username.clone())
        .unwrap_or_default();
    let domain = json!({"id": DOMAIN_ID, "name": DOMAIN_NAME});
    let mut token = json!({
        "methods": ["password"],
        "user": {
            "id": user_id(&username),
            "name": username,
            "domain": domain,
            "password_expires_at": null,
        },
        "audit_ids": [random::uuid_v4().replace('-', "")[..22].to_string()],
        "issued_at": scope.issued_at,
        "expires_at": scope.expires_at,
    });
    if scoped {
        let project_name = spec
            .as_ref()
            .and_then(|s| s.project_name.clone())
            .unwrap_or_else(|| DEFAULT_PROJECT_NAME.to_string());
        token["project"] = json!({"id": api.project_id(), "name": project_name, "domain": domain});
        token["is_domain"] = json!(false);
        token["roles"] = json!([
            {"id": crate::inventory::render::stable_uuid("role/admin").replace('-', ""), "name": "admin"},
            {"id": crate::inventory::render::stable_uuid("role/member").replace('-', ""), "name": "member"},
        ]);
        token["catalog"] = catalog(api, base);
    }
    json!({"token": token})
}

/// The service catalog: each service's public, internal and admin endpoint, all on this listener.
fn catalog(api: &Api, base: &str) -> Value {
    let region = api
        .spec()
        .ok()
        .and_then(|s| s.region)
        .unwrap_or_else(|| "regionOne".to_string());
    let project = api.project_id();
    let services = [
        ("identity", "keystone", format!("{base}/v3")),
        ("compute", "nova", format!("{base}{COMPUTE_PREFIX}/v2.1")),
        (
            "block-storage",
            "cinder",
            format!("{base}{VOLUME_PREFIX}/v3/{project}"),
        ),
        (
            "volumev3",
            "cinderv3",
            format!("{base}{VOLUME_PREFIX}/v3/{project}"),
        ),
        ("image", "glance", format!("{base}{IMAGE_PREFIX}")),
        ("network", "neutron", format!("{base}{NETWORK_PREFIX}")),
    ];
    let entries: Vec<Value> = services
        .iter()
        .map(|(kind, name, url)| {
            let endpoints: Vec<Value> = ["public", "internal", "admin"]
                .iter()
                .map(|interface| {
                    json!({
                        "id": crate::inventory::render::stable_uuid(&format!("{kind}/{interface}")).replace('-', ""),
                        "interface": interface,
                        "region": region,
                        "region_id": region,
                        "url": url,
                    })
                })
                .collect();
            json!({
                "id": crate::inventory::render::stable_uuid(&format!("service/{kind}")).replace('-', ""),
                "type": kind,
                "name": name,
                "endpoints": endpoints,
            })
        })
        .collect();
    Value::Array(entries)
}
