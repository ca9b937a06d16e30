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
use super::{FunctionSpec, Runtime};
use crate::database::id::DocumentId;
use crate::database::transaction::Transaction;

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

    /// Checks a return value against `validator`, if there is one. `transaction` is the
    /// call's own (a mutation's, uncommitted), so an id of a document it just created in a
    /// new table resolves.
    pub(crate) fn check_returns(
        &self,
        validator: Option<&Validator>,
        value: Value,
        transaction: Option<&Transaction>,
    ) -> Result<Value, FunctionFailure> {
        let Some(validator) = validator else {
            return Ok(value);
        };
        match self.check_value(validator, &value, "returns", transaction) {
            Ok(()) => Ok(value),
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
}
