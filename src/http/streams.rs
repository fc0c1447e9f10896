//! Live updates as server-sent events: an event's availability, and a booking's status. These
//! routes are long-lived, so they sit outside the request timeout, and are bounded instead:
//!
//! - open streams are capped per client (the bearer token's user, else the peer address;
//!   `STREAM_MAX_PER_CLIENT`) and in total (`STREAM_MAX_TOTAL`, by default half the process's
//!   open-file limit, so streams can never take the sockets ordinary requests need); beyond,
//!   `503 unavailable` with `Retry-After`;
//! - a stream ends after `STREAM_IDLE_SECS` without news and after `STREAM_MAX_LIFETIME_SECS`
//!   in any case (`EventSource` clients reconnect by themselves), and at shutdown; keep-alive
//!   comments meanwhile tell proxies the connection is alive;
//! - a booking stream ends once the booking reaches a final status (expired or cancelled), and
//!   hears only its own booking's changes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_stream::wrappers::WatchStream;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::contract::{Bearer, IdPath};
use super::extract::{AuthUser, Path, PeerAddr};
use super::{AppState, Error, Problem, Result};
use crate::actors::BookingWatch;
use crate::config::Config;
use crate::domain::booking::BookingStatus;
use crate::domain::ids::{BookingId, EventId};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(event_stream)).routes(routes!(booking_stream))
}

/// Who a stream counts against.
#[derive(Clone, Copy, Hash, PartialEq, Eq, Debug)]
enum Client {
    User(Uuid),
    Peer(IpAddr),
    Unknown,
}

/// Admits streams within the caps and ends them all at shutdown.
#[derive(Clone)]
pub struct StreamGate(Arc<Gate>);

struct Gate {
    max_total: usize,
    max_per_client: usize,
    idle: Duration,
    lifetime: Duration,
    open: Mutex<Open>,
    closing: watch::Sender<bool>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_client: HashMap<Client, usize>,
}

/// One admitted stream; dropping it (the stream ended or its client left) frees its place.
struct Slot {
    gate: Arc<Gate>,
    client: Client,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().expect("stream counts");
        open.total -= 1;
        if let Some(n) = open.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.per_client.remove(&self.client);
            }
        }
        metrics::gauge!("boxoffice_open_streams").set(open.total as f64);
    }
}

/// The soft limit on open files of this process, from `/proc/self/limits` (Linux).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

impl StreamGate {
    pub fn new(config: &Config) -> Self {
        let max_total = match config.stream_max_total {
            // Half the sockets for streams, half for requests, the store and the broker.
            0 => open_file_limit().map_or(512, |n| (n / 2).max(1)),
            n => n,
        };
        Self(Arc::new(Gate {
            max_total,
            max_per_client: config.stream_max_per_client,
            idle: Duration::from_secs(config.stream_idle_secs),
            lifetime: Duration::from_secs(config.stream_max_lifetime_secs),
            open: Mutex::default(),
            closing: watch::channel(false).0,
        }))
    }

    /// Ends every open stream (at shutdown) and admits no more.
    pub fn close(&self) {
        self.0.closing.send_replace(true);
    }

    fn admit(&self, client: Client) -> Result<Slot> {
        let gate = &self.0;
        if *gate.closing.borrow() {
            return Err(Error::Unavailable("the server is shutting down; retry".into()));
        }
        let mut open = gate.open.lock().expect("stream counts");
        let mine = open.per_client.get(&client).copied().unwrap_or(0);
        if mine >= gate.max_per_client {
            metrics::counter!("boxoffice_streams_refused_total", "cap" => "client").increment(1);
            return Err(Error::Unavailable(format!(
                "this client already has {mine} live streams open; close one or retry later"
            )));
        }
        if open.total >= gate.max_total {
            metrics::counter!("boxoffice_streams_refused_total", "cap" => "total").increment(1);
            return Err(Error::Unavailable("too many live streams are open; retry later".into()));
        }
        open.total += 1;
        *open.per_client.entry(client).or_default() += 1;
        metrics::gauge!("boxoffice_open_streams").set(open.total as f64);
        Ok(Slot { gate: gate.clone(), client })
    }
}

