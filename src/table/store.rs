//! Where the tables live: one `object_store` for the destination (the local folder, or the
//! bucket reached with exactly the file destination's credentials, endpoint, addressing, SSE and
//! retries) and each table's URL in it. delta-rs gets this store as its storage backend, so its
//! own option-based credential lookup (no external id; panics without credentials) never runs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::{ProvideCredentials, SharedCredentialsProvider};
use deltalake_core::logstore::{LogStore, LogStoreFactory, StorageConfig, default_logstore, logstore_factories};
use deltalake_core::{DeltaResult, DeltaTableBuilder};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential};
use object_store::local::LocalFileSystem;
use object_store::{ClientOptions, CredentialProvider, ObjectStore, RetryConfig};
use url::Url;

use crate::config::{Destination, S3Options};
use crate::error::TableError;

pub struct TableStore {
    root: Arc<dyn ObjectStore>,
    /// `file:///abs/folder/` or `s3://bucket/`: table URLs are this joined with a table's key.
    base: Url,
}

impl TableStore {
    pub fn open(destination: &Destination, runtime: &tokio::runtime::Runtime) -> Result<TableStore, TableError> {
        let setup = |message: String| TableError { table: String::new(), message };
        match destination {
            Destination::Local { root } => std::fs::create_dir_all(root)
                .and_then(|()| std::fs::canonicalize(root))
                .map_err(|e| setup(format!("cannot create the folder {}: {e}", root.display())))
                .and_then(|abs| {
                    let base = Url::from_directory_path(&abs)
                        .map_err(|()| setup(format!("{} is not an absolute path", abs.display())))?;
                    Ok(TableStore { root: Arc::new(LocalFileSystem::new()), base })
                }),
            Destination::S3(o) => {
                register_s3_logstore();
                let credentials = runtime.block_on(crate::destination::s3_credentials(o));
                let store = s3_store(o, credentials).map_err(|e| setup(format!("cannot set up S3 access: {e}")))?;
                let base = Url::parse(&format!("s3://{}/", o.bucket))
                    .map_err(|e| setup(format!("bucket {:?} does not form a URL: {e}", o.bucket)))?;
                Ok(TableStore { root: Arc::new(store), base })
            }
        }
    }

