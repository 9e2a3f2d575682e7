//! Logging on stderr (text or JSON lines), and the run's last line: the error, in the same form.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value, json};

use super::NAME;
use crate::config::{Config, Destination, LogFormat, LogLevel};

/// The AWS SDK logs request inputs (an assume-role external id) and signing details (the
/// session token header) at its most verbose levels: those crates stay at `info`, whatever the
/// level asked for, so no log line can carry a secret.
const SECRET_SAFE_LOG_CAPS: &str = "aws_smithy_runtime=info,aws_smithy_runtime_api=info,aws_smithy_http=info,\
aws_smithy_http_client=info,aws_config=info,aws_sdk_s3=info,aws_sdk_sts=info,aws_sdk_sso=info,aws_sdk_ssooidc=info,\
aws_sigv4=info,aws_runtime=info,aws_credential_types=info,hyper=info,hyper_util=info,h2=info,rustls=info";

/// Crates whose `info` is their own bookkeeping (delta-rs logs every snapshot it builds): quiet
/// unless `RUST_LOG` asks for them.
/// delta-rs's transaction module logs an ERROR for every lost race for a log version, which
/// target-s3 retries itself (a successful run must not print ERROR lines).
const QUIET_DEPENDENCIES: &str = "deltalake_core::kernel::transaction=off,deltalake_core=warn,buoyant_kernel=warn,buoyant_kernel_engine=warn,object_store=warn";

/// Set once logging is JSON (`log_format: json`), so the final error line is JSON too.
static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Starts logging before the configuration is checked, so that its warnings (unknown settings
/// allowed by `allow_unknown_settings`) are logged: the level is `--log-level`, else `RUST_LOG`
/// (a filter spec, for developers), else the merged sources' `log_level`. A `log_level` or
/// `log_format` that is not allowed is ignored here; checking the config then fails on it.
pub fn init(cli_level: Option<LogLevel>, map: Option<&Map<String, Value>>) {
    let setting = |name: &str| map.and_then(|m| m.get(name)).and_then(Value::as_str);
    let json = match setting("log_format").and_then(LogFormat::from_name) {
        Some(LogFormat::Json) => true,
        Some(LogFormat::Text) | None => false,
    };
    JSON_LOGS.store(json, Ordering::Relaxed);
    let level = match (cli_level, std::env::var("RUST_LOG").ok().filter(|l| !l.trim().is_empty())) {
        (Some(level), _) => format!("{},{QUIET_DEPENDENCIES}", level.as_str()),
        (None, Some(spec)) => spec,
        (None, None) => format!(
            "{},{QUIET_DEPENDENCIES}",
            setting("log_level").and_then(LogLevel::from_name).unwrap_or(LogLevel::Info).as_str()
        ),
    };
    let capped = format!("{level},{SECRET_SAFE_LOG_CAPS}");
    let filter = tracing_subscriber::EnvFilter::try_new(&capped)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("info,{SECRET_SAFE_LOG_CAPS}")));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// The error as the run's last stderr line: `target-s3: error: ...`, a JSON log line under
/// `log_format: json`; scrubbed of the run's secrets ([`scrub`]).
pub fn print_error(error: &dyn std::fmt::Display) {
    let message = scrub(&format!("{NAME}: error: {error}"));
    if JSON_LOGS.load(Ordering::Relaxed) {
        let line = json!({"timestamp": chrono::Utc::now().to_rfc3339(), "level": "ERROR",
                          "fields": {"message": message}});
        eprintln!("{line}");
    } else {
        eprintln!("{message}");
    }
}

/// Text the lines this module prints must not show, with what to show instead.
static HIDDEN: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Remembers the checked config's secrets and its endpoint with credentials. Messages are
/// written not to carry them; this is the edge's second line of defence, for text built from
/// the SDK or the endpoint by code that may forget (e.g. an S3 error naming the endpoint).
pub fn hide_secrets_of(config: &Config) {
    let Destination::S3(o) = &config.destination else { return };
    let mut hidden = Vec::new();
    if let Some(url) = &o.endpoint_url
        && *url != o.endpoint_display
    {
        hidden.push((url.clone(), o.endpoint_display.clone()));
    }
    let secrets = o.access_key.iter().flat_map(|(id, secret, token)| [Some(id), Some(secret), token.as_ref()]);
    let secrets = secrets.chain(o.role.iter().map(|r| r.external_id.as_ref()));
    // A secret of a few characters would blank out ordinary words; real ones are longer.
    for secret in secrets.flatten().filter(|s| s.0.len() >= 6) {
        hidden.push((secret.0.clone(), "***".into()));
    }
    let _ = HIDDEN.set(hidden);
}

/// `text` with every hidden value replaced.
pub fn scrub(text: &str) -> String {
    let mut text = text.to_string();
    for (secret, shown) in HIDDEN.get().into_iter().flatten() {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), shown);
        }
    }
    text
}
