//! Convex's value model and its JSON encodings, shared by the Kiln host and the guest SDK
//! (which compiles it into wasm components, so this crate uses no file system, threads or
//! async runtime).
//!
//! - [`Value`]: the eight Convex types.
//! - Convex JSON, the wire encoding: [`Value::to_convex_json`] and
//!   [`Value::from_convex_json`] (with `_string`/`_str` text forms and `_with_limits`
//!   variants).
//! - Plain JSON, the export format: [`Value::to_export_json`] and [`Value::from_plain_json`].
//! - Validation: [`Value::check`] against [`ValueLimits`], [`Value::size_bytes`], and
//!   [`check_field_name`] for the field-name rules.
//! - serde: [`to_value`], [`from_value`] and [`from_value_at`] between `Value` and typed Rust
//!   data; `Value` itself is `Serialize` and `Deserialize`. A Rust integer field accepts an
//!   int64 or a float64 that holds an exact integer (JSON clients send every number as a
//!   float64), and names the field when it cannot: `args.count: 8000.5 is not an integer`.
//! - Validators: [`Validator`], Convex's argument and return-value types, read from and
//!   written to Convex's validator JSON, checked against values with
//!   [`Validator::check`].
//!
//! Every fallible operation returns [`ValueError`], whose message names the path to the part
//! of the value at fault.
//!
//! ```
//! use kiln_values::{Value, ValueLimits, from_value_at};
//!
//! #[derive(serde::Deserialize)]
//! struct Args {
//!     n: i64,
//! }
//!
//! let wire = r#"{"n": {"$integer": "AQAAAAAAAAA="}}"#;
//! let value = Value::from_convex_json_str_with_limits(wire, &ValueLimits::default())?;
//! let args: Args = from_value_at(value, "args")?;
//! assert_eq!(args.n, 1);
//!
//! // A JSON client's `1` is a float64: fine for an integer field while it is exact.
//! let args: Args = from_value_at(Value::from_convex_json_str(r#"{"n": 1}"#)?, "args")?;
//! assert_eq!(args.n, 1);
//! let error = from_value_at::<Args>(Value::from_convex_json_str(r#"{"n": 1.5}"#)?, "args");
//! assert_eq!(error.err().unwrap().to_string(), "args.n: 1.5 is not an integer");
//! # Ok::<(), kiln_values::ValueError>(())
//! ```

mod convex_json;
mod convex_json_text;
mod de;
mod error;
mod export_json;
mod field_names;
mod json_shape;
mod json_size;
mod limits;
mod numbers;
mod ser;
mod ser_text;
mod text_or_value;
mod validator;
mod value;

pub use convex_json::{ConvexJsonText, JSON_TEXT_SIZE_FACTOR, json_type_name};
pub use de::{from_value, from_value_at};
pub use error::{PathSegment, ValueError, ValueErrorKind};
pub use field_names::{FieldNameError, MAX_FIELD_NAME_LENGTH, check_field_name};
pub use json_shape::check_json_shape;
pub use json_size::{convex_json_size_bytes, is_valid_convex_json_text};
pub use limits::{DEFAULT_MAX_NESTING_DEPTH, DEFAULT_MAX_SIZE_BYTES, ValueLimits};
pub use numbers::format_number;
pub use ser::to_value;
pub use ser_text::{to_convex_json_text, to_convex_json_text_within};
pub use text_or_value::serialize_text_or_value;
pub use validator::{
    FieldValidator, InvalidValidator, MAX_CHECK_STEPS, MAX_VALIDATOR_DEPTH,
    MAX_VALIDATOR_JSON_BYTES, Validator,
};
pub use value::Value;
