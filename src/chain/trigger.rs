//! Trigger definitions: what the API accepts (`TriggerSpec`), how it is validated (structured
//! field errors the HTTP layer turns into 422s), and the compiled form the watcher runs.

use alloy::dyn_abi::DynSolValue;
use alloy::primitives::{Address, LogData, B256};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

use super::condition::Condition;
use super::config::ChainConfig;
use super::event::{EventDef, EventParseError};
use super::template::{RenderInput, Template, TemplateError};

/// Most addresses one trigger may watch.
pub const MAX_ADDRESSES: usize = 100;

/// A trigger as submitted through the API and stored as JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// Chain to watch; must be configured under `[[chains]]`.
    pub chain_id: u64,
    /// A single contract address (alternative to `addresses`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Several contract addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Human-readable signature (`Swap(address indexed sender, ...)`) or an ABI JSON fragment.
    pub event: serde_json::Value,
    /// Optional condition over decoded arguments (see `condition` module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<serde_json::Value>,
    /// minijinja template for the announcement text.
    pub template: String,
    /// Confirmations before announcing; defaults to the chain's setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmations: Option<u64>,
    /// Opt-in history: first block to consider. Without it a trigger starts at the safe head
    /// current when it is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_block: Option<u64>,
}

/// One validation failure, addressed to a request field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path of the offending field (`event`, `condition.all[0].value`, `addresses[2]`).
    pub field: String,
    /// Stable snake_case code for clients.
    pub code: &'static str,
    /// Human-readable explanation.
    pub detail: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            detail: detail.into(),
        }
    }
}

/// All problems found in a trigger; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid trigger: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.detail)).collect::<Vec<_>>().join("; "))]
pub struct ValidationErrors(pub Vec<FieldError>);

/// A validated trigger, ready to decode, filter and render logs.
#[derive(Debug)]
pub struct CompiledTrigger {
    pub chain_id: u64,
    pub event: EventDef,
    pub addresses: Vec<Address>,
    pub condition: Option<Condition>,
    pub template: Template,
    /// Effective confirmation depth (the trigger's own or the chain default).
    pub confirmations: u64,
    arg_names: Vec<String>,
}

/// Where a log came from; the rest of the template context.
#[derive(Debug, Clone, Copy)]
pub struct LogMeta {
    pub address: Address,
    pub tx_hash: B256,
    pub block_number: u64,
    pub block_hash: B256,
    pub log_index: u64,
}

