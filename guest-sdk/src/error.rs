//! The error a function returns to its caller: a message and optional application data,
//! like Convex's `ConvexError`.

use std::fmt;

use kiln_values::Value;

/// A function's failure as its caller sees it.
///
/// Any `std::error::Error` converts into it (so `?` works on library errors); use
/// [`Error::with_data`] to hand structured data to the caller (`errorData` on the wire).
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    message: String,
    data: Option<Value>,
}

impl Error {
    /// An error with a message only.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }

    /// An error carrying application data for the caller.
    pub fn with_data(message: impl Into<String>, data: impl Into<Value>) -> Self {
        Self {
            message: message.into(),
            data: Some(data.into()),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn data(&self) -> Option<&Value> {
        self.data.as_ref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// `Error` deliberately does not implement `std::error::Error`, so that this blanket
// conversion does not overlap with `From<T> for T` (the same trick as anyhow).
impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Self {
        Self::new(error.to_string())
    }
}
