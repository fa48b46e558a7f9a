//! The terminal: a live view while the run goes (indicatif), or plain pytest -v lines when the
//! output is not a terminal; both end with a pytest-like summary.

use std::collections::HashMap;
use std::io::{IsTerminal, Stdout, Write};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mtv_events::{Event, StepEnd, StepOutcome, VmProgress};

use crate::summary::{session_duration, step_duration};
use crate::{ReportError, Reporter, Summary};

/// pytest's default width for its `=====` rules.
const RULE_WIDTH: usize = 80;

const OVERALL_TEMPLATE: &str =
    "{spinner:.green} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} steps {msg}";
const SCENARIO_TEMPLATE: &str = "  {wide_msg}";
const VM_TEMPLATE: &str = "      {prefix:20} {bar:20.green/white} {pos:>3}% {msg}";
/// A VM whose percentage is not known yet shows only its pipeline step, not an empty bar.
const VM_PENDING_TEMPLATE: &str = "      {prefix:20} {msg}";

/// How the console shows a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleMode {
    /// Progress bars for the running scenarios, finished steps printed above them.
    Live,
    /// One line per finished step, for logs and CI.
    Plain,
}

impl ConsoleMode {
    /// Live only on a terminal, and never when asked not to (`--no-progress`) or under CI.
    pub fn choose(no_progress: bool, ci: bool, stdout_is_terminal: bool) -> Self {
        if no_progress || ci || !stdout_is_terminal {
            ConsoleMode::Plain
        } else {
            ConsoleMode::Live
        }
    }

    /// [`ConsoleMode::choose`] with `CI` read from the environment (set and not `false`/`0`) and
    /// whether standard output is a terminal.
    pub fn detect(no_progress: bool) -> Self {
        let ci = std::env::var("CI")
            .map(|value| !matches!(value.trim(), "" | "0" | "false" | "False" | "FALSE"))
            .unwrap_or(false);
        Self::choose(no_progress, ci, std::io::stdout().is_terminal())
    }
}

/// The console on standard output in the chosen mode.
pub enum Console {
    Live(LiveConsole<Stdout>),
    Plain(PlainConsole<Stdout>),
}

impl Console {
    pub fn stdout(mode: ConsoleMode) -> Self {
        match mode {
            ConsoleMode::Live => Console::Live(LiveConsole::new(
                ProgressDrawTarget::stdout(),
                std::io::stdout(),
            )),
            ConsoleMode::Plain => Console::Plain(PlainConsole::new(std::io::stdout())),
        }
    }
}

impl Reporter for Console {
    fn handle(&mut self, event: &Event) {
        match self {
            Console::Live(console) => console.handle(event),
            Console::Plain(console) => console.handle(event),
        }
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        match self {
            Console::Live(console) => console.finish(),
            Console::Plain(console) => console.finish(),
        }
    }
}

/// A rule like pytest's: `===== title =====`, `RULE_WIDTH` wide.
fn rule(title: &str) -> String {
    // At least one `=` each side, as pytest does when the title is wider than the rule.
    let fill = (RULE_WIDTH.saturating_sub(title.chars().count() + 2) / 2).max(1);
    let mut line = format!("{} {title} {}", "=".repeat(fill), "=".repeat(fill));
    if line.chars().count() < RULE_WIDTH {
        line.push('=');
    }
    line
}

/// A finished step as pytest -v prints it, with the one-line reason when it did not pass.
fn step_line(id: &str, outcome: &StepOutcome, duration: Duration) -> String {
    let head = format!("{id} {} ({})", outcome.label(), step_duration(duration));
    match outcome {
        StepOutcome::Passed => head,
        StepOutcome::Failed { message }
        | StepOutcome::Error { message }
        | StepOutcome::Interrupted { message } => format!("{head} - {message}"),
        StepOutcome::Xfailed { reason } | StepOutcome::Skipped { reason } => {
            format!("{head} - {reason}")
        }
    }
}

fn teardown_line(resources: usize) -> String {
    let noun = if resources == 1 {
        "resource"
    } else {
        "resources"
    };
    format!("teardown: deleting {resources} {noun}")
}

