//! Convex JSON (`convex_encoded_json`), the wire encoding of values between Convex clients and
//! the backend. It is JSON with three tagged single-field objects for what JSON cannot say:
//! `{"$integer": …}` for an int64, `{"$float": …}` for the floats JSON numbers cannot carry
//! (NaN, ±Infinity, -0.0) and `{"$bytes": …}` for bytes, each holding standard base64. Every
//! other JSON number is a float64, which is why field names may not start with `$`.
//!
//! These functions are *the* way to read wire text. `Value` also implements serde's
//! `Deserialize`, but `serde_json::from_str::<Value>` knows nothing of the tags and would turn
//! `5` into an int64.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Number, Value as Json};

use crate::error::{ValueError, ValueErrorKind};
use crate::field_names::FieldNameError;
use crate::limits::ValueLimits;
use crate::value::Value;

/// Standard base64. Encoding pads; decoding takes padded or unpadded input, since a client
/// that strips padding is sending an unambiguous value all the same.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) const INTEGER_TAG: &str = "$integer";
pub(crate) const FLOAT_TAG: &str = "$float";
pub(crate) const BYTES_TAG: &str = "$bytes";

/// How much longer than a value's size estimate its Convex JSON text may be before
/// [`Value::from_convex_json_str_with_limits`] refuses to parse it. Ordinary values take up to
/// about three times their estimate (an int64 counts 9 bytes and is written as the 27
/// characters of `{"$integer":"AAAAAAAAAAA="}`); the decoded value is then held to the size
/// limit itself, so this only has to stop absurd input before it is parsed.
pub const JSON_TEXT_SIZE_FACTOR: usize = 4;

impl Value {
    /// Encodes the value as Convex JSON.
    ///
    /// Objects are written as they are, so an object holding a field named like a tag (which
    /// [`check`](Value::check) refuses) does not survive the trip back.
    pub fn to_convex_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Int64(n) => tagged(INTEGER_TAG, BASE64.encode(n.to_le_bytes())),
            Value::Float64(f) => match Number::from_f64(*f) {
                // `from_f64` refuses only the non-finite; -0.0 must be tagged as well, since
                // JavaScript clients would read the number `-0` as an integer-valued 0.
                Some(number) if !is_negative_zero(*f) => Json::Number(number),
                _ => tagged(FLOAT_TAG, BASE64.encode(f.to_bits().to_le_bytes())),
            },
            Value::Boolean(b) => Json::Bool(*b),
            Value::String(s) => Json::String(s.clone()),
            Value::Bytes(b) => tagged(BYTES_TAG, BASE64.encode(b)),
            Value::Array(elements) => {
                Json::Array(elements.iter().map(Value::to_convex_json).collect())
            }
            Value::Object(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(name, v)| (name.clone(), v.to_convex_json()))
                    .collect(),
            ),
        }
    }

    /// Encodes the value as Convex JSON text (compact, no whitespace).
    ///
    /// Writes the text directly, without building a `serde_json::Value` first, into a
    /// buffer sized from the value's estimate: a guest returning a large value then needs
    /// about twice its size in memory, not four times.
    pub fn to_convex_json_string(&self) -> String {
        let mut text = Vec::with_capacity(self.size_bytes().saturating_add(16));
        serde_json::to_writer(&mut text, &ConvexJsonText(self))
            .expect("writing JSON into a Vec cannot fail");
        String::from_utf8(text).expect("serde_json writes UTF-8")
    }

    /// Decodes Convex JSON.
    ///
    /// Every JSON number becomes a [`Value::Float64`]; an object whose only field is
    /// `$integer`, `$float` or `$bytes` becomes that type; any other field name starting with
    /// `$` is an error. Nesting deeper than the default limit
    /// ([`DEFAULT_MAX_NESTING_DEPTH`](crate::DEFAULT_MAX_NESTING_DEPTH)) is refused as it is
    /// met, so the decoder's recursion stays bounded. Nothing else is checked: use
    /// [`from_convex_json_with_limits`](Value::from_convex_json_with_limits) for a value that
    /// also passes [`check`](Value::check).
    pub fn from_convex_json(json: Json) -> Result<Value, ValueError> {
        decode(json, 1, ValueLimits::default().max_nesting_depth)
    }

    /// Decodes Convex JSON into a value that passes [`check`](Value::check) with `limits`.
    pub fn from_convex_json_with_limits(
        json: Json,
        limits: &ValueLimits,
    ) -> Result<Value, ValueError> {
        let value = decode(json, 1, limits.max_nesting_depth)?;
        value.check(limits)?;
        Ok(value)
    }

    /// Parses and decodes Convex JSON text, as [`from_convex_json`](Value::from_convex_json)
    /// does.
    pub fn from_convex_json_str(text: &str) -> Result<Value, ValueError> {
        crate::convex_json_text::decode_text(text, ValueLimits::default().max_nesting_depth)
    }

    /// Parses and decodes Convex JSON text into a value that passes [`check`](Value::check)
    /// with `limits`.
    ///
    /// Text longer than [`JSON_TEXT_SIZE_FACTOR`] times `limits.max_size_bytes` is refused
    /// before parsing. (The JSON parser also stops at 128 levels of nesting, whatever the
    /// limit says.)
    pub fn from_convex_json_str_with_limits(
        text: &str,
        limits: &ValueLimits,
    ) -> Result<Value, ValueError> {
        let max_len = limits.max_size_bytes.saturating_mul(JSON_TEXT_SIZE_FACTOR);
        if text.len() > max_len {
            return Err(ValueError::new(ValueErrorKind::TextTooLarge {
                len: text.len(),
                limit: max_len,
            }));
        }
        let value = crate::convex_json_text::decode_text(text, limits.max_nesting_depth)?;
        value.check(limits)?;
        Ok(value)
    }
}

