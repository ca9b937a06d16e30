//! Imports `test:unknown/gadget`, which the host does not provide. Deploying this module
//! must fail with an error naming that import.

use kiln::{Error, QueryCtx, query};

wit_bindgen::generate!({ path: "wit", world: "needs-gadget" });

#[query]
fn default(_ctx: &QueryCtx) -> Result<(), Error> {
    // Calling the import keeps it in the component.
    test::unknown::gadget::poke();
    Ok(())
}
