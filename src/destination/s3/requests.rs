//! The upload requests against a real S3 API (aws-sdk-s3): per-object options on every object,
//! CRC32 checksums, and `If-None-Match: *` so the store refuses to replace an existing object.
//! Each object carries a write id in its user metadata: when a request whose response was lost
//! is retried and the store answers "already exists", a HEAD tells our own earlier attempt
//! (done, fine) from someone else's object (an error).

use std::collections::HashMap;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ObjectCannedAcl, ServerSideEncryption, StorageClass,
};

use super::errors::explain;
use super::upload::{Part, Requests};
use crate::config::ObjectOptions;
use crate::destination::ObjectMeta;
use crate::error::StorageError;

/// User metadata key of the write id (`x-amz-meta-target-s3-write-id`).
pub const WRITE_ID: &str = "target-s3-write-id";

pub struct AwsRequests {
    pub client: Client,
    pub bucket: String,
    pub objects: ObjectOptions,
    /// Send CRC32 checksums (`checksum_calculation: when_supported`).
    pub checksums: bool,
    /// Send `If-None-Match: *` (`conditional_writes`, off with `allow_overwrite`).
    pub conditional: bool,
    /// For messages: where the bucket is.
    pub endpoint: String,
}

/// Sets the per-object options on PutObject and CreateMultipartUpload alike (their builders
/// are different types with the same setters).
macro_rules! with_object_options {
    ($request:expr, $options:expr, $meta:expr, $metadata:expr) => {{
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
            .set_metadata($metadata)
    }};
}
pub(super) use with_object_options;

impl AwsRequests {
    pub fn error(&self, action: &'static str, key: &str, message: String) -> StorageError {
        StorageError::S3 { action, target: format!("s3://{}/{key}", self.bucket), message }
    }

    fn metadata(&self, write_id: Option<&str>) -> Option<HashMap<String, String>> {
        let mut metadata = self.objects.metadata.clone().unwrap_or_default();
        if let Some(id) = write_id {
            metadata.insert(WRITE_ID.to_string(), id.to_string());
        }
        (!metadata.is_empty()).then_some(metadata)
    }

    /// `If-None-Match: *`, unless overwriting is allowed (the setting, or a `_SUCCESS` marker).
    fn if_none_match(&self, meta: &ObjectMeta) -> Option<String> {
        (self.conditional && !meta.overwrite).then(|| "*".to_string())
    }

    /// After a 412: whether the object under `key` is the one this upload wrote (a retried
    /// request whose first attempt succeeded but whose answer was lost).
    async fn is_ours(&self, key: &str, write_id: &str) -> bool {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(head) => head.metadata().and_then(|m| m.get(WRITE_ID)).is_some_and(|id| id == write_id),
            Err(_) => false,
        }
    }
}

fn precondition_failed<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    matches!(err, SdkError::ServiceError(se) if se.raw().status().as_u16() == 412)
}

impl Requests for AwsRequests {
    async fn put(&self, key: &str, meta: &ObjectMeta, write_id: &str, body: Vec<u8>) -> Result<(), StorageError> {
        let request = with_object_options!(
            self.client.put_object().bucket(&self.bucket).key(key),
            &self.objects,
            meta,
            self.metadata(Some(write_id))
        );
        match request.set_if_none_match(self.if_none_match(meta)).body(ByteStream::from(body)).send().await {
            Ok(_) => Ok(()),
            Err(e) if precondition_failed(&e) && self.is_ours(key, write_id).await => Ok(()),
            Err(e) => Err(self.error("PutObject", key, explain(&e, "s3:PutObject", &self.bucket, key, &self.endpoint))),
        }
    }

    async fn create_multipart(&self, key: &str, meta: &ObjectMeta, write_id: &str) -> Result<String, StorageError> {
        let mut request = with_object_options!(
            self.client.create_multipart_upload().bucket(&self.bucket).key(key),
            &self.objects,
            meta,
            self.metadata(Some(write_id))
        );
        if self.checksums {
            request = request.checksum_algorithm(ChecksumAlgorithm::Crc32);
        }
        let out = request.send().await.map_err(|e| {
            self.error("CreateMultipartUpload", key, explain(&e, "s3:PutObject", &self.bucket, key, &self.endpoint))
        })?;
        Ok(out.upload_id().unwrap_or_default().to_string())
    }

    async fn upload_part(&self, key: &str, upload_id: &str, number: i32, body: Vec<u8>) -> Result<Part, StorageError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| {
                self.error("UploadPart", key, explain(&e, "s3:PutObject", &self.bucket, key, &self.endpoint))
            })?;
        let crc32 = if self.checksums { out.checksum_crc32().map(str::to_string) } else { None };
        Ok(Part { number, etag: out.e_tag().map(str::to_string), crc32 })
    }

    async fn complete(
        &self,
        key: &str,
        meta: &ObjectMeta,
        write_id: &str,
        upload_id: &str,
        parts: Vec<Part>,
    ) -> Result<(), StorageError> {
        let parts: Vec<CompletedPart> = parts
            .into_iter()
            .map(|p| {
                CompletedPart::builder().part_number(p.number).set_e_tag(p.etag).set_checksum_crc32(p.crc32).build()
            })
            .collect();
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .set_if_none_match(self.if_none_match(meta))
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) if precondition_failed(&e) && self.is_ours(key, write_id).await => Ok(()),
            Err(e) => Err(self.error(
                "CompleteMultipartUpload",
                key,
                explain(&e, "s3:PutObject", &self.bucket, key, &self.endpoint),
            )),
        }
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        let r = self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id).send().await;
        if let Err(e) = r {
            tracing::error!(
                key,
                upload_id,
                error = %explain(&e, "s3:AbortMultipartUpload", &self.bucket, key, &self.endpoint),
                "could not abort a multipart upload; its parts stay billed until a lifecycle rule removes them"
            );
        }
    }
}
