//! Configuration from the environment (and a `.env` file in development). The variable names
//! are fixed by DESIGN.md; a missing or invalid value is a start-up error naming the variable.

use std::time::Duration;

use clap::{Args, ValueEnum};

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
    #[arg(long, env = "BOXOFFICE_ENV", value_enum, default_value = "development")]
    pub env: Environment,
    #[arg(long, env = "ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
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
    #[arg(long, env = "ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,
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
    /// `json` or `pretty`; defaults to pretty in development and json in production.
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// This process's name as an event owner (defaults to host name and process id).
    #[arg(long, env = "NODE_ID")]
    pub node_id: Option<String>,
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
            log_format: None,
            node_id: None,
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
        if self.env == Environment::Production {
            match &self.jwt_secret {
                None => anyhow::bail!("JWT_SECRET is required when BOXOFFICE_ENV=production"),
                Some(s) if s.len() < 32 || WEAK_SECRETS.iter().any(|w| s.eq_ignore_ascii_case(w)) => {
                    anyhow::bail!("JWT_SECRET is too weak for production: use at least 32 random bytes")
                }
                Some(_) => {}
            }
            if self.admin_password.as_deref().is_some_and(|p| p.len() < 12) {
                anyhow::bail!("ADMIN_PASSWORD must be at least 12 characters in production");
            }
        }
        Ok(())
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
    }
}
