//! The S3 destination (Amazon S3 and S3-compatible stores), on a small tokio runtime used only
//! for I/O. A file smaller than one part is one PutObject; a larger one becomes a multipart
//! upload while it is being written, with at most `upload_concurrency` requests in flight, so
//! memory is bounded by part size, never by file size. A multipart upload that fails for good
//! is aborted: no partial object and no orphaned parts stay behind.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Credentials, Region, RequestChecksumCalculation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectCannedAcl, ServerSideEncryption, StorageClass,
};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::{Completion, ObjectMeta, ObjectSink, Storage};
use crate::config::{ObjectOptions, S3Options};
use crate::error::StorageError;
use crate::keys::ObjectKey;

/// Sets the per-object options on PutObject and CreateMultipartUpload alike (their builders
/// are different types with the same setters).
macro_rules! with_object_options {
    ($request:expr, $options:expr, $meta:expr) => {{
        let o: &ObjectOptions = $options;
        $request
            .content_type($meta.content_type)
            .set_content_encoding($meta.content_encoding.map(str::to_string))
            .set_server_side_encryption(o.server_side_encryption.as_deref().map(ServerSideEncryption::from))
            .set_ssekms_key_id(o.kms_key_id.clone())
            .set_bucket_key_enabled(o.bucket_key_enabled)
            .set_acl(o.acl.as_deref().map(ObjectCannedAcl::from))
            .set_storage_class(o.storage_class.as_deref().map(StorageClass::from))
            .set_tagging(o.tagging.clone())
            .set_metadata(o.metadata.clone())
    }};
}

pub struct S3Store {
    inner: Arc<Inner>,
    /// Kept for its lifetime: dropping it stops the I/O threads.
    runtime: Option<Runtime>,
}

struct Inner {
    client: Client,
    bucket: String,
    objects: ObjectOptions,
    part_size: usize,
    checksums: bool,
    /// `If-None-Match: *` on PutObject and CompleteMultipartUpload: the store refuses to
    /// replace an object, so a key this run did not invent can never be overwritten.
    conditional: bool,
    permits: Arc<Semaphore>,
    handle: Handle,
    endpoint: String,
    /// Finishing and aborting uploads, awaited at shutdown so none is cut off half-way.
    background: Mutex<Vec<JoinHandle<()>>>,
}

