//! The hot-event comparison: N concurrent claimers on ONE event, against the same PostgreSQL.
//!
//! (a) engine: the real claim path (registry → event actor → batched, fenced journal);
//! (b) row lock: what pretix/Hi.Events-style systems do, one transaction per booking:
//!     `SELECT … FOR UPDATE` on the event row, check, increment, insert the booking, commit.
//!
//! Prints claims/s and p50/p99 latency for each and the ratio; also runs (a) on SQLite.
//! Run: `cargo bench --bench hot_event` (env: `BENCH_POSTGRES_URL`, `BENCH_SECS` per run,
//! `BENCH_CONCURRENCY` e.g. `1,64,1000`, `BENCH_ROUNDS` for medians of repeated runs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use boxoffice::actors::{ClaimCmd, ClaimRequest, EngineSettings, Registry};
use boxoffice::domain::ids::{EventId, UserId};
use boxoffice::domain::user::Role;
use boxoffice::persistence::{EventRow, Store, UserRow};
use chrono::Utc;
use sqlx::{Connection, PgPool, postgres::PgPoolOptions};
use uuid::Uuid;

// The same allocator as the `boxoffice` binary, so that the engine path is measured as it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Run {
    claims: usize,
    secs: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.claims as f64 / self.secs
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn summarise(mut lat_us: Vec<u32>, secs: f64) -> Run {
    lat_us.sort_unstable();
    Run { claims: lat_us.len(), secs, p50_ms: percentile(&lat_us, 0.50), p99_ms: percentile(&lat_us, 0.99) }
}

async fn fresh_pg(server: &str) -> anyhow::Result<String> {
    let name = format!("bx_bench_{}", Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(server).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(server);
    Ok(format!("{base}/{name}"))
}

async fn drop_pg(server: &str, url: &str) {
    let name = url.rsplit('/').next().unwrap_or_default().to_owned();
    if let Ok(mut conn) = sqlx::PgConnection::connect(server).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
    }
}

async fn seed(store: &Store, capacity: i64) -> anyhow::Result<(UserId, EventId)> {
    let row = UserRow::new(&format!("{}@bench.io", uuid::Uuid::new_v4()), "x".into(), Role::User);
    let user = row.id;
    store.insert_user(&row).await?;
    let event = EventId::new();
    store
        .insert_event(
            &EventRow {
                id: event,
                max_per_booking: 10,
                // One user claims over and over: no per-account limit.
                max_per_user: capacity,
                ..EventRow::general_admission("hot", "bench", capacity, 1000)
            },
            None,
        )
        .await?;
    Ok((user, event))
}

/// `claimers` tasks, each running `claim` back to back until `secs` have passed. Returns every
/// claim's latency in microseconds and the seconds the whole run took.
async fn run_claimers<F, Fut>(claimers: usize, secs: f64, claim: F) -> anyhow::Result<(Vec<u32>, f64)>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..claimers)
        .map(|_| {
            let claim = claim.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    claim().await;
                    lat.push(t.elapsed().as_micros() as u32);
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?);
    }
    Ok((all, started.elapsed().as_secs_f64()))
}

/// N claimers, each claiming one seat after another for `secs`, through the engine.
async fn engine(url: &str, claimers: usize, secs: f64) -> anyhow::Result<Run> {
    let store = Store::connect(url, 8).await?;
    store.migrate().await?;
    let (user, event) = seed(&store, 100_000_000).await?;
    let settings = EngineSettings {
        hold_ttl: Duration::from_secs(3600),
        tick: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(3600),
        call_timeout: Duration::from_secs(30),
        node_id: "bench".into(),
        lease: Duration::from_secs(10),
        payment_grace: Duration::from_secs(30),
        clock: boxoffice::clock::Clock::system(),
        pipeline_depth: std::env::var("BENCH_PIPELINE").ok().and_then(|s| s.parse().ok()).unwrap_or(0),
    };
    let registry = Registry::start(store.clone(), settings, Duration::from_secs(1)).await?;
    registry.snapshot_started(event).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let registry_for_claims = registry.clone();
    let claim = move || {
        let registry = registry_for_claims.clone();
        async move {
            let cmd = ClaimCmd {
                user,
                request: ClaimRequest::Quantity(1),
                idempotency: Some((Uuid::new_v4().to_string(), "h".into())),
                request_id: None,
            };
            registry.claim(event, cmd).await.expect("claim");
        }
    };
    let (all, elapsed) = run_claimers(claimers, secs, claim).await?;
    let (_, reserved, live) = store.event_counters(event).await?;
    assert_eq!(reserved as usize, all.len(), "every acknowledged claim is durable");
    assert_eq!(reserved, live);
    registry.shutdown(Duration::from_secs(10)).await;
    store.close().await;
    Ok(summarise(all, elapsed))
}

