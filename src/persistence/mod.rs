//! The store: one API over two engines. PostgreSQL is the production engine (and the only one
//! several nodes can share); SQLite is the embedded default that needs no set-up. Both run the
//! same SQL where the dialects agree (`$n` parameters work in both); the journal's batch write,
//! the hot path, has one tuned implementation per engine (`journal.rs`).

mod journal;
mod lookups;
mod rows;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

pub use analytics::{AnalyticsPosition, Applied};
pub use cluster::{Acquired, LeaseHolder};
pub use journal::{After, JournalOp, OutboxEntry};
pub use payments::{DeliveryClaim, OutboxRow, PaymentRow, Unreadable};
pub use rows::{BookingRow, EventRow, RefreshTokenRow, UserRow};

use crate::domain::booking::BookingStatus;
use crate::domain::ids::{BookingId, EventId, UserId};
use crate::domain::stream::{DomainEvent, EventData};
use crate::domain::user::Role;
use rows::{RawBooking, RawEvent, RawRefresh, RawUser};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (e.g. an e-mail already registered).
    #[error("conflict on {0}")]
    Conflict(String),
    /// The event's owner epoch moved on: this node no longer owns the event, nothing was written.
    #[error("fenced: this node no longer owns the event")]
    Fenced,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database could not be reached (reported by a task on behalf of a caller).
    #[error("database unreachable: {0}")]
    Unreachable(String),
    /// Not attempted: the event's previous batch failed.
    #[error("abandoned after the previous batch failed")]
    Abandoned,
}

impl StoreError {
    /// The database is down or unreachable (rather than refusing this request).
    pub fn is_unreachable(&self) -> bool {
        match self {
            StoreError::Unreachable(_) => true,
            StoreError::Db(
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_),
            ) => true,
            // Server going down, too many connections, cancelled by a timeout, serialisation; and
            // SQLite unable to open its file (`14`, e.g. the process is out of file descriptors).
            StoreError::Db(sqlx::Error::Database(d)) => matches!(
                d.code().as_deref(),
                Some("57P01" | "57P02" | "57P03" | "53300" | "57014" | "40001" | "40P01" | "14")
            ),
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Debug)]
enum Pool {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

/// Runs the same code against whichever pool is configured; each arm is compiled for its engine.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Pg($pool) => $body,
            Pool::Sqlite($pool) => $body,
        }
    };
}

/// A bind value for dynamically built queries.
enum Arg {
    Text(String),
    Time(DateTime<Utc>),
    Id(Uuid),
    Int(i64),
}

macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                Arg::Text(v) => q.bind(v),
                Arg::Time(v) => q.bind(v),
                Arg::Id(v) => q.bind(v),
                Arg::Int(v) => q.bind(v),
            };
        }
        q
    }};
}

// After the macros they use.
mod analytics;
mod cluster;
mod payments;

#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// PostgreSQL: connections of the journal alone, so that batch commits never queue behind
    /// the reads of a crowd (idempotency look-ups, listings) for a pooled connection.
    journal: Option<PgPool>,
    /// PostgreSQL: grouped idempotency look-ups.
    lookups: Option<std::sync::Arc<lookups::KeyLookups>>,
}

/// Filters of the event list.
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    pub words: Vec<String>,
    pub venue: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub available_only: bool,
    /// Keyset cursor: strictly after (starts_at, id).
    pub after: Option<(DateTime<Utc>, EventId)>,
    pub limit: u32,
}

/// Partial event update (fields left `None` are kept), validated by the domain.
pub use crate::domain::event::EventChanges as EventPatch;

fn conflict_or(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(what.to_owned()),
        _ => StoreError::Db(e),
    }
}

const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, spent_at, revoked_at, created_at) \
     VALUES ($1, $2, $3, $4, $5, NULL, NULL, $6)";

