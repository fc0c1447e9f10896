//! Configuration from the environment (and a `.env` file in development). The variable names
//! are listed in the README; a missing or invalid value is a start-up error naming the variable.
//! The clap attributes below are the one list of variables: `boxoffice config --list` prints it
//! (with defaults and what production requires) and the deployment checks read that output.

use std::time::Duration;

use clap::{Args, CommandFactory as _, ValueEnum};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Environment {
    #[default]
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/boxoffice.db";
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,ractor=warn";

/// Every setting of the engine. Tests build one with `Config::default()` and override fields.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Where the HTTP API listens.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8080")]
    pub bind_addr: String,
    /// `sqlite://...` or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Connections in the database pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
    /// HS256 signing key; random per process in development, required in production.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// `development` or `production` (refuses weak secrets, SQLite and a missing secret).
    #[arg(long, env = "BOXOFFICE_ENV", value_enum, default_value = "development")]
    pub env: Environment,
    /// If set with ADMIN_PASSWORD, this admin exists after start.
    #[arg(long, env = "ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// Password of ADMIN_EMAIL (at least 12 characters in production).
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Lets the bootstrap make an existing non-admin account with ADMIN_EMAIL the admin
    /// (replacing its password and ending its sessions); without it such a start is refused.
    #[arg(long, env = "ADMIN_PROMOTE_EXISTING", action = clap::ArgAction::Set, default_value_t = false)]
    pub admin_promote_existing: bool,
    /// How long a hold lasts before it expires.
    #[arg(long, env = "HOLD_TTL_SECS", default_value_t = 600)]
    pub hold_ttl_secs: u64,
    /// How often event actors sweep expired holds, in milliseconds.
    #[arg(long, env = "HOLD_SWEEP_MS", default_value_t = 1000)]
    pub hold_sweep_ms: u64,
    /// An event actor with no holds and no traffic for this long stops until next needed.
    #[arg(long, env = "ACTOR_IDLE_SECS", default_value_t = 300)]
    pub actor_idle_secs: u64,
    /// Upper bound for a call into an actor (then 503).
    #[arg(long, env = "ACTOR_CALL_TIMEOUT_MS", default_value_t = 5000)]
    pub actor_call_timeout_ms: u64,
    /// Journal batches of one event written at once (`0`: the store's default, 2 on PostgreSQL).
    #[arg(long, env = "JOURNAL_PIPELINE_DEPTH", default_value_t = 0)]
    pub journal_pipeline_depth: usize,
    /// Upper bound for a whole HTTP request (then 503).
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Lifetime of an access token.
    #[arg(long, env = "ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token.
    #[arg(long, env = "REFRESH_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub refresh_token_ttl_secs: u64,
    /// Origins the web app is served from (comma-separated); `*` allows any.
    #[arg(
        long,
        env = "CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "http://localhost:5173,http://127.0.0.1:5173"
    )]
    pub cors_origins: Vec<String>,
    /// Requests per second per client (user, else IP), with bursts of twice that; `0` = off.
    #[arg(long, env = "RATE_LIMIT_PER_SEC", default_value_t = 100)]
    pub rate_limit_per_sec: u32,
    /// Webhook calls per second per client address, with bursts of twice that; `0` = off.
    #[arg(long, env = "WEBHOOK_RATE_LIMIT_PER_SEC", default_value_t = 50)]
    pub webhook_rate_limit_per_sec: u32,
    /// Logins and registrations per minute per client address; `0` = off.
    #[arg(long, env = "AUTH_RATE_LIMIT_PER_MIN", default_value_t = 30)]
    pub auth_rate_limit_per_min: u32,
    /// Logins and registrations per minute per e-mail address; `0` = off.
    #[arg(long, env = "AUTH_ACCOUNT_RATE_LIMIT_PER_MIN", default_value_t = 5)]
    pub auth_account_rate_limit_per_min: u32,
    /// Password hashes computed at once (`0`: one per core); each takes about 19 MiB.
    #[arg(long, env = "PASSWORD_HASH_CONCURRENCY", default_value_t = 0)]
    pub password_hash_concurrency: usize,
    /// How long a login or registration waits for a hashing slot before a 503, in milliseconds.
    #[arg(long, env = "PASSWORD_HASH_WAIT_MS", default_value_t = 1000)]
    pub password_hash_wait_ms: u64,
    /// Live streams open at once in this process (`0`: half the process's open-file limit).
    #[arg(long, env = "STREAM_MAX_TOTAL", default_value_t = 0)]
    pub stream_max_total: usize,
    /// Live streams open at once per client (user, else address).
    #[arg(long, env = "STREAM_MAX_PER_CLIENT", default_value_t = 8)]
    pub stream_max_per_client: usize,
    /// A stream with nothing to report for this long ends (clients reconnect), in seconds.
    #[arg(long, env = "STREAM_IDLE_SECS", default_value_t = 300)]
    pub stream_idle_secs: u64,
    /// A stream ends after this long whatever happens (clients reconnect), in seconds.
    #[arg(long, env = "STREAM_MAX_LIFETIME_SECS", default_value_t = 3600)]
    pub stream_max_lifetime_secs: u64,
    /// A connection that has not sent a request's headers within this closes, in seconds.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub http_header_read_timeout_secs: u64,
    /// `json` or `pretty`; defaults to pretty in development and json in production.
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter (tracing's `EnvFilter` syntax).
    #[arg(long, env = "RUST_LOG", default_value = DEFAULT_LOG_FILTER)]
    pub log_filter: String,
    /// This process's name as an event owner (defaults to host name and process id). A node
    /// restarted under the same name takes its events back at once instead of after their lease.
    #[arg(long, env = "NODE_ID")]
    pub node_id: Option<String>,
    /// Where the other nodes reach this one to forward writes of the events it owns, e.g.
    /// `http://api-1:8080` (default: on Amazon ECS the task's private IP from its metadata
    /// endpoint, else `http://` and BIND_ADDR, loopback if it binds all addresses).
    #[arg(long, env = "NODE_ADDR")]
    pub node_addr: Option<String>,
    /// How long an event stays a node's without renewal (renewed every third of it); after a
    /// node dies, its events move to others within about this long.
    #[arg(long, env = "EVENT_LEASE_SECS", default_value_t = 10)]
    pub event_lease_secs: u64,
    /// Shared by the nodes of one deployment: a request forwarded to the owner of its event
    /// carries it (else 403). Unset: this node neither forwards nor accepts forwarded requests.
    #[arg(long, env = "CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// Upper bound of a write forwarded to its event's owner, in milliseconds (then 503, or the
    /// event is taken over if the owner's lease ran out).
    #[arg(long, env = "FORWARD_TIMEOUT_MS", default_value_t = 3000)]
    pub forward_timeout_ms: u64,
    /// How often a node that does not own a watched event re-reads its availability from the
    /// store, in milliseconds.
    #[arg(long, env = "SNAPSHOT_REFRESH_MS", default_value_t = 1000)]
    pub snapshot_refresh_ms: u64,
    /// Proxies (comma-separated CIDRs, e.g. `10.0.0.0/8,127.0.0.1/32`) whose `X-Forwarded-For`
    /// names the client for rate limits and logs; from any other peer the header is ignored.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// What this process runs: `all` (API, outbox relay, notification workers and sales
    /// analytics), `api` (no workers), or `worker` (notification workers and sales analytics;
    /// needs AMQP_URL).
    #[arg(long, env = "ROLE", value_enum, default_value = "all")]
    pub role: ProcessRole,
    /// How long a payment waits for the provider's callback before it fails and frees the hold.
    #[arg(long, env = "PAYMENT_DEADLINE_SECS", default_value_t = 120)]
    pub payment_deadline_secs: u64,
    /// Key of the provider's webhook signature; random per process in development.
    #[arg(long, env = "PAYMENT_WEBHOOK_SECRET", hide_env_values = true)]
    pub payment_webhook_secret: Option<String>,
    /// Where the simulated provider sends its callbacks (default: this server's own webhook).
    #[arg(long, env = "PAYMENT_WEBHOOK_URL")]
    pub payment_webhook_url: Option<String>,
    /// Simulated provider: delay before a verdict, in milliseconds.
    #[arg(long, env = "PAYMENT_PROVIDER_DELAY_MS", default_value_t = 1500)]
    pub payment_provider_delay_ms: u64,
    /// Simulated provider: delay of `tok_slow`, in milliseconds.
    #[arg(long, env = "PAYMENT_PROVIDER_SLOW_MS", default_value_t = 10_000)]
    pub payment_provider_slow_ms: u64,
    /// Simulated provider: share of calls (0.0 to 1.0) that fail as if it were down.
    #[arg(long, env = "PAYMENT_PROVIDER_FAILURE_RATE", default_value_t = 0.0)]
    pub payment_provider_failure_rate: f64,
    /// The built-in simulated provider approves test tokens and moves no money: production
    /// refuses to start with it unless this is set (a staging system that runs as production).
    #[arg(long, env = "ALLOW_SIMULATED_PAYMENTS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_simulated_payments: bool,
    /// Upper bound of one call to the payment provider, in milliseconds.
    #[arg(long, env = "PAYMENT_GATEWAY_TIMEOUT_MS", default_value_t = 3000)]
    pub payment_gateway_timeout_ms: u64,
    /// How often a waiting payment asks the provider for its status, in seconds.
    #[arg(long, env = "PAYMENT_POLL_SECS", default_value_t = 5)]
    pub payment_poll_secs: u64,
    /// How long a process keeps a payment saga without renewing: after a crash another process
    /// (or the restarted one, under a new NODE_ID) resumes the saga once this ran out.
    #[arg(long, env = "PAYMENT_SAGA_LEASE_SECS", default_value_t = 30)]
    pub payment_saga_lease_secs: u64,
    /// RabbitMQ, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`; unset: messages travel in process.
    #[arg(long, env = "AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,
    /// Prefix of the exchange and queue names (lets several deployments share a broker).
    #[arg(long, env = "AMQP_PREFIX", default_value = "boxoffice")]
    pub amqp_prefix: String,
    /// Redis shared by the nodes (rate limits, revocations, pub/sub), `redis://` or `rediss://`
    /// (TLS); unset: each process keeps these to itself.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// PEM file of the CA that signs the Redis server's certificate (`rediss://`); unset: the
    /// public web PKI roots.
    #[arg(long, env = "REDIS_CA_FILE")]
    pub redis_ca_file: Option<String>,
    /// Prefix of every Redis key and channel (lets several deployments share a Redis).
    #[arg(long, env = "REDIS_PREFIX", default_value = "boxoffice")]
    pub redis_prefix: String,
    /// How long a node keeps an event's unchanging fields for the detail route (changes
    /// invalidate it on every node at once; this bounds a change lost while Redis was away);
    /// `0` = off. Availability is never cached.
    #[arg(long, env = "EVENT_CACHE_TTL_SECS", default_value_t = 30)]
    pub event_cache_ttl_secs: u64,
    /// e.g. `smtp://127.0.0.1:1025` (plain), `smtps://user:pass@host`; unset: `.eml` files.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Where e-mails go as `.eml` files when SMTP_URL is unset.
    #[arg(long, env = "MAIL_OUTBOX_DIR", default_value = "data/outbox")]
    pub mail_outbox_dir: String,
    /// Sender of notification e-mails.
    #[arg(long, env = "MAIL_FROM", default_value = "boxoffice <tickets@boxoffice.local>")]
    pub mail_from: String,
    /// Notification workers in this process.
    #[arg(long, env = "NOTIFICATION_WORKERS", default_value_t = 2)]
    pub notification_workers: usize,
    /// Tries of a notification before it goes to the dead-letter queue.
    #[arg(long, env = "NOTIFICATION_MAX_ATTEMPTS", default_value_t = 5)]
    pub notification_max_attempts: u32,
    /// First pause before retrying a failed notification, in milliseconds (doubles each time).
    #[arg(long, env = "NOTIFICATION_BACKOFF_MS", default_value_t = 500)]
    pub notification_backoff_ms: u64,
    /// Folder of the built web app served at `/`; unset: `web/dist` when it exists.
    #[arg(long, env = "WEB_DIR")]
    pub web_dir: Option<String>,
    /// Folder of the stored receipt PDFs when S3_BUCKET is unset (shared by every process).
    #[arg(long, env = "RECEIPTS_DIR", default_value = "data/receipts")]
    pub receipts_dir: String,
    /// S3 bucket of the stored receipts (under `receipts/`); unset: RECEIPTS_DIR.
    #[arg(long, env = "S3_BUCKET")]
    pub s3_bucket: Option<String>,
    /// S3-compatible endpoint, e.g. `http://127.0.0.1:9000` (path-style; `http://` allowed only
    /// here); unset: AWS.
    #[arg(long, env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Region of S3_BUCKET; unset: AWS_REGION, else `us-east-1`.
    #[arg(long, env = "S3_REGION")]
    pub s3_region: Option<String>,
    /// AWS region (the SDKs' variable), used when S3_REGION is unset.
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// S3 access key; unset: the task role (container, web identity or instance credentials).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub aws_access_key_id: Option<String>,
    /// S3 secret key, with AWS_ACCESS_KEY_ID.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub aws_secret_access_key: Option<String>,
    /// Session token of temporary credentials, with AWS_ACCESS_KEY_ID.
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
    pub aws_session_token: Option<String>,
    /// Lifetime of the presigned receipt URLs a download redirects to (S3), in seconds.
    #[arg(long, env = "RECEIPT_URL_TTL_SECS", default_value_t = 300)]
    pub receipt_url_ttl_secs: u64,
    /// Upper bound of one call to receipt storage, in milliseconds (then it counts as down).
    #[arg(long, env = "RECEIPT_STORAGE_TIMEOUT_MS", default_value_t = 5000)]
    pub receipt_storage_timeout_ms: u64,
    /// First pause before storing a receipt again after a failure, in milliseconds (doubles,
    /// up to a minute, 10 tries; after that a download renders and stores it).
    #[arg(long, env = "RECEIPT_RETRY_MS", default_value_t = 1000)]
    pub receipt_retry_ms: u64,
    /// Kafka brokers for the domain-event stream, e.g. `127.0.0.1:9092,10.0.0.2:9092`; unset: no Kafka sink.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    pub kafka_bootstrap_servers: Option<String>,
    /// The topic every domain event is published to (keyed by event id).
    #[arg(long, env = "KAFKA_TOPIC", default_value = "boxoffice.events")]
    pub kafka_topic: String,
    /// SASL user for Kafka (with KAFKA_SASL_PASSWORD); unset: no authentication.
    #[arg(long, env = "KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    /// SASL password for Kafka.
    #[arg(long, env = "KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,
    /// SASL mechanism: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    #[arg(long, env = "KAFKA_SASL_MECHANISM", default_value = "PLAIN")]
    pub kafka_sasl_mechanism: String,
    /// How long the sales analytics remember a counted domain event's id, to skip a copy of it,
    /// in hours (then pruned). Keep it above the Kafka topic's retention: a consumer that lost
    /// its position reads again from the earliest record kept. At least 168 (the outbox's 7 days).
    #[arg(long, env = "ANALYTICS_DEDUP_RETENTION_HOURS", default_value_t = 720)]
    pub analytics_dedup_retention_hours: u64,
}