/// Why a log that looked like a match could not be turned into a text.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    /// The log's topics/data do not fit the event (e.g. same topic0, different indexing).
    #[error("log does not decode as the trigger's event: {0}")]
    Decode(#[from] alloy::dyn_abi::Error),
    /// The template failed on this particular log.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

impl TriggerSpec {
    /// Validates every part and compiles the trigger. All problems are reported at once.
    pub fn validate(&self, chains: &[ChainConfig]) -> Result<CompiledTrigger, ValidationErrors> {
        let mut errors = Vec::new();
        let chain = chains.iter().find(|c| c.chain_id == self.chain_id);
        if chain.is_none() {
            errors.push(FieldError::new(
                "chain_id",
                "unknown_chain",
                format!("chain {} is not configured", self.chain_id),
            ));
        }
        let addresses = self.parse_addresses(&mut errors);
        let event = match EventDef::parse(&self.event) {
            Ok(e) => Some(e),
            Err(e) => {
                errors.push(FieldError::new(
                    "event",
                    event_error_code(&e),
                    e.to_string(),
                ));
                None
            }
        };
        let condition = match (&event, &self.condition) {
            (Some(ev), Some(json)) => Condition::compile(json, ev)
                .map_err(|e| errors.extend(e))
                .ok(),
            _ => None,
        };
        let confirmations = self
            .confirmations
            .or(chain.map(|c| c.confirmations))
            .unwrap_or(0);
        if let (Some(chain), Some(c)) = (chain, self.confirmations) {
            if c == 0 || c > chain.reorg_window {
                errors.push(FieldError::new(
                    "confirmations",
                    "invalid_confirmations",
                    format!(
                        "must be between 1 and {} on chain {}",
                        chain.reorg_window, chain.chain_id
                    ),
                ));
            }
        }
        if self.from_block.is_some_and(|b| i64::try_from(b).is_err()) {
            errors.push(FieldError::new(
                "from_block",
                "invalid_from_block",
                format!("must be at most {}", i64::MAX),
            ));
        }
        let template = match Template::compile(&self.template) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.push(FieldError::new(
                    "template",
                    template_error_code(&e),
                    e.to_string(),
                ));
                None
            }
        };
        let (Some(event), Some(template), true) = (event, template, errors.is_empty()) else {
            return Err(ValidationErrors(errors));
        };
        let arg_names = event.args().iter().map(|a| a.name.clone()).collect();
        let compiled = CompiledTrigger {
            chain_id: self.chain_id,
            event,
            addresses,
            condition,
            template,
            confirmations,
            arg_names,
        };
        // A template that only fails on real data would silently drop announcements later:
        // render it once on a synthetic log of the right shape.
        if let Some(chain) = chain {
            let sample = compiled.event.sample_values();
            let meta = LogMeta {
                address: compiled.addresses.first().copied().unwrap_or_default(),
                tx_hash: B256::repeat_byte(0x5a),
                block_number: 1_000_000,
                block_hash: B256::repeat_byte(0x6b),
                log_index: 0,
            };
            if let Err(e) = compiled.render(&sample, &meta, chain) {
                return Err(ValidationErrors(vec![FieldError::new(
                    "template",
                    template_error_code(&e),
                    e.to_string(),
                )]));
            }
        }
        Ok(compiled)
    }

    fn parse_addresses(&self, errors: &mut Vec<FieldError>) -> Vec<Address> {
        // Every entry counts, repeated ones included: what is stored is what was sent.
        let given = usize::from(self.address.is_some()) + self.addresses.len();
        if given > MAX_ADDRESSES {
            errors.push(FieldError::new(
                "addresses",
                "too_many_addresses",
                format!("{given} addresses; at most {MAX_ADDRESSES}"),
            ));
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut push = |field: String, text: &str| match Address::from_str(text.trim()) {
            Ok(a) if !out.contains(&a) => out.push(a),
            Ok(_) => {}
            Err(_) => errors.push(FieldError::new(
                field,
                "invalid_address",
                format!("{text:?} is not a 20-byte hex address"),
            )),
        };
        if let Some(a) = &self.address {
            push("address".to_owned(), a);
        }
        for (i, a) in self.addresses.iter().enumerate() {
            push(format!("addresses[{i}]"), a);
        }
        if self.address.is_none() && self.addresses.is_empty() {
            errors.push(FieldError::new(
                "address",
                "address_required",
                "set address or addresses",
            ));
        }
        out
    }
}

impl CompiledTrigger {
    /// Decodes `log`, applies the condition, and renders the text: `Ok(None)` when the
    /// condition rejects the log.
    pub fn evaluate(
        &self,
        log: &LogData,
        meta: &LogMeta,
        chain: &ChainConfig,
    ) -> Result<Option<String>, MatchError> {
        let args = self.event.decode(log)?;
        if let Some(cond) = &self.condition {
            if !cond.eval(&args) {
                return Ok(None);
            }
        }
        Ok(Some(self.render(&args, meta, chain)?))
    }

    /// Whether this trigger watches logs emitted by `address` with first topic `topic0`.
    pub fn watches(&self, address: &Address, topic0: &B256) -> bool {
        self.event.topic0() == *topic0 && self.addresses.contains(address)
    }

    fn render(
        &self,
        args: &[DynSolValue],
        meta: &LogMeta,
        chain: &ChainConfig,
    ) -> Result<String, TemplateError> {
        let names: Vec<&str> = self.arg_names.iter().map(String::as_str).collect();
        self.template.render(&RenderInput {
            event_name: self.event.name(),
            arg_names: &names,
            args,
            tx_hash: meta.tx_hash,
            block_number: meta.block_number,
            block_hash: meta.block_hash,
            log_address: meta.address,
            log_index: meta.log_index,
            chain_id: chain.chain_id,
            chain_name: &chain.name,
            explorer_url: chain.explorer_url.as_deref(),
        })
    }
}

