//! The OpenAPI contract kept true: the error responses every route shares, declared once, and
//! a pass over the finished document that makes every error response what the server really
//! sends (`application/problem+json` with the [`Problem`] schema, `Retry-After` on 429 and 503).
//!
//! Routes list their responses as the shared groups below plus their own (a 404 for a missing
//! resource, a 409 with its codes); a route's own entry wins over a group's for the same status.
//! `schemathesis` (scripts/checks/30-schemathesis.sh) holds the document to the server.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{ContentBuilder, ObjectBuilder, OpenApi, RefOr, Response, ResponseBuilder, Type};

use super::error::PROBLEM_JSON;

/// An error response: a problem document, with `Retry-After` where the client should wait.
fn problem(description: &str, retry_after: bool) -> Response {
    let content = ContentBuilder::new().schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Problem"))));
    let mut response = ResponseBuilder::new().description(description).content(PROBLEM_JSON, content.build());
    if retry_after {
        response = response.header("Retry-After", retry_after_header());
    }
    response.build()
}

fn retry_after_header() -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
        .description(Some("Seconds to wait before retrying"))
        .build()
}

fn map(entries: &[(u16, &str, bool)]) -> BTreeMap<String, RefOr<Response>> {
    entries.iter().map(|(status, d, retry)| (status.to_string(), RefOr::T(problem(d, *retry)))).collect()
}

/// A JSON request body: what the body extractor refuses before the handler runs.
pub struct JsonBody;

impl utoipa::IntoResponses for JsonBody {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        map(&[
            (400, "bad_request: the body is not JSON, or a field has the wrong type", false),
            (413, "payload_too_large: the body is larger than 1 MiB", false),
            (415, "unsupported_media_type: the body was not sent as application/json", false),
            (
                422,
                "validation_failed: the body is not a JSON object or a field is invalid; `errors` names each field",
                false,
            ),
        ])
    }
}

/// A route that needs a bearer token.
pub struct Bearer;

impl utoipa::IntoResponses for Bearer {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        map(&[(401, "unauthorized: the bearer token is missing, malformed, expired or revoked", false)])
    }
}

/// A route for admins only.
pub struct AdminOnly;

impl utoipa::IntoResponses for AdminOnly {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut m = Bearer::responses();
        m.extend(map(&[(403, "forbidden: the action needs the admin role", false)]));
        m
    }
}

/// A route with an id in its path.
pub struct IdPath;

impl utoipa::IntoResponses for IdPath {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        map(&[(400, "bad_request: a path parameter is not a UUID", false)])
    }
}

/// Every API route: the per-client rate limit, and the store or the request deadline failing.
pub struct Limited;

impl utoipa::IntoResponses for Limited {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        map(&[
            (429, "rate_limited: too many requests from this client; retry after Retry-After", true),
            (
                503,
                "unavailable: the database is unreachable or the request took too long; retry after Retry-After",
                true,
            ),
        ])
    }
}

/// Makes every error response of the document a problem document, and gives 429 and 503 their
/// `Retry-After` header, whatever a route's annotation said. The server answers every 4xx and
/// 5xx so (`error::problemize`), so the document may not say otherwise.
pub struct ProblemResponses;

