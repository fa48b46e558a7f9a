//! The object store: JSON objects keyed by resource type, namespace and name, with the apiserver's write
//! semantics (resourceVersion, uid, generation, generateName, optimistic concurrency, status subresource,
//! finalizers, owner-reference garbage collection, namespace deletion) and an event log for watches.
//!
//! One mutex guards the whole state, and events are broadcast while it is held, so every watcher sees
//! events in resourceVersion order with no gap between a replay and the live stream.
//! Each committed change bumps the global resourceVersion by exactly one and produces exactly one event.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::admission::{Admission, AdmissionRequest, Operation, StoreView};
use crate::builtin_schemas;
use crate::clock;
use crate::error::{ApiError, StatusCause};
use crate::ownership;
use crate::patch::{self, Patch};
use crate::random;
use crate::registry::{self, ResourceType};
use crate::rules;
use crate::schema;
use crate::selector::{FieldSelector, LabelSelector};

/// The kind of change an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// `ADDED`, `MODIFIED`, `DELETED`, as watch streams spell them.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug)]
pub struct StoreEvent {
    pub resource_version: u64,
    pub resource: &'static ResourceType,
    pub event_type: EventType,
    /// The object after the change (for `Deleted`, its last state with the deletion's resourceVersion).
    pub object: Arc<Value>,
    /// The object before the change, if there was one.
    pub old_object: Option<Arc<Value>>,
}

impl StoreEvent {
    pub fn namespace(&self) -> Option<&str> {
        self.object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }

    pub fn name(&self) -> &str {
        self.object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// How unknown fields in a write are treated (the `fieldValidation` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop unknown fields and report a warning (the apiserver's default).
    #[default]
    Warn,
    /// Reject the write with 400 `strict decoding error`.
    Strict,
}

/// Options of create, update and patch.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `dryRun=All`: validate and answer, but commit nothing.
    pub dry_run: bool,
    /// Write the `status` subresource instead of the main resource.
    pub status: bool,
    pub field_validation: FieldValidation,
    /// The manager an ordinary write records in `managedFields` (operation `Update`); `None` records
    /// nothing (in-process controller writes).
    pub field_manager: Option<String>,
    /// Who asked (the API's caller, after impersonation); `None` for in-process controller writes.
    pub user: Option<crate::auth::UserInfo>,
}

impl WriteOptions {
    /// Options for a write to the `status` subresource.
    pub fn status() -> Self {
        Self {
            status: true,
            ..Self::default()
        }
    }
}

/// The dependents policy of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// The owner goes at once; dependents are garbage-collected after it.
    #[default]
    Background,
    /// The owner gets the `foregroundDeletion` finalizer and stays (with `deletionTimestamp`) until its
    /// dependents with `blockOwnerDeletion: true` are gone (all dependents are deleted).
    Foreground,
    /// Dependents are left alone.
    Orphan,
}

/// The finalizer that holds an owner during a foreground deletion.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// Options of delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub propagation: Propagation,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
}

/// Options of list (and the selectors of a watch).
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: LabelSelector,
    pub field_selector: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

impl ListOptions {
    fn matches(&self, object: &Value) -> bool {
        self.label_selector
            .matches(object.pointer("/metadata/labels"))
            && self.field_selector.matches(object)
    }
}

/// A page of a list.
#[derive(Debug, Clone)]
pub struct ObjectList {
    pub items: Vec<Value>,
    pub resource_version: u64,
    pub continue_token: Option<String>,
    pub remaining_item_count: Option<u64>,
}

/// The result of a write: the object as stored (or as it would be, for a dry run) and warnings.
#[derive(Debug, Clone)]
pub struct Written {
    pub object: Value,
    /// Warnings for the `Warning` response header (unknown fields under `fieldValidation=Warn`).
    pub warnings: Vec<String>,
    /// True when the write created the object (a server-side apply can create).
    pub created: bool,
}

/// The result of a delete.
#[derive(Debug, Clone)]
pub struct Deleted {
    /// The object's last state.
    pub object: Value,
    /// False when finalizers keep the object (it now carries `deletionTimestamp`).
    pub removed: bool,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchStart {
    /// Only changes after now.
    Now,
    /// Synthetic `ADDED` events for the current objects, then changes; with `bookmark`, a bookmark carrying
    /// the `k8s.io/initial-events-end` annotation after the initial events.
    InitialEvents { bookmark: bool },
    /// Changes after this resourceVersion (410 Expired if the history no longer reaches back that far).
    After(u64),
}

/// What a watch yields.
#[derive(Debug, Clone)]
pub enum WatchItem {
    Event {
        event_type: EventType,
        object: Arc<Value>,
        resource_version: u64,
    },
    /// The initial events are all delivered; current resourceVersion.
    InitialEventsEnd { resource_version: u64 },
}

/// An open watch over one resource type (optionally one namespace and selectors).
pub struct Watch {
    backlog: VecDeque<WatchItem>,
    rx: broadcast::Receiver<Arc<StoreEvent>>,
    resource: &'static ResourceType,
    namespace: Option<String>,
    selector: ListOptions,
    last_rv: u64,
}

/// Why a watch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEnd {
    /// The store is gone.
    Closed,
    /// The watcher fell too far behind the live stream; it must re-list or resume.
    Lagged,
}

impl Watch {
    /// The next event, or why the watch ended.
    pub async fn next(&mut self) -> Result<WatchItem, WatchEnd> {
        if let Some(item) = self.backlog.pop_front() {
            return Ok(item);
        }
        loop {
            let event = match self.rx.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(_)) => return Err(WatchEnd::Lagged),
                Err(broadcast::error::RecvError::Closed) => return Err(WatchEnd::Closed),
            };
            if event.resource_version <= self.last_rv {
                continue;
            }
            self.last_rv = event.resource_version;
            if let Some(item) = filter_event(
                &event,
                self.resource,
                self.namespace.as_deref(),
                &self.selector,
            ) {
                return Ok(item);
            }
        }
    }

    /// The resourceVersion of the last event delivered (or the start point).
    pub fn last_resource_version(&self) -> u64 {
        self.last_rv
    }
}

/// Maps a store event onto what a filtered watcher sees: an object that starts matching is `ADDED`, one that
/// stops matching is `DELETED`.
fn filter_event(
    event: &StoreEvent,
    resource: &'static ResourceType,
    namespace: Option<&str>,
    selector: &ListOptions,
) -> Option<WatchItem> {
    if !std::ptr::eq(event.resource, resource) {
        return None;
    }
    if let Some(ns) = namespace
        && event.namespace() != Some(ns)
    {
        return None;
    }
    let now = selector.matches(&event.object);
    let before = event
        .old_object
        .as_deref()
        .is_some_and(|o| selector.matches(o));
    let event_type = match (event.event_type, before, now) {
        (EventType::Deleted, _, true) => EventType::Deleted,
        (EventType::Added, _, true) => EventType::Added,
        (EventType::Modified, true, true) => EventType::Modified,
        (EventType::Modified, false, true) => EventType::Added,
        (EventType::Modified, true, false) => EventType::Deleted,
        _ => return None,
    };
    Some(WatchItem::Event {
        event_type,
        object: event.object.clone(),
        resource_version: event.resource_version,
    })
}

