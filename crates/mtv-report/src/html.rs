//! The HTML report: one self-contained page (inline CSS, no script, no external resource) that a
//! release qualifier can hand to others. It shows what the events carry and nothing else: the
//! headline, one section per scenario with its steps (failed scenarios first and open), each step's
//! notes, VM pipeline progress, each VM's pipeline timeline (inline SVG) and diagnostics bundle, the skipped items grouped by reason, and the
//! teardown with its leftovers.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use mtv_events::{CheckRun, Event, ResourceRef, SessionStart, StepOutcome, VmProgress};

use crate::atomic_file::write_atomically;
use crate::names::split_scenario;
use crate::summary::{
    EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_LEFTOVERS, EXIT_OK, EXIT_TERMINATED, EXIT_TEST_FAILED,
    exit_meaning, session_duration, step_duration,
};
use crate::timeline::Timeline;
use crate::{ReportError, Reporter, Summary};

/// Notes kept per step: a step emits a handful, but a wait that reports often must not grow the
/// report without bound.
const MAX_NOTES_PER_STEP: usize = 20;
/// Pipeline steps kept per VM (Forklift's pipelines have about ten).
const MAX_PIPELINE_STEPS_PER_VM: usize = 32;

/// The HTML report, written to `path` (atomically) when the run finishes.
///
/// While the run goes it keeps one record per finished step (outcome, duration, diagnostics path),
/// the step's notes and the pipeline steps each of its VMs went through, the deleted resources and
/// the run's [`Summary`]; the page is rendered from those at [`Reporter::finish`].
pub struct HtmlReport {
    path: PathBuf,
    /// Fixed in tests so the output is reproducible; the wall clock otherwise.
    clock: Option<SystemTime>,
    started_at: Option<DateTime<Utc>>,
    started: Option<Instant>,
    session: Option<SessionStart>,
    summary: Summary,
    scenarios: Vec<ScenarioRecord>,
    scenario_index: HashMap<String, usize>,
    /// Steps started and not finished yet, by test id: where their notes and progress go.
    running: HashMap<String, (usize, usize)>,
    created: usize,
    deleted: Vec<ResourceRef>,
    teardown_ledgered: Option<usize>,
    teardown_finished: bool,
    /// What teardown did not touch, with why (not the run's object, or still needed by another session).
    left_alone: Vec<(ResourceRef, String)>,
}

struct ScenarioRecord {
    name: String,
    started: bool,
    finished: bool,
    steps: Vec<StepRecord>,
}

struct StepRecord {
    id: String,
    step: String,
    result: Option<StepResult>,
    notes: Vec<String>,
    notes_dropped: usize,
    vms: Vec<VmRecord>,
    /// The checks the step ran (`ChecksRan`; names from the engine's check table).
    checks: Vec<CheckRun>,
    /// Where each VM's time went, from the Plan's status when the migration ended.
    timelines: Vec<Timeline>,
}

struct StepResult {
    outcome: StepOutcome,
    duration: Duration,
    diagnostics: Option<String>,
}

struct VmRecord {
    vm: String,
    /// The pipeline steps (or VM phases) seen, in order, without repeats in a row.
    pipeline: Vec<String>,
    percent: Option<f64>,
}

impl StepRecord {
    /// A step just seen, with nothing recorded yet.
    fn new(id: &str, step: &str) -> Self {
        StepRecord {
            id: id.to_string(),
            step: step.to_string(),
            result: None,
            notes: Vec::new(),
            notes_dropped: 0,
            checks: Vec::new(),
            vms: Vec::new(),
            timelines: Vec::new(),
        }
    }

    fn note(&mut self, message: &str) {
        if self.notes.last().is_some_and(|last| last == message) {
            return;
        }
        if self.notes.len() < MAX_NOTES_PER_STEP {
            self.notes.push(message.to_string());
        } else {
            self.notes_dropped += 1;
        }
    }

    fn progress(&mut self, progress: &VmProgress) {
        let index = match self.vms.iter().position(|vm| vm.vm == progress.vm) {
            Some(index) => index,
            None => {
                self.vms.push(VmRecord {
                    vm: progress.vm.clone(),
                    pipeline: Vec::new(),
                    percent: None,
                });
                self.vms.len() - 1
            }
        };
        let vm = &mut self.vms[index];
        if vm.pipeline.last() != Some(&progress.pipeline_step)
            && vm.pipeline.len() < MAX_PIPELINE_STEPS_PER_VM
        {
            vm.pipeline.push(progress.pipeline_step.clone());
        }
        if progress.percent.is_some() {
            vm.percent = progress.percent;
        }
    }
}

/// How a scenario (or a step) ended, worst first: the order the page lists scenarios in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Failed,
    Error,
    /// Stopped by Ctrl-C or a signal; reported so (an `Interrupted` outcome).
    Interrupted,
    Unfinished,
    Passed,
    Xfailed,
    Skipped,
}

impl Verdict {
    fn of(outcome: Option<&StepOutcome>) -> Self {
        match outcome {
            Some(StepOutcome::Passed) => Verdict::Passed,
            Some(StepOutcome::Failed { .. }) => Verdict::Failed,
            Some(StepOutcome::Error { .. }) => Verdict::Error,
            Some(StepOutcome::Interrupted { .. }) => Verdict::Interrupted,
            Some(StepOutcome::Xfailed { .. }) => Verdict::Xfailed,
            Some(StepOutcome::Skipped { .. }) => Verdict::Skipped,
            None => Verdict::Unfinished,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Failed => "FAILED",
            Verdict::Error => "ERROR",
            Verdict::Interrupted => "INTERRUPTED",
            Verdict::Unfinished => "NOT FINISHED",
            Verdict::Passed => "PASSED",
            Verdict::Xfailed => "XFAIL",
            Verdict::Skipped => "SKIPPED",
        }
    }

