//! `mtv-tests doctor` against a `mtv-tests lab serve`: ready on the lab as it is (exit 0), and one
//! clear FAIL line (exit 1) for each of a missing storage class, a missing template, wrong source
//! credentials and a user without the right to create Plans (a ServiceAccount token, held to RBAC).
//! Nothing is created: the cluster holds the same objects before and after. Copy-offload and remote
//! scenarios, when selected, add their own lines (Forklift's copy-offload switch, the remote cluster).

mod served_lab;

use std::path::Path;

use served_lab::{SANITY_COLD, ServedLab, as_strs, kubeconfig_args, mtv_tests, text};

/// `doctor -m tier0 -k SanityCold --kubeconfig KUBECONFIG` plus `extra`: (exit code, output).
fn doctor(lab: &ServedLab, kubeconfig: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let output = lab.mtv_tests_on(
        "doctor",
        &[SANITY_COLD.as_slice(), extra].concat(),
        kubeconfig,
    );
    (output.status.code(), text(&output))
}

fn fail_lines(output: &str) -> Vec<&str> {
    output.lines().filter(|l| l.starts_with("FAIL ")).collect()
}

/// The lab's vSphere profile with another password, as a providers file.
fn providers_with_password(lab: &ServedLab, password: &str) -> String {
    let path = lab.path().join("providers.json");
    let mut profile = lab.profile("vsphere");
    profile["password"] = password.into();
    let file = serde_json::json!({ "vsphere": profile });
    std::fs::write(&path, file.to_string()).expect("providers file");
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn doctor_passes_on_the_lab_and_names_each_problem_in_one_line() {
    let Some(lab) = ServedLab::start("4") else {
        return;
    };
    let url = lab.profile("vsphere")["api_url"]
        .as_str()
        .expect("the lab's vSphere URL")
        .to_string();
    let before = lab.cluster_state();
    let (code, output) = doctor(&lab, &lab.kubeconfig, &[]);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("doctor: ready to run"), "{output}");
    for check in [
        "mtv",
        "forklift-pods",
        "inventory",
        "permissions",
        "storage-class",
        "credentials",
        "source",
    ] {
        assert!(
            output.contains(&format!("ok   {check}: ")),
            "{check}: {output}"
        );
    }

    let (code, output) = doctor(&lab, &lab.kubeconfig, &["--storage-class", "gold"]);
    assert_eq!(code, Some(1), "{output}");
    assert_eq!(
        fail_lines(&output),
        [
            "FAIL storage-class: storage class gold does not exist; pass --storage-class with one of: lab-ceph-rbd, lab-nfs"
        ],
        "{output}"
    );

    // `run` does the fast part first: nothing is created, not even the ledger.
    let args = lab.run_args(&SANITY_COLD, &["--storage-class", "gold"]);
    let output = mtv_tests(lab.path(), &as_strs(&args));
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("FAIL storage-class: storage class gold does not exist"),
        "{}",
        text(&output)
    );
    assert!(!lab.path().join("out/resources.json").exists());

    let catalog = lab.path().join("extra-catalog");
    std::fs::create_dir_all(&catalog).expect("catalog dir");
    std::fs::write(
        catalog.join("missing.yaml"),
        "version: 1\nfamily: Doctor\nscenarios:\n  - class: TestSanityColdMissingTemplate\n    id: gone\n    \
         markers: [tier0, incremental, vsphere]\n    config:\n      virtual_machines:\n        - name: no-such-template\n",
    )
    .expect("scenario file");
    let (code, output) = doctor(
        &lab,
        &lab.kubeconfig,
        &["--catalog", catalog.to_str().expect("utf-8")],
    );
    assert_eq!(code, Some(1), "{output}");
    assert_eq!(
        fail_lines(&output),
        [format!(
            "FAIL source: VM or template `no-such-template` does not exist on vsphere source \
             {url} (profile 'vsphere'); create it there, or leave out the scenarios that clone it \
             (-k)"
        )],
        "{output}"
    );

    let providers = providers_with_password(&lab, "not-the-password");
    let (code, output) = doctor(
        &lab,
        &lab.kubeconfig,
        &[
            "--providers-file",
            &providers,
            "--source-provider",
            "vsphere",
            "--storage-class",
            "lab-ceph-rbd",
        ],
    );
    assert_eq!(code, Some(1), "{output}");
    assert_eq!(
        fail_lines(&output),
        [format!(
            "FAIL credentials: {url} refuses the username and password of profile 'vsphere' \
             (401); correct them in the providers file"
        )],
        "{output}"
    );
    assert!(
        !output.contains("not-the-password"),
        "a secret in the output: {output}"
    );

    // A ServiceAccount that may read what the checks read, but not create Plans.
    lab.kubectl(&["create", "serviceaccount", "reader", "-n", "default"]);
    lab.kubectl(&[
        "create", "clusterrole", "mtv-reader", "--verb=get,list,watch",
        "--resource=clusterserviceversions.operators.coreos.com,pods,storageclasses.storage.k8s.io,routes.route.openshift.io,providers.forklift.konveyor.io",
    ]);
    lab.kubectl(&[
        "create",
        "clusterrolebinding",
        "mtv-reader",
        "--clusterrole=mtv-reader",
        "--serviceaccount=default:reader",
    ]);
    let token = lab.kubectl(&["create", "token", "reader", "-n", "default"]);
    let restricted = lab.path().join("reader.kubeconfig");
    std::fs::copy(&lab.kubeconfig, &restricted).expect("copy kubeconfig");
    lab.kubectl(&[
        "--kubeconfig",
        restricted.to_str().expect("utf-8"),
        "config",
        "set-credentials",
        "reader",
        &format!("--token={}", token.trim()),
    ]);
    lab.kubectl(&[
        "--kubeconfig",
        restricted.to_str().expect("utf-8"),
        "config",
        "set-context",
        "--current",
        "--user=reader",
    ]);
    let (code, output) = doctor(&lab, &restricted, &[]);
    assert_eq!(code, Some(1), "{output}");
    let create_plans = "FAIL permissions: you cannot create plans.forklift.konveyor.io (cluster-wide); \
        a run needs it: ask an administrator to grant it (`mtv-tests job` prints a ClusterRole with \
        exactly what a run needs)";
    assert!(fail_lines(&output).contains(&create_plans), "{output}");
    assert!(
        output.contains("ok   mtv: ") && output.contains("ok   storage-class: "),
        "what the ServiceAccount may read is still checked: {output}"
    );

    // Doctor changed nothing (the ServiceAccount and its role are the test's own).
    let after: Vec<String> = lab
        .cluster_state()
        .into_iter()
        .filter(|o| !o.contains("reader"))
        .collect();
    let before: Vec<String> = before
        .into_iter()
        .filter(|o| !o.contains("reader"))
        .collect();
    assert_eq!(after, before);
}

