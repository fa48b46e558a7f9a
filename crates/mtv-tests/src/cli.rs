//! Command-line interface: every option is parsed here and nowhere else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "mtv-tests",
    version,
    about = "End-to-end tests for MTV (Forklift) migrations into OpenShift Virtualization",
    long_about = "End-to-end tests for MTV (Forklift) migrations into OpenShift Virtualization.\n\n\
        `list` and `plan` preview a run without touching any cluster (pytest's --collect-only and \
        --setup-plan). Without a providers file the built-in profiles of the embedded lab are used.",
    after_help = "Exit codes: 0 all passed (skips allowed), 1 a test failed, 2 usage or configuration error, \
        3 teardown left resources behind, 5 -m/-k selected no test (as pytest), 130 interrupted (Ctrl-C), \
        143 SIGTERM, 129 SIGHUP."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the test items a run would execute, skip or deselect (like `pytest --collect-only`).
    List(ListArgs),
    /// Show, per scenario, its steps and the Kubernetes objects each would create (like `pytest --setup-plan`).
    Plan(CommonArgs),
    /// Run the selected scenarios: on the embedded lab unless --kubeconfig or --context is given.
    Run(RunArgs),
    /// Remove everything a ledger (`<results>/resources.json`) lists, e.g. after --skip-teardown or a crash.
    Clean(CleanArgs),
    /// The embedded MTV lab.
    #[command(subcommand)]
    Lab(LabCommand),
    /// List the runtime settings: type, default, environment variable and effective value.
    Settings(CommonArgs),
    /// List the provider profiles of the providers file (or the built-in lab profiles).
    Profiles(CommonArgs),
    /// Forward a local port to a port of a migrated VM (KubeVirt's port-forward, like `virtctl port-forward`).
    PortForward(PortForwardArgs),
    /// Run a command in a migrated VM's guest over SSH (an interactive shell without one), with the
    /// profile's guest account for its OS.
    Ssh(SshArgs),
    /// Preflight a cluster for the selected scenarios and profile, changing nothing: MTV, the
    /// Forklift pods, the inventory, your permissions, the storage class, the VDDK image,
    /// copy-offload, the remote cluster, the source's credentials and templates. Exit 0 ready, 1 not (each problem on one line with what to do).
    Doctor(DoctorArgs),
    /// Print a Kubernetes/OpenShift manifest that runs the suite in the cluster: a ServiceAccount
    /// with least-privilege RBAC, the providers file as a Secret, and an Indexed Job of N partitions.
    Job(JobArgs),
    /// Diagnose any Plan (also one the suite did not make): a bundle with its objects, its pods'
    /// and the Forklift controller's logs and its Events, and the root cause in one line.
    Diagnose(DiagnoseArgs),
    /// Work with the results of runs.
    #[command(subcommand)]
    Report(ReportCommand),
}

/// Which migrated VM to reach, and on which cluster.
#[derive(Debug, Args)]
pub struct GuestVmArgs {
    /// The VirtualMachine (its VMI must run).
    #[arg(value_name = "VM")]
    pub vm: String,
    /// Its namespace (default: the one namespace holding a VirtualMachine of that name).
    #[arg(short = 'n', long, value_name = "NAME")]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The cluster to check (required: the embedded lab of a run is always ready; for a standalone
    /// lab, the kubeconfig `mtv-tests lab serve` wrote).
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct PortForwardArgs {
    #[command(flatten)]
    pub guest: GuestVmArgs,
    /// Local and guest port, `LOCAL:REMOTE` (LOCAL 0 picks a free port, printed on the first line).
    #[arg(value_name = "LOCAL:REMOTE")]
    pub ports: String,
    /// Local address to listen on.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub address: std::net::IpAddr,
}

#[derive(Debug, Args)]
pub struct SshArgs {
    #[command(flatten)]
    pub guest: GuestVmArgs,
    /// Log in as this user (default: the profile's guest_vm_linux_user or guest_vm_win_user).
    #[arg(short = 'l', long, value_name = "USER")]
    pub user: Option<String>,
    /// An OpenSSH private key to log in with (tried before the profile's password).
    #[arg(short = 'i', long, value_name = "PATH")]
    pub identity: Option<PathBuf>,
    /// Provider profile with the guest accounts (a key of the providers file).
    #[arg(long, value_name = "NAME")]
    pub source_provider: Option<String>,
    /// Providers file (default: $MTV_PROVIDERS_FILE, then ./.providers.json, else the built-in lab profiles).
    #[arg(long, value_name = "PATH")]
    pub providers_file: Option<PathBuf>,
    /// The command to run in the guest (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct JobArgs {
    /// Pods at once, one partition each (`--partition count:K/N`).
    #[arg(long, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<u32>::new().range(1..=1000))]
    pub parallelism: u32,
    /// The image of the suite (built from the Containerfile).
    #[arg(long, value_name = "REF", default_value = crate::job::DEFAULT_IMAGE)]
    pub image: String,
    /// The namespace of the Job, its ServiceAccount, Secret and results volume.
    #[arg(short = 'n', long, value_name = "NS", default_value = "mtv-tests")]
    pub namespace: String,
    /// The providers file, put in the manifest as a Secret (it holds credentials: apply the
    /// manifest, do not keep it).
    #[arg(long, value_name = "PATH")]
    pub providers_file: Option<PathBuf>,
    /// Storage class of the results volume (ReadWriteMany; default: the cluster's default class).
    #[arg(long, value_name = "NAME")]
    pub results_storage_class: Option<String>,
    /// Arguments of each pod's `mtv-tests run` (after `--`), e.g. `-- -m tier1 --storage-class x`.
    #[arg(last = true, value_name = "RUN_ARGS")]
    pub run_args: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// The Plan's name.
    #[arg(value_name = "PLAN")]
    pub plan: String,
    /// The Plan's namespace (default: the kubeconfig context's namespace).
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Where MTV runs (the Forklift controller's logs).
    #[arg(long, value_name = "NS", default_value = "openshift-mtv")]
    pub mtv_namespace: String,
    /// The bundle's directory (default: diagnose-<PLAN>).
    #[arg(short = 'o', long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// The Forklift inventory's URL (default: the Route `forklift-inventory` in --mtv-namespace).
    #[arg(long, value_name = "URL")]
    pub inventory_url: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the results of partitioned runs (`--partition K/N`, one --results DIR each) into one
    /// junit.xml, report.html, rerun.json and events.jsonl; exits with the merged run's exit code.
    Merge(ReportMergeArgs),
}

#[derive(Debug, Args)]
pub struct ReportMergeArgs {
    /// The results directories of the partitions (each holds the events.jsonl its run wrote).
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// Where the merged results go.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "OUT",
        default_value = "results-merged"
    )]
    pub output: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Serve the lab on 127.0.0.1 and write a kubeconfig for it (kubectl and `run --kubeconfig` can use it).
    Serve(mtv_lab::cli::LabServeArgs),
}

