//! The seed's sample events, loaded only on request (`boxoffice seed` or `--seed`).

use chrono::Duration;

use crate::persistence::{EventFilter, EventRow, Store};

const SAMPLES: &[(&str, &str, &str, i64, i64, i64)] = &[
    (
        "Tech Talk: AI",
        "Where machine learning is going next, with live demos and Q&A.",
        "Tech Innovation Center",
        95,
        2500,
        14,
    ),
    ("Rock Concert", "A night of loud guitars and big choruses.", "Metro Arena", 197, 6500, 30),
    ("Classical Music", "An evening of chamber music: Mozart, Brahms and Dvořák.", "Symphony Hall", 147, 4500, 45),
];

/// Creates each sample event that does not exist yet (matched by title and venue). Returns how
/// many were created.
pub async fn load(store: &Store) -> anyhow::Result<usize> {
    let mut created = 0;
    for (title, description, venue, capacity, price, days) in SAMPLES {
        let existing =
            store.list_events(&EventFilter { venue: Some((*venue).into()), limit: 100, ..Default::default() }).await?;
        if existing.iter().any(|e| e.title == *title) {
            continue;
        }
        let now = crate::domain::now();
        let starts_at =
            (now + Duration::days(*days)).date_naive().and_hms_opt(19, 30, 0).expect("valid time").and_utc();
        store
            .insert_event(
                &EventRow {
                    description: (*description).into(),
                    starts_at,
                    currency: "USD".into(),
                    ..EventRow::general_admission(title, venue, *capacity, *price)
                },
                None,
            )
            .await?;
        created += 1;
    }
    Ok(created)
}
