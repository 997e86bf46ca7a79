//! Event definitions: parsing a user-supplied event (human-readable signature or ABI JSON
//! fragment) and decoding raw logs into named, typed arguments.
//!
//! Decoding uses alloy's runtime ABI (`dyn-abi`) because events are supplied at run time by API
//! users; the resolved decoder is built once per trigger so the hot path only decodes.

use alloy::dyn_abi::{DynSolEvent, DynSolType, DynSolValue, Specifier};
use alloy::json_abi::Event;
use alloy::primitives::{LogData, B256};

/// The comparable class of an event argument, used to type-check conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// `uintN`: compared as 256-bit unsigned integers.
    Uint,
    /// `intN`: compared as 256-bit signed integers (negative values included).
    Int,
    /// `address`: compared case-insensitively (as 20 bytes).
    Address,
    /// `bool`.
    Bool,
    /// `string` (not indexed): compared exactly.
    String,
    /// `bytes`, `bytesN`, and indexed dynamic values (which arrive as their keccak hash).
    Bytes,
    /// Arrays and tuples: renderable in templates, not comparable in conditions.
    Composite,
}

impl ArgKind {
    /// Human name used in validation messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ArgKind::Uint => "uint",
            ArgKind::Int => "int",
            ArgKind::Address => "address",
            ArgKind::Bool => "bool",
            ArgKind::String => "string",
            ArgKind::Bytes => "bytes",
            ArgKind::Composite => "array/tuple",
        }
    }
}

/// One event parameter as the engine sees it.
#[derive(Debug, Clone)]
pub struct ArgInfo {
    pub name: String,
    pub kind: ArgKind,
    pub ty: DynSolType,
    pub indexed: bool,
}

/// A parsed, resolved event ready to decode logs.
#[derive(Debug, Clone)]
pub struct EventDef {
    abi: Event,
    decoder: DynSolEvent,
    args: Vec<ArgInfo>,
    topic0: B256,
}

/// Why an event definition was rejected; the trigger validator maps these to field errors.
#[derive(Debug, thiserror::Error)]
pub enum EventParseError {
    /// The text is neither a valid signature nor a valid ABI JSON fragment.
    #[error("cannot parse event: {0}")]
    Syntax(String),
    /// The fragment parsed but is not an event (e.g. a function).
    #[error("ABI fragment is not an event (type {0:?})")]
    NotAnEvent(String),
    /// Anonymous events have no topic0, so they cannot be selected by signature.
    #[error("anonymous events are not supported")]
    Anonymous,
    /// Argument names are how conditions and templates refer to values.
    #[error("argument {0} has no name; name every argument")]
    UnnamedArg(usize),
    /// Two arguments with the same name would make `args.<name>` ambiguous.
    #[error("duplicate argument name {0:?}")]
    DuplicateArg(String),
    /// The type list cannot be resolved (bad type name, too many indexed args).
    #[error("invalid event types: {0}")]
    Types(String),
    /// Longer than [`MAX_EVENT_BYTES`] or with more than [`MAX_EVENT_ARGS`] arguments: no real
    /// event is, and parsing and storing one costs memory per trigger.
    #[error("{0}")]
    TooLarge(String),
}

/// Longest accepted event definition (signature text or serialized ABI fragment), in bytes.
pub const MAX_EVENT_BYTES: usize = 4096;
/// Most arguments an event may have.
pub const MAX_EVENT_ARGS: usize = 64;

impl EventDef {
    /// Parses `input`: a JSON object (ABI fragment), a JSON string holding one, or a
    /// human-readable signature such as `Transfer(address indexed from, address indexed to, uint256 value)`.
    pub fn parse(input: &serde_json::Value) -> Result<Self, EventParseError> {
        let size = match input {
            serde_json::Value::String(s) => s.len(),
            other => other.to_string().len(),
        };
        if size > MAX_EVENT_BYTES {
            return Err(EventParseError::TooLarge(format!(
                "the event definition is {size} bytes; at most {MAX_EVENT_BYTES}"
            )));
        }
        let abi = match input {
            serde_json::Value::String(s) if s.trim_start().starts_with('{') => Self::from_fragment(
                &serde_json::from_str(s).map_err(|e| EventParseError::Syntax(e.to_string()))?,
            )?,
            serde_json::Value::String(s) => {
                Event::parse(s.trim()).map_err(|e| EventParseError::Syntax(e.to_string()))?
            }
            serde_json::Value::Object(_) => Self::from_fragment(input)?,
            other => {
                return Err(EventParseError::Syntax(format!(
                    "expected a string or an object, got {other}"
                )))
            }
        };
        Self::from_abi(abi)
    }

