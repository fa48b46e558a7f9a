//! Leases on settings that several runs sharing one cluster change: the ForkliftController's precopy
//! interval, the node labels of node-selector scenarios.
//!
//! The object itself carries the leases, in the annotation [`LEASE_ANNOTATION`]: for each setting, the
//! value the sessions need, the value it had before the first of them, and the sessions that hold it.
//! Every change is a read followed by a patch that names the resourceVersion read, so two sessions
//! never overwrite each other's lease (a 409 Conflict means "read again"). A session joins a lease
//! held at the value it needs, refuses one held at another value, and on leaving restores the original
//! value only when it is the last holder. A crashed session's lease is released by `mtv-tests clean`
//! with its ledger, like anything else it made.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cluster::{Cluster, ClusterError, Kind};
use crate::events::ResourceRef;
use crate::ledger::LedgerEntry;

/// The annotation holding the leases of an object, as JSON: `{"<setting>": {"value", "original",
/// "sessions"}}`.
pub const LEASE_ANNOTATION: &str = "mtv-tests/leases";

/// How often a patch that lost a race with another session is tried again.
const CONFLICT_ATTEMPTS: usize = 30;

/// A setting of a shared object, named as in the lease annotation and the ledger:
/// `spec.<field>` (a top-level field of the spec) or `metadata.labels.<label key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    Spec(String),
    Label(String),
}

impl Setting {
    pub fn name(&self) -> String {
        match self {
            Setting::Spec(field) => format!("spec.{field}"),
            Setting::Label(key) => format!("metadata.labels.{key}"),
        }
    }

    /// The setting a ledger or annotation names, if it is one of ours.
    pub fn parse(name: &str) -> Option<Setting> {
        if let Some(key) = name.strip_prefix("metadata.labels.") {
            Some(Setting::Label(key.to_string()))
        } else {
            name.strip_prefix("spec.")
                .map(|field| Setting::Spec(field.to_string()))
        }
    }

    /// Its value on `object`; null when absent.
    fn read(&self, object: &Value) -> Value {
        match self {
            Setting::Spec(field) => object["spec"][field].clone(),
            Setting::Label(key) => object["metadata"]["labels"][key].clone(),
        }
    }

    /// A merge patch setting it to `value` (null removes it).
    fn patch(&self, value: Value) -> Value {
        match self {
            Setting::Spec(field) => json!({"spec": {field: value}}),
            Setting::Label(key) => json!({"metadata": {"labels": {key: value}}}),
        }
    }
}

/// One setting's lease, as the annotation stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Lease {
    value: Value,
    original: Value,
    sessions: Vec<String>,
}

/// The leases an object carries, by setting name.
type Leases = BTreeMap<String, Lease>;

fn leases_of(object: &Value, what: &str) -> Result<Leases, ClusterError> {
    match object["metadata"]["annotations"][LEASE_ANNOTATION].as_str() {
        None => Ok(Leases::new()),
        Some(text) => serde_json::from_str(text).map_err(|e| ClusterError::Condition {
            what: what.to_string(),
            reason: format!(
                "its annotation {LEASE_ANNOTATION} is not a lease list ({e}); fix or remove it by hand"
            ),
        }),
    }
}

/// The patch that writes `leases` (and `setting_patch`), valid only if the object is still at
/// `resource_version`.
fn lease_patch(resource_version: &str, leases: &Leases, setting_patch: Option<Value>) -> Value {
    let annotation = if leases.is_empty() {
        Value::Null
    } else {
        Value::String(serde_json::to_string(leases).unwrap_or_default())
    };
    let mut patch = setting_patch.unwrap_or_else(|| json!({}));
    patch["metadata"]["resourceVersion"] = json!(resource_version);
    patch["metadata"]["annotations"] = json!({ LEASE_ANNOTATION: annotation });
    patch
}

fn is_conflict(error: &ClusterError) -> bool {
    matches!(error, ClusterError::Api { source: kube::Error::Api(status), .. } if status.code == 409)
}

