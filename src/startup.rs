//! Wiring: store and migrations, admin bootstrap, the actor registry, the HTTP router, and a
//! graceful run loop. Tests build an `Application` on port 0 with a fresh database.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::actors::{EngineSettings, Registry};
use crate::auth::{self, TokenKeys};
use crate::config::Config;
use crate::domain::user::{Email, Password, Role};
use crate::http::{self, AppState};
use crate::persistence::{Store, UserRow};

pub async fn connect_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database_url, config.database_max_connections).await?;
    store.migrate().await.map_err(|e| anyhow::anyhow!("DATABASE_URL: cannot migrate the database: {e}"))?;
    Ok(store)
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    port: u16,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
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
            node_id,
            pipeline_depth: config.journal_pipeline_depth,
        };
        let registry = Registry::start(store.clone(), settings).await?;
        let recovering = registry.clone();
        tokio::spawn(async move {
            match recovering.recover().await {
                Ok(n) => tracing::info!(events = n, "event actors with holds started"),
                Err(e) => tracing::warn!(error = %e, "could not start the actors of events with holds"),
            }
        });
        let secret = match &config.jwt_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => {
                tracing::warn!("JWT_SECRET is not set: using a random key, so tokens die with this process");
                auth::random_secret()
            }
        };
        let keys = TokenKeys::new(
            &secret,
            Duration::from_secs(config.access_token_ttl_secs),
            Duration::from_secs(config.refresh_token_ttl_secs),
        );
        let listener = TcpListener::bind(&config.bind_addr)
            .await
            .map_err(|e| anyhow::anyhow!("BIND_ADDR: cannot listen on {}: {e}", config.bind_addr))?;
        let port = listener.local_addr()?.port();
        let state = AppState::new(store, registry, keys, config, crate::telemetry::metrics_handle());
        tracing::info!(port, engine = state.store.engine(), "boxoffice ready");
        Ok(Self { listener, state, port })
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
        let app = http::app(self.state);
        axum::serve(
            self.listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(app),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        registry.shutdown(Duration::from_secs(10)).await;
        store.close().await;
        tracing::info!("boxoffice stopped");
        Ok(())
    }
}

async fn bootstrap_admin(store: &Store, config: &Config) -> anyhow::Result<()> {
    let (Some(email), Some(password)) = (&config.admin_email, &config.admin_password) else { return Ok(()) };
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("ADMIN_EMAIL {e}"))?;
    let password = Password::parse(password.clone()).map_err(|e| anyhow::anyhow!("ADMIN_PASSWORD {e}"))?;
    let hash = auth::hash_password(password.expose().to_owned()).await?;
    store.upsert_admin(&UserRow::new(email.as_str(), hash, Role::Admin)).await?;
    tracing::info!(email = email.as_str(), "admin account ready");
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_owned()).unwrap_or_else(|_| "node".into())
}
