//! `run`, `clean` and `lab serve`: wiring from the front half to the engine, the lab and the reporters.

use std::path::Path;
use std::sync::Arc;

use miette::{Report, miette};
use mtv_config::{Env, ProvidersOrigin};
use mtv_engine::cluster::Cluster;
use mtv_engine::events::{ChannelSink, Event, EventSink};
use mtv_engine::front::RunTarget;
use mtv_engine::ledger::Ledger;
use mtv_engine::run::{Interrupt, RunOptions, run};
use mtv_engine::session::{SessionNeeds, mtv_version, random_suffix};
use mtv_engine::target::{
    Target, check_remote_cluster, client_for, config_with_tls, server_token_and_cluster,
};
use mtv_report::{
    Console, ConsoleMode, EventLog, Fanout, HtmlReport, JunitReport, Reporter, RerunReport,
};
use tokio::sync::{mpsc, watch};

use crate::cli::{CleanArgs, RunArgs, TargetArgs};
use crate::front;

/// An error of a library that is not a configuration diagnostic, as a report.
fn plain(error: impl std::fmt::Display) -> Report {
    miette!("{error}")
}

fn explicit_target(args: &TargetArgs) -> Option<Target> {
    match (&args.kubeconfig, &args.context) {
        (Some(path), context) => Some(Target::Kubeconfig {
            path: path.clone(),
            context: context.clone(),
        }),
        (None, Some(context)) => Some(Target::Context(context.clone())),
        (None, None) => None,
    }
}

/// The signals that stop a run: Ctrl-C (SIGINT), SIGTERM (how CI systems cancel a job) and SIGHUP
/// (a closed terminal), each reported as what it is.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Registers the handlers now, before anything is created, so no signal kills the run untidily.
    fn register() -> Result<Self, Report> {
        use tokio::signal::unix::{SignalKind, signal};
        let handler =
            |kind, name: &str| signal(kind).map_err(|e| miette!("cannot handle {name}: {e}"));
        Ok(StopSignals {
            interrupt: handler(SignalKind::interrupt(), "Ctrl-C")?,
            terminate: handler(SignalKind::terminate(), "SIGTERM")?,
            hangup: handler(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    /// The next of the three to arrive.
    async fn next(&mut self) -> Interrupt {
        tokio::select! {
            _ = self.interrupt.recv() => Interrupt::CtrlC,
            _ = self.terminate.recv() => Interrupt::Terminate,
            _ = self.hangup.recv() => Interrupt::Hangup,
        }
    }
}

/// First Ctrl-C, SIGTERM or SIGHUP: stop the scenarios, tear down, write every report, exit with the
/// signal's code. A second one (any of the three): exit at once, with the ledger complete on disk.
fn install_interrupt(
    mut signals: StopSignals,
    ledger: Arc<Ledger>,
) -> watch::Receiver<Option<Interrupt>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let first = signals.next().await;
        eprintln!(
            "\n{}: stopping the scenarios and tearing down (Ctrl-C, SIGTERM or SIGHUP again to exit now)",
            first.signal_name()
        );
        let _ = tx.send(Some(first));
        let second = signals.next().await;
        eprintln!(
            "{}: exiting now; `mtv-tests clean --ledger {}` removes what is left",
            second.signal_name(),
            ledger.path().display()
        );
        ledger.hold_while(|| std::process::exit(i32::from(second.exit_code())));
    });
    rx
}

/// Feeds every event to the reporters until the engine drops its sink.
fn spawn_reporters(
    mut fanout: Fanout,
    mut events: mpsc::UnboundedReceiver<Event>,
) -> tokio::task::JoinHandle<Result<(), mtv_report::ReportError>> {
    tokio::task::spawn_blocking(move || {
        while let Some(event) = events.blocking_recv() {
            fanout.handle(&event);
        }
        fanout.finish()
    })
}

/// The run's target: the cluster `--kubeconfig`/`--context` name, else an embedded lab started now
/// (returned too, to be shut down at the end).
async fn start_target(args: &RunArgs) -> Result<(Option<mtv_lab::LabServer>, Target), Report> {
    let explicit = explicit_target(&args.target);
    let lab_server = match &explicit {
        Some(_) => None,
        None => Some(
            mtv_lab::cli::start(&crate::front::embedded_lab(args))
                .await
                .map_err(|e| miette!("cannot start the embedded lab: {e}"))?,
        ),
    };
    let target = match (&explicit, &lab_server) {
        (Some(target), _) => target.clone(),
        (None, Some(lab)) => Target::InMemory {
            kubeconfig_yaml: lab.kubeconfig_yaml(),
        },
        (None, None) => unreachable!("a lab is started when no target is given"),
    };
    Ok((lab_server, target))
}