/// The warning when the API server stops answering (and the line when it is back).
fn api_health_line(event: &Event) -> Option<String> {
    match event {
        Event::ApiNotAnswering {
            server,
            silent_for,
            last_error,
            waiting_for,
            giving_up_after,
        } => Some(format!(
            "warning: the API server {server} has not answered for {}s ({last_error}); waiting for: {}; still trying, for up to {}s (api_unreachable_timeout)",
            silent_for.as_secs(),
            waiting_for.join("; "),
            giving_up_after.as_secs()
        )),
        Event::ApiAnswering { server, silent_for } => Some(format!(
            "the API server {server} answers again (silent for {}s)",
            silent_for.as_secs()
        )),
        _ => None,
    }
}

/// The lines both consoles print for an event alike: the session header, a finished step (with where
/// its diagnostics bundle went), teardown, the API server's health; none for the rest.
fn event_lines(event: &Event) -> Vec<String> {
    if let Some(header) = session_header(event) {
        return header;
    }
    match event {
        Event::StepFinished(StepEnd {
            id,
            outcome,
            duration,
            diagnostics,
            ..
        }) => {
            let mut lines = vec![step_line(id, outcome, *duration)];
            if let Some(path) = diagnostics {
                lines.push(format!("    diagnostics: {path}"));
            }
            lines
        }
        Event::TeardownStarted { resources } => vec![teardown_line(*resources)],
        Event::TeardownNote { message } => vec![format!("teardown: {message}")],
        Event::ResourceLeftAlone { resource, reason } => {
            vec![format!("teardown: {resource} left alone: {reason}")]
        }
        other => api_health_line(other).into_iter().collect(),
    }
}

fn session_header(event: &Event) -> Option<Vec<String>> {
    let Event::SessionStarted(start) = event else {
        return None;
    };
    let noun = if start.items == 1 { "item" } else { "items" };
    Some(vec![
        rule("test session starts"),
        format!(
            "session: {}, target: {}, MTV: {}",
            start.session_id,
            start.target,
            start.mtv_version.as_deref().unwrap_or("unknown")
        ),
        format!(
            "source provider: {} ({}), storage class: {}",
            start.source_provider, start.provider_type, start.storage_class
        ),
        format!("collected {} {noun}", start.items),
        String::new(),
    ])
}

/// The pytest-like end of a run: the short test summary (FAILED/ERROR lines with their message,
/// XFAIL and SKIPPED counted per reason), the teardown leftovers, then the counts line.
pub fn write_summary(out: &mut impl Write, summary: &Summary) -> std::io::Result<()> {
    let has_short_summary = !summary.failures.is_empty()
        || !summary.xfail_reasons.is_empty()
        || !summary.skip_reasons.is_empty();
    if has_short_summary {
        writeln!(out, "{}", rule("short test summary info"))?;
        for failure in &summary.failures {
            writeln!(
                out,
                "{} {} - {}",
                failure.kind.label(),
                failure.id,
                failure.message
            )?;
        }
        for (reason, count) in &summary.xfail_reasons {
            writeln!(out, "XFAIL [{count}] {reason}")?;
        }
        for (reason, count) in &summary.skip_reasons {
            writeln!(out, "SKIPPED [{count}] {reason}")?;
        }
    }
    if !summary.leftovers.is_empty() {
        writeln!(out, "{}", rule("teardown leftovers"))?;
        for resource in &summary.leftovers {
            writeln!(out, "{resource} ({})", resource.api_version)?;
        }
    }
    writeln!(
        out,
        "{}",
        rule(&format!(
            "{} in {}",
            summary.counts_line(),
            session_duration(summary.duration)
        ))
    )
}

fn stream_error(source: std::io::Error) -> ReportError {
    ReportError::Stream {
        what: "to the console",
        source,
    }
}

/// The console as plain lines: the session header, one line per finished step (like pytest -v),
/// the teardown, then the summary. With [`PlainConsole::show_activity`], also step notes and each
/// VM's pipeline step as it changes (not percentages, which would flood a log).
pub struct PlainConsole<W: Write> {
    out: W,
    summary: Summary,
    started: Option<Instant>,
    show_activity: bool,
    pipeline_steps: HashMap<(String, String), String>,
    error: Option<std::io::Error>,
}

