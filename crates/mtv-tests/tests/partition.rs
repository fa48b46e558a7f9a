//! Scale-out: `--partition count:K/N` runs against one `mtv-tests lab serve` cover the selection
//! exactly once, and `mtv-tests report merge` of their results holds the same items as one run over
//! the whole selection (event log, JUnit, HTML, rerun state). `hash:K/N` is checked on `list`.

mod served_lab;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use served_lab::{ServedLab, as_strs, events, listed_items, mtv_tests, mtv_tests_json, text};

const PARTITIONS: u64 = 3;

/// The ids of the items a run reported (its `step_finished` events), with how often each came.
fn reported_items(results: &Path) -> Vec<String> {
    let mut ids: Vec<String> = events(results)
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .map(|e| e["id"].as_str().expect("an id").to_string())
        .collect();
    ids.sort();
    ids
}

/// `classname::name` of every test case of a JUnit file.
fn junit_cases(path: &Path) -> BTreeSet<String> {
    let xml = std::fs::read_to_string(path).expect("junit.xml");
    let attribute = |element: &str, name: &str| {
        let start = element
            .find(&format!(" {name}=\""))
            .unwrap_or_else(|| panic!("{name} in {element}"))
            + name.len()
            + 3;
        element[start..][..element[start..].find('"').expect("closing quote")].to_string()
    };
    xml.split("<testcase")
        .skip(1)
        .map(|case| {
            let element = &case[..case.find('>').expect("element end")];
            format!(
                "{}::{}",
                attribute(element, "classname"),
                attribute(element, "name")
            )
        })
        .collect()
}

/// The ids `list` selects or skips for `selection` (what a run reports).
fn listed_ids(dir: &Path, selection: &[&str]) -> BTreeSet<String> {
    let listing = mtv_tests_json(dir, &[&["list"], selection].concat());
    listed_items(&listing)
        .map(|item| item["id"].as_str().expect("an id").to_string())
        .collect()
}

#[test]
fn partitioned_runs_cover_the_selection_once_and_merge_into_one_runs_results() {
    let Some(lab) = ServedLab::start("4") else {
        return;
    };
    let selection = ["-m", "tier0", "-j", "2"];
    let whole_args = {
        let mut args = lab.run_args(&selection, &[]);
        let at = args.iter().position(|a| a == "out").expect("--results out");
        args[at] = "whole".into();
        args
    };
    let mut runs = vec![lab.spawn_mtv_tests(lab.path(), &as_strs(&whole_args))];
    for shard in 1..=PARTITIONS {
        let partition = format!("count:{shard}/{PARTITIONS}");
        let mut args = lab.run_args(&selection, &["--partition", &partition]);
        let at = args.iter().position(|a| a == "out").expect("--results out");
        args[at] = format!("part{shard}");
        runs.push(lab.spawn_mtv_tests(lab.path(), &as_strs(&args)));
    }
    for run in runs {
        let output = run.wait_with_output();
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    }

    let whole = reported_items(&lab.path().join("whole"));
    let listed = listed_ids(lab.path(), &["-m", "tier0"]);
    assert_eq!(
        whole.iter().cloned().collect::<BTreeSet<_>>(),
        listed,
        "a whole run reports what list selects or skips"
    );
    // Exactly once: the partitions' items, with repetitions, are the whole run's.
    let mut partitioned: Vec<String> = (1..=PARTITIONS)
        .flat_map(|shard| reported_items(&lab.path().join(format!("part{shard}"))))
        .collect();
    partitioned.sort();
    assert_eq!(partitioned, whole);
    for shard in 1..=PARTITIONS {
        assert!(
            !reported_items(&lab.path().join(format!("part{shard}"))).is_empty(),
            "partition {shard} of {PARTITIONS} ran nothing: tier0 has more scenarios than that"
        );
    }

    let merged = lab.path().join("merged");
    let output = mtv_tests(
        lab.path(),
        &["report", "merge", "part1", "part2", "part3", "-o", "merged"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(reported_items(&merged), whole);
    let merged_log = events(&merged);
    assert_eq!(
        merged_log
            .iter()
            .filter(|e| e["event"] == "session_started")
            .count(),
        1
    );
    assert_eq!(
        merged_log.last().expect("events")["event"],
        "session_finished"
    );
    assert_eq!(
        junit_cases(&merged.join("junit.xml")),
        junit_cases(&lab.path().join("whole/junit.xml"))
    );
    let html = std::fs::read_to_string(merged.join("report.html")).expect("report.html");
    for scenario in whole.iter().filter_map(|id| id.split("::").next()) {
        assert!(html.contains(scenario), "report.html lacks {scenario}");
    }
    let rerun: Value = serde_json::from_str(
        &std::fs::read_to_string(merged.join("rerun.json")).expect("rerun.json"),
    )
    .expect("JSON");
    assert_eq!(rerun["failed"], serde_json::json!([]));
    assert_eq!(rerun["source_provider"], "vsphere");

    // The same partition twice is not a split: the merge refuses it and names the item.
    let output = mtv_tests(
        lab.path(),
        &["report", "merge", "part1", "part1", "-o", "twice"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("is reported by both part1 and part1"),
        "{}",
        text(&output)
    );
}

#[test]
fn hash_partitions_of_list_cover_the_selection_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let everything = listed_ids(dir.path(), &[]);
    let mut seen = BTreeSet::new();
    for shard in 1..=PARTITIONS {
        let partition = format!("hash:{shard}/{PARTITIONS}");
        for id in listed_ids(dir.path(), &["--partition", &partition]) {
            assert!(seen.insert(id.clone()), "{id} in two partitions");
        }
    }
    assert_eq!(seen, everything);
}

#[test]
fn a_bad_partition_is_a_usage_error_that_shows_the_form() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = mtv_tests(dir.path(), &["list", "--partition", "hash:4/3"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("partition 4 must be between 1 and the count 3"),
        "{}",
        text(&output)
    );
}
