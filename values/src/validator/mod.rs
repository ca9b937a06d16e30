//! Validators: the types a function declares for its arguments and its return value, in
//! Convex's model, so that a validator written with `convex/values`' `v.*` in JavaScript and
//! one derived from a Rust type mean the same thing and travel in the same JSON.
//!
//! - [`Validator`] and [`FieldValidator`]: the model (`v.string()`, `v.object({...})`, ...).
//! - Convex's validator JSON, the format `exportArgs()`/`exportReturns()` of `convex/server`
//!   produce (`json.rs`): [`Validator::from_json_str`], [`Validator::to_json`].
//! - [`Validator::check`]: whether a value matches, naming the first mismatch with its path
//!   (`args.user.age: expected int64, got string`) (`check.rs`).
//! - A readable form for listings, `{name: string, count?: float64}` (`display.rs`).
//!
//! Mirrors `dist/esm/values/validators.js` of `convex@1.48.0` (the `json` getters) and the
//! backend's `ValidatorJson`.

mod check;
mod display;
mod json;

use std::collections::BTreeMap;

use crate::value::Value;

pub use json::InvalidValidator;

/// The most levels a validator may nest (each array, object, record and union is a level).
/// Checking recurses once per level, so the bound keeps a hostile validator from
/// overflowing the stack; the JSON parser's own bound (128 JSON levels, and an object
/// validator takes three) would stop a deeper one anyway, with a less clear message.
pub const MAX_VALIDATOR_DEPTH: usize = 32;

/// The longest validator JSON text accepted, in bytes. Real validators are a few KiB; this
/// only stops absurd input before it is parsed.
pub const MAX_VALIDATOR_JSON_BYTES: usize = 1 << 20;

/// How many (validator, value) pairs one check may visit before it gives up. A check costs
/// at most the validator's size times the value's, which a large union over a large value
/// could make minutes; a real check of an 8 MiB value takes a few million steps.
pub const MAX_CHECK_STEPS: usize = 50_000_000;

/// The type of a value, as Convex's `v` builders describe it.
///
/// A JSON client's numbers are float64s: a Rust integer field's validator is therefore
/// `int64 | float64` (see the Rust SDK), and the SDK's decoder takes an exact-integer float.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validator {
    /// `v.any()`: every value.
    Any,
    /// `v.null()`.
    Null,
    /// `v.boolean()`.
    Boolean,
    /// `v.string()`.
    String,
    /// `v.bytes()`.
    Bytes,
    /// `v.float64()` / `v.number()` (JSON `"number"`).
    Float64,
    /// `v.int64()` / `v.bigint()` (JSON `"bigint"`).
    Int64,
    /// `v.literal(x)`: exactly this string, float64, int64 or boolean.
    Literal(Value),
    /// `v.id("table")`: a string that is the id of a document of that table.
    Id(String),
    /// `v.array(element)`.
    Array(Box<Validator>),
    /// `v.record(keys, values)`: an object whose every field name matches `keys` (a string,
    /// an id, or a union of those) and whose every field value matches `values`.
    Record {
        keys: Box<Validator>,
        values: Box<Validator>,
    },
    /// `v.object({...})`: exactly these fields, by name; no others.
    Object(BTreeMap<String, FieldValidator>),
    /// `v.union(...)`: any one of these. An empty union matches nothing.
    Union(Vec<Validator>),
}

/// One field of an object validator: its type, and whether it may be absent
/// (`v.optional(...)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldValidator {
    pub validator: Validator,
    pub optional: bool,
}

impl FieldValidator {
    /// A field that must be present.
    pub fn required(validator: Validator) -> Self {
        Self {
            validator,
            optional: false,
        }
    }

    /// A field that may be absent.
    pub fn optional(validator: Validator) -> Self {
        Self {
            validator,
            optional: true,
        }
    }
}

impl Validator {
    /// An object validator from `(name, field)` pairs.
    pub fn object<N: Into<String>>(fields: impl IntoIterator<Item = (N, FieldValidator)>) -> Self {
        Validator::Object(
            fields
                .into_iter()
                .map(|(name, field)| (name.into(), field))
                .collect(),
        )
    }

    /// `v.array(element)`.
    pub fn array(element: Validator) -> Self {
        Validator::Array(Box::new(element))
    }

    /// `v.record(keys, values)`.
    pub fn record(keys: Validator, values: Validator) -> Self {
        Validator::Record {
            keys: Box::new(keys),
            values: Box::new(values),
        }
    }

    /// A union of `members`, flattening nested unions and dropping repeats, so building
    /// `T | null` from a `T` that is itself a union stays one flat union. One member is
    /// that member; `Any` among them makes the whole union `Any`.
    pub fn union(members: impl IntoIterator<Item = Validator>) -> Self {
        let mut flat: Vec<Validator> = Vec::new();
        for member in members {
            let parts = match member {
                Validator::Union(parts) => parts,
                other => vec![other],
            };
            for part in parts {
                if part == Validator::Any {
                    return Validator::Any;
                }
                if !flat.contains(&part) {
                    flat.push(part);
                }
            }
        }
        if flat.len() == 1 {
            flat.pop().expect("one member")
        } else {
            Validator::Union(flat)
        }
    }

    /// How many levels this validator nests: 1 for a scalar, one more for each array,
    /// object, record or union around it.
    pub fn depth(&self) -> usize {
        1 + match self {
            Validator::Array(element) => element.depth(),
            Validator::Record { keys, values } => keys.depth().max(values.depth()),
            Validator::Object(fields) => fields
                .values()
                .map(|field| field.validator.depth())
                .max()
                .unwrap_or(0),
            Validator::Union(members) => members.iter().map(Validator::depth).max().unwrap_or(0),
            _ => 0,
        }
    }
}