/// Production refuses SQLite (a container's file system is not a durable store), and the
/// built-in simulated payment provider unless a staging system says it wants it.
const PRODUCTION_REQUIRED: [&str; 2] = ["DATABASE_URL", "ALLOW_SIMULATED_PAYMENTS"];

/// Lets `variables` read the clap attributes of `Config` without a binary's own parser.
#[derive(clap::Parser)]
struct ConfigCli {
    #[command(flatten)]
    config: Config,
}

/// When a deployment must set a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    No,
    /// `BOXOFFICE_ENV=production` refuses to start without it.
    Production,
    /// `ROLE=api` and `ROLE=worker` refuse to start without it.
    SplitRoles,
}

/// One configuration variable as `boxoffice config --list` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Variable {
    pub name: String,
    pub default: Option<String>,
    pub required: Requirement,
    /// Its value is never printed (`--help` hides it); deployments take it from a secret store.
    pub secret: bool,
    pub help: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ProcessRole {
    #[default]
    All,
    Api,
    Worker,
}

impl Default for Config {
    /// The documented defaults, ignoring the environment (tests rely on that).
    fn default() -> Self {
        Self {
            bind_addr: "127.0.0.1:8080".into(),
            database_url: DEFAULT_DATABASE_URL.into(),
            database_max_connections: 16,
            jwt_secret: None,
            env: Environment::Development,
            admin_email: None,
            admin_password: None,
            admin_promote_existing: false,
            hold_ttl_secs: 600,
            hold_sweep_ms: 1000,
            actor_idle_secs: 300,
            actor_call_timeout_ms: 5000,
            journal_pipeline_depth: 0,
            request_timeout_secs: 30,
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            cors_origins: vec!["http://localhost:5173".into(), "http://127.0.0.1:5173".into()],
            rate_limit_per_sec: 100,
            webhook_rate_limit_per_sec: 50,
            auth_rate_limit_per_min: 30,
            auth_account_rate_limit_per_min: 5,
            password_hash_concurrency: 0,
            password_hash_wait_ms: 1000,
            stream_max_total: 0,
            stream_max_per_client: 8,
            stream_idle_secs: 300,
            stream_max_lifetime_secs: 3600,
            http_header_read_timeout_secs: 10,
            log_format: None,
            log_filter: DEFAULT_LOG_FILTER.into(),
            node_id: None,
            node_addr: None,
            event_lease_secs: 10,
            cluster_secret: None,
            forward_timeout_ms: 3000,
            snapshot_refresh_ms: 1000,
            trusted_proxies: Vec::new(),
            role: ProcessRole::All,
            payment_deadline_secs: 120,
            payment_webhook_secret: None,
            payment_webhook_url: None,
            payment_provider_delay_ms: 1500,
            payment_provider_slow_ms: 10_000,
            payment_provider_failure_rate: 0.0,
            allow_simulated_payments: false,
            payment_gateway_timeout_ms: 3000,
            payment_poll_secs: 5,
            payment_saga_lease_secs: 30,
            amqp_url: None,
            amqp_prefix: "boxoffice".into(),
            redis_url: None,
            redis_ca_file: None,
            redis_prefix: "boxoffice".into(),
            event_cache_ttl_secs: 30,
            smtp_url: None,
            mail_outbox_dir: "data/outbox".into(),
            mail_from: "boxoffice <tickets@boxoffice.local>".into(),
            notification_workers: 2,
            notification_max_attempts: 5,
            notification_backoff_ms: 500,
            web_dir: None,
            receipts_dir: "data/receipts".into(),
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: None,
            aws_region: None,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_session_token: None,
            receipt_url_ttl_secs: 300,
            receipt_storage_timeout_ms: 5000,
            receipt_retry_ms: 1000,
            kafka_bootstrap_servers: None,
            kafka_topic: "boxoffice.events".into(),
            kafka_sasl_username: None,
            kafka_sasl_password: None,
            kafka_sasl_mechanism: "PLAIN".into(),
            analytics_dedup_retention_hours: 720,
        }
    }
}

