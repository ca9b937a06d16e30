//! The database, as a function sees it through its context: `ctx.db`.
//!
//! ```no_run
//! # use kiln::{Document, Error, Order, QueryCtx};
//! # fn recent(ctx: &QueryCtx, channel: &str) -> Result<Vec<Document>, Error> {
//! let recent = ctx.db.query("messages")
//!     .with_index("by_channel", |q| q.eq("channel", channel))
//!     .order(Order::Desc)
//!     .take(10)?;
//! # Ok(recent)
//! # }
//! ```
//!
//! Documents come back as [`Document`]s: objects with `_id` and `_creationTime` that read
//! like a [`Value`] and stay the host's text until looked into. [`Document::decode`] (or the
//! `*_as` methods) reads them into your own types.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::bindings::kiln::platform::db as wit;
use crate::{Document, Error};
use kiln_values::Value;

/// A document id, as Convex writes them: it names its table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(pub String);

impl Id {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Id> for Value {
    fn from(id: Id) -> Self {
        Value::String(id.0)
    }
}

/// Scan order of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// Read access: every query and mutation has it.
#[derive(Debug, Default)]
pub struct DatabaseReader {
    _private: (),
}

/// Read and write access: mutations only.
#[derive(Debug, Default)]
pub struct DatabaseWriter {
    reader: DatabaseReader,
}

impl std::ops::Deref for DatabaseWriter {
    type Target = DatabaseReader;
    fn deref(&self) -> &DatabaseReader {
        &self.reader
    }
}

/// A document or fields as the Convex JSON text the host takes, written straight from the
/// typed value (no `Value` copy in between).
fn encode(value: &impl Serialize, what: &str) -> Result<String, Error> {
    kiln_values::to_convex_json_text(value)
        .map_err(|err| Error::new(format!("invalid {what}: {err}")))
}

impl DatabaseReader {
    /// The document with this id, or `None`.
    pub fn get(&self, id: &Id) -> Result<Option<Document>, Error> {
        Ok(wit::get(None, id.as_str())
            .map_err(Error::new)?
            .map(Document::from_host))
    }

    /// Like [`get`](Self::get), but the id must belong to `table`: an id of another table
    /// is an error, not a silent miss.
    pub fn get_in(&self, table: &str, id: &Id) -> Result<Option<Document>, Error> {
        Ok(wit::get(Some(table), id.as_str())
            .map_err(Error::new)?
            .map(Document::from_host))
    }

    /// Typed [`get`](Self::get).
    pub fn get_as<T: DeserializeOwned>(&self, id: &Id) -> Result<Option<T>, Error> {
        self.get(id)?.map(Document::decode).transpose()
    }

    /// A query over `table`, by creation time unless [`Query::with_index`] says otherwise.
    pub fn query(&self, table: &str) -> Query {
        Query {
            table: table.to_string(),
            index: None,
            range: Vec::new(),
            order: Order::Asc,
            filter: None,
            error: None,
        }
    }
}

/// The system tables (`_scheduled_functions`), read-only: Convex's `db.system`.
#[derive(Debug, Clone, Copy)]
pub struct SystemReader<'a>(&'a DatabaseReader);

impl DatabaseReader {
    /// Reads the system tables: `ctx.db.system().query("_scheduled_functions")`.
    pub fn system(&self) -> SystemReader<'_> {
        SystemReader(self)
    }
}

impl SystemReader<'_> {
    /// The system document with this id (a job's id, say), or `None`.
    pub fn get(&self, id: &Id) -> Result<Option<Document>, Error> {
        self.0.get(id)
    }

    /// A query over the system table `table` (`_scheduled_functions`); its indexes are
    /// `by_creation_time` and `by_state` (`state.kind`, then `scheduledTime`).
    pub fn query(&self, table: &str) -> Query {
        let mut query = self.0.query(table);
        if !table.starts_with('_') {
            query.error = Some(Error::new(format!(
                "db.system() reads system tables, whose names start with _: {table:?} is a user table (use ctx.db.query)"
            )));
        }
        query
    }
}

impl DatabaseWriter {
    /// Inserts a document into `table` (created if needed) and returns its id.
    pub fn insert(&self, table: &str, document: &impl Serialize) -> Result<Id, Error> {
        let document = encode(document, "document")?;
        wit::insert(table, &document).map(Id).map_err(Error::new)
    }

    /// Sets the given fields of the document; the others stay.
    pub fn patch(&self, id: &Id, fields: &impl Serialize) -> Result<(), Error> {
        let fields = encode(fields, "fields")?;
        wit::patch(None, id.as_str(), &fields).map_err(Error::new)
    }

    /// Replaces all fields of the document; `_id` and `_creationTime` stay.
    pub fn replace(&self, id: &Id, document: &impl Serialize) -> Result<(), Error> {
        let document = encode(document, "document")?;
        wit::replace(None, id.as_str(), &document).map_err(Error::new)
    }

