//! Documents: a table's rows. Every document has the system fields `_id` (a Convex id that
//! names its table) and `_creationTime` (milliseconds since the epoch, float64); the rest
//! are the author's fields, held to Convex's field-name and size rules on every write.

use std::borrow::Cow;
use std::collections::BTreeMap;

use kiln_values::{ConvexJsonText, Value, ValueLimits, check_field_name};

use super::id::DocumentId;

pub const ID_FIELD: &str = "_id";
pub const CREATION_TIME_FIELD: &str = "_creationTime";

/// One stored document.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub id: DocumentId,
    /// Milliseconds since the Unix epoch; strictly increasing within a table.
    pub creation_time: f64,
    /// The author's fields: never `_id` or `_creationTime`.
    pub fields: BTreeMap<String, Value>,
}

/// Why a document cannot be written.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DocumentError {
    #[error("a document must be an object, got {0}")]
    NotAnObject(&'static str),
    #[error("invalid document: {0}")]
    Invalid(String),
    #[error("document is {size} bytes, over the limit of {limit} bytes (max_document_bytes)")]
    TooLarge { size: usize, limit: usize },
}

impl Document {
    /// The document as its readers see it, system fields included.
    pub fn to_value(&self) -> Value {
        let mut fields = self.fields.clone();
        fields.insert(ID_FIELD.to_string(), Value::String(self.id.encode()));
        fields.insert(
            CREATION_TIME_FIELD.to_string(),
            Value::Float64(self.creation_time),
        );
        Value::Object(fields)
    }

    /// The value of a field, system fields included; `a.b` reaches into nested objects, as
    /// index and filter field paths do. `None` when absent (Convex's `undefined`).
    pub fn field(&self, path: &str) -> Option<Value> {
        self.field_ref(path).map(Cow::into_owned)
    }

    /// [`field`](Self::field) without copying: user fields are borrowed; only the system
    /// fields, which are not stored as values, are built.
    pub fn field_ref(&self, path: &str) -> Option<Cow<'_, Value>> {
        match path {
            ID_FIELD => return Some(Cow::Owned(Value::String(self.id.encode()))),
            CREATION_TIME_FIELD => return Some(Cow::Owned(Value::Float64(self.creation_time))),
            _ => {}
        }
        let mut parts = path.split('.');
        let mut current = self.fields.get(parts.next()?)?;
        for part in parts {
            match current {
                Value::Object(fields) => current = fields.get(part)?,
                _ => return None,
            }
        }
        Some(Cow::Borrowed(current))
    }

    /// The document as Convex JSON text, system fields included: the text of
    /// [`to_value`](Self::to_value), written without copying the document into a value
    /// first (every document a function reads, and every one stored, is written so).
    pub fn to_convex_json_string(&self) -> String {
        let mut text = Vec::with_capacity(self.size_bytes().saturating_add(16));
        serde_json::to_writer(&mut text, &DocumentText(self))
            .expect("writing JSON into a Vec cannot fail");
        String::from_utf8(text).expect("serde_json writes UTF-8")
    }

    /// Size as counted against `max_document_bytes`: the whole document, system fields
    /// included.
    pub fn size_bytes(&self) -> usize {
        // As `self.to_value().size_bytes()`, without copying the document: an object's
        // size is 2 plus, per field, its name's length + 1 + its value's size.
        let system =
            (ID_FIELD.len() + 1 + self.id.encode().len() + 2) + (CREATION_TIME_FIELD.len() + 1 + 9);
        let user = self.fields.iter().fold(0usize, |sum, (name, value)| {
            sum.saturating_add(name.len() + 1)
                .saturating_add(value.size_bytes())
        });
        (2 + system).saturating_add(user)
    }
}

/// A document serialized as Convex JSON: its fields and the two system fields, all in name
/// order as [`Document::to_value`]'s object has them.
struct DocumentText<'a>(&'a Document);

impl serde::Serialize for DocumentText<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let document = self.0;
        let id = Value::String(document.id.encode());
        let creation_time = Value::Float64(document.creation_time);
        // In name order: "_creationTime" sorts before "_id".
        let mut system = [(CREATION_TIME_FIELD, &creation_time), (ID_FIELD, &id)]
            .into_iter()
            .peekable();
        let mut map = serializer.serialize_map(Some(document.fields.len() + 2))?;
        for (name, value) in &document.fields {
            while let Some((system_name, system_value)) =
                system.next_if(|(system_name, _)| *system_name < name.as_str())
            {
                map.serialize_entry(system_name, &ConvexJsonText(system_value))?;
            }
            map.serialize_entry(name, &ConvexJsonText(value))?;
        }
        for (system_name, system_value) in system {
            map.serialize_entry(system_name, &ConvexJsonText(system_value))?;
        }
        map.end()
    }
}

