//! Command line: raw flags -> checked configuration -> one pipeline run -> exit code.
//! Follows the Singer SDK's conventions (`--config` repeatable or `ENV`, `--input`, `--about`,
//! `--state` accepted), so Meltano and job runners drive it like any SDK target.
//!
//! Exit codes: 0 loaded, 1 the run failed, 2 the configuration or a flag is invalid (clap's
//! usage errors exit 2 as well), 130 stopped by a second signal ([`Error::exit_code`]).

mod about;
mod check;
mod logging;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};

pub use about::{about, macros_markdown, meltano_settings_yaml, settings_markdown};

use crate::config::{self, Destination, LogLevel, RawConfig, Source};
#[cfg(feature = "s3")]
use crate::destination::S3Store;
use crate::destination::{DryRun, LocalFolder, Storage};
use crate::error::Error;

pub const NAME: &str = "target-s3";
pub const DESCRIPTION: &str = "Singer target that loads streams into Amazon S3 or a local folder as JSONL, JSON, CSV, Parquet or Avro \
     files, with STATE released only after the data before it is durably written.";
pub const CAPABILITIES: &[&str] =
    &["about", "validate-records", "schema-flattening", "structured-logging", "batch", "activate-version"];

#[derive(Parser, Debug)]
#[command(name = NAME, about = DESCRIPTION, disable_version_flag = true)]
pub struct Args {
    /// Config file (JSON). Repeat to layer files, later keys win; `ENV` reads TARGET_S3_* variables.
    #[arg(long, value_name = "FILE|ENV")]
    pub config: Vec<String>,
    /// Read Singer messages from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Accepted for job runners that pass it; a target does not read state.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Print name, version, capabilities and every setting, then exit.
    #[arg(long)]
    pub about: bool,
    /// Output format of --about.
    #[arg(long, value_enum, default_value_t = AboutFormat::Text)]
    pub format: AboutFormat,
    /// Print `target-s3 vX.Y.Z` and exit.
    #[arg(long, short = 'V')]
    pub version: bool,
    /// Read and validate the input and print the keys it would write, with record counts
    /// (`RECORDS<TAB>KEY` per line), without writing anything or printing STATE.
    #[arg(long)]
    pub dry_run: bool,
    /// Check the connection instead of loading: credentials, bucket, write and delete a probe
    /// object under the prefix. Prints each step; exits 1 if one fails.
    #[arg(long)]
    pub check: bool,
    /// `table_format: delta` or `iceberg`: print the newest STATE the tables committed for `pipeline_id`
    /// (`{}` if none), so a job runner that lost its state can resume from the lake; then exit.
    #[arg(long)]
    pub table_state: bool,
    /// Log level on stderr (error, warn, info, debug, trace); overrides RUST_LOG and the config.
    /// Any other value is a usage error (exit 2), not a filter that silences every line.
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level)]
    pub log_level: Option<LogLevel>,
}

