//! [`Validate`]: the Convex validator a Rust type stands for, so that `#[query]`,
//! `#[mutation]` and `#[action]` can declare their argument and return validators from the
//! function's own types, and the host checks every call against them.
//!
//! | Rust | validator |
//! |---|---|
//! | `String`, `&str`, `char`, [`Id`] | `string` |
//! | `bool` | `boolean` |
//! | `i8` … `i128`, `u8` … `u128`, `isize`, `usize` | `int64 \| float64` (see below) |
//! | `f32`, `f64` | `float64` |
//! | `()` | `null` |
//! | `Option<T>` | `T \| null`, and a struct field of this type may be absent |
//! | `Vec<T>`, `[T; N]`, `VecDeque<T>`, sets | `array<T>` |
//! | `(A, B, …)` | `array<A \| B \| …>` (Convex has no tuple type) |
//! | `HashMap<K, V>`, `BTreeMap<K, V>` | `record<K, V>` (`K` string-like, else `string`) |
//! | [`Value`], [`Document`](crate::Document), `serde_json::Value` | `any` |
//! | `Box<T>`, `Rc<T>`, `Arc<T>`, `&T`, `Cow<T>` | `T` |
//!
//! Integers: JSON clients send every number as a float64, and the SDK decodes a float64
//! that holds an exact integer into any integer type (refusing `8000.5` or an out-of-range
//! number with an error naming the field). So an integer's validator accepts both int64
//! and float64; the exactness and range checks happen when the SDK decodes the arguments.
//!
//! [`Id`] is untyped (it does not know its table), so it validates as a string; give a
//! field a table with `#[kiln(id = "users")]` under `#[derive(Validate)]`.
//!
//! `#[derive(Validate)]` covers your own structs and enums; see its documentation.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, LinkedList, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use kiln_values::{FieldValidator, Validator, Value};

use crate::db::{Id, PaginationOpts, PaginationResult};

/// A type whose values a Convex validator describes.
///
/// Implemented for the standard types above; derive it for your own with
/// `#[derive(kiln::Validate)]`, or implement it by hand for a type whose serde form you
/// wrote yourself.
pub trait Validate {
    /// The validator of this type's serde form.
    fn validator() -> Validator;

    /// Whether a struct field of this type may be left out: serde fills a missing
    /// `Option` field with `None`. Only `Option` says yes.
    const MAY_BE_ABSENT: bool = false;
}

/// The validator of a Rust integer: what a JSON client (float64) or a Convex client with
/// a `bigint` (int64) may send.
pub fn integer_validator() -> Validator {
    Validator::Union(vec![Validator::Int64, Validator::Float64])
}

macro_rules! validate_as {
    ($validator:expr => $($ty:ty),*) => {$(
        impl Validate for $ty {
            fn validator() -> Validator {
                $validator
            }
        }
    )*};
}

validate_as!(Validator::String => String, str, char, Id);
validate_as!(Validator::Boolean => bool);
validate_as!(integer_validator() => i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);
validate_as!(Validator::Float64 => f32, f64);
validate_as!(Validator::Null => ());
validate_as!(Validator::Any => Value, serde_json::Value);

impl<T: Validate> Validate for Option<T> {
    fn validator() -> Validator {
        Validator::union([T::validator(), Validator::Null])
    }

    const MAY_BE_ABSENT: bool = true;
}

macro_rules! validate_as_element {
    ($($ty:ty),*) => {$(
        impl<T: Validate> Validate for $ty {
            fn validator() -> Validator {
                Validator::array(T::validator())
            }
        }
    )*};
}

validate_as_element!(Vec<T>, [T], VecDeque<T>, LinkedList<T>, BTreeSet<T>);

impl<T: Validate, S> Validate for HashSet<T, S> {
    fn validator() -> Validator {
        Validator::array(T::validator())
    }
}

impl<T: Validate, const N: usize> Validate for [T; N] {
    fn validator() -> Validator {
        Validator::array(T::validator())
    }
}

