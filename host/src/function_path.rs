//! Function paths, and their canonical form `dir/module:function`.
//!
//! Accepted spellings (Convex's): `module` means `module:default`; a `.js` suffix on the
//! module is dropped (`messages.js:list`); `/api/run/` URLs use `/` before the function
//! (`dir/module/function`) and may percent-encode any of it (`chat%2Fmessages/list`).

use std::fmt;

use crate::runtime::is_function_name;

/// A canonical function path: the module it lives in and its name there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FunctionPath {
    pub module: String,
    pub function: String,
}

/// Why a string is not a function path.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid function path {path:?}: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: String,
}

const DEFAULT_FUNCTION: &str = "default";
const MAX_MODULE_NAME_LEN: usize = 256;

impl FunctionPath {
    /// Parses `module`, `module:function`, `dir/module:function`, `module.js:function`.
    pub fn parse(path: &str) -> Result<Self, PathError> {
        let (module, function) = match path.rsplit_once(':') {
            Some((module, function)) => (module, function),
            None => (path, DEFAULT_FUNCTION),
        };
        Self::new(path, module, function)
    }

    /// Parses the tail of an `/api/run/` URL as it appears in the URL (percent-encoded):
    /// `dir/module/function`; a single segment is a module's default function. The tail is
    /// percent-decoded first, so `chat%2Fmessages/li%73t` is `chat/messages:list`.
    pub fn from_url_path(encoded: &str) -> Result<Self, PathError> {
        let decoded = percent_decode(encoded)?;
        let path = decoded.trim_matches('/');
        match path.rsplit_once('/') {
            Some((module, function)) => Self::new(path, module, function),
            None => Self::new(path, path, DEFAULT_FUNCTION),
        }
    }

    fn new(original: &str, module: &str, function: &str) -> Result<Self, PathError> {
        let error = |reason: String| PathError {
            path: original.to_string(),
            reason,
        };
        let module = module.strip_suffix(".js").unwrap_or(module);
        check_module_name(module).map_err(error)?;
        if !is_function_name(function) {
            return Err(error(format!(
                "{function:?} is not a function name (letters, digits and _, not starting with a digit)"
            )));
        }
        Ok(Self {
            module: module.to_string(),
            function: function.to_string(),
        })
    }
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits, or escapes that decode to
/// bytes that are not UTF-8, make the path invalid (never a lossy guess at what was meant).
fn percent_decode(encoded: &str) -> Result<String, PathError> {
    let error = |reason: &str| PathError {
        path: encoded.to_string(),
        reason: reason.to_string(),
    };
    let bytes = encoded.as_bytes();
    // The crate decodes leniently (a malformed escape stays as it is); refuse those first.
    let malformed = bytes.iter().enumerate().any(|(at, &byte)| {
        byte == b'%'
            && !bytes
                .get(at + 1..at + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(error(
            "invalid percent-encoding: every % must be followed by two hex digits",
        ));
    }
    percent_encoding::percent_decode(bytes)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| error("the percent-encoded bytes are not valid UTF-8"))
}

impl fmt::Display for FunctionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.module, self.function)
    }
}

/// A module name is a `/`-separated path of segments made of letters, digits, `_`, `-`
/// and `.`, not starting with `.`; it is the path prefix of its functions.
pub fn check_module_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the module name is empty".into());
    }
    if name.len() > MAX_MODULE_NAME_LEN {
        return Err(format!(
            "module names are at most {MAX_MODULE_NAME_LEN} characters"
        ));
    }
    for segment in name.split('/') {
        if segment.is_empty() || segment.starts_with('.') {
            return Err(format!(
                "{name:?} is not a module name: every /-separated part must be non-empty and not start with '.'"
            ));
        }
        if let Some(bad) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        {
            return Err(format!(
                "{name:?} is not a module name: {bad:?} is not allowed (use letters, digits, _, - and .)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(path: &str) -> String {
        FunctionPath::parse(path).unwrap().to_string()
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(parsed("hello"), "hello:default");
        assert_eq!(parsed("hello:greet"), "hello:greet");
        assert_eq!(parsed("hello.js:greet"), "hello:greet");
        assert_eq!(parsed("hello.js"), "hello:default");
        assert_eq!(parsed("chat/messages:list"), "chat/messages:list");
        assert_eq!(
            FunctionPath::from_url_path("chat/messages/list")
                .unwrap()
                .to_string(),
            "chat/messages:list"
        );
        assert_eq!(
            FunctionPath::from_url_path("hello").unwrap().to_string(),
            "hello:default"
        );
    }

    #[test]
    fn url_paths_are_percent_decoded() {
        for encoded in [
            "chat%2Fmessages/list",
            "chat%2fmessages%2Flist",
            "chat/messages/li%73t",
            "%63hat/messages/list",
        ] {
            assert_eq!(
                FunctionPath::from_url_path(encoded).unwrap().to_string(),
                "chat/messages:list",
                "{encoded}"
            );
        }
    }

    #[test]
    fn bad_percent_encoding_in_a_url_path_is_rejected() {
        for (encoded, reason) in [
            ("hello/gr%zzeet", "invalid percent-encoding"),
            ("hello/greet%", "invalid percent-encoding"),
            ("hello/greet%4", "invalid percent-encoding"),
            ("hello/gr%FFeet", "not valid UTF-8"),
            ("hello/%C3", "not valid UTF-8"),
        ] {
            let err = FunctionPath::from_url_path(encoded).unwrap_err();
            assert_eq!(err.path, encoded);
            assert!(err.reason.contains(reason), "{encoded}: {}", err.reason);
        }
        // Decoding can only yield a path the plain rules then judge: `%20` is a space.
        let err = FunctionPath::from_url_path("hello/gr%20eet").unwrap_err();
        assert!(err.reason.contains("not a function name"), "{}", err.reason);
    }

    #[test]
    fn malformed_paths_are_rejected_with_a_reason() {
        for bad in [
            "",
            ":greet",
            "hello:",
            "hello:1abc",
            "a//b:c",
            "../x:y",
            "hello:gr-eet",
            "he llo:x",
        ] {
            let err = FunctionPath::parse(bad).unwrap_err();
            assert_eq!(err.path, bad);
            assert!(!err.reason.is_empty());
        }
    }
}