/// `--log-level`: the `log_level` setting's values, with its error text.
fn parse_log_level(text: &str) -> Result<LogLevel, String> {
    LogLevel::from_name(text).ok_or_else(|| config::one_of_message(LogLevel::NAMES, text))
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AboutFormat {
    Text,
    Json,
    Markdown,
}

/// The binary's whole `main`.
pub fn main() -> ExitCode {
    // A bug must still end like every other failure: one `target-s3: error:` line, exit 1, and
    // nothing more on stdout (no STATE past it), whichever thread it happens on.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        logging::print_error(&format!("internal error (a bug; please report it): {message}{at}"));
        std::process::exit(1);
    }));
    let args = Args::parse();
    if args.version {
        println!("{NAME} v{}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if args.about {
        print!("{}", about(args.format));
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logging::print_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: &Args) -> Result<(), Error> {
    let sources: Vec<Source> = args.config.iter().map(|c| Source::parse(c)).collect();
    let merged = config::merge_sources(&sources);
    logging::init(args.log_level, merged.as_ref().ok().map(|m| &m.map));
    let raw = RawConfig::from_merged(merged?)?;
    let mut config = raw.validate()?;
    logging::hide_secrets_of(&config);
    config.dry_run = args.dry_run;
    if args.table_state {
        return table_state(&config);
    }
    if matches!(config.destination, Destination::Local { .. }) && !args.dry_run {
        let explicit = raw.max_open_files != config::settings::default_of("max_open_files");
        config.max_open_files = check_file_limit(config.max_open_files, explicit)?;
    }
    // The S3 store also opens `s3://` BATCH files, with the same credentials.
    let (storage, batches): (Arc<dyn Storage>, Option<Arc<dyn crate::singer::batch::Opener>>) =
        match &config.destination {
            _ if args.dry_run => (Arc::new(DryRun), None),
            Destination::Local { root } => (Arc::new(LocalFolder::new(root.clone(), config.allow_overwrite)), None),
            #[cfg(feature = "s3")]
            Destination::S3(options) => {
                let store = S3Store::connect(options)?;
                if args.check {
                    return check::s3(&store, options, &raw.prefix);
                }
                let store = Arc::new(store);
                (store.clone(), Some(store))
            }
            #[cfg(not(feature = "s3"))]
            Destination::S3(_) => {
                return Err(Error::Config(crate::error::ConfigError::Invalid {
                    setting: "destination".into(),
                    message: "this build has no S3 support (built without the `s3` feature)".into(),
                }));
            }
        };
    if args.check {
        return check::local(&config);
    }
    let input: Box<dyn std::io::Read + Send> = match &args.input {
        Some(path) => Box::new(std::fs::File::open(path).map_err(Error::Read)?),
        None => {
            if args.config.is_empty() && std::io::stdin().is_terminal() {
                eprintln!("{}", terminal_hint(&config));
            }
            Box::new(std::io::stdin())
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    crate::pipeline::run(&config, storage, batches, input, &mut out, &signals()?)?;
    Ok(())
}

/// Started by hand (no `--config`, a terminal on stdin): what the run will do with what is
/// typed, and how to end it, so a bare `target-s3` does not look hung.
fn terminal_hint(config: &config::Config) -> String {
    let what = match &config.destination {
        _ if config.dry_run => "--dry-run prints the files they would make".to_string(),
        Destination::Local { root } => format!("they load into the local folder `{}`", root.display()),
        Destination::S3(_) => "they load into the configured bucket".to_string(),
    };
    let end = if cfg!(windows) { "Ctrl-Z then Enter" } else { "Ctrl-D" };
    format!(
        "{NAME}: no --config: reading Singer messages from this terminal; {what} ({end} ends the input, Ctrl-C aborts)"
    )
}

/// `--table-state`: the tables' newest committed STATE on stdout.
fn table_state(config: &config::Config) -> Result<(), Error> {
    if config.table.is_none() {
        return Err(Error::Config(crate::error::ConfigError::Invalid {
            setting: "table_format".into(),
            message: "--table-state reads the STATE committed to tables: it needs table_format delta or iceberg".into(),
        }));
    }
    #[cfg(feature = "delta")]
    {
        let state = crate::table::table_state(config)?;
        println!("{}", state.as_deref().unwrap_or("{}"));
    }
    Ok(())
}

/// Every open (started) file of the local destination holds a file descriptor:
/// `max_open_files` must fit the process's limit (`ulimit -n`), with room for the rest of the
/// process. The soft limit is raised to the hard one when that is enough. Otherwise a value the
/// user set is refused at start-up (instead of the run failing at its thousandth partition),
/// and the default is lowered to what fits. Returns the number of files to allow.
fn check_file_limit(max_open_files: usize, explicit: bool) -> Result<usize, Error> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let needed = max_open_files as u64 + 64;
        let limit = getrlimit(Resource::Nofile);
        let (soft, hard) = (limit.current.unwrap_or(u64::MAX), limit.maximum.unwrap_or(u64::MAX));
        if soft >= needed {
            return Ok(max_open_files);
        }
        if hard >= needed {
            let raised = rustix::process::Rlimit { current: Some(needed), maximum: limit.maximum };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return Ok(max_open_files);
            }
        }
        if !explicit {
            let fits = soft.saturating_sub(64).max(16) as usize;
            tracing::info!(max_open_files = fits, limit = soft, "max_open_files lowered to fit ulimit -n");
            return Ok(fits);
        }
        Err(Error::Config(crate::error::ConfigError::Invalid {
            setting: "max_open_files".into(),
            message: format!(
                "{max_open_files} open files need about {needed} file descriptors, but this process may open {hard} (ulimit -n); lower max_open_files or raise the limit"
            ),
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = explicit;
        Ok(max_open_files)
    }
}

/// SIGTERM, SIGINT and SIGUSR1 (what job runners send to stop a job), as a channel.
fn signals() -> Result<crossbeam_channel::Receiver<i32>, Error> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGUSR1]).map_err(Error::Read)?;
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if tx.send(signal).is_err() {
                    break;
                }
            }
        })
        .map_err(Error::Read)?;
    Ok(rx)
}
