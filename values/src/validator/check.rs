//! [`Validator::check`]: whether a value matches a validator, and if not, the first place
//! where it does not, as a [`ValueError`] whose message names the path:
//!
//! ```text
//! args.user.age: expected int64, got string
//! args.user: missing required field "name"
//! args.user: extra field "nick" is not in the validator
//! args.kind: expected "circle", got "square"
//! args.shape: expected null | {…}, got array
//! ```
//!
//! Like Convex's `Validator::check_value`, objects are checked field by field in name order
//! and then for extra fields, arrays element by element. A union that fails reports the
//! member the value most resembles when exactly one does (same type, for objects also the
//! same field names), so `Option<Struct>` still points into the struct; otherwise it names
//! the union.

use std::collections::BTreeMap;

use super::{FieldValidator, MAX_CHECK_STEPS, Validator};
use crate::error::{ValueError, ValueErrorKind};
use crate::value::Value;

/// The longest expected-type text a message quotes.
const MAX_EXPECTED_CHARS: usize = 120;

impl Validator {
    /// Checks `value`, naming it `root` in the error (`"args"`: `args.user.age: ...`).
    ///
    /// `table_of_id` answers, for a string checked against an `id` validator, the name of
    /// the table it is an id of, or `None` if it is not the id of an existing table: the id
    /// format and the tables belong to the host.
    pub fn check(
        &self,
        value: &Value,
        root: &str,
        table_of_id: &mut dyn FnMut(&str) -> Option<String>,
    ) -> Result<(), ValueError> {
        let mut checker = Checker {
            table_of_id,
            steps: 0,
            exhausted: false,
        };
        checker
            .check(self, value)
            .map_err(|error| error.with_root(root))
    }
}

struct Checker<'a> {
    table_of_id: &'a mut dyn FnMut(&str) -> Option<String>,
    steps: usize,
    /// Set once the step budget ran out: a union must not try its next member then.
    exhausted: bool,
}

fn mismatch(message: String) -> ValueError {
    ValueError::new(ValueErrorKind::DoesNotMatch(message))
}

impl Checker<'_> {
    fn check(&mut self, validator: &Validator, value: &Value) -> Result<(), ValueError> {
        self.steps += 1;
        if self.steps > MAX_CHECK_STEPS {
            self.exhausted = true;
            return Err(mismatch(format!(
                "checking stopped after {MAX_CHECK_STEPS} steps (MAX_CHECK_STEPS): the validator is too costly for a value this large"
            )));
        }
        match (validator, value) {
            (Validator::Any, _)
            | (Validator::Null, Value::Null)
            | (Validator::Boolean, Value::Boolean(_))
            | (Validator::String, Value::String(_))
            | (Validator::Bytes, Value::Bytes(_))
            | (Validator::Float64, Value::Float64(_))
            | (Validator::Int64, Value::Int64(_)) => Ok(()),
            (Validator::Literal(literal), value) => {
                if literal == value {
                    Ok(())
                } else {
                    Err(mismatch(format!(
                        "expected {validator}, got {}",
                        describe_value(value)
                    )))
                }
            }
            (Validator::Id(table), Value::String(text)) => match (self.table_of_id)(text) {
                Some(actual) if actual == *table => Ok(()),
                Some(actual) => Err(mismatch(format!(
                    "expected {validator}, got an id of table {actual:?}"
                ))),
                None => Err(mismatch(format!(
                    "expected {validator}, got a string that is not an id of an existing table"
                ))),
            },
            (Validator::Array(element), Value::Array(items)) => {
                for (index, item) in items.iter().enumerate() {
                    self.check(element, item)
                        .map_err(|error| error.at_index(index))?;
                }
                Ok(())
            }
            (Validator::Record { keys, values }, Value::Object(fields)) => {
                for (name, field) in fields {
                    self.check(keys, &Value::String(name.clone()))
                        .map_err(|error| {
                            mismatch(format!(
                                "field name {name:?} does not match the record's keys: {}",
                                error.kind()
                            ))
                        })?;
                    self.check(values, field)
                        .map_err(|error| error.in_field(name))?;
                }
                Ok(())
            }
            (Validator::Object(declared), Value::Object(fields)) => {
                self.check_object(declared, fields)
            }
            (Validator::Union(members), value) => self.check_union(validator, members, value),
            (validator, value) => Err(mismatch(format!(
                "expected {}, got {}",
                expected(validator),
                value.type_name()
            ))),
        }
    }

    fn check_object(
        &mut self,
        declared: &BTreeMap<String, FieldValidator>,
        fields: &BTreeMap<String, Value>,
    ) -> Result<(), ValueError> {
        for (name, field) in declared {
            match fields.get(name) {
                Some(value) => self
                    .check(&field.validator, value)
                    .map_err(|error| error.in_field(name))?,
                None if field.optional => {}
                None => return Err(mismatch(format!("missing required field {name:?}"))),
            }
        }
        if let Some(extra) = fields.keys().find(|name| !declared.contains_key(*name)) {
            return Err(mismatch(format!(
                "extra field {extra:?} is not in the validator"
            )));
        }
        Ok(())
    }

    fn check_union(
        &mut self,
        union: &Validator,
        members: &[Validator],
        value: &Value,
    ) -> Result<(), ValueError> {
        let mut errors = Vec::new();
        for member in members {
            match self.check(member, value) {
                Ok(()) => return Ok(()),
                Err(error) if self.exhausted => return Err(error),
                Err(error) => errors.push(error),
            }
        }
        // The member the value was presumably meant for, if only one fits its shape: its
        // error points deeper than "expected A | B".
        let mut resembling = members
            .iter()
            .zip(errors)
            .filter(|(member, _)| resembles(member, value));
        match (resembling.next(), resembling.next()) {
            (Some((_, error)), None) => Err(error),
            _ => Err(mismatch(format!(
                "expected {}, got {}",
                expected(union),
                value.type_name()
            ))),
        }
    }
}

