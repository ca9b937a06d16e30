//! Filter expressions: the predicate of a query's `.filter(q => ...)`, evaluated by the host
//! against each document the query reads.
//!
//! # The JSON form
//!
//! The guest sends the expression as JSON, in the shape Convex's JS filter builder
//! serializes to (`npm-packages/convex/src/server/impl/filter_builder_impl.ts`) and Convex's
//! backend parses (`crates/common/src/json/expression.rs`). Every node is an object with
//! exactly one key, the operator:
//!
//! | JSON                                   | meaning                                    |
//! |----------------------------------------|--------------------------------------------|
//! | `{"$field": "a.b"}`                    | the document's field (`_id`, `_creationTime` included) |
//! | `{"$literal": <Convex JSON>}`          | a constant; `{"$literal": {"$undefined": null}}` is undefined |
//! | `{"$eq": [l, r]}`, `$neq`, `$lt`, `$lte`, `$gt`, `$gte` | comparisons, exactly two operands |
//! | `{"$add": [l, r]}`, `$sub`, `$mul`, `$div`, `$mod` | arithmetic, exactly two operands |
//! | `{"$neg": x}`, `{"$not": x}`           | one operand, bare (not in an array)        |
//! | `{"$and": [...]}`, `{"$or": [...]}`    | any number of operands, none included      |
//!
//! A field path is `.`-separated; leading and trailing dots are ignored and every part must
//! be an identifier (a letter or `_` first, then letters, digits and `_`, not only `_`, at
//! most 64 characters), as Convex's `FieldPath` requires.
//!
//! # Evaluation
//!
//! As Convex's `Expression::eval` (`crates/common/src/query.rs`):
//!
//! * a missing field is undefined (`None`), the smallest value;
//! * comparisons use Convex's total order ([`compare_values`]), so they work across types
//!   (`5n < 5.0` because int64 sorts before float64) and `$eq` of different types is false;
//! * arithmetic takes two int64s (checked: overflow and division by zero are errors) or two
//!   float64s (IEEE 754: `1.0 / 0.0` is infinity); any other pair, int64 with float64
//!   included, is an error naming both types;
//! * `$and`, `$or` and `$not` need booleans and any other operand is an error; `$and` and
//!   `$or` stop at the first operand that decides the result, so the later ones are not
//!   evaluated (`$and` of nothing is true, `$or` of nothing false);
//! * a document passes when the expression is `true`, fails when `false`, and any other
//!   result is an error ([`Expression::matches`]), as Convex's `Filter` query operator does.
//!
//! # Limits
//!
//! An expression may nest at most [`MAX_DEPTH`] levels and have at most [`MAX_NODES`]
//! nodes; parsing refuses anything bigger before building it, so neither parsing nor
//! evaluation can exhaust the stack. Literals are decoded with the default value limits.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

use kiln_values::{Value, ValueLimits, json_type_name};
use serde_json::Value as Json;

use super::documents::Document;
use super::index_key::compare_values;

/// The deepest an expression may nest: the top-level expression is at depth 1 and the
/// operands of an expression at depth *n* are at depth *n* + 1.
pub const MAX_DEPTH: usize = 64;

/// The most nodes (operators, fields and literals) an expression may have.
pub const MAX_NODES: usize = 4096;

/// The longest identifier a field path may contain, as Convex's `MAX_IDENTIFIER_LEN`.
const MAX_IDENTIFIER_LEN: usize = 64;

/// How much of a value an error message shows.
const MAX_SHOWN_CHARS: usize = 100;

/// Where errors place the top-level expression.
const ROOT: &str = "filter";

/// A parsed filter expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expression {
    /// A field of the document: the normalized path (`a.b`), as [`Document::field`] takes it.
    Field(String),
    /// A constant; `None` is undefined.
    Literal(Option<Value>),
    /// `l <op> r` by Convex's total order.
    Compare(Comparison, Box<Expression>, Box<Expression>),
    /// `l <op> r` over two int64s or two float64s.
    Arithmetic(Arithmetic, Box<Expression>, Box<Expression>),
    /// `-x`.
    Neg(Box<Expression>),
    /// `a && b && ...`.
    And(Vec<Expression>),
    /// `a || b || ...`.
    Or(Vec<Expression>),
    /// `!x`.
    Not(Box<Expression>),
}

/// The comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
}

/// The binary arithmetic operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arithmetic {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// Why an expression cannot be parsed or evaluated.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
#[error("{message}")]
pub struct FilterError {
    message: String,
}

impl FilterError {
    fn new(message: impl Into<String>) -> Self {
        FilterError {
            message: message.into(),
        }
    }

    /// The message, as `Display` shows it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl Comparison {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Comparison::Eq => ordering == Ordering::Equal,
            Comparison::Neq => ordering != Ordering::Equal,
            Comparison::Lt => ordering == Ordering::Less,
            Comparison::Lte => ordering != Ordering::Greater,
            Comparison::Gt => ordering == Ordering::Greater,
            Comparison::Gte => ordering != Ordering::Less,
        }
    }
}