    /// The URL of the table whose folder is `key` (percent-encoded segment by segment).
    pub fn table_url(&self, key: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            // Keys hold `%` escapes of their own (`a%2Fb` for stream `a/b`): the URL must
            // carry them as text, not decode them into folders.
            let escaped = key.split('/').filter(|s| !s.is_empty()).map(|s| s.replace('%', "%25"));
            segments.pop_if_empty().extend(escaped).push("");
        }
        url
    }

    pub fn builder(&self, key: &str) -> DeltaResult<DeltaTableBuilder> {
        let url = self.table_url(key);
        Ok(DeltaTableBuilder::from_url(url.clone())?.with_storage_backend(self.root.clone(), url))
    }

    /// Lists the folders directly under `key` (for `--table-state`).
    pub async fn folders(&self, key: &str) -> Result<Vec<String>, object_store::Error> {
        let prefix = self.path_of(key);
        let listing = self.root.list_with_delimiter(Some(&prefix)).await?;
        let base = self.path_of("");
        let strip = base.as_ref().len();
        Ok(listing
            .common_prefixes
            .into_iter()
            .map(|p| p.as_ref()[strip..].trim_start_matches('/').to_string())
            .collect())
    }

    /// Whether the store refuses a second create of one object (`If-None-Match: *`), as Delta
    /// commits need: writes a probe object under `key` twice, then deletes it. The local folder
    /// always does (no-replace link); only S3-compatible stores are asked.
    pub async fn honours_conditional_writes(&self, key: &str) -> Result<bool, object_store::Error> {
        if self.base.scheme() == "file" {
            return Ok(true);
        }
        use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
        let path = self.path_of(key);
        let create = || PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        let body = || PutPayload::from_static(b"target-s3 conditional write check\n");
        self.root.put_opts(&path, body(), create()).await?;
        let second = self.root.put_opts(&path, body(), create()).await;
        let deleted = self.root.delete(&path).await;
        match second {
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                deleted.map(|()| true)
            }
            Ok(_) => deleted.map(|()| false),
            Err(e) => Err(e),
        }
    }

    /// The first object under `key` that is neither part of a Delta table nor a data file
    /// target-s3 writes into one (`part-*.parquet`, or a temporary file, left by a run that
    /// failed or was killed before its first commit): a table created around it would hide it,
    /// and a VACUUM would delete it.
    /// `tolerated`: folders inside the table folder the format writes before its table exists
    /// (an Iceberg table's first metadata, written before the catalog names it).
    pub async fn foreign_object(&self, key: &str, tolerated: &[&str]) -> Result<Option<String>, object_store::Error> {
        use futures::StreamExt;
        let prefix = self.path_of(key);
        let mut listing = self.root.list(Some(&prefix));
        // A folder of many orphaned data files: enough to decide.
        let mut looked = 0;
        while let Some(meta) = listing.next().await {
            let meta = match meta {
                Ok(meta) => meta,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(e),
            };
            // Its data files, and the temporary files a killed run left (`.t3-*.tmp`).
            let inside = meta.location.as_ref().strip_prefix(prefix.as_ref()).unwrap_or_default();
            let ours = meta.location.filename().is_some_and(|f| {
                (f.starts_with("part-") && f.ends_with(".parquet")) || (f.starts_with(".t3-") && f.ends_with(".tmp"))
            }) || tolerated.iter().any(|t| inside.trim_start_matches('/').starts_with(&format!("{t}/")));
            if !ours {
                // As users name it: a local path from the root, an object by its URL.
                let shown = if self.base.scheme() == "file" {
                    format!("/{}", meta.location)
                } else {
                    format!("{}{}", self.base, meta.location)
                };
                return Ok(Some(shown));
            }
            looked += 1;
            if looked >= 10_000 {
                break;
            }
        }
        Ok(None)
    }

    /// Writes a commit round's record (`commitInfo.targetS3`) beside the table's log, as
    /// `_target_s3_state/<pipeline>/latest.json`, the one before it moved to `previous.json`:
    /// Delta's log cleanup removes old commit files (and their `commitInfo`), never these;
    /// readers and VACUUM pass over `_` folders. Two per table and pipeline, whatever the number
    /// of commits: a round cut short still leaves the complete one before it.
    pub async fn put_state(
        &self,
        folder: &str,
        pipeline_id: &str,
        info: &serde_json::Value,
    ) -> Result<(), object_store::Error> {
        use object_store::ObjectStoreExt;
        let dir = state_folder(folder, pipeline_id);
        let (latest, previous) =
            (self.path_of(&format!("{dir}/latest.json")), self.path_of(&format!("{dir}/previous.json")));
        match self.root.get(&latest).await {
            Ok(old) => {
                let bytes = old.bytes().await?;
                self.root.put(&previous, bytes.into()).await?;
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let body = serde_json::to_vec(info).expect("JSON serializes");
        self.root.put(&latest, body.into()).await.map(|_| ())
    }

    /// The round records of `pipeline_id` kept beside a table (newest two), with their txn.
    pub async fn states(
        &self,
        folder: &str,
        pipeline_id: &str,
    ) -> Result<Vec<(i64, serde_json::Value)>, object_store::Error> {
        use object_store::ObjectStoreExt;
        let dir = state_folder(folder, pipeline_id);
        let mut found = Vec::new();
        for name in ["latest", "previous"] {
            let bytes = match self.root.get(&self.path_of(&format!("{dir}/{name}.json"))).await {
                Ok(object) => object.bytes().await?,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            if let Ok(info) = serde_json::from_slice::<serde_json::Value>(&bytes)
                && let Some(txn) = info["txnVersion"].as_i64()
            {
                found.push((txn, info));
            }
        }
        Ok(found)
    }

    /// The object `key`'s bytes.
    #[cfg_attr(not(feature = "iceberg"), allow(dead_code))]
    pub async fn get(&self, key: &str) -> Result<bytes::Bytes, object_store::Error> {
        use object_store::ObjectStoreExt;
        self.root.get(&self.path_of(key)).await?.bytes().await
    }

    /// Deletes the object `key` (an Iceberg metadata file the table's properties retire).
    #[cfg_attr(not(feature = "iceberg"), allow(dead_code))]
    pub async fn delete(&self, key: &str) -> Result<(), object_store::Error> {
        use object_store::ObjectStoreExt;
        self.root.delete(&self.path_of(key)).await
    }

    /// The bytes `range` of the object `key` (a Parquet footer).
    #[cfg_attr(not(feature = "iceberg"), allow(dead_code))]
    pub async fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<bytes::Bytes, object_store::Error> {
        use object_store::ObjectStoreExt;
        self.root.get_range(&self.path_of(key), range).await
    }

    /// Writes the object `key` (Iceberg metadata and manifests: each name new, never replaced).
    #[cfg_attr(not(feature = "iceberg"), allow(dead_code))]
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), object_store::Error> {
        use object_store::ObjectStoreExt;
        self.root.put(&self.path_of(key), body.into()).await.map(|_| ())
    }

    /// The URI of the object `key` as Iceberg metadata names files: the path as it is, not
    /// percent-encoded (`file:///data/my lake/t/country=a%2Fb/part-0.parquet`), which is how
    /// pyiceberg, DuckDB and Java's Iceberg open them.
    #[cfg_attr(not(feature = "iceberg"), allow(dead_code))]
    pub fn literal_uri(&self, key: &str) -> String {
        let key = key.trim_matches('/');
        match self.base.to_file_path() {
            Ok(path) if self.base.scheme() == "file" => {
                format!("file://{}/{key}", path.display().to_string().trim_end_matches('/'))
            }
            _ => format!("{}{key}", self.base.as_str()),
        }
    }

    /// The key of the object at `uri` (a table's metadata file, as [`TableStore::literal_uri`]
    /// writes it), `None` when it is not in this store.
    #[cfg_attr(not(feature = "iceberg"), allow(dead_code))]
    pub fn key_of(&self, uri: &str) -> Option<String> {
        let root = self.literal_uri("");
        s3_scheme(uri).strip_prefix(root.as_str()).map(|k| k.trim_start_matches('/').to_string())
    }

    /// Moves the object `from` to `to` (a rename in the local folder, copy and delete on S3).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), object_store::Error> {
        use object_store::ObjectStoreExt;
        self.root.rename(&self.path_of(from), &self.path_of(to)).await
    }

    /// The store's path of the object `key`: the base's own path (a local folder's), then the
    /// key's segments as they are, since a key's `%` escapes (partition values) are part of its
    /// object's name, as delta-rs reads a data file's path from the log.
    fn path_of(&self, key: &str) -> object_store::path::Path {
        let base = object_store::path::Path::from_url_path(self.base.path()).unwrap_or_default();
        let key = key.split('/').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("/");
        let joined = if base.as_ref().is_empty() { key } else { format!("{}/{key}", base.as_ref()) };
        object_store::path::Path::parse(&joined).unwrap_or_else(|_| object_store::path::Path::from(joined.as_str()))
    }
}

