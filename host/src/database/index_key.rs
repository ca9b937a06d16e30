//! Index keys: an order-preserving byte encoding of Convex values, so that a range of values
//! in an index is a range of bytes in redb.
//!
//! This module owns the encoding ([`encode_value`], [`encode_tuple`], [`decode_tuple`]), the
//! value order it preserves ([`compare_values`]) and the one range helper the encoding
//! needs ([`prefix_successor`]). It knows nothing of tables, documents or redb.
//!
//! # The order
//!
//! Convex's total order over values (its `crates/value/src/sorting.rs`, and `compareValues`
//! in the `convex` npm package's `src/values/compare.ts`):
//!
//! * by type first: undefined (a missing field) < null < int64 < float64 < boolean <
//!   string < bytes < array < object;
//! * int64 numerically; float64 by IEEE 754 `totalOrder` ([`f64::total_cmp`]): negative
//!   NaNs < -∞ < … < -0.0 < 0.0 < … < +∞ < positive NaNs, so -0.0 and 0.0 are different
//!   values, and NaNs with different bits are different values;
//! * false < true; strings by their UTF-8 bytes; bytes bytewise;
//! * arrays lexicographically by element, a proper prefix first;
//! * objects as the list of their (field name, value) pairs in field-name order, compared
//!   lexicographically: name, then value, then the next pair; fewer fields first on a tie.
//!
//! Two values compare equal exactly when they are the same value, bit for bit (the
//! equality of [`Value`]).
//!
//! # The encoding
//!
//! Every value starts with a tag byte, and the tags rise in type order (booleans take two,
//! one per value). After the tag:
//!
//! * int64: 8 bytes big-endian with the sign bit flipped (negatives then sort first);
//! * float64: its bits, big-endian, with all bits flipped if the sign bit is set and only
//!   the sign bit flipped otherwise, which turns `total_cmp` into unsigned comparison;
//! * string and bytes: the bytes with each `0x00` written as `0x00 0xFF`, then the
//!   terminator `0x00 0x00`;
//! * array: each element's encoding, then `0x00`, which is below every tag;
//! * object: each field as its name encoded as a string value (tag included) followed by
//!   its value, then `0x00`.
//!
//! A tuple is the concatenation of its elements' encodings.
//!
//! **Why it works.** The property proved (by induction on the value) is: for any two
//! different values `u` and `v`, their encodings differ at some position before either ends,
//! and the first differing byte orders as `u` and `v` do. In particular no encoding is a
//! prefix of another's, so whatever follows an encoding cannot change the comparison:
//!
//! * different types: the tags differ;
//! * int64 and float64: same tag, then 8 bytes whose unsigned order is the value order;
//! * strings and bytes: take the longest common prefix `p`; both encodings start with the
//!   escaped `p`. If both continue with bytes `a < b`, the next encoded bytes are `a` (or
//!   `0x00` for an escaped `0x00`) and `b`, already in order. If `u` ends after `p`, it
//!   continues with `0x00 0x00`, while `v` continues with `b ≥ 0x01` (first byte differs),
//!   or with `0x00 0xFF` when `b = 0x00` (second byte differs, `0x00 < 0xFF`): `u` is first,
//!   as a proper prefix should be. `0x00 0x00` cannot appear inside the escaped bytes
//!   (every `0x00` there is followed by `0xFF`), so no encoding is a prefix of another;
//! * arrays: elements equal up to index `i` encode identically; at `i` either both have an
//!   element (the induction hypothesis decides, inside both encodings) or exactly one
//!   ended, and its `0x00` is below the other's element tag, putting the shorter first;
//! * objects: the same argument over the sequence of (name, value) pairs.
//!
//! Tuples inherit the property element by element, and a tuple's encoding is a prefix of
//! its extensions' encodings, so a shorter tuple sorts before its extensions.
//!
//! **Ranges.** Because encodings are prefix-free, the keys whose tuple starts with the
//! values `p` are exactly the keys with the byte prefix `encode_tuple(p)`: the range
//! `[encode_tuple(p), prefix_successor(encode_tuple(p)))`. One bound on the next field `v`
//! after an equality prefix `p`, with `k = encode_tuple(p ++ [v])`: `> v` starts at
//! `prefix_successor(k)`, `≥ v` at `k`, `< v` ends (exclusive) at `k`, `≤ v` at
//! `prefix_successor(k)`. Anything may be appended after a tuple (a document id, say)
//! without breaking these ranges.
//!
//! Compared with Convex's own sort keys, this encoding gives int64 a fixed 8 bytes (Convex
//! uses 1, 2, 4 or 8), terminates strings with two bytes rather than one (Convex relies on
//! the byte after a string never being `0xFF`), and marks each object field with the
//! string tag (Convex relies on field names never containing `0x00`). The order is the
//! same; the bytes are Kiln's own and never leave the server.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::values::Value;

