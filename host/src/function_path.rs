//! Function paths, and their canonical form `dir/module:function`.
//!
//! Accepted spellings (Convex's): `module` means `module:default`; a `.js` suffix on the
//! module is dropped (`messages.js:list`); `/api/run/` URLs use `/` before the function
//! (`dir/module/function`).

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

    /// Parses the tail of an `/api/run/` URL: `dir/module/function`; a single segment is a
    /// module's default function.
    pub fn from_url_path(path: &str) -> Result<Self, PathError> {
        let path = path.trim_matches('/');
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
