//! The review kinds, answered at once and never stored: TokenReview and SelfSubjectReview
//! (authentication.k8s.io), SubjectAccessReview, SelfSubjectAccessReview and LocalSubjectAccessReview
//! (authorization.k8s.io) — what `kubectl auth can-i`, `kubectl auth whoami` and Forklift's inventory ask.

use serde_json::{Value, json};

use super::{Attributes, Auth, Decision, UserInfo};
use crate::error::ApiError;
use crate::registry::{self, ResourceType};

/// The answer to `POST` of a review kind by `caller`.
pub fn answer(
    auth: &Auth,
    rt: &'static ResourceType,
    namespace: Option<&str>,
    caller: &UserInfo,
    body: &Value,
) -> Result<Value, ApiError> {
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = if std::ptr::eq(rt, &registry::TOKEN_REVIEW) {
        token_review(auth, &spec)
    } else if std::ptr::eq(rt, &registry::SELF_SUBJECT_REVIEW) {
        json!({"userInfo": caller.to_json()})
    } else if std::ptr::eq(rt, &registry::SELF_SUBJECT_ACCESS_REVIEW) {
        access(auth, caller, &Attributes::from_review_spec(&spec))
    } else if std::ptr::eq(rt, &registry::SUBJECT_ACCESS_REVIEW) {
        access(auth, &subject(&spec)?, &Attributes::from_review_spec(&spec))
    } else if std::ptr::eq(rt, &registry::LOCAL_SUBJECT_ACCESS_REVIEW) {
        let attributes = Attributes::from_review_spec(&spec);
        let namespace = namespace.unwrap_or_default();
        if attributes.namespace != namespace {
            return Err(ApiError::bad_request(format!(
                "spec.resourceAttributes.namespace must match namespace: {namespace}"
            )));
        }
        access(auth, &subject(&spec)?, &attributes)
    } else {
        return Err(ApiError::method_not_allowed(format!(
            "{} cannot be reviewed",
            rt.plural
        )));
    };
    let mut answer = json!({
        "kind": rt.kind,
        "apiVersion": rt.api_version(),
        "metadata": body.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "spec": spec,
        "status": status,
    });
    if std::ptr::eq(rt, &registry::SELF_SUBJECT_REVIEW) {
        // SelfSubjectReview has no spec.
        if let Value::Object(o) = &mut answer {
            o.remove("spec");
        }
    }
    Ok(answer)
}

fn token_review(auth: &Auth, spec: &Value) -> Value {
    let token = spec
        .get("token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match auth.authenticate(token) {
        Some(user) => json!({
            "authenticated": true,
            "user": user.to_json(),
            "audiences": spec.get("audiences").cloned().filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
                .unwrap_or_else(|| json!(["https://kubernetes.default.svc"])),
        }),
        None => json!({"user": {}, "error": "invalid bearer token"}),
    }
}

/// The user a SubjectAccessReview asks about; it must name a user or a group.
fn subject(spec: &Value) -> Result<UserInfo, ApiError> {
    let username = spec
        .get("user")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let groups: Vec<String> = spec
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if username.is_empty() && groups.is_empty() {
        return Err(ApiError::invalid(
            "SubjectAccessReview.authorization.k8s.io",
            "authorization.k8s.io",
            "SubjectAccessReview",
            "",
            vec![crate::error::StatusCause {
                reason: "FieldValueRequired".into(),
                message: "Required value: at least one of user or group must be specified".into(),
                field: "spec.user".into(),
            }],
        ));
    }
    Ok(UserInfo {
        username,
        uid: spec
            .get("uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        groups,
    })
}

fn access(auth: &Auth, user: &UserInfo, attributes: &Attributes) -> Value {
    match auth.authorize(user, attributes) {
        Decision::Allow(reason) if reason.is_empty() => json!({"allowed": true}),
        Decision::Allow(reason) => json!({"allowed": true, "reason": reason}),
        Decision::Deny(reason) if reason.is_empty() => json!({"allowed": false}),
        Decision::Deny(reason) => json!({"allowed": false, "reason": reason}),
    }
}