/// What became of a refresh token's rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Spent and succeeded; `role` is the user's role, read in the same statement that found
    /// the session live.
    Rotated { role: Role },
    /// The session was ended (logout, reuse, a change of role or password); nothing written.
    SessionEnded,
    /// The token was spent already (a concurrent refresh won); nothing written.
    AlreadySpent,
}

/// Escapes LIKE wildcards so user text matches literally.
fn like_pattern(word: &str) -> String {
    let mut s = String::with_capacity(word.len() + 2);
    s.push('%');
    for c in word.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

impl Store {
    /// Connects (creating a SQLite file and its folder if needed) and runs the migrations.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let mut journal_pool = None;
        let mut key_lookups = None;
        let pool = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url)?;
            // Connections are kept open (min_connections) so that a crowd arriving at once does
            // not first wait for connections, and their TLS handshakes, to be made.
            let journal = PgPoolOptions::new()
                .max_connections(4)
                .min_connections(2)
                .acquire_timeout(Duration::from_secs(5))
                .connect_lazy_with(opts.clone());
            journal_pool = Some(journal);
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .min_connections(max_connections.div_ceil(2))
                .acquire_timeout(Duration::from_secs(5))
                .connect_lazy_with(opts);
            key_lookups = Some(std::sync::Arc::new(lookups::KeyLookups::start(pool.clone())));
            Pool::Pg(pool)
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a committed batch survives power loss, not only a killed process.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            if let Some(dir) = opts.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.min(8))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await?;
            Pool::Sqlite(pool)
        } else {
            anyhow::bail!("DATABASE_URL must start with postgres:// or sqlite:");
        };
        Ok(Self { pool, journal: journal_pool, lookups: key_lookups })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pool {
            Pool::Pg(p) => sqlx::migrate!("./migrations/postgres").run(p).await?,
            Pool::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await?,
        }
        Ok(())
    }

    pub fn engine(&self) -> &'static str {
        match self.pool {
            Pool::Pg(_) => "postgres",
            Pool::Sqlite(_) => "sqlite",
        }
    }

    /// How many journal batches of one event may be written at once. PostgreSQL runs the next
    /// batch's inserts while the previous one commits (the fenced counter update, last in each
    /// batch, orders them); SQLite has one writer anyway.
    /// `requested` (0 for the default) is honoured on PostgreSQL only.
    pub fn pipeline_depth(&self, requested: usize) -> usize {
        match self.pool {
            Pool::Pg(_) if requested > 0 => requested,
            Pool::Pg(_) => 2,
            Pool::Sqlite(_) => 1,
        }
    }

    /// Connections of each pool: `(pool, open, idle, max)`; the journal has its own on PostgreSQL.
    pub fn pool_stats(&self) -> Vec<(&'static str, u32, u32, u32)> {
        let mut stats = Vec::with_capacity(2);
        match &self.pool {
            Pool::Pg(p) => stats.push(("main", p.size(), p.num_idle() as u32, p.options().get_max_connections())),
            Pool::Sqlite(p) => stats.push(("main", p.size(), p.num_idle() as u32, p.options().get_max_connections())),
        }
        if let Some(j) = &self.journal {
            stats.push(("journal", j.size(), j.num_idle() as u32, j.options().get_max_connections()));
        }
        stats
    }

    pub async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Runs a statement as is (tests break and mend the schema to fake outages).
    #[cfg(test)]
    pub(crate) async fn execute_for_tests(&self, sql: &str) {
        on_pool!(self, p => sqlx::query(sql).execute(p).await.map(|_| ())).expect("test statement");
    }

    pub async fn close(&self) {
        if let Some(j) = &self.journal {
            j.close().await;
        }
        on_pool!(self, p => p.close().await)
    }

    // ---- users -------------------------------------------------------------------------

    pub async fn insert_user(&self, u: &UserRow) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO users (id, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(u.id.0).bind(&u.email).bind(&u.password_hash).bind(u.role.as_str()).bind(u.created_at)
            .execute(p).await.map(|r| r.rows_affected()))
        .map_err(|e| conflict_or(e, "email"))?;
        Ok(())
    }

    /// Sets a user's role and password and ends every session of the user, in one transaction
    /// (a role change also moves `session_epoch` on by itself, through the database trigger,
    /// so a session begun at the same moment ends too). `false` if there is no such user.
    pub async fn reset_account(
        &self,
        user: UserId,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        const USER: &str =
            "UPDATE users SET role = $1, password_hash = $2, session_epoch = session_epoch + 1 WHERE id = $3";
        const SESSIONS: &str = "UPDATE refresh_sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL";
        const TOKENS: &str = "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL";
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(USER).bind(role.as_str()).bind(password_hash).bind(user.0)
                .execute(&mut *tx).await?.rows_affected();
            if n != 1 {
                return Ok(false);
            }
            sqlx::query(SESSIONS).bind(now).bind(user.0).execute(&mut *tx).await?;
            sqlx::query(TOKENS).bind(now).bind(user.0).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    pub async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRow>> {
        const SQL: &str =
            "SELECT id, email, password_hash, role, created_at, session_epoch FROM users WHERE email = $1";
        let raw: Option<RawUser> = on_pool!(self, p => sqlx::query_as(SQL).bind(email).fetch_optional(p).await)?;
        raw.map(UserRow::try_from).transpose()
    }

    pub async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRow>> {
        const SQL: &str = "SELECT id, email, password_hash, role, created_at, session_epoch FROM users WHERE id = $1";
        let raw: Option<RawUser> = on_pool!(self, p => sqlx::query_as(SQL).bind(id.0).fetch_optional(p).await)?;
        raw.map(UserRow::try_from).transpose()
    }

    // ---- refresh sessions and tokens ---------------------------------------------------

    /// Starts a session (its id is `first.family_id`) with its first refresh token.
    /// `user_epoch` is the user's `session_epoch` as read with the credentials that were
    /// checked: if the role or password changed since, the session is born ended.
    pub async fn open_session(&self, first: &RefreshTokenRow, user_epoch: i64) -> StoreResult<()> {
        const SESSION: &str =
            "INSERT INTO refresh_sessions (id, user_id, user_epoch, created_at) VALUES ($1, $2, $3, $4)";
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query(SESSION).bind(first.family_id).bind(first.user_id.0).bind(user_epoch).bind(first.created_at)
                .execute(&mut *tx).await?;
            sqlx::query(INSERT_REFRESH)
                .bind(first.id).bind(first.user_id.0).bind(first.family_id).bind(&first.token_hash)
                .bind(first.expires_at).bind(first.created_at)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// A refresh token by hash, with whether its session has ended.
    pub async fn refresh_token_by_hash(&self, hash: &str) -> StoreResult<Option<RefreshTokenRow>> {
        const SQL: &str = "SELECT t.id, t.user_id, t.family_id, t.token_hash, t.expires_at, t.spent_at, t.revoked_at, t.created_at, \
             COALESCE(s.revoked_at IS NOT NULL OR s.user_epoch <> u.session_epoch, TRUE) AS session_ended \
             FROM refresh_tokens t LEFT JOIN refresh_sessions s ON s.id = t.family_id \
             LEFT JOIN users u ON u.id = s.user_id WHERE t.token_hash = $1";
        let raw: Option<RawRefresh> = on_pool!(self, p => sqlx::query_as(SQL).bind(hash).fetch_optional(p).await)?;
        Ok(raw.map(RefreshTokenRow::from))
    }

    /// Spends `old` and stores its successor `new`, in one transaction that first updates the
    /// session's row under the condition that the session is live: a logout or role change
    /// updating the same row is either before (nothing is written) or after (it ends the
    /// session the successor belongs to). The role is read in that same statement.
    pub async fn rotate_refresh_token(
        &self,
        old: Uuid,
        new: &RefreshTokenRow,
        now: DateTime<Utc>,
    ) -> StoreResult<Rotation> {
        const SESSION: &str = "UPDATE refresh_sessions SET rotated_at = $1 \
             WHERE id = $2 AND revoked_at IS NULL \
             AND user_epoch = (SELECT u.session_epoch FROM users u WHERE u.id = refresh_sessions.user_id) \
             RETURNING (SELECT u.role FROM users u WHERE u.id = refresh_sessions.user_id)";
        const SPEND: &str =
            "UPDATE refresh_tokens SET spent_at = $1 WHERE id = $2 AND spent_at IS NULL AND revoked_at IS NULL";
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let role: Option<(String,)> =
                sqlx::query_as(SESSION).bind(now).bind(new.family_id).fetch_optional(&mut *tx).await?;
            let Some((role,)) = role else { return Ok(Rotation::SessionEnded) };
            let spent = sqlx::query(SPEND).bind(now).bind(old).execute(&mut *tx).await?.rows_affected();
            if spent != 1 {
                return Ok(Rotation::AlreadySpent);
            }
            sqlx::query(INSERT_REFRESH)
                .bind(new.id).bind(new.user_id.0).bind(new.family_id).bind(&new.token_hash).bind(new.expires_at).bind(new.created_at)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Rotation::Rotated { role: Role::from_db(&role)? })
        })
    }

    /// Ends a session and revokes its tokens, in one transaction that updates the session's
    /// row first (the row a rotation updates too).
    pub async fn end_session(&self, session: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        const SESSION: &str = "UPDATE refresh_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        const TOKENS: &str = "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL";
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query(SESSION).bind(now).bind(session).execute(&mut *tx).await?;
            sqlx::query(TOKENS).bind(now).bind(session).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    // ---- events ------------------------------------------------------------------------

    /// Stores a new event and, for a seated event, one row per seat. `request_id` (here and
    /// in the changes below): the request that caused it, for the domain event.
    pub async fn insert_event(&self, e: &EventRow, request_id: Option<String>) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO events (id, title, description, venue, starts_at, price_cents, currency, capacity, reserved, \
             seat_map, max_per_booking, max_per_user, owner_epoch, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $12, 0, $11, $11)";
        let seat_map = e.seat_map.as_ref().map(|m| serde_json::to_string(m).expect("seat map serialises"));
        let seat_ids: Vec<String> = e.seat_ids();
        let created = OutboxEntry::new(
            DomainEvent::new(e.created_at, e.id, None, EventData::EventCreated(e.facts())).with_request_id(request_id),
        );
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query(SQL)
                .bind(e.id.0).bind(&e.title).bind(&e.description).bind(&e.venue).bind(e.starts_at).bind(e.price_cents)
                .bind(&e.currency).bind(e.capacity).bind(&seat_map).bind(e.max_per_booking).bind(e.created_at)
                .bind(e.max_per_user)
                .execute(&mut *tx).await?;
            for chunk in seat_ids.chunks(500) {
                let mut qb = sqlx::QueryBuilder::new("INSERT INTO seats (event_id, seat_id) ");
                qb.push_values(chunk, |mut b, s| {
                    b.push_bind(e.id.0).push_bind(s);
                });
                qb.build().execute(&mut *tx).await?;
            }
            sqlx::query(journal::OUTBOX).bind(created.topic()).bind(created.payload()).bind(&created.event.request_id)
                .bind(e.created_at).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    pub async fn event(&self, id: EventId) -> StoreResult<Option<EventRow>> {
        let sql = format!("SELECT {} FROM events WHERE id = $1 AND deleted_at IS NULL", rows::EVENT_COLUMNS);
        let raw: Option<RawEvent> = on_pool!(self, p => sqlx::query_as(&sql).bind(id.0).fetch_optional(p).await)?;
        raw.map(EventRow::try_from).transpose()
    }

    /// An event even if deleted (receipts and e-mails of its bookings still need it).
    pub async fn event_any(&self, id: EventId) -> StoreResult<Option<EventRow>> {
        let sql = format!("SELECT {} FROM events WHERE id = $1", rows::EVENT_COLUMNS);
        let raw: Option<RawEvent> = on_pool!(self, p => sqlx::query_as(&sql).bind(id.0).fetch_optional(p).await)?;
        raw.map(EventRow::try_from).transpose()
    }

    /// The capacity and reserved seats of a live event (the durable counter), without the rest
    /// of its row: what the event cache overlays on the fields it keeps.
    pub async fn event_capacity_reserved(&self, id: EventId) -> StoreResult<Option<(i64, i64)>> {
        const SQL: &str = "SELECT capacity, reserved FROM events WHERE id = $1 AND deleted_at IS NULL";
        Ok(on_pool!(self, p => sqlx::query_as(SQL).bind(id.0).fetch_optional(p).await)?)
    }

    /// The capacity and durable counter of each listed event still there (a primary-key read).
    pub async fn events_capacity_reserved(&self, ids: &[EventId]) -> StoreResult<Vec<(Uuid, i64, i64)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, capacity, reserved FROM events WHERE deleted_at IS NULL AND id IN ({})",
            marks.join(", ")
        );
        let args = ids.iter().map(|id| Arg::Id(id.0));
        Ok(on_pool!(self, p => bind_all!(sqlx::query_as(&sql), args.clone()).fetch_all(p).await)?)
    }

    pub async fn list_events(&self, f: &EventFilter) -> StoreResult<Vec<EventRow>> {
        let mut sql = format!("SELECT {} FROM events WHERE deleted_at IS NULL", rows::EVENT_COLUMNS);
        let mut args = Vec::new();
        let mut push = |sql: &mut String, clause: &str, a: Arg| {
            args.push(a);
            sql.push_str(&clause.replace('?', &format!("${}", args.len())));
        };
        for w in &f.words {
            push(&mut sql, " AND LOWER(title || ' ' || description) LIKE ? ESCAPE '\\'", Arg::Text(like_pattern(w)));
        }
        if let Some(v) = &f.venue {
            push(&mut sql, " AND LOWER(venue) = ?", Arg::Text(v.to_lowercase()));
        }
        if let Some(t) = f.from {
            push(&mut sql, " AND starts_at >= ?", Arg::Time(t));
        }
        if let Some(t) = f.to {
            push(&mut sql, " AND starts_at <= ?", Arg::Time(t));
        }
        if f.available_only {
            sql.push_str(" AND reserved < capacity");
        }
        if let Some((t, id)) = f.after {
            push(&mut sql, " AND (starts_at > ?", Arg::Time(t));
            push(&mut sql, " OR (starts_at = ?", Arg::Time(t));
            push(&mut sql, " AND id > ?))", Arg::Id(id.0));
        }
        push(&mut sql, " ORDER BY starts_at, id LIMIT ?", Arg::Int(f.limit as i64));
        let raws: Vec<RawEvent> = on_pool!(self, p => bind_all!(sqlx::query_as(&sql), args).fetch_all(p).await)?;
        raws.into_iter().map(EventRow::try_from).collect()
    }

    /// Takes ownership of an event for this node: bumps the fencing epoch so that any previous
    /// owner's later writes are refused, and returns the event with its new epoch.
    pub async fn take_ownership(&self, id: EventId, node: &str, now: DateTime<Utc>) -> StoreResult<Option<EventRow>> {
        // One statement: the epoch read back is the one this call set, even if another node
        // takes the event over at the same moment.
        let sql = format!(
            "UPDATE events SET owner_epoch = owner_epoch + 1, owner_node = $1, updated_at = $2 \
             WHERE id = $3 AND deleted_at IS NULL RETURNING {}",
            rows::EVENT_COLUMNS
        );
        let raw: Option<RawEvent> =
            on_pool!(self, p => sqlx::query_as(&sql).bind(node).bind(now).bind(id.0).fetch_optional(p).await)?;
        raw.map(EventRow::try_from).transpose()
    }

    /// Applies a partial update if this node still owns the event at `epoch`.
    pub async fn update_event(
        &self,
        id: EventId,
        epoch: i64,
        patch: &EventPatch,
        now: DateTime<Utc>,
        request_id: Option<String>,
    ) -> StoreResult<()> {
        const SQL: &str = "UPDATE events SET title = COALESCE($1, title), description = COALESCE($2, description), \
             venue = COALESCE($3, venue), starts_at = COALESCE($4, starts_at), price_cents = COALESCE($5, price_cents), \
             currency = COALESCE($6, currency), capacity = COALESCE($7, capacity), \
             max_per_booking = COALESCE($8, max_per_booking), updated_at = $9, \
             max_per_user = COALESCE($12, max_per_user) \
             WHERE id = $10 AND owner_epoch = $11 AND deleted_at IS NULL";
        let read = format!("SELECT {} FROM events WHERE id = $1", rows::EVENT_COLUMNS);
        // The announcement carries the facts after the change, read in the same transaction.
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(SQL)
                .bind(&patch.title).bind(&patch.description).bind(&patch.venue).bind(patch.starts_at).bind(patch.price_cents)
                .bind(&patch.currency).bind(patch.capacity).bind(patch.max_per_booking).bind(now).bind(id.0).bind(epoch)
                .bind(patch.max_per_user)
                .execute(&mut *tx).await?.rows_affected();
            if n != 1 {
                return Err(StoreError::Fenced);
            }
            let raw: RawEvent = sqlx::query_as(&read).bind(id.0).fetch_one(&mut *tx).await?;
            let row = EventRow::try_from(raw)?;
            let updated = OutboxEntry::new(
                DomainEvent::new(now, id, None, EventData::EventUpdated(row.facts())).with_request_id(request_id.clone()),
            );
            sqlx::query(journal::OUTBOX).bind(updated.topic()).bind(updated.payload()).bind(&updated.event.request_id)
                .bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        Ok(())
    }

    /// Soft-deletes an event this node owns that has no live booking.
    pub async fn delete_event(
        &self,
        id: EventId,
        epoch: i64,
        now: DateTime<Utc>,
        request_id: Option<String>,
    ) -> StoreResult<()> {
        const SQL: &str = "UPDATE events SET deleted_at = $1, updated_at = $1 \
             WHERE id = $2 AND owner_epoch = $3 AND deleted_at IS NULL AND reserved = 0";
        let deleted =
            OutboxEntry::new(DomainEvent::new(now, id, None, EventData::EventDeleted {}).with_request_id(request_id));
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(SQL).bind(now).bind(id.0).bind(epoch).execute(&mut *tx).await?.rows_affected();
            if n != 1 {
                return Err(StoreError::Fenced);
            }
            sqlx::query(journal::OUTBOX).bind(deleted.topic()).bind(deleted.payload()).bind(&deleted.event.request_id)
                .bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        Ok(())
    }

    // ---- bookings ----------------------------------------------------------------------

    pub async fn live_bookings(&self, event: EventId) -> StoreResult<Vec<BookingRow>> {
        let sql = format!(
            "SELECT {} FROM bookings WHERE event_id = $1 AND status IN ('held', 'confirmed')",
            rows::BOOKING_COLUMNS
        );
        let raws: Vec<RawBooking> = on_pool!(self, p => sqlx::query_as(&sql).bind(event.0).fetch_all(p).await)?;
        raws.into_iter().map(BookingRow::try_from).collect()
    }

    /// Events with held bookings: their actors must run so the holds expire on time.
    pub async fn events_with_holds(&self) -> StoreResult<Vec<EventId>> {
        const SQL: &str = "SELECT DISTINCT event_id FROM bookings WHERE status = 'held'";
        let ids: Vec<(Uuid,)> = on_pool!(self, p => sqlx::query_as(SQL).fetch_all(p).await)?;
        Ok(ids.into_iter().map(|(id,)| EventId(id)).collect())
    }

    pub async fn booking(&self, id: BookingId) -> StoreResult<Option<BookingRow>> {
        let sql = format!("SELECT {} FROM bookings WHERE id = $1", rows::BOOKING_COLUMNS);
        let raw: Option<RawBooking> = on_pool!(self, p => sqlx::query_as(&sql).bind(id.0).fetch_optional(p).await)?;
        raw.map(BookingRow::try_from).transpose()
    }

    /// A user's bookings, newest first (ids are time-ordered UUIDv7), strictly before `before`.
    pub async fn bookings_of(
        &self,
        user: UserId,
        before: Option<BookingId>,
        limit: u32,
    ) -> StoreResult<Vec<BookingRow>> {
        let sql = format!(
            "SELECT {} FROM bookings WHERE user_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
            rows::BOOKING_COLUMNS
        );
        let before = before.map(|b| b.0);
        let raws: Vec<RawBooking> =
            on_pool!(self, p => sqlx::query_as(&sql).bind(user.0).bind(before).bind(limit as i64).fetch_all(p).await)?;
        raws.into_iter().map(BookingRow::try_from).collect()
    }

    /// The idempotency record of `(user, key)`: the request's hash and the booking it made.
    pub async fn idempotency_record(&self, user: UserId, key: &str) -> StoreResult<Option<(String, BookingId)>> {
        if let Some(lookups) = &self.lookups {
            return lookups.lookup(user, key).await;
        }
        // Two claims racing with one key on two events may both succeed; the first one answers.
        const SQL: &str = "SELECT request_hash, id FROM bookings \
             WHERE user_id = $1 AND idempotency_key = $2 ORDER BY id LIMIT 1";
        let row: Option<(String, Uuid)> =
            on_pool!(self, p => sqlx::query_as(SQL).bind(user.0).bind(key).fetch_optional(p).await)?;
        Ok(row.map(|(h, b)| (h, BookingId(b))))
    }

    /// Counters the database holds for an event: `(capacity, reserved, live seats in bookings)`.
    /// Used by tests and the operators' consistency check.
    pub async fn event_counters(&self, id: EventId) -> StoreResult<(i64, i64, i64)> {
        const SQL: &str = "SELECT capacity, reserved, \
             (SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM bookings b WHERE b.event_id = e.id AND b.status IN ('held', 'confirmed')) \
             FROM events e WHERE id = $1";
        let row: (i64, i64, i64) = on_pool!(self, p => sqlx::query_as(SQL).bind(id.0).fetch_one(p).await)?;
        Ok(row)
    }

    /// Writes one journal batch in one transaction, fenced by `epoch`.
    /// `after`: the previous batch of the event (if still being written); this one commits only
    /// after it, and not at all if it failed.
    pub async fn commit_batch(
        &self,
        event: EventId,
        epoch: i64,
        ops: &[JournalOp],
        now: DateTime<Utc>,
        after: Option<journal::After>,
    ) -> StoreResult<()> {
        match &self.pool {
            Pool::Pg(p) => journal::commit_pg(self.journal.as_ref().unwrap_or(p), event, epoch, ops, now, after).await,
            Pool::Sqlite(p) => journal::commit_sqlite(p, event, epoch, ops, now, after).await,
        }
    }
}

impl BookingStatus {
    fn from_db(s: &str) -> StoreResult<Self> {
        Self::parse(s).ok_or_else(|| StoreError::Corrupt(format!("booking status {s:?}")))
    }
}

impl Role {
    fn from_db(s: &str) -> StoreResult<Self> {
        Self::parse(s).ok_or_else(|| StoreError::Corrupt(format!("role {s:?}")))
    }
}
