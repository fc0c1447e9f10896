//! Where the engine reads the time. Hold expiry, payment deadlines and the event-start rule
//! ask a `Clock` instead of the system, so that tests can move time forward (a manual clock)
//! instead of sleeping through real hold lifetimes and deadlines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The system clock, or a manual one that stands still until it is advanced.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that reads `start` until `advance` moves it (tests).
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self { manual: Some(Arc::new(Mutex::new(crate::domain::at_store_precision(start)))) }
    }

    /// The current time at the precision both stores keep (microseconds).
    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            None => crate::domain::now(),
            Some(t) => *t.lock().expect("clock lock"),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved (a no-op, logged).
    pub fn advance(&self, by: Duration) {
        match &self.manual {
            None => tracing::warn!("advance called on the system clock; ignored"),
            Some(t) => {
                let mut t = t.lock().expect("clock lock");
                *t += chrono::Duration::from_std(by).unwrap_or_default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let start = Utc::now();
        let c = Clock::manual(start);
        let first = c.now();
        assert_eq!(c.now(), first);
        c.advance(Duration::from_secs(90));
        assert_eq!(c.now() - first, chrono::Duration::seconds(90));
        let clone = c.clone();
        clone.advance(Duration::from_secs(10));
        assert_eq!(c.now() - first, chrono::Duration::seconds(100), "clones share the time");
        assert!(Clock::system().now() >= first);
    }
}
