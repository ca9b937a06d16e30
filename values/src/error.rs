//! [`ValueError`], the one error type of this crate, and the path that locates an error inside
//! a value. Errors are built where the problem is found and get their path while they
//! propagate back up: each container prepends its own segment, so a successful walk never
//! pays for path bookkeeping.

use std::fmt;

use crate::field_names::FieldNameError;

/// One step of a path into a value: a field of an object or an element of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// The field with this name.
    Field(String),
    /// The element at this index.
    Index(usize),
    /// A step that could not be named (serde reports this for a map key that is not a string).
    Unknown,
}

/// What went wrong, without where; see [`ValueError`] for the where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueErrorKind {
    /// The value is nested more than `limit` levels deep.
    TooDeep {
        /// The nesting limit that was exceeded.
        limit: usize,
    },
    /// The value's estimated size ([`Value::size_bytes`](crate::Value::size_bytes)) is over
    /// the limit.
    TooLarge {
        /// The value's size in bytes.
        size: usize,
        /// The size limit in bytes.
        limit: usize,
    },
    /// JSON text holds more than `limit` values (scalars, arrays and objects).
    TooManyElements {
        /// The most values allowed.
        limit: usize,
    },
    /// JSON text was refused before parsing because it is too long.
    TextTooLarge {
        /// The text's length in bytes.
        len: usize,
        /// The most that is parsed.
        limit: usize,
    },
    /// An object has a field name that the rules do not allow.
    InvalidFieldName {
        /// The offending name.
        name: String,
        /// Which rule it breaks.
        reason: FieldNameError,
    },
    /// JSON that parsed but is not a valid encoding of a value, such as a malformed
    /// `{"$integer": …}`.
    InvalidEncoding(String),
    /// Text that is not JSON at all.
    InvalidJson(String),
    /// A serde (de)serialization error: a type mismatch, a missing field, an integer out of
    /// range, or a custom error from a `Serialize`/`Deserialize` impl.
    Serde(String),
    /// The value does not match a [`Validator`](crate::Validator): `expected int64, got
    /// string`, `missing required field "name"`, ...
    DoesNotMatch(String),
}

impl fmt::Display for ValueErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueErrorKind::TooDeep { limit } => {
                write!(f, "value is nested deeper than the limit of {limit} levels")
            }
            ValueErrorKind::TooLarge { size, limit } => {
                write!(f, "value is {size} bytes, over the limit of {limit} bytes")
            }
            ValueErrorKind::TooManyElements { limit } => {
                write!(f, "value holds more than the limit of {limit} elements")
            }
            ValueErrorKind::TextTooLarge { len, limit } => {
                write!(
                    f,
                    "JSON text is {len} bytes, over the limit of {limit} bytes"
                )
            }
            ValueErrorKind::InvalidFieldName { name, reason } => {
                write!(f, "field name {}: {reason}", DisplayName(name))
            }
            ValueErrorKind::InvalidEncoding(message)
            | ValueErrorKind::InvalidJson(message)
            | ValueErrorKind::Serde(message)
            | ValueErrorKind::DoesNotMatch(message) => f.write_str(message),
        }
    }
}

/// An error from encoding, decoding, validating or (de)serializing a [`Value`](crate::Value).
///
/// It carries the [`kind`](Self::kind) of problem and, where known, the path to the part of
/// the value at fault, which its message names, e.g. `args.user.age: invalid type: …` or
/// `field name "$foo" at args.user: field names may not start with "$"`. A path starts at a
/// *root*, empty unless given (then paths read `.user.age`); callers that know what the value
/// is (say, a function's arguments) set it with [`with_root`](Self::with_root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    kind: ValueErrorKind,
    root: String,
    path: Vec<PathSegment>,
}

impl ValueError {
    /// An error with an empty path.
    pub fn new(kind: ValueErrorKind) -> Self {
        ValueError {
            kind,
            root: String::new(),
            path: Vec::new(),
        }
    }

    pub(crate) fn encoding(message: impl Into<String>) -> Self {
        Self::new(ValueErrorKind::InvalidEncoding(message.into()))
    }

    pub(crate) fn serde(message: impl fmt::Display) -> Self {
        Self::new(ValueErrorKind::Serde(message.to_string()))
    }

    /// What went wrong.
    pub fn kind(&self) -> &ValueErrorKind {
        &self.kind
    }

    /// The steps from the root to the part of the value at fault; empty when the fault is the
    /// whole value or its place is unknown.
    pub fn path_segments(&self) -> &[PathSegment] {
        &self.path
    }

