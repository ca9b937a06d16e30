//! Deployment environment variables (Convex's): names and values that every function sees
//! (`process.env` in JavaScript, `std::env::var` in Rust), set with `kiln env` or `[env]` in
//! kiln.toml, and kept in the store apart from the deployment so changing one needs no
//! deploy.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Deserialize;

use crate::database::kv::{KvStore, Op, Space, all_entries};

/// Convex's limits: a name like a C identifier of at most 40 characters, values of at most
/// 8 KiB, at most 100 variables.
const MAX_NAME_LEN: usize = 40;
const MAX_VALUE_BYTES: usize = 8 << 10;
const MAX_VARIABLES: usize = 100;

/// One change of `POST /api/update_environment_variables`: a value sets, none removes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
}

/// Why a change was refused; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidChange(pub String);

pub fn load(kv: &dyn KvStore) -> anyhow::Result<BTreeMap<String, String>> {
    all_entries(kv.snapshot()?.as_ref(), Space::EnvironmentVariables)?
        .into_iter()
        .map(|(name, value)| {
            Ok((
                String::from_utf8(name).context("corrupt environment variable name")?,
                String::from_utf8(value).context("corrupt environment variable value")?,
            ))
        })
        .collect()
}

/// Applies `changes` to `current` (all or none) and stores the result; the new variables.
pub fn update(
    kv: &dyn KvStore,
    current: &BTreeMap<String, String>,
    changes: &[Change],
) -> Result<BTreeMap<String, String>, UpdateError> {
    let mut next = current.clone();
    for change in changes {
        check_name(&change.name)?;
        match &change.value {
            Some(value) => {
                if value.len() > MAX_VALUE_BYTES {
                    return Err(InvalidChange(format!(
                        "the value of {} is {} bytes, over the limit of {MAX_VALUE_BYTES}",
                        change.name,
                        value.len()
                    ))
                    .into());
                }
                next.insert(change.name.clone(), value.clone());
            }
            None => {
                next.remove(&change.name);
            }
        }
    }
    if next.len() > MAX_VARIABLES {
        return Err(InvalidChange(format!(
            "{} environment variables: at most {MAX_VARIABLES} are allowed",
            next.len()
        ))
        .into());
    }
    let store = || -> anyhow::Result<()> {
        let mut txn = kv.begin_write()?;
        let stored = all_entries(&*txn, Space::EnvironmentVariables)?;
        let mut ops: Vec<Op<'_>> = stored
            .iter()
            .map(|(name, _)| Op::Delete(Space::EnvironmentVariables, name))
            .collect();
        ops.extend(next.iter().map(|(name, value)| {
            Op::Put(
                Space::EnvironmentVariables,
                name.as_bytes(),
                value.as_bytes(),
            )
        }));
        txn.apply(&ops)?;
        txn.commit(true)
    };
    store()
        .context("cannot store the environment variables")
        .map_err(UpdateError::Store)?;
    Ok(next)
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Invalid(#[from] InvalidChange),
    #[error(transparent)]
    Store(anyhow::Error),
}

fn check_name(name: &str) -> Result<(), InvalidChange> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_NAME_LEN;
    if valid {
        Ok(())
    } else {
        Err(InvalidChange(format!(
            "{name:?} is not an environment variable name: letters, digits and _, not starting with a digit, at most {MAX_NAME_LEN} characters"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_all_or_none_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::database::open(dir.path()).unwrap();
        let db = db.as_ref();
        let set = |name: &str, value: Option<&str>| Change {
            name: name.into(),
            value: value.map(Into::into),
        };
        let first = update(
            db,
            &BTreeMap::new(),
            &[set("API_KEY", Some("k")), set("B", Some("2"))],
        )
        .unwrap();
        assert_eq!(load(db).unwrap(), first);
        let refused = update(db, &first, &[set("B", None), set("1BAD", Some("x"))]);
        assert!(matches!(refused, Err(UpdateError::Invalid(_))));
        assert_eq!(load(db).unwrap(), first, "a refused update changes nothing");
        let second = update(db, &first, &[set("B", None)]).unwrap();
        assert_eq!(load(db).unwrap(), second);
        assert_eq!(second.keys().collect::<Vec<_>>(), ["API_KEY"]);
    }
}
