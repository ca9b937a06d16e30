//! Convex JSON text decoded straight into a [`Value`]: serde_json's tokenizer drives a
//! visitor that builds the value as it reads, with no `serde_json::Value` tree in between.
//! That tree cost one allocation per string, array and object, all thrown away at once;
//! every document a function reads or returns was decoded through it (issue 16's profile
//! of `messages:list`: a fifth of the host's time in parsing and freeing it).
//!
//! The answers are those of decoding the parsed tree ([`Value::from_convex_json`]) for
//! every valid text. For text with several faults the first fault met in reading order is
//! reported (the tree decoder reported a syntax error anywhere first, then faults in field
//! name order).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

use crate::convex_json::decode_tag_fields;
use crate::error::{ValueError, ValueErrorKind};
use crate::value::Value;

/// Decodes Convex JSON `text`, nesting at most `max_depth` levels (serde_json's own limit of
/// 128 stays on behind it).
pub(crate) fn decode_text(text: &str, max_depth: usize) -> Result<Value, ValueError> {
    let refused = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let result = Node {
        level: 1,
        max_depth,
        refused: &refused,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (result, refused.into_inner()) {
        (_, Some(refused)) => Err(refused),
        (Ok(value), None) => Ok(value),
        (Err(err), None) => Err(ValueError::new(ValueErrorKind::InvalidJson(format!(
            "invalid JSON: {err}"
        )))),
    }
}

/// One value at nesting `level`. A fault of the value (not of the JSON) is put in
/// `refused`, and a serde error carries the decoder out; each enclosing array or object
/// adds its place in the path to it on the way.
struct Node<'r> {
    level: usize,
    max_depth: usize,
    refused: &'r RefCell<Option<ValueError>>,
}

impl Node<'_> {
    fn refuse<E: de::Error>(&self, error: ValueError) -> E {
        *self.refused.borrow_mut() = Some(error);
        E::custom("refused")
    }

    fn child(&self) -> Node<'_> {
        Node {
            level: self.level + 1,
            max_depth: self.max_depth,
            refused: self.refused,
        }
    }

    /// Adds `place` to the path of the fault a child left, if it left one.
    fn locate(&self, place: impl FnOnce(ValueError) -> ValueError) {
        let mut refused = self.refused.borrow_mut();
        if let Some(error) = refused.take() {
            *refused = Some(place(error));
        }
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.level > self.max_depth {
            return Err(self.refuse(ValueError::new(ValueErrorKind::TooDeep {
                limit: self.max_depth,
            })));
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Boolean(b))
    }

    // Every JSON number is a float64, as `serde_json::Number::as_f64` reads it.
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Float64(n as f64))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Float64(n as f64))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Float64(n))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut elements = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        loop {
            match seq.next_element_seed(self.child()) {
                Ok(Some(element)) => elements.push(element),
                Ok(None) => return Ok(Value::Array(elements)),
                Err(err) => {
                    let index = elements.len();
                    self.locate(|error| error.at_index(index));
                    return Err(err);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = BTreeMap::new();
        // `$`-prefixed fields: a tag's payload is any JSON, decoded by the tag's rules.
        let mut tags: Map<String, Json> = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if name.starts_with('$') {
                let payload: Json = map.next_value()?;
                tags.insert(name, payload);
                continue;
            }
            match map.next_value_seed(self.child()) {
                Ok(value) => {
                    fields.insert(name, value);
                }
                Err(err) => {
                    self.locate(|error| error.in_field(&name));
                    return Err(err);
                }
            }
        }
        if tags.is_empty() {
            return Ok(Value::Object(fields));
        }
        decode_tag_fields(fields.len() + tags.len(), tags).map_err(|error| self.refuse(error))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::Value;

    /// The tree decoder's answer for `text`, the reference this decoder must match.
    fn through_tree(text: &str, max_depth: usize) -> Result<Value, String> {
        crate::convex_json::decode_text_through_tree(text, max_depth).map_err(|e| e.to_string())
    }

    fn streamed(text: &str, max_depth: usize) -> Result<Value, String> {
        super::decode_text(text, max_depth).map_err(|e| e.to_string())
    }

    #[test]
    fn decodes_every_type_as_the_tree_decoder_does() {
        let texts = [
            json!(null),
            json!(true),
            json!(1),
            json!(-7),
            json!(18446744073709551615u64),
            json!(1.5e300),
            json!("text with \"escapes\" and \u{e9}"),
            json!({"$integer": "AQAAAAAAAAA="}),
            json!({"$float": "AAAAAAAA+H8="}),
            json!({"$bytes": "aGVsbG8="}),
            json!([1, [2, [3]], {"a": {"$integer": "AgAAAAAAAAA="}}]),
            json!({"_id": "x", "b": [1, 2], "a": {"nested": {"deep": "yes"}}, "Z": false}),
            json!({}),
            json!([]),
        ];
        for text in texts.iter().map(ToString::to_string) {
            assert_eq!(streamed(&text, 64), through_tree(&text, 64), "{text}");
        }
        // A field given twice: the last one counts, in both.
        let twice = r#"{"a": 1, "a": 2}"#;
        assert_eq!(streamed(twice, 64), through_tree(twice, 64));
        assert_eq!(
            streamed(twice, 64).unwrap(),
            Value::Object([("a".to_string(), Value::Float64(2.0))].into())
        );
    }

    #[test]
    fn refuses_what_the_tree_decoder_refuses_with_the_same_message() {
        let texts = [
            r#"{"$integer": "AQAAAAAAAAA=", "other": 1}"#,
            r#"{"$integer": 5}"#,
            r#"{"$integer": "AQ=="}"#,
            r#"{"$bytes": "not base64!"}"#,
            r#"{"$unknown": 1}"#,
            r#"{"a": {"$unknown": 1}}"#,
            r#"[0, [1, {"x": {"$float": "AA=="}}]]"#,
            r#"{"a": [[[[1]]]]}"#,
            r#"{"a": 1"#,
            r#"[1, 2,]"#,
            r#"{"a": 1} trailing"#,
            "",
        ];
        for text in texts {
            let expected = through_tree(text, 4);
            assert!(expected.is_err(), "{text} should be refused");
            assert_eq!(streamed(text, 4), expected, "{text}");
        }
    }
}
