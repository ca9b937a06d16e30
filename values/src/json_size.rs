//! A value's [`size_bytes`](Value::size_bytes) read off its Convex JSON text, without
//! building the value: serde_json's tokenizer drives a visitor that only adds up sizes, so
//! strings are borrowed from the text (or from one scratch buffer when they hold escapes)
//! and nothing is allocated per node.
//!
//! The database counts every document a transaction reads against `max_bytes_read` by this
//! size. Reading a document's stored text this way lets it hand the text to a function
//! untouched instead of decoding it into a `Value` and writing it out again (issue 16's
//! profile of `messages:list`: that round trip was most of the host's per-document time).
//!
//! The same walk, checking as it goes, tells whether a function's result text is one the
//! decoder would accept ([`is_valid_convex_json_text`]), so the host can pass the text on
//! without building the value (the same profile: decoding each result was 6% of a call).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::convex_json::{BASE64, BYTES_TAG, FLOAT_TAG, INTEGER_TAG, JSON_TEXT_SIZE_FACTOR};
use crate::error::{ValueError, ValueErrorKind};
use crate::field_names::field_name_problem;
use crate::limits::ValueLimits;
#[cfg(doc)]
use crate::value::Value;

/// The [`Value::size_bytes`] of the value Convex JSON `text` encodes, equal to decoding it
/// and asking, for every text the decoder accepts. Text it refuses may get a size here
/// rather than an error: this reads text this server wrote (stored documents), and checks
/// only what it must to count (malformed JSON, an unknown `$` tag, a tag beside fields).
pub fn convex_json_size_bytes(text: &str) -> Result<usize, ValueError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    SizeOf::COUNT_ONLY
        .deserialize(&mut deserializer)
        .and_then(|size| deserializer.end().map(|()| size))
        .map_err(|err| ValueError::new(ValueErrorKind::InvalidJson(format!("invalid JSON: {err}"))))
}

/// Whether `text` is a value's own Convex JSON text (what
/// [`Value::to_convex_json_string`] writes, up to how a number or a string is spelled)
/// that [`Value::from_convex_json_str_with_limits`]`(text, limits)` accepts, found without
/// building the value: valid JSON, nested within the depth limit, every field name allowed
/// and each object's fields in order, once each, every `$` tag well formed and alone in
/// its object, every number written as a float64 (`1.0`, not `1`; -0 as a `$float`), and
/// the size within the limit.
///
/// So text it accepts can be passed on in place of the value's: any reader gets the same
/// value from it. `false` says only that the caller must decode (and may write the value's
/// own text): text with bytes, fields out of order or with escapes in their names, or an
/// integer-looking number may be valid all the same.
pub fn is_valid_convex_json_text(text: &str, limits: &ValueLimits) -> bool {
    if text.len() > limits.max_size_bytes.saturating_mul(JSON_TEXT_SIZE_FACTOR) {
        return false;
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    SizeOf {
        level: 1,
        limits: Some(limits),
    }
    .deserialize(&mut deserializer)
    .and_then(|size| deserializer.end().map(|()| size))
    .is_ok_and(|size| size <= limits.max_size_bytes)
}

/// The size of one value at nesting `level`; with `limits`, also checked against them (and
/// a value they refuse is an error).
#[derive(Clone, Copy)]
struct SizeOf<'l> {
    level: usize,
    limits: Option<&'l ValueLimits>,
}

impl SizeOf<'_> {
    const COUNT_ONLY: SizeOf<'static> = SizeOf {
        level: 1,
        limits: None,
    };

    fn child(self) -> Self {
        Self {
            level: self.level + 1,
            ..self
        }
    }
}

impl SizeOf<'_> {
    fn integral_number<E: de::Error>(self) -> Result<usize, E> {
        match self.limits {
            None => Ok(9),
            Some(_) => Err(E::custom("a float64 written as an integer")),
        }
    }
}

