//! Extractors whose rejections are problem documents, and the bearer-token principals.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::Error;
use crate::auth::{Principal, TokenKeys};

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct Json<T>(pub T);

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
