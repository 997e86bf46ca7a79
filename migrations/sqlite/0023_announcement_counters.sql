-- Each announcement keeps its delivery counts and its sending pace on its own row (issue 15):
-- see migrations/postgres/0023 for what reads and keeps them. Pending = total − delivered −
-- failed − skipped.
ALTER TABLE announcements ADD COLUMN delivered_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE announcements ADD COLUMN failed_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE announcements ADD COLUMN skipped_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE announcements ADD COLUMN settled_at TEXT;
ALTER TABLE announcements ADD COLUMN pace_at TEXT;
ALTER TABLE announcements ADD COLUMN pace_settled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE announcements ADD COLUMN mark_at TEXT;
ALTER TABLE announcements ADD COLUMN mark_settled INTEGER NOT NULL DEFAULT 0;

UPDATE announcements SET
    delivered_count = (SELECT COUNT(*) FROM deliveries d
        WHERE d.announcement_id = announcements.id AND d.status = 'delivered'),
    failed_count = (SELECT COUNT(*) FROM deliveries d
        WHERE d.announcement_id = announcements.id AND d.status = 'failed'),
    skipped_count = (SELECT COUNT(*) FROM deliveries d
        WHERE d.announcement_id = announcements.id AND d.status = 'skipped'),
    settled_at = (SELECT MAX(updated_at) FROM deliveries d
        WHERE d.announcement_id = announcements.id AND d.status <> 'pending');