/// Parses JSON text, reporting syntax errors as [`ValueErrorKind::InvalidJson`].
#[cfg(test)]
fn parse(text: &str) -> Result<Json, ValueError> {
    serde_json::from_str(text)
        .map_err(|e| ValueError::new(ValueErrorKind::InvalidJson(format!("invalid JSON: {e}"))))
}

/// The name of a JSON value's type, with its article ("a string"), for messages.
pub fn json_type_name(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// A JSON number as a float64. Without serde_json's `arbitrary_precision` every number has
/// an `f64` form, but the API is fallible, so say what happened if that ever changes.
pub(crate) fn number_to_f64(number: &Number) -> Result<f64, ValueError> {
    number
        .as_f64()
        .ok_or_else(|| ValueError::encoding(format!("number {number} is not a float64")))
}

pub(crate) fn is_negative_zero(f: f64) -> bool {
    f == 0.0 && f.is_sign_negative()
}

/// Serializes a value as Convex JSON text; the streaming twin of [`Value::to_convex_json`].
/// Lets a value be written as part of a larger serde document (an HTTP response, a
/// document with its system fields) without building a `serde_json::Value` of it first.
pub struct ConvexJsonText<'a>(pub &'a Value);

impl serde::Serialize for ConvexJsonText<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let tagged = |serializer: S, tag: &str, payload: String| {
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry(tag, &payload)?;
            map.end()
        };
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Int64(n) => tagged(serializer, INTEGER_TAG, BASE64.encode(n.to_le_bytes())),
            Value::Float64(f) if f.is_finite() && !is_negative_zero(*f) => {
                serializer.serialize_f64(*f)
            }
            Value::Float64(f) => tagged(
                serializer,
                FLOAT_TAG,
                BASE64.encode(f.to_bits().to_le_bytes()),
            ),
            Value::Boolean(b) => serializer.serialize_bool(*b),
            Value::String(s) => serializer.serialize_str(s),
            Value::Bytes(b) => tagged(serializer, BYTES_TAG, BASE64.encode(b)),
            Value::Array(elements) => serializer.collect_seq(elements.iter().map(ConvexJsonText)),
            Value::Object(fields) => {
                serializer.collect_map(fields.iter().map(|(name, v)| (name, ConvexJsonText(v))))
            }
        }
    }
}

