//! Wiring: store and migrations, admin bootstrap, the actor registry, the HTTP router, and a
//! graceful run loop. Tests build an `Application` on port 0 with a fresh database.

use std::future::Future;
use std::time::Duration;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use ractor::{Actor, ActorRef};
use tokio::net::TcpListener;

use crate::accounts::{self, Bootstrap};
use crate::actors::{EngineSettings, Registry};
use crate::auth::{self, TokenKeys};
use crate::bus::{Bus, OutboxRelay, RelayMsg};
use crate::clock::Clock;
use crate::cluster::{Cluster, ClusterSettings};
use crate::config::{Config, ProcessRole};
use crate::http::{self, AppState, Services};
use crate::notify::mail::Mailer;
use crate::notify::worker::{NotificationSupervisor, NotifyCtx, PoolMsg, WorkerSettings};
use crate::payments::gateway::{GuardSettings, Guarded};
use crate::payments::simulated::{SimulatedProvider, SimulatedSettings};
use crate::payments::{PaymentSettings, Payments};
use crate::persistence::Store;
use crate::receipts::{ReceiptStorage, Receipts, RetrySettings};
use crate::shared::SharedState;
use crate::stream::analytics::{AnalyticsConsumer, AnalyticsMsg, AnalyticsSettings, AnalyticsSource};
use crate::stream::kafka::{KafkaHealth, KafkaSettings, KafkaSink, SinkMsg};

pub async fn connect_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url, config.database_max_connections).await?;
    store.migrate().await.map_err(|e| anyhow::anyhow!("DATABASE_URL: cannot migrate the database: {e}"))?;
    Ok(store)
}

/// Receipt storage (a folder or S3) and the receipts kept there.
fn receipts(config: &Config, store: &Store) -> anyhow::Result<Receipts> {
    let storage = ReceiptStorage::from_config(config)?;
    tracing::info!(storage = %storage.describe(), "receipt storage");
    let retry = RetrySettings { first_pause: Duration::from_millis(config.receipt_retry_ms), attempts: 10 };
    Ok(Receipts::new(storage, store.clone(), retry))
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    port: u16,
    background: Background,
}

/// Actors that run beside the HTTP API, stopped after it.
struct Background {
    relay: Option<ActorRef<RelayMsg>>,
    workers: Option<ActorRef<PoolMsg>>,
    sampler: tokio::task::JoinHandle<()>,
    heartbeat: tokio::task::JoinHandle<()>,
    shared: SharedState,
    sink: Option<ActorRef<SinkMsg>>,
    analytics: Option<ActorRef<AnalyticsMsg>>,
}

impl Background {
    fn stop(&self) {
        self.sampler.abort();
        self.heartbeat.abort();
        self.shared.stop();
        if let Some(r) = &self.relay {
            r.stop(Some("shutdown".into()));
        }
        if let Some(w) = &self.workers {
            w.stop(Some("shutdown".into()));
        }
        if let Some(k) = &self.sink {
            k.stop(Some("shutdown".into()));
        }
        if let Some(a) = &self.analytics {
            a.stop(Some("shutdown".into()));
        }
    }
}

/// How often the analytics look for new domain events when idle.
const ANALYTICS_POLL: Duration = Duration::from_millis(250);
/// How often the analytics forget ids counted longer ago than their retention.
const ANALYTICS_PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The sales analytics of a worker process: from the Kafka topic when there is one, else from
/// the outbox (see `crate::stream::analytics`).
async fn start_analytics(
    config: &Config,
    store: &Store,
    kafka: Option<KafkaSettings>,
    clock: Clock,
) -> anyhow::Result<ActorRef<AnalyticsMsg>> {
    let source = kafka.map_or(AnalyticsSource::Outbox, AnalyticsSource::Kafka);
    let settings = AnalyticsSettings {
        poll: ANALYTICS_POLL,
        dedup_retention: Duration::from_secs(config.analytics_dedup_retention_hours * 3600),
        prune_every: ANALYTICS_PRUNE_EVERY,
    };
    let (consumer, _) = Actor::spawn(None, AnalyticsConsumer, (store.clone(), source, settings, clock)).await?;
    Ok(consumer)
}

