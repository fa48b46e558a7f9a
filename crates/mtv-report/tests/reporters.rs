//! The writers fed one scripted run: passed, failed with diagnostics, xfailed, skipped, error,
//! migration progress and teardown leftovers.

use std::io::{BufReader, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use indicatif::ProgressDrawTarget;
use mtv_events::{
    Event, PipelinePhase, ResourceRef, SessionStart, StepEnd, StepOutcome, VmProgress,
};
use mtv_report::{
    EXIT_LEFTOVERS, EXIT_OK, EXIT_TEST_FAILED, EventLog, FailureKind, Fanout, HtmlReport,
    JunitReport, LiveConsole, PlainConsole, ReportError, Reporter, Summary, parse_event_log,
};

const COLD: &str = "TestSanityColdMtvMigration[rhel8]";
const WARM: &str = "TestSanityWarmMtvMigration[win2019]";
const COPYOFFLOAD: &str = "TestCopyoffloadMigration[ontap]";
const REMOTE: &str = "TestRemoteMigration[rhel9]";

fn started(scenario: &str, step: &str) -> Event {
    Event::StepStarted {
        id: format!("{scenario}::{step}"),
        scenario: scenario.into(),
        step: step.into(),
    }
}

fn finished(scenario: &str, step: &str, outcome: StepOutcome, millis: u64) -> Event {
    Event::StepFinished(StepEnd {
        id: format!("{scenario}::{step}"),
        scenario: scenario.into(),
        step: step.into(),
        outcome,
        duration: Duration::from_millis(millis),
        diagnostics: None,
    })
}

/// A VM's pipeline of the `test_migrate_vms` step of `scenario`: (step, start, seconds) each.
/// The migrate step's progress report of a scenario: each VM's (name, pipeline step, percent).
fn progress(scenario: &str, vms: &[(&str, &str, Option<f64>)]) -> Event {
    Event::MigrationProgress {
        id: format!("{scenario}::test_migrate_vms"),
        vms: vms
            .iter()
            .map(|&(vm, pipeline_step, percent)| VmProgress {
                vm: vm.into(),
                pipeline_step: pipeline_step.into(),
                percent,
            })
            .collect(),
    }
}

fn timeline(scenario: &str, vm: &str, phases: &[(&str, u64, Option<u64>)]) -> Event {
    Event::VmTimeline {
        id: format!("{scenario}::test_migrate_vms"),
        plan: format!("{vm}-plan"),
        vm: vm.into(),
        phases: phases
            .iter()
            .map(|(name, start, duration)| PipelinePhase {
                name: (*name).into(),
                start: Some(Duration::from_secs(*start)),
                duration: duration.map(Duration::from_secs),
                error: None,
            })
            .collect(),
    }
}

fn resource(kind: &str, name: &str) -> ResourceRef {
    ResourceRef {
        api_version: "forklift.konveyor.io/v1beta1".into(),
        kind: kind.into(),
        namespace: Some("mtv-tests-s1234".into()),
        name: name.into(),
        uid: Some("0f1e2d3c".into()),
    }
}

fn xfail(failed_id: &str) -> StepOutcome {
    StepOutcome::Xfailed {
        reason: format!("previous step failed ({failed_id})"),
    }
}

fn scripted_run() -> Vec<Event> {
    let warm_failed = format!("{WARM}::test_migrate_vms");
    let remote_failed = format!("{REMOTE}::test_create_storagemap");
    let skip = || StepOutcome::Skipped {
        reason: "copyoffload is not configured for this provider".into(),
    };
    let mut events = vec![
        Event::SessionStarted(SessionStart {
            session_id: "s1234".into(),
            target: "lab".into(),
            mtv_version: Some("2.8.0".into()),
            source_provider: "vsphere-8.0.1".into(),
            provider_type: "vsphere".into(),
            storage_class: "standard-csi".into(),
            items: 14,
        }),
        Event::ResourceCreated {
            resource: resource("Provider", "vsphere-8-0-1-s1234"),
            scenario: None,
        },
        Event::ScenarioStarted {
            scenario: COLD.into(),
        },
        Event::ScenarioStarted {
            scenario: WARM.into(),
        },
        started(COLD, "test_create_storagemap"),
        finished(COLD, "test_create_storagemap", StepOutcome::Passed, 410),
        started(WARM, "test_create_storagemap"),
        finished(WARM, "test_create_storagemap", StepOutcome::Passed, 380),
        started(COLD, "test_create_plan"),
        Event::StepNote {
            id: format!("{COLD}::test_create_plan"),
            message: "waiting for the Plan to be Ready".into(),
        },
        finished(COLD, "test_create_plan", StepOutcome::Passed, 1234),
        started(WARM, "test_migrate_vms"),
        progress(WARM, &[("win2019-s1234", "DiskTransfer", Some(42.4))]),
        started(COLD, "test_migrate_vms"),
        progress(
            COLD,
            &[
                ("rhel8-s1234", "DiskTransfer", Some(10.0)),
                ("rhel8-2-s1234", "Initialize", None),
            ],
        ),
        progress(
            COLD,
            &[
                ("rhel8-s1234", "DiskTransfer", Some(80.0)),
                ("rhel8-2-s1234", "DiskTransfer", Some(5.0)),
            ],
        ),
        Event::StepFinished(StepEnd {
            id: warm_failed.clone(),
            scenario: WARM.into(),
            step: "test_migrate_vms".into(),
            outcome: StepOutcome::Failed {
                message:
                    "VM win2019-s1234 failed at DiskTransfer: disk 1 import failed <lab fault>"
                        .into(),
            },
            duration: Duration::from_millis(65_432),
            diagnostics: Some(format!("results/{warm_failed}")),
        }),
        finished(WARM, "test_check_vms", xfail(&warm_failed), 0),
        Event::ScenarioFinished {
            scenario: WARM.into(),
        },
        timeline(
            COLD,
            "rhel8-s1234",
            &[
                ("Initialize", 0, Some(1)),
                ("DiskAllocation", 1, Some(2)),
                ("DiskTransfer", 3, Some(8)),
                ("ImageConversion", 11, None),
            ],
        ),
        timeline(
            COLD,
            "rhel8-2-s1234",
            &[("Initialize", 0, Some(2)), ("DiskTransfer", 2, Some(10))],
        ),
        finished(COLD, "test_migrate_vms", StepOutcome::Passed, 12_500),
        started(COLD, "test_check_vms"),
        finished(COLD, "test_check_vms", StepOutcome::Passed, 2_000),
        Event::ScenarioFinished {
            scenario: COLD.into(),
        },
        Event::ScenarioStarted {
            scenario: COPYOFFLOAD.into(),
        },
        finished(COPYOFFLOAD, "test_create_storagemap", skip(), 0),
        finished(COPYOFFLOAD, "test_migrate_vms", skip(), 0),
        Event::ScenarioFinished {
            scenario: COPYOFFLOAD.into(),
        },
        Event::ScenarioStarted {
            scenario: REMOTE.into(),
        },
        started(REMOTE, "test_create_storagemap"),
        finished(
            REMOTE,
            "test_create_storagemap",
            StepOutcome::Error {
                message: "Provider host-s1234 not Ready: ConnectionFailed: dial tcp: refused"
                    .into(),
            },
            5_000,
        ),
    ];
    for step in ["test_create_plan", "test_migrate_vms", "test_check_vms"] {
        events.push(finished(REMOTE, step, xfail(&remote_failed), 0));
    }
    events.extend([
        Event::ScenarioFinished {
            scenario: REMOTE.into(),
        },
        Event::TeardownStarted { resources: 21 },
        Event::ResourceDeleted {
            resource: resource("Provider", "vsphere-8-0-1-s1234"),
        },
        Event::TeardownFinished {
            leftovers: vec![
                resource("Plan", "plan-rhel8-s1234"),
                ResourceRef {
                    api_version: "v1".into(),
                    kind: "Namespace".into(),
                    namespace: None,
                    name: "mtv-tests-s1234".into(),
                    uid: None,
                },
            ],
        },
        Event::SessionFinished {
            exit_code: 1,
            duration: Duration::from_millis(83_456),
        },
    ]);
    events
}

/// Where the run's first failed step finishes: a cut that leaves a run mid-migration.
fn first_failure(run: &[Event]) -> usize {
    run.iter()
        .position(|event| {
            matches!(
                event,
                Event::StepFinished(StepEnd {
                    outcome: StepOutcome::Failed { .. },
                    ..
                })
            )
        })
        .expect("the run has a failed step")
}

fn feed(reporter: &mut impl Reporter, events: &[Event]) {
    for event in events {
        reporter.handle(event);
    }
}

fn plain_console_text(events: &[Event], activity: bool) -> String {
    let mut console = PlainConsole::new(Vec::new()).show_activity(activity);
    feed(&mut console, events);
    console.finish().unwrap();
    String::from_utf8(console.into_inner()).unwrap()
}

fn junit_xml(events: &[Event]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reports/junit.xml");
    let mut junit = JunitReport::new(&path)
        .with_start_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000));
    written_alone(&mut junit, events, &path)
}

