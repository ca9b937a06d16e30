//! [`to_convex_json_text`]: any `Serialize` type written straight as Convex JSON text, the
//! text `to_value(value)?.to_convex_json_string()` gives, without building the [`Value`]
//! in between.
//!
//! Every Rust function's return value is encoded this way in its guest. Going through a
//! `Value` cost a copy of the whole result (a `BTreeMap` per object, a `String` per string)
//! and its drop: for `messages:list` returning 20 documents that was about a third of the
//! guest's time (`cargo xtask profile list`: `collect_map`, `serialize_str`, B-tree inserts
//! and frees).
//!
//! It is an adapter over serde_json's serializer that maps serde's data model the way
//! [`to_value`] does (integers to int64 or an error, floats, bytes, enums externally
//! tagged, `None` and `()` null) and writes each Convex type as
//! [`ConvexJsonText`](crate::ConvexJsonText) writes it. Two differences, neither visible
//! after decoding: an object's fields keep the order they were serialized in (a `Value`
//! sorts them), and a map that repeats a key writes it twice (a `Value` keeps the last;
//! the decoder keeps the last as well).

use base64::Engine as _;
use serde::ser::{self, Impossible, Serialize};

use crate::convex_json::{BASE64, BYTES_TAG, FLOAT_TAG, INTEGER_TAG, is_negative_zero};
use crate::error::ValueError;
use crate::ser::to_value;
use crate::text_or_value::{TEXT_OR_VALUE, serialize_text_into};

/// Writes `value` as Convex JSON text (compact). Its errors are [`to_value`]'s, path and all.
pub fn to_convex_json_text<T: Serialize + ?Sized>(value: &T) -> Result<String, ValueError> {
    match to_convex_json_text_within(value, usize::MAX) {
        Some(text) => Ok(text),
        // This writer's errors name no place: the value serializer names where the fault
        // is (and should it find none, its text is the answer).
        None => to_value(value).map(|value| value.to_convex_json_string()),
    }
}

/// [`to_convex_json_text`] for a value whose text is at most `max_len` bytes; `None` for
/// a longer one, or one that cannot be serialized (then [`to_value`] names the fault).
///
/// The text grows as it is written, and each time its buffer doubles the old one is
/// copied: a large value's text can briefly take three times its size on top of the value
/// itself. A caller that owns a large value does better through [`to_value`]: it can drop
/// its value before writing the copy's text, into a buffer sized once.
pub fn to_convex_json_text_within<T: Serialize + ?Sized>(
    value: &T,
    max_len: usize,
) -> Option<String> {
    let text = CappedText {
        // Most results are small: start past the first few doublings.
        text: Vec::with_capacity(max_len.min(INITIAL_CAPACITY)),
        max_len,
    };
    // The serializer owns the buffer (not `&mut` to it), so each token's write is
    // `CappedText::write_all` itself, inlined, not a call through `&mut W`'s forwarding.
    let mut serializer = serde_json::Serializer::new(text);
    value.serialize(Convex(&mut serializer)).ok()?;
    let text = serializer.into_inner().text;
    Some(String::from_utf8(text).expect("serde_json writes UTF-8"))
}

/// What [`to_convex_json_text_within`]'s buffer starts with, at most.
const INITIAL_CAPACITY: usize = 512;

/// A text buffer that refuses to grow past `max_len` bytes.
struct CappedText {
    text: Vec<u8>,
    max_len: usize,
}

impl CappedText {
    #[inline]
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.text.len().saturating_add(bytes.len()) > self.max_len {
            return Err(std::io::Error::other("over the length asked for"));
        }
        self.text.extend_from_slice(bytes);
        Ok(())
    }
}

// serde_json writes each token through `write_all`: it is overridden so that a token costs
// one length check and a copy, not `write_all`'s retry loop around `write` (in a guest
// built for size neither was inlined: a tenth of `messages:list`'s guest time).
impl std::io::Write for CappedText {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.append(bytes).map(|()| bytes.len())
    }

    #[inline]
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.append(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A serializer (or one of its compound states) that writes Convex JSON through `S`.
struct Convex<S>(S);

/// A part of the value, to be written through [`Convex`].
struct Part<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Part<'_, T> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Convex(serializer))
    }
}

