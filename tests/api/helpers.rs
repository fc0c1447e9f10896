//! The test harness: a fresh database per test (a SQLite file in a temporary folder, or a new
//! PostgreSQL database on the server named by `TEST_POSTGRES_URL`), the application served on a
//! random port in the test's runtime, and small typed helpers for the API.

use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use boxoffice::clock::Clock;
use boxoffice::config::Config;
use boxoffice::domain::ids::{EventId, UserId};
use boxoffice::domain::user::Role;
use boxoffice::persistence::{Store, UserRow};
use boxoffice::startup::Application;
use chrono::Utc;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, Response};
use serde_json::{Value, json};
use sqlx::ConnectOptions;
use tempfile::TempDir;
use tokio::sync::{OnceCell, oneshot};
use uuid::Uuid;

pub const JWT_SECRET: &str = "integration-test-secret-that-is-long-enough-0123456789";
pub const ADMIN_EMAIL: &str = "admin@test.local";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
pub const PASSWORD: &str = "correct-horse-battery";
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const API: &str = "/api/v1";
pub const WEBHOOK_SECRET: &str = "integration-test-webhook-secret-0123456789abcdef";
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The RabbitMQ of the tests (`TEST_AMQP_URL`); tests that use it fail if it is down.
pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.to_owned())
}

/// Sends this app's messages through the real broker, on exchanges and queues of its own
/// (tests run in parallel on one broker; the app's drop deletes them).
pub fn use_broker(c: &mut Config) {
    c.amqp_url = Some(amqp_url());
    c.amqp_prefix = format!("test-{}", Uuid::new_v4().simple());
}

/// Generates one test per backend from `async fn name(backend: Backend)`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

/// Generates a PostgreSQL-only test from `async fn name(backend: Backend)`.
macro_rules! postgres_only {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$name(crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub fn unique_email(prefix: &str) -> String {
    format!("{prefix}-{}@example.com", Uuid::new_v4().simple())
}

// ---- databases -----------------------------------------------------------------------------

/// A fresh database, removed when the last holder drops it.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pg: Option<(String, String)>, // (server url, database name)
    _dir: Option<TempDir>,
}

fn pg_server_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

/// Replaces the database name of a PostgreSQL URL.
fn pg_url_with_db(server: &str, db: &str) -> String {
    let mut url =
        reqwest::Url::parse(server).unwrap_or_else(|e| panic!("TEST_POSTGRES_URL {server:?} is not a URL: {e}"));
    url.set_path(&format!("/{db}"));
    url.to_string()
}

impl TestDb {
    pub async fn create(backend: Backend) -> Arc<TestDb> {
        init();
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary folder");
                let url = format!("sqlite://{}/test.db", dir.path().display());
                Arc::new(TestDb { backend, url, pg: None, _dir: Some(dir) })
            }
            Backend::Postgres => {
                let server = pg_server_url();
                let name = format!("bx_test_{}", Uuid::new_v4().simple());
                let opts = sqlx::postgres::PgConnectOptions::from_str(&server)
                    .unwrap_or_else(|e| panic!("TEST_POSTGRES_URL {server:?} is invalid: {e}"));
                let mut conn = tokio::time::timeout(Duration::from_secs(10), opts.connect())
                    .await
                    .unwrap_or_else(|_| {
                        panic!("PostgreSQL at {server} did not answer within 10 s (set TEST_POSTGRES_URL)")
                    })
                    .unwrap_or_else(|e| panic!("PostgreSQL at {server} is not reachable (set TEST_POSTGRES_URL): {e}"));
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("cannot create database {name} on {server}: {e}"));
                let _ = sqlx::Connection::close(conn).await;
                let url = pg_url_with_db(&server, &name);
                Arc::new(TestDb { backend, url, pg: Some((server, name)), _dir: None })
            }
        }
    }

    /// A small pool of our own on the same database, for checks the API does not expose.
    pub async fn pool(&self) -> DbPool {
        match self.backend {
            Backend::Postgres => DbPool::Pg(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .connect(&self.url)
                    .await
                    .expect("test pool (postgres)"),
            ),
            Backend::Sqlite => {
                let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&self.url)
                    .expect("sqlite url")
                    .busy_timeout(Duration::from_secs(10));
                DbPool::Sqlite(
                    sqlx::sqlite::SqlitePoolOptions::new()
                        .max_connections(2)
                        .connect_with(opts)
                        .await
                        .expect("test pool (sqlite)"),
                )
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((server, name)) = self.pg.take() else { return };
        // Best effort, off the test's runtime: FORCE ends the app's remaining connections.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let Ok(opts) = sqlx::postgres::PgConnectOptions::from_str(&server) else { return };
                if let Ok(Ok(mut conn)) = tokio::time::timeout(Duration::from_secs(5), opts.connect()).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                    let _ = sqlx::Connection::close(conn).await;
                }
            });
        })
        .join();
    }
}

