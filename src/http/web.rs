//! The web app: the built single-page app (`WEB_DIR`, default `web/dist`) served at `/` with
//! SPA fallback. Hashed assets under `/assets/` are cached for a year; `index.html` is
//! revalidated on every load so a deploy is seen at once. Without a build the engine still
//! starts, and `/` says how to build the app. Paths under `/api`, `/healthz` and `/metrics`
//! never reach this: an unknown API route stays a problem document.

use std::path::{Path, PathBuf};

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::Error;

/// What the app is allowed to load: its own scripts and styles only, images also from `data:`
/// and `blob:` (the ticket's QR code), API calls and streams to the same origin.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
    font-src 'self'; connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'self'; \
    form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// Where the built app is, if anywhere.
#[derive(Debug, Clone)]
pub struct WebRoot {
    dir: Option<PathBuf>,
    /// The folder that was asked for, for the page that says it is missing.
    wanted: String,
}

impl WebRoot {
    /// `WEB_DIR` if set, else `web/dist`; either only counts when it holds an `index.html`.
    pub fn new(configured: Option<&str>) -> Self {
        let wanted = configured.unwrap_or("web/dist").to_owned();
        let dir = PathBuf::from(&wanted);
        let dir = dir.join("index.html").is_file().then_some(dir);
        match &dir {
            Some(d) => tracing::info!(dir = %d.display(), "serving the web app"),
            None => tracing::warn!(dir = %wanted, "no web app build found; / explains how to build it"),
        }
        Self { dir, wanted }
    }

    /// Answers a request no API route matched.
    pub async fn serve(&self, method: Method, uri: Uri) -> Response {
        let path = uri.path();
        if is_api_path(path) {
            return Error::NotFound("no such route").into_response();
        }
        if method != Method::GET && method != Method::HEAD {
            return Error::NotFound("no such route").into_response();
        }
        let Some(dir) = &self.dir else {
            // Without a build only the front door says so; any other path is an unknown route.
            return if path == "/" || path == "/index.html" {
                missing_build(&self.wanted)
            } else {
                Error::NotFound("no such route").into_response()
            };
        };
        let Some(relative) = safe_relative(path) else { return Error::NotFound("no such file").into_response() };
        if !relative.as_os_str().is_empty() {
            let file = dir.join(&relative);
            if let Ok(bytes) = tokio::fs::read(&file).await {
                let cache = if relative.starts_with("assets") { IMMUTABLE } else { REVALIDATE };
                return file_response(bytes, content_type(&relative), cache);
            }
            // A missing file (it has an extension) is a 404; anything else is a page of the app.
            if relative.extension().is_some() {
                return Error::NotFound("no such file").into_response();
            }
        }
        match tokio::fs::read(dir.join("index.html")).await {
            Ok(bytes) => file_response(bytes, "text/html; charset=utf-8", REVALIDATE),
            Err(_) => missing_build(&self.wanted),
        }
    }
}

fn is_api_path(path: &str) -> bool {
    ["/api", "/healthz", "/readyz", "/metrics"]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/')))
}

/// The request path as a relative path inside the web folder, or `None` if it could leave it
/// (or names something no build contains).
fn safe_relative(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let plain = segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~'));
        if !plain || segment.starts_with('.') {
            return None;
        }
        out.push(segment);
    }
    Some(out)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

fn file_response(bytes: Vec<u8>, content_type: &'static str, cache: &'static str) -> Response {
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if content_type.starts_with("text/html") {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    resp
}

/// A plain page instead of the app, saying how to build it. 503: the engine runs, the app is
/// not available yet.
fn missing_build(wanted: &str) -> Response {
    let dir = html_escape(wanted);
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>boxoffice: web app not built</title></head>\
         <body><h1>The boxoffice engine is running, but the web app is not built</h1>\
         <p>No <code>index.html</code> was found in <code>{dir}</code> (set <code>WEB_DIR</code> to choose the folder).</p>\
         <p>Build it with <code>npm --prefix web ci &amp;&amp; npm --prefix web run build</code>, or start everything with \
         <code>scripts/run</code>. The API is available under <a href=\"/api/openapi.json\">/api</a>.</p></body></html>"
    );
    let mut resp = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    resp
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_leave_the_folder() {
        assert_eq!(safe_relative("/"), Some(PathBuf::new()));
        assert_eq!(safe_relative("/assets/index-abc.js"), Some(PathBuf::from("assets/index-abc.js")));
        assert_eq!(safe_relative("/events/0197-ab"), Some(PathBuf::from("events/0197-ab")));
        for bad in ["/../etc/passwd", "/assets/../../x", "/.env", "/a\\b", "/%2e%2e/x", "/a/.git/config"] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }

    #[test]
    fn api_paths_are_never_the_app() {
        for p in ["/api", "/api/v1/nope", "/healthz", "/metrics", "/readyz"] {
            assert!(is_api_path(p), "{p}");
        }
        for p in ["/", "/apis", "/events/1", "/metricsfoo"] {
            assert!(!is_api_path(p), "{p}");
        }
    }
}
