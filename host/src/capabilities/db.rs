//! `kiln:platform/db`: the database as functions see it.
//!
//! Who may call what: queries read (their transaction is read-only, so a write fails with
//! an error saying so), mutations read and write, actions have no transaction at all and
//! every call fails with an error pointing them to queries and mutations. Limits are the
//! transaction's (documents and bytes read and written, document size) plus the largest
//! batch a cursor may be asked for at once (`max_query_batch`). Exceeding any of them
//! poisons the transaction: the function fails even if it catches the error.

use kiln_values::Value;
use wasmtime::component::Resource;

use crate::database::filter::Expression;
use crate::database::id::DocumentId;
use crate::database::indexes::{BY_CREATION_TIME, Bound, IndexRange};
use crate::database::persistence::Order;
use crate::database::read_document::ReadDocument;
use crate::database::transaction::{DbError, Transaction};
use crate::runtime::InvocationState;
use crate::runtime::bindings::kiln::platform::db::{self as wit, Host, HostCursor};
use crate::runtime::page_journal::PageEnd;

/// The most documents a cursor reads between two checks of the call's deadline.
const SCAN_SLICE: usize = 64;

/// An open query: what it selects and how far it has read.
pub struct QueryCursor {
    table: String,
    index: String,
    range: IndexRange,
    order: Order,
    filter: Option<Expression>,
    /// The index key of the last document read (matching the filter or not). Handed out
    /// only sealed (`database::cursor_seal`): it holds that document's indexed values.
    after: Option<Vec<u8>>,
    /// The index key the query stops at (included): a page's fixed end.
    until: Option<Vec<u8>>,
    exhausted: bool,
    /// What this cursor counts against the call's host-memory budget, released when the
    /// guest drops it.
    held_bytes: usize,
}

/// What one open cursor is charged beyond its texts, and each JSON value of its range and
/// filter beyond its text (the parsed tree's nodes): estimates on the generous side.
const CURSOR_OVERHEAD_BYTES: usize = 512;
const PARSED_NODE_BYTES: usize = 64;

impl InvocationState {
    /// The transaction, or the error this kind of function gets instead.
    pub(super) fn transaction(&mut self) -> Result<&mut Transaction, String> {
        if self.kind.is_action() {
            return Err(
                "actions cannot use the database directly: call a query or mutation (run-query, run-mutation)".into(),
            );
        }
        self.db
            .transaction()
            .map_err(|err| {
                tracing::error!(error = ?err, "cannot begin a transaction");
                INTERNAL_DB_ERROR.to_string()
            })?
            .ok_or_else(|| "internal error: this invocation has no database access".to_string())
    }
}

/// What a guest is told of a database failure that is the server's, not its own: the
/// cause (a redb error, a corrupt record) goes to the server log, under the request's id.
const INTERNAL_DB_ERROR: &str = "internal database error: the server log has the details";

/// A database error as the guest sees it: the message, except for internal failures,
/// whose text stays in the log.
pub(super) fn guest_error(err: DbError) -> String {
    match err {
        DbError::Internal(cause) => {
            tracing::error!(error = ?cause, "database call failed");
            INTERNAL_DB_ERROR.to_string()
        }
        other => other.to_string(),
    }
}

fn parse_id(
    table: Option<&str>,
    id: &str,
    transaction: &mut Transaction,
) -> Result<DocumentId, String> {
    let id = DocumentId::decode(id).map_err(|err| err.to_string())?;
    if let Some(expected) = table {
        let actual = transaction.table_name(id.table_number);
        if actual.as_deref() != Some(expected) {
            return Err(format!(
                "id {id} belongs to {}, not to table {expected:?}",
                actual.map_or("no table".to_string(), |name| format!("table {name:?}"))
            ));
        }
    }
    Ok(id)
}

impl InvocationState {
    /// Checks JSON text a guest hands over before anything is built from it: over
    /// `max_value_bytes` it is refused unread; then its depth and element count are
    /// checked without building anything, so the host never holds a tree the limits
    /// would refuse. Returns the number of values in it.
    pub(crate) fn check_guest_text(&self, text: &str, what: &str) -> Result<usize, String> {
        let limits = &self.guest_text_limits;
        if text.len() > limits.value.max_size_bytes {
            return Err(format!(
                "invalid {what}: {} bytes of JSON, over the limit of {} bytes (max_value_bytes)",
                text.len(),
                limits.value.max_size_bytes
            ));
        }
        kiln_values::check_json_shape(
            text.as_bytes(),
            limits.value.max_nesting_depth + 1,
            limits.max_elements,
        )
        .map_err(|err| format!("invalid {what}: {err}"))
    }

