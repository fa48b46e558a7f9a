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
        3 teardown left resources behind, 130 interrupted."
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
    /// Run the selected scenarios.
    Run(CommonArgs),
    /// List the runtime settings: type, default, environment variable and effective value.
    Settings(CommonArgs),
    /// List the provider profiles of the providers file (or the built-in lab profiles).
    Profiles(CommonArgs),
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
