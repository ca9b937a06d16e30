//! `cargo xtask bench`: builds the components, then runs the benchmark harness
//! (`host/benches/kiln.rs`) in the release profile. It prints figures and asserts nothing.

use crate::{cargo, components};

pub fn run() -> anyhow::Result<()> {
    components::build()?;
    cargo(&["bench", "-p", "kiln-host", "--bench", "kiln"])
}