    /// A value from the guest, checked as [`check_guest_text`] says and then decoded.
    pub(crate) fn parse_value(&self, text: &str, what: &str) -> Result<Value, String> {
        self.check_guest_text(text, what)?;
        Value::from_convex_json_str(text).map_err(|err| format!("invalid {what}: {err}"))
    }
}

impl Host for InvocationState {
    async fn get(&mut self, table: Option<String>, id: String) -> Result<Option<String>, String> {
        let transaction = self.transaction()?;
        let id = parse_id(table.as_deref(), &id, transaction)?;
        // A stored document goes to the guest as the store's text.
        let document = transaction.get_read(&id).map_err(guest_error)?;
        Ok(document.map(ReadDocument::into_text))
    }

    async fn insert(&mut self, table: String, document: String) -> Result<String, String> {
        let document = self.parse_value(&document, "document")?;
        let transaction = self.transaction()?;
        let id = transaction.insert(&table, document).map_err(guest_error)?;
        Ok(id.encode())
    }

    async fn patch(
        &mut self,
        table: Option<String>,
        id: String,
        fields: String,
    ) -> Result<(), String> {
        let fields = self.parse_value(&fields, "fields")?;
        let transaction = self.transaction()?;
        let id = parse_id(table.as_deref(), &id, transaction)?;
        transaction.patch(&id, fields).map_err(guest_error)
    }

    async fn replace(
        &mut self,
        table: Option<String>,
        id: String,
        document: String,
    ) -> Result<(), String> {
        let document = self.parse_value(&document, "document")?;
        let transaction = self.transaction()?;
        let id = parse_id(table.as_deref(), &id, transaction)?;
        transaction.replace(&id, document).map_err(guest_error)
    }

    async fn delete(&mut self, table: Option<String>, id: String) -> Result<(), String> {
        let transaction = self.transaction()?;
        let id = parse_id(table.as_deref(), &id, transaction)?;
        transaction.delete(&id).map_err(guest_error)
    }

    async fn paginate(
        &mut self,
        query: wit::Query,
        num_items: u32,
        end_cursor: Option<String>,
    ) -> Result<wit::Page, String> {
        self.paginate_page(query, num_items, end_cursor).await
    }

    async fn open_query(&mut self, query: wit::Query) -> Result<Resource<QueryCursor>, String> {
        self.transaction()?;
        // What the cursor will hold is charged before any of it is built.
        let mut elements = self.check_guest_text(&query.range, "range")?;
        if let Some(filter) = &query.filter {
            elements += self.check_guest_text(filter, "filter")?;
        }
        let held_bytes = CURSOR_OVERHEAD_BYTES
            + query.range.len()
            + query.filter.as_ref().map_or(0, String::len)
            + elements * PARSED_NODE_BYTES;
        self.host_memory.charge(held_bytes, "an open query")?;
        let opened = self.open_charged_query(query, held_bytes).await;
        if opened.is_err() {
            self.host_memory.release(held_bytes);
        }
        opened
    }
}

impl InvocationState {
    /// `open_query` once the cursor's memory is charged; on error the caller releases it.
    async fn open_charged_query(
        &mut self,
        query: wit::Query,
        held_bytes: usize,
    ) -> Result<Resource<QueryCursor>, String> {
        let range = parse_range(&query.range)?;
        let filter = match &query.filter {
            None => None,
            Some(text) => {
                let json: serde_json::Value =
                    serde_json::from_str(text).map_err(|err| format!("invalid filter: {err}"))?;
                Some(Expression::parse(&json).map_err(|err| format!("invalid filter: {err}"))?)
            }
        };
        let after = match &query.after {
            None => None,
            Some(cursor) => Some(
                self.cursor_key
                    .open(
                        &query.table,
                        query.index.as_deref().unwrap_or(BY_CREATION_TIME),
                        cursor,
                    )
                    .map_err(|err| err.to_string())?,
            ),
        };
        let cursor = QueryCursor {
            table: query.table,
            index: query.index.unwrap_or_else(|| BY_CREATION_TIME.to_string()),
            range,
            order: match query.order {
                wit::Order::Asc => Order::Asc,
                wit::Order::Desc => Order::Desc,
            },
            filter,
            after,
            until: None,
            exhausted: false,
            held_bytes,
        };
        // Check the index and range now, so a bad query fails where it is opened.
        let transaction = self.transaction()?;
        transaction
            .check_query(
                &cursor.table,
                &cursor.index,
                &cursor.range,
                cursor.after.as_deref(),
            )
            .map_err(guest_error)?;
        self.table
            .push(cursor)
            .map_err(|err| format!("too many open queries: {err}"))
    }
}