/// Feeds a file reporter the events and finishes it; checks it wrote atomically (only the report is
/// left in its directory) and returns the report's text.
fn written_alone(reporter: &mut impl Reporter, events: &[Event], path: &Path) -> String {
    feed(reporter, events);
    reporter.finish().unwrap();
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![path.file_name().unwrap()]);
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn junit_reads_like_pytest() {
    let xml = junit_xml(&scripted_run());
    insta::assert_snapshot!(xml);
}

#[test]
fn junit_without_session_finished_uses_the_steps_time() {
    let events: Vec<_> = scripted_run()
        .into_iter()
        .filter(|event| !matches!(event, Event::SessionFinished { .. }))
        .collect();
    let xml = junit_xml(&events);
    assert!(
        xml.contains(r#"<testsuite name="mtv-tests" tests="13""#),
        "{xml}"
    );
    assert!(xml.contains(r#"time="86.956""#), "{xml}");
}

#[test]
fn event_log_is_a_header_then_one_event_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results/events.jsonl");
    let events = scripted_run();
    let mut log = EventLog::create(&path).unwrap();
    feed(&mut log, &events[..3]);
    // Flushed per line: a crash now would keep the header and three events.
    let so_far = std::fs::read_to_string(&path).unwrap();
    assert_eq!(so_far.lines().count(), 4);
    feed(&mut log, &events[3..]);
    log.finish().unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], r#"{"event":"log_started","version":1}"#);
    assert_eq!(lines.len(), events.len() + 1);
    for (line, event) in lines[1..].iter().zip(&events) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value, serde_json::to_value(event).unwrap());
    }
    let failed: serde_json::Value = serde_json::from_str(
        lines
            .iter()
            .find(|line| line.contains(r#""outcome":"failed""#))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(failed["event"], "step_finished");
    assert_eq!(failed["duration"], 65.432);

    let back = parse_event_log(BufReader::new(text.as_bytes())).unwrap();
    assert_eq!(back, events);
}

#[test]
fn event_log_refuses_another_version_or_a_missing_header() {
    let other = "{\"event\":\"log_started\",\"version\":99}\n";
    let error = parse_event_log(other.as_bytes()).unwrap_err();
    assert!(error.to_string().contains("version 99"), "{error}");
    let headless = "{\"event\":\"scenario_started\",\"scenario\":\"TestX[a]\"}\n";
    let error = parse_event_log(headless.as_bytes()).unwrap_err();
    assert!(
        matches!(error, ReportError::MalformedLog { line: 1, .. }),
        "{error}"
    );
    assert!(parse_event_log("".as_bytes()).is_err());
}

#[test]
fn event_log_without_events_still_has_its_header() {
    let mut log = EventLog::new(Vec::new());
    log.finish().unwrap();
    let text = String::from_utf8(log.into_inner()).unwrap();
    assert_eq!(text, "{\"event\":\"log_started\",\"version\":1}\n");
}

#[test]
fn plain_console_reads_like_pytest_verbose() {
    insta::assert_snapshot!(plain_console_text(&scripted_run(), false));
}

#[test]
fn plain_console_can_show_notes_and_pipeline_steps() {
    let text = plain_console_text(&scripted_run(), true);
    let activity: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("    ") && !line.contains("diagnostics"))
        .collect();
    insta::assert_snapshot!(activity.join("\n"));
}

#[test]
fn plain_console_of_a_clean_run_has_no_short_summary() {
    let events = vec![
        finished(COLD, "test_create_storagemap", StepOutcome::Passed, 1500),
        Event::TeardownFinished { leftovers: vec![] },
        Event::SessionFinished {
            exit_code: 0,
            duration: Duration::from_millis(3_723_400),
        },
    ];
    let text = plain_console_text(&events, false);
    insta::assert_snapshot!(text);
}

#[test]
fn summary_counts_every_outcome() {
    let summary = Summary::from_events(&scripted_run());
    assert_eq!(
        (
            summary.passed,
            summary.failed,
            summary.errors,
            summary.skipped,
            summary.xfailed
        ),
        (5, 1, 1, 2, 4)
    );
    assert_eq!(summary.total(), 13);
    assert_eq!(summary.leftovers.len(), 2);
    assert_eq!(summary.duration, Duration::from_millis(83_456));
    assert!(summary.session_finished);
    assert_eq!(summary.failures.len(), 2);
    assert_eq!(summary.failures[0].kind, FailureKind::Failed);
    assert_eq!(
        summary.failures[0].diagnostics.as_deref(),
        Some("results/TestSanityWarmMtvMigration[win2019]::test_migrate_vms")
    );
    assert_eq!(summary.failures[1].kind, FailureKind::Error);
    assert_eq!(summary.xfail_reasons.len(), 2);
    assert_eq!(summary.xfail_reasons[1].1, 3);
    assert_eq!(
        summary.counts_line(),
        "1 failed, 5 passed, 2 skipped, 4 xfailed, 1 error, 2 leftovers"
    );
}

#[test]
fn exit_code_prefers_a_failed_test_over_leftovers() {
    let run = scripted_run();
    assert_eq!(Summary::from_events(&run).exit_code(), EXIT_TEST_FAILED);

    let without_failures: Vec<Event> = run
        .iter()
        .filter(|event| {
            !matches!(
                event,
                Event::StepFinished(StepEnd {
                    outcome: StepOutcome::Failed { .. } | StepOutcome::Error { .. },
                    ..
                })
            )
        })
        .cloned()
        .collect();
    let summary = Summary::from_events(&without_failures);
    assert_eq!(summary.exit_code(), EXIT_LEFTOVERS);

    let clean: Vec<Event> = without_failures
        .into_iter()
        .filter(|event| !matches!(event, Event::TeardownFinished { .. }))
        .collect();
    let summary = Summary::from_events(&clean);
    // Skips and expected failures do not fail a run.
    assert!(summary.skipped > 0 && summary.xfailed > 0);
    assert_eq!(summary.exit_code(), EXIT_OK);

    let errored_only = [finished(
        REMOTE,
        "test_create_plan",
        StepOutcome::Error {
            message: "API unavailable".into(),
        },
        1,
    )];
    assert_eq!(
        Summary::from_events(&errored_only).exit_code(),
        EXIT_TEST_FAILED
    );
    assert_eq!(Summary::new().counts_line(), "no tests ran");
    assert_eq!(Summary::new().exit_code(), EXIT_OK);
}

#[test]
fn live_view_shows_each_running_scenario_step_and_vm() {
    let run = scripted_run();
    let mut console = LiveConsole::new(ProgressDrawTarget::hidden(), Vec::new());
    // Up to the second progress report of the cold migration.
    let cut = first_failure(&run);
    feed(&mut console, &run[..cut]);
    insta::assert_snapshot!(console.view().lines().join("\n"));

    feed(&mut console, &run[cut..]);
    assert!(console.view().running.is_empty());
    console.finish().unwrap();
    let text = String::from_utf8(console.into_inner()).unwrap();
    // Same lines and summary as the plain console: the bars are drawn elsewhere.
    assert_eq!(text, plain_console_text(&run, false));
}

/// A writer whose bytes stay readable after it is moved into a `Fanout`.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct BrokenPipe;

impl Write for BrokenPipe {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::BrokenPipe.into())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn fanout_feeds_every_reporter_and_reports_every_failure() {
    let dir = tempfile::tempdir().unwrap();
    let junit_path = dir.path().join("junit.xml");
    let html_path = dir.path().join("report.html");
    let console = SharedBuffer::default();
    let mut fanout = Fanout::new()
        .with(PlainConsole::new(console.clone()))
        .with(EventLog::new(BrokenPipe))
        .with(JunitReport::new(&junit_path))
        .with(HtmlReport::new(&html_path))
        .with(PlainConsole::new(BrokenPipe));
    assert_eq!(fanout.len(), 5);
    feed(&mut fanout, &scripted_run());
    let error = fanout.finish().unwrap_err();
    assert!(
        matches!(&error, ReportError::Several(errors) if errors.len() == 2),
        "{error}"
    );
    // The broken writers did not stop the others.
    assert!(junit_path.exists());
    assert!(html_path.exists());
    let text = String::from_utf8(console.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("1 failed, 5 passed"), "{text}");
}

#[test]
fn writers_add_no_environment_or_configuration_data() {
    let run = scripted_run();
    let events_json = serde_json::to_string(&run).unwrap();
    let console = plain_console_text(&run, true);
    let xml = junit_xml(&run);
    let mut log = EventLog::new(Vec::new());
    feed(&mut log, &run);
    log.finish().unwrap();
    let log = String::from_utf8(log.into_inner()).unwrap();
    let html = html_page(&run);
    // Any environment value long enough to be meaningful, and absent from the events themselves,
    // must be absent from every output.
    for (name, value) in std::env::vars() {
        if value.len() < 12 || events_json.contains(&value) {
            continue;
        }
        for (writer, output) in [
            ("console", &console),
            ("junit", &xml),
            ("event log", &log),
            ("html", &html),
        ] {
            assert!(
                !output.contains(&value),
                "{writer} contains the value of ${name}"
            );
        }
    }
    // Only the session's own facts and what the events carry become JUnit properties.
    let properties: Vec<&str> = xml
        .lines()
        .filter(|line| line.trim_start().starts_with("<property name="))
        .filter_map(|line| line.split('"').nth(1))
        .collect();
    for name in properties {
        assert!(
            [
                "session_id",
                "mtv_version",
                "source_provider",
                "provider_type",
                "storage_class",
                "target",
                "test_id",
                "diagnostics"
            ]
            .contains(&name)
                // A VM's pipeline step durations, from its timeline event.
                || name.starts_with("pipeline."),
            "unexpected property {name}"
        );
    }
}

/// The scripted run as the engine really reports it: the diagnostics bundle under a sanitised
/// directory name, a failure message and a note with markup and ampersands in them.
fn html_run() -> Vec<Event> {
    let mut events = scripted_run();
    for event in &mut events {
        if let Event::StepFinished(StepEnd {
            outcome: StepOutcome::Failed { message },
            diagnostics,
            ..
        }) = event
        {
            message.push_str(
                " | VM win2019-s1234: check_vms - <script>alert('x')</script> & \"more\"",
            );
            *diagnostics =
                Some("results/TestSanityWarmMtvMigration_win2019_--test_migrate_vms".into());
        }
        if let Event::StepNote { message, .. } = event {
            message.push_str(" (Plan <b>plan-rhel8</b> & maps)");
        }
    }
    // The failed VM's last report is its final phase, after the pipeline step it failed at.
    let failed = first_failure(&events);
    events.insert(
        failed,
        progress(WARM, &[("win2019-s1234", "Completed", None)]),
    );
    events
}

fn html_page(events: &[Event]) -> String {
    let mut report = HtmlReport::new("results/report.html")
        .with_start_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000));
    feed(&mut report, events);
    let mut page = Vec::new();
    report.write_html(&mut page).unwrap();
    String::from_utf8(page).unwrap()
}