    /// The CSS class that colours it.
    fn class(self) -> &'static str {
        match self {
            Verdict::Failed => "o-failed",
            Verdict::Error => "o-error",
            Verdict::Interrupted | Verdict::Unfinished => "o-unfinished",
            Verdict::Passed => "o-passed",
            Verdict::Xfailed => "o-xfailed",
            Verdict::Skipped => "o-skipped",
        }
    }

    fn is_problem(self) -> bool {
        matches!(
            self,
            Verdict::Failed | Verdict::Error | Verdict::Interrupted | Verdict::Unfinished
        )
    }
}

impl ScenarioRecord {
    /// The worst step decides, except that a passed step outweighs skips and expected failures;
    /// a scenario that started and never finished is unfinished unless a step failed.
    fn verdict(&self) -> Verdict {
        let steps = self
            .steps
            .iter()
            .map(|step| Verdict::of(step.result.as_ref().map(|r| &r.outcome)));
        let worst = steps.min().unwrap_or(Verdict::Skipped);
        if worst.is_problem() {
            worst
        } else if self.started && !self.finished {
            Verdict::Unfinished
        } else {
            worst
        }
    }

    /// Its steps' counts in pytest's words (`1 failed, 3 xfailed`), from the same summary logic
    /// as the run's.
    fn counts(&self) -> Summary {
        let mut counts = Summary::new();
        for step in &self.steps {
            if let Some(result) = &step.result {
                counts.record_step(&step.id, &result.outcome, None);
            }
        }
        counts
    }

    fn duration(&self) -> Duration {
        self.steps
            .iter()
            .filter_map(|step| step.result.as_ref())
            .map(|result| result.duration)
            .sum()
    }
}

impl HtmlReport {
    /// The report will be written to `path` (usually `<results>/report.html`); diagnostics
    /// bundles are linked relative to its directory.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            clock: None,
            started_at: None,
            started: None,
            session: None,
            summary: Summary::new(),
            scenarios: Vec::new(),
            scenario_index: HashMap::new(),
            running: HashMap::new(),
            created: 0,
            deleted: Vec::new(),
            teardown_ledgered: None,
            teardown_finished: false,
            left_alone: Vec::new(),
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

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Writes the page as it stands now.
    pub fn write_html(&self, out: &mut impl Write) -> io::Result<()> {
        let page = Page {
            report: self,
            summary: self.summary.at_end(self.started),
            report_dir: self.path.parent().unwrap_or(Path::new("")),
        };
        page.write(out)
    }

    fn scenario_mut(&mut self, scenario: &str) -> (usize, &mut ScenarioRecord) {
        let index = match self.scenario_index.get(scenario) {
            Some(index) => *index,
            None => {
                self.scenarios.push(ScenarioRecord {
                    name: scenario.to_string(),
                    started: false,
                    finished: false,
                    steps: Vec::new(),
                });
                let index = self.scenarios.len() - 1;
                self.scenario_index.insert(scenario.to_string(), index);
                index
            }
        };
        (index, &mut self.scenarios[index])
    }

    /// Where the step `id` of `scenario` is recorded, adding it when it is new.
    fn step_at(&mut self, scenario: &str, id: &str, step: &str) -> (usize, usize) {
        let (scenario_index, record) = self.scenario_mut(scenario);
        let step_index = match record.steps.iter().position(|known| known.id == id) {
            Some(index) => index,
            None => {
                record.steps.push(StepRecord::new(id, step));
                record.steps.len() - 1
            }
        };
        (scenario_index, step_index)
    }

    fn running_step(&mut self, id: &str) -> Option<&mut StepRecord> {
        let (scenario, step) = *self.running.get(id)?;
        Some(&mut self.scenarios[scenario].steps[step])
    }
}

impl Reporter for HtmlReport {
    fn handle(&mut self, event: &Event) {
        self.summary.record(event);
        match event {
            Event::SessionStarted(start) => {
                self.started = Some(Instant::now());
                self.started_at = Some(self.clock.unwrap_or_else(SystemTime::now).into());
                self.session = Some(start.clone());
            }
            Event::ResourceCreated { .. } => self.created += 1,
            Event::ResourceDeleted { resource } => self.deleted.push(resource.clone()),
            Event::ScenarioStarted { scenario } => self.scenario_mut(scenario).1.started = true,
            Event::StepStarted { id, scenario, step } => {
                let at = self.step_at(scenario, id, step);
                self.running.insert(id.clone(), at);
            }
            Event::StepNote { id, message } => {
                if let Some(step) = self.running_step(id) {
                    step.note(message);
                }
            }
            Event::MigrationProgress { id, vms } => {
                if let Some(step) = self.running_step(id) {
                    for vm in vms {
                        step.progress(vm);
                    }
                }
            }
            Event::ChecksRan { id, checks } => {
                if let Some(step) = self.running_step(id) {
                    step.checks = checks.clone();
                }
            }
            Event::StepFinished(end) => {
                let (scenario_index, step_index) = match self.running.remove(&end.id) {
                    Some(at) => at,
                    None => self.step_at(&end.scenario, &end.id, &end.step),
                };
                self.scenarios[scenario_index].steps[step_index].result = Some(StepResult {
                    outcome: end.outcome.clone(),
                    duration: end.duration,
                    diagnostics: end.diagnostics.clone(),
                });
            }
            Event::VmTimeline {
                id,
                plan,
                vm,
                phases,
            } => {
                if let Some(step) = self.running_step(id) {
                    step.timelines.push(Timeline {
                        plan: plan.clone(),
                        vm: vm.clone(),
                        phases: phases.clone(),
                    });
                }
            }
            Event::ScenarioFinished { scenario } => self.scenario_mut(scenario).1.finished = true,
            Event::TeardownStarted { resources } => self.teardown_ledgered = Some(*resources),
            Event::TeardownFinished { .. } => self.teardown_finished = true,
            Event::ResourceLeftAlone { resource, reason } => {
                self.left_alone.push((resource.clone(), reason.clone()));
            }
            Event::TeardownNote { .. } => {}
            // The steps an unreachable API server failed carry that cause in their messages.
            Event::SessionFinished { .. }
            | Event::ApiNotAnswering { .. }
            | Event::ApiAnswering { .. } => {}
        }
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        write_atomically(&self.path, |out| self.write_html(out)).map_err(|source| {
            ReportError::File {
                what: "the HTML report",
                path: self.path.clone(),
                source,
            }
        })
    }
}

