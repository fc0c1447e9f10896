//! Micro-benchmarks of the pieces on the claim path: inventory operations (general admission,
//! seated, best-available on a 50,000-seat map), the actor round trip on an in-memory store,
//! JWT verification, and the journal's batch write to PostgreSQL by batch size.
//! Run: `cargo bench --bench micro` (`BENCH_POSTGRES_URL` for the journal group).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use boxoffice::actors::{ClaimCmd, ClaimRequest, EngineSettings, Registry};
use boxoffice::auth::TokenKeys;
use boxoffice::domain::ids::{BookingId, EventId, UserId};
use boxoffice::domain::inventory::{ClaimSpec, Inventory};
use boxoffice::domain::seatmap::{RowSpec, SeatMap, SeatMapSpec, SectionSpec};
use boxoffice::domain::user::Role;
use boxoffice::persistence::{BookingRow, EventRow, JournalOp, Store, UserRow};
use chrono::Utc;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sqlx::Connection;

fn big_map() -> Arc<SeatMap> {
    // 50 rows of 1,000 seats = 50,000 seats.
    let rows = (0..50).map(|i| RowSpec { label: format!("R{i}"), seats: 1000 }).collect();
    Arc::new(SeatMap::parse(SeatMapSpec { sections: vec![SectionSpec { name: "Arena".into(), rows }] }).unwrap())
}

fn inventory(c: &mut Criterion) {
    let mut g = c.benchmark_group("inventory");
    let later = Utc::now() + chrono::Duration::minutes(10);
    let user = UserId::new();
    g.bench_function("ga_claim_release", |b| {
        let mut inv = Inventory::general(1_000_000);
        b.iter(|| {
            let id = BookingId::new();
            inv.claim(id, user, ClaimSpec::Quantity(2), later).unwrap();
            black_box(inv.release(&id));
        })
    });
    let map = big_map();
    for fill in [0.0, 0.5, 0.95] {
        g.bench_with_input(
            BenchmarkId::new("best_available_4_of_50k", format!("{}%_full", fill * 100.0)),
            &fill,
            |b, &fill| {
                let mut inv = Inventory::seated(map.clone());
                // Fill every row from the left so that the search has to scan.
                let per_row = (1000.0 * fill) as u32;
                for r in 0..50u32 {
                    if per_row > 0 {
                        let seats = (r * 1000..r * 1000 + per_row).collect();
                        inv.claim(BookingId::new(), user, ClaimSpec::Seats(seats), later).unwrap();
                    }
                }
                b.iter_batched(
                    || inv.clone(),
                    |mut inv| {
                        black_box(inv.claim(BookingId::new(), user, ClaimSpec::Quantity(4), later).unwrap().seats.len())
                    },
                    BatchSize::LargeInput,
                )
            },
        );
    }
    g.bench_function("seated_explicit_claim", |b| {
        let mut inv = Inventory::seated(map.clone());
        let mut next = 0u32;
        b.iter(|| {
            let id = BookingId::new();
            inv.claim(id, user, ClaimSpec::Seats(vec![next % 50_000, (next + 1) % 50_000]), later).unwrap();
            inv.release(&id);
            next = next.wrapping_add(2);
        })
    });
    g.finish();
}

fn jwt(c: &mut Criterion) {
    let keys = TokenKeys::new(
        b"a-benchmark-secret-that-is-long-enough!!",
        Duration::from_secs(900),
        Duration::from_secs(3600),
    );
    let token = keys.issue_access(UserId::new(), Role::User, uuid::Uuid::now_v7()).unwrap();
    c.bench_function("jwt_verify", |b| b.iter(|| black_box(keys.verify(black_box(&token)).unwrap())));
}

async fn seeded(url: &str, max: u32) -> (Store, UserId, EventId) {
    let store = Store::connect(url, max).await.unwrap();
    store.migrate().await.unwrap();
    let row = UserRow::new(&format!("{}@b.io", uuid::Uuid::new_v4()), "x".into(), Role::User);
    let user = row.id;
    store.insert_user(&row).await.unwrap();
    let event = EventId::new();
    store
        .insert_event(
            &EventRow {
                id: event,
                // One user claims over and over: no per-account limit.
                max_per_user: i64::from(i32::MAX),
                ..EventRow::general_admission("b", "v", i64::from(i32::MAX), 100)
            },
            None,
        )
        .await
        .unwrap();
    (store, user, event)
}

fn actor_round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (registry, user, event) = rt.block_on(async {
        let (store, user, event) = seeded("sqlite:file:micro?mode=memory&cache=shared", 4).await;
        let settings = EngineSettings {
            hold_ttl: Duration::from_secs(3600),
            tick: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(3600),
            call_timeout: Duration::from_secs(10),
            node_id: "micro".into(),
            lease: Duration::from_secs(10),
            pipeline_depth: 0,
            payment_grace: Duration::from_secs(30),
            clock: boxoffice::clock::Clock::system(),
        };
        (Registry::start(store, settings, Duration::from_secs(1)).await.unwrap(), user, event)
    });
    c.bench_function("actor_claim_round_trip_in_memory_sqlite", |b| {
        b.to_async(&rt).iter(|| async {
            let cmd = ClaimCmd { user, request: ClaimRequest::Quantity(1), idempotency: None, request_id: None };
            black_box(registry.claim(event, cmd).await.unwrap())
        })
    });
}

fn journal(c: &mut Criterion) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = std::env::var("BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("TEST_POSTGRES_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let name = format!("bx_micro_{}", uuid::Uuid::new_v4().simple());
    let url = rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&server).await.expect("BENCH_POSTGRES_URL must reach PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        format!("{}/{name}", server.rsplit_once('/').unwrap().0)
    });
    let (store, user, event) = rt.block_on(seeded(&url, 2));
    let event_row = rt.block_on(store.take_ownership(event, "micro", Utc::now())).unwrap().unwrap();
    let epoch = event_row.owner_epoch;
    let mut g = c.benchmark_group("journal_batch_write_pg");
    g.sample_size(20);
    for size in [1usize, 10, 100, 1000] {
        g.throughput(Throughput::Elements(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.to_async(&rt).iter_batched(
                || {
                    let now = Utc::now();
                    (0..size)
                        .map(|i| JournalOp::Claim {
                            booking: BookingRow::held(&event_row, user, 1, now, now),
                            idempotency: Some((format!("k{i}-{}", uuid::Uuid::new_v4()), "h".into())),
                        })
                        .collect::<Vec<_>>()
                },
                |ops| {
                    let store = store.clone();
                    async move { store.commit_batch(event, epoch, &ops, Utc::now(), None).await.unwrap() }
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
    rt.block_on(async {
        store.close().await;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
        }
    });
}

criterion_group!(benches, inventory, jwt, actor_round_trip, journal);
criterion_main!(benches);
