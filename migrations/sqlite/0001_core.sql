-- Core schema: users and refresh tokens, events (with the owner epoch used for fencing),
-- seats of seated events, bookings and their seats, idempotency records.

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    created_at    TEXT NOT NULL
);

CREATE TABLE refresh_tokens (
    id          BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   BLOB NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    expires_at  TEXT NOT NULL,
    spent_at    TEXT,
    revoked_at  TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE events (
    id              BLOB PRIMARY KEY,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    venue           TEXT NOT NULL,
    starts_at       TEXT NOT NULL,
    price_cents     INTEGER NOT NULL CHECK (price_cents >= 0),
    currency        TEXT NOT NULL,
    capacity        INTEGER NOT NULL CHECK (capacity >= 0),
    -- seats held or sold; the journal's fenced update keeps it and the bookings in step
    reserved        INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    seat_map        TEXT,
    max_per_booking INTEGER NOT NULL CHECK (max_per_booking >= 1),
    owner_epoch     INTEGER NOT NULL DEFAULT 0,
    owner_node      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    deleted_at      TEXT,
    CONSTRAINT events_no_oversell CHECK (reserved <= capacity)
);
CREATE INDEX events_starts_at ON events (starts_at, id) WHERE deleted_at IS NULL;

CREATE TABLE seats (
    event_id  BLOB NOT NULL REFERENCES events (id),
    seat_id   TEXT NOT NULL,
    PRIMARY KEY (event_id, seat_id)
);

CREATE TABLE bookings (
    id            BLOB PRIMARY KEY,
    event_id      BLOB NOT NULL REFERENCES events (id),
    user_id       BLOB NOT NULL REFERENCES users (id),
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    seats         TEXT NOT NULL DEFAULT '[]',
    status        TEXT NOT NULL CHECK (status IN ('held', 'confirmed', 'expired', 'cancelled')),
    cancel_reason TEXT,
    amount_cents  INTEGER NOT NULL,
    currency      TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    ticket_code   TEXT UNIQUE,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX bookings_user ON bookings (user_id, id);
CREATE INDEX bookings_event_live ON bookings (event_id) WHERE status IN ('held', 'confirmed');

-- Only live bookings have rows here: the primary key is what forbids one seat in two live bookings.
CREATE TABLE booking_seats (
    event_id   BLOB NOT NULL,
    seat_id    TEXT NOT NULL,
    booking_id BLOB NOT NULL REFERENCES bookings (id),
    PRIMARY KEY (event_id, seat_id),
    FOREIGN KEY (event_id, seat_id) REFERENCES seats (event_id, seat_id)
);
CREATE INDEX booking_seats_booking ON booking_seats (booking_id);

CREATE TABLE idempotency_keys (
    user_id      BLOB NOT NULL REFERENCES users (id),
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    booking_id   BLOB NOT NULL REFERENCES bookings (id),
    created_at   TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);