/// Text for HTML content and attribute values: `&`, `<`, `>`, `"` and `'` escaped as it is written.
pub(crate) struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

pub(crate) fn esc(text: &str) -> Esc<'_> {
    Esc(text)
}

/// A path as a URL path: every byte outside the unreserved set and `/` percent-encoded, so a
/// `:` or `#` in a name never reads as a scheme or a fragment.
fn url_path(path: &str) -> String {
    let mut url = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

/// The link to a diagnostics bundle: relative to the report's directory when the bundle is inside
/// it (`results/<test id>` from `results/report.html` is `<test id>/`), a `file://` URL when the
/// path is absolute elsewhere, none when it is relative to somewhere the page cannot know.
fn diagnostics_href(report_dir: &Path, bundle: &str) -> Option<String> {
    let bundle = Path::new(bundle);
    if let Ok(inside) = bundle.strip_prefix(report_dir) {
        let segments: Vec<String> = inside
            .components()
            .map(|component| match component {
                Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
                Component::CurDir => Some(".".to_string()),
                _ => None,
            })
            .collect::<Option<_>>()?;
        if segments.is_empty() {
            return None;
        }
        let relative = url_path(&format!("{}/", segments.join("/")));
        // `./` keeps a first segment with a colon from reading as a scheme, even unencoded.
        return Some(format!("./{relative}"));
    }
    if bundle.is_absolute() {
        let path = bundle.to_string_lossy();
        let path = path.trim_end_matches('/');
        return Some(format!("file://{}/", url_path(path)));
    }
    None
}

/// The whole page, rendered from one report and its final summary.
struct Page<'a> {
    report: &'a HtmlReport,
    summary: Summary,
    report_dir: &'a Path,
}

/// The run's verdict word and CSS class for the headline.
fn headline_verdict(summary: &Summary) -> (&'static str, &'static str) {
    match summary.session_exit_code {
        None => ("DID NOT FINISH", "o-unfinished"),
        Some(EXIT_OK) => ("PASSED", "o-passed"),
        Some(EXIT_TEST_FAILED) => ("FAILED", "o-failed"),
        Some(EXIT_LEFTOVERS) => ("LEFTOVERS", "o-xfailed"),
        Some(EXIT_INTERRUPTED) => ("INTERRUPTED", "o-unfinished"),
        Some(EXIT_TERMINATED) => ("INTERRUPTED (SIGTERM)", "o-unfinished"),
        Some(EXIT_HANGUP) => ("INTERRUPTED (SIGHUP)", "o-unfinished"),
        Some(_) => ("FAILED", "o-failed"),
    }
}

