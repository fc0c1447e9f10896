//! The HTTP side of forwarding (the decisions are `cluster::Cluster`'s): finds the event a
//! write is about (from the URL, or from the booking the URL names), asks the cluster where it
//! goes, and either handles it here or passes the request to the owner once and its answer back.
//! A request another node forwarded is handled here (never forwarded again) if it carries the
//! cluster secret, else refused with 403. Also the client address behind trusted proxies.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::error::problem;
use super::{AppState, Error, MAX_BODY_BYTES};
use crate::cluster::{Cluster, Origin, Outbound, Route};
use crate::domain::ids::{BookingId, EventId};
use crate::net::Cidr;

/// What a write names in its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Event(EventId),
    Booking(BookingId),
}

/// The writes that need the event's actor, by route template.
fn target(method: &Method, route: &str, path: &str) -> Option<Target> {
    let id = || path.split('/').nth(4).and_then(|s| Uuid::parse_str(s).ok());
    match (method, route) {
        (&Method::POST, "/api/v1/events/{id}/bookings" | "/api/v1/events/{id}/check-in")
        | (&Method::PATCH | &Method::DELETE, "/api/v1/events/{id}") => id().map(|u| Target::Event(EventId(u))),
        (&Method::POST, "/api/v1/bookings/{id}/cancel" | "/api/v1/bookings/{id}/payments") => {
            id().map(|u| Target::Booking(BookingId(u)))
        }
        _ => None,
    }
}

/// Marks a request forwarded by a trusted node (the rate limit counted it on that node).
#[derive(Clone, Copy)]
pub struct FromNode;

fn unavailable(retry_after: Duration, detail: &str) -> Response {
    let mut resp =
        problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable", detail, Default::default());
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    resp
}

pub async fn forward(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let cluster = &state.cluster;
    match cluster.origin(req.headers()) {
        Origin::Refused => {
            return Error::Forbidden("forwarded requests need the cluster secret").into_response();
        }
        Origin::TrustedNode => {
            req.extensions_mut().insert(FromNode);
            return next.run(req).await;
        }
        Origin::Client => {}
    }
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    let Some(target) = target(req.method(), &route, req.uri().path()) else { return next.run(req).await };
    let event = match target {
        Target::Event(e) => e,
        Target::Booking(b) => match state.store.event_of_booking(b).await {
            Ok(Some(e)) => e,
            // Unknown booking or store trouble: the handler answers (404, 503).
            _ => return next.run(req).await,
        },
    };
    let (addr, node) = match cluster.route(event).await {
        Route::Local => return next.run(req).await,
        Route::Unavailable { retry_after, reason } => return unavailable(retry_after, &reason),
        Route::Forward { addr, node } => (addr, node),
    };
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return Error::PayloadTooLarge.into_response(),
    };
    let client = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let out =
        Outbound { method: parts.method.clone(), path, headers: parts.headers.clone(), client, body: body.clone() };
    match cluster.forward(&addr, out).await {
        Ok(answer) => {
            tracing::debug!(event_id = %event, node = %node, status = answer.status.as_u16(), "write forwarded");
            let mut resp = Response::new(Body::from(answer.body));
            *resp.status_mut() = answer.status;
            for name in [header::CONTENT_TYPE, header::RETRY_AFTER, header::LOCATION] {
                if let Some(v) = answer.headers.get(&name) {
                    resp.headers_mut().insert(name, v.clone());
                }
            }
            resp
        }
        Err(e) => {
            tracing::warn!(event_id = %event, node = %node, error = %e, "forward to the event's owner failed");
            match cluster.after_failed_forward(event).await {
                // The owner's lease ran out: this node takes the event over.
                Route::Local => next.run(Request::from_parts(parts, Body::from(body))).await,
                Route::Unavailable { retry_after, reason } => unavailable(retry_after, &reason),
                Route::Forward { .. } => unavailable(Duration::from_secs(1), "the event's owner does not answer"),
            }
        }
    }
}

/// Replaces the peer address with the client's when the peer is a trusted proxy (its
/// `X-Forwarded-For`) or a node of the cluster, so that rate limits and logs see the client.
pub fn client_addr(mut req: Request, trusted: &[Cidr], cluster: &Cluster) -> Request {
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else { return req };
    let xff = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let client = if cluster.origin(req.headers()) == Origin::TrustedNode {
        xff.and_then(|v| v.trim().parse().ok()).unwrap_or(peer.ip())
    } else {
        crate::net::client_addr(peer.ip(), xff, trusted)
    };
    if client != peer.ip() {
        req.extensions_mut().insert(ConnectInfo(SocketAddr::new(client, peer.port())));
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_name_their_event_or_booking() {
        let e = "0190a0e4-0000-7000-8000-000000000001";
        let path = format!("/api/v1/events/{e}/bookings");
        let u = Uuid::parse_str(e).unwrap();
        assert_eq!(target(&Method::POST, "/api/v1/events/{id}/bookings", &path), Some(Target::Event(EventId(u))));
        assert_eq!(target(&Method::GET, "/api/v1/events/{id}", &format!("/api/v1/events/{e}")), None);
        assert_eq!(
            target(&Method::DELETE, "/api/v1/events/{id}", &format!("/api/v1/events/{e}")),
            Some(Target::Event(EventId(u)))
        );
        assert_eq!(
            target(&Method::POST, "/api/v1/bookings/{id}/payments", &format!("/api/v1/bookings/{e}/payments")),
            Some(Target::Booking(BookingId(u)))
        );
        assert_eq!(target(&Method::POST, "/api/v1/events/{id}/bookings", "/api/v1/events/nope/bookings"), None);
        assert_eq!(target(&Method::GET, "/api/v1/events/{id}/seats", &format!("/api/v1/events/{e}/seats")), None);
    }
}