    /// The root followed by the path, as the message shows it: e.g. `args.user.tags[2]`, or
    /// `.user.tags[2]` with no root. Field names that are not identifiers are quoted:
    /// `args["first name"]`.
    pub fn path(&self) -> String {
        let mut out = self.root.clone();
        for segment in &self.path {
            match segment {
                PathSegment::Field(name) if is_identifier(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                PathSegment::Field(name) => out.push_str(&format!("[{name:?}]")),
                PathSegment::Index(index) => out.push_str(&format!("[{index}]")),
                PathSegment::Unknown => out.push_str("[?]"),
            }
        }
        out
    }

    /// Names what the path starts from, e.g. `"args"`, replacing any earlier root.
    pub fn with_root(mut self, root: &str) -> Self {
        root.clone_into(&mut self.root);
        self
    }

    /// Records that the error happened inside `segment`; called by each enclosing container
    /// as the error propagates outwards, so segments arrive innermost first.
    pub(crate) fn inside(mut self, segment: PathSegment) -> Self {
        self.path.insert(0, segment);
        self
    }

    pub(crate) fn in_field(self, name: &str) -> Self {
        self.inside(PathSegment::Field(name.to_owned()))
    }

    pub(crate) fn at_index(self, index: usize) -> Self {
        self.inside(PathSegment::Index(index))
    }

    /// Sets the whole path at once (for errors whose path was tracked elsewhere).
    pub(crate) fn with_path(mut self, path: Vec<PathSegment>) -> Self {
        self.path = path;
        self
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path();
        match (&self.kind, path.is_empty()) {
            (_, true) => write!(f, "{}", self.kind),
            // The path of a field-name error is the object holding the field; reading
            // `field name "x" at args.user` keeps the name first, where the eye looks.
            (ValueErrorKind::InvalidFieldName { name, reason }, false) => {
                write!(f, "field name {} at {path}: {reason}", DisplayName(name))
            }
            (kind, false) => write!(f, "{path}: {kind}"),
        }
    }
}

impl std::error::Error for ValueError {}

impl serde::ser::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::serde(msg)
    }
}

impl serde::de::Error for ValueError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self::serde(msg)
    }
}

/// Converts the path serde_path_to_error tracked while (de)serializing into ours. An enum
/// variant is a step like a field, since that is how variants are stored: `{"Variant": …}`.
pub(crate) fn tracked_path(path: &serde_path_to_error::Path) -> Vec<PathSegment> {
    path.iter()
        .map(|segment| match segment {
            serde_path_to_error::Segment::Seq { index } => PathSegment::Index(*index),
            serde_path_to_error::Segment::Map { key }
            | serde_path_to_error::Segment::Enum { variant: key } => {
                PathSegment::Field(key.clone())
            }
            serde_path_to_error::Segment::Unknown => PathSegment::Unknown,
        })
        .collect()
}

/// Whether `name` reads unambiguously after a `.` in a path.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Shows a field name quoted and escaped, cut short if long: a name is refused for being over
/// 1024 characters, and repeating all of them would drown the message.
struct DisplayName<'a>(&'a str);

impl fmt::Display for DisplayName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        match self.0.char_indices().nth(SHOWN) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(
                f,
                "{:?}… ({} characters)",
                &self.0[..cut],
                self.0.chars().count()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_with_and_without_root() {
        let error = ValueError::encoding("bad")
            .at_index(3)
            .in_field("b")
            .in_field("a");
        assert_eq!(error.path(), ".a.b[3]");
        assert_eq!(error.to_string(), ".a.b[3]: bad");
        let error = error.with_root("args");
        assert_eq!(error.to_string(), "args.a.b[3]: bad");
        assert_eq!(
            ValueError::encoding("x").in_field("first name").path(),
            "[\"first name\"]"
        );
    }

    #[test]
    fn field_name_errors_put_the_name_first() {
        let error = ValueError::new(ValueErrorKind::InvalidFieldName {
            name: "$foo".into(),
            reason: FieldNameError::DollarPrefix,
        });
        assert_eq!(
            error.to_string(),
            r#"field name "$foo": field names may not start with "$""#
        );
        assert_eq!(
            error.in_field("user").with_root("args").to_string(),
            r#"field name "$foo" at args.user: field names may not start with "$""#
        );
    }

    #[test]
    fn long_names_are_cut_short() {
        let name = "a".repeat(2000);
        let shown = DisplayName(&name).to_string();
        assert!(shown.len() < 100, "{shown}");
        assert!(shown.ends_with("(2000 characters)"), "{shown}");
    }
}