/// The notification pool of this process.
async fn start_workers(
    config: &Config,
    store: &Store,
    bus: &Bus,
    receipts: &Receipts,
) -> anyhow::Result<ActorRef<PoolMsg>> {
    let mailer = Mailer::new(config.smtp_url.as_deref(), Path::new(&config.mail_outbox_dir), &config.mail_from)
        .map_err(|e| anyhow::anyhow!("SMTP_URL / MAIL_FROM / MAIL_OUTBOX_DIR: {e}"))?;
    tracing::info!(mail = %mailer.describe(), bus = %bus.describe(), workers = config.notification_workers,
        "notification workers starting");
    let ctx = NotifyCtx {
        store: store.clone(),
        bus: bus.clone(),
        mailer: Arc::new(mailer),
        settings: WorkerSettings {
            workers: config.notification_workers,
            prefetch: 16,
            max_attempts: config.notification_max_attempts,
            backoff: Duration::from_millis(config.notification_backoff_ms),
            consumer_tag: format!("{}-{}", hostname(), std::process::id()),
        },
        receipts: receipts.clone(),
    };
    let (pool, _) = Actor::spawn(None, NotificationSupervisor, ctx).await?;
    Ok(pool)
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Clock::system()).await
    }

    /// As `build`, with the clock that hold expiry, payment deadlines and the event-start rule
    /// read (tests pass a manual one and move it instead of sleeping).
    pub async fn build_with_clock(config: Config, clock: Clock) -> anyhow::Result<Self> {
        config.validate()?;
        // The recorder before anything that records: a value set earlier (the Redis monitor's
        // gauge, set once per ping) is lost, not replayed.
        let metrics = crate::telemetry::metrics_handle();
        let store = connect_store(&config).await?;
        bootstrap_admin(&store, &config).await?;
        let node_id = config.node_id.clone().unwrap_or_else(|| {
            format!("{}-{}-{}", hostname(), std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8])
        });
        let settings = EngineSettings {
            hold_ttl: config.hold_ttl(),
            tick: Duration::from_millis(config.hold_sweep_ms),
            idle_timeout: Duration::from_secs(config.actor_idle_secs),
            call_timeout: Duration::from_millis(config.actor_call_timeout_ms),
            node_id: node_id.clone(),
            lease: Duration::from_secs(config.event_lease_secs),
            pipeline_depth: config.journal_pipeline_depth,
            payment_grace: Duration::from_secs(30),
            clock: clock.clone(),
        };
        let registry =
            Registry::start(store.clone(), settings, Duration::from_millis(config.snapshot_refresh_ms)).await?;
        let secret = match &config.jwt_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => {
                tracing::warn!("JWT_SECRET is not set: using a random key, so tokens die with this process");
                auth::random_secret()
            }
        };
        let shared = SharedState::start(&config, &registry).await?;
        let keys = TokenKeys::new(
            &secret,
            Duration::from_secs(config.access_token_ttl_secs),
            Duration::from_secs(config.refresh_token_ttl_secs),
        )
        .with_revocations(shared.revocations.clone());
        let listener = TcpListener::bind(&config.bind_addr)
            .await
            .map_err(|e| anyhow::anyhow!("BIND_ADDR: cannot listen on {}: {e}", config.bind_addr))?;
        let local = listener.local_addr()?;
        let port = local.port();
        let host = if local.ip().is_unspecified() { "127.0.0.1".to_owned() } else { local.ip().to_string() };
        let node_addr = match &config.node_addr {
            Some(addr) => addr.clone(),
            None => {
                let ecs = std::env::var(crate::cluster::addr::ECS_METADATA_URI).ok();
                crate::cluster::addr::default_node_addr(local, ecs.as_deref()).await
            }
        };
        // Registers this node and, every third of a lease, takes over the held events of nodes
        // that are gone (at start-up too: the events this process had before a restart).
        let cluster = Cluster::new(
            ClusterSettings {
                node_id,
                addr: node_addr,
                secret: config.cluster_secret.clone(),
                lease: Duration::from_secs(config.event_lease_secs),
                forward_timeout: Duration::from_millis(config.forward_timeout_ms),
            },
            store.clone(),
            registry.clone(),
        )?;
        if config.cluster_secret.is_none() && store.engine() == "postgres" {
            tracing::info!("CLUSTER_SECRET is not set: writes for events other nodes own are not forwarded (503)");
        }
        let heartbeat = cluster.spawn_heartbeat();

        // Payments: the simulated provider calls this server's own webhook unless told otherwise.
        let webhook_secret = match &config.payment_webhook_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => {
                tracing::warn!("PAYMENT_WEBHOOK_SECRET is not set: using a random key for this process");
                auth::random_secret()
            }
        };
        let webhook_url = Arc::new(OnceLock::new());
        let _ = webhook_url.set(
            config
                .payment_webhook_url
                .clone()
                .unwrap_or_else(|| format!("http://{host}:{port}/api/v1/payments/webhook")),
        );
        let provider = Arc::new(SimulatedProvider::new(
            SimulatedSettings {
                delay: Duration::from_millis(config.payment_provider_delay_ms),
                slow_delay: Duration::from_millis(config.payment_provider_slow_ms),
                failure_rate: config.payment_provider_failure_rate,
                latency: Duration::from_millis(5),
            },
            webhook_secret.clone(),
            webhook_url,
        ));
        let gateway = Arc::new(Guarded::new(
            Arc::new(provider),
            GuardSettings {
                timeout: Duration::from_millis(config.payment_gateway_timeout_ms),
                ..GuardSettings::default()
            },
        ));
        let payments = Payments::start(
            store.clone(),
            registry.clone(),
            gateway,
            PaymentSettings {
                deadline: Duration::from_secs(config.payment_deadline_secs),
                poll_interval: Duration::from_secs(config.payment_poll_secs.max(1)),
                retry_delay: Duration::from_secs(1),
                sweep_interval: Duration::from_secs(5),
                lease: Duration::from_secs(config.payment_saga_lease_secs.max(1)),
            },
        )
        .await?;

        // The outbox relay and, unless this is an API-only process, the notification workers.
        let bus = Bus::new(config.amqp_url.as_deref(), &config.amqp_prefix);
        let kafka_settings = KafkaSettings::from_config(&config);
        let (relay, _) = Actor::spawn(
            None,
            OutboxRelay,
            (store.clone(), bus.clone(), registry.outbox_wake(), Duration::from_millis(500), kafka_settings.is_some()),
        )
        .await?;
        let receipts = receipts(&config, &store)?;
        // The Kafka sink, with its own cursor in the outbox.
        let kafka = KafkaHealth::default();
        let analytics = match config.role {
            ProcessRole::All => Some(start_analytics(&config, &store, kafka_settings.clone(), clock.clone()).await?),
            ProcessRole::Api | ProcessRole::Worker => None,
        };
        let sink = match kafka_settings {
            Some(settings) => {
                Some(Actor::spawn(None, KafkaSink, (store.clone(), settings, kafka.clone(), clock.clone())).await?.0)
            }
            None => None,
        };
        let workers = match config.role {
            ProcessRole::All => Some(start_workers(&config, &store, &bus, &receipts).await?),
            ProcessRole::Api | ProcessRole::Worker => None,
        };
        let sampler = crate::telemetry::spawn_sampler(store.clone(), bus.clone(), crate::telemetry::SAMPLE_EVERY);
        let background =
            Background { relay: Some(relay), workers, sampler, heartbeat, shared: shared.clone(), sink, analytics };
        let services = Services { payments, bus, webhook_secret, receipts, cluster, shared, kafka };
        let state = AppState::new(store, registry, keys, config, metrics, services);
        tracing::info!(port, engine = state.store.engine(), "boxoffice ready");
        Ok(Self { listener, state, port, background })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn registry(&self) -> &Registry {
        &self.state.registry
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests and
    /// journal batches finish, and closes the store.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let registry = self.state.registry.clone();
        let store = self.state.store.clone();
        let payments = self.state.payments.clone();
        let background = self.background;
        let streams = self.state.streams.clone();
        let settings = http::ServeSettings {
            header_read_timeout: Duration::from_secs(self.state.config.http_header_read_timeout_secs),
            drain: Duration::from_secs(self.state.config.request_timeout_secs + 5),
        };
        let app = http::app(self.state);
        http::serve(self.listener, app, settings, shutdown, move || streams.close()).await?;
        // Unfinished sagas and unsent outbox rows are persisted: the next start resumes them.
        payments.stop();
        // No more taking over events while this node gives its own up.
        background.heartbeat.abort();
        registry.shutdown(Duration::from_secs(10)).await;
        background.stop();
        store.close().await;
        tracing::info!("boxoffice stopped");
        Ok(())
    }
}

