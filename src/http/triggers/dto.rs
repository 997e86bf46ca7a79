//! The trigger resource's wire types (request, patch, response, the 422 body listing every
//! problem) and their conversions, kept apart from the handlers in `triggers.rs`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoResponses, ToSchema};

use crate::chain::{TriggerSpec, ValidationErrors};
use crate::http::error::{clip, ErrorBody};
use crate::store::Trigger;

/// A new trigger.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerIn {
    /// Chain to watch; must be configured under `[[chains]]`.
    #[schema(example = 1)]
    pub chain_id: u64,
    /// One contract address (or use `addresses`).
    #[schema(example = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640")]
    pub address: Option<String>,
    /// Several contract addresses (at most 100).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Human-readable event signature, or an ABI JSON fragment of the event (as an object or
    /// a string); at most 4 KiB and 64 arguments.
    #[schema(schema_with = event_schema, example = "Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, uint160 sqrtPriceX96, uint128 liquidity, int24 tick)")]
    pub event: serde_json::Value,
    /// Optional JSON condition over the decoded arguments: `{"arg","op","value"}` with
    /// `== != > >= < <= in`, combined with `all`, `any`, `not`.
    #[schema(value_type = Option<Object>)]
    pub condition: Option<serde_json::Value>,
    /// minijinja template for the announcement: `args.*`, `tx.hash`, `block.number`,
    /// `chain.name`, `log.address`; filters `units(decimals)`, `short`, `explorer_tx`, ….
    #[schema(
        example = "Swap of {{ args.amount0 | units(6) }} USDC in {{ tx.hash | explorer_tx }}"
    )]
    pub template: String,
    /// Confirmations before announcing (default: the chain's).
    pub confirmations: Option<u64>,
    /// Opt-in history: announce matching logs from this block on (capped by the chain's
    /// `max_backfill_blocks`). Without it the trigger is live from creation.
    pub from_block: Option<u64>,
}

impl From<TriggerIn> for TriggerSpec {
    fn from(t: TriggerIn) -> Self {
        TriggerSpec {
            chain_id: t.chain_id,
            address: t.address,
            addresses: t.addresses,
            event: t.event,
            condition: t.condition,
            template: t.template,
            confirmations: t.confirmations,
            from_block: t.from_block,
        }
    }
}

/// Changes to a trigger; omitted fields stay, `"condition": null` removes the condition.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerPatchIn {
    /// `true` pauses, `false` resumes. A resumed trigger continues from the current block:
    /// events that happened while it was paused are not announced.
    pub paused: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub condition: Option<Option<serde_json::Value>>,
    pub template: Option<String>,
}

/// Distinguishes `"condition": null` (Some(None)) from an absent field (None).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<serde_json::Value>>, D::Error> {
    Option::<serde_json::Value>::deserialize(d).map(Some)
}

#[derive(Serialize, ToSchema)]
pub struct TriggerOut {
    #[schema(example = "trg_01JD3S8Z6XKQ8W4N2M5V7B9C1D")]
    pub id: String,
    pub channel_id: String,
    pub chain_id: u64,
    /// Watched contract addresses, as submitted.
    pub addresses: Vec<String>,
    /// The event as submitted: a signature string or an ABI fragment object.
    #[schema(schema_with = event_schema)]
    pub event: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub condition: Option<serde_json::Value>,
    pub template: String,
    pub confirmations: Option<u64>,
    pub from_block: Option<u64>,
    pub paused: bool,
    /// Grows on every edit of the condition or template.
    pub revision: u64,
    /// First block the trigger considers.
    pub start_block: u64,
    /// Highest block scanned for it so far.
    pub scanned_to: Option<u64>,
    /// Block of the latest event it matched (null: none yet). Shown in listings.
    pub last_match_block: Option<u64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Trigger> for TriggerOut {
    fn from(t: Trigger) -> Self {
        let spec = t.spec;
        let addresses = spec.address.into_iter().chain(spec.addresses).collect();
        TriggerOut {
            id: t.id.to_string(),
            channel_id: t.channel_id.to_string(),
            chain_id: spec.chain_id,
            addresses,
            event: spec.event,
            condition: spec.condition,
            template: spec.template,
            confirmations: spec.confirmations,
            from_block: spec.from_block,
            paused: t.paused,
            revision: t.revision,
            start_block: t.start_block,
            scanned_to: t.scanned_to,
            last_match_block: None,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TriggerList {
    pub items: Vec<TriggerOut>,
    pub next_cursor: Option<String>,
}

/// One problem with a trigger, addressed to a request field.
#[derive(Serialize, ToSchema)]
pub struct FieldErrorOut {
    /// JSON path of the field, e.g. `condition.all[0].arg`.
    pub field: String,
    pub code: String,
    pub detail: String,
}

/// 422 body for an invalid trigger: the usual `code`/`detail` plus, when the trigger itself
/// was checked (`invalid_trigger`), every problem found. A body refused before that
/// (`invalid_body`, `duplicate_key`, `control_character`) has no `errors`.
#[derive(Serialize, ToSchema)]
pub struct TriggerValidationBody {
    #[schema(example = "invalid_trigger")]
    pub code: String,
    pub detail: String,
    #[serde(default)]
    pub errors: Vec<FieldErrorOut>,
}

/// An event is a signature string or an ABI fragment object.
fn event_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .description(Some(
                "A human-readable event signature, or an ABI JSON fragment of the event (an object, or a string holding one); at most 4 KiB and 64 arguments.",
            ))
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(ObjectBuilder::new().schema_type(Type::Object))
            .build(),
    )
}

/// What every trigger route may answer besides success (the same on all five routes).
#[derive(IntoResponses)]
#[allow(dead_code)] // Only documents responses; ApiError produces them.
pub(in crate::http) enum TriggerErrors {
    #[response(status = 401, description = "Missing or invalid API key")]
    Unauthorized(ErrorBody),
    #[response(
        status = 404,
        description = "No such object (or it belongs to another tenant)"
    )]
    NotFound(ErrorBody),
}

/// Most entries listed under `errors`; the detail says how many more there were.
const MAX_LISTED_ERRORS: usize = 50;

/// Every validation problem at once (up to [`MAX_LISTED_ERRORS`]), as a 422. Details quote
/// input and are clipped like every error detail.
pub(super) fn invalid(errors: ValidationErrors) -> Response {
    invalid_as("invalid_trigger", errors)
}

/// [`invalid`] with another top-level code (`invalid_watch` for watches).
pub(in crate::http) fn invalid_as(code: &str, errors: ValidationErrors) -> Response {
    let total = errors.0.len();
    let mut detail = ValidationErrors(errors.0.iter().take(5).cloned().collect()).to_string();
    if total > 5 {
        detail.push_str(&format!(" (and {} more)", total - 5));
    }
    let body = TriggerValidationBody {
        code: code.into(),
        detail: clip(detail),
        errors: errors
            .0
            .into_iter()
            .take(MAX_LISTED_ERRORS)
            .map(|e| FieldErrorOut {
                field: clip(e.field),
                code: e.code.into(),
                detail: clip(e.detail),
            })
            .collect(),
    };
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}
