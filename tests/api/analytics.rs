//! Sales analytics from the domain-event stream: after a mixed run (holds, payments that
//! succeed and fail, cancellations with and without refund, an expiry, check-ins) spread over
//! two hours and two engine processes, the figures at `GET /events/{id}/stats` equal what the
//! bookings and payments tables say; a replay of the whole stream changes nothing (duplicates
//! are skipped by domain-event id); only admins read them. The consumer's lag is measured by
//! the engine's clock, and the ids it counted are forgotten once older than their retention.

use std::time::Duration;

use boxoffice::clock::Clock;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

both_backends!(
    figures_equal_the_database_across_a_restart_and_a_replay,
    only_admins_read_the_figures,
    the_lag_is_measured_and_counted_ids_are_pruned_by_age
);

const SAGA: Duration = Duration::from_secs(30);
const PRICE: i64 = 1250;

fn hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap()
}

/// One row of numbers read straight from the database.
async fn numbers(pool: &DbPool, sql: &str, event: Uuid) -> (i64, i64, i64) {
    match pool {
        DbPool::Pg(p) => sqlx::query_as(sql).bind(event).fetch_one(p).await,
        DbPool::Sqlite(p) => sqlx::query_as(sql).bind(event).fetch_one(p).await,
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The figures as the bookings and payments tables tell them, in the shape of the API's totals.
async fn figures_of_the_database(pool: &DbPool, event: Uuid) -> Value {
    let q = |what: &str, from: &str, filter: &str| {
        format!(
            "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM({what}), 0) AS BIGINT), CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) FROM {from} WHERE event_id = $1{filter}"
        )
    };
    let held = numbers(pool, &q("quantity", "bookings", ""), event).await;
    // A booking gets its ticket code when it is paid for, and keeps it if later cancelled.
    let sold = numbers(pool, &q("quantity", "bookings", " AND ticket_code IS NOT NULL"), event).await;
    let cancelled = numbers(
        pool,
        &q("quantity", "bookings", " AND status = 'cancelled' AND cancel_reason IN ('user', 'admin')"),
        event,
    )
    .await;
    let refunded_tickets =
        numbers(pool, &q("quantity", "bookings", " AND status = 'cancelled' AND ticket_code IS NOT NULL"), event).await;
    let expired = numbers(pool, &q("quantity", "bookings", " AND status = 'expired'"), event).await;
    let failed = numbers(pool, &q("amount_cents", "payments", " AND status = 'failed'"), event).await;
    let refunded = numbers(pool, &q("amount_cents", "payments", " AND status = 'refunded'"), event).await;
    let admitted = numbers(pool, &q("quantity", "bookings", " AND checked_in_at IS NOT NULL"), event).await;
    json!({
        "holds": held.0, "tickets_held": held.1,
        "bookings_confirmed": sold.0, "tickets_sold": sold.1, "revenue_cents": sold.2,
        "cancellations": cancelled.0, "tickets_refunded": refunded_tickets.1,
        "expiries": expired.0, "payment_failures": failed.0,
        "refunds": refunded.0, "refunded_cents": refunded.2,
        "check_ins": admitted.0, "tickets_checked_in": admitted.1,
    })
}

/// Holds and sales per hour from the bookings table (in this test a hold is paid for in the
/// hour it was made): `[(hour, holds, bookings_confirmed, tickets_sold, revenue_cents)]`.
async fn hours_of_the_database(pool: &DbPool, event: Uuid) -> Vec<(DateTime<Utc>, i64, i64, i64, i64)> {
    const SQL: &str =
        "SELECT created_at, quantity, amount_cents, ticket_code IS NOT NULL FROM bookings WHERE event_id = $1";
    let rows: Vec<(DateTime<Utc>, i64, i64, bool)> = match pool {
        DbPool::Pg(p) => sqlx::query_as(SQL).bind(event).fetch_all(p).await,
        DbPool::Sqlite(p) => sqlx::query_as(SQL).bind(event).fetch_all(p).await,
    }
    .expect("read bookings");
    let mut hours: std::collections::BTreeMap<DateTime<Utc>, (i64, i64, i64, i64)> = Default::default();
    for (at, quantity, amount, paid) in rows {
        let h = hours.entry(hour(at)).or_default();
        h.0 += 1;
        if paid {
            h.1 += 1;
            h.2 += quantity;
            h.3 += amount;
        }
    }
    hours.into_iter().map(|(h, (a, b, c, d))| (h, a, b, c, d)).collect()
}

async fn stats(app: &TestApp, event: &str) -> Value {
    let admin = app.admin_token().await;
    expect_json(app.get(&format!("/events/{event}/stats"), Some(&admin)).await, 200).await
}

/// Waits until the analytics have read every outbox row, then returns the figures.
async fn caught_up(app: &TestApp, event: &str) -> Value {
    eventually(SAGA, "the analytics to read the whole outbox", || async {
        (app.store().analytics_backlog().await.ok()? == 0).then_some(())
    })
    .await;
    stats(app, event).await
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} is not exported"))
}

/// Holds `quantity` for a new user; returns the user's token and the booking id.
async fn hold(app: &TestApp, event: &str, quantity: i64) -> (String, String) {
    let user = app.mint_users(1).await.remove(0);
    let b = app.hold_ok(&user.token, event, &json!({"quantity": quantity})).await;
    (user.token, str_of(&b["id"]).to_owned())
}

/// Holds and pays with `card`, waiting for the verdict; returns the token, booking, ticket
/// code and payment.
async fn buy(app: &TestApp, event: &str, quantity: i64, card: &str) -> (String, String, Option<String>, String) {
    let (token, booking) = hold(app, event, quantity).await;
    let p = app.pay_ok(&token, &booking, card).await;
    let verdict = if card == "tok_ok" { "succeeded" } else { "failed" };
    app.payment_becomes(&token, str_of(&p["id"]), verdict, SAGA).await;
    let status = if card == "tok_ok" { "confirmed" } else { "cancelled" };
    let b = app.booking_becomes(&token, &booking, status, SAGA).await;
    (token, booking, b["ticket_code"].as_str().map(str::to_owned), str_of(&p["id"]).to_owned())
}

async fn figures_equal_the_database_across_a_restart_and_a_replay(backend: Backend) {
    // The engines run on a manual clock set five minutes into an hour, so the run's two phases
    // fall in two known hours and the hold's expiry needs no sleeping.
    let start = hour(Utc::now()) + TimeDelta::minutes(5);
    let clock = Clock::manual(start);
    let db = TestDb::create(backend).await;
    let tweak = |c: &mut boxoffice::config::Config| c.hold_sweep_ms = 50;
    let a = TestApp::spawn_on_with_clock(db.clone(), clock.clone(), tweak).await;
    let admin = a.admin_token().await;
    let body = event_body(json!({"capacity": 50, "price_cents": PRICE, "currency": "EUR"}));
    let event = expect_json(a.create_event(&admin, &body).await, 201).await;
    let event_id = str_of(&event["id"]).to_owned();
    let event_uuid = uuid_of(&event["id"]);

    // Nothing yet: zeros, no hours, no conversion.
    let empty = caught_up(&a, &event_id).await;
    assert_eq!(empty["totals"]["holds"], 0, "{empty}");
    assert_eq!(empty["hourly"], json!([]));
    assert!(empty["conversion"].is_null());
    assert_eq!(empty["currency"], "EUR");

    // Phase 1, first hour, engine A: two sales (one admitted at the door), a declined
    // payment, a hold cancelled unpaid, a hold left to expire.
    buy(&a, &event_id, 2, "tok_ok").await;
    buy(&a, &event_id, 1, "tok_declined").await;
    let (token, booking) = hold(&a, &event_id, 3).await;
    expect_json(a.cancel(&token, &booking).await, 200).await;
    let (_, _, code, _) = buy(&a, &event_id, 1, "tok_ok").await;
    expect_json(a.check_in(&admin, &event_id, &code.expect("a ticket code")).await, 200).await;
    let (token, booking) = hold(&a, &event_id, 2).await;
    clock.advance(Duration::from_secs(11 * 60));
    a.booking_becomes(&token, &booking, "expired", SAGA).await;
    // Engine A goes away at once, its analytics wherever they were in the stream.
    drop(a);

    // Phase 2, an hour later, engine B on the same database: a sale cancelled and refunded,
    // a sale admitted, a declined payment, a hold still open.
    clock.advance(Duration::from_secs(49 * 60));
    let b = TestApp::spawn_on_with_clock(db.clone(), clock.clone(), tweak).await;
    let (token, booking, _, paid) = buy(&b, &event_id, 1, "tok_ok").await;
    expect_json(b.cancel(&token, &booking).await, 200).await;
    b.payment_becomes(&token, &paid, "refunded", SAGA).await;
    let (_, _, code, _) = buy(&b, &event_id, 4, "tok_ok").await;
    expect_json(b.check_in(&admin, &event_id, &code.expect("a ticket code")).await, 200).await;
    buy(&b, &event_id, 1, "tok_declined").await;
    hold(&b, &event_id, 1).await;

    let pool = db.pool().await;
    let figures = caught_up(&b, &event_id).await;
    let truth = figures_of_the_database(&pool, event_uuid).await;
    assert_eq!(figures["totals"], truth, "figures {figures} against the database {truth}");
    // And what the run did, so the comparison cannot pass on two empty sides.
    assert_eq!(
        truth,
        json!({
            "holds": 9, "tickets_held": 16, "bookings_confirmed": 4, "tickets_sold": 8, "revenue_cents": 8 * PRICE,
            "cancellations": 2, "tickets_refunded": 1, "expiries": 1, "payment_failures": 2,
            "refunds": 1, "refunded_cents": PRICE, "check_ins": 2, "tickets_checked_in": 5,
        })
    );
    assert_eq!(figures["conversion"], json!(4.0 / 9.0));
    let hours: Vec<(DateTime<Utc>, i64, i64, i64, i64)> = figures["hourly"]
        .as_array()
        .expect("hourly")
        .iter()
        .map(|h| {
            let at = DateTime::parse_from_rfc3339(str_of(&h["hour"])).expect("an RFC 3339 hour").with_timezone(&Utc);
            let n = |k: &str| h[k].as_i64().unwrap_or_else(|| panic!("{k} in {h}"));
            (at, n("holds"), n("bookings_confirmed"), n("tickets_sold"), n("revenue_cents"))
        })
        .collect();
    assert_eq!(hours, hours_of_the_database(&pool, event_uuid).await);
    let first = hour(start);
    assert_eq!(hours.iter().map(|h| h.0).collect::<Vec<_>>(), vec![first, first + TimeDelta::hours(1)]);

    // The whole stream read again (a consumer that lost its position): nothing counts twice.
    let skipped = metric(&b, "boxoffice_analytics_duplicates_skipped_total").await;
    let rows = match &pool {
        DbPool::Pg(p) => sqlx::query("UPDATE outbox SET analytics_at = NULL").execute(p).await.unwrap().rows_affected(),
        DbPool::Sqlite(p) => {
            sqlx::query("UPDATE outbox SET analytics_at = NULL").execute(p).await.unwrap().rows_affected()
        }
    };
    assert!(rows >= 20, "the run wrote {rows} outbox rows");
    let again = caught_up(&b, &event_id).await;
    assert_eq!(again, figures, "a replay changed the figures");
    let now_skipped = metric(&b, "boxoffice_analytics_duplicates_skipped_total").await;
    assert!(now_skipped - skipped >= rows as f64, "{rows} rows replayed, {} duplicates skipped", now_skipped - skipped);
    pool.close().await;
}

async fn only_admins_read_the_figures(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let event = app.create_ga_event(5).await;
    let id = str_of(&event["id"]);
    let path = format!("/events/{id}/stats");
    assert_problem(app.get(&path, None).await, 401, "unauthorized").await;
    let user = app.user_token().await;
    assert_problem(app.get(&path, Some(&user)).await, 403, "forbidden").await;
    let admin = app.admin_token().await;
    assert_problem(app.get(&format!("/events/{}/stats", Uuid::now_v7()), Some(&admin)).await, 404, "not_found").await;
    problem_of(app.get("/events/not-a-uuid/stats", Some(&admin)).await, 400).await;
    let s = expect_json(app.get(&path, Some(&admin)).await, 200).await;
    assert_eq!(s["event_id"], id);

    // The route and its answers are in the published document.
    let doc: Value = app.client.get(app.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    let op = &doc["paths"]["/api/v1/events/{id}/stats"]["get"];
    for status in ["200", "400", "401", "403", "404"] {
        assert!(op["responses"][status].is_object(), "no {status} in {op}");
    }
    assert!(doc["components"]["schemas"]["EventStatsView"].is_object());
    // The counters are exported before anything was counted.
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for name in ["boxoffice_analytics_events_applied_total", "boxoffice_analytics_duplicates_skipped_total"] {
        assert!(text.contains(name), "{name} is not exported");
    }
}

async fn count_seen(pool: &DbPool) -> i64 {
    const SQL: &str = "SELECT COUNT(*) FROM analytics_seen";
    let (n,): (i64,) = match pool {
        DbPool::Pg(p) => sqlx::query_as(SQL).fetch_one(p).await.unwrap(),
        DbPool::Sqlite(p) => sqlx::query_as(SQL).fetch_one(p).await.unwrap(),
    };
    n
}

/// An API process runs no consumer, so its outbox waits: the lag counts the rows and ages the
/// oldest by the engine's clock, and reading them brings it to zero. The ids counted are kept
/// for the retention (a replay within it counts nothing twice), then pruned.
async fn the_lag_is_measured_and_counted_ids_are_pruned_by_age(backend: Backend) {
    use boxoffice::domain::stream::DomainEvent;
    use boxoffice::persistence::{AnalyticsPosition, Applied};
    use boxoffice::stream::analytics::{ConsumerLag, consume_outbox, outbox_lag, prune_seen};

    let clock = Clock::manual(Utc::now());
    let app = TestApp::spawn_clocked(backend, clock.clone(), |c| {
        c.role = boxoffice::config::ProcessRole::Api;
        use_broker(c);
    })
    .await;
    let admin = app.admin_token().await;
    // Catalogue changes only: no hold that would expire when the clock moves.
    let event = app.create_ga_event(5).await;
    let path = format!("/events/{}", str_of(&event["id"]));
    expect_json(app.patch(&path, Some(&admin), &json!({"title": "Renamed"})).await, 200).await;
    let store = app.store();
    let lag = outbox_lag(store, &clock).await.unwrap();
    assert_eq!(lag.backlog, 2, "event.created and event.updated wait: {lag:?}");
    clock.advance(Duration::from_secs(90));
    let later = outbox_lag(store, &clock).await.unwrap();
    assert_eq!(later, ConsumerLag { backlog: 2, age: lag.age + Duration::from_secs(90) });

    assert_eq!(consume_outbox(store, &clock, 500).await.unwrap(), 2);
    assert_eq!(outbox_lag(store, &clock).await.unwrap(), ConsumerLag::default(), "caught up");
    let pool = app.db.pool().await;
    assert_eq!(count_seen(&pool).await, 2);

    let retention = Duration::from_secs(720 * 3600);
    let events: Vec<DomainEvent> =
        crate::stream::outbox_payloads(&app).await.iter().map(|(_, p)| serde_json::from_str(p).unwrap()).collect();
    let replay = || store.apply_analytics(&events, AnalyticsPosition::Outbox(&[]), clock.now());
    clock.advance(retention - Duration::from_secs(60));
    assert_eq!(prune_seen(store, &clock, retention).await.unwrap(), 0, "nothing is older than the retention yet");
    assert_eq!(replay().await.unwrap(), Applied { applied: 0, duplicates: 2 }, "a copy within the window is skipped");
    clock.advance(Duration::from_secs(120));
    assert_eq!(prune_seen(store, &clock, retention).await.unwrap(), 2, "both ids are past the retention");
    assert_eq!(count_seen(&pool).await, 0);
    // Forgotten means a copy would count again: why the retention must outlast every redelivery.
    assert_eq!(replay().await.unwrap(), Applied { applied: 2, duplicates: 0 });
    pool.close().await;
}
