//! Convex's validator JSON, read and written: the text `exportArgs()` / `exportReturns()`
//! of `convex/server` return (`server/impl/registration_impl.js`, `convex@1.48.0`) and the
//! Rust SDK emits.
//!
//! ```text
//! {"type": "object", "value": {"name": {"fieldType": {"type": "string"}, "optional": false}}}
//! ```
//!
//! Types: `any`, `null`, `boolean`, `string`, `bytes`, `number` (also read as `float64`),
//! `bigint` (also read as `int64`, and `commitTs`, which accepts any int64), `literal`
//! (`value`: Convex JSON), `id` (`tableName`), `array` (`value`), `record` (`keys`,
//! `values`: a field type that may not be optional), `object` (`value`: name → `{fieldType,
//! optional}`), `union` (`value`: a list). The backend's legacy `map` and `set` read as
//! `any`, as Convex reads them. Written with the names the JavaScript library writes.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value as Json, json};

use super::{FieldValidator, MAX_VALIDATOR_DEPTH, MAX_VALIDATOR_JSON_BYTES, Validator};
use crate::field_names::check_field_name;
use crate::value::Value;

/// Why validator JSON was refused, with where in the validator: `at .value.age.fieldType:
/// unknown validator type "integer"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValidator {
    /// Where, as a path of JSON keys and list indexes from the top; empty at the top.
    at: String,
    problem: String,
}

impl InvalidValidator {
    fn new(at: &str, problem: impl Into<String>) -> Self {
        Self {
            at: at.to_owned(),
            problem: problem.into(),
        }
    }

    /// What is wrong, without where.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for InvalidValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at.is_empty() {
            f.write_str(&self.problem)
        } else {
            write!(f, "at {}: {}", self.at, self.problem)
        }
    }
}

impl std::error::Error for InvalidValidator {}

impl Validator {
    /// Parses validator JSON text, refusing text over [`MAX_VALIDATOR_JSON_BYTES`] and
    /// validators nested deeper than [`MAX_VALIDATOR_DEPTH`].
    pub fn from_json_str(text: &str) -> Result<Validator, InvalidValidator> {
        Self::parse_optional(text)?.ok_or_else(|| {
            InvalidValidator::new("", "expected a validator object, got null".to_string())
        })
    }

    /// Parses the text of `exportArgs()` / `exportReturns()`, where JSON `null` means "no
    /// validator" (what `exportReturns()` returns for a function without `returns`).
    pub fn parse_optional(text: &str) -> Result<Option<Validator>, InvalidValidator> {
        if text.len() > MAX_VALIDATOR_JSON_BYTES {
            return Err(InvalidValidator::new(
                "",
                format!(
                    "the validator is {} bytes of JSON, over the limit of {MAX_VALIDATOR_JSON_BYTES} bytes",
                    text.len()
                ),
            ));
        }
        let json: Json = serde_json::from_str(text).map_err(|err| {
            let problem = if err.to_string().contains("recursion limit") {
                format!("the validator nests deeper than the limit of {MAX_VALIDATOR_DEPTH} levels")
            } else {
                format!("invalid JSON: {err}")
            };
            InvalidValidator::new("", problem)
        })?;
        match json {
            Json::Null => Ok(None),
            json => Self::from_json(&json).map(Some),
        }
    }

    /// Reads a validator from parsed JSON.
    pub fn from_json(json: &Json) -> Result<Validator, InvalidValidator> {
        parse(json, 1, &mut String::new())
    }

    /// The validator as Convex's validator JSON, with the type names the JavaScript
    /// library writes (`number`, `bigint`).
    pub fn to_json(&self) -> Json {
        match self {
            Validator::Any => json!({"type": "any"}),
            Validator::Null => json!({"type": "null"}),
            Validator::Boolean => json!({"type": "boolean"}),
            Validator::String => json!({"type": "string"}),
            Validator::Bytes => json!({"type": "bytes"}),
            Validator::Float64 => json!({"type": "number"}),
            Validator::Int64 => json!({"type": "bigint"}),
            Validator::Literal(value) => {
                json!({"type": "literal", "value": value.to_convex_json()})
            }
            Validator::Id(table) => json!({"type": "id", "tableName": table}),
            Validator::Array(element) => json!({"type": "array", "value": element.to_json()}),
            Validator::Record { keys, values } => json!({
                "type": "record",
                "keys": keys.to_json(),
                "values": {"fieldType": values.to_json(), "optional": false},
            }),
            Validator::Object(fields) => {
                let fields: Map<String, Json> = fields
                    .iter()
                    .map(|(name, field)| {
                        let field = json!({
                            "fieldType": field.validator.to_json(),
                            "optional": field.optional,
                        });
                        (name.clone(), field)
                    })
                    .collect();
                json!({"type": "object", "value": fields})
            }
            Validator::Union(members) => json!({
                "type": "union",
                "value": members.iter().map(Validator::to_json).collect::<Vec<_>>(),
            }),
        }
    }

