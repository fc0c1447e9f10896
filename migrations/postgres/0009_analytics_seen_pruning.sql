-- The record of counted domain events is pruned by age (`ANALYTICS_DEDUP_RETENTION_HOURS`):
-- the pruning finds the old rows by this index instead of reading the whole table.
CREATE INDEX analytics_seen_applied ON analytics_seen (applied_at);
