//! Who is calling and what they may do, as a Kubernetes API server decides it: bearer tokens (the lab's
//! admin token, ServiceAccount tokens from TokenRequest and from legacy token Secrets), RBAC over the
//! Roles, ClusterRoles and their bindings in the store, and the review kinds (TokenReview,
//! SubjectAccessReview and friends) that let clients ask the same questions.

mod default_service_accounts;
mod impersonation;
mod rbac;
mod reviews;
mod service_accounts;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::clock;
use crate::error::ApiError;
use crate::registry;
use crate::store::Store;

pub use default_service_accounts::{DEFAULT_SERVICE_ACCOUNT, spawn_default_service_accounts};
pub use rbac::{Attributes, Decision, bootstrap_policy, request_attributes};
pub use reviews::answer as answer_review;
pub use service_accounts::{LegacyTokenSecrets, SERVICE_ACCOUNT_TOKEN_TYPE, token_request};

/// The admin's user name (the kubeconfig's token): a member of `system:masters`, as a cluster's
/// installer-made admin is.
pub const ADMIN_USER: &str = "system:admin";
/// The group RBAC never restricts.
pub const MASTERS_GROUP: &str = "system:masters";
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// What the lab knows about a caller once its token checks out (a TokenReview's `status.user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn to_json(&self) -> Value {
        json!({"username": self.username, "uid": self.uid, "groups": self.groups})
    }

    fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS_GROUP)
    }

    /// The user of a ServiceAccount, with the groups Kubernetes gives it.
    fn service_account(namespace: &str, name: &str, uid: &str) -> UserInfo {
        UserInfo {
            username: format!("system:serviceaccount:{namespace}:{name}"),
            uid: uid.to_string(),
            groups: vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{namespace}"),
                AUTHENTICATED_GROUP.to_string(),
            ],
        }
    }
}

/// A token the lab handed out for a ServiceAccount.
#[derive(Debug, Clone)]
enum IssuedToken {
    /// From TokenRequest: valid while the ServiceAccount (that uid) exists and until it expires.
    Bound {
        namespace: String,
        service_account: String,
        service_account_uid: String,
        expires_unix: i64,
    },
    /// From a `kubernetes.io/service-account-token` Secret: valid while that Secret still holds it.
    Legacy { namespace: String, secret: String },
}

/// The lab's authenticator and authorizer.
pub struct Auth {
    store: Store,
    admin_token: String,
    admin_uid: String,
    /// The CA a ServiceAccount token Secret carries as `ca.crt`.
    ca_pem: String,
    issued: RwLock<HashMap<String, IssuedToken>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens.
        f.debug_struct("Auth").finish_non_exhaustive()
    }
}

impl Auth {
    /// An authenticator for the store's ServiceAccounts and RBAC, with `admin_token` as the cluster
    /// admin's token.
    pub fn new(
        store: Store,
        admin_token: impl Into<String>,
        ca_pem: impl Into<String>,
    ) -> Arc<Auth> {
        Arc::new(Auth {
            store,
            admin_token: admin_token.into(),
            admin_uid: crate::random::uuid_v4(),
            ca_pem: ca_pem.into(),
            issued: RwLock::new(HashMap::new()),
        })
    }

    /// The store this authorizer reads its policy from.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The user a bearer token stands for, or `None` when the token is not (or no longer) valid.
    pub fn authenticate(&self, token: &str) -> Option<UserInfo> {
        if token.is_empty() {
            return None;
        }
        if constant_time_eq(token.as_bytes(), self.admin_token.as_bytes()) {
            return Some(UserInfo {
                username: ADMIN_USER.to_string(),
                uid: self.admin_uid.clone(),
                groups: vec![MASTERS_GROUP.to_string(), AUTHENTICATED_GROUP.to_string()],
            });
        }
        let issued = self.issued.read().ok()?.get(token).cloned()?;
        match issued {
            IssuedToken::Bound {
                namespace,
                service_account,
                service_account_uid,
                expires_unix,
            } => {
                if clock::unix_now() >= expires_unix {
                    return None;
                }
                let sa = self
                    .store
                    .get(
                        &registry::SERVICE_ACCOUNT,
                        Some(&namespace),
                        &service_account,
                    )
                    .ok()?;
                (uid_of(&sa) == service_account_uid).then(|| {
                    UserInfo::service_account(&namespace, &service_account, &service_account_uid)
                })
            }
            IssuedToken::Legacy { namespace, secret } => {
                service_accounts::legacy_token_user(&self.store, &namespace, &secret, token)
            }
        }
    }

    /// RBAC's answer for a user and a request.
    pub fn authorize(&self, user: &UserInfo, attributes: &Attributes) -> Decision {
        authorize_in(&self.store, user, attributes)
    }

    /// A fresh token for a ServiceAccount, valid for `seconds` (TokenRequest).
    fn issue_bound_token(
        &self,
        namespace: &str,
        service_account: &str,
        service_account_uid: &str,
        seconds: i64,
    ) -> (String, i64) {
        let token = new_token();
        let expires_unix = clock::unix_now() + seconds;
        if let Ok(mut issued) = self.issued.write() {
            issued.insert(
                token.clone(),
                IssuedToken::Bound {
                    namespace: namespace.to_string(),
                    service_account: service_account.to_string(),
                    service_account_uid: service_account_uid.to_string(),
                    expires_unix,
                },
            );
        }
        (token, expires_unix)
    }

