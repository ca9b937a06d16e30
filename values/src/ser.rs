//! Serialization between Rust types and [`Value`]: [`to_value`], a serde `Serializer` that
//! builds a `Value` from any `Serialize` type, and `Serialize` for `Value` itself, so a value
//! can be written by any serde format and `to_value(&value)` gives back the same value.
//!
//! The mapping follows serde's data model onto Convex's types: integers become int64 (those
//! that do not fit are errors, never silently floats), floats float64, byte buffers bytes,
//! sequences arrays, maps and structs objects, `None` and `()` null; enums are externally
//! tagged like serde_json does it: `"Variant"` or `{"Variant": content}`.

use std::collections::BTreeMap;

use serde::ser::{self, Serialize};

use crate::error::{ValueError, tracked_path};
use crate::value::Value;

/// Converts any `Serialize` value into a [`Value`].
///
/// Errors (an integer beyond the int64 range, a map key that is not a string, a failing
/// `Serialize` impl) name the path of the part at fault, e.g. `.counts[2]: …`.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, ValueError> {
    // Tracking the path wraps every part of the value at every step; it is only wanted
    // for the message of a fault. So serialize untracked, and only after a fault again
    // with the tracker to name where it is. (Every function's return value comes through
    // here: without the tracker `messages:list` costs about 6% less guest time.)
    value.serialize(Serializer).or_else(|_| {
        serde_path_to_error::serialize(value, Serializer).map_err(|error| {
            let path = tracked_path(error.path());
            error.into_inner().with_path(path)
        })
    })
}

impl Serialize for Value {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Int64(n) => serializer.serialize_i64(*n),
            Value::Float64(f) => serializer.serialize_f64(*f),
            Value::Boolean(b) => serializer.serialize_bool(*b),
            Value::String(s) => serializer.serialize_str(s),
            Value::Bytes(b) => serializer.serialize_bytes(b),
            Value::Array(elements) => serializer.collect_seq(elements),
            Value::Object(fields) => serializer.collect_map(fields),
        }
    }
}

fn out_of_range(n: impl std::fmt::Display) -> ValueError {
    ValueError::serde(format!("integer {n} is out of range for int64"))
}

/// The serde `Serializer` whose output is a [`Value`].
struct Serializer;

impl ser::Serializer for Serializer {
    type Ok = Value;
    type Error = ValueError;
    type SerializeSeq = SerializeArray;
    type SerializeTuple = SerializeArray;
    type SerializeTupleStruct = SerializeArray;
    type SerializeTupleVariant = SerializeVariant<SerializeArray>;
    type SerializeMap = SerializeObject;
    type SerializeStruct = SerializeObject;
    type SerializeStructVariant = SerializeVariant<SerializeObject>;

    fn serialize_bool(self, v: bool) -> Result<Value, ValueError> {
        Ok(Value::Boolean(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value, ValueError> {
        Ok(Value::Int64(v.into()))
    }

    fn serialize_i16(self, v: i16) -> Result<Value, ValueError> {
        Ok(Value::Int64(v.into()))
    }

    fn serialize_i32(self, v: i32) -> Result<Value, ValueError> {
        Ok(Value::Int64(v.into()))
    }

    fn serialize_i64(self, v: i64) -> Result<Value, ValueError> {
        Ok(Value::Int64(v))
    }

    fn serialize_i128(self, v: i128) -> Result<Value, ValueError> {
        i64::try_from(v)
            .map(Value::Int64)
            .map_err(|_| out_of_range(v))
    }

    fn serialize_u8(self, v: u8) -> Result<Value, ValueError> {
        Ok(Value::Int64(v.into()))
    }

    fn serialize_u16(self, v: u16) -> Result<Value, ValueError> {
        Ok(Value::Int64(v.into()))
    }

    fn serialize_u32(self, v: u32) -> Result<Value, ValueError> {
        Ok(Value::Int64(v.into()))
    }

    fn serialize_u64(self, v: u64) -> Result<Value, ValueError> {
        i64::try_from(v)
            .map(Value::Int64)
            .map_err(|_| out_of_range(v))
    }

    fn serialize_u128(self, v: u128) -> Result<Value, ValueError> {
        i64::try_from(v)
            .map(Value::Int64)
            .map_err(|_| out_of_range(v))
    }

    fn serialize_f32(self, v: f32) -> Result<Value, ValueError> {
        Ok(Value::Float64(v.into()))
    }

    fn serialize_f64(self, v: f64) -> Result<Value, ValueError> {
        Ok(Value::Float64(v))
    }

    fn serialize_char(self, v: char) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_string()))
    }

