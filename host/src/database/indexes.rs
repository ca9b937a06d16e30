//! Index definitions and index keys.
//!
//! Every index key is `index id (4 bytes, big-endian) ‖ tuple`, where the tuple holds the
//! index's field values followed by `_creationTime` and the document's id, in the
//! order-preserving encoding of `index_key`. Convex appends `_creationTime` to every index,
//! and the id makes each key unique, so one document has exactly one key per index and a
//! range of values is a range of bytes. All indexes share one redb table.

use kiln_values::Value;
use serde::{Deserialize, Serialize};

use super::documents::{CREATION_TIME_FIELD, Document, ID_FIELD};
use super::id::DocumentId;
use super::index_key::{encode_tuple, prefix_successor};
use super::persistence::document_key;
use super::reads::KeyRange;

/// The index every table has, in creation order.
pub const BY_CREATION_TIME: &str = "by_creation_time";
/// The index every table has, by id (point reads only, for now).
pub const BY_ID: &str = "by_id";

/// One index of one table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDefinition {
    /// Unique across the database; the first bytes of each of its keys.
    pub id: u32,
    pub name: String,
    /// The declared fields (dotted paths), without the implicit `_creationTime` and `_id`.
    pub fields: Vec<String>,
    /// Being backfilled in the background: writes keep it up to date, queries cannot use
    /// it yet. A deploy makes it ready, and its functions live, once the backfill is done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub building: bool,
}

/// One bound of an index range on the field after the equality prefix.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    pub value: Value,
    pub inclusive: bool,
}

/// A range over an index as a query states it: equality on a prefix of the index's
/// fields, then at most one lower and one upper bound on the next field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IndexRange {
    pub equal: Vec<(String, Value)>,
    pub lower: Option<(String, Bound)>,
    pub upper: Option<(String, Bound)>,
}

/// Why a range does not fit an index.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("index {index} on {fields:?}: {reason}")]
pub struct RangeError {
    pub index: String,
    pub fields: Vec<String>,
    pub reason: String,
}

impl IndexDefinition {
    /// The fields a range may name, in order: the declared ones, then `_creationTime`.
    pub fn range_fields(&self) -> Vec<&str> {
        let mut fields: Vec<&str> = self.fields.iter().map(String::as_str).collect();
        fields.push(CREATION_TIME_FIELD);
        fields
    }

    /// The key of `document` in this index.
    pub fn key_for(&self, document: &Document) -> Vec<u8> {
        let mut values: Vec<Option<Value>> = self
            .fields
            .iter()
            .map(|field| document.field(field))
            .collect();
        values.push(Some(Value::Float64(document.creation_time)));
        values.push(Some(Value::Bytes(document_key(&document.id).to_vec())));
        let refs: Vec<Option<&Value>> = values.iter().map(Option::as_ref).collect();
        let mut key = self.id.to_be_bytes().to_vec();
        key.extend(encode_tuple(&refs));
        key
    }

    /// Every key of this index.
    pub fn full_range(&self) -> KeyRange {
        let prefix = self.id.to_be_bytes().to_vec();
        KeyRange {
            end: prefix_successor(&prefix),
            start: prefix,
        }
    }

    /// The byte range of index keys that `range` selects. Refuses a range that does not
    /// follow the index's field order, naming the index and the field.
    pub fn key_range(&self, range: &IndexRange) -> Result<KeyRange, RangeError> {
        let fields = self.range_fields();
        let error = |reason: String| RangeError {
            index: self.name.clone(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            reason,
        };
        if range.equal.len() > fields.len() {
            return Err(error("more equalities than the index has fields".into()));
        }
        for (position, (field, _)) in range.equal.iter().enumerate() {
            if field != fields[position] {
                return Err(error(format!(
                    "equality on {field:?} where the index's field {} is {:?}: ranges must follow the index's field order",
                    position + 1,
                    fields[position]
                )));
            }
        }
        let next = fields.get(range.equal.len()).copied();
        for (field, _) in range.lower.iter().chain(range.upper.iter()) {
            if Some(field.as_str()) != next {
                return Err(error(match next {
                    Some(next) => format!(
                        "a bound on {field:?} where the next field of the index is {next:?}"
                    ),
                    None => format!("a bound on {field:?} after every field of the index is fixed"),
                }));
            }
        }

        let equal: Vec<Option<&Value>> = range.equal.iter().map(|(_, value)| Some(value)).collect();
        let mut prefix = self.id.to_be_bytes().to_vec();
        prefix.extend(encode_tuple(&equal));
        let with = |value: &Value| {
            let mut key = prefix.clone();
            key.extend(encode_tuple(&[Some(value)]));
            key
        };
        let start = match &range.lower {
            None => prefix.clone(),
            Some((_, bound)) if bound.inclusive => with(&bound.value),
            Some((_, bound)) => {
                prefix_successor(&with(&bound.value)).unwrap_or_else(|| with(&bound.value))
            }
        };
        let end = match &range.upper {
            None => prefix_successor(&prefix),
            Some((_, bound)) if bound.inclusive => prefix_successor(&with(&bound.value)),
            Some((_, bound)) => Some(with(&bound.value)),
        };
        Ok(KeyRange { start, end })
    }
}

/// The key of a document in its table's `by_id` index: what a point read records in the
/// read set and what a write of that document touches.
pub fn by_id_key(by_id_index: u32, id: &DocumentId) -> Vec<u8> {
    let mut key = by_id_index.to_be_bytes().to_vec();
    key.extend(encode_tuple(&[Some(&Value::Bytes(
        document_key(id).to_vec(),
    ))]));
    key
}

/// Whether `name` is one of the fields every document has.
pub fn is_system_field(name: &str) -> bool {
    name == ID_FIELD || name == CREATION_TIME_FIELD
}