/// The reporters of a run: JUnit, the event log, rerun state, the HTML report, and the console (or
/// the event log on stdout with `--format json`).
fn reporters(args: &RunArgs) -> Result<Fanout, Report> {
    let junit_path = args
        .junitxml
        .clone()
        .unwrap_or_else(|| args.results.join("junit.xml"));
    let event_log = EventLog::create(args.results.join("events.jsonl")).map_err(plain)?;
    let mut fanout = Fanout::new()
        .with(JunitReport::new(&junit_path))
        .with(event_log)
        .with(RerunReport::new(args.results.join("rerun.json")))
        .with(HtmlReport::new(args.results.join("report.html")));
    // `--format json` streams the event log on stdout, for tools; otherwise a person reads the console.
    match args.common.format {
        crate::cli::Format::Json => fanout.push(EventLog::new(std::io::stdout())),
        crate::cli::Format::Human => {
            fanout.push(Console::stdout(ConsoleMode::detect(args.no_progress)))
        }
    }
    Ok(fanout)
}

pub async fn run_command(args: RunArgs, env: &dyn Env, cwd: &Path) -> Result<u8, Report> {
    let front = match front::preflight_run(&args, env, cwd)? {
        Ok(front) => front,
        Err(code) => return Ok(code),
    };
    let signals = StopSignals::register()?;
    std::fs::create_dir_all(&args.results).map_err(|e| {
        miette!(
            "cannot create the results directory {}: {e}",
            args.results.display()
        )
    })?;
    // The cluster first: min_mtv_version gating uses the version it runs.
    let (lab_server, target) = start_target(&args).await?;
    let front = match &lab_server {
        // The built-in profiles, pointed at where the embedded lab serves each source: the run
        // reaches the lab's sources through the real adapters, as it would a cluster's.
        Some(lab) if front.config.providers.origin == ProvidersOrigin::Builtin => {
            let profiles = mtv_lab::cli::lab_profiles(lab).map_err(plain)?;
            front.with_providers(profiles).map_err(Report::new)?
        }
        // A profile of one's own that names a source of the lab (its lab-file URL): the lab is
        // where that host answers.
        Some(lab) => {
            let profile = &front.config.profile;
            let url = profile.api_url.clone().unwrap_or_default();
            match mtv_lab::cli::served_source(lab, profile.provider_type.as_str(), &url) {
                Some(served) => front.with_source_endpoint(
                    &served.url,
                    &served.addr.ip().to_string(),
                    &served.tls.ca_pem,
                ),
                None => front,
            }
        }
        None => front,
    };
    let settings = &front.config.settings;
    // Behind the retrying layer from the first request: the MTV version and doctor's checks before
    // the run are read through a busy API server as the run's own requests are.
    let client = mtv_engine::retry::standalone_client(
        crate::cluster_tls::client(&target, settings.insecure_verify_skip).await?,
    );
    let cluster_version = mtv_version(&client, &settings.mtv_namespace)
        .await
        .map_err(|e| crate::cluster_tls::describe("read the MTV version", &target, &e))?;
    let front = front
        .with_cluster_version(cluster_version)
        .map_err(Report::new)?;
    // The cluster answered; whether its run could reach the profile's source is the next question.
    front::check_profiles_reach_target(&args.target, &front)?;
    for warning in &front.warnings {
        eprintln!("warning: {warning}");
    }
    // doctor's fast part, before anything is created.
    crate::doctor::before_run(&front, &client).await?;
    let scenarios = front.scenarios();
    let skipped = front.skipped();
    let (cluster_url, cluster_token, cluster_name) =
        server_token_and_cluster(&target).map_err(plain)?;
    // The inventory client starts from the same configuration as the run's Kubernetes client.
    let kube_config = config_with_tls(&target, front.config.settings.insecure_verify_skip)
        .await
        .map_err(plain)?;
    // Remote scenarios migrate into the cluster named by remote_ocp_cluster: it must be this one.
    if let (true, Some(remote)) = (
        SessionNeeds::of(&scenarios).remote,
        &front.config.settings.remote_ocp_cluster,
    ) {
        check_remote_cluster(remote, &cluster_url, &cluster_name).map_err(plain)?;
    }

    let session_id = format!(
        "{}-{}",
        front.config.settings.target_namespace_prefix,
        random_suffix(4)
    );
    let ledger_path = args.results.join("resources.json");
    // The ledger names the target as reports do: its API server, from the kubeconfig.
    let ledger = Arc::new(Ledger::create(&ledger_path, &session_id, &cluster_url).map_err(plain)?);
    let interrupt = install_interrupt(signals, ledger.clone());

    let fanout = reporters(&args)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let reporters = spawn_reporters(fanout, rx);
    let sink: Arc<dyn EventSink> = Arc::new(ChannelSink(tx));

    let cluster = Cluster::new(client, ledger, sink);
    let run_target = RunTarget {
        cluster_url,
        cluster_token,
        kube_config,
        session_id: Some(session_id),
    };
    let outcome = run(
        front.bootstrap(cluster, run_target, &scenarios),
        scenarios,
        skipped,
        RunOptions {
            results_dir: args.results.clone(),
            jobs: args.jobs,
            skip_teardown: args.skip_teardown,
            fail_fast: args.fail_fast,
        },
        interrupt,
    )
    .await;
    // The engine's sinks are gone with the run; the reporters drain and finish.
    let report = reporters
        .await
        .map_err(|e| miette!("the reporters stopped: {e}"))?;
    if let Err(error) = report {
        eprintln!("warning: {error}");
    }
    if args.skip_teardown {
        eprintln!(
            "--skip-teardown: everything the run created is listed in {}; remove it with `mtv-tests clean --ledger {}`{}",
            ledger_path.display(),
            ledger_path.display(),
            if lab_server.is_some() {
                " (the embedded lab of this run is gone with it; use `mtv-tests lab serve` and --kubeconfig to keep a lab)"
            } else {
                ""
            }
        );
    }
    if let Some(lab) = lab_server {
        lab.shutdown().await;
    }
    Ok(outcome.exit_code)
}

