-- Sales figures built from the domain-event stream (`crate::stream::analytics`).

-- The analytics consumer's own cursor in the outbox (when it reads the outbox, i.e. without
-- Kafka): set in the transaction that applied the row's event to the figures.
ALTER TABLE outbox ADD COLUMN analytics_at TEXT;
CREATE INDEX outbox_analytics_unread ON outbox (id) WHERE analytics_at IS NULL;

-- Per event and hour (UTC, by the domain event's time): what happened in that hour.
CREATE TABLE analytics_hourly (
    event_id           BLOB NOT NULL,
    hour               TEXT NOT NULL,
    holds              INTEGER NOT NULL DEFAULT 0,
    tickets_held       INTEGER NOT NULL DEFAULT 0,
    bookings_confirmed INTEGER NOT NULL DEFAULT 0,
    tickets_sold       INTEGER NOT NULL DEFAULT 0,
    revenue_cents      INTEGER NOT NULL DEFAULT 0,
    cancellations      INTEGER NOT NULL DEFAULT 0,
    tickets_refunded   INTEGER NOT NULL DEFAULT 0,
    expiries           INTEGER NOT NULL DEFAULT 0,
    payment_failures   INTEGER NOT NULL DEFAULT 0,
    refunds            INTEGER NOT NULL DEFAULT 0,
    refunded_cents     INTEGER NOT NULL DEFAULT 0,
    check_ins          INTEGER NOT NULL DEFAULT 0,
    tickets_checked_in INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, hour)
);

-- Domain events already counted, by their id: a second copy (a Kafka record produced twice,
-- a replay after a restart, two consumers reading the same rows) changes nothing.
CREATE TABLE analytics_seen (
    id         BLOB PRIMARY KEY,
    event_id   BLOB NOT NULL,
    applied_at TEXT NOT NULL
);

-- The consumer's position in each partition of the Kafka topic, written in the transaction
-- of the figures it accounts for.
CREATE TABLE analytics_offsets (
    topic       TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (topic, partition_id)
);
