-- channel_state and inbound_peers drop their foreign keys to channels (issue 15). Postgres checks
-- a foreign key with one locking query per inserted row: a first contact writes about five
-- state rows per new DM and one inbound peer, so 10,000 new DMs ran 60,000 checks, each
-- share-locking the same channel row. Both tables are written only by the holder of the
-- channel's sender lease (channel_senders keeps its foreign key, so a lease exists only for a
-- channel that exists), and no channel is ever deleted (channels are soft-deleted).
ALTER TABLE channel_state DROP CONSTRAINT channel_state_channel_id_fkey;
ALTER TABLE inbound_peers DROP CONSTRAINT inbound_peers_channel_id_fkey;
