//! `--check`: reports each step of the connection check, one line per step (`ok` or `FAILED`),
//! for the local folder and for S3 (the probe itself is the S3 destination's).

#[cfg(feature = "s3")]
use crate::config::S3Options;
use crate::config::{Config, Destination};
#[cfg(feature = "s3")]
use crate::destination::S3Store;
use crate::error::Error;

#[cfg(feature = "s3")]
use super::logging::scrub;

/// The first line, before the requests: where the endpoint really is (the setting, else the
/// AWS variables the SDK reads), without credentials, and the region the client will use.
#[cfg(feature = "s3")]
pub fn describe(options: &S3Options, prefix: &str) -> String {
    let region = options.region.as_deref().unwrap_or("from the AWS environment, profile or instance");
    let prefix = prefix.trim_matches('/');
    let at = if prefix.is_empty() { String::new() } else { format!("/{prefix}") };
    format!("destination: s3://{}{at} on {} (region {region})", options.bucket, options.endpoint_display)
}

#[cfg(feature = "s3")]
pub fn s3(store: &S3Store, options: &S3Options, prefix: &str) -> Result<(), Error> {
    println!("ok      {}", describe(options, prefix));
    let passed = store.check(prefix, |step, result| match result {
        Ok(detail) => println!("ok      {step}: {}", scrub(&detail)),
        Err(why) => println!("FAILED  {step}: {}", scrub(&why)),
    });
    if passed {
        println!("connection check passed");
        Ok(())
    } else {
        Err(Error::Check)
    }
}

pub fn local(config: &Config) -> Result<(), Error> {
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
