//! Accounts and tokens: register, login, refresh (rotation with reuse detection), logout, me.
//! The session rules live in `accounts`; these handlers translate HTTP.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::extract::{AuthUser, Json, PeerAddr};
use super::{AppState, Error, Problem, Result};
use crate::accounts;
use crate::domain::FieldErrors;
use crate::domain::user::{Email, Password, Role};
use crate::persistence::{StoreError, UserRow};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    email: Option<String>,
    password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    id: Uuid,
    email: String,
    role: Role,
}

impl From<UserRow> for UserView {
    fn from(u: UserRow) -> Self {
        Self { id: u.id.0, email: u.email, role: u.role }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    access_token: String,
    refresh_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshBody {
    refresh_token: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = Credentials,
    responses((status = 201, body = UserView), (status = 409, description = "email_taken", body = Problem), (status = 422, body = Problem),
        (status = 429, description = "rate_limited: too many attempts from this address or for this e-mail (see Retry-After)", body = Problem),
        (status = 503, description = "password hashing is saturated; retry after Retry-After", body = Problem)))]
async fn register(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    Json(body): Json<Credentials>,
) -> Result<(StatusCode, Json<UserView>)> {
    let mut errors = FieldErrors::default();
    let email = Email::parse(body.email.as_deref().unwrap_or("")).map_err(|m| errors.add("email", m)).ok();
    let password = match body.password {
        Some(p) => Password::parse(p).map_err(|m| errors.add("password", m)).ok(),
        None => {
            errors.add("password", "is required");
            None
        }
    };
    let (Some(email), Some(password)) = (email, password) else { return Err(Error::Validation(errors)) };
    state.limits.auth_attempt(peer, email.as_str())?;
    let hash = state.passwords.hash(password.expose().to_owned()).await??;
    let user = UserRow::new(email.as_str(), hash, Role::User);
    match state.store.insert_user(&user).await {
        Ok(()) => Ok((StatusCode::CREATED, Json(user.into()))),
        Err(StoreError::Conflict(_)) => {
            Err(Error::conflict("email_taken", "an account with this e-mail already exists"))
        }
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = Credentials,
    responses((status = 200, body = TokenPair), (status = 401, description = "invalid_credentials", body = Problem),
        (status = 429, description = "rate_limited: too many attempts from this address or for this e-mail (see Retry-After)", body = Problem),
        (status = 503, description = "password hashing is saturated; retry after Retry-After", body = Problem)))]
async fn login(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    Json(body): Json<Credentials>,
) -> Result<Json<TokenPair>> {
    let (Some(email), Some(password)) = (body.email, body.password) else { return Err(Error::InvalidCredentials) };
    // Not an address at all: no account can match, and saying so quickly reveals nothing.
    let email = Email::parse(&email).map_err(|_| Error::InvalidCredentials)?;
    state.limits.auth_attempt(peer, email.as_str())?;
    let user = state.store.user_by_email(email.as_str()).await?;
    // An unknown address costs a hash too (and waits its turn like any other), so neither
    // timing nor a 503 tells which addresses have accounts.
    if !state.passwords.verify(password, user.as_ref().map(|u| u.password_hash.clone())).await? {
        return Err(Error::InvalidCredentials);
    }
    let user = user.ok_or(Error::InvalidCredentials)?;
    Ok(Json(accounts::open(&state.store, &state.keys, &user).await?.into()))
}

impl From<accounts::Issued> for TokenPair {
    fn from(i: accounts::Issued) -> Self {
        Self {
            access_token: i.access_token,
            refresh_token: i.refresh_token,
            token_type: "Bearer",
            expires_in: i.expires_in,
        }
    }
}

fn required(token: Option<String>) -> Result<String> {
    token.filter(|t| !t.is_empty()).ok_or_else(|| Error::Unauthorized("refresh_token is required".into()))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem)))]
async fn refresh(State(state): State<AppState>, Json(body): Json<RefreshBody>) -> Result<Json<TokenPair>> {
    let token = required(body.refresh_token)?;
    Ok(Json(accounts::refresh(&state.store, &state.keys, &token).await?.into()))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshBody,
    responses((status = 204, description = "the refresh token's session is ended: none of its refresh tokens works any more"), (status = 401, body = Problem)))]
async fn logout(State(state): State<AppState>, Json(body): Json<RefreshBody>) -> Result<StatusCode> {
    let token = required(body.refresh_token)?;
    accounts::logout(&state.store, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = Problem)))]
async fn me(State(state): State<AppState>, AuthUser(p): AuthUser) -> Result<Json<UserView>> {
    let user = state
        .store
        .user_by_id(p.user_id)
        .await?
        .ok_or_else(|| Error::Unauthorized("account no longer exists".into()))?;
    Ok(Json(user.into()))
}
