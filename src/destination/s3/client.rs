//! The S3 client (credentials, region, endpoint, retries, checksums) and the connection check
//! behind `--check`.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation, SharedCredentialsProvider};
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ObjectCannedAcl, ServerSideEncryption, StorageClass};

use super::S3Store;
use super::errors::explain;
use super::requests::with_object_options;
use crate::config::{ObjectOptions, S3Options};
use crate::destination::ObjectMeta;

/// Builds the client: credentials (static keys, profile or default chain, then an optional
/// assumed role), region, endpoint, retries and checksums. Makes no request yet.
pub async fn build_client(o: &S3Options) -> Client {
    let sdk = sdk_config(o).await;
    let mut s3 = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(o.force_path_style);
    if o.checksums_when_required {
        s3 = s3.request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
    }
    if let Some(role) = assumed_role(o, &sdk).await {
        s3 = s3.credentials_provider(role);
    }
    Client::from_conf(s3.build())
}

/// The credentials the client signs with: the assumed role if there is one, else the base
/// credentials (for the Delta tables' store, which signs its own requests).
#[cfg(feature = "delta")]
pub async fn credentials(o: &S3Options) -> Option<SharedCredentialsProvider> {
    let sdk = sdk_config(o).await;
    match assumed_role(o, &sdk).await {
        Some(role) => Some(role),
        None => sdk.credentials_provider(),
    }
}

/// Base credentials, region, endpoint, retries and timeouts.
async fn sdk_config(o: &S3Options) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(o.max_retries + 1))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10).min(o.request_timeout))
                .read_timeout(Duration::from_secs(120).min(o.request_timeout))
                .operation_attempt_timeout(o.request_timeout)
                .build(),
        );
    if let Some(region) = &o.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &o.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(profile) = &o.profile {
        loader = loader.profile_name(profile);
    }
    if let Some((id, secret, token)) = &o.access_key {
        let creds = Credentials::new(&id.0, &secret.0, token.as_ref().map(|t| t.0.clone()), None, "target-s3-config");
        loader = loader.credentials_provider(creds);
    }
    let mut sdk = loader.load().await;
    if sdk.region().is_none() {
        sdk = sdk.into_builder().region(Region::new("us-east-1")).build();
    }
    sdk
}

/// `role_arn`: the role assumed on top of the base credentials, with its external id.
async fn assumed_role(o: &S3Options, sdk: &aws_config::SdkConfig) -> Option<SharedCredentialsProvider> {
    let role = o.role.as_ref()?;
    let mut assume = aws_config::sts::AssumeRoleProvider::builder(&role.arn)
        .session_name(&role.session_name)
        .session_length(role.duration)
        .configure(sdk);
    if let Some(id) = &role.external_id {
        assume = assume.external_id(&id.0);
    }
    Some(SharedCredentialsProvider::new(assume.build().await))
}

impl S3Store {
    /// Runs the connection check, reporting each step to `report`. Returns whether all passed.
    pub fn check(&self, prefix: &str, mut report: impl FnMut(&str, Result<String, String>)) -> bool {
        let i = &self.uploads.requests;
        let endpoint = &i.endpoint;
        let bucket = &i.bucket;
        let head = self.block_on(i.client.head_bucket().bucket(bucket).send());
        let ok = match head {
            Ok(_) => {
                report("bucket reachable (s3:ListBucket)", Ok(format!("s3://{bucket} on {}", endpoint)));
                true
            }
            Err(e) => {
                report("bucket reachable (s3:ListBucket)", Err(explain(&e, "s3:ListBucket", bucket, "", endpoint)));
                false
            }
        };
        if !ok {
            return false;
        }
        let prefix = prefix.trim_matches('/');
        let key = if prefix.is_empty() {
            format!("_target_s3_check_{}", uuid::Uuid::new_v4())
        } else {
            format!("{prefix}/_target_s3_check_{}", uuid::Uuid::new_v4())
        };
        let meta =
            ObjectMeta { content_type: "text/plain", content_encoding: None, key_at_close: false, overwrite: false };
        let put = with_object_options!(
            i.client.put_object().bucket(bucket).key(&key),
            &i.objects,
            &meta,
            i.objects.metadata.clone()
        )
        .body(ByteStream::from_static(b"target-s3 connection check\n"));
        match self.block_on(put.send()) {
            Ok(_) => report("write a probe object (s3:PutObject)", Ok(format!("s3://{bucket}/{key}"))),
            Err(e) => {
                report("write a probe object (s3:PutObject)", Err(explain(&e, "s3:PutObject", bucket, &key, endpoint)));
                return false;
            }
        }
        let mut passed = true;
        if i.conditional {
            // A second conditional put of the same key must be refused (412); a store that
            // accepts it silently would let a repeated key replace data.
            let again = with_object_options!(
                i.client.put_object().bucket(bucket).key(&key),
                &i.objects,
                &meta,
                i.objects.metadata.clone()
            )
            .if_none_match("*")
            .body(ByteStream::from_static(b"target-s3 connection check\n"));
            let step = "the store refuses to replace an object (If-None-Match: *)";
            match self.block_on(again.send()) {
                Err(SdkError::ServiceError(se)) if se.raw().status().as_u16() == 412 => {
                    report(step, Ok("yes: conditional_writes protects every key".into()))
                }
                Ok(_) => report(
                    step,
                    Ok("no: this store ignores If-None-Match, so only target-s3's own key checks prevent overwrites"
                        .into()),
                ),
                Err(e) => {
                    report(step, Err(explain(&e, "s3:PutObject", bucket, &key, endpoint)));
                    passed = false;
                }
            }
        }
        match self.block_on(i.client.delete_object().bucket(bucket).key(&key).send()) {
            Ok(_) => {
                report("delete the probe object (s3:DeleteObject)", Ok(format!("s3://{bucket}/{key}")));
                passed
            }
            Err(e) => {
                let why = explain(&e, "s3:DeleteObject", bucket, &key, endpoint);
                report(
                    "delete the probe object (s3:DeleteObject)",
                    Err(format!("{why}; the probe object is left behind")),
                );
                false
            }
        }
    }
}
