//! The event supervisor and the registry handle. Lookups of running actors go through a
//! `DashMap`, not through the supervisor's mailbox, so one hot event never queues behind
//! another; only starting an actor asks the supervisor, which links every event actor to
//! itself, restarts one that fails (it rebuilds from the store) and forgets one that stops.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent};

use super::event::{ClaimCmd, EventActor, EventArgs, EventMsg, Reply};
use super::{BookingError, EngineContext, EngineSettings, Snapshot};
use crate::domain::booking::CancelReason;
use crate::domain::ids::{BookingId, EventId, UserId};
use crate::persistence::{BookingRow, EventPatch, EventRow, JournalOp, Store};

type Actors = Arc<DashMap<EventId, ActorRef<EventMsg>>>;
type KeysInFlight = Arc<DashMap<(UserId, String), (String, usize)>>;

/// Holds an idempotency key for the duration of one claim (see `Registry::reserve_key`).
pub struct KeyGuard {
    keys: KeysInFlight,
    key: (UserId, String),
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        self.keys.remove_if_mut(&self.key, |_, (_, n)| {
            *n -= 1;
            *n == 0
        });
    }
}

pub enum SupervisorMsg {
    Start(EventId, RpcReplyPort<Result<ActorRef<EventMsg>, BookingError>>),
}

struct EventSupervisor;

struct SupervisorState {
    ctx: EngineContext,
    actors: Actors,
    ids: HashMap<ActorId, EventId>,
}

impl SupervisorState {
    async fn spawn(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: EventId,
    ) -> Result<ActorRef<EventMsg>, BookingError> {
        let args = EventArgs { id, ctx: self.ctx.clone() };
        match Actor::spawn_linked(None, EventActor, args, myself.get_cell()).await {
            Ok((actor, _handle)) => {
                self.ids.insert(actor.get_id(), id);
                self.actors.insert(id, actor.clone());
                Ok(actor)
            }
            Err(SpawnErr::StartupFailed(e)) => match e.downcast_ref::<BookingError>() {
                Some(BookingError::EventNotFound) => Err(BookingError::EventNotFound),
                _ => {
                    tracing::warn!(event_id = %id, error = %e, "event actor failed to start");
                    Err(BookingError::Unavailable("the event could not be loaded".into()))
                }
            },
            Err(e) => {
                tracing::error!(event_id = %id, error = %e, "event actor could not be spawned");
                Err(BookingError::Unavailable("the event could not be loaded".into()))
            }
        }
    }

    fn forget(&mut self, cell: &ActorCell) -> Option<EventId> {
        let id = self.ids.remove(&cell.get_id())?;
        self.actors.remove_if(&id, |_, a| a.get_id() == cell.get_id());
        Some(id)
    }
}

