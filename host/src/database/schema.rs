//! The schema a deployment declares in `kiln.toml`: tables and their indexes. Applying it
//! creates missing tables, backfills new indexes and drops removed ones, in one commit,
//! before the deployment that needs them goes live. Tables the schema does not name keep
//! their documents and are schemaless (no declared indexes, no validator), as in Convex.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::committer::CommitError;
use super::indexes::{BY_CREATION_TIME, BY_ID, is_system_field};
use super::store::DocumentStore;
use super::transaction::{AlsoWrite, DbError, TransactionLimits};
use super::validator::DocumentValidator;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    #[serde(default)]
    pub tables: BTreeMap<String, TableSchema>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    /// Index name → the fields it orders by (dotted paths for nested fields).
    #[serde(default)]
    pub indexes: BTreeMap<String, Vec<String>>,
    /// Field name → type; documents must match (see `validator`). None: any fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentValidator>,
}

/// What applying a schema changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaReport {
    pub created_tables: Vec<String>,
    /// `table.index` of each index built (and backfilled).
    pub added_indexes: Vec<String>,
    pub removed_indexes: Vec<String>,
    /// Tables whose document validator changed (every stored document was checked).
    pub validated_tables: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("invalid schema: {0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot apply the schema: {0}")]
    Commit(#[from] CommitError),
}

impl Schema {
    /// Checks names and field lists, naming the table and index at fault.
    pub fn validate(&self) -> Result<(), SchemaError> {
        for (table, definition) in &self.tables {
            let invalid =
                |reason: String| SchemaError::Invalid(format!("table {table:?}: {reason}"));
            if !is_identifier(table) {
                return Err(invalid(
                    "table names use letters, digits and _, starting with a letter".into(),
                ));
            }
            if let Some(validator) = &definition.document {
                validator
                    .validate()
                    .map_err(|err| invalid(format!("document: {err}")))?;
            }
            for (index, fields) in &definition.indexes {
                let invalid = |reason: String| invalid(format!("index {index:?}: {reason}"));
                if !is_identifier(index) {
                    return Err(invalid(
                        "index names use letters, digits and _, starting with a letter".into(),
                    ));
                }
                if index == BY_ID || index == BY_CREATION_TIME {
                    return Err(invalid(
                        "this name is reserved for the index every table has".into(),
                    ));
                }
                if fields.is_empty() {
                    return Err(invalid("an index needs at least one field".into()));
                }
                for (position, field) in fields.iter().enumerate() {
                    if is_system_field(field) {
                        return Err(invalid(format!(
                            "{field:?} is added to every index implicitly; do not list it"
                        )));
                    }
                    if field.split('.').any(|part| {
                        part.is_empty() || part.starts_with('$') || part.starts_with('_')
                    }) {
                        return Err(invalid(format!("{field:?} is not a field path")));
                    }
                    if fields[..position].contains(field) {
                        return Err(invalid(format!("{field:?} is listed twice")));
                    }
                }
            }
        }
        Ok(())
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

impl DocumentStore {
    /// Brings the tables and indexes in line with `schema` in one commit (re-run if it
    /// conflicts with a concurrent mutation). `also_write`, if given, commits in the same
    /// redb transaction: the schema and what depends on it land together or not at all.
    pub async fn apply_schema(
        &self,
        schema: &Schema,
        also_write: Option<AlsoWrite>,
    ) -> Result<SchemaReport, SchemaError> {
        schema.validate()?;
        // Checking a new validator reads every document of its table: no read limit here.
        let limits = TransactionLimits {
            max_documents_read: usize::MAX,
            max_bytes_read: usize::MAX,
            ..self.limits().clone()
        };
        let (report, _) = self
            .run_mutation_with(limits, |transaction| {
                if let Some(write) = &also_write {
                    transaction.also_write(write.clone())?;
                }
                let mut report = SchemaReport::default();
                for (table, definition) in &schema.tables {
                    let declared: Vec<(String, Vec<String>)> = definition
                        .indexes
                        .iter()
                        .map(|(name, fields)| (name.clone(), fields.clone()))
                        .collect();
                    let change = transaction.declare_table(
                        table,
                        &declared,
                        definition.document.as_ref(),
                    )?;
                    if change.created {
                        report.created_tables.push(table.clone());
                    }
                    if change.validator_changed && definition.document.is_some() {
                        report.validated_tables.push(table.clone());
                    }
                    report
                        .added_indexes
                        .extend(change.added.iter().map(|index| format!("{table}.{index}")));
                    report.removed_indexes.extend(
                        change
                            .removed
                            .iter()
                            .map(|index| format!("{table}.{index}")),
                    );
                }
                // A table the schema no longer names keeps its documents but becomes
                // schemaless again: its declared indexes and its validator go.
                for table in transaction.table_names() {
                    if schema.tables.contains_key(&table) {
                        continue;
                    }
                    let change = transaction.declare_table(&table, &[], None)?;
                    report.removed_indexes.extend(
                        change
                            .removed
                            .iter()
                            .map(|index| format!("{table}.{index}")),
                    );
                }
                Ok(report)
            })
            .await
            .map_err(|err| match err {
                super::store::MutationError::Db(err) => SchemaError::Db(err),
                super::store::MutationError::Commit { error, .. } => SchemaError::Commit(error),
            })?;
        Ok(report)
    }
}
