-- The lease token under which a channel's XMTP client state was last written. A replica
-- that kept the channel's client open since it last held the lease may reuse it (groups
-- resident in memory) only while this still names a lease it held.
ALTER TABLE channel_senders ADD COLUMN state_token BIGINT;
