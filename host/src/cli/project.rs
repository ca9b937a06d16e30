//! `kiln.toml`, the deployable project (DESIGN.md section 9). Paths are relative to the
//! file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine as _;
use serde::Deserialize;

use crate::auth::AuthConfig;
use crate::database::schema::TableSchema;

pub const PROJECT_FILE: &str = "kiln.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// Module name (the path prefix of its functions) → path of its `.wasm`, or of a `.js`
    /// file, or of a folder of JavaScript modules (`name/<file path>`).
    #[serde(default)]
    pub modules: BTreeMap<String, PathBuf>,
    /// A folder of JavaScript modules named by their paths in it, as a Convex app's
    /// `convex/` folder (`functions` in Convex's `convex.json`); or the `.wasm` that
    /// `kiln build` made of such a folder.
    #[serde(default)]
    pub functions: Option<PathBuf>,
    /// Table name → its indexes. Tables not listed are schemaless.
    #[serde(default)]
    pub tables: BTreeMap<String, TableSchema>,
    /// Who may issue user tokens (`[[auth.providers]]`).
    #[serde(default)]
    pub auth: AuthConfig,
    /// Environment variables `kiln deploy` sets before it deploys (`kiln env` changes them
    /// without a deploy).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Cron jobs by name (`[crons.<name>]`: `function`, `args`, and `interval_seconds` or
    /// `cron` with an optional `timezone`).
    #[serde(default)]
    pub crons: BTreeMap<String, crate::scheduler::crons::CronSpec>,
}

impl Project {
    /// Reads `dir/kiln.toml` and resolves its module paths against `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        Self::load_with_env(dir, &|name| std::env::var(name).ok())
    }

    /// [`Project::load`], reading environment variables (`secret_env`) through `env`.
    fn load_with_env(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let path = dir.join(PROJECT_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut project: Project =
            toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))?;
        for module_path in project.modules.values_mut() {
            *module_path = dir.join(&*module_path);
        }
        if let Some(functions) = &mut project.functions {
            *functions = dir.join(&*functions);
        }
        project
            .resolve_auth(dir, env)
            .with_context(|| format!("invalid {}", path.display()))?;
        Ok(project)
    }

    /// The JavaScript app the project names (app path → source), read from disk: the
    /// `functions` folder and the `[modules]` that are `.js` files or folders.
    pub fn javascript(&self) -> anyhow::Result<BTreeMap<String, String>> {
        let mut files = BTreeMap::new();
        if let Some(folder) = self
            .functions
            .as_ref()
            .filter(|_| self.prebuilt_app().is_none())
        {
            anyhow::ensure!(
                folder.is_dir(),
                "functions = {}: not a folder",
                folder.display()
            );
            super::js_files::collect("", folder, &mut files)?;
        }
        for (name, path) in &self.modules {
            if super::js_files::is_javascript(path) {
                super::js_files::collect(name, path, &mut files)
                    .with_context(|| format!("module `{name}`"))?;
            }
        }
        Ok(files)
    }

    /// The app `kiln build` made, when `functions` names a `.wasm`.
    pub fn prebuilt_app(&self) -> Option<&PathBuf> {
        self.functions
            .as_ref()
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
    }

    /// The `.wasm` modules the project names.
    pub fn wasm_modules(&self) -> impl Iterator<Item = (&String, &PathBuf)> {
        self.modules
            .iter()
            .filter(|(_, path)| !super::js_files::is_javascript(path))
    }

    /// What only this machine can resolve, resolved before the config is sent: a `jwks`
    /// file path becomes a `data:` URI of the file (the server never reads files a deploy
    /// names), and `secret_env` becomes the secret in that environment variable.
    fn resolve_auth(
        &mut self,
        dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<()> {
        for (index, provider) in self.auth.providers.iter_mut().enumerate() {
            if let Some(jwks) = &provider.jwks
                && !["https://", "http://", "data:"]
                    .iter()
                    .any(|scheme| jwks.starts_with(scheme))
            {
                let file = dir.join(jwks);
                let bytes = std::fs::read(&file).with_context(|| {
                    format!(
                        "auth.providers[{index}]: cannot read the jwks file {}",
                        file.display()
                    )
                })?;
                provider.jwks = Some(format!(
                    "data:application/json;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(bytes)
                ));
            }
            if let Some(variable) = provider.secret_env.take() {
                anyhow::ensure!(
                    provider.secret.is_none(),
                    "auth.providers[{index}]: give `secret` or `secret_env`, not both"
                );
                let secret = env(&variable).with_context(|| {
                    format!("auth.providers[{index}]: the environment variable {variable} (secret_env) is not set")
                })?;
                provider.secret = Some(crate::auth::providers::Secret(secret));
            }
        }
        Ok(())
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
    fn auth_providers_are_read_and_local_files_resolved() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jwks.json"), r#"{"keys": []}"#).unwrap();
        std::fs::write(
            dir.path().join(PROJECT_FILE),
            r#"[modules]

[[auth.providers]]
domain = "https://auth.example.com"
applicationID = "app"

[[auth.providers]]
type = "customJwt"
issuer = "https://issuer.example"
jwks = "jwks.json"
algorithm = "RS256"

[[auth.providers]]
type = "hs256"
issuer = "kiln"
secret_env = "KILN_TEST_PROJECT_SECRET"
"#,
        )
        .unwrap();
        let err = Project::load_with_env(dir.path(), &|_| None).unwrap_err();
        assert!(
            format!("{err:#}").contains("KILN_TEST_PROJECT_SECRET (secret_env) is not set"),
            "{err:#}"
        );
        let env = |name: &str| (name == "KILN_TEST_PROJECT_SECRET").then(|| "s3cret".to_string());
        let project = Project::load_with_env(dir.path(), &env).unwrap();
        let providers = &project.auth.providers;
        assert_eq!(providers[0].application_id.as_deref(), Some("app"));
        assert_eq!(
            providers[1].jwks.as_deref(),
            Some("data:application/json;base64,eyJrZXlzIjogW119")
        );
        assert_eq!(providers[2].secret.as_ref().unwrap().0, "s3cret");
        assert_eq!(providers[2].secret_env, None);
    }

    #[test]
    fn an_unknown_section_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PROJECT_FILE), "[modules]\n[modulez]\n").unwrap();
        let err = Project::load(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("modulez"), "{err:#}");
    }
}
