//! The engine's outbound stream of domain events (`crate::domain::stream`): its published
//! schema (`asyncapi`) and the sinks beyond the notification bus.

pub mod asyncapi;
pub mod kafka;