/// Every opening tag of these elements has its closing tag, in order.
fn assert_balanced(page: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        let end = rest.find(['>', ' ']).unwrap();
        let tag = &rest[..end];
        let (closing, name) = match tag.strip_prefix('/') {
            Some(name) => (true, name),
            None => (false, tag),
        };
        if ![
            "html", "head", "body", "main", "header", "section", "details", "summary", "table",
            "thead", "tbody", "tr", "td", "th", "ul", "li", "pre", "p", "dl", "nav", "code",
            "span", "a", "h1", "h2", "h3",
        ]
        .contains(&name)
        {
            continue;
        }
        if closing {
            assert_eq!(open.pop(), Some(name), "unbalanced </{name}>");
        } else {
            open.push(name);
        }
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
}

#[test]
fn html_report_snapshot() {
    let page = html_page(&html_run());
    // The stylesheet is not the report's content; it is checked by looking at the page.
    let start = page.find("<style>").unwrap();
    let end = page.find("</style>").unwrap();
    let page = format!("{}<style>[stylesheet]{}", &page[..start], &page[end..]);
    insta::assert_snapshot!(page);
}

#[test]
fn html_report_escapes_everything_and_needs_nothing_outside_the_file() {
    let page = html_page(&html_run());
    assert_balanced(&page);
    assert!(!page.contains("<script"), "raw markup from an event");
    assert!(!page.contains("<b>plan"), "raw markup from a note");
    assert!(
        page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;")
    );
    assert!(page.contains("(Plan &lt;b&gt;plan-rhel8&lt;/b&gt; &amp; maps)"));
    assert!(page.contains("disk 1 import failed &lt;lab fault&gt;"));
    for external in [
        "http:", "https:", "<link", "<img", "@import", "url(", "src=",
    ] {
        assert!(!page.contains(external), "{external}");
    }
}