pub enum DbPool {
    Pg(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl DbPool {
    /// `(seat_id, booking_id)` of every row of `booking_seats` of the event.
    pub async fn booking_seats(&self, event: Uuid) -> Vec<(String, Uuid)> {
        const SQL: &str = "SELECT seat_id, booking_id FROM booking_seats WHERE event_id = $1";
        match self {
            DbPool::Pg(p) => sqlx::query_as(SQL).bind(event).fetch_all(p).await,
            DbPool::Sqlite(p) => sqlx::query_as(SQL).bind(event).fetch_all(p).await,
        }
        .expect("read booking_seats")
    }

    /// `(id, status, quantity)` of every booking of the event.
    pub async fn bookings_of_event(&self, event: Uuid) -> Vec<(Uuid, String, i64)> {
        const SQL: &str = "SELECT id, status, quantity FROM bookings WHERE event_id = $1";
        match self {
            DbPool::Pg(p) => sqlx::query_as(SQL).bind(event).fetch_all(p).await,
            DbPool::Sqlite(p) => sqlx::query_as(SQL).bind(event).fetch_all(p).await,
        }
        .expect("read bookings")
    }

    /// Runs a statement as is (tests fake what another node or time would do).
    pub async fn execute(&self, sql: &str) {
        match self {
            DbPool::Pg(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
            DbPool::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    pub async fn close(&self) {
        match self {
            DbPool::Pg(p) => p.close().await,
            DbPool::Sqlite(p) => p.close().await,
        }
    }
}

// ---- the application -----------------------------------------------------------------------

pub fn test_config(db: &TestDb) -> Config {
    Config {
        bind_addr: "127.0.0.1:0".into(),
        database_url: db.url.clone(),
        // Several tests may run at once against one PostgreSQL server (max_connections 100).
        database_max_connections: 10,
        jwt_secret: Some(JWT_SECRET.into()),
        payment_webhook_secret: Some(WEBHOOK_SECRET.into()),
        // Quick verdicts and polls, so payment tests take seconds.
        payment_provider_delay_ms: 200,
        payment_poll_secs: 1,
        payment_saga_lease_secs: 5,
        notification_backoff_ms: 50,
        admin_email: Some(ADMIN_EMAIL.into()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        // Tests register and log in from one address far faster than people do; `abuse.rs`
        // turns these limits on where it tests them.
        auth_rate_limit_per_min: 0,
        auth_account_rate_limit_per_min: 0,
        // Never the checkout's `web/dist` (the web check builds it): unknown paths must stay 404
        // whether or not a build lies around. `web.rs` points tests at builds of its own.
        web_dir: Some("/nonexistent/boxoffice-tests-serve-no-web-build".into()),
        ..Config::default()
    }
}

#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub token: String,
}

pub struct TestApp {
    pub address: String,
    pub client: Client,
    store: Store,
    admin: OnceCell<String>,
    shutdown: Option<oneshot::Sender<()>>,
    /// Where the app writes e-mails (when it has no SMTP server).
    pub mail_dir: TempDir,
    pub config: Config,
    // Dropped last: the database outlives the server that uses it.
    pub db: Arc<TestDb>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let Some(url) = self.config.amqp_url.clone() else { return };
        let topology = boxoffice::bus::Topology::with_prefix(&self.config.amqp_prefix);
        // Best effort, off the test's runtime, once the app had a moment to stop.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = boxoffice::bus::amqp::delete_topology(&url, &topology).await;
            });
        })
        .join();
    }
}

