//! The system queries the Convex CLI subscribes to over the sync socket with the admin key
//! (`_system/cli/*`, convex-backend's `npm-packages/system-udfs`): what `npx convex env
//! list` / `env get`, the index-deletion check of a deploy, the dev watcher and `run`'s
//! "did you mean" read. Kiln answers them natively; each result is reactive like a user
//! query's (a table's size re-runs when the table changes; the environment and the
//! function list re-run with the deployment epoch).

use kiln_values::Value;
use serde_json::{Value as Json, json};

use super::super::AppState;
use crate::database::indexes::{BY_CREATION_TIME, IndexRange};
use crate::database::persistence::{Order, Snapshot};
use crate::database::reads::ReadSet;
use crate::runtime::{FunctionKind, Visibility};

/// Documents counted per step of a table's size.
const COUNT_BATCH: usize = 4_096;

/// A system query and its arguments.
#[derive(Debug)]
pub(super) enum SystemQuery {
    /// `_system/cli/queryEnvironmentVariables`: every variable, `[{name, value}]` by name.
    EnvironmentVariables,
    /// `_system/cli/queryEnvironmentVariables:get` `{name}`: `{name, value}` or null.
    EnvironmentVariable(String),
    /// `_system/cli/tableSize` `{tableName}`: how many documents the table holds.
    TableSize(String),
    /// `_system/cli/queryTable` `{tableName}`: a fresh random number whenever the table
    /// changes (the dev watcher's "something changed" signal).
    TableChanged(String),
    /// `_system/cli/modules:apiSpec`: every function, as the CLI lists them.
    ApiSpec,
    /// `_system/cli/convexUrl:cloudUrl`: the deployment's URL.
    CloudUrl,
}

/// Whether `udf_path` names a system function (which only the admin may call).
pub(super) fn is_system_path(udf_path: &str) -> bool {
    udf_path.starts_with("_system/")
}

impl SystemQuery {
    /// The system query at `udf_path` with `args`, or why there is none.
    pub fn parse(udf_path: &str, args: &Value) -> Result<Self, String> {
        let (module, function) = udf_path.rsplit_once(':').unwrap_or((udf_path, "default"));
        let module = module.strip_suffix(".js").unwrap_or(module);
        let string_arg = |name: &str| match args {
            Value::Object(fields) => match fields.get(name) {
                Some(Value::String(value)) => Ok(value.clone()),
                _ => Err(format!("{udf_path}: args.{name} must be a string")),
            },
            _ => Err(format!("{udf_path}: args must be an object")),
        };
        Ok(match (module, function) {
            ("_system/cli/queryEnvironmentVariables", "default") => Self::EnvironmentVariables,
            ("_system/cli/queryEnvironmentVariables", "get") => {
                Self::EnvironmentVariable(string_arg("name")?)
            }
            ("_system/cli/tableSize", "default") => Self::TableSize(string_arg("tableName")?),
            ("_system/cli/queryTable", "default") => Self::TableChanged(string_arg("tableName")?),
            ("_system/cli/modules", "apiSpec") => Self::ApiSpec,
            ("_system/cli/convexUrl", "cloudUrl") => Self::CloudUrl,
            _ => {
                return Err(format!(
                    "Kiln has no system function {udf_path:?} (it answers _system/cli/queryEnvironmentVariables, tableSize, queryTable, modules:apiSpec, convexUrl:cloudUrl)"
                ));
            }
        })
    }

    /// Runs the query at `snapshot`: its value (Convex JSON) and what it read.
    pub fn run(&self, app: &AppState, snapshot: Snapshot) -> Result<(Json, ReadSet), String> {
        let nothing_read = ReadSet::default();
        Ok(match self {
            Self::EnvironmentVariables => {
                let variables: Vec<Json> = app
                    .runtime
                    .environment_map()
                    .into_iter()
                    .map(|(name, value)| json!({"name": name, "value": value}))
                    .collect();
                (Json::Array(variables), nothing_read)
            }
            Self::EnvironmentVariable(name) => {
                let value = app.runtime.environment_map().remove(name);
                let found = value.map(|value| json!({"name": name, "value": value}));
                (found.unwrap_or(Json::Null), nothing_read)
            }
            Self::TableSize(table) => {
                let (count, reads) = count_documents(app, snapshot, table)?;
                (json!(count), reads)
            }
            Self::TableChanged(table) => {
                let (_, reads) = count_documents(app, snapshot, table)?;
                (json!(rand::random::<f64>()), reads)
            }
            Self::ApiSpec => {
                let deployment = app.deployments.current();
                let functions: Vec<Json> = deployment
                    .functions()
                    .map(|(path, spec)| match &spec.route {
                        Some(route) => json!({
                            "functionType": "HttpAction",
                            "method": route.method,
                            "path": route.path,
                        }),
                        None => json!({
                            "identifier": format!("{}.js:{}", path.module, path.function),
                            "functionType": match spec.kind {
                                FunctionKind::Query => "Query",
                                FunctionKind::Mutation => "Mutation",
                                _ => "Action",
                            },
                            "visibility": {"kind": match spec.visibility {
                                Visibility::Public => "public",
                                Visibility::Internal => "internal",
                            }},
                            "args": spec.args.as_ref().map_or(json!({"type": "any"}), |v| v.to_json()),
                            "returns": spec.returns.as_ref().map_or(json!({"type": "any"}), |v| v.to_json()),
                        }),
                    })
                    .collect();
                (Json::Array(functions), nothing_read)
            }
            Self::CloudUrl => (Json::Null, nothing_read),
        })
    }
}

/// Counts the documents of `table` at `snapshot`, recording the whole table in the read
/// set (so the count re-runs when the table changes).
fn count_documents(
    app: &AppState,
    snapshot: Snapshot,
    table: &str,
) -> Result<(usize, ReadSet), String> {
    let mut transaction = app.store.begin_admin_read_at(snapshot);
    let mut count = 0;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let batch = transaction
            .scan(
                table,
                BY_CREATION_TIME,
                &IndexRange::default(),
                Order::Asc,
                COUNT_BATCH,
                after.as_deref(),
            )
            .map_err(|err| format!("cannot count table {table:?}: {err}"))?;
        let full = batch.len() == COUNT_BATCH;
        count += batch.len();
        match batch.into_iter().last() {
            Some((key, _)) if full => after = Some(key),
            _ => break,
        }
    }
    Ok((count, transaction.into_reads().1))
}