/// A short random pause after a lost race, so racing sessions do not collide again in step.
async fn pause_after_conflict() {
    tokio::time::sleep(Duration::from_millis(20 + fastrand::u64(0..80))).await;
}

fn describe(kind: &Kind, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{} {ns}/{name}", kind.kind),
        None => format!("{} {name}", kind.kind),
    }
}

fn uid_of(object: &Value) -> Option<String> {
    object["metadata"]["uid"].as_str().map(str::to_string)
}

/// Makes `setting` of the object `value` for `session`, joining the lease other sessions hold at
/// the same value. The ledger records the lease (with the object's uid) before the object changes.
/// Fails, changing nothing, when other sessions hold the setting at another value.
pub async fn acquire(
    cluster: &Cluster,
    kind: &Kind,
    namespace: Option<&str>,
    name: &str,
    setting: &Setting,
    value: Value,
    session: &str,
) -> Result<(), ClusterError> {
    let what = format!(
        "set {} on {}",
        setting.name(),
        describe(kind, namespace, name)
    );
    for _ in 0..CONFLICT_ATTEMPTS {
        let object =
            cluster
                .get(kind, namespace, name)
                .await?
                .ok_or_else(|| ClusterError::Condition {
                    what: what.clone(),
                    reason: "it does not exist".into(),
                })?;
        let mut leases = leases_of(&object, &what)?;
        let lease = leases.entry(setting.name()).or_insert_with(|| Lease {
            value: value.clone(),
            original: setting.read(&object),
            sessions: Vec::new(),
        });
        if lease.value != value {
            return Err(ClusterError::Condition {
                what,
                reason: format!(
                    "sessions {} hold it at {}, and this run needs {value}; wait for them to end \
                     (or, if they crashed, run `mtv-tests clean --ledger` with their resources.json)",
                    lease.sessions.join(", "),
                    lease.value
                ),
            });
        }
        if lease.sessions.iter().any(|s| s == session) && setting.read(&object) == value {
            return Ok(());
        }
        if !lease.sessions.iter().any(|s| s == session) {
            lease.sessions.push(session.to_string());
        }
        record_lease(cluster, kind, namespace, name, &object, setting, session)?;
        let resource_version = object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        let patch = lease_patch(
            resource_version,
            &leases,
            Some(setting.patch(value.clone())),
        );
        match cluster.merge_patch(kind, namespace, name, patch).await {
            Ok(_) => return Ok(()),
            Err(error) if is_conflict(&error) => pause_after_conflict().await,
            Err(error) => return Err(error),
        }
    }
    Err(ClusterError::Condition {
        what,
        reason: format!("{CONFLICT_ATTEMPTS} attempts in a row lost a race with other writers"),
    })
}

/// Writes the lease to the ledger, once per object, setting and session.
fn record_lease(
    cluster: &Cluster,
    kind: &Kind,
    namespace: Option<&str>,
    name: &str,
    object: &Value,
    setting: &Setting,
    session: &str,
) -> Result<(), ClusterError> {
    let resource = ResourceRef {
        api_version: kind.api_version(),
        kind: kind.kind.to_string(),
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
        uid: uid_of(object),
    };
    let entry = LedgerEntry::Lease {
        resource,
        setting: setting.name(),
        session: session.to_string(),
        removed: false,
    };
    if !cluster.ledger().entries().contains(&entry) {
        cluster.ledger().record(entry)?;
    }
    Ok(())
}

/// What leaving a lease did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// The session was the last holder: the original value is back.
    Restored,
    /// Other sessions still hold it; the value stays.
    StillHeld { sessions: Vec<String> },
    /// The session held no lease there (already released, or the change never happened).
    NotHeld,
    /// The object is gone.
    Gone,
    /// The object there now is another one (another uid): not ours, left alone.
    NotOurs { uid: String },
}

