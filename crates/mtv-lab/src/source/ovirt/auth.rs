//! The engine's authentication: SSO (`/ovirt-engine/sso/oauth/token`, the OAuth password grant the SDKs
//! use) hands out bearer tokens; the API also takes HTTP Basic credentials, as the engine does; the
//! SSO logout (`/ovirt-engine/services/sso-logout`) revokes a token.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Form;
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;

use super::Engine;

/// The bearer tokens SSO handed out and has not revoked.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Arc<Mutex<HashSet<String>>>);

impl Tokens {
    fn issue(&self) -> String {
        let token = format!(
            "{}{}",
            crate::random::name_suffix(32),
            crate::random::name_suffix(32)
        );
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone());
        token
    }

    fn holds(&self, token: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(token)
    }

    fn revoke(&self, token: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
}

impl Engine {
    /// Whether a user name and password are the engine's.
    fn accepts(&self, username: &str, password: &str) -> bool {
        self.lab
            .with_provider(&self.provider, |p| {
                p.username.as_deref().is_none_or(|u| u == username)
                    && p.password.as_deref().is_none_or(|pw| pw == password)
            })
            .unwrap_or(false)
    }
}

/// `POST /ovirt-engine/sso/oauth/token`: `grant_type=password`, `username`, `password`, `scope`.
pub async fn token(
    State(engine): State<Engine>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("grant_type").map(String::as_str) != Some("password") {
        return sso_error(
            "unsupported_grant_type",
            "The grant type is not supported; use grant_type=password.",
        );
    }
    let username = form.get("username").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    if !engine.accepts(&username, &password) {
        return sso_error(
            "access_denied",
            &format!(
                "Cannot authenticate user '{username}': The username or password is incorrect.."
            ),
        );
    }
    let exp = (crate::clock::unix_now() + 10 * 3600) * 1000;
    Json(json!({
        "access_token": engine.tokens.issue(),
        "scope": form.get("scope").cloned().unwrap_or_else(|| "ovirt-app-api".into()),
        "exp": exp.to_string(),
        "token_type": "bearer",
    }))
    .into_response()
}

fn sso_error(code: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

/// `POST /ovirt-engine/services/sso-logout`: revokes `token`.
pub async fn logout(
    State(engine): State<Engine>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(token) = form.get("token") {
        engine.tokens.revoke(token);
    }
    Json(json!({})).into_response()
}

/// Lets a request to the API through with a live bearer token or the engine's Basic credentials.
pub async fn require(State(engine): State<Engine>, request: Request, next: Next) -> Response {
    if authorized(&engine, request.headers()) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"RESTAPI\"")],
    )
        .into_response()
}

fn authorized(engine: &Engine, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    if let Some(token) = value.strip_prefix("Bearer ") {
        return engine.tokens.holds(token.trim());
    }
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let decoded = String::from_utf8_lossy(&decoded);
    decoded
        .split_once(':')
        .is_some_and(|(user, password)| engine.accepts(user, password))
}
