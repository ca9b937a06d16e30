//! [`Document`]: a document as the database hands it to a function, kept as its Convex JSON
//! text until the function looks inside.

use std::cell::OnceCell;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Id, Validate, Validator, Value};

/// A document read from the database: an object with `_id`, `_creationTime` and its fields.
///
/// It reads like the [`Value`] it holds (`Document` derefs to `Value`: `doc.as_object()`,
/// `&*doc`), and [`decode`](Self::decode) reads it into your own type. Until something looks
/// inside, it stays the text the host handed over: a query that returns the documents it
/// read, unchanged, hands them on as that text, never decoded or re-encoded. For
/// `messages:list` returning 20 documents, that was about a quarter of the call's CPU.
///
/// ```no_run
/// # use kiln::{Document, Error, QueryCtx};
/// # fn f(ctx: &QueryCtx) -> Result<(), Error> {
/// let notes: Vec<Document> = ctx.db.query("notes").collect()?;
/// for note in &notes {
///     let title = note.as_object().and_then(|fields| fields.get("title"));
///     # let _ = title;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Document {
    text: String,
    value: OnceCell<Value>,
}

impl Document {
    /// A document in the host's Convex JSON text (decoded when first looked into).
    pub(crate) fn from_host(text: String) -> Self {
        Document {
            text,
            value: OnceCell::new(),
        }
    }

    /// A document holding `value` (an object, to be one the database would give).
    pub fn from_value(value: Value) -> Self {
        Document {
            text: value.to_convex_json_string(),
            value: OnceCell::from(value),
        }
    }

    /// The document as Convex JSON text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The document as a [`Value`], decoded on first use.
    pub fn value(&self) -> &Value {
        self.value.get_or_init(|| {
            // The host wrote this text and checked it against the same limits; a text that
            // does not decode is a fault of the host's, not of the function.
            Value::from_convex_json_str(&self.text)
                .unwrap_or_else(|err| panic!("invalid document from the host: {err}"))
        })
    }

    /// The document as a [`Value`].
    pub fn into_value(self) -> Value {
        self.value();
        self.value.into_inner().expect("decoded just above")
    }

    /// The document read into `T` (a struct with the document's fields, say); a mismatch
    /// names the field.
    pub fn decode<T: DeserializeOwned>(self) -> Result<T, Error> {
        crate::from_value(self.into_value())
    }

    /// The document's `_id`.
    pub fn id(&self) -> Option<Id> {
        self.field("_id")
            .and_then(Value::as_str)
            .map(|id| Id(id.to_string()))
    }

    /// The field `name`, if the document has it.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.value().as_object()?.get(name)
    }
}

impl std::ops::Deref for Document {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Document").field(&self.text).finish()
    }
}

impl PartialEq for Document {
    fn eq(&self, other: &Document) -> bool {
        self.text == other.text || self.value() == other.value()
    }
}

impl PartialEq<Value> for Document {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl From<Document> for Value {
    fn from(document: Document) -> Value {
        document.into_value()
    }
}

/// As its text into a function's result (not decoded), as its value into anything else.
impl Serialize for Document {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        kiln_values::serialize_text_or_value(serializer, &self.text, || self.value())
    }
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Document::from_value)
    }
}

/// Declared as `v.any()`, as [`Value`] is: the host then passes a function's documents on
/// without reading them.
impl Validate for Document {
    fn validator() -> Validator {
        Validator::Any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str =
        r#"{"_creationTime":1.5,"_id":"abc","body":"hi","n":{"$integer":"AgAAAAAAAAA="}}"#;

    #[test]
    fn a_document_reads_as_its_value() {
        let document = Document::from_host(TEXT.to_string());
        assert_eq!(document.id(), Some(Id("abc".to_string())));
        assert_eq!(document.field("n"), Some(&Value::Int64(2)));
        assert_eq!(document.field("missing"), None);
        assert_eq!(document.as_object().map(|fields| fields.len()), Some(4));
        assert_eq!(document, Value::from_convex_json_str(TEXT).unwrap());
    }

    #[test]
    fn a_result_holds_the_text_as_it_came() {
        // Not the writer's own spelling (spaces): copied, not rewritten.
        let text = r#"{"_id": "abc", "n": 1.0}"#;
        let documents = vec![Document::from_host(text.to_string())];
        assert_eq!(
            kiln_values::to_convex_json_text(&documents).unwrap(),
            format!("[{text}]")
        );
        assert!(documents[0].value.get().is_none(), "not decoded");
    }

    #[test]
    fn a_document_decodes_into_a_type() {
        #[derive(Deserialize)]
        struct Message {
            body: String,
            n: i64,
        }
        let message: Message = Document::from_host(TEXT.to_string()).decode().unwrap();
        assert_eq!((message.body.as_str(), message.n), ("hi", 2));
        let error = Document::from_host(TEXT.to_string())
            .decode::<Vec<String>>()
            .err()
            .unwrap();
        assert!(error.to_string().contains("value"), "{error}");
    }

    #[test]
    fn plain_serializers_and_the_value_serializer_get_the_value() {
        let document = Document::from_host(TEXT.to_string());
        assert_eq!(
            kiln_values::to_value(&document).unwrap(),
            Value::from_convex_json_str(TEXT).unwrap()
        );
        let round_trip: Document =
            serde_json::from_value(serde_json::to_value(&document).unwrap()).unwrap();
        assert_eq!(round_trip, document);
    }
}
