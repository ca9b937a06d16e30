//! A Convex app's schema (`schema.ts`'s `defineSchema(...)`, as its `export()` JSON) as
//! Kiln's [`Schema`]: tables, their database indexes, and their document validators.

use std::collections::BTreeMap;

use kiln_values::{FieldValidator, Validator};
use serde::Deserialize;

use crate::database::schema::{Schema, TableSchema};
use crate::database::validator::DocumentValidator;

/// What `defineSchema(...).export()` returns.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConvexSchema {
    tables: Vec<ConvexTable>,
    /// `defineSchema(..., {schemaValidation: false})` declares validators it does not
    /// enforce. Convex's default is true.
    #[serde(default = "enforced")]
    schema_validation: bool,
}

fn enforced() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConvexTable {
    table_name: String,
    #[serde(default)]
    indexes: Vec<ConvexIndex>,
    #[serde(default)]
    staged_db_indexes: Vec<ConvexIndex>,
    #[serde(default)]
    search_indexes: Vec<NamedIndex>,
    #[serde(default)]
    staged_search_indexes: Vec<NamedIndex>,
    #[serde(default)]
    vector_indexes: Vec<NamedIndex>,
    #[serde(default)]
    staged_vector_indexes: Vec<NamedIndex>,
    #[serde(default)]
    document_type: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConvexIndex {
    index_descriptor: String,
    fields: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NamedIndex {
    index_descriptor: String,
}

/// Reads the schema's JSON. What Kiln does not have yet (search and vector indexes,
/// staged indexes) is refused naming the table and index, rather than deployed without.
pub fn from_convex_json(json: &str) -> Result<Schema, String> {
    let schema: ConvexSchema = serde_json::from_str(json)
        .map_err(|err| format!("the schema's export() is not a Convex schema: {err}"))?;
    let mut tables = BTreeMap::new();
    for table in schema.tables {
        let name = table.table_name;
        let unsupported = [
            (
                "staged index",
                table.staged_db_indexes.first().map(|i| &i.index_descriptor),
            ),
            (
                "search index",
                table.search_indexes.first().map(|i| &i.index_descriptor),
            ),
            (
                "search index",
                table
                    .staged_search_indexes
                    .first()
                    .map(|i| &i.index_descriptor),
            ),
            (
                "vector index",
                table.vector_indexes.first().map(|i| &i.index_descriptor),
            ),
            (
                "vector index",
                table
                    .staged_vector_indexes
                    .first()
                    .map(|i| &i.index_descriptor),
            ),
        ];
        if let Some((kind, Some(index))) = unsupported.iter().find(|(_, index)| index.is_some()) {
            return Err(format!(
                "table {name:?}: {kind} {index:?}: Kiln does not have {kind}es yet"
            ));
        }
        let mut indexes = BTreeMap::new();
        for index in table.indexes {
            if index.fields.iter().any(|field| field == "_creationTime") {
                return Err(format!(
                    "table {name:?}: index {:?}: `_creationTime` is automatically added to the end of each index; do not list it",
                    index.index_descriptor
                ));
            }
            if indexes
                .insert(index.index_descriptor.clone(), index.fields)
                .is_some()
            {
                return Err(format!(
                    "table {name:?} has two or more definitions of index {:?}",
                    index.index_descriptor
                ));
            }
        }
        let document = match table.document_type {
            Some(json) if schema.schema_validation && !json.is_null() => {
                document_validator(&json).map_err(|err| format!("table {name:?}: {err}"))?
            }
            _ => None,
        };
        if tables
            .insert(name.clone(), TableSchema { indexes, document })
            .is_some()
        {
            return Err(format!("table {name:?} is defined twice"));
        }
    }
    Ok(Schema { tables })
}

/// The document validator of a table's `documentType`: an object or a union of objects
/// (`v.any()` checks nothing), without the system fields, which every document has.
fn document_validator(json: &serde_json::Value) -> Result<Option<DocumentValidator>, String> {
    let validator =
        Validator::from_json(json).map_err(|err| format!("invalid document validator: {err}"))?;
    let without_system_fields = |fields: BTreeMap<String, FieldValidator>| {
        Validator::Object(
            fields
                .into_iter()
                .filter(|(name, _)| name != "_id" && name != "_creationTime")
                .collect(),
        )
    };
    let validator = match validator {
        Validator::Any => return Ok(None),
        Validator::Object(fields) => without_system_fields(fields),
        Validator::Union(members) => Validator::Union(
            members
                .into_iter()
                .map(|member| match member {
                    Validator::Object(fields) => Ok(without_system_fields(fields)),
                    _ => Err("a union document type must be a union of objects".to_string()),
                })
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            return Err(
                "the document type must be an object, a union of objects, or any".to_string(),
            );
        }
    };
    Ok(Some(DocumentValidator::Convex(validator)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_indexes_and_validators_carry_over() {
        let json = r#"{"tables":[{"tableName":"messages",
            "indexes":[{"indexDescriptor":"by_channel","fields":["channel"]}],
            "stagedDbIndexes":[],"searchIndexes":[],"stagedSearchIndexes":[],
            "vectorIndexes":[],"stagedVectorIndexes":[],
            "documentType":{"type":"object","value":{
                "channel":{"fieldType":{"type":"string"},"optional":false},
                "likes":{"fieldType":{"type":"number"},"optional":true}}}},
            {"tableName":"loose","indexes":[],"documentType":{"type":"any"}}],
            "schemaValidation":true}"#;
        let schema = from_convex_json(json).unwrap();
        let messages = &schema.tables["messages"];
        assert_eq!(messages.indexes["by_channel"], vec!["channel".to_string()]);
        let Some(DocumentValidator::Convex(Validator::Object(fields))) = &messages.document else {
            panic!("expected an object validator, got {:?}", messages.document);
        };
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["channel", "likes"]);
        assert!(schema.tables["loose"].document.is_none());
    }

    #[test]
    fn unenforced_validators_are_dropped() {
        let json = r#"{"tables":[{"tableName":"t","indexes":[],
            "documentType":{"type":"object","value":{}}}],"schemaValidation":false}"#;
        assert!(
            from_convex_json(json).unwrap().tables["t"]
                .document
                .is_none()
        );
    }

    #[test]
    fn what_kiln_lacks_is_refused_by_name() {
        let json = r#"{"tables":[{"tableName":"docs","indexes":[],
            "searchIndexes":[{"indexDescriptor":"search_body","searchField":"body","filterFields":[]}]}],
            "schemaValidation":true}"#;
        let err = from_convex_json(json).unwrap_err();
        assert!(
            err.contains("\"docs\"") && err.contains("search_body"),
            "{err}"
        );
        let json = r#"{"tables":[{"tableName":"t","indexes":[{"indexDescriptor":"i","fields":["_creationTime"]}]}]}"#;
        assert!(
            from_convex_json(json)
                .unwrap_err()
                .contains("_creationTime")
        );
    }
}
