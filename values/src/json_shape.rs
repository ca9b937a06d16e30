//! A check of JSON text's shape before anything is built from it: how deep it nests and
//! how many values it holds. Parsing JSON into a tree costs tens of bytes per value
//! whatever the value's size estimate, so `[null,null,...]` in a 16 MiB request body would
//! become hundreds of megabytes before any limit looked at it. [`check_json_shape`] walks
//! the text once, keeping nothing, and refuses it as soon as it crosses a limit.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{ValueError, ValueErrorKind};

/// Checks that `text` is JSON nesting at most `max_depth` levels (a scalar or an empty
/// container is one level) and holding at most `max_elements` values (every scalar, array
/// and object counts one; object keys do not). Builds nothing; returns the values counted.
pub fn check_json_shape(
    text: &[u8],
    max_depth: usize,
    max_elements: usize,
) -> Result<usize, ValueError> {
    let mut walk = Walk {
        max_depth,
        max_elements,
        elements: 0,
        refused: None,
    };
    // serde_json's own recursion limit (128 levels) stays on as a backstop; this walk's
    // depth check comes first for any `max_depth` below it.
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let result = Node {
        walk: &mut walk,
        level: 1,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end());
    match (result, walk.refused) {
        (_, Some(refused)) => Err(ValueError::new(refused)),
        (Ok(()), None) => Ok(walk.elements),
        (Err(err), None) => Err(ValueError::new(ValueErrorKind::InvalidJson(format!(
            "invalid JSON: {err}"
        )))),
    }
}

struct Walk {
    max_depth: usize,
    max_elements: usize,
    elements: usize,
    /// The limit that stopped the walk (the serde error that carried it out says less).
    refused: Option<ValueErrorKind>,
}

impl Walk {
    fn count<E: de::Error>(&mut self, level: usize) -> Result<(), E> {
        if level > self.max_depth {
            self.refused = Some(ValueErrorKind::TooDeep {
                limit: self.max_depth,
            });
            return Err(E::custom("too deep"));
        }
        self.elements += 1;
        if self.elements > self.max_elements {
            self.refused = Some(ValueErrorKind::TooManyElements {
                limit: self.max_elements,
            });
            return Err(E::custom("too many elements"));
        }
        Ok(())
    }
}

/// One value at `level`.
struct Node<'w> {
    walk: &'w mut Walk,
    level: usize,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.walk.count(self.level)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.walk.count(self.level)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.walk.count(self.level)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.walk.count(self.level)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.walk.count(self.level)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.walk.count(self.level)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.walk.count(self.level)?;
        while seq
            .next_element_seed(Node {
                walk: &mut *self.walk,
                level: self.level + 1,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.walk.count(self.level)?;
        while map.next_key::<de::IgnoredAny>()?.is_some() {
            map.next_value_seed(Node {
                walk: &mut *self.walk,
                level: self.level + 1,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_and_elements_are_counted_up_to_their_limits() {
        assert_eq!(check_json_shape(b"[[1]]", 3, 3), Ok(3));
        let deep = check_json_shape(b"[[[1]]]", 3, 100).unwrap_err();
        assert_eq!(deep.kind(), &ValueErrorKind::TooDeep { limit: 3 });
        let many = check_json_shape(b"[1, 2, 3]", 10, 3).unwrap_err();
        assert_eq!(many.kind(), &ValueErrorKind::TooManyElements { limit: 3 });
        // Keys are not values: one object and one value.
        assert_eq!(check_json_shape(br#"{"a": null}"#, 2, 2), Ok(2));
    }

    #[test]
    fn text_deeper_than_the_parsers_own_limit_is_refused_by_ours() {
        let text = "[".repeat(100_000);
        let err = check_json_shape(text.as_bytes(), 64, 1 << 20).unwrap_err();
        assert_eq!(err.kind(), &ValueErrorKind::TooDeep { limit: 64 });
    }

    #[test]
    fn malformed_text_is_invalid_json() {
        let err = check_json_shape(b"[1, 2", 10, 10).unwrap_err();
        assert!(
            matches!(err.kind(), ValueErrorKind::InvalidJson(_)),
            "{err}"
        );
        let trailing = check_json_shape(b"1 2", 10, 10).unwrap_err();
        assert!(matches!(trailing.kind(), ValueErrorKind::InvalidJson(_)));
    }
}
