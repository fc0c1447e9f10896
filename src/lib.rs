//! boxoffice: an actor-based event booking engine. `docs/ARCHITECTURE.md` explains the
//! architecture; `startup::Application` wires the pieces together.

pub mod accounts;
pub mod actors;
pub mod auth;
pub mod bus;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod cpu;
pub mod domain;
pub mod http;
pub mod net;
pub mod notify;
pub mod payments;
pub mod persistence;
pub mod receipt;
pub mod receipts;
pub mod seed;
pub mod service;
pub mod shared;
pub mod startup;
pub mod stream;
pub mod telemetry;