impl Arithmetic {
    /// The verb Convex's error messages use.
    fn verb(self) -> &'static str {
        match self {
            Arithmetic::Add => "add",
            Arithmetic::Sub => "subtract",
            Arithmetic::Mul => "multiply",
            Arithmetic::Div => "divide",
            Arithmetic::Mod => "mod",
        }
    }

    fn ints(self, l: i64, r: i64) -> Option<i64> {
        match self {
            Arithmetic::Add => l.checked_add(r),
            Arithmetic::Sub => l.checked_sub(r),
            Arithmetic::Mul => l.checked_mul(r),
            Arithmetic::Div => l.checked_div(r),
            Arithmetic::Mod => l.checked_rem(r),
        }
    }

    fn floats(self, l: f64, r: f64) -> f64 {
        match self {
            Arithmetic::Add => l + r,
            Arithmetic::Sub => l - r,
            Arithmetic::Mul => l * r,
            Arithmetic::Div => l / r,
            Arithmetic::Mod => l % r,
        }
    }

    fn apply(self, l: Option<&Value>, r: Option<&Value>) -> Result<Value, FilterError> {
        match (l, r) {
            (Some(Value::Int64(a)), Some(Value::Int64(b))) => {
                self.ints(*a, *b).map(Value::Int64).ok_or_else(|| {
                    let verb = self.verb();
                    FilterError::new(if *b == 0 {
                        format!("Cannot {verb} {a} by zero")
                    } else {
                        format!("Cannot {verb} {a} and {b}: the result is out of range for Int64")
                    })
                })
            }
            (Some(Value::Float64(a)), Some(Value::Float64(b))) => {
                Ok(Value::Float64(self.floats(*a, *b)))
            }
            _ => Err(FilterError::new(format!(
                "Cannot {} {} (type {}) and {} (type {})",
                self.verb(),
                show(l),
                type_name(l),
                show(r),
                type_name(r),
            ))),
        }
    }
}

/// The operators, by their JSON key.
enum Operator {
    Field,
    Literal,
    Compare(Comparison),
    Arithmetic(Arithmetic),
    Neg,
    Not,
    And,
    Or,
}

impl Operator {
    fn from_key(key: &str) -> Option<Operator> {
        Some(match key {
            "$field" => Operator::Field,
            "$literal" => Operator::Literal,
            "$eq" => Operator::Compare(Comparison::Eq),
            "$neq" => Operator::Compare(Comparison::Neq),
            "$lt" => Operator::Compare(Comparison::Lt),
            "$lte" => Operator::Compare(Comparison::Lte),
            "$gt" => Operator::Compare(Comparison::Gt),
            "$gte" => Operator::Compare(Comparison::Gte),
            "$add" => Operator::Arithmetic(Arithmetic::Add),
            "$sub" => Operator::Arithmetic(Arithmetic::Sub),
            "$mul" => Operator::Arithmetic(Arithmetic::Mul),
            "$div" => Operator::Arithmetic(Arithmetic::Div),
            "$mod" => Operator::Arithmetic(Arithmetic::Mod),
            "$neg" => Operator::Neg,
            "$not" => Operator::Not,
            "$and" => Operator::And,
            "$or" => Operator::Or,
            _ => return None,
        })
    }
}

/// One step of the path from the top-level expression to the node being parsed.
enum Step<'a> {
    /// Into an operator's single operand, or its operand list.
    Key(&'a str),
    /// Into an element of an operand list.
    Index(usize),
}

/// Parses with a count of the nodes so far and the path to the current node (for errors).
struct Parser<'a> {
    nodes: usize,
    /// How many operators enclose the current node.
    depth: usize,
    path: Vec<Step<'a>>,
}

impl<'a> Parser<'a> {
    /// An error at the current node: `filter.$and[1]: <message>`.
    fn error(&self, message: impl std::fmt::Display) -> FilterError {
        let mut out = String::from(ROOT);
        for step in &self.path {
            match step {
                Step::Key(key) => {
                    out.push('.');
                    out.push_str(key);
                }
                Step::Index(index) => {
                    let _ = write!(out, "[{index}]");
                }
            }
        }
        let _ = write!(out, ": {message}");
        FilterError::new(out)
    }

