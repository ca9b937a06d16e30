//! What a function returned: its Convex JSON text, checked against the value limits, and
//! decoded only by a caller that needs the value.
//!
//! Most callers pass the result on as text: the HTTP API writes it into its response, and
//! a function calling another hands it to the guest as text. Decoding every result into a
//! `Value` to write it out again was 8% of `messages:list`'s server time (issue 16's
//! profile, `KILN_PROFILE_CALL_GRAPH=1 cargo xtask profile list-1`: the decode, the
//! response's encoding and the value's drop). The check walks the text without building
//! anything ([`kiln_values::is_valid_convex_json_text`]); text it cannot vouch for is
//! decoded, so a refusal carries the decoder's message.

use kiln_values::{Value, ValueError, ValueLimits};

/// A function's result: Convex JSON text that decodes to a value within the limits it was
/// checked against.
#[derive(Clone, Debug, PartialEq)]
pub struct Returned {
    text: String,
}

impl Returned {
    /// `text` if it is a value within `limits`; otherwise the decoder's error.
    pub fn check(text: String, limits: &ValueLimits) -> Result<Self, ValueError> {
        if kiln_values::is_valid_convex_json_text(&text, limits) {
            return Ok(Self { text });
        }
        // The check leaves some texts to the decoder (bytes, a field given twice): one
        // that decodes is kept as the value's own text.
        let value = Value::from_convex_json_str_with_limits(&text, limits)?;
        Ok(Self::from_value(&value))
    }

    pub fn from_value(value: &Value) -> Self {
        Self {
            text: value.to_convex_json_string(),
        }
    }

    /// The Convex JSON text.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn into_text(self) -> String {
        self.text
    }

    /// The value as a Convex JSON tree, equal to `self.value().to_convex_json()` but parsed
    /// straight from the text: the text is a value's own form (fields in order, each once;
    /// every number a float64 written as one), and serde_json reads floats exactly
    /// (`float_roundtrip`).
    pub fn to_convex_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text)
            .expect("a function's result was checked when it was returned")
    }

    /// The value, decoded.
    pub fn value(&self) -> Value {
        // Checked when made, against limits this one does not know: any decode succeeds.
        let unlimited = ValueLimits {
            max_nesting_depth: usize::MAX,
            max_size_bytes: usize::MAX,
        };
        Value::from_convex_json_str_with_limits(&self.text, &unlimited)
            .expect("a function's result was checked when it was returned")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kiln_values::{Value, ValueLimits};

    use super::Returned;

    #[test]
    fn checked_text_is_kept_and_decodes_to_its_value() {
        let limits = ValueLimits::default();
        let value = Value::Object(BTreeMap::from([
            ("a".to_string(), Value::Int64(7)),
            ("b".to_string(), Value::Bytes(vec![1, 2, 3])),
        ]));
        // Text as a guest writes it (floats with a fraction), kept as it came.
        let returned = Returned::check(r#"[1.0,"x"]"#.to_string(), &limits).unwrap();
        assert_eq!(returned.text(), r#"[1.0,"x"]"#);
        assert_eq!(
            returned.value(),
            Value::Array(vec![Value::Float64(1.0), Value::String("x".into())])
        );
        // Bytes go through the decoder, and come out as the value's text.
        let text = value.to_convex_json_string();
        let returned = Returned::check(text.clone(), &limits).unwrap();
        assert_eq!(returned.text(), text);
        assert_eq!(returned.value(), value);
    }

    #[test]
    fn the_tree_parsed_from_the_text_is_the_values_tree() {
        let limits = ValueLimits::default();
        let floats = [
            0.1,
            1.0,
            -2.5,
            1e300,
            5e-324,
            9007199254740993.0,
            -0.0,
            f64::NAN,
        ];
        let value = Value::Object(BTreeMap::from([
            (
                "floats".to_string(),
                Value::Array(floats.map(Value::Float64).to_vec()),
            ),
            ("int".to_string(), Value::Int64(-3)),
            ("text".to_string(), Value::String("\u{e9} \"q\" \n".into())),
            (
                "nested".to_string(),
                Value::Object(BTreeMap::from([("a".to_string(), Value::Null)])),
            ),
        ]));
        let text = value.to_convex_json_string();
        assert!(kiln_values::is_valid_convex_json_text(&text, &limits));
        let returned = Returned::check(text, &limits).unwrap();
        assert_eq!(returned.to_convex_json(), value.to_convex_json());
        // As a guest writes it: its own spelling of the same numbers.
        let returned = Returned::check(r#"[1.0,1e300,0.1]"#.to_string(), &limits).unwrap();
        assert_eq!(returned.to_convex_json(), returned.value().to_convex_json());
    }

    #[test]
    fn what_the_limits_refuse_gets_the_decoders_message() {
        let limits = ValueLimits {
            max_nesting_depth: 2,
            max_size_bytes: 100,
        };
        let error = Returned::check("[[[1]]]".to_string(), &limits).unwrap_err();
        assert_eq!(
            error.to_string(),
            Value::from_convex_json_str_with_limits("[[[1]]]", &limits)
                .unwrap_err()
                .to_string()
        );
        assert!(Returned::check(r#"{"$bytes": "!!"}"#.to_string(), &limits).is_err());
        assert!(Returned::check("{".to_string(), &limits).is_err());
    }
}