/// The way text was decoded before `convex_json_text`: parsed into a tree, then decoded;
/// the reference its tests compare with.
#[cfg(test)]
pub(crate) fn decode_text_through_tree(text: &str, max_depth: usize) -> Result<Value, ValueError> {
    decode(parse(text)?, 1, max_depth)
}

fn tagged(tag: &str, payload: String) -> Json {
    Json::Object(Map::from_iter([(tag.to_owned(), Json::String(payload))]))
}

/// Decodes `json`, found at nesting `level`.
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
        Json::Object(fields) if fields.keys().any(|k| k.starts_with('$')) => decode_tagged(fields)?,
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

/// Decodes an object with a `$`-prefixed field, which must be exactly one tag.
fn decode_tagged(fields: Map<String, Json>) -> Result<Value, ValueError> {
    let field_count = fields.len();
    let tags = fields
        .into_iter()
        .filter(|(name, _)| name.starts_with('$'))
        .collect();
    decode_tag_fields(field_count, tags)
}

/// Decodes an object of `field_count` distinct fields whose `$`-prefixed ones are `tags`
/// (at least one): it must be exactly one known tag.
pub(crate) fn decode_tag_fields(
    field_count: usize,
    tags: Map<String, Json>,
) -> Result<Value, ValueError> {
    // A tag among other fields is a malformed tag, not an odd field name: say so.
    if field_count > 1
        && let Some(tag) = [INTEGER_TAG, FLOAT_TAG, BYTES_TAG]
            .into_iter()
            .find(|tag| tags.contains_key(*tag))
    {
        return Err(ValueError::encoding(format!(
            "an object with a {tag:?} field must have no other fields, this one has {field_count}"
        )));
    }
    let Some((name, payload)) = tags.into_iter().next() else {
        unreachable!("decode_tag_fields is only called for objects with a `$` field")
    };
    match name.as_str() {
        INTEGER_TAG => Ok(Value::Int64(i64::from_le_bytes(decode_8_bytes(
            INTEGER_TAG,
            payload,
        )?))),
        FLOAT_TAG => Ok(Value::Float64(f64::from_bits(u64::from_le_bytes(
            decode_8_bytes(FLOAT_TAG, payload)?,
        )))),
        BYTES_TAG => Ok(Value::Bytes(decode_base64(BYTES_TAG, payload)?)),
        _ => Err(ValueError::new(ValueErrorKind::InvalidFieldName {
            name,
            reason: FieldNameError::DollarPrefix,
        })),
    }
}

fn decode_base64(tag: &str, payload: Json) -> Result<Vec<u8>, ValueError> {
    let Json::String(text) = payload else {
        return Err(ValueError::encoding(format!(
            "{tag} must be a base64 string, got {}",
            json_type_name(&payload)
        )));
    };
    BASE64
        .decode(text)
        .map_err(|e| ValueError::encoding(format!("{tag} is not valid base64: {e}")))
}

