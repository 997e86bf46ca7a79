//! Typed, prefixed identifiers (`ten_…`, `ch_…`, `ann_…`).
//!
//! The prefix tells a human (and a support engineer reading logs) what an id refers to, and the
//! type stops a channel id from being passed where an announcement id is expected. The body is a
//! ULID, so ids sort by creation time, which gives list endpoints a stable cursor order for free.

use std::fmt;
use std::marker::PhantomData;

/// Marker trait naming the prefix of one id kind.
pub trait IdKind {
    /// Prefix including the trailing underscore, e.g. `"ch_"`.
    const PREFIX: &'static str;
}

/// A typed id: a prefix plus a 26-character ULID.
pub struct Id<K: IdKind> {
    value: String,
    kind: PhantomData<K>,
}

impl<K: IdKind> Id<K> {
    /// Creates a fresh id; ids created later sort after earlier ones (millisecond precision).
    pub fn generate() -> Self {
        Self {
            value: format!("{}{}", K::PREFIX, ulid::Ulid::new()),
            kind: PhantomData,
        }
    }

    /// Parses an id received from a client. Returns `None` for a wrong prefix or a malformed
    /// body, which callers turn into "not found" rather than "bad request": an id that cannot
    /// exist simply does not exist.
    pub fn parse(raw: &str) -> Option<Self> {
        let body = raw.strip_prefix(K::PREFIX)?;
        ulid::Ulid::from_string(body).ok()?;
        Some(Self {
            value: raw.to_owned(),
            kind: PhantomData,
        })
    }

    /// Wraps a value read back from our own database (already validated when written).
    pub fn from_trusted(value: String) -> Self {
        Self {
            value,
            kind: PhantomData,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.value
    }
}

impl<K: IdKind> Clone for Id<K> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: IdKind> PartialEq for Id<K> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<K: IdKind> Eq for Id<K> {}

impl<K: IdKind> std::hash::Hash for Id<K> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl<K: IdKind> fmt::Debug for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

impl<K: IdKind> fmt::Display for Id<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

macro_rules! id_kind {
    ($(#[$doc:meta])* $kind:ident, $alias:ident, $prefix:literal) => {
        $(#[$doc])*
        pub enum $kind {}
        impl IdKind for $kind {
            const PREFIX: &'static str = $prefix;
        }
        $(#[$doc])*
        pub type $alias = Id<$kind>;
    };
}

id_kind!(
    /// A tenant: one customer organisation, owner of API keys and channels.
    Tenant, TenantId, "ten_"
);
id_kind!(
    /// A channel: one XMTP sender identity with its own subscriber list.
    Channel, ChannelId, "ch_"
);
id_kind!(
    /// An announcement: one message fanned out to a channel's audience.
    Announcement, AnnouncementId, "ann_"
);
id_kind!(
    /// A tenant API key (the id names it for listing and revoking; the secret is never stored).
    ApiKey, ApiKeyId, "key_"
);
id_kind!(
    /// A trigger: an on-chain event filter that creates a channel's announcements.
    Trigger, TriggerId, "trg_"
);
id_kind!(
    /// A watch: a per-subscriber condition on chain state that alerts only the subscriber
    /// whose own state crossed.
    Watch, WatchId, "wch_"
);
id_kind!(
    /// A tenant's webhook endpoint: a URL that receives signed event notifications.
    WebhookEndpoint, WebhookEndpointId, "wh_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_reject_other_prefixes() {
        let id = ChannelId::generate();
        assert!(id.as_str().starts_with("ch_"));
        assert_eq!(ChannelId::parse(id.as_str()), Some(id.clone()));
        assert!(AnnouncementId::parse(id.as_str()).is_none());
        assert!(ChannelId::parse("ch_not-a-ulid").is_none());
        // Keys that existed before key ids get `key_0` + 25 hex digits of their hash
        // (migration 0008): a valid id too.
        assert!(ApiKeyId::parse("key_0ABCDEF0123456789ABCDEF012").is_some());
    }
}
