//! The rules for the names of an object's fields. There are two sets: values in general
//! (function arguments and results) may use any non-empty printable-ASCII name not starting
//! with `$` (which Convex JSON reserves for its `$integer`/`$float`/`$bytes` wrappers);
//! documents additionally reserve names starting with `_` for system fields like `_id`.

use std::fmt;

use crate::error::{ValueError, ValueErrorKind};

/// The longest field name allowed, in characters (all of which are ASCII, so also bytes).
pub const MAX_FIELD_NAME_LENGTH: usize = 1024;

/// Which field-name rule a name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldNameError {
    /// The name is empty.
    Empty,
    /// The name is longer than [`MAX_FIELD_NAME_LENGTH`].
    TooLong {
        /// The name's length in characters.
        len: usize,
    },
    /// The name has a character outside printable ASCII (`' '..='~'`).
    NotPrintableAscii {
        /// The first such character.
        found: char,
    },
    /// The name starts with `$`.
    DollarPrefix,
    /// The name starts with `_` where only system fields may.
    UnderscorePrefix,
}

impl fmt::Display for FieldNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldNameError::Empty => f.write_str("field names may not be empty"),
            FieldNameError::TooLong { len } => write!(
                f,
                "field names may be at most {MAX_FIELD_NAME_LENGTH} characters long, this one has {len}"
            ),
            FieldNameError::NotPrintableAscii { found } => write!(
                f,
                "field names may only contain printable ASCII characters, found {found:?}"
            ),
            FieldNameError::DollarPrefix => f.write_str(r#"field names may not start with "$""#),
            FieldNameError::UnderscorePrefix => f.write_str(
                r#"field names may not start with "_", which is reserved for system fields"#,
            ),
        }
    }
}

/// Checks a field name against Convex's rules.
///
/// Every name must be non-empty, at most [`MAX_FIELD_NAME_LENGTH`] characters of printable
/// ASCII, and must not start with `$`. With `allow_system` false it also must not start with
/// `_`: pass false for the user-written fields of a document and true for everything else
/// (function arguments and results, and a document's own system fields). [`Value::check`]
/// applies the permissive rules (`allow_system` true) to every object it contains.
///
/// The error has an empty path; callers that know where the name sits add it.
///
/// [`Value::check`]: crate::Value::check
pub fn check_field_name(name: &str, allow_system: bool) -> Result<(), ValueError> {
    field_name_problem(name, allow_system).map_or(Ok(()), |reason| {
        Err(ValueError::new(ValueErrorKind::InvalidFieldName {
            name: name.to_owned(),
            reason,
        }))
    })
}

pub(crate) fn field_name_problem(name: &str, allow_system: bool) -> Option<FieldNameError> {
    if name.is_empty() {
        return Some(FieldNameError::Empty);
    }
    if let Some(found) = name.chars().find(|c| !matches!(c, ' '..='~')) {
        return Some(FieldNameError::NotPrintableAscii { found });
    }
    // Every character is ASCII now, so the length in bytes is the length in characters.
    if name.len() > MAX_FIELD_NAME_LENGTH {
        return Some(FieldNameError::TooLong { len: name.len() });
    }
    if name.starts_with('$') {
        return Some(FieldNameError::DollarPrefix);
    }
    if !allow_system && name.starts_with('_') {
        return Some(FieldNameError::UnderscorePrefix);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str, allow_system: bool) -> Option<FieldNameError> {
        match check_field_name(name, allow_system) {
            Ok(()) => None,
            Err(error) => match error.kind() {
                ValueErrorKind::InvalidFieldName { reason, .. } => Some(*reason),
                other => panic!("unexpected error kind {other:?}"),
            },
        }
    }

    #[test]
    fn accepts_ordinary_names() {
        for name in ["a", "name", "with space", "a.b", "~!@#", &"x".repeat(1024)] {
            assert_eq!(reason(name, false), None, "{name}");
        }
    }

    #[test]
    fn underscore_needs_allow_system() {
        assert_eq!(reason("_id", true), None);
        assert_eq!(reason("_id", false), Some(FieldNameError::UnderscorePrefix));
        assert_eq!(reason("a_b", false), None);
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(reason("", true), Some(FieldNameError::Empty));
        assert_eq!(reason("$foo", true), Some(FieldNameError::DollarPrefix));
        assert_eq!(
            reason(&"x".repeat(1025), true),
            Some(FieldNameError::TooLong { len: 1025 })
        );
        assert_eq!(
            reason("tab\there", true),
            Some(FieldNameError::NotPrintableAscii { found: '\t' })
        );
        assert_eq!(
            reason("café", true),
            Some(FieldNameError::NotPrintableAscii { found: 'é' })
        );
    }

    #[test]
    fn messages_are_specific() {
        assert_eq!(
            check_field_name("$foo", true).unwrap_err().to_string(),
            r#"field name "$foo": field names may not start with "$""#
        );
        assert_eq!(
            check_field_name("a\u{7}", true).unwrap_err().to_string(),
            r#"field name "a\u{7}": field names may only contain printable ASCII characters, found '\u{7}'"#
        );
    }
}