fn event_error_code(e: &EventParseError) -> &'static str {
    match e {
        EventParseError::Syntax(_) => "invalid_event",
        EventParseError::NotAnEvent(_) => "not_an_event",
        EventParseError::Anonymous => "anonymous_event",
        EventParseError::UnnamedArg(_) => "unnamed_argument",
        EventParseError::DuplicateArg(_) => "duplicate_argument",
        EventParseError::Types(_) => "invalid_event_types",
        EventParseError::TooLarge(_) => "event_too_large",
    }
}

pub(super) fn template_error_code(e: &TemplateError) -> &'static str {
    match e {
        TemplateError::TooLong => "template_too_long",
        TemplateError::Forbidden(_) => "template_forbidden_construct",
        TemplateError::Syntax(_) => "invalid_template",
        TemplateError::Render(_) => "template_render_failed",
        TemplateError::OutputTooLong => "template_output_too_long",
        TemplateError::TooSlow => "template_too_slow",
        TemplateError::Empty => "template_empty",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chains() -> Vec<ChainConfig> {
        vec![ChainConfig::new(
            31337,
            "anvil",
            vec!["http://127.0.0.1:8545".into()],
        )]
    }

    #[test]
    fn valid_swap_trigger_compiles() {
        let spec: TriggerSpec = serde_json::from_value(json!({
            "chain_id": 31337,
            "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "event": "Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, uint160 sqrtPriceX96, uint128 liquidity, int24 tick)",
            "condition": {"arg": "amount0", "op": ">=", "value": "1000000000000000000"},
            "template": "Swap {{ args.amount0 | units(18) }} by {{ args.sender | short }}",
            "confirmations": 3
        }))
        .unwrap();
        let t = spec.validate(&chains()).unwrap();
        assert_eq!(t.confirmations, 3);
        assert_eq!(t.addresses.len(), 1);
    }

    #[test]
    fn reports_every_problem_with_codes() {
        let spec: TriggerSpec = serde_json::from_value(json!({
            "chain_id": 5,
            "addresses": ["0x12", "0x5FbDB2315678afecb367f032d93F642f64180aa3"],
            "event": "Transfer(address indexed from, address indexed to, uint256 value)",
            "condition": {"arg": "amount", "op": ">", "value": 1},
            "template": "{{ args.value"
        }))
        .unwrap();
        let errs = spec.validate(&chains()).unwrap_err().0;
        let codes: Vec<_> = errs.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(
            codes,
            vec![
                ("chain_id", "unknown_chain"),
                ("addresses[0]", "invalid_address"),
                ("condition.arg", "unknown_argument"),
                ("template", "invalid_template"),
            ]
        );
    }

    #[test]
    fn template_is_rendered_on_a_sample() {
        let spec: TriggerSpec = serde_json::from_value(json!({
            "chain_id": 31337,
            "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "event": {"type": "event", "name": "Transfer", "inputs": [
                {"name": "from", "type": "address", "indexed": true},
                {"name": "to", "type": "address", "indexed": true},
                {"name": "value", "type": "uint256", "indexed": false}]},
            "template": "{{ args.value | units('x') }}"
        }))
        .unwrap();
        let errs = spec.validate(&chains()).unwrap_err().0;
        assert_eq!(errs[0].code, "template_render_failed");
    }

    #[test]
    fn huge_fixed_arrays_are_rejected() {
        let spec: TriggerSpec = serde_json::from_value(json!({
            "chain_id": 31337,
            "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "event": "Big(uint256[1000000][1000000] values)",
            "template": "{{ args.values | length }} rows"
        }))
        .unwrap();
        let errs = spec.validate(&chains()).unwrap_err().0;
        assert_eq!(errs[0].code, "invalid_event_types");
        let mut ok = spec.clone();
        ok.event = json!("Small(uint256[3][4] values)");
        assert!(ok.validate(&chains()).is_ok());
    }
}