impl HostCursor for InvocationState {
    async fn next(
        &mut self,
        cursor: Resource<QueryCursor>,
        max: u32,
    ) -> Result<Vec<String>, String> {
        if max as usize > self.max_query_batch {
            let message = format!(
                "a query batch of {max} documents was requested, over the limit of {} (max_query_batch)",
                self.max_query_batch
            );
            return Err(self.transaction()?.exceeded(message).to_string());
        }
        let max = (max as usize).max(1);
        let mut state = std::mem::replace(
            self.table.get_mut(&cursor).map_err(|err| err.to_string())?,
            QueryCursor::placeholder(),
        );
        let found = self.read_from(&mut state, max).await;
        *self.table.get_mut(&cursor).map_err(|err| err.to_string())? = state;
        found
    }

    async fn position(&mut self, cursor: Resource<QueryCursor>) -> Option<String> {
        let state = self.table.get(&cursor).ok()?;
        let after = state.after.as_ref()?;
        Some(self.cursor_key.seal(&state.table, &state.index, after))
    }

    async fn drop(&mut self, cursor: Resource<QueryCursor>) -> wasmtime::Result<()> {
        let cursor = self.table.delete(cursor)?;
        self.host_memory.release(cursor.held_bytes);
        Ok(())
    }
}

impl QueryCursor {
    /// What stands in the resource table while a cursor is out being read.
    fn placeholder() -> Self {
        Self {
            table: String::new(),
            index: String::new(),
            range: IndexRange::default(),
            order: Order::Asc,
            filter: None,
            after: None,
            until: None,
            exhausted: true,
            held_bytes: 0,
        }
    }
}

impl InvocationState {
    /// Up to `max` more documents of `cursor` (fewer only at its end), as JSON text.
    async fn read_from(
        &mut self,
        cursor: &mut QueryCursor,
        max: usize,
    ) -> Result<Vec<String>, String> {
        let mut found = Vec::new();
        while !cursor.exhausted && found.len() < max {
            // A filter that matches little keeps this loop scanning: read in slices, and
            // between slices give the worker back and stop at the call's deadline.
            self.checkpoint().await?;
            let want = (max - found.len()).min(SCAN_SLICE);
            let transaction = self.transaction()?;
            let batch = transaction
                .scan_until(
                    &cursor.table,
                    &cursor.index,
                    &cursor.range,
                    cursor.order,
                    want,
                    cursor.after.as_deref(),
                    cursor.until.as_deref(),
                )
                .map_err(guest_error)?;
            cursor.exhausted = batch.len() < want;
            for (key, document) in batch {
                let keep = match &cursor.filter {
                    None => true,
                    Some(filter) => filter
                        .matches(&*document.document().map_err(|err| guest_error(err.into()))?)
                        .map_err(|err| format!("filter: {err}"))?,
                };
                cursor.after = Some(key);
                if keep {
                    // A stored document goes to the guest as the store's text.
                    found.push(document.into_text());
                }
            }
        }
        Ok(found)
    }

    /// `db.paginate`: see the WIT. The page's end comes from `end_cursor`, else from the
    /// subscription's journal; a page without one reads `num_items` and records where it
    /// stopped in the journal.
    async fn paginate_page(
        &mut self,
        query: wit::Query,
        num_items: u32,
        end_cursor: Option<String>,
    ) -> Result<wit::Page, String> {
        if std::mem::replace(&mut self.paginated, true) {
            return Err(
                "a function may paginate only once per call (MultiplePaginatedDatabaseQueries)"
                    .into(),
            );
        }
        let journal = self.context.page_journal.clone();
        let end = match end_cursor {
            Some(cursor) => Some(PageEnd::At(cursor)),
            None => journal
                .as_ref()
                .and_then(|journal| journal.previous().cloned()),
        };
        let resource = self.open_query(query).await?;
        let mut cursor = std::mem::replace(
            self.table
                .get_mut(&resource)
                .map_err(|err| err.to_string())?,
            QueryCursor::placeholder(),
        );
        let page = self.read_page(&mut cursor, num_items, end).await;
        *self
            .table
            .get_mut(&resource)
            .map_err(|err| err.to_string())? = cursor;
        HostCursor::drop(self, resource)
            .await
            .map_err(|err| format!("cannot close the page's query: {err}"))?;
        let (page, recorded) = page?;
        if let Some(journal) = journal {
            journal.record(recorded);
        }
        Ok(page)
    }

