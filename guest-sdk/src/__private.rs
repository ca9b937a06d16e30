//! What the `#[query]`/`#[mutation]`/`#[action]` expansions call. Not part of the API.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use inventory;
use kiln_values::{FieldValidator, Validator, Value};

use crate::{Error, FunctionKind, Validate, Visibility};

/// One function of the module, registered by its attribute.
pub struct Registration {
    pub name: &'static str,
    pub kind: FunctionKind,
    pub visibility: Visibility,
    /// Builds its args validator; `None` when unchecked.
    pub args: Option<fn() -> Validator>,
    /// Builds its returns validator; `None` when unchecked.
    pub returns: Option<fn() -> Validator>,
    pub handler: Handler,
}

/// How a registered function is run.
pub enum Handler {
    /// A query, mutation or action: decodes the arguments, runs the function, encodes its
    /// result as Convex JSON text.
    Call(fn(Value) -> Result<String, Error>),
    /// An HTTP action, with its route.
    Http {
        route: Route,
        invoke: fn(crate::HttpRequest) -> Result<crate::HttpResponse, Error>,
    },
}

/// Where an HTTP action is served.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// `path` is a prefix (ending in `/`).
    pub prefix: bool,
}

inventory::collect!(Registration);

/// Every function the module registered.
pub(crate) fn registrations() -> impl Iterator<Item = &'static Registration> {
    inventory::iter::<Registration>.into_iter()
}

/// Decodes the arguments object into the function's argument type; a mismatch names the
/// field (`args.name: invalid type: integer `5`, expected a string`).
pub fn decode_args<A: DeserializeOwned>(args: Value) -> Result<A, Error> {
    kiln_values::from_value_at(args, "args")
        .map_err(|err| Error::new(format!("invalid arguments: {err}")))
}

/// For functions that take no argument value: anything but an empty object is a mistake
/// the caller should hear about.
pub fn no_args(args: Value) -> Result<(), Error> {
    match args {
        Value::Object(fields) if fields.is_empty() => Ok(()),
        Value::Object(fields) => {
            let names: Vec<&str> = fields.keys().map(String::as_str).collect();
            Err(Error::new(format!(
                "invalid arguments: this function takes no arguments, got {}",
                names.join(", ")
            )))
        }
        other => Err(Error::new(format!(
            "invalid arguments: expected an object, got {}",
            other.type_name()
        ))),
    }
}

/// What `-> Result<T, E>` returns when it succeeds, for the returns validator (a trait, so a
/// type alias of `Result` works too).
pub trait FunctionResult {
    type Ok;
}

impl<T, E> FunctionResult for Result<T, E> {
    type Ok = T;
}

/// The args validator of a function that takes no argument value: an empty object.
pub fn no_args_validator() -> Validator {
    Validator::Object(BTreeMap::new())
}

/// `v.literal(text)`.
pub fn string_literal(text: &str) -> Validator {
    Validator::Literal(Value::from(text))
}

/// `#[kiln(id = "table")]` on a field of type `T` (`Id`, or `Option<Id>`).
pub fn id_of<T: Validate + ?Sized>(table: &str) -> Validator {
    let id = Validator::Id(table.to_string());
    if T::MAY_BE_ABSENT {
        Validator::union([id, Validator::Null])
    } else {
        id
    }
}

/// Merges a `#[serde(flatten)]` field's object validator into `fields` (optional ones when
/// the flattened value itself may be null). Returns false when it is not an object, and
/// the outer object then cannot say which fields it has.
pub fn flatten_into(fields: &mut BTreeMap<String, FieldValidator>, flattened: Validator) -> bool {
    let (members, nullable) = match flattened {
        Validator::Object(inner) => (vec![inner], false),
        Validator::Union(members) => {
            let nullable = members.contains(&Validator::Null);
            let mut objects = Vec::new();
            for member in members {
                match member {
                    Validator::Object(inner) => objects.push(inner),
                    Validator::Null => {}
                    _ => return false,
                }
            }
            // A union of several objects flattens to fields that each may be absent.
            let several = objects.len() > 1;
            (objects, nullable || several)
        }
        _ => return false,
    };
    for inner in members {
        for (name, mut field) in inner {
            field.optional |= nullable;
            fields.insert(name, field);
        }
    }
    true
}

/// An internally tagged variant: its object with the tag field added.
pub fn with_tag(content: Validator, tag: &str, name: Validator) -> Validator {
    match content {
        Validator::Object(mut fields) => {
            fields.insert(tag.to_string(), FieldValidator::required(name));
            Validator::Object(fields)
        }
        _ => Validator::Any,
    }
}

