//! [`serialize_text_or_value`]: a value whose Convex JSON text is already at hand (a stored
//! document the host handed a guest) serializes into [`to_convex_json_text`] as that text,
//! copied, and into any other serializer as its value.
//!
//! A query that returns the documents it read, unchanged, is the common case: `messages:list`
//! returning 20 documents spent about a quarter of its server CPU decoding each document
//! into a `Value` in the guest and writing it out again (`cargo xtask profile list-1`).
//!
//! serde has no way to ask a serializer what it is, so the two meet by a handshake: the
//! value serializes as a newtype struct named [`TEXT_OR_VALUE`]. The Convex JSON writer
//! recognizes the name, raises a flag for the inner value and hands it a serializer that
//! takes one string and copies it into the text verbatim. The inner value reads the flag:
//! raised, it gives its text; not raised (any other serializer, which sees a plain newtype
//! struct), it gives its value.
//!
//! [`to_convex_json_text`]: crate::to_convex_json_text

use std::cell::Cell;

use serde::ser::{Serialize, Serializer};

/// The newtype struct name the Convex JSON text writer recognizes.
pub(crate) const TEXT_OR_VALUE: &str = "$kiln_values::TextOrValue";

thread_local! {
    /// Raised by the Convex JSON writer for the one `serialize` call that follows.
    static TEXT_WANTED: Cell<bool> = const { Cell::new(false) };
}

/// Serializes the value whose Convex JSON text is `text`. [`to_convex_json_text`] copies
/// `text` as it is; any other serializer (serde_json, [`to_value`]) is given `value()`,
/// which is called only then.
///
/// The caller vouches that `text` is `value()`'s text, in Convex JSON. Nothing here checks
/// it: a reader of the result (the host checks every function's result) finds any fault.
///
/// [`to_convex_json_text`]: crate::to_convex_json_text
/// [`to_value`]: crate::to_value
pub fn serialize_text_or_value<S, V, F>(
    serializer: S,
    text: &str,
    value: F,
) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    V: Serialize,
    F: Fn() -> V,
{
    serializer.serialize_newtype_struct(TEXT_OR_VALUE, &TextOrValue { text, value })
}

struct TextOrValue<'a, F> {
    text: &'a str,
    value: F,
}

impl<V: Serialize, F: Fn() -> V> Serialize for TextOrValue<'_, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if TEXT_WANTED.replace(false) {
            serializer.serialize_str(self.text)
        } else {
            (self.value)().serialize(serializer)
        }
    }
}

/// The writer's side of the handshake: serializes `inner` (the newtype's content) into
/// `text_sink`, a serializer that copies the one string it is given into the text.
pub(crate) fn serialize_text_into<T, S>(inner: &T, text_sink: S) -> Result<S::Ok, S::Error>
where
    T: Serialize + ?Sized,
    S: Serializer,
{
    TEXT_WANTED.set(true);
    let written = inner.serialize(text_sink);
    // Lowered already unless `inner` was not a `TextOrValue` (a type of someone else's
    // that took the name): then it must not reach the next one.
    TEXT_WANTED.set(false);
    written
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;
    use crate::{Value, to_convex_json_text, to_convex_json_text_within, to_value};

    /// A document as the guest SDK holds one: its text, and the value the text decodes to.
    /// Counts how often its value was asked for.
    struct Stored {
        text: &'static str,
        decoded: Cell<usize>,
    }

    impl Stored {
        fn new(text: &'static str) -> Self {
            Stored {
                text,
                decoded: Cell::new(0),
            }
        }
    }

    impl Serialize for Stored {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serialize_text_or_value(serializer, self.text, || {
                self.decoded.set(self.decoded.get() + 1);
                Value::from_convex_json_str(self.text).expect("test text decodes")
            })
        }
    }

    #[derive(Serialize)]
    struct Page<'a> {
        page: Vec<&'a Stored>,
        first: Option<&'a Stored>,
        by_name: BTreeMap<&'static str, &'a Stored>,
        done: bool,
    }

    // Spaces and an integer-valued float written as `2`: not how the writer would write
    // the value, so finding them in the output shows the text was copied, not rewritten.
    const TEXT: &str = r#"{"a": 2, "b": {"$integer": "AQAAAAAAAAA="}}"#;

    #[test]
    fn the_convex_json_writer_copies_the_text_at_any_depth_without_decoding() {
        let stored = Stored::new(TEXT);
        let page = Page {
            page: vec![&stored, &stored],
            first: Some(&stored),
            by_name: BTreeMap::from([("x", &stored)]),
            done: true,
        };
        let text = to_convex_json_text(&page).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"page":[{TEXT},{TEXT}],"first":{TEXT},"by_name":{{"x":{TEXT}}},"done":true}}"#
            )
        );
        assert_eq!(stored.decoded.get(), 0);
    }

    #[test]
    fn any_other_serializer_gets_the_value() {
        let stored = Stored::new(TEXT);
        let expected = Value::from_convex_json_str(TEXT).unwrap();
        assert_eq!(to_value(&stored).unwrap(), expected);
        assert_eq!(
            serde_json::to_value(&stored).unwrap(),
            serde_json::to_value(&expected).unwrap()
        );
        assert_eq!(stored.decoded.get(), 2);
    }

    #[test]
    fn the_flag_is_lowered_after_each_use() {
        let stored = Stored::new(TEXT);
        to_convex_json_text(&stored).unwrap();
        // Had the flag stayed raised, serde_json would be handed the text as a string.
        let plain = serde_json::to_value(&stored).unwrap();
        assert!(plain.is_object(), "{plain}");
    }

    #[test]
    fn copied_text_counts_against_the_length_cap() {
        let stored = Stored::new(TEXT);
        assert_eq!(
            to_convex_json_text_within(&vec![&stored], TEXT.len() + 2).as_deref(),
            Some(format!("[{TEXT}]").as_str())
        );
        assert_eq!(
            to_convex_json_text_within(&vec![&stored], TEXT.len() + 1),
            None
        );
    }

    /// A type of someone else's that happens to use the name is written as its value (the
    /// direct writer refuses it, the value serializer takes over) and leaves no raised flag.
    #[test]
    fn a_stranger_newtype_with_the_name_is_written_as_its_value() {
        struct Impostor;
        impl Serialize for Impostor {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_newtype_struct(TEXT_OR_VALUE, &42i64)
            }
        }
        assert_eq!(to_convex_json_text_within(&Impostor, usize::MAX), None);
        assert_eq!(
            to_convex_json_text(&Impostor).unwrap(),
            Value::Int64(42).to_convex_json_string()
        );
        let stored = Stored::new(TEXT);
        assert!(serde_json::to_value(&stored).unwrap().is_object());
    }
}
