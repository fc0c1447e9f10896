//! Structured logs (pretty or JSON), the Prometheus recorder with every metric described up
//! front, and the sampler of gauges no request path moves.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::bus::Bus;
use crate::config::LogFormat;
use crate::persistence::Store;

/// `filter` is `RUST_LOG` (tracing's syntax); an invalid one falls back to the default.
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new(crate::config::DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The process-wide Prometheus recorder (installed once, shared by every app in a test process).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            let sizes = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Full("boxoffice_journal_batch_size".into()), &sizes))
                .expect("valid buckets")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may exist if the embedding program installed one; keep ours for rendering.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

/// Every metric the engine exports, with its help text, registered at zero (labelled ones with
/// each label value the code uses), so that dashboards and `absent()` alerts see the whole set on
/// a process that has not served a claim yet. Gauges only get `+0` (several apps may share the
/// recorder in a test process).
fn describe() {
    use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
    // An unlabelled metric: its help text, registered at zero.
    fn zero_gauge(name: &'static str, help: &'static str) {
        describe_gauge!(name, help);
        gauge!(name).increment(0.0);
    }
    fn zero_counter(name: &'static str, help: &'static str) {
        describe_counter!(name, help);
        counter!(name).increment(0);
    }
    describe_counter!("boxoffice_http_requests_total", "HTTP requests by method, matched route and status");
    describe_histogram!("boxoffice_http_request_duration_seconds", "HTTP request latency by method and matched route");
    zero_gauge("boxoffice_sse_streams", "Server-sent event streams open now");
    zero_gauge("boxoffice_event_actors", "Event actors running");
    describe_counter!("boxoffice_actor_restarts_total", "Actors restarted by their supervisor after a failure");
    for actor in ["event", "notification_worker", "payment_saga"] {
        counter!("boxoffice_actor_restarts_total", "actor" => actor).increment(0);
    }
    describe_histogram!(
        "boxoffice_claim_duration_seconds",
        "Claim latency inside the engine: received by the actor to answered after commit"
    );
    let _ = histogram!("boxoffice_claim_duration_seconds");
    describe_counter!("boxoffice_claims_total", "Claims by outcome (held, refused, invalid)");
    for outcome in ["held", "refused", "invalid"] {
        counter!("boxoffice_claims_total", "outcome" => outcome).increment(0);
    }
    describe_histogram!("boxoffice_journal_batch_size", "Operations per journal batch");
    let _ = histogram!("boxoffice_journal_batch_size");
    describe_histogram!("boxoffice_journal_commit_duration_seconds", "Time to write one journal batch");
    let _ = histogram!("boxoffice_journal_commit_duration_seconds");
    zero_counter("boxoffice_holds_expired_total", "Holds that ran out and released their seats");
    zero_counter("boxoffice_rate_limited_total", "Requests refused with 429");

    zero_gauge("boxoffice_payment_sagas", "Payment sagas running in this process");
    describe_counter!("boxoffice_payments_total", "Payments settled, by outcome (succeeded, failed, refunded)");
    for outcome in ["succeeded", "failed", "refunded"] {
        counter!("boxoffice_payments_total", "outcome" => outcome).increment(0);
    }
    describe_counter!(
        "boxoffice_payment_gateway_calls_total",
        "Calls to the payment provider by operation and outcome (ok, refused, error, circuit_open)"
    );
    for op in ["charge", "status", "refund"] {
        for outcome in ["ok", "refused", "error", "circuit_open"] {
            counter!("boxoffice_payment_gateway_calls_total", "op" => op, "outcome" => outcome).increment(0);
        }
    }
    zero_gauge("boxoffice_payment_circuit_open", "1 while the payment provider's circuit breaker is open");

    zero_counter("boxoffice_outbox_published_total", "Outbox rows handed to the bus (confirmed by the broker)");
    zero_gauge("boxoffice_outbox_backlog", "Outbox rows not yet published (all processes, sampled)");
    zero_counter(
        "boxoffice_outbox_unreadable_total",
        "Outbox rows skipped because they cannot be read as domain events",
    );
    zero_gauge("boxoffice_kafka_up", "1 while the Kafka sink publishes (0 when down or not configured)");
    describe_gauge!(
        "boxoffice_kafka_producer_id",
        "The Kafka sink's idempotent producer id from the broker (-1 while it has none; absent before a producer ran)"
    );
    zero_gauge("boxoffice_kafka_backlog", "Domain events waiting for Kafka in the outbox");
    zero_gauge(
        "boxoffice_kafka_oldest_unsent_seconds",
        "Age of the oldest domain event waiting for Kafka in the outbox (0 when none waits)",
    );
    zero_gauge(
        "boxoffice_analytics_backlog",
        "Domain events the sales analytics have not counted yet (outbox rows, or Kafka records behind the high watermarks)",
    );
    zero_gauge(
        "boxoffice_analytics_lag_seconds",
        "How far behind the stream the sales figures are, in seconds (0 when caught up)",
    );
    zero_counter("boxoffice_kafka_published_total", "Domain events acknowledged by Kafka");
    zero_counter("boxoffice_analytics_events_applied_total", "Domain events counted into the sales figures");
    zero_counter(
        "boxoffice_analytics_duplicates_skipped_total",
        "Domain events the sales analytics had counted already (by id), so skipped",
    );
    zero_counter(
        "boxoffice_analytics_records_skipped_total",
        "Kafka records the sales analytics passed over because they are not domain events",
    );
    describe_counter!(
        "boxoffice_notifications_total",
        "Notifications handled, by outcome (sent, duplicate, retried, dead_lettered)"
    );
    for outcome in ["sent", "duplicate", "retried", "dead_lettered"] {
        counter!("boxoffice_notifications_total", "outcome" => outcome).increment(0);
    }
    describe_counter!(
        crate::receipts::METRIC,
        "Receipt PDFs by outcome (stored, store_failed per failed attempt, rendered_on_demand for a download)"
    );
    for outcome in crate::receipts::OUTCOMES {
        counter!(crate::receipts::METRIC, "outcome" => outcome).increment(0);
    }
    zero_gauge("boxoffice_broker_up", "1 while the message broker answers (always 1 in process)");
    zero_gauge("boxoffice_redis_up", "1 while Redis answers (0 when down or REDIS_URL is unset)");
    zero_gauge("boxoffice_redis_configured", "1 when REDIS_URL is set (the nodes share limits and revocations)");
    describe_counter!(
        "boxoffice_redis_fallbacks_total",
        "Times a part (rate_limit, revocation, pubsub) used its in-process fallback because Redis was down"
    );
    for part in crate::shared::PARTS {
        counter!("boxoffice_redis_fallbacks_total", "part" => part).increment(0);
    }
    describe_counter!("boxoffice_event_cache_total", "Event detail look-ups by cache result (hit, miss)");
    for result in ["hit", "miss"] {
        counter!("boxoffice_event_cache_total", "result" => result).increment(0);
    }
    zero_gauge("boxoffice_dead_letters", "Messages waiting in the dead-letter queue (sampled)");

    describe_gauge!(
        "boxoffice_db_pool_connections",
        "Database connections by pool (main, journal) and state (idle, in_use)"
    );
    describe_gauge!("boxoffice_db_pool_max_connections", "Largest size of each database pool");
    for pool in ["main", "journal"] {
        for state in ["idle", "in_use"] {
            gauge!("boxoffice_db_pool_connections", "pool" => pool, "state" => state).increment(0.0);
        }
        gauge!("boxoffice_db_pool_max_connections", "pool" => pool).increment(0.0);
    }
    zero_gauge("boxoffice_store_up", "1 while the database answers (sampled)");
    zero_gauge("boxoffice_ready", "1 while this process would answer /readyz with 200 (store and broker up; sampled)");
}

