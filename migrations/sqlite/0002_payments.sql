-- Payments (one saga per payment, its state persisted at every step), the transactional
-- outbox, the record of notifications already delivered, and ticket check-in.

ALTER TABLE bookings ADD COLUMN checked_in_at TEXT;

CREATE TABLE payments (
    id              BLOB PRIMARY KEY,
    booking_id      BLOB NOT NULL,
    event_id        BLOB NOT NULL,
    user_id         BLOB NOT NULL,
    method          TEXT NOT NULL CHECK (method IN ('card', 'mobile_money')),
    -- the card token or phone number as given to the provider
    instrument      TEXT NOT NULL,
    amount_cents    INTEGER NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded')),
    -- where the saga is; 'done' sagas are not resumed after a restart
    saga_step       TEXT NOT NULL CHECK (saga_step IN ('initiating', 'awaiting', 'refunding', 'done')),
    provider_ref    TEXT,
    -- the provider's verdict, recorded by the webhook (or a status poll) before the saga acts on it
    provider_status TEXT CHECK (provider_status IN ('succeeded', 'failed')),
    provider_reason TEXT,
    failure_reason  TEXT,
    deadline_at     TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash    TEXT,
    request_id      TEXT,
    -- the process running the saga, until its lease runs out (several nodes, one saga each)
    owner_node      TEXT,
    lease_until     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
-- At most one payment per booking is under way or has succeeded.
CREATE UNIQUE INDEX payments_one_live ON payments (booking_id) WHERE status IN ('pending', 'succeeded');
CREATE UNIQUE INDEX payments_idempotency ON payments (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX payments_unfinished ON payments (id) WHERE saga_step <> 'done';
CREATE INDEX payments_booking ON payments (booking_id);

-- Written in the same transaction as the change it announces; the relay publishes and marks it.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    topic       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    request_id  TEXT,
    created_at  TEXT NOT NULL,
    sent_at     TEXT
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Notifications by message id: claimed ('sending', until a lease runs out) before the e-mail
-- goes, 'sent' after; a redelivered or concurrently delivered copy sends nothing.
CREATE TABLE deliveries (
    message_id    TEXT PRIMARY KEY,
    state         TEXT NOT NULL CHECK (state IN ('sending', 'sent')),
    claimed_until TEXT NOT NULL,
    sent_at       TEXT
);