/// Type tags, rising in Convex's type order. None is `0x00` (the array, object and string
/// terminator, which must sort below every value) or `0xFF` (the escape byte).
mod tag {
    pub const UNDEFINED: u8 = 0x01;
    pub const NULL: u8 = 0x02;
    pub const INT64: u8 = 0x03;
    pub const FLOAT64: u8 = 0x04;
    pub const FALSE: u8 = 0x05;
    pub const TRUE: u8 = 0x06;
    pub const STRING: u8 = 0x07;
    pub const BYTES: u8 = 0x08;
    pub const ARRAY: u8 = 0x09;
    pub const OBJECT: u8 = 0x0A;
}

/// Ends an array or an object; the first byte of a string's terminator.
const END: u8 = 0x00;
/// Follows a `0x00` that belongs to a string's content.
const ESCAPE: u8 = 0xFF;

const SIGN_BIT: u64 = 1 << 63;

/// Deeper nesting than this in a key being decoded means the key is corrupt: Kiln's value
/// nesting limit (64 by default) is far below it. It keeps a bad key from exhausting the
/// stack.
const MAX_DECODE_DEPTH: usize = 512;

/// Appends the order-preserving encoding of one value (`None` = undefined, a missing field).
pub fn encode_value(value: Option<&Value>, out: &mut Vec<u8>) {
    match value {
        None => out.push(tag::UNDEFINED),
        Some(value) => encode_present(value, out),
    }
}

/// The encoding of a tuple of values, the concatenation of their encodings. It orders as
/// the tuples do, element by element, with a proper prefix before its extensions.
pub fn encode_tuple(values: &[Option<&Value>]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        encode_value(*value, &mut out);
    }
    out
}

/// Convex's total order over values, `None` (undefined) first. Byte order of the encodings
/// agrees with it: `compare_values(a, b) == encode(a).cmp(&encode(b))`.
pub fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => compare_present(a, b),
    }
}

/// The smallest key greater than every key that starts with `prefix`, or `None` if there is
/// none (`prefix` is empty or all `0xFF`): the exclusive end of the range of keys with that
/// prefix.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    // Trailing 0xFF bytes cannot be incremented; the byte before them can, and every key
    // with the prefix is below the result while nothing between them has the prefix.
    let last = prefix.iter().rposition(|&byte| byte != 0xFF)?;
    let mut successor = prefix[..=last].to_vec();
    successor[last] += 1;
    Some(successor)
}

/// A key that [`decode_tuple`] cannot read: not something [`encode_tuple`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed index key at byte {offset}: {reason}")]
pub struct KeyDecodeError {
    /// Where in the key the problem was found.
    pub offset: usize,
    /// What was wrong.
    pub reason: &'static str,
}

/// Reads back the tuple [`encode_tuple`] encoded (for diagnostics and tests; queries compare
/// keys as bytes and never need this). Only canonical encodings are accepted, so decoding
/// then encoding gives back the same bytes.
pub fn decode_tuple(key: &[u8]) -> Result<Vec<Option<Value>>, KeyDecodeError> {
    let mut reader = Reader { key, offset: 0 };
    let mut values = Vec::new();
    while reader.offset < key.len() {
        if key[reader.offset] == tag::UNDEFINED {
            reader.offset += 1;
            values.push(None);
        } else {
            values.push(Some(reader.value(0)?));
        }
    }
    Ok(values)
}

fn encode_present(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(tag::NULL),
        Value::Int64(n) => {
            out.push(tag::INT64);
            out.extend_from_slice(&(*n as u64 ^ SIGN_BIT).to_be_bytes());
        }
        Value::Float64(f) => {
            out.push(tag::FLOAT64);
            out.extend_from_slice(&float_key(*f).to_be_bytes());
        }
        Value::Boolean(false) => out.push(tag::FALSE),
        Value::Boolean(true) => out.push(tag::TRUE),
        Value::String(s) => encode_escaped(tag::STRING, s.as_bytes(), out),
        Value::Bytes(b) => encode_escaped(tag::BYTES, b, out),
        Value::Array(elements) => {
            out.push(tag::ARRAY);
            for element in elements {
                encode_present(element, out);
            }
            out.push(END);
        }
        Value::Object(fields) => {
            out.push(tag::OBJECT);
            for (name, value) in fields {
                // The string tag doubles as "a field follows", which keeps it apart from
                // `END` even when the name is empty.
                encode_escaped(tag::STRING, name.as_bytes(), out);
                encode_present(value, out);
            }
            out.push(END);
        }
    }
}