/// Commits through `If-None-Match: *` (delta-rs's default log store), which AWS S3, MinIO, R2
/// and moto honour: two writers that race for a version get one success and one conflict, and
/// delta-rs retries the loser on top of the winner.
fn register_s3_logstore() {
    #[derive(Debug)]
    struct ConditionalPut;
    impl LogStoreFactory for ConditionalPut {
        fn with_options(
            &self,
            prefixed_store: Arc<dyn ObjectStore>,
            root_store: Arc<dyn ObjectStore>,
            location: &Url,
            options: &StorageConfig,
        ) -> DeltaResult<Arc<dyn LogStore>> {
            Ok(default_logstore(prefixed_store, root_store, location, options))
        }
    }
    let url = Url::parse("s3://").expect("a fixed URL");
    logstore_factories().insert(url, Arc::new(ConditionalPut));
}

fn s3_store(
    o: &S3Options,
    credentials: Option<SharedCredentialsProvider>,
) -> object_store::Result<object_store::aws::AmazonS3> {
    let mut b = AmazonS3Builder::new()
        .with_bucket_name(&o.bucket)
        .with_region(o.region.clone().unwrap_or_else(|| "us-east-1".into()))
        .with_retry(RetryConfig { max_retries: o.max_retries as usize, ..RetryConfig::default() })
        .with_client_options(
            ClientOptions::new()
                .with_timeout(o.request_timeout)
                .with_connect_timeout(Duration::from_secs(10).min(o.request_timeout))
                .with_allow_http(o.endpoint_url.as_deref().is_some_and(|e| e.starts_with("http://"))),
        );
    match (&o.endpoint_url, o.force_path_style) {
        (Some(endpoint), true) => b = b.with_endpoint(endpoint).with_virtual_hosted_style_request(false),
        (Some(endpoint), false) => {
            // Virtual-hosted addressing on a custom endpoint: the bucket goes into the host, as
            // the SDK does it for the files.
            let mut url = Url::parse(endpoint).map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: format!("endpoint_url: {e}").into(),
            })?;
            let host = format!("{}.{}", o.bucket, url.host_str().unwrap_or_default());
            let _ = url.set_host(Some(&host));
            b = b.with_endpoint(url.as_str().trim_end_matches('/')).with_virtual_hosted_style_request(true);
        }
        (None, _) => b = b.with_virtual_hosted_style_request(!o.force_path_style),
    }
    let objects = &o.objects;
    let encryption = [
        ("aws_server_side_encryption", objects.server_side_encryption.clone()),
        ("aws_sse_kms_key_id", objects.kms_key_id.clone()),
        ("aws_sse_bucket_key_enabled", objects.bucket_key_enabled.map(|b| b.to_string())),
    ];
    for (name, value) in encryption {
        if let (Some(value), Ok(key)) = (value, name.parse::<AmazonS3ConfigKey>()) {
            b = b.with_config(key, value);
        }
    }
    if let Some(provider) = credentials {
        b = b.with_credentials(Arc::new(SdkCredentials { provider, cached: tokio::sync::Mutex::new(None) }));
    }
    b.build()
}