    pub fn delete(&self, id: &Id) -> Result<(), Error> {
        wit::delete(None, id.as_str()).map_err(Error::new)
    }
}

/// The range part of [`Query::with_index`]: equalities on a prefix of the index's fields,
/// then at most one lower and one upper bound on the next field.
#[derive(Debug, Default)]
pub struct RangeBuilder {
    conditions: Vec<serde_json::Value>,
    error: Option<Error>,
}

impl RangeBuilder {
    fn push(mut self, field: &str, op: &str, value: &impl Serialize) -> Self {
        match kiln_values::to_value(value) {
            Ok(value) => self.conditions.push(serde_json::json!({
                "field": field, "op": op, "value": value.to_convex_json(),
            })),
            Err(err) => {
                self.error = Some(Error::new(format!(
                    "invalid range value for {field}: {err}"
                )))
            }
        }
        self
    }

    pub fn eq(self, field: &str, value: impl Serialize) -> Self {
        self.push(field, "eq", &value)
    }
    pub fn gt(self, field: &str, value: impl Serialize) -> Self {
        self.push(field, "gt", &value)
    }
    pub fn gte(self, field: &str, value: impl Serialize) -> Self {
        self.push(field, "gte", &value)
    }
    pub fn lt(self, field: &str, value: impl Serialize) -> Self {
        self.push(field, "lt", &value)
    }
    pub fn lte(self, field: &str, value: impl Serialize) -> Self {
        self.push(field, "lte", &value)
    }
}

/// A filter expression, built with [`FilterBuilder`] and evaluated by the host.
#[derive(Clone, Debug)]
pub struct Expr(serde_json::Value);

/// Builds filter expressions in the form of Convex's filter builder.
#[derive(Debug, Default)]
pub struct FilterBuilder {
    _private: (),
}

impl FilterBuilder {
    /// A document field (`a.b` for nested fields).
    pub fn field(&self, path: &str) -> Expr {
        Expr(serde_json::json!({ "$field": path }))
    }

    /// A constant. Values that cannot be encoded become `null`.
    pub fn literal(&self, value: impl Serialize) -> Expr {
        let value = kiln_values::to_value(&value).unwrap_or(Value::Null);
        Expr(serde_json::json!({ "$literal": value.to_convex_json() }))
    }

    fn binary(op: &str, left: Expr, right: Expr) -> Expr {
        Expr(serde_json::json!({ op: [left.0, right.0] }))
    }

    pub fn eq(&self, l: Expr, r: Expr) -> Expr {
        Self::binary("$eq", l, r)
    }
    pub fn neq(&self, l: Expr, r: Expr) -> Expr {
        Self::binary("$neq", l, r)
    }
    pub fn lt(&self, l: Expr, r: Expr) -> Expr {
        Self::binary("$lt", l, r)
    }
    pub fn lte(&self, l: Expr, r: Expr) -> Expr {
        Self::binary("$lte", l, r)
    }
    pub fn gt(&self, l: Expr, r: Expr) -> Expr {
        Self::binary("$gt", l, r)
    }
    pub fn gte(&self, l: Expr, r: Expr) -> Expr {
        Self::binary("$gte", l, r)
    }
    pub fn add(&self, l: Expr, r: Expr) -> Expr {
        Self::binary("$add", l, r)
    }
    pub fn sub(&self, l: Expr, r: Expr) -> Expr {
        Self::binary("$sub", l, r)
    }
    pub fn mul(&self, l: Expr, r: Expr) -> Expr {
        Self::binary("$mul", l, r)
    }
    pub fn div(&self, l: Expr, r: Expr) -> Expr {
        Self::binary("$div", l, r)
    }
    pub fn rem(&self, l: Expr, r: Expr) -> Expr {
        Self::binary("$mod", l, r)
    }
    pub fn neg(&self, e: Expr) -> Expr {
        Expr(serde_json::json!({ "$neg": e.0 }))
    }
    pub fn not(&self, e: Expr) -> Expr {
        Expr(serde_json::json!({ "$not": e.0 }))
    }
    pub fn and(&self, exprs: impl IntoIterator<Item = Expr>) -> Expr {
        Expr(serde_json::json!({ "$and": exprs.into_iter().map(|e| e.0).collect::<Vec<_>>() }))
    }
    pub fn or(&self, exprs: impl IntoIterator<Item = Expr>) -> Expr {
        Expr(serde_json::json!({ "$or": exprs.into_iter().map(|e| e.0).collect::<Vec<_>>() }))
    }
}