/// Maps a float's bits to a `u64` whose unsigned order is `f64::total_cmp`'s order.
fn float_key(f: f64) -> u64 {
    let bits = f.to_bits();
    if bits & SIGN_BIT != 0 {
        // Negative: a larger magnitude must sort lower, so flip everything.
        !bits
    } else {
        // Non-negative: already in order among themselves; lift them above the negatives.
        bits | SIGN_BIT
    }
}

/// The inverse of [`float_key`].
fn float_from_key(key: u64) -> f64 {
    f64::from_bits(if key & SIGN_BIT != 0 {
        key & !SIGN_BIT
    } else {
        !key
    })
}

fn encode_escaped(tag: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push(tag);
    for (i, run) in bytes.split(|&byte| byte == 0).enumerate() {
        if i > 0 {
            out.extend_from_slice(&[0x00, ESCAPE]);
        }
        out.extend_from_slice(run);
    }
    out.extend_from_slice(&[0x00, 0x00]);
}

/// The position of a value's type in the order (both booleans share one).
fn type_rank(value: &Value) -> u8 {
    match value {
        Value::Null => 0,
        Value::Int64(_) => 1,
        Value::Float64(_) => 2,
        Value::Boolean(_) => 3,
        Value::String(_) => 4,
        Value::Bytes(_) => 5,
        Value::Array(_) => 6,
        Value::Object(_) => 7,
    }
}

fn compare_present(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Int64(a), Value::Int64(b)) => a.cmp(b),
        (Value::Float64(a), Value::Float64(b)) => a.total_cmp(b),
        (Value::Boolean(a), Value::Boolean(b)) => a.cmp(b),
        // `str`'s order is the order of its UTF-8 bytes.
        (Value::String(a), Value::String(b)) => a.cmp(b),
        (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
        (Value::Array(a), Value::Array(b)) => {
            compare_sequences(a.iter(), b.iter(), compare_present)
        }
        (Value::Object(a), Value::Object(b)) => {
            compare_sequences(a.iter(), b.iter(), |(ka, va), (kb, vb)| {
                ka.cmp(kb).then_with(|| compare_present(va, vb))
            })
        }
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

/// Lexicographic order of two sequences under `compare`, a proper prefix first.
fn compare_sequences<T>(
    mut a: impl Iterator<Item = T>,
    mut b: impl Iterator<Item = T>,
    compare: impl Fn(T, T) -> Ordering,
) -> Ordering {
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match compare(x, y) {
                Ordering::Equal => {}
                unequal => return unequal,
            },
        }
    }
}

/// A cursor over a key being decoded.
struct Reader<'a> {
    key: &'a [u8],
    offset: usize,
}

