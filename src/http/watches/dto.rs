//! The watch resource's wire types (request, patch, response) and their conversions, kept
//! apart from the handlers in `watches.rs`. Invalid watches answer the trigger resource's 422
//! body with the code `invalid_watch`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::chain::watch::{ArgBinding, WatchSpec};
use crate::store::Watch;

/// How one function input is bound: to each subscriber's address, or to a constant.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArgBindingDto {
    /// The function input's name.
    #[schema(example = "user")]
    pub arg: String,
    /// `"subscriber"`: the subscriber's address (the input must be an `address`).
    #[schema(example = "subscriber")]
    pub from: Option<String>,
    /// A constant of the input's type (numbers may be strings of any size).
    #[schema(value_type = Option<Object>)]
    pub value: Option<serde_json::Value>,
}

/// A new watch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchIn {
    /// Chain to read; must be configured under `[[chains]]`.
    #[schema(example = 1)]
    pub chain_id: u64,
    /// The contract whose view function is called for each subscriber.
    #[schema(example = "0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2")]
    pub contract: String,
    /// Human-readable view function signature with its outputs; name the outputs the
    /// condition and template use (unnamed ones are `out0`, `out1`, …).
    #[schema(
        example = "getUserAccountData(address user) returns (uint256, uint256, uint256, uint256, uint256, uint256 healthFactor)"
    )]
    pub function: String,
    /// One binding per function input; at least one address input bound to the subscriber.
    #[serde(default)]
    pub args: Vec<ArgBindingDto>,
    /// Condition over the decoded outputs (the trigger condition language): an armed
    /// subscriber for whom it is true is alerted once and disarmed.
    #[schema(value_type = Object)]
    pub condition: serde_json::Value,
    /// Re-arm condition (hysteresis): a disarmed subscriber is armed again once it is true.
    /// Without it, once `condition` is false.
    #[schema(value_type = Option<Object>)]
    pub rearm: Option<serde_json::Value>,
    /// minijinja template of the alert: `outputs.<name>`, `subscriber`, `contract`,
    /// `block.number`, `chain.name`; filters `units(decimals)`, `short`, ….
    #[schema(
        example = "Health factor {{ outputs.healthFactor | units(18) }} for {{ subscriber | short }}"
    )]
    pub template: String,
    /// Only subscribers who receive this topic are watched.
    pub topic: Option<String>,
    /// Evaluate every this many blocks (default 1).
    pub every_blocks: Option<u64>,
    /// After an alert, no new alert to the same subscriber for this many blocks (default 0).
    pub cooldown_blocks: Option<u64>,
}

impl From<WatchIn> for WatchSpec {
    fn from(w: WatchIn) -> Self {
        WatchSpec {
            chain_id: w.chain_id,
            contract: w.contract,
            function: w.function,
            args: w.args.into_iter().map(Into::into).collect(),
            condition: w.condition,
            rearm: w.rearm,
            template: w.template,
            topic: w.topic,
            every_blocks: w.every_blocks.unwrap_or(1),
            cooldown_blocks: w.cooldown_blocks.unwrap_or(0),
        }
    }
}

impl From<ArgBindingDto> for ArgBinding {
    fn from(b: ArgBindingDto) -> Self {
        ArgBinding {
            arg: b.arg,
            from: b.from,
            value: b.value,
        }
    }
}

impl From<ArgBinding> for ArgBindingDto {
    fn from(b: ArgBinding) -> Self {
        ArgBindingDto {
            arg: b.arg,
            from: b.from,
            value: b.value,
        }
    }
}

/// Changes to a watch; omitted fields stay, `"rearm": null` removes the re-arm condition.
/// Subscribers keep their armed/alerted state across edits.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchPatchIn {
    /// `true` pauses, `false` resumes.
    pub paused: Option<bool>,
    #[schema(value_type = Option<Object>)]
    pub condition: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub rearm: Option<Option<serde_json::Value>>,
    pub template: Option<String>,
    pub cooldown_blocks: Option<u64>,
    pub every_blocks: Option<u64>,
}

/// Distinguishes `"rearm": null` (Some(None)) from an absent field (None).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<serde_json::Value>>, D::Error> {
    Option::<serde_json::Value>::deserialize(d).map(Some)
}

#[derive(Serialize, ToSchema)]
pub struct WatchOut {
    #[schema(example = "wch_01JD3S8Z6XKQ8W4N2M5V7B9C1D")]
    pub id: String,
    pub channel_id: String,
    pub chain_id: u64,
    pub contract: String,
    pub function: String,
    pub args: Vec<ArgBindingDto>,
    #[schema(value_type = Object)]
    pub condition: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub rearm: Option<serde_json::Value>,
    pub template: String,
    pub topic: Option<String>,
    pub every_blocks: u64,
    pub cooldown_blocks: u64,
    pub paused: bool,
    /// Grows on every edit.
    pub revision: u64,
    /// The last block at which every subscriber was evaluated.
    pub evaluated_block: Option<u64>,
    /// Subscribers currently alerted and waiting for the re-arm condition.
    pub alerted: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Watch> for WatchOut {
    fn from(w: Watch) -> Self {
        let spec = w.spec;
        WatchOut {
            id: w.id.to_string(),
            channel_id: w.channel_id.to_string(),
            chain_id: spec.chain_id,
            contract: spec.contract,
            function: spec.function,
            args: spec.args.into_iter().map(Into::into).collect(),
            condition: spec.condition,
            rearm: spec.rearm,
            template: spec.template,
            topic: spec.topic,
            every_blocks: spec.every_blocks,
            cooldown_blocks: spec.cooldown_blocks,
            paused: w.paused,
            revision: w.revision,
            evaluated_block: w.evaluated_block,
            alerted: w.alerted,
            created_at: w.created_at,
            updated_at: w.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WatchList {
    pub items: Vec<WatchOut>,
    pub next_cursor: Option<String>,
}