    /// Parses the node at the current path, at depth `self.depth + 1`.
    fn parse(&mut self, json: &'a Json) -> Result<Expression, FilterError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!(
                "the expression is nested more than {MAX_DEPTH} levels deep"
            )));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.error(format!("the expression has more than {MAX_NODES} nodes")));
        }
        let Json::Object(object) = json else {
            return Err(self.error(format!(
                "expected an expression (an object with one operator key such as \"$field\", \"$literal\" or \"$eq\"), got {}",
                json_type_name(json)
            )));
        };
        let mut entries = object.iter();
        let (key, operand) = match (entries.next(), entries.next()) {
            (Some(entry), None) => entry,
            _ => {
                let keys: Vec<&str> = object.keys().map(String::as_str).take(5).collect();
                return Err(self.error(format!(
                    "an expression must have exactly one key, its operator, got {} ({keys:?})",
                    object.len()
                )));
            }
        };
        let Some(operator) = Operator::from_key(key) else {
            return Err(self.error(format!("unknown operator {}", quoted(key))));
        };
        match operator {
            Operator::Field => match operand {
                Json::String(path) => parse_field_path(path)
                    .map(Expression::Field)
                    .map_err(|message| self.error(message)),
                other => Err(self.error(format!(
                    "\"$field\" takes a field path string, got {}",
                    json_type_name(other)
                ))),
            },
            Operator::Literal => parse_literal(operand)
                .map(Expression::Literal)
                .map_err(|message| self.error(format!("invalid \"$literal\": {message}"))),
            Operator::Compare(op) => {
                let (l, r) = self.parse_pair(key, operand)?;
                Ok(Expression::Compare(op, l, r))
            }
            Operator::Arithmetic(op) => {
                let (l, r) = self.parse_pair(key, operand)?;
                Ok(Expression::Arithmetic(op, l, r))
            }
            Operator::Neg => Ok(Expression::Neg(self.parse_single(key, operand)?)),
            Operator::Not => Ok(Expression::Not(self.parse_single(key, operand)?)),
            Operator::And => Ok(Expression::And(self.parse_list(key, operand)?)),
            Operator::Or => Ok(Expression::Or(self.parse_list(key, operand)?)),
        }
    }

    /// The operand of `$neg` or `$not`: one expression, not wrapped in an array.
    fn parse_single(
        &mut self,
        key: &'a str,
        operand: &'a Json,
    ) -> Result<Box<Expression>, FilterError> {
        if operand.is_array() {
            return Err(self.error(format!("{key:?} takes a single expression, not an array")));
        }
        self.path.push(Step::Key(key));
        self.depth += 1;
        let result = self.parse(operand);
        self.depth -= 1;
        self.path.pop();
        result.map(Box::new)
    }

    /// The operands of a comparison or arithmetic operator: an array of two expressions.
    fn parse_pair(
        &mut self,
        key: &'a str,
        operand: &'a Json,
    ) -> Result<(Box<Expression>, Box<Expression>), FilterError> {
        match operand {
            Json::Array(items) if items.len() == 2 => {
                let mut operands = self.parse_list(key, operand)?.into_iter().map(Box::new);
                let (Some(l), Some(r)) = (operands.next(), operands.next()) else {
                    unreachable!("two operands were parsed")
                };
                Ok((l, r))
            }
            Json::Array(items) => Err(self.error(format!(
                "{key:?} takes an array of 2 operands, got {}",
                items.len()
            ))),
            other => Err(self.error(format!(
                "{key:?} takes an array of 2 operands, got {}",
                json_type_name(other)
            ))),
        }
    }

    /// The operands of `$and` or `$or` (or of a binary operator): an array of expressions.
    fn parse_list(
        &mut self,
        key: &'a str,
        operand: &'a Json,
    ) -> Result<Vec<Expression>, FilterError> {
        let Json::Array(items) = operand else {
            return Err(self.error(format!(
                "{key:?} takes an array of expressions, got {}",
                json_type_name(operand)
            )));
        };
        self.path.push(Step::Key(key));
        self.depth += 1;
        let mut parsed = Vec::with_capacity(items.len().min(MAX_NODES));
        let mut result = Ok(());
        for (index, item) in items.iter().enumerate() {
            self.path.push(Step::Index(index));
            let item = self.parse(item);
            self.path.pop();
            match item {
                Ok(expression) => parsed.push(expression),
                Err(err) => {
                    result = Err(err);
                    break;
                }
            }
        }
        self.depth -= 1;
        self.path.pop();
        result.map(|()| parsed)
    }
}

/// Checks and normalizes a field path as Convex's `FieldPath::from_str` does: leading and
/// trailing dots are dropped and every part must be an identifier.
fn parse_field_path(path: &str) -> Result<String, String> {
    let trimmed = path.trim_matches('.');
    if trimmed.is_empty() {
        return Err(format!("empty field path {}", quoted(path)));
    }
    for part in trimmed.split('.') {
        if !is_identifier(part) {
            return Err(format!(
                "invalid field path {}: {} is not an identifier (identifiers start with a letter or \"_\", contain only letters, digits and \"_\", are not only \"_\" and are at most {MAX_IDENTIFIER_LEN} characters long)",
                quoted(path),
                quoted(part),
            ));
        }
    }
    Ok(trimmed.to_string())
}

/// Convex's `is_valid_identifier`.
fn is_identifier(s: &str) -> bool {
    let bytes = s.as_bytes();
    s.len() <= MAX_IDENTIFIER_LEN
        && bytes
            .first()
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        && bytes
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && bytes.iter().any(|c| *c != b'_')
}

/// A literal's Convex JSON: `{"$undefined": null}` (exactly) is undefined.
fn parse_literal(json: &Json) -> Result<Option<Value>, String> {
    if let Json::Object(object) = json
        && object.len() == 1
        && object.get("$undefined") == Some(&Json::Null)
    {
        return Ok(None);
    }
    Value::from_convex_json_with_limits(json.clone(), &ValueLimits::default())
        .map(Some)
        .map_err(|err| err.to_string())
}

