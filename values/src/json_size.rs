//! A value's [`size_bytes`](Value::size_bytes) read off its Convex JSON text, without
//! building the value: serde_json's tokenizer drives a visitor that only adds up sizes, so
//! strings are borrowed from the text (or from one scratch buffer when they hold escapes)
//! and nothing is allocated per node.
//!
//! The database counts every document a transaction reads against `max_bytes_read` by this
//! size. Reading a document's stored text this way lets it hand the text to a function
//! untouched instead of decoding it into a `Value` and writing it out again (issue 16's
//! profile of `messages:list`: that round trip was most of the host's per-document time).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::convex_json::{BYTES_TAG, FLOAT_TAG, INTEGER_TAG};
use crate::error::{ValueError, ValueErrorKind};
#[cfg(doc)]
use crate::value::Value;

/// The [`Value::size_bytes`] of the value Convex JSON `text` encodes, equal to decoding it
/// and asking, for every text the decoder accepts. Text it refuses may get a size here
/// rather than an error: this reads text this server wrote (stored documents), and checks
/// only what it must to count (malformed JSON, an unknown `$` tag, a tag beside fields).
pub fn convex_json_size_bytes(text: &str) -> Result<usize, ValueError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    SizeOf
        .deserialize(&mut deserializer)
        .and_then(|size| deserializer.end().map(|()| size))
        .map_err(|err| ValueError::new(ValueErrorKind::InvalidJson(format!("invalid JSON: {err}"))))
}

/// The size of one value.
struct SizeOf;

impl<'de> DeserializeSeed<'de> for SizeOf {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SizeOf {
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

    // Every JSON number is a float64.
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<usize, E> {
        Ok(9)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<usize, E> {
        Ok(9)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<usize, E> {
        Ok(9)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<usize, E> {
        Ok(s.len().saturating_add(2))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut size: usize = 2;
        while let Some(element) = seq.next_element_seed(SizeOf)? {
            size = size.saturating_add(element);
        }
        Ok(size)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let mut size: usize = 2;
        let mut fields = 0usize;
        // The size of the value a `$` tag encodes, once one is met.
        let mut tagged = None;
        while let Some(key) = map.next_key_seed(KeyOf)? {
            fields += 1;
            match key {
                Key::Field(name_len) => {
                    let value = map.next_value_seed(SizeOf)?;
                    size = size.saturating_add(name_len + 1).saturating_add(value);
                }
                Key::Number => {
                    map.next_value::<IgnoredAny>()?;
                    tagged = Some(9);
                }
                Key::Bytes => {
                    let bytes = map.next_value_seed(Base64Len)?;
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
enum Key {
    /// A field, with its name's length in bytes.
    Field(usize),
    /// `$integer` or `$float`: an int64 or float64.
    Number,
    /// `$bytes`: bytes, in base64.
    Bytes,
}

struct KeyOf;

impl<'de> DeserializeSeed<'de> for KeyOf {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyOf {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        match name {
            INTEGER_TAG | FLOAT_TAG => Ok(Key::Number),
            BYTES_TAG => Ok(Key::Bytes),
            _ if name.starts_with('$') => Err(E::custom(format!("unknown tag {name:?}"))),
            _ => Ok(Key::Field(name.len())),
        }
    }
}

/// The length of the bytes a base64 string encodes (padded or not).
struct Base64Len;

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
        // Every 4 characters carry 3 bytes; a short last group carries one byte fewer
        // than its characters.
        Ok(text.trim_end_matches('=').len() * 3 / 4)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::convex_json_size_bytes;
    use crate::Value;

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
}
