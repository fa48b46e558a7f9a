//! ServiceAccount credentials: TokenRequest (`POST .../serviceaccounts/<name>/token`) and the legacy
//! token Secret (`type: kubernetes.io/service-account-token`), which Kubernetes' token controller fills
//! with `token`, `ca.crt` and `namespace` (the lab fills it as the Secret is created).

use std::sync::{Arc, Weak};

use base64::Engine;
use serde_json::{Value, json};

use super::{Auth, UserInfo, uid_of};
use crate::admission::{Admission, AdmissionRequest, Operation};
use crate::clock;
use crate::error::{ApiError, StatusCause};
use crate::registry;
use crate::store::Store;

/// The Secret type the token controller fills.
pub const SERVICE_ACCOUNT_TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

/// TokenRequest's default and smallest lifetimes (the API server's).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
const MIN_EXPIRATION_SECONDS: i64 = 600;

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// Answers a TokenRequest for `namespace/name`: a token bound to the ServiceAccount's uid.
pub fn token_request(
    auth: &Auth,
    namespace: &str,
    name: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let sa = auth
        .store
        .get(&registry::SERVICE_ACCOUNT, Some(namespace), name)?;
    let requested = body
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    if requested < MIN_EXPIRATION_SECONDS {
        return Err(ApiError::invalid(
            "TokenRequest.authentication.k8s.io",
            "authentication.k8s.io",
            "TokenRequest",
            name,
            vec![StatusCause {
                reason: "FieldValueInvalid".into(),
                message: format!(
                    "Invalid value: {requested}: may not specify a duration less than 10 minutes"
                ),
                field: "spec.expirationSeconds".into(),
            }],
        ));
    }
    let (token, expires_unix) = auth.issue_bound_token(namespace, name, uid_of(&sa), requested);
    let audiences = body
        .pointer("/spec/audiences")
        .cloned()
        .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        .unwrap_or_else(|| json!(["https://kubernetes.default.svc"]));
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": clock::now_rfc3339()},
        "spec": {"audiences": audiences, "expirationSeconds": requested, "boundObjectRef": body.pointer("/spec/boundObjectRef").cloned()},
        "status": {"token": token, "expirationTimestamp": clock::format_rfc3339(expires_unix)},
    }))
}

/// The user a legacy token stands for, while its Secret still holds it and the ServiceAccount exists.
pub(super) fn legacy_token_user(
    store: &Store,
    namespace: &str,
    secret: &str,
    token: &str,
) -> Option<UserInfo> {
    let secret = store.get(&registry::SECRET, Some(namespace), secret).ok()?;
    let stored = secret.pointer("/data/token").and_then(Value::as_str)?;
    if stored != b64(token) {
        return None;
    }
    let sa_name = secret
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(NAME_ANNOTATION))
        .and_then(Value::as_str)?;
    let sa = store
        .get(&registry::SERVICE_ACCOUNT, Some(namespace), sa_name)
        .ok()?;
    Some(UserInfo::service_account(namespace, sa_name, uid_of(&sa)))
}

/// Admission plug-in standing in for the token controller: a new `kubernetes.io/service-account-token`
/// Secret must name its ServiceAccount, and gets its token, the cluster CA and the namespace.
pub struct LegacyTokenSecrets {
    auth: Weak<Auth>,
}

impl LegacyTokenSecrets {
    pub fn new(auth: &Arc<Auth>) -> Arc<LegacyTokenSecrets> {
        // Weak: the store holds the plug-in and the authenticator holds the store.
        Arc::new(LegacyTokenSecrets {
            auth: Arc::downgrade(auth),
        })
    }
}

impl Admission for LegacyTokenSecrets {
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError> {
        if !std::ptr::eq(request.resource, &registry::SECRET)
            || request.operation != Operation::Create
            || object.get("type").and_then(Value::as_str) != Some(SERVICE_ACCOUNT_TOKEN_TYPE)
        {
            return Ok(());
        }
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(sa_name) = object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(NAME_ANNOTATION))
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Err(ApiError::invalid(
                "Secret",
                "",
                "Secret",
                &name,
                vec![StatusCause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value".into(),
                    field: format!("metadata.annotations[{NAME_ANNOTATION}]"),
                }],
            ));
        };
        // Without the ServiceAccount the token controller leaves the Secret empty (and a cluster later
        // removes it); the lab leaves it empty.
        let Some(sa) = request
            .view
            .get(&registry::SERVICE_ACCOUNT, Some(&namespace), &sa_name)
        else {
            return Ok(());
        };
        let Some(auth) = self.auth.upgrade() else {
            return Ok(());
        };
        let token = super::new_token();
        if !request.dry_run {
            auth.register_legacy_token(&token, &namespace, &name);
        }
        if let Some(annotations) = object
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            annotations.insert(UID_ANNOTATION.into(), json!(uid_of(&sa)));
        }
        let data = object
            .as_object_mut()
            .map(|o| o.entry("data").or_insert_with(|| json!({})));
        if let Some(Value::Object(data)) = data {
            data.insert("token".into(), json!(b64(&token)));
            data.insert("ca.crt".into(), json!(b64(&auth.ca_pem)));
            data.insert("namespace".into(), json!(b64(&namespace)));
        }
        Ok(())
    }
}
