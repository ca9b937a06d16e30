//! The readable form of a validator, for listings and messages: TypeScript-like, in the
//! words of Kiln's document validators (`kiln.toml`).
//!
//! | validator | reads |
//! |---|---|
//! | `v.object({name: v.string(), n: v.optional(v.float64())})` | `{n?: float64, name: string}` |
//! | `v.array(v.int64())` | `array<int64>` |
//! | `v.record(v.string(), v.any())` | `record<string, any>` |
//! | `v.id("users")` | `id<users>` |
//! | `v.union(v.string(), v.null())` | `string \| null` |
//! | `v.literal("a")`, `v.literal(1)`, `v.literal(1n)`, `v.literal(true)` | `"a"`, `1`, `1n`, `true` |
//! | `v.union()` | `never` |
//!
//! Fields appear in name order; field names that are not identifiers are quoted.

use std::fmt;

use super::Validator;
use crate::numbers::format_number;
use crate::value::Value;

impl fmt::Display for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Validator::Any => f.write_str("any"),
            Validator::Null => f.write_str("null"),
            Validator::Boolean => f.write_str("boolean"),
            Validator::String => f.write_str("string"),
            Validator::Bytes => f.write_str("bytes"),
            Validator::Float64 => f.write_str("float64"),
            Validator::Int64 => f.write_str("int64"),
            Validator::Literal(value) => match value {
                Value::String(text) => write!(f, "{}", serde_json::Value::from(text.as_str())),
                Value::Float64(n) => f.write_str(&format_number(*n)),
                Value::Int64(n) => write!(f, "{n}n"),
                Value::Boolean(b) => write!(f, "{b}"),
                other => f.write_str(other.type_name()),
            },
            Validator::Id(table) => write!(f, "id<{table}>"),
            Validator::Array(element) => write!(f, "array<{element}>"),
            Validator::Record { keys, values } => write!(f, "record<{keys}, {values}>"),
            Validator::Object(fields) => {
                f.write_str("{")?;
                for (index, (name, field)) in fields.iter().enumerate() {
                    if index > 0 {
                        f.write_str(", ")?;
                    }
                    if is_identifier(name) {
                        f.write_str(name)?;
                    } else {
                        write!(f, "{}", serde_json::Value::from(name.as_str()))?;
                    }
                    let optional = if field.optional { "?" } else { "" };
                    write!(f, "{optional}: {}", field.validator)?;
                }
                f.write_str("}")
            }
            Validator::Union(members) if members.is_empty() => f.write_str("never"),
            Validator::Union(members) => {
                for (index, member) in members.iter().enumerate() {
                    if index > 0 {
                        f.write_str(" | ")?;
                    }
                    write!(f, "{member}")?;
                }
                Ok(())
            }
        }
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

#[cfg(test)]
mod tests {
    use super::super::FieldValidator;
    use super::*;

    #[test]
    fn reads_like_a_type() {
        let validator = Validator::object([
            ("name", FieldValidator::required(Validator::String)),
            ("count", FieldValidator::optional(Validator::Float64)),
            (
                "tags",
                FieldValidator::required(Validator::array(Validator::union([
                    Validator::Int64,
                    Validator::Null,
                ]))),
            ),
            (
                "first name",
                FieldValidator::required(Validator::record(
                    Validator::Id("users".into()),
                    Validator::Any,
                )),
            ),
        ]);
        assert_eq!(
            validator.to_string(),
            r#"{count?: float64, "first name": record<id<users>, any>, name: string, tags: array<int64 | null>}"#
        );
        let literals: Vec<String> = [
            Value::from("a\"b"),
            Value::Float64(1.5),
            Value::Float64(8000.0),
            Value::Int64(-3),
            Value::Boolean(true),
        ]
        .into_iter()
        .map(|value| Validator::Literal(value).to_string())
        .collect();
        assert_eq!(literals, [r#""a\"b""#, "1.5", "8000", "-3n", "true"]);
        assert_eq!(Validator::Union(vec![]).to_string(), "never");
        assert_eq!(Validator::object::<&str>([]).to_string(), "{}");
    }
}