#[test]
fn html_report_shows_the_run_failed_scenarios_first_and_open() {
    let page = html_page(&html_run());
    // The headline: verdict, exit meaning, counts, facts.
    assert!(page.contains("<span class=\"verdict\">FAILED</span>"));
    assert!(page.contains("exit 1: a test failed or errored"));
    assert!(page.contains(
        "1 failed, 5 passed, 2 skipped, 4 xfailed, 1 error, 2 leftovers in 83.46s (0:01:23)"
    ));
    for fact in [
        "2026-05-28 20:26:40 UTC",
        "cluster <code>lab</code>",
        "<code>s1234</code>",
        "<code>vsphere-8.0.1</code> (type vsphere)",
        "<dd>2.8.0</dd>",
        "14 collected, 13 reported",
    ] {
        assert!(page.contains(fact), "{fact}");
    }

    // Problem scenarios first (open), in the order they started; passed and skipped ones closed.
    let position = |scenario: &str| {
        let (class, param) = scenario.split_once('[').unwrap();
        let name = format!(
            "<code class=\"name\">{class}<span class=\"param\">[{}</span>",
            param
        );
        page.find(&name).unwrap_or_else(|| panic!("{name}"))
    };
    let order = [WARM, REMOTE, COLD, COPYOFFLOAD].map(position);
    assert!(order.is_sorted(), "{order:?}");
    let details = |scenario: &str| page[..position(scenario)].rfind("<details").unwrap();
    let opening = |scenario: &str| {
        let at = details(scenario);
        page[at..at + page[at..].find('>').unwrap()].to_string()
    };
    assert!(opening(WARM).ends_with(" open"), "{}", opening(WARM));
    assert!(opening(REMOTE).contains("o-error") && opening(REMOTE).ends_with(" open"));
    assert!(!opening(COLD).contains(" open"), "{}", opening(COLD));
    assert!(!opening(COPYOFFLOAD).contains(" open"));

    // The failed step: its message (one problem a line), the VM's pipeline with where it failed,
    // the bundle linked relative to the report.
    assert!(page.contains("&lt;lab fault&gt;\nVM win2019-s1234: check_vms"));
    assert!(
        page.contains(
            "<span class=\"stopped\" title=\"where the VM failed\">DiskTransfer</span> → Completed</td><td class=\"time\">42%"
        )
    );
    assert!(page.contains(
        "<a href=\"./TestSanityWarmMtvMigration_win2019_--test_migrate_vms/\">\
         results/TestSanityWarmMtvMigration_win2019_--test_migrate_vms/</a>"
    ));
    // The passed migration: both VMs' pipeline steps and last disk progress, and the step's note.
    assert!(page.contains("Initialize → DiskTransfer</td><td class=\"time\">5%"));
    assert!(page.contains("<li>waiting for the Plan to be Ready (Plan"));

    // The short summary links each failure to its step; skips are grouped by reason.
    assert!(page.contains("<a class=\"id\" href=\"#step-1-1\">TestSanityWarmMtvMigration[win2019]::test_migrate_vms</a>"));
    assert!(page.contains("<span class=\"n\">[3]</span> previous step failed (TestRemoteMigration[rhel9]::test_create_storagemap)"));
    assert!(page.contains(
        "<span class=\"n\">[2]</span> copyoffload is not configured for this provider</summary>"
    ));

    // Teardown: what was deleted, and the leftovers highlighted.
    assert!(page.contains("teardown had 21 resources in its ledger, deleted 1 and left 2 behind"));
    let leftovers = &page[page.find("<div class=\"leftovers\">").unwrap()..];
    assert!(leftovers.contains("<code>Plan mtv-tests-s1234/plan-rhel8-s1234</code>"));
    assert!(leftovers.contains("<code>Namespace mtv-tests-s1234</code>"));
    assert!(page.contains("Deleted (1): 1 Provider"));
}