/// A map's keys become field names, which are strings whatever the key type; a string or
/// id validator is kept, anything else reads as `string`.
fn record_of<K: Validate, V: Validate>() -> Validator {
    let keys = match K::validator() {
        keys @ (Validator::String | Validator::Id(_)) => keys,
        _ => Validator::String,
    };
    Validator::record(keys, V::validator())
}

impl<K: Validate, V: Validate> Validate for BTreeMap<K, V> {
    fn validator() -> Validator {
        record_of::<K, V>()
    }
}

impl<K: Validate, V: Validate, S> Validate for HashMap<K, V, S> {
    fn validator() -> Validator {
        record_of::<K, V>()
    }
}

macro_rules! validate_as_inner {
    ($($ty:ty),*) => {$(
        impl<T: Validate + ?Sized> Validate for $ty {
            fn validator() -> Validator {
                T::validator()
            }

            const MAY_BE_ABSENT: bool = T::MAY_BE_ABSENT;
        }
    )*};
}

validate_as_inner!(Box<T>, Rc<T>, Arc<T>, &T, &mut T);

impl<T: Validate + ToOwned + ?Sized> Validate for Cow<'_, T> {
    fn validator() -> Validator {
        T::validator()
    }
}

macro_rules! validate_tuple {
    ($($name:ident),+) => {
        impl<$($name: Validate),+> Validate for ($($name,)+) {
            fn validator() -> Validator {
                Validator::array(Validator::union([$($name::validator()),+]))
            }
        }
    };
}

validate_tuple!(A);
validate_tuple!(A, B);
validate_tuple!(A, B, C);
validate_tuple!(A, B, C, D);
validate_tuple!(A, B, C, D, E);
validate_tuple!(A, B, C, D, E, F);

impl Validate for PaginationOpts {
    /// Convex's `paginationOptsValidator`, so `usePaginatedQuery` (which also sends `id`)
    /// and the other Convex clients pass.
    fn validator() -> Validator {
        let nullable_string = || Validator::union([Validator::String, Validator::Null]);
        Validator::object([
            ("numItems", FieldValidator::required(Validator::Float64)),
            ("cursor", FieldValidator::optional(nullable_string())),
            ("endCursor", FieldValidator::optional(nullable_string())),
            ("id", FieldValidator::optional(Validator::Float64)),
            (
                "maximumRowsRead",
                FieldValidator::optional(Validator::Float64),
            ),
            (
                "maximumBytesRead",
                FieldValidator::optional(Validator::Float64),
            ),
        ])
    }
}

impl Validate for PaginationResult {
    fn validator() -> Validator {
        Validator::object([
            (
                "page",
                FieldValidator::required(Validator::array(Validator::Any)),
            ),
            ("isDone", FieldValidator::required(Validator::Boolean)),
            (
                "continueCursor",
                FieldValidator::required(Validator::String),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_types() {
        assert_eq!(String::validator(), Validator::String);
        assert_eq!(
            u32::validator().to_string(),
            "int64 | float64",
            "JSON clients send integers as float64s"
        );
        assert_eq!(
            <Option<Vec<f64>>>::validator().to_string(),
            "array<float64> | null"
        );
        const { assert!(<Option<u8>>::MAY_BE_ABSENT && !<u8>::MAY_BE_ABSENT) };
        assert_eq!(
            <Option<Option<bool>>>::validator().to_string(),
            "boolean | null"
        );
        assert_eq!(
            <HashMap<String, Box<i64>>>::validator().to_string(),
            "record<string, int64 | float64>"
        );
        assert_eq!(
            <BTreeMap<u32, Value>>::validator().to_string(),
            "record<string, any>"
        );
        assert_eq!(
            <(String, bool)>::validator().to_string(),
            "array<string | boolean>"
        );
        assert_eq!(<()>::validator(), Validator::Null);
        assert_eq!(<&str>::validator(), Validator::String);
        assert_eq!(Id::validator(), Validator::String);
        assert_eq!(
            PaginationOpts::validator().to_string(),
            "{cursor?: string | null, endCursor?: string | null, id?: float64, maximumBytesRead?: float64, maximumRowsRead?: float64, numItems: float64}"
        );
    }
}
