//! The [`Value`] enum itself: Convex's eight value types, their equality and hashing, the
//! conversions from plain Rust types, and small accessors. Encodings, limits and the serde
//! bridges live in their own modules and extend `Value` with further `impl` blocks.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

/// A Convex value.
///
/// Convex has exactly these eight types. Note the two numeric types: JavaScript numbers are
/// [`Value::Float64`] and JavaScript `bigint`s are [`Value::Int64`]; a JSON number always
/// decodes to `Float64`, even when it has no fractional part.
///
/// Equality compares floats by their bits, so `NaN == NaN` (when the NaNs have the same bits)
/// and `-0.0 != 0.0`. That makes equality reflexive, which is why `Value` is [`Eq`] and
/// [`Hash`], and it is what round trips through the encodings promise: the exact same bits.
#[derive(Debug, Clone)]
pub enum Value {
    /// JavaScript `null`.
    Null,
    /// A 64-bit signed integer (JavaScript `bigint`).
    Int64(i64),
    /// A 64-bit float (JavaScript `number`), including NaN, the infinities and -0.0.
    Float64(f64),
    /// A boolean.
    Boolean(bool),
    /// A UTF-8 string.
    String(String),
    /// Raw bytes (JavaScript `ArrayBuffer`).
    Bytes(Vec<u8>),
    /// An ordered list of values.
    Array(Vec<Value>),
    /// Fields by name, kept in name order (Convex objects have no meaningful key order).
    Object(BTreeMap<String, Value>),
}

impl Value {
    /// The Convex name of this value's type: `"null"`, `"int64"`, `"float64"`, `"boolean"`,
    /// `"string"`, `"bytes"`, `"array"` or `"object"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int64(_) => "int64",
            Value::Float64(_) => "float64",
            Value::Boolean(_) => "boolean",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The integer, if this is an [`Value::Int64`].
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int64(n) => Some(*n),
            _ => None,
        }
    }

    /// The float, if this is a [`Value::Float64`]. An `Int64` is deliberately not converted:
    /// the two types are distinct in Convex.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float64(n) => Some(*n),
            _ => None,
        }
    }

    /// The boolean, if this is a [`Value::Boolean`].
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The string, if this is a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a [`Value::Bytes`].
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is a [`Value::Array`].
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The fields, if this is a [`Value::Object`].
    pub fn as_object(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Int64(a), Value::Int64(b)) => a == b,
            // Bits, not IEEE equality: a decoded value must equal the encoded one exactly,
            // NaN payloads and the sign of zero included.
            (Value::Float64(a), Value::Float64(b)) => a.to_bits() == b.to_bits(),
            (Value::Boolean(a), Value::Boolean(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Value::Null => {}
            Value::Int64(n) => n.hash(state),
            // Consistent with `eq`, which compares bits.
            Value::Float64(n) => n.to_bits().hash(state),
            Value::Boolean(b) => b.hash(state),
            Value::String(s) => s.hash(state),
            Value::Bytes(b) => b.hash(state),
            Value::Array(a) => a.hash(state),
            Value::Object(o) => o.hash(state),
        }
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int64(n)
    }
}

impl From<i32> for Value {
    /// An `i32` becomes an [`Value::Int64`], so that `Value::from(5)` (an `i32` literal)
    /// means the integer 5, not a float.
    fn from(n: i32) -> Self {
        Value::Int64(n.into())
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Float64(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<Vec<u8>> for Value {
    /// Raw bytes become [`Value::Bytes`], never an array of integers.
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Self {
        Value::Bytes(b.to_vec())
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}

impl From<BTreeMap<String, Value>> for Value {
    fn from(o: BTreeMap<String, Value>) -> Self {
        Value::Object(o)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` becomes [`Value::Null`].
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl FromIterator<Value> for Value {
    /// Collects into a [`Value::Array`].
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Self {
        Value::Array(iter.into_iter().collect())
    }
}

impl FromIterator<(String, Value)> for Value {
    /// Collects into a [`Value::Object`]; a repeated name keeps its last value.
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Value::Object(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_compare_by_bits() {
        assert_eq!(Value::Float64(f64::NAN), Value::Float64(f64::NAN));
        assert_ne!(Value::Float64(0.0), Value::Float64(-0.0));
        assert_eq!(Value::Float64(1.5), Value::Float64(1.5));
        assert_ne!(Value::Float64(1.0), Value::Int64(1));
    }

    #[test]
    fn conversions_pick_the_right_type() {
        assert_eq!(Value::from(5), Value::Int64(5));
        assert_eq!(Value::from(5i64), Value::Int64(5));
        assert_eq!(Value::from(5.0), Value::Float64(5.0));
        assert_eq!(Value::from(vec![1u8, 2]), Value::Bytes(vec![1, 2]));
        assert_eq!(
            Value::from(vec![Value::Null]),
            Value::Array(vec![Value::Null])
        );
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert_eq!(Value::from(Some("x")), Value::String("x".into()));
        let object: Value = [("a".to_owned(), Value::Null)].into_iter().collect();
        assert_eq!(object.as_object().map(|o| o.len()), Some(1));
    }

    #[test]
    fn type_names() {
        let names: Vec<_> = [
            Value::Null,
            Value::Int64(0),
            Value::Float64(0.0),
            Value::Boolean(true),
            Value::String(String::new()),
            Value::Bytes(vec![]),
            Value::Array(vec![]),
            Value::Object(BTreeMap::new()),
        ]
        .iter()
        .map(Value::type_name)
        .collect();
        assert_eq!(
            names,
            [
                "null", "int64", "float64", "boolean", "string", "bytes", "array", "object"
            ]
        );
    }
}
