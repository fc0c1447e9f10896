//! The `boxoffice` binary: configuration, telemetry, store, migrations, then serve.

use clap::{Parser, Subcommand};

use boxoffice::config::Config;
use boxoffice::startup::Application;

// The request path allocates a lot of small, short-lived objects across threads; glibc's malloc
// was a quarter of the CPU of a hold in the profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "boxoffice", version, about = "Actor-based event booking engine")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Load the sample events (if not there yet) before serving.
    #[arg(long, global = true)]
    seed: bool,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Load the sample events and exit.
    Seed,
    /// Run the database migrations and exit.
    Migrate,
    /// Ask this process's own `/healthz` (at BIND_ADDR's port on loopback); exit 1 unless 200.
    /// The image's health check, so the runtime image needs no HTTP client of its own.
    Healthcheck,
    /// Print the configuration variables the engine understands.
    Config {
        /// Every variable with its default and whether production requires it.
        #[arg(long)]
        list: bool,
        /// One JSON object per line (for the deployment checks) instead of a table.
        #[arg(long, requires = "list")]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    // sqlx (and later lapin/lettre) use rustls with ring; install it before any TLS is made.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if let Some(Command::Config { list, json }) = &cli.command {
        anyhow::ensure!(*list, "nothing to do: use `boxoffice config --list`");
        print_variables(*json)?;
        return Ok(());
    }
    boxoffice::telemetry::init_logging(cli.config.log_format(), &cli.config.log_filter);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        if let Err(e) = run(cli).await {
            tracing::error!(error = format!("{e:#}"), "boxoffice failed");
            return Err(e);
        }
        Ok(())
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    cli.config.validate()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let store = boxoffice::startup::connect_store(&cli.config).await?;
            store.close().await;
            tracing::info!("migrations applied");
        }
        Command::Seed => {
            let store = boxoffice::startup::connect_store(&cli.config).await?;
            let n = boxoffice::seed::load(&store).await?;
            tracing::info!(created = n, "sample events loaded");
            store.close().await;
        }
        Command::Config { .. } => unreachable!("answered before start-up"),
        Command::Healthcheck => healthcheck(&cli.config.bind_addr).await?,
        Command::Serve if cli.config.role == boxoffice::config::ProcessRole::Worker => {
            boxoffice::startup::run_worker(cli.config, shutdown_signal()).await?;
        }
        Command::Serve => {
            let app = Application::build(cli.config).await?;
            if cli.seed {
                let n = boxoffice::seed::load(app.store()).await?;
                tracing::info!(created = n, "sample events loaded");
            }
            app.run_until(shutdown_signal()).await?;
        }
    }
    Ok(())
}

async fn healthcheck(bind_addr: &str) -> anyhow::Result<()> {
    let port = bind_addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
    let port = port.ok_or_else(|| anyhow::anyhow!("BIND_ADDR {bind_addr} has no port"))?;
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).build()?;
    let status = client.get(format!("http://127.0.0.1:{port}/healthz")).send().await?.status();
    anyhow::ensure!(status.is_success(), "/healthz answered {status}");
    Ok(())
}

/// The variables of `Config`, as a table or as JSON lines.
fn print_variables(json: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for v in Config::variables() {
        if json {
            writeln!(out, "{}", serde_json::to_string(&v)?)?;
        } else {
            let required = match v.required {
                boxoffice::config::Requirement::No => "",
                boxoffice::config::Requirement::Production => "required in production",
                boxoffice::config::Requirement::SplitRoles => "required by ROLE=api|worker",
            };
            let default = v.default.as_deref().unwrap_or("(unset)");
            writeln!(out, "{:<32} {:<44} {:<24} {}", v.name, default, required, v.help)?;
        }
    }
    Ok(())
}

/// SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests and batches");
}
