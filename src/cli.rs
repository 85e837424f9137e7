//! The command line: parses arguments, loads configuration, picks reporters, and maps
//! results to the documented exit codes. Each verb lives in `cli/<verb>.rs`.

mod batches;
mod r#become;
mod check;
mod deploy;
mod diagnose;
mod error;
mod hooks;
mod logs;
mod manpages;
mod operator;
mod reach;
mod rerun;
mod rollback;
mod rollout;
mod run;
mod secrets;
mod status;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

pub(crate) use self::error::CliError;
pub(crate) use self::operator::operator;
pub(crate) use self::reach::Reach;
use crate::config::{Inventory, Selection};
use crate::error::ExitCode;
use crate::transport::{HostKeyPolicy, KnownHosts, SshConfig, SshConnector, TransportContext};

/// Deploy and operate fleets of agent services on plain Linux servers over SSH.
///
/// Exit codes: 0 all ok, 1 some targets failed, 2 bad input, 3 halted, 4 some hosts
/// unreachable.
#[derive(Debug, Parser)]
#[command(name = "drover", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: Command,
}

/// Options valid for every command.
#[derive(Debug, Args)]
struct GlobalOpts {
    /// Inventory file; repeat for several. Default: every `inventory/*.toml`.
    #[arg(
        short = 'i',
        long = "inventory",
        global = true,
        value_name = "FILE",
        env = "DROVER_INVENTORY",
        value_delimiter = ','
    )]
    inventory: Vec<PathBuf>,
    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// More log output (-v info, -vv debug); logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// No progress output.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the inventory without connecting anywhere.
    Check(check::Opts),
    /// Run an ad-hoc shell command on the selected hosts.
    Run(run::Opts),
    /// Apply a playbook to the selected targets (tenant × host).
    // Boxed: the largest variant by far (clippy::large_enum_variant).
    Deploy(Box<deploy::Opts>),
    /// Switch the selected targets back to their previous color (blue-green).
    Rollback(rollback::Opts),
    /// Stop a running rollout at its next boundary (from another terminal).
    Halt(rollout::HaltOpts),
    /// Continue a halted or interrupted rollout; targets already done are skipped.
    Resume(rollout::ResumeOpts),
    /// Report the state of the selected targets and hosts (exit 0 healthy, 1 problems,
    /// 4 unreachable).
    Status(status::Opts),
    /// Show the selected tenants' logs from every host, prefixed host/tenant.
    Logs(logs::Opts),
    /// Gather a diagnosis bundle per host and a one-line verdict per target.
    Diagnose(diagnose::Opts),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write a man page per command (drover.1, drover-deploy.1, …) into a directory.
    Manpages(manpages::Opts),
}

/// Which hosts to act on. `--host`, `--group` and `--tenant` add hosts; `--all` adds
/// every host; `--limit` keeps only hosts whose name matches one of its globs (alone,
/// it selects those hosts). Without any selector nothing runs.
///
/// Examples: `--all`, `--group eu --limit 'web-*'`, `--tenant acme --tenant beta`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SelectOpts {
    /// Every host in the inventory.
    #[arg(long)]
    all: bool,
    /// A host by name (repeatable).
    #[arg(long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Every host with this group label (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Every host this tenant is placed on (repeatable).
    #[arg(long = "tenant", value_name = "TENANT")]
    tenants: Vec<String>,
    /// Keep only hosts whose name matches this glob, e.g. 'web-*' (repeatable).
    #[arg(long = "limit", value_name = "GLOB")]
    limits: Vec<String>,
}

impl From<SelectOpts> for Selection {
    fn from(o: SelectOpts) -> Self {
        Selection {
            all: o.all,
            hosts: o.hosts,
            groups: o.groups,
            tenants: o.tenants,
            limits: o.limits,
        }
    }
}

