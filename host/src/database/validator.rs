//! Document validators: the optional `document` table of a `[tables.<name>]` section in
//! `kiln.toml`, checked on every write and, when it changes, against every stored
//! document before the deployment that declares it goes live.
//!
//! A validator maps each field to a type: `string`, `float64` (or `number`), `int64`,
//! `boolean`, `null`, `bytes`, `any`, `object`, `array`, `array<T>`, `id<table>`, unions
//! with `|`, and a trailing `?` for a field that may be absent. Like Convex's `v.object`,
//! a document may not have fields the validator does not name.
//!
//! Types nest at most `MAX_TYPE_DEPTH` deep (`array<array<...>>`): the parser and the
//! checker recurse once per level, so a deeper type from a hostile deploy would overflow
//! the stack instead of being refused.

use std::collections::BTreeMap;

use kiln_values::{Validator, Value};
use serde::{Deserialize, Serialize};

use super::id::DocumentId;

/// What a table's documents must look like.
#[derive(Clone, Debug, PartialEq)]
pub enum DocumentValidator {
    /// Field name → type expression, as written in kiln.toml.
    Fields(BTreeMap<String, String>),
    /// A Convex schema's `documentType` (Convex's validator JSON: an object, a union of
    /// objects, or any), as `defineSchema` in a pushed Convex app declares it.
    Convex(Validator),
}

/// How a [`DocumentValidator::Convex`] is stored: `{"$convex": <validator JSON>}`. No
/// kiln.toml field may be named `$convex`, and the fields form keeps its plain map, so
/// validators stored before this form existed read as they were.
const CONVEX_KEY: &str = "$convex";

impl Serialize for DocumentValidator {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            DocumentValidator::Fields(fields) => fields.serialize(serializer),
            DocumentValidator::Convex(validator) => {
                serde_json::json!({ CONVEX_KEY: validator.to_json() }).serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for DocumentValidator {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(deserializer)?;
        if let Some(validator) = json.as_object().and_then(|object| object.get(CONVEX_KEY)) {
            return Validator::from_json(validator)
                .map(DocumentValidator::Convex)
                .map_err(|err| serde::de::Error::custom(format!("invalid validator: {err}")));
        }
        serde_json::from_value(json)
            .map(DocumentValidator::Fields)
            .map_err(serde::de::Error::custom)
    }
}

/// How deep `array<...>` and `id<...>` may nest in one type. The default `max_value_depth`
/// (DESIGN.md section 1): no value a function stores nests deeper, so a deeper type
/// describes nothing useful.
pub const MAX_TYPE_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq)]
enum Type {
    Any,
    Null,
    Int64,
    Float64,
    Boolean,
    String,
    Bytes,
    Object,
    Array(Option<Box<Type>>),
    Id(String),
    Union(Vec<Type>),
}

/// Parses one type expression (without the optional `?`).
fn parse_type(text: &str) -> Result<Type, String> {
    let alternatives = split_top_level(text, '|');
    if alternatives.len() > 1 {
        return alternatives
            .iter()
            .map(|alt| parse_type(alt))
            .collect::<Result<_, _>>()
            .map(Type::Union);
    }
    let text = text.trim();
    if let Some(inner) = text
        .strip_prefix("array<")
        .and_then(|rest| rest.strip_suffix('>'))
    {
        return Ok(Type::Array(Some(Box::new(parse_type(inner)?))));
    }
    if let Some(table) = text
        .strip_prefix("id<")
        .and_then(|rest| rest.strip_suffix('>'))
    {
        return Ok(Type::Id(table.trim().to_string()));
    }
    Ok(match text {
        "any" => Type::Any,
        "null" => Type::Null,
        "int64" => Type::Int64,
        "float64" | "number" => Type::Float64,
        "boolean" => Type::Boolean,
        "string" => Type::String,
        "bytes" => Type::Bytes,
        "object" => Type::Object,
        "array" => Type::Array(None),
        other => {
            return Err(format!(
                "unknown type {other:?} (use string, float64, int64, boolean, null, bytes, any, object, array, array<T>, id<table>, A | B, and ? for optional)"
            ));
        }
    })
}

