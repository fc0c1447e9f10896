//! The receipt of a booking: its owner's or an admin's, once it is confirmed.

use super::{BoxOffice, Error, Result};
use crate::auth::Principal;
use crate::domain::booking::BookingStatus;
use crate::domain::ids::BookingId;
use crate::notify::FactsError;
use crate::receipts::{ReceiptError, ReceiptFile};

impl BoxOffice {
    /// The stored receipt (a presigned URL or its bytes), or one rendered now if it is not stored.
    pub async fn receipt(&self, who: &Principal, id: BookingId) -> Result<ReceiptFile> {
        let booking = self.visible_booking(who, id).await?;
        if booking.status != BookingStatus::Confirmed {
            return Err(Error::NotConfirmed);
        }
        self.receipts.download(booking).await.map_err(|e| match e {
            ReceiptError::NotConfirmed => Error::NotConfirmed,
            ReceiptError::Facts(FactsError::Store(e)) => Error::Store(e),
            ReceiptError::Facts(FactsError::Missing(what)) => {
                Error::Internal(anyhow::anyhow!("receipt: {what} missing"))
            }
            ReceiptError::Render(e) => Error::Internal(e),
        })
    }
}
