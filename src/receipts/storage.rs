//! Where receipt PDFs are kept: a local folder (`RECEIPTS_DIR`) or an S3 bucket (`S3_BUCKET`), both
//! through `object_store`. Every call is bounded (a timeout and few retries), so storage that is slow
//! or down costs a receipt seconds at most and the callers fall back to rendering it.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

use crate::config::Config;
use crate::domain::ids::BookingId;

/// Objects in a bucket live under this prefix (the bucket may hold other things); a local folder
/// is the receipts' own.
const S3_PREFIX: &str = "receipts";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("receipt storage did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("receipt storage: {0}")]
    Store(#[from] object_store::Error),
}

/// Where a stored receipt can be downloaded from.
pub enum Located {
    /// S3: a presigned URL, valid for `RECEIPT_URL_TTL_SECS`.
    Url(String),
    /// A local folder: the file's bytes.
    Bytes(Vec<u8>),
    /// Not stored (yet, or any more).
    Missing,
}

pub struct ReceiptStorage {
    objects: Arc<dyn ObjectStore>,
    /// S3 only: signs short-lived download URLs.
    signer: Option<Arc<AmazonS3>>,
    prefix: Option<&'static str>,
    url_ttl: Duration,
    timeout: Duration,
    describe: String,
}

impl ReceiptStorage {
    /// S3 when `S3_BUCKET` is set, else the folder `RECEIPTS_DIR` (created if missing).
    pub fn from_config(c: &Config) -> anyhow::Result<Self> {
        let timeout = Duration::from_millis(c.receipt_storage_timeout_ms.max(1));
        let url_ttl = Duration::from_secs(c.receipt_url_ttl_secs);
        let Some(bucket) = &c.s3_bucket else {
            std::fs::create_dir_all(&c.receipts_dir)
                .map_err(|e| anyhow::anyhow!("RECEIPTS_DIR: cannot create {}: {e}", c.receipts_dir))?;
            let local = LocalFileSystem::new_with_prefix(&c.receipts_dir)
                .map_err(|e| anyhow::anyhow!("RECEIPTS_DIR: {}: {e}", c.receipts_dir))?;
            return Ok(Self {
                objects: Arc::new(local),
                signer: None,
                prefix: None,
                url_ttl,
                timeout,
                describe: format!("folder {}", c.receipts_dir),
            });
        };
        // The AWS_* variables this does not name (container and web-identity credentials of a task
        // role, ...) come from the environment; the settings below win over them.
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(region) = c.s3_region.as_ref().or(c.aws_region.as_ref()) {
            b = b.with_region(region);
        }
        if let (Some(id), Some(key)) = (&c.aws_access_key_id, &c.aws_secret_access_key) {
            b = b.with_access_key_id(id).with_secret_access_key(key);
            if let Some(token) = &c.aws_session_token {
                b = b.with_token(token);
            }
        }
        // Plain HTTP only towards an endpoint named explicitly (a local S3-compatible server);
        // such servers address buckets by path, AWS itself by host name.
        let explicit_http = c.s3_endpoint.as_deref().is_some_and(|e| e.starts_with("http://"));
        b = match &c.s3_endpoint {
            Some(endpoint) => b.with_endpoint(endpoint).with_virtual_hosted_style_request(false),
            None => b.with_virtual_hosted_style_request(true),
        };
        // A few quick retries inside the timeout; a longer outage is the caller's to wait out.
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(500),
                base: 2.0,
            },
            max_retries: 2,
            retry_timeout: timeout,
        };
        let options = ClientOptions::new()
            .with_allow_http(explicit_http)
            .with_timeout(timeout)
            .with_connect_timeout(timeout.min(Duration::from_secs(2)));
        let s3 = Arc::new(
            b.with_allow_http(explicit_http)
                .with_retry(retry)
                .with_client_options(options)
                .build()
                .map_err(|e| anyhow::anyhow!("S3_BUCKET / S3_ENDPOINT / S3_REGION: {e}"))?,
        );
        let describe = match &c.s3_endpoint {
            Some(e) => format!("s3 bucket {bucket} at {e}"),
            None => format!("s3 bucket {bucket}"),
        };
        Ok(Self { objects: s3.clone(), signer: Some(s3), prefix: Some(S3_PREFIX), url_ttl, timeout, describe })
    }

    /// For logs: which folder or bucket.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// The object key of a booking's receipt.
    pub fn key(&self, booking: BookingId) -> Path {
        let name = format!("{booking}.pdf");
        match self.prefix {
            Some(p) => Path::from(format!("{p}/{name}")),
            None => Path::from(name),
        }
    }

    pub async fn put(&self, booking: BookingId, pdf: Vec<u8>) -> Result<(), StorageError> {
        let key = self.key(booking);
        self.bounded(self.objects.put(&key, PutPayload::from(pdf))).await?;
        Ok(())
    }

    /// The stored bytes, if any.
    pub async fn get(&self, booking: BookingId) -> Result<Option<Vec<u8>>, StorageError> {
        let key = self.key(booking);
        let read = async { self.objects.get(&key).await?.bytes().await };
        match self.bounded(read).await {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(StorageError::Store(object_store::Error::NotFound { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Where a client gets the stored receipt: a presigned URL (S3, after checking the object is
    /// there) or the file's bytes (a folder).
    pub async fn locate(&self, booking: BookingId) -> Result<Located, StorageError> {
        let Some(signer) = &self.signer else {
            return Ok(self.get(booking).await?.map_or(Located::Missing, Located::Bytes));
        };
        let key = self.key(booking);
        match self.bounded(self.objects.head(&key)).await {
            Ok(_) => {}
            Err(StorageError::Store(object_store::Error::NotFound { .. })) => return Ok(Located::Missing),
            Err(e) => return Err(e),
        }
        let url = self.bounded(signer.signed_url(http::Method::GET, &key, self.url_ttl)).await?;
        Ok(Located::Url(url.to_string()))
    }

    async fn bounded<T>(&self, call: impl Future<Output = Result<T, object_store::Error>>) -> Result<T, StorageError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(StorageError::Timeout(self.timeout)),
        }
    }
}
