//! The catalogue: creating, reading, listing, searching, updating and deleting events, and the
//! seat map endpoint.

use std::collections::HashSet;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::helpers::*;

both_backends!(
    create_and_get_events,
    event_validation,
    list_filters,
    list_pagination,
    update_event,
    capacity_conflict_with_default_max_per_booking,
    update_seated_event,
    delete_event,
    seats_endpoint,
);

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(str_of(v)).unwrap_or_else(|e| panic!("{v} is not RFC 3339: {e}")).with_timezone(&Utc)
}

/// Every field of the OpenAPI document's Event, with the right JSON types.
fn assert_event_shape(e: &Value) {
    uuid_of(&e["id"]);
    for f in ["title", "description", "venue", "currency"] {
        assert!(e[f].is_string(), "{f} is not a string in {e}");
    }
    parse_ts(&e["starts_at"]);
    parse_ts(&e["created_at"]);
    for f in ["price_cents", "capacity", "available", "max_per_booking"] {
        assert!(e[f].is_i64(), "{f} is not an integer in {e}");
    }
    assert!(e["seated"].is_boolean(), "seated is not a boolean in {e}");
}

async fn create_and_get_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    // Whole seconds, as sent.
    let starts = DateTime::from_timestamp((Utc::now() + Duration::days(10)).timestamp(), 0).unwrap();

    let body = json!({
        "title": "Jazz Night",
        "description": "Late jazz in the small room",
        "venue": "Blue Room",
        "starts_at": ts(starts),
        "price_cents": 4200,
        "currency": "USD",
        "capacity": 120,
    });
    let ga = expect_json(app.create_event(&admin, &body).await, 201).await;
    assert_event_shape(&ga);
    assert_eq!(ga["title"], "Jazz Night");
    assert_eq!(ga["description"], "Late jazz in the small room");
    assert_eq!(ga["venue"], "Blue Room");
    assert_eq!(parse_ts(&ga["starts_at"]), starts);
    assert_eq!(ga["price_cents"], 4200);
    assert_eq!(ga["currency"], "USD");
    assert_eq!(ga["capacity"], 120);
    assert_eq!(ga["available"], 120);
    assert_eq!(ga["seated"], false);
    assert_eq!(ga["max_per_booking"], 10, "default max_per_booking");
    assert!((Utc::now() - parse_ts(&ga["created_at"])).num_seconds().abs() < 60);

    // GET answers the same event.
    let got = app.event(str_of(&ga["id"])).await;
    assert_eq!(got, ga, "GET differs from the created event (timestamps stored at another precision?)");

    // Small event: max_per_booking defaults to the capacity. Description is optional.
    let small =
        expect_json(app.create_event(&admin, &event_body(json!({"capacity": 4, "description": null}))).await, 201)
            .await;
    assert_event_shape(&small);
    assert_eq!(small["max_per_booking"], 4);
    let explicit =
        expect_json(app.create_event(&admin, &event_body(json!({"capacity": 50, "max_per_booking": 3}))).await, 201)
            .await;
    assert_eq!(explicit["max_per_booking"], 3);

    // Seated: capacity is the seat count.
    let map = json!({"sections": [
        {"name": "Stalls", "rows": [{"label": "A", "seats": 10}, {"label": "B", "seats": 12}]},
        {"name": "Circle", "rows": [{"label": "A", "seats": 5}]},
    ]});
    let seated = expect_json(app.create_event(&admin, &event_body(json!({"seat_map": map}))).await, 201).await;
    assert_event_shape(&seated);
    assert_eq!(seated["seated"], true);
    assert_eq!(seated["capacity"], 27);
    assert_eq!(seated["available"], 27);
    assert_eq!(seated["max_per_booking"], 10);
    assert_eq!(app.event(str_of(&seated["id"])).await, seated);

    let tiny = app.create_seated_event(1, 3).await;
    assert_eq!(tiny["capacity"], 3);
    assert_eq!(tiny["max_per_booking"], 3);

    // Unknown id.
    let nobody = uuid::Uuid::new_v4();
    assert_problem(app.get(&format!("/events/{nobody}"), None).await, 404, "not_found").await;
}

