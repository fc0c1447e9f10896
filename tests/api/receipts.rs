//! Receipts in object storage: rendered and stored once when the booking is confirmed, served from
//! storage (with S3 a redirect to a presigned URL), the same bytes at every download and in the
//! e-mail, rendered again when the object is missing, and never in the way of a confirmation when
//! storage is down. S3 is a real moto server (installed by scripts/moto.sh), which each test starts
//! on its own port and stops and starts again itself; the local folder is the default storage.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use boxoffice::config::Config;
use futures::TryStreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore as _, ObjectStoreExt as _};
use serde_json::json;

use crate::helpers::*;
use crate::pdf::pdf_text;

const WAIT: Duration = Duration::from_secs(30);

both_backends!(s3_stores_once_and_serves_the_same_bytes, a_local_folder_stores_once_and_serves_the_same_bytes);
postgres_only!(s3_down_at_confirmation_delays_only_the_stored_copy);

// ---- the S3 server --------------------------------------------------------------------------

/// moto's server binary, installed once per test process by the project's script.
fn moto_server() -> &'static Path {
    static SERVER: OnceLock<PathBuf> = OnceLock::new();
    SERVER.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/moto.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("install")
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(out.status.success(), "scripts/moto.sh install failed (python3 -m venv and pip install moto[server])");
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(path.is_file(), "scripts/moto.sh printed no server: {}", path.display());
        path
    })
}

/// A moto S3 server of this test on 127.0.0.1 (in memory: a restart forgets every bucket).
struct Moto {
    port: u16,
    child: Option<Child>,
    http: reqwest::Client,
}

impl Moto {
    async fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port();
        let mut moto = Moto { port, child: None, http: http_client() };
        moto.run().await;
        moto
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port and waits until it answers.
    async fn run(&mut self) {
        let server = tokio::task::spawn_blocking(moto_server).await.expect("moto install");
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto_server: {e}"));
        self.child = Some(child);
        let url = format!("{}/", self.endpoint());
        eventually(WAIT, "moto to answer", || async { self.http.get(&url).send().await.ok().map(|_| ()) }).await;
    }

