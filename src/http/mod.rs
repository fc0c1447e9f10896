//! The HTTP API: one router per area (auth, events, bookings, operations), merged here with
//! the cross-cutting layers: request ids, tracing, metrics, problem documents for every error,
//! body limit, timeout, CORS and security headers.

mod auth;
mod bookings;
pub mod contract;
pub mod error;
mod events;
mod extract;
mod forward;
mod json;
mod limit;
mod ops;
mod payments;
mod serve;
mod stats;
mod streams;
mod tickets;
pub mod web;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use metrics_exporter_prometheus::PrometheusHandle;
use std::convert::Infallible;

use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::actors::Registry;
use crate::auth::{Passwords, TokenKeys};
use crate::bus::Bus;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::cpu::CpuPool;
use crate::payments::Payments;
use crate::persistence::Store;
use crate::service::BoxOffice;
use crate::shared::SharedState;
pub use error::{Error, Result};
pub use serve::{ServeSettings, serve};

pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares. Cloned per request by axum, so it is one `Arc` (cloning the
/// fields one by one showed up as a fifth of the CPU of a hold in the profile).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    /// The use cases the handlers call.
    pub office: BoxOffice,
    pub store: Store,
    pub registry: Registry,
    pub keys: Arc<TokenKeys>,
    pub config: Arc<Config>,
    pub metrics: PrometheusHandle,
    /// Per-client rate limits: every route, the webhook, login and registration.
    pub limits: limit::Limits,
    /// Password hashing, a bounded number at once.
    pub passwords: Passwords,
    /// Webhook signature MACs (up to 1 MiB of body each), a bounded number at once.
    pub webhook_cpu: CpuPool,
    /// Caps on open live streams.
    pub streams: streams::StreamGate,
    /// The last readiness verdict, reused for a moment.
    pub readiness: ops::ReadinessCache,
    pub payments: Payments,
    pub bus: Bus,
    /// Key of the payment provider's webhook signatures.
    pub webhook_secret: Vec<u8>,
    /// The other nodes: where writes for events they own are forwarded.
    pub cluster: Cluster,
    /// Proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`).
    pub trusted_proxies: Arc<Vec<crate::net::Cidr>>,
    /// Redis and what the nodes share through it (or its in-process fallbacks).
    pub shared: SharedState,
    pub kafka: crate::stream::kafka::KafkaHealth,
}

/// What the payment and notification routes need besides the engine.
pub struct Services {
    pub payments: Payments,
    pub bus: Bus,
    pub webhook_secret: Vec<u8>,
    pub receipts: crate::receipts::Receipts,
    pub cluster: Cluster,
    pub shared: SharedState,
    /// The Kafka sink's state (`off` when not configured).
    pub kafka: crate::stream::kafka::KafkaHealth,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for Arc<TokenKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.keys.clone()
    }
}

impl AppState {
    pub fn new(
        store: Store,
        registry: Registry,
        keys: TokenKeys,
        config: Config,
        metrics: PrometheusHandle,
        services: Services,
    ) -> Self {
        let limits = limit::Limits::new(&config, services.shared.limiter.clone());
        let passwords =
            Passwords::new(config.password_hash_concurrency, Duration::from_millis(config.password_hash_wait_ms));
        // One MAC per core at most; a webhook waits up to 2 s for its turn (the provider
        // retries a 503, and the saga polls the provider meanwhile).
        let webhook_cpu = CpuPool::new("webhook_mac", 0, Duration::from_secs(2));
        let streams = streams::StreamGate::new(&config);
        let Services { payments, bus, webhook_secret, receipts, cluster, shared, kafka } = services;
        // Validated at start-up (`Config::validate`).
        let trusted_proxies = Arc::new(crate::net::parse_cidrs(&config.trusted_proxies).unwrap_or_default());
        let office = BoxOffice::new(store.clone(), registry.clone(), payments.clone(), receipts, shared.events.clone());
        Self(Arc::new(Shared {
            office,
            store,
            registry,
            keys: Arc::new(keys),
            config: Arc::new(config),
            metrics,
            limits,
            passwords,
            webhook_cpu,
            streams,
            readiness: ops::ReadinessCache::default(),
            payments,
            bus,
            webhook_secret,
            cluster,
            trusted_proxies,
            shared,
            kafka,
        }))
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "boxoffice", description = "Event booking engine: one actor per event, write-ahead group commit, never oversells."),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "events", description = "The event catalogue"),
        (name = "bookings", description = "Holds and bookings"),
        (name = "payments", description = "Payments, receipts and ticket check-in"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The problem document every error returns (RFC 9457).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code, e.g. `sold_out`.
    pub code: String,
    pub detail: String,
    /// `validation_failed` only: a message per invalid field (`body` when the body as a whole
    /// is not a JSON object). Conflicts may add facts of their own (e.g. `available`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<std::collections::BTreeMap<String, String>>,
}

