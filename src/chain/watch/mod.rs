//! Watches: a per-subscriber condition on chain state ("my health factor fell below 1.2").
//!
//! A watch names a view function (`getUserAccountData(address user) returns (uint256, …,
//! uint256 healthFactor)`), binds its arguments (each subscriber's address, or constants), and
//! states a condition over the decoded outputs in the trigger condition language. The
//! evaluator (`crate::workers::watch_evaluator`) calls the function for every subscriber at a
//! pinned block, batched through Multicall3's `aggregate3` ([`multicall`]), and alerts only a
//! subscriber whose own state crossed, following the hysteresis rule in [`rule`].
//!
//! This file holds what the API accepts ([`WatchSpec`]), its validation into field errors (the
//! same [`FieldError`] the trigger validator produces), and the compiled form.

pub mod multicall;
pub mod rule;
mod signature;
#[cfg(test)]
mod tests;

use std::str::FromStr;

use alloy::dyn_abi::{DynSolValue, FunctionExt, JsonAbiExt};
use alloy::json_abi::Function;
use alloy::primitives::Address;
use serde::{Deserialize, Serialize};

use super::condition::Condition;
use super::config::ChainConfig;
use super::template::{Template, TemplateError, WatchRenderInput};
use super::trigger::{template_error_code, FieldError, ValidationErrors};

/// Longest function signature accepted, in bytes.
pub const MAX_FUNCTION_BYTES: usize = 2048;
/// Most inputs a watched function may take.
pub const MAX_FUNCTION_INPUTS: usize = 8;
/// Largest `every_blocks`.
pub const MAX_EVERY_BLOCKS: u64 = 100_000;
/// Largest `cooldown_blocks`.
pub const MAX_COOLDOWN_BLOCKS: u64 = 10_000_000;

/// A watch as submitted through the API and stored as JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WatchSpec {
    /// Chain to read; must be configured under `[[chains]]`.
    pub chain_id: u64,
    /// The contract whose view function is called.
    pub contract: String,
    /// Human-readable signature with named outputs, e.g.
    /// `getUserAccountData(address user) returns (uint256, uint256 healthFactor)`.
    pub function: String,
    /// One binding per function input.
    #[serde(default)]
    pub args: Vec<ArgBinding>,
    /// When true for a subscriber (and the subscriber is armed), that subscriber is alerted.
    pub condition: serde_json::Value,
    /// When true, a fired subscriber is armed again. Without it: once `condition` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rearm: Option<serde_json::Value>,
    /// minijinja template of the alert text.
    pub template: String,
    /// Only subscribers who receive this topic are watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Evaluate every this many blocks.
    #[serde(default = "one")]
    pub every_blocks: u64,
    /// After an alert, no new alert to the same subscriber for this many blocks.
    #[serde(default)]
    pub cooldown_blocks: u64,
}

fn one() -> u64 {
    1
}

/// How one function input gets its value: `{"arg": "user", "from": "subscriber"}` or
/// `{"arg": "asset", "value": "0x…"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArgBinding {
    pub arg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// A bound input: the subscriber's address or a constant.
#[derive(Debug, Clone)]
pub(super) enum Bound {
    Subscriber,
    Constant(DynSolValue),
}

/// A validated watch, ready to encode calls, decode results and render alerts.
#[derive(Debug)]
pub struct CompiledWatch {
    pub chain_id: u64,
    pub contract: Address,
    pub condition: Condition,
    /// `None`: re-arm once `condition` is false.
    pub rearm: Option<Condition>,
    pub template: Template,
    pub every_blocks: u64,
    pub cooldown_blocks: u64,
    function: Function,
    inputs: Vec<Bound>,
    output_names: Vec<String>,
}