/// A sink that prints what teardown removes, waits for, leaves alone and leaves behind.
struct CleanPrinter;

impl EventSink for CleanPrinter {
    fn emit(&self, event: Event) {
        match event {
            Event::ResourceDeleted { resource } => println!("deleted {resource}"),
            Event::TeardownNote { message } => println!("{message}"),
            Event::ResourceLeftAlone { resource, reason } => {
                println!("left alone {resource} ({}): {reason}", resource.api_version)
            }
            Event::TeardownFinished { leftovers } => {
                for resource in leftovers {
                    println!("LEFTOVER {resource}");
                }
            }
            _ => {}
        }
    }
}

pub async fn clean_command(args: CleanArgs) -> Result<u8, Report> {
    let ledger = Ledger::open(&args.ledger).map_err(plain)?;
    let recorded_target = ledger.snapshot().target;
    let target = explicit_target(&args.target).ok_or_else(|| {
        miette!(
            help = "pass --kubeconfig PATH or --context NAME for the cluster the run used (for a lab started with `mtv-tests lab serve`, its kubeconfig)",
            "the ledger {} was written against `{recorded_target}`; say which cluster to clean",
            args.ledger.display()
        )
    })?;
    let client = client_for(&target).await.map_err(plain)?;
    let cluster = Cluster::new(client, Arc::new(ledger), Arc::new(CleanPrinter));
    let timeout = std::time::Duration::from_secs(args.timeout);
    let leftovers = mtv_engine::teardown::clean(&cluster, timeout).await;
    if leftovers.is_empty() {
        println!("clean: nothing left");
        Ok(mtv_engine::run::EXIT_OK)
    } else {
        println!(
            "clean: {} resources left behind (LEFTOVER above) after waiting up to {}s; run clean \
             again once what holds them is gone",
            leftovers.len(),
            args.timeout
        );
        Ok(mtv_engine::run::EXIT_LEFTOVERS)
    }
}

pub async fn lab_serve(args: mtv_lab::cli::LabServeArgs) -> Result<u8, Report> {
    mtv_lab::cli::serve(args)
        .await
        .map_err(|e| miette!("the lab stopped: {e}"))?;
    Ok(0)
}