#[test]
fn html_report_of_an_interrupted_run_says_what_did_not_finish() {
    let run = html_run();
    let cut = first_failure(&run);
    let page = html_page(&run[..cut]);
    assert_balanced(&page);
    assert!(page.contains("<span class=\"verdict\">DID NOT FINISH</span>"));
    assert!(page.contains("the run ended early (its outcome so far would exit 0)"));
    assert!(page.contains("Started, never finished"));
    assert!(page.contains("The scenario did not finish"));
    assert!(page.contains("Teardown did not run"));
    // Still running: its VMs as far as they got, not marked as stopped.
    assert!(page.contains("rhel8-2-s1234</code></td><td>Initialize → DiskTransfer"));
}

#[test]
fn html_report_is_written_atomically_and_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results/report.html");
    let mut report = HtmlReport::new(&path);
    let scenarios = 50;
    let mut events = vec![Event::SessionStarted(SessionStart {
        session_id: "s1234".into(),
        target: "https://api.cluster.example:6443".into(),
        mtv_version: Some("2.10.0".into()),
        source_provider: "vsphere-8.0.1".into(),
        provider_type: "vsphere".into(),
        storage_class: "standard-csi".into(),
        items: scenarios * 4,
    })];
    for n in 0..scenarios {
        let scenario = format!("TestSanityColdMtvMigration[rhel8-{n}]");
        events.push(Event::ScenarioStarted {
            scenario: scenario.clone(),
        });
        for step in [
            "test_create_storagemap",
            "test_create_networkmap",
            "test_create_plan",
            "test_migrate_vms",
        ] {
            events.push(started(&scenario, step));
            events.push(Event::StepNote {
                id: format!("{scenario}::{step}"),
                message: "waiting for the Plan to be Ready".into(),
            });
            events.push(finished(&scenario, step, StepOutcome::Passed, 1500));
        }
        events.push(Event::ScenarioFinished { scenario });
    }
    events.push(Event::SessionFinished {
        exit_code: 0,
        duration: Duration::from_secs(600),
    });
    let page = written_alone(&mut report, &events, &path);
    assert!(page.contains("<span class=\"verdict\">PASSED</span>"));
    assert!(page.contains("cluster <code>https://api.cluster.example:6443</code>"));
    assert!(page.contains("Passed scenarios (50)"));
    // 200 items: about 1 KB each with their notes, so a run of the whole catalog mails easily.
    assert!(page.len() < 250_000, "{} bytes", page.len());
}