impl Reader<'_> {
    fn error(&self, reason: &'static str) -> KeyDecodeError {
        KeyDecodeError {
            offset: self.offset,
            reason,
        }
    }

    fn byte(&mut self) -> Result<u8, KeyDecodeError> {
        let byte = *self
            .key
            .get(self.offset)
            .ok_or_else(|| self.error("unexpected end"))?;
        self.offset += 1;
        Ok(byte)
    }

    fn eight_bytes(&mut self) -> Result<u64, KeyDecodeError> {
        let bytes = self
            .key
            .get(self.offset..self.offset + 8)
            .ok_or_else(|| self.error("unexpected end"))?;
        self.offset += 8;
        Ok(u64::from_be_bytes(bytes.try_into().expect("eight bytes")))
    }

    /// One value, its tag included, at nesting `depth`.
    fn value(&mut self, depth: usize) -> Result<Value, KeyDecodeError> {
        if depth > MAX_DECODE_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        let value = match self.byte()? {
            tag::NULL => Value::Null,
            tag::INT64 => Value::Int64((self.eight_bytes()? ^ SIGN_BIT) as i64),
            tag::FLOAT64 => Value::Float64(float_from_key(self.eight_bytes()?)),
            tag::FALSE => Value::Boolean(false),
            tag::TRUE => Value::Boolean(true),
            tag::STRING => Value::String(self.string()?),
            tag::BYTES => Value::Bytes(self.escaped()?),
            tag::ARRAY => {
                let mut elements = Vec::new();
                while self.key.get(self.offset) != Some(&END) {
                    elements.push(self.value(depth + 1)?);
                }
                self.offset += 1;
                Value::Array(elements)
            }
            tag::OBJECT => {
                let mut fields = BTreeMap::new();
                let mut previous: Option<String> = None;
                loop {
                    match self.byte()? {
                        END => break,
                        tag::STRING => {}
                        _ => {
                            return Err(self.error("expected a field name or the end of an object"));
                        }
                    }
                    let name = self.string()?;
                    // Encoding writes fields in name order, each once.
                    if previous.as_ref().is_some_and(|previous| *previous >= name) {
                        return Err(self.error("object fields out of order"));
                    }
                    let value = self.value(depth + 1)?;
                    previous = Some(name.clone());
                    fields.insert(name, value);
                }
                Value::Object(fields)
            }
            _ => {
                self.offset -= 1;
                return Err(self.error("not a value tag"));
            }
        };
        Ok(value)
    }

    /// The content of an escaped string or bytes value, after its tag.
    fn escaped(&mut self) -> Result<Vec<u8>, KeyDecodeError> {
        let mut content = Vec::new();
        loop {
            match self.byte()? {
                0x00 => match self.byte()? {
                    0x00 => return Ok(content),
                    ESCAPE => content.push(0x00),
                    _ => return Err(self.error("0x00 neither escaped nor terminating")),
                },
                byte => content.push(byte),
            }
        }
    }

    fn string(&mut self) -> Result<String, KeyDecodeError> {
        let start = self.offset;
        String::from_utf8(self.escaped()?).map_err(|_| KeyDecodeError {
            offset: start,
            reason: "string is not UTF-8",
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key(value: &Value) -> Vec<u8> {
        encode_tuple(&[Some(value)])
    }

    fn object(fields: &[(&str, Value)]) -> Value {
        Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    /// Tuples compared element by element, a proper prefix first.
    fn compare_tuples(a: &[Option<Value>], b: &[Option<Value>]) -> Ordering {
        compare_sequences(a.iter(), b.iter(), |x, y| {
            compare_values(x.as_ref(), y.as_ref())
        })
    }

    fn encode_owned(tuple: &[Option<Value>]) -> Vec<u8> {
        encode_tuple(&tuple.iter().map(Option::as_ref).collect::<Vec<_>>())
    }

    #[test]
    fn types_sort_in_convex_order() {
        let ascending = [
            None,
            Some(Value::Null),
            Some(Value::Int64(i64::MIN)),
            Some(Value::Int64(i64::MAX)),
            Some(Value::Float64(-f64::NAN)),
            Some(Value::Float64(f64::NEG_INFINITY)),
            Some(Value::Float64(-0.0)),
            Some(Value::Float64(0.0)),
            Some(Value::Float64(f64::INFINITY)),
            Some(Value::Float64(f64::NAN)),
            Some(Value::Boolean(false)),
            Some(Value::Boolean(true)),
            Some(Value::String(String::new())),
            Some(Value::String("\0".into())),
            Some(Value::String("a".into())),
            Some(Value::String("a\0".into())),
            Some(Value::String("a\u{1}".into())),
            Some(Value::String("é".into())),
            Some(Value::Bytes(vec![])),
            Some(Value::Bytes(vec![0xff])),
            Some(Value::Array(vec![])),
            Some(Value::Array(vec![Value::Null])),
            Some(Value::Array(vec![Value::Null, Value::Null])),
            Some(Value::Array(vec![Value::Int64(0)])),
            Some(object(&[])),
            Some(object(&[("", Value::Null)])),
            Some(object(&[("a", Value::Null)])),
            Some(object(&[("a", Value::Null), ("b", Value::Null)])),
            Some(object(&[("a", Value::Int64(0))])),
            Some(object(&[("b", Value::Null)])),
        ];
        for pair in ascending.windows(2) {
            let (a, b) = (pair[0].as_ref(), pair[1].as_ref());
            assert_eq!(compare_values(a, b), Ordering::Less, "{a:?} < {b:?}");
            assert!(
                encode_tuple(&[a]) < encode_tuple(&[b]),
                "{a:?} < {b:?} as bytes"
            );
        }
    }

    #[test]
    fn int64_is_not_float64() {
        // 1 as an int64 is below every float, however small.
        assert!(key(&Value::Int64(1)) < key(&Value::Float64(f64::NEG_INFINITY)));
        assert_eq!(
            compare_values(Some(&Value::Int64(1)), Some(&Value::Float64(1.0))),
            Ordering::Less
        );
    }

    #[test]
    fn known_encodings() {
        assert_eq!(encode_tuple(&[None]), [0x01]);
        assert_eq!(key(&Value::Int64(0)), [0x03, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            key(&Value::Int64(-1)),
            [0x03, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(key(&Value::Float64(0.0)), [0x04, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            key(&Value::Float64(-0.0)),
            [0x04, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            key(&Value::String("a\0b".into())),
            [0x07, b'a', 0x00, 0xff, b'b', 0x00, 0x00]
        );
        assert_eq!(key(&Value::Array(vec![Value::Null])), [0x09, 0x02, 0x00]);
        assert_eq!(
            key(&object(&[("", Value::Null)])),
            [0x0a, 0x07, 0x00, 0x00, 0x02, 0x00]
        );
    }

    #[test]
    fn prefix_successor_increments_past_trailing_ff() {
        assert_eq!(prefix_successor(&[0x07, b'a']), Some(vec![0x07, b'b']));
        assert_eq!(prefix_successor(&[0x07, 0xff, 0xff]), Some(vec![0x08]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        assert_eq!(prefix_successor(&[]), None);
    }

    #[test]
    fn an_equality_prefix_is_a_byte_range() {
        // "a" must not capture "a\0…" (an escaped 0x00 extends the bytes of "a").
        let a = Value::String("a".into());
        let a_nul = Value::String("a\0".into());
        let start = encode_tuple(&[Some(&a)]);
        let end = prefix_successor(&start).unwrap();
        let inside = [
            encode_tuple(&[Some(&a)]),
            encode_tuple(&[Some(&a), None]),
            encode_tuple(&[Some(&a), Some(&Value::Object(BTreeMap::new()))]),
            [encode_tuple(&[Some(&a)]), vec![0xff; 4]].concat(),
        ];
        for key in &inside {
            assert!(start <= *key && *key < end, "{key:?}");
        }
        let outside = [
            encode_tuple(&[Some(&a_nul)]),
            encode_tuple(&[Some(&Value::String("b".into()))]),
            encode_tuple(&[None]),
        ];
        for key in &outside {
            assert!(!(start <= *key && *key < end), "{key:?}");
        }
    }

    #[test]
    fn decoding_rejects_malformed_keys() {
        for (bad, reason) in [
            (&[0x00][..], "not a value tag"),
            (&[0xff], "not a value tag"),
            (&[0x03, 0x80], "unexpected end"),
            (&[0x07, b'a', 0x00], "unexpected end"),
            (
                &[0x07, b'a', 0x00, 0x01],
                "0x00 neither escaped nor terminating",
            ),
            (&[0x07, 0xc3, 0x00, 0x00], "string is not UTF-8"),
            (&[0x09, 0x02], "unexpected end"),
            (
                &[0x0a, 0x02, 0x00],
                "expected a field name or the end of an object",
            ),
        ] {
            assert_eq!(
                decode_tuple(bad).map_err(|e| e.reason),
                Err(reason),
                "{bad:?}"
            );
        }
        // Fields out of order, or repeated.
        let b_then_a = [
            &[0x0a][..],
            &key(&Value::String("b".into())),
            &[0x02],
            &key(&Value::String("a".into())),
            &[0x02, 0x00],
        ]
        .concat();
        assert!(decode_tuple(&b_then_a).is_err());
        let deep = [
            vec![0x09; MAX_DECODE_DEPTH + 2],
            vec![0x00; MAX_DECODE_DEPTH + 2],
        ]
        .concat();
        assert_eq!(
            decode_tuple(&deep).map_err(|e| e.reason),
            Err("nested too deeply")
        );
    }

    /// Any float, with NaNs of both signs and other payloads, the infinities and both zeros
    /// made likely.
    fn any_float() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            any::<f64>(),
            Just(f64::NAN),
            Just(-f64::NAN),
            Just(f64::from_bits(0x7ff0_0000_0000_0001)),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-0.0),
            Just(0.0),
            Just(f64::MIN_POSITIVE),
            Just(-f64::MIN_POSITIVE),
        ]
    }

    /// Strings and bytes rich in the bytes the escaping treats specially.
    fn tricky_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![Just(0x00), Just(0x01), Just(0xff), any::<u8>()],
            0..6,
        )
    }

    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Int64),
            prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0), Just(-1), Just(1)]
                .prop_map(Value::Int64),
            any_float().prop_map(Value::Float64),
            any::<bool>().prop_map(Value::Boolean),
            any::<String>().prop_map(Value::String),
            "[\0\u{1}a-c\u{ff}é]{0,4}".prop_map(Value::String),
            tricky_bytes().prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[\0a-c]{0,3}", inner, 0..5).prop_map(Value::Object),
            ]
        })
    }

    /// Values from a small domain, so that equal values and shared prefixes are common.
    fn small_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            (-1i64..=1).prop_map(Value::Int64),
            prop_oneof![Just(0.0), Just(-0.0), Just(1.0), Just(f64::NAN)].prop_map(Value::Float64),
            any::<bool>().prop_map(Value::Boolean),
            "[\0a]{0,2}".prop_map(Value::String),
            prop::collection::vec(prop_oneof![Just(0x00), Just(0xff)], 0..2).prop_map(Value::Bytes),
        ];
        leaf.prop_recursive(2, 8, 2, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[\0a]{0,1}", inner, 0..3).prop_map(Value::Object),
            ]
        })
    }

    fn tuple(value: impl Strategy<Value = Value>) -> impl Strategy<Value = Vec<Option<Value>>> {
        prop::collection::vec(prop::option::weighted(0.85, value), 0..4)
    }

    proptest! {
        #[test]
        fn byte_order_is_value_order(a in tuple(any_value()), b in tuple(any_value())) {
            prop_assert_eq!(encode_owned(&a).cmp(&encode_owned(&b)), compare_tuples(&a, &b));
        }

        #[test]
        fn byte_order_is_value_order_among_similar_values(a in tuple(small_value()), b in tuple(small_value())) {
            prop_assert_eq!(encode_owned(&a).cmp(&encode_owned(&b)), compare_tuples(&a, &b));
        }

        #[test]
        fn equal_encodings_are_equal_values(a in tuple(small_value()), b in tuple(small_value())) {
            // `Value`'s equality compares floats by their bits.
            prop_assert_eq!(encode_owned(&a) == encode_owned(&b), a == b);
            prop_assert_eq!(compare_tuples(&a, &b) == Ordering::Equal, a == b);
        }

        #[test]
        fn decoding_inverts_encoding(a in tuple(any_value())) {
            prop_assert_eq!(decode_tuple(&encode_owned(&a)), Ok(a));
        }

        #[test]
        fn comparison_is_a_total_order(
            a in prop::option::weighted(0.9, small_value()),
            b in prop::option::weighted(0.9, small_value()),
            c in prop::option::weighted(0.9, small_value()),
        ) {
            let (a, b, c) = (a.as_ref(), b.as_ref(), c.as_ref());
            prop_assert_eq!(compare_values(a, b), compare_values(b, a).reverse());
            prop_assert_eq!(compare_values(a, a), Ordering::Equal);
            if compare_values(a, b).is_le() && compare_values(b, c).is_le() {
                prop_assert!(compare_values(a, c).is_le());
            }
        }

        #[test]
        fn sorting_values_sorts_their_keys(mut values in prop::collection::vec(prop::option::weighted(0.9, any_value()), 0..24)) {
            values.sort_by(|a, b| compare_values(a.as_ref(), b.as_ref()));
            let keys: Vec<_> = values.iter().map(|v| encode_tuple(&[v.as_ref()])).collect();
            prop_assert!(keys.is_sorted());
        }

        #[test]
        fn tuples_with_a_prefix_fall_in_its_range(
            prefix in tuple(any_value()),
            rest in tuple(any_value()),
            other in tuple(any_value()),
        ) {
            let start = encode_owned(&prefix);
            let inside = encode_owned(&[prefix.clone(), rest].concat());
            let in_range = |key: &[u8]| {
                start.as_slice() <= key && prefix_successor(&start).is_none_or(|end| key < end.as_slice())
            };
            prop_assert!(in_range(&inside));
            // A tuple falls in the range exactly when it starts with the prefix.
            let starts_with_prefix = other.len() >= prefix.len() && other[..prefix.len()] == prefix[..];
            prop_assert_eq!(in_range(&encode_owned(&other)), starts_with_prefix);
        }
    }
}