fn tagged<S: ser::Serializer>(serializer: S, tag: &str, payload: &[u8]) -> Result<S::Ok, S::Error> {
    use ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry(tag, &BASE64.encode(payload))?;
    map.end()
}

fn integer<S: ser::Serializer>(serializer: S, n: i64) -> Result<S::Ok, S::Error> {
    tagged(serializer, INTEGER_TAG, &n.to_le_bytes())
}

fn integer_in_range<S: ser::Serializer, N>(serializer: S, n: N) -> Result<S::Ok, S::Error>
where
    N: TryInto<i64> + std::fmt::Display + Copy,
{
    match n.try_into() {
        Ok(n) => integer(serializer, n),
        Err(_) => Err(ser::Error::custom(format!(
            "integer {n} is out of range for int64"
        ))),
    }
}

impl<S: ser::Serializer> ser::Serializer for Convex<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Convex<S::SerializeSeq>;
    type SerializeTuple = Convex<S::SerializeTuple>;
    type SerializeTupleStruct = Convex<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Convex<S::SerializeTupleVariant>;
    type SerializeMap = Convex<S::SerializeMap>;
    type SerializeStruct = Convex<S::SerializeStruct>;
    type SerializeStructVariant = Convex<S::SerializeStructVariant>;

    fn serialize_bool(self, v: bool) -> Result<S::Ok, S::Error> {
        self.0.serialize_bool(v)
    }

    fn serialize_i8(self, v: i8) -> Result<S::Ok, S::Error> {
        integer(self.0, v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<S::Ok, S::Error> {
        integer(self.0, v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<S::Ok, S::Error> {
        integer(self.0, v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<S::Ok, S::Error> {
        integer(self.0, v)
    }

    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        integer_in_range(self.0, v)
    }

    fn serialize_u8(self, v: u8) -> Result<S::Ok, S::Error> {
        integer(self.0, v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<S::Ok, S::Error> {
        integer(self.0, v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<S::Ok, S::Error> {
        integer(self.0, v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<S::Ok, S::Error> {
        integer_in_range(self.0, v)
    }

    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        integer_in_range(self.0, v)
    }

    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        self.serialize_f64(v.into())
    }

    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        // As `ConvexJsonText`: JSON numbers carry the finite floats but -0.0.
        if v.is_finite() && !is_negative_zero(v) {
            self.0.serialize_f64(v)
        } else {
            tagged(self.0, FLOAT_TAG, &v.to_bits().to_le_bytes())
        }
    }

    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        self.0.serialize_char(v)
    }

    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        self.0.serialize_str(v)
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        tagged(self.0, BYTES_TAG, v)
    }

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        if name == TEXT_OR_VALUE {
            return serialize_text_into(value, StringOnly::<S, true>(self.0));
        }
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Part(value))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Convex)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Convex)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Convex)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Convex)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Convex)
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Convex)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Convex)
    }
}

/// The compound states whose parts have no names: each part is written through
/// [`Convex`], the end is the inner state's.
macro_rules! unnamed_parts {
    ($($trait:ident :: $method:ident),* $(,)?) => {$(
        impl<C: ser::$trait> ser::$trait for Convex<C> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                self.0.$method(&Part(value))
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    )*};
}

unnamed_parts!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
);

impl<C: ser::SerializeMap> ser::SerializeMap for Convex<C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        self.0.serialize_key(&Key(key))
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        self.0.serialize_value(&Part(value))
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

/// The compound states whose parts are named fields.
macro_rules! named_fields {
    ($($trait:ident),* $(,)?) => {$(
        impl<C: ser::$trait> ser::$trait for Convex<C> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), C::Error> {
                self.0.serialize_field(key, &Part(value))
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    )*};
}

named_fields!(SerializeStruct, SerializeStructVariant);