impl utoipa::Modify for ProblemResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for op in operations(item) {
                for (status, response) in op.responses.responses.iter_mut() {
                    let code: u16 = status.parse().unwrap_or(0);
                    let RefOr::T(r) = response else { continue };
                    if code < 400 {
                        continue;
                    }
                    let retry = matches!(code, 429 | 503);
                    let fixed = problem(&r.description, retry);
                    r.content = fixed.content;
                    if retry && !r.headers.contains_key("Retry-After") {
                        r.headers.insert("Retry-After".into(), retry_after_header());
                    }
                }
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// States the `Idempotency-Key` rule on every operation that takes the header, from the one
/// place the server checks it (`domain::idempotency`).
pub struct IdempotencyKeyRule;

impl utoipa::Modify for IdempotencyKeyRule {
    fn modify(&self, openapi: &mut OpenApi) {
        use crate::domain::idempotency::{KEY_PATTERN, MAX_KEY_LEN};
        for item in openapi.paths.paths.values_mut() {
            for op in operations(item) {
                for p in op.parameters.iter_mut().flatten() {
                    if p.name.eq_ignore_ascii_case("idempotency-key") {
                        p.schema = Some(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .min_length(Some(1))
                                .max_length(Some(MAX_KEY_LEN))
                                .pattern(Some(KEY_PATTERN))
                                .into(),
                        );
                    }
                }
            }
        }
    }
}

/// States what the derive cannot: a hold's `seats` lists each seat once (422 otherwise).
pub struct UniqueSeats;

impl utoipa::Modify for UniqueSeats {
    fn modify(&self, openapi: &mut OpenApi) {
        use utoipa::openapi::schema::Schema;
        let Some(components) = openapi.components.as_mut() else { return };
        let Some(RefOr::T(Schema::Object(booking))) = components.schemas.get_mut("CreateBooking") else { return };
        if let Some(RefOr::T(Schema::Array(seats))) = booking.properties.get_mut("seats") {
            seats.unique_items = true;
        }
    }
}

/// The document as served. utoipa writes a link's target as `operation_id`; OpenAPI spells it
/// `operationId` (and `operationRef`), without which clients and fuzzers ignore the links.
pub fn document(openapi: &OpenApi) -> serde_json::Value {
    let mut doc = serde_json::to_value(openapi).expect("the document serialises");
    either_or(&mut doc);
    date_time_pattern(&mut doc);
    if let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) {
        for op in paths.values_mut().filter_map(|item| item.as_object_mut()).flat_map(|item| item.values_mut()) {
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else { continue };
            for response in responses.values_mut() {
                let Some(links) = response.get_mut("links").and_then(|l| l.as_object_mut()) else { continue };
                for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
                    for (from, to) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                        ("request_body", "requestBody"),
                    ] {
                        if let Some(v) = link.remove(from) {
                            link.insert(to.to_owned(), v);
                        }
                    }
                }
            }
        }
    }
    doc
}

/// RFC 3339 as the server reads it, years 1 to 9999 (`format` alone is only an annotation in
/// JSON Schema, so an empty string would be "valid").
pub const DATE_TIME_PATTERN: &str =
    r"^(?!0000)[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$";

fn date_time_pattern(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            if m.get("format").and_then(|f| f.as_str()) == Some("date-time") && !m.contains_key("pattern") {
                m.insert("pattern".into(), DATE_TIME_PATTERN.into());
            }
            m.values_mut().for_each(date_time_pattern);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(date_time_pattern),
        _ => {}
    }
}

/// The request rules "exactly one of two fields" and "the field the method needs", as `oneOf`
/// (a null field counts as absent, as the server reads it).
fn either_or(doc: &mut serde_json::Value) {
    use serde_json::json;
    let one_of = |a: &str, a_schema: serde_json::Value, b: &str, b_schema: serde_json::Value| {
        json!([
            {"required": [a], "properties": {a: a_schema, b: {"type": "null"}}},
            {"required": [b], "properties": {b: b_schema, a: {"type": "null"}}},
        ])
    };
    let rules = [
        (
            "CreateBooking",
            one_of(
                "quantity",
                json!({"type": "integer"}),
                "seats",
                json!({"type": "array", "items": {"type": "string"}}),
            ),
        ),
        (
            "CreatePayment",
            json!([
                {"required": ["card_token"], "properties": {"method": {"const": "card"}, "card_token": {"type": "string"}}},
                {"required": ["phone_number"], "properties": {"method": {"const": "mobile_money"}, "phone_number": {"type": "string"}}},
            ]),
        ),
    ];
    for (name, rule) in rules {
        if let Some(schema) = doc.pointer_mut(&format!("/components/schemas/{name}")).and_then(|s| s.as_object_mut()) {
            schema.insert("oneOf".into(), rule);
        }
    }
}
