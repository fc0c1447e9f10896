//! Extractors whose rejections are problem documents, and the bearer-token principals.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::Error;
use super::json::BodyError;
use crate::auth::{Principal, TokenKeys};

/// A JSON request body (read strictly, see `super::json`) or response.
pub struct Json<T>(pub T);

/// `application/json` or any `application/*+json`, as axum's own extractor accepts.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        if !is_json(req.headers()) {
            return Err(Error::UnsupportedMediaType(
                "send the body as JSON with Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge
            } else {
                Error::BadRequest(r.body_text())
            }
        })?;
        match super::json::from_slice(&bytes) {
            Ok(v) => Ok(Json(v)),
            Err(BodyError::NotAnObject) => Err(Error::field("body", "must be a JSON object")),
            Err(BodyError::Invalid(e)) => Err(Error::BadRequest(match e.classify() {
                serde_json::error::Category::Data => {
                    format!("Failed to deserialize the JSON body into the target type: {e}")
                }
                _ => format!("Failed to parse the request body as JSON: {e}"),
            })),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

/// The optional `Idempotency-Key` header, checked (1 to 255 visible ASCII characters; 400
/// otherwise).
pub struct IdempotencyKey(pub Option<crate::domain::idempotency::IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let Some(v) = parts.headers.get("idempotency-key") else { return Ok(Self(None)) };
        crate::domain::idempotency::IdempotencyKey::parse(v.as_bytes())
            .map(|k| Self(Some(k)))
            .map_err(Error::BadRequest)
    }
}

/// The request id the request-id layer set (for the logs of work the request starts).
pub struct RequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned)))
    }
}

/// Any signed-in user.
pub struct AuthUser(pub Principal);

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<TokenKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| Error::Unauthorized("missing Authorization: Bearer token".into()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Unauthorized("Authorization must be 'Bearer <token>'".into()))?;
        let keys = Arc::<TokenKeys>::from_ref(state);
        keys.verify(token).map(AuthUser).map_err(|detail| Error::Unauthorized(detail.into()))
    }
}

/// A signed-in admin; other users get 403.
pub struct Admin(pub Principal);

impl<S> FromRequestParts<S> for Admin
where
    Arc<TokenKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let AuthUser(p) = AuthUser::from_request_parts(parts, state).await?;
        if p.is_admin() { Ok(Admin(p)) } else { Err(Error::Forbidden("this action needs the admin role")) }
    }
}

/// The peer's address, when the server was started with connection info (it always is, but a
/// router served without it must not fail every request).
pub struct PeerAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
        Ok(PeerAddr(peer))
    }
}
