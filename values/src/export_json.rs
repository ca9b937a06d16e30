//! Plain JSON, Convex's `json` format: what `npx convex export`/`import` and the dashboard use.
//! It is lossy by design, for humans and other tools: an int64 is written as a decimal string,
//! bytes as a base64 string, the special floats as `"NaN"`/`"Infinity"`/`"-Infinity"`. Reading
//! it back therefore cannot recover those types: every number is a float64, every string a
//! string.

use base64::Engine as _;
use serde_json::{Number, Value as Json};

use crate::convex_json::{BASE64, number_to_f64};
use crate::error::{ValueError, ValueErrorKind};
use crate::limits::ValueLimits;
use crate::value::Value;

impl Value {
    /// Encodes the value as plain (export) JSON.
    ///
    /// | value | JSON |
    /// |-------|------|
    /// | int64 | its decimal digits as a string: `"-12"` |
    /// | finite float64, -0.0 included | a number |
    /// | NaN, +∞, -∞ | `"NaN"`, `"Infinity"`, `"-Infinity"` |
    /// | bytes | a standard base64 string |
    /// | null, boolean, string, array, object | the same in JSON |
    pub fn to_export_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Int64(n) => Json::String(n.to_string()),
            Value::Float64(f) => match Number::from_f64(*f) {
                Some(number) => Json::Number(number),
                None if f.is_nan() => Json::from("NaN"),
                None if *f > 0.0 => Json::from("Infinity"),
                None => Json::from("-Infinity"),
            },
            Value::Boolean(b) => Json::Bool(*b),
            Value::String(s) => Json::String(s.clone()),
            Value::Bytes(b) => Json::String(BASE64.encode(b)),
            Value::Array(elements) => {
                Json::Array(elements.iter().map(Value::to_export_json).collect())
            }
            Value::Object(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(name, v)| (name.clone(), v.to_export_json()))
                    .collect(),
            ),
        }
    }

    /// Decodes plain JSON: every number (integer-valued or not) becomes a
    /// [`Value::Float64`], objects become objects whatever their field names (no `$` tags are
    /// interpreted; [`check`](Value::check) or the database apply the field-name rules), the
    /// rest maps as expected.
    ///
    /// Nesting deeper than the default limit
    /// ([`DEFAULT_MAX_NESTING_DEPTH`](crate::DEFAULT_MAX_NESTING_DEPTH)) is refused as it is
    /// met, which keeps the recursion bounded.
    pub fn from_plain_json(json: Json) -> Result<Value, ValueError> {
        decode(json, 1, ValueLimits::default().max_nesting_depth)
    }

    /// Decodes plain JSON into a value that passes [`check`](Value::check) with `limits`.
    pub fn from_plain_json_with_limits(
        json: Json,
        limits: &ValueLimits,
    ) -> Result<Value, ValueError> {
        let value = decode(json, 1, limits.max_nesting_depth)?;
        value.check(limits)?;
        Ok(value)
    }
}

fn decode(json: Json, level: usize, max_depth: usize) -> Result<Value, ValueError> {
    if level > max_depth {
        return Err(ValueError::new(ValueErrorKind::TooDeep {
            limit: max_depth,
        }));
    }
    Ok(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(b),
        Json::Number(n) => Value::Float64(number_to_f64(&n)?),
        Json::String(s) => Value::String(s),
        Json::Array(elements) => Value::Array(
            elements
                .into_iter()
                .enumerate()
                .map(|(i, e)| decode(e, level + 1, max_depth).map_err(|err| err.at_index(i)))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(name, v)| match decode(v, level + 1, max_depth) {
                    Ok(v) => Ok((name, v)),
                    Err(err) => Err(err.in_field(&name)),
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn export_encoding() {
        assert_eq!(
            Value::Int64(i64::MIN).to_export_json(),
            json!("-9223372036854775808")
        );
        assert_eq!(
            Value::Int64(i64::MAX).to_export_json(),
            json!("9223372036854775807")
        );
        assert_eq!(Value::Float64(1.5).to_export_json(), json!(1.5));
        assert_eq!(Value::Float64(f64::NAN).to_export_json(), json!("NaN"));
        assert_eq!(
            Value::Float64(f64::INFINITY).to_export_json(),
            json!("Infinity")
        );
        assert_eq!(
            Value::Float64(f64::NEG_INFINITY).to_export_json(),
            json!("-Infinity")
        );
        assert_eq!(Value::Float64(-0.0).to_export_json().to_string(), "-0.0");
        assert_eq!(Value::Bytes(b"hi".to_vec()).to_export_json(), json!("aGk="));
        assert_eq!(Value::Bytes(vec![]).to_export_json(), json!(""));
        let object = Value::Object(BTreeMap::from([(
            "a".to_owned(),
            Value::Array(vec![Value::Null, Value::Boolean(false), Value::from("s")]),
        )]));
        assert_eq!(object.to_export_json(), json!({"a": [null, false, "s"]}));
    }

    #[test]
    fn plain_decoding() {
        assert_eq!(
            Value::from_plain_json(json!(5)).unwrap(),
            Value::Float64(5.0)
        );
        assert_eq!(
            Value::from_plain_json(json!(0.25)).unwrap(),
            Value::Float64(0.25)
        );
        // Tags mean nothing here: this is an ordinary object.
        assert_eq!(
            Value::from_plain_json(json!({"$integer": "AQAAAAAAAAA="})).unwrap(),
            Value::Object(BTreeMap::from([(
                "$integer".to_owned(),
                Value::from("AQAAAAAAAAA=")
            )]))
        );
        assert_eq!(
            Value::from_plain_json(json!({"a": [true, null, "x"]})).unwrap(),
            Value::Object(BTreeMap::from([(
                "a".to_owned(),
                Value::Array(vec![Value::Boolean(true), Value::Null, Value::from("x")])
            )]))
        );
    }

    #[test]
    fn with_limits_applies_the_field_name_rules() {
        let error =
            Value::from_plain_json_with_limits(json!({"a": {"$x": 1}}), &ValueLimits::default())
                .unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"field name "$x" at .a: field names may not start with "$""#
        );
    }

    #[test]
    fn depth_is_limited() {
        let deep = (0..65).fold(json!(null), |v, _| json!([v]));
        assert!(matches!(
            Value::from_plain_json(deep).unwrap_err().kind(),
            ValueErrorKind::TooDeep { limit: 64 }
        ));
    }
}