type ObjectKey = (String, String);
type TypeKey = (&'static str, &'static str);

struct State {
    rv: u64,
    objects: HashMap<TypeKey, BTreeMap<ObjectKey, Arc<Value>>>,
    uid_index: HashMap<String, (&'static ResourceType, ObjectKey)>,
    history: VecDeque<Arc<StoreEvent>>,
    /// Highest resourceVersion whose event was dropped from the history.
    history_floor: u64,
    admissions: Vec<Arc<dyn Admission>>,
    /// Owner uid -> its dependents (for garbage collection without scanning).
    owner_index: HashMap<String, BTreeSet<(TypeKey, ObjectKey)>>,
    /// Namespace -> number of namespaced objects in it (to finish terminating namespaces cheaply).
    namespace_counts: HashMap<String, usize>,
}

/// The metadata fields the API server sets itself: a client's values for them are dropped on create
/// and kept from the stored object on update.
const SERVER_SET_METADATA: [&str; 7] = [
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "managedFields",
];

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|owners| {
            owners
                .iter()
                .filter_map(|o| o.get("uid").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

struct Inner {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<StoreEvent>>,
    history_limit: usize,
}

/// The lab's object store. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

fn type_key(rt: &ResourceType) -> TypeKey {
    (rt.group, rt.plural)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Map::new());
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    strings_at(obj, "/metadata/finalizers")
}

/// The strings of the array at `pointer` (a JSON pointer); an absent field, or one that is no
/// array, has none, and entries that are no string are passed over.
pub(crate) fn strings_at(value: &Value, pointer: &str) -> Vec<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// The part of an object that drives `metadata.generation`.
fn generation_content(rt: &ResourceType, obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Value::Object(m) = &mut v {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if rt.status_subresource {
            m.remove("status");
        }
    }
    v
}

/// What `fieldValidation` makes of the unknown fields a write carried: warnings, or under Strict a 400
/// `<subject>: strict decoding error: unknown field "spec.bogus", ...` as the API server answers.
fn unknown_field_verdict(
    unknown_fields: &[String],
    field_validation: FieldValidation,
    subject: &str,
) -> Result<Vec<String>, ApiError> {
    let listed = unknown_fields
        .iter()
        .map(|f| format!("unknown field \"{f}\""));
    match field_validation {
        _ if unknown_fields.is_empty() => Ok(Vec::new()),
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "{subject}: strict decoding error: {}",
            listed.collect::<Vec<_>>().join(", ")
        ))),
        FieldValidation::Warn => Ok(listed.collect()),
        FieldValidation::Ignore => Ok(Vec::new()),
    }
}

fn metadata_causes(obj: &Value) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    for field in ["labels", "annotations"] {
        match obj.pointer(&format!("/metadata/{field}")) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    if !v.is_string() {
                        causes.push(StatusCause {
                            reason: "FieldValueTypeInvalid".into(),
                            message: format!("Invalid value: {v}: must be a string"),
                            field: format!("metadata.{field}.{k}"),
                        });
                    }
                }
                causes.extend(if field == "labels" {
                    rules::label_causes(m)
                } else {
                    rules::annotation_causes(m)
                });
            }
            Some(_) => causes.push(StatusCause {
                reason: "FieldValueTypeInvalid".into(),
                message: "Invalid value: must be a map of strings".into(),
                field: format!("metadata.{field}"),
            }),
        }
    }
    if let Some(v) = obj.pointer("/metadata/finalizers")
        && !v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
    {
        causes.push(StatusCause {
            reason: "FieldValueTypeInvalid".into(),
            message: "Invalid value: must be a list of strings".into(),
            field: "metadata.finalizers".into(),
        });
    }
    causes
}

