//! The real `boxoffice` binary as a child process, for tests that kill or signal it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Client;

use crate::helpers::*;

pub struct Server {
    pub child: std::process::Child,
    pub base: String,
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn start_binary(db_url: &str, dir: &Path, name: &str) -> Server {
    start_binary_with(db_url, dir, name, &[])
}

/// `start_binary` with extra environment variables.
pub fn start_binary_with(db_url: &str, dir: &Path, name: &str, env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let log = dir.join(format!("{name}.log"));
    let log_file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_boxoffice"))
        .current_dir(dir) // no stray .env file
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", db_url)
        .env("JWT_SECRET", JWT_SECRET)
        .env("ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("BOXOFFICE_ENV", "development")
        .env("RATE_LIMIT_PER_SEC", "0")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "warn")
        .env("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .expect("start the boxoffice binary");
    Server { child, base: format!("http://127.0.0.1:{port}"), log }
}

pub async fn wait_healthy(client: &Client, server: &mut Server) {
    let start = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{}/healthz", server.base)).send().await
            && r.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "boxoffice exited with {status} before answering /healthz:\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "boxoffice did not answer /healthz within 60 s:\n{}",
            std::fs::read_to_string(&server.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The bootstrap admin's access token from a running binary (its `ADMIN_EMAIL` account).
pub async fn admin_token(client: &Client, base: &str) -> String {
    let login = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    tokens_of(&expect_json(login, 200).await).access
}

/// Creates an event on a running binary as `admin`; `fields` override the sample event's.
pub async fn create_event_on(client: &Client, base: &str, admin: &str, fields: serde_json::Value) -> serde_json::Value {
    let created =
        client.post(format!("{base}/api/v1/events")).bearer_auth(admin).json(&event_body(fields)).send().await.unwrap();
    expect_json(created, 201).await
}

/// Holds `quantity` seats of `event` on a running binary as `token`; expects the `201`.
pub async fn hold_on(client: &Client, base: &str, token: &str, event: &str, quantity: u32) -> serde_json::Value {
    let held = client
        .post(format!("{base}/api/v1/events/{event}/bookings"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "quantity": quantity }))
        .send()
        .await
        .unwrap();
    expect_json(held, 201).await
}