/// N claimers doing one row-locking transaction per booking.
async fn row_lock(url: &str, claimers: usize, secs: f64) -> anyhow::Result<Run> {
    let store = Store::connect(url, 2).await?;
    store.migrate().await?;
    let (user, event) = seed(&store, 100_000_000).await?;
    store.close().await;
    let pool: PgPool = PgPoolOptions::new()
        .max_connections(claimers.min(64) as u32)
        .acquire_timeout(Duration::from_secs(60))
        .connect(url)
        .await?;
    let pool = Arc::new(pool);
    let claim = {
        let pool = pool.clone();
        move || {
            let pool = pool.clone();
            async move {
                let mut tx = pool.begin().await.expect("begin");
                let (capacity, reserved): (i64, i64) =
                    sqlx::query_as("SELECT capacity, reserved FROM events WHERE id = $1 FOR UPDATE")
                        .bind(event.0)
                        .fetch_one(&mut *tx)
                        .await
                        .expect("lock");
                assert!(reserved < capacity);
                sqlx::query("UPDATE events SET reserved = reserved + 1 WHERE id = $1")
                    .bind(event.0)
                    .execute(&mut *tx)
                    .await
                    .expect("update");
                let now = Utc::now();
                sqlx::query(
                    "INSERT INTO bookings (id, event_id, user_id, quantity, seats, status, amount_cents, currency, \
                 expires_at, created_at, updated_at) VALUES ($1, $2, $3, 1, '[]', 'held', 1000, 'EUR', $4, $5, $5)",
                )
                .bind(Uuid::now_v7())
                .bind(event.0)
                .bind(user.0)
                .bind(now + chrono::Duration::hours(1))
                .bind(now)
                .execute(&mut *tx)
                .await
                .expect("insert");
                tx.commit().await.expect("commit");
            }
        }
    };
    let (all, elapsed) = run_claimers(claimers, secs, claim).await?;
    pool.close().await;
    Ok(summarise(all, elapsed))
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

struct Agg {
    rate: f64,
    p50: f64,
    p99: f64,
}

fn agg(runs: &[Run]) -> Agg {
    Agg {
        rate: median(runs.iter().map(Run::rate).collect()),
        p50: median(runs.iter().map(|r| r.p50_ms).collect()),
        p99: median(runs.iter().map(|r| r.p99_ms).collect()),
    }
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run a smoke pass then.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = std::env::var("BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("TEST_POSTGRES_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let secs: f64 =
        std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(if smoke { 0.5 } else { 5.0 });
    let rounds: usize =
        std::env::var("BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(if smoke { 1 } else { 3 });
    let levels: Vec<usize> = std::env::var("BENCH_CONCURRENCY")
        .unwrap_or_else(|_| if smoke { "1,64".into() } else { "1,64,1000".into() })
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let paths = std::env::var("BENCH_PATHS").unwrap_or_else(|_| "engine-pg,row-lock,engine-sq".into());
    let metrics = boxoffice::telemetry::metrics_handle();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        println!("hot-event comparison: {secs} s per run, {rounds} round(s), medians; PostgreSQL at {server}");
        println!("{:>8} {:>10} {:>14} {:>9} {:>9}", "claimers", "path", "claims/s", "p50 ms", "p99 ms");
        for &n in &levels {
            let (mut eng, mut lock, mut lite) = (Vec::new(), Vec::new(), Vec::new());
            // Interleave the paths within each round so that machine noise hits both alike.
            for _ in 0..rounds {
                if paths.contains("engine-pg") {
                    let url = fresh_pg(&server).await?;
                    eng.push(engine(&url, n, secs).await?);
                    drop_pg(&server, &url).await;
                }
                if paths.contains("row-lock") {
                    let url = fresh_pg(&server).await?;
                    lock.push(row_lock(&url, n, secs).await?);
                    drop_pg(&server, &url).await;
                }
                if paths.contains("engine-sq") {
                    let dir = tempfile::tempdir()?;
                    lite.push(engine(&format!("sqlite://{}/bench.db", dir.path().display()), n, secs).await?);
                }
            }
            let (e, l, s) = (agg(&eng), agg(&lock), agg(&lite));
            for (name, a) in [("engine-pg", &e), ("row-lock", &l), ("engine-sq", &s)] {
                println!("{n:>8} {name:>10} {:>14.0} {:>9.2} {:>9.2}", a.rate, a.p50, a.p99);
            }
            println!("{n:>8} {:>10} {:>13.1}x", "ratio", e.rate / l.rate);
            if std::env::var("BENCH_METRICS").is_ok() {
                for line in metrics
                    .render()
                    .lines()
                    .filter(|l| l.contains("journal") && (l.contains("_sum") || l.contains("_count")))
                {
                    println!("    {line}");
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    })
}
