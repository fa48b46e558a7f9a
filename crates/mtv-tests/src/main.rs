//! `mtv-tests`: wiring from the command line to the libraries, and exit codes.

mod cli;
mod cluster_tls;
mod diagnose;
mod doctor;
mod error_chain;
mod execute;
mod front;
mod guest_access;
mod job;
mod permissions;
mod render;
mod report_merge;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use miette::Report;
// Exit codes are defined once, in mtv_api::exit.
use mtv_api::exit::EXIT_USAGE;
use mtv_config::{Env, ProcessEnv};
use mtv_engine::preview::{ScenarioInput, preview_run};
use serde_json::json;

use crate::cli::{Cli, Command, Format};

/// Diagnostics wrap at `$COLUMNS` when it is set (terminals export it; tests set it wide).
fn install_diagnostic_hook() {
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok());
    let _ = miette::set_hook(Box::new(move |_| {
        let mut options = miette::MietteHandlerOpts::new();
        if let Some(width) = width {
            options = options.width(width);
        }
        Box::new(options.build())
    }));
}

/// `MTV_TESTS_LOG` (a filter such as `debug` or `mtv_engine=debug,kube=info`) turns on the
/// libraries' log on stderr, for finding why a run hangs or retries; off when unset. The log names
/// requests by method and path, never their headers or bodies.
fn install_log() {
    let Ok(filter) = std::env::var("MTV_TESTS_LOG") else {
        return;
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&filter) {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!("warning: MTV_TESTS_LOG={filter:?} is not a log filter ({error}); no log");
            return;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

fn main() -> ExitCode {
    install_diagnostic_hook();
    install_log();
    let cli = Cli::parse();
    let env = ProcessEnv;
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        Err(error) => {
            eprintln!("error: cannot read the current directory: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(cli, &env, &cwd) {
        Ok(code) => ExitCode::from(code),
        Err(report) => {
            eprint!("{}", error_chain::render(&report));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn print(text: &str) -> Result<(), Report> {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`mtv-tests list | head`) is not an error worth reporting.
    match stdout.write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(miette::miette!("cannot write to standard output: {e}"))
        }
        _ => Ok(()),
    }
}

fn print_json(value: &serde_json::Value) -> Result<(), Report> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| miette::miette!("cannot serialise the output: {e}"))?;
    print(&format!("{text}\n"))
}

fn warn_all(warnings: &[mtv_config::ConfigWarning]) {
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Report> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| miette::miette!("cannot start the async runtime: {e}"))
}

fn run(cli: Cli, env: &dyn Env, cwd: &std::path::Path) -> Result<u8, Report> {
    match cli.command {
        Command::Run(args) => runtime()?.block_on(execute::run_command(args, env, cwd)),
        Command::Clean(args) => runtime()?.block_on(execute::clean_command(args)),
        Command::Lab(cli::LabCommand::Serve(args)) => runtime()?.block_on(execute::lab_serve(args)),
        Command::PortForward(args) => runtime()?.block_on(guest_access::port_forward_command(args)),
        Command::Ssh(args) => runtime()?.block_on(guest_access::ssh_command(args, env, cwd)),
        Command::List(args) => {
            let front = front::load(&args.common, env, cwd)?;
            warn_all(&front.warnings);
            match args.common.format {
                Format::Json => print_json(&front.collection.to_json())?,
                Format::Human => print(&render::list(&front, args.verbose))?,
            }
            Ok(front::selection_exit_code(&front, &args.common))
        }
        Command::Plan(args) => {
            let front = front::load(&args, env, cwd)?;
            warn_all(&front.warnings);
            let selected: Vec<&mtv_catalog::Scenario> = front
                .collection
                .selected_scenarios()
                .into_iter()
                .map(|index| &front.catalog.scenarios[index])
                .collect();
            let names: Vec<String> = selected.iter().map(|s| s.name()).collect();
            let inputs: Vec<ScenarioInput<'_>> = selected
                .iter()
                .zip(&names)
                .map(|(scenario, name)| ScenarioInput {
                    name,
                    class: &scenario.entry.class,
                    config: &scenario.entry.config,
                    steps: &scenario.steps,
                })
                .collect();
            let preview = preview_run(&front.context, &inputs);
            match args.format {
                Format::Json => print_json(&json!({
                    "version": preview.version,
                    "preview": preview,
                    "summary": front.collection.to_json()["summary"],
                }))?,
                Format::Human => print(&render::plan(&front, &preview))?,
            }
            Ok(front::selection_exit_code(&front, &args))
        }
        Command::Doctor(args) => {
            let target = doctor::target_of(&args.target)?;
            runtime()?.block_on(doctor::doctor_command(&args, env, cwd, target))
        }
        Command::Diagnose(args) => runtime()?.block_on(diagnose::diagnose_command(&args)),
        Command::Job(args) => job::job_command(&args, cwd),
        Command::Report(cli::ReportCommand::Merge(args)) => report_merge::merge_command(&args),
        Command::Settings(args) => {
            let (settings, warnings) = front::load_settings(&args, env)?;
            warn_all(&warnings);
            match args.format {
                Format::Json => print_json(&settings.redacted_json())?,
                Format::Human => print(&render::settings(&settings))?,
            }
            Ok(0)
        }
        Command::Profiles(args) => {
            let providers = front::load_providers(&args, env, cwd)?;
            warn_all(&providers.warnings);
            match args.format {
                Format::Json => {
                    let profiles: serde_json::Map<String, serde_json::Value> = providers
                        .profiles
                        .iter()
                        .map(|(name, profile)| (name.clone(), profile.redacted_json()))
                        .collect();
                    print_json(&serde_json::Value::Object(profiles))?
                }
                Format::Human => print(&render::profiles(&providers))?,
            }
            Ok(0)
        }
    }
}