    /// Stops the server; its port refuses connections until `run`.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn create_bucket(&self, bucket: &str) {
        let resp = self.http.put(format!("{}/{bucket}", self.endpoint())).send().await.expect("create bucket");
        assert!(resp.status().is_success(), "create bucket: {}", resp.status());
    }

    /// A signed client of the bucket (moto refuses anonymous reads of objects).
    fn client(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .expect("an S3 client of moto")
    }

    /// Every key in the bucket.
    async fn keys(&self, bucket: &str) -> Vec<String> {
        let listed: Vec<ObjectMeta> = self.client(bucket).list(None).try_collect().await.expect("list bucket");
        listed.into_iter().map(|m| m.location.to_string()).collect()
    }

    async fn object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let got = self.client(bucket).get(&ObjectPath::from(key)).await.unwrap_or_else(|e| panic!("get {key}: {e}"));
        got.bytes().await.expect("object bytes").to_vec()
    }

    async fn delete(&self, bucket: &str, key: &str) {
        self.client(bucket).delete(&ObjectPath::from(key)).await.unwrap_or_else(|e| panic!("delete {key}: {e}"));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

fn use_s3(c: &mut Config, moto: &Moto, bucket: &str) {
    c.s3_bucket = Some(bucket.to_owned());
    c.s3_endpoint = Some(moto.endpoint());
    c.s3_region = Some("us-east-1".into());
    c.aws_access_key_id = Some("testing".into());
    c.aws_secret_access_key = Some("testing".into());
    c.receipt_storage_timeout_ms = 2000;
    c.receipt_retry_ms = 300;
}

fn unique_bucket() -> String {
    format!("receipts-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

// ---- bookings and downloads ---------------------------------------------------------------------

async fn app_for(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        if backend == Backend::Postgres {
            use_broker(c);
        }
        tweak(c);
    })
    .await
}

/// A booking of a new "Stored Night" event, paid for and confirmed: (owner, event id, booking id).
async fn confirmed_booking(app: &TestApp) -> (TestUser, String, String) {
    let admin = app.admin_token().await;
    let body = event_body(json!({"capacity": 5, "price_cents": 4200, "currency": "EUR", "title": "Stored Night"}));
    let event = expect_json(app.create_event(&admin, &body).await, 201).await;
    let event_id = str_of(&event["id"]).to_owned();
    let user = app.mint_users(1).await.remove(0);
    let booking = app.hold_ok(&user.token, &event_id, &json!({"quantity": 2})).await;
    let booking_id = str_of(&booking["id"]).to_owned();
    app.pay_ok(&user.token, &booking_id, "tok_ok").await;
    app.booking_becomes(&user.token, &booking_id, "confirmed", WAIT).await;
    (user, event_id, booking_id)
}

/// The receipt route's raw answer (redirects not followed).
async fn receipt_response(app: &TestApp, token: &str, booking_id: &str) -> reqwest::Response {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    client
        .get(app.api(&format!("/bookings/{booking_id}/receipt.pdf")))
        .bearer_auth(token)
        .send()
        .await
        .expect("receipt request")
}

/// Downloads through the API as a browser would, following a redirect: (status of the API's
/// answer, the PDF).
async fn download(app: &TestApp, token: &str, booking_id: &str) -> (u16, Vec<u8>) {
    let resp = receipt_response(app, token, booking_id).await;
    let status = resp.status().as_u16();
    let pdf = match status {
        200 => {
            assert_eq!(resp.headers()["content-type"], "application/pdf");
            resp.bytes().await.unwrap().to_vec()
        }
        302 => {
            assert_eq!(resp.headers()["cache-control"], "no-store");
            let location = resp.headers()["location"].to_str().expect("a Location").to_owned();
            assert!(location.contains("X-Amz-Signature=") && location.contains("X-Amz-Expires=300"), "{location}");
            // A client without the engine's credentials: the URL is all it needs.
            let stored = http_client().get(&location).send().await.expect("presigned download");
            assert_eq!(stored.status(), 200, "presigned URL {location}");
            stored.bytes().await.unwrap().to_vec()
        }
        other => panic!("receipt download answered {other}: {}", resp.text().await.unwrap_or_default()),
    };
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    (status, pdf)
}

/// The PDF attached to the confirmation e-mail of `booking_id`.
async fn mailed_receipt(app: &TestApp, booking_id: &str) -> Vec<u8> {
    let eml = eventually(WAIT, "the confirmation e-mail", || async {
        app.emails()
            .into_iter()
            .map(|(_, raw)| raw)
            .find(|raw| raw.contains(booking_id) && raw.contains("application/pdf"))
    })
    .await;
    let part = eml.split("Content-Type: application/pdf").nth(1).expect("the attachment part");
    let body = part.split_once("\r\n\r\n").or_else(|| part.split_once("\n\n")).expect("attachment headers").1;
    let b64: String = body.lines().take_while(|l| !l.starts_with("--")).collect::<Vec<_>>().concat();
    base64::engine::general_purpose::STANDARD.decode(b64.trim()).expect("a base64 attachment")
}

async fn metric_exported(app: &TestApp) {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for outcome in ["stored", "store_failed", "rendered_on_demand"] {
        let line = format!("boxoffice_receipts_total{{outcome=\"{outcome}\"}}");
        assert!(text.contains(&line), "{line} is exported");
    }
}

// ---- the tests ------------------------------------------------------------------------------------

async fn s3_stores_once_and_serves_the_same_bytes(backend: Backend) {
    let moto = Moto::start().await;
    let bucket = unique_bucket();
    moto.create_bucket(&bucket).await;
    let app = app_for(backend, |c| use_s3(c, &moto, &bucket)).await;
    metric_exported(&app).await;
    let (user, event_id, booking_id) = confirmed_booking(&app).await;
    let key = format!("receipts/{booking_id}.pdf");

    // Stored once, by the worker that mailed it; the e-mail carries the stored bytes.
    let mailed = mailed_receipt(&app, &booking_id).await;
    let keys = eventually(WAIT, "the stored receipt", || async {
        let keys = moto.keys(&bucket).await;
        (!keys.is_empty()).then_some(keys)
    })
    .await;
    assert_eq!(keys, vec![key.clone()], "exactly one object, under receipts/");
    let stored = moto.object(&bucket, &key).await;
    assert_eq!(stored, mailed, "the e-mail attaches the stored receipt");

    // Downloads redirect to the stored object: the same bytes every time, nothing stored again.
    let (status, first) = download(&app, &user.token, &booking_id).await;
    assert_eq!(status, 302);
    assert_eq!(first, stored);
    let (status, second) = download(&app, &user.token, &booking_id).await;
    assert_eq!(status, 302);
    assert_eq!(second, first, "byte-identical on the second download");
    assert!(pdf_text(&first).contains("Stored Night"));
    assert_eq!(moto.keys(&bucket).await, vec![key.clone()]);

    // The same rules as before: an admin may, someone else may not, a hold has none.
    let admin = app.admin_token().await;
    assert_eq!(download(&app, &admin, &booking_id).await.1, first);
    let other = app.mint_users(1).await.remove(0);
    assert_problem(receipt_response(&app, &other.token, &booking_id).await, 404, "not_found").await;
    let held = app.hold_ok(&user.token, &event_id, &json!({"quantity": 1})).await;
    assert_problem(receipt_response(&app, &user.token, str_of(&held["id"])).await, 409, "not_confirmed").await;

    // A missing object is rendered again (the same bytes), served, and stored again.
    moto.delete(&bucket, &key).await;
    let (status, again) = download(&app, &user.token, &booking_id).await;
    assert_eq!(status, 200, "rendered on demand");
    assert_eq!(again, first, "rendering is deterministic");
    assert!(moto.keys(&bucket).await.contains(&key), "stored again");
    let (status, last) = download(&app, &user.token, &booking_id).await;
    assert_eq!((status, last), (302, first));
}

async fn s3_down_at_confirmation_delays_only_the_stored_copy(backend: Backend) {
    let mut moto = Moto::start().await;
    let bucket = unique_bucket();
    moto.create_bucket(&bucket).await;
    let app = app_for(backend, |c| use_s3(c, &moto, &bucket)).await;
    moto.stop();

    // Storage down: the booking is confirmed all the same, and the e-mail goes with its receipt.
    let (user, _, booking_id) = confirmed_booking(&app).await;
    let mailed = mailed_receipt(&app, &booking_id).await;
    // A download meanwhile is rendered on demand: the very bytes that will be stored.
    let (status, on_demand) = download(&app, &user.token, &booking_id).await;
    assert_eq!(status, 200);
    assert_eq!(on_demand, mailed);

    // Storage back (empty, as a fresh in-memory server): the background retry stores it.
    moto.run().await;
    moto.create_bucket(&bucket).await;
    let key = format!("receipts/{booking_id}.pdf");
    let keys = eventually(Duration::from_secs(60), "the receipt stored after the outage", || async {
        let keys = moto.keys(&bucket).await;
        (!keys.is_empty()).then_some(keys)
    })
    .await;
    assert_eq!(keys, vec![key.clone()]);
    assert_eq!(moto.object(&bucket, &key).await, mailed);
    let (status, first) = download(&app, &user.token, &booking_id).await;
    assert_eq!((status, first.clone()), (302, mailed));
    let (status, second) = download(&app, &user.token, &booking_id).await;
    assert_eq!((status, second), (302, first));
}

async fn a_local_folder_stores_once_and_serves_the_same_bytes(backend: Backend) {
    let app = app_for(backend, |_| {}).await;
    let dir = PathBuf::from(&app.config.receipts_dir);
    let (user, _, booking_id) = confirmed_booking(&app).await;
    let mailed = mailed_receipt(&app, &booking_id).await;
    let file = dir.join(format!("{booking_id}.pdf"));
    let stored = eventually(WAIT, "the stored receipt", || async { std::fs::read(&file).ok() }).await;
    assert_eq!(stored, mailed);
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(files.len(), 1, "one file: {files:?}");

    let (status, first) = download(&app, &user.token, &booking_id).await;
    assert_eq!((status, first.clone()), (200, stored.clone()));
    let (_, second) = download(&app, &user.token, &booking_id).await;
    assert_eq!(second, first, "byte-identical on the second download");

    // A lost file is rendered again, identical, and stored again.
    std::fs::remove_file(&file).unwrap();
    let (_, again) = download(&app, &user.token, &booking_id).await;
    assert_eq!(again, first);
    assert_eq!(std::fs::read(&file).expect("stored again"), first);
}