impl Default for Store {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl Store {
    /// A store whose watch history keeps the last `history_limit` events.
    pub fn new(history_limit: usize) -> Self {
        let (events, _) = broadcast::channel(history_limit.clamp(64, 16_384));
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    rv: 0,
                    objects: HashMap::new(),
                    uid_index: HashMap::new(),
                    history: VecDeque::new(),
                    history_floor: 0,
                    admissions: Vec::new(),
                    owner_index: HashMap::new(),
                    namespace_counts: HashMap::new(),
                }),
                events,
                history_limit: history_limit.max(1),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every mutation is committed last).
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds an admission plug-in: it runs on every create and update (HTTP and in-process alike), in the
    /// order added.
    pub fn add_admission(&self, admission: Arc<dyn Admission>) {
        self.lock().admissions.push(admission);
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Every committed change from now on (all resource types), for in-process controllers.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<StoreEvent>> {
        self.inner.events.subscribe()
    }

    /// One object.
    pub fn get(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let state = self.lock();
        state
            .get(rt, namespace, name)
            .map(|o| (*o).clone())
            .ok_or_else(|| ApiError::not_found(rt.group, rt.plural, name))
    }

    /// Every object of a kind (in `namespace`, or everywhere), shared rather than copied: what the
    /// in-process controllers read on each pass, where a deep copy of every object (as an API list
    /// must make) cost most of the lab's CPU.
    pub fn list_shared(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
    ) -> Vec<Arc<Value>> {
        let namespace = namespace.filter(|_| rt.namespaced);
        let state = self.lock();
        state
            .objects
            .get(&type_key(rt))
            .map(|objects| {
                objects
                    .iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|want| ns == want))
                    .map(|(_, obj)| obj.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A list, optionally in one namespace, filtered by selectors and paged with `limit`/`continue`.
    pub fn list(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ObjectList, ApiError> {
        let namespace = namespace.filter(|_| rt.namespaced);
        let start = match &opts.continue_token {
            Some(token) => Some(decode_continue(token)?),
            None => None,
        };
        let state = self.lock();
        let mut items = Vec::new();
        let mut continue_token = None;
        let mut remaining = 0u64;
        if let Some(objects) = state.objects.get(&type_key(rt)) {
            let iter = objects
                .iter()
                .filter(|((ns, _), _)| namespace.is_none_or(|want| ns == want));
            for (key, obj) in iter {
                if start.as_ref().is_some_and(|s| key <= s) || !opts.matches(obj) {
                    continue;
                }
                if opts.limit.is_some_and(|l| l > 0 && items.len() >= l) {
                    remaining += 1;
                    continue;
                }
                items.push((**obj).clone());
                if opts.limit.is_some_and(|l| l > 0 && items.len() == l) {
                    continue_token = Some(encode_continue(key));
                }
            }
        }
        if remaining == 0 {
            continue_token = None;
        }
        Ok(ObjectList {
            items,
            resource_version: state.rv,
            continue_token,
            remaining_item_count: (remaining > 0).then_some(remaining),
        })
    }

    /// Creates an object. The namespace comes from the argument (for namespaced kinds), the name from
    /// `metadata.name` or `metadata.generateName`.
    pub fn create(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        object: Value,
    ) -> Result<Value, ApiError> {
        self.create_with(rt, namespace, object, &WriteOptions::default())
            .map(|w| w.object)
    }

    /// [`Store::create`] with options and warnings.
    pub fn create_with(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        object: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let mut state = self.lock();
        let (obj, warnings) = state.prepare_create(rt, namespace, object, opts, None)?;
        let object = if opts.dry_run {
            obj
        } else {
            (*state.commit_put(self, rt, obj, None)).clone()
        };
        Ok(Written {
            object,
            warnings,
            created: true,
        })
    }

    /// Replaces an object (PUT). A `metadata.resourceVersion` that is not the current one is a 409 Conflict.
    pub fn update(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        object: Value,
    ) -> Result<Value, ApiError> {
        let name = meta_str(&object, "name").unwrap_or_default().to_string();
        self.update_with(rt, namespace, &name, object, &WriteOptions::default())
            .map(|w| w.object)
    }

    /// [`Store::update`] with options (status subresource, dry run) and warnings.
    pub fn update_with(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
        object: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let mut state = self.lock();
        let old = state
            .get(rt, namespace, name)
            .ok_or_else(|| ApiError::not_found(rt.group, rt.plural, name))?;
        if !rules::allows_unconditional_update(rt)
            && meta_str(&object, "resourceVersion").is_none_or(str::is_empty)
        {
            return Err(rules::resource_version_required(rt, name));
        }
        let (new, warnings) = state.prepare_update(rt, &old, object, opts, None)?;
        let object = state.finish_update(self, rt, old, new, opts.dry_run);
        Ok(Written {
            object,
            warnings,
            created: false,
        })
    }

    /// Sets `status` (the status subresource) without a resourceVersion check: what a controller does.
    pub fn update_status(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
        status: Value,
    ) -> Result<Value, ApiError> {
        self.modify(rt, namespace, name, &WriteOptions::status(), |obj| {
            obj["status"] = status;
            Ok(())
        })
    }

    /// Read-modify-write under the store lock: `change` edits a copy of the current object, which is then
    /// written like an update (to the status subresource when `opts.status`). No conflict is possible.
    pub fn modify(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
        opts: &WriteOptions,
        change: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let old = state
            .get(rt, namespace, name)
            .ok_or_else(|| ApiError::not_found(rt.group, rt.plural, name))?;
        let mut working = (*old).clone();
        change(&mut working)?;
        let (new, _) = state.prepare_update(rt, &old, working, opts, None)?;
        Ok(state.finish_update(self, rt, old, new, opts.dry_run))
    }

    /// Applies a patch. A server-side apply creates the object when it does not exist.
    pub fn patch(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let mut state = self.lock();
        let old = state.get(rt, namespace, name);
        if let Patch::Apply {
            config,
            field_manager,
            force,
        } = patch
        {
            return state.apply(
                self,
                rt,
                namespace,
                name,
                old,
                config,
                field_manager,
                *force,
                opts,
            );
        }
        let old = old.ok_or_else(|| ApiError::not_found(rt.group, rt.plural, name))?;
        let mut working = (*old).clone();
        match patch {
            Patch::Merge(p) => {
                if !p.is_object() {
                    return Err(ApiError::bad_request("a merge patch must be a JSON object"));
                }
                patch::merge(&mut working, p)
            }
            Patch::Strategic(_) if rules::is_custom_resource(rt) => {
                return Err(rules::unsupported_patch_type(rt));
            }
            Patch::Strategic(p) => {
                if !p.is_object() {
                    return Err(ApiError::bad_request(
                        "a strategic merge patch must be a JSON object",
                    ));
                }
                patch::strategic(&mut working, p)
            }
            Patch::Json(p) => patch::json(&mut working, p)?,
            Patch::Apply { .. } => unreachable!("handled above"),
        }
        // A patch that does not name a resourceVersion must not trip the conflict check.
        if meta_str(&working, "resourceVersion") != meta_str(&old, "resourceVersion")
            && !patch_sets_resource_version(patch)
        {
            metadata_mut(&mut working).remove("resourceVersion");
        }
        let (new, warnings) = state.prepare_update(rt, &old, working, opts, None)?;
        let object = state.finish_update(self, rt, old, new, opts.dry_run);
        Ok(Written {
            object,
            warnings,
            created: false,
        })
    }

    /// Deletes an object: with finalizers it only gets `deletionTimestamp`; without, it is removed and its
    /// dependents are garbage-collected (unless orphaned). Deleting a namespace deletes its content.
    pub fn delete(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let mut state = self.lock();
        let old = state
            .get(rt, namespace, name)
            .ok_or_else(|| ApiError::not_found(rt.group, rt.plural, name))?;
        let preconditions = [
            ("uid", "UID", &opts.precondition_uid),
            (
                "resourceVersion",
                "ResourceVersion",
                &opts.precondition_resource_version,
            ),
        ];
        for (field, label, wanted) in preconditions {
            if let Some(wanted) = wanted
                && meta_str(&old, field) != Some(wanted.as_str())
            {
                return Err(ApiError::conflict(
                    rt.group,
                    rt.plural,
                    name,
                    &format!(
                        "Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {}",
                        meta_str(&old, field).unwrap_or_default()
                    ),
                ));
            }
        }
        if opts.dry_run {
            let mut obj = (*old).clone();
            let removed = finalizers(&obj).is_empty() && !std::ptr::eq(rt, &registry::NAMESPACE);
            if !removed && !is_deleting(&obj) {
                metadata_mut(&mut obj)
                    .insert("deletionTimestamp".into(), json!(clock::now_rfc3339()));
            }
            return Ok(Deleted {
                object: obj,
                removed,
            });
        }
        Ok(state.delete_object(self, rt, old, opts.propagation))
    }

    /// Deletes every object of a type (in a namespace) that matches the selectors.
    pub fn delete_collection(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let targets = self.list(
            rt,
            namespace,
            &ListOptions {
                limit: None,
                continue_token: None,
                ..list.clone()
            },
        )?;
        let mut out = Vec::new();
        for item in targets.items {
            let name = meta_str(&item, "name").unwrap_or_default().to_string();
            let ns = meta_str(&item, "namespace").map(str::to_string);
            match self.delete(rt, ns.as_deref(), &name, opts) {
                Ok(d) => out.push(d.object),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Opens a watch. `After(rv)` older than the kept history is a 410 Expired.
    pub fn watch(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        selector: &ListOptions,
        start: WatchStart,
    ) -> Result<Watch, ApiError> {
        let namespace = namespace.filter(|_| rt.namespaced);
        let state = self.lock();
        let mut backlog = VecDeque::new();
        let last_rv = match start {
            WatchStart::Now => state.rv,
            WatchStart::InitialEvents { bookmark } => {
                if let Some(objects) = state.objects.get(&type_key(rt)) {
                    for ((ns, _), obj) in objects {
                        if namespace.is_some_and(|want| want != ns) || !selector.matches(obj) {
                            continue;
                        }
                        backlog.push_back(WatchItem::Event {
                            event_type: EventType::Added,
                            object: obj.clone(),
                            resource_version: meta_str(obj, "resourceVersion")
                                .and_then(|r| r.parse().ok())
                                .unwrap_or(state.rv),
                        });
                    }
                }
                if bookmark {
                    backlog.push_back(WatchItem::InitialEventsEnd {
                        resource_version: state.rv,
                    });
                }
                state.rv
            }
            WatchStart::After(rv) => {
                if rv < state.history_floor {
                    return Err(ApiError::expired(format!(
                        "too old resource version: {rv} ({})",
                        state.history_floor + 1
                    )));
                }
                for event in state.history.iter().filter(|e| e.resource_version > rv) {
                    if let Some(item) = filter_event(event, rt, namespace, selector) {
                        backlog.push_back(item);
                    }
                }
                rv.max(
                    state
                        .history
                        .back()
                        .map(|e| e.resource_version)
                        .unwrap_or(rv),
                )
            }
        };
        let rx = self.inner.events.subscribe();
        Ok(Watch {
            backlog,
            rx,
            resource: rt,
            namespace: namespace.map(str::to_string),
            selector: ListOptions {
                limit: None,
                continue_token: None,
                ..selector.clone()
            },
            last_rv,
        })
    }

    /// Records a core/v1 Event about `involved` (a stored object), as controllers do; `kubectl describe`
    /// lists it. `event_type` is `Normal` or `Warning`. Events of cluster-scoped objects go to `default`.
    pub fn record_event(
        &self,
        involved: &Value,
        event_type: &str,
        reason: &str,
        message: &str,
        component: &str,
    ) -> Result<Value, ApiError> {
        let name = meta_str(involved, "name").unwrap_or_default();
        let namespace = meta_str(involved, "namespace").unwrap_or("default");
        let now = clock::now_rfc3339();
        let mut reference = json!({
            "apiVersion": involved.get("apiVersion").cloned().unwrap_or(Value::Null),
            "kind": involved.get("kind").cloned().unwrap_or(Value::Null),
            "name": name,
            "uid": meta_str(involved, "uid").unwrap_or_default(),
            "resourceVersion": meta_str(involved, "resourceVersion").unwrap_or_default(),
        });
        if let Some(ns) = meta_str(involved, "namespace") {
            reference["namespace"] = json!(ns);
        }
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": format!("{name}.{:016x}", random::next_u64()), "namespace": namespace},
            "involvedObject": reference,
            "type": event_type,
            "reason": reason,
            "message": message,
            "source": {"component": component},
            "reportingComponent": component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        self.create(&registry::EVENT, Some(namespace), event)
    }

    /// The number of stored objects of a type (all namespaces).
    pub fn count(&self, rt: &'static ResourceType) -> usize {
        self.lock()
            .objects
            .get(&type_key(rt))
            .map_or(0, BTreeMap::len)
    }
}

fn patch_sets_resource_version(patch: &Patch) -> bool {
    match patch {
        Patch::Merge(p) | Patch::Strategic(p) => p.pointer("/metadata/resourceVersion").is_some(),
        Patch::Json(ops) => ops.as_array().is_some_and(|ops| {
            ops.iter().any(|op| {
                op.get("path").and_then(Value::as_str) == Some("/metadata/resourceVersion")
            })
        }),
        Patch::Apply { config, .. } => config.pointer("/metadata/resourceVersion").is_some(),
    }
}

fn encode_continue(key: &ObjectKey) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!([key.0, key.1]).to_string())
}

fn decode_continue(token: &str) -> Result<ObjectKey, ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    match (
        v.get(0).and_then(Value::as_str),
        v.get(1).and_then(Value::as_str),
    ) {
        (Some(ns), Some(name)) => Ok((ns.to_string(), name.to_string())),
        _ => Err(bad()),
    }
}

impl State {
    fn get(
        &self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<Value>> {
        let ns = if rt.namespaced {
            namespace.unwrap_or_default()
        } else {
            ""
        };
        self.objects
            .get(&type_key(rt))
            .and_then(|m| m.get(&(ns.to_string(), name.to_string())))
            .cloned()
    }

    fn push_event(
        &mut self,
        store: &Store,
        rt: &'static ResourceType,
        event_type: EventType,
        object: Arc<Value>,
        old_object: Option<Arc<Value>>,
    ) {
        let event = Arc::new(StoreEvent {
            resource_version: self.rv,
            resource: rt,
            event_type,
            object,
            old_object,
        });
        self.history.push_back(event.clone());
        while self.history.len() > store.inner.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.history_floor = dropped.resource_version;
            }
        }
        // No receiver is fine: nobody is watching.
        let _ = store.inner.events.send(event);
    }

    /// Stores `obj` with a new resourceVersion and records the event.
    fn commit_put(
        &mut self,
        store: &Store,
        rt: &'static ResourceType,
        mut obj: Value,
        old: Option<Arc<Value>>,
    ) -> Arc<Value> {
        self.rv += 1;
        metadata_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let ns = meta_str(&obj, "namespace").unwrap_or_default().to_string();
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let uid = meta_str(&obj, "uid").unwrap_or_default().to_string();
        let obj = Arc::new(obj);
        let key = (ns.clone(), name.clone());
        if let Some(previous) = &old {
            self.unindex_owners(rt, &key, previous);
        } else if rt.namespaced {
            *self.namespace_counts.entry(ns.clone()).or_default() += 1;
        }
        for owner in owner_uids(&obj) {
            self.owner_index
                .entry(owner)
                .or_default()
                .insert((type_key(rt), key.clone()));
        }
        self.objects
            .entry(type_key(rt))
            .or_default()
            .insert(key, obj.clone());
        self.uid_index.insert(uid, (rt, (ns, name)));
        let event_type = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.push_event(store, rt, event_type, obj.clone(), old);
        obj
    }

    /// Removes an object for good, then collects its dependents and finishes a terminating namespace.
    fn commit_remove(
        &mut self,
        store: &Store,
        rt: &'static ResourceType,
        old: Arc<Value>,
    ) -> Value {
        let ns = meta_str(&old, "namespace").unwrap_or_default().to_string();
        let name = meta_str(&old, "name").unwrap_or_default().to_string();
        let uid = meta_str(&old, "uid").unwrap_or_default().to_string();
        let key = (ns.clone(), name);
        if let Some(m) = self.objects.get_mut(&type_key(rt)) {
            m.remove(&key);
        }
        self.unindex_owners(rt, &key, &old);
        if rt.namespaced
            && let Some(count) = self.namespace_counts.get_mut(&ns)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.namespace_counts.remove(&ns);
            }
        }
        self.uid_index.remove(&uid);
        self.rv += 1;
        let mut last = (*old).clone();
        metadata_mut(&mut last).insert("resourceVersion".into(), json!(self.rv.to_string()));
        self.push_event(
            store,
            rt,
            EventType::Deleted,
            Arc::new(last.clone()),
            Some(old),
        );
        last
    }

    fn finish_update(
        &mut self,
        store: &Store,
        rt: &'static ResourceType,
        old: Arc<Value>,
        new: Value,
        dry_run: bool,
    ) -> Value {
        if *old == new {
            // A no-op write changes nothing, not even the resourceVersion.
            return new;
        }
        if dry_run {
            return new;
        }
        if is_deleting(&new)
            && finalizers(&new).is_empty()
            && !std::ptr::eq(rt, &registry::NAMESPACE)
        {
            let removed = self.commit_remove(store, rt, Arc::new(new));
            self.after_removal(store, rt, &removed);
            return removed;
        }
        let stored = (*self.commit_put(store, rt, new, Some(old))).clone();
        if std::ptr::eq(rt, &registry::NAMESPACE)
            && let Some(ns) = meta_str(&stored, "name")
        {
            let ns = ns.to_string();
            self.try_finish_namespace(store, &ns);
        }
        stored
    }

    fn prepare_create(
        &mut self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
        managed_fields: Option<Value>,
    ) -> Result<(Value, Vec<String>), ApiError> {
        check_type_meta(rt, &mut obj)?;
        let meta = metadata_mut(&mut obj);
        let namespace = if rt.namespaced {
            let path_ns = namespace.filter(|n| !n.is_empty());
            let body_ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty());
            let ns = match (path_ns, body_ns) {
                (Some(p), Some(b)) if p != b => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                (Some(p), _) => p.to_string(),
                (None, Some(b)) => b.to_string(),
                (None, None) => {
                    return Err(ApiError::bad_request(
                        "an empty namespace may not be set during creation",
                    ));
                }
            };
            meta.insert("namespace".into(), json!(ns));
            Some(ns)
        } else {
            meta.remove("namespace");
            None
        };
        if meta
            .get("resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|r| !r.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        for field in SERVER_SET_METADATA.into_iter().chain(["selfLink"]) {
            meta.remove(field);
        }
        let applying = managed_fields.is_some();
        if let Some(mf) = managed_fields {
            meta.insert("managedFields".into(), mf);
        }
        if let Some(ns) = &namespace {
            match self.get(&registry::NAMESPACE, None, ns) {
                None => return Err(ApiError::not_found("", "namespaces", ns)),
                Some(n) if is_deleting(&n) => {
                    return Err(ApiError::forbidden(format!(
                        "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        rt.qualified_plural(),
                        meta_str(&obj, "name")
                            .or(meta_str(&obj, "generateName"))
                            .unwrap_or_default()
                    )));
                }
                Some(_) => {}
            }
        }
        let explicit_name = meta_str(&obj, "name")
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let generate_name = meta_str(&obj, "generateName").map(str::to_string);
        if rt.status_subresource
            && let Value::Object(m) = &mut obj
        {
            m.remove("status");
        }
        normalize(rt, &mut obj, true)?;
        let warnings = self.validate(
            rt,
            &mut obj,
            opts,
            explicit_name
                .as_deref()
                .or(generate_name.as_deref())
                .unwrap_or_default(),
        )?;
        let name = match (explicit_name, generate_name) {
            (Some(n), _) => {
                if self.get(rt, namespace.as_deref(), &n).is_some() {
                    return Err(ApiError::already_exists(rt.group, rt.plural, &n));
                }
                n
            }
            (None, Some(prefix)) => {
                // Like the API server's name generator: the base is cut to 58 characters so the name,
                // with its 5 random ones, fits in 63.
                let prefix: String = prefix.chars().take(58).collect();
                let mut found = None;
                for _ in 0..8 {
                    let candidate = format!("{prefix}{}", random::name_suffix(5));
                    if self.get(rt, namespace.as_deref(), &candidate).is_none() {
                        found = Some(candidate);
                        break;
                    }
                }
                found.ok_or_else(|| ApiError::already_exists(rt.group, rt.plural, &prefix))?
            }
            (None, None) => {
                return Err(invalid(
                    rt,
                    "",
                    vec![StatusCause {
                        reason: "FieldValueRequired".into(),
                        message: "Required value: name or generateName is required".into(),
                        field: "metadata.name".into(),
                    }],
                ));
            }
        };
        let mut causes = rules::name_causes(rt, &name);
        causes.extend(rules::crd_name_causes(rt, &obj, &name));
        if !causes.is_empty() {
            return Err(invalid(rt, &name, causes));
        }
        let meta = metadata_mut(&mut obj);
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(random::uuid_v4()));
        meta.insert("creationTimestamp".into(), json!(clock::now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        let request = AdmissionRequest {
            operation: Operation::Create,
            resource: rt,
            old: None,
            status: false,
            dry_run: opts.dry_run,
            user: opts.user.as_ref(),
            view: self,
        };
        self.admit(&request, &mut obj, opts, &name)?;
        if !applying && let Some(manager) = &opts.field_manager {
            ownership::record_update(rt, None, &mut obj, manager, false);
        }
        Ok((obj, warnings))
    }

    /// Builds the object an update would store (not yet committed).
    fn prepare_update(
        &mut self,
        rt: &'static ResourceType,
        old: &Value,
        mut new: Value,
        opts: &WriteOptions,
        managed_fields: Option<Value>,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let name = meta_str(old, "name").unwrap_or_default().to_string();
        check_type_meta(rt, &mut new)?;
        if let Some(n) = meta_str(&new, "name").filter(|n| !n.is_empty())
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        if rt.namespaced
            && let Some(n) = meta_str(&new, "namespace").filter(|n| !n.is_empty())
            && Some(n) != meta_str(old, "namespace")
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        if let Some(rv) = meta_str(&new, "resourceVersion").filter(|r| !r.is_empty())
            && Some(rv) != meta_str(old, "resourceVersion")
        {
            return Err(ApiError::conflict(
                rt.group,
                rt.plural,
                &name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let mut result = if opts.status {
            let mut r = old.clone();
            match new.get("status") {
                Some(s) => r["status"] = s.clone(),
                None => {
                    if let Value::Object(m) = &mut r {
                        m.remove("status");
                    }
                }
            }
            r
        } else {
            let mut r = new;
            if rt.status_subresource {
                match old.get("status") {
                    Some(s) => r["status"] = s.clone(),
                    None => {
                        if let Value::Object(m) = &mut r {
                            m.remove("status");
                        }
                    }
                }
            }
            r
        };
        // Server-owned metadata always comes from the stored object.
        {
            let old_meta = old
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let meta = metadata_mut(&mut result);
            // In this order: removals reorder the remaining fields.
            let kept = ["name", "namespace"]
                .into_iter()
                .chain(SERVER_SET_METADATA)
                .chain(["generateName"]);
            for field in kept {
                match old_meta.get(field) {
                    Some(v) => meta.insert(field.into(), v.clone()),
                    None => meta.remove(field),
                };
            }
            if let Some(mf) = &managed_fields {
                meta.insert("managedFields".into(), mf.clone());
            }
        }
        normalize(rt, &mut result, false)?;
        let immutable = rules::immutability_causes(rt, old, &result);
        if !immutable.is_empty() {
            return Err(invalid(rt, &name, immutable));
        }
        let warnings = self.validate(rt, &mut result, opts, &name)?;
        if is_deleting(old) {
            let before = finalizers(old);
            let added: Vec<String> = finalizers(&result)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            if !added.is_empty() {
                return Err(invalid(
                    rt,
                    &name,
                    vec![StatusCause {
                        reason: "FieldValueForbidden".into(),
                        message: format!(
                            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                        ),
                        field: "metadata.finalizers".into(),
                    }],
                ));
            }
        }
        let request = AdmissionRequest {
            operation: Operation::Update,
            resource: rt,
            old: Some(old),
            status: opts.status,
            dry_run: opts.dry_run,
            user: opts.user.as_ref(),
            view: self,
        };
        self.admit(&request, &mut result, opts, &name)?;
        if generation_content(rt, old) != generation_content(rt, &result) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            metadata_mut(&mut result).insert("generation".into(), json!(generation + 1));
        }
        if managed_fields.is_none()
            && let Some(manager) = &opts.field_manager
        {
            ownership::record_update(rt, Some(old), &mut result, manager, opts.status);
        }
        Ok((result, warnings))
    }

    /// Runs the admission plug-ins; an object they changed is validated again.
    fn admit(
        &self,
        request: &AdmissionRequest<'_>,
        obj: &mut Value,
        opts: &WriteOptions,
        name: &str,
    ) -> Result<(), ApiError> {
        if self.admissions.is_empty() {
            return Ok(());
        }
        let before = obj.clone();
        for admission in self.admissions.clone() {
            admission.admit(request, obj)?;
        }
        if *obj != before {
            self.validate(request.resource, obj, opts, name)?;
        }
        Ok(())
    }

    /// Schema and metadata validation; returns warnings, or a 422/400 error.
    fn validate(
        &self,
        rt: &'static ResourceType,
        obj: &mut Value,
        opts: &WriteOptions,
        name: &str,
    ) -> Result<Vec<String>, ApiError> {
        let mut causes = metadata_causes(obj);
        let mut warnings = Vec::new();
        if let Some(crd) = rt.crd() {
            let report = schema::process_object(obj, &crd.schema);
            warnings = unknown_field_verdict(
                &report.unknown_fields,
                opts.field_validation,
                &format!("{} in body", rt.kind),
            )?;
            causes.extend(report.causes);
        } else if let Some(builtin) = builtin_schemas::pruning_schema(rt) {
            // Built-in kinds are decoded into their Go types: unknown fields are dropped (or refused
            // under Strict) with the decoder's message; their validation is the store's and rules.rs'.
            let report = schema::process_object(obj, builtin);
            warnings = unknown_field_verdict(
                &report.unknown_fields,
                opts.field_validation,
                &format!(
                    "{kind} in version \"{version}\" cannot be handled as a {kind}",
                    kind = rt.kind,
                    version = rt.version
                ),
            )?;
        }
        if causes.is_empty() {
            Ok(warnings)
        } else {
            Err(invalid(rt, name, causes))
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        store: &Store,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
        old: Option<Arc<Value>>,
        config: &Value,
        manager: &str,
        force: bool,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        if manager.is_empty() {
            return Err(ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requests require fieldManager to be set",
            ));
        }
        if !config.is_object() {
            return Err(ApiError::bad_request(
                "an applied configuration must be an object",
            ));
        }
        if config
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            || config
                .get("kind")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(ApiError::bad_request(
                "apiVersion and kind must be set in an applied configuration",
            ));
        }
        if let Some(n) = meta_str(config, "name").filter(|n| *n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        // Only the part the target (main resource or status) accepts is applied and owned.
        let mut applied = config.clone();
        if let Value::Object(m) = &mut applied {
            if opts.status {
                m.retain(|k, _| {
                    matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status")
                });
            } else if rt.status_subresource {
                m.remove("status");
            }
        }
        let owned = patch::owned_fields(&applied);
        let subresource = opts.status.then_some("status");
        let entry = |owned: &BTreeSet<patch::FieldPath>| {
            let mut e = json!({
                "manager": manager,
                "operation": "Apply",
                "apiVersion": rt.api_version(),
                "time": clock::now_rfc3339(),
                "fieldsType": "FieldsV1",
                "fieldsV1": patch::fields_v1(owned),
            });
            if let Some(s) = subresource {
                e["subresource"] = json!(s);
            }
            e
        };
        let Some(old) = old else {
            if opts.status {
                return Err(ApiError::not_found(rt.group, rt.plural, name));
            }
            let mut obj = applied.clone();
            metadata_mut(&mut obj).insert("name".into(), json!(name));
            let (obj, warnings) =
                self.prepare_create(rt, namespace, obj, opts, Some(json!([entry(&owned)])))?;
            let object = if opts.dry_run {
                obj
            } else {
                (*self.commit_put(store, rt, obj, None)).clone()
            };
            return Ok(Written {
                object,
                warnings,
                created: true,
            });
        };
        let mut entries: Vec<Value> = old
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let same_target = |e: &Value| e.get("subresource").and_then(Value::as_str) == subresource;
        let previously: BTreeSet<patch::FieldPath> = entries
            .iter()
            .find(|e| {
                e.get("manager").and_then(Value::as_str) == Some(manager)
                    && e.get("operation").and_then(Value::as_str) == Some("Apply")
                    && same_target(e)
            })
            .and_then(|e| e.get("fieldsV1"))
            .map(patch::parse_fields_v1)
            .unwrap_or_default();
        let mut conflicts = Vec::new();
        let mut others_owned = BTreeSet::new();
        for e in entries.iter_mut() {
            let other = e
                .get("manager")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            // Fields an ordinary write (operation `Update`) set conflict too, as on the apiserver.
            let applier = e.get("operation").and_then(Value::as_str) == Some("Apply");
            if (other == manager && applier) || !same_target(e) {
                continue;
            }
            let mut theirs = e
                .get("fieldsV1")
                .map(patch::parse_fields_v1)
                .unwrap_or_default();
            let clashing: Vec<patch::FieldPath> = theirs
                .intersection(&owned)
                .filter(|p| patch::value_at(&old, p) != patch::value_at(&applied, p))
                .cloned()
                .collect();
            if !clashing.is_empty() {
                if force {
                    for p in &clashing {
                        theirs.remove(p);
                    }
                    e["fieldsV1"] = patch::fields_v1(&theirs);
                } else {
                    conflicts.extend(clashing.into_iter().map(|p| (e.clone(), p)));
                }
            }
            others_owned.extend(theirs);
        }
        if !conflicts.is_empty() {
            return Err(ownership::conflict_error(rt, name, &conflicts));
        }
        entries.retain(|e| {
            let mine = e.get("manager").and_then(Value::as_str) == Some(manager)
                && e.get("operation").and_then(Value::as_str) == Some("Apply")
                && same_target(e);
            let owns_nothing = e
                .get("fieldsV1")
                .map(patch::parse_fields_v1)
                .is_some_and(|f| f.is_empty());
            !(mine || owns_nothing)
        });
        entries.push(entry(&owned));
        let mut working = (*old).clone();
        for stale in previously.difference(&owned) {
            if !others_owned.contains(stale) {
                patch::remove_at(&mut working, stale);
            }
        }
        let mut to_merge = applied.clone();
        if let Some(meta) = to_merge.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "labels" | "annotations" | "finalizers" | "ownerReferences"
                )
            });
        }
        patch::apply_config(&mut working, &to_merge);
        metadata_mut(&mut working).remove("resourceVersion");
        let (new, warnings) =
            self.prepare_update(rt, &old, working, opts, Some(Value::Array(entries)))?;
        let object = self.finish_update(store, rt, old, new, opts.dry_run);
        Ok(Written {
            object,
            warnings,
            created: false,
        })
    }

    fn delete_object(
        &mut self,
        store: &Store,
        rt: &'static ResourceType,
        old: Arc<Value>,
        propagation: Propagation,
    ) -> Deleted {
        let is_namespace = std::ptr::eq(rt, &registry::NAMESPACE);
        if propagation == Propagation::Orphan && !is_namespace {
            let uid = meta_str(&old, "uid").unwrap_or_default().to_string();
            self.orphan_dependents(store, &uid);
        }
        if propagation == Propagation::Foreground && !is_namespace {
            let uid = meta_str(&old, "uid").unwrap_or_default().to_string();
            let dependents = self.dependents_of(&uid);
            if !dependents.is_empty() {
                return self.delete_in_foreground(store, rt, old, dependents);
            }
        }
        if !finalizers(&old).is_empty() || is_namespace {
            if is_deleting(&old) {
                return Deleted {
                    object: (*old).clone(),
                    removed: false,
                };
            }
            let mut obj = (*old).clone();
            let generation = obj
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let meta = metadata_mut(&mut obj);
            meta.insert("deletionTimestamp".into(), json!(clock::now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            meta.insert("generation".into(), json!(generation + 1));
            if is_namespace {
                obj["status"] = json!({"phase": "Terminating"});
            }
            let stored = (*self.commit_put(store, rt, obj, Some(old))).clone();
            if is_namespace {
                let ns = meta_str(&stored, "name").unwrap_or_default().to_string();
                self.delete_namespace_content(store, &ns);
                if self.try_finish_namespace(store, &ns) {
                    let mut last = stored;
                    metadata_mut(&mut last)
                        .insert("resourceVersion".into(), json!(self.rv.to_string()));
                    return Deleted {
                        object: last,
                        removed: true,
                    };
                }
                let current = self
                    .get(rt, None, &ns)
                    .map(|o| (*o).clone())
                    .unwrap_or(stored);
                return Deleted {
                    object: current,
                    removed: false,
                };
            }
            return Deleted {
                object: stored,
                removed: false,
            };
        }
        let removed = self.commit_remove(store, rt, old);
        if propagation != Propagation::Orphan {
            self.after_removal(store, rt, &removed);
        } else if let Some(ns) = meta_str(&removed, "namespace") {
            let ns = ns.to_string();
            self.try_finish_namespace(store, &ns);
        }
        Deleted {
            object: removed,
            removed: true,
        }
    }

    /// Orphan deletion: the garbage collector removes the owner's entry from its dependents'
    /// `ownerReferences` (each dependent is updated), so nothing later collects them.
    fn orphan_dependents(&mut self, store: &Store, uid: &str) {
        for (rt, dependent) in self.dependents_of(uid) {
            let mut orphaned = (*dependent).clone();
            let meta = metadata_mut(&mut orphaned);
            if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
                if refs.is_empty() {
                    meta.remove("ownerReferences");
                }
            }
            self.commit_put(store, rt, orphaned, Some(dependent));
        }
    }

    /// Objects whose `ownerReferences` name `uid`.
    fn dependents_of(&self, uid: &str) -> Vec<(&'static ResourceType, Arc<Value>)> {
        self.owner_index
            .get(uid)
            .map(|deps| {
                deps.iter()
                    .filter_map(|(tk, (ns, name))| {
                        let rt = registry::RESOURCE_TYPES
                            .iter()
                            .copied()
                            .find(|r| type_key(r) == *tk)?;
                        self.get(rt, Some(ns), name).map(|o| (rt, o))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Foreground deletion: mark the owner, delete its dependents, and let the owner go once none is left.
    fn delete_in_foreground(
        &mut self,
        store: &Store,
        rt: &'static ResourceType,
        old: Arc<Value>,
        dependents: Vec<(&'static ResourceType, Arc<Value>)>,
    ) -> Deleted {
        let ns = meta_str(&old, "namespace").map(str::to_string);
        let name = meta_str(&old, "name").unwrap_or_default().to_string();
        if !is_deleting(&old) || !finalizers(&old).iter().any(|f| f == FOREGROUND_FINALIZER) {
            let mut obj = (*old).clone();
            let generation = obj
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            let mut fins = finalizers(&obj);
            fins.push(FOREGROUND_FINALIZER.to_string());
            let meta = metadata_mut(&mut obj);
            if !meta.contains_key("deletionTimestamp") {
                meta.insert("deletionTimestamp".into(), json!(clock::now_rfc3339()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                meta.insert("generation".into(), json!(generation + 1));
            }
            meta.insert("finalizers".into(), json!(fins));
            self.commit_put(store, rt, obj, Some(old.clone()));
        }
        for (dep_rt, dep) in dependents {
            let dep_ns = meta_str(&dep, "namespace").map(str::to_string);
            let dep_name = meta_str(&dep, "name").unwrap_or_default().to_string();
            if let Some(current) = self.get(dep_rt, dep_ns.as_deref(), &dep_name) {
                self.delete_object(store, dep_rt, current, Propagation::Foreground);
            }
        }
        if let Some(uid) = meta_str(&old, "uid") {
            // Dependents that do not block (no `blockOwnerDeletion`) may still be finishing; the owner
            // does not wait for them.
            let uid = uid.to_string();
            self.release_foreground_owner(store, &uid);
        }
        match self.get(rt, ns.as_deref(), &name) {
            Some(current) => Deleted {
                object: (*current).clone(),
                removed: false,
            },
            None => Deleted {
                object: (*old).clone(),
                removed: true,
            },
        }
    }

    /// After a removal: owners in foreground deletion that have no blocking dependents left lose their
    /// `foregroundDeletion` finalizer (and go, if it was the last one).
    fn release_foreground_owners(&mut self, store: &Store, removed: &Value) {
        for uid in owner_uids(removed) {
            self.release_foreground_owner(store, &uid);
        }
    }

    /// Dependents of `uid` whose reference to it sets `blockOwnerDeletion: true`: the only ones a
    /// foreground deletion waits for, as the garbage collector does.
    fn blocking_dependents_of(&self, uid: &str) -> usize {
        self.dependents_of(uid)
            .iter()
            .filter(|(_, dependent)| {
                dependent
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter().any(|r| {
                            r.get("uid").and_then(Value::as_str) == Some(uid)
                                && r.get("blockOwnerDeletion").and_then(Value::as_bool)
                                    == Some(true)
                        })
                    })
            })
            .count()
    }

    /// Removes the `foregroundDeletion` finalizer of the owner `uid` once nothing blocks it.
    fn release_foreground_owner(&mut self, store: &Store, uid: &str) {
        let Some((owner_rt, (ns, name))) = self.uid_index.get(uid).cloned() else {
            return;
        };
        let Some(owner) = self.get(owner_rt, Some(&ns), &name) else {
            return;
        };
        if !finalizers(&owner).iter().any(|f| f == FOREGROUND_FINALIZER)
            || self.blocking_dependents_of(uid) > 0
        {
            return;
        }
        let mut obj = (*owner).clone();
        let remaining: Vec<String> = finalizers(&obj)
            .into_iter()
            .filter(|f| f != FOREGROUND_FINALIZER)
            .collect();
        metadata_mut(&mut obj).insert("finalizers".into(), json!(remaining));
        if remaining.is_empty() {
            metadata_mut(&mut obj).remove("finalizers");
            let gone = self.commit_remove(store, owner_rt, Arc::new(obj));
            self.after_removal(store, owner_rt, &gone);
        } else {
            self.commit_put(store, owner_rt, obj, Some(owner));
        }
    }

    /// Garbage-collects dependents whose owners are all gone, then finishes a terminating namespace.
    fn after_removal(&mut self, store: &Store, _rt: &'static ResourceType, removed: &Value) {
        self.release_foreground_owners(store, removed);
        if let Some(uid) = meta_str(removed, "uid") {
            let uid = uid.to_string();
            // Dependents whose owners are now all gone.
            let orphaned: Vec<(&'static ResourceType, Arc<Value>)> = self
                .dependents_of(&uid)
                .into_iter()
                .filter(|(_, obj)| {
                    owner_uids(obj)
                        .iter()
                        .all(|u| *u == uid || !self.uid_index.contains_key(u))
                })
                .collect();
            for (rt, obj) in orphaned {
                let ns = meta_str(&obj, "namespace").map(str::to_string);
                let name = meta_str(&obj, "name").unwrap_or_default().to_string();
                // It may already be gone through another path of the cascade.
                if let Some(current) = self.get(rt, ns.as_deref(), &name) {
                    self.delete_object(store, rt, current, Propagation::Background);
                }
            }
        }
        if let Some(ns) = meta_str(removed, "namespace") {
            let ns = ns.to_string();
            self.try_finish_namespace(store, &ns);
        }
    }

    fn delete_namespace_content(&mut self, store: &Store, ns: &str) {
        let mut victims = Vec::new();
        for rt in registry::RESOURCE_TYPES
            .iter()
            .copied()
            .filter(|r| r.namespaced)
        {
            if let Some(objects) = self.objects.get(&type_key(rt)) {
                victims.extend(
                    objects
                        .iter()
                        .filter(|((n, _), _)| n == ns)
                        .map(|((_, name), _)| (rt, name.clone())),
                );
            }
        }
        for (rt, name) in victims {
            if let Some(current) = self.get(rt, Some(ns), &name) {
                self.delete_object(store, rt, current, Propagation::Background);
            }
        }
    }

    fn namespace_is_empty(&self, ns: &str) -> bool {
        self.namespace_counts.get(ns).is_none_or(|c| *c == 0)
    }

    /// Drops an object's entries from the owner index.
    fn unindex_owners(&mut self, rt: &'static ResourceType, key: &ObjectKey, obj: &Value) {
        for owner in owner_uids(obj) {
            if let Some(deps) = self.owner_index.get_mut(&owner) {
                deps.remove(&(type_key(rt), key.clone()));
                if deps.is_empty() {
                    self.owner_index.remove(&owner);
                }
            }
        }
    }

    /// Removes a terminating namespace once it is empty and has no finalizers. True if removed.
    fn try_finish_namespace(&mut self, store: &Store, ns: &str) -> bool {
        let Some(namespace) = self.get(&registry::NAMESPACE, None, ns) else {
            return false;
        };
        if !is_deleting(&namespace)
            || !finalizers(&namespace).is_empty()
            || !self.namespace_is_empty(ns)
        {
            return false;
        }
        let removed = self.commit_remove(store, &registry::NAMESPACE, namespace);
        self.after_removal(store, &registry::NAMESPACE, &removed);
        true
    }
}

/// The store read outside a write (RBAC reads its policy through this view, inside an admission too).
impl StoreView for Store {
    fn get(&self, rt: &'static ResourceType, namespace: Option<&str>, name: &str) -> Option<Value> {
        Store::get(self, rt, namespace, name).ok()
    }

    fn list(&self, rt: &'static ResourceType, namespace: Option<&str>) -> Vec<Value> {
        Store::list(self, rt, namespace, &ListOptions::default())
            .map(|list| list.items)
            .unwrap_or_default()
    }
}

impl StoreView for State {
    fn get(&self, rt: &'static ResourceType, namespace: Option<&str>, name: &str) -> Option<Value> {
        State::get(self, rt, namespace, name).map(|o| (*o).clone())
    }

    fn list(&self, rt: &'static ResourceType, namespace: Option<&str>) -> Vec<Value> {
        let namespace = namespace.filter(|_| rt.namespaced);
        self.objects
            .get(&type_key(rt))
            .map(|m| {
                m.iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|want| ns == want))
                    .map(|(_, o)| (**o).clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn invalid(rt: &ResourceType, name: &str, causes: Vec<StatusCause>) -> ApiError {
    ApiError::invalid(&rt.qualified_kind(), rt.group, rt.kind, name, causes)
}

/// Checks and fills `apiVersion` and `kind`.
fn check_type_meta(rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
    let Value::Object(m) = obj else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    let api_version = rt.api_version();
    match m.get("apiVersion").and_then(Value::as_str) {
        Some(v) if !v.is_empty() && v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
        _ => {
            m.insert("apiVersion".into(), json!(api_version));
        }
    }
    match m.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != rt.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )));
        }
        _ => {
            m.insert("kind".into(), json!(rt.kind));
        }
    }
    if m.get("metadata")
        .is_some_and(|v| !v.is_object() && !v.is_null())
    {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    Ok(())
}

/// Kind-specific server defaults: Secret `stringData` folded into base64 `data`, default Secret type,
/// initial phases of Namespace, Pod and PVC.
fn normalize(rt: &'static ResourceType, obj: &mut Value, creating: bool) -> Result<(), ApiError> {
    if std::ptr::eq(rt, &registry::SECRET) {
        let engine = base64::engine::general_purpose::STANDARD;
        let Value::Object(m) = obj else { return Ok(()) };
        if let Some(Value::Object(data)) = m.get("data") {
            for (k, v) in data {
                let ok = v.as_str().is_some_and(|s| engine.decode(s).is_ok()) || v.is_null();
                if !ok {
                    return Err(ApiError::bad_request(format!(
                        "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data in data[{k:?}]"
                    )));
                }
            }
        }
        if let Some(string_data) = m.remove("stringData") {
            let Value::Object(sd) = string_data else {
                return Err(ApiError::bad_request("stringData must be a map of strings"));
            };
            let data = m.entry("data").or_insert_with(|| Value::Object(Map::new()));
            if !data.is_object() {
                *data = Value::Object(Map::new());
            }
            for (k, v) in sd {
                let s = v.as_str().unwrap_or_default();
                data[k.as_str()] = json!(engine.encode(s));
            }
        }
        if m.get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            m.insert("type".into(), json!("Opaque"));
        }
    } else if creating {
        let phase = if std::ptr::eq(rt, &registry::NAMESPACE) {
            Some("Active")
        } else if std::ptr::eq(rt, &registry::POD)
            || std::ptr::eq(rt, &registry::PERSISTENT_VOLUME_CLAIM)
        {
            Some("Pending")
        } else {
            None
        };
        if let Some(phase) = phase
            && obj.pointer("/status/phase").is_none()
        {
            obj["status"] = json!({"phase": phase});
        }
    }
    Ok(())
}
