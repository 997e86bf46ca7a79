//! The watched function: parsing its signature, binding its inputs (the subscriber's address
//! or constants, type-checked), and its outputs as the argument list conditions compile
//! against.

use alloy::dyn_abi::{DynSolType, Specifier};
use alloy::json_abi::{Event, EventParam, Function};

use super::{ArgBinding, Bound, MAX_FUNCTION_BYTES, MAX_FUNCTION_INPUTS};
use crate::chain::event::EventDef;
use crate::chain::trigger::FieldError;

pub(super) fn bind_inputs(
    args: &[ArgBinding],
    function: &Function,
    errors: &mut Vec<FieldError>,
) -> Vec<Bound> {
    let mut bound: Vec<Option<Bound>> = vec![None; function.inputs.len()];
    for (i, binding) in args.iter().enumerate() {
        let path = format!("args[{i}]");
        let Some(index) = function.inputs.iter().position(|p| p.name == binding.arg) else {
            let known: Vec<_> = function.inputs.iter().map(|p| p.name.as_str()).collect();
            errors.push(FieldError::new(
                format!("{path}.arg"),
                "unknown_argument",
                format!(
                    "{} has no input {:?} (inputs: {})",
                    function.name,
                    binding.arg,
                    known.join(", ")
                ),
            ));
            continue;
        };
        if bound[index].is_some() {
            errors.push(FieldError::new(
                format!("{path}.arg"),
                "duplicate_binding",
                format!("input {:?} is bound twice", binding.arg),
            ));
            continue;
        }
        let ty = function.inputs[index].resolve().ok();
        bound[index] = bind_one(binding, ty.as_ref(), &path, errors);
    }
    for (param, slot) in function.inputs.iter().zip(&bound) {
        if slot.is_none() && !args.iter().any(|b| b.arg == param.name) {
            errors.push(FieldError::new(
                "args",
                "unbound_argument",
                format!("input {:?} has no binding", param.name),
            ));
        }
    }
    if !bound.iter().any(|b| matches!(b, Some(Bound::Subscriber))) && errors.is_empty() {
        errors.push(FieldError::new(
            "args",
            "subscriber_not_bound",
            "bind one address input to the subscriber: {\"arg\": \"user\", \"from\": \"subscriber\"}",
        ));
    }
    bound.into_iter().flatten().collect()
}

fn bind_one(
    binding: &ArgBinding,
    ty: Option<&DynSolType>,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Bound> {
    match (&binding.from, &binding.value) {
        (Some(from), None) if from == "subscriber" => {
            if ty != Some(&DynSolType::Address) {
                errors.push(FieldError::new(
                    format!("{path}.from"),
                    "binding_type_mismatch",
                    format!("input {:?} is not an address", binding.arg),
                ));
                return None;
            }
            Some(Bound::Subscriber)
        }
        (Some(from), None) => {
            errors.push(FieldError::new(
                format!("{path}.from"),
                "invalid_binding",
                format!("unknown source {from:?}; the only source is \"subscriber\""),
            ));
            None
        }
        (None, Some(value)) => {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match ty.map(|t| t.coerce_str(&text)) {
                Some(Ok(v)) => Some(Bound::Constant(v)),
                _ => {
                    errors.push(FieldError::new(
                        format!("{path}.value"),
                        "invalid_literal",
                        format!("{text:?} is not a value of input {:?}", binding.arg),
                    ));
                    None
                }
            }
        }
        _ => {
            errors.push(FieldError::new(
                path,
                "invalid_binding",
                "give either \"from\": \"subscriber\" or a constant \"value\"",
            ));
            None
        }
    }
}

pub(super) fn parse_function(text: &str) -> Result<Function, FieldError> {
    if text.len() > MAX_FUNCTION_BYTES {
        return Err(FieldError::new(
            "function",
            "function_too_large",
            format!("at most {MAX_FUNCTION_BYTES} bytes"),
        ));
    }
    let function = Function::parse(text.trim())
        .map_err(|e| FieldError::new("function", "invalid_function", e.to_string()))?;
    if function.inputs.len() > MAX_FUNCTION_INPUTS {
        return Err(FieldError::new(
            "function",
            "function_too_large",
            format!("at most {MAX_FUNCTION_INPUTS} inputs"),
        ));
    }
    if let Some((i, _)) = function
        .inputs
        .iter()
        .enumerate()
        .find(|(_, p)| p.name.is_empty())
    {
        return Err(FieldError::new(
            "function",
            "unnamed_input",
            format!("input {i} has no name; name every input so args can bind it"),
        ));
    }
    if function.outputs.is_empty() {
        return Err(FieldError::new(
            "function",
            "function_without_outputs",
            "the function must return values (`returns (…)`)",
        ));
    }
    Ok(function)
}

/// The outputs as an argument list the condition compiler understands: an event whose
/// (non-indexed) arguments are the outputs, unnamed ones called `out<i>`.
pub(super) fn outputs_of(function: &Function, errors: &mut Vec<FieldError>) -> Option<EventDef> {
    let inputs = function
        .outputs
        .iter()
        .enumerate()
        .map(|(i, p)| EventParam {
            ty: p.ty.clone(),
            name: if p.name.is_empty() {
                format!("out{i}")
            } else {
                p.name.clone()
            },
            indexed: false,
            components: p.components.clone(),
            internal_type: p.internal_type.clone(),
        })
        .collect();
    let event = Event {
        name: function.name.clone(),
        inputs,
        anonymous: false,
    };
    EventDef::from_abi(event)
        .map_err(|e| {
            errors.push(FieldError::new(
                "function",
                "invalid_function_outputs",
                e.to_string(),
            ))
        })
        .ok()
}
