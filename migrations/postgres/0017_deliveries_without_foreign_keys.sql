-- Deliveries drop their foreign keys (issue 15). Postgres checks a foreign key with one query
-- per inserted row, so a 10-recipient announcement ran 20 of them (10 locking its channel row,
-- shared with every concurrent announcement of the channel): about 14% of Postgres's CPU
-- samples (perf) in the REST bench. They guarded nothing the code can do: a delivery is only
-- ever inserted in the statement or transaction that inserts its announcement, with the
-- announcement's own id and channel (the announcement keeps its foreign keys to its tenant and
-- channel), and no announcement or channel is ever deleted (channels are soft-deleted).
ALTER TABLE deliveries DROP CONSTRAINT deliveries_announcement_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_channel_id_fkey;
