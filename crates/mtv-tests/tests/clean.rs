//! `mtv-tests clean --ledger` removes only what the run made: an object of the recorded name with
//! another uid is "not ours, left alone" (and a source clone whose Provider Secret went with it is
//! a leftover that says why), and a deletion that never ends makes clean give up after
//! its bound with the list of what remains (exit 3). Proven against a `mtv-tests lab serve`
//! process, with kubectl making the foreign objects and checking what is left.

mod served_lab;

use serde_json::Value;
use served_lab::{SANITY_COLD, ServedLab, kept_entries, recorded, text};

#[test]
fn clean_leaves_an_object_made_again_under_the_same_name_alone() {
    let Some(lab) = ServedLab::start("4") else {
        return;
    };
    let before = lab.cluster_state();
    let ledger = lab.run_and_keep_everything(&SANITY_COLD);
    let namespace = recorded(&ledger, "Namespace");
    let ns = namespace["name"].as_str().unwrap();
    let secret = ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["kind"] == "Secret" && r["namespace"] == ns)
        .expect("a Secret in the session namespace");
    let secret_name = secret["name"].as_str().unwrap();

    // Someone deletes the session namespace and makes their own with the same name and content.
    lab.kubectl(&["delete", "namespace", ns, "--wait=true"]);
    lab.kubectl(&["create", "namespace", ns]);
    lab.kubectl(&[
        "create",
        "secret",
        "generic",
        secret_name,
        "-n",
        ns,
        "--from-literal=owner=someone-else",
    ]);
    let theirs = lab.kubectl_json(&["get", "namespace", ns]);
    let their_uid = theirs["metadata"]["uid"].as_str().unwrap();
    assert_ne!(Some(their_uid), namespace["uid"].as_str());

    // The source clone can no longer be deleted: logging in to the vSphere needs the run's
    // Provider Secret, which went with their namespace (as on a real vCenter). Clean says so and
    // leaves it as the one leftover (exit 3).
    let output = lab.clean(&[]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(3), "{shown}");
    assert!(
        shown.contains("no source Provider Secret of the run names that server any more"),
        "{shown}"
    );
    assert!(shown.contains("LEFTOVER SourceVm vsphere:"), "{shown}");
    assert!(
        shown.contains(&format!(
            "left alone Namespace {ns} (v1): not ours, left alone: its uid is {their_uid}"
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "left alone Secret {ns}/{secret_name} (v1): not ours"
        )),
        "{shown}"
    );

    // Theirs is still there, untouched; everything the run made is gone.
    let now = lab.kubectl_json(&["get", "namespace", ns]);
    assert_eq!(now["metadata"]["uid"], their_uid);
    assert!(now["metadata"]["deletionTimestamp"].is_null(), "{now:#}");
    let data = lab.kubectl_json(&["get", "secret", secret_name, "-n", ns]);
    assert_eq!(data["data"]["owner"], "c29tZW9uZS1lbHNl", "{data:#}");
    let extra: Vec<String> = lab
        .cluster_state()
        .into_iter()
        .filter(|line| !before.contains(line))
        .collect();
    assert!(
        extra
            .iter()
            .all(|line| line == &format!("Namespace /{ns}") || line.contains(&format!(" {ns}/"))),
        "left behind outside the foreign namespace: {extra:#?}"
    );
    let ledger = lab.ledger();
    let kept = kept_entries(&ledger);
    assert!(
        kept.len() == 1 && kept[0]["type"] == "source_vm",
        "only the source clone is left: {kept:#?}"
    );
}

#[test]
fn clean_gives_up_after_its_bound_and_lists_what_remains() {
    let Some(lab) = ServedLab::start("4") else {
        return;
    };
    let before = lab.cluster_state();
    let ledger = lab.run_and_keep_everything(&SANITY_COLD);
    let secret = recorded(&ledger, "Secret");
    let (ns, name) = (
        secret["namespace"].as_str().unwrap(),
        secret["name"].as_str().unwrap(),
    );
    // A finalizer no controller will ever remove.
    lab.set_secret_finalizers(ns, name, r#"["example.com/never-goes"]"#);

    let output = lab.clean(&["--timeout", "5"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(3), "{shown}");
    assert!(
        shown.contains(&format!(
            "Secret {ns}/{name} (finalizers: example.com/never-goes)"
        )) && shown.contains("waiting for"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("LEFTOVER Secret {ns}/{name}")),
        "{shown}"
    );
    assert!(shown.contains("resources left behind"), "{shown}");

    // Once the finalizer goes, clean finishes the job.
    lab.set_secret_finalizers(ns, name, "null");
    let output = lab.clean(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("clean: nothing left"));
    assert_eq!(lab.cluster_state(), before);
}

#[test]
fn clean_releases_the_lease_of_a_run_that_kept_everything() {
    let Some(lab) = ServedLab::start("4") else {
        return;
    };
    let before = lab.cluster_state();
    let (original, _) = lab.precopy_interval();
    let ledger = lab.run_and_keep_everything(&["-m", "tier0", "-k", "SanityWarm"]);
    let session = ledger["session_id"].as_str().unwrap().to_string();
    // As after a crash: the interval is still changed, under this session's lease.
    let (interval, annotations) = lab.precopy_interval();
    assert_eq!(interval, 2);
    let leases: Value =
        serde_json::from_str(annotations["mtv-tests/leases"].as_str().unwrap()).unwrap();
    assert_eq!(
        leases["spec.controller_precopy_interval"]["sessions"],
        serde_json::json!([session])
    );

    let output = lab.clean(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let (interval, _) = lab.precopy_interval();
    assert_eq!(interval, original);
    assert_eq!(lab.cluster_state(), before);
}

#[test]
fn clean_also_removes_what_carries_the_session_label_but_missed_the_ledger() {
    let Some(lab) = ServedLab::start("4") else {
        return;
    };
    let before = lab.cluster_state();
    let ledger = lab.run_and_keep_everything(&SANITY_COLD);
    let session = ledger["session_id"].as_str().unwrap();
    // As if a create's answer had been lost: the object exists, labelled, but is not in the ledger.
    lab.kubectl(&["create", "configmap", "lost-answer", "-n", "default"]);
    lab.kubectl(&[
        "label",
        "configmap",
        "lost-answer",
        "-n",
        "default",
        &format!("mtv-tests/session={session}"),
    ]);
    // Someone else's object with another session's label stays.
    lab.kubectl(&["create", "configmap", "another-session", "-n", "default"]);
    lab.kubectl(&[
        "label",
        "configmap",
        "another-session",
        "-n",
        "default",
        "mtv-tests/session=auto-zzzz",
    ]);

    let output = lab.clean(&[]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(
            "ConfigMap default/lost-answer carries this session's label but is not in the ledger"
        ),
        "{shown}"
    );
    let after = lab.cluster_state();
    let extra: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    assert_eq!(extra, ["ConfigMap default/another-session"], "{after:#?}");
}
