-- Several nodes on one database: each node registers its internal address and heartbeat, and
-- each event has at most one owning node at a time, until its lease runs out. The fencing epoch
-- stays in events.owner_epoch (the journal's fenced update is the last word); the lease records
-- the epoch its owner took, so that a renewal or a release by a node that lost the event does
-- nothing.
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    addr         TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE event_leases (
    event_id    UUID PRIMARY KEY,
    -- NULL once given up (the actor stopped)
    owner_node  TEXT,
    epoch       BIGINT NOT NULL,
    lease_until TIMESTAMPTZ NOT NULL
);