async fn event_validation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let map = json!({"sections": [{"name": "S", "rows": [{"label": "A", "seats": 4}]}]});

    let cases: Vec<(&str, Value, Option<&str>)> = vec![
        ("both capacity and seat_map", event_body(json!({"capacity": 4, "seat_map": map})), None),
        ("neither capacity nor seat_map", event_body(json!({})), None),
        ("bad currency", event_body(json!({"capacity": 10, "currency": "EURO"})), Some("currency")),
        ("numeric currency", event_body(json!({"capacity": 10, "currency": "123"})), Some("currency")),
        (
            "max_per_booking above capacity",
            event_body(json!({"capacity": 5, "max_per_booking": 6})),
            Some("max_per_booking"),
        ),
        (
            "max_per_booking above seat count",
            event_body(json!({"seat_map": map, "max_per_booking": 5})),
            Some("max_per_booking"),
        ),
        ("max_per_booking zero", event_body(json!({"capacity": 5, "max_per_booking": 0})), Some("max_per_booking")),
        ("capacity zero", event_body(json!({"capacity": 0})), Some("capacity")),
        ("negative capacity", event_body(json!({"capacity": -3})), Some("capacity")),
        ("negative price", event_body(json!({"capacity": 5, "price_cents": -1})), Some("price_cents")),
        ("missing title", event_body(json!({"capacity": 5, "title": null})), Some("title")),
        ("blank title", event_body(json!({"capacity": 5, "title": "   "})), Some("title")),
        ("missing venue", event_body(json!({"capacity": 5, "venue": null})), Some("venue")),
        ("missing starts_at", event_body(json!({"capacity": 5, "starts_at": null})), Some("starts_at")),
        ("empty seat map", event_body(json!({"seat_map": {"sections": []}})), Some("seat_map")),
        (
            "row without seats",
            event_body(json!({"seat_map": {"sections": [{"name": "S", "rows": [{"label": "A", "seats": 0}]}]}})),
            Some("seat_map"),
        ),
    ];
    for (what, body, field) in cases {
        let resp = app.create_event(&admin, &body).await;
        let status = resp.status().as_u16();
        let problem = if status == 422 {
            assert_problem(resp, 422, "validation_failed").await
        } else {
            panic!("{what}: expected 422, got {status}: {}", resp.text().await.unwrap_or_default());
        };
        let errors = problem["errors"].as_object().unwrap_or_else(|| panic!("{what}: no errors map in {problem}"));
        assert!(!errors.is_empty(), "{what}: empty errors map");
        if let Some(f) = field {
            assert!(errors.contains_key(f), "{what}: errors has no {f}: {problem}");
        }
    }

    let list = expect_json(app.get("/events", None).await, 200).await;
    assert_eq!(list["items"], json!([]), "a refused event was created");
}

