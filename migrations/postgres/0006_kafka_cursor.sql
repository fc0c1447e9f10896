-- The Kafka sink's own cursor in the outbox: a row is published to RabbitMQ (or the
-- in-process workers) and to Kafka independently, so an outage of one delays only its copies.
ALTER TABLE outbox ADD COLUMN kafka_sent_at TIMESTAMPTZ;
CREATE INDEX outbox_kafka_unsent ON outbox (id) WHERE kafka_sent_at IS NULL;
