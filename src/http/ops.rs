//! Operations: liveness, readiness (the store answers) and Prometheus metrics.

use std::time::Duration;

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
    event_actors: usize,
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, description = "a dependency is down", body = Problem)))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, Error> {
    let engine = state.store.engine();
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: store is down");
            return Err(Error::Unavailable(format!("store ({engine}) is not reachable")));
        }
        Err(_) => return Err(Error::Unavailable(format!("store ({engine}) did not answer within 2 s"))),
    }
    match tokio::time::timeout(Duration::from_secs(2), state.bus.ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: broker is down");
            return Err(Error::Unavailable("broker (rabbitmq) is not reachable".into()));
        }
        Err(_) => return Err(Error::Unavailable("broker (rabbitmq) did not answer within 2 s".into())),
    }
    Ok(Json(Readiness {
        status: "ready",
        store: engine,
        broker: state.bus.describe(),
        event_actors: state.registry.running_actors(),
    }))
}

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}
