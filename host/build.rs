//! Embeds Kiln's JavaScript runtime component (`cargo xtask build-js-runtime` builds it into
//! `target/js-runtime/kiln-js-runtime.wasm`; `KILN_JS_RUNTIME` names another file). A build
//! without it still works, and refuses JavaScript deploys saying how to get it.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=KILN_JS_RUNTIME");
    let path = std::env::var_os("KILN_JS_RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
                .join("js-runtime")
                .join("kiln-js-runtime.wasm")
        });
    println!("cargo:rerun-if-changed={}", path.display());
    let code = if path.is_file() {
        format!(
            "pub const JS_RUNTIME: Option<&[u8]> = Some(include_bytes!({:?}));\n",
            path.display().to_string()
        )
    } else {
        println!(
            "cargo:warning=no JS runtime at {}: this kiln will refuse JavaScript deploys (run `cargo xtask build-js-runtime` first)",
            path.display()
        );
        "pub const JS_RUNTIME: Option<&[u8]> = None;\n".to_string()
    };
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("js_runtime.rs");
    std::fs::write(out, code).unwrap();
}