impl WatchSpec {
    /// Validates every part and compiles the watch; all problems are reported at once.
    pub fn validate(&self, chains: &[ChainConfig]) -> Result<CompiledWatch, ValidationErrors> {
        let mut errors = Vec::new();
        let chain = chains.iter().find(|c| c.chain_id == self.chain_id);
        if chain.is_none() {
            errors.push(FieldError::new(
                "chain_id",
                "unknown_chain",
                format!("chain {} is not configured", self.chain_id),
            ));
        }
        let contract = Address::from_str(self.contract.trim())
            .map_err(|_| {
                errors.push(FieldError::new(
                    "contract",
                    "invalid_address",
                    format!("{:?} is not a 20-byte hex address", self.contract),
                ))
            })
            .ok();
        let function = signature::parse_function(&self.function)
            .map_err(|e| errors.push(e))
            .ok();
        let outputs = function
            .as_ref()
            .and_then(|f| signature::outputs_of(f, &mut errors));
        let inputs = function
            .as_ref()
            .map(|f| signature::bind_inputs(&self.args, f, &mut errors))
            .unwrap_or_default();
        let condition = outputs.as_ref().and_then(|o| {
            Condition::compile_at(&self.condition, o, "condition")
                .map_err(|e| errors.extend(e))
                .ok()
        });
        let rearm = match (&outputs, &self.rearm) {
            (Some(o), Some(json)) => Condition::compile_at(json, o, "rearm")
                .map_err(|e| errors.extend(e))
                .ok(),
            _ => None,
        };
        self.check_numbers(&mut errors);
        let template = Template::compile(&self.template)
            .map_err(|e| errors.push(template_field_error(&e)))
            .ok();
        let (Some(contract), Some(function), Some(outputs), Some(condition), Some(template), true) = (
            contract,
            function,
            outputs,
            condition,
            template,
            errors.is_empty(),
        ) else {
            return Err(ValidationErrors(errors));
        };
        let compiled = CompiledWatch {
            chain_id: self.chain_id,
            contract,
            condition,
            rearm,
            template,
            every_blocks: self.every_blocks,
            cooldown_blocks: self.cooldown_blocks,
            output_names: outputs.args().iter().map(|a| a.name.clone()).collect(),
            function,
            inputs,
        };
        // A template that only fails on real data would drop alerts later: render it once on
        // outputs of the right shape.
        if let Some(chain) = chain {
            let sample = outputs.sample_values();
            if let Err(e) = compiled.render(&sample, Address::repeat_byte(0x11), 1_000_000, chain) {
                return Err(ValidationErrors(vec![template_field_error(&e)]));
            }
        }
        Ok(compiled)
    }

    fn check_numbers(&self, errors: &mut Vec<FieldError>) {
        if !(1..=MAX_EVERY_BLOCKS).contains(&self.every_blocks) {
            errors.push(FieldError::new(
                "every_blocks",
                "invalid_every_blocks",
                format!("must be between 1 and {MAX_EVERY_BLOCKS}"),
            ));
        }
        if self.cooldown_blocks > MAX_COOLDOWN_BLOCKS {
            errors.push(FieldError::new(
                "cooldown_blocks",
                "invalid_cooldown_blocks",
                format!("must be at most {MAX_COOLDOWN_BLOCKS}"),
            ));
        }
        if let Some(topic) = &self.topic {
            if topic.trim().is_empty() || topic.len() > 64 {
                errors.push(FieldError::new(
                    "topic",
                    "invalid_topic",
                    "a topic name of 1 to 64 characters",
                ));
            }
        }
    }
}

fn template_field_error(e: &TemplateError) -> FieldError {
    FieldError::new("template", template_error_code(e), e.to_string())
}

/// Why one subscriber's call result could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum WatchCallError {
    /// The call reverted (e.g. an unknown user), or returned nothing.
    #[error("the call reverted")]
    Reverted,
    /// The return data does not decode as the declared outputs.
    #[error("the result does not decode as the declared outputs: {0}")]
    Decode(#[from] alloy::dyn_abi::Error),
}

impl CompiledWatch {
    /// Calldata of the view function for one subscriber.
    pub fn calldata(&self, subscriber: Address) -> Vec<u8> {
        let values: Vec<DynSolValue> = self
            .inputs
            .iter()
            .map(|b| match b {
                Bound::Subscriber => DynSolValue::Address(subscriber),
                Bound::Constant(v) => v.clone(),
            })
            .collect();
        // The values were type-checked against the inputs at validation.
        self.function
            .abi_encode_input(&values)
            .expect("bound values match the inputs")
    }

    /// Decodes one call's return data into the outputs, in declaration order.
    pub fn decode(&self, data: &[u8]) -> Result<Vec<DynSolValue>, WatchCallError> {
        if data.is_empty() {
            return Err(WatchCallError::Reverted);
        }
        Ok(self.function.abi_decode_output(data)?)
    }

    /// Output names in declaration order (`out<i>` for unnamed ones).
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// The alert text for one subscriber.
    pub fn render(
        &self,
        outputs: &[DynSolValue],
        subscriber: Address,
        block_number: u64,
        chain: &ChainConfig,
    ) -> Result<String, TemplateError> {
        let names: Vec<&str> = self.output_names.iter().map(String::as_str).collect();
        self.template.render_watch(&WatchRenderInput {
            output_names: &names,
            outputs,
            subscriber,
            contract: self.contract,
            block_number,
            chain_id: chain.chain_id,
            chain_name: &chain.name,
            explorer_url: chain.explorer_url.as_deref(),
        })
    }
}
