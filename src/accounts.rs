//! Accounts and their refresh sessions, below HTTP. A login opens a session; each refresh
//! rotates its token (a token used twice ends the session: it was stolen or replayed); logout
//! ends it. The store makes rotation and ending atomic with respect to each other (both update
//! the session's row), and any change of a user's role or password ends all the user's
//! sessions in the same transaction. The admin bootstrap never takes over an account it did
//! not create unless the operator says so.

use uuid::Uuid;

use crate::auth::{self, TokenKeys, hash_refresh_token, new_refresh_token};
use crate::domain::ids::UserId;
use crate::domain::user::{Email, Password, Role};
use crate::persistence::{RefreshTokenRow, Rotation, Store, StoreError, UserRow};

/// Tokens handed to a client.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The refresh token does not (or no longer) open anything.
    #[error("{0}")]
    Refused(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn token_row(user: UserId, session: Uuid, keys: &TokenKeys) -> (String, RefreshTokenRow) {
    let now = crate::domain::now();
    let (token, hash) = new_refresh_token();
    let row = RefreshTokenRow {
        id: Uuid::now_v7(),
        user_id: user,
        family_id: session,
        token_hash: hash,
        expires_at: now + keys.refresh_ttl,
        spent_at: None,
        revoked_at: None,
        created_at: now,
        session_ended: false,
    };
    (token, row)
}

fn issued(
    keys: &TokenKeys,
    user: UserId,
    role: Role,
    session: Uuid,
    refresh_token: String,
) -> Result<Issued, SessionError> {
    Ok(Issued {
        access_token: keys.issue_access(user, role, session)?,
        refresh_token,
        expires_in: keys.access_ttl.as_secs(),
    })
}

/// Opens a session for a user whose credentials were just checked (`user` as read then).
pub async fn open(store: &Store, keys: &TokenKeys, user: &UserRow) -> Result<Issued, SessionError> {
    let session = Uuid::now_v7();
    let (token, row) = token_row(user.id, session, keys);
    store.open_session(&row, user.session_epoch).await?;
    issued(keys, user.id, user.role, session, token)
}

/// Ends a session and revokes its access tokens on every node.
async fn end_session(store: &Store, keys: &TokenKeys, session: Uuid) -> Result<(), SessionError> {
    store.end_session(session, crate::domain::now()).await?;
    keys.revoke_session(session).await;
    Ok(())
}

/// Looks a refresh token up; a spent one is a reuse, which ends its session.
async fn usable(store: &Store, keys: &TokenKeys, token: &str) -> Result<RefreshTokenRow, SessionError> {
    let row = store
        .refresh_token_by_hash(&hash_refresh_token(token))
        .await?
        .ok_or(SessionError::Refused("refresh token is not valid"))?;
    let now = crate::domain::now();
    if row.revoked_at.is_some() || row.session_ended {
        return Err(SessionError::Refused("refresh token was revoked"));
    }
    if row.spent_at.is_some() {
        end_session(store, keys, row.family_id).await?;
        tracing::warn!(user_id = %row.user_id, session = %row.family_id, "refresh token reused; session ended");
        return Err(SessionError::Refused("refresh token was already used; its session is revoked"));
    }
    if row.expires_at <= now {
        return Err(SessionError::Refused("refresh token has expired"));
    }
    Ok(row)
}

/// Rotates a refresh token: the new pair carries the role the user has now.
pub async fn refresh(store: &Store, keys: &TokenKeys, token: &str) -> Result<Issued, SessionError> {
    let old = usable(store, keys, token).await?;
    let (token, row) = token_row(old.user_id, old.family_id, keys);
    match store.rotate_refresh_token(old.id, &row, crate::domain::now()).await? {
        Rotation::Rotated { role } => issued(keys, old.user_id, role, old.family_id, token),
        Rotation::SessionEnded => Err(SessionError::Refused("refresh token was revoked")),
        Rotation::AlreadySpent => {
            // Someone else spent it first: treat as reuse.
            end_session(store, keys, old.family_id).await?;
            Err(SessionError::Refused("refresh token was already used; its session is revoked"))
        }
    }
}

/// Ends the session of a refresh token. Once this returns, no token of the session works,
/// including one a concurrent refresh is handing out, and its access tokens are refused.
pub async fn logout(store: &Store, keys: &TokenKeys, token: &str) -> Result<(), SessionError> {
    let row = usable(store, keys, token).await?;
    end_session(store, keys, row.family_id).await
}

/// What the admin bootstrap did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    Created,
    /// The admin exists with this password already: nothing changed.
    Unchanged,
    /// The admin's password was replaced (its sessions ended).
    PasswordReplaced,
    /// An existing account was made admin with this password (its sessions ended).
    Promoted,
}

/// Makes sure the admin `email` exists with `password`. An existing account that is not an
/// admin is promoted only if `promote_existing` (its password replaced and its sessions ended),
/// else this refuses: someone may have registered the address before the operator chose it.
pub async fn bootstrap_admin(
    store: &Store,
    email: &str,
    password: &str,
    promote_existing: bool,
) -> anyhow::Result<Bootstrap> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("ADMIN_EMAIL {e}"))?;
    let password = Password::parse(password.to_owned()).map_err(|e| anyhow::anyhow!("ADMIN_PASSWORD {e}"))?;
    // Twice at most: an account registered between the look-up and the insert is decided again.
    for _ in 0..2 {
        let existing = store.user_by_email(email.as_str()).await?;
        let Some(user) = existing else {
            let hash = auth::hash_password(password.expose().to_owned()).await?;
            match store.insert_user(&UserRow::new(email.as_str(), hash, Role::Admin)).await {
                Ok(()) => return Ok(Bootstrap::Created),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let outcome = match user.role {
            Role::Admin => {
                if auth::verify_password(password.expose().to_owned(), Some(user.password_hash.clone())).await {
                    return Ok(Bootstrap::Unchanged);
                }
                Bootstrap::PasswordReplaced
            }
            Role::User if promote_existing => Bootstrap::Promoted,
            Role::User => anyhow::bail!(
                "ADMIN_EMAIL {} belongs to an existing account that is not an admin, and the bootstrap \
                 does not promote an account it did not create (anyone may have registered that address). \
                 Choose another ADMIN_EMAIL, or set ADMIN_PROMOTE_EXISTING=true to make that account the \
                 admin: its password becomes ADMIN_PASSWORD and all its sessions end",
                email.as_str()
            ),
        };
        let hash = auth::hash_password(password.expose().to_owned()).await?;
        if store.reset_account(user.id, Role::Admin, &hash, crate::domain::now()).await? {
            return Ok(outcome);
        }
    }
    anyhow::bail!("ADMIN_EMAIL: the account changed while the admin was being set up; start again")
}