    /// Remembers the token a legacy token Secret was given.
    fn register_legacy_token(&self, token: &str, namespace: &str, secret: &str) {
        if let Ok(mut issued) = self.issued.write() {
            issued.insert(
                token.to_string(),
                IssuedToken::Legacy {
                    namespace: namespace.to_string(),
                    secret: secret.to_string(),
                },
            );
        }
    }

    /// The admin's bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }
}

/// RBAC's answer read through a view of the store (`system:masters` is never restricted): what a
/// SubjectAccessReview answers, usable inside an admission plug-in, where the store is locked.
pub fn authorize_in(
    view: &dyn crate::admission::StoreView,
    user: &UserInfo,
    attributes: &Attributes,
) -> Decision {
    if user.is_master() {
        return Decision::Allow(String::new());
    }
    rbac::evaluate(view, user, attributes)
}

/// A new unguessable token (32 bytes from the TLS stack's secure random source).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    if rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .is_err()
    {
        // Never expected; fall back on the process's hash randomness rather than failing a request.
        for chunk in bytes.chunks_mut(8) {
            chunk.copy_from_slice(&crate::random::next_u64().to_le_bytes()[..chunk.len()]);
        }
    }
    format!(
        "mtvlab~{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn uid_of(object: &Value) -> &str {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The bearer token of an `Authorization` header, if it carries one.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Paths anyone may read without a token, as Kubernetes' `system:public-info-viewer` allows.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/version")
}

/// 401 as the API server answers it.
pub fn unauthorized() -> ApiError {
    let mut e = ApiError::forbidden("Unauthorized");
    e.code = 401;
    e.reason = "Unauthorized".into();
    e
}

fn status_response(e: &ApiError) -> Response {
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&e.to_status()).unwrap_or_default();
    let mut response = (code, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The API server's front door, for every path it serves: authenticates the bearer token (401 without a
/// valid one), authorizes the request with RBAC (403 with the API server's message), and hands the
/// caller on to the handlers as a request extension.
/// `/lab/v1/sources` and below: the lab's stand-in for the hypervisors' own APIs.
fn is_source_api(path: &str) -> bool {
    let prefix = crate::source::api::SOURCE_API_PREFIX;
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

pub async fn guard(State(auth): State<Arc<Auth>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let user = match bearer_token(request.headers()).and_then(|t| auth.authenticate(t)) {
        Some(user) => user,
        None if is_public(&path) => return next.run(request).await,
        None => return status_response(&unauthorized()),
    };
    // `kubectl --as`: from here on the request is the impersonated user's, if the caller may.
    let user = match impersonation::acting_user(&auth, user, request.headers()) {
        Ok(user) => user,
        Err(refused) => return status_response(&refused),
    };
    let attributes = request_attributes(request.method(), &path, request.uri().query());
    // The lab's sources stand in for hypervisors on the network: on a cluster, whoever holds the
    // source's credentials reaches them whatever their RBAC (a Job's ServiceAccount included), so
    // any authenticated user may. The lab's other endpoints (`/lab/v1/...`) are for the admin only.
    let allowed = if is_source_api(&path) {
        true
    } else if path.starts_with("/lab/") {
        user.is_master()
    } else {
        matches!(auth.authorize(&user, &attributes), Decision::Allow(_))
    };
    if !allowed {
        return status_response(&rbac::forbidden(&user, &attributes));
    }
    request.extensions_mut().insert(user);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_source_api_is_open_to_every_authenticated_user() {
        assert!(is_source_api("/lab/v1/sources"));
        assert!(is_source_api("/lab/v1/sources/vsphere-lab/vms"));
        assert!(!is_source_api("/lab/v1/sourcesx"));
        assert!(!is_source_api("/lab/v1/stats"));
    }

    #[test]
    fn tokens_are_long_random_and_distinct() {
        let a = new_token();
        assert!(a.len() > 40, "{a}");
        assert_ne!(a, new_token());
    }

    #[test]
    fn only_the_admin_token_and_issued_tokens_authenticate() {
        let store = Store::new(100);
        let auth = Auth::new(store.clone(), "admin-secret", "");
        let admin = auth.authenticate("admin-secret").unwrap();
        assert_eq!(admin.username, ADMIN_USER);
        assert!(admin.is_master());
        assert!(auth.authenticate("admin-secreT").is_none());
        assert!(auth.authenticate("").is_none());
        store
            .create(
                &registry::NAMESPACE,
                None,
                json!({"metadata": {"name": "team"}}),
            )
            .unwrap();
        let sa = store
            .create(
                &registry::SERVICE_ACCOUNT,
                Some("team"),
                json!({"metadata": {"name": "robot"}}),
            )
            .unwrap();
        let (token, _) = auth.issue_bound_token("team", "robot", uid_of(&sa), 60);
        let user = auth.authenticate(&token).unwrap();
        assert_eq!(user.username, "system:serviceaccount:team:robot");
        assert!(
            user.groups
                .contains(&"system:serviceaccounts:team".to_string())
        );
        // Expired tokens and tokens of a deleted ServiceAccount no longer work.
        let (expired, _) = auth.issue_bound_token("team", "robot", uid_of(&sa), 0);
        assert!(auth.authenticate(&expired).is_none());
        store
            .delete(
                &registry::SERVICE_ACCOUNT,
                Some("team"),
                "robot",
                &Default::default(),
            )
            .unwrap();
        assert!(auth.authenticate(&token).is_none());
    }
}
