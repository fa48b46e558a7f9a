//! The front half of every command: settings, providers file, profile, catalog and selection.
//! Nothing here touches a cluster.

use std::collections::BTreeSet;
use std::path::Path;

use miette::Report;
use mtv_config::{ConfigWarning, Env, ProvidersFile, Settings, SettingsSources};
use mtv_engine::front::{self, SelectionInput};
use mtv_report::RerunState;

use crate::cli::{CommonArgs, RunArgs, TargetArgs};

pub use mtv_api::exit::EXIT_NOTHING_SELECTED;

/// Everything `list`, `plan` and `run` need, resolved and validated (the engine's one front).
pub use mtv_engine::front::Front;

/// Runs `f` with the settings sources the flags give: defaults, the settings file, the
/// environment, `--tc`, `--set` and the dedicated flags (which win).
fn with_sources<T>(args: &CommonArgs, env: &dyn Env, f: impl FnOnce(&SettingsSources) -> T) -> T {
    let mut set = args.set.clone();
    if let Some(name) = &args.source_provider {
        set.push(format!("source_provider={name}"));
    }
    if let Some(name) = &args.storage_class {
        set.push(format!("storage_class={name}"));
    }
    if let Some(url) = &args.inventory_url {
        set.push(format!("inventory_url={url}"));
    }
    f(&SettingsSources {
        file: args.settings.as_deref(),
        tc: &args.tc,
        set: &set,
        env,
    })
}

/// Runtime settings alone (`mtv-tests settings`, and the cluster's TLS before a run).
pub fn load_settings(
    args: &CommonArgs,
    env: &dyn Env,
) -> Result<(Settings, Vec<ConfigWarning>), Report> {
    with_sources(args, env, Settings::resolve).map_err(Report::new)
}

pub fn load_providers(
    args: &CommonArgs,
    env: &dyn Env,
    cwd: &Path,
) -> Result<ProvidersFile, Report> {
    ProvidersFile::discover(args.providers_file.as_deref(), env, cwd).map_err(Report::new)
}

/// The front of `list`, `plan` and `run`: settings resolved once, the profile, the catalog and the
/// collection, through `mtv_engine::front`.
pub fn load(args: &CommonArgs, env: &dyn Env, cwd: &Path) -> Result<Front, Report> {
    let providers = load_providers(args, env, cwd)?;
    let (config, mut warnings) = with_sources(args, env, |sources| {
        front::resolve_config(sources, providers)
    })
    .map_err(Report::new)?;
    let scenarios = match &args.last_failed {
        Some(path) => Some(last_failed(
            &cwd.join(path),
            &config.profile.name,
            &mut warnings,
        )?),
        None => None,
    };
    let selection = SelectionInput {
        markers: args.markers.as_deref(),
        keywords: args.keywords.as_deref(),
        scenarios,
        partition: args.partition,
    };
    front::load_front(config, warnings, &args.catalog, &selection, None, env).map_err(Report::new)
}

