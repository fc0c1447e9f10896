//! Accounts and tokens: register, login, refresh (rotation with reuse detection), logout, me.
//! The session rules live in `accounts`; these handlers translate HTTP.
//!
//! Two ways to carry the refresh token. API clients get it in the JSON body and send it back
//! in the body. The browser app asks for the cookie flow with the `X-Boxoffice-Session: cookie`
//! header: the refresh token then travels only in an `HttpOnly`, `SameSite=Strict` cookie scoped
//! to `/api/v1/auth` (`Secure` in production), so no script can read it and a reload keeps the
//! session. Refresh and logout read that cookie only when the header is present: a cross-site
//! form cannot set a header, so it cannot spend or revoke the cookie (CSRF).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::contract::{Bearer, JsonBody, Limited};
use super::extract::{AuthUser, Json, PeerAddr};
use super::{AppState, Error, Problem, Result};
use crate::accounts;
use crate::config::Environment;
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

/// A new account. Every missing or invalid field is reported at once (422).
#[derive(Deserialize, ToSchema)]
pub struct Registration {
    /// An e-mail address (stored lower-cased), at most 254 characters.
    #[schema(value_type = String, required = true, max_length = 254, pattern = r"^[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@.\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+(\.[^@.\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)+$")]
    email: Option<String>,
    /// 8 to 1024 characters.
    #[schema(value_type = String, required = true, min_length = 8, max_length = 1024)]
    password: Option<String>,
}

/// Credentials to sign in with. Anything that matches no account is `401 invalid_credentials`,
/// a missing field too: a login form never learns which part was wrong.
#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    #[schema(value_type = String, required = true)]
    email: Option<String>,
    #[schema(value_type = String, required = true)]
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

/// The request header that selects the browser's cookie flow (value `cookie`).
pub const SESSION_HEADER: &str = "x-boxoffice-session";
/// The refresh-token cookie and the only path it is sent to.
pub const REFRESH_COOKIE: &str = "boxoffice_refresh";
const COOKIE_PATH: &str = "/api/v1/auth";

#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    access_token: String,
    /// Absent in the cookie flow (`X-Boxoffice-Session: cookie`): the token is in the cookie.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshBody {
    /// The JSON flow's refresh token; in the cookie flow leave it out (send `{}`).
    refresh_token: Option<String>,
}

/// Whether the request asks for the cookie flow.
fn wants_cookie(headers: &HeaderMap) -> bool {
    headers.get(SESSION_HEADER).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cookie"))
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The refresh token of a refresh or logout: the body's, else (cookie flow only) the cookie's.
fn presented_refresh_token(headers: &HeaderMap, body: RefreshBody) -> Result<Option<String>> {
    if let Some(t) = body.refresh_token {
        return Ok(Some(t));
    }
    match cookie_value(headers, REFRESH_COOKIE) {
        Some(t) if wants_cookie(headers) => Ok(Some(t.to_owned())),
        Some(_) => {
            Err(Error::Forbidden("the session cookie is only accepted with the X-Boxoffice-Session: cookie header"))
        }
        None => Ok(None),
    }
}

fn refresh_cookie(state: &AppState, token: &str, max_age: u64) -> HeaderValue {
    let secure = if state.config.env == Environment::Production { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{REFRESH_COOKIE}={token}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("refresh tokens are URL-safe")
}

/// The token pair as the client asked for it: all in the body, or the refresh token moved into
/// the cookie.
fn token_response(state: &AppState, headers: &HeaderMap, mut pair: TokenPair) -> Response {
    if !wants_cookie(headers) {
        return Json(pair).into_response();
    }
    let token = pair.refresh_token.take().unwrap_or_default();
    let cookie = refresh_cookie(state, &token, state.keys.refresh_ttl.as_secs());
    let mut resp = Json(pair).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    resp
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = Registration,
    responses((status = 201, body = UserView), JsonBody, Limited,
        (status = 409, description = "email_taken", body = Problem),
        (status = 429, description = "rate_limited: too many requests, or too many sign-ups from this address or for this e-mail (see Retry-After)", body = Problem),
        (status = 503, description = "unavailable: password hashing is saturated, or the database is unreachable; retry after Retry-After", body = Problem)))]
async fn register(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    Json(body): Json<Registration>,
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
    state.limits.auth_attempt(peer, email.as_str()).await?;
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
    params(("X-Boxoffice-Session" = Option<String>, Header, description = "`cookie`: the refresh token is set as an HttpOnly cookie (`boxoffice_refresh`, path /api/v1/auth) instead of returned; any other value is the JSON flow")),
    responses((status = 200, body = TokenPair, headers(("Set-Cookie" = String, description = "cookie flow only: the refresh-token cookie"))),
        JsonBody, Limited,
        (status = 401, description = "invalid_credentials: no account matches (also when a field is missing)", body = Problem),
        (status = 429, description = "rate_limited: too many requests, or too many attempts from this address or for this e-mail (see Retry-After)", body = Problem),
        (status = 503, description = "unavailable: password hashing is saturated, or the database is unreachable; retry after Retry-After", body = Problem)))]