/// How often the sampler looks at the pool, the outbox and the broker.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Samples what no request path counts: pool use, the outbox backlog, whether the store and the
/// broker answer, and the dead-letter queue. Runs until aborted.
pub fn spawn_sampler(store: Store, bus: Bus, every: Duration) -> tokio::task::JoinHandle<()> {
    use metrics::gauge;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for (pool, open, idle, max) in store.pool_stats() {
                gauge!("boxoffice_db_pool_connections", "pool" => pool, "state" => "idle").set(idle);
                gauge!("boxoffice_db_pool_connections", "pool" => pool, "state" => "in_use")
                    .set(open.saturating_sub(idle));
                gauge!("boxoffice_db_pool_max_connections", "pool" => pool).set(max);
            }
            let store_up = match tokio::time::timeout(every, store.outbox_backlog()).await {
                Ok(Ok(n)) => {
                    gauge!("boxoffice_outbox_backlog").set(n as f64);
                    true
                }
                Ok(Err(_)) | Err(_) => false,
            };
            gauge!("boxoffice_store_up").set(f64::from(u8::from(store_up)));
            let probe = bus.probe().await;
            gauge!("boxoffice_broker_up").set(f64::from(u8::from(probe.up)));
            gauge!("boxoffice_ready").set(f64::from(u8::from(store_up && probe.up)));
            if let Some(n) = probe.dead_letters {
                gauge!("boxoffice_dead_letters").set(n as f64);
            }
        }
    })
}

/// Counts an open server-sent event stream for as long as it lives.
pub struct StreamGauge(());

impl StreamGauge {
    pub fn open() -> Self {
        metrics::gauge!("boxoffice_sse_streams").increment(1.0);
        Self(())
    }
}

impl Drop for StreamGauge {
    fn drop(&mut self) {
        metrics::gauge!("boxoffice_sse_streams").decrement(1.0);
    }
}