/// `inner` as server-sent events, ended when it has nothing to say for the idle limit, at the
/// end of its lifetime, or at shutdown; the slot is held until then.
fn bounded(
    slot: Slot,
    inner: impl Stream<Item = Event> + Send + 'static,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Bounded {
        inner: Pin<Box<dyn Stream<Item = Event> + Send>>,
        end: Instant,
        idle: Duration,
        closing: watch::Receiver<bool>,
        _slot: Slot,
    }
    let gate = slot.gate.clone();
    let start = Bounded {
        inner: Box::pin(inner),
        end: Instant::now() + gate.lifetime,
        idle: gate.idle,
        closing: gate.closing.subscribe(),
        _slot: slot,
    };
    let stream = futures::stream::unfold(start, |mut s| async move {
        let quiet_until = (Instant::now() + s.idle).min(s.end);
        let next = tokio::select! {
            next = s.inner.next() => next,
            () = tokio::time::sleep_until(quiet_until) => None,
            _ = s.closing.wait_for(|c| *c) => None,
        };
        next.map(|e| (Ok(e), s))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// The client a stream request counts against: a valid token's user, else the peer address.
fn client_of(state: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> Client {
    let user = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| state.keys.verify(t.trim()).ok());
    match (user, peer) {
        (Some(p), _) => Client::User(p.user_id.0),
        (None, Some(ip)) => Client::Peer(ip),
        (None, None) => Client::Unknown,
    }
}

#[derive(Serialize, ToSchema, PartialEq, Eq, Clone, Copy)]
pub struct Availability {
    available: u32,
    held: u32,
    sold: u32,
}

#[derive(Serialize, ToSchema)]
pub struct StatusEvent {
    id: Uuid,
    status: BookingStatus,
}

/// One server-sent event of an event's availability stream, as a client's SSE parser sees it.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `sse_json` writes the events
pub struct AvailabilityMessage {
    /// Always `availability`.
    #[schema(pattern = "^availability$")]
    event: String,
    /// An `Availability` as JSON.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// One server-sent event of a booking's status stream, as a client's SSE parser sees it.
#[derive(ToSchema)]
#[allow(dead_code)] // a schema only: `sse_json` writes the events
pub struct StatusMessage {
    /// Always `status`.
    #[schema(pattern = "^status$")]
    event: String,
    /// A `StatusEvent` as JSON.
    #[schema(content_media_type = "application/json")]
    data: String,
}

fn sse_json(name: &str, data: &impl Serialize) -> Event {
    Event::default().event(name).data(serde_json::to_string(data).expect("serialisable"))
}

#[utoipa::path(get, path = "/api/v1/events/{id}/stream", tag = "events", params(("id" = Uuid, Path)),
    responses((status = 200, description = "`availability` events `{available, held, sold}` whenever they change; \
        ends after a while without change or at the latest after an hour (reconnect)",
        content_type = "text/event-stream", body = AvailabilityMessage), IdPath,
        (status = 404, description = "not_found: no such event", body = Problem),
        (status = 429, description = "rate_limited: too many requests from this client; retry after Retry-After", body = Problem),
        (status = 503, description = "unavailable: too many live streams (this client's or the server's), the server is shutting down, or the database is unreachable; retry after Retry-After", body = Problem)))]
async fn event_stream(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let slot = state.streams.admit(client_of(&state, &headers, peer))?;
    let id = EventId(id);
    let event = state.store.event(id).await?.ok_or(Error::NotFound("event not found"))?;
    let rx = state.registry.hub().subscribe(&event).await?;
    let mut last = None;
    let stream = WatchStream::new(rx).filter_map(move |s| {
        let now = Availability { available: s.counts.available(), held: s.counts.held, sold: s.counts.sold };
        let changed = last.replace(now) != Some(now);
        async move { changed.then(|| sse_json("availability", &now)) }
    });
    Ok(bounded(slot, stream))
}

#[utoipa::path(get, path = "/api/v1/bookings/{id}/stream", tag = "bookings", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "`status` events `{id, status}`: the current status, then each change; \
        ends after a final status (expired, cancelled), after a while without change, or at the latest after an hour",
        content_type = "text/event-stream", body = StatusMessage), Bearer, IdPath,
        (status = 404, description = "not_found: no such booking of this account", body = Problem),
        (status = 429, description = "rate_limited: too many requests from this client; retry after Retry-After", body = Problem),
        (status = 503, description = "unavailable: too many live streams (this client's or the server's), the server is shutting down, or the database is unreachable; retry after Retry-After", body = Problem)))]
async fn booking_stream(
    State(state): State<AppState>,
    AuthUser(p): AuthUser,
    Path(id): Path<Uuid>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let slot = state.streams.admit(Client::User(p.user_id.0))?;
    // Watch before reading, so that no change between the read and the watch is lost.
    let changes = state.registry.watch_booking(BookingId(id));
    let booking = match state.store.booking(BookingId(id)).await? {
        Some(b) if b.user_id == p.user_id || p.is_admin() => b,
        _ => return Err(Error::NotFound("booking not found")),
    };
    Ok(bounded(slot, status_stream(booking.id, booking.status, changes)))
}

struct Watch {
    id: BookingId,
    pending: Option<BookingStatus>,
    last: Option<BookingStatus>,
    changes: BookingWatch,
}

/// The current status, then every change of this booking, until a final one.
fn status_stream(id: BookingId, first: BookingStatus, changes: BookingWatch) -> impl Stream<Item = Event> {
    let start = Watch { id, pending: Some(first), last: None, changes };
    futures::stream::unfold(start, |mut w| async move {
        if w.last.is_some_and(BookingStatus::is_final) {
            return None;
        }
        loop {
            let status = match w.pending.take() {
                Some(s) => s,
                None => w.changes.changed().await?,
            };
            if w.last != Some(status) {
                w.last = Some(status);
                return Some((sse_json("status", &StatusEvent { id: w.id.0, status }), w));
            }
        }
    })
}
