//! Deserialization between [`Value`] and Rust types: [`from_value`] and [`from_value_at`],
//! backed by a serde `Deserializer` that consumes a `Value`, and `Deserialize` for `Value`
//! itself, so a value can be read from any serde format.
//!
//! Types map back the way [`to_value`](crate::to_value) maps them out. An int64 satisfies any
//! Rust integer type it fits and also a float. A float64 satisfies floats, and an integer
//! type when it holds an exact integer in that type's range: JSON clients send every number
//! as a float64, so `{"count": 8000}` must fill a `count: u32`, while `8000.5` or `1e10`
//! are refused with the reason (`8000.5 is not an integer`, `10000000000 is out of range
//! for u32`), never truncated.

use std::collections::{BTreeMap, btree_map};
use std::fmt;
use std::vec;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};
use serde::{Deserialize, Deserializer};

use crate::error::{ValueError, tracked_path};
use crate::numbers::{float_to_integer, out_of_range};
use crate::value::Value;

/// Converts a [`Value`] into any `Deserialize` type.
///
/// Errors name the path of the part at fault, from an empty root: `.user.age: invalid type:
/// …`. Use [`from_value_at`] to name the root.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ValueError> {
    from_value_at(value, "")
}

/// Converts a [`Value`] into any `Deserialize` type, naming the value `root` in errors:
/// with `root` `"args"`, messages read `args.name: invalid type: integer `1`, expected a
/// string` or, for a problem with the value as a whole, `args: missing field `name``.
pub fn from_value_at<T: DeserializeOwned>(value: Value, root: &str) -> Result<T, ValueError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = tracked_path(error.path());
        error.into_inner().with_path(path).with_root(root)
    })
}

impl Value {
    /// How serde's error messages describe this value.
    fn unexpected(&self) -> Unexpected<'_> {
        match self {
            Value::Null => Unexpected::Unit,
            Value::Int64(n) => Unexpected::Signed(*n),
            Value::Float64(f) => Unexpected::Float(*f),
            Value::Boolean(b) => Unexpected::Bool(*b),
            Value::String(s) => Unexpected::Str(s),
            Value::Bytes(b) => Unexpected::Bytes(b),
            Value::Array(_) => Unexpected::Seq,
            Value::Object(_) => Unexpected::Map,
        }
    }
}

/// `deserialize_<int>` for each integer type: an int64 or an exact-integer float64 in range
/// visits as that type; anything else goes through `deserialize_any`, whose visitor names
/// the mismatch.
macro_rules! deserialize_integers {
    ($($method:ident => $ty:ty, $visit:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
            let n: $ty = match self {
                Value::Int64(n) => <$ty>::try_from(n)
                    .map_err(|_| ValueError::serde(out_of_range(n, stringify!($ty))))?,
                Value::Float64(f) => {
                    float_to_integer(f, stringify!($ty)).map_err(ValueError::serde)?
                }
                other => return other.deserialize_any(visitor),
            };
            visitor.$visit(n)
        }
    )*};
}

impl<'de> Deserializer<'de> for Value {
    type Error = ValueError;

