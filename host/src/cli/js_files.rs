//! The JavaScript files a `kiln.toml` names: a `.js`/`.mjs` file as one module, a folder as
//! a tree of modules (`chat/messages.js` → `chat/messages:list`), as in a Convex `convex/`
//! folder. Read here and sent as text; the server loads them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};

/// Whether a `[modules]` entry names JavaScript (a `.js`/`.mjs` file or a folder) rather
/// than a `.wasm`.
pub fn is_javascript(path: &Path) -> bool {
    path.is_dir() || has_extension(path, &["js", "mjs"])
}

fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| extensions.contains(&ext))
}

/// Adds the module(s) at `path` to `files` (app path → source), under `prefix` (`""` for
/// the app's root, else `name/`). A file becomes `<prefix-less name>.js`; a folder's files
/// keep their paths below it.
pub fn collect(
    name: &str,
    path: &Path,
    files: &mut BTreeMap<String, String>,
) -> anyhow::Result<()> {
    if path.is_dir() {
        let prefix = if name.is_empty() {
            String::new()
        } else {
            format!("{name}/")
        };
        walk(path, &prefix, files)
    } else {
        refuse_typescript(path)?;
        let source = read(path)?;
        let extension = path
            .extension()
            .and_then(|ext| ext.to_str())
            .unwrap_or("js");
        insert(files, format!("{name}.{extension}"), source, path)
    }
}

fn walk(dir: &Path, prefix: &str, files: &mut BTreeMap<String, String>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read the folder {}", dir.display()))?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            bail!("{}: the file name is not UTF-8", path.display());
        };
        if file_name.starts_with('.') || file_name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            walk(&path, &format!("{prefix}{file_name}/"), files)?;
        } else if has_extension(&path, &["js", "mjs"]) {
            let source = read(&path)?;
            insert(files, format!("{prefix}{file_name}"), source, &path)?;
        } else if !file_name.ends_with(".d.ts") {
            refuse_typescript(&path)?;
        }
    }
    Ok(())
}

/// TypeScript needs a bundler that strips types: that is the Convex CLI's job.
fn refuse_typescript(path: &Path) -> anyhow::Result<()> {
    if has_extension(path, &["ts", "tsx", "mts", "cts", "jsx"]) {
        bail!(
            "{}: kiln deploy takes JavaScript (.js, .mjs), not TypeScript or JSX; deploy a TypeScript app with the Convex CLI (`npx convex deploy`), whose bundler strips the types",
            path.display()
        );
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} (as UTF-8 text)", path.display()))
}

fn insert(
    files: &mut BTreeMap<String, String>,
    app_path: String,
    source: String,
    from: &Path,
) -> anyhow::Result<()> {
    if files.insert(app_path.clone(), source).is_some() {
        bail!(
            "{}: a second file for the JavaScript module {app_path}",
            from.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_keep_their_paths_and_files_take_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        std::fs::create_dir_all(app.join("chat")).unwrap();
        std::fs::create_dir_all(app.join("node_modules/x")).unwrap();
        std::fs::write(app.join("chat/messages.js"), "export const a = 1;").unwrap();
        std::fs::write(app.join("util.mjs"), "export const b = 2;").unwrap();
        std::fs::write(app.join("node_modules/x/index.js"), "").unwrap();
        std::fs::write(app.join("types.d.ts"), "").unwrap();
        std::fs::write(dir.path().join("seed.js"), "export default 1;").unwrap();

        let mut files = BTreeMap::new();
        collect("", &app, &mut files).unwrap();
        collect("myAction", &dir.path().join("seed.js"), &mut files).unwrap();
        let paths: Vec<_> = files.keys().map(String::as_str).collect();
        assert_eq!(paths, ["chat/messages.js", "myAction.js", "util.mjs"]);

        let mut prefixed = BTreeMap::new();
        collect("js", &app, &mut prefixed).unwrap();
        assert!(prefixed.contains_key("js/chat/messages.js"));
    }

    #[test]
    fn typescript_is_refused_naming_the_convex_cli() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("messages.ts"),
            "export const a: number = 1;",
        )
        .unwrap();
        let err = collect("", dir.path(), &mut BTreeMap::new()).unwrap_err();
        assert!(format!("{err:#}").contains("npx convex deploy"), "{err:#}");
    }
}
