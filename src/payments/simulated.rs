//! The built-in simulated payment provider. It behaves like a real asynchronous one: a charge is
//! acknowledged at once with a reference, and the verdict arrives later as a signed webhook
//! over real HTTP (retried if the webhook does not answer 2xx). Test values:
//! card tokens `tok_ok` and `tok_slow` (later) succeed, `tok_silent` never calls back, and every
//! other token (`tok_declined`, or one made up) is declined, as a real provider declines a token
//! it never issued; phone numbers ending `0000` fail and ending `9999` never call back. The verdict is a pure function of the reference
//! (which encodes the kind and the charge time), so a status poll after a restart of this
//! process answers exactly what the lost callback would have said.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use futures::future::BoxFuture;

use super::gateway::{ChargeRequest, GatewayError, PaymentGateway, ProviderState};
use super::signature;
use crate::domain::ids::PaymentId;
use crate::domain::payment::{Outcome, PaymentMethod};

#[derive(Debug, Clone)]
pub struct SimulatedSettings {
    /// When the verdict of a normal charge is ready (and its webhook sent).
    pub delay: Duration,
    /// The same for `tok_slow`.
    pub slow_delay: Duration,
    /// Share of calls (0.0–1.0) that fail as if the provider were down.
    pub failure_rate: f64,
    /// How long the provider itself takes to answer a call.
    pub latency: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ok,
    Declined,
    Slow,
    Silent,
}

impl Kind {
    fn of(method: &PaymentMethod) -> Self {
        match method {
            PaymentMethod::Card(t) => match t.as_str() {
                "tok_ok" => Kind::Ok,
                "tok_slow" => Kind::Slow,
                "tok_silent" => Kind::Silent,
                // `tok_declined` and any token the provider never issued.
                _ => Kind::Declined,
            },
            PaymentMethod::MobileMoney(p) if p.as_str().ends_with("0000") => Kind::Declined,
            PaymentMethod::MobileMoney(p) if p.as_str().ends_with("9999") => Kind::Silent,
            PaymentMethod::MobileMoney(_) => Kind::Ok,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::Declined => "declined",
            Kind::Slow => "slow",
            Kind::Silent => "silent",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ok" => Kind::Ok,
            "declined" => Kind::Declined,
            "slow" => Kind::Slow,
            "silent" => Kind::Silent,
            _ => return None,
        })
    }
}

pub struct SimulatedProvider {
    settings: SimulatedSettings,
    secret: Vec<u8>,
    /// Set once the HTTP listener is bound (the webhook is this service's own route).
    webhook_url: Arc<OnceLock<String>>,
    http: reqwest::Client,
    /// Charges made by this process, for idempotency by payment id.
    charges: DashMap<PaymentId, String>,
}

impl SimulatedProvider {
    pub fn new(settings: SimulatedSettings, secret: Vec<u8>, webhook_url: Arc<OnceLock<String>>) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("http client builds");
        Self { settings, secret, webhook_url, http, charges: DashMap::new() }
    }

    fn outage(&self) -> bool {
        self.settings.failure_rate > 0.0 && rand::random::<f64>() < self.settings.failure_rate
    }

    fn delay_of(&self, kind: Kind) -> Duration {
        if kind == Kind::Slow { self.settings.slow_delay } else { self.settings.delay }
    }

    /// The verdict for a reference `sim_<kind>_<charged at, unix ms>_<payment id>`.
    fn verdict(&self, provider_ref: &str, now_ms: i64) -> Option<ProviderState> {
        let mut parts = provider_ref.strip_prefix("sim_")?.splitn(3, '_');
        let kind = Kind::parse(parts.next()?)?;
        let charged_at: i64 = parts.next()?.parse().ok()?;
        let ready = now_ms >= charged_at + self.delay_of(kind).as_millis() as i64;
        Some(match kind {
            Kind::Silent => ProviderState::Pending,
            _ if !ready => ProviderState::Pending,
            Kind::Declined => ProviderState::Settled(Outcome::Failed, Some("card_declined".into())),
            Kind::Ok | Kind::Slow => ProviderState::Settled(Outcome::Succeeded, None),
        })
    }

    fn call_back(&self, payment_id: PaymentId, provider_ref: String, kind: Kind) {
        let Some(url) = self.webhook_url.get().cloned() else {
            tracing::warn!(%payment_id, "simulated provider has no webhook address; the saga will poll");
            return;
        };
        let (http, secret, delay) = (self.http.clone(), self.secret.clone(), self.delay_of(kind));
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let (status, reason) = match kind {
                Kind::Declined => ("failed", Some("card_declined")),
                _ => ("succeeded", None),
            };
            let body = serde_json::json!({
                "payment_id": payment_id, "provider_ref": provider_ref, "status": status, "reason": reason,
            })
            .to_string();
            for attempt in 0..6u32 {
                let signed = signature::sign(&secret, chrono::Utc::now().timestamp(), body.as_bytes());
                let sent = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-signature", signed)
                    .body(body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => tracing::warn!(%payment_id, status = r.status().as_u16(), attempt, "webhook refused"),
                    Err(e) => tracing::warn!(%payment_id, error = %e, attempt, "webhook not delivered"),
                }
                tokio::time::sleep(Duration::from_millis(200) * 2u32.pow(attempt)).await;
            }
            tracing::warn!(%payment_id, "simulated provider gave up calling the webhook");
        });
    }
}

