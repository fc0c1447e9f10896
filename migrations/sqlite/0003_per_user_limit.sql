-- The organiser's limit of seats one account may hold and buy for an event, across its
-- bookings (the event actor enforces it). Existing events get the default of new ones.
ALTER TABLE events ADD COLUMN max_per_user BIGINT NOT NULL DEFAULT 20 CHECK (max_per_user >= 1);
