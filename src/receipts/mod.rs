//! Receipts kept in object storage: rendered once when a booking is confirmed (by the notification
//! worker that mails it), stored (`storage`), and served from there, so every download is the same
//! file. Storage never holds a confirmation up: a failed store is retried in the background, and a
//! download of a receipt that is not stored renders it on demand (and stores it when it can).

pub mod storage;

use std::sync::Arc;
use std::time::Duration;

use crate::domain::ids::BookingId;
use crate::notify::{BookingFacts, FactsError};
use crate::persistence::{BookingRow, Store};
pub use storage::{Located, ReceiptStorage, StorageError};

/// The metric of receipts by outcome.
pub const METRIC: &str = "boxoffice_receipts_total";
/// Its outcomes: stored, a store that failed, and a receipt rendered for a download because it
/// was not stored.
pub const OUTCOMES: [&str; 3] = ["stored", "store_failed", "rendered_on_demand"];

/// Pauses between background store attempts: `first`, doubling up to this.
const RETRY_MAX_PAUSE: Duration = Duration::from_secs(60);

/// A download's answer.
pub enum ReceiptFile {
    /// The PDF itself.
    Pdf(Vec<u8>),
    /// A short-lived presigned URL of the stored PDF.
    Redirect(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The booking has no ticket code (it is not confirmed).
    #[error("the booking is not confirmed")]
    NotConfirmed,
    #[error(transparent)]
    Facts(#[from] FactsError),
    #[error("receipt rendering failed: {0}")]
    Render(anyhow::Error),
}

/// How a failed store is retried in the background.
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    pub first_pause: Duration,
    pub attempts: u32,
}

#[derive(Clone)]
pub struct Receipts(Arc<Inner>);

struct Inner {
    storage: ReceiptStorage,
    store: Store,
    retry: RetrySettings,
}

impl Receipts {
    pub fn new(storage: ReceiptStorage, store: Store, retry: RetrySettings) -> Self {
        Self(Arc::new(Inner { storage, store, retry }))
    }

    pub fn storage(&self) -> &ReceiptStorage {
        &self.0.storage
    }

    /// The receipt of a booking just confirmed, for its e-mail: the stored copy if there is one (a
    /// redelivered message), else rendered now and stored. Storage that is down costs nothing here:
    /// the bytes are still returned and the store is retried in the background.
    pub async fn at_confirmation(&self, facts: &BookingFacts) -> Result<Vec<u8>, ReceiptError> {
        let id = facts.booking.id;
        let stored = match self.0.storage.get(id).await {
            Ok(Some(pdf)) => return Ok(pdf),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        let pdf = self.render(facts).await?;
        // Storage that just failed is not asked again now (that would double the wait).
        let stored = match stored {
            Ok(()) => self.0.storage.put(id, pdf.clone()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            metrics::counter!(METRIC, "outcome" => "store_failed").increment(1);
            tracing::warn!(booking_id = %id, error = %e, "receipt not stored; retrying in the background");
            self.retry_later(id, pdf.clone());
        } else {
            metrics::counter!(METRIC, "outcome" => "stored").increment(1);
            tracing::info!(booking_id = %id, "receipt stored");
        }
        Ok(pdf)
    }

    /// The receipt of a confirmed booking for a download: where it is stored, or rendered again if it
    /// is missing (then stored) or storage cannot be reached (then only served).
    pub async fn download(&self, booking: BookingRow) -> Result<ReceiptFile, ReceiptError> {
        let id = booking.id;
        let reachable = match self.0.storage.locate(id).await {
            Ok(Located::Url(url)) => return Ok(ReceiptFile::Redirect(url)),
            Ok(Located::Bytes(pdf)) => return Ok(ReceiptFile::Pdf(pdf)),
            Ok(Located::Missing) => true,
            Err(e) => {
                tracing::warn!(booking_id = %id, error = %e, "receipt storage unreachable; rendering the receipt");
                false
            }
        };
        let facts = BookingFacts::load(&self.0.store, booking).await?;
        let pdf = self.render(&facts).await?;
        metrics::counter!(METRIC, "outcome" => "rendered_on_demand").increment(1);
        // Storage that just failed would only slow this download down by its timeout.
        if reachable {
            match self.0.storage.put(id, pdf.clone()).await {
                Ok(()) => {
                    metrics::counter!(METRIC, "outcome" => "stored").increment(1);
                    tracing::info!(booking_id = %id, "missing receipt rendered and stored");
                }
                Err(e) => {
                    metrics::counter!(METRIC, "outcome" => "store_failed").increment(1);
                    tracing::warn!(booking_id = %id, error = %e, "rendered receipt not stored");
                }
            }
        }
        Ok(ReceiptFile::Pdf(pdf))
    }

    async fn render(&self, facts: &BookingFacts) -> Result<Vec<u8>, ReceiptError> {
        let receipt = facts.receipt(&self.0.store).await?.ok_or(ReceiptError::NotConfirmed)?;
        crate::notify::render_receipt(receipt).await.map_err(ReceiptError::Render)
    }

    /// Stores `pdf` again after pauses, until it works or the attempts run out (then the next
    /// download renders and stores it). Receipts are a few tens of KB, attempts are bounded.
    fn retry_later(&self, id: BookingId, pdf: Vec<u8>) {
        let this = self.clone();
        tokio::spawn(async move {
            let RetrySettings { first_pause, attempts } = this.0.retry;
            let mut pause = first_pause;
            for attempt in 1..=attempts {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX_PAUSE);
                match this.0.storage.put(id, pdf.clone()).await {
                    Ok(()) => {
                        metrics::counter!(METRIC, "outcome" => "stored").increment(1);
                        tracing::info!(booking_id = %id, attempt, "receipt stored after a retry");
                        return;
                    }
                    Err(e) => {
                        metrics::counter!(METRIC, "outcome" => "store_failed").increment(1);
                        tracing::debug!(booking_id = %id, attempt, error = %e, "receipt store retry failed");
                    }
                }
            }
            tracing::warn!(booking_id = %id, attempts, "receipt not stored; a download will render it");
        });
    }
}
