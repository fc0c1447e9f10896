-- Refresh sessions: one row per login, shared by every refresh token rotated from it (their
-- family_id is its id). Rotation and logout both update this row, so they are serialised by
-- its lock: a logout either ends the session before a rotation (which then fails) or after it
-- (and the rotated token belongs to an ended session).
CREATE TABLE refresh_sessions (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- users.session_epoch when the session began: a session of an older epoch is over
    user_epoch  BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    rotated_at  TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX refresh_sessions_user ON refresh_sessions (user_id) WHERE revoked_at IS NULL;

-- Any change of a user's role, by the engine or by hand, moves the epoch on in the same
-- statement: every session begun before it ends with it.
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION users_role_change_ends_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.session_epoch := OLD.session_epoch + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_role_change BEFORE UPDATE OF role ON users
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role)
    EXECUTE FUNCTION users_role_change_ends_sessions();

-- The sessions of the tokens issued so far: ended once every token of the family is revoked.
INSERT INTO refresh_sessions (id, user_id, user_epoch, created_at, revoked_at)
SELECT family_id, (array_agg(user_id))[1], 0, MIN(created_at),
       CASE WHEN bool_and(revoked_at IS NOT NULL) THEN MAX(revoked_at) END
FROM refresh_tokens GROUP BY family_id;
