-- A claim takes a channel's pending deliveries in priority order, then by id. This index keeps
-- them in exactly that order, so a claim reads its batch off the front of the index instead of
-- sorting every pending row of the channel (all 10,000 of a fresh broadcast) each time. It
-- replaces the (channel_id, next_attempt_at) index, which only narrowed the rows to sort.
CREATE INDEX deliveries_claim_order ON deliveries
    (channel_id, (CASE priority WHEN 'critical' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END), id)
    WHERE status = 'pending';
DROP INDEX deliveries_channel_due;
