//! The engine's outbound stream of domain events (`crate::domain::stream`): its published
//! schema (`asyncapi`), the sinks beyond the notification bus, and the sales analytics that
//! consume it.

pub mod analytics;
pub mod asyncapi;
pub mod kafka;