/// The whole HTTP application as one service.
pub type App = BoxCloneSyncService<Request, Response, Infallible>;

/// The routers and the document that describes them, built from the same route definitions.
struct Parts {
    api: Router<AppState>,
    streams: Router<AppState>,
    openapi: utoipa::openapi::OpenApi,
}

fn parts() -> Parts {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(events::router())
        .merge(stats::router())
        .merge(bookings::router())
        .merge(payments::router())
        .merge(tickets::router())
        .merge(ops::router())
        .split_for_parts();
    let (streams, streams_doc) = OpenApiRouter::new().merge(streams::router()).split_for_parts();
    let mut openapi = openapi;
    openapi.merge(streams_doc);
    use utoipa::Modify as _;
    contract::ProblemResponses.modify(&mut openapi);
    contract::IdempotencyKeyRule.modify(&mut openapi);
    contract::UniqueSeats.modify(&mut openapi);
    Parts { api, streams, openapi }
}

/// The OpenAPI document the server serves at `/api/openapi.json`.
pub fn openapi() -> serde_json::Value {
    contract::document(&parts().openapi)
}

/// Every route the router really serves, as `(METHOD, path template)`: read from the axum
/// routers themselves (not from the document), so a route added without an OpenAPI annotation
/// shows up here and the contract test catches it. `/api/openapi.json` is the document itself.
pub fn routes() -> Vec<(String, String)> {
    let Parts { api, streams, .. } = parts();
    let mut out = Vec::new();
    for router in [api, streams] {
        out.extend(route_table(&format!("{router:?}")));
    }
    out.sort();
    out.dedup();
    out
}

/// Parses axum's `Debug` output of a router: `path_router: PathRouter { routes: {RouteId(n):
/// MethodRouter(MethodRouter { .., allow_header: Bytes(b"GET,HEAD") }), ..}, node: Node { paths:
/// {RouteId(n): "/path", ..} } }` (the fallback router after it is not a route). axum offers no
/// other view of its table; a change of that output empties the list, which the contract test
/// refuses.
fn route_table(debug: &str) -> Vec<(String, String)> {
    let start = debug.find("path_router: PathRouter {").unwrap_or(debug.len());
    let end = debug.find("fallback_router:").unwrap_or(debug.len());
    let table = &debug[start.min(end)..end];
    let Some((routes, paths)) = table.split_once("node: Node { paths: {") else { return Vec::new() };
    let paths: std::collections::HashMap<&str, &str> = paths
        .split("RouteId(")
        .filter_map(|e| e.split_once("): \""))
        .filter_map(|(id, rest)| rest.split_once('"').map(|(path, _)| (id, path)))
        .collect();
    let mut out = Vec::new();
    for entry in routes.split("RouteId(").skip(1) {
        let Some((id, rest)) = entry.split_once(')') else { continue };
        let Some(allow) = rest.split_once("allow_header: Bytes(b\"").and_then(|(_, a)| a.split_once('"')) else {
            continue;
        };
        let Some(path) = paths.get(id) else { continue };
        // HEAD comes with GET implicitly; the document lists GET.
        for method in allow.0.split(',').filter(|m| !m.is_empty() && *m != "HEAD") {
            out.push((method.to_owned(), (*path).to_owned()));
        }
    }
    out
}

