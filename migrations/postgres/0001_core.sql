-- Core schema: users and refresh tokens, events (with the owner epoch used for fencing),
-- seats of seated events, bookings and their seats, idempotency records.

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

CREATE TABLE bookings (
    id            UUID PRIMARY KEY,
    event_id      UUID NOT NULL REFERENCES events (id),
    user_id       UUID NOT NULL REFERENCES users (id),
    quantity      BIGINT NOT NULL CHECK (quantity > 0),
    seats         TEXT NOT NULL DEFAULT '[]',
    status        TEXT NOT NULL CHECK (status IN ('held', 'confirmed', 'expired', 'cancelled')),
    cancel_reason TEXT,
    amount_cents  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    ticket_code   TEXT UNIQUE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX bookings_user ON bookings (user_id, id);
CREATE INDEX bookings_event_live ON bookings (event_id) WHERE status IN ('held', 'confirmed');

-- Only live bookings have rows here: the primary key is what forbids one seat in two live bookings.
CREATE TABLE booking_seats (
    event_id   UUID NOT NULL,
    seat_id    TEXT NOT NULL,
    booking_id UUID NOT NULL REFERENCES bookings (id),
    PRIMARY KEY (event_id, seat_id),
    FOREIGN KEY (event_id, seat_id) REFERENCES seats (event_id, seat_id)
);
CREATE INDEX booking_seats_booking ON booking_seats (booking_id);

CREATE TABLE idempotency_keys (
    user_id      UUID NOT NULL REFERENCES users (id),
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    booking_id   UUID NOT NULL REFERENCES bookings (id),
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, key)
);