    /// [`to_json`](Self::to_json) as compact text.
    pub fn to_json_string(&self) -> String {
        self.to_json().to_string()
    }
}

/// Parses `json`, a validator at nesting `level`, found at `at` (extended in place while
/// descending and restored on the way back, so a success builds no strings).
fn parse(json: &Json, level: usize, at: &mut String) -> Result<Validator, InvalidValidator> {
    if level > MAX_VALIDATOR_DEPTH {
        return Err(InvalidValidator::new(
            at,
            format!("the validator nests deeper than the limit of {MAX_VALIDATOR_DEPTH} levels"),
        ));
    }
    let Json::Object(object) = json else {
        return Err(InvalidValidator::new(
            at,
            format!(
                "expected a validator object, got {}",
                crate::json_type_name(json)
            ),
        ));
    };
    let kind = match object.get("type") {
        Some(Json::String(kind)) => kind.as_str(),
        Some(other) => {
            return Err(InvalidValidator::new(
                at,
                format!(
                    "\"type\" must be a string, got {}",
                    crate::json_type_name(other)
                ),
            ));
        }
        None => return Err(InvalidValidator::new(at, "missing \"type\"")),
    };
    let validator = match kind {
        "any" | "map" | "set" => Validator::Any,
        "null" => Validator::Null,
        "boolean" => Validator::Boolean,
        "string" => Validator::String,
        "bytes" => Validator::Bytes,
        "number" | "float64" => Validator::Float64,
        "bigint" | "int64" | "commitTs" => Validator::Int64,
        "literal" => Validator::Literal(parse_literal(member(object, "value", at)?, at)?),
        "id" => match member(object, "tableName", at)? {
            Json::String(table) if !table.is_empty() => Validator::Id(table.clone()),
            other => {
                return Err(InvalidValidator::new(
                    at,
                    format!(
                        "\"tableName\" must be a non-empty string, got {}",
                        crate::json_type_name(other)
                    ),
                ));
            }
        },
        "array" => {
            let element = member(object, "value", at)?;
            Validator::array(descend(at, ".value", |at| parse(element, level + 1, at))?)
        }
        "record" => parse_record(object, level, at)?,
        "object" => {
            let Json::Object(fields) = member(object, "value", at)? else {
                return Err(InvalidValidator::new(
                    at,
                    "\"value\" of an object validator must be an object of fields",
                ));
            };
            let mut parsed = BTreeMap::new();
            for (name, field) in fields {
                check_field_name(name, true)
                    .map_err(|err| InvalidValidator::new(at, format!("invalid field: {err}")))?;
                let segment = format!(".value.{name}");
                let field = descend(at, &segment, |at| parse_field(field, level, at))?;
                parsed.insert(name.clone(), field);
            }
            Validator::Object(parsed)
        }
        "union" => {
            let Json::Array(members) = member(object, "value", at)? else {
                return Err(InvalidValidator::new(
                    at,
                    "\"value\" of a union validator must be a list of validators",
                ));
            };
            let mut parsed = Vec::with_capacity(members.len());
            for (index, member) in members.iter().enumerate() {
                let segment = format!(".value[{index}]");
                parsed.push(descend(at, &segment, |at| parse(member, level + 1, at))?);
            }
            Validator::Union(parsed)
        }
        other => {
            return Err(InvalidValidator::new(
                at,
                format!(
                    "unknown validator type {other:?} (expected any, null, boolean, string, bytes, \
                     number, bigint, literal, id, array, record, object or union)"
                ),
            ));
        }
    };
    Ok(validator)
}