/// A run stopped by SIGTERM: one step stopped while it ran, one never started, and teardown left a
/// Namespace of someone else alone.
fn interrupted_run() -> Vec<Event> {
    let interrupted = |when: &str| StepOutcome::Interrupted {
        message: format!("the run was stopped by SIGTERM {when}"),
    };
    vec![
        Event::SessionStarted(SessionStart {
            session_id: "auto-s1234".into(),
            target: "lab".into(),
            mtv_version: Some("2.10.0".into()),
            source_provider: "vsphere".into(),
            provider_type: "vsphere".into(),
            storage_class: "lab-ceph-rbd".into(),
            items: 3,
        }),
        Event::ScenarioStarted {
            scenario: WARM.into(),
        },
        started(WARM, "test_create_plan"),
        finished(WARM, "test_create_plan", StepOutcome::Passed, 1_000),
        started(WARM, "test_migrate_vms"),
        finished(
            WARM,
            "test_migrate_vms",
            interrupted("while this step ran"),
            0,
        ),
        finished(
            COLD,
            "test_create_plan",
            interrupted("before this step started"),
            0,
        ),
        Event::TeardownStarted { resources: 2 },
        Event::TeardownNote {
            message: "waiting for Namespace mtv-tests-s1234 to be deleted".into(),
        },
        Event::ResourceLeftAlone {
            resource: resource("Plan", "plan-rhel8-s1234"),
            reason: "not ours, left alone: its uid is 9a8b, the ledger's 0f1e2d3c".into(),
        },
        Event::TeardownFinished { leftovers: vec![] },
        Event::SessionFinished {
            exit_code: 143,
            duration: Duration::from_millis(5_000),
        },
    ]
}

