//! Errors of the store and the API, and their rendering as Kubernetes `Status` objects.

use serde_json::{Value, json};

/// One `details.causes[]` entry of a `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, `FieldValueTypeInvalid`, ...
    pub reason: String,
    pub message: String,
    /// The field path, e.g. `spec.provider.source`.
    pub field: String,
}

/// An API error that maps onto a Kubernetes `Status` (code, reason, message, details).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub causes: Vec<StatusCause>,
    /// The rest of `details` (boxed: errors travel in `Result`s everywhere).
    pub details: Option<Box<ErrorDetails>>,
}

/// `details.kind` / `details.group` / `details.name` and `retryAfterSeconds` of a `Status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetails {
    pub kind: Option<String>,
    pub group: Option<String>,
    pub name: Option<String>,
    /// Seconds a client should wait before retrying (503, 429).
    pub retry_after_seconds: Option<u64>,
}

/// Constructors of errors that carry only a status code, a reason and a message, one a line:
/// `name => code "Reason"`.
macro_rules! status_constructors {
    ($($(#[$doc:meta])* $name:ident => $code:literal $reason:literal,)*) => {
        $(
            $(#[$doc])*
            pub fn $name(message: impl Into<String>) -> Self {
                Self::new($code, $reason, message)
            }
        )*
    };
}

/// `plural.group` as the API server names a resource in its messages (`plural` for the core group).
fn qualified_resource(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

impl ApiError {
    fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_string(),
            message: message.into(),
            causes: Vec::new(),
            details: None,
        }
    }

    /// Adds `details` naming the object.
    pub fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        let d = self.details.get_or_insert_with(Box::default);
        d.group = Some(group.to_string()).filter(|g| !g.is_empty());
        d.kind = Some(kind.to_string());
        d.name = Some(name.to_string()).filter(|n| !n.is_empty());
        self
    }

    /// An error about the object `name` of `plural.group`, with the details naming it; `message`
    /// gets the resource as the API server writes it (`plural.group`).
    fn about_object(
        code: u16,
        reason: &str,
        (group, plural, name): (&str, &str, &str),
        message: impl FnOnce(&str) -> String,
    ) -> Self {
        Self::new(code, reason, message(&qualified_resource(group, plural)))
            .with_details(group, plural, name)
    }

    /// 404 `plans.forklift.konveyor.io "x" not found`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::about_object(404, "NotFound", (group, plural, name), |q| {
            format!("{q} \"{name}\" not found")
        })
    }

    /// 409 `... already exists`.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::about_object(409, "AlreadyExists", (group, plural, name), |q| {
            format!("{q} \"{name}\" already exists")
        })
    }

    /// 409 optimistic-concurrency conflict.
    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        Self::about_object(409, "Conflict", (group, plural, name), |q| {
            format!("Operation cannot be fulfilled on {q} \"{name}\": {why}")
        })
    }

    /// 422 with field causes; the message lists them like the apiserver does.
    pub fn invalid(
        qualified_kind: &str,
        group: &str,
        kind: &str,
        name: &str,
        causes: Vec<StatusCause>,
    ) -> Self {
        let listed: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if listed.len() == 1 {
            listed[0].clone()
        } else {
            format!("[{}]", listed.join(", "))
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {joined}"),
        )
        .with_details(group, kind, name);
        e.causes = causes;
        e
    }

    status_constructors! {
        bad_request => 400 "BadRequest",
        method_not_allowed => 405 "MethodNotAllowed",
        forbidden => 403 "Forbidden",
        unsupported_media_type => 415 "UnsupportedMediaType",
        not_acceptable => 406 "NotAcceptable",
        /// 410 `Expired`: the requested resourceVersion is older than the watch history.
        expired => 410 "Expired",
        internal => 500 "InternalError",
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(503, "ServiceUnavailable", message);
        e.details
            .get_or_insert_with(Box::default)
            .retry_after_seconds = Some(1);
        e
    }

    /// A 404 for a path that names no served resource.
    pub fn path_not_found(path: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }

    pub fn is_not_found(&self) -> bool {
        self.code == 404
    }

    pub fn is_conflict(&self) -> bool {
        self.code == 409 && self.reason == "Conflict"
    }

    /// The `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut details = serde_json::Map::new();
        let d = self.details.as_deref().cloned().unwrap_or_default();
        if let Some(n) = &d.name {
            details.insert("name".into(), json!(n));
        }
        if let Some(g) = &d.group {
            details.insert("group".into(), json!(g));
        }
        if let Some(k) = &d.kind {
            details.insert("kind".into(), json!(k));
        }
        if !self.causes.is_empty() {
            details.insert(
                "causes".into(),
                Value::Array(
                    self.causes
                        .iter()
                        .map(
                            |c| json!({"reason": c.reason, "message": c.message, "field": c.field}),
                        )
                        .collect(),
                ),
            );
        }
        if let Some(s) = d.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), json!(s));
        }
        if self.reason.is_empty() {
            // `reason` is omitempty in a Status (webhook denials carry none).
            if let Value::Object(m) = &mut status {
                m.remove("reason");
            }
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// Errors of the lab as a whole (startup, files, serving).
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("cannot bind the lab API server to {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the kubeconfig to {path}: {source}")]
    WriteKubeconfig {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the providers file to {path}: {source}")]
    WriteProvidersFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid --faults spec: {0}")]
    Faults(String),
    #[error("invalid lab file: {0}")]
    LabFile(String),
    #[error("seeding the lab failed: {0}")]
    Seed(#[from] ApiError),
    #[error("Provider {0} got no connection verdict (Ready or ConnectionFailed) in time")]
    NoVerdict(String),
    #[error("cannot set up the lab's TLS: {0}")]
    Tls(String),
    #[error("the lab server failed: {0}")]
    Serve(#[source] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shapes() {
        let s = ApiError::not_found("forklift.konveyor.io", "plans", "p1").to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["message"], "plans.forklift.konveyor.io \"p1\" not found");
        assert_eq!(s["details"]["kind"], "plans");
        let cause = StatusCause {
            reason: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: "spec.provider".into(),
        };
        let s = ApiError::invalid(
            "Plan.forklift.konveyor.io",
            "forklift.konveyor.io",
            "Plan",
            "p1",
            vec![cause],
        )
        .to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(
            s["message"],
            "Plan.forklift.konveyor.io \"p1\" is invalid: spec.provider: Required value"
        );
        assert_eq!(s["details"]["causes"][0]["field"], "spec.provider");
    }
}