pub fn http_client() -> Client {
    Client::builder().timeout(Duration::from_secs(60)).pool_max_idle_per_host(4096).build().expect("reqwest client")
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let db = TestDb::create(backend).await;
        Self::spawn_on(db, tweak).await
    }

    /// Serves an application whose engine reads `clock` (a manual clock lets a test move time
    /// forward instead of sleeping through hold lifetimes and payment deadlines).
    pub async fn spawn_clocked(backend: Backend, clock: Clock, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let db = TestDb::create(backend).await;
        Self::spawn_on_with_clock(db, clock, tweak).await
    }

    /// Serves an application on an existing database (several apps may share one).
    pub async fn spawn_on(db: Arc<TestDb>, tweak: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on_with_clock(db, Clock::system(), tweak).await
    }

    pub async fn spawn_on_with_clock(db: Arc<TestDb>, clock: Clock, tweak: impl FnOnce(&mut Config)) -> TestApp {
        init();
        let mail_dir = tempfile::tempdir().expect("mail folder");
        let mut config = test_config(&db);
        config.mail_outbox_dir = mail_dir.path().display().to_string();
        // Receipts (a local folder unless the test names a bucket) go with the test's e-mails.
        config.receipts_dir = mail_dir.path().join("receipts").display().to_string();
        tweak(&mut config);
        let kept = config.clone();
        let app = Application::build_with_clock(config, clock)
            .await
            .unwrap_or_else(|e| panic!("Application::build on {}: {e:#}", db.url));
        let port = app.port();
        let store = app.store().clone();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            if let Err(e) = app
                .run_until(async move {
                    let _ = rx.await;
                })
                .await
            {
                eprintln!("test app stopped with an error: {e:#}");
            }
        });
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            client: http_client(),
            store,
            admin: OnceCell::new(),
            shutdown: Some(tx),
            mail_dir,
            config: kept,
            db,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// `/api/v1` + `path`.
    pub fn api(&self, path: &str) -> String {
        format!("{}{API}{}", self.address, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut rb = self.client.get(self.api(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut rb = self.client.post(self.api(path)).json(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send().await.expect("POST")
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut rb = self.client.patch(self.api(path)).json(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send().await.expect("PATCH")
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        let mut rb = self.client.delete(self.api(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        rb.send().await.expect("DELETE")
    }

    // ---- auth ----

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post("/auth/register", None, &json!({"email": email, "password": password})).await
    }

    pub async fn login_response(&self, email: &str, password: &str) -> Response {
        self.post("/auth/login", None, &json!({"email": email, "password": password})).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Tokens {
        let body = expect_json(self.login_response(email, password).await, 200).await;
        tokens_of(&body)
    }

    /// Registers and logs in a new user.
    pub async fn new_user(&self) -> TestUser {
        let email = unique_email("user");
        let created = expect_json(self.register(&email, PASSWORD).await, 201).await;
        let tokens = self.login(&email, PASSWORD).await;
        TestUser { id: uuid_of(&created["id"]), email, token: tokens.access }
    }

    /// The access token of a new (registered and logged-in) user.
    pub async fn user_token(&self) -> String {
        self.new_user().await.token
    }

    /// `n` users written straight to the store with access tokens signed like the engine's own.
    /// Registration hashes passwords with argon2 (about half a second each in a debug build),
    /// so tests that need many users make them this way; `auth.rs` covers register/login.
    pub async fn mint_users(&self, n: usize) -> Vec<TestUser> {
        let mut users = Vec::with_capacity(n);
        for _ in 0..n {
            let (id, token) = mint_user(&self.store, "minted").await;
            let email = self.store.user_by_id(id).await.expect("read minted user").expect("minted user").email;
            users.push(TestUser { id: id.0, email, token });
        }
        users
    }

    /// An access token of the bootstrapped admin, signed like the engine's own (logging in would
    /// cost an argon2 verification per test; `auth.rs` logs the admin in for real).
    pub async fn admin_token(&self) -> String {
        self.admin
            .get_or_init(|| async {
                let admin = self
                    .store
                    .user_by_email(ADMIN_EMAIL)
                    .await
                    .expect("read admin")
                    .expect("the admin was bootstrapped");
                assert_eq!(admin.role, Role::Admin);
                sign_token(&claims_for(admin.id.0, "admin", 900))
            })
            .await
            .clone()
    }

    // ---- events ----

    pub async fn create_event(&self, token: &str, body: &Value) -> Response {
        self.post("/events", Some(token), body).await
    }

    pub async fn create_ga_event(&self, capacity: i64) -> Value {
        let admin = self.admin_token().await;
        expect_json(self.create_event(&admin, &event_body(json!({"capacity": capacity}))).await, 201).await
    }

    /// A seated event of one section "Stalls" with `rows` rows (labels A, B, ...) of
    /// `seats_per_row` seats.
    pub async fn create_seated_event(&self, rows: u32, seats_per_row: u32) -> Value {
        let admin = self.admin_token().await;
        let body = event_body(json!({"seat_map": seat_map(rows, seats_per_row)}));
        expect_json(self.create_event(&admin, &body).await, 201).await
    }

    pub async fn event(&self, id: &str) -> Value {
        expect_json(self.get(&format!("/events/{id}"), None).await, 200).await
    }

    pub async fn available(&self, id: &str) -> i64 {
        self.event(id).await["available"].as_i64().expect("available is an integer")
    }

    // ---- bookings ----

    pub async fn hold(&self, token: &str, event_id: &str, body: &Value, idempotency_key: Option<&str>) -> Response {
        let mut rb = self.client.post(self.api(&format!("/events/{event_id}/bookings"))).bearer_auth(token).json(body);
        if let Some(k) = idempotency_key {
            rb = rb.header("Idempotency-Key", k);
        }
        rb.send().await.expect("POST bookings")
    }

    pub async fn hold_ok(&self, token: &str, event_id: &str, body: &Value) -> Value {
        expect_json(self.hold(token, event_id, body, None).await, 201).await
    }

    pub async fn booking(&self, token: &str, id: &str) -> Response {
        self.get(&format!("/bookings/{id}"), Some(token)).await
    }

    /// Scans a ticket code at the door of `event_id`.
    pub async fn check_in(&self, token: &str, event_id: &str, code: &str) -> Response {
        self.post(&format!("/events/{event_id}/check-in"), Some(token), &json!({"code": code})).await
    }

    pub async fn cancel(&self, token: &str, id: &str) -> Response {
        self.client
            .post(self.api(&format!("/bookings/{id}/cancel")))
            .bearer_auth(token)
            .send()
            .await
            .expect("POST cancel")
    }

    // ---- payments ----

    pub async fn pay(&self, token: &str, booking_id: &str, body: &Value, idempotency_key: Option<&str>) -> Response {
        let mut rb =
            self.client.post(self.api(&format!("/bookings/{booking_id}/payments"))).bearer_auth(token).json(body);
        if let Some(k) = idempotency_key {
            rb = rb.header("Idempotency-Key", k);
        }
        rb.send().await.expect("POST payments")
    }

    /// Pays with a card token and expects 202 pending.
    pub async fn pay_ok(&self, token: &str, booking_id: &str, card_token: &str) -> Value {
        let body = json!({"method": "card", "card_token": card_token});
        let p = expect_json(self.pay(token, booking_id, &body, None).await, 202).await;
        assert_eq!(p["status"], "pending", "{p}");
        p
    }

    pub async fn payment(&self, token: &str, id: &str) -> Value {
        expect_json(self.get(&format!("/payments/{id}"), Some(token)).await, 200).await
    }

    /// Waits until the payment has `status`.
    pub async fn payment_becomes(&self, token: &str, id: &str, status: &str, within: Duration) -> Value {
        eventually(within, &format!("payment {id} to become {status}"), || async {
            let p = self.payment(token, id).await;
            (p["status"] == status).then_some(p)
        })
        .await
    }

    /// Waits until the booking has `status`.
    pub async fn booking_becomes(&self, token: &str, id: &str, status: &str, within: Duration) -> Value {
        eventually(within, &format!("booking {id} to become {status}"), || async {
            let b = expect_json(self.booking(token, id).await, 200).await;
            (b["status"] == status).then_some(b)
        })
        .await
    }

    /// The `.eml` files the app wrote, by file name.
    pub fn emails(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.mail_dir.path()).expect("read the mail folder").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".eml") {
                out.push((name, std::fs::read_to_string(entry.path()).unwrap_or_default()));
            }
        }
        out.sort();
        out
    }

    /// Waits for an e-mail whose raw text contains `needle`.
    pub async fn email_containing(&self, needle: &str, within: Duration) -> String {
        eventually(within, &format!("an e-mail containing {needle:?}"), || async {
            self.emails().into_iter().map(|(_, raw)| raw).find(|raw| raw.contains(needle))
        })
        .await
    }

    pub async fn counters(&self, event_id: &str) -> (i64, i64, i64) {
        self.store.event_counters(EventId(Uuid::parse_str(event_id).expect("event id"))).await.expect("event_counters")
    }
}

// ---- bodies and checks ---------------------------------------------------------------------

pub fn seat_map(rows: u32, seats_per_row: u32) -> Value {
    let rows: Vec<Value> = (0..rows).map(|r| json!({"label": row_label(r), "seats": seats_per_row})).collect();
    json!({"sections": [{"name": "Stalls", "rows": rows}]})
}

pub fn row_label(r: u32) -> String {
    if r < 26 { char::from(b'A' + r as u8).to_string() } else { format!("R{r}") }
}

/// A valid event body; `extra` adds or overrides fields (a null value removes one).
pub fn event_body(extra: Value) -> Value {
    let mut body = json!({
        "title": format!("Test event {}", Uuid::new_v4().simple()),
        "description": "An event made by the integration tests",
        "venue": "Test Hall",
        "starts_at": (Utc::now() + chrono::Duration::days(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "price_cents": 2500,
        "currency": "EUR",
    });
    let m = body.as_object_mut().unwrap();
    for (k, v) in extra.as_object().expect("extra is an object") {
        if v.is_null() {
            m.remove(k);
        } else {
            m.insert(k.clone(), v.clone());
        }
    }
    body
}

pub fn tokens_of(body: &Value) -> Tokens {
    Tokens {
        access: body["access_token"].as_str().unwrap_or_else(|| panic!("no access_token in {body}")).to_owned(),
        refresh: body["refresh_token"].as_str().unwrap_or_else(|| panic!("no refresh_token in {body}")).to_owned(),
    }
}

pub fn uuid_of(v: &Value) -> Uuid {
    Uuid::parse_str(v.as_str().unwrap_or_else(|| panic!("{v} is not a string")))
        .unwrap_or_else(|e| panic!("{v} is not a UUID: {e}"))
}

pub fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("{v} is not a string"))
}

fn content_type(resp: &Response) -> String {
    resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

/// Asserts the status and returns the JSON body.
pub async fn expect_json(resp: Response, status: u16) -> Value {
    let url = resp.url().clone();
    let got = resp.status().as_u16();
    let ct = content_type(&resp);
    let text = resp.text().await.expect("response body");
    assert_eq!(got, status, "{url}: expected {status}, got {got}: {text}");
    assert!(ct.starts_with("application/json"), "{url}: content-type {ct:?}, body {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: body is not JSON ({e}): {text}"))
}

/// Asserts status, `application/problem+json` and the problem's `code`; returns the body.
pub async fn assert_problem(resp: Response, status: u16, code: &str) -> Value {
    let body = problem_of(resp, status).await;
    assert_eq!(body["code"], code, "expected code {code:?} in {body}");
    body
}

/// Like `assert_problem` for any code; checks the RFC 9457 members.
pub async fn problem_of(resp: Response, status: u16) -> Value {
    let url = resp.url().clone();
    let got = resp.status().as_u16();
    let ct = content_type(&resp);
    let text = resp.text().await.expect("response body");
    assert_eq!(got, status, "{url}: expected {status}, got {got}: {text}");
    assert!(
        ct.starts_with("application/problem+json"),
        "{url}: content-type {ct:?} is not application/problem+json; body {text}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: problem body is not JSON ({e}): {text}"));
    assert_eq!(body["status"], status, "{url}: problem status member in {body}");
    assert!(body["code"].is_string(), "{url}: problem without code: {body}");
    assert!(body["title"].is_string(), "{url}: problem without title: {body}");
    assert!(body["type"].is_string(), "{url}: problem without type: {body}");
    body
}

// ---- tokens --------------------------------------------------------------------------------

pub fn claims_for(user: Uuid, role: &str, ttl_secs: i64) -> Value {
    let now = Utc::now().timestamp();
    json!({"sub": user, "role": role, "iat": now, "exp": now + ttl_secs, "iss": "boxoffice", "aud": "boxoffice-api"})
}

pub fn sign_token(claims: &Value) -> String {
    sign_token_with(claims, JWT_SECRET.as_bytes())
}

pub fn sign_token_with(claims: &Value, secret: &[u8]) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).expect("sign token")
}

