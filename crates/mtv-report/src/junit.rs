//! The JUnit XML report (`junit.xml`), shaped like pytest's so CI systems read it as they read the
//! Python suite's.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, FixedOffset, Utc};
use mtv_events::{Event, StepEnd, StepOutcome};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::atomic_file::write_atomically;
use crate::{ReportError, Reporter, TestName};

const SUITE_NAME: &str = "mtv-tests";

/// The JUnit XML report, shaped like pytest's for class-based tests.
///
/// One `<testsuite name="mtv-tests">` whose properties are the session's facts (session id, MTV
/// version, source provider, provider type, storage class, target). One `<testcase>` per finished
/// step: `classname` is the scenario class (`TestSanityColdMtvMigration`), `name` is the step with
/// the scenario's parameter (`test_create_storagemap[rhel8]`), and the property `test_id` keeps the
/// full id (`TestSanityColdMtvMigration[rhel8]::test_create_storagemap`). Failures become
/// `<failure>`, errors `<error>`, steps a Ctrl-C or signal stopped `<error type="INTERRUPTED">`
/// with the message `INTERRUPTED: ...`, a migrate step's case has a property
/// `pipeline.<vm>.<pipeline step>` per finished pipeline step with its seconds, skips and expected failures `<skipped>` (the latter with the
/// message prefixed `xfail: `). Cases are grouped by scenario, in the order scenarios started.
/// The file is written at [`Reporter::finish`], atomically (a temporary file, then a rename).
pub struct JunitReport {
    path: PathBuf,
    /// Fixed in tests so the output is reproducible; the wall clock otherwise.
    clock: Option<SystemTime>,
    started_at: Option<DateTime<FixedOffset>>,
    properties: Vec<Property>,
    scenarios: Vec<(String, Vec<TestCase>)>,
    steps_time: Duration,
    session_time: Option<Duration>,
    /// Per-phase durations of the VMs a running migrate step moved, by test id, until it finishes.
    phase_properties: std::collections::HashMap<String, Vec<Property>>,
}

impl JunitReport {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            clock: None,
            started_at: None,
            properties: Vec::new(),
            scenarios: Vec::new(),
            steps_time: Duration::ZERO,
            session_time: None,
            phase_properties: std::collections::HashMap::new(),
        }
    }

    /// Uses `at` as the session's start time instead of the wall clock (for reproducible output).
    pub fn with_start_time(mut self, at: SystemTime) -> Self {
        self.clock = Some(at);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The report as it stands now.
    pub fn report(&self) -> Report {
        let mut suite = TestSuite::new(SUITE_NAME);
        suite.add_properties(self.properties.iter().cloned());
        for (_, cases) in &self.scenarios {
            suite.add_test_cases(cases.iter().cloned());
        }
        if let Some(at) = self.started_at {
            suite.set_timestamp(at);
        }
        let time = self.session_time.unwrap_or(self.steps_time);
        suite.set_time(time);
        let mut report = Report::new(SUITE_NAME);
        report.add_test_suite(suite);
        if let Some(at) = self.started_at {
            report.set_timestamp(at);
        }
        report.set_time(time);
        report
    }

    pub fn to_xml(&self) -> Result<String, ReportError> {
        Ok(self.report().to_string()?)
    }

    fn session_started(&mut self, facts: [(&str, &str); 6]) {
        let at: DateTime<Utc> = self.clock.unwrap_or_else(SystemTime::now).into();
        self.started_at = Some(at.fixed_offset());
        self.properties = facts
            .iter()
            .map(|(name, value)| Property::new(*name, *value))
            .collect();
    }

    fn scenario_cases(&mut self, scenario: &str) -> &mut Vec<TestCase> {
        let index = match self.scenarios.iter().position(|(name, _)| name == scenario) {
            Some(index) => index,
            None => {
                self.scenarios.push((scenario.to_string(), Vec::new()));
                self.scenarios.len() - 1
            }
        };
        &mut self.scenarios[index].1
    }

    fn step_finished(&mut self, end: &StepEnd) {
        let name = TestName::new(&end.scenario, &end.step);
        let mut case = TestCase::new(name.name, status_of(&end.outcome));
        case.set_classname(name.class);
        case.set_time(end.duration);
        case.add_property(Property::new("test_id", end.id.as_str()));
        case.add_properties(self.phase_properties.remove(&end.id).unwrap_or_default());
        if let Some(path) = &end.diagnostics {
            case.add_property(Property::new("diagnostics", path.as_str()));
            case.set_system_out(format!("diagnostics: {path}"));
        }
        self.steps_time += end.duration;
        self.scenario_cases(&end.scenario).push(case);
    }

    fn write_file(&self) -> Result<(), ReportError> {
        let xml = self.to_xml()?;
        write_atomically(&self.path, |out| out.write_all(xml.as_bytes())).map_err(|source| {
            ReportError::File {
                what: "the JUnit report",
                path: self.path.clone(),
                source,
            }
        })
    }
}

fn status_of(outcome: &StepOutcome) -> TestCaseStatus {
    match outcome {
        StepOutcome::Passed => TestCaseStatus::success(),
        StepOutcome::Failed { message } => non_success(NonSuccessKind::Failure, message),
        StepOutcome::Error { message } => non_success(NonSuccessKind::Error, message),
        // An error, not a failure: the step did not get to decide; the type says why.
        StepOutcome::Interrupted { message } => {
            let mut status = non_success(NonSuccessKind::Error, &format!("INTERRUPTED: {message}"));
            status.set_type("INTERRUPTED");
            status
        }
        StepOutcome::Skipped { reason } => skipped("pytest.skip", reason.clone()),
        StepOutcome::Xfailed { reason } => skipped("pytest.xfail", format!("xfail: {reason}")),
    }
}

/// `pipeline.<vm>.<step>` = seconds the step took (three decimals, as `time`), for each step of
/// the VM's pipeline that finished: what a CI system can chart between MTV versions.
fn phase_properties<'a>(
    vm: &'a str,
    phases: &'a [mtv_events::PipelinePhase],
) -> impl Iterator<Item = Property> + 'a {
    phases.iter().filter_map(move |phase| {
        let duration = phase.duration?;
        Some(Property::new(
            format!("pipeline.{vm}.{}", phase.name),
            format!("{:.3}", duration.as_secs_f64()),
        ))
    })
}

fn non_success(kind: NonSuccessKind, message: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(kind);
    status.set_message(message).set_description(message);
    status
}

fn skipped(ty: &str, message: String) -> TestCaseStatus {
    let mut status = TestCaseStatus::skipped();
    status.set_type(ty).set_message(message);
    status
}

impl Reporter for JunitReport {
    fn handle(&mut self, event: &Event) {
        match event {
            Event::SessionStarted(start) => self.session_started([
                ("session_id", &start.session_id),
                (
                    "mtv_version",
                    start.mtv_version.as_deref().unwrap_or("unknown"),
                ),
                ("source_provider", &start.source_provider),
                ("provider_type", &start.provider_type),
                ("storage_class", &start.storage_class),
                ("target", &start.target),
            ]),
            Event::StepFinished(end) => self.step_finished(end),
            Event::SessionFinished { duration, .. } => self.session_time = Some(*duration),
            Event::VmTimeline { id, vm, phases, .. } => {
                let properties = self.phase_properties.entry(id.clone()).or_default();
                properties.extend(phase_properties(vm, phases));
            }
            _ => {}
        }
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        self.write_file()
    }
}
