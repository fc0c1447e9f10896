//! Operations: liveness, readiness (the store and the broker answer; the verdict is reused for
//! a second; Redis being down degrades but does not unready) and Prometheus metrics.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::extract::Json;
use super::{AppState, Error, Problem};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    status: &'static str,
    store: &'static str,
    broker: String,
    /// `off` (REDIS_URL unset: in-process limits and revocations), `up`, or `down` (degraded:
    /// local fallbacks in use until Redis answers again; still ready).
    redis: &'static str,
    /// The Kafka sink: `off`, `up (N events waiting)` or `down (N events waiting): why`. A
    /// Kafka outage delays only the Kafka copies, so it does not make the process unready.
    kafka: String,
    event_actors: usize,
}

/// How long a readiness verdict is reused: probes and floods of `/readyz` then cost the store
/// and the broker one round trip a second, not one each.
const READINESS_TTL: Duration = Duration::from_secs(1);

/// The last verdict on the dependencies and when it was reached. Behind an async mutex, so
/// that callers arriving during a check wait for it rather than starting their own.
#[derive(Default)]
pub struct ReadinessCache(tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>);

impl ReadinessCache {
    async fn verdict(&self, state: &AppState) -> Result<(), String> {
        let mut cached = self.0.lock().await;
        if let Some((at, verdict)) = &*cached
            && at.elapsed() < READINESS_TTL
        {
            return verdict.clone();
        }
        let verdict = check_dependencies(state).await;
        *cached = Some((Instant::now(), verdict.clone()));
        verdict
    }
}

/// One round trip to the store and one to the broker, each bounded by 2 s.
async fn check_dependencies(state: &AppState) -> Result<(), String> {
    metrics::counter!("boxoffice_readiness_checks_total").increment(1);
    let engine = state.store.engine();
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: store is down");
            return Err(format!("store ({engine}) is not reachable"));
        }
        Err(_) => return Err(format!("store ({engine}) did not answer within 2 s")),
    }
    match tokio::time::timeout(Duration::from_secs(2), state.bus.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: broker is down");
            return Err("broker (rabbitmq) is not reachable".into());
        }
        Err(_) => return Err("broker (rabbitmq) did not answer within 2 s".into()),
    }
    Ok(())
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "the store and the broker answered (checked at most once a second); `redis` says whether the shared state is degraded", body = Readiness),
        (status = 503, description = "a dependency is down", body = Problem)))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, Error> {
    state.readiness.verdict(&state).await.map_err(Error::Unavailable)?;
    Ok(Json(Readiness {
        status: "ready",
        store: state.store.engine(),
        broker: state.bus.describe(),
        redis: state.shared.status(),
        kafka: state.kafka.describe(),
        event_actors: state.registry.running_actors(),
    }))
}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