/// A user written straight into `store` (argon2 is slow in debug builds) and a token for it,
/// signed like the engine's. Its password hash is not a hash: it never logs in with a password.
/// How many `.eml` files a folder holds (0 if it does not exist yet).
pub fn eml_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|r| r.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "eml")).count())
        .unwrap_or(0)
}

/// An access token of the bootstrapped admin of the database behind `store`.
pub async fn admin_token_of(store: &Store) -> String {
    let admin = store.user_by_email(ADMIN_EMAIL).await.expect("read admin").expect("the admin was bootstrapped");
    sign_token(&claims_for(admin.id.0, "admin", 900))
}

pub async fn mint_user(store: &Store, prefix: &str) -> (UserId, String) {
    let row = UserRow { email: unique_email(prefix), ..UserRow::new("", "minted-by-tests".into(), Role::User) };
    store.insert_user(&row).await.expect("mint a user");
    (row.id, sign_token(&claims_for(row.id.0, "user", 900)))
}

/// A refresh session of `user` written straight into `store`, as a login writes it; returns
/// its refresh token (logging in per session would cost an argon2 verification each).
pub async fn mint_session(store: &Store, user: UserId) -> String {
    let (token, hash) = boxoffice::auth::new_refresh_token();
    let now = Utc::now();
    let row = boxoffice::persistence::RefreshTokenRow {
        id: Uuid::now_v7(),
        user_id: user,
        family_id: Uuid::now_v7(),
        token_hash: hash,
        expires_at: now + chrono::Duration::hours(1),
        spent_at: None,
        revoked_at: None,
        created_at: now,
        session_ended: false,
    };
    let epoch = store.user_by_id(user).await.expect("read the user").expect("the user").session_epoch;
    store.open_session(&row, epoch).await.expect("mint a session");
    token
}

// ---- waiting -------------------------------------------------------------------------------

/// Polls `check` until it returns `Some`, or panics after `deadline` with `what`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