/// Convex's pagination options, as clients send them (`paginationOpts`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaginationOpts {
    pub num_items: f64,
    #[serde(default)]
    pub cursor: Option<String>,
    /// Where the page ends (a `continueCursor` handed out earlier): the page then holds
    /// every document up to it, whatever `num_items` says. Convex's clients send it when
    /// they split a page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_cursor: Option<String>,
}

/// Convex's pagination result.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaginationResult {
    pub page: Vec<Document>,
    pub is_done: bool,
    pub continue_cursor: String,
}

/// A query being built; run it with `collect`, `take`, `first`, `unique` or `paginate`.
#[derive(Debug)]
pub struct Query {
    table: String,
    index: Option<String>,
    range: Vec<serde_json::Value>,
    order: Order,
    filter: Option<serde_json::Value>,
    error: Option<Error>,
}

/// Documents fetched per host call.
const BATCH: u32 = 128;

impl Query {
    /// Reads through `index`, limited to the range `range` builds.
    pub fn with_index(
        mut self,
        index: &str,
        range: impl FnOnce(RangeBuilder) -> RangeBuilder,
    ) -> Self {
        let built = range(RangeBuilder::default());
        self.index = Some(index.to_string());
        self.range = built.conditions;
        self.error = self.error.or(built.error);
        self
    }

    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Keeps the documents for which `filter` is true (evaluated by the host).
    pub fn filter(mut self, filter: impl FnOnce(&FilterBuilder) -> Expr) -> Self {
        self.filter = Some(filter(&FilterBuilder::default()).0);
        self
    }

    fn open(self, after: Option<&str>) -> Result<wit::Cursor, Error> {
        let query = self.into_wit(after)?;
        wit::open_query(&query).map_err(Error::new)
    }

    fn into_wit(self, after: Option<&str>) -> Result<wit::Query, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        Ok(wit::Query {
            table: self.table,
            index: self.index,
            range: serde_json::Value::Array(self.range).to_string(),
            order: match self.order {
                Order::Asc => wit::Order::Asc,
                Order::Desc => wit::Order::Desc,
            },
            filter: self.filter.map(|filter| filter.to_string()),
            after: after
                .filter(|cursor| !cursor.is_empty())
                .map(str::to_string),
        })
    }

    fn read(cursor: &wit::Cursor, limit: Option<usize>) -> Result<Vec<Document>, Error> {
        let mut documents = Vec::new();
        loop {
            let want = limit.map_or(BATCH as usize, |limit| {
                (limit - documents.len()).min(BATCH as usize)
            });
            if want == 0 {
                return Ok(documents);
            }
            let batch = cursor.next(want as u32).map_err(Error::new)?;
            let done = batch.len() < want;
            documents.extend(batch.into_iter().map(Document::from_host));
            if done {
                return Ok(documents);
            }
        }
    }

    /// Every document in the range.
    pub fn collect(self) -> Result<Vec<Document>, Error> {
        let cursor = self.open(None)?;
        Self::read(&cursor, None)
    }

    /// The first `n` documents.
    pub fn take(self, n: usize) -> Result<Vec<Document>, Error> {
        let cursor = self.open(None)?;
        Self::read(&cursor, Some(n))
    }

    pub fn first(self) -> Result<Option<Document>, Error> {
        Ok(self.take(1)?.into_iter().next())
    }

    /// The only document, or `None`; more than one is an error.
    pub fn unique(self) -> Result<Option<Document>, Error> {
        let table = self.table.clone();
        let mut found = self.take(2)?;
        if found.len() > 1 {
            return Err(Error::new(format!(
                "unique() found more than one document in table {table:?}"
            )));
        }
        Ok(found.pop())
    }

    /// Typed [`collect`](Self::collect).
    pub fn collect_as<T: DeserializeOwned>(self) -> Result<Vec<T>, Error> {
        self.collect()?.into_iter().map(Document::decode).collect()
    }

    /// One page, Convex-style: `cursor` from the previous page's `continue_cursor`. The
    /// host reads it, so a subscribed page keeps its bounds when documents come and go
    /// (see the WIT's `paginate`). A function may paginate once per call.
    pub fn paginate(self, options: &PaginationOpts) -> Result<PaginationResult, Error> {
        if options.num_items.is_nan() || options.num_items < 0.0 {
            return Err(Error::new(
                "paginationOpts.numItems must be a non-negative number",
            ));
        }
        let num_items = options.num_items.min(u32::MAX as f64) as u32;
        let query = self.into_wit(options.cursor.as_deref())?;
        let end = options.end_cursor.as_deref().filter(|end| !end.is_empty());
        let page = wit::paginate(&query, num_items, end).map_err(Error::new)?;
        Ok(PaginationResult {
            page: page
                .documents
                .into_iter()
                .map(Document::from_host)
                .collect(),
            is_done: page.is_done,
            continue_cursor: page.continue_cursor,
        })
    }
}
