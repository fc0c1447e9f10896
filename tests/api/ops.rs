//! Operations endpoints: liveness, readiness, Prometheus metrics, the OpenAPI document.

use serde_json::json;

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

/// The served document against the router's real route table (`boxoffice::http::routes()`,
/// read from axum's routers, not written by hand): every route is described, nothing described
/// is missing from the router, every error response is a problem document, and 429 and 503
/// say when to retry.
async fn openapi_describes_every_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app.client.get(app.url("/api/openapi.json")).send().await.unwrap();
    let doc = expect_json(resp, 200).await;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')), "not an OpenAPI 3 document");
    let paths = doc["paths"].as_object().unwrap_or_else(|| panic!("no paths in the document"));

    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    let mut described = std::collections::BTreeSet::new();
    for (path, item) in paths {
        for m in METHODS {
            if item.get(m).is_some() {
                described.insert((m.to_uppercase(), normalise(path)));
            }
        }
    }
    let served: std::collections::BTreeSet<(String, String)> = boxoffice::http::routes()
        .into_iter()
        .filter(|(_, p)| p != "/api/openapi.json")
        .map(|(m, p)| (m, normalise(&p)))
        .collect();
    assert!(
        served.len() >= 20 && served.contains(&("POST".to_owned(), "/api/v1/events/{}/bookings".to_owned())),
        "the router's route table could not be read: {served:?}"
    );
    let undocumented: Vec<_> = served.difference(&described).collect();
    let unserved: Vec<_> = described.difference(&served).collect();
    assert!(undocumented.is_empty(), "routes the OpenAPI document does not describe: {undocumented:?}");
    assert!(unserved.is_empty(), "the document describes routes the router does not serve: {unserved:?}");

    let mut wrong = Vec::new();
    for (path, item) in paths {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let name = format!("{} {path}", m.to_uppercase());
            let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{name}: no responses"));
            for (status, r) in responses {
                let code: u16 = status.parse().unwrap_or(0);
                if code < 400 {
                    continue;
                }
                let content = r["content"].as_object().map(|c| c.keys().cloned().collect::<Vec<_>>());
                if content != Some(vec!["application/problem+json".to_owned()]) {
                    wrong.push(format!("{name} {status}: content {content:?}"));
                }
                if r["content"]["application/problem+json"]["schema"]["$ref"] != "#/components/schemas/Problem" {
                    wrong.push(format!("{name} {status}: not the Problem schema"));
                }
                if matches!(code, 429 | 503) && r["headers"].get("Retry-After").is_none() {
                    wrong.push(format!("{name} {status}: no Retry-After header"));
                }
            }
            let secured = op.get("security").is_some_and(|s| s.as_array().is_some_and(|a| !a.is_empty()));
            if secured && responses.get("401").is_none() {
                wrong.push(format!("{name}: needs a token but declares no 401"));
            }
            if op.get("requestBody").is_some() && !path.ends_with("/webhook") {
                for status in ["400", "413", "415", "422"] {
                    if responses.get(status).is_none() {
                        wrong.push(format!("{name}: takes a JSON body but declares no {status}"));
                    }
                }
            }
            if path.starts_with("/api/v1/") && responses.get("429").is_none() {
                wrong.push(format!("{name}: rate limited but declares no 429"));
            }
        }
    }
    assert!(wrong.is_empty(), "the document misdescribes errors:\n{}", wrong.join("\n"));

    // Rules stated in the schema come from the one place the server checks them.
    let hold = &paths["/api/v1/events/{id}/bookings"]["post"]["parameters"];
    let key = hold.as_array().unwrap().iter().find(|p| p["name"] == "Idempotency-Key").expect("Idempotency-Key");
    assert_eq!(key["schema"]["pattern"], boxoffice::domain::idempotency::KEY_PATTERN);
    assert_eq!(key["schema"]["maxLength"], boxoffice::domain::idempotency::MAX_KEY_LEN);
    let register = &doc["components"]["schemas"]["Registration"]["properties"];
    assert_eq!(register["email"]["pattern"], boxoffice::domain::user::EMAIL_PATTERN);
    assert_eq!(register["email"]["maxLength"], boxoffice::domain::user::Email::MAX_CHARS);
    assert_eq!(register["password"]["maxLength"], boxoffice::domain::user::Password::MAX_CHARS);
    let list = paths["/api/v1/events"]["get"]["parameters"].as_array().unwrap();
    let limit = list.iter().find(|p| p["name"] == "limit").unwrap();
    assert_eq!((limit["schema"]["minimum"].as_i64(), limit["schema"]["maximum"].as_i64()), (Some(1), Some(100)));
}
