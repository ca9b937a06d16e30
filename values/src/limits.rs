//! How big and how deep a value may be, and [`Value::check`], which validates a value against
//! those limits and the field-name rules before it is accepted as a function's arguments or
//! result.

use crate::error::{ValueError, ValueErrorKind};
use crate::field_names::check_field_name;
use crate::value::Value;

/// The default for [`ValueLimits::max_size_bytes`]: 8 MiB.
pub const DEFAULT_MAX_SIZE_BYTES: usize = 8 * 1024 * 1024;

/// The default for [`ValueLimits::max_nesting_depth`].
pub const DEFAULT_MAX_NESTING_DEPTH: usize = 64;

/// Limits on a value's size and nesting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueLimits {
    /// The most a value's [`size_bytes`](Value::size_bytes) may be.
    pub max_size_bytes: usize,
    /// The most levels of nesting: the top-level value is at level 1 and the elements or
    /// fields of a container at level *n* are at level *n* + 1. So a scalar or an empty
    /// array has depth 1, `[1]` and `{"a": []}` have depth 2.
    pub max_nesting_depth: usize,
}

impl Default for ValueLimits {
    fn default() -> Self {
        ValueLimits {
            max_size_bytes: DEFAULT_MAX_SIZE_BYTES,
            max_nesting_depth: DEFAULT_MAX_NESTING_DEPTH,
        }
    }
}

impl Value {
    /// Estimates the value's size in bytes the way Convex counts it against its limits: one
    /// byte of type tag plus the payload, and a two-byte frame around variable-length data.
    ///
    /// | value   | size                                         |
    /// |---------|----------------------------------------------|
    /// | null, boolean | 1                                      |
    /// | int64, float64 | 9                                     |
    /// | string, bytes | 2 + length in bytes                    |
    /// | array   | 2 + the elements' sizes                      |
    /// | object  | 2 + for each field, name length + 1 + the value's size |
    pub fn size_bytes(&self) -> usize {
        match self {
            Value::Null | Value::Boolean(_) => 1,
            Value::Int64(_) | Value::Float64(_) => 9,
            Value::String(s) => s.len().saturating_add(2),
            Value::Bytes(b) => b.len().saturating_add(2),
            Value::Array(elements) => elements
                .iter()
                .fold(2, |sum: usize, e| sum.saturating_add(e.size_bytes())),
            Value::Object(fields) => fields.iter().fold(2, |sum: usize, (name, v)| {
                sum.saturating_add(name.len() + 1)
                    .saturating_add(v.size_bytes())
            }),
        }
    }

    /// Checks that the value may be used as a function's arguments or result: nested no
    /// deeper than `limits.max_nesting_depth`, no bigger than `limits.max_size_bytes`, and
    /// with every field name allowed by [`check_field_name`]`(name, true)`, which refuses
    /// empty, over-long, non-printable and `$`-prefixed names but allows a leading `_`.
    ///
    /// Errors carry the path of the offending part, with an empty root; use
    /// [`ValueError::with_root`] to name the value, e.g. `"args"`.
    pub fn check(&self, limits: &ValueLimits) -> Result<(), ValueError> {
        // Depth first: it bounds the recursion of both this walk and `size_bytes`.
        check_structure(self, 1, limits.max_nesting_depth)?;
        let size = self.size_bytes();
        if size > limits.max_size_bytes {
            return Err(ValueError::new(ValueErrorKind::TooLarge {
                size,
                limit: limits.max_size_bytes,
            }));
        }
        Ok(())
    }
}