async fn list_filters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let user = app.user_token().await;
    let base = Utc::now() + Duration::days(5);
    let day = |d: i64| base + Duration::days(d);

    let mk =
        |title: &'static str, description: &'static str, venue: &'static str, when: DateTime<Utc>, capacity: i64| {
            let app = &app;
            let admin = admin.clone();
            async move {
                let body = json!({"title": title, "description": description, "venue": venue, "starts_at": ts(when),
                "price_cents": 1000, "currency": "EUR", "capacity": capacity});
                let e = expect_json(app.create_event(&admin, &body).await, 201).await;
                str_of(&e["id"]).to_owned()
            }
        };
    let jazz = mk("Jazz Night", "Smooth tunes in the Blue Room", "Metro Arena", day(1), 50).await;
    let rock = mk("ROCK Festival", "Loud guitars all night long", "Metro Arena Annex", day(2), 50).await;
    let talk =
        mk("Tech Talk: AI", "Machine learning and jazz-inspired live coding", "Innovation Center", day(3), 50).await;
    let opera = mk("Opera Gala", "Arias by candlelight", "metro arena", day(4), 1).await;
    let poetry = mk("Poetry 100%", "Words_and_more", "Library", day(5), 50).await;

    let ids = |list: &Value| -> HashSet<String> {
        list["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items in {list}"))
            .iter()
            .map(|e| str_of(&e["id"]).to_owned())
            .collect()
    };
    let set = |v: &[&String]| -> HashSet<String> { v.iter().map(|s| (*s).clone()).collect() };
    let list = |query: Vec<(&'static str, String)>| {
        let app = &app;
        async move { expect_json(app.client.get(app.api("/events")).query(&query).send().await.unwrap(), 200).await }
    };

    let all = list(vec![]).await;
    assert_eq!(ids(&all).len(), 5);
    assert!(all["next_cursor"].is_null(), "one page only: {all}");
    for e in all["items"].as_array().unwrap() {
        assert_event_shape(e);
    }

    // Text search: case-insensitive substring of title or description.
    assert_eq!(ids(&list(vec![("q", "jazz".into())]).await), set(&[&jazz, &talk]));
    assert_eq!(ids(&list(vec![("q", "JAZZ".into())]).await), set(&[&jazz, &talk]));
    assert_eq!(ids(&list(vec![("q", "rock".into())]).await), set(&[&rock]));
    assert_eq!(ids(&list(vec![("q", "azz".into())]).await), set(&[&jazz, &talk]));
    assert_eq!(ids(&list(vec![("q", "candlelight".into())]).await), set(&[&opera]));
    // Several words: each must appear, in any order, in title or description.
    assert_eq!(ids(&list(vec![("q", "blue jazz".into())]).await), set(&[&jazz]));
    assert_eq!(ids(&list(vec![("q", "Night GUITARS".into())]).await), set(&[&rock]));
    assert_eq!(ids(&list(vec![("q", "jazz guitars".into())]).await), set(&[]));
    // LIKE wildcards match literally.
    assert_eq!(ids(&list(vec![("q", "100%".into())]).await), set(&[&poetry]));
    assert_eq!(ids(&list(vec![("q", "%".into())]).await), set(&[&poetry]));
    assert_eq!(ids(&list(vec![("q", "words_and".into())]).await), set(&[&poetry]));
    assert_eq!(ids(&list(vec![("q", "_".into())]).await), set(&[&poetry]));

    // Venue: case-insensitive, exact.
    assert_eq!(ids(&list(vec![("venue", "METRO ARENA".into())]).await), set(&[&jazz, &opera]));
    assert_eq!(ids(&list(vec![("venue", "Metro".into())]).await), set(&[]));

    // Date range on starts_at (inclusive bounds).
    assert_eq!(ids(&list(vec![("from", ts(day(2))), ("to", ts(day(4)))]).await), set(&[&rock, &talk, &opera]));
    assert_eq!(ids(&list(vec![("from", ts(day(4) + Duration::hours(1)))]).await), set(&[&poetry]));
    assert_eq!(ids(&list(vec![("to", ts(day(1) + Duration::hours(1)))]).await), set(&[&jazz]));

    // Filters combine.
    assert_eq!(ids(&list(vec![("venue", "metro arena".into()), ("q", "gala".into())]).await), set(&[&opera]));

    // available=true leaves out a sold-out event.
    app.hold_ok(&user, &opera, &json!({"quantity": 1})).await;
    assert_eq!(app.available(&opera).await, 0);
    assert_eq!(ids(&list(vec![("available", "true".into())]).await), set(&[&jazz, &rock, &talk, &poetry]));
    assert_eq!(ids(&list(vec![]).await).len(), 5, "without the filter the sold-out event is listed");
    let listed = list(vec![("venue", "metro arena".into())]).await;
    let opera_item = listed["items"].as_array().unwrap().iter().find(|e| e["id"] == opera.as_str()).unwrap().clone();
    assert_eq!(opera_item["available"], 0, "the list shows current availability");

    // Bad parameters.
    for query in [
        vec![("limit", "0")],
        vec![("limit", "101")],
        vec![("limit", "ten")],
        vec![("from", "yesterday")],
        vec![("cursor", "@@not-a-cursor@@")],
    ] {
        let resp = app.client.get(app.api("/events")).query(&query).send().await.unwrap();
        let status = resp.status().as_u16();
        assert!(status == 400 || status == 422, "{query:?}: expected 400 or 422, got {status}");
        problem_of(resp, status).await;
    }
    let ok = list(vec![("limit", "100".into())]).await;
    assert_eq!(ids(&ok).len(), 5);
    let one = list(vec![("limit", "1".into())]).await;
    assert_eq!(ids(&one).len(), 1);
}