/// The scenarios `--last-failed` reruns, from the rerun state at `path`.
fn last_failed(
    path: &Path,
    profile: &str,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<BTreeSet<String>, Report> {
    let state = RerunState::read(path).map_err(|error| {
        miette::miette!(
            help = "`mtv-tests run` writes rerun.json into its results directory (--results, default \
                    results); pass the one of the run to repeat: --last-failed DIR/rerun.json",
            "--last-failed: {error}"
        )
    })?;
    if state.source_provider != profile {
        return Err(miette::miette!(
            help = format!(
                "pass --source-provider {} to rerun them, or leave out --last-failed",
                state.source_provider
            ),
            "--last-failed: {} holds the failures of source provider '{}', and this run uses '{profile}'",
            path.display(),
            state.source_provider
        ));
    }
    if state.failed.is_empty() {
        warnings.push(ConfigWarning {
            message: "--last-failed: no scenario failed last time; nothing to rerun".into(),
            location: Some(path.display().to_string()),
        });
    }
    Ok(state.failed)
}

/// The exit code of `list`, `plan` or `run` for this selection: [`EXIT_NOTHING_SELECTED`] (with the
/// reason on stderr) when `-m`/`-k` left no item selected or skipped, as pytest does; else 0.
pub fn selection_exit_code(front: &Front, args: &CommonArgs) -> u8 {
    match nothing_selected(front, args) {
        Some(reason) => {
            eprintln!("{reason}");
            EXIT_NOTHING_SELECTED
        }
        None => 0,
    }
}

/// Why nothing was collected, when `-m`/`-k` deselected every item. `--last-failed` alone with
/// nothing to rerun is not this case: it has its own warning, and a run then succeeds.
fn nothing_selected(front: &Front, args: &CommonArgs) -> Option<String> {
    let summary = &front.collection.summary;
    if summary.selected + summary.skipped > 0 {
        return None;
    }
    let mut asked = Vec::new();
    if let Some(markers) = &args.markers {
        asked.push(format!("-m {markers:?}"));
    }
    if let Some(keywords) = &args.keywords {
        asked.push(format!("-k {keywords:?}"));
    }
    if asked.is_empty() {
        return None;
    }
    if args.last_failed.is_some() {
        asked.push("--last-failed".to_string());
    }
    Some(format!(
        "no tests ran: {} selected none of the {} collected items (exit {EXIT_NOTHING_SELECTED}, as \
         pytest); `mtv-tests list -v` shows every item and its markers",
        asked.join(" with "),
        summary.collected
    ))
}

/// Everything `run` can judge before it starts a lab, connects or creates a file: its own options
/// (`-j`, `--lab-faults`, where results go) and the same configuration `list` and `plan` judge.
/// `Ok(Err(code))` ends the run with that code (nothing selected); errors are exit 2; else the
/// front the run goes on with.
pub fn preflight_run(
    args: &RunArgs,
    env: &dyn Env,
    cwd: &Path,
) -> Result<Result<Front, u8>, Report> {
    check_lab_faults(args)?;
    check_kubeconfig(&args.target)?;
    // `run` writes these relative to the process's directory, as given.
    check_writable_dir(&args.results, "--results")?;
    if let Some(junit) = &args.junitxml {
        check_writable_file(junit, "--junitxml")?;
    }
    let front = load(&args.common, env, cwd)?;
    match selection_exit_code(&front, &args.common) {
        0 => Ok(Ok(front)),
        code => Ok(Err(code)),
    }
}

/// The built-in profiles name the embedded lab's hosts (`*.lab.mtv-tests.internal`), which only a
/// run's own lab serves: a run against a cluster (or a `lab serve` process) without a providers
/// file would fail every step on a name no resolver knows, so it is bad input, said once, now.
pub fn check_profiles_reach_target(target: &TargetArgs, front: &Front) -> Result<(), Report> {
    let explicit = target.kubeconfig.is_some() || target.context.is_some();
    if !explicit || front.config.providers.origin != mtv_config::ProvidersOrigin::Builtin {
        return Ok(());
    }
    Err(miette::miette!(
        help = "give the source's profiles with --providers-file (or ./.providers.json, MTV_PROVIDERS_FILE); against `mtv-tests lab serve`, the file it wrote with --providers-out; or drop --kubeconfig/--context to run on an embedded lab",
        "no providers file: the built-in profiles name the embedded lab's hosts (such as {}), which a cluster cannot reach",
        front
            .config
            .profile
            .api_url
            .as_deref()
            .unwrap_or("vcenter.lab.mtv-tests.internal")
    ))
}

/// The embedded lab a run without a cluster starts: its kubeconfig in the results, the run's speed
/// and faults, MTV 2.10.
pub fn embedded_lab(args: &RunArgs) -> mtv_lab::cli::LabServeArgs {
    mtv_lab::cli::LabServeArgs {
        port: None,
        lab: None,
        kubeconfig_out: args.results.join("lab.kubeconfig"),
        providers_out: None,
        speed: args.lab_speed,
        faults: args.lab_faults.clone(),
        mtv_version: "2.10.0".into(),
    }
}

/// `--lab-faults` and `--lab-speed` are judged now, with the lab's own rules (a typo is exit 2,
/// not a fault that never fires); faults only mean something for the embedded lab.
fn check_lab_faults(args: &RunArgs) -> Result<(), Report> {
    if !(args.lab_speed.is_finite() && args.lab_speed > 0.0) {
        return Err(miette::miette!(
            help = "1 is real time, 10 ten times faster; up to about 20 keeps every scenario meaningful",
            "--lab-speed must be a positive number, not {}",
            args.lab_speed
        ));
    }
    embedded_lab(args).options().map_err(|e| {
        miette::miette!(
            help = "faults are comma-separated key=value items, e.g. --lab-faults api-error-rate=0.05,vm-fail=rhel8@DiskTransfer",
            "--lab-faults: {e}"
        )
    })?;
    let explicit_target = args.target.kubeconfig.is_some() || args.target.context.is_some();
    if args.lab_faults.trim().is_empty() || !explicit_target {
        return Ok(());
    }
    Err(miette::miette!(
        help = "start a lab with faults with `mtv-tests lab serve --faults SPEC --kubeconfig-out lab.kubeconfig` and run against it with --kubeconfig lab.kubeconfig",
        "--lab-faults applies to the embedded lab only, and this run targets a cluster (--kubeconfig/--context)"
    ))
}

/// The kubeconfig of an explicit target can be read, and names the context to use and a cluster
/// with a server URL: checked before anything is created, so a wrong file is exit 2 at once.
fn check_kubeconfig(target: &TargetArgs) -> Result<(), Report> {
    use kube::config::Kubeconfig;
    let (config, shown) = match (&target.kubeconfig, &target.context) {
        (None, None) => return Ok(()),
        (Some(path), _) => (
            Kubeconfig::read_from(path),
            format!("--kubeconfig {}", path.display()),
        ),
        (None, Some(_)) => (
            Kubeconfig::read(),
            "the default kubeconfig ($KUBECONFIG or ~/.kube/config)".to_string(),
        ),
    };
    let bad = |why: String| {
        miette::miette!(
            help = "pass --kubeconfig a kubeconfig of the cluster (`oc login` writes one; `mtv-tests lab serve` writes one for a lab) and --context one of its contexts",
            "{shown}: {why}"
        )
    };
    // kube's YAML errors quote the lines around the error, tokens included.
    let config = config.map_err(|e| {
        bad(format!(
            "cannot read it: {}",
            mtv_config::redact_credential_lines(&e.to_string())
        ))
    })?;
    let contexts: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
    let current = config.current_context.clone().filter(|c| !c.is_empty());
    let Some(name) = target.context.clone().or(current) else {
        return Err(bad(format!(
            "it has no current-context; pass --context (its contexts: {})",
            contexts.join(", ")
        )));
    };
    let Some(context) = config
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.as_ref())
    else {
        return Err(bad(format!(
            "it has no context `{name}` (its contexts: {})",
            contexts.join(", ")
        )));
    };
    let server = config
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone());
    let Some(server) = server else {
        return Err(bad(format!(
            "context `{name}` names cluster `{}`, which has no server URL there",
            context.cluster
        )));
    };
    let host = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"));
    if host.is_none_or(|host| host.trim_matches('/').is_empty()) {
        return Err(bad(format!(
            "cluster `{}` has server `{server}`, which is not an https:// URL",
            context.cluster
        )));
    }
    Ok(())
}