impl<W: Write> PlainConsole<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            summary: Summary::new(),
            started: None,
            show_activity: false,
            pipeline_steps: HashMap::new(),
            error: None,
        }
    }

    pub fn show_activity(mut self, show: bool) -> Self {
        self.show_activity = show;
        self
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn lines_for(&mut self, event: &Event) -> Vec<String> {
        if let Event::StepFinished(StepEnd { id, .. }) = event {
            self.pipeline_steps.retain(|(step_id, _), _| step_id != id);
        }
        match event {
            Event::StepNote { id, message } if self.show_activity => {
                vec![format!("    {id}: {message}")]
            }
            Event::MigrationProgress { id, vms } if self.show_activity => vms
                .iter()
                .filter_map(|vm| {
                    let key = (id.clone(), vm.vm.clone());
                    if self.pipeline_steps.get(&key) == Some(&vm.pipeline_step) {
                        return None;
                    }
                    self.pipeline_steps.insert(key, vm.pipeline_step.clone());
                    Some(format!("    {id}: {} {}", vm.vm, vm.pipeline_step))
                })
                .collect(),
            other => event_lines(other),
        }
    }

    fn write_lines(&mut self, lines: &[String]) -> std::io::Result<()> {
        for line in lines {
            writeln!(self.out, "{line}")?;
        }
        self.out.flush()
    }
}

impl<W: Write> Reporter for PlainConsole<W> {
    fn handle(&mut self, event: &Event) {
        if matches!(event, Event::SessionStarted { .. }) {
            self.started = Some(Instant::now());
        }
        self.summary.record(event);
        let lines = self.lines_for(event);
        if self.error.is_none()
            && let Err(error) = self.write_lines(&lines)
        {
            self.error = Some(error);
        }
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        if let Some(error) = self.error.take() {
            return Err(stream_error(error));
        }
        let summary = self.summary.at_end(self.started);
        writeln!(self.out)
            .and_then(|()| write_summary(&mut self.out, &summary))
            .and_then(|()| self.out.flush())
            .map_err(stream_error)
    }
}

/// What is running now, as the live view shows it: each running scenario (in start order) with
/// its current step, the step's latest note and, during a migration, each VM's pipeline step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveView {
    pub items: usize,
    pub done: usize,
    pub failed: usize,
    pub running: Vec<RunningScenario>,
}

/// One running scenario in the [`LiveView`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunningScenario {
    pub scenario: String,
    /// The id and name of the step now running.
    pub step: Option<(String, String)>,
    pub note: Option<String>,
    pub vms: Vec<VmProgress>,
}

impl RunningScenario {
    /// The scenario's line: `TestX[a] › test_migrate_vms — waiting for the Migration`.
    pub fn line(&self) -> String {
        let mut line = self.scenario.clone();
        if let Some((_, step)) = &self.step {
            line.push_str(" › ");
            line.push_str(step);
        }
        if let Some(note) = &self.note {
            line.push_str(" — ");
            line.push_str(note);
        }
        line
    }
}

fn vm_line(vm: &VmProgress) -> String {
    match vm.percent {
        Some(percent) => format!("{} {} {percent:.0}%", vm.vm, vm.pipeline_step),
        None => format!("{} {}", vm.vm, vm.pipeline_step),
    }
}

impl LiveView {
    /// Applies one event; returns the scenario whose line changed, if any.
    pub fn apply(&mut self, event: &Event) -> Option<String> {
        match event {
            Event::SessionStarted(start) => {
                self.items = start.items;
                None
            }
            Event::ScenarioStarted { scenario } => {
                self.running_mut(scenario);
                Some(scenario.clone())
            }
            Event::StepStarted { id, scenario, step } => {
                let running = self.running_mut(scenario);
                running.step = Some((id.clone(), step.clone()));
                running.note = None;
                running.vms.clear();
                Some(scenario.clone())
            }
            Event::StepNote { id, message } => {
                let running = self.by_step_id(id)?;
                running.note = Some(message.clone());
                Some(running.scenario.clone())
            }
            Event::MigrationProgress { id, vms } => {
                let running = self.by_step_id(id)?;
                running.vms = vms.clone();
                Some(running.scenario.clone())
            }
            Event::StepFinished(StepEnd {
                id,
                scenario,
                outcome,
                ..
            }) => {
                self.done += 1;
                if outcome.is_failure() {
                    self.failed += 1;
                }
                let running = self.running.iter_mut().find(|r| &r.scenario == scenario)?;
                if running
                    .step
                    .as_ref()
                    .is_some_and(|(step_id, _)| step_id == id)
                {
                    running.step = None;
                    running.note = None;
                    running.vms.clear();
                }
                Some(scenario.clone())
            }
            Event::ScenarioFinished { scenario } => {
                self.running.retain(|r| &r.scenario != scenario);
                Some(scenario.clone())
            }
            _ => None,
        }
    }

