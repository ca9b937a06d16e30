//! The schema a deployment declares in `kiln.toml`: tables, their indexes and document
//! validators. Applying it builds new indexes and checks new validators in the
//! background, then creates missing tables and makes the new indexes and validators
//! current in one commit, before the deployment that needs them goes live; removed
//! indexes are dropped after. Tables the schema does not name keep
//! their documents and are schemaless (no declared indexes, no validator), as in Convex.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::committer::CommitError;
use super::indexes::{BY_CREATION_TIME, BY_ID, is_system_field};
use super::store::DocumentStore;
use super::system_tables::is_system_table;
use super::transaction::{AlsoWrite, DbError, Prepared, TransactionLimits};
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
    /// Ids of the indexes removed: their entries are left for
    /// [`DocumentStore::drop_indexes`], which a deploy runs once its functions are live.
    #[serde(skip)]
    pub removed_index_ids: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("invalid schema: {0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot apply the schema: {0}")]
    Commit(#[from] CommitError),
    #[error("cannot build an index or check a validator: {0:#}")]
    Backfill(anyhow::Error),
    /// A stored document, or one written during the deploy, does not match a new
    /// validator.
    #[error("{0}")]
    Violation(String),
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
        // Step 1: what is slow for a table that exists happens in the background while
        // mutations keep committing. New indexes are registered as building (writes
        // maintain them from then on) and backfilled a chunk per write transaction; new
        // validators become pending (the committer checks writes against them from then
        // on) and the stored documents are checked a chunk per snapshot. The schema commit
        // below makes them current; until then no function reads such an index and no
        // write is refused by such a validator.
        let (prepared, _) = self
            .run_mutation(|transaction| {
                let mut prepared = Prepared::default();
                for (table, definition) in &schema.tables {
                    prepared.extend(transaction.prepare_table(
                        table,
                        &declared(definition),
                        definition.document.as_ref(),
                    )?);
                }
                Ok(prepared)
            })
            .await
            .map_err(mutation_error)?;
        if let Err(err) = self.finish_background_work(&prepared).await {
            self.abandon_prepared(&prepared).await;
            return Err(err);
        }
        // Step 2, one commit: tables, ready indexes, validators, and `also_write`. The
        // committer refuses it if a write since step 1 did not match a pending validator.
        // A validator for a table created since step 1 is checked in this commit, reading
        // the table: no read limit here.
        let limits = TransactionLimits {
            max_documents_read: usize::MAX,
            max_bytes_read: usize::MAX,
            ..self.limits().clone()
        };
        let result = self
            .run_mutation_with(limits, |transaction| {
                if let Some(write) = &also_write {
                    transaction.also_write(write.clone())?;
                }
                let mut report = SchemaReport::default();
                for (table, definition) in &schema.tables {
                    let change = transaction.declare_table(
                        table,
                        &declared(definition),
                        definition.document.as_ref(),
                    )?;
                    report.removed_index_ids.extend(&change.removed_ids);
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
                    if schema.tables.contains_key(&table) || is_system_table(&table) {
                        continue;
                    }
                    let change = transaction.declare_table(&table, &[], None)?;
                    report.removed_index_ids.extend(&change.removed_ids);
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
            .map_err(mutation_error);
        if result.is_err() {
            // All or nothing: what step 1 prepared for a schema that did not commit goes.
            self.abandon_prepared(&prepared).await;
        }
        result.map(|(report, _)| report)
    }

    /// Adds `schema`'s new indexes to the tables that exist, as building (step 1 for
    /// indexes only: see [`Transaction::prepare_indexes`]), and returns them to backfill
    /// with [`DocumentStore::backfill_index`]. The deploy of `schema` then finds them built.
    /// Indexes left so by a push that never deploys are removed by the next deploy.
    pub async fn prepare_indexes(&self, schema: &Schema) -> Result<Vec<(u32, u32)>, SchemaError> {
        schema.validate()?;
        let (building, _) = self
            .run_mutation(|transaction| {
                let mut building = Vec::new();
                for (table, definition) in &schema.tables {
                    building.extend(transaction.prepare_indexes(table, &declared(definition))?);
                }
                Ok(building)
            })
            .await
            .map_err(mutation_error)?;
        Ok(building)
    }

    /// Backfills the indexes and checks the validators that step 1 prepared.
    async fn finish_background_work(&self, prepared: &Prepared) -> Result<(), SchemaError> {
        for &(table_number, index_id) in &prepared.building {
            self.backfill_index(table_number, index_id)
                .await
                .map_err(SchemaError::Backfill)?;
        }
        for &(table_number, pending_id) in &prepared.validating {
            let violation = self
                .check_pending_validator(table_number, pending_id)
                .await
                .map_err(SchemaError::Backfill)?;
            if let Some(violation) = violation {
                return Err(SchemaError::Violation(violation));
            }
        }
        Ok(())
    }

    /// Removes what step 1 of a failed schema prepared: its building indexes, with their
    /// entries, and its pending validators. A failure here is logged: the indexes stay
    /// building (maintained, unused) until a later deploy declares or removes them, and
    /// the validators pending until a later deploy or restart.
    async fn abandon_prepared(&self, prepared: &Prepared) {
        if prepared.is_empty() {
            return;
        }
        let removed = self
            .run_mutation(|transaction| transaction.abandon_prepared(prepared))
            .await;
        let dropped = match removed {
            Ok((removed, _)) => self.drop_indexes(&removed).await,
            Err(err) => Err(anyhow::anyhow!("{err}")),
        };
        if let Err(err) = dropped {
            tracing::error!(error = ?err, "cannot remove the indexes a failed deploy built");
        }
    }

    /// Removes the pending validators a stopped deploy left. Run once at startup, before
    /// any deploy.
    pub async fn clear_pending_validators(&self) -> Result<usize, SchemaError> {
        let (cleared, _) = self
            .run_mutation(|transaction| transaction.clear_pending_validators())
            .await
            .map_err(mutation_error)?;
        Ok(cleared)
    }

    /// Drops the entries of indexes no table has (a deploy's removed indexes whose drop a
    /// stop interrupted). Run once at startup, in the background.
    pub async fn drop_orphaned_indexes(&self) -> anyhow::Result<usize> {
        let orphaned = self.orphaned_index_ids()?;
        self.drop_indexes(&orphaned).await?;
        Ok(orphaned.len())
    }

    /// Removes the entries of indexes no table has any more (a deploy's removed indexes,
    /// once its functions are live), a chunk per write transaction.
    pub async fn drop_indexes(&self, index_ids: &[u32]) -> anyhow::Result<()> {
        for &index_id in index_ids {
            self.drop_index(index_id).await?;
        }
        Ok(())
    }
}

/// A table's declared indexes as `declare_table` and `prepare_table` take them.
fn declared(definition: &TableSchema) -> Vec<(String, Vec<String>)> {
    definition
        .indexes
        .iter()
        .map(|(name, fields)| (name.clone(), fields.clone()))
        .collect()
}

fn mutation_error(err: super::store::MutationError) -> SchemaError {
    match err {
        super::store::MutationError::Db(err) => SchemaError::Db(err),
        super::store::MutationError::Commit {
            error: CommitError::ValidatorViolated(violation),
            ..
        } => SchemaError::Violation(violation),
        super::store::MutationError::Commit { error, .. } => SchemaError::Commit(error),
    }
}