/// Secrets that must never sign production tokens.
const WEAK_SECRETS: &[&str] =
    &["secret", "changeme", "change-me", "jwt-secret", "your-secret-key", "development", "boxoffice"];

impl Config {
    /// Checks what clap cannot: cross-field rules and production's refusal of weak secrets.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.hold_ttl_secs == 0 {
            anyhow::bail!("HOLD_TTL_SECS must be at least 1");
        }
        if self.hold_sweep_ms == 0 {
            anyhow::bail!("HOLD_SWEEP_MS must be at least 1");
        }
        if self.admin_email.is_some() != self.admin_password.is_some() {
            anyhow::bail!("ADMIN_EMAIL and ADMIN_PASSWORD must be set together");
        }
        if self.payment_deadline_secs == 0 {
            anyhow::bail!("PAYMENT_DEADLINE_SECS must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.payment_provider_failure_rate) {
            anyhow::bail!("PAYMENT_PROVIDER_FAILURE_RATE must be between 0.0 and 1.0");
        }
        if self.stream_max_per_client == 0 {
            anyhow::bail!("STREAM_MAX_PER_CLIENT must be at least 1");
        }
        if self.stream_idle_secs == 0 || self.stream_max_lifetime_secs == 0 {
            anyhow::bail!("STREAM_IDLE_SECS and STREAM_MAX_LIFETIME_SECS must be at least 1");
        }
        if self.http_header_read_timeout_secs == 0 {
            anyhow::bail!("HTTP_HEADER_READ_TIMEOUT_SECS must be at least 1");
        }
        if self.event_lease_secs == 0 || self.forward_timeout_ms == 0 || self.snapshot_refresh_ms == 0 {
            anyhow::bail!("EVENT_LEASE_SECS, FORWARD_TIMEOUT_MS and SNAPSHOT_REFRESH_MS must be at least 1");
        }
        if let Err(e) = crate::net::parse_cidrs(&self.trusted_proxies) {
            anyhow::bail!("TRUSTED_PROXIES: {e}");
        }
        if let Some(addr) = &self.node_addr
            && !(addr.starts_with("http://") || addr.starts_with("https://"))
        {
            anyhow::bail!("NODE_ADDR must be an http:// or https:// URL, e.g. http://api-1:8080");
        }
        if self.cluster_secret.as_deref().is_some_and(|s| s.len() < 16) {
            anyhow::bail!("CLUSTER_SECRET must be at least 16 characters");
        }
        if self.redis_url.as_deref().is_some_and(|u| !u.starts_with("redis://") && !u.starts_with("rediss://")) {
            anyhow::bail!("REDIS_URL must start with redis:// or rediss://");
        }
        if self.redis_prefix.is_empty() {
            anyhow::bail!("REDIS_PREFIX must not be empty");
        }
        if self.kafka_sasl_username.is_some() != self.kafka_sasl_password.is_some() {
            anyhow::bail!("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD must be set together");
        }
        if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&self.kafka_sasl_mechanism.as_str()) {
            anyhow::bail!("KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
        }
        if self.kafka_topic.is_empty() {
            anyhow::bail!("KAFKA_TOPIC must not be empty");
        }
        // Shorter than the outbox keeps its rows (7 days) would forget ids a replay can bring back.
        if self.analytics_dedup_retention_hours < 168 {
            anyhow::bail!("ANALYTICS_DEDUP_RETENTION_HOURS must be at least 168 (7 days)");
        }
        if self.notification_max_attempts == 0 {
            anyhow::bail!("NOTIFICATION_MAX_ATTEMPTS must be at least 1");
        }
        // S3 signs URLs for at most 7 days.
        if !(1..=7 * 24 * 3600).contains(&self.receipt_url_ttl_secs) {
            anyhow::bail!("RECEIPT_URL_TTL_SECS must be between 1 and 604800");
        }
        if self.receipt_storage_timeout_ms == 0 || self.receipt_retry_ms == 0 {
            anyhow::bail!("RECEIPT_STORAGE_TIMEOUT_MS and RECEIPT_RETRY_MS must be at least 1");
        }
        if self.s3_bucket.as_deref().is_some_and(|b| b.trim().is_empty()) {
            anyhow::bail!("S3_BUCKET must not be empty (unset it to keep receipts in RECEIPTS_DIR)");
        }
        if let Some(e) = &self.s3_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            anyhow::bail!("S3_ENDPOINT must be an http:// or https:// URL");
        }
        if self.aws_access_key_id.is_some() != self.aws_secret_access_key.is_some() {
            anyhow::bail!("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
        }
        if self.role != ProcessRole::All && self.amqp_url.is_none() {
            anyhow::bail!(
                "ROLE=api and ROLE=worker need AMQP_URL: without a broker the API's messages reach no worker"
            );
        }
        if self.env == Environment::Production {
            for (name, secret) in self.production_secrets() {
                match secret {
                    None => anyhow::bail!("{name} is required when BOXOFFICE_ENV=production"),
                    Some(s) if s.len() < 32 || WEAK_SECRETS.iter().any(|w| s.eq_ignore_ascii_case(w)) => {
                        anyhow::bail!("{name} is too weak for production: use at least 32 random bytes")
                    }
                    Some(_) => {}
                }
            }
            if self.admin_password.as_deref().is_some_and(|p| p.len() < 12) {
                anyhow::bail!("ADMIN_PASSWORD must be at least 12 characters in production");
            }
            // The simulated provider is the only one built in: it would sell tickets for nothing.
            if !self.allow_simulated_payments {
                anyhow::bail!(
                    "the payment provider is the built-in simulator, which approves test card tokens and takes no \
                     money: it is refused when BOXOFFICE_ENV=production; set ALLOW_SIMULATED_PAYMENTS=true only \
                     on a staging system"
                );
            }
        }
        Ok(())
    }

    /// The secrets production refuses to start without (or with a weak value).
    fn production_secrets(&self) -> [(&'static str, &Option<String>); 2] {
        [("JWT_SECRET", &self.jwt_secret), ("PAYMENT_WEBHOOK_SECRET", &self.payment_webhook_secret)]
    }

    /// Every variable the engine reads, in declaration order, from the clap attributes above.
    pub fn variables() -> Vec<Variable> {
        let production: Vec<&str> =
            Config::default().production_secrets().iter().map(|(name, _)| *name).chain(PRODUCTION_REQUIRED).collect();
        ConfigCli::command()
            .get_arguments()
            .filter_map(|arg| {
                let name = arg.get_env()?.to_str()?.to_owned();
                let default = arg.get_default_values().iter().filter_map(|v| v.to_str()).collect::<Vec<_>>();
                let required = if production.contains(&name.as_str()) {
                    Requirement::Production
                } else if name == "AMQP_URL" {
                    Requirement::SplitRoles
                } else {
                    Requirement::No
                };
                Some(Variable {
                    default: (!default.is_empty()).then(|| default.join(",")),
                    help: arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
                    secret: arg.is_hide_env_values_set(),
                    required,
                    name,
                })
            })
            .collect()
    }

    pub fn log_format(&self) -> LogFormat {
        self.log_format.unwrap_or(match self.env {
            Environment::Development => LogFormat::Pretty,
            Environment::Production => LogFormat::Json,
        })
    }

    pub fn hold_ttl(&self) -> Duration {
        Duration::from_secs(self.hold_ttl_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_refuses_missing_or_weak_secrets() {
        let mut c = Config { env: Environment::Production, ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("JWT_SECRET"));
        c.jwt_secret = Some("secret".into());
        assert!(c.validate().is_err());
        c.jwt_secret = Some("x".repeat(40));
        assert!(c.validate().unwrap_err().to_string().contains("PAYMENT_WEBHOOK_SECRET"));
        c.payment_webhook_secret = Some("changeme".into());
        assert!(c.validate().is_err());
        c.payment_webhook_secret = Some("y".repeat(40));
        assert!(c.validate().unwrap_err().to_string().contains("ALLOW_SIMULATED_PAYMENTS"));
        c.allow_simulated_payments = true;
        assert!(c.validate().is_ok());
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn admin_credentials_come_in_pairs() {
        let c = Config { admin_email: Some("a@b.io".into()), ..Config::default() };
        assert!(c.validate().unwrap_err().to_string().contains("ADMIN_PASSWORD"));
    }
}

#[cfg(test)]
mod listing {
    use super::*;

    #[test]
    fn the_list_names_every_variable_with_its_default_and_what_production_requires() {
        let vars = Config::variables();
        let get = |n: &str| vars.iter().find(|v| v.name == n).unwrap_or_else(|| panic!("{n} not listed"));
        assert_eq!(get("HOLD_TTL_SECS").default.as_deref(), Some("600"));
        assert_eq!(get("CORS_ORIGINS").default.as_deref(), Some("http://localhost:5173,http://127.0.0.1:5173"));
        assert_eq!(get("RUST_LOG").default.as_deref(), Some(DEFAULT_LOG_FILTER));
        assert_eq!(get("JWT_SECRET").required, Requirement::Production);
        assert!(get("JWT_SECRET").secret && get("JWT_SECRET").default.is_none());
        assert_eq!(get("PAYMENT_WEBHOOK_SECRET").required, Requirement::Production);
        assert_eq!(get("DATABASE_URL").required, Requirement::Production);
        assert_eq!(get("AMQP_URL").required, Requirement::SplitRoles);
        assert_eq!(get("BIND_ADDR").required, Requirement::No);
        // One entry per field: nothing is listed twice, nothing lacks a name.
        let mut names: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), vars.len());
        assert!(vars.iter().all(|v| !v.help.is_empty()), "every variable has a help line");
    }
}

#[cfg(test)]
mod defaults_agree {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn clap_defaults_match_default() {
        // Only meaningful where the variables are unset; CI sets DATABASE_URL for the tests.
        let parsed = Cli::parse_from(["boxoffice", "--database-url", DEFAULT_DATABASE_URL]).config;
        let d = Config::default();
        assert_eq!(parsed.hold_ttl_secs, d.hold_ttl_secs);
        assert_eq!(parsed.access_token_ttl_secs, d.access_token_ttl_secs);
        assert_eq!(parsed.refresh_token_ttl_secs, d.refresh_token_ttl_secs);
        assert_eq!(parsed.cors_origins, d.cors_origins);
        assert_eq!(parsed.rate_limit_per_sec, d.rate_limit_per_sec);
        assert_eq!(parsed.webhook_rate_limit_per_sec, d.webhook_rate_limit_per_sec);
        assert_eq!(parsed.auth_rate_limit_per_min, d.auth_rate_limit_per_min);
        assert_eq!(parsed.auth_account_rate_limit_per_min, d.auth_account_rate_limit_per_min);
        assert_eq!(parsed.password_hash_concurrency, d.password_hash_concurrency);
        assert_eq!(parsed.password_hash_wait_ms, d.password_hash_wait_ms);
        assert_eq!(parsed.stream_max_total, d.stream_max_total);
        assert_eq!(parsed.stream_max_per_client, d.stream_max_per_client);
        assert_eq!(parsed.stream_idle_secs, d.stream_idle_secs);
        assert_eq!(parsed.stream_max_lifetime_secs, d.stream_max_lifetime_secs);
        assert_eq!(parsed.http_header_read_timeout_secs, d.http_header_read_timeout_secs);
        assert_eq!(parsed.payment_deadline_secs, d.payment_deadline_secs);
        assert_eq!(parsed.payment_provider_delay_ms, d.payment_provider_delay_ms);
        assert_eq!(parsed.mail_outbox_dir, d.mail_outbox_dir);
        assert_eq!(parsed.mail_from, d.mail_from);
        assert_eq!(parsed.allow_simulated_payments, d.allow_simulated_payments);
        assert_eq!(parsed.notification_max_attempts, d.notification_max_attempts);
        assert_eq!(parsed.receipts_dir, d.receipts_dir);
        assert_eq!(parsed.receipt_url_ttl_secs, d.receipt_url_ttl_secs);
        assert_eq!(parsed.receipt_storage_timeout_ms, d.receipt_storage_timeout_ms);
        assert_eq!(parsed.receipt_retry_ms, d.receipt_retry_ms);
    }
}