    fn from_fragment(value: &serde_json::Value) -> Result<Event, EventParseError> {
        // A fragment copied from a full ABI carries "type": "event"; anything else is a mistake
        // worth reporting precisely rather than as a generic parse failure.
        if let Some(ty) = value.get("type").and_then(|t| t.as_str()) {
            if ty != "event" {
                return Err(EventParseError::NotAnEvent(ty.to_owned()));
            }
        }
        let mut fragment = value.clone();
        if let Some(obj) = fragment.as_object_mut() {
            obj.remove("type");
            obj.entry("anonymous")
                .or_insert(serde_json::Value::Bool(false));
        }
        serde_json::from_value(fragment).map_err(|e| EventParseError::Syntax(e.to_string()))
    }

    /// Builds the decoder from an already parsed ABI event.
    pub fn from_abi(abi: Event) -> Result<Self, EventParseError> {
        if abi.anonymous {
            return Err(EventParseError::Anonymous);
        }
        if abi.inputs.len() > MAX_EVENT_ARGS {
            return Err(EventParseError::TooLarge(format!(
                "the event has {} arguments; at most {MAX_EVENT_ARGS}",
                abi.inputs.len()
            )));
        }
        let mut args = Vec::with_capacity(abi.inputs.len());
        for (i, input) in abi.inputs.iter().enumerate() {
            if input.name.is_empty() {
                return Err(EventParseError::UnnamedArg(i));
            }
            if args.iter().any(|a: &ArgInfo| a.name == input.name) {
                return Err(EventParseError::DuplicateArg(input.name.clone()));
            }
            let ty = input
                .resolve()
                .map_err(|e| EventParseError::Types(e.to_string()))?;
            if !input.indexed && fixed_elements(&ty).is_none_or(|n| n > MAX_FIXED_ELEMENTS) {
                return Err(EventParseError::Types(format!(
                    "argument {:?} has more than {MAX_FIXED_ELEMENTS} fixed-size elements",
                    input.name
                )));
            }
            let kind = kind_of(&ty, input.indexed);
            args.push(ArgInfo {
                name: input.name.clone(),
                kind,
                ty,
                indexed: input.indexed,
            });
        }
        let decoder = abi
            .resolve()
            .map_err(|e| EventParseError::Types(e.to_string()))?;
        let topic0 = abi.selector();
        Ok(Self {
            abi,
            decoder,
            args,
            topic0,
        })
    }

    /// keccak256 of the canonical signature: the log's first topic.
    pub fn topic0(&self) -> B256 {
        self.topic0
    }

    /// Event name (`Swap`).
    pub fn name(&self) -> &str {
        &self.abi.name
    }

    /// Canonical signature (`Swap(address,address,int256,...)`).
    pub fn signature(&self) -> String {
        self.abi.signature()
    }

    /// The alloy ABI item, e.g. for storing the normalised definition.
    pub fn abi(&self) -> &Event {
        &self.abi
    }

    /// Arguments in declaration order.
    pub fn args(&self) -> &[ArgInfo] {
        &self.args
    }

    /// Looks an argument up by name.
    pub fn arg(&self, name: &str) -> Option<(usize, &ArgInfo)> {
        self.args.iter().enumerate().find(|(_, a)| a.name == name)
    }

    /// Decodes a log into argument values in declaration order.
    pub fn decode(&self, log: &LogData) -> Result<Vec<DynSolValue>, alloy::dyn_abi::Error> {
        let decoded = self.decoder.decode_log_data(log)?;
        let mut indexed = decoded.indexed.into_iter();
        let mut body = decoded.body.into_iter();
        let mut out = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            let next = if arg.indexed {
                indexed.next()
            } else {
                body.next()
            };
            // The decoder checked the counts against the same parameter list, so both
            // iterators have exactly the values we ask for.
            out.push(next.unwrap_or(DynSolValue::Bool(false)));
        }
        Ok(out)
    }

    /// A plausible value for every argument, used to test-render templates at validation time.
    pub fn sample_values(&self) -> Vec<DynSolValue> {
        self.args
            .iter()
            .map(|a| sample_for(&a.ty, a.indexed))
            .collect()
    }
}