    fn serialize_str(self, v: &str) -> Result<Value, ValueError> {
        Ok(Value::String(v.to_owned()))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ValueError> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn serialize_none(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, ValueError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ValueError> {
        Ok(Value::Null)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ValueError> {
        Ok(Value::String(variant.to_owned()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, ValueError> {
        Ok(variant_object(variant, value.serialize(self)?))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SerializeArray, ValueError> {
        Ok(SerializeArray(Vec::with_capacity(len.unwrap_or(0))))
    }

    fn serialize_tuple(self, len: usize) -> Result<SerializeArray, ValueError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SerializeArray, ValueError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, ValueError> {
        Ok(SerializeVariant {
            variant,
            content: self.serialize_seq(Some(len))?,
        })
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<SerializeObject, ValueError> {
        Ok(SerializeObject::default())
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<SerializeObject, ValueError> {
        Ok(SerializeObject::default())
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, ValueError> {
        Ok(SerializeVariant {
            variant,
            content: SerializeObject::default(),
        })
    }
}

/// `{variant: content}`, serde's external tagging.
fn variant_object(variant: &str, content: Value) -> Value {
    Value::Object(BTreeMap::from([(variant.to_owned(), content)]))
}

/// Collects the elements of a sequence or tuple.
struct SerializeArray(Vec<Value>);

impl ser::SerializeSeq for SerializeArray {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        self.0.push(value.serialize(Serializer)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Array(self.0))
    }
}

impl ser::SerializeTuple for SerializeArray {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for SerializeArray {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Value, ValueError> {
        ser::SerializeSeq::end(self)
    }
}

/// Collects the fields of a map or struct.
#[derive(Default)]
struct SerializeObject {
    fields: BTreeMap<String, Value>,
    /// The key of a map entry whose value has not arrived yet.
    pending_key: Option<String>,
}

impl ser::SerializeMap for SerializeObject {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ValueError> {
        // Reusing the value serializer accepts exactly what becomes a string: strings, chars,
        // unit enum variants and newtypes around those.
        match key.serialize(Serializer)? {
            Value::String(key) => {
                self.pending_key = Some(key);
                Ok(())
            }
            other => Err(ValueError::serde(format!(
                "object keys must be strings, got {}",
                other.type_name()
            ))),
        }
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| ValueError::serde("serialize_value called before serialize_key"))?;
        self.fields.insert(key, value.serialize(Serializer)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Object(self.fields))
    }
}

impl ser::SerializeStruct for SerializeObject {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        self.fields
            .insert(key.to_owned(), value.serialize(Serializer)?);
        Ok(())
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(Value::Object(self.fields))
    }
}

/// Collects a tuple or struct variant's content, then wraps it as `{variant: content}`.
struct SerializeVariant<C> {
    variant: &'static str,
    content: C,
}

impl ser::SerializeTupleVariant for SerializeVariant<SerializeArray> {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ValueError> {
        ser::SerializeSeq::serialize_element(&mut self.content, value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(variant_object(
            self.variant,
            ser::SerializeSeq::end(self.content)?,
        ))
    }
}

impl ser::SerializeStructVariant for SerializeVariant<SerializeObject> {
    type Ok = Value;
    type Error = ValueError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ValueError> {
        ser::SerializeStruct::serialize_field(&mut self.content, key, value)
    }

    fn end(self) -> Result<Value, ValueError> {
        Ok(variant_object(
            self.variant,
            ser::SerializeStruct::end(self.content)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct User {
        name: String,
        age: i64,
        nickname: Option<String>,
        scores: Vec<f64>,
        tags: Vec<Value>,
        avatar: Value,
    }

    #[derive(Serialize)]
    enum Shape {
        Empty,
        Circle(f64),
        Pair(u8, u8),
        Rect { w: f64, h: f64 },
    }

    fn object(fields: &[(&str, Value)]) -> Value {
        Value::Object(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn structs_become_objects() {
        let user = User {
            name: "Ada".into(),
            age: 36,
            nickname: None,
            scores: vec![1.0, 2.5],
            tags: vec![Value::Int64(1)],
            avatar: Value::Bytes(vec![1, 2, 3]),
        };
        assert_eq!(
            to_value(&user).unwrap(),
            object(&[
                ("name", Value::from("Ada")),
                ("age", Value::Int64(36)),
                ("nickname", Value::Null),
                (
                    "scores",
                    Value::Array(vec![Value::Float64(1.0), Value::Float64(2.5)])
                ),
                ("tags", Value::Array(vec![Value::Int64(1)])),
                ("avatar", Value::Bytes(vec![1, 2, 3])),
            ])
        );
    }

    #[test]
    fn integers() {
        assert_eq!(to_value(&7u8).unwrap(), Value::Int64(7));
        assert_eq!(to_value(&-7i16).unwrap(), Value::Int64(-7));
        assert_eq!(to_value(&u32::MAX).unwrap(), Value::Int64(u32::MAX.into()));
        assert_eq!(to_value(&i64::MIN).unwrap(), Value::Int64(i64::MIN));
        assert_eq!(
            to_value(&(i64::MAX as u64)).unwrap(),
            Value::Int64(i64::MAX)
        );
        assert_eq!(to_value(&-5i128).unwrap(), Value::Int64(-5));
        assert_eq!(
            to_value(&u64::MAX).unwrap_err().to_string(),
            "integer 18446744073709551615 is out of range for int64"
        );
        assert!(to_value(&i128::MAX).is_err());
        assert!(to_value(&u128::MAX).is_err());
    }

    #[test]
    fn scalars() {
        assert_eq!(to_value(&1.5f32).unwrap(), Value::Float64(1.5));
        assert_eq!(to_value(&'x').unwrap(), Value::from("x"));
        assert_eq!(to_value(&()).unwrap(), Value::Null);
        assert_eq!(to_value(&Some(3i64)).unwrap(), Value::Int64(3));
        assert_eq!(
            to_value(&(1i32, "a")).unwrap(),
            Value::Array(vec![Value::Int64(1), Value::from("a")])
        );
        // A `Vec<u8>` is a sequence to serde; only `serialize_bytes` makes bytes.
        assert_eq!(
            to_value(&vec![1u8]).unwrap(),
            Value::Array(vec![Value::Int64(1)])
        );
    }

    #[test]
    fn enums_are_externally_tagged() {
        assert_eq!(to_value(&Shape::Empty).unwrap(), Value::from("Empty"));
        assert_eq!(
            to_value(&Shape::Circle(1.0)).unwrap(),
            object(&[("Circle", Value::Float64(1.0))])
        );
        assert_eq!(
            to_value(&Shape::Pair(1, 2)).unwrap(),
            object(&[("Pair", Value::Array(vec![Value::Int64(1), Value::Int64(2)]))])
        );
        assert_eq!(
            to_value(&Shape::Rect { w: 1.0, h: 2.0 }).unwrap(),
            object(&[(
                "Rect",
                object(&[("w", Value::Float64(1.0)), ("h", Value::Float64(2.0))])
            )])
        );
    }

    #[test]
    fn maps_need_string_keys() {
        let map = HashMap::from([("k", 1i64)]);
        assert_eq!(to_value(&map).unwrap(), object(&[("k", Value::Int64(1))]));
        let bad = BTreeMap::from([(1i64, 2i64)]);
        assert_eq!(
            to_value(&bad).unwrap_err().to_string(),
            "object keys must be strings, got int64"
        );
    }

    #[test]
    fn errors_name_their_path() {
        #[derive(Serialize)]
        struct Outer {
            inner: Vec<Inner>,
        }
        #[derive(Serialize)]
        struct Inner {
            big: u64,
        }
        let outer = Outer {
            inner: vec![Inner { big: 1 }, Inner { big: u64::MAX }],
        };
        assert_eq!(
            to_value(&outer).unwrap_err().to_string(),
            ".inner[1].big: integer 18446744073709551615 is out of range for int64"
        );
    }
}
