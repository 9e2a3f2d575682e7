//! The S3 destination (Amazon S3 and S3-compatible stores), on a small tokio runtime used only
//! for I/O: [`client`] builds the SDK client and runs `--check`, [`upload`] is each object's
//! put-or-multipart state machine, [`requests`] its requests against the S3 API, [`errors`] the
//! one-line explanation of any failed request. Only this folder names the AWS SDK or tokio.

mod client;
mod errors;
mod requests;
mod upload;

#[cfg(feature = "delta")]
pub use client::credentials;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::Semaphore;

use super::{ObjectMeta, ObjectSink, Storage};
use crate::config::S3Options;
use crate::error::StorageError;
use crate::keys::ObjectKey;
use errors::explain;
use requests::AwsRequests;
use upload::{Upload, Uploads};

pub struct S3Store {
    uploads: Arc<Uploads<AwsRequests>>,
    /// Kept for its lifetime: dropping it stops the I/O threads.
    runtime: Option<Runtime>,
}

impl S3Store {
    /// Builds the client and the upload machinery. Makes no request yet.
    pub fn connect(options: &S3Options) -> Result<S3Store, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("s3-io")
            .enable_all()
            .build()
            .map_err(|e| StorageError::S3Setup(format!("cannot start the I/O runtime: {e}")))?;
        let requests = AwsRequests {
            client: runtime.block_on(client::build_client(options)),
            bucket: options.bucket.clone(),
            objects: options.objects.clone(),
            checksums: !options.checksums_when_required,
            conditional: options.conditional_writes,
            endpoint: options.endpoint_display.clone(),
        };
        let uploads = Uploads {
            requests: Arc::new(requests),
            handle: runtime.handle().clone(),
            permits: Arc::new(Semaphore::new(options.upload_concurrency)),
            part_size: options.part_size,
            background: Mutex::new(Vec::new()),
        };
        Ok(S3Store { uploads: Arc::new(uploads), runtime: Some(runtime) })
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.uploads.handle.block_on(f)
    }

    pub fn bucket(&self) -> &str {
        &self.uploads.requests.bucket
    }
}

impl Drop for S3Store {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl Storage for S3Store {
    fn create(&self, key: &ObjectKey, meta: &ObjectMeta) -> Result<Box<dyn ObjectSink>, StorageError> {
        Ok(Box::new(Upload::new(self.uploads.clone(), key.to_string(), meta.clone())))
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, StorageError> {
        let i = &self.uploads.requests;
        let handle = &self.uploads.handle;
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request =
                i.client.list_objects_v2().bucket(&i.bucket).prefix(prefix).set_continuation_token(token.take());
            let out = handle.block_on(request.send()).map_err(|e| {
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
        let i = &self.uploads.requests;
        let handle = &self.uploads.handle;
        for chunk in keys.chunks(1000) {
            let objects: Vec<ObjectIdentifier> =
                chunk.iter().filter_map(|k| ObjectIdentifier::builder().key(k.as_str()).build().ok()).collect();
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| i.error("DeleteObjects", chunk[0].as_str(), e.to_string()))?;
            let out =
                handle.block_on(i.client.delete_objects().bucket(&i.bucket).delete(delete).send()).map_err(|e| {
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
        let i = &self.uploads.requests;
        format!("s3://{} on {}", i.bucket, i.endpoint)
    }

    fn shutdown(&self, deadline: Duration) {
        let tasks = self.uploads.take_background();
        self.uploads.handle.block_on(async {
            let all = async {
                for t in tasks {
                    let _ = t.await;
                }
            };
            let _ = tokio::time::timeout(deadline, all).await;
        });
    }
}

/// `s3://` BATCH files, read with the destination's credentials from any bucket they can read.
/// Called on the BATCH reader's thread; the body streams (never whole in memory).
impl crate::singer::batch::Opener for S3Store {
    fn open(&self, bucket: &str, key: &str) -> Result<Box<dyn std::io::Read + Send>, String> {
        let i = &self.uploads.requests;
        let handle = &self.uploads.handle;
        let out = handle
            .block_on(i.client.get_object().bucket(bucket).key(key).send())
            .map_err(|e| explain(&e, "s3:GetObject", bucket, key, &i.endpoint))?;
        Ok(Box::new(BlockingBody { handle: handle.clone(), body: out.body, chunk: bytes::Bytes::new() }))
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