/// Leaves `session`'s lease on `setting` of the recorded object; the last holder restores the
/// original value.
pub async fn release(
    cluster: &Cluster,
    kind: &Kind,
    resource: &ResourceRef,
    setting: &Setting,
    session: &str,
) -> Result<Released, ClusterError> {
    let namespace = resource.namespace.as_deref();
    let what = format!("release the lease on {} of {resource}", setting.name());
    for _ in 0..CONFLICT_ATTEMPTS {
        let Some(object) = cluster.get(kind, namespace, &resource.name).await? else {
            return Ok(Released::Gone);
        };
        let uid = uid_of(&object).unwrap_or_default();
        if resource.uid.as_deref() != Some(uid.as_str()) {
            return Ok(Released::NotOurs { uid });
        }
        let mut leases = leases_of(&object, &what)?;
        let Some(lease) = leases.get_mut(&setting.name()) else {
            return Ok(Released::NotHeld);
        };
        if !lease.sessions.iter().any(|s| s == session) {
            return Ok(Released::NotHeld);
        }
        lease.sessions.retain(|s| s != session);
        let (outcome, setting_patch) = if lease.sessions.is_empty() {
            let original = lease.original.clone();
            leases.remove(&setting.name());
            (Released::Restored, Some(setting.patch(original)))
        } else {
            let sessions = lease.sessions.clone();
            (Released::StillHeld { sessions }, None)
        };
        let resource_version = object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        let patch = lease_patch(resource_version, &leases, setting_patch);
        match cluster
            .merge_patch(kind, namespace, &resource.name, patch)
            .await
        {
            Ok(_) => return Ok(outcome),
            Err(error) if is_conflict(&error) => pause_after_conflict().await,
            Err(error) if error.is_not_found() => return Ok(Released::Gone),
            Err(error) => return Err(error),
        }
    }
    Err(ClusterError::Condition {
        what,
        reason: format!("{CONFLICT_ATTEMPTS} attempts in a row lost a race with other writers"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_themselves_and_parse_back() {
        for setting in [
            Setting::Spec("controller_precopy_interval".into()),
            Setting::Label("example.com/zone-auto-ab12".into()),
        ] {
            assert_eq!(Setting::parse(&setting.name()), Some(setting));
        }
        assert_eq!(Setting::parse("status.phase"), None);
    }

    #[test]
    fn a_setting_reads_and_patches_its_own_place() {
        let node = json!({"metadata": {"labels": {"a/b": "x"}}, "spec": {"n": 5}});
        assert_eq!(Setting::Label("a/b".into()).read(&node), json!("x"));
        assert_eq!(Setting::Spec("n".into()).read(&node), json!(5));
        assert_eq!(Setting::Spec("m".into()).read(&node), Value::Null);
        assert_eq!(
            Setting::Label("a/b".into()).patch(Value::Null),
            json!({"metadata": {"labels": {"a/b": null}}})
        );
    }

    #[test]
    fn the_patch_names_the_resource_version_and_drops_an_empty_annotation() {
        let patch = lease_patch(
            "41",
            &Leases::new(),
            Some(Setting::Spec("n".into()).patch(json!(60))),
        );
        assert_eq!(
            patch,
            json!({"spec": {"n": 60}, "metadata": {"resourceVersion": "41", "annotations": {LEASE_ANNOTATION: null}}})
        );
        let mut leases = Leases::new();
        leases.insert(
            "spec.n".into(),
            Lease {
                value: json!(2),
                original: json!(60),
                sessions: vec!["auto-ab12".into()],
            },
        );
        let patch = lease_patch("42", &leases, None);
        let stored: Leases = serde_json::from_str(
            patch["metadata"]["annotations"][LEASE_ANNOTATION]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(stored, leases);
    }

    #[test]
    fn a_malformed_lease_annotation_is_refused_not_overwritten() {
        let object = json!({"metadata": {"annotations": {LEASE_ANNOTATION: "not json"}}});
        let error = leases_of(&object, "set spec.n on X").unwrap_err();
        assert!(
            error.to_string().contains("fix or remove it by hand"),
            "{error}"
        );
    }
}
