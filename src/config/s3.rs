//! The S3 destination's settings, checked at start-up rather than at the first upload: bucket
//! name, sizes, credentials, encryption, object tags and metadata (S3's rules), the endpoint
//! and region as the AWS SDK will see them, and the one redaction of credentials in a URL.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use super::settings::{ChecksumCalculation, ServerSideEncryption};
use super::{AssumeRole, MIN_PART_SIZE, ObjectOptions, PLANNED_PARTS, RawConfig, S3Options};
use crate::error::ConfigError;

fn invalid(setting: &str, message: String) -> ConfigError {
    ConfigError::Invalid { setting: setting.into(), message }
}

impl RawConfig {
    /// Checks the S3 settings and builds the options of the S3 destination. `env` is the
    /// process environment (the AWS variables the SDK reads too).
    pub(super) fn s3_options(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<S3Options, ConfigError> {
        let Some(bucket) = self.bucket.clone() else {
            return Err(invalid("bucket", "is required for the s3 destination".into()));
        };
        check_bucket_name(&bucket)
            .map_err(|m| invalid("bucket", format!("{bucket:?} is not a valid S3 bucket name: {m}")))?;
        if self.part_size < MIN_PART_SIZE {
            return Err(invalid(
                "part_size",
                format!("must be at least {MIN_PART_SIZE} (5 MiB, the S3 minimum), got {}", self.part_size),
            ));
        }
        if self.part_size > 5 * 1024 * 1024 * 1024 {
            return Err(invalid("part_size", "must be at most 5 GiB".into()));
        }
        let most = self.part_size * PLANNED_PARTS;
        if self.max_bytes_per_file > most {
            return Err(invalid(
                "max_bytes_per_file",
                format!(
                    "must be at most part_size x {PLANNED_PARTS} = {most}, got {}: one upload holds at most 10,000 parts and a file's size is estimated while it is written (a Parquet file can end up a third above it); raise part_size for larger files, or use 0 for that largest size",
                    self.max_bytes_per_file
                ),
            ));
        }
        if self.request_timeout_seconds == 0 {
            return Err(invalid("request_timeout_seconds", "must be at least 1".into()));
        }
        if self.upload_concurrency == 0 || self.upload_concurrency > 64 {
            return Err(invalid("upload_concurrency", format!("must be 1 to 64, got {}", self.upload_concurrency)));
        }
        if self.max_retries > 100 {
            return Err(invalid("max_retries", format!("must be 0 to 100, got {}", self.max_retries)));
        }
        let access_key = match (&self.aws_access_key_id, &self.aws_secret_access_key) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.clone(), self.aws_session_token.clone())),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid("aws_secret_access_key", "is required with aws_access_key_id".into()));
            }
            (None, Some(_)) => {
                return Err(invalid("aws_access_key_id", "is required with aws_secret_access_key".into()));
            }
        };
        if !(900..=43200).contains(&self.role_duration_seconds) {
            return Err(invalid(
                "role_duration_seconds",
                format!("must be 900 to 43200, got {}", self.role_duration_seconds),
            ));
        }
        let role = self.role_arn.as_ref().map(|arn| AssumeRole {
            arn: arn.clone(),
            external_id: self.external_id.clone(),
            session_name: self.role_session_name.clone(),
            duration: Duration::from_secs(self.role_duration_seconds),
        });
        let endpoint_url = match &self.endpoint_url {
            Some(url) => Some(check_endpoint(&url.0).map_err(|m| invalid("endpoint_url", m))?),
            None => endpoint_from_env(env)?,
        };
        let profile = self.aws_profile.clone().or_else(|| env("AWS_PROFILE").filter(|p| !p.is_empty()));
        let from_profile = profile_settings(env, profile.as_deref().unwrap_or("default"));
        // With an endpoint but no region anywhere the SDK looks, its region chain would ask the
        // EC2 metadata service (a slow timeout and long warnings off EC2); S3-compatible stores
        // take us-east-1, as the SDK falls back to anyway.
        let region_elsewhere =
            ["AWS_REGION", "AWS_DEFAULT_REGION"].iter().any(|v| env(v).is_some_and(|r| !r.is_empty()))
                || from_profile.region;
        let has_endpoint = endpoint_url.is_some() || from_profile.endpoint_url.is_some();
        let region = match &self.region {
            Some(region) if region.trim().is_empty() => {
                return Err(invalid(
                    "region",
                    "must not be empty (unset it to use the AWS environment or profile)".into(),
                ));
            }
            Some(region) => Some(region.clone()),
            None if has_endpoint && !region_elsewhere => Some("us-east-1".to_string()),
            None => None,
        };
        let endpoint_display = match (&endpoint_url, &from_profile.endpoint_url) {
            (Some(url), _) => redact_url(url),
            (None, Some(url)) => redact_url(url),
            (None, None) => "AWS S3".to_string(),
        };
        let checksums_when_required = match self.checksum_calculation {
            ChecksumCalculation::WhenSupported => false,
            ChecksumCalculation::WhenRequired => true,
        };
        let kms = match self.server_side_encryption {
            Some(ServerSideEncryption::AwsKms | ServerSideEncryption::AwsKmsDsse) => true,
            Some(ServerSideEncryption::Aes256) | None => false,
        };
        if self.kms_key_id.is_some() && !kms {
            return Err(invalid("kms_key_id", "needs server_side_encryption aws:kms or aws:kms:dsse".into()));
        }
        let tagging = match &self.object_tags {
            Some(tags) => tagging(tags).map_err(|m| invalid("object_tags", m))?,
            None => None,
        };
        let metadata = match &self.object_metadata {
            Some(metadata) => Some(header_metadata(metadata).map_err(|m| invalid("object_metadata", m))?),
            None => None,
        };
        Ok(S3Options {
            bucket,
            region,
            endpoint_url,
            endpoint_display,
            force_path_style: self.force_path_style,
            access_key,
            profile: self.aws_profile.clone(),
            role,
            part_size: self.part_size as usize,
            upload_concurrency: self.upload_concurrency as usize,
            request_timeout: Duration::from_secs(self.request_timeout_seconds),
            max_retries: self.max_retries as u32,
            checksums_when_required,
            conditional_writes: self.conditional_writes && !self.allow_overwrite,
            objects: ObjectOptions {
                server_side_encryption: self.server_side_encryption.map(|s| s.as_str().to_string()),
                kms_key_id: self.kms_key_id.clone(),
                bucket_key_enabled: self.bucket_key_enabled,
                acl: self.acl.map(|a| a.as_str().to_string()),
                storage_class: self.storage_class.clone(),
                tagging,
                metadata,
            },
        })
    }
}

