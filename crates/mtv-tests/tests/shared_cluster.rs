//! Runs sharing one cluster: four concurrent `mtv-tests run` processes with warm scenarios against one
//! `mtv-tests lab serve` all pass, and the ForkliftController's precopy interval, which each of them
//! needs, keeps the changed value while any run still migrates warm VMs; the last run to finish puts
//! the administrator's value back. A kubectl watch observes the ForkliftController throughout.

mod served_lab;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use served_lab::{KillOnDrop, ServedLab, text};

/// The ForkliftController as the watch saw it, and what the runs were doing at that moment.
#[derive(Debug)]
struct Observation {
    interval: Value,
    holders: usize,
    /// `run<N>: <test id>` for each warm `test_migrate_vms` started and not finished.
    migrating_warm: Vec<String>,
}

/// The warm migrations running now, from each run's event log (flushed line by line).
fn warm_migrations_running(results: &[PathBuf]) -> Vec<String> {
    let mut running = Vec::new();
    for (index, dir) in results.iter().enumerate() {
        let Ok(log) = std::fs::read_to_string(dir.join("events.jsonl")) else {
            continue;
        };
        let mut open = std::collections::BTreeSet::new();
        // The last line may still be being written.
        for event in log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        {
            let warm_migration = event["step"] == "test_migrate_vms"
                && event["scenario"]
                    .as_str()
                    .is_some_and(|s| s.contains("Warm"));
            match event["event"].as_str() {
                Some("step_started") if warm_migration => {
                    open.insert(event["id"].as_str().unwrap_or_default().to_string());
                }
                Some("step_finished") => {
                    open.remove(event["id"].as_str().unwrap_or_default());
                }
                _ => {}
            }
        }
        running.extend(open.into_iter().map(|id| format!("run{index}: {id}")));
    }
    running
}

fn lease_holders(controller: &Value) -> usize {
    controller["metadata"]["annotations"]["mtv-tests/leases"]
        .as_str()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|leases| {
            leases["spec.controller_precopy_interval"]["sessions"]
                .as_array()
                .map(Vec::len)
        })
        .unwrap_or(0)
}

/// Watches the ForkliftController with kubectl; every object it prints becomes an observation.
fn watch_controller(
    lab: &ServedLab,
    name: &str,
    results: Vec<PathBuf>,
) -> (
    KillOnDrop,
    std::thread::JoinHandle<Vec<Observation>>,
    std::sync::mpsc::Receiver<()>,
) {
    let mut watch = KillOnDrop::new(
        lab.kubectl_command(&[
            "get",
            "forkliftcontroller",
            name,
            "-n",
            "openshift-mtv",
            "--watch",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl starts"),
    );
    let stdout = watch.take_stdout().expect("piped");
    let (first_seen, first) = std::sync::mpsc::channel();
    let observer = std::thread::spawn(move || {
        let mut observations = Vec::new();
        for controller in serde_json::Deserializer::from_reader(stdout).into_iter::<Value>() {
            let Ok(controller) = controller else { break };
            observations.push(Observation {
                interval: controller["spec"]["controller_precopy_interval"].clone(),
                holders: lease_holders(&controller),
                migrating_warm: warm_migrations_running(&results),
            });
            let _ = first_seen.send(());
        }
        observations
    });
    (watch, observer, first)
}

fn run_args<'a>(results: &'a Path, kubeconfig: &'a str, providers: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        "--providers-file",
        providers,
        "--source-provider",
        "vsphere",
        "--storage-class",
        "lab-ceph-rbd",
        "-m",
        "tier0 or warm",
        "-j",
        "2",
        "--no-progress",
        "--results",
        results.to_str().unwrap(),
        "--kubeconfig",
        kubeconfig,
    ]
}

#[test]
fn four_runs_sharing_a_lab_keep_the_precopy_interval_until_the_last_one_ends() {
    let Some(lab) = ServedLab::start("2") else {
        return;
    };
    let name = lab.kubectl(&[
        "get",
        "forkliftcontrollers",
        "-n",
        "openshift-mtv",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    // The administrator's interval, which must be back at the end.
    lab.kubectl(&[
        "patch",
        "forkliftcontroller",
        &name,
        "-n",
        "openshift-mtv",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"controller_precopy_interval":60}}"#,
    ]);
    let before = lab.cluster_state();
    let results: Vec<PathBuf> = (0..4).map(|i| lab.path().join(format!("run{i}"))).collect();
    let (watch, observer, first) = watch_controller(&lab, &name, results.clone());
    first
        .recv_timeout(Duration::from_secs(30))
        .expect("the watch shows the ForkliftController");

    let kubeconfig = lab.kubeconfig_arg();
    let providers = lab.providers_arg();
    let runs: Vec<KillOnDrop> = results
        .iter()
        .map(|dir| lab.spawn_mtv_tests(lab.path(), &run_args(dir, &kubeconfig, &providers)))
        .collect();
    for (index, run) in runs.into_iter().enumerate() {
        let output = run.wait_with_output();
        assert_eq!(
            output.status.code(),
            Some(0),
            "run{index}\n{}",
            text(&output)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains(" passed, "), "run{index}\n{stdout}");
    }

    // The administrator's value is back, and no lease is left.
    let (interval, annotations) = lab.precopy_interval();
    assert_eq!(interval, 60);
    assert!(annotations["mtv-tests/leases"].is_null(), "{annotations:#}");
    assert_eq!(lab.cluster_state(), before);

    drop(watch);
    let observations = observer.join().expect("the observer ends with the watch");
    assert!(
        observations.iter().any(|o| o.interval == 2),
        "the runs set the interval: {observations:#?}"
    );
    for observation in &observations {
        assert!(
            observation.interval == 2 || observation.migrating_warm.is_empty(),
            "the interval was {} while warm migrations still ran: {:?}\nall: {observations:#?}",
            observation.interval,
            observation.migrating_warm
        );
    }
    assert!(
        observations.iter().any(|o| o.holders >= 2),
        "the runs overlapped and shared the lease: {observations:#?}"
    );
}