    pub fn scenario(&self, scenario: &str) -> Option<&RunningScenario> {
        self.running.iter().find(|r| r.scenario == scenario)
    }

    /// The whole view as text: the overall line, then each scenario with its VMs indented.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.overall_line()];
        for running in &self.running {
            lines.push(format!("  {}", running.line()));
            lines.extend(
                running
                    .vms
                    .iter()
                    .map(|vm| format!("      {}", vm_line(vm))),
            );
        }
        lines
    }

    fn overall_line(&self) -> String {
        let mut line = format!("{}/{} steps", self.done, self.items);
        if self.failed > 0 {
            line.push_str(&format!(", {} failed", self.failed));
        }
        line
    }

    fn running_mut(&mut self, scenario: &str) -> &mut RunningScenario {
        let index = match self.running.iter().position(|r| r.scenario == scenario) {
            Some(index) => index,
            None => {
                self.running.push(RunningScenario {
                    scenario: scenario.to_string(),
                    ..RunningScenario::default()
                });
                self.running.len() - 1
            }
        };
        &mut self.running[index]
    }

    fn by_step_id(&mut self, id: &str) -> Option<&mut RunningScenario> {
        self.running
            .iter_mut()
            .find(|r| r.step.as_ref().is_some_and(|(step_id, _)| step_id == id))
    }
}

struct ScenarioBars {
    scenario: ProgressBar,
    vms: Vec<(String, ProgressBar)>,
}

fn style(template: &str, fallback: fn() -> ProgressStyle) -> ProgressStyle {
    // The templates are constants; the fallback only guards against a typo turning into a panic.
    ProgressStyle::with_template(template).unwrap_or_else(|_| fallback())
}

/// The live console: an overall bar, a line per running scenario (its step and latest note) and a
/// bar per migrating VM (pipeline step and percentage). Finished steps are printed above the bars
/// as plain lines; the summary follows when the run ends.
pub struct LiveConsole<W: Write> {
    multi: MultiProgress,
    overall: ProgressBar,
    bars: HashMap<String, ScenarioBars>,
    view: LiveView,
    out: W,
    summary: Summary,
    started: Option<Instant>,
    error: Option<std::io::Error>,
}

impl<W: Write> LiveConsole<W> {
    /// Bars are drawn on `target`; lines and the summary go to `out` while the bars are
    /// suspended, so the two never interleave on a shared terminal.
    pub fn new(target: ProgressDrawTarget, out: W) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(
            ProgressBar::new(0).with_style(style(OVERALL_TEMPLATE, ProgressStyle::default_bar)),
        );
        overall.enable_steady_tick(Duration::from_millis(120));
        Self {
            multi,
            overall,
            bars: HashMap::new(),
            view: LiveView::default(),
            out,
            summary: Summary::new(),
            started: None,
            error: None,
        }
    }

    pub fn view(&self) -> &LiveView {
        &self.view
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn print(&mut self, lines: &[String]) {
        if lines.is_empty() || self.error.is_some() {
            return;
        }
        let out = &mut self.out;
        let written = self.multi.suspend(|| {
            for line in lines {
                writeln!(out, "{line}")?;
            }
            out.flush()
        });
        if let Err(error) = written {
            self.error = Some(error);
        }
    }

    fn sync_overall(&self) {
        self.overall.set_length(self.view.items as u64);
        self.overall.set_position(self.view.done as u64);
        if self.view.failed > 0 {
            self.overall
                .set_message(format!("({} failed)", self.view.failed));
        }
    }

    /// Makes the bars of `scenario` match the view: create, update or remove them.
    fn sync_scenario(&mut self, scenario: &str) {
        let Some(running) = self.view.scenario(scenario).cloned() else {
            if let Some(bars) = self.bars.remove(scenario) {
                for (_, bar) in bars.vms {
                    self.multi.remove(&bar);
                }
                self.multi.remove(&bars.scenario);
            }
            return;
        };
        let multi = &self.multi;
        let bars = self.bars.entry(scenario.to_string()).or_insert_with(|| {
            let bar = multi.add(
                ProgressBar::no_length()
                    .with_style(style(SCENARIO_TEMPLATE, ProgressStyle::default_spinner)),
            );
            ScenarioBars {
                scenario: bar,
                vms: Vec::new(),
            }
        });
        bars.scenario.set_message(running.line());
        bars.vms.retain(|(vm, bar)| {
            let keep = running.vms.iter().any(|progress| &progress.vm == vm);
            if !keep {
                multi.remove(bar);
            }
            keep
        });
        for progress in &running.vms {
            let existing = bars.vms.iter().position(|(vm, _)| vm == &progress.vm);
            let index = match existing {
                Some(index) => index,
                None => {
                    let after = bars.vms.last().map_or(&bars.scenario, |(_, bar)| bar);
                    let bar = multi.insert_after(
                        after,
                        ProgressBar::new(100)
                            .with_style(style(VM_TEMPLATE, ProgressStyle::default_bar)),
                    );
                    bar.set_prefix(progress.vm.clone());
                    bars.vms.push((progress.vm.clone(), bar));
                    bars.vms.len() - 1
                }
            };
            let bar = &bars.vms[index].1;
            bar.set_message(progress.pipeline_step.clone());
            match progress.percent {
                Some(percent) => {
                    bar.set_style(style(VM_TEMPLATE, ProgressStyle::default_bar));
                    bar.set_position(percent.clamp(0.0, 100.0).round() as u64);
                }
                None => bar.set_style(style(VM_PENDING_TEMPLATE, ProgressStyle::default_bar)),
            }
        }
    }
}