fn kind_of(ty: &DynSolType, indexed: bool) -> ArgKind {
    match ty {
        DynSolType::Uint(_) => ArgKind::Uint,
        DynSolType::Int(_) => ArgKind::Int,
        DynSolType::Address => ArgKind::Address,
        DynSolType::Bool => ArgKind::Bool,
        // Indexed dynamic values are stored in the topic as their keccak hash (32 bytes).
        _ if indexed && ty.is_dynamic() => ArgKind::Bytes,
        DynSolType::String => ArgKind::String,
        DynSolType::Bytes | DynSolType::FixedBytes(_) | DynSolType::Function => ArgKind::Bytes,
        _ => ArgKind::Composite,
    }
}

/// Largest number of elements a fixed-size array argument may have. The decoder sizes its
/// buffers from the type, so `uint256[1000000][1000000]` would let one log exhaust memory.
const MAX_FIXED_ELEMENTS: usize = 4096;

/// Elements of a type counted through fixed-size arrays and tuples (`None` on overflow).
fn fixed_elements(ty: &DynSolType) -> Option<usize> {
    match ty {
        DynSolType::FixedArray(inner, n) => fixed_elements(inner)?.checked_mul(*n),
        DynSolType::Array(inner) => fixed_elements(inner),
        DynSolType::Tuple(items) => items
            .iter()
            .try_fold(0usize, |acc, t| acc.checked_add(fixed_elements(t)?)),
        _ => Some(1),
    }
}

/// Longest fixed array built for a sample log.
const SAMPLE_ARRAY_LEN: usize = 3;

fn sample_for(ty: &DynSolType, indexed: bool) -> DynSolValue {
    use alloy::primitives::{Address, I256, U256};
    if indexed && ty.is_dynamic() {
        return DynSolValue::FixedBytes(B256::repeat_byte(0xab), 32);
    }
    match ty {
        DynSolType::Uint(bits) => DynSolValue::Uint(U256::from(1_234_567_890u64), *bits),
        DynSolType::Int(bits) => {
            DynSolValue::Int(I256::try_from(-1_234_567_890i64).unwrap_or_default(), *bits)
        }
        DynSolType::Address => DynSolValue::Address(Address::repeat_byte(0x11)),
        DynSolType::Bool => DynSolValue::Bool(true),
        DynSolType::String => DynSolValue::String("sample".to_owned()),
        DynSolType::Bytes => DynSolValue::Bytes(vec![0xde, 0xad, 0xbe, 0xef]),
        DynSolType::FixedBytes(n) => DynSolValue::FixedBytes(B256::repeat_byte(0xcd), *n),
        DynSolType::Array(inner) => DynSolValue::Array(vec![sample_for(inner, false)]),
        DynSolType::FixedArray(inner, n) => {
            // A sample only needs the shape: cap the length so `uint256[1000000]` stays cheap.
            DynSolValue::FixedArray(vec![sample_for(inner, false); (*n).min(SAMPLE_ARRAY_LEN)])
        }
        DynSolType::Tuple(items) => {
            DynSolValue::Tuple(items.iter().map(|t| sample_for(t, false)).collect())
        }
        DynSolType::Function => DynSolValue::FixedBytes(B256::ZERO, 24),
        #[allow(unreachable_patterns)]
        _ => DynSolValue::Bool(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SWAP: &str = "Swap(address indexed sender, address indexed recipient, int256 amount0, int256 amount1, uint160 sqrtPriceX96, uint128 liquidity, int24 tick)";

    #[test]
    fn human_readable_swap_has_mainnet_topic0() {
        let def = EventDef::parse(&serde_json::json!(SWAP)).unwrap();
        assert_eq!(
            def.topic0().to_string(),
            "0xc42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67"
        );
        assert_eq!(def.args()[2].kind, ArgKind::Int);
        assert_eq!(def.args()[0].kind, ArgKind::Address);
    }

    #[test]
    fn json_fragment_parses_like_the_signature() {
        let frag = serde_json::json!({"type":"event","name":"Transfer","inputs":[
            {"name":"from","type":"address","indexed":true},
            {"name":"to","type":"address","indexed":true},
            {"name":"value","type":"uint256","indexed":false}]});
        let def = EventDef::parse(&frag).unwrap();
        assert_eq!(
            def.topic0().to_string(),
            "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
        );
    }

    #[test]
    fn rejects_functions_and_unnamed_args() {
        let f = serde_json::json!({"type":"function","name":"x","inputs":[]});
        assert!(matches!(
            EventDef::parse(&f),
            Err(EventParseError::NotAnEvent(_))
        ));
        let u = serde_json::json!("Transfer(address indexed, address indexed to, uint256 value)");
        assert!(matches!(
            EventDef::parse(&u),
            Err(EventParseError::UnnamedArg(0))
        ));
        assert!(EventDef::parse(&serde_json::json!("not an event")).is_err());
    }
}
