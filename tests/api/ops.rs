//! Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document.

use serde_json::{Value, json};

use crate::helpers::*;

both_backends!(health_and_metrics, openapi_describes_every_route);

async fn health_and_metrics(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    let status = ready.status().as_u16();
    assert_eq!(status, 200, "readyz: {}", ready.text().await.unwrap_or_default());

    let user = app.user_token().await;
    let event = app.create_ga_event(5).await;
    app.hold_ok(&user, str_of(&event["id"]), &json!({"quantity": 1})).await;

    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let ct = metrics.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert!(ct.starts_with("text/plain"), "metrics content-type {ct:?}");
    let text = metrics.text().await.unwrap();
    for name in ["boxoffice_http_requests_total", "boxoffice_journal_batch_size"] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
}

/// `/api/v1/events/{event_id}` and `/api/v1/events/{id}` are the same route.
fn normalise(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

async fn openapi_describes_every_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app.client.get(app.url("/api/openapi.json")).send().await.unwrap();
    let doc = expect_json(resp, 200).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')), "not an OpenAPI 3 document");
    let paths = doc["paths"].as_object().unwrap_or_else(|| panic!("no paths in the document"));
    let described: std::collections::HashMap<String, &Value> = paths.iter().map(|(p, v)| (normalise(p), v)).collect();

    let routes: &[(&str, &[&str])] = &[
        ("/api/v1/auth/register", &["post"]),
        ("/api/v1/auth/login", &["post"]),
        ("/api/v1/auth/refresh", &["post"]),
        ("/api/v1/auth/logout", &["post"]),
        ("/api/v1/auth/me", &["get"]),
        ("/api/v1/events", &["get", "post"]),
        ("/api/v1/events/{id}", &["get", "patch", "delete"]),
        ("/api/v1/events/{id}/seats", &["get"]),
        ("/api/v1/events/{id}/bookings", &["post"]),
        ("/api/v1/bookings", &["get"]),
        ("/api/v1/bookings/{id}", &["get"]),
        ("/api/v1/bookings/{id}/cancel", &["post"]),
        ("/api/v1/bookings/{id}/payments", &["post"]),
        ("/api/v1/payments/{id}", &["get"]),
        ("/api/v1/payments/webhook", &["post"]),
        ("/api/v1/bookings/{id}/receipt.pdf", &["get"]),
        ("/api/v1/events/{id}/check-in", &["post"]),
        ("/api/v1/events/{id}/stream", &["get"]),
        ("/api/v1/bookings/{id}/stream", &["get"]),
    ];
    let mut missing = Vec::new();
    for (path, methods) in routes {
        match described.get(&normalise(path)) {
            None => missing.push(path.to_string()),
            Some(item) => {
                for m in *methods {
                    if item.get(*m).is_none() {
                        missing.push(format!("{} {path}", m.to_uppercase()));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the OpenAPI document lacks {missing:?}; it has {:?}",
        paths.keys().collect::<Vec<_>>()
    );
}