fn decode_8_bytes(tag: &str, payload: Json) -> Result<[u8; 8], ValueError> {
    decode_base64(tag, payload)?
        .try_into()
        .map_err(|bytes: Vec<u8>| {
            ValueError::encoding(format!(
                "{tag} must be 8 bytes of base64, got {}",
                bytes.len()
            ))
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn round_trip(value: &Value) -> Value {
        let text = value.to_convex_json_string();
        let back = Value::from_convex_json_str(&text).unwrap();
        assert_eq!(
            &Value::from_convex_json(value.to_convex_json()).unwrap(),
            value
        );
        back
    }

    fn error(text: &str) -> String {
        Value::from_convex_json_str(text).unwrap_err().to_string()
    }

    #[test]
    fn plain_json_types() {
        assert_eq!(Value::Null.to_convex_json(), json!(null));
        assert_eq!(Value::Boolean(true).to_convex_json(), json!(true));
        assert_eq!(Value::from("hi").to_convex_json(), json!("hi"));
        assert_eq!(
            Value::Array(vec![Value::Null, Value::from("a")]).to_convex_json(),
            json!([null, "a"])
        );
    }

    #[test]
    fn integers_are_tagged_little_endian() {
        assert_eq!(
            Value::Int64(1).to_convex_json(),
            json!({"$integer": "AQAAAAAAAAA="})
        );
        assert_eq!(
            Value::Int64(-1).to_convex_json(),
            json!({"$integer": "//////////8="})
        );
        for n in [0, 1, -1, i64::MIN, i64::MAX, 1 << 53, -(1 << 53) - 1] {
            assert_eq!(round_trip(&Value::Int64(n)), Value::Int64(n));
        }
    }

    #[test]
    fn finite_floats_are_numbers() {
        assert_eq!(Value::Float64(1.0).to_convex_json_string(), "1.0");
        assert_eq!(Value::Float64(0.0).to_convex_json_string(), "0.0");
        assert_eq!(Value::Float64(-2.5).to_convex_json(), json!(-2.5));
        for f in [
            0.0,
            1.0,
            0.1,
            -2.5,
            f64::MIN,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::EPSILON,
            5e-324,
            1e300,
        ] {
            assert_eq!(round_trip(&Value::Float64(f)), Value::Float64(f), "{f}");
        }
    }

    #[test]
    fn special_floats_are_tagged() {
        assert_eq!(
            Value::Float64(f64::NAN).to_convex_json(),
            json!({"$float": "AAAAAAAA+H8="})
        );
        assert_eq!(
            Value::Float64(f64::INFINITY).to_convex_json(),
            json!({"$float": "AAAAAAAA8H8="})
        );
        assert_eq!(
            Value::Float64(f64::NEG_INFINITY).to_convex_json(),
            json!({"$float": "AAAAAAAA8P8="})
        );
        assert_eq!(
            Value::Float64(-0.0).to_convex_json(),
            json!({"$float": "AAAAAAAAAIA="})
        );
        let odd_nan = f64::from_bits(0x7ff8_0000_dead_beef);
        for f in [
            f64::NAN,
            -f64::NAN,
            odd_nan,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
        ] {
            assert_eq!(round_trip(&Value::Float64(f)), Value::Float64(f));
        }
    }

    #[test]
    fn tagged_finite_floats_are_accepted() {
        let tagged = json!({"$float": BASE64.encode(1.5f64.to_bits().to_le_bytes())});
        assert_eq!(
            Value::from_convex_json(tagged).unwrap(),
            Value::Float64(1.5)
        );
    }

    #[test]
    fn every_json_number_is_a_float() {
        assert_eq!(
            Value::from_convex_json_str("5").unwrap(),
            Value::Float64(5.0)
        );
        assert_eq!(
            Value::from_convex_json_str("-7").unwrap(),
            Value::Float64(-7.0)
        );
        assert_eq!(
            Value::from_convex_json_str("18446744073709551615").unwrap(),
            Value::Float64(18446744073709551615.0)
        );
        assert_eq!(
            Value::from_convex_json_str("-0").unwrap(),
            Value::Float64(-0.0)
        );
    }

    #[test]
    fn bytes() {
        assert_eq!(Value::Bytes(vec![]).to_convex_json(), json!({"$bytes": ""}));
        assert_eq!(
            Value::Bytes(b"hi".to_vec()).to_convex_json(),
            json!({"$bytes": "aGk="})
        );
        for b in [vec![], vec![0], vec![0xff; 7], (0..=255).collect()] {
            assert_eq!(round_trip(&Value::Bytes(b.clone())), Value::Bytes(b));
        }
        // Unpadded base64 is accepted.
        assert_eq!(
            Value::from_convex_json_str(r#"{"$bytes": "aGk"}"#).unwrap(),
            Value::Bytes(b"hi".to_vec())
        );
    }

    #[test]
    fn nested_objects() {
        let value = Value::Object(BTreeMap::from([
            ("a".to_owned(), Value::Int64(3)),
            (
                "b".to_owned(),
                Value::Object(BTreeMap::from([(
                    "c".to_owned(),
                    Value::Array(vec![Value::Bytes(vec![1]), Value::Float64(f64::NAN)]),
                )])),
            ),
            ("_id".to_owned(), Value::from("x")),
        ]));
        assert_eq!(
            value.to_convex_json(),
            json!({
                "a": {"$integer": "AwAAAAAAAAA="},
                "b": {"c": [{"$bytes": "AQ=="}, {"$float": "AAAAAAAA+H8="}]},
                "_id": "x",
            })
        );
        assert_eq!(round_trip(&value), value);
    }

    #[test]
    fn bad_tags() {
        assert_eq!(
            error(r#"{"$integer": "AQA="}"#),
            "$integer must be 8 bytes of base64, got 2"
        );
        assert_eq!(
            error(r#"{"$float": "AQAAAAAAAAAAAA=="}"#),
            "$float must be 8 bytes of base64, got 10"
        );
        assert!(
            error(r#"{"$integer": "not base64!"}"#).starts_with("$integer is not valid base64: "),
        );
        assert_eq!(
            error(r#"{"$bytes": 5}"#),
            "$bytes must be a base64 string, got a number"
        );
        assert_eq!(
            error(r#"{"a": [0, {"$integer": "AQAAAAAAAAA=", "x": 1}]}"#),
            r#".a[1]: an object with a "$integer" field must have no other fields, this one has 2"#
        );
    }

    #[test]
    fn unknown_dollar_fields() {
        assert_eq!(
            error(r#"{"user": {"$foo": 1}}"#),
            r#"field name "$foo" at .user: field names may not start with "$""#
        );
        assert_eq!(
            error(r#"{"$foo": 1, "a": 2}"#),
            r#"field name "$foo": field names may not start with "$""#
        );
    }

    #[test]
    fn invalid_json() {
        assert!(error("{").starts_with("invalid JSON: "), "{}", error("{"));
    }

    #[test]
    fn depth_is_limited_while_decoding() {
        let limits = ValueLimits {
            max_nesting_depth: 3,
            ..ValueLimits::default()
        };
        assert!(Value::from_convex_json_str_with_limits("[[[]]]", &limits).is_ok());
        // A tagged scalar is not a level of its own.
        assert!(
            Value::from_convex_json_str_with_limits(r#"[[{"$integer": "AQAAAAAAAAA="}]]"#, &limits)
                .is_ok()
        );
        assert_eq!(
            Value::from_convex_json_str_with_limits("[[[1]]]", &limits)
                .unwrap_err()
                .to_string(),
            "[0][0][0]: value is nested deeper than the limit of 3 levels"
        );
        // The default limit applies without explicit limits: 64 levels, so 100 arrays fail.
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(
            error(&deep).ends_with("value is nested deeper than the limit of 64 levels"),
            "{}",
            error(&deep)
        );
        // Far past the parser's own limit: refused, not a stack overflow.
        let very_deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(Value::from_convex_json_str(&very_deep).is_err());
    }

    #[test]
    fn with_limits_checks_size_and_names() {
        let limits = ValueLimits {
            max_size_bytes: 10,
            ..ValueLimits::default()
        };
        assert_eq!(
            Value::from_convex_json_str_with_limits(r#""0123456789""#, &limits)
                .unwrap_err()
                .to_string(),
            "value is 12 bytes, over the limit of 10 bytes"
        );
        assert_eq!(
            Value::from_convex_json_str_with_limits(&format!("\"{}\"", "x".repeat(50)), &limits)
                .unwrap_err()
                .to_string(),
            "JSON text is 52 bytes, over the limit of 40 bytes"
        );
        assert_eq!(
            Value::from_convex_json_str_with_limits(r#"{"": 1}"#, &ValueLimits::default())
                .unwrap_err()
                .to_string(),
            r#"field name "": field names may not be empty"#
        );
    }
}
