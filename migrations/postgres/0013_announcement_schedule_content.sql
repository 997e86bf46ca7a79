-- Scheduling, cancel and rich content of announcements.
-- send_at: deliveries are created with next_attempt_at = send_at, so nothing is claimed before
-- it; the API shows `scheduled` until then. cancelled_at: set by POST …/cancel, which ends every
-- pending delivery `skipped` (reason `cancelled`); the API shows `cancelled` from then on.
-- content: the announcement's content as JSON (`{"type": "markdown"}`, a transaction reference,
-- a link); NULL is plain text. `text` stays the fallback every client can show.
ALTER TABLE announcements ADD COLUMN send_at TIMESTAMPTZ;
ALTER TABLE announcements ADD COLUMN cancelled_at TIMESTAMPTZ;
ALTER TABLE announcements ADD COLUMN content TEXT;