impl S3Store {
    /// Builds the client: credentials (static keys, profile or default chain, then an optional
    /// assumed role), region, endpoint, retries and checksums. Makes no request yet.
    pub fn connect(options: &S3Options) -> Result<S3Store, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("s3-io")
            .enable_all()
            .build()
            .map_err(|e| StorageError::S3Setup(format!("cannot start the I/O runtime: {e}")))?;
        let client = runtime.block_on(build_client(options));
        let endpoint = options.endpoint_url.clone().unwrap_or_else(|| "AWS S3".to_string());
        let inner = Inner {
            client,
            bucket: options.bucket.clone(),
            objects: options.objects.clone(),
            part_size: options.part_size,
            checksums: !options.checksums_when_required,
            conditional: options.conditional_writes,
            permits: Arc::new(Semaphore::new(options.upload_concurrency)),
            handle: runtime.handle().clone(),
            endpoint,
            background: Mutex::new(Vec::new()),
        };
        Ok(S3Store { inner: Arc::new(inner), runtime: Some(runtime) })
    }

    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.inner.handle.block_on(f)
    }

    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// Runs the connection check, reporting each step to `report`. Returns whether all passed.
    pub fn check(&self, prefix: &str, mut report: impl FnMut(&str, Result<String, String>)) -> bool {
        let i = &self.inner;
        let bucket = &i.bucket;
        let head = self.block_on(i.client.head_bucket().bucket(bucket).send());
        let ok = match head {
            Ok(_) => {
                report("bucket reachable (s3:ListBucket)", Ok(format!("s3://{bucket} on {}", i.endpoint)));
                true
            }
            Err(e) => {
                report("bucket reachable (s3:ListBucket)", Err(explain(&e, "s3:ListBucket", bucket, "", &i.endpoint)));
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
        let meta = ObjectMeta { content_type: "text/plain", content_encoding: None, key_at_close: false };
        let put = with_object_options!(i.client.put_object().bucket(bucket).key(&key), &i.objects, &meta)
            .body(ByteStream::from_static(b"target-s3 connection check\n"));
        match self.block_on(put.send()) {
            Ok(_) => report("write a probe object (s3:PutObject)", Ok(format!("s3://{bucket}/{key}"))),
            Err(e) => {
                report(
                    "write a probe object (s3:PutObject)",
                    Err(explain(&e, "s3:PutObject", bucket, &key, &i.endpoint)),
                );
                return false;
            }
        }
        let mut passed = true;
        if i.conditional {
            // A second conditional put of the same key must be refused (412); a store that
            // accepts it silently would let a repeated key replace data.
            let again = with_object_options!(i.client.put_object().bucket(bucket).key(&key), &i.objects, &meta)
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
                    report(step, Err(explain(&e, "s3:PutObject", bucket, &key, &i.endpoint)));
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
                let why = explain(&e, "s3:DeleteObject", bucket, &key, &i.endpoint);
                report(
                    "delete the probe object (s3:DeleteObject)",
                    Err(format!("{why}; the probe object is left behind")),
                );
                false
            }
        }
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

async fn build_client(o: &S3Options) -> Client {
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
    let mut s3 = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(o.force_path_style);
    if o.checksums_when_required {
        s3 = s3.request_checksum_calculation(RequestChecksumCalculation::WhenRequired);
    }
    if let Some(role) = &o.role {
        let mut assume = aws_config::sts::AssumeRoleProvider::builder(&role.arn)
            .session_name(&role.session_name)
            .session_length(role.duration)
            .configure(&sdk);
        if let Some(id) = &role.external_id {
            assume = assume.external_id(&id.0);
        }
        s3 = s3.credentials_provider(assume.build().await);
    }
    Client::from_conf(s3.build())
}

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

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Storage for S3Store {
    fn create(&self, key: &ObjectKey, meta: &ObjectMeta) -> Result<Box<dyn ObjectSink>, StorageError> {
        Ok(Box::new(S3Sink {
            inner: self.inner.clone(),
            key: key.to_string(),
            meta: meta.clone(),
            buf: Vec::new(),
            upload: None,
            bytes: 0,
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, StorageError> {
        let i = &self.inner;
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request =
                i.client.list_objects_v2().bucket(&i.bucket).prefix(prefix).set_continuation_token(token.take());
            let out = i.handle.block_on(request.send()).map_err(|e| {
                i.error("ListObjectsV2", prefix, explain(&e, "s3:ListBucket", &i.bucket, "", &i.endpoint))
            })?;
            // A key no template could render (someone else's object) is not ours to touch.
            keys.extend(out.contents().iter().filter_map(|o| o.key().and_then(|k| ObjectKey::new(k.to_string()).ok())));
            match out.next_continuation_token() {
                Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_string()),
                _ => break,
            }
        }
        Ok(keys)
    }

    fn delete(&self, keys: &[ObjectKey]) -> Result<(), StorageError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let i = &self.inner;
        for chunk in keys.chunks(1000) {
            let objects: Vec<ObjectIdentifier> =
                chunk.iter().filter_map(|k| ObjectIdentifier::builder().key(k.as_str()).build().ok()).collect();
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| i.error("DeleteObjects", chunk[0].as_str(), e.to_string()))?;
            let out =
                i.handle.block_on(i.client.delete_objects().bucket(&i.bucket).delete(delete).send()).map_err(|e| {
                    i.error(
                        "DeleteObjects",
                        chunk[0].as_str(),
                        explain(&e, "s3:DeleteObject", &i.bucket, chunk[0].as_str(), &i.endpoint),
                    )
                })?;
            if let Some(failed) = out.errors().first() {
                let key = failed.key().unwrap_or_default().to_string();
                return Err(i.error("DeleteObjects", &key, failed.message().unwrap_or("refused").to_string()));
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("s3://{} on {}", self.inner.bucket, self.inner.endpoint)
    }

    fn shutdown(&self, deadline: Duration) {
        let tasks: Vec<_> = std::mem::take(&mut *self.inner.background.lock().expect("not poisoned"));
        self.inner.handle.block_on(async {
            let all = async {
                for t in tasks {
                    let _ = t.await;
                }
            };
            let _ = tokio::time::timeout(deadline, all).await;
        });
    }
}

impl Inner {
    fn error(&self, action: &'static str, key: &str, message: String) -> StorageError {
        StorageError::S3 { action, target: format!("s3://{}/{key}", self.bucket), message }
    }

    fn track(&self, task: JoinHandle<()>) {
        let mut background = self.background.lock().expect("not poisoned");
        background.retain(|t| !t.is_finished());
        background.push(task);
    }
}

struct Multipart {
    id: String,
    done: Vec<CompletedPart>,
    running: Vec<JoinHandle<Result<CompletedPart, StorageError>>>,
}

struct S3Sink {
    inner: Arc<Inner>,
    key: String,
    meta: ObjectMeta,
    /// The part being filled; never more than `part_size` bytes.
    buf: Vec<u8>,
    upload: Option<Multipart>,
    bytes: u64,
}

impl S3Sink {
    fn start_multipart(&mut self) -> Result<(), StorageError> {
        let i = &self.inner;
        let mut request = with_object_options!(
            i.client.create_multipart_upload().bucket(&i.bucket).key(&self.key),
            &i.objects,
            &self.meta
        );
        if i.checksums {
            request = request.checksum_algorithm(ChecksumAlgorithm::Crc32);
        }
        let out = i.handle.block_on(request.send()).map_err(|e| {
            i.error("CreateMultipartUpload", &self.key, explain(&e, "s3:PutObject", &i.bucket, &self.key, &i.endpoint))
        })?;
        let id = out.upload_id().unwrap_or_default().to_string();
        self.upload = Some(Multipart { id, done: Vec::new(), running: Vec::new() });
        Ok(())
    }

    /// Sends the full buffer as the next part; waits for a free upload slot first, which is
    /// what keeps memory bounded when S3 is slower than the input.
    fn send_part(&mut self) -> Result<(), StorageError> {
        if self.upload.is_none() {
            self.start_multipart()?;
        }
        let inner = self.inner.clone();
        let upload = self.upload.as_mut().expect("started above");
        // Surface a failed part now instead of at the end of the file.
        let (finished, running): (Vec<_>, Vec<_>) = upload.running.drain(..).partition(|t| t.is_finished());
        upload.running = running;
        for task in finished {
            upload.done.push(join_part(&inner.handle, task)?);
        }
        let permit = inner.handle.block_on(inner.permits.clone().acquire_owned()).expect("semaphore never closed");
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(inner.part_size));
        let number = (upload.done.len() + upload.running.len() + 1) as i32;
        let (id, key) = (upload.id.clone(), self.key.clone());
        let task_inner = inner.clone();
        upload.running.push(inner.handle.spawn(async move {
            let result = upload_part(&task_inner, &key, &id, number, body).await;
            drop(permit);
            result
        }));
        Ok(())
    }
}

fn join_part(
    handle: &Handle,
    task: JoinHandle<Result<CompletedPart, StorageError>>,
) -> Result<CompletedPart, StorageError> {
    handle.block_on(task).unwrap_or_else(|e| Err(StorageError::S3Setup(format!("upload task failed: {e}"))))
}

async fn upload_part(
    i: &Inner,
    key: &str,
    upload_id: &str,
    number: i32,
    body: Vec<u8>,
) -> Result<CompletedPart, StorageError> {
    let out = i
        .client
        .upload_part()
        .bucket(&i.bucket)
        .key(key)
        .upload_id(upload_id)
        .part_number(number)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| i.error("UploadPart", key, explain(&e, "s3:PutObject", &i.bucket, key, &i.endpoint)))?;
    let mut part = CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_string));
    if i.checksums {
        part = part.set_checksum_crc32(out.checksum_crc32().map(str::to_string));
    }
    Ok(part.build())
}