async fn login(
    State(state): State<AppState>,
    PeerAddr(peer): PeerAddr,
    headers: HeaderMap,
    Json(body): Json<Credentials>,
) -> Result<Response> {
    let (Some(email), Some(password)) = (body.email, body.password) else { return Err(Error::InvalidCredentials) };
    // Not an address at all: no account can match, and saying so quickly reveals nothing.
    let email = Email::parse(&email).map_err(|_| Error::InvalidCredentials)?;
    state.limits.auth_attempt(peer, email.as_str()).await?;
    let user = state.store.user_by_email(email.as_str()).await?;
    // An unknown address costs a hash too (and waits its turn like any other), so neither
    // timing nor a 503 tells which addresses have accounts.
    if !state.passwords.verify(password, user.as_ref().map(|u| u.password_hash.clone())).await? {
        return Err(Error::InvalidCredentials);
    }
    let user = user.ok_or(Error::InvalidCredentials)?;
    let pair = accounts::open(&state.store, &state.keys, &user).await?.into();
    Ok(token_response(&state, &headers, pair))
}

impl From<accounts::Issued> for TokenPair {
    fn from(i: accounts::Issued) -> Self {
        Self {
            access_token: i.access_token,
            refresh_token: Some(i.refresh_token),
            token_type: "Bearer",
            expires_in: i.expires_in,
        }
    }
}

fn required(token: Option<String>) -> Result<String> {
    token.filter(|t| !t.is_empty()).ok_or_else(|| Error::Unauthorized("refresh_token is required".into()))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshBody,
    params(("X-Boxoffice-Session" = Option<String>, Header, description = "`cookie`: use and rotate the refresh-token cookie (`boxoffice_refresh`); the new one is set in its place"),
        ("boxoffice_refresh" = Option<String>, Cookie, description = "cookie flow only, with the X-Boxoffice-Session: cookie header")),
    responses((status = 200, body = TokenPair, headers(("Set-Cookie" = String, description = "cookie flow only: the rotated refresh-token cookie"))),
        JsonBody, Limited,
        (status = 401, description = "unauthorized: no refresh token, or one that is unknown, expired, revoked or reused", body = Problem),
        (status = 403, description = "forbidden: the cookie was sent without the X-Boxoffice-Session: cookie header", body = Problem)))]
async fn refresh(State(state): State<AppState>, headers: HeaderMap, Json(body): Json<RefreshBody>) -> Result<Response> {
    let token = required(presented_refresh_token(&headers, body)?)?;
    let pair = accounts::refresh(&state.store, &state.keys, &token).await?.into();
    Ok(token_response(&state, &headers, pair))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshBody,
    params(("X-Boxoffice-Session" = Option<String>, Header, description = "`cookie`: end the cookie's session and clear the cookie (204 even when the session was already gone)"),
        ("boxoffice_refresh" = Option<String>, Cookie, description = "cookie flow only, with the X-Boxoffice-Session: cookie header")),
    responses((status = 204, description = "the refresh token's session is ended: none of its refresh tokens works any more",
            headers(("Set-Cookie" = String, description = "cookie flow only: clears the refresh-token cookie"))),
        JsonBody, Limited,
        (status = 401, description = "unauthorized: JSON flow only: no refresh token, or one that is unknown or expired", body = Problem),
        (status = 403, description = "forbidden: the cookie was sent without the X-Boxoffice-Session: cookie header", body = Problem)))]
async fn logout(State(state): State<AppState>, headers: HeaderMap, Json(body): Json<RefreshBody>) -> Result<Response> {
    let cookie_flow = wants_cookie(&headers);
    let outcome = match required(presented_refresh_token(&headers, body)?) {
        Ok(token) => accounts::logout(&state.store, &state.keys, &token).await.map_err(Error::from),
        Err(e) => Err(e),
    };
    // A cookie-flow logout always clears the cookie, even when its session was already gone.
    match outcome {
        Ok(()) => {}
        Err(_) if cookie_flow => {}
        Err(e) => return Err(e),
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if cookie_flow {
        resp.headers_mut().insert(header::SET_COOKIE, refresh_cookie(&state, "", 0));
    }
    Ok(resp)
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserView), Bearer, Limited))]
async fn me(State(state): State<AppState>, AuthUser(p): AuthUser) -> Result<Json<UserView>> {
    let user = state
        .store
        .user_by_id(p.user_id)
        .await?
        .ok_or_else(|| Error::Unauthorized("account no longer exists".into()))?;
    Ok(Json(user.into()))
}
