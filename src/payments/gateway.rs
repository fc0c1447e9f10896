//! The payment provider seen from the saga: a trait (the built-in simulated provider is one
//! implementation) and `Guarded`, which puts every call behind a timeout, retries with
//! exponential backoff and jitter, and a circuit breaker. While the breaker is open, new
//! payments are refused with 503 up front instead of queueing behind a dead provider.

use std::sync::{Arc, Mutex};
use std::time::Duration;

// Tokio's clock, so tests can move time forward.
use tokio::time::Instant;

use futures::future::BoxFuture;

use crate::domain::ids::PaymentId;
use crate::domain::payment::{Outcome, PaymentMethod};

#[derive(Debug, Clone)]
pub struct ChargeRequest {
    pub payment_id: PaymentId,
    pub amount_cents: i64,
    pub currency: String,
    pub method: PaymentMethod,
}

/// What the provider says about a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderState {
    Pending,
    Settled(Outcome, Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// Worth retrying: the provider is down, slow or overloaded.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request itself; retrying will not help.
    #[error("payment provider refused the request: {0}")]
    Refused(String),
    #[error("payment provider circuit is open")]
    CircuitOpen,
}

pub trait PaymentGateway: Send + Sync + 'static {
    /// Starts a charge; idempotent per payment id. Returns the provider's reference.
    fn charge(&self, req: ChargeRequest) -> BoxFuture<'static, Result<String, GatewayError>>;
    fn status(&self, provider_ref: String) -> BoxFuture<'static, Result<ProviderState, GatewayError>>;
    fn refund(&self, provider_ref: String, amount_cents: i64) -> BoxFuture<'static, Result<(), GatewayError>>;
}

#[derive(Debug, Clone)]
pub struct GuardSettings {
    pub timeout: Duration,
    pub attempts: u32,
    pub backoff: Duration,
    /// Consecutive failed calls that open the breaker.
    pub threshold: u32,
    /// How long it stays open before one trial call is let through.
    pub cool_down: Duration,
}

impl Default for GuardSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            attempts: 3,
            backoff: Duration::from_millis(100),
            threshold: 5,
            cool_down: Duration::from_secs(10),
        }
    }
}

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

pub struct Guarded {
    inner: Arc<dyn PaymentGateway>,
    settings: GuardSettings,
    breaker: Mutex<Breaker>,
}

impl Guarded {
    pub fn new(inner: Arc<dyn PaymentGateway>, settings: GuardSettings) -> Self {
        Self { inner, settings, breaker: Mutex::new(Breaker::default()) }
    }

    /// How long the breaker stays open, if it is.
    pub fn open_for(&self) -> Option<Duration> {
        let b = self.breaker.lock().expect("breaker lock");
        b.open_until.and_then(|t| t.checked_duration_since(Instant::now())).filter(|d| !d.is_zero())
    }

    fn record(&self, ok: bool) {
        let mut b = self.breaker.lock().expect("breaker lock");
        if ok {
            if b.open_until.take().is_some() {
                tracing::info!("payment provider answers again; circuit closed");
            }
            b.failures = 0;
        } else {
            b.failures += 1;
            if b.failures >= self.settings.threshold {
                if b.open_until.is_none_or(|t| t <= Instant::now()) {
                    tracing::warn!(
                        failures = b.failures,
                        cool_down_ms = self.settings.cool_down.as_millis() as u64,
                        "payment provider failing; circuit open"
                    );
                }
                b.open_until = Some(Instant::now() + self.settings.cool_down);
            }
        }
        metrics::gauge!("boxoffice_payment_circuit_open").set(if b.open_until.is_some() { 1.0 } else { 0.0 });
    }

