//! `mtv-tests job`: the manifest (Namespace, ServiceAccount, ClusterRole and binding, providers
//! Secret, results claim, Indexed Job) is accepted by a `mtv-tests lab serve` with kubectl's
//! server-side dry run, which stores nothing; the Job runs one partition per completion index.

mod served_lab;

use served_lab::{PLAIN_INTO_OUT, SANITY_COLD, ServedLab, mtv_tests, text};

#[test]
fn the_job_manifest_passes_a_server_side_dry_run_and_runs_one_partition_per_pod() {
    let Some(lab) = ServedLab::start("4") else {
        return;
    };
    std::fs::write(
        lab.path().join("providers.json"),
        r#"{"vsphere": {"type": "vsphere"}}"#,
    )
    .expect("providers file");
    let output = mtv_tests(
        lab.path(),
        &[
            "job",
            "--parallelism",
            "4",
            "--image",
            "registry.example/qe/mtv-tests:1.0",
            "-n",
            "default",
            "--providers-file",
            "providers.json",
            "--",
            "-m",
            "tier1",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let manifest = lab.path().join("job.yaml");
    std::fs::write(&manifest, &output.stdout).expect("manifest");
    let manifest = manifest.to_str().expect("utf-8");

    let applied = lab.kubectl(&["apply", "--dry-run=server", "-f", manifest]);
    for object in [
        "serviceaccount/mtv-tests created (server dry run)",
        "clusterrole.rbac.authorization.k8s.io/mtv-tests-runner created (server dry run)",
        "clusterrolebinding.rbac.authorization.k8s.io/mtv-tests-default created (server dry run)",
        "secret/mtv-tests-providers created (server dry run)",
        "persistentvolumeclaim/mtv-tests-results created (server dry run)",
        "job.batch/mtv-tests created (server dry run)",
    ] {
        assert!(applied.contains(object), "{object} in {applied}");
    }
    // A dry run stores nothing.
    assert!(
        lab.kubectl_json(&["get", "jobs", "-n", "default"])["items"]
            .as_array()
            .expect("a list")
            .is_empty()
    );

    // The Job as the server would store it: Indexed, one pod per partition, this image.
    let objects = lab.kubectl_json(&["apply", "--dry-run=server", "-f", manifest]);
    let job = objects["items"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|o| o["kind"] == "Job")
        .expect("a Job");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], 4);
    assert_eq!(job["spec"]["parallelism"], 4);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "mtv-tests");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.example/qe/mtv-tests:1.0");
    let script = container["command"][2].as_str().expect("the pod's script");
    assert!(
        script.contains("--partition \"count:$((JOB_COMPLETION_INDEX + 1))/4\""),
        "{script}"
    );
    assert!(script.contains("'-m' 'tier1'"), "{script}");
}

/// The ServiceAccount's rights are all a run needs: with the manifest's RBAC applied (its Job left
/// out: the lab runs no pods), `doctor` and a migration with guest checks pass on that
/// ServiceAccount's token, on a lab that holds every request to RBAC.
#[test]
fn the_jobs_service_account_may_do_everything_a_run_does() {
    let Some(lab) = ServedLab::start("4") else {
        return;
    };
    std::fs::write(lab.path().join("providers.json"), "{}").expect("providers file");
    let output = mtv_tests(
        lab.path(),
        &[
            "job",
            "--parallelism",
            "2",
            "-n",
            "mtv-qe",
            "--providers-file",
            "providers.json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let manifest = String::from_utf8(output.stdout).expect("utf-8");
    let without_job: Vec<&str> = manifest
        .split("\n---\n")
        .filter(|document| !document.contains("\nkind: Job\n"))
        .collect();
    assert_eq!(
        without_job.len() + 1,
        manifest.split("\n---\n").count(),
        "{manifest}"
    );
    let rbac = lab.path().join("rbac.yaml");
    std::fs::write(&rbac, without_job.join("\n---\n")).expect("manifest");
    lab.kubectl(&["apply", "-f", rbac.to_str().expect("utf-8")]);

    let token = lab.kubectl(&["create", "token", "mtv-tests", "-n", "mtv-qe"]);
    let kubeconfig = lab.path().join("job.kubeconfig");
    std::fs::copy(&lab.kubeconfig, &kubeconfig).expect("copy kubeconfig");
    let credentials = format!("--token={}", token.trim());
    for args in [
        ["config", "set-credentials", "job", credentials.as_str()],
        ["config", "set-context", "--current", "--user=job"],
    ] {
        let mut with_config = vec!["--kubeconfig", kubeconfig.to_str().expect("utf-8")];
        with_config.extend(args);
        lab.kubectl(&with_config);
    }

    // doctor's permission check, then a run whose guest checks go through portforward.
    let run = [SANITY_COLD.as_slice(), &PLAIN_INTO_OUT].concat();
    for (verb, args, says) in [
        ("doctor", SANITY_COLD.as_slice(), "ok   permissions: "),
        ("run", run.as_slice(), "test_check_vms PASSED"),
    ] {
        let output = lab.mtv_tests_on(verb, args, &kubeconfig);
        let shown = text(&output);
        assert_eq!(output.status.code(), Some(0), "{verb}: {shown}");
        assert!(shown.contains(says), "{verb}: {says:?} in {shown}");
    }
}