impl<W: Write> Reporter for LiveConsole<W> {
    fn handle(&mut self, event: &Event) {
        if matches!(event, Event::SessionStarted { .. }) {
            self.started = Some(Instant::now());
        }
        self.summary.record(event);
        let changed = self.view.apply(event);
        let lines = event_lines(event);
        self.print(&lines);
        self.sync_overall();
        if let Some(scenario) = changed {
            self.sync_scenario(&scenario);
        }
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        self.overall.finish_and_clear();
        for (_, bars) in self.bars.drain() {
            for (_, bar) in bars.vms {
                bar.finish_and_clear();
            }
            bars.scenario.finish_and_clear();
        }
        let cleared = self.multi.clear();
        if let Some(error) = self.error.take() {
            return Err(stream_error(error));
        }
        cleared.map_err(stream_error)?;
        let summary = self.summary.at_end(self.started);
        writeln!(self.out)
            .and_then(|()| write_summary(&mut self.out, &summary))
            .and_then(|()| self.out.flush())
            .map_err(stream_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_api_server_is_a_warning_line_naming_it_and_what_waits() {
        let mut console = PlainConsole::new(Vec::new());
        console.handle(&Event::ApiNotAnswering {
            server: "https://api.example:6443".into(),
            silent_for: Duration::from_secs(10),
            last_error: "tcp connect error: Connection refused".into(),
            waiting_for: vec!["Plan ns/p to be Ready".into(), "get Secret ns/s".into()],
            giving_up_after: Duration::from_secs(180),
        });
        console.handle(&Event::ApiAnswering {
            server: "https://api.example:6443".into(),
            silent_for: Duration::from_secs(25),
        });
        let out = String::from_utf8(console.into_inner()).unwrap();
        assert_eq!(
            out,
            "warning: the API server https://api.example:6443 has not answered for 10s (tcp connect error: Connection refused); waiting for: Plan ns/p to be Ready; get Secret ns/s; still trying, for up to 180s (api_unreachable_timeout)\n\
             the API server https://api.example:6443 answers again (silent for 25s)\n"
        );
    }

    #[test]
    fn bar_templates_parse() {
        for template in [
            OVERALL_TEMPLATE,
            SCENARIO_TEMPLATE,
            VM_TEMPLATE,
            VM_PENDING_TEMPLATE,
        ] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }

    #[test]
    fn live_only_on_an_unattended_terminal() {
        assert_eq!(ConsoleMode::choose(false, false, true), ConsoleMode::Live);
        assert_eq!(ConsoleMode::choose(true, false, true), ConsoleMode::Plain);
        assert_eq!(ConsoleMode::choose(false, true, true), ConsoleMode::Plain);
        assert_eq!(ConsoleMode::choose(false, false, false), ConsoleMode::Plain);
    }

    #[test]
    fn rules_are_pytest_wide() {
        assert_eq!(rule("short test summary info").len(), RULE_WIDTH);
        assert_eq!(rule("1 passed in 0.10s").len(), RULE_WIDTH);
        assert!(rule(&"x".repeat(100)).starts_with("= x"));
    }
}
