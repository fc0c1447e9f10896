//! Payments: the `PaymentSupervisor` runs one `PaymentSaga` actor per unfinished payment,
//! linked to it, restarts a saga that fails (counted in `boxoffice_actor_restarts_total`),
//! and sweeps the store now and then for unfinished sagas nobody runs (after a restart, or a
//! late callback that reopened a finished one). `Payments` is the handle the HTTP layer uses.

pub mod gateway;
mod saga;
pub mod signature;
pub mod simulated;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::actors::Registry;
use crate::domain::ids::PaymentId;
use crate::persistence::Store;
use gateway::Guarded;
use saga::{PaymentSaga, SagaMsg};

#[derive(Debug, Clone)]
pub struct PaymentSettings {
    /// How long a saga waits for the provider's verdict.
    pub deadline: Duration,
    /// How often a waiting saga asks the provider (in case a webhook is lost).
    pub poll_interval: Duration,
    /// Pause before retrying a step that met a busy event or a database hiccup.
    pub retry_delay: Duration,
    /// How often the supervisor looks for unfinished sagas that are not running.
    pub sweep_interval: Duration,
    /// How long a node keeps a saga without renewing (each step renews it): after a crash,
    /// another process takes the saga over once this ran out. Longer than any one step.
    pub lease: Duration,
}

#[derive(Clone)]
pub struct PaymentsCtx {
    store: Store,
    /// This process, as the owner of the sagas it runs.
    node: String,
    registry: Registry,
    gateway: Arc<Guarded>,
    settings: PaymentSettings,
    /// Deadlines and leases are measured on the engine's clock.
    clock: crate::clock::Clock,
}

pub enum SupervisorMsg {
    /// Runs the saga of this payment unless it runs already; nudges it if it does.
    Run(PaymentId),
    /// Starts every unfinished saga that is not running.
    Sweep,
}

struct PaymentSupervisor;

struct SupervisorState {
    ctx: PaymentsCtx,
    running: HashMap<PaymentId, ActorRef<SagaMsg>>,
    ids: HashMap<ActorId, PaymentId>,
}

impl SupervisorState {
    async fn run(&mut self, myself: &ActorRef<SupervisorMsg>, id: PaymentId) {
        if let Some(saga) = self.running.get(&id) {
            let _ = saga.send_message(SagaMsg::Advance);
            return;
        }
        match Actor::spawn_linked(None, PaymentSaga, (id, self.ctx.clone()), myself.get_cell()).await {
            Ok((saga, _)) => {
                self.ids.insert(saga.get_id(), id);
                self.running.insert(id, saga);
            }
            // The next sweep tries again (the store may be down).
            Err(e) => tracing::warn!(payment_id = %id, error = %e, "payment saga not started"),
        }
    }
}

impl Actor for PaymentSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = PaymentsCtx;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        ctx: PaymentsCtx,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        // Resume what a previous process left unfinished, then keep sweeping.
        myself.send_message(SupervisorMsg::Sweep)?;
        myself.send_interval(ctx.settings.sweep_interval, || SupervisorMsg::Sweep);
        Ok(SupervisorState { ctx, running: HashMap::new(), ids: HashMap::new() })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Run(id) => state.run(&myself, id).await,
            SupervisorMsg::Sweep => {
                match state.ctx.store.unfinished_payments(&state.ctx.node, state.ctx.clock.now()).await {
                    Ok(ids) => {
                        for id in ids {
                            if !state.running.contains_key(&id) {
                                tracing::info!(payment_id = %id, "resuming payment saga");
                                state.run(&myself, id).await;
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot look for unfinished payment sagas"),
                }
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
            SupervisionEvent::ActorTerminated(cell, ..) => {
                if let Some(id) = state.ids.remove(&cell.get_id()) {
                    state.running.remove(&id);
                }
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(id) = state.ids.remove(&cell.get_id()) {
                    state.running.remove(&id);
                    metrics::counter!("boxoffice_actor_restarts_total", "actor" => "payment_saga").increment(1);
                    tracing::error!(payment_id = %id, error = %err, "payment saga failed; restarting");
                    // Not at once: what failed (the database, usually) needs a moment.
                    let delay = state.ctx.settings.retry_delay;
                    myself.send_after(delay, move || SupervisorMsg::Run(id));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The HTTP layer's handle on payments.
#[derive(Clone)]
pub struct Payments {
    supervisor: ActorRef<SupervisorMsg>,
    gateway: Arc<Guarded>,
    settings: PaymentSettings,
}

impl Payments {
    pub async fn start(
        store: Store,
        registry: Registry,
        gateway: Arc<Guarded>,
        settings: PaymentSettings,
    ) -> anyhow::Result<Self> {
        let node = registry.settings().node_id.clone();
        let clock = registry.settings().clock.clone();
        let ctx = PaymentsCtx { store, node, registry, gateway: gateway.clone(), settings: settings.clone(), clock };
        let (supervisor, _) = Actor::spawn(None, PaymentSupervisor, ctx).await?;
        Ok(Self { supervisor, gateway, settings })
    }

    /// Runs (or nudges) a payment's saga: after it was created, or its verdict arrived.
    pub fn run(&self, id: PaymentId) {
        let _ = self.supervisor.send_message(SupervisorMsg::Run(id));
    }

    /// Looks for sagas to resume (e.g. a refund that a cancellation asked for).
    pub fn sweep(&self) {
        let _ = self.supervisor.send_message(SupervisorMsg::Sweep);
    }

    /// While the provider's circuit is open, new payments are refused for this long.
    pub fn unavailable_for(&self) -> Option<Duration> {
        self.gateway.open_for()
    }

    pub fn deadline(&self) -> Duration {
        self.settings.deadline
    }

    pub fn stop(&self) {
        self.supervisor.stop(Some("shutdown".into()));
    }
}
