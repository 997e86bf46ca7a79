//! Channel topics: their default modes, each subscriber's choices, and the SQL condition the
//! announcement fan-out and the send-time check use to decide who receives a topic.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::ConsentContext;
use crate::domain::{Address, ChannelId};
use crate::store::StoreResult;

/// Whether a topic's messages reach a subscriber who has not chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicMode {
    /// Opted in unless they opt out.
    On,
    /// Opted out unless they opt in.
    Off,
    /// Always delivered to active subscribers; cannot be turned off.
    Required,
}

impl TopicMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::On => "on",
            Self::Off => "off",
            Self::Required => "required",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "on" => Some(Self::On),
            "off" => Some(Self::Off),
            "required" => Some(Self::Required),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Topic {
    pub name: String,
    pub description: Option<String>,
    pub default_mode: TopicMode,
    pub created_at: DateTime<Utc>,
}

/// A topic as one subscriber sees it.
#[derive(Debug, Clone)]
pub struct TopicPreference {
    pub topic: Topic,
    /// Whether the subscriber receives it now (explicit choice, else the default).
    pub enabled: bool,
    /// Whether that comes from an explicit choice.
    pub explicit: bool,
}

/// Outcome of a topic preference change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreferenceOutcome {
    Set,
    /// The topic is `required`; it cannot be turned off.
    Required,
    UnknownTopic,
}

/// Channel topics, subscribers' choices, and the send-time check.
#[async_trait]
pub trait TopicStore: Send + Sync {
    /// Creates a topic; false if the name is taken.
    async fn create_topic(&self, channel: &ChannelId, topic: &Topic) -> StoreResult<bool>;
    async fn list_topics(&self, channel: &ChannelId) -> StoreResult<Vec<Topic>>;
    async fn get_topic(&self, channel: &ChannelId, name: &str) -> StoreResult<Option<Topic>>;
    /// Replaces description and default; `None` if there is no such topic.
    async fn update_topic(
        &self,
        channel: &ChannelId,
        name: &str,
        description: Option<&str>,
        mode: TopicMode,
    ) -> StoreResult<Option<Topic>>;
    /// Deletes a topic and every preference for it; false if absent.
    async fn delete_topic(&self, channel: &ChannelId, name: &str) -> StoreResult<bool>;
    /// Records an explicit topic choice and logs it (`topic_on`/`topic_off`) atomically.
    async fn set_topic_preference(
        &self,
        channel: &ChannelId,
        address: &Address,
        topic: &str,
        enabled: bool,
        context: &ConsentContext,
    ) -> StoreResult<PreferenceOutcome>;
    /// Every topic of the channel with this subscriber's effective choice.
    async fn topic_preferences(
        &self,
        channel: &ChannelId,
        address: &Address,
    ) -> StoreResult<Vec<TopicPreference>>;
    /// The send-time check for one topic: which of `addresses` are active subscribers that
    /// receive `topic` (it is enabled for them explicitly or by default, or it is `required`;
    /// a topic deleted since the announcement was made no longer filters).
    async fn topic_receivers(
        &self,
        channel: &ChannelId,
        topic: &str,
        addresses: &[String],
    ) -> StoreResult<std::collections::HashSet<String>>;
    /// The topic an announcement targets, if any.
    async fn announcement_topic(&self, announcement: &str) -> StoreResult<Option<String>>;
}

/// Topic row shape shared by both backends.
#[derive(sqlx::FromRow)]
pub(in crate::store) struct TopicRow {
    pub(in crate::store) name: String,
    pub(in crate::store) description: Option<String>,
    pub(in crate::store) default_mode: String,
    pub(in crate::store) created_at: DateTime<Utc>,
}

impl TopicRow {
    pub(in crate::store) fn into_topic(self) -> Topic {
        Topic {
            name: self.name,
            description: self.description,
            // The column's CHECK constraint admits only the three modes.
            default_mode: TopicMode::parse(&self.default_mode).unwrap_or(TopicMode::On),
            created_at: self.created_at,
        }
    }
}

/// SQL condition (for a `subscribers s` row) that the subscriber receives topic `param`
/// (a bind placeholder such as `$7`): the topic is `required`, or their explicit choice is on,
/// or they have none and the default is `on`. Used by the announcement fan-out.
pub(in crate::store) fn topic_filter(param: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM topics t WHERE t.channel_id = s.channel_id AND t.name = {param} \
         AND (t.default_mode = 'required' OR COALESCE((SELECT p.enabled FROM topic_preferences p \
         WHERE p.channel_id = s.channel_id AND p.address = s.address AND p.topic = t.name), \
         t.default_mode = 'on')))"
    )
}