    deserialize_integers! {
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_i128 => i128, visit_i128;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
        deserialize_u128 => u128, visit_u128;
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Int64(n) => visitor.visit_i64(n),
            Value::Float64(f) => visitor.visit_f64(f),
            Value::Boolean(b) => visitor.visit_bool(b),
            Value::String(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::Array(elements) => visit_array(elements, visitor),
            Value::Object(fields) => visit_object(fields, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        match self {
            Value::Null => visitor.visit_none(),
            value => visitor.visit_some(value),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        // External tagging, as `to_value` writes it: `"Variant"` or `{"Variant": content}`.
        match self {
            Value::String(variant) => visitor.visit_enum(EnumAccess {
                variant,
                content: None,
            }),
            Value::Object(fields) if fields.len() == 1 => {
                let Some((variant, content)) = fields.into_iter().next() else {
                    unreachable!("the object has one field")
                };
                visitor.visit_enum(EnumAccess {
                    variant,
                    content: Some(content),
                })
            }
            Value::Object(_) => Err(de::Error::invalid_value(
                Unexpected::Map,
                &"an object with a single field naming the variant",
            )),
            other => Err(de::Error::invalid_type(other.unexpected(), &visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ValueError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

impl IntoDeserializer<'_, ValueError> for Value {
    type Deserializer = Value;

    fn into_deserializer(self) -> Value {
        self
    }
}

fn visit_array<'de, V: Visitor<'de>>(
    elements: Vec<Value>,
    visitor: V,
) -> Result<V::Value, ValueError> {
    let len = elements.len();
    let mut access = ArrayAccess {
        elements: elements.into_iter(),
    };
    let result = visitor.visit_seq(&mut access)?;
    // A visitor that stops early (a tuple of the wrong arity) must not pass silently.
    match access.elements.len() {
        0 => Ok(result),
        _ => Err(de::Error::invalid_length(len, &"fewer elements in array")),
    }
}

fn visit_object<'de, V: Visitor<'de>>(
    fields: BTreeMap<String, Value>,
    visitor: V,
) -> Result<V::Value, ValueError> {
    let len = fields.len();
    let mut access = ObjectAccess {
        fields: fields.into_iter(),
        pending: None,
    };
    let result = visitor.visit_map(&mut access)?;
    match access.fields.len() {
        0 => Ok(result),
        _ => Err(de::Error::invalid_length(len, &"fewer fields in object")),
    }
}

struct ArrayAccess {
    elements: vec::IntoIter<Value>,
}

impl<'de> de::SeqAccess<'de> for ArrayAccess {
    type Error = ValueError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ValueError> {
        self.elements
            .next()
            .map(|element| seed.deserialize(element))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.elements.len())
    }
}

struct ObjectAccess {
    fields: btree_map::IntoIter<String, Value>,
    /// The value of the field whose name was just handed out.
    pending: Option<Value>,
}

impl<'de> de::MapAccess<'de> for ObjectAccess {
    type Error = ValueError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ValueError> {
        let Some((name, value)) = self.fields.next() else {
            return Ok(None);
        };
        self.pending = Some(value);
        seed.deserialize(name.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ValueError> {
        let value = self
            .pending
            .take()
            .ok_or_else(|| ValueError::serde("next_value called before next_key"))?;
        seed.deserialize(value)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len())
    }
}

struct EnumAccess {
    variant: String,
    /// `None` for a variant written as a bare string.
    content: Option<Value>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = ValueError;
    type Variant = VariantAccess;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantAccess), ValueError> {
        let variant = seed.deserialize(self.variant.into_deserializer())?;
        Ok((
            variant,
            VariantAccess {
                content: self.content,
            },
        ))
    }
}

struct VariantAccess {
    content: Option<Value>,
}

impl<'de> de::VariantAccess<'de> for VariantAccess {
    type Error = ValueError;

    fn unit_variant(self) -> Result<(), ValueError> {
        match self.content {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(de::Error::invalid_type(
                other.unexpected(),
                &"a unit variant",
            )),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ValueError> {
        match self.content {
            Some(content) => seed.deserialize(content),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.content {
            // The visitor itself complains if the content is not an array.
            Some(content) => content.deserialize_any(visitor),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ValueError> {
        match self.content {
            Some(content) => content.deserialize_any(visitor),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a struct variant",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    /// Reads a value from any serde format. Integers become int64 (an unsigned one above
    /// `i64::MAX` is an error), floats float64, byte buffers bytes, `None`/`()` null.
    ///
    /// This is *not* the Convex JSON decoder: `serde_json::from_str::<Value>("5")` gives
    /// `Int64(5)` and ignores `$integer` tags. Wire text goes through
    /// [`Value::from_convex_json_str`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl ValueVisitor {
    fn int64<E: de::Error>(n: impl TryInto<i64> + fmt::Display + Copy) -> Result<Value, E> {
        n.try_into()
            .map(Value::Int64)
            .map_err(|_| E::custom(format!("integer {n} is out of range for int64")))
    }
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Convex value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int64(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Self::int64(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Self::int64(v)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Self::int64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // Trust the hint only so far: it comes from the input.
        let mut elements = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(element) = seq.next_element()? {
            elements.push(element);
        }
        Ok(Value::Array(elements))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = BTreeMap::new();
        while let Some((name, value)) = map.next_entry::<String, Value>()? {
            fields.insert(name, value);
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::to_value;

    fn object(fields: &[(&str, Value)]) -> Value {
        Value::Object(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct User {
        name: String,
        age: i64,
        nickname: Option<String>,
        tags: Vec<Value>,
        avatar: Value,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Args {
        user: User,
        score: f64,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Empty,
        Circle(f64),
        Pair(u8, u8),
        Rect { w: f64, h: f64 },
    }

    fn user_value() -> Value {
        object(&[
            ("name", Value::from("Ada")),
            ("age", Value::Int64(36)),
            ("nickname", Value::Null),
            (
                "tags",
                Value::Array(vec![Value::Int64(1), Value::from("x")]),
            ),
            ("avatar", Value::Bytes(vec![1, 2])),
        ])
    }

    #[test]
    fn typed_structs() {
        let user: User = from_value(user_value()).unwrap();
        assert_eq!(
            user,
            User {
                name: "Ada".into(),
                age: 36,
                nickname: None,
                tags: vec![Value::Int64(1), Value::from("x")],
                avatar: Value::Bytes(vec![1, 2]),
            }
        );
        assert_eq!(to_value(&user).unwrap(), user_value());

        let args: Args = from_value(object(&[
            ("user", user_value()),
            ("score", Value::Int64(3)),
        ]))
        .unwrap();
        // An int64 satisfies a float field.
        assert_eq!(args.score, 3.0);
    }

    #[test]
    fn options_and_missing_optional_fields() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Maybe {
            a: Option<i64>,
            #[serde(default)]
            b: Option<i64>,
        }
        let maybe: Maybe = from_value(object(&[("a", Value::Int64(1))])).unwrap();
        assert_eq!(
            maybe,
            Maybe {
                a: Some(1),
                b: None
            }
        );
    }

    #[test]
    fn integers_are_range_checked() {
        assert_eq!(from_value::<u8>(Value::Int64(255)).unwrap(), 255);
        assert_eq!(
            from_value::<u8>(Value::Int64(256)).unwrap_err().to_string(),
            "256 is out of range for u8"
        );
        assert_eq!(from_value::<u64>(Value::Int64(7)).unwrap(), 7);
        assert_eq!(
            from_value::<u64>(Value::Int64(-1)).unwrap_err().to_string(),
            "-1 is out of range for u64"
        );
    }

    /// JSON clients send every number as a float64.
    #[test]
    fn integer_fields_take_exact_integer_floats() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Args {
            count: u32,
            offset: Option<i64>,
            small: Vec<i8>,
        }
        let args = |count: Value| {
            object(&[
                ("count", count),
                ("offset", Value::Float64(-5.0)),
                ("small", Value::Array(vec![Value::Float64(-128.0)])),
            ])
        };
        assert_eq!(
            from_value_at::<Args>(args(Value::Float64(8000.0)), "args").unwrap(),
            Args {
                count: 8000,
                offset: Some(-5),
                small: vec![-128],
            }
        );
        let refused = |count: Value| {
            from_value_at::<Args>(args(count), "args")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused(Value::Float64(8000.5)),
            "args.count: 8000.5 is not an integer"
        );
        assert_eq!(
            refused(Value::Float64(1e10)),
            "args.count: 10000000000 is out of range for u32"
        );
        assert_eq!(
            refused(Value::Float64(f64::NAN)),
            "args.count: NaN is not an integer"
        );
        assert_eq!(
            refused(Value::Int64(-1)),
            "args.count: -1 is out of range for u32"
        );
        assert_eq!(
            refused(Value::from("8000")),
            "args.count: invalid type: string \"8000\", expected u32"
        );
        // Floats are untouched: an f64 field still takes an int64 and a fraction.
        assert_eq!(from_value::<f64>(Value::Int64(3)).unwrap(), 3.0);
        assert_eq!(from_value::<f64>(Value::Float64(0.5)).unwrap(), 0.5);
    }

    #[test]
    fn enums() {
        for shape in [
            Shape::Empty,
            Shape::Circle(1.0),
            Shape::Pair(1, 2),
            Shape::Rect { w: 1.0, h: 2.0 },
        ] {
            let value = to_value(&shape).unwrap();
            assert_eq!(from_value::<Shape>(value).unwrap(), shape);
        }
        assert_eq!(
            from_value::<Shape>(Value::from("Hexagon"))
                .unwrap_err()
                .to_string(),
            "unknown variant `Hexagon`, expected one of `Empty`, `Circle`, `Pair`, `Rect`"
        );
        assert!(from_value::<Shape>(Value::Int64(1)).is_err());
        assert!(
            from_value::<Shape>(object(&[("Circle", Value::Null), ("Empty", Value::Null)]))
                .is_err()
        );
        assert_eq!(
            from_value::<Shape>(object(&[("Rect", object(&[("w", Value::Float64(1.0))]))]))
                .unwrap_err()
                .to_string(),
            ".Rect: missing field `h`"
        );
    }

    #[test]
    fn wrong_tuple_length_is_an_error() {
        let value = Value::Array(vec![Value::Int64(1), Value::Int64(2), Value::Int64(3)]);
        assert!(from_value::<(i64, i64)>(value).is_err());
    }

    #[test]
    fn errors_name_the_path_from_the_root() {
        let args = object(&[
            (
                "user",
                object(&[
                    ("name", Value::from("Ada")),
                    ("age", Value::Float64(36.5)),
                    ("nickname", Value::Null),
                    ("tags", Value::Array(vec![])),
                    ("avatar", Value::Null),
                ]),
            ),
            ("score", Value::Float64(1.0)),
        ]);
        assert_eq!(
            from_value_at::<Args>(args, "args").unwrap_err().to_string(),
            "args.user.age: 36.5 is not an integer"
        );

        assert_eq!(
            from_value_at::<User>(object(&[("name", Value::Int64(1))]), "args")
                .unwrap_err()
                .to_string(),
            "args.name: invalid type: integer `1`, expected a string"
        );
        assert_eq!(
            from_value_at::<User>(object(&[]), "args")
                .unwrap_err()
                .to_string(),
            "args: missing field `name`"
        );
        let error = from_value::<Vec<String>>(Value::Array(vec![Value::from("a"), Value::Null]))
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "[1]: invalid type: unit value, expected a string"
        );
    }

    #[test]
    fn value_round_trips_through_serde_json_loosely() {
        // Serde's JSON is not Convex JSON: integers stay integers, bytes become arrays.
        let value: Value = serde_json::from_str(r#"{"a": 5, "b": 5.0, "c": [null]}"#).unwrap();
        assert_eq!(
            value,
            object(&[
                ("a", Value::Int64(5)),
                ("b", Value::Float64(5.0)),
                ("c", Value::Array(vec![Value::Null])),
            ])
        );
        assert!(serde_json::from_str::<Value>("18446744073709551615").is_err());
    }
}