    async fn call<T>(
        &self,
        op: &'static str,
        make: impl Fn() -> BoxFuture<'static, Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        let mut last = GatewayError::CircuitOpen;
        for attempt in 0..self.settings.attempts {
            if self.open_for().is_some() {
                metrics::counter!("boxoffice_payment_gateway_calls_total", "op" => op, "outcome" => "circuit_open")
                    .increment(1);
                return Err(GatewayError::CircuitOpen);
            }
            let result = match tokio::time::timeout(self.settings.timeout, make()).await {
                Ok(r) => r,
                Err(_) => Err(GatewayError::Unavailable(format!("no answer within {:?}", self.settings.timeout))),
            };
            let outcome = match &result {
                Ok(_) => "ok",
                Err(GatewayError::Refused(_)) => "refused",
                Err(_) => "error",
            };
            metrics::counter!("boxoffice_payment_gateway_calls_total", "op" => op, "outcome" => outcome).increment(1);
            match result {
                Ok(v) => {
                    self.record(true);
                    return Ok(v);
                }
                // The provider answered: it is up, the request was just wrong.
                Err(e @ GatewayError::Refused(_)) => {
                    self.record(true);
                    return Err(e);
                }
                Err(e) => {
                    self.record(false);
                    tracing::warn!(op, attempt, error = %e, "payment provider call failed");
                    last = e;
                }
            }
            if attempt + 1 < self.settings.attempts {
                let base = self.settings.backoff * 2u32.pow(attempt);
                let jitter = rand::random_range(0..=base.as_millis() as u64 / 2);
                tokio::time::sleep(base + Duration::from_millis(jitter)).await;
            }
        }
        Err(last)
    }

    pub async fn charge(&self, req: ChargeRequest) -> Result<String, GatewayError> {
        self.call("charge", || self.inner.charge(req.clone())).await
    }

    pub async fn status(&self, provider_ref: &str) -> Result<ProviderState, GatewayError> {
        self.call("status", || self.inner.status(provider_ref.to_owned())).await
    }

    pub async fn refund(&self, provider_ref: &str, amount_cents: i64) -> Result<(), GatewayError> {
        self.call("refund", || self.inner.refund(provider_ref.to_owned(), amount_cents)).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Fails the first `fail` calls, then succeeds.
    struct Flaky {
        calls: AtomicU32,
        fail: u32,
    }

    impl PaymentGateway for Flaky {
        fn charge(&self, _: ChargeRequest) -> BoxFuture<'static, Result<String, GatewayError>> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let fail = n < self.fail;
            Box::pin(async move { if fail { Err(GatewayError::Unavailable("down".into())) } else { Ok("ref".into()) } })
        }
        fn status(&self, _: String) -> BoxFuture<'static, Result<ProviderState, GatewayError>> {
            Box::pin(async { Ok(ProviderState::Pending) })
        }
        fn refund(&self, _: String, _: i64) -> BoxFuture<'static, Result<(), GatewayError>> {
            Box::pin(std::future::pending())
        }
    }

    fn req() -> ChargeRequest {
        ChargeRequest {
            payment_id: PaymentId::new(),
            amount_cents: 100,
            currency: "EUR".into(),
            method: PaymentMethod::Card(crate::domain::payment::CardToken::parse("tok_ok").unwrap()),
        }
    }

    fn guarded(fail: u32, settings: GuardSettings) -> (Arc<Flaky>, Guarded) {
        let flaky = Arc::new(Flaky { calls: AtomicU32::new(0), fail });
        (flaky.clone(), Guarded::new(flaky, settings))
    }

    #[tokio::test(start_paused = true)]
    async fn retries_with_backoff_then_succeeds() {
        let (flaky, g) = guarded(2, GuardSettings::default());
        assert_eq!(g.charge(req()).await, Ok("ref".into()));
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
        assert!(g.open_for().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_and_lets_a_trial_through_after_cooling_down() {
        let settings = GuardSettings { threshold: 3, attempts: 2, ..GuardSettings::default() };
        let (flaky, g) = guarded(3, settings.clone());
        assert!(matches!(g.charge(req()).await, Err(GatewayError::Unavailable(_))));
        // The third failure in a row opens the breaker, so this call's retry is not even tried.
        assert_eq!(g.charge(req()).await, Err(GatewayError::CircuitOpen));
        assert!(g.open_for().is_some());
        assert_eq!(g.charge(req()).await, Err(GatewayError::CircuitOpen));
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
        tokio::time::advance(settings.cool_down + Duration::from_millis(1)).await;
        assert_eq!(g.charge(req()).await, Ok("ref".into()));
        assert!(g.open_for().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_never_answers_times_out() {
        let (_, g) = guarded(0, GuardSettings { attempts: 1, ..GuardSettings::default() });
        assert!(matches!(g.refund("ref", 1).await, Err(GatewayError::Unavailable(_))));
    }
}