impl Page<'_> {
    fn write(&self, out: &mut impl Write) -> io::Result<()> {
        self.head(out)?;
        writeln!(out, "<body>\n<main>")?;
        self.headline(out)?;
        self.contents(out)?;
        self.short_summary(out)?;
        self.scenarios(out)?;
        self.skipped(out)?;
        self.teardown(out)?;
        writeln!(
            out,
            "<footer>Written by mtv-tests from the run&#39;s event stream (the events of the JSON \
             event log); it holds nothing the events do not carry.</footer>"
        )?;
        writeln!(out, "</main>\n</body>\n</html>")
    }

    fn head(&self, out: &mut impl Write) -> io::Result<()> {
        let (verdict, _) = headline_verdict(&self.summary);
        let session = self
            .report
            .session
            .as_ref()
            .map(|s| s.session_id.as_str())
            .filter(|id| !id.is_empty());
        writeln!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        )?;
        write!(
            out,
            "<title>mtv-tests {verdict}: {}",
            esc(&self.summary.counts_line())
        )?;
        if let Some(session) = session {
            write!(out, " (session {})", esc(session))?;
        }
        writeln!(out, "</title>\n<style>\n{STYLE}</style>\n</head>")
    }

    fn headline(&self, out: &mut impl Write) -> io::Result<()> {
        let summary = &self.summary;
        let (verdict, class) = headline_verdict(summary);
        writeln!(
            out,
            "<header class=\"headline {class}\">\n<p class=\"product\">mtv-tests run report</p>"
        )?;
        write!(out, "<h1><span class=\"verdict\">{verdict}</span> ")?;
        match summary.session_exit_code {
            Some(code) => write!(
                out,
                "<span class=\"exit\">exit {code}: {}</span>",
                esc(exit_meaning(code))
            )?,
            None => write!(
                out,
                "<span class=\"exit\">no session_finished event: the run ended early \
                 (its outcome so far would exit {})</span>",
                summary.exit_code()
            )?,
        }
        writeln!(out, "</h1>")?;
        writeln!(
            out,
            "<p class=\"last-line\">{} in {}</p>",
            esc(&summary.counts_line()),
            esc(&session_duration(summary.duration))
        )?;
        writeln!(out, "<div class=\"counts\">")?;
        for (count, word, class) in [
            (summary.failed, "failed", "o-failed"),
            (summary.passed, "passed", "o-passed"),
            (summary.skipped, "skipped", "o-skipped"),
            (summary.xfailed, "xfailed", "o-xfailed"),
            (summary.errors, "errors", "o-error"),
            (summary.leftovers.len(), "leftovers", "o-failed"),
        ] {
            let zero = if count == 0 { " zero" } else { "" };
            writeln!(
                out,
                "<div class=\"count {class}{zero}\"><b>{count}</b>{word}</div>"
            )?;
        }
        writeln!(out, "</div>")?;

        writeln!(out, "<dl class=\"facts\">")?;
        let mut fact = |name: &str, value: &dyn fmt::Display| -> io::Result<()> {
            writeln!(out, "<dt>{name}</dt><dd>{value}</dd>")
        };
        match self.report.started_at {
            Some(at) => fact(
                "Started",
                &format_args!(
                    "<time datetime=\"{}\">{}</time>",
                    at.format("%Y-%m-%dT%H:%M:%SZ"),
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                ),
            )?,
            None => fact("Started", &"unknown (no session_started event)")?,
        }
        fact(
            "Wall time",
            &esc(&session_duration(summary.duration)).to_string(),
        )?;
        if let Some(session) = &self.report.session {
            // The API server's URL, also for a lab (one code path: a lab is a cluster).
            fact(
                "Target",
                &format_args!("cluster <code>{}</code>", esc(&session.target)),
            )?;
            if session.session_id.is_empty() {
                fact("Session", &"none (nothing was created on the cluster)")?;
            } else {
                fact(
                    "Session",
                    &format_args!("<code>{}</code>", esc(&session.session_id)),
                )?;
            }
            fact(
                "Source provider",
                &format_args!(
                    "<code>{}</code> (type {})",
                    esc(&session.source_provider),
                    esc(&session.provider_type)
                ),
            )?;
            fact(
                "MTV version",
                &esc(session.mtv_version.as_deref().unwrap_or("unknown")),
            )?;
            fact(
                "Storage class",
                &format_args!("<code>{}</code>", esc(&session.storage_class)),
            )?;
            fact(
                "Items",
                &format_args!("{} collected, {} reported", session.items, summary.total()),
            )?;
        }
        writeln!(out, "</dl>\n</header>")
    }

    fn contents(&self, out: &mut impl Write) -> io::Result<()> {
        let summary = &self.summary;
        writeln!(out, "<nav>")?;
        if !summary.failures.is_empty() || !summary.xfail_reasons.is_empty() {
            writeln!(out, "<a href=\"#summary\">Short test summary</a>")?;
        }
        writeln!(
            out,
            "<a href=\"#scenarios\">Scenarios ({})</a>",
            self.report.scenarios.len()
        )?;
        if !summary.skip_reasons.is_empty() {
            writeln!(
                out,
                "<a href=\"#skipped\">Skipped ({})</a>",
                summary.skipped
            )?;
        }
        let teardown_class = if summary.leftovers.is_empty() {
            ""
        } else {
            " class=\"alert\""
        };
        writeln!(
            out,
            "<a href=\"#teardown\"{teardown_class}>Teardown</a>\n</nav>"
        )
    }

    /// pytest's short test summary: every failure with its message, then the expected failures
    /// counted per reason (skips have their own section).
    fn short_summary(&self, out: &mut impl Write) -> io::Result<()> {
        let summary = &self.summary;
        if summary.failures.is_empty() && summary.xfail_reasons.is_empty() {
            return Ok(());
        }
        let anchors = self.step_anchors();
        writeln!(
            out,
            "<section id=\"summary\">\n<h2>Short test summary</h2>\n<ul class=\"short\">"
        )?;
        for failure in &summary.failures {
            let class = match failure.kind {
                crate::FailureKind::Failed => "o-failed",
                crate::FailureKind::Error => "o-error",
                crate::FailureKind::Interrupted => "o-unfinished",
            };
            write!(
                out,
                "<li><span class=\"badge {class}\">{}</span> ",
                failure.kind.label()
            )?;
            match anchors.get(failure.id.as_str()) {
                Some(anchor) => write!(
                    out,
                    "<a class=\"id\" href=\"#{anchor}\">{}</a>",
                    esc(&failure.id)
                )?,
                None => write!(out, "<code class=\"id\">{}</code>", esc(&failure.id))?,
            }
            self.message(out, &failure.message)?;
            if let Some(bundle) = &failure.diagnostics {
                self.diagnostics(out, bundle)?;
            }
            writeln!(out, "</li>")?;
        }
        for (reason, count) in &summary.xfail_reasons {
            writeln!(
                out,
                "<li><span class=\"badge o-xfailed\">XFAIL</span> <span class=\"n\">[{count}]</span> {}</li>",
                esc(reason)
            )?;
        }
        writeln!(out, "</ul>\n</section>")
    }

    /// The anchor of each reported step, by test id.
    fn step_anchors(&self) -> HashMap<&str, String> {
        let mut anchors = HashMap::new();
        for (s, scenario) in self.report.scenarios.iter().enumerate() {
            for (i, step) in scenario.steps.iter().enumerate() {
                anchors.insert(step.id.as_str(), format!("step-{s}-{i}"));
            }
        }
        anchors
    }

    /// A failure message; `test_check_vms` joins its problems with ` | `, one per line here.
    fn message(&self, out: &mut impl Write, message: &str) -> io::Result<()> {
        write!(out, "<pre class=\"message\">")?;
        for (index, part) in message.split(" | ").enumerate() {
            if index > 0 {
                writeln!(out)?;
            }
            write!(out, "{}", esc(part))?;
        }
        write!(out, "</pre>")
    }

    fn diagnostics(&self, out: &mut impl Write, bundle: &str) -> io::Result<()> {
        let shown = format!("{}/", bundle.trim_end_matches('/'));
        write!(out, "<p class=\"bundle\">Diagnostics bundle: ")?;
        match diagnostics_href(self.report_dir, bundle) {
            Some(href) => write!(out, "<a href=\"{}\">{}</a>", esc(&href), esc(&shown))?,
            None => write!(out, "<code>{}</code>", esc(&shown))?,
        }
        write!(out, "</p>")
    }

    fn scenarios(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "<section id=\"scenarios\">\n<h2>Scenarios</h2>")?;
        let scenarios = &self.report.scenarios;
        if scenarios.is_empty() {
            writeln!(out, "<p class=\"muted\">No scenario reported a step.</p>")?;
        }
        let verdicts: Vec<Verdict> = scenarios.iter().map(ScenarioRecord::verdict).collect();
        let groups: [(&str, &[Verdict]); 6] = [
            ("Failed scenarios", &[Verdict::Failed, Verdict::Error]),
            ("Interrupted scenarios", &[Verdict::Interrupted]),
            ("Unfinished scenarios", &[Verdict::Unfinished]),
            ("Passed scenarios", &[Verdict::Passed]),
            ("Scenarios with expected failures only", &[Verdict::Xfailed]),
            ("Skipped scenarios", &[Verdict::Skipped]),
        ];
        for (title, members_of) in groups {
            let members: Vec<usize> = (0..scenarios.len())
                .filter(|&index| members_of.contains(&verdicts[index]))
                .collect();
            if members.is_empty() {
                continue;
            }
            writeln!(out, "<h3>{title} ({})</h3>", members.len())?;
            for index in members {
                self.scenario(out, index, verdicts[index])?;
            }
        }
        writeln!(out, "</section>")
    }

    fn scenario(&self, out: &mut impl Write, index: usize, verdict: Verdict) -> io::Result<()> {
        let scenario = &self.report.scenarios[index];
        let open = if verdict.is_problem() { " open" } else { "" };
        let class = verdict.class();
        writeln!(
            out,
            "<details class=\"scenario {class}\" id=\"scenario-{index}\"{open}>"
        )?;
        write!(
            out,
            "<summary><span class=\"badge {class}\">{}</span> ",
            verdict.label()
        )?;
        let (class_name, param) = split_scenario(&scenario.name);
        write!(out, "<code class=\"name\">{}", esc(class_name))?;
        if let Some(param) = param {
            write!(out, "<span class=\"param\">[{}]</span>", esc(param))?;
        }
        let steps = scenario.steps.len();
        let noun = if steps == 1 { "step" } else { "steps" };
        writeln!(
            out,
            "</code> <span class=\"meta\">{steps} {noun}: {} · {}</span></summary>",
            esc(&scenario.counts().counts_line()),
            esc(&step_duration(scenario.duration()))
        )?;
        if scenario.started && !scenario.finished {
            writeln!(
                out,
                "<p class=\"warning\">The scenario did not finish: the run ended while it ran.</p>"
            )?;
        }
        writeln!(
            out,
            "<table class=\"steps\">\n<thead><tr><th>#</th><th>step</th><th>outcome</th>\
             <th>time</th><th>details</th></tr></thead>\n<tbody>"
        )?;
        for (number, step) in scenario.steps.iter().enumerate() {
            self.step(out, index, number, step)?;
        }
        writeln!(out, "</tbody>\n</table>\n</details>")
    }

    fn step(
        &self,
        out: &mut impl Write,
        scenario: usize,
        number: usize,
        step: &StepRecord,
    ) -> io::Result<()> {
        let outcome = step.result.as_ref().map(|result| &result.outcome);
        let verdict = Verdict::of(outcome);
        let class = verdict.class();
        let time = step
            .result
            .as_ref()
            .map(|result| step_duration(result.duration))
            .unwrap_or_default();
        write!(
            out,
            "<tr id=\"step-{scenario}-{number}\" class=\"{class}\" title=\"{}\">\
             <td class=\"n\">{}</td><td><code>{}</code></td>\
             <td><span class=\"badge {class}\">{}</span></td><td class=\"time\">{time}</td><td>",
            esc(&step.id),
            number + 1,
            esc(&step.step),
            verdict.label()
        )?;
        match outcome {
            Some(
                StepOutcome::Failed { message }
                | StepOutcome::Error { message }
                | StepOutcome::Interrupted { message },
            ) => {
                self.message(out, message)?;
            }
            Some(StepOutcome::Xfailed { reason } | StepOutcome::Skipped { reason }) => {
                write!(out, "<p class=\"reason\">{}</p>", esc(reason))?;
            }
            Some(StepOutcome::Passed) => {}
            None => write!(
                out,
                "<p class=\"reason\">Started, never finished: the run ended while it ran.</p>"
            )?,
        }
        if let Some(bundle) = step.result.as_ref().and_then(|r| r.diagnostics.as_deref()) {
            self.diagnostics(out, bundle)?;
        }
        if !step.vms.is_empty() {
            let failure = match outcome {
                Some(StepOutcome::Failed { message } | StepOutcome::Error { message }) => {
                    Some(message.as_str())
                }
                _ => None,
            };
            self.vms(out, step, failure)?;
        }
        if !step.checks.is_empty() {
            write!(out, "<p class=\"checks\">checks: ")?;
            for (index, check) in step.checks.iter().enumerate() {
                let separator = if index == 0 { "" } else { ", " };
                write!(out, "{separator}<code>{}</code>", esc(&check.check))?;
            }
            write!(out, "</p>")?;
        }
        crate::timeline::write_svg(out, &step.timelines)?;
        if !step.notes.is_empty() {
            write!(out, "<ul class=\"notes\">")?;
            for note in &step.notes {
                write!(out, "<li>{}</li>", esc(note))?;
            }
            if step.notes_dropped > 0 {
                write!(
                    out,
                    "<li class=\"muted\">{} later notes not kept</li>",
                    step.notes_dropped
                )?;
            }
            write!(out, "</ul>")?;
        }
        writeln!(out, "</td></tr>")
    }

    /// Each VM of a migration: the pipeline steps it went through and its last disk progress. When
    /// the step's failure message names the VM, the last of its pipeline steps the message names
    /// is where it failed, and is marked (the last one seen may be a final phase like `Completed`).
    fn vms(
        &self,
        out: &mut impl Write,
        step: &StepRecord,
        failure: Option<&str>,
    ) -> io::Result<()> {
        write!(
            out,
            "<table class=\"vms\"><thead><tr><th>VM</th><th>pipeline steps seen</th>\
             <th>disks</th></tr></thead><tbody>"
        )?;
        for vm in &step.vms {
            write!(out, "<tr><td><code>{}</code></td><td>", esc(&vm.vm))?;
            let failed_at =
                failure
                    .filter(|message| message.contains(&vm.vm))
                    .and_then(|message| {
                        vm.pipeline
                            .iter()
                            .rposition(|pipeline_step| message.contains(pipeline_step.as_str()))
                    });
            for (index, pipeline_step) in vm.pipeline.iter().enumerate() {
                if index > 0 {
                    write!(out, " → ")?;
                }
                if failed_at == Some(index) {
                    write!(
                        out,
                        "<span class=\"stopped\" title=\"where the VM failed\">{}</span>",
                        esc(pipeline_step)
                    )?;
                } else {
                    write!(out, "{}", esc(pipeline_step))?;
                }
            }
            write!(out, "</td><td class=\"time\">")?;
            if let Some(percent) = vm.percent {
                write!(out, "{percent:.0}%")?;
            }
            write!(out, "</td></tr>")?;
        }
        write!(out, "</tbody></table>")
    }

    /// Skipped items grouped by reason, as pytest's short summary counts them, with their ids.
    fn skipped(&self, out: &mut impl Write) -> io::Result<()> {
        let reasons = &self.summary.skip_reasons;
        if reasons.is_empty() {
            return Ok(());
        }
        let mut ids: HashMap<&str, Vec<&str>> = HashMap::new();
        for step in self.report.scenarios.iter().flat_map(|s| &s.steps) {
            if let Some(StepOutcome::Skipped { reason }) = step.result.as_ref().map(|r| &r.outcome)
            {
                ids.entry(reason.as_str()).or_default().push(&step.id);
            }
        }
        writeln!(
            out,
            "<section id=\"skipped\">\n<h2>Skipped items by reason ({})</h2>",
            self.summary.skipped
        )?;
        for (reason, count) in reasons {
            writeln!(
                out,
                "<details class=\"group\"><summary><span class=\"badge o-skipped\">SKIPPED</span> \
                 <span class=\"n\">[{count}]</span> {}</summary>\n<ul class=\"ids\">",
                esc(reason)
            )?;
            for id in ids.get(reason.as_str()).into_iter().flatten() {
                writeln!(out, "<li><code>{}</code></li>", esc(id))?;
            }
            writeln!(out, "</ul></details>")?;
        }
        writeln!(out, "</section>")
    }

    fn teardown(&self, out: &mut impl Write) -> io::Result<()> {
        let report = self.report;
        let leftovers = &self.summary.leftovers;
        writeln!(out, "<section id=\"teardown\">\n<h2>Teardown</h2>")?;
        let created = match report.created {
            1 => "1 object".to_string(),
            n => format!("{n} objects"),
        };
        match report.teardown_ledgered {
            None if report.created == 0 => {
                writeln!(out, "<p>No teardown: the run created no objects.</p>")?
            }
            None => writeln!(
                out,
                "<p class=\"warning\">Teardown did not run (<code>--skip-teardown</code>, or the \
                 run ended before it): what the run created ({created}) is still there; \
                 <code>mtv-tests clean --ledger</code> with this run&#39;s \
                 <code>resources.json</code> removes it.</p>"
            )?,
            Some(ledgered) => {
                writeln!(
                    out,
                    "<p>The run created {created}; teardown had {ledgered} resources in its \
                     ledger, deleted {} and left {} behind.</p>",
                    report.deleted.len(),
                    leftovers.len()
                )?;
                if !report.teardown_finished {
                    writeln!(
                        out,
                        "<p class=\"warning\">Teardown did not finish: what it had not deleted \
                         yet may still be there.</p>"
                    )?;
                }
            }
        }
        if !leftovers.is_empty() {
            writeln!(
                out,
                "<div class=\"leftovers\">\n<h3>Left behind ({})</h3>\n<ul>",
                leftovers.len()
            )?;
            for resource in leftovers {
                resource_item(out, resource)?;
            }
            writeln!(
                out,
                "</ul>\n<p><code>mtv-tests clean --ledger</code> with this run&#39;s \
                 <code>resources.json</code> removes them.</p>\n</div>"
            )?;
        }
        if !report.left_alone.is_empty() {
            writeln!(
                out,
                "<h3>Left alone ({})</h3>\n<ul class=\"ids\">",
                report.left_alone.len()
            )?;
            for (resource, reason) in &report.left_alone {
                writeln!(
                    out,
                    "<li><code>{}</code> ({}): {}</li>",
                    esc(&resource.to_string()),
                    esc(&resource.api_version),
                    esc(reason)
                )?;
            }
            writeln!(out, "</ul>")?;
        }
        if !report.deleted.is_empty() {
            let mut kinds: Vec<(&str, usize)> = Vec::new();
            for resource in &report.deleted {
                match kinds.iter_mut().find(|(kind, _)| *kind == resource.kind) {
                    Some((_, count)) => *count += 1,
                    None => kinds.push((&resource.kind, 1)),
                }
            }
            let by_kind: Vec<String> = kinds
                .iter()
                .map(|(kind, count)| format!("{count} {kind}"))
                .collect();
            writeln!(
                out,
                "<details class=\"group\"><summary>Deleted ({}): {}</summary>\n<ul class=\"ids\">",
                report.deleted.len(),
                esc(&by_kind.join(", "))
            )?;
            for resource in &report.deleted {
                resource_item(out, resource)?;
            }
            writeln!(out, "</ul></details>")?;
        }
        writeln!(out, "</section>")
    }
}

