//! Command line: raw flags -> checked configuration -> one pipeline run -> exit code.
//! Follows the Singer SDK's conventions (`--config` repeatable or `ENV`, `--input`, `--about`,
//! `--state` accepted), so Meltano and job runners drive it like any SDK target.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use serde_json::{Map, Value, json};

use crate::config::{self, Destination, RawConfig, Source};
#[cfg(feature = "s3")]
use crate::destination::S3Store;
use crate::destination::{DryRun, LocalFolder, Storage};
use crate::error::Error;
use crate::keys::MACROS;
use crate::settings::SETTINGS;

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
    /// Log level on stderr (error, warn, info, debug, trace); overrides RUST_LOG and the config.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AboutFormat {
    Text,
    Json,
    Markdown,
}

/// The binary's whole `main`.
pub fn main() -> ExitCode {
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
            if JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
                let line = json!({"timestamp": chrono::Utc::now().to_rfc3339(), "level": "ERROR",
                                  "fields": {"message": format!("{NAME}: error: {e}")}});
                eprintln!("{line}");
            } else {
                eprintln!("{NAME}: error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(args: &Args) -> Result<(), Error> {
    let sources: Vec<Source> = args.config.iter().map(|c| Source::parse(c)).collect();
    let merged = config::merge_sources(&sources);
    init_logging(args, merged.as_ref().ok().map(|m| &m.map));
    let raw = RawConfig::from_merged(merged?)?;
    raw.log_config()?;
    let mut config = raw.validate()?;
    config.dry_run = args.dry_run;
    // The S3 store also opens `s3://` BATCH files, with the same credentials.
    let (storage, batches): (Arc<dyn Storage>, Option<Arc<dyn crate::singer::batch::Opener>>) =
        match &config.destination {
            _ if args.dry_run => (Arc::new(DryRun), None),
            Destination::Local { root } => (Arc::new(LocalFolder::new(root.clone(), config.allow_overwrite)), None),
            #[cfg(feature = "s3")]
            Destination::S3(options) => {
                let store = S3Store::connect(options)?;
                if args.check {
                    return check(&store, &raw.prefix);
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
        return check_local(&config);
    }
    let input: Box<dyn std::io::Read + Send> = match &args.input {
        Some(path) => Box::new(std::fs::File::open(path).map_err(Error::Read)?),
        None => Box::new(std::io::stdin()),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    crate::pipeline::run(&config, storage, batches, input, &mut out, &signals()?)?;
    Ok(())
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

#[cfg(feature = "s3")]
fn check(store: &S3Store, prefix: &str) -> Result<(), Error> {
    let passed = store.check(prefix, |step, result| match result {
        Ok(detail) => println!("ok      {step}: {detail}"),
        Err(why) => println!("FAILED  {step}: {why}"),
    });
    if passed {
        println!("connection check passed");
        Ok(())
    } else {
        Err(Error::Check)
    }
}

fn check_local(config: &crate::config::Config) -> Result<(), Error> {
    let Destination::Local { root } = &config.destination else {
        return Ok(());
    };
    let probe = root.join(format!(".target_s3_check_{}", uuid::Uuid::new_v4()));
    let result = std::fs::create_dir_all(root)
        .and_then(|()| std::fs::write(&probe, b"check"))
        .and_then(|()| std::fs::remove_file(&probe));
    match result {
        Ok(()) => {
            println!("ok      write and delete a probe file: {}", root.display());
            println!("connection check passed");
            Ok(())
        }
        Err(e) => {
            println!("FAILED  write and delete a probe file in {}: {e}", root.display());
            Err(Error::Check)
        }
    }
}

const SECRET_SAFE_LOG_CAPS: &str = "aws_smithy_runtime=info,aws_smithy_runtime_api=info,aws_smithy_http=info,\
aws_smithy_http_client=info,aws_config=info,aws_sdk_s3=info,aws_sdk_sts=info,aws_sdk_sso=info,aws_sdk_ssooidc=info,\
aws_sigv4=info,aws_runtime=info,aws_credential_types=info,hyper=info,hyper_util=info,h2=info,rustls=info";

/// Set once logging is JSON (`log_format: json`), so the final error line is JSON too.
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn init_logging(args: &Args, map: Option<&Map<String, Value>>) {
    let setting = |name: &str| map.and_then(|m| m.get(name)).and_then(Value::as_str).map(str::to_string);
    let json = setting("log_format").as_deref() == Some("json");
    JSON_LOGS.store(json, std::sync::atomic::Ordering::Relaxed);
    let level = args
        .log_level
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .or_else(|| setting("log_level"))
        .unwrap_or_else(|| "info".into());
    // The AWS SDK logs request inputs (an assume-role external id) and signing details (the
    // session token header) at its most verbose levels: those crates stay at `info`, whatever
    // the level asked for, so no log line can carry a secret.
    let capped = format!("{level},{}", SECRET_SAFE_LOG_CAPS);
    let filter = tracing_subscriber::EnvFilter::try_new(&capped)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("info,{SECRET_SAFE_LOG_CAPS}")));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// `--about` in the three formats. Secrets are flagged, never shown (they have no defaults).
pub fn about(format: AboutFormat) -> String {
    match format {
        AboutFormat::Json => {
            let mut properties = Map::new();
            for s in SETTINGS {
                let mut p = Map::new();
                p.insert("type".into(), json!(s.kind.as_str()));
                if let Some(d) = s.default {
                    p.insert("default".into(), serde_json::from_str(d).expect("defaults are JSON"));
                }
                p.insert("description".into(), json!(s.description));
                p.insert("secret".into(), json!(s.secret));
                if s.secret {
                    p.insert("writeOnly".into(), json!(true));
                }
                if !s.allowed.is_empty() {
                    p.insert("enum".into(), json!(s.allowed));
                }
                if !s.aliases.is_empty() {
                    p.insert("aliases".into(), json!(s.aliases));
                }
                properties.insert(s.name.into(), Value::Object(p));
            }
            let about = json!({
                "name": NAME,
                "description": DESCRIPTION,
                "version": env!("CARGO_PKG_VERSION"),
                "capabilities": CAPABILITIES,
                "settings": {"type": "object", "properties": properties},
            });
            format!("{}\n", serde_json::to_string_pretty(&about).expect("about is serializable"))
        }
        AboutFormat::Markdown => format!(
            "# {NAME}\n\n{DESCRIPTION}\n\nVersion {}. Capabilities: {}.\n\n## Settings\n\n{}\n## Key template macros\n\n{}",
            env!("CARGO_PKG_VERSION"),
            CAPABILITIES.join(", "),
            settings_markdown(),
            macros_markdown()
        ),
        AboutFormat::Text => {
            let mut out = format!(
                "{NAME} v{}\n{DESCRIPTION}\ncapabilities: {}\n\nsettings:\n",
                env!("CARGO_PKG_VERSION"),
                CAPABILITIES.join(", ")
            );
            for s in SETTINGS {
                out.push_str(&format!(
                    "  {} ({}{}){}\n      {}\n",
                    s.name,
                    s.kind.as_str(),
                    s.default.map(|d| format!(", default {d}")).unwrap_or_default(),
                    if s.secret { " [secret]" } else { "" },
                    s.description
                ));
            }
            out
        }
    }
}

/// The settings table, as the README shows it (a test keeps the README equal to this).
pub fn settings_markdown() -> String {
    let mut out = String::from("| Setting | Type | Default | Description |\n|---|---|---|---|\n");
    for s in SETTINGS {
        let mut description = s.description.to_string();
        if !s.allowed.is_empty() {
            description.push_str(&format!(
                " One of: {}.",
                s.allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        if !s.aliases.is_empty() {
            description.push_str(&format!(
                " Also accepted as: {}.",
                s.aliases.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        if s.secret {
            description.push_str(" Secret.");
        }
        let default = s.default.map(|d| format!("`{}`", d.replace('|', "\\|"))).unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            s.name,
            s.kind.as_str(),
            default,
            description.replace('|', "\\|")
        ));
    }
    out
}

/// The `settings:` entries of the loader in meltano.yml (a test keeps the file equal to this):
/// Meltano kinds from the declared types, secrets as `password`, defaults as values.
pub fn meltano_settings_yaml() -> String {
    let mut out = String::new();
    for s in SETTINGS {
        let kind = match (s.secret, s.kind) {
            (true, _) => "password",
            (false, crate::settings::Kind::String) if !s.allowed.is_empty() => "options",
            (false, kind) => kind.as_str(),
        };
        out.push_str(&format!("    - name: {}\n      kind: {kind}\n", s.name));
        out.push_str(&format!("      description: {}\n", serde_json::Value::from(s.description)));
        if let Some(default) = s.default {
            out.push_str(&format!("      value: {default}\n"));
        }
        if !s.allowed.is_empty() {
            out.push_str("      options:\n");
            for a in s.allowed {
                out.push_str(&format!("      - {{label: {a:?}, value: {a:?}}}\n"));
            }
        }
        if s.secret {
            out.push_str("      sensitive: true\n");
        }
    }
    out
}

/// The macro table, as the README shows it.
pub fn macros_markdown() -> String {
    let mut out = String::from("| Macro | Example | Meaning |\n|---|---|---|\n");
    for m in MACROS {
        let names = m.names.iter().map(|n| format!("`{{{n}}}`")).collect::<Vec<_>>().join(", ");
        out.push_str(&format!("| {} | `{}` | {} |\n", names, m.example, m.description));
    }
    let (names, example, description) = crate::keys::RECORD_MACRO_DOC;
    out.push_str(&format!("| {names} | `{example}` | {description} |\n"));
    out
}