impl Actor for EventSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = (EngineContext, Actors);

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        (ctx, actors): Self::Arguments,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        Ok(SupervisorState { ctx, actors, ids: HashMap::new() })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Start(id, reply) => {
                let result = match state.actors.get(&id).map(|a| a.clone()) {
                    Some(actor) => Ok(actor),
                    None => state.spawn(&myself, id).await,
                };
                let _ = reply.send(result);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(id) = state.forget(&cell) {
                    tracing::debug!(event_id = %id, reason = ?reason, "event actor stopped");
                }
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(id) = state.forget(&cell) {
                    metrics::counter!("boxoffice_actor_restarts_total", "actor" => "event").increment(1);
                    tracing::error!(event_id = %id, error = %err, "event actor failed; restarting");
                    let _ = state.spawn(&myself, id).await;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The HTTP layer's handle on the engine.
#[derive(Clone)]
pub struct Registry {
    actors: Actors,
    keys_in_flight: KeysInFlight,
    supervisor: ActorRef<SupervisorMsg>,
    ctx: EngineContext,
}

fn call_failed<T>(r: Result<CallResult<Result<T, BookingError>>, impl std::fmt::Display>) -> Result<T, BookingError> {
    match r {
        Ok(CallResult::Success(result)) => result,
        Ok(CallResult::Timeout) => Err(BookingError::Unavailable("the event is busy; retry".into())),
        Ok(CallResult::SenderError) => Err(BookingError::Unavailable("the event restarted; retry".into())),
        Err(e) => Err(BookingError::Unavailable(format!("the event is not reachable: {e}"))),
    }
}

impl Registry {
    /// `refresh`: how often readers on a node that does not own an event re-read its
    /// availability from the store while someone watches it.
    pub async fn start(store: Store, settings: EngineSettings, refresh: Duration) -> anyhow::Result<Self> {
        let status_changes = Arc::new(super::StatusHub::default());
        let ctx = EngineContext {
            hub: super::SnapshotHub::new(store.clone(), refresh),
            store,
            settings,
            status_changes,
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
        };
        let actors: Actors = Arc::new(DashMap::new());
        let (supervisor, _) = Actor::spawn(None, EventSupervisor, (ctx.clone(), actors.clone())).await?;
        Ok(Self { actors, keys_in_flight: Arc::new(DashMap::new()), supervisor, ctx })
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.ctx.settings
    }

    /// The event's actor, started (and its inventory loaded) if it is not running.
    async fn actor(&self, id: EventId) -> Result<ActorRef<EventMsg>, BookingError> {
        if let Some(a) = self.actors.get(&id) {
            return Ok(a.clone());
        }
        let r =
            self.supervisor.call(|reply| SupervisorMsg::Start(id, reply), Some(self.ctx.settings.call_timeout)).await;
        call_failed(r)
    }

    /// Calls the event's actor; if the actor it found had just stopped, starts a new one once.
    async fn call<T: Send + 'static>(
        &self,
        id: EventId,
        make: impl Fn(Reply<T>) -> EventMsg + Clone,
    ) -> Result<T, BookingError> {
        for attempt in 0..2 {
            let actor = self.actor(id).await?;
            match actor.call(make.clone(), Some(self.ctx.settings.call_timeout)).await {
                Err(_) if attempt == 0 => {
                    // Not delivered: the actor stopped (idle or fenced). Forget it and start anew.
                    self.actors.remove_if(&id, |_, a| a.get_id() == actor.get_id());
                }
                r => return call_failed(r),
            }
        }
        Err(BookingError::Unavailable("the event is restarting; retry".into()))
    }

    /// Marks `(user, key)` as in use by a request with `hash` until the guard drops. Another
    /// request under the same key with a different hash is refused while this one runs; once
    /// it has run, its booking (and so the key) is in the store, where the caller looks next.
    /// This closes the race of one key sent to two events at once, within this process.
    pub fn reserve_key(&self, user: UserId, key: &str, hash: &str) -> Result<KeyGuard, BookingError> {
        let k = (user, key.to_owned());
        let mut entry = self.keys_in_flight.entry(k.clone()).or_insert_with(|| (hash.to_owned(), 0));
        if entry.0 != hash {
            return Err(BookingError::IdempotencyKeyReused);
        }
        entry.1 += 1;
        drop(entry);
        Ok(KeyGuard { keys: self.keys_in_flight.clone(), key: k })
    }

    pub async fn claim(&self, id: EventId, cmd: ClaimCmd) -> Result<BookingRow, BookingError> {
        self.call(id, move |r| EventMsg::Claim(cmd.clone(), r)).await
    }

    /// Cancels a live booking. `with`: changes written in the same transaction (a failed
    /// payment and its announcement); `request_id`: the request that caused it.
    pub async fn cancel(
        &self,
        booking: BookingRow,
        reason: CancelReason,
        with: Vec<JournalOp>,
        request_id: Option<String>,
    ) -> Result<BookingRow, BookingError> {
        let id = booking.event_id;
        self.call(id, move |reply| EventMsg::Cancel {
            booking: booking.clone(),
            reason,
            with: with.clone(),
            request_id: request_id.clone(),
            reply,
        })
        .await
    }

    /// Confirms a held booking (paid), writing `with` in the same transaction.
    pub async fn confirm(&self, booking: BookingRow, with: Vec<JournalOp>) -> Result<BookingRow, BookingError> {
        let id = booking.event_id;
        self.call(id, move |r| EventMsg::Confirm(booking.clone(), with.clone(), r)).await
    }

    /// Admits `booking`'s ticket at the door of event `door` (refused, and left unused, if the
    /// ticket belongs to another event).
    pub async fn check_in(
        &self,
        door: EventId,
        booking: BookingRow,
        request_id: Option<String>,
    ) -> Result<BookingRow, BookingError> {
        self.call(door, move |reply| EventMsg::CheckIn {
            booking: booking.clone(),
            request_id: request_id.clone(),
            reply,
        })
        .await
    }

    /// Keeps a held booking from expiring until `until` while its payment runs.
    pub async fn hold_for_payment(
        &self,
        event: EventId,
        booking: BookingId,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), BookingError> {
        self.call(event, move |r| EventMsg::HoldForPayment(booking, until, r)).await
    }

    /// Notified when outbox messages were written.
    pub fn outbox_wake(&self) -> Arc<tokio::sync::Notify> {
        self.ctx.outbox_wake.clone()
    }

    pub async fn update(
        &self,
        id: EventId,
        patch: EventPatch,
        request_id: Option<String>,
    ) -> Result<EventRow, BookingError> {
        self.call(id, move |reply| EventMsg::Update { patch: patch.clone(), request_id: request_id.clone(), reply })
            .await
    }

    pub async fn delete(&self, id: EventId, request_id: Option<String>) -> Result<(), BookingError> {
        self.call(id, move |reply| EventMsg::Delete { request_id: request_id.clone(), reply }).await
    }

    /// Takes and starts the events that have holds but no live owner (at start-up, and
    /// periodically: a node that died leaves its events to the others once its leases run
    /// out), so that their holds expire on time even if nobody touches them.
    pub async fn recover(&self) -> Result<usize, BookingError> {
        let now = self.ctx.settings.clock.now();
        let ids = self
            .ctx
            .store
            .orphaned_events_with_holds(now)
            .await
            .map_err(|e| BookingError::Unavailable(e.to_string()))?;
        let mut started = 0;
        for id in ids {
            if self.actors.contains_key(&id) {
                continue;
            }
            // One event that cannot load must not keep the others' holds from expiring.
            match self.actor(id).await {
                Ok(_) => started += 1,
                Err(e) => tracing::debug!(event_id = %id, error = %e, "event with holds not started"),
            }
        }
        Ok(started)
    }

    /// Whether this node runs `event`'s actor (and so owns it, until told otherwise).
    pub fn runs(&self, event: EventId) -> bool {
        self.actors.contains_key(&event)
    }

    /// The latest availability this node has of `id` (its own actor's, or a watched event's).
    pub fn snapshot(&self, id: EventId) -> Option<Snapshot> {
        self.ctx.hub.current(id)
    }

    /// Starts the event's actor here (taking the event) and answers its snapshot: for
    /// benchmarks and tests that want the actor warm; readers use `hub` instead.
    pub async fn snapshot_started(&self, id: EventId) -> Result<Snapshot, BookingError> {
        self.actor(id).await?;
        self.snapshot(id).ok_or_else(|| BookingError::Unavailable("the event restarted; retry".into()))
    }

    /// The availability readers see, from any node, without taking the event.
    pub fn hub(&self) -> &super::SnapshotHub {
        &self.ctx.hub
    }

    /// Where committed booking status changes go (for a bridge to other nodes).
    pub fn status_hub(&self) -> &Arc<super::StatusHub> {
        &self.ctx.status_changes
    }

    #[cfg(test)]
    pub(crate) fn actor_ref(&self, id: EventId) -> Option<ActorRef<EventMsg>> {
        self.actors.get(&id).map(|a| a.clone())
    }

    /// The durable status changes of one booking (of the events this process owns).
    pub fn watch_booking(&self, id: crate::domain::ids::BookingId) -> super::BookingWatch {
        self.ctx.status_changes.watch(id)
    }

    pub fn running_actors(&self) -> usize {
        self.actors.len()
    }

    /// Lets every actor finish writing what it has accepted, then stops them all.
    pub async fn shutdown(&self, within: Duration) {
        let actors: Vec<_> = self.actors.iter().map(|a| a.value().clone()).collect();
        let drains = actors.iter().map(|a| a.call(EventMsg::Drain, Some(within)));
        futures::future::join_all(drains).await;
        // Each stopped actor gives its event's lease up, so other nodes take over at once.
        let stops = actors.iter().map(|a| a.stop_and_wait(Some("shutdown".into()), Some(within)));
        futures::future::join_all(stops).await;
        self.supervisor.stop(Some("shutdown".into()));
    }
}
