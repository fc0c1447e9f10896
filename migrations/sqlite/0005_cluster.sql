-- Node registry and event ownership leases (see the PostgreSQL migration; a SQLite database
-- has one process, which always finds the leases free or its own).
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    addr         TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);

CREATE TABLE event_leases (
    event_id    BLOB PRIMARY KEY,
    owner_node  TEXT,
    epoch       INTEGER NOT NULL,
    lease_until TEXT NOT NULL
);