impl Expression {
    /// Parses the JSON form; errors name the problem and where (e.g.
    /// `filter.$and[1]: unknown operator "$foo"`).
    pub fn parse(json: &Json) -> Result<Expression, FilterError> {
        Parser {
            nodes: 0,
            depth: 0,
            path: Vec::new(),
        }
        .parse(json)
    }

    /// Evaluates against a document; the result is a value, or `None` for undefined.
    pub fn evaluate(&self, document: &Document) -> Result<Option<Value>, FilterError> {
        Ok(self.evaluate_ref(document)?.map(Cow::into_owned))
    }

    /// [`evaluate`](Self::evaluate) by reference: fields and literals are borrowed, never
    /// copied, so a large literal or field costs nothing per document it is compared to.
    fn evaluate_ref<'a>(
        &'a self,
        document: &'a Document,
    ) -> Result<Option<Cow<'a, Value>>, FilterError> {
        Ok(match self {
            Expression::Field(path) => document.field_ref(path),
            Expression::Literal(value) => value.as_ref().map(Cow::Borrowed),
            Expression::Compare(op, l, r) => {
                let l = l.evaluate_ref(document)?;
                let r = r.evaluate_ref(document)?;
                Some(Cow::Owned(Value::Boolean(
                    op.holds(compare_values(l.as_deref(), r.as_deref())),
                )))
            }
            Expression::Arithmetic(op, l, r) => {
                let l = l.evaluate_ref(document)?;
                let r = r.evaluate_ref(document)?;
                Some(Cow::Owned(op.apply(l.as_deref(), r.as_deref())?))
            }
            Expression::Neg(x) => match x.evaluate_ref(document)?.as_deref() {
                Some(Value::Int64(n)) => Some(Cow::Owned(Value::Int64(
                    n.checked_neg().ok_or_else(|| {
                        FilterError::new(format!(
                            "Cannot negate {n}: the result is out of range for Int64"
                        ))
                    })?,
                ))),
                Some(Value::Float64(n)) => Some(Cow::Owned(Value::Float64(-n))),
                other => {
                    return Err(FilterError::new(format!(
                        "Cannot negate {} (type {})",
                        show(other),
                        type_name(other)
                    )));
                }
            },
            Expression::And(operands) => {
                for operand in operands {
                    if !boolean(operand.evaluate_ref(document)?.as_deref())? {
                        return Ok(Some(Cow::Owned(Value::Boolean(false))));
                    }
                }
                Some(Cow::Owned(Value::Boolean(true)))
            }
            Expression::Or(operands) => {
                for operand in operands {
                    if boolean(operand.evaluate_ref(document)?.as_deref())? {
                        return Ok(Some(Cow::Owned(Value::Boolean(true))));
                    }
                }
                Some(Cow::Owned(Value::Boolean(false)))
            }
            Expression::Not(x) => Some(Cow::Owned(Value::Boolean(!boolean(
                x.evaluate_ref(document)?.as_deref(),
            )?))),
        })
    }

    /// Whether the document passes: true when the expression is `true`, false when it is
    /// `false`, and an error for any other value (undefined included), as in Convex.
    pub fn matches(&self, document: &Document) -> Result<bool, FilterError> {
        boolean(self.evaluate_ref(document)?.as_deref())
    }
}

/// A boolean operand, or Convex's error for anything else.
fn boolean(value: Option<&Value>) -> Result<bool, FilterError> {
    match value {
        Some(Value::Boolean(b)) => Ok(*b),
        other => Err(FilterError::new(format!(
            "Cannot use value {} (type {}) as a Boolean",
            show(other),
            type_name(other)
        ))),
    }
}

fn type_name(value: Option<&Value>) -> &'static str {
    value.map_or("undefined", Value::type_name)
}

/// A value for an error message, as Convex displays it (`1`, `1.0`, `"a"`, `true`), with
/// bytes, arrays and objects as Convex JSON; cut to [`MAX_SHOWN_CHARS`] characters.
fn show(value: Option<&Value>) -> String {
    match value {
        None => "undefined".to_string(),
        Some(Value::Null) => "null".to_string(),
        Some(Value::Int64(n)) => n.to_string(),
        Some(Value::Float64(n)) => format!("{n:?}"),
        Some(Value::Boolean(b)) => b.to_string(),
        Some(Value::String(s)) => quoted(s),
        Some(other) => cut(other.to_convex_json_string()),
    }
}

/// A string from the guest for an error message: quoted, cut to [`MAX_SHOWN_CHARS`].
fn quoted(s: &str) -> String {
    match s.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((end, _)) => format!("{:?}…", &s[..end]),
        None => format!("{s:?}"),
    }
}