async fn put_object(i: &Inner, key: &str, meta: &ObjectMeta, body: Vec<u8>) -> Result<(), StorageError> {
    let _permit = i.permits.acquire().await.expect("semaphore never closed");
    let request = with_object_options!(i.client.put_object().bucket(&i.bucket).key(key), &i.objects, meta);
    request
        .set_if_none_match(i.conditional.then(|| "*".to_string()))
        .body(ByteStream::from(body))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| i.error("PutObject", key, explain(&e, "s3:PutObject", &i.bucket, key, &i.endpoint)))
}

/// Uploads the last part, waits for all parts, completes; aborts the upload on any failure.
async fn complete(i: &Inner, key: &str, mut upload: Multipart, last: Vec<u8>) -> Result<(), StorageError> {
    let mut result: Result<(), StorageError> = Ok(());
    let mut parts = std::mem::take(&mut upload.done);
    for task in upload.running.drain(..) {
        match task.await {
            Ok(Ok(part)) => parts.push(part),
            Ok(Err(e)) => result = result.and(Err(e)),
            Err(e) => result = result.and(Err(StorageError::S3Setup(format!("upload task failed: {e}")))),
        }
    }
    if result.is_ok() && (!last.is_empty() || parts.is_empty()) {
        let number = parts.len() as i32 + 1;
        let _permit = i.permits.acquire().await.expect("semaphore never closed");
        match upload_part(i, key, &upload.id, number, last).await {
            Ok(part) => parts.push(part),
            Err(e) => result = Err(e),
        }
    }
    if result.is_ok() {
        parts.sort_by_key(|p| p.part_number());
        let done = i
            .client
            .complete_multipart_upload()
            .bucket(&i.bucket)
            .key(key)
            .upload_id(&upload.id)
            .set_if_none_match(i.conditional.then(|| "*".to_string()))
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await;
        match done {
            Ok(_) => return Ok(()),
            Err(e) => {
                result = Err(i.error(
                    "CompleteMultipartUpload",
                    key,
                    explain(&e, "s3:PutObject", &i.bucket, key, &i.endpoint),
                ))
            }
        }
    }
    abort_upload(i, key, &upload.id).await;
    result
}