/// How to connect: shared by every verb that reaches hosts.
#[derive(Debug, Args, Clone)]
pub(crate) struct ConnectOpts {
    /// Record unknown host keys (like OpenSSH's accept-new); changed keys are still refused.
    #[arg(long)]
    accept_new: bool,
    /// ssh_config file to honour (default ~/.ssh/config; "none" to ignore it).
    #[arg(long, value_name = "FILE")]
    ssh_config: Option<PathBuf>,
    /// SSH handshakes in flight at once (a shared sshd or bastion resets connections
    /// beyond its MaxStartups; resets are retried).
    #[arg(long, default_value_t = 128, value_name = "N")]
    max_handshakes: usize,
}

impl ConnectOpts {
    /// The SSH connector: known_hosts (the inventory's file, then ~/.ssh/known_hosts),
    /// host-key policy, ssh_config.
    fn connector(&self, inventory: &std::sync::Arc<Inventory>) -> Result<SshConnector, CliError> {
        let mut files = inventory.known_hosts.clone();
        if let Some(home) = dirs::home_dir() {
            files.push(home.join(".ssh").join("known_hosts"));
        }
        let known_hosts =
            KnownHosts::load(&files).map_err(|e| CliError::KnownHosts(e.to_string()))?;
        let policy = if self.accept_new {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        };
        let ctx = std::sync::Arc::new(TransportContext::new(
            known_hosts,
            policy,
            self.max_handshakes,
        ));
        let ssh_config = match &self.ssh_config {
            Some(p) if p.as_os_str() == "none" => SshConfig::default(),
            Some(p) => SshConfig::load(Some(p)),
            None => SshConfig::load(SshConfig::default_path().as_deref()),
        };
        Ok(SshConnector::new(
            ctx,
            std::sync::Arc::clone(inventory),
            ssh_config,
        ))
    }
}

/// What the verbs share: global options resolved once.
pub(crate) struct Context {
    /// the full command line, for the run journal (resume replays it)
    argv: Vec<String>,
    inventory_paths: Vec<PathBuf>,
    color: bool,
    quiet: bool,
    verbose: u8,
}

impl Context {
    /// Loads and validates the inventory.
    fn load_inventory(&self) -> Result<Inventory, CliError> {
        if self.inventory_paths.is_empty() {
            return Err(CliError::NoInventory);
        }
        Inventory::load(&self.inventory_paths).map_err(CliError::Diagnostics)
    }
}

/// Per-attempt time limit of drover's own host scripts (locks, switches, state).
pub(crate) const SCRIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

fn default_inventory() -> Vec<PathBuf> {
    toml_files_in("inventory")
}

/// The `*.toml` files of a directory, sorted (none when it does not exist).
pub(crate) fn toml_files_in(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "drover=warn",
        1 => "drover=info",
        _ => "drover=debug,russh=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DROVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Runs drover with these arguments and returns the process exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    let argv: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap's own code: 0 for --help/--version, 2 for usage errors (= BadInput).
            return e.exit_code();
        }
    };
    let color = match cli.global.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    init_tracing(cli.global.verbose);
    let cx = Context {
        argv,
        inventory_paths: if cli.global.inventory.is_empty() {
            default_inventory()
        } else {
            cli.global.inventory
        },
        color,
        quiet: cli.global.quiet,
        verbose: cli.global.verbose,
    };
    let result = match cli.command {
        Command::Check(opts) => check::run(&cx, &opts),
        Command::Run(opts) => run::run(&cx, opts),
        Command::Deploy(opts) => deploy::run(&cx, *opts),
        Command::Rollback(opts) => rollback::run(&cx, opts),
        Command::Halt(opts) => rollout::halt_run(&opts),
        Command::Resume(opts) => rollout::resume_run(&opts),
        Command::Status(opts) => status::run(&cx, opts),
        Command::Logs(opts) => logs::run(&cx, opts),
        Command::Diagnose(opts) => diagnose::run(&cx, opts),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "drover", &mut std::io::stdout());
            Ok(ExitCode::Ok)
        }
        Command::Manpages(opts) => manpages::run(&opts, Cli::command()),
    };
    match result {
        Ok(code) => code.code(),
        Err(e) => {
            e.print(cx.color);
            e.exit_code().code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