/// `{"fieldType": validator, "optional": bool}`, the validator one level down.
fn parse_field(
    json: &Json,
    level: usize,
    at: &mut String,
) -> Result<FieldValidator, InvalidValidator> {
    let Json::Object(object) = json else {
        return Err(InvalidValidator::new(
            at,
            format!(
                "expected {{\"fieldType\": ..., \"optional\": ...}}, got {}",
                crate::json_type_name(json)
            ),
        ));
    };
    let optional = match object.get("optional") {
        None => false,
        Some(Json::Bool(optional)) => *optional,
        Some(other) => {
            return Err(InvalidValidator::new(
                at,
                format!(
                    "\"optional\" must be a boolean, got {}",
                    crate::json_type_name(other)
                ),
            ));
        }
    };
    let field_type = member(object, "fieldType", at)?;
    let validator = descend(at, ".fieldType", |at| parse(field_type, level + 1, at))?;
    Ok(FieldValidator {
        validator,
        optional,
    })
}

fn parse_record(
    object: &Map<String, Json>,
    level: usize,
    at: &mut String,
) -> Result<Validator, InvalidValidator> {
    let keys = member(object, "keys", at)?;
    let keys = descend(at, ".keys", |at| parse(keys, level + 1, at))?;
    if !is_record_key(&keys) {
        return Err(InvalidValidator::new(
            at,
            "record keys must be string, an id, or a union of those (field names are strings)",
        ));
    }
    let values = member(object, "values", at)?;
    let values = descend(at, ".values", |at| parse_field(values, level, at))?;
    if values.optional {
        return Err(InvalidValidator::new(
            at,
            "record values may not be optional",
        ));
    }
    Ok(Validator::record(keys, values.validator))
}

/// What Convex accepts as the keys of a record: strings and ids, not string literals.
fn is_record_key(keys: &Validator) -> bool {
    match keys {
        Validator::String | Validator::Id(_) => true,
        Validator::Union(members) => !members.is_empty() && members.iter().all(is_record_key),
        _ => false,
    }
}

fn parse_literal(json: &Json, at: &str) -> Result<Value, InvalidValidator> {
    let value = Value::from_convex_json(json.clone())
        .map_err(|err| InvalidValidator::new(at, format!("invalid literal: {err}")))?;
    match value {
        Value::String(_) | Value::Float64(_) | Value::Int64(_) | Value::Boolean(_) => Ok(value),
        other => Err(InvalidValidator::new(
            at,
            format!(
                "a literal must be a string, number, bigint or boolean, got {}",
                other.type_name()
            ),
        )),
    }
}

fn member<'a>(
    object: &'a Map<String, Json>,
    name: &str,
    at: &str,
) -> Result<&'a Json, InvalidValidator> {
    object
        .get(name)
        .ok_or_else(|| InvalidValidator::new(at, format!("missing {name:?}")))
}

/// Runs `parse` with `segment` appended to the location.
fn descend<T>(
    at: &mut String,
    segment: &str,
    parse: impl FnOnce(&mut String) -> Result<T, InvalidValidator>,
) -> Result<T, InvalidValidator> {
    let len = at.len();
    at.push_str(segment);
    let result = parse(at);
    at.truncate(len);
    result
}

impl serde::Serialize for Validator {
    /// As Convex's validator JSON, so a stored validator reads like the one deployed.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Validator {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Json::deserialize(deserializer)?;
        Validator::from_json(&json).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Validator, String> {
        Validator::from_json_str(text).map_err(|err| err.to_string())
    }