    async fn read_page(
        &mut self,
        cursor: &mut QueryCursor,
        num_items: u32,
        end: Option<PageEnd>,
    ) -> Result<(wit::Page, PageEnd), String> {
        let start = cursor
            .after
            .as_ref()
            .map(|after| self.cursor_key.seal(&cursor.table, &cursor.index, after));
        let position = |state: &Self, cursor: &QueryCursor| {
            cursor
                .after
                .as_ref()
                .map(|after| state.cursor_key.seal(&cursor.table, &cursor.index, after))
                .or_else(|| start.clone())
                .unwrap_or_default()
        };
        match end {
            Some(PageEnd::At(sealed)) => {
                let until = self
                    .cursor_key
                    .open(&cursor.table, &cursor.index, &sealed)
                    .map_err(|err| err.to_string())?;
                cursor.until = Some(until);
                let documents = self.read_all(cursor).await?;
                let page = wit::Page {
                    documents,
                    is_done: false,
                    continue_cursor: sealed.clone(),
                };
                Ok((page, PageEnd::At(sealed)))
            }
            Some(PageEnd::End) => {
                let documents = self.read_all(cursor).await?;
                let continue_cursor = position(self, cursor);
                let page = wit::Page {
                    documents,
                    is_done: true,
                    continue_cursor,
                };
                Ok((page, PageEnd::End))
            }
            None => {
                let mut documents = Vec::new();
                while documents.len() < num_items as usize {
                    let want = (num_items as usize - documents.len()).min(self.max_query_batch);
                    let batch = self.read_from(cursor, want).await?;
                    let short = batch.len() < want;
                    documents.extend(batch);
                    if short {
                        break;
                    }
                }
                let continue_cursor = position(self, cursor);
                // Done when the page came up short, or nothing follows it.
                let is_done = documents.len() < num_items as usize
                    || self.read_from(cursor, 1).await?.is_empty();
                let end = if is_done {
                    PageEnd::End
                } else {
                    PageEnd::At(continue_cursor.clone())
                };
                let page = wit::Page {
                    documents,
                    is_done,
                    continue_cursor,
                };
                Ok((page, end))
            }
        }
    }

    /// Every remaining document of `cursor`.
    async fn read_all(&mut self, cursor: &mut QueryCursor) -> Result<Vec<String>, String> {
        let mut documents = Vec::new();
        loop {
            let batch = self.read_from(cursor, self.max_query_batch).await?;
            let done = batch.len() < self.max_query_batch;
            documents.extend(batch);
            if done {
                return Ok(documents);
            }
        }
    }
}

/// `[{"field", "op", "value"}, ...]` → an index range.
fn parse_range(text: &str) -> Result<IndexRange, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|err| format!("invalid range: {err}"))?;
    let serde_json::Value::Array(conditions) = json else {
        return Err("invalid range: expected an array of {field, op, value}".into());
    };
    let mut range = IndexRange::default();
    for (position, condition) in conditions.into_iter().enumerate() {
        let invalid = |reason: &str| format!("invalid range condition {position}: {reason}");
        let serde_json::Value::Object(mut condition) = condition else {
            return Err(invalid("expected {field, op, value}"));
        };
        let field = match condition.remove("field") {
            Some(serde_json::Value::String(field)) => field,
            _ => return Err(invalid("`field` must be a string")),
        };
        let op = match condition.remove("op") {
            Some(serde_json::Value::String(op)) => op,
            _ => return Err(invalid("`op` must be a string")),
        };
        let value =
            Value::from_convex_json(condition.remove("value").unwrap_or(serde_json::Value::Null))
                .map_err(|err| invalid(&err.to_string()))?;
        let bound = |inclusive| {
            Some((
                field.clone(),
                Bound {
                    value: value.clone(),
                    inclusive,
                },
            ))
        };
        match op.as_str() {
            "eq" if range.lower.is_none() && range.upper.is_none() => {
                range.equal.push((field, value))
            }
            "eq" => return Err(invalid("an equality must come before the bounds")),
            "gt" | "gte" if range.lower.is_none() => range.lower = bound(op == "gte"),
            "lt" | "lte" if range.upper.is_none() => range.upper = bound(op == "lte"),
            "gt" | "gte" | "lt" | "lte" => {
                return Err(invalid("at most one lower and one upper bound"));
            }
            other => {
                return Err(invalid(&format!(
                    "unknown op {other:?} (use eq, gt, gte, lt, lte)"
                )));
            }
        }
    }
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_database_errors_reach_the_guest_without_their_cause() {
        let internal = DbError::Internal(anyhow::anyhow!("redb: page 0x1f00 is corrupt"));
        let message = guest_error(internal);
        assert_eq!(message, INTERNAL_DB_ERROR);
        assert!(!message.contains("redb"));
        // The guest's own faults keep their message.
        let own = DbError::NotFound("patch: no document with id x".to_string());
        assert_eq!(guest_error(own), "patch: no document with id x");
    }
}