/// Whether `value` has the shape `validator` describes at its top level: the same type,
/// and for an object the same field names (all required ones, no others).
fn resembles(validator: &Validator, value: &Value) -> bool {
    match (validator, value) {
        (Validator::Object(declared), Value::Object(fields)) => {
            fields.keys().all(|name| declared.contains_key(name))
                && declared
                    .iter()
                    .all(|(name, field)| field.optional || fields.contains_key(name))
        }
        (Validator::Literal(_), _) | (Validator::Any, _) => false,
        (Validator::Union(members), value) => members.iter().any(|m| resembles(m, value)),
        (Validator::Null, Value::Null)
        | (Validator::Boolean, Value::Boolean(_))
        | (Validator::String | Validator::Id(_), Value::String(_))
        | (Validator::Bytes, Value::Bytes(_))
        | (Validator::Float64, Value::Float64(_))
        | (Validator::Int64, Value::Int64(_))
        | (Validator::Array(_), Value::Array(_))
        | (Validator::Record { .. }, Value::Object(_)) => true,
        _ => false,
    }
}

/// The readable form of `validator`, cut short for a message: objects are `{…}`.
fn expected(validator: &Validator) -> String {
    let text = match validator {
        Validator::Object(_) => "{…}".to_string(),
        Validator::Union(members) => members
            .iter()
            .map(|member| match member {
                Validator::Object(_) => "{…}".to_string(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" | "),
        other => other.to_string(),
    };
    match text.char_indices().nth(MAX_EXPECTED_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A value as a literal mismatch shows it: scalars by value, the rest by type.
fn describe_value(value: &Value) -> String {
    match value {
        Value::String(text) if text.chars().count() <= 40 => format!("{text:?}"),
        Value::Float64(_) | Value::Int64(_) | Value::Boolean(_) => {
            Validator::Literal(value.clone()).to_string()
        }
        other => other.type_name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(fields: &[(&str, Value)]) -> Value {
        Value::Object(
            fields
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone()))
                .collect(),
        )
    }

    fn no_ids(_: &str) -> Option<String> {
        None
    }

    fn check(validator: &Validator, value: &Value) -> Result<(), String> {
        validator
            .check(value, "args", &mut no_ids)
            .map_err(|error| error.to_string())
    }

    fn user() -> Validator {
        Validator::object([
            ("name", FieldValidator::required(Validator::String)),
            ("age", FieldValidator::required(Validator::Int64)),
            ("nick", FieldValidator::optional(Validator::String)),
        ])
    }

    fn args() -> Validator {
        Validator::object([("user", FieldValidator::required(user()))])
    }

    #[test]
    fn the_first_mismatch_is_named_with_its_path() {
        let good = object(&[(
            "user",
            object(&[("name", Value::from("Ada")), ("age", Value::Int64(36))]),
        )]);
        assert_eq!(check(&args(), &good), Ok(()));

        let wrong_type = object(&[(
            "user",
            object(&[("name", Value::from("Ada")), ("age", Value::from("36"))]),
        )]);
        assert_eq!(
            check(&args(), &wrong_type),
            Err("args.user.age: expected int64, got string".into())
        );
        let missing = object(&[("user", object(&[("age", Value::Int64(1))]))]);
        assert_eq!(
            check(&args(), &missing),
            Err("args.user: missing required field \"name\"".into())
        );
        let extra = object(&[(
            "user",
            object(&[
                ("name", Value::from("Ada")),
                ("age", Value::Int64(36)),
                ("zzz", Value::Null),
            ]),
        )]);
        assert_eq!(
            check(&args(), &extra),
            Err("args.user: extra field \"zzz\" is not in the validator".into())
        );
        let list = Validator::array(Validator::Float64);
        assert_eq!(
            check(
                &list,
                &Value::Array(vec![Value::Float64(1.0), Value::Int64(2)])
            ),
            Err("args[1]: expected float64, got int64".into())
        );
    }

    #[test]
    fn literals_and_unions() {
        let kind = Validator::union([
            Validator::Literal(Value::from("circle")),
            Validator::Literal(Value::from("square")),
        ]);
        assert_eq!(check(&kind, &Value::from("square")), Ok(()));
        assert_eq!(
            check(&kind, &Value::from("hexagon")),
            Err("args: expected \"circle\" | \"square\", got string".into())
        );
        assert_eq!(
            check(
                &Validator::Literal(Value::from("circle")),
                &Value::from("square")
            ),
            Err("args: expected \"circle\", got \"square\"".into())
        );
        assert_eq!(
            check(&Validator::Literal(Value::Int64(5)), &Value::Float64(5.0)),
            Err("args: expected 5n, got 5".into())
        );
        let number = Validator::union([Validator::Int64, Validator::Float64]);
        assert_eq!(
            check(&number, &Value::from("x")),
            Err("args: expected int64 | float64, got string".into())
        );
        // An optional struct still points into the struct.
        let maybe_user = Validator::union([user(), Validator::Null]);
        assert_eq!(
            check(
                &maybe_user,
                &object(&[("name", Value::from("Ada")), ("age", Value::Float64(1.5))])
            ),
            Err("args.age: expected int64, got float64".into())
        );
        assert_eq!(
            check(&maybe_user, &Value::Array(vec![])),
            Err("args: expected {…} | null, got array".into())
        );
        // An empty union matches nothing.
        assert!(check(&Validator::Union(vec![]), &Value::Null).is_err());
    }

    #[test]
    fn records_check_names_and_values() {
        let scores = Validator::record(Validator::String, Validator::Float64);
        assert_eq!(
            check(&scores, &object(&[("ada", Value::Float64(1.0))])),
            Ok(())
        );
        assert_eq!(
            check(&scores, &object(&[("ada", Value::from("x"))])),
            Err("args.ada: expected float64, got string".into())
        );
        let by_user = Validator::record(Validator::Id("users".into()), Validator::Any);
        let err = check(&by_user, &object(&[("bob", Value::Null)])).unwrap_err();
        assert!(
            err.starts_with("args: field name \"bob\" does not match the record's keys"),
            "{err}"
        );
    }

    #[test]
    fn ids_are_resolved_by_the_caller() {
        let author = Validator::Id("users".into());
        let mut tables = |id: &str| match id {
            "u1" => Some("users".to_string()),
            "p1" => Some("posts".to_string()),
            _ => None,
        };
        assert!(
            author
                .check(&Value::from("u1"), "args", &mut tables)
                .is_ok()
        );
        assert_eq!(
            author
                .check(&Value::from("p1"), "args", &mut tables)
                .unwrap_err()
                .to_string(),
            "args: expected id<users>, got an id of table \"posts\""
        );
        assert_eq!(
            author
                .check(&Value::from("zz"), "args", &mut tables)
                .unwrap_err()
                .to_string(),
            "args: expected id<users>, got a string that is not an id of an existing table"
        );
        assert_eq!(
            author
                .check(&Value::Int64(1), "args", &mut tables)
                .unwrap_err()
                .to_string(),
            "args: expected id<users>, got int64"
        );
    }

    #[test]
    fn a_costly_check_stops_with_a_clear_error() {
        // Every member walks the whole array before failing on its last element: 1 000 ×
        // 60 001 steps, over the limit.
        let members = vec![Validator::array(Validator::Float64); 1_000];
        let mut items = vec![Value::Float64(1.0); 60_000];
        items.push(Value::from("x"));
        let err = check(&Validator::Union(members), &Value::Array(items)).unwrap_err();
        assert!(err.contains("MAX_CHECK_STEPS"), "{err}");
    }
}
