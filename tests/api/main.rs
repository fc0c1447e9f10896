//! Integration tests of the HTTP API (the served OpenAPI document is the contract), run against SQLite and PostgreSQL.
//!
//! PostgreSQL: `TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) names a
//! server where each test creates (and afterwards drops) its own `bx_test_*` database. If the
//! server is unreachable the PostgreSQL tests fail; they never skip.

#[macro_use]
mod helpers;

mod abuse;
mod admission;
mod analytics;
mod auth;
mod bookings;
mod bootstrap;
mod cluster;
mod concurrency;
mod crash;
mod deploy;
mod events;
mod expiry;
mod fencing;
mod hygiene;
mod journal;
mod limits;
mod notifications;
mod ops;
mod payments;
mod pdf;
mod process;
mod receipts;
mod relay;
mod resilience;
mod saga_crash;
mod sessions;
mod shared_state;
mod stream;
mod tokens;
mod web;
mod worker_role;