/// Splits on `separator` outside `<...>`.
fn split_top_level(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (index, c) in text.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            c if c == separator && depth == 0 => {
                parts.push(&text[start..index]);
                start = index + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// How deep `<...>` nests in `text`, found without recursion.
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in text.chars() {
        match c {
            '<' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            '>' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A field's type and whether it may be absent.
fn parse_field(text: &str) -> Result<(Type, bool), String> {
    // Checked before parsing: the parser recurses once per level (twice with unions).
    let depth = nesting_depth(text);
    if depth > MAX_TYPE_DEPTH {
        return Err(format!(
            "the type nests {depth} levels deep, over the limit of {MAX_TYPE_DEPTH} for types"
        ));
    }
    let text = text.trim();
    match text.strip_suffix('?') {
        Some(rest) => Ok((parse_type(rest)?, true)),
        None => Ok((parse_type(text)?, false)),
    }
}

impl DocumentValidator {
    /// Checks every type expression, naming the field at fault.
    pub fn validate(&self) -> Result<(), String> {
        let DocumentValidator::Fields(declared) = self else {
            // Parsed, and so checked, when it was read.
            return Ok(());
        };
        for (field, text) in declared {
            parse_field(text).map_err(|err| format!("field {field:?}: {err}"))?;
        }
        Ok(())
    }

    /// Checks a document's fields. `table_of` names the table an id belongs to.
    pub fn check(
        &self,
        fields: &BTreeMap<String, Value>,
        table_of: &dyn Fn(u32) -> Option<String>,
    ) -> Result<(), String> {
        let declared = match self {
            DocumentValidator::Fields(declared) => declared,
            DocumentValidator::Convex(validator) => {
                let document = Value::Object(fields.clone());
                let mut table_of_id = |text: &str| {
                    let id = DocumentId::decode(text).ok()?;
                    table_of(id.table_number)
                };
                return validator
                    .check(&document, "document", &mut table_of_id)
                    .map_err(|err| err.to_string());
            }
        };
        for (field, text) in declared {
            let (ty, optional) =
                parse_field(text).map_err(|err| format!("field {field:?}: {err}"))?;
            match fields.get(field) {
                None if optional => {}
                None => return Err(format!("missing required field {field:?}")),
                Some(value) => matches(&ty, value, table_of).map_err(|expected| {
                    format!(
                        "field {field:?}: expected {expected}, got {}",
                        describe(value)
                    )
                })?,
            }
        }
        if let Some(extra) = fields.keys().find(|name| !declared.contains_key(*name)) {
            return Err(format!(
                "unexpected field {extra:?} (the schema does not declare it)"
            ));
        }
        Ok(())
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) if s.len() <= 40 => format!("string {s:?}"),
        other => other.type_name().to_string(),
    }
}

/// `Ok` if `value` has type `ty`; otherwise what was expected, for the message.
fn matches(
    ty: &Type,
    value: &Value,
    table_of: &dyn Fn(u32) -> Option<String>,
) -> Result<(), String> {
    let ok = match (ty, value) {
        (Type::Any, _)
        | (Type::Null, Value::Null)
        | (Type::Int64, Value::Int64(_))
        | (Type::Float64, Value::Float64(_))
        | (Type::Boolean, Value::Boolean(_))
        | (Type::String, Value::String(_))
        | (Type::Bytes, Value::Bytes(_))
        | (Type::Object, Value::Object(_))
        | (Type::Array(None), Value::Array(_)) => true,
        (Type::Array(Some(element)), Value::Array(items)) => {
            for (position, item) in items.iter().enumerate() {
                matches(element, item, table_of)
                    .map_err(|expected| format!("[{position}] to be {expected}"))?;
            }
            true
        }
        (Type::Id(table), Value::String(text)) => DocumentId::decode(text)
            .ok()
            .and_then(|id| table_of(id.table_number))
            .is_some_and(|actual| &actual == table),
        (Type::Union(alternatives), _) => alternatives
            .iter()
            .any(|alt| matches(alt, value, table_of).is_ok()),
        _ => false,
    };
    if ok { Ok(()) } else { Err(name(ty)) }
}

fn name(ty: &Type) -> String {
    match ty {
        Type::Any => "any".into(),
        Type::Null => "null".into(),
        Type::Int64 => "int64".into(),
        Type::Float64 => "float64".into(),
        Type::Boolean => "boolean".into(),
        Type::String => "string".into(),
        Type::Bytes => "bytes".into(),
        Type::Object => "object".into(),
        Type::Array(None) => "array".into(),
        Type::Array(Some(element)) => format!("array<{}>", name(element)),
        Type::Id(table) => format!("an id of table {table:?}"),
        Type::Union(alternatives) => alternatives
            .iter()
            .map(name)
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator(fields: &[(&str, &str)]) -> DocumentValidator {
        DocumentValidator::Fields(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn document(fields: &[(&str, Value)]) -> BTreeMap<String, Value> {
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn no_tables(_: u32) -> Option<String> {
        None
    }

    #[test]
    fn documents_are_checked_field_by_field() {
        let v = validator(&[
            ("name", "string"),
            ("age", "int64?"),
            ("tags", "array<string>"),
            ("x", "null | float64"),
        ]);
        v.validate().unwrap();
        let ok = document(&[
            ("name", Value::from("ada")),
            ("tags", Value::Array(vec![Value::from("a")])),
            ("x", Value::Null),
        ]);
        assert_eq!(v.check(&ok, &no_tables), Ok(()));

        let wrong = document(&[
            ("name", Value::Int64(1)),
            ("tags", Value::Array(vec![])),
            ("x", Value::Null),
        ]);
        assert_eq!(
            v.check(&wrong, &no_tables),
            Err("field \"name\": expected string, got int64".into())
        );
        let missing = document(&[("tags", Value::Array(vec![])), ("x", Value::Null)]);
        assert_eq!(
            v.check(&missing, &no_tables),
            Err("missing required field \"name\"".into())
        );
        let mut extra = ok.clone();
        extra.insert("zzz".into(), Value::Null);
        assert!(
            v.check(&extra, &no_tables)
                .unwrap_err()
                .contains("unexpected field \"zzz\"")
        );
        let bad_element = document(&[
            ("name", Value::from("a")),
            ("tags", Value::Array(vec![Value::Int64(1)])),
            ("x", Value::Null),
        ]);
        assert_eq!(
            v.check(&bad_element, &no_tables),
            Err("field \"tags\": expected [0] to be string, got array".into())
        );
    }

    #[test]
    fn ids_must_name_the_declared_table() {
        let v = validator(&[("author", "id<users>")]);
        let id = DocumentId::generate(10_001).encode();
        let users = |number: u32| (number == 10_001).then(|| "users".to_string());
        let other = |_: u32| Some("posts".to_string());
        let doc = document(&[("author", Value::String(id))]);
        assert_eq!(v.check(&doc, &users), Ok(()));
        assert!(v.check(&doc, &other).is_err());
    }

    #[test]
    fn types_nest_at_most_max_type_depth_levels() {
        let nested =
            |depth: usize| format!("{}string{}", "array<".repeat(depth), ">".repeat(depth));
        let at_limit = validator(&[("deep", &nested(MAX_TYPE_DEPTH))]);
        at_limit.validate().unwrap();
        let mut value = Value::from("leaf");
        for _ in 0..MAX_TYPE_DEPTH {
            value = Value::Array(vec![value]);
        }
        let doc = document(&[("deep", value)]);
        assert_eq!(at_limit.check(&doc, &no_tables), Ok(()));

        let err = validator(&[("deep", &nested(MAX_TYPE_DEPTH + 1))])
            .validate()
            .unwrap_err();
        assert_eq!(
            err,
            "field \"deep\": the type nests 65 levels deep, over the limit of 64 for types"
        );
        // Deep enough to overflow any stack if it were parsed recursively.
        let err = validator(&[("deep", &format!("{}?", nested(100_000)))])
            .validate()
            .unwrap_err();
        assert!(err.contains("nests 100000 levels deep"), "{err}");
    }

    #[test]
    fn unknown_types_are_refused_by_field() {
        let err = validator(&[("n", "integer")]).validate().unwrap_err();
        assert!(
            err.starts_with("field \"n\": unknown type \"integer\""),
            "{err}"
        );
    }
}
