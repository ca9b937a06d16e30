//! `#[derive(Validate)]` against serde: each case's validator must describe exactly what
//! serde writes (checked by validating `to_value` of a sample) and read the way its
//! attributes say.

use std::collections::BTreeMap;

use kiln::{Id, Validate, Validator, Value};
use serde::{Deserialize, Serialize};

fn no_ids(_: &str) -> Option<String> {
    None
}

/// The validator's readable form, after checking that `sample` as serde writes it passes.
fn shape<T: Validate + Serialize>(sample: &T) -> String {
    let validator = T::validator();
    let value = kiln_values::to_value(sample).unwrap();
    if let Err(err) = validator.check(&value, "sample", &mut no_ids) {
        panic!("{validator} refuses serde's {value:?}: {err}");
    }
    validator.to_string()
}

#[derive(Serialize, Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
struct User {
    first_name: String,
    age: u32,
    nickname: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(rename = "_id", skip_serializing_if = "Option::is_none")]
    id: Option<Id>,
    #[serde(skip)]
    _cache: (),
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    scores: BTreeMap<String, f64>,
}

#[test]
fn structs_follow_renames_defaults_and_skips() {
    let user = User {
        first_name: "Ada".into(),
        age: 36,
        nickname: None,
        tags: vec![],
        id: None,
        _cache: (),
        scores: BTreeMap::new(),
    };
    assert_eq!(
        shape(&user),
        "{_id?: string | null, age: int64 | float64, firstName: string, nickname?: string | null, \
         scores?: record<string, float64>, tags?: array<string>}"
    );
}

#[derive(Serialize, Deserialize, Validate)]
#[serde(default)]
struct AllDefault {
    a: bool,
}

impl Default for AllDefault {
    fn default() -> Self {
        Self { a: true }
    }
}

#[derive(Serialize, Deserialize, Validate)]
struct Meters(f64);

#[derive(Serialize, Deserialize, Validate)]
#[serde(transparent)]
struct Wrapper {
    inner: Vec<Meters>,
}

#[derive(Serialize, Deserialize, Validate)]
struct Pair(String, i64);

#[derive(Serialize, Deserialize, Validate)]
struct Nothing;

#[test]
fn container_defaults_newtypes_tuples_and_units() {
    assert_eq!(shape(&AllDefault { a: true }), "{a?: boolean}");
    assert_eq!(shape(&Meters(1.5)), "float64");
    assert_eq!(
        shape(&Wrapper {
            inner: vec![Meters(1.0)]
        }),
        "array<float64>"
    );
    assert_eq!(
        shape(&Pair("a".into(), 1)),
        "array<string | int64 | float64>"
    );
    assert_eq!(shape(&Nothing), "null");
}

#[derive(Serialize, Deserialize, Validate)]
enum Shape {
    Empty,
    Circle(f64),
    Rect {
        w: f64,
        h: f64,
    },
    #[serde(rename = "tri")]
    Triangle(f64, f64, f64),
}

#[derive(Serialize, Deserialize, Validate)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Event {
    Joined { user: String },
    Left,
    Moved(Position),
}

#[derive(Serialize, Deserialize, Validate)]
struct Position {
    x: f64,
}

#[derive(Serialize, Deserialize, Validate)]
#[serde(tag = "t", content = "c")]
enum Message {
    Ping,
    Text(String),
}

#[derive(Serialize, Deserialize, Validate)]
#[serde(untagged)]
enum Loose {
    Number(f64),
    Words(Vec<String>),
}

#[test]
fn enums_in_each_representation() {
    let external = Shape::validator().to_string();
    assert_eq!(
        external,
        "\"Empty\" | {Circle: float64} | {Rect: {h: float64, w: float64}} | {tri: array<float64>}"
    );
    for sample in [
        Shape::Empty,
        Shape::Circle(1.0),
        Shape::Rect { w: 1.0, h: 2.0 },
        Shape::Triangle(1.0, 2.0, 3.0),
    ] {
        assert_eq!(shape(&sample), external);
    }
    let internal = Event::validator().to_string();
    assert_eq!(
        internal,
        "{kind: \"joined\", user: string} | {kind: \"left\"} | {kind: \"moved\", x: float64}"
    );
    for sample in [
        Event::Joined { user: "a".into() },
        Event::Left,
        Event::Moved(Position { x: 1.0 }),
    ] {
        assert_eq!(shape(&sample), internal);
    }
    let adjacent = Message::validator().to_string();
    assert_eq!(adjacent, "{t: \"Ping\"} | {c: string, t: \"Text\"}");
    for sample in [Message::Ping, Message::Text("hi".into())] {
        assert_eq!(shape(&sample), adjacent);
    }
    assert_eq!(
        shape(&Loose::Words(vec!["a".into()])),
        "float64 | array<string>"
    );
}

#[derive(Serialize, Deserialize, Validate)]
struct Page {
    title: String,
    #[serde(flatten)]
    position: Position,
    #[serde(flatten)]
    extra: Option<Extra>,
}

#[derive(Serialize, Deserialize, Validate)]
struct Extra {
    note: String,
}

#[derive(Serialize, Deserialize, Validate)]
struct Open {
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

fn loosely<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    String::deserialize(deserializer)
}

#[derive(Serialize, Deserialize, Validate)]
struct Custom {
    #[serde(alias = "colour")]
    color: String,
    #[kiln(id = "users")]
    author: Id,
    #[kiln(id = "users")]
    editor: Option<Id>,
    #[kiln(with = even_validator)]
    count: i64,
    #[serde(deserialize_with = "loosely")]
    loose: String,
}

fn even_validator() -> Validator {
    Validator::Int64
}

#[test]
fn flatten_aliases_and_kiln_attributes() {
    assert_eq!(
        shape(&Page {
            title: "t".into(),
            position: Position { x: 1.0 },
            extra: Some(Extra { note: "n".into() }),
        }),
        "{note?: string, title: string, x: float64}"
    );
    // A flattened map cannot say its fields: anything goes.
    assert_eq!(Open::validator(), Validator::Any);
    assert_eq!(
        Custom::validator().to_string(),
        "{author: id<users>, color?: string, colour?: string, count: int64, editor?: id<users> | null, loose: any}"
    );
}

#[derive(Serialize, Deserialize, Validate)]
struct Tree {
    label: String,
    children: Vec<Tree>,
}

#[derive(Serialize, Deserialize, Validate)]
struct Labelled<T> {
    label: String,
    value: T,
}

#[test]
fn recursive_and_generic_types() {
    // The inner occurrence of a recursive type cannot be spelled out: it is `any`.
    assert_eq!(
        Tree::validator().to_string(),
        "{children: array<any>, label: string}"
    );
    assert_eq!(
        shape(&Labelled {
            label: "n".into(),
            value: 5u8
        }),
        "{label: string, value: int64 | float64}"
    );
}