/// A map key: what [`to_value`] turns into a string (a string, a char, a unit variant, or a
/// newtype or `Some` around one) is written as that string; anything else is an error.
struct Key<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Key<'_, T> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(StringOnly::<S, false>(serializer))
    }
}

/// A serializer that takes a string and nothing else. `RAW == false`: a map key, written as
/// a JSON string. `RAW == true`: Convex JSON text to copy into the text as it is (see
/// [`crate::text_or_value`]), through serde_json's raw-value struct.
struct StringOnly<S, const RAW: bool>(S);

/// serde_json's name for the struct whose one field is text to copy verbatim (its
/// `raw_value` feature; `serde_json::value::RawValue` serializes this way).
const SERDE_JSON_RAW_VALUE: &str = "$serde_json::private::RawValue";

/// `StringOnly`'s methods for the scalars that are no string: each refuses.
macro_rules! refuse_scalars {
    ($($method:ident: $type:ty),* $(,)?) => {$(
        fn $method(self, _: $type) -> Result<S::Ok, S::Error> {
            Err(not_a_string::<S>())
        }
    )*};
}

fn not_a_string<S: ser::Serializer>() -> S::Error {
    ser::Error::custom("object keys must be strings")
}

impl<S: ser::Serializer, const RAW: bool> ser::Serializer for StringOnly<S, RAW> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
    type SerializeMap = Impossible<S::Ok, S::Error>;
    type SerializeStruct = Impossible<S::Ok, S::Error>;
    type SerializeStructVariant = Impossible<S::Ok, S::Error>;

    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        if RAW {
            use ser::SerializeStruct;
            let mut raw = self.0.serialize_struct(SERDE_JSON_RAW_VALUE, 1)?;
            raw.serialize_field(SERDE_JSON_RAW_VALUE, v)?;
            raw.end()
        } else {
            self.0.serialize_str(v)
        }
    }

    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        self.0.serialize_char(v)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(self)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        value.serialize(self)
    }

    refuse_scalars!(
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_f32: f32,
        serialize_f64: f64,
        serialize_bytes: &[u8],
    );

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        Err(not_a_string::<S>())
    }

    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        Err(not_a_string::<S>())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<S::Ok, S::Error> {
        Err(not_a_string::<S>())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<S::Ok, S::Error> {
        Err(not_a_string::<S>())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        Err(not_a_string::<S>())
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, S::Error> {
        Err(not_a_string::<S>())
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        Err(not_a_string::<S>())
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        Err(not_a_string::<S>())
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Err(not_a_string::<S>())
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        Err(not_a_string::<S>())
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        Err(not_a_string::<S>())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Serialize;

    use super::*;
    use crate::Value;

    /// What the direct writer must agree with: the value's text, decoded.
    fn through_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, String> {
        to_value(value).map_err(|err| err.to_string())
    }

    fn direct<T: Serialize + ?Sized>(value: &T) -> Result<Value, String> {
        let text = to_convex_json_text(value).map_err(|err| err.to_string())?;
        Ok(Value::from_convex_json_str(&text).expect("the text decodes"))
    }

    #[derive(Serialize)]
    struct Everything {
        zeta: i8,
        alpha: u32,
        big: u64,
        small: i128,
        float: f32,
        specials: Vec<f64>,
        letter: char,
        text: &'static str,
        #[serde(with = "serde_bytes_like")]
        bytes: Vec<u8>,
        none: Option<i64>,
        some: Option<Option<&'static str>>,
        unit: (),
        unit_struct: UnitStruct,
        newtype: Newtype,
        tuple: (i64, bool, &'static str),
        tuple_struct: TupleStruct,
        variants: Vec<Shape>,
        map: BTreeMap<Label, Vec<i64>>,
        value: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<i64>,
    }

    mod serde_bytes_like {
        pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(bytes)
        }
    }

    #[derive(Serialize)]
    struct UnitStruct;

    #[derive(Serialize)]
    struct Newtype(String);

    #[derive(Serialize)]
    struct TupleStruct(i64, f64);

    #[derive(Serialize)]
    enum Shape {
        Point,
        Circle(f64),
        Pair(i64, i64),
        Rect { w: i64, h: i64 },
    }

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum Label {
        First,
        Second,
    }

    #[test]
    fn every_part_of_serdes_model_is_written_as_to_value_makes_it() {
        let everything = Everything {
            zeta: -3,
            alpha: 7,
            big: i64::MAX as u64,
            small: i64::MIN.into(),
            float: 1.5,
            specials: vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, 1e300],
            letter: 'é',
            text: "quote \" and \\ and \u{1}",
            bytes: vec![0, 1, 255],
            none: None,
            some: Some(None),
            unit: (),
            unit_struct: UnitStruct,
            newtype: Newtype("inner".into()),
            tuple: (1, true, "x"),
            tuple_struct: TupleStruct(2, 2.5),
            variants: vec![
                Shape::Point,
                Shape::Circle(1.0),
                Shape::Pair(1, 2),
                Shape::Rect { w: 3, h: 4 },
            ],
            map: BTreeMap::from([(Label::First, vec![1]), (Label::Second, vec![])]),
            value: Value::Object(BTreeMap::from([
                ("b".to_string(), Value::Int64(-1)),
                ("a".to_string(), Value::Bytes(vec![9])),
            ])),
            skipped: None,
        };
        // Equal bit for bit (`Value`'s equality compares floats' bits).
        assert_eq!(
            direct(&everything).unwrap(),
            through_value(&everything).unwrap()
        );
    }

    #[test]
    fn a_value_is_written_as_its_own_text() {
        let value = Value::Array(vec![
            Value::Null,
            Value::Float64(-0.0),
            Value::Object(BTreeMap::from([("x".to_string(), Value::Boolean(true))])),
        ]);
        assert_eq!(
            to_convex_json_text(&value).unwrap(),
            value.to_convex_json_string()
        );
    }

    #[test]
    fn faults_are_refused_with_to_values_message_and_path() {
        #[derive(Serialize)]
        struct Counts {
            counts: Vec<u64>,
        }
        let too_big = Counts {
            counts: vec![1, u64::MAX],
        };
        let err = to_convex_json_text(&too_big).unwrap_err().to_string();
        assert_eq!(err, through_value(&too_big).unwrap_err());
        assert!(
            err.contains("counts[1]") && err.contains("out of range"),
            "{err}"
        );

        let keys = HashMap::from([(1i64, "one")]);
        let err = to_convex_json_text(&keys).unwrap_err().to_string();
        assert_eq!(err, through_value(&keys).unwrap_err());
        assert!(err.contains("keys must be strings"), "{err}");

        // u128 and i128 beyond int64, as to_value refuses them.
        assert!(to_convex_json_text(&(i64::MAX as u128 + 1)).is_err());
        assert!(to_convex_json_text(&(i64::MIN as i128 - 1)).is_err());
    }

    #[test]
    fn text_past_the_length_asked_for_is_not_written() {
        let text = "x".repeat(100);
        assert_eq!(
            to_convex_json_text_within(&text, 102).unwrap(),
            format!("\"{text}\"")
        );
        assert_eq!(to_convex_json_text_within(&text, 101), None);
        assert_eq!(to_convex_json_text_within(&u64::MAX, 1000), None);
    }

    #[test]
    fn keys_that_become_strings_are_accepted() {
        let chars = BTreeMap::from([('a', 1i64)]);
        assert_eq!(direct(&chars).unwrap(), through_value(&chars).unwrap());
        let wrapped = BTreeMap::from([(Newtype("k".into()), 1i64)]);
        assert_eq!(direct(&wrapped).unwrap(), through_value(&wrapped).unwrap());
    }

    impl PartialEq for Newtype {
        fn eq(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }
    impl Eq for Newtype {}
    impl PartialOrd for Newtype {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Newtype {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.0.cmp(&other.0)
        }
    }
}