/// A process of `ROLE=worker`: notification workers and the sales analytics, plus `/healthz`
/// and `/metrics`.
pub async fn run_worker(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    config.validate()?;
    let metrics = crate::telemetry::metrics_handle();
    let store = connect_store(&config).await?;
    let bus = Bus::new(config.amqp_url.as_deref(), &config.amqp_prefix);
    let receipts = receipts(&config, &store)?;
    let workers = start_workers(&config, &store, &bus, &receipts).await?;
    let analytics = start_analytics(&config, &store, KafkaSettings::from_config(&config), Clock::system()).await?;
    let sampler = crate::telemetry::spawn_sampler(store.clone(), bus.clone(), crate::telemetry::SAMPLE_EVERY);
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }))
        .route("/metrics", axum::routing::get(move || async move { metrics.render() }));
    let listener = TcpListener::bind(&config.bind_addr)
        .await
        .map_err(|e| anyhow::anyhow!("BIND_ADDR: cannot listen on {}: {e}", config.bind_addr))?;
    tracing::info!(addr = %listener.local_addr()?, "boxoffice notification worker ready");
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    sampler.abort();
    workers.stop(Some("shutdown".into()));
    analytics.stop(Some("shutdown".into()));
    store.close().await;
    Ok(())
}

async fn bootstrap_admin(store: &Store, config: &Config) -> anyhow::Result<()> {
    let (Some(email), Some(password)) = (&config.admin_email, &config.admin_password) else { return Ok(()) };
    let outcome = accounts::bootstrap_admin(store, email, password, config.admin_promote_existing).await?;
    match outcome {
        Bootstrap::Created => tracing::info!(email = %email, "admin account created"),
        Bootstrap::Unchanged => tracing::info!(email = %email, "admin account ready"),
        Bootstrap::PasswordReplaced => {
            tracing::warn!(email = %email, "admin password replaced from ADMIN_PASSWORD; its sessions ended")
        }
        Bootstrap::Promoted => tracing::warn!(email = %email,
            "existing account made admin (ADMIN_PROMOTE_EXISTING); its password replaced and its sessions ended"),
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "node".into())
}