/// The S3 client's credential chain (static keys, profile, SSO, web identity, an assumed role
/// with its external id), signing the table's requests too. Cached until five minutes before
/// the credentials expire, so an assumed role is asked for once per session, not per request.
struct SdkCredentials {
    provider: SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

impl std::fmt::Debug for SdkCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SdkCredentials")
    }
}

#[async_trait::async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = cached.as_ref()
            && expiry.is_none_or(|e| e > SystemTime::now() + Duration::from_secs(300))
        {
            return Ok(credential.clone());
        }
        let c = self.provider.provide_credentials().await.map_err(|e| object_store::Error::Generic {
            store: "S3",
            source: format!("no AWS credentials: {}", aws_sdk_s3::error::DisplayErrorContext(&e)).into(),
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: c.access_key_id().to_string(),
            secret_key: c.secret_access_key().to_string(),
            token: c.session_token().map(str::to_string),
        });
        *cached = Some((credential.clone(), c.expiry()));
        Ok(credential)
    }
}

/// Where a pipeline's round records live in a table folder (the id hashed: any text may be a
/// pipeline id, a folder name may not).
fn state_folder(folder: &str, pipeline_id: &str) -> String {
    format!("{folder}/_target_s3_state/{:016x}", crate::keys::fnv1a(pipeline_id.as_bytes()))
}

/// `uri` with Hadoop's S3 schemes (`s3a://`, `s3n://`, as Spark and Trino write them into Iceberg
/// metadata) as `s3://`: the same objects.
#[cfg_attr(not(feature = "iceberg"), allow(dead_code))]
pub fn s3_scheme(uri: &str) -> std::borrow::Cow<'_, str> {
    match uri.strip_prefix("s3a://").or_else(|| uri.strip_prefix("s3n://")) {
        Some(rest) => format!("s3://{rest}").into(),
        None => uri.into(),
    }
}
