-- Core schema: users and refresh tokens, events (with the owner epoch used for fencing),
-- seats of seated events, bookings (with their idempotency records) and their seats.

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('user', 'admin')),
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE refresh_tokens (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   UUID NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    expires_at  TIMESTAMPTZ NOT NULL,
    spent_at    TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE events (
    id              UUID PRIMARY KEY,
    title           TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    venue           TEXT NOT NULL,
    starts_at       TIMESTAMPTZ NOT NULL,
    price_cents     BIGINT NOT NULL CHECK (price_cents >= 0),
    currency        TEXT NOT NULL,
    capacity        BIGINT NOT NULL CHECK (capacity >= 0),
    -- seats held or sold; the journal's fenced update keeps it and the bookings in step
    reserved        BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    seat_map        TEXT,
    max_per_booking BIGINT NOT NULL CHECK (max_per_booking >= 1),
    owner_epoch     BIGINT NOT NULL DEFAULT 0,
    owner_node      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    deleted_at      TIMESTAMPTZ,
    CONSTRAINT events_no_oversell CHECK (reserved <= capacity)
);
CREATE INDEX events_starts_at ON events (starts_at, id) WHERE deleted_at IS NULL;

CREATE TABLE seats (
    event_id  UUID NOT NULL REFERENCES events (id),
    seat_id   TEXT NOT NULL,
    PRIMARY KEY (event_id, seat_id)
);

-- The journal is the only writer of bookings and booking_seats, and what they
-- point at is locked (the event row) or never deleted (users): foreign keys there would only add
-- a per-row trigger to every batch (measured: about 3x the batch write time), so they have none.
CREATE TABLE bookings (
    id            UUID PRIMARY KEY,
    event_id      UUID NOT NULL,
    user_id       UUID NOT NULL,
    quantity      BIGINT NOT NULL CHECK (quantity > 0),
    seats         TEXT NOT NULL DEFAULT '[]',
    status        TEXT NOT NULL CHECK (status IN ('held', 'confirmed', 'expired', 'cancelled')),
    cancel_reason TEXT,
    amount_cents  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    ticket_code   TEXT,
    -- the idempotency record lives in the row it produced: written in the same statement, and
    -- one index entry instead of another table per claim
    idempotency_key TEXT,
    request_hash    TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX bookings_user ON bookings (user_id, id);
CREATE UNIQUE INDEX bookings_ticket_code ON bookings (ticket_code) WHERE ticket_code IS NOT NULL;
CREATE INDEX bookings_idempotency ON bookings (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX bookings_event_live ON bookings (event_id) WHERE status IN ('held', 'confirmed');

-- Only live bookings have rows here: the primary key is what forbids one seat in two live bookings.
CREATE TABLE booking_seats (
    event_id   UUID NOT NULL,
    seat_id    TEXT NOT NULL,
    booking_id UUID NOT NULL,
    PRIMARY KEY (event_id, seat_id),
    FOREIGN KEY (event_id, seat_id) REFERENCES seats (event_id, seat_id)
);
CREATE INDEX booking_seats_booking ON booking_seats (booking_id);
