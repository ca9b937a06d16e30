//! Property tests of validators: the JSON form round-trips, and a value built to fit a
//! validator passes its check while a value of another type does not.

use std::collections::BTreeMap;

use kiln_values::{FieldValidator, Validator, Value};
use proptest::prelude::*;

fn field_name() -> impl Strategy<Value = String> {
    "[a-z_][a-zA-Z0-9_ ]{0,8}"
}

fn literal() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z]{0,6}".prop_map(Value::String),
        any::<i64>().prop_map(Value::Int64),
        // Finite floats: what `v.literal(n)` can hold.
        (-1e9f64..1e9).prop_map(Value::Float64),
        any::<bool>().prop_map(Value::Boolean),
    ]
}

fn record_key() -> impl Strategy<Value = Validator> {
    prop_oneof![
        Just(Validator::String),
        "[a-z]{1,6}".prop_map(Validator::Id),
    ]
}

fn any_validator() -> impl Strategy<Value = Validator> {
    let leaf = prop_oneof![
        Just(Validator::Any),
        Just(Validator::Null),
        Just(Validator::Boolean),
        Just(Validator::String),
        Just(Validator::Bytes),
        Just(Validator::Float64),
        Just(Validator::Int64),
        literal().prop_map(Validator::Literal),
        "[a-z]{1,6}".prop_map(Validator::Id),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            inner.clone().prop_map(Validator::array),
            (record_key(), inner.clone())
                .prop_map(|(keys, values)| Validator::record(keys, values)),
            prop::collection::btree_map(
                field_name(),
                (inner.clone(), any::<bool>()).prop_map(|(validator, optional)| FieldValidator {
                    validator,
                    optional
                }),
                0..6
            )
            .prop_map(Validator::Object),
            prop::collection::vec(inner, 1..5).prop_map(Validator::Union),
        ]
    })
}

/// A value that fits `validator` (ids name the table "t" + their table name, see `ids`).
fn example(validator: &Validator) -> Value {
    match validator {
        Validator::Any | Validator::Null => Value::Null,
        Validator::Boolean => Value::Boolean(true),
        Validator::String => Value::from("s"),
        Validator::Bytes => Value::Bytes(vec![1]),
        Validator::Float64 => Value::Float64(0.5),
        Validator::Int64 => Value::Int64(7),
        Validator::Literal(value) => value.clone(),
        Validator::Id(table) => Value::String(format!("id:{table}")),
        Validator::Array(element) => Value::Array(vec![example(element)]),
        Validator::Record { values, .. } => {
            Value::Object(BTreeMap::from([("id:k".to_string(), example(values))]))
        }
        Validator::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(_, field)| !field.optional)
                .map(|(name, field)| (name.clone(), example(&field.validator)))
                .collect(),
        ),
        Validator::Union(members) => example(&members[0]),
    }
}

/// Ids in these tests are `id:<table>`.
fn ids(text: &str) -> Option<String> {
    text.strip_prefix("id:").map(str::to_string)
}

proptest! {
    #[test]
    fn validator_json_round_trips(validator in any_validator()) {
        let text = validator.to_json_string();
        prop_assert_eq!(Validator::from_json_str(&text).unwrap(), validator.clone());
        // The serde form is the same JSON (that is how deployments store it).
        let stored = serde_json::to_string(&validator).unwrap();
        prop_assert_eq!(&stored, &text);
        prop_assert_eq!(serde_json::from_str::<Validator>(&stored).unwrap(), validator);
    }

    #[test]
    fn a_value_built_to_fit_passes(validator in any_validator()) {
        // Record keys in examples are `id:k`: an id of table "k", also a string.
        let validator = keys_of_table_k(validator);
        let value = example(&validator);
        prop_assert!(
            validator.check(&value, "args", &mut ids).is_ok(),
            "{} refused {:?}: {}",
            validator,
            value,
            validator.check(&value, "args", &mut ids).unwrap_err()
        );
    }

    #[test]
    fn a_value_of_another_type_fails_with_a_path(validator in any_validator()) {
        // Bytes fit only `bytes` and `any`, so wrapping a validator without either in an
        // object and giving it bytes must fail, naming the field.
        prop_assume!(!mentions_bytes_or_any(&validator));
        let wrapped = Validator::object([("f", FieldValidator::required(validator))]);
        let value = Value::Object(BTreeMap::from([("f".to_string(), Value::Bytes(vec![]))]));
        let err = wrapped.check(&value, "args", &mut ids).unwrap_err().to_string();
        prop_assert!(err.starts_with("args.f: expected "), "{}", err);
        prop_assert!(err.ends_with("got bytes"), "{}", err);
    }
}

fn keys_of_table_k(validator: Validator) -> Validator {
    match validator {
        Validator::Record { values, .. } => {
            Validator::record(Validator::Id("k".into()), keys_of_table_k(*values))
        }
        Validator::Array(element) => Validator::array(keys_of_table_k(*element)),
        Validator::Object(fields) => Validator::Object(
            fields
                .into_iter()
                .map(|(name, field)| {
                    (
                        name,
                        FieldValidator {
                            validator: keys_of_table_k(field.validator),
                            optional: field.optional,
                        },
                    )
                })
                .collect(),
        ),
        Validator::Union(members) => {
            Validator::Union(members.into_iter().map(keys_of_table_k).collect())
        }
        other => other,
    }
}

/// Whether a value of bytes could match `validator` at its top level.
fn mentions_bytes_or_any(validator: &Validator) -> bool {
    match validator {
        Validator::Bytes | Validator::Any => true,
        Validator::Union(members) => members.iter().any(mentions_bytes_or_any),
        _ => false,
    }
}
