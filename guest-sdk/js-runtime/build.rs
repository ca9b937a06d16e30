//! Embeds the JavaScript that `js/build.mjs` bundled (`js/dist/`): the environment script
//! and Convex's `convex/server` and `convex/values` with their shared chunks.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("js")
        .join("dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let environment = dist.join("environment.js");
    let convex = dist.join("convex");
    if !environment.is_file() || !convex.is_dir() {
        panic!(
            "{} is missing: run `cargo xtask build-js-runtime`, which bundles it with npm first",
            dist.display()
        );
    }
    let mut modules: Vec<_> = std::fs::read_dir(&convex)
        .expect("cannot read js/dist/convex")
        .map(|entry| entry.expect("cannot read js/dist/convex").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "js"))
        .collect();
    modules.sort();

    let mut out = String::new();
    writeln!(
        out,
        "pub const ENVIRONMENT: &str = include_str!({:?});",
        environment.display().to_string()
    )
    .unwrap();
    out.push_str("pub const CONVEX_MODULES: &[(&str, &str)] = &[\n");
    for path in &modules {
        println!("cargo:rerun-if-changed={}", path.display());
        let file = path.file_name().unwrap().to_string_lossy();
        // `server.js` is what a bare `convex/server` names; chunks keep their file names,
        // which is how the entry modules import them (`./chunk-XYZ.js`).
        let name = match file.as_ref() {
            "server.js" => "convex/server".to_string(),
            "values.js" => "convex/values".to_string(),
            other => format!("convex/{other}"),
        };
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").unwrap()).join("bundled.rs");
    std::fs::write(target, out).expect("cannot write bundled.rs");
}
