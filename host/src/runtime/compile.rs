//! Validating and compiling uploaded components, and reloading compiled artifacts.
//!
//! Compilation is CPU-bound and slow (Cranelift); callers run it off the async threads
//! (`spawn_blocking`). The serialized artifact is what the store keeps, so a restarted
//! server does not compile again.

use wasmtime::component::Component;

use super::Runtime;

/// A component compiled for this engine, with its serialized artifact.
pub struct CompiledComponent {
    pub component: Component,
    pub artifact: Vec<u8>,
}

/// Why uploaded bytes are not a usable component.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("not a WebAssembly binary (it does not start with \\0asm)")]
    NotWasm,
    #[error(
        "a core WebAssembly module, not a component: build for wasm32-wasip2, or wrap it with `wasm-tools component new`"
    )]
    CoreModule,
    #[error("{size} bytes, over the module size limit of {limit} bytes (max_module_bytes)")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid component: {0}")]
    Invalid(String),
}

const WASM_MAGIC: &[u8; 4] = b"\0asm";
/// Layer 1 is a component; layer 0 is a core module (the component-model binary format).
const CORE_MODULE_LAYER: [u8; 2] = [0, 0];

impl Runtime {
    /// Validates and compiles `bytes`. Blocking: call from a blocking thread.
    pub fn compile(&self, bytes: &[u8]) -> Result<CompiledComponent, CompileError> {
        if bytes.len() > self.limits.max_module_bytes {
            return Err(CompileError::TooLarge {
                size: bytes.len(),
                limit: self.limits.max_module_bytes,
            });
        }
        if bytes.len() < 8 || &bytes[..4] != WASM_MAGIC {
            return Err(CompileError::NotWasm);
        }
        if bytes[6..8] == CORE_MODULE_LAYER {
            return Err(CompileError::CoreModule);
        }
        self.compile_trusted(bytes)
    }

    /// Compiles a component this server made itself (a JavaScript app's snapshot, whose
    /// size is the loaded heap's, not something a client uploaded). Blocking.
    pub fn compile_trusted(&self, bytes: &[u8]) -> Result<CompiledComponent, CompileError> {
        let component = Component::new(&self.engine, bytes)
            .map_err(|err| CompileError::Invalid(format!("{err:#}")))?;
        let artifact = component
            .serialize()
            .map_err(|err| CompileError::Invalid(format!("cannot serialize: {err:#}")))?;
        Ok(CompiledComponent {
            component,
            artifact,
        })
    }

    /// Reloads an artifact this server compiled earlier. `None` if it no longer fits the
    /// engine (another wasmtime version or configuration): the caller compiles again.
    pub fn load_artifact(&self, artifact: &[u8]) -> Option<Component> {
        // SAFETY: `Component::deserialize` trusts its input to be a wasmtime artifact. These
        // bytes are only ever written by `compile` above into the server's own data
        // directory, never taken from a client; wasmtime still checks that they were made
        // by a compatible engine and rejects them otherwise.
        unsafe { Component::deserialize(&self.engine, artifact) }.ok()
    }
}