#[test]
fn interrupted_steps_are_reported_as_such_everywhere() {
    let events = interrupted_run();
    let summary = Summary::from_events(&events);
    assert_eq!((summary.passed, summary.interrupted), (1, 2));
    assert_eq!(summary.counts_line(), "1 passed, 2 interrupted");
    assert_eq!(summary.failures[0].kind, FailureKind::Interrupted);

    let console = plain_console_text(&events, false);
    assert!(
        console.contains(&format!(
            "{WARM}::test_migrate_vms INTERRUPTED (0.0s) - the run was stopped by SIGTERM while this step ran"
        )),
        "{console}"
    );
    assert!(
        console.contains(&format!(
            "INTERRUPTED {COLD}::test_create_plan - the run was stopped by SIGTERM before this step started"
        )),
        "{console}"
    );
    assert!(
        console.contains("teardown: waiting for Namespace mtv-tests-s1234 to be deleted")
            && console
                .contains("teardown: Plan mtv-tests-s1234/plan-rhel8-s1234 left alone: not ours"),
        "{console}"
    );

    let xml = junit_xml(&events);
    assert!(
        xml.contains(
            "<error message=\"INTERRUPTED: the run was stopped by SIGTERM while this step ran\" type=\"INTERRUPTED\""
        ),
        "{xml}"
    );
    assert!(xml.contains("errors=\"2\""), "{xml}");

    let page = html_page(&events);
    assert_balanced(&page);
    assert!(page.contains("INTERRUPTED (SIGTERM)"), "{page}");
    assert!(page.contains("Interrupted scenarios (2)"), "{page}");
    assert!(page.contains("Left alone (1)"), "{page}");
}
