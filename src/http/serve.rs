//! Serving the application: an accept loop like `axum::serve`'s, with what it does not offer.
//! A connection that has not sent a whole request head within `HTTP_HEADER_READ_TIMEOUT_SECS`
//! is closed (slow-header clients would otherwise each hold a socket forever), and shutdown
//! ends live streams first, then waits a bounded time for connections to finish.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::App;

pub struct ServeSettings {
    pub header_read_timeout: Duration,
    /// How long shutdown waits for open connections before it gives up on them.
    pub drain: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves; `on_shutdown` runs first (it ends the
/// live streams, which would otherwise keep their connections open).
pub async fn serve(
    listener: TcpListener,
    app: App,
    settings: ServeSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_shutdown: impl FnOnce(),
) -> io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let svc = app.clone().map_request(move |req: http::Request<Incoming>| {
            let mut req = req.map(Body::new);
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(remote));
            req
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), TowerToHyperService::new(svc));
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    on_shutdown();
    if tokio::time::timeout(settings.drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(after_secs = settings.drain.as_secs(), "connections still open at shutdown; closing them");
    }
    Ok(())
}

/// A refused or reset connection is the client's business. Anything else (typically `EMFILE`,
/// out of file descriptors) is ours: say so and pause, so the loop does not spin while some
/// close.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    metrics::counter!("boxoffice_accept_errors_total").increment(1);
    tokio::time::sleep(Duration::from_millis(100)).await;
}