/// Checks the author's fields of a document about to be written: an object whose
/// top-level names do not start with `_` or `$`, whose nested names do not start with `$`,
/// nested no deeper than `limits` allow, and no bigger than `max_document_bytes` once the
/// system fields are added.
pub fn check_user_fields(
    value: Value,
    limits: &ValueLimits,
    max_document_bytes: usize,
) -> Result<BTreeMap<String, Value>, DocumentError> {
    let Value::Object(fields) = value else {
        return Err(DocumentError::NotAnObject(value.type_name()));
    };
    for name in fields.keys() {
        check_field_name(name, false).map_err(|err| DocumentError::Invalid(err.to_string()))?;
    }
    let object = Value::Object(fields);
    object
        .check(limits)
        .map_err(|err| DocumentError::Invalid(err.to_string()))?;
    // `_id` is a 30-odd character string and `_creationTime` a float: count them too.
    let size = object.size_bytes() + SYSTEM_FIELDS_SIZE_BYTES;
    if size > max_document_bytes {
        return Err(DocumentError::TooLarge {
            size,
            limit: max_document_bytes,
        });
    }
    let Value::Object(fields) = object else {
        unreachable!("checked above")
    };
    Ok(fields)
}

/// What `_id` and `_creationTime` add to a document's size: the names, a 32-character id
/// string and a float64.
const SYSTEM_FIELDS_SIZE_BYTES: usize =
    (ID_FIELD.len() + 1 + 34) + (CREATION_TIME_FIELD.len() + 1 + 9);

#[cfg(test)]
mod tests {
    use super::*;

    fn object(fields: &[(&str, Value)]) -> Value {
        Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn size_bytes_counts_the_document_as_its_readers_see_it() {
        let mut fields = BTreeMap::new();
        fields.insert("name".to_string(), Value::from("ada"));
        fields.insert(
            "nested".to_string(),
            Value::Array(vec![Value::Int64(1), Value::Null]),
        );
        let document = Document {
            id: DocumentId::generate(10_001),
            creation_time: 1.7e12,
            fields,
        };
        assert_eq!(document.size_bytes(), document.to_value().size_bytes());
    }

    #[test]
    fn its_text_is_the_text_of_its_value() {
        // User fields before, between and after the system fields in name order.
        let fields = object(&[
            ("Zebra", Value::Int64(1)),
            ("_", Value::Null),
            (
                "a",
                Value::Array(vec![Value::Float64(-0.0), Value::Bytes(vec![1])]),
            ),
            ("b", Value::String("\"quoted\"".into())),
        ]);
        let Value::Object(fields) = fields else {
            unreachable!()
        };
        for fields in [fields, BTreeMap::new()] {
            let document = Document {
                id: DocumentId::new(10_007, [3; super::super::id::INTERNAL_ID_LEN]),
                creation_time: 1_700_000_000_000.5,
                fields,
            };
            assert_eq!(
                document.to_convex_json_string(),
                document.to_value().to_convex_json_string()
            );
        }
    }

    #[test]
    fn system_fields_are_added_and_reachable() {
        let id = DocumentId::generate(10_001);
        let nested = object(&[("b", Value::Int64(7))]);
        let document = Document {
            id,
            creation_time: 1.5,
            fields: [("a".to_string(), nested)].into(),
        };
        assert_eq!(document.field("a.b"), Some(Value::Int64(7)));
        assert_eq!(document.field("a.c"), None);
        assert_eq!(document.field("_id"), Some(Value::String(id.encode())));
        assert_eq!(document.field("_creationTime"), Some(Value::Float64(1.5)));
        let Value::Object(all) = document.to_value() else {
            panic!()
        };
        assert_eq!(
            all.keys().collect::<Vec<_>>(),
            ["_creationTime", "_id", "a"]
        );
    }

    #[test]
    fn bad_documents_are_refused_with_the_rule() {
        let limits = ValueLimits::default();
        let err = check_user_fields(Value::Int64(1), &limits, 1 << 20).unwrap_err();
        assert_eq!(err, DocumentError::NotAnObject("int64"));
        let err =
            check_user_fields(object(&[("_secret", Value::Null)]), &limits, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("_secret"), "{err}");
        let err = check_user_fields(object(&[("$x", Value::Null)]), &limits, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("$x"), "{err}");
        let nested_underscore = object(&[("a", object(&[("_ok", Value::Null)]))]);
        assert!(check_user_fields(nested_underscore, &limits, 1 << 20).is_ok());
    }

    #[test]
    fn the_document_size_limit_counts_system_fields() {
        let limits = ValueLimits::default();
        let body = |n: usize| object(&[("body", Value::String("x".repeat(n)))]);
        // Object 2 + "body" 5 + string (n + 2) + system fields.
        let fits = 1000 - 9 - SYSTEM_FIELDS_SIZE_BYTES;
        assert!(check_user_fields(body(fits), &limits, 1000).is_ok());
        let err = check_user_fields(body(fits + 1), &limits, 1000).unwrap_err();
        assert_eq!(
            err,
            DocumentError::TooLarge {
                size: 1001,
                limit: 1000
            }
        );
    }
}
