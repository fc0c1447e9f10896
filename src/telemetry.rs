//! Structured logs (pretty or JSON) and the Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,ractor=warn"));
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

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("boxoffice_http_requests_total", "HTTP requests by method, matched route and status");
    describe_histogram!("boxoffice_http_request_duration_seconds", "HTTP request latency by method and matched route");
    describe_gauge!("boxoffice_event_actors", "Event actors running");
    describe_counter!("boxoffice_actor_restarts_total", "Actors restarted by their supervisor after a failure");
    describe_histogram!(
        "boxoffice_claim_duration_seconds",
        "Claim latency inside the engine: received by the actor to answered after commit"
    );
    describe_counter!("boxoffice_claims_total", "Claims by outcome (held, refused, invalid)");
    describe_histogram!("boxoffice_journal_batch_size", "Operations per journal batch");
    describe_histogram!("boxoffice_journal_commit_duration_seconds", "Time to write one journal batch");
    describe_counter!("boxoffice_holds_expired_total", "Holds that ran out and released their seats");
    describe_counter!("boxoffice_rate_limited_total", "Requests refused with 429");
}
