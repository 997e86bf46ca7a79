-- Announcements and idempotency records drop their foreign keys (issue 15), as deliveries did
-- in 0017. Each check is a query per inserted row that share-locks the referenced row
-- (FOR KEY SHARE): every concurrent announcement locked the same tenant row and the same
-- channel row, so Postgres wrote a row-lock record and, with two or more holders, a new
-- MultiXact for each (about 1.8 WAL records per announcement for the tenant row alone in the
-- REST bench). The code keeps what the keys guarded: an announcement is inserted only by the
-- statement or transaction that found its channel live and owned by its tenant, an idempotency
-- record only under the authenticated tenant, and no tenant, channel or announcement is ever
-- deleted (channels are soft-deleted).
ALTER TABLE announcements DROP CONSTRAINT announcements_tenant_id_fkey;
ALTER TABLE announcements DROP CONSTRAINT announcements_channel_id_fkey;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_tenant_id_fkey;