impl PaymentGateway for Arc<SimulatedProvider> {
    fn charge(&self, req: ChargeRequest) -> BoxFuture<'static, Result<String, GatewayError>> {
        let me = self.clone();
        Box::pin(async move {
            tokio::time::sleep(me.settings.latency).await;
            if me.outage() {
                return Err(GatewayError::Unavailable("simulated outage".into()));
            }
            if let Some(existing) = me.charges.get(&req.payment_id) {
                return Ok(existing.clone());
            }
            let kind = Kind::of(&req.method);
            let provider_ref =
                format!("sim_{}_{}_{}", kind.code(), chrono::Utc::now().timestamp_millis(), req.payment_id.0.simple());
            me.charges.insert(req.payment_id, provider_ref.clone());
            if kind != Kind::Silent {
                me.call_back(req.payment_id, provider_ref.clone(), kind);
            }
            Ok(provider_ref)
        })
    }

    fn status(&self, provider_ref: String) -> BoxFuture<'static, Result<ProviderState, GatewayError>> {
        let me = self.clone();
        Box::pin(async move {
            tokio::time::sleep(me.settings.latency).await;
            if me.outage() {
                return Err(GatewayError::Unavailable("simulated outage".into()));
            }
            me.verdict(&provider_ref, chrono::Utc::now().timestamp_millis())
                .ok_or_else(|| GatewayError::Refused(format!("unknown reference {provider_ref}")))
        })
    }

    fn refund(&self, provider_ref: String, _amount_cents: i64) -> BoxFuture<'static, Result<(), GatewayError>> {
        let me = self.clone();
        Box::pin(async move {
            tokio::time::sleep(me.settings.latency).await;
            if me.outage() {
                return Err(GatewayError::Unavailable("simulated outage".into()));
            }
            if !provider_ref.starts_with("sim_") {
                return Err(GatewayError::Refused(format!("unknown reference {provider_ref}")));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::payment::{CardToken, PhoneNumber};

    fn provider() -> SimulatedProvider {
        let settings = SimulatedSettings {
            delay: Duration::from_millis(100),
            slow_delay: Duration::from_millis(1000),
            failure_rate: 0.0,
            latency: Duration::ZERO,
        };
        SimulatedProvider::new(settings, b"k".to_vec(), Arc::new(OnceLock::new()))
    }

    #[test]
    fn test_values_map_to_kinds() {
        let card = |t: &str| Kind::of(&PaymentMethod::Card(CardToken::parse(t).unwrap()));
        let phone = |p: &str| Kind::of(&PaymentMethod::MobileMoney(PhoneNumber::parse(p).unwrap()));
        assert_eq!(card("tok_ok"), Kind::Ok);
        assert_eq!(card("tok_declined"), Kind::Declined);
        assert_eq!(card("tok_slow"), Kind::Slow);
        assert_eq!(card("tok_silent"), Kind::Silent);
        assert_eq!(card("tok_anything"), Kind::Declined, "unknown tokens are declined");
        assert_eq!(card("TOK_OK"), Kind::Declined);
        assert_eq!(phone("+254700000001"), Kind::Ok);
        assert_eq!(phone("+254700000000"), Kind::Declined);
        assert_eq!(phone("+254700009999"), Kind::Silent);
    }

    #[test]
    fn the_verdict_follows_from_the_reference_and_the_time() {
        let p = provider();
        let r = "sim_slow_1000_abc";
        assert_eq!(p.verdict(r, 1500), Some(ProviderState::Pending));
        assert_eq!(p.verdict(r, 2000), Some(ProviderState::Settled(Outcome::Succeeded, None)));
        assert_eq!(
            p.verdict("sim_declined_1000_abc", 1100),
            Some(ProviderState::Settled(Outcome::Failed, Some("card_declined".into())))
        );
        assert_eq!(p.verdict("sim_silent_0_abc", i64::MAX / 2), Some(ProviderState::Pending));
        assert_eq!(p.verdict("bogus", 0), None);
    }
}
