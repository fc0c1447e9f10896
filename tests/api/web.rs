//! The browser's side of the engine: the refresh-token cookie flow on the auth routes (and the
//! JSON flow next to it), and the built web app served at `/` with SPA fallback, cache headers
//! and a CSP, or a page saying it is not built.

use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use crate::helpers::*;

both_backends!(cookie_session_flow);

const SESSION: &str = "x-boxoffice-session";

/// `name=value` of the refresh cookie in a response, and the whole `Set-Cookie` line.
fn refresh_cookie(resp: &reqwest::Response) -> (String, String) {
    let line = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("boxoffice_refresh="))
        .unwrap_or_else(|| panic!("no boxoffice_refresh cookie in {:?}", resp.headers()))
        .to_owned();
    let pair = line.split(';').next().expect("a name=value first").to_owned();
    (pair, line)
}

async fn cookie_post(app: &TestApp, path: &str, cookie: Option<&str>, session_header: bool) -> reqwest::Response {
    let mut rb = app.client.post(app.api(path)).json(&json!({}));
    if let Some(c) = cookie {
        rb = rb.header(COOKIE, c);
    }
    if session_header {
        rb = rb.header(SESSION, "cookie");
    }
    rb.send().await.expect("POST")
}

async fn cookie_session_flow(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.new_user().await;

    // Login in the cookie flow: the refresh token is only in the cookie.
    let resp = app
        .client
        .post(app.api("/auth/login"))
        .header(SESSION, "cookie")
        .json(&json!({"email": user.email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    let (first, line) = refresh_cookie(&resp);
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/api/v1/auth", "Max-Age=2592000"] {
        assert!(line.contains(attr), "{attr} missing from {line}");
    }
    assert!(!line.contains("Secure"), "development cookies work over plain http: {line}");
    let body = expect_json(resp, 200).await;
    assert!(body.get("refresh_token").is_none(), "the refresh token leaked into the body: {body}");
    let access = body["access_token"].as_str().expect("access token").to_owned();
    expect_json(app.get("/auth/me", Some(&access)).await, 200).await;

    // The cookie without the header (a cross-site form could send that) is refused.
    assert_problem(cookie_post(&app, "/auth/refresh", Some(&first), false).await, 403, "forbidden").await;
    assert_problem(cookie_post(&app, "/auth/logout", Some(&first), false).await, 403, "forbidden").await;

    // With the header it refreshes and rotates the cookie.
    let resp = cookie_post(&app, "/auth/refresh", Some(&first), true).await;
    let (second, _) = refresh_cookie(&resp);
    assert_ne!(first, second, "the cookie was not rotated");
    let body = expect_json(resp, 200).await;
    assert!(body.get("refresh_token").is_none(), "{body}");
    expect_json(app.get("/auth/me", Some(str_of(&body["access_token"]))).await, 200).await;

    // The spent cookie again is a reuse: the whole session goes.
    assert_problem(cookie_post(&app, "/auth/refresh", Some(&first), true).await, 401, "unauthorized").await;
    assert_problem(cookie_post(&app, "/auth/refresh", Some(&second), true).await, 401, "unauthorized").await;

    // A fresh session, then logout: revoked and the cookie cleared.
    let resp = app
        .client
        .post(app.api("/auth/login"))
        .header(SESSION, "cookie")
        .json(&json!({"email": user.email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    let (third, _) = refresh_cookie(&resp);
    let resp = cookie_post(&app, "/auth/logout", Some(&third), true).await;
    assert_eq!(resp.status(), 204);
    let (cleared, line) = refresh_cookie(&resp);
    assert_eq!(cleared, "boxoffice_refresh=");
    assert!(line.contains("Max-Age=0"), "{line}");
    assert_problem(cookie_post(&app, "/auth/refresh", Some(&third), true).await, 401, "unauthorized").await;

    // The JSON flow is unchanged: the token in the body, no cookie.
    let resp = app.login_response(&user.email, PASSWORD).await;
    assert!(resp.headers().get(SET_COOKIE).is_none(), "the JSON flow set a cookie");
    let tokens = tokens_of(&expect_json(resp, 200).await);
    let resp = app.post("/auth/refresh", None, &json!({"refresh_token": tokens.refresh})).await;
    assert!(resp.headers().get(SET_COOKIE).is_none());
    let body = expect_json(resp, 200).await;
    assert!(body["refresh_token"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_cookies_are_secure() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.env = boxoffice::config::Environment::Production;
        // Production refuses the simulated provider unless told this is a staging system.
        c.allow_simulated_payments = true;
    })
    .await;
    let user = app.new_user().await;
    let resp = app
        .client
        .post(app.api("/auth/login"))
        .header(SESSION, "cookie")
        .json(&json!({"email": user.email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    let (_, line) = refresh_cookie(&resp);
    assert!(line.contains("; Secure"), "{line}");
}

/// A folder that looks like a Vite build.
fn fake_build() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    std::fs::create_dir(dir.path().join("assets")).expect("assets folder");
    std::fs::write(dir.path().join("index.html"), "<!doctype html><title>app</title><div id=root></div>")
        .expect("index");
    std::fs::write(dir.path().join("assets/index-AbC123.js"), "console.log('app')").expect("js");
    std::fs::write(dir.path().join("favicon.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>").expect("icon");
    dir
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).send().await.expect("GET")
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> &str {
    resp.headers().get(&name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_web_app_with_spa_fallback() {
    let build = fake_build();
    let dir = build.path().display().to_string();
    let app = TestApp::spawn_with(Backend::Sqlite, move |c| c.web_dir = Some(dir)).await;

    for page in ["/", "/events/0197a0b1-0000-7000-8000-000000000000", "/account/bookings"] {
        let resp = get(&app, page).await;
        assert_eq!(resp.status(), 200, "{page}");
        assert!(header(&resp, CONTENT_TYPE).starts_with("text/html"), "{page}");
        assert_eq!(header(&resp, CACHE_CONTROL), "no-cache", "{page}");
        let csp = header(&resp, CONTENT_SECURITY_POLICY).to_owned();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(resp.text().await.expect("body").contains("<div id=root>"), "{page}");
    }

    let resp = get(&app, "/assets/index-AbC123.js").await;
    assert_eq!(resp.status(), 200);
    assert!(header(&resp, CONTENT_TYPE).starts_with("text/javascript"));
    assert_eq!(header(&resp, CACHE_CONTROL), "public, max-age=31536000, immutable");
    assert_eq!(resp.text().await.expect("body"), "console.log('app')");

    let resp = get(&app, "/favicon.svg").await;
    assert_eq!(header(&resp, CONTENT_TYPE), "image/svg+xml");
    assert_eq!(header(&resp, CACHE_CONTROL), "no-cache");

    // Missing files, escapes from the folder and unknown API routes are 404s, never the index.
    for missing in ["/assets/gone-123.js", "/robots.txt", "/../Cargo.toml", "/%2e%2e/Cargo.toml", "/.env"] {
        let resp = get(&app, missing).await;
        assert_eq!(resp.status(), 404, "{missing}");
    }
    for api in ["/api/v1/nope", "/api", "/api/v2/events"] {
        let resp = get(&app, api).await;
        assert_eq!(resp.status(), 404, "{api}");
        assert_eq!(header(&resp, CONTENT_TYPE), "application/problem+json", "{api}");
    }
    // The API itself is untouched.
    let spec: Value = get(&app, "/api/openapi.json").await.json().await.expect("spec");
    assert!(spec["paths"]["/api/v1/events"].is_object());
    // Only GET and HEAD reach the app.
    let resp = app.client.post(app.url("/events/x")).send().await.expect("POST");
    assert_eq!(resp.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn says_so_when_the_web_app_is_not_built() {
    let empty = tempfile::tempdir().expect("temporary folder");
    let dir = empty.path().display().to_string();
    let app = TestApp::spawn_with(Backend::Sqlite, move |c| c.web_dir = Some(dir)).await;
    let resp = get(&app, "/").await;
    assert_eq!(resp.status(), 503);
    assert!(header(&resp, CONTENT_TYPE).starts_with("text/html"));
    let body = resp.text().await.expect("body");
    assert!(body.contains("web app is not built") && body.contains("npm --prefix web"), "{body}");
    // Other paths stay unknown routes, and the engine works all the same.
    assert_eq!(get(&app, "/events/x").await.status(), 404);
    assert_eq!(get(&app, "/healthz").await.status(), 200);
}