/// `url` without the `user:password@` it may carry: `http://***@host:9000`. Everything up to
/// the last `@` after the scheme is hidden, so a password holding `/`, `?` or `@` cannot leak
/// through a careless split. Use it wherever an endpoint is shown.
pub fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    match url[start..].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_string(),
    }
}

/// An endpoint must be an http(s) URL with a host.
fn check_endpoint(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
    let host = rest.map(|r| r.rsplit_once('@').map_or(r, |(_, host)| host));
    match host {
        Some(h) if !h.is_empty() && !h.starts_with(['/', ':', '?', '#']) => Ok(url.to_string()),
        Some(_) => Err(format!("{:?} has no host", redact_url(url))),
        None => Err(format!("must start with http:// or https://, got {:?}", redact_url(url))),
    }
}

/// The endpoint the SDK takes from the environment when `endpoint_url` is unset.
fn endpoint_from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, ConfigError> {
    if env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    for var in ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"] {
        if let Some(url) = env(var).filter(|u| !u.is_empty()) {
            return check_endpoint(&url).map(Some).map_err(|message| ConfigError::Env { var: var.into(), message });
        }
    }
    Ok(None)
}

/// What the shared AWS config and credentials files give the profile, as far as the region
/// decision and the displayed endpoint need it.
#[derive(Debug, Default, PartialEq, Eq)]
struct ProfileSettings {
    region: bool,
    endpoint_url: Option<String>,
}

/// Reads `region` and `endpoint_url` of `profile` from `AWS_CONFIG_FILE` (`~/.aws/config`,
/// sections `[default]` / `[profile NAME]`) and `AWS_SHARED_CREDENTIALS_FILE`
/// (`~/.aws/credentials`, sections `[NAME]`). A missing or unreadable file gives nothing.
fn profile_settings(env: &dyn Fn(&str) -> Option<String>, profile: &str) -> ProfileSettings {
    let home = env("HOME").filter(|h| !h.is_empty());
    let path = |var: &str, default: &str| -> Option<PathBuf> {
        match env(var).filter(|p| !p.is_empty()) {
            Some(p) => match (p.strip_prefix("~/"), &home) {
                (Some(rest), Some(home)) => Some(PathBuf::from(home).join(rest)),
                _ => Some(PathBuf::from(p)),
            },
            None => home.as_ref().map(|h| PathBuf::from(h).join(default)),
        }
    };
    let mut found = ProfileSettings::default();
    let config_section = if profile == "default" { "default".to_string() } else { format!("profile {profile}") };
    for (file, section) in [
        (path("AWS_CONFIG_FILE", ".aws/config"), config_section.as_str()),
        (path("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"), profile),
    ] {
        let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) else { continue };
        let values = ini_section(&text, section);
        found.region |= values.get("region").is_some_and(|r| !r.is_empty());
        if found.endpoint_url.is_none() {
            found.endpoint_url = values.get("endpoint_url").filter(|u| !u.is_empty()).cloned();
        }
    }
    found
}

