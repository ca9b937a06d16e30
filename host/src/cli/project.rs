//! `kiln.toml`, the deployable project (DESIGN.md section 9). Paths are relative to the
//! file. Later issues add sections (tables, auth, crons, ...) here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::database::schema::TableSchema;

pub const PROJECT_FILE: &str = "kiln.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// Module name (the path prefix of its functions) → path of its `.wasm`.
    pub modules: BTreeMap<String, PathBuf>,
    /// Table name → its indexes. Tables not listed are schemaless.
    #[serde(default)]
    pub tables: BTreeMap<String, TableSchema>,
}

impl Project {
    /// Reads `dir/kiln.toml` and resolves its module paths against `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(PROJECT_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut project: Project =
            toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))?;
        for module_path in project.modules.values_mut() {
            *module_path = dir.join(&*module_path);
        }
        Ok(project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(PROJECT_FILE),
            "[modules]\nhello = \"build/hello.wasm\"\n",
        )
        .unwrap();
        let project = Project::load(dir.path()).unwrap();
        assert_eq!(
            project.modules["hello"],
            dir.path().join("build/hello.wasm")
        );
    }

    #[test]
    fn an_unknown_section_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PROJECT_FILE), "[modules]\n[modulez]\n").unwrap();
        let err = Project::load(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("modulez"), "{err:#}");
    }
}
