//! What the `#[query]`/`#[mutation]`/`#[action]` expansions call. Not part of the API.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use inventory;
use kiln_values::Value;

use crate::{Error, FunctionKind, Visibility};

/// One function of the module, registered by its attribute.
pub struct Registration {
    pub name: &'static str,
    pub kind: FunctionKind,
    pub visibility: Visibility,
    pub handler: Handler,
}

/// How a registered function is run.
pub enum Handler {
    /// A query, mutation or action: decodes the arguments, runs the function, encodes its
    /// result.
    Call(fn(Value) -> Result<Value, Error>),
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

/// run-mutation from any context, for tests of the host's rules (the contexts offer only
/// the calls their kind may make).
pub fn raw_run_mutation<R: DeserializeOwned>(path: &str, args: impl Serialize) -> Result<R, Error> {
    crate::functions::run(crate::functions::Callee::Mutation, path, args)
}

/// run-action from any context, for tests of the host's rules.
pub fn raw_run_action<R: DeserializeOwned>(path: &str, args: impl Serialize) -> Result<R, Error> {
    crate::functions::run(crate::functions::Callee::Action, path, args)
}

pub fn encode_result<T: Serialize, E: Into<Error>>(result: Result<T, E>) -> Result<Value, Error> {
    let value = result.map_err(Into::into)?;
    let encoded = kiln_values::to_value(&value);
    // Free the typed result before the caller encodes the value as text: a large result
    // then needs about twice its size in guest memory, not three times.
    drop(value);
    encoded.map_err(|err| Error::new(format!("invalid return value: {err}")))
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
        let value = encode_result::<_, Error>(Ok(vec![1i64, 2])).unwrap();
        assert_eq!(value, Value::Array(vec![Value::Int64(1), Value::Int64(2)]));
        let err = encode_result::<i64, _>(Err(Error::with_data("no", "data"))).unwrap_err();
        assert_eq!(
            (err.message(), err.data()),
            ("no", Some(&Value::from("data")))
        );
    }
}