async fn abort_upload(i: &Inner, key: &str, upload_id: &str) {
    let r = i.client.abort_multipart_upload().bucket(&i.bucket).key(key).upload_id(upload_id).send().await;
    if let Err(e) = r {
        tracing::error!(
            key,
            upload_id,
            error = %explain(&e, "s3:AbortMultipartUpload", &i.bucket, key, &i.endpoint),
            "could not abort a multipart upload; its parts stay billed until a lifecycle rule removes them"
        );
    }
}

impl ObjectSink for S3Sink {
    fn write(&mut self, mut data: &[u8]) -> Result<(), StorageError> {
        self.bytes += data.len() as u64;
        let part_size = self.inner.part_size;
        while !data.is_empty() {
            if self.buf.capacity() == 0 {
                // A power of two, so doubling growth ends exactly at a (power-of-two) part
                // size instead of overshooting it: small files stay small, large ones never
                // hold more than one part.
                self.buf.reserve_exact(64 * 1024);
            }
            let room = if self.meta.key_at_close { data.len() } else { part_size - self.buf.len() };
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            // A key decided at close cannot start a multipart upload: such files (bounded by
            // max_bytes_per_file, checked at start-up) are one PutObject.
            if self.buf.len() >= part_size && !self.meta.key_at_close {
                self.send_part()?;
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>, done: Completion) {
        let S3Sink { inner, key, meta, buf, upload, bytes } = *self;
        let task_inner = inner.clone();
        let task = inner.handle.spawn(async move {
            let result = match upload {
                None => put_object(&task_inner, done.key.as_str(), &meta, buf).await,
                Some(upload) => complete(&task_inner, &key, upload, buf).await,
            };
            done.done(result.map(|()| bytes));
        });
        inner.track(task);
    }

    fn abort(self: Box<Self>) {
        let S3Sink { inner, key, upload, .. } = *self;
        let Some(mut upload) = upload else { return };
        let task_inner = inner.clone();
        let task = inner.handle.spawn(async move {
            // Parts still uploading would survive an abort sent before they finish.
            for t in upload.running.drain(..) {
                let _ = t.await;
            }
            abort_upload(&task_inner, &key, &upload.id).await;
        });
        inner.track(task);
    }
}

/// `s3://` BATCH files, read with the destination's credentials from any bucket they can read.
/// Called on the BATCH reader's thread; the body streams (never whole in memory).
impl crate::singer::batch::Opener for S3Store {
    fn open(&self, bucket: &str, key: &str) -> Result<Box<dyn std::io::Read + Send>, String> {
        let i = &self.inner;
        let out = i
            .handle
            .block_on(i.client.get_object().bucket(bucket).key(key).send())
            .map_err(|e| explain(&e, "s3:GetObject", bucket, key, &i.endpoint))?;
        Ok(Box::new(BlockingBody { handle: i.handle.clone(), body: out.body, chunk: bytes::Bytes::new() }))
    }
}

/// An object's body as a blocking reader, one network chunk at a time.
struct BlockingBody {
    handle: Handle,
    body: ByteStream,
    chunk: bytes::Bytes,
}

impl std::io::Read for BlockingBody {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.body.next()) {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}
