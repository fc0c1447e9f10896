//! The AsyncAPI 3 document of the domain-event stream, served at `/api/asyncapi.json`. Its
//! schemas are generated from the Rust types (utoipa's JSON Schema, OpenAPI 3.1 dialect, i.e.
//! JSON Schema 2020-12), so the document cannot drift from what the engine writes; one message
//! per event type, each the envelope with its `type` fixed.

use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::domain::stream::{DomainEvent, EventType, SCHEMA_VERSION};

#[derive(OpenApi)]
#[openapi(components(schemas(DomainEvent)))]
struct Schemas;

/// The channel (a Kafka topic, or the RabbitMQ topic exchange) every domain event goes to.
pub const CHANNEL: &str = "domainEvents";

/// The JSON Schema dialect of the generated schemas.
const SCHEMA_FORMAT: &str = "application/schema+json;version=draft-2020-12";

/// The whole document. `kafka_topic` and `exchange` name where the stream is published.
pub fn document(kafka_topic: &str, exchange: &str) -> Value {
    let components = Schemas::openapi().components.expect("schemas are listed");
    let mut schemas = Map::new();
    for (name, schema) in components.schemas {
        schemas.insert(name, serde_json::to_value(schema).expect("schemas serialise"));
    }
    let mut messages = Map::new();
    let mut channel_messages = Map::new();
    for t in EventType::ALL {
        let name = t.message_name();
        messages.insert(
            name.clone(),
            json!({
                "name": t.as_str(),
                "title": t.as_str(),
                "contentType": "application/json",
                "payload": {
                    "schemaFormat": SCHEMA_FORMAT,
                    "schema": {
                        "allOf": [
                            { "$ref": "#/components/schemas/DomainEvent" },
                            { "type": "object", "required": ["type"], "properties": { "type": { "const": t.as_str() } } }
                        ]
                    }
                },
                "correlationId": { "location": "$message.payload#/id" },
                "bindings": {
                    "kafka": { "key": { "type": "string", "format": "uuid", "description": "the event_id: one event's changes stay in order" } },
                    "amqp": { "contentEncoding": "utf-8", "messageType": t.as_str() }
                }
            }),
        );
        channel_messages.insert(name.clone(), json!({ "$ref": format!("#/components/messages/{name}") }));
    }
    let operation_messages: Vec<Value> = EventType::ALL
        .into_iter()
        .map(|t| json!({ "$ref": format!("#/channels/{CHANNEL}/messages/{}", t.message_name()) }))
        .collect();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "boxoffice domain events",
            "version": SCHEMA_VERSION.to_string(),
            "description": "Every change of a booking, payment, event or ticket, written to the outbox in the \
                transaction of the change and published from there: to the RabbitMQ topic exchange (routing key = \
                type) and, when configured, to a Kafka topic keyed by event_id, by an idempotent producer (a retry of \
                the producer's own never appends a record twice). Delivery is still at least once (a record whose \
                acknowledgement was lost to a crash of the engine is sent again): consumers drop duplicates by `id`. Order is kept per event (Kafka partition by key; one relay per outbox)."
        },
        "defaultContentType": "application/json",
        "channels": {
            CHANNEL: {
                "address": kafka_topic,
                "title": "domain events",
                "description": format!("Kafka topic `{kafka_topic}`; on RabbitMQ the topic exchange `{exchange}` (routing key = type)."),
                "messages": channel_messages,
                "bindings": {
                    "kafka": { "topic": kafka_topic },
                    "amqp": { "is": "routingKey", "exchange": { "name": exchange, "type": "topic", "durable": true, "autoDelete": false } }
                }
            }
        },
        "operations": {
            "publishDomainEvents": {
                "action": "send",
                "title": "the engine publishes its domain events",
                "channel": { "$ref": format!("#/channels/{CHANNEL}") },
                "messages": operation_messages
            }
        },
        "components": { "schemas": schemas, "messages": messages }
    })
}

/// A JSON Schema (2020-12) that a payload of the stream must satisfy: the document itself,
/// rooted at `DomainEvent` (its other members are not schema keywords and are ignored).
pub fn payload_schema(document: &Value) -> Value {
    let mut root = document.clone();
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["$ref"] = json!("#/components/schemas/DomainEvent");
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_a_message_and_the_envelope_is_described() {
        let doc = document("boxoffice.events", "boxoffice.events");
        let messages = doc["components"]["messages"].as_object().unwrap();
        assert_eq!(messages.len(), EventType::ALL.len());
        assert!(doc["components"]["schemas"]["DomainEvent"].is_object());
        let envelope = serde_json::to_string(&doc["components"]["schemas"]).unwrap();
        for field in ["schema_version", "event_id", "booking_id", "request_id", "booking.held", "ticket.checked_in"] {
            assert!(envelope.contains(field), "{field} missing from {envelope}");
        }
    }
}
