//! Admission: synchronous checks and defaults on every create and update, after schema defaulting and
//! validation and before the write is committed — the place for what a real cluster's admission webhooks
//! do (Forklift's forklift-api webhooks, for instance). A plug-in sees the request, may change the object,
//! may read other objects, and rejects the write by returning an error (usually `ApiError::webhook_denied`).

use serde_json::Value;

use crate::error::ApiError;
use crate::registry::ResourceType;

/// The operation being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
}

/// What is being written.
pub struct AdmissionRequest<'a> {
    pub operation: Operation,
    pub resource: &'static ResourceType,
    /// The stored object, for updates.
    pub old: Option<&'a Value>,
    /// The write targets the `status` subresource.
    pub status: bool,
    pub dry_run: bool,
    /// Who asked, for admission that checks the user's rights (Forklift's webhooks); `None` for
    /// in-process controller writes.
    pub user: Option<&'a crate::auth::UserInfo>,
    /// The store as it is, for plug-ins that look other objects up (a Plan's Providers, a Secret's
    /// ServiceAccount).
    pub view: &'a dyn StoreView,
}

/// Read access to the store while a write is being admitted (the store is locked: plug-ins must not call
/// back into [`crate::store::Store`]).
pub trait StoreView {
    /// One object, if it exists.
    fn get(&self, rt: &'static ResourceType, namespace: Option<&str>, name: &str) -> Option<Value>;
    /// All objects of a type, optionally in one namespace.
    fn list(&self, rt: &'static ResourceType, namespace: Option<&str>) -> Vec<Value>;
}

/// An admission plug-in.
pub trait Admission: Send + Sync {
    /// Mutates and/or validates `object`; an error rejects the write with that error.
    fn admit(&self, request: &AdmissionRequest<'_>, object: &mut Value) -> Result<(), ApiError>;
}

impl ApiError {
    /// The error a denying admission webhook produces, as the apiserver builds it from the webhook's
    /// answer: the webhook's code (Forklift's admitters answer 400 and no reason) and the message
    /// `admission webhook "<name>" denied the request: <reason>`.
    pub fn webhook_denied(webhook: &str, reason: &str) -> Self {
        let mut e = ApiError::bad_request(format!(
            "admission webhook \"{webhook}\" denied the request: {reason}"
        ));
        e.reason = String::new();
        e
    }
}