    #[test]
    fn reads_what_the_javascript_library_writes() {
        // v.object({name: v.string(), age: v.optional(v.float64()), tags: v.array(v.int64())})
        let text = r#"{"type":"object","value":{
            "name":{"fieldType":{"type":"string"},"optional":false},
            "age":{"fieldType":{"type":"number"},"optional":true},
            "tags":{"fieldType":{"type":"array","value":{"type":"bigint"}},"optional":false}}}"#;
        let validator = parse_text(text).unwrap();
        assert_eq!(
            validator,
            Validator::object([
                ("name", FieldValidator::required(Validator::String)),
                ("age", FieldValidator::optional(Validator::Float64)),
                (
                    "tags",
                    FieldValidator::required(Validator::array(Validator::Int64))
                ),
            ])
        );
        let kinds = [
            (r#"{"type":"any"}"#, Validator::Any),
            (r#"{"type":"null"}"#, Validator::Null),
            (r#"{"type":"boolean"}"#, Validator::Boolean),
            (r#"{"type":"bytes"}"#, Validator::Bytes),
            (r#"{"type":"float64"}"#, Validator::Float64),
            (r#"{"type":"int64"}"#, Validator::Int64),
            (r#"{"type":"commitTs"}"#, Validator::Int64),
            (r#"{"type":"map"}"#, Validator::Any),
            (
                r#"{"type":"id","tableName":"users"}"#,
                Validator::Id("users".into()),
            ),
            (
                r#"{"type":"literal","value":"a"}"#,
                Validator::Literal(Value::from("a")),
            ),
            (
                r#"{"type":"literal","value":{"$integer":"BQAAAAAAAAA="}}"#,
                Validator::Literal(Value::Int64(5)),
            ),
            (
                r#"{"type":"literal","value":2.5}"#,
                Validator::Literal(Value::Float64(2.5)),
            ),
            (
                r#"{"type":"union","value":[{"type":"string"},{"type":"null"}]}"#,
                Validator::Union(vec![Validator::String, Validator::Null]),
            ),
            (
                r#"{"type":"record","keys":{"type":"string"},"values":{"fieldType":{"type":"number"},"optional":false}}"#,
                Validator::record(Validator::String, Validator::Float64),
            ),
        ];
        for (text, expected) in kinds {
            assert_eq!(parse_text(text).unwrap(), expected, "{text}");
        }
        // exportReturns() of a function without `returns`.
        assert_eq!(Validator::parse_optional("null").unwrap(), None);
    }

    #[test]
    fn writes_what_the_javascript_library_writes() {
        let validator = Validator::object([
            ("n", FieldValidator::optional(Validator::Float64)),
            ("i", FieldValidator::required(Validator::Int64)),
        ]);
        assert_eq!(
            validator.to_json_string(),
            r#"{"type":"object","value":{"i":{"fieldType":{"type":"bigint"},"optional":false},"n":{"fieldType":{"type":"number"},"optional":true}}}"#
        );
        assert_eq!(
            Validator::Literal(Value::Int64(5)).to_json_string(),
            r#"{"type":"literal","value":{"$integer":"BQAAAAAAAAA="}}"#
        );
    }

    #[test]
    fn malformed_validators_say_where_and_what() {
        let cases = [
            ("5", "expected a validator object, got a number"),
            (r#"{"value":1}"#, "missing \"type\""),
            (
                r#"{"type":"integer"}"#,
                "unknown validator type \"integer\"",
            ),
            (
                r#"{"type":"object","value":{"age":{"fieldType":{"type":"integer"},"optional":false}}}"#,
                "at .value.age.fieldType: unknown validator type \"integer\"",
            ),
            (
                r#"{"type":"union","value":[{"type":"string"},{"type":"id"}]}"#,
                "at .value[1]: missing \"tableName\"",
            ),
            (
                r#"{"type":"record","keys":{"type":"number"},"values":{"fieldType":{"type":"number"}}}"#,
                "record keys must be string",
            ),
            (
                r#"{"type":"record","keys":{"type":"string"},"values":{"fieldType":{"type":"number"},"optional":true}}"#,
                "record values may not be optional",
            ),
            (
                r#"{"type":"literal","value":[1]}"#,
                "a literal must be a string, number, bigint or boolean, got array",
            ),
            (
                r#"{"type":"object","value":{"$x":{"fieldType":{"type":"any"}}}}"#,
                "invalid field: field name \"$x\"",
            ),
            ("{oops", "invalid JSON"),
        ];
        for (text, expected) in cases {
            let err = parse_text(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |depth: usize| {
            let mut text = r#"{"type":"string"}"#.to_string();
            for _ in 1..depth {
                text = format!(r#"{{"type":"array","value":{text}}}"#);
            }
            text
        };
        let at_limit = parse_text(&nested(MAX_VALIDATOR_DEPTH)).unwrap();
        assert_eq!(at_limit.depth(), MAX_VALIDATOR_DEPTH);
        let err = parse_text(&nested(MAX_VALIDATOR_DEPTH + 1)).unwrap_err();
        assert!(
            err.ends_with("nests deeper than the limit of 32 levels"),
            "{err}"
        );
        // Far deeper than any stack would survive if parsed recursively without a bound.
        let err = parse_text(&nested(10_000)).unwrap_err();
        assert!(err.contains("nests deeper than the limit"), "{err}");
        let huge = format!(
            r#"{{"type":"literal","value":"{}"}}"#,
            "x".repeat(MAX_VALIDATOR_JSON_BYTES)
        );
        assert!(parse_text(&huge).unwrap_err().contains("over the limit"));
    }
}
