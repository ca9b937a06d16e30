//! Property tests: every value survives each of its exact encodings (Convex JSON as JSON and
//! as text, and the serde bridges) bit for bit.

use std::collections::BTreeMap;

use kiln_values::{
    Value, ValueLimits, convex_json_size_bytes, from_value, is_valid_convex_json_text,
    to_convex_json_text, to_value,
};
use proptest::prelude::*;

/// Any float, NaN payloads included, with the special values made likely.
fn any_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(0.0),
    ]
}

/// A field name Convex JSON can carry: printable ASCII, not starting with `$`.
fn field_name() -> impl Strategy<Value = String> {
    "[ -#%-~][ -~]{0,12}"
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::Int64),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0)].prop_map(Value::Int64),
        any_float().prop_map(Value::Float64),
        any::<bool>().prop_map(Value::Boolean),
        any::<String>().prop_map(Value::String),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..8)
                .prop_map(|fields: BTreeMap<String, Value>| Value::Object(fields)),
        ]
    })
}

/// Text made of JSON's tokens and Convex's tags, mostly invalid, some valid.
fn json_ish_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{"),
        Just("}"),
        Just("["),
        Just("]"),
        Just(","),
        Just(":"),
        Just("1"),
        Just("1.5"),
        Just("-0.0"),
        Just("-0.5"),
        Just("null"),
        Just("true"),
        Just("\"a\""),
        Just("\"_id\""),
        Just("\"\""),
        Just("\"$x\""),
        Just("\"$integer\""),
        Just("\"$float\""),
        Just("\"$bytes\""),
        Just("\"AQAAAAAAAAA=\""),
        Just("\"AQ==\""),
        Just("\"a\\u0001\""),
    ];
    prop::collection::vec(token, 0..24).prop_map(|tokens| tokens.concat())
}

proptest! {
    #[test]
    fn convex_json_round_trips(value in any_value()) {
        prop_assert_eq!(Value::from_convex_json(value.to_convex_json()).unwrap(), value);
    }

    #[test]
    fn streamed_text_equals_the_tree_encoding(value in any_value()) {
        prop_assert_eq!(value.to_convex_json_string(), value.to_convex_json().to_string());
    }

    #[test]
    fn convex_json_text_round_trips(value in any_value()) {
        let text = value.to_convex_json_string();
        prop_assert_eq!(&Value::from_convex_json_str(&text).unwrap(), &value);
        let limited = Value::from_convex_json_str_with_limits(&text, &ValueLimits::default());
        prop_assert_eq!(limited.unwrap(), value);
    }

    #[test]
    fn serde_bridges_round_trip(value in any_value()) {
        prop_assert_eq!(&to_value(&value).unwrap(), &value);
        prop_assert_eq!(from_value::<Value>(value.clone()).unwrap(), value);
    }

    #[test]
    fn serializing_straight_to_text_writes_the_values_text(value in any_value()) {
        prop_assert_eq!(to_convex_json_text(&value).unwrap(), value.to_convex_json_string());
    }

    #[test]
    fn size_read_off_the_text_is_the_values_size(value in any_value()) {
        let text = value.to_convex_json_string();
        prop_assert_eq!(convex_json_size_bytes(&text).unwrap(), value.size_bytes());
    }

    /// On a value's own text the check answers as the decoder does, unless the text holds
    /// bytes or escapes (then it may leave the answer to the decoder).
    #[test]
    fn the_check_answers_as_the_decoder_does(
        value in any_value(),
        max_nesting_depth in 1usize..7,
        max_size_bytes in 1usize..400,
    ) {
        let text = value.to_convex_json_string();
        let limits = ValueLimits { max_nesting_depth, max_size_bytes };
        let decodes = Value::from_convex_json_str_with_limits(&text, &limits).is_ok();
        let valid = is_valid_convex_json_text(&text, &limits);
        if valid {
            prop_assert!(decodes, "{}", text);
        }
        if !text.contains("\"$bytes\"") && !text.contains('\\') {
            prop_assert_eq!(valid, decodes, "{}", text);
        }
    }

    /// Soundness: what the check accepts, the decoder accepts, under tight limits too.
    #[test]
    fn text_valid_without_decoding_decodes(text in json_ish_text(), tight in any::<bool>()) {
        let limits = if tight {
            ValueLimits { max_nesting_depth: 2, max_size_bytes: 24 }
        } else {
            ValueLimits::default()
        };
        if is_valid_convex_json_text(&text, &limits) {
            prop_assert!(Value::from_convex_json_str_with_limits(&text, &limits).is_ok(), "{}", text);
        }
    }

    #[test]
    fn generated_values_pass_check(value in any_value()) {
        prop_assert!(value.check(&ValueLimits::default()).is_ok());
    }

    #[test]
    fn export_json_is_valid_json_text(value in any_value()) {
        let text = value.to_export_json().to_string();
        prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
    }
}