fn cut(shown: String) -> String {
    match shown.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((end, _)) => format!("{}…", &shown[..end]),
        None => shown,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::database::id::DocumentId;

    fn document(fields: Json) -> Document {
        let Value::Object(fields) = Value::from_convex_json(fields).unwrap() else {
            panic!("fields must be an object")
        };
        Document {
            id: DocumentId::generate(10001),
            creation_time: 1.0,
            fields,
        }
    }

    fn empty() -> Document {
        Document {
            id: DocumentId::generate(10001),
            creation_time: 1.0,
            fields: BTreeMap::new(),
        }
    }

    fn int(n: i64) -> Json {
        Value::Int64(n).to_convex_json()
    }

    fn lit(value: Json) -> Json {
        json!({ "$literal": value })
    }

    fn field(path: &str) -> Json {
        json!({ "$field": path })
    }

    fn undefined() -> Json {
        lit(json!({ "$undefined": null }))
    }

    fn parse_err(json: Json) -> String {
        Expression::parse(&json).unwrap_err().to_string()
    }

    fn eval(json: Json, document: &Document) -> Result<Option<Value>, FilterError> {
        Expression::parse(&json).unwrap().evaluate(document)
    }

    fn eval_ok(json: Json, document: &Document) -> Option<Value> {
        eval(json, document).unwrap()
    }

    fn eval_err(json: Json, document: &Document) -> String {
        eval(json, document).unwrap_err().to_string()
    }

    fn test(json: Json, document: &Document) -> bool {
        Expression::parse(&json).unwrap().matches(document).unwrap()
    }

    fn bin(op: &str, l: Json, r: Json) -> Json {
        json!({ op: [l, r] })
    }

    /// `q.and(q.eq(q.field("channel"), "general"), q.gt(q.field("n"), 5))`, as
    /// `filterBuilderImpl` in `npm-packages/convex/src/server/impl/filter_builder_impl.ts`
    /// (convex 1.48.0) serializes it: plain values become `{"$literal": convexToJson(v)}`,
    /// so the JS number 5 is the JSON number 5 (a float64).
    #[test]
    fn convex_js_builder_fixture() {
        let fixture = r#"{"$and":[{"$eq":[{"$field":"channel"},{"$literal":"general"}]},{"$gt":[{"$field":"n"},{"$literal":5}]}]}"#;
        let expression = Expression::parse(&serde_json::from_str(fixture).unwrap()).unwrap();
        assert_eq!(
            expression,
            Expression::And(vec![
                Expression::Compare(
                    Comparison::Eq,
                    Box::new(Expression::Field("channel".into())),
                    Box::new(Expression::Literal(Some(Value::String("general".into())))),
                ),
                Expression::Compare(
                    Comparison::Gt,
                    Box::new(Expression::Field("n".into())),
                    Box::new(Expression::Literal(Some(Value::Float64(5.0)))),
                ),
            ])
        );
        let matches = |fields| expression.matches(&document(fields)).unwrap();
        assert!(matches(json!({ "channel": "general", "n": 6 })));
        assert!(!matches(json!({ "channel": "general", "n": 5 })));
        assert!(!matches(json!({ "channel": "random", "n": 6 })));
        assert!(!matches(json!({ "channel": "general" })));
        // An int64 sorts below every float64, so 6n > 5 is false.
        assert!(!matches(json!({ "channel": "general", "n": int(6) })));

        // `q.not(...)` and `q.neg(...)` wrap a bare operand; undefined is `{"$undefined": null}`.
        let not = r#"{"$not":{"$eq":[{"$field":"a"},{"$literal":{"$undefined":null}}]}}"#;
        let not = Expression::parse(&serde_json::from_str(not).unwrap()).unwrap();
        assert!(not.matches(&document(json!({ "a": null }))).unwrap());
        assert!(!not.matches(&empty()).unwrap());
    }

    #[test]
    fn parse_errors_say_what_and_where() {
        assert_eq!(
            parse_err(json!({ "$and": [lit(json!(true)), { "$foo": 1 }] })),
            r#"filter.$and[1]: unknown operator "$foo""#
        );
        assert_eq!(
            parse_err(json!({ "$foo": 1 })),
            r#"filter: unknown operator "$foo""#
        );
        assert_eq!(
            parse_err(json!({ "$eq": [field("a")] })),
            r#"filter: "$eq" takes an array of 2 operands, got 1"#
        );
        assert_eq!(
            parse_err(json!({ "$or": [{ "$add": [field("a"), lit(json!(1)), lit(json!(2))] }] })),
            r#"filter.$or[0]: "$add" takes an array of 2 operands, got 3"#
        );
        assert_eq!(
            parse_err(json!({ "$lt": field("a") })),
            r#"filter: "$lt" takes an array of 2 operands, got an object"#
        );
        assert_eq!(
            parse_err(json!({ "$not": [lit(json!(true))] })),
            r#"filter: "$not" takes a single expression, not an array"#
        );
        assert_eq!(
            parse_err(json!({ "$and": lit(json!(true)) })),
            r#"filter: "$and" takes an array of expressions, got an object"#
        );
        assert!(parse_err(json!("a")).starts_with("filter: expected an expression"));
        assert!(parse_err(json!([field("a")])).ends_with("got an array"));
        assert!(parse_err(json!({ "$neg": 5 })).starts_with("filter.$neg: expected an expression"));
        assert!(
            parse_err(json!({})).starts_with("filter: an expression must have exactly one key")
        );
        assert!(
            parse_err(json!({ "$field": "a", "$literal": 1 })).starts_with(
                "filter: an expression must have exactly one key, its operator, got 2"
            )
        );
        assert_eq!(
            parse_err(json!({ "$field": 1 })),
            r#"filter: "$field" takes a field path string, got a number"#
        );
        assert!(
            parse_err(json!({ "$eq": [field("a"), lit(json!({ "$foo": 1 }))] }))
                .starts_with(r#"filter.$eq[1]: invalid "$literal": "#)
        );
        assert!(
            parse_err(json!({ "$eq": [field("a"), lit(json!({ "$undefined": 1 }))] }))
                .starts_with(r#"filter.$eq[1]: invalid "$literal": "#)
        );
    }

    #[test]
    fn field_paths_follow_convex() {
        for bad in ["", ".", "a..b", "a-b", "1a", "__", "$a", "a.b c"] {
            let err = parse_err(field(bad));
            assert!(err.starts_with("filter: "), "{bad:?}: {err}");
            assert!(err.contains("field path"), "{bad:?}: {err}");
        }
        let err = parse_err(field(&"a".repeat(5000)));
        assert!(err.len() < 600 && err.contains('…'), "{err}");
        assert_eq!(
            Expression::parse(&field(".a.b.")).unwrap(),
            Expression::Field("a.b".into())
        );
        for good in ["_id", "_creationTime", "a_1", "_a", "A.b.c"] {
            Expression::parse(&field(good)).unwrap();
        }
    }

    #[test]
    fn depth_and_size_are_limited() {
        let mut deep = lit(json!(true));
        for _ in 1..MAX_DEPTH {
            deep = json!({ "$not": deep });
        }
        Expression::parse(&deep).unwrap();
        let too_deep = json!({ "$not": deep });
        let err = parse_err(too_deep);
        assert!(
            err.ends_with("the expression is nested more than 64 levels deep"),
            "{err}"
        );
        assert!(err.starts_with("filter.$not.$not."), "{err}");

        // Array operands count as one level: 63 nested `$and`s around a literal is 64 deep.
        let mut deep = lit(json!(true));
        for _ in 1..MAX_DEPTH {
            deep = json!({ "$and": [lit(json!(true)), deep] });
        }
        assert!(test(deep.clone(), &empty()));
        assert!(parse_err(json!({ "$and": [deep] })).contains("nested more than 64"));

        // Far deeper than the stack could take if parsing recursed without a limit.
        let mut hostile = lit(json!(true));
        for _ in 0..100_000 {
            // Not `json!`, which would serialize (recursively) a copy of `hostile`.
            hostile = Json::Object([("$not".to_string(), hostile)].into_iter().collect());
        }
        let err = Expression::parse(&hostile).unwrap_err().to_string();
        assert!(err.contains("nested more than 64"), "{err}");
        // Dropping a value this deep recursively could itself overflow: take it apart.
        let mut rest = hostile;
        while let Json::Object(mut object) = rest {
            rest = object.remove("$not").unwrap_or(Json::Null);
        }

        let wide = |n: usize| json!({ "$and": vec![lit(json!(true)); n] });
        Expression::parse(&wide(MAX_NODES - 1)).unwrap();
        assert_eq!(
            parse_err(wide(MAX_NODES)),
            "filter.$and[4095]: the expression has more than 4096 nodes"
        );
    }

    #[test]
    fn comparisons() {
        let doc = document(json!({ "n": 5, "i": int(5), "s": "b", "none": null }));
        let cases = [
            ("$eq", field("n"), lit(json!(5)), true),
            ("$eq", field("n"), lit(json!(6)), false),
            ("$neq", field("n"), lit(json!(6)), true),
            ("$neq", field("s"), lit(json!("b")), false),
            ("$lt", field("n"), lit(json!(6)), true),
            ("$lt", field("n"), lit(json!(5)), false),
            ("$lte", field("n"), lit(json!(5)), true),
            ("$lte", field("s"), lit(json!("a")), false),
            ("$gt", field("s"), lit(json!("a")), true),
            ("$gt", field("n"), lit(json!(5)), false),
            ("$gte", field("n"), lit(json!(5)), true),
            ("$gte", field("i"), lit(int(6)), false),
            ("$eq", field("none"), lit(json!(null)), true),
            ("$eq", field("i"), field("i"), true),
        ];
        for (op, l, r, expected) in cases {
            let expression = bin(op, l, r);
            assert_eq!(test(expression.clone(), &doc), expected, "{expression}");
        }
    }

    #[test]
    fn comparisons_across_types_use_the_total_order() {
        let doc = document(json!({ "i": int(5), "f": 5, "s": "5", "b": false }));
        // int64 5n and float64 5 are different values; int64 sorts first.
        assert!(!test(bin("$eq", field("i"), field("f")), &doc));
        assert!(test(bin("$neq", field("i"), field("f")), &doc));
        assert!(test(bin("$lt", field("i"), field("f")), &doc));
        assert!(test(bin("$lt", field("i"), lit(json!(-1000))), &doc));
        // float64 < boolean < string < bytes < array < object.
        assert!(test(bin("$lt", field("f"), field("b")), &doc));
        assert!(test(bin("$gt", field("s"), field("b")), &doc));
        assert!(test(bin("$gt", lit(json!([])), field("s")), &doc));
        assert!(test(bin("$gt", lit(json!({})), lit(json!([1, 2]))), &doc));
        assert!(test(bin("$lt", lit(json!(null)), lit(int(i64::MIN))), &doc));
        // Floats by their bits: -0 and 0 differ, a NaN equals itself.
        let nan = Value::Float64(f64::NAN).to_convex_json();
        let neg_zero = Value::Float64(-0.0).to_convex_json();
        assert!(!test(
            bin("$eq", lit(neg_zero.clone()), lit(json!(0))),
            &doc
        ));
        assert!(test(bin("$lt", lit(neg_zero), lit(json!(0))), &doc));
        assert!(test(bin("$eq", lit(nan.clone()), lit(nan)), &doc));
    }

    #[test]
    fn missing_fields_are_undefined_and_smallest() {
        let doc = document(json!({ "a": { "b": 1 }, "nil": null }));
        assert_eq!(eval_ok(field("missing"), &doc), None);
        assert_eq!(eval_ok(field("a.missing"), &doc), None);
        assert_eq!(eval_ok(field("a.b.c"), &doc), None);
        assert!(test(bin("$eq", field("missing"), undefined()), &doc));
        assert!(test(bin("$eq", field("missing"), field("other")), &doc));
        assert!(!test(bin("$eq", field("missing"), lit(json!(null))), &doc));
        assert!(test(bin("$neq", field("nil"), undefined()), &doc));
        assert!(test(bin("$lt", field("missing"), lit(json!(null))), &doc));
        assert!(test(bin("$lte", field("missing"), undefined()), &doc));
        assert!(!test(
            bin("$gt", field("missing"), lit(int(i64::MIN))),
            &doc
        ));
        assert!(test(bin("$gte", field("nil"), field("missing")), &doc));
    }

    #[test]
    fn nested_and_system_fields() {
        let doc = document(json!({ "a": { "b": { "c": "deep" }, "n": 2 }, "arr": [1] }));
        assert_eq!(
            eval_ok(field("a.b.c"), &doc),
            Some(Value::String("deep".into()))
        );
        assert!(test(bin("$eq", field("a.b.c"), lit(json!("deep"))), &doc));
        assert!(test(bin("$gt", field("a.n"), lit(json!(1))), &doc));
        // Paths do not reach into arrays.
        assert_eq!(eval_ok(field("arr.b"), &doc), None);
        assert!(
            Expression::parse(&field("arr.0")).is_err(),
            "\"0\" is not an identifier"
        );
        assert_eq!(
            eval_ok(field("_id"), &doc),
            Some(Value::String(doc.id.encode()))
        );
        assert!(test(
            bin("$eq", field("_creationTime"), lit(json!(1))),
            &doc
        ));
        assert!(test(
            bin("$eq", field("_id"), lit(json!(doc.id.encode()))),
            &doc
        ));
    }

    #[test]
    fn arithmetic() {
        let doc = document(json!({ "i": int(7), "f": 7.5 }));
        let cases = [
            ("$add", field("i"), lit(int(3)), Value::Int64(10)),
            ("$sub", field("i"), lit(int(10)), Value::Int64(-3)),
            ("$mul", field("i"), lit(int(-2)), Value::Int64(-14)),
            ("$div", field("i"), lit(int(2)), Value::Int64(3)),
            ("$div", lit(int(-7)), lit(int(2)), Value::Int64(-3)),
            ("$mod", field("i"), lit(int(4)), Value::Int64(3)),
            ("$mod", lit(int(-7)), lit(int(4)), Value::Int64(-3)),
            ("$add", field("f"), lit(json!(0.5)), Value::Float64(8.0)),
            ("$sub", field("f"), lit(json!(10)), Value::Float64(-2.5)),
            ("$mul", field("f"), lit(json!(2)), Value::Float64(15.0)),
            ("$div", field("f"), lit(json!(2)), Value::Float64(3.75)),
            ("$mod", field("f"), lit(json!(2)), Value::Float64(1.5)),
        ];
        for (op, l, r, expected) in cases {
            let expression = bin(op, l, r);
            assert_eq!(
                eval_ok(expression.clone(), &doc),
                Some(expected),
                "{expression}"
            );
        }
        assert_eq!(
            eval_ok(json!({ "$neg": field("i") }), &doc),
            Some(Value::Int64(-7))
        );
        assert_eq!(
            eval_ok(json!({ "$neg": field("f") }), &doc),
            Some(Value::Float64(-7.5))
        );
        // Float division by zero is IEEE 754's, not an error.
        assert_eq!(
            eval_ok(bin("$div", field("f"), lit(json!(0))), &doc),
            Some(Value::Float64(f64::INFINITY))
        );
        let Some(Value::Float64(nan)) = eval_ok(bin("$mod", field("f"), lit(json!(0))), &doc)
        else {
            panic!()
        };
        assert!(nan.is_nan());
        // Arithmetic feeds comparisons.
        assert!(test(
            bin("$eq", bin("$add", field("i"), lit(int(1))), lit(int(8))),
            &doc
        ));
    }

    #[test]
    fn arithmetic_type_errors_name_the_operation_and_types() {
        let doc = document(json!({ "i": int(1), "f": 2, "s": "x" }));
        assert_eq!(
            eval_err(bin("$add", field("i"), field("f")), &doc),
            "Cannot add 1 (type int64) and 2.0 (type float64)"
        );
        assert_eq!(
            eval_err(bin("$mul", field("f"), field("i")), &doc),
            "Cannot multiply 2.0 (type float64) and 1 (type int64)"
        );
        assert_eq!(
            eval_err(bin("$sub", field("s"), field("missing")), &doc),
            r#"Cannot subtract "x" (type string) and undefined (type undefined)"#
        );
        assert_eq!(
            eval_err(bin("$mod", lit(json!(null)), lit(json!([1, true]))), &doc),
            "Cannot mod null (type null) and [1.0,true] (type array)"
        );
        assert_eq!(
            eval_err(json!({ "$neg": field("s") }), &doc),
            r#"Cannot negate "x" (type string)"#
        );
        let long = "y".repeat(500);
        let err = eval_err(bin("$div", lit(json!(long)), field("i")), &doc);
        assert!(err.len() < 200 && err.contains('…'), "{err}");
    }

    #[test]
    fn int64_overflow_and_division_by_zero_are_errors() {
        let doc = empty();
        assert_eq!(
            eval_err(bin("$add", lit(int(i64::MAX)), lit(int(1))), &doc),
            "Cannot add 9223372036854775807 and 1: the result is out of range for Int64"
        );
        assert!(eval(bin("$sub", lit(int(i64::MIN)), lit(int(1))), &doc).is_err());
        assert!(eval(bin("$mul", lit(int(i64::MAX)), lit(int(2))), &doc).is_err());
        assert_eq!(
            eval_err(bin("$div", lit(int(i64::MIN)), lit(int(-1))), &doc),
            "Cannot divide -9223372036854775808 and -1: the result is out of range for Int64"
        );
        assert!(eval(bin("$mod", lit(int(i64::MIN)), lit(int(-1))), &doc).is_err());
        assert_eq!(
            eval_err(bin("$div", lit(int(5)), lit(int(0))), &doc),
            "Cannot divide 5 by zero"
        );
        assert_eq!(
            eval_err(bin("$mod", lit(int(5)), lit(int(0))), &doc),
            "Cannot mod 5 by zero"
        );
        assert_eq!(
            eval_err(json!({ "$neg": lit(int(i64::MIN)) }), &doc),
            "Cannot negate -9223372036854775808: the result is out of range for Int64"
        );
        assert_eq!(
            eval_ok(bin("$add", lit(int(i64::MAX - 1)), lit(int(1))), &doc),
            Some(Value::Int64(i64::MAX))
        );
    }

    #[test]
    fn logic() {
        let doc = document(json!({ "t": true, "f": false, "n": 1 }));
        let t = || field("t");
        let f = || field("f");
        assert!(test(json!({ "$and": [t(), t(), t()] }), &doc));
        assert!(!test(json!({ "$and": [t(), f(), t()] }), &doc));
        assert!(test(json!({ "$and": [] }), &doc));
        assert!(test(json!({ "$or": [f(), f(), t()] }), &doc));
        assert!(!test(json!({ "$or": [f()] }), &doc));
        assert!(!test(json!({ "$or": [] }), &doc));
        assert!(test(json!({ "$not": f() }), &doc));
        assert!(!test(json!({ "$not": t() }), &doc));
        assert!(test(lit(json!(true)), &doc));

        // Operands must be booleans, but evaluation stops once the result is known.
        assert!(!test(json!({ "$and": [f(), field("n")] }), &doc));
        assert!(test(json!({ "$or": [t(), field("missing")] }), &doc));
        assert_eq!(
            eval_err(json!({ "$and": [t(), field("n")] }), &doc),
            "Cannot use value 1.0 (type float64) as a Boolean"
        );
        assert_eq!(
            eval_err(json!({ "$or": [f(), field("missing")] }), &doc),
            "Cannot use value undefined (type undefined) as a Boolean"
        );
        assert_eq!(
            eval_err(json!({ "$not": lit(json!(null)) }), &doc),
            "Cannot use value null (type null) as a Boolean"
        );
        // Errors in an operand surface even when a later one would decide.
        assert!(eval(json!({ "$and": [bin("$add", t(), t()), f()] }), &doc).is_err());
    }

    #[test]
    fn a_document_passes_only_on_true() {
        let doc = document(json!({ "flag": true, "n": 1 }));
        let matches = |json: Json| Expression::parse(&json).unwrap().matches(&doc);
        assert_eq!(matches(field("flag")), Ok(true));
        assert_eq!(matches(lit(json!(false))), Ok(false));
        assert_eq!(
            matches(field("n")).unwrap_err().message(),
            "Cannot use value 1.0 (type float64) as a Boolean"
        );
        assert!(matches(field("missing")).is_err());
        assert!(matches(lit(json!("true"))).is_err());
    }
}