async fn list_pagination(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let base = Utc::now() + Duration::days(3);
    let mut created = HashSet::new();
    // 21 events; some share a start time so that the cursor must break ties.
    for i in 0..21 {
        let when = base + Duration::hours((i / 3) as i64);
        let e = expect_json(
            app.create_event(&admin, &event_body(json!({"capacity": 5, "starts_at": ts(when)}))).await,
            201,
        )
        .await;
        created.insert(str_of(&e["id"]).to_owned());
    }

    // Default limit is 20.
    let first = expect_json(app.get("/events", None).await, 200).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 20);
    assert!(first["next_cursor"].is_string(), "more pages remain: {}", first["next_cursor"]);

    for limit in [8usize, 7, 1] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let page = expect_json(app.client.get(app.api("/events")).query(&query).send().await.unwrap(), 200).await;
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= limit, "page longer than limit {limit}");
            seen.extend(items.iter().map(|e| str_of(&e["id"]).to_owned()));
            pages += 1;
            assert!(pages <= 21 / limit + 2, "pagination with limit {limit} does not end");
            match &page["next_cursor"] {
                Value::Null => break,
                Value::String(c) => cursor = Some(c.clone()),
                other => panic!("next_cursor is neither null nor a string: {other}"),
            }
        }
        let unique: HashSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "limit {limit}: an event appeared twice");
        assert_eq!(unique, created, "limit {limit}: pages do not cover every event");
    }
}