/// The top-level `key = value` pairs of one `[section]` of an AWS config file (indented lines
/// are nested sub-settings and are skipped).
fn ini_section(text: &str, section: &str) -> HashMap<String, String> {
    let mut values = HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            inside = name == section;
            continue;
        }
        if inside
            && !line.starts_with([' ', '\t'])
            && let Some((key, value)) = trimmed.split_once('=')
        {
            values.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    values
}

/// `object_tags` as the `Tagging` header (`k=v&k2=v2`, URL-encoded), checked against S3's tag
/// rules, which S3 would otherwise enforce only at the first upload.
fn tagging(tags: &BTreeMap<String, String>) -> Result<Option<String>, String> {
    const ALLOWED: &str = "letters, digits, spaces and + - = . _ : / @";
    if tags.len() > 10 {
        return Err(format!("S3 allows at most 10 tags per object, got {}", tags.len()));
    }
    let bad_char = |s: &str| s.chars().find(|c| !(c.is_alphanumeric() || " +-=._:/@".contains(*c)));
    for (key, value) in tags {
        if !(1..=128).contains(&key.encode_utf16().count()) {
            return Err(format!("key {key:?} must be 1 to 128 characters long"));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(format!("key {key:?}: the prefix `aws:` is reserved for AWS"));
        }
        if let Some(c) = bad_char(key) {
            return Err(format!("key {key:?}: {c:?} is not allowed in a tag ({ALLOWED})"));
        }
        if value.encode_utf16().count() > 256 {
            return Err(format!("the value of {key:?} is longer than 256 characters"));
        }
        if let Some(c) = bad_char(value) {
            return Err(format!("the value of {key:?}: {c:?} is not allowed in a tag ({ALLOWED})"));
        }
    }
    if tags.is_empty() {
        return Ok(None);
    }
    Ok(Some(tags.iter().map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v))).collect::<Vec<_>>().join("&")))
}

/// `object_metadata` as `x-amz-meta-*` headers. Keys must be HTTP header tokens and must stay
/// distinct once S3 lowercases them; values that are not printable ASCII (S3 metadata is
/// ASCII; `Zoë` came back as `ZoÃ«`) or would lose leading or trailing spaces are sent as one
/// RFC 2047 encoded word, `=?UTF-8?B?...?=`, the form S3 itself returns such values in.
fn header_metadata(metadata: &BTreeMap<String, String>) -> Result<HashMap<String, String>, String> {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let mut out = HashMap::new();
    let mut lowercase: HashMap<String, &str> = HashMap::new();
    let mut size = 0;
    for (key, value) in metadata {
        if key.is_empty() {
            return Err("a key is empty".into());
        }
        if let Some(c) = key.chars().find(|c| !token(*c)) {
            return Err(format!(
                "key {key:?}: {c:?} is not allowed in a metadata key (letters, digits and !#$%&'*+-.^_`|~)"
            ));
        }
        if let Some(other) = lowercase.insert(key.to_ascii_lowercase(), key) {
            return Err(format!("keys {other:?} and {key:?} are the same to S3, which lowercases metadata keys"));
        }
        let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b)) && value.trim() == value;
        let value = if plain { value.clone() } else { format!("=?UTF-8?B?{}?=", base64(value.as_bytes())) };
        size += key.len() + value.len();
        out.insert(key.clone(), value);
    }
    if size > 2048 {
        return Err(format!("S3 allows 2 KB of user metadata per object, these keys and values take {size} bytes"));
    }
    Ok(out)
}

/// Standard base64 with padding (RFC 4648), for RFC 2047 encoded words.
pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// S3's general-purpose bucket naming rules.
pub fn check_bucket_name(name: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&name.len()) {
        return Err("it must be 3 to 63 characters long");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-') {
        return Err("only lowercase letters, digits, dots and hyphens are allowed");
    }
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge_ok(name.as_bytes()[0]) || !edge_ok(name.as_bytes()[name.len() - 1]) {
        return Err("it must start and end with a letter or digit");
    }
    if name.contains("..") {
        return Err("it must not contain two dots in a row");
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err("it must not look like an IP address");
    }
    Ok(())
}