/// `doctor` with a selection of its own (no `-k SanityCold`): (exit code, output).
fn doctor_selecting(lab: &ServedLab, selection: &[&str]) -> (Option<i32>, String) {
    let output = lab.mtv_tests_on("doctor", selection, &lab.kubeconfig);
    (output.status.code(), text(&output))
}

#[test]
fn doctor_checks_copy_offload_and_the_remote_cluster_when_they_are_selected() {
    let Some(lab) = ServedLab::start("4") else {
        return;
    };
    // Copy-offload: the vendor's settings and datastores, and Forklift's switch for the populator.
    let copy_offload = [
        "-m",
        "copyoffload",
        "--source-provider",
        "vsphere-copy-offload",
    ];
    let (code, output) = doctor_selecting(&lab, &copy_offload);
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains(
            "ok   copy-offload: ontap array ontap.lab.mtv-tests.internal (with ontap_svm), \
             datastores datastore-xcopy-1, datastore-xcopy-2, datastore-nonxcopy-1"
        ),
        "{output}"
    );
    assert!(!output.contains("lab-password"), "a secret in: {output}");
    let (_, output) = doctor_selecting(&lab, &["-m", "tier0"]);
    assert!(!output.contains("copy-offload"), "not selected: {output}");

    lab.kubectl(&[
        "patch",
        "forkliftcontroller",
        "forklift-controller",
        "-n",
        "openshift-mtv",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"feature_copy_offload":"false"}}"#,
    ]);
    let (code, output) = doctor_selecting(&lab, &copy_offload);
    assert_eq!(code, Some(1), "{output}");
    assert_eq!(
        fail_lines(&output),
        [
            "FAIL copy-offload: ForkliftController openshift-mtv/forklift-controller sets \
             feature_copy_offload to false, so Forklift copies every disk over the network; set it \
             to \"true\" (kubectl patch forkliftcontroller forklift-controller -n openshift-mtv \
             --type merge -p '{\"spec\":{\"feature_copy_offload\":\"true\"}}')"
        ],
        "{output}"
    );

    // Remote: skipped without remote_ocp_cluster (a note), ready when it names this cluster,
    // one FAIL line when it names another.
    let (code, output) = doctor_selecting(&lab, &["-m", "remote"]);
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains(
            "note remote: 2 remote scenarios will be skipped: remote_ocp_cluster is not set"
        ),
        "{output}"
    );
    let (code, output) = doctor_selecting(
        &lab,
        &["-m", "remote", "--tc", "remote_ocp_cluster:mtv-lab"],
    );
    assert_eq!(code, Some(0), "{output}");
    assert!(
        output.contains("ok   remote: remote_ocp_cluster `mtv-lab` is this cluster"),
        "{output}"
    );
    let (code, output) = doctor_selecting(
        &lab,
        &["-m", "remote", "--tc", "remote_ocp_cluster:elsewhere"],
    );
    assert_eq!(code, Some(1), "{output}");
    let fails = fail_lines(&output);
    assert_eq!(fails.len(), 1, "{output}");
    assert!(
        fails[0].starts_with(
            "FAIL remote: remote_ocp_cluster is `elsewhere`, but the run is connected to `127.0.0.1`"
        ),
        "{output}"
    );
}

/// Without a providers file, the built-in profiles name the embedded lab's hosts, which a cluster
/// (here a served lab) cannot reach: `run` stops at once with exit 2 and says what to give, and
/// doctor's source line says the same; nothing is created.
#[test]
fn without_a_providers_file_run_and_doctor_say_the_built_in_profiles_cannot_reach_a_cluster() {
    let Some(lab) = ServedLab::start("4") else {
        return;
    };
    let before = lab.cluster_state();
    // No profiles: the built-in ones are used.
    let run = kubeconfig_args("run", &["-m", "tier0", "--no-progress"], &lab.kubeconfig);
    let run = mtv_tests(lab.path(), &as_strs(&run));
    let output = text(&run);
    assert_eq!(run.status.code(), Some(2), "{output}");
    assert!(output.contains("no providers file"), "{output}");
    assert!(output.contains("--providers-out"), "{output}");
    assert!(!output.contains("passed"), "{output}");

    let doctor = kubeconfig_args("doctor", &SANITY_COLD, &lab.kubeconfig);
    let doctor = mtv_tests(lab.path(), &as_strs(&doctor));
    let output = text(&doctor);
    assert_eq!(doctor.status.code(), Some(1), "{output}");
    let source = fail_lines(&output);
    assert_eq!(source.len(), 1, "{output}");
    assert!(
        source[0].contains("no providers file was found"),
        "{output}"
    );
    assert_eq!(lab.cluster_state(), before);
}
