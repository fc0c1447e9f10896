//! What the deployment relies on, against the real binary: every metric exported at zero with its
//! help text before any traffic, open event streams counted, `config --list`, and the image's
//! `healthcheck` command.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::process::*;

/// Every metric a dashboard panel or an alert of deploy/ reads.
const METRICS: &[&str] = &[
    "boxoffice_event_actors",
    "boxoffice_actor_restarts_total",
    "boxoffice_claim_duration_seconds",
    "boxoffice_claims_total",
    "boxoffice_journal_batch_size",
    "boxoffice_journal_commit_duration_seconds",
    "boxoffice_holds_expired_total",
    "boxoffice_rate_limited_total",
    "boxoffice_sse_streams",
    "boxoffice_payment_sagas",
    "boxoffice_payments_total",
    "boxoffice_payment_gateway_calls_total",
    "boxoffice_payment_circuit_open",
    "boxoffice_outbox_published_total",
    "boxoffice_outbox_backlog",
    "boxoffice_notifications_total",
    "boxoffice_broker_up",
    "boxoffice_dead_letters",
    "boxoffice_db_pool_connections",
    "boxoffice_db_pool_max_connections",
    "boxoffice_store_up",
    "boxoffice_ready",
];

fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("deploy.db").display())
}

async fn metrics(base: &str) -> String {
    http_client().get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap()
}

/// The value of an unlabelled metric in Prometheus text.
fn value_of(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn a_fresh_process_exports_every_metric_at_zero_with_its_help() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_binary(&sqlite_url(dir.path()), dir.path(), "fresh");
    wait_healthy(&http_client(), &mut server).await;
    let text = metrics(&server.base).await;
    for name in METRICS {
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no help text:\n{text}");
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} has no type:\n{text}");
        let sampled = text.lines().any(|l| !l.starts_with('#') && l.starts_with(name));
        assert!(sampled, "{name} has no sample before any traffic:\n{text}");
    }
    // Nothing is exported without its help.
    for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let name = line.split(' ').next().unwrap();
        assert!(text.contains(&format!("# HELP {name} ")), "{name} is exported without help text");
    }
}

#[tokio::test]
async fn open_event_streams_are_counted_until_the_client_goes() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_binary(&sqlite_url(dir.path()), dir.path(), "streams");
    let client = http_client();
    wait_healthy(&client, &mut server).await;
    let admin = admin_token(&client, &server.base).await;
    let event: Value = create_event_on(&client, &server.base, &admin, json!({"capacity": 10})).await;
    let stream =
        client.get(format!("{}/api/v1/events/{}/stream", server.base, str_of(&event["id"]))).send().await.unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let streams = |want: f64| {
        let base = server.base.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let got = value_of(&metrics(&base).await, "boxoffice_sse_streams");
                if got == Some(want) {
                    return;
                }
                assert!(Instant::now() < deadline, "boxoffice_sse_streams stayed {got:?}, expected {want}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    streams(1.0).await;
    drop(stream);
    streams(0.0).await;
}

#[test]
fn config_list_names_every_variable_with_what_production_requires() {
    let out = Command::new(env!("CARGO_BIN_EXE_boxoffice")).args(["config", "--list", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vars: Vec<Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let get = |n: &str| vars.iter().find(|v| v["name"] == n).unwrap_or_else(|| panic!("{n} not listed"));
    assert_eq!(get("JWT_SECRET")["required"], "production");
    assert_eq!(get("JWT_SECRET")["secret"], true);
    assert_eq!(get("PAYMENT_WEBHOOK_SECRET")["required"], "production");
    assert_eq!(get("AMQP_URL")["required"], "split_roles");
    assert_eq!(get("HOLD_TTL_SECS")["default"], "600");
    assert_eq!(get("RUST_LOG")["required"], "no");
    // The human table has one line per variable too.
    let table = Command::new(env!("CARGO_BIN_EXE_boxoffice")).args(["config", "--list"]).output().unwrap();
    assert_eq!(String::from_utf8(table.stdout).unwrap().lines().count(), vars.len());
}

#[tokio::test]
async fn healthcheck_exits_zero_only_while_the_server_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_binary(&sqlite_url(dir.path()), dir.path(), "health");
    wait_healthy(&http_client(), &mut server).await;
    let bind = server.base.trim_start_matches("http://").to_owned();
    let check = || {
        Command::new(env!("CARGO_BIN_EXE_boxoffice"))
            .arg("healthcheck")
            .current_dir(dir.path())
            .env("BIND_ADDR", &bind)
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
            .status
    };
    assert!(check().success());
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    assert!(!check().success(), "healthcheck passed with the server gone");
}