/// Checks depth and field names of `value`, which sits at nesting `level`. Recursion stops
/// at the depth limit, so a hostile value cannot overflow the stack here.
fn check_structure(value: &Value, level: usize, max_depth: usize) -> Result<(), ValueError> {
    if level > max_depth {
        return Err(ValueError::new(ValueErrorKind::TooDeep {
            limit: max_depth,
        }));
    }
    match value {
        Value::Array(elements) => {
            for (index, element) in elements.iter().enumerate() {
                check_structure(element, level + 1, max_depth).map_err(|e| e.at_index(index))?;
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                check_field_name(name, true)?;
                check_structure(field, level + 1, max_depth).map_err(|e| e.in_field(name))?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn object(fields: &[(&str, Value)]) -> Value {
        Value::Object(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    /// `levels` arrays nested in one another around `inner`.
    fn nested(levels: usize, inner: Value) -> Value {
        (0..levels).fold(inner, |v, _| Value::Array(vec![v]))
    }

    #[test]
    fn sizes() {
        assert_eq!(Value::Null.size_bytes(), 1);
        assert_eq!(Value::Boolean(true).size_bytes(), 1);
        assert_eq!(Value::Int64(7).size_bytes(), 9);
        assert_eq!(Value::Float64(7.0).size_bytes(), 9);
        assert_eq!(Value::from("abc").size_bytes(), 5);
        assert_eq!(Value::Bytes(vec![0; 10]).size_bytes(), 12);
        assert_eq!(
            Value::Array(vec![Value::Null, Value::Int64(1)]).size_bytes(),
            12
        );
        // 2 + ("ab" 2 + 1 + null 1)
        assert_eq!(object(&[("ab", Value::Null)]).size_bytes(), 6);
    }

    #[test]
    fn depth_counts_the_top_level_as_one() {
        let limits = ValueLimits {
            max_nesting_depth: 3,
            ..ValueLimits::default()
        };
        assert!(Value::Null.check(&limits).is_ok());
        // Three arrays, the innermost empty: depth 3.
        assert!(nested(2, Value::Array(vec![])).check(&limits).is_ok());
        // Three arrays around a scalar: the scalar is at level 4.
        let error = nested(3, Value::Null).check(&limits).unwrap_err();
        assert_eq!(error.kind(), &ValueErrorKind::TooDeep { limit: 3 });
        assert_eq!(
            error.to_string(),
            "[0][0][0]: value is nested deeper than the limit of 3 levels"
        );
    }

    #[test]
    fn default_depth_limit_is_64() {
        let limits = ValueLimits::default();
        assert!(nested(63, Value::Null).check(&limits).is_ok());
        let error = nested(64, Value::Null).check(&limits).unwrap_err();
        assert!(
            error
                .to_string()
                .ends_with("value is nested deeper than the limit of 64 levels"),
            "{error}"
        );
    }

    #[test]
    fn size_over_the_limit() {
        let value = Value::Bytes(vec![0; 9 * 1024 * 1024 - 2]);
        let error = value.check(&ValueLimits::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "value is 9437184 bytes, over the limit of 8388608 bytes"
        );
        let exactly = Value::Bytes(vec![0; DEFAULT_MAX_SIZE_BYTES - 2]);
        assert!(exactly.check(&ValueLimits::default()).is_ok());
    }

    #[test]
    fn field_names_are_checked_everywhere() {
        let value = object(&[(
            "user",
            object(&[("$foo", Value::Null), ("_ok", Value::Null)]),
        )]);
        let error = value.check(&ValueLimits::default()).unwrap_err();
        assert_eq!(
            error.with_root("args").to_string(),
            r#"field name "$foo" at args.user: field names may not start with "$""#
        );

        let in_array = Value::Array(vec![Value::Null, object(&[("", Value::Null)])]);
        assert_eq!(
            in_array
                .check(&ValueLimits::default())
                .unwrap_err()
                .to_string(),
            r#"field name "" at [1]: field names may not be empty"#
        );
    }

    #[test]
    fn underscore_names_are_allowed_in_values() {
        let value = Value::Object(BTreeMap::from([("_id".to_owned(), Value::Null)]));
        assert!(value.check(&ValueLimits::default()).is_ok());
    }
}