/// The deepest existing ancestor of `path` (itself when it exists).
fn existing_ancestor(path: &Path) -> Option<&Path> {
    path.ancestors()
        // A relative path's last ancestor is "", which is the working directory.
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .find(|p| p.exists())
}

/// A path a run cannot write, as a usage error naming the option and the path as given.
fn unwritable(flag: &str, path: &Path, why: String, wanted: &str) -> Report {
    miette::miette!(
        help = format!("pass {flag} {wanted} this user can create and write"),
        "{flag} {}: {why}",
        path.display()
    )
}

/// A directory a run can create and write into: it is a directory (or can be made under one), and
/// a file can be created in it. Probes with a file it removes at once; creates nothing else.
fn check_writable_dir(dir: &Path, flag: &str) -> Result<(), Report> {
    writable_dir_problem(dir).map_or(Ok(()), |why| Err(unwritable(flag, dir, why, "a directory")))
}

/// Why `dir` cannot be created or written, if it cannot.
fn writable_dir_problem(dir: &Path) -> Option<String> {
    let Some(existing) = existing_ancestor(dir) else {
        return Some("no part of the path exists".into());
    };
    if !existing.is_dir() {
        return Some(format!("{} is not a directory", existing.display()));
    }
    probe_write(existing)
        .err()
        .map(|e| format!("cannot write in {}: {e}", existing.display()))
}

/// A file a run can write at the end: not a directory, and its directory (or the part of it that
/// exists) is writable; an existing file must open for writing (it is not changed here).
fn check_writable_file(file: &Path, flag: &str) -> Result<(), Report> {
    let fail = |why: String| Err(unwritable(flag, file, why, "a file path"));
    if file.is_dir() {
        return fail("is a directory".into());
    }
    if file.exists() {
        return match std::fs::OpenOptions::new().append(true).open(file) {
            Ok(_) => Ok(()),
            Err(e) => fail(format!("cannot write it: {e}")),
        };
    }
    let parent = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    writable_dir_problem(parent).map_or(Ok(()), fail)
}

/// Creates and removes one empty file in `dir`: the only sure test of writability (permissions
/// say nothing for root, read-only mounts or full disks).
fn probe_write(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".mtv-tests-write-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}