/// Where a run goes; the embedded lab unless one of these is given.
#[derive(Debug, Args, Default)]
pub struct TargetArgs {
    /// Run against the cluster of this kubeconfig (a real cluster, or a lab from `mtv-tests lab serve`).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Use this context (of --kubeconfig, else of the default kubeconfig).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Scenarios run at once (at least 1).
    #[arg(
        short = 'j',
        long = "jobs",
        value_name = "N",
        default_value_t = 4,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024)
    )]
    pub jobs: usize,
    /// Where results go: resources.json (the ledger), events.jsonl, junit.xml, diagnostics bundles.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
    /// JUnit XML path (default: <results>/junit.xml).
    #[arg(long, value_name = "PATH")]
    pub junitxml: Option<PathBuf>,
    /// Keep everything the run created (remove it later with `mtv-tests clean --ledger`).
    #[arg(long)]
    pub skip_teardown: bool,
    /// Start no new scenario after a failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// Plain lines instead of the live progress view.
    #[arg(long)]
    pub no_progress: bool,
    /// Speed factor of the embedded lab's simulated work (a positive number).
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub lab_speed: f64,
    /// Fault injection for the embedded lab (see `mtv-tests lab serve --help`).
    #[arg(long, value_name = "SPEC", default_value = "")]
    pub lab_faults: String,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// The ledger a run wrote.
    #[arg(long, value_name = "PATH")]
    pub ledger: PathBuf,
    /// How long to wait for the deletions before giving up and listing what remains (exit 3).
    #[arg(long, value_name = "SECONDS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Also list deselected items.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Options shared by the subcommands.
#[derive(Debug, Args, Default)]
pub struct CommonArgs {
    /// Marker expression, as pytest's -m: tier0, warm, remote, copyoffload, ... with and/or/not/().
    #[arg(short = 'm', value_name = "EXPR")]
    pub markers: Option<String>,
    /// Keyword expression over test ids, as pytest's -k (case-insensitive substrings with and/or/not).
    #[arg(short = 'k', value_name = "EXPR")]
    pub keywords: Option<String>,
    /// Provider profile to use (a key of the providers file, not a type).
    #[arg(long, value_name = "NAME")]
    pub source_provider: Option<String>,
    /// Destination storage class of every StorageMap.
    #[arg(long, value_name = "NAME")]
    pub storage_class: Option<String>,
    /// The Forklift inventory's URL for `run` (setting `inventory_url`; default: the Route
    /// `forklift-inventory` in the MTV namespace).
    #[arg(long, value_name = "URL")]
    pub inventory_url: Option<String>,
    /// Providers file (default: $MTV_PROVIDERS_FILE, then ./.providers.json, else the built-in lab profiles).
    #[arg(long, value_name = "PATH")]
    pub providers_file: Option<PathBuf>,
    /// A runtime setting in pytest-testconfig form KEY:VALUE (repeatable), e.g. --tc plan_wait_timeout:1800.
    #[arg(long = "tc", value_name = "KEY:VALUE")]
    pub tc: Vec<String>,
    /// A runtime setting KEY=VALUE (repeatable); wins over --tc.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// A settings file (YAML, flat `key: value`).
    #[arg(long, value_name = "FILE")]
    pub settings: Option<PathBuf>,
    /// A directory of extra scenario files (*.yaml), added to the built-in catalog.
    #[arg(long, value_name = "DIR")]
    pub catalog: Vec<PathBuf>,
    /// Only the scenarios that failed last time, as pytest's --lf: from the rerun state a run writes
    /// (default results/rerun.json); combines with -m and -k.
    #[arg(
        long,
        visible_alias = "lf",
        value_name = "RERUN_FILE",
        num_args = 0..=1,
        default_missing_value = "results/rerun.json"
    )]
    pub last_failed: Option<PathBuf>,
    /// Only partition K of N of the selection, as cargo-nextest: `count:K/N` (round-robin over the
    /// scenarios sorted by name) or `hash:K/N` (a stable hash of the scenario name). N runs with
    /// K = 1..N cover the selection exactly once; `mtv-tests report merge` joins their results.
    #[arg(long, value_name = "hash:K/N|count:K/N")]
    pub partition: Option<mtv_catalog::partition::Partition>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
}