async fn update_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let user = app.user_token().await;
    let event =
        expect_json(app.create_event(&admin, &event_body(json!({"capacity": 10, "max_per_booking": 2}))).await, 201)
            .await;
    let id = str_of(&event["id"]);
    let path = format!("/events/{id}");

    let updated = expect_json(app.patch(&path, Some(&admin), &json!({"title": "New title"})).await, 200).await;
    assert_event_shape(&updated);
    assert_eq!(updated["title"], "New title");
    for f in [
        "id",
        "description",
        "venue",
        "starts_at",
        "price_cents",
        "currency",
        "capacity",
        "available",
        "seated",
        "max_per_booking",
        "created_at",
    ] {
        assert_eq!(updated[f], event[f], "PATCH of the title changed {f} (timestamps stored at another precision?)");
    }
    assert_eq!(app.event(id).await["title"], "New title");

    let bigger = expect_json(app.patch(&path, Some(&admin), &json!({"capacity": 20})).await, 200).await;
    assert_eq!(bigger["capacity"], 20);
    assert_eq!(bigger["available"], 20);
    assert_eq!(bigger["title"], "New title");
    assert_eq!(app.event(id).await["capacity"], 20);

    // Hold 5 seats: capacity may not drop below 5.
    for q in [2, 2, 1] {
        app.hold_ok(&user, id, &json!({"quantity": q})).await;
    }
    let refused =
        assert_problem(app.patch(&path, Some(&admin), &json!({"capacity": 4})).await, 409, "capacity_conflict").await;
    assert!(refused["detail"].is_string());
    let event_now = app.event(id).await;
    assert_eq!(event_now["capacity"], 20, "refused change applied");
    assert_eq!(event_now["available"], 15);
    assert_eq!(app.counters(id).await, (20, 5, 5));

    let exact = expect_json(app.patch(&path, Some(&admin), &json!({"capacity": 5})).await, 200).await;
    assert_eq!(exact["capacity"], 5);
    assert_eq!(exact["available"], 0);
    assert_eq!(exact["max_per_booking"], 2);
    assert_eq!(app.counters(id).await, (5, 5, 5));
    assert_problem(app.hold(&user, id, &json!({"quantity": 1}), None).await, 409, "sold_out").await;

    // Other fields.
    let moved =
        expect_json(app.patch(&path, Some(&admin), &json!({"venue": "Other Hall", "price_cents": 999})).await, 200)
            .await;
    assert_eq!(moved["venue"], "Other Hall");
    assert_eq!(moved["price_cents"], 999);
    assert_eq!(moved["capacity"], 5);

    // Unknown event, invalid values.
    let nobody = uuid::Uuid::new_v4();
    assert_problem(
        app.patch(&format!("/events/{nobody}"), Some(&admin), &json!({"title": "x"})).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(app.patch(&path, Some(&admin), &json!({"currency": "EURO"})).await, 422, "validation_failed").await;
    assert_problem(app.patch(&path, Some(&admin), &json!({"capacity": 0})).await, 422, "validation_failed").await;
    assert_problem(app.patch(&path, Some(&admin), &json!({"max_per_booking": 6})).await, 409, "exceeds_capacity").await;
    assert_eq!(app.event(id).await["venue"], "Other Hall");
}

/// An event created with the default `max_per_booking` (10): lowering the capacity below the
/// seats held is the capacity conflict the contract names, whatever the default per-booking limit.
async fn capacity_conflict_with_default_max_per_booking(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let user = app.user_token().await;
    let event = app.create_ga_event(10).await;
    assert_eq!(event["max_per_booking"], 10);
    let id = str_of(&event["id"]);
    let path = format!("/events/{id}");
    app.hold_ok(&user, id, &json!({"quantity": 5})).await;

    assert_problem(app.patch(&path, Some(&admin), &json!({"capacity": 4})).await, 409, "capacity_conflict").await;

    // Down to exactly the seats held: allowed; the default limit follows ("never above capacity").
    let resp = app.patch(&path, Some(&admin), &json!({"capacity": 5})).await;
    let updated = expect_json(resp, 200).await;
    assert_eq!(updated["capacity"], 5);
    assert_eq!(updated["available"], 0);
    assert!(updated["max_per_booking"].as_i64().unwrap() <= 5, "max_per_booking above capacity: {updated}");
}

async fn update_seated_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let event = app.create_seated_event(2, 5).await;
    let path = format!("/events/{}", str_of(&event["id"]));

    let renamed = expect_json(app.patch(&path, Some(&admin), &json!({"title": "Seated, renamed"})).await, 200).await;
    assert_eq!(renamed["title"], "Seated, renamed");
    assert_eq!(renamed["capacity"], 10);
    assert_eq!(renamed["seated"], true);

    // A seated event's capacity is its seat count, and its map is fixed.
    assert_problem(app.patch(&path, Some(&admin), &json!({"capacity": 20})).await, 409, "seated_event").await;
    let map = seat_map(3, 5);
    assert_problem(app.patch(&path, Some(&admin), &json!({"seat_map": map})).await, 422, "validation_failed").await;
    assert_eq!(app.event(str_of(&event["id"])).await["capacity"], 10);
}