impl<'de> DeserializeSeed<'de> for SizeOf<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        if self
            .limits
            .is_some_and(|limits| self.level > limits.max_nesting_depth)
        {
            return Err(de::Error::custom("nested too deep"));
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SizeOf<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<usize, E> {
        Ok(1)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<usize, E> {
        Ok(1)
    }

    // Every JSON number is a float64. Checking, it must be written as one (`1.0`, not `1`,
    // which a reader in a typed language takes for an integer), and not be -0 (which the
    // value's own text writes as a `$float`).
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<usize, E> {
        self.integral_number()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<usize, E> {
        self.integral_number()
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<usize, E> {
        if self.limits.is_some() && n == 0.0 && n.is_sign_negative() {
            return Err(E::custom("-0 as a plain number"));
        }
        Ok(9)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<usize, E> {
        Ok(s.len().saturating_add(2))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut size: usize = 2;
        while let Some(element) = seq.next_element_seed(self.child())? {
            size = size.saturating_add(element);
        }
        Ok(size)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let checking = self.limits.is_some();
        let mut size: usize = 2;
        let mut fields = 0usize;
        // The size of the value a `$` tag encodes, once one is met.
        let mut tagged = None;
        // Checking: the field before, for the order the value's own text has.
        let mut previous: Option<&'de str> = None;
        while let Some(key) = map.next_key_seed(KeyOf { checking })? {
            fields += 1;
            match key {
                Key::Field(name_len, name) => {
                    if checking {
                        let Some(name) = name else {
                            return Err(de::Error::custom("a field name with escapes"));
                        };
                        if previous.is_some_and(|previous| previous >= name) {
                            return Err(de::Error::custom("fields out of order, or twice"));
                        }
                        previous = Some(name);
                    }
                    let value = map.next_value_seed(self.child())?;
                    size = size.saturating_add(name_len + 1).saturating_add(value);
                }
                Key::Number if checking => {
                    map.next_value_seed(Base64Len { eight_bytes: true })?;
                    tagged = Some(9);
                }
                Key::Number => {
                    map.next_value::<IgnoredAny>()?;
                    tagged = Some(9);
                }
                // Checking bytes means decoding them: the caller decodes the text instead.
                Key::Bytes if checking => return Err(de::Error::custom("bytes")),
                Key::Bytes => {
                    let bytes = map.next_value_seed(Base64Len { eight_bytes: false })?;
                    tagged = Some(bytes.saturating_add(2));
                }
            }
        }
        match tagged {
            None => Ok(size),
            Some(size) if fields == 1 => Ok(size),
            Some(_) => Err(de::Error::custom(
                "an object with a `$` tag has no other fields",
            )),
        }
    }
}

/// What an object's key says about its value.
enum Key<'de> {
    /// A field, with its name's length in bytes, and the name when it is a slice of the
    /// text (written without escapes; always, when checking).
    Field(usize, Option<&'de str>),
    /// `$integer` or `$float`: an int64 or float64.
    Number,
    /// `$bytes`: bytes, in base64.
    Bytes,
}

/// An object's key; `checking`, a field name the limits refuse is an error.
struct KeyOf {
    checking: bool,
}

impl<'de> DeserializeSeed<'de> for KeyOf {
    type Value = Key<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyOf {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Key<'de>, E> {
        match self.visit_str(name)? {
            Key::Field(len, _) => Ok(Key::Field(len, Some(name))),
            tag => Ok(tag),
        }
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key<'de>, E> {
        match name {
            INTEGER_TAG | FLOAT_TAG => Ok(Key::Number),
            BYTES_TAG => Ok(Key::Bytes),
            _ if name.starts_with('$') => Err(E::custom(format!("unknown tag {name:?}"))),
            _ if self.checking && field_name_problem(name, true).is_some() => {
                Err(E::custom("a field name the rules refuse"))
            }
            _ => Ok(Key::Field(name.len(), None)),
        }
    }
}

/// The length of the bytes a base64 string encodes (padded or not). With `eight_bytes`,
/// the string is decoded: it must be valid base64 of exactly 8 bytes (an int64 or float64).
struct Base64Len {
    eight_bytes: bool,
}

impl<'de> DeserializeSeed<'de> for Base64Len {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Base64Len {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("base64 text")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<usize, E> {
        use base64::Engine;
        if !self.eight_bytes {
            // Every 4 characters carry 3 bytes; a short last group carries one byte fewer
            // than its characters.
            return Ok(text.trim_end_matches('=').len() * 3 / 4);
        }
        let mut bytes = [0u8; 8];
        match BASE64.decode_slice(text, &mut bytes) {
            Ok(8) => Ok(8),
            _ => Err(E::custom("not base64 of 8 bytes")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{convex_json_size_bytes, is_valid_convex_json_text};
    use crate::{Value, ValueLimits};

    #[test]
    fn counts_every_type_as_size_bytes_does() {
        let values = [
            Value::Null,
            Value::Boolean(true),
            Value::Int64(-5),
            Value::Float64(1.5),
            Value::Float64(f64::NAN),
            Value::Float64(-0.0),
            Value::String("with \"escapes\" and \u{e9}".into()),
            Value::Bytes(vec![]),
            Value::Bytes(vec![1]),
            Value::Bytes(vec![1, 2]),
            Value::Bytes(vec![1, 2, 3]),
            Value::Bytes(b"hello".to_vec()),
            Value::Array(vec![Value::Null, Value::Array(vec![Value::Int64(1)])]),
            Value::Object(BTreeMap::from([
                ("_id".to_string(), Value::String("abc".into())),
                ("n\u{e9}sted".to_string(), Value::Object(BTreeMap::new())),
                ("x".to_string(), Value::Bytes(vec![0; 7])),
            ])),
        ];
        for value in values {
            let text = value.to_convex_json_string();
            assert_eq!(
                convex_json_size_bytes(&text).unwrap(),
                value.size_bytes(),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_count() {
        for text in [
            r#"{"a": 1"#,
            r#"{"a": 1} trailing"#,
            r#"{"$unknown": 1}"#,
            r#"{"$integer": "AQAAAAAAAAA=", "other": 1}"#,
            r#"{"$bytes": 5}"#,
            "",
        ] {
            assert!(convex_json_size_bytes(text).is_err(), "{text}");
        }
    }

    #[test]
    fn valid_text_is_valid_without_decoding() {
        let limits = ValueLimits::default();
        for value in [
            Value::Null,
            Value::Int64(i64::MIN),
            Value::Float64(f64::NAN),
            Value::Float64(-0.0),
            Value::String("\u{e9}\"".into()),
            Value::Array(vec![Value::Int64(1), Value::Object(BTreeMap::new())]),
            Value::Object(BTreeMap::from([
                ("_id".to_string(), Value::String("abc".into())),
                ("n".to_string(), Value::Float64(1.5)),
            ])),
        ] {
            let text = value.to_convex_json_string();
            assert!(is_valid_convex_json_text(&text, &limits), "{text}");
        }
    }

    #[test]
    fn what_the_decoder_refuses_is_not_valid() {
        let limits = ValueLimits {
            max_nesting_depth: 3,
            max_size_bytes: 64,
        };
        for text in [
            r#"{"a": 1"#,
            r#"[1] trailing"#,
            r#"[[[[1]]]]"#,
            r#"{"a": {"b": {"c": 1}}}"#,
            r#""a string longer than the sixty-four bytes the limits allow for a value""#,
            r#"{"": 1}"#,
            r#"{"$x": 1}"#,
            r#"{"a": 1}"#,
            r#"{"$integer": "AQAAAAAAAAA=", "b": 1}"#,
            r#"{"$integer": "AQ=="}"#,
            r#"{"$float": "AQAAAAAAAAAA"}"#,
            r#"{"$integer": 5}"#,
            r#"{"$integer": "not base64!!"}"#,
            // Bytes are checked by decoding them: the caller decodes.
            r#"{"$bytes": "aGVsbG8="}"#,
        ] {
            assert!(!is_valid_convex_json_text(text, &limits), "{text}");
        }
        assert!(is_valid_convex_json_text(r#"[[1.5]]"#, &limits));
        assert!(is_valid_convex_json_text(
            r#"{"$integer": "AQAAAAAAAAA="}"#,
            &limits
        ));
        assert!(is_valid_convex_json_text(
            r#"{"a": 1.0, "b": 2e300}"#,
            &limits
        ));
    }

    #[test]
    fn text_unlike_the_values_own_is_left_to_the_decoder() {
        let limits = ValueLimits::default();
        for text in [
            // Numbers a typed reader takes for integers; -0 as a plain number.
            "1",
            "[1.0, -7]",
            "-0.0",
            // Fields out of order, or twice.
            r#"{"b": 1.0, "a": 2.0}"#,
            r#"{"a": 1.0, "a": 2.0}"#,
            // A name with escapes.
            r#"{"\u0061": 1.0}"#,
        ] {
            assert!(!is_valid_convex_json_text(text, &limits), "{text}");
            assert!(
                crate::Value::from_convex_json_str_with_limits(text, &limits).is_ok(),
                "{text}"
            );
        }
    }
}