thread_local! {
    /// The derived types whose validators are being built, innermost last.
    static BUILDING: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

/// Builds a derived type's validator, or `any` where the type contains itself (a tree of
/// nodes): a validator is a finite tree, so a recursive type's inner occurrence cannot be
/// spelled out.
pub fn build_once<T: ?Sized>(build: impl FnOnce() -> Validator) -> Validator {
    let name = std::any::type_name::<T>();
    if BUILDING.with(|building| building.borrow().contains(&name)) {
        return Validator::Any;
    }
    BUILDING.with(|building| building.borrow_mut().push(name));
    let validator = build();
    BUILDING.with(|building| building.borrow_mut().pop());
    validator
}

/// run-mutation from any context, for tests of the host's rules (the contexts offer only
/// the calls their kind may make).
pub fn raw_run_mutation<R: DeserializeOwned>(path: &str, args: impl Serialize) -> Result<R, Error> {
    crate::functions::run(crate::functions::Callee::Mutation, path, args)
}

/// run-action from any context, for tests of the host's rules.
pub fn raw_run_action<R: DeserializeOwned>(path: &str, args: impl Serialize) -> Result<R, Error> {
    crate::functions::run(crate::functions::Callee::Action, path, args)
}

/// Results whose text is at most this long are written straight from the typed value.
const DIRECT_TEXT_MAX_LEN: usize = 1 << 20;

/// A function's result as the Convex JSON text the host receives.
///
/// Written straight from the typed value when its text is short (no `Value` copy in
/// between: in `messages:list` the copy and its drop were a third of the guest's time).
/// A longer one goes through a `Value`: the typed result is freed before the text is
/// written into a buffer sized once, so it needs about twice its size in guest memory,
/// where a growing buffer beside the typed value could take four times.
pub fn encode_result<T: Serialize, E: Into<Error>>(result: Result<T, E>) -> Result<String, Error> {
    let value = result.map_err(Into::into)?;
    if let Some(text) = kiln_values::to_convex_json_text_within(&value, DIRECT_TEXT_MAX_LEN) {
        // Not dropped: the host throws the instance away once this call returns (a fresh
        // one per call), memory and all, so freeing the result piece by piece first is work
        // for nothing (`messages:list`'s 20 `Value`s: about 2.5% of the call's server CPU).
        std::mem::forget(value);
        return Ok(text);
    }
    let encoded = kiln_values::to_value(&value);
    drop(value);
    encoded
        .map(|value| value.to_convex_json_string())
        .map_err(|err| Error::new(format!("invalid return value: {err}")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Greet {
        name: String,
        times: Option<i64>,
    }

    fn object(fields: &[(&str, Value)]) -> Value {
        Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn arguments_decode_into_the_function_type() {
        let args = object(&[("name", Value::from("Ada")), ("times", Value::Int64(2))]);
        let greet: Greet = decode_args(args).unwrap();
        assert_eq!(
            greet,
            Greet {
                name: "Ada".into(),
                times: Some(2)
            }
        );
    }

    #[test]
    fn a_mismatched_argument_names_its_field() {
        let err = decode_args::<Greet>(object(&[("name", Value::Float64(1.0))])).unwrap_err();
        assert!(
            err.message()
                .starts_with("invalid arguments: args.name: invalid type"),
            "{err}"
        );
        let err = decode_args::<Greet>(object(&[])).unwrap_err();
        assert!(err.message().contains("missing field `name`"), "{err}");
    }

    #[test]
    fn functions_without_arguments_refuse_stray_ones() {
        assert!(no_args(object(&[])).is_ok());
        let err = no_args(object(&[("x", Value::Null)])).unwrap_err();
        assert_eq!(
            err.message(),
            "invalid arguments: this function takes no arguments, got x"
        );
    }

    #[test]
    fn results_and_errors_are_encoded() {
        let text = encode_result::<_, Error>(Ok(vec![1i64, 2])).unwrap();
        assert_eq!(
            text,
            Value::Array(vec![Value::Int64(1), Value::Int64(2)]).to_convex_json_string()
        );
        // A long result takes the way through a `Value`, to the same text.
        let long = "x".repeat(DIRECT_TEXT_MAX_LEN + 1);
        assert_eq!(
            encode_result::<_, Error>(Ok(long.clone())).unwrap(),
            format!("\"{long}\"")
        );
        let err = encode_result::<_, Error>(Ok(vec![u64::MAX])).unwrap_err();
        assert_eq!(
            err.message(),
            "invalid return value: [0]: integer 18446744073709551615 is out of range for int64"
        );
        let err = encode_result::<i64, _>(Err(Error::with_data("no", "data"))).unwrap_err();
        assert_eq!(
            (err.message(), err.data()),
            ("no", Some(&Value::from("data")))
        );
    }
}
