//! Store semantics: resourceVersion, conflicts, generateName, generation, status separation, finalizers,
//! garbage collection, namespaces, patches, server-side apply, CRD defaulting and watches.

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::patch::Patch;
use crate::registry::{self, CONFIG_MAP, NAMESPACE, PLAN, POD, ResourceType, SECRET};
use crate::selector::LabelSelector;
use crate::store::*;

fn store_with_ns(ns: &str) -> Store {
    let store = Store::new(100);
    store
        .create(&NAMESPACE, None, json!({"metadata": {"name": ns}}))
        .unwrap();
    store
}

/// True when the store answers 404 for `name` in `namespace`.
fn not_found(
    store: &Store,
    rt: &'static ResourceType,
    namespace: Option<&str>,
    name: &str,
) -> bool {
    store
        .get(rt, namespace, name)
        .is_err_and(|e| e.is_not_found())
}

fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn cm(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

/// A JSON merge patch of `name` in `ns`, as an ordinary client sends it.
fn merge_patch(
    store: &Store,
    rt: &'static ResourceType,
    name: &str,
    patch: Value,
) -> Result<Written, ApiError> {
    store.patch(
        rt,
        Some("ns"),
        name,
        &Patch::Merge(patch),
        &WriteOptions::default(),
    )
}

/// A Plan with only the fields the CRD requires (the store tests', the schema tests' and the kube-rs
/// tests' fixture).
pub(crate) fn plan(name: &str) -> Value {
    let mut plan: Value =
        serde_json::from_str(include_str!("../tests/fixtures/minimal-plan.json")).unwrap();
    plan["metadata"]["name"] = json!(name);
    plan
}

#[test]
fn create_assigns_metadata_and_monotonic_resource_versions() {
    let store = store_with_ns("ns");
    let a = store.create(&CONFIG_MAP, Some("ns"), cm("a")).unwrap();
    let b = store.create(&CONFIG_MAP, Some("ns"), cm("b")).unwrap();
    assert!(rv(&b) > rv(&a));
    assert_eq!(a["metadata"]["namespace"], "ns");
    assert_eq!(a["metadata"]["generation"], 1);
    assert_eq!(a["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert_ne!(a["metadata"]["uid"], b["metadata"]["uid"]);
    assert!(
        a["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(store.resource_version(), rv(&b));
    let err = store.create(&CONFIG_MAP, Some("ns"), cm("a")).unwrap_err();
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    let err = store
        .create(&CONFIG_MAP, Some("nope"), cm("x"))
        .unwrap_err();
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "namespaces \"nope\" not found");
}

#[test]
fn invalid_names_and_missing_names_are_422() {
    let store = store_with_ns("ns");
    let err = store
        .create(&CONFIG_MAP, Some("ns"), cm("Bad_Name"))
        .unwrap_err();
    assert_eq!(err.code, 422);
    assert_eq!(err.causes[0].field, "metadata.name");
    let err = store
        .create(&CONFIG_MAP, Some("ns"), json!({"metadata": {}}))
        .unwrap_err();
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains("name or generateName is required"),
        "{}",
        err.message
    );
}

#[test]
fn generate_name_appends_five_random_characters() {
    let store = store_with_ns("ns");
    let mut names = std::collections::HashSet::new();
    for _ in 0..20 {
        let o = store
            .create(
                &CONFIG_MAP,
                Some("ns"),
                json!({"metadata": {"generateName": "cm-"}}),
            )
            .unwrap();
        let name = o["metadata"]["name"].as_str().unwrap().to_string();
        assert!(name.starts_with("cm-") && name.len() == 8, "{name}");
        assert!(
            name[3..]
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        names.insert(name);
    }
    assert_eq!(names.len(), 20);
}

#[test]
fn a_long_generate_name_is_cut_to_fit_63_characters() {
    let store = store_with_ns("ns");
    let prefix = format!("{}-", "a".repeat(70));
    let o = store
        .create(
            &CONFIG_MAP,
            Some("ns"),
            json!({"metadata": {"generateName": prefix}}),
        )
        .unwrap();
    let name = o["metadata"]["name"].as_str().unwrap();
    assert_eq!(name.len(), 63, "{name}");
    assert!(name.starts_with(&"a".repeat(58)));
}

#[test]
fn stale_resource_version_is_a_conflict() {
    let store = store_with_ns("ns");
    let a = store.create(&CONFIG_MAP, Some("ns"), cm("a")).unwrap();
    let mut first = a.clone();
    first["data"]["k"] = json!("v2");
    let updated = store.update(&CONFIG_MAP, Some("ns"), first).unwrap();
    assert!(rv(&updated) > rv(&a));
    let mut stale = a.clone();
    stale["data"]["k"] = json!("v3");
    let err = store.update(&CONFIG_MAP, Some("ns"), stale).unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(err.code, 409);
    // Without a resourceVersion the update is unconditional.
    let mut unconditional = a;
    unconditional["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    unconditional["data"]["k"] = json!("v4");
    assert_eq!(
        store
            .update(&CONFIG_MAP, Some("ns"), unconditional)
            .unwrap()["data"]["k"],
        "v4"
    );
}

#[test]
fn no_op_update_keeps_the_resource_version() {
    let store = store_with_ns("ns");
    let a = store.create(&CONFIG_MAP, Some("ns"), cm("a")).unwrap();
    let again = store.update(&CONFIG_MAP, Some("ns"), a.clone()).unwrap();
    assert_eq!(rv(&again), rv(&a));
}

#[test]
fn generation_follows_spec_changes_only_for_status_kinds() {
    let store = store_with_ns("ns");
    let p = store.create(&PLAN, Some("ns"), plan("p")).unwrap();
    assert_eq!(p["metadata"]["generation"], 1);
    let p = merge_patch(
        &store,
        &PLAN,
        "p",
        json!({"metadata": {"labels": {"a": "b"}}}),
    )
    .unwrap()
    .object;
    assert_eq!(
        p["metadata"]["generation"], 1,
        "metadata changes keep the generation"
    );
    let p = store
        .update_status(&PLAN, Some("ns"), "p", json!({"conditions": []}))
        .unwrap();
    assert_eq!(
        p["metadata"]["generation"], 1,
        "status changes keep the generation"
    );
    let p = merge_patch(&store, &PLAN, "p", json!({"spec": {"warm": true}}))
        .unwrap()
        .object;
    assert_eq!(p["metadata"]["generation"], 2);
    // ConfigMap has no status subresource: any non-metadata change bumps it.
    store.create(&CONFIG_MAP, Some("ns"), cm("c")).unwrap();
    let c = merge_patch(&store, &CONFIG_MAP, "c", json!({"data": {"k": "z"}}))
        .unwrap()
        .object;
    assert_eq!(c["metadata"]["generation"], 2);
}

fn ready() -> Value {
    json!({"type": "Ready", "status": "True", "category": "Required", "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

#[test]
fn status_writes_are_validated_against_the_schema() {
    let store = store_with_ns("ns");
    store.create(&PLAN, Some("ns"), plan("p")).unwrap();
    let err = store
        .update_status(
            &PLAN,
            Some("ns"),
            "p",
            json!({"conditions": [{"type": "Ready", "status": "True"}]}),
        )
        .unwrap_err();
    assert_eq!(err.code, 422);
    assert!(
        err.causes
            .iter()
            .any(|c| c.field == "status.conditions[0].lastTransitionTime")
    );
}

#[test]
fn status_subresource_is_separate_from_the_main_resource() {
    let store = store_with_ns("ns");
    let mut with_status = plan("p");
    with_status["status"] = json!({"conditions": [ready()]});
    let p = store.create(&PLAN, Some("ns"), with_status).unwrap();
    assert!(p.get("status").is_none(), "status is dropped on create");
    let p = store
        .update_status(&PLAN, Some("ns"), "p", json!({"conditions": [ready()]}))
        .unwrap();
    assert_eq!(p["status"]["conditions"][0]["type"], "Ready");
    // A main-resource write cannot change status...
    let mut main = p.clone();
    main["status"] = json!({"conditions": []});
    main["spec"]["warm"] = json!(true);
    let p2 = store.update(&PLAN, Some("ns"), main).unwrap();
    assert_eq!(p2["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(p2["spec"]["warm"], true);
    // ...and a status write cannot change spec.
    let mut status_write = p2.clone();
    status_write["spec"]["warm"] = json!(false);
    status_write["status"] = json!({"conditions": []});
    let p3 = store
        .update_with(
            &PLAN,
            Some("ns"),
            "p",
            status_write,
            &WriteOptions::status(),
        )
        .unwrap()
        .object;
    assert_eq!(p3["spec"]["warm"], true);
    assert_eq!(p3["status"]["conditions"], json!([]));
}

#[test]
fn finalizers_delay_removal_until_cleared() {
    let store = store_with_ns("ns");
    let mut obj = cm("f");
    obj["metadata"]["finalizers"] = json!(["lab/keep"]);
    store.create(&CONFIG_MAP, Some("ns"), obj).unwrap();
    let d = store
        .delete(&CONFIG_MAP, Some("ns"), "f", &DeleteOptions::default())
        .unwrap();
    assert!(!d.removed);
    assert!(d.object["metadata"]["deletionTimestamp"].is_string());
    let current = store.get(&CONFIG_MAP, Some("ns"), "f").unwrap();
    assert!(current["metadata"]["deletionTimestamp"].is_string());
    let err = merge_patch(
        &store,
        &CONFIG_MAP,
        "f",
        json!({"metadata": {"finalizers": ["lab/keep", "new"]}}),
    )
    .unwrap_err();
    assert_eq!(err.code, 422);
    merge_patch(
        &store,
        &CONFIG_MAP,
        "f",
        json!({"metadata": {"finalizers": null}}),
    )
    .unwrap();
    assert!(not_found(&store, &CONFIG_MAP, Some("ns"), "f"));
}

fn owned_by(name: &str, owner: &Value) -> Value {
    json!({"metadata": {"name": name, "ownerReferences": [{
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]
    }]}})
}

#[test]
fn garbage_collection_cascades_through_owner_references() {
    let store = store_with_ns("ns");
    let root = store.create(&CONFIG_MAP, Some("ns"), cm("root")).unwrap();
    let child = store
        .create(&SECRET, Some("ns"), owned_by("child", &root))
        .unwrap();
    store
        .create(&POD, Some("ns"), owned_by("grandchild", &child))
        .unwrap();
    let other = store.create(&CONFIG_MAP, Some("ns"), cm("other")).unwrap();
    let mut two_owners = owned_by("shared", &root);
    two_owners["metadata"]["ownerReferences"]
        .as_array_mut()
        .unwrap()
        .push(json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": other["metadata"]["uid"]}));
    store.create(&POD, Some("ns"), two_owners).unwrap();
    store
        .delete(&CONFIG_MAP, Some("ns"), "root", &DeleteOptions::default())
        .unwrap();
    assert!(not_found(&store, &SECRET, Some("ns"), "child"));
    assert!(not_found(&store, &POD, Some("ns"), "grandchild"));
    assert!(
        store.get(&POD, Some("ns"), "shared").is_ok(),
        "an object with a live owner stays"
    );
    // Orphan propagation leaves dependents alone.
    let lone = store.create(&CONFIG_MAP, Some("ns"), cm("lone")).unwrap();
    store
        .create(&SECRET, Some("ns"), owned_by("orphan", &lone))
        .unwrap();
    store
        .delete(
            &CONFIG_MAP,
            Some("ns"),
            "lone",
            &DeleteOptions {
                propagation: Propagation::Orphan,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(store.get(&SECRET, Some("ns"), "orphan").is_ok());
}

#[test]
fn deleting_a_namespace_removes_its_content_after_finalizers() {
    let store = store_with_ns("doomed");
    store
        .create(&NAMESPACE, None, json!({"metadata": {"name": "kept"}}))
        .unwrap();
    store.create(&CONFIG_MAP, Some("doomed"), cm("a")).unwrap();
    store.create(&CONFIG_MAP, Some("kept"), cm("a")).unwrap();
    let mut fin = cm("held");
    fin["metadata"]["finalizers"] = json!(["lab/hold"]);
    store.create(&CONFIG_MAP, Some("doomed"), fin).unwrap();
    let d = store
        .delete(&NAMESPACE, None, "doomed", &DeleteOptions::default())
        .unwrap();
    assert!(!d.removed);
    let ns = store.get(&NAMESPACE, None, "doomed").unwrap();
    assert_eq!(ns["status"]["phase"], "Terminating");
    assert!(not_found(&store, &CONFIG_MAP, Some("doomed"), "a"));
    let err = store
        .create(&CONFIG_MAP, Some("doomed"), cm("new"))
        .unwrap_err();
    assert_eq!(err.code, 403);
    store
        .patch(
            &CONFIG_MAP,
            Some("doomed"),
            "held",
            &Patch::Json(json!([{"op": "remove", "path": "/metadata/finalizers"}])),
            &WriteOptions::default(),
        )
        .unwrap();
    assert!(not_found(&store, &NAMESPACE, None, "doomed"));
    assert!(store.get(&CONFIG_MAP, Some("kept"), "a").is_ok());
}

#[test]
fn list_filters_by_selectors_and_pages() {
    let store = store_with_ns("ns");
    for i in 0..5 {
        let mut o = cm(&format!("cm-{i}"));
        o["metadata"]["labels"] = json!({"parity": if i % 2 == 0 { "even" } else { "odd" }});
        store.create(&CONFIG_MAP, Some("ns"), o).unwrap();
    }
    let even = ListOptions {
        label_selector: LabelSelector::parse("parity=even").unwrap(),
        ..Default::default()
    };
    assert_eq!(
        store
            .list(&CONFIG_MAP, Some("ns"), &even)
            .unwrap()
            .items
            .len(),
        3
    );
    let mut seen = Vec::new();
    let mut opts = ListOptions {
        limit: Some(2),
        ..Default::default()
    };
    loop {
        let page = store.list(&CONFIG_MAP, Some("ns"), &opts).unwrap();
        seen.extend(
            page.items
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match page.continue_token {
            Some(t) => {
                assert!(page.remaining_item_count.unwrap() > 0);
                opts.continue_token = Some(t);
            }
            None => break,
        }
    }
    assert_eq!(seen, vec!["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]);
    assert_eq!(
        store
            .list(&CONFIG_MAP, None, &ListOptions::default())
            .unwrap()
            .items
            .len(),
        5
    );
}

#[test]
fn secret_string_data_becomes_base64_data() {
    let store = store_with_ns("ns");
    let s = store
        .create(&SECRET, Some("ns"), json!({"metadata": {"name": "s"}, "stringData": {"user": "admin"}, "data": {"x": "eA=="}}))
        .unwrap();
    assert_eq!(s["data"]["user"], "YWRtaW4=");
    assert_eq!(s["data"]["x"], "eA==");
    assert_eq!(s["type"], "Opaque");
    assert!(s.get("stringData").is_none());
    let err = store
        .create(
            &SECRET,
            Some("ns"),
            json!({"metadata": {"name": "bad"}, "data": {"x": "!!"}}),
        )
        .unwrap_err();
    assert_eq!(err.code, 400);
}

#[test]
fn patches_merge_json_and_strategic() {
    let store = store_with_ns("ns");
    store.create(&CONFIG_MAP, Some("ns"), cm("p")).unwrap();
    let opts = WriteOptions::default();
    let o = store
        .patch(
            &CONFIG_MAP,
            Some("ns"),
            "p",
            &Patch::Merge(json!({"data": {"a": "1"}})),
            &opts,
        )
        .unwrap()
        .object;
    assert_eq!(o["data"], json!({"k": "v", "a": "1"}));
    let o = store
        .patch(
            &CONFIG_MAP,
            Some("ns"),
            "p",
            &Patch::Json(json!([{"op": "replace", "path": "/data/k", "value": "w"}])),
            &opts,
        )
        .unwrap()
        .object;
    assert_eq!(o["data"]["k"], "w");
    let o = store
        .patch(
            &CONFIG_MAP,
            Some("ns"),
            "p",
            &Patch::Strategic(json!({"data": {"a": null}, "$retainKeys": ["data"]})),
            &opts,
        )
        .unwrap()
        .object;
    assert_eq!(o["data"], json!({"k": "w"}));
    // A patch carrying a stale resourceVersion conflicts.
    let err = store
        .patch(
            &CONFIG_MAP,
            Some("ns"),
            "p",
            &Patch::Merge(json!({"metadata": {"resourceVersion": "1"}, "data": {"b": "2"}})),
            &opts,
        )
        .unwrap_err();
    assert!(err.is_conflict());
    assert!(
        store
            .patch(
                &CONFIG_MAP,
                Some("ns"),
                "missing",
                &Patch::Merge(json!({})),
                &opts
            )
            .unwrap_err()
            .is_not_found()
    );
}

#[test]
fn server_side_apply_creates_updates_removes_and_conflicts() {
    let store = store_with_ns("ns");
    let apply = |config: Value, manager: &str, force: bool| {
        store.patch(
            &CONFIG_MAP,
            Some("ns"),
            "cfg",
            &Patch::Apply {
                config,
                field_manager: manager.into(),
                force,
            },
            &WriteOptions::default(),
        )
    };
    let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "labels": {"a": "1"}}, "data": {"x": "1", "y": "2"}});
    let w = apply(first, "alice", false).unwrap();
    assert!(w.created);
    assert_eq!(w.object["metadata"]["managedFields"][0]["manager"], "alice");
    assert_eq!(
        w.object["metadata"]["managedFields"][0]["fieldsV1"]["f:data"]["f:x"],
        json!({})
    );
    // Dropping y from alice's config removes it.
    let w = apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"x": "1"}}), "alice", false).unwrap();
    assert_eq!(w.object["data"], json!({"x": "1"}));
    assert!(
        w.object["metadata"]
            .get("labels")
            .is_none_or(|l| l.get("a").is_none())
    );
    // Bob setting x to another value conflicts, unless forced.
    let bob = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"x": "9"}});
    let err = apply(bob.clone(), "bob", false).unwrap_err();
    assert_eq!(err.code, 409);
    assert_eq!(err.causes[0].field, ".data.x");
    let w = apply(bob, "bob", true).unwrap();
    assert_eq!(w.object["data"]["x"], "9");
    // Bob agreeing on a value shared with another manager is no conflict.
    let err = apply(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}),
        "",
        false,
    )
    .unwrap_err();
    assert_eq!(err.code, 400);
}

#[test]
fn crd_objects_are_defaulted_and_validated() {
    let store = store_with_ns("ns");
    let p = store.create(&PLAN, Some("ns"), plan("p")).unwrap();
    for f in [
        "preserveStaticIPs",
        "migrateSharedDisks",
        "deleteVmOnFailMigration",
        "runPreflightInspection",
        "useCompatibilityMode",
    ] {
        assert_eq!(p["spec"][f], true, "{f}");
    }
    let mut bad = plan("bad");
    bad["spec"]["targetPowerState"] = json!("sideways");
    bad["spec"]["warm"] = json!("yes");
    let err = store.create(&PLAN, Some("ns"), bad).unwrap_err();
    assert_eq!(err.code, 422);
    assert_eq!(err.reason, "Invalid");
    let fields: Vec<&str> = err.causes.iter().map(|c| c.field.as_str()).collect();
    assert!(
        fields.contains(&"spec.targetPowerState") && fields.contains(&"spec.warm"),
        "{fields:?}"
    );
    assert!(
        err.message
            .starts_with("Plan.forklift.konveyor.io \"bad\" is invalid: ["),
        "{}",
        err.message
    );
    // Unknown fields: pruned with a warning by default, rejected under Strict.
    let mut extra = plan("extra");
    extra["spec"]["bogus"] = json!(1);
    let w = store
        .create_with(&PLAN, Some("ns"), extra.clone(), &WriteOptions::default())
        .unwrap();
    assert!(w.object["spec"].get("bogus").is_none());
    assert_eq!(w.warnings, vec!["unknown field \"spec.bogus\""]);
    extra["metadata"]["name"] = json!("extra2");
    let strict = WriteOptions {
        field_validation: FieldValidation::Strict,
        ..Default::default()
    };
    let err = store
        .create_with(&PLAN, Some("ns"), extra, &strict)
        .unwrap_err();
    assert_eq!(err.code, 400);
    assert!(
        err.message.contains("unknown field \"spec.bogus\""),
        "{}",
        err.message
    );
    // Updates are validated too.
    let err = merge_patch(&store, &PLAN, "p", json!({"spec": {"type": "teleport"}})).unwrap_err();
    assert_eq!(err.causes[0].field, "spec.type");
}

#[test]
fn dry_run_commits_nothing() {
    let store = store_with_ns("ns");
    let before = store.resource_version();
    let dry = WriteOptions {
        dry_run: true,
        ..Default::default()
    };
    let w = store
        .create_with(&CONFIG_MAP, Some("ns"), cm("dry"), &dry)
        .unwrap();
    assert_eq!(w.object["metadata"]["name"], "dry");
    assert!(not_found(&store, &CONFIG_MAP, Some("ns"), "dry"));
    assert_eq!(store.resource_version(), before);
}

#[test]
fn wrong_kind_or_api_version_is_a_bad_request() {
    let store = store_with_ns("ns");
    let err: ApiError = store
        .create(
            &CONFIG_MAP,
            Some("ns"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
        )
        .unwrap_err();
    assert_eq!(err.code, 400);
    assert!(registry::find_kind("v1", "ConfigMap").is_some());
}

#[tokio::test]
async fn watch_replays_history_and_streams_live_events() {
    let store = store_with_ns("ns");
    let a = store.create(&CONFIG_MAP, Some("ns"), cm("a")).unwrap();
    let from = rv(&a);
    merge_patch(&store, &CONFIG_MAP, "a", json!({"data": {"k": "2"}})).unwrap();
    store
        .create(
            &SECRET,
            Some("ns"),
            json!({"metadata": {"name": "ignored"}}),
        )
        .unwrap();
    let mut w = store
        .watch(
            &CONFIG_MAP,
            Some("ns"),
            &ListOptions::default(),
            WatchStart::After(from),
        )
        .unwrap();
    match w.next().await.unwrap() {
        WatchItem::Event {
            event_type, object, ..
        } => {
            assert_eq!(event_type, EventType::Modified);
            assert_eq!(object["data"]["k"], "2");
        }
        other => panic!("{other:?}"),
    }
    store
        .delete(&CONFIG_MAP, Some("ns"), "a", &DeleteOptions::default())
        .unwrap();
    match w.next().await.unwrap() {
        WatchItem::Event { event_type, .. } => assert_eq!(event_type, EventType::Deleted),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn watch_initial_events_end_with_a_bookmark() {
    let store = store_with_ns("ns");
    store.create(&CONFIG_MAP, Some("ns"), cm("a")).unwrap();
    store.create(&CONFIG_MAP, Some("ns"), cm("b")).unwrap();
    let mut w = store
        .watch(
            &CONFIG_MAP,
            None,
            &ListOptions::default(),
            WatchStart::InitialEvents { bookmark: true },
        )
        .unwrap();
    for _ in 0..2 {
        assert!(matches!(
            w.next().await.unwrap(),
            WatchItem::Event {
                event_type: EventType::Added,
                ..
            }
        ));
    }
    match w.next().await.unwrap() {
        WatchItem::InitialEventsEnd { resource_version } => {
            assert_eq!(resource_version, store.resource_version())
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn watch_from_a_compacted_resource_version_is_gone() {
    let store = Store::new(3);
    store
        .create(&NAMESPACE, None, json!({"metadata": {"name": "ns"}}))
        .unwrap();
    for i in 0..10 {
        store
            .create(&CONFIG_MAP, Some("ns"), cm(&format!("c{i}")))
            .unwrap();
    }
    let err = store
        .watch(
            &CONFIG_MAP,
            None,
            &ListOptions::default(),
            WatchStart::After(2),
        )
        .err()
        .unwrap();
    assert_eq!((err.code, err.reason.as_str()), (410, "Expired"));
    assert!(
        store
            .watch(
                &CONFIG_MAP,
                None,
                &ListOptions::default(),
                WatchStart::After(store.resource_version() - 2)
            )
            .is_ok()
    );
}

#[tokio::test]
async fn selector_watch_sees_objects_entering_and_leaving() {
    let store = store_with_ns("ns");
    let sel = ListOptions {
        label_selector: LabelSelector::parse("app=web").unwrap(),
        ..Default::default()
    };
    let mut w = store
        .watch(&CONFIG_MAP, Some("ns"), &sel, WatchStart::Now)
        .unwrap();
    store.create(&CONFIG_MAP, Some("ns"), cm("x")).unwrap();
    let opts = WriteOptions::default();
    store
        .patch(
            &CONFIG_MAP,
            Some("ns"),
            "x",
            &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
            &opts,
        )
        .unwrap();
    store
        .patch(
            &CONFIG_MAP,
            Some("ns"),
            "x",
            &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}})),
            &opts,
        )
        .unwrap();
    let mut kinds = Vec::new();
    for _ in 0..2 {
        if let WatchItem::Event { event_type, .. } = w.next().await.unwrap() {
            kinds.push(event_type);
        }
    }
    assert_eq!(kinds, vec![EventType::Added, EventType::Deleted]);
}

#[test]
fn cluster_scoped_kinds_ignore_a_namespace_argument() {
    let store = store_with_ns("ns");
    assert_eq!(
        store
            .list(&NAMESPACE, Some("ns"), &ListOptions::default())
            .unwrap()
            .items
            .len(),
        1
    );
    assert!(store.get(&NAMESPACE, Some("elsewhere"), "ns").is_ok());
    let node = store
        .create(
            &registry::NODE,
            Some("ns"),
            json!({"metadata": {"name": "n1", "namespace": "ns"}}),
        )
        .unwrap();
    assert!(node["metadata"].get("namespace").is_none());
}

/// A toy admission plug-in: defaults a label, refuses a name, and requires a referenced Secret to exist.
struct ToyAdmission;

impl crate::admission::Admission for ToyAdmission {
    fn admit(
        &self,
        request: &crate::admission::AdmissionRequest<'_>,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        if !std::ptr::eq(request.resource, &CONFIG_MAP) {
            return Ok(());
        }
        if object["metadata"]["name"] == "forbidden" {
            return Err(ApiError::webhook_denied(
                "toy.lab",
                "that name is not allowed",
            ));
        }
        if let Some(secret) = object.pointer("/data/secretRef").and_then(Value::as_str) {
            let ns = object["metadata"]["namespace"].as_str();
            if request.view.get(&SECRET, ns, secret).is_none() {
                return Err(ApiError::webhook_denied(
                    "toy.lab",
                    &format!("secret {secret} not found"),
                ));
            }
        }
        if request.operation == crate::admission::Operation::Create {
            object["metadata"]["labels"]["admitted"] = json!("true");
        }
        Ok(())
    }
}

#[test]
fn admission_plugins_mutate_and_reject_writes() {
    let store = store_with_ns("ns");
    store.add_admission(std::sync::Arc::new(ToyAdmission));
    let created = store.create(&CONFIG_MAP, Some("ns"), cm("ok")).unwrap();
    assert_eq!(created["metadata"]["labels"]["admitted"], "true");
    let err = store
        .create(&CONFIG_MAP, Some("ns"), cm("forbidden"))
        .unwrap_err();
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "admission webhook \"toy.lab\" denied the request: that name is not allowed"
    );
    let err = merge_patch(
        &store,
        &CONFIG_MAP,
        "ok",
        json!({"data": {"secretRef": "creds"}}),
    )
    .unwrap_err();
    assert!(
        err.message.contains("secret creds not found"),
        "{}",
        err.message
    );
    store
        .create(&SECRET, Some("ns"), json!({"metadata": {"name": "creds"}}))
        .unwrap();
    merge_patch(
        &store,
        &CONFIG_MAP,
        "ok",
        json!({"data": {"secretRef": "creds"}}),
    )
    .unwrap();
    // Other kinds are untouched.
    assert!(
        store
            .create(
                &SECRET,
                Some("ns"),
                json!({"metadata": {"name": "forbidden"}})
            )
            .is_ok()
    );
}

#[test]
fn foreground_deletion_waits_for_dependents() {
    let store = store_with_ns("ns");
    let owner = store.create(&CONFIG_MAP, Some("ns"), cm("owner")).unwrap();
    store
        .create(&SECRET, Some("ns"), owned_by("plain", &owner))
        .unwrap();
    let mut held = owned_by("held", &owner);
    held["metadata"]["finalizers"] = json!(["lab/hold"]);
    // Only a dependent that blocks its owner's deletion holds a foreground deletion back.
    held["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] = json!(true);
    store.create(&POD, Some("ns"), held).unwrap();
    let foreground = DeleteOptions {
        propagation: Propagation::Foreground,
        ..Default::default()
    };
    let d = store
        .delete(&CONFIG_MAP, Some("ns"), "owner", &foreground)
        .unwrap();
    assert!(!d.removed);
    assert_eq!(
        d.object["metadata"]["finalizers"],
        json!([FOREGROUND_FINALIZER])
    );
    assert!(d.object["metadata"]["deletionTimestamp"].is_string());
    assert!(not_found(&store, &SECRET, Some("ns"), "plain"));
    assert!(
        store.get(&POD, Some("ns"), "held").unwrap()["metadata"]["deletionTimestamp"].is_string()
    );
    assert!(
        store.get(&CONFIG_MAP, Some("ns"), "owner").is_ok(),
        "the owner waits for the held dependent"
    );
    merge_patch(
        &store,
        &POD,
        "held",
        json!({"metadata": {"finalizers": null}}),
    )
    .unwrap();
    assert!(not_found(&store, &POD, Some("ns"), "held"));
    assert!(not_found(&store, &CONFIG_MAP, Some("ns"), "owner"));
    // Without dependents a foreground delete is immediate.
    store.create(&CONFIG_MAP, Some("ns"), cm("alone")).unwrap();
    assert!(
        store
            .delete(&CONFIG_MAP, Some("ns"), "alone", &foreground)
            .unwrap()
            .removed
    );
}

#[test]
fn garbage_collection_follows_owner_reference_changes() {
    let store = store_with_ns("ns");
    let a = store.create(&CONFIG_MAP, Some("ns"), cm("a")).unwrap();
    let b = store.create(&CONFIG_MAP, Some("ns"), cm("b")).unwrap();
    store
        .create(&SECRET, Some("ns"), owned_by("dep", &a))
        .unwrap();
    let new_owner = owned_by("dep", &b)["metadata"]["ownerReferences"].clone();
    merge_patch(
        &store,
        &SECRET,
        "dep",
        json!({"metadata": {"ownerReferences": new_owner}}),
    )
    .unwrap();
    store
        .delete(&CONFIG_MAP, Some("ns"), "a", &DeleteOptions::default())
        .unwrap();
    assert!(
        store.get(&SECRET, Some("ns"), "dep").is_ok(),
        "no longer owned by a"
    );
    store
        .delete(&CONFIG_MAP, Some("ns"), "b", &DeleteOptions::default())
        .unwrap();
    assert!(not_found(&store, &SECRET, Some("ns"), "dep"));
    // The namespace bookkeeping lets a deleted namespace go once its last object does.
    store
        .delete(&NAMESPACE, None, "ns", &DeleteOptions::default())
        .unwrap();
    assert!(not_found(&store, &NAMESPACE, None, "ns"));
}

#[test]
fn recorded_events_are_found_by_their_involved_object() {
    let store = store_with_ns("ns");
    let p = store.create(&PLAN, Some("ns"), plan("p")).unwrap();
    let e = store
        .record_event(
            &p,
            "Warning",
            "VMNotFound",
            "VM vm1 not found",
            "forklift-controller",
        )
        .unwrap();
    assert_eq!(e["involvedObject"]["kind"], "Plan");
    assert!(e["metadata"]["name"].as_str().unwrap().starts_with("p."));
    let opts = ListOptions {
        field_selector: crate::selector::FieldSelector::parse(&format!(
            "involvedObject.name=p,involvedObject.namespace=ns,involvedObject.kind=Plan,involvedObject.uid={}",
            p["metadata"]["uid"].as_str().unwrap()
        ))
        .unwrap(),
        ..Default::default()
    };
    let found = store
        .list(&registry::EVENT, Some("ns"), &opts)
        .unwrap()
        .items;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["reason"], "VMNotFound");
}
