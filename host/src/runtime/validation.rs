//! Argument and return-value validation: every call's arguments are checked against the
//! function's `args` validator before it runs, and its return value against `returns` after
//! (a mutation's before it commits), so a caller never reaches a function with arguments
//! it did not declare, and never receives a value it did not promise.
//!
//! A mismatch is a function error worded like Convex's, with Kiln's path format:
//! `ArgumentValidationError: args.user.age: expected int64, got string` and
//! `ReturnsValidationError: returns.count: expected float64, got string`.

use kiln_values::{Validator, Value};

use super::invoke::FunctionFailure;
use super::returned::Returned;
use super::{FunctionSpec, Runtime};
use crate::database::id::DocumentId;
use crate::database::transaction::Transaction;

/// Whether `validator` accepts the value of `text` (once the text is held to the limits)
/// without reading it: `v.any()`, and `v.array(v.any())` for an array (what the Rust SDK
/// declares for a `Vec<Value>` result, `messages:list`'s).
fn accepts_unread(validator: &Validator, text: &str) -> bool {
    match validator {
        Validator::Any => true,
        // A Convex JSON value that starts with `[` is an array (a tagged one is an object).
        Validator::Array(element) => {
            matches!(**element, Validator::Any) && text.trim_start().starts_with('[')
        }
        _ => false,
    }
}

impl Runtime {
    /// Checks a call's arguments against `spec`'s `args` validator, if it has one. Ids are
    /// resolved in `transaction` (the caller's, for a call inside it), else at the latest
    /// commit.
    pub(crate) fn check_args(
        &self,
        spec: Option<&FunctionSpec>,
        args: &Value,
        transaction: Option<&Transaction>,
    ) -> Result<(), FunctionFailure> {
        let Some(validator) = spec.and_then(|spec| spec.args.as_ref()) else {
            return Ok(());
        };
        self.check_value(validator, args, "args", transaction)
            .map_err(|problem| match problem {
                Problem::Mismatch(message) => {
                    FunctionFailure::InvalidArgs(format!("ArgumentValidationError: {message}"))
                }
                Problem::Internal(cause) => FunctionFailure::Internal(cause),
            })
    }

    /// A function's result text, held to the value limits and checked against its
    /// `returns` validator, if it has one. `transaction` is the call's own (a mutation's,
    /// uncommitted), so an id of a document it just created in a new table resolves.
    ///
    /// The text is kept as it came when nothing needs the value (no validator, or one that
    /// accepts it unread): see [`Returned`]. Otherwise it is decoded once, for both checks.
    pub(crate) fn check_returns(
        &self,
        validator: Option<&Validator>,
        text: String,
        transaction: Option<&Transaction>,
    ) -> Result<Returned, FunctionFailure> {
        let invalid = |err: kiln_values::ValueError| {
            FunctionFailure::InvalidResult(format!("invalid return value: {err}"))
        };
        let limits = self.limits.value_limits();
        let validator = match validator {
            None => return Returned::check(text, &limits).map_err(invalid),
            Some(validator) if accepts_unread(validator, &text) => {
                return Returned::check(text, &limits).map_err(invalid);
            }
            Some(validator) => validator,
        };
        let value = Value::from_convex_json_str_with_limits(&text, &limits).map_err(invalid)?;
        match self.check_value(validator, &value, "returns", transaction) {
            Ok(()) => Ok(Returned::from_value(&value)),
            Err(Problem::Mismatch(message)) => Err(FunctionFailure::InvalidResult(format!(
                "ReturnsValidationError: {message}"
            ))),
            Err(Problem::Internal(cause)) => Err(FunctionFailure::Internal(cause)),
        }
    }

    /// Checks `value`, resolving ids through `transaction`, or else a read snapshot begun
    /// on the first id met (most validators have none, and most calls then read nothing).
    fn check_value(
        &self,
        validator: &Validator,
        value: &Value,
        root: &str,
        transaction: Option<&Transaction>,
    ) -> Result<(), Problem> {
        let mut snapshot: Option<Transaction> = None;
        let mut failure: Option<String> = None;
        let mut table_of_id = |text: &str| -> Option<String> {
            let id = DocumentId::decode(text).ok()?;
            if transaction.is_none() && snapshot.is_none() {
                match self.store.begin_query() {
                    Ok(begun) => snapshot = Some(begun),
                    Err(err) => {
                        failure = Some(format!("cannot read the tables to check an id: {err:#}"));
                        return None;
                    }
                }
            }
            let reader = transaction.or(snapshot.as_ref())?;
            reader.table_name(id.table_number)
        };
        let checked = validator.check(value, root, &mut table_of_id);
        if let Some(cause) = failure {
            return Err(Problem::Internal(cause));
        }
        checked.map_err(|error| Problem::Mismatch(error.to_string()))
    }
}

impl FunctionSpec {
    /// What the function takes and returns, readably: `{name: string, count?: float64} ->
    /// string`. A side without a validator reads `any` (it is not checked).
    pub fn signature(&self) -> String {
        let side = |validator: Option<&Validator>| {
            validator.map_or_else(|| "any".to_string(), ToString::to_string)
        };
        format!(
            "{} -> {}",
            side(self.args.as_ref()),
            side(self.returns.as_ref())
        )
    }
}

enum Problem {
    /// The value does not match; the message names where.
    Mismatch(String),
    /// The host could not check (its storage failed).
    Internal(String),
}

#[cfg(test)]
mod tests {
    use kiln_values::FieldValidator;

    use super::*;
    use crate::runtime::{FunctionKind, Visibility};

    #[test]
    fn signatures_read_like_types() {
        let mut spec = FunctionSpec {
            name: "greet".into(),
            kind: FunctionKind::Query,
            visibility: Visibility::Public,
            args: Some(Validator::object([
                ("name", FieldValidator::required(Validator::String)),
                ("count", FieldValidator::optional(Validator::Float64)),
            ])),
            returns: Some(Validator::String),
            route: None,
        };
        assert_eq!(
            spec.signature(),
            "{count?: float64, name: string} -> string"
        );
        spec.args = None;
        spec.returns = None;
        assert_eq!(spec.signature(), "any -> any");
    }

    #[test]
    fn records_without_validators_still_load() {
        let old = r#"{"name":"greet","kind":"query","visibility":"public"}"#;
        let spec: FunctionSpec = serde_json::from_str(old).unwrap();
        assert_eq!((spec.args, spec.returns), (None, None));
        let new = FunctionSpec {
            args: Some(Validator::Any),
            returns: Some(Validator::Null),
            ..spec
        };
        let stored = serde_json::to_string(&new).unwrap();
        assert_eq!(serde_json::from_str::<FunctionSpec>(&stored).unwrap(), new);
    }

    #[test]
    fn only_validators_that_ask_nothing_of_the_value_accept_it_unread() {
        use super::accepts_unread;
        let array_of_any = Validator::Array(Box::new(Validator::Any));
        assert!(accepts_unread(&Validator::Any, r#"{"a": 1.0}"#));
        assert!(accepts_unread(&array_of_any, r#" [1.0, "x"]"#));
        assert!(!accepts_unread(
            &array_of_any,
            r#"{"$integer": "AQAAAAAAAAA="}"#
        ));
        assert!(!accepts_unread(&array_of_any, "null"));
        let array_of_strings = Validator::Array(Box::new(Validator::String));
        assert!(!accepts_unread(&array_of_strings, "[]"));
        assert!(!accepts_unread(&Validator::String, r#""x""#));
    }
}
