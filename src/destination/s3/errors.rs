//! One line that says what is wrong and what to do, for any failed S3 request: the text users
//! read at the edge, kept apart from the request code.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// One line that says what is wrong and what to do, for any failed S3 request.
pub fn explain<E>(
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    action: &str,
    bucket: &str,
    key: &str,
    endpoint: &str,
) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let resource =
        if key.is_empty() { format!("arn:aws:s3:::{bucket}") } else { format!("arn:aws:s3:::{bucket}/{key}") };
    match err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let message = se.err().message().unwrap_or_default();
            match (se.err().code(), status) {
                (Some("NoSuchBucket"), _) | (Some("NotFound") | None, 404) => {
                    format!("bucket {bucket:?} does not exist (check `bucket`, `region` and `endpoint_url`)")
                }
                (Some("InvalidAccessKeyId"), _) => {
                    "the access key id is not known to the server (check `aws_access_key_id` or the credential chain)"
                        .into()
                }
                (Some("SignatureDoesNotMatch"), _) => {
                    "the secret key does not match the access key id (check `aws_secret_access_key`)".into()
                }
                (Some("ExpiredToken" | "InvalidToken" | "TokenRefreshRequired"), _) => {
                    "the session token is expired or invalid (check `aws_session_token` or refresh the credentials)"
                        .into()
                }
                (
                    Some("PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException"),
                    _,
                )
                | (None, 301) => {
                    format!("bucket {bucket:?} is in another region (set `region` to the bucket's region)")
                }
                (Some("AccessDenied" | "AllAccessDisabled"), _) | (None, 403) => format!(
                    "access denied: the credentials lack {action} on {resource} (check the IAM policy, bucket policy and KMS key policy){}",
                    if message.is_empty() { String::new() } else { format!(": {message}") }
                ),
                (Some("PreconditionFailed"), _) | (None, 412) => format!(
                    "an object already exists under {resource}, and target-s3 never replaces one (uploads carry If-None-Match: *); the key template or run_id repeats a key of an earlier run: add {{run_id}} or {{uuid}}, or set allow_overwrite to true"
                ),
                (Some("ConditionalRequestConflict"), _) | (None, 409) => format!(
                    "another writer is creating {resource} at the same time (conditional write conflict); keys must be unique per process (see run_id)"
                ),
                (Some("NotImplemented"), _) | (None, 501) => format!(
                    "the store does not support a request header target-s3 sent ({code}: {message}); for If-None-Match set `conditional_writes` to false",
                    code = se.err().code().unwrap_or("HTTP 501")
                ),
                (Some("KMS.DisabledException" | "KMS.NotFoundException" | "KMS.AccessDeniedException"), _) => {
                    format!("the KMS key cannot be used: {message} (check `kms_key_id` and the key policy)")
                }
                (Some(code), _) => format!("{code} (HTTP {status}): {message}"),
                (None, _) => format!("HTTP {status} from the server: {message}"),
            }
        }
        SdkError::DispatchFailure(df) => {
            let context = DisplayErrorContext(err).to_string();
            if context.contains("credential") || context.contains("AssumeRole") || context.contains("sts") {
                format!("could not get AWS credentials: {}", one_line(&context))
            } else if df.is_timeout() {
                format!("timed out connecting to {endpoint}")
            } else if df.is_io() && (context.contains("onnection refused") || context.contains("dns error")) {
                format!(
                    "cannot reach {endpoint} (check `endpoint_url`, the network and the region): {}",
                    one_line(&context)
                )
            } else if df.is_io() {
                format!("the connection to {endpoint} failed during the request: {}", one_line(&context))
            } else {
                format!("request not sent to {endpoint}: {}", one_line(&context))
            }
        }
        SdkError::TimeoutError(_) => format!("request to {endpoint} timed out"),
        other => one_line(&DisplayErrorContext(other).to_string()),
    }
}

pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