fn resource_item(out: &mut impl Write, resource: &ResourceRef) -> io::Result<()> {
    writeln!(
        out,
        "<li><code>{}</code> <span class=\"muted\">{}</span></li>",
        esc(&resource.to_string()),
        esc(&resource.api_version)
    )
}

const STYLE: &str = r#":root {
  --pass: #1a7f37; --fail: #cf222e; --error: #a40e26; --xfail: #9a6700; --skip: #57606a;
  --unfinished: #8250df; --line: #d0d7de; --muted: #57606a; --soft: #f6f8fa; --text: #1f2328;
}
* { box-sizing: border-box; }
body { margin: 0; color: var(--text); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px; }
code, pre, .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  font-size: 13px; }
a { color: #0969da; }
h2 { font-size: 20px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 8px; }
.o-passed { --c: var(--pass); } .o-failed { --c: var(--fail); } .o-error { --c: var(--error); }
.o-xfailed { --c: var(--xfail); } .o-skipped { --c: var(--skip); } .o-unfinished { --c: var(--unfinished); }
.headline { border-left: 10px solid var(--c); background: var(--soft); padding: 16px 20px; border-radius: 6px; }
.headline .product { margin: 0 0 2px; color: var(--muted); font-size: 13px; font-weight: 600;
  letter-spacing: .04em; text-transform: uppercase; }
.headline h1 { margin: 0; font-size: 24px; font-weight: 600; }
.headline .verdict { color: var(--c); margin-right: 8px; }
.headline .exit { font-size: 16px; font-weight: 400; color: var(--muted); }
.last-line { margin: 4px 0 12px; }
.counts { display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 16px; }
.count { min-width: 100px; padding: 6px 12px; text-align: center; background: #fff;
  border: 1px solid var(--line); border-top: 4px solid var(--c); border-radius: 6px; color: var(--muted); }
.count b { display: block; font-size: 24px; line-height: 1.2; color: var(--c); }
.count.zero { border-top-color: var(--line); }
.count.zero b { color: var(--muted); font-weight: 400; }
dl.facts { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 4px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
nav { display: flex; flex-wrap: wrap; gap: 16px; margin: 16px 0; padding: 8px 0; border-bottom: 1px solid var(--line); }
nav a { text-decoration: none; font-weight: 600; }
nav a.alert { color: var(--fail); }
.badge { display: inline-block; white-space: nowrap; min-width: 84px; padding: 0 6px; border-radius: 4px; text-align: center;
  font: 600 12px/20px ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  color: #fff; background: var(--c); vertical-align: baseline; }
ul.short { list-style: none; padding: 0; margin: 0; }
ul.short li { padding: 8px 0; border-bottom: 1px solid var(--line); }
ul.short .id { margin-left: 4px; font-weight: 600; }
.n { color: var(--muted); font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre.message { white-space: pre-wrap; overflow-wrap: anywhere; margin: 6px 0 0; padding: 8px 10px;
  background: #fff5f5; border: 1px solid #ffcecb; border-radius: 4px; color: #82071e; }
.bundle { margin: 6px 0 0; }
.reason { margin: 0; color: var(--muted); }
details.scenario { margin: 8px 0; border: 1px solid var(--line); border-left: 6px solid var(--c); border-radius: 6px; }
details.scenario > summary { padding: 8px 12px; cursor: pointer; }
details.scenario[open] > summary { background: var(--soft); border-bottom: 1px solid var(--line); }
summary .name { font-size: 14px; font-weight: 600; }
summary .param { color: #0550ae; }
summary .meta { color: var(--muted); margin-left: 8px; }
table { border-collapse: collapse; width: 100%; }
table.steps th, table.steps td { padding: 6px 10px; text-align: left; vertical-align: top;
  border-bottom: 1px solid var(--line); }
table.steps th:nth-child(1) { width: 2.5em; } table.steps th:nth-child(2) { width: 15em; }
table.steps th:nth-child(3) { width: 8em; } table.steps th:nth-child(4) { width: 5.5em; }
table.steps th { font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase; }
table.steps tr:last-child td { border-bottom: 0; }
table.steps td.n, table.steps td.time { white-space: nowrap; color: var(--muted); }
table.steps tr.o-failed > td:first-child, table.steps tr.o-error > td:first-child { box-shadow: inset 4px 0 var(--c); }
table.vms { margin-top: 8px; font-size: 13px; }
table.vms td:first-child { white-space: nowrap; width: 1%; }
table.vms th, table.vms td { padding: 2px 12px 2px 0; border: 0; text-transform: none; vertical-align: top; }
table.vms td:last-child { white-space: nowrap; width: 1%; }
figure.timeline { margin: 8px 0 0; overflow-x: auto; }
figure.timeline figcaption { font-size: 12px; color: var(--muted); }
figure.timeline .phase { white-space: nowrap; margin-right: 6px; }
figure.timeline .phase i { display: inline-block; width: 10px; height: 10px; margin-right: 3px; border-radius: 2px; vertical-align: -1px; }
.stopped { color: var(--fail); font-weight: 700; text-decoration: underline; }
ul.notes { margin: 6px 0 0; padding-left: 18px; color: var(--muted); font-size: 13px; }
details.scenario > .warning { margin: 8px 12px; }
details.group { margin: 6px 0; }
details.group > summary { cursor: pointer; }
ul.ids { margin: 4px 0 8px; padding-left: 28px; }
.leftovers { margin: 12px 0; padding: 8px 16px; border: 2px solid var(--fail); border-radius: 6px; background: #fff5f5; }
.leftovers h3 { margin: 4px 0; color: var(--fail); }
.warning { padding: 8px 12px; margin: 8px 0; border-radius: 4px; background: #fff8c5; border: 1px solid #d4a72c; }
.muted { color: var(--muted); }
footer { margin-top: 40px; padding-top: 8px; border-top: 1px solid var(--line); color: var(--muted); font-size: 13px; }
@media print { details.scenario > summary { background: none; } main { max-width: none; } }
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use mtv_events::StepEnd;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\"").to_string(),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(esc("plain").to_string(), "plain");
        assert_eq!(esc("é→").to_string(), "é→");
    }

    #[test]
    fn a_bundle_beside_the_report_is_linked_relative_to_it() {
        let dir = Path::new("results");
        assert_eq!(
            diagnostics_href(dir, "results/TestX_a_--test_migrate_vms").as_deref(),
            Some("./TestX_a_--test_migrate_vms/")
        );
        assert_eq!(
            diagnostics_href(Path::new(""), "results/TestX::y").as_deref(),
            Some("./results/TestX%3A%3Ay/")
        );
        assert_eq!(
            diagnostics_href(Path::new("/srv/results"), "/srv/results/T a#1").as_deref(),
            Some("./T%20a%231/")
        );
        assert_eq!(
            diagnostics_href(dir, "/tmp/elsewhere/T").as_deref(),
            Some("file:///tmp/elsewhere/T/")
        );
        assert_eq!(diagnostics_href(dir, "other/T"), None);
        assert_eq!(diagnostics_href(dir, "results"), None);
    }

    #[test]
    fn notes_are_kept_once_in_a_row_and_bounded() {
        let mut step = StepRecord::new("T[a]::s", "s");
        step.note("waiting");
        step.note("waiting");
        assert_eq!(step.notes.len(), 1);
        for n in 0..MAX_NOTES_PER_STEP + 5 {
            step.note(&format!("note {n}"));
        }
        assert_eq!(step.notes.len(), MAX_NOTES_PER_STEP);
        assert_eq!(step.notes_dropped, 6);
    }

    #[test]
    fn a_step_lists_the_checks_it_ran() {
        let mut report = HtmlReport::new("results/report.html");
        let id = "T[a]::test_check_vms".to_string();
        report.handle(&Event::StepStarted {
            id: id.clone(),
            scenario: "T[a]".into(),
            step: "test_check_vms".into(),
        });
        report.handle(&Event::ChecksRan {
            id: id.clone(),
            checks: ["check_cpu", "check_memory"]
                .map(|check| CheckRun {
                    check: check.into(),
                    vms: vec!["rhel8".into()],
                })
                .to_vec(),
        });
        report.handle(&Event::StepFinished(StepEnd {
            id,
            scenario: "T[a]".into(),
            step: "test_check_vms".into(),
            outcome: StepOutcome::Passed,
            duration: Duration::from_secs(1),
            diagnostics: None,
        }));
        let mut page = Vec::new();
        report.write_html(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.contains("checks: <code>check_cpu</code>, <code>check_memory</code>"),
            "{page}"
        );
    }
}