async fn delete_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let user = app.user_token().await;

    let empty = app.create_ga_event(10).await;
    let id = str_of(&empty["id"]);
    let resp = app.delete(&format!("/events/{id}"), Some(&admin)).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_problem(app.get(&format!("/events/{id}"), None).await, 404, "not_found").await;
    assert_problem(app.delete(&format!("/events/{id}"), Some(&admin)).await, 404, "not_found").await;
    assert_problem(app.hold(&user, id, &json!({"quantity": 1}), None).await, 404, "not_found").await;
    let list = expect_json(app.get("/events", None).await, 200).await;
    assert_eq!(list["items"], json!([]), "a deleted event is still listed");

    let busy = app.create_ga_event(10).await;
    let busy_id = str_of(&busy["id"]);
    let booking = app.hold_ok(&user, busy_id, &json!({"quantity": 2})).await;
    assert_problem(app.delete(&format!("/events/{busy_id}"), Some(&admin)).await, 409, "event_has_bookings").await;
    assert_eq!(app.event(busy_id).await["available"], 8);

    // Once the booking is cancelled the event may go.
    expect_json(app.cancel(&user, str_of(&booking["id"])).await, 200).await;
    let resp = app.delete(&format!("/events/{busy_id}"), Some(&admin)).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_problem(app.get(&format!("/events/{busy_id}"), None).await, 404, "not_found").await;
}

async fn seats_endpoint(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user_token().await;

    let ga = app.create_ga_event(10).await;
    let ga_seats = expect_json(app.get(&format!("/events/{}/seats", str_of(&ga["id"])), None).await, 200).await;
    assert_eq!(ga_seats, json!({"seated": false, "sections": []}));

    let seated = app.create_seated_event(2, 4).await;
    let id = str_of(&seated["id"]);
    let map = expect_json(app.get(&format!("/events/{id}/seats"), None).await, 200).await;
    assert_eq!(map["seated"], true);
    let sections = map["sections"].as_array().unwrap();
    assert_eq!(sections.len(), 1);
    assert_eq!(sections[0]["name"], "Stalls");
    let rows = sections[0]["rows"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["label"].clone()).collect::<Vec<_>>(), vec![json!("A"), json!("B")]);
    for row in rows {
        let label = str_of(&row["label"]);
        let seats = row["seats"].as_array().unwrap();
        assert_eq!(seats.len(), 4);
        for (i, s) in seats.iter().enumerate() {
            assert_eq!(s["id"], format!("Stalls-{label}-{}", i + 1));
            assert_eq!(s["number"], i as i64 + 1);
            assert_eq!(s["status"], "free");
        }
    }

    let booking = app.hold_ok(&user, id, &json!({"seats": ["Stalls-A-2", "Stalls-B-4"]})).await;
    let statuses = |map: &Value| -> Vec<(String, String)> {
        let mut out = Vec::new();
        for section in map["sections"].as_array().unwrap() {
            for row in section["rows"].as_array().unwrap() {
                for s in row["seats"].as_array().unwrap() {
                    out.push((str_of(&s["id"]).to_owned(), str_of(&s["status"]).to_owned()));
                }
            }
        }
        out
    };
    let after = expect_json(app.get(&format!("/events/{id}/seats"), None).await, 200).await;
    for (seat, status) in statuses(&after) {
        let expected = if seat == "Stalls-A-2" || seat == "Stalls-B-4" { "held" } else { "free" };
        assert_eq!(status, expected, "seat {seat}");
    }

    expect_json(app.cancel(&user, str_of(&booking["id"])).await, 200).await;
    let freed = expect_json(app.get(&format!("/events/{id}/seats"), None).await, 200).await;
    assert!(statuses(&freed).iter().all(|(_, s)| s == "free"), "cancelled seats are free again: {freed}");

    let nobody = uuid::Uuid::new_v4();
    assert_problem(app.get(&format!("/events/{nobody}/seats"), None).await, 404, "not_found").await;
}
