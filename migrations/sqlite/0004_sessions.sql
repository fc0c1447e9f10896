-- Refresh sessions: one row per login, shared by every refresh token rotated from it (their
-- family_id is its id). Rotation and logout both update this row (on SQLite, one writer at a
-- time), so a logout either ends the session before a rotation (which then fails) or after it
-- (and the rotated token belongs to an ended session).
CREATE TABLE refresh_sessions (
    id          BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- users.session_epoch when the session began: a session of an older epoch is over
    user_epoch  INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    rotated_at  TEXT,
    revoked_at  TEXT
);
CREATE INDEX refresh_sessions_user ON refresh_sessions (user_id) WHERE revoked_at IS NULL;

-- Any change of a user's role, by the engine or by hand, moves the epoch on in the same
-- transaction: every session begun before it ends with it.
ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;

CREATE TRIGGER users_role_change AFTER UPDATE OF role ON users
    FOR EACH ROW WHEN OLD.role IS NOT NEW.role
BEGIN
    UPDATE users SET session_epoch = OLD.session_epoch + 1 WHERE id = NEW.id;
END;

-- The sessions of the tokens issued so far: ended once every token of the family is revoked.
INSERT INTO refresh_sessions (id, user_id, user_epoch, created_at, revoked_at)
SELECT family_id, MIN(user_id), 0, MIN(created_at),
       CASE WHEN SUM(revoked_at IS NULL) = 0 THEN MAX(revoked_at) END
FROM refresh_tokens GROUP BY family_id;
