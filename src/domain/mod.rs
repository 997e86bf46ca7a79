//! Domain types and rules: typed ids, Ethereum addresses, announcement payload limits.
//!
//! Nothing here knows about HTTP or SQL; both layers convert to and from these types, so a rule
//! (say, what a valid address is) lives in exactly one place.

pub mod address;
pub mod announcement;
pub mod content;
pub mod ids;
pub mod name;
pub mod siwe;

pub use address::{Address, AddressError};
pub use announcement::{AnnouncementText, Priority, TextError};
pub use content::{ContentError, RichContent, TransactionMetadata};
pub use ids::{
    AnnouncementId, ApiKeyId, ChannelId, TenantId, TriggerId, WatchId, WebhookEndpointId,
};
