//! A document as a scan returns it: the store's Convex JSON text, not yet decoded, or a
//! document the transaction itself wrote.
//!
//! A function that reads a document gets its Convex JSON text, which is what the store
//! holds. Decoding the text into a [`Document`] only to write the same text out again was
//! most of the host's per-document time in `messages:list` (issue 16's profile: the decode,
//! the id's decode and encode, the float's formatting, a `BTreeMap` and the allocations),
//! so a stored document stays text unless something needs its fields (a filter, or a
//! caller inside the host).

use std::borrow::Cow;

use anyhow::Context;
use kiln_values::Value;

use super::documents::{CREATION_TIME_FIELD, Document, ID_FIELD};
use super::id::DocumentId;

#[derive(Clone, Debug)]
pub enum ReadDocument {
    /// As stored: the text of [`Document::to_convex_json_string`], system fields included.
    Stored {
        text: String,
        /// [`Document::size_bytes`], read off the text.
        size_bytes: usize,
    },
    /// Written by this transaction and not yet committed.
    Written(Document),
}

impl ReadDocument {
    /// A stored document's text, checked as far as counting its size needs.
    pub fn stored(text: &[u8]) -> anyhow::Result<Self> {
        let text = std::str::from_utf8(text).context("corrupt document: not UTF-8")?;
        let size_bytes = kiln_values::convex_json_size_bytes(text).context("corrupt document")?;
        Ok(Self::Stored {
            text: text.to_string(),
            size_bytes,
        })
    }

    /// Counted against `max_bytes_read` and the document size limit.
    pub fn size_bytes(&self) -> usize {
        match self {
            Self::Stored { size_bytes, .. } => *size_bytes,
            Self::Written(document) => document.size_bytes(),
        }
    }

    /// The document's fields, decoding a stored one.
    pub fn document(&self) -> anyhow::Result<Cow<'_, Document>> {
        match self {
            Self::Stored { text, .. } => decode_document(text.as_bytes()).map(Cow::Owned),
            Self::Written(document) => Ok(Cow::Borrowed(document)),
        }
    }

    pub fn into_document(self) -> anyhow::Result<Document> {
        match self {
            Self::Stored { text, .. } => decode_document(text.as_bytes()),
            Self::Written(document) => Ok(document),
        }
    }

    /// The document as Convex JSON text, as a function reads it.
    pub fn into_text(self) -> String {
        match self {
            Self::Stored { text, .. } => text,
            Self::Written(document) => document.to_convex_json_string(),
        }
    }
}

/// A stored document's text decoded.
pub(super) fn decode_document(text: &[u8]) -> anyhow::Result<Document> {
    let text = std::str::from_utf8(text).context("corrupt document: not UTF-8")?;
    let Value::Object(mut fields) =
        Value::from_convex_json_str(text).context("corrupt document")?
    else {
        anyhow::bail!("corrupt document: not an object");
    };
    let id = match fields.remove(ID_FIELD) {
        Some(Value::String(id)) => DocumentId::decode(&id).context("corrupt document id")?,
        _ => anyhow::bail!("corrupt document: no _id"),
    };
    let creation_time = match fields.remove(CREATION_TIME_FIELD) {
        Some(Value::Float64(time)) => time,
        _ => anyhow::bail!("corrupt document: no _creationTime"),
    };
    Ok(Document {
        id,
        creation_time,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kiln_values::Value;

    use super::ReadDocument;
    use crate::database::documents::Document;
    use crate::database::id::DocumentId;

    fn document() -> Document {
        Document {
            id: DocumentId {
                table_number: 10_001,
                internal: [7; 16],
            },
            creation_time: 1_733_000_000_123.25,
            fields: BTreeMap::from([
                (
                    "body".to_string(),
                    Value::String("h\u{e9}llo \"there\"".into()),
                ),
                ("count".to_string(), Value::Int64(3)),
                ("blob".to_string(), Value::Bytes(vec![1, 2, 3, 4])),
                (
                    "nested".to_string(),
                    Value::Array(vec![Value::Null, Value::Float64(0.5)]),
                ),
            ]),
        }
    }

    #[test]
    fn a_stored_document_reads_as_its_decoded_self() {
        let document = document();
        let text = document.to_convex_json_string();
        let read = ReadDocument::stored(text.as_bytes()).unwrap();
        assert_eq!(read.size_bytes(), document.size_bytes());
        assert_eq!(read.document().unwrap().as_ref(), &document);
        assert_eq!(read.clone().into_document().unwrap(), document);
        assert_eq!(read.into_text(), text);

        let written = ReadDocument::Written(document.clone());
        assert_eq!(written.size_bytes(), document.size_bytes());
        assert_eq!(written.into_text(), text);
    }

    #[test]
    fn corrupt_text_is_an_error() {
        assert!(ReadDocument::stored(b"{\"a\": ").is_err());
        assert!(ReadDocument::stored(&[0xff, 0xfe]).is_err());
    }
}
