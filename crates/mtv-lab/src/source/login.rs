//! `POST /lab/v1/sources/login`: checks credentials against a simulated source without changing
//! anything, as logging in to vCenter or oVirt does: what `mtv-tests doctor` asks of a lab source
//! before a run, so that a wrong password is found before a Provider is created. The answer is the
//! one Forklift's connection test would give: 200 with the source's name, 401 for a wrong user or
//! password, 404 when no source answers at the URL.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{ConnectError, SourceLab};

/// The profile's view of the source: its type, URL and credentials.
#[derive(Debug, Deserialize)]
pub struct Login {
    #[serde(rename = "type")]
    provider_type: String,
    url: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

pub async fn login(State(lab): State<SourceLab>, Json(login): Json<Login>) -> Response {
    let answer = lab.connect(
        &login.provider_type,
        &login.url,
        login.username.as_deref(),
        login.password.as_deref(),
    );
    match answer {
        Ok(source) => (StatusCode::OK, Json(json!({ "source": source }))).into_response(),
        Err(error) => {
            let (status, kind) = match error {
                ConnectError::AuthFailed => (StatusCode::UNAUTHORIZED, "AuthFailed"),
                ConnectError::Unreachable { .. } => (StatusCode::NOT_FOUND, "Unreachable"),
            };
            let body = json!({ "error": kind, "message": error.to_string() });
            (status, Json(body)).into_response()
        }
    }
}