/// Routes with their per-route layers (metrics by matched route, rate limit, body limit,
/// timeout), wrapped once in the cross-cutting layers. Those sit outside the router on purpose:
/// axum clones a route's service stack for every request, and the CORS layer's clone alone
/// showed in the profile of a hold.
pub fn app(state: AppState) -> App {
    let Parts { api, streams, openapi } = parts();
    let openapi = Arc::new(contract::document(&openapi));
    let exchange = crate::bus::Topology::with_prefix(&state.config.amqp_prefix).exchange;
    let asyncapi = Arc::new(crate::stream::asyncapi::document(&state.config.kafka_topic, &exchange));
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let cors = cors(&state.config.cors_origins);
    let (trusted, cluster) = (state.trusted_proxies.clone(), state.cluster.clone());

    let web = Arc::new(web::WebRoot::new(state.config.web_dir.as_deref()));

    let routes = Router::new()
        .merge(api)
        .route("/api/openapi.json", axum::routing::get(move || async move { axum::Json(openapi.as_ref().clone()) }))
        // The schema of the domain-event stream (RabbitMQ exchange, Kafka topic).
        .route("/api/asyncapi.json", axum::routing::get(move || async move { axum::Json(asyncapi.as_ref().clone()) }))
        // Anything else: the web app (its files, or its index for a deep link), or a 404 problem
        // under the API's paths.
        .fallback(move |method: Method, uri: axum::http::Uri| async move { web.serve(method, uri).await })
        // Innermost first: each `Router::layer` wraps everything above it.
        .layer(middleware::from_fn_with_state(state.clone(), forward::forward))
        .layer(middleware::from_fn(track))
        .layer(middleware::from_fn_with_state(state.clone(), limit::limit))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        // Streams live longer than any request timeout, so they join below it.
        .merge(
            streams
                .layer(middleware::from_fn(track))
                .layer(middleware::from_fn_with_state(state.clone(), limit::limit)),
        )
        .with_state(state);

    // Outermost first.
    let stack = ServiceBuilder::new()
        .map_response(|r: http::Response<_>| r.map(axum::body::Body::new))
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .map_request(move |req: Request| forward::client_addr(req, &trusted, &cluster))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            let client = req
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_default();
            tracing::info_span!("http", request_id = %id, client = %client, method = %req.method(), path = %req.uri().path())
        }))
        .layer(PropagateRequestIdLayer::new(request_id))
        .map_response(error::problemize)
        .layer(CatchPanicLayer::new())
        .layer(cors)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .service(routes);
    BoxCloneSyncService::new(stack)
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o.trim()).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static(auth::SESSION_HEADER),
        ])
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}

/// A server-sent event stream counts as open until its body is dropped (client gone or shutdown).
fn count_stream(resp: Response) -> Response {
    let is_stream =
        resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        return resp;
    }
    use futures::StreamExt as _;
    let gauge = crate::telemetry::StreamGauge::open();
    resp.map(|body| {
        axum::body::Body::from_stream(body.into_data_stream().map(move |chunk| {
            let _open = &gauge;
            chunk
        }))
    })
}

/// The method as a metric label: one of the standard methods, else `other`. Clients choose
/// the method freely (any token, any length), and every label value is a series kept forever.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Request count and latency by method, matched route and status. Every label comes from a
/// closed set: the known methods, the router's route templates (else `unmatched`), and the
/// status codes.
async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let resp = count_stream(resp);
    let status = resp.status().as_u16().to_string();
    metrics::counter!("boxoffice_http_requests_total", "method" => method, "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("boxoffice_http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    resp
}
